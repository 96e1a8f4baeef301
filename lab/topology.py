"""The lab's cluster: pods on loopback addresses, Services, and the three proxies' configuration.

KServe serverless path as on RHOAI / ODH:

  external client 127.0.0.2 (not a pod: the router / the user's machine)
    → ingress gateway 127.0.0.10:8443 (Gateway knative-ingress-gateway, TLS SIMPLE)
    → same pod 127.0.0.10:8081 (Gateway knative-local-gateway, ISTIO_MUTUAL), new x-request-id
    → activator sidecar inbound 127.0.0.20:8012 → activator app 127.0.0.20:18012
    → activator sidecar outbound 127.0.1.30:80 (Service test-predictor-00001-private)
    → predictor sidecar inbound 127.0.0.30:8012 → model app 127.0.0.30:18080
"""

import copy
from dataclasses import dataclass, field

import certs
import envoycfg as E

EXTERNAL_HOST = "test-aiproject.apps.lab.example.com"
APPS_DOMAIN = "apps.lab.example.com"
PREDICTOR_HOST = "test-predictor.aiproject.svc.cluster.local"
PUBLIC_SVC = "test-predictor-00001.aiproject.svc.cluster.local"
PRIVATE_SVC = "test-predictor-00001-private.aiproject.svc.cluster.local"
LOCAL_GW_SVC = "knative-local-gateway.istio-system.svc.cluster.local"
REVISION = "test-predictor-00001"

EXTERNAL_CLIENT_IP = "127.0.0.2"  # not a pod
UNKNOWN_CLIENT_IP = "127.0.0.99"  # no pod has it


@dataclass(frozen=True)
class Pod:
    key: str
    namespace: str
    name: str
    ip: str
    service_account: str
    sidecar: bool

    @property
    def ref(self):
        return f"{self.namespace}/{self.name}"


GATEWAY = Pod("gateway", "istio-system", "istio-ingressgateway-7c9d5f8b6-q2x7k", "127.0.0.10",
              "istio-ingressgateway-service-account", True)
ACTIVATOR = Pod("activator", "knative-serving", "activator-6f9c8d7b5-m4n8p", "127.0.0.20", "activator", True)
PREDICTOR = Pod("predictor", "aiproject", "test-predictor-00001-deployment-5d9f7c8b6-x7k2p", "127.0.0.30",
                "default", True)
CLIENT = Pod("client", "aiproject", "model-client-7b8c9d6f5-h3j9k", "127.0.0.50", "default", False)
AUTHZ = Pod("authz", "opendatahub-auth-provider", "authorino-6b8d9c7f4-t5v2n", "127.0.0.40", "authorino-authorino", False)

# Service ClusterIPs (only the private one is on the wire: the activator calls it).
SVC_IPS = {
    "istio-ingressgateway": "127.0.1.10",
    "knative-local-gateway": "127.0.1.11",
    "test-predictor-00001": "127.0.1.20",
    "test-predictor-00001-private": "127.0.1.30",
    "activator-service": "127.0.1.40",
}
PRIVATE_IP = SVC_IPS["test-predictor-00001-private"]
# The endpoint picker's Service (scenario inference-epp-unreachable): nothing listens there.
EPP_SVC = "test-epp.aiproject.svc.cluster.local"
EPP_IP = "127.0.1.50"
EPP_PORT = 9002
CL_EPP = f"outbound|{EPP_PORT}||{EPP_SVC}"

# The external authorizer of a CUSTOM AuthorizationPolicy (scenarios ext-authz-*): Authorino as
# Open Data Hub installs it, asked over its raw HTTP authorization port.
AUTHZ_PROVIDER = "opendatahub-auth-provider"
AUTHZ_SVC = "authorino-authorino-authorization.opendatahub-auth-provider.svc.cluster.local"
AUTHZ_SVC_IP = "127.0.1.60"
AUTHZ_PORT = 5001
CL_AUTHZ = f"outbound|{AUTHZ_PORT}||{AUTHZ_SVC}"
# The token the healthy requests carry (a lab value, never a real credential).
AUTHZ_TOKEN = "lab-token-not-a-secret"

ACTIVATOR_APP_PORT = 18012
MODEL_APP_PORT = 18080

# Listener addresses (what %DOWNSTREAM_LOCAL_ADDRESS% shows).
L_8443 = f"{GATEWAY.ip}:8443"
L_8081 = f"{GATEWAY.ip}:8081"
# The identity provider of the RequestAuthentication scenarios (Keycloak, as Open Data Hub docs use).
JWT_ISSUER = "https://keycloak.lab.example.com/realms/ai"
JWT_JWKS_URI = f"{JWT_ISSUER}/protocol/openid-connect/certs"
L_ACT_IN = f"{ACTIVATOR.ip}:8012"
L_ACT_OUT = f"{PRIVATE_IP}:80"
L_PRED_IN = f"{PREDICTOR.ip}:8012"

# The SNI each mesh hop uses (Istio: outbound_.<port>_.<subset>_.<host>).
SNI_LOCAL_GW = f"outbound_.80_._.{LOCAL_GW_SVC}"
SNI_PUBLIC = f"outbound_.80_._.{PUBLIC_SVC}"
SNI_PRIVATE = f"outbound_.80_._.{PRIVATE_SVC}"

CL_LOCAL_GW = f"outbound|80||{LOCAL_GW_SVC}"
CL_PUBLIC = f"outbound|80||{PUBLIC_SVC}"
CL_PRIVATE = f"outbound|80||{PRIVATE_SVC}"
CL_INBOUND = "inbound|8012||"

RT_8443 = "https.443.https.knative-ingress-gateway.knative-serving"
RT_8081 = "https.8081.https.knative-local-gateway.knative-serving"


def identities():
    return {p.key: (p.namespace, p.service_account) for p in (GATEWAY, ACTIVATOR, PREDICTOR)}


@dataclass
class Knobs:
    """What a scenario changes in the cluster. Every field is mirrored in the bundle's resources."""

    route_timeout_s: float = 0  # VirtualService `test` timeout (0 = Istio's default, none)
    activator_tls: str = "ISTIO_MUTUAL"  # DestinationRule tls.mode activator → private Service
    predictor_sidecar: bool = True
    predictor_cert: str = "mesh"  # or "untrusted"
    rbac: str = ""  # "", "allow-infer" (ALLOW), "deny-delete" (DENY)
    ratelimit_tokens: int = 0  # local rate limit on the predictor's inbound (0 = none)
    stale_vs_host: str = ""  # external host of a VirtualService whose Knative route is gone
    activator_503: bool = False  # the activator answers 503 itself (after the healthy requests)
    model_down: bool = False  # the model container stops (after the healthy requests)
    model_oom: bool = False  # the model process is killed mid-request (after the healthy requests)
    epp_unreachable: bool = False  # gateway 8443 calls an endpoint picker (ext_proc) nobody serves
    ext_authz: str = ""  # CUSTOM policy on the predictor: "", "deny" (the authorizer answers), "unreachable"
    pool_limit: int = 0  # DestinationRule connectionPool on the private Service: 1 connection, 1 pending (0 = none)
    jwt_issuer: str = ""  # RequestAuthentication on the predictor: tokens of this issuer are verified (jwt_authn)
    fault_abort: int = 0  # VirtualService test-chaos aborts requests marked `x-chaos: abort` with this status
    canary_subset: str = ""  # VirtualService test-canary sends `x-canary: true` to this subset, which no DestinationRule defines
    extra: dict = field(default_factory=dict)


def _node(pod, kind):
    return {
        "id": f"{kind}~{pod.ip}~{pod.name}.{pod.namespace}~{pod.namespace}.svc.cluster.local",
        "cluster": f"{pod.name.rsplit('-', 2)[0]}.{pod.namespace}",
        "metadata": {
            "NAME": pod.name,
            "NAMESPACE": pod.namespace,
            "INSTANCE_IPS": pod.ip,
            "SERVICE_ACCOUNT": pod.service_account,
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "LAB": "meshtrace lab: static bootstrap written by lab/run.py, upstream Envoy 1.40 (no istiod)",
        },
    }


def _secrets(pod_cert, root, extra=()):
    return [E.tls_secret("default", pod_cert), E.root_secret(root), *extra]


def _vs_meta(ns, name):
    return E.istio_metadata(f"/apis/networking.istio.io/v1alpha3/namespaces/{ns}/virtual-service/{name}")


def _dr_meta(ns, name, host, svc, svc_ns):
    return E.istio_metadata(
        f"/apis/networking.istio.io/v1alpha3/namespaces/{ns}/destination-rule/{name}",
        [{"host": host, "name": svc, "namespace": svc_ns}],
    )


def gateway_bootstrap(k: Knobs, pki):
    gw = GATEWAY
    # 8443: Gateway knative-ingress-gateway (HTTPS 443, SIMPLE), VirtualService aiproject/test.
    route_8443 = {
        "match": {
            "prefix": "/",
            "case_sensitive": True,
            "headers": [
                {
                    "name": ":authority",
                    "string_match": {"safe_regex": {"regex": r"^test-aiproject\.apps\.lab\.example\.com(?::\d{1,5})?$"}},
                }
            ],
        },
        "route": {
            "cluster": CL_LOCAL_GW,
            "timeout": f"{k.route_timeout_s:g}s",
            "retry_policy": E.istio_retry_policy(),
            "host_rewrite_literal": PREDICTOR_HOST,
        },
        "metadata": _vs_meta("aiproject", "test"),
        "decorator": {"operation": f"{LOCAL_GW_SVC}:80/*"},
        "request_headers_to_add": [
            {"header": {"key": "KServe-Isvc-Name", "value": "test"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {"header": {"key": "KServe-Isvc-Namespace", "value": "aiproject"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
        ],
    }
    routes_8443 = [route_8443]
    if k.canary_subset:
        # VirtualService aiproject/test-canary, first in the virtual host as Istio orders a
        # route with more matches: requests marked `x-canary: true` go to the subset's cluster,
        # which Istio never built (no DestinationRule defines the subset).
        canary = copy.deepcopy(route_8443)
        canary["match"]["headers"].append({"name": "x-canary", "string_match": {"exact": "true"}})
        canary["route"] = {
            "cluster": f"outbound|80|{k.canary_subset}|{PREDICTOR_HOST}",
            "timeout": "0s",
            "retry_policy": E.istio_retry_policy(),
        }
        canary["metadata"] = _vs_meta("aiproject", "test-canary")
        canary["decorator"] = {"operation": f"{PREDICTOR_HOST}:80/*"}
        canary.pop("request_headers_to_add", None)
        routes_8443.insert(0, canary)
    if k.fault_abort:
        # VirtualService aiproject/test-chaos: a chaos test left in place, aborting the
        # requests it matches before they are routed.
        chaos = copy.deepcopy(route_8443)
        chaos["match"]["headers"].append({"name": "x-chaos", "string_match": {"exact": "abort"}})
        chaos["metadata"] = _vs_meta("aiproject", "test-chaos")
        chaos["typed_per_filter_config"] = E.fault_abort(k.fault_abort)
        routes_8443.insert(0, chaos)
    vhosts_8443 = [
        {
            "name": f"{EXTERNAL_HOST}:443",
            "domains": [EXTERNAL_HOST],
            "routes": routes_8443,
            "include_request_attempt_count": True,
        }
    ]
    if k.stale_vs_host:
        stale_pred = k.stale_vs_host.split(".", 1)[0].replace("-aiproject", "-predictor") + ".aiproject.svc.cluster.local"
        vhosts_8443.append(
            {
                "name": f"{k.stale_vs_host}:443",
                "domains": [k.stale_vs_host],
                "routes": [
                    {
                        "match": {"prefix": "/", "case_sensitive": True},
                        "route": {
                            "cluster": CL_LOCAL_GW,
                            "timeout": "0s",
                            "retry_policy": E.istio_retry_policy(),
                            "host_rewrite_literal": stale_pred,
                        },
                        "metadata": _vs_meta("aiproject", k.stale_vs_host.split("-aiproject", 1)[0]),
                        "decorator": {"operation": f"{LOCAL_GW_SVC}:80/*"},
                    }
                ],
                "include_request_attempt_count": True,
            }
        )
    hcm_8443 = E.hcm(
        "outbound_0.0.0.0_8443",
        {
            "name": RT_8443,
            "virtual_hosts": vhosts_8443,
            "validate_clusters": False,
            "ignore_port_in_host_matching": True,
        },
        gateway=True,
        inbound=False,
        # Not an Istio default: keeps the lab client's x-request-id so the test can name the
        # request (a real client such as curl sends none and the gateway makes one up).
        preserve_external_request_id=True,
        http_filters=[
            *([E.fault_filter()] if k.fault_abort else []),
            *([E.ext_proc_filter(CL_EPP)] if k.epp_unreachable else []),
        ],
    )
    l8443 = E.listener(
        "0.0.0.0_8443",
        gw.ip,
        8443,
        [
            {
                "filter_chain_match": {"server_names": [f"*.{APPS_DOMAIN}"]},
                "transport_socket": E.downstream_tls("kubernetes://ingress-certs-lab", mtls=False),
                "filters": [hcm_8443],
            }
        ],
        [E.tls_inspector()],
        traffic_direction="OUTBOUND",
    )
    # 8081: Gateway knative-local-gateway (HTTPS 8081, ISTIO_MUTUAL), VirtualService
    # aiproject/test-predictor-ingress (Knative's).
    route_8081 = {
        "match": {
            "prefix": "/",
            "case_sensitive": True,
            "headers": [{"name": ":authority", "string_match": {"prefix": "test-predictor.aiproject"}}],
        },
        "route": {
            "cluster": CL_PUBLIC,
            "timeout": "0s",
            "retry_policy": E.istio_retry_policy(),
        },
        "metadata": _vs_meta("aiproject", "test-predictor-ingress"),
        "decorator": {"operation": f"{PUBLIC_SVC}:80/*"},
        "request_headers_to_add": [
            {"header": {"key": "Knative-Serving-Namespace", "value": "aiproject"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {"header": {"key": "Knative-Serving-Revision", "value": REVISION}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
        ],
    }
    hcm_8081 = E.hcm(
        "outbound_0.0.0.0_8081",
        {
            "name": RT_8081,
            "virtual_hosts": [
                {
                    "name": f"{PREDICTOR_HOST}:8081",
                    "domains": [PREDICTOR_HOST, "test-predictor.aiproject.svc", "test-predictor.aiproject"],
                    "routes": [route_8081],
                    "include_request_attempt_count": True,
                }
            ],
            "validate_clusters": False,
            "ignore_port_in_host_matching": True,
        },
        gateway=True,
        inbound=False,
    )
    l8081 = E.listener(
        "0.0.0.0_8081",
        gw.ip,
        8081,
        [
            {
                # ISTIO_MUTUAL server: TLS only, so a plaintext client finds no filter chain.
                "filter_chain_match": {"transport_protocol": "tls"},
                "transport_socket": E.downstream_tls("default", mtls=True),
                "filters": [hcm_8081],
            }
        ],
        [E.tls_inspector()],
        traffic_direction="OUTBOUND",
    )
    clusters = [
        E.cluster(
            CL_LOCAL_GW,
            (gw.ip, 8081),
            bind_ip=gw.ip,
            h2=True,  # Service port `http2`
            tls=E.upstream_istio_mutual(SNI_LOCAL_GW, [certs.spiffe(gw.namespace, gw.service_account)], h2=True),
            metadata=_dr_meta("istio-system", "default", LOCAL_GW_SVC, "knative-local-gateway", "istio-system"),
        ),
        E.cluster(
            CL_PUBLIC,
            (ACTIVATOR.ip, 8012),  # revision in proxy mode: the public Service's endpoints are the activator
            bind_ip=gw.ip,
            tls=E.upstream_istio_mutual(
                SNI_PUBLIC, [certs.spiffe(ACTIVATOR.namespace, ACTIVATOR.service_account)], h2=False
            ),
            metadata=_dr_meta("istio-system", "default", PUBLIC_SVC, "test-predictor-00001", "aiproject"),
        ),
    ]
    if k.epp_unreachable:
        # The endpoint picker's Service (gRPC, port 9002 as in the Gateway API Inference
        # Extension's charts): its ClusterIP has no listener, so every connect is refused.
        clusters.append(
            E.cluster(CL_EPP, (EPP_IP, EPP_PORT), bind_ip=gw.ip, h2=True, connect_timeout="2s")
        )
    return E.bootstrap(
        node_id=_node(gw, "router")["id"],
        cluster_name="istio-ingressgateway.istio-system",
        metadata=_node(gw, "router")["metadata"],
        admin_ip=gw.ip,
        listeners=[l8443, l8081],
        clusters=clusters,
        secrets=_secrets(
            pki.workload["gateway"], pki.root, [E.tls_secret("kubernetes://ingress-certs-lab", pki.gateway_server)]
        ),
    )


def _inbound_listener(pod, http_filters, permissive=False):
    route_config = {
        "name": CL_INBOUND,
        "virtual_hosts": [
            {
                "name": "inbound|http|8012",
                "domains": ["*"],
                "routes": [
                    {
                        "name": "default",
                        "match": {"prefix": "/"},
                        "route": {"cluster": CL_INBOUND, "timeout": "0s"},
                        "decorator": {"operation": f"{pod.name}.{pod.namespace}.svc.cluster.local:8012/*"},
                    }
                ],
            }
        ],
        "validate_clusters": False,
    }
    chains = [
        {
            "name": "0.0.0.0_8012",
            "filter_chain_match": {
                "destination_port": 8012,
                "transport_protocol": "tls",
                "application_protocols": ["istio-http/1.0", "istio-http/1.1", "istio-h2"],
            },
            "transport_socket": E.downstream_tls("default", mtls=True),
            "filters": [E.hcm("inbound_0.0.0.0_8012", route_config, gateway=False, inbound=True, http_filters=http_filters)],
        }
    ]
    if permissive:
        chains.append(
            {
                "name": "0.0.0.0_8012",
                "filter_chain_match": {"destination_port": 8012, "transport_protocol": "raw_buffer"},
                "filters": [E.hcm("inbound_0.0.0.0_8012", route_config, gateway=False, inbound=True, http_filters=http_filters)],
            }
        )
    # Istio's virtualInbound listens on 15006 and gets the connections by iptables; the lab binds
    # the pod's port itself, so %DOWNSTREAM_LOCAL_ADDRESS% is the same pod-ip:8012 as in a cluster.
    return E.listener(
        "virtualInbound", pod.ip, 8012, chains, [E.tls_inspector(), E.http_inspector()], traffic_direction="INBOUND"
    )



def activator_bootstrap(k: Knobs, pki):
    a = ACTIVATOR
    inbound = _inbound_listener(a, [])
    outbound_rc = {
        "name": "80",
        "virtual_hosts": [
            {
                "name": f"{PRIVATE_SVC}:80",
                "domains": [
                    PRIVATE_SVC,
                    "test-predictor-00001-private.aiproject.svc",
                    "test-predictor-00001-private.aiproject",
                    "test-predictor-00001-private",
                    PRIVATE_IP,
                    f"{PRIVATE_SVC}:80",
                    f"{PRIVATE_IP}:80",
                ],
                "routes": [
                    {
                        "name": "default",
                        "match": {"prefix": "/"},
                        "route": {
                            "cluster": CL_PRIVATE,
                            "timeout": "0s",
                            "retry_policy": E.istio_retry_policy(),
                        },
                        "decorator": {"operation": f"{PRIVATE_SVC}:80/*"},
                    }
                ],
                "include_request_attempt_count": True,
            }
        ],
        "validate_clusters": False,
    }
    outbound = E.listener(
        "0.0.0.0_80",
        PRIVATE_IP,
        80,
        [
            {
                "name": "0.0.0.0_80",
                "filter_chain_match": {"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]},
                "filters": [E.hcm("outbound_0.0.0.0_80", outbound_rc, gateway=False, inbound=False)],
            }
        ],
        [E.tls_inspector(), E.http_inspector()],
        traffic_direction="OUTBOUND",
    )
    if k.activator_tls == "ISTIO_MUTUAL":
        tls = E.upstream_istio_mutual(SNI_PRIVATE, [certs.spiffe(PREDICTOR.namespace, PREDICTOR.service_account)], h2=False)
        dr_ns, dr_name = ("aiproject", "test-predictor-00001-private") if k.pool_limit else ("istio-system", "default")
        dr = _dr_meta(dr_ns, dr_name, PRIVATE_SVC, "test-predictor-00001-private", "aiproject")
    else:
        tls = None
        dr = _dr_meta("aiproject", "test-predictor-00001-private", PRIVATE_SVC, "test-predictor-00001-private", "aiproject")
    clusters = [
        _inbound_cluster_for(a, ACTIVATOR_APP_PORT),
        E.cluster(
            CL_PRIVATE,
            (PREDICTOR.ip, 8012),
            bind_ip=a.ip,
            tls=tls,
            metadata=dr,
            limits={"max_connections": k.pool_limit, "max_pending_requests": k.pool_limit, "max_requests": k.pool_limit}
            if k.pool_limit
            else None,
        ),
    ]
    return E.bootstrap(
        node_id=_node(a, "sidecar")["id"],
        cluster_name="activator.knative-serving",
        metadata=_node(a, "sidecar")["metadata"],
        admin_ip=a.ip,
        listeners=[inbound, outbound],
        clusters=clusters,
        secrets=_secrets(pki.workload["activator"], pki.root),
    )


def _inbound_cluster_for(pod, app_port):
    # The application listens on the pod IP (a separate loopback port stands in for the pod's
    # port behind iptables); the sidecar connects from 127.0.0.6 as Istio's inbound does.
    return E.cluster(CL_INBOUND, (pod.ip, app_port), bind_ip=E.INBOUND_PASSTHROUGH_IP)


RBAC_ALLOW_POLICY = "ns[aiproject]-policy[allow-infer]-rule[0]"
RBAC_DENY_POLICY = "ns[aiproject]-policy[deny-delete]-rule[0]"


def predictor_http_filters(k: Knobs, pki):
    filters = []
    if k.jwt_issuer:
        # Istio's authn filters come before the authorization ones.
        filters.append(E.jwt_authn_filter(k.jwt_issuer, pki.jwks))
    if k.ext_authz:
        # Istio puts a CUSTOM policy's ext_authz filter before the DENY and ALLOW RBAC filters.
        filters.append(E.ext_authz_filter(CL_AUTHZ, f"http://{AUTHZ_SVC}:{AUTHZ_PORT}"))
    if k.rbac == "deny-delete":
        filters.append(
            E.rbac_filter(
                "DENY",
                {
                    RBAC_DENY_POLICY: {
                        "permissions": [
                            {"and_rules": {"rules": [{"or_rules": {"rules": [{"header": {"name": ":method", "string_match": {"exact": "DELETE"}}}]}}]}}
                        ],
                        "principals": [{"and_ids": {"ids": [{"any": True}]}}],
                    }
                },
            )
        )
    if k.rbac == "allow-infer":
        filters.append(
            E.rbac_filter(
                "ALLOW",
                {
                    RBAC_ALLOW_POLICY: {
                        "permissions": [
                            {
                                "and_rules": {
                                    "rules": [
                                        {"or_rules": {"rules": [{"header": {"name": ":method", "string_match": {"exact": "POST"}}}]}},
                                        {"or_rules": {"rules": [{"url_path": {"path": {"exact": "/v2/models/test/infer"}}}]}},
                                    ]
                                }
                            }
                        ],
                        "principals": [
                            {
                                "and_ids": {
                                    "ids": [
                                        {
                                            "or_ids": {
                                                "ids": [
                                                    {
                                                        "authenticated": {
                                                            "principal_name": {
                                                                "exact": certs.spiffe(ACTIVATOR.namespace, ACTIVATOR.service_account)
                                                            }
                                                        }
                                                    }
                                                ]
                                            }
                                        }
                                    ]
                                }
                            }
                        ],
                    }
                },
            )
        )
    if k.ratelimit_tokens:
        filters.append(E.local_ratelimit_filter(k.ratelimit_tokens, 60))
    return filters


def predictor_bootstrap(k: Knobs, pki):
    p = PREDICTOR
    inbound = _inbound_listener(p, predictor_http_filters(k, pki))
    cert = pki.workload["predictor"] if k.predictor_cert == "mesh" else pki.predictor_untrusted
    return E.bootstrap(
        node_id=_node(p, "sidecar")["id"],
        cluster_name="test-predictor-00001.aiproject",
        metadata=_node(p, "sidecar")["metadata"],
        admin_ip=p.ip,
        listeners=[inbound],
        clusters=[_inbound_cluster_for(p, MODEL_APP_PORT)]
        + ([E.cluster(CL_AUTHZ, (AUTHZ.ip, AUTHZ_PORT), bind_ip=p.ip)] if k.ext_authz else []),
        secrets=_secrets(cert, pki.root),
    )
