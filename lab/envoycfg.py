"""Istio-shaped Envoy v3 configuration, written as static bootstrap resources.

Names follow what istiod generates (listeners `0.0.0.0_8443` / `virtualInbound` / `0.0.0.0_80`,
clusters `outbound|80||<host>` / `inbound|8012||`, route configurations
`https.443.https.knative-ingress-gateway.knative-serving`, `inbound|8012||`, `80`, routes
`default`, RBAC policies `ns[<ns>]-policy[<name>]-rule[<n>]`), and so do the wire-visible
settings (HCM `use_remote_address`, X-Forwarded-For handling, Istio's default retry policy, SNI
`outbound_.<port>_._.<host>`, ISTIO_MUTUAL with SPIFFE SAN checks, the `istio-*` ALPN values the
`istio.alpn` filter would set). Istio's own extensions (metadata exchange, stats, ALPN filter) are
not in upstream Envoy and are left out; their wire effect on ALPN is reproduced in the cluster's
`alpn_protocols`.
"""

# Istio's default TEXT access-log format since 1.23 (identical to parsers/src/builtins.rs ISTIO_1_23).
ISTIO_TEXT_FORMAT = (
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% "
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

# Istio's sidecar inbound passthrough source address (InboundPassthroughBindIpv4).
INBOUND_PASSTHROUGH_IP = "127.0.0.6"

MAX = 4294967295


def addr(ip, port):
    return {"socket_address": {"address": ip, "port_value": port}}


def access_log(nr_only=False):
    log = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "/dev/stdout",
            "log_format": {"text_format_source": {"inline_string": ISTIO_TEXT_FORMAT}},
        },
    }
    if nr_only:
        # istiod filters listener-level access logs on NR: only connections no filter chain took.
        log["filter"] = {"response_flag_filter": {"flags": ["NR"]}}
    return [log]


def istio_retry_policy():
    """Istio's default retry policy (pilot/pkg/networking/core/route/retry)."""
    return {
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": "5",
        "retriable_status_codes": [503],
    }


def istio_metadata(config_path, services=None):
    md = {"config": config_path}
    if services:
        md["services"] = services
    return {"filter_metadata": {"istio": md}}


def router_filter():
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }


def hcm(stat_prefix, route_config, *, gateway, inbound, http_filters=(), preserve_external_request_id=False):
    """An HTTP connection manager as istiod writes it for a gateway, sidecar inbound or outbound."""
    c = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": stat_prefix,
        "route_config": route_config,
        "http_filters": [*http_filters, router_filter()],
        "access_log": access_log(),
        "use_remote_address": bool(gateway),
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "stream_idle_timeout": "0s",
        "normalize_path": True,
        "request_id_extension": {
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
                "use_request_id_for_trace_sampling": True,
            }
        },
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "server_name": "istio-envoy",
    }
    if gateway:
        c["xff_num_trusted_hops"] = 0
        c["forward_client_cert_details"] = "SANITIZE_SET"
        c["set_current_client_cert_details"] = {"subject": True, "dns": True, "uri": True}
        if preserve_external_request_id:
            c["preserve_external_request_id"] = True
    elif inbound:
        c["forward_client_cert_details"] = "APPEND_FORWARD"
        c["set_current_client_cert_details"] = {"subject": True, "dns": True, "uri": True}
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": c}


def _tls_params():
    return {"tls_minimum_protocol_version": "TLSv1_2", "tls_maximum_protocol_version": "TLSv1_3"}


def downstream_tls(cert_secret, mtls):
    """Gateway SIMPLE (`mtls=False`) or ISTIO_MUTUAL / sidecar STRICT (`mtls=True`) server TLS."""
    common = {
        "tls_params": _tls_params(),
        "alpn_protocols": ["h2", "http/1.1"],
        "tls_certificate_sds_secret_configs": [{"name": cert_secret}],
    }
    ctx = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": common,
        "require_client_certificate": bool(mtls),
    }
    if mtls:
        common["combined_validation_context"] = {
            "default_validation_context": {},
            "validation_context_sds_secret_config": {"name": "ROOTCA"},
        }
    return {"name": "envoy.transport_sockets.tls", "typed_config": ctx}


def upstream_istio_mutual(sni, peer_spiffe_ids, h2):
    """DestinationRule `tls.mode: ISTIO_MUTUAL` as a cluster transport socket."""
    alpn = ["istio-h2", "istio", "h2"] if h2 else ["istio-http/1.1", "istio", "http/1.1"]
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {
                "tls_params": _tls_params(),
                "alpn_protocols": alpn,
                "tls_certificate_sds_secret_configs": [{"name": "default"}],
                "combined_validation_context": {
                    "default_validation_context": {
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"exact": s}} for s in peer_spiffe_ids
                        ]
                    },
                    "validation_context_sds_secret_config": {"name": "ROOTCA"},
                },
            },
            "sni": sni,
        },
    }


def cluster(name, endpoint, *, bind_ip, h2=False, tls=None, metadata=None, connect_timeout="10s", limits=None):
    """`limits`: Istio's translation of a DestinationRule connectionPool into circuit-breaker
    thresholds (tcp.maxConnections → max_connections, http.http1MaxPendingRequests →
    max_pending_requests, http.http2MaxRequests → max_requests); Istio's maximum otherwise."""
    ip, port = endpoint
    limits = limits or {}
    c = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": limits.get("max_connections", MAX),
                    "max_pending_requests": limits.get("max_pending_requests", MAX),
                    "max_requests": limits.get("max_requests", MAX),
                    "max_retries": MAX,
                    "track_remaining": True,
                }
            ]
        },
        "common_lb_config": {"locality_weighted_lb_config": {}},
        "upstream_bind_config": {"source_address": {"address": bind_ip, "port_value": 0}},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": addr(ip, port)}}]}],
        },
    }
    if h2:
        c["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 1073741824}},
            }
        }
    if tls is not None:
        c["transport_socket"] = tls
    if metadata:
        c["metadata"] = metadata
    return c


def tls_inspector():
    return {
        "name": "envoy.filters.listener.tls_inspector",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
        },
    }


def http_inspector():
    return {
        "name": "envoy.filters.listener.http_inspector",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
        },
    }


def listener(name, ip, port, filter_chains, listener_filters, *, traffic_direction):
    return {
        "name": name,
        "address": addr(ip, port),
        "filter_chains": filter_chains,
        "listener_filters": listener_filters,
        "listener_filters_timeout": "0s" if traffic_direction == "OUTBOUND" else "15s",
        "continue_on_listener_filters_timeout": traffic_direction == "OUTBOUND",
        "traffic_direction": traffic_direction,
        # Listener-level log: connections no filter chain accepts (`"- - -" 0 NR
        # filter_chain_not_found`), as istiod configures on every listener.
        "access_log": access_log(nr_only=True),
    }


def rbac_filter(action, policies):
    """Istio's translation of AuthorizationPolicies of one action into an RBAC filter."""
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": action, "policies": policies},
            "shadow_rules_stat_prefix": "istio_dry_run_allow_" if action == "ALLOW" else "istio_dry_run_deny_",
        },
    }


def local_ratelimit_filter(tokens, fill_seconds):
    """The local rate limit of Istio's documented EnvoyFilter recipe (SIDECAR_INBOUND)."""
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "http_local_rate_limiter",
            "token_bucket": {
                "max_tokens": tokens,
                "tokens_per_fill": tokens,
                "fill_interval": f"{fill_seconds}s",
            },
            "filter_enabled": {"runtime_key": "local_rate_limit_enabled", "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "filter_enforced": {"runtime_key": "local_rate_limit_enforced", "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "response_headers_to_add": [
                {"append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "header": {"key": "x-local-rate-limit", "value": "true"}}
            ],
        },
    }


def ext_authz_filter(cluster_name, uri):
    """Istio's ext_authz filter for a CUSTOM AuthorizationPolicy whose provider is an
    `envoyExtAuthzHttp` extension provider (MeshConfig), forwarding the Authorization header.
    An unreachable authorizer answers 403 (Envoy's default `status_on_error`)."""
    return {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "http_service": {
                "server_uri": {"uri": uri, "cluster": cluster_name, "timeout": "10s"},
                "authorization_request": {"allowed_headers": {"patterns": [{"exact": "authorization", "ignore_case": True}]}},
            },
            "transport_api_version": "V3",
        },
    }


def fault_filter():
    """Istio's HTTP fault filter: empty here, each route that injects a fault configures it."""
    return {
        "name": "envoy.filters.http.fault",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"},
    }


def fault_abort(status):
    """A route's fault injection as istiod writes a VirtualService `fault.abort` at 100 %."""
    return {
        "envoy.filters.http.fault": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "abort": {"http_status": status, "percentage": {"numerator": 1000000, "denominator": "MILLION"}},
        }
    }


def jwt_authn_filter(issuer, jwks_json):
    """Istio's jwt_authn filter for a RequestAuthentication with one JWT rule: istiod fetches the
    rule's `jwksUri` and inlines the keys; a request without a token passes (`allow_missing`),
    one whose token fails verification gets 401 `jwt_authn_access_denied{…}`."""
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                "origins-0": {
                    "issuer": issuer,
                    "local_jwks": {"inline_string": jwks_json},
                    "forward": True,
                    "payload_in_metadata": issuer,
                }
            },
            "rules": [
                {
                    "match": {"prefix": "/"},
                    "requires": {"requires_any": {"requirements": [{"provider_name": "origins-0"}, {"allow_missing": {}}]}},
                }
            ],
            "bypass_cors_preflight": True,
        },
    }


def ext_proc_filter(cluster_name):
    """Envoy's external processing filter calling an endpoint picker over gRPC, as a Gateway API
    Inference Extension gateway does before routing (fail closed: `failure_mode_allow: false`)."""
    return {
        "name": "envoy.filters.http.ext_proc",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            "grpc_service": {"envoy_grpc": {"cluster_name": cluster_name}, "timeout": "10s"},
            "failure_mode_allow": False,
            "processing_mode": {
                "request_header_mode": "SEND",
                "response_header_mode": "SKIP",
                "request_body_mode": "NONE",
                "response_body_mode": "NONE",
            },
            "message_timeout": "10s",
        },
    }


def bootstrap(*, node_id, cluster_name, metadata, admin_ip, listeners, clusters, secrets):
    return {
        "node": {"id": node_id, "cluster": cluster_name, "metadata": metadata},
        "admin": {"address": addr(admin_ip, 15000)},
        "static_resources": {"listeners": listeners, "clusters": clusters, "secrets": secrets},
        "layered_runtime": {
            "layers": [
                {
                    "name": "global config",
                    "static_layer": {"re2.max_program_size.error_level": 32768},
                },
                {"name": "admin", "admin_layer": {}},
            ]
        },
    }


def tls_secret(name, pem):
    return {
        "name": name,
        "tls_certificate": {
            "certificate_chain": {"inline_string": pem.cert},
            "private_key": {"inline_string": pem.key},
        },
    }


def root_secret(ca_pem):
    return {"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_string": ca_pem.cert}}}
