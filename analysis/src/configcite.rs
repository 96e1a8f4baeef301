//! Pure: the Envoy configuration behind a verdict, from the origin hop's config dump — the route
//! configuration and virtual hosts an `NR` missed, the listener/filter chain that refuses
//! plaintext, the upstream TLS mode of the cluster behind a `UF`, and where the observed hop
//! diverged from the route the config predicts.

use meshtrace_parsers::Slot;
use meshtrace_parsers::configdump::{ConfigDump, Listener, RouteSource, TlsMode};
use meshtrace_parsers::record::RawRecord;

use crate::causes::Cause;
use crate::model::PodDump;
use crate::objects::Cited;
use crate::routesim::{Outcome, Request, simulate};

fn cited(kind: &str, d: &PodDump, what: &str, why: String) -> Cited {
    Cited {
        object: format!("{kind}/{}/{}:{what}", d.namespace, d.pod),
        why,
    }
}

/// The request of an access-log record, as the proxy saw it.
fn request_of(r: &RawRecord<'_>) -> Option<Request> {
    let port = r.downstream_local().and_then(|a| a.port()).map(u32::from)?;
    Some(Request {
        host: r.value(Slot::Authority).unwrap_or("").to_string(),
        path: r.value(Slot::Path).unwrap_or("/").to_string(),
        method: r.value(Slot::Method).unwrap_or("GET").to_string(),
        headers: Vec::new(),
        port: Some(port),
        sni: r
            .value(Slot::RequestedServerName)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        tls: None,
    })
}

/// Chains of `l` serving `port` and whether each accepts plaintext.
fn plaintext_refused(l: &Listener, port: u32) -> Option<String> {
    let chains: Vec<_> = l
        .filter_chains
        .iter()
        .filter(|c| !c.is_default)
        .filter(|c| c.chain_match.destination_port.is_none_or(|p| p == port))
        .collect();
    if chains.is_empty() {
        return None;
    }
    let plain = chains
        .iter()
        .any(|c| c.tls.is_none() && c.chain_match.transport_protocol.as_deref() != Some("tls"));
    if plain {
        return None;
    }
    let modes: Vec<String> = chains
        .iter()
        .map(|c| {
            format!(
                "{} ({}{})",
                c.name.as_deref().unwrap_or("unnamed chain"),
                c.tls
                    .as_ref()
                    .map(|t| t.mode)
                    .unwrap_or(TlsMode::None)
                    .as_str(),
                c.tls
                    .as_ref()
                    .filter(|t| t.require_client_certificate)
                    .map(|_| ", client certificate required")
                    .unwrap_or("")
            )
        })
        .collect();
    Some(format!(
        "every filter chain for port {port} terminates TLS: {}; a plaintext connection matches no chain and is closed",
        modes.join(", ")
    ))
}

fn listener_for(d: &ConfigDump, port: u32) -> Option<&Listener> {
    d.listeners
        .iter()
        .find(|l| l.port() == Some(port))
        .or_else(|| {
            d.listeners.iter().find(|l| {
                l.traffic_direction.as_deref() == Some("INBOUND")
                    && l.filter_chains
                        .iter()
                        .any(|c| c.chain_match.destination_port == Some(port))
            })
        })
}

/// Config-dump citations for the origin hop. `origin_pod` is `namespace/pod`.
pub fn cite_config(
    dumps: &[PodDump],
    origin_pod: Option<&str>,
    origin: &RawRecord<'_>,
    cause: Cause,
) -> Vec<Cited> {
    let mut out = Vec::new();
    let Some((ns, pod)) = origin_pod.and_then(|p| p.split_once('/')) else {
        return out;
    };
    let Some(d) = dumps.iter().find(|d| d.namespace == ns && d.pod == pod) else {
        return out;
    };
    let req = request_of(origin);
    match cause {
        Cause::RouteNotFound => out.extend(req.as_ref().and_then(|req| missed_route(d, req))),
        Cause::DirectResponse => out.extend(req.as_ref().and_then(|req| direct_route(d, req))),
        Cause::PlaintextToMtls | Cause::MissingSidecar | Cause::MtlsMismatch => {
            out.extend(refusing_listener(d, req.as_ref()));
        }
        _ => {}
    }
    if matches!(
        cause,
        Cause::UpstreamConnectFailure
            | Cause::UpstreamReset
            | Cause::TlsError
            | Cause::MtlsMismatch
            | Cause::MissingSidecar
    ) {
        out.extend(upstream_tls(d, origin));
    }
    if cause == Cause::CircuitBreaker {
        out.extend(circuit_breakers(d, origin));
    }
    if cause != Cause::Ok
        && let Some(req) = &req
    {
        out.extend(left_predicted_route(d, origin, req));
    }
    if cause == Cause::RouteNotFound && out.is_empty() {
        out.extend(missing_route_configs(d, req.as_ref()));
    }
    out
}

/// `namespace/pod` of a dump.
fn pod_of(d: &PodDump) -> String {
    format!("{}/{}", d.namespace, d.pod)
}

/// The route configuration an `NR` missed: no virtual host for the Host, or no route in it.
fn missed_route(d: &PodDump, req: &Request) -> Option<Cited> {
    let h = simulate(&d.dump, &pod_of(d), req);
    if !matches!(h.outcome, Outcome::NoVirtualHost | Outcome::NoRoute) {
        return None;
    }
    let rc = h.route_config.clone().unwrap_or_default();
    let tried: Vec<String> = h
        .candidates
        .iter()
        .take(5)
        .map(|c| format!("{}: {}", c.name, c.why))
        .collect();
    let what = if h.outcome == Outcome::NoVirtualHost {
        format!("no virtual host matches Host {:?}", req.host)
    } else {
        format!(
            "virtual host {} has no route for {} {}",
            h.virtual_host.as_deref().unwrap_or("?"),
            req.method,
            req.path
        )
    };
    Some(cited(
        "RouteConfiguration",
        d,
        &rc,
        format!(
            "on listener {}: {what}; tried {}",
            h.listener.as_deref().unwrap_or("?"),
            tried.join("; ")
        ),
    ))
}

/// The route that answered by itself, as the proxy's routes match the request.
fn direct_route(d: &PodDump, req: &Request) -> Option<Cited> {
    let h = simulate(&d.dump, &pod_of(d), req);
    let Outcome::DirectResponse { status } = h.outcome else {
        return None;
    };
    let rc = h.route_config.clone().unwrap_or_default();
    Some(cited(
        "RouteConfiguration",
        d,
        &rc,
        format!(
            "on listener {}: virtual host {}, route {} answers {status} by itself (direct_response) for {} {}{}{}",
            h.listener.as_deref().unwrap_or("?"),
            h.virtual_host.as_deref().unwrap_or("?"),
            h.route.as_deref().unwrap_or("(unnamed)"),
            req.method,
            req.host,
            req.path,
            h.virtual_service
                .as_deref()
                .map(|v| format!("; the route comes from {v}"))
                .unwrap_or_default()
        ),
    ))
}

/// The listener whose filter chains all terminate TLS, refusing a plaintext connection.
fn refusing_listener(d: &PodDump, req: Option<&Request>) -> Option<Cited> {
    let port = req.and_then(|r| r.port)?;
    let l = listener_for(&d.dump, port)?;
    let why = plaintext_refused(l, port)?;
    Some(cited("Listener", d, &l.name, why))
}

/// The circuit-breaker thresholds of the cluster that overflowed, as the proxy held them.
fn circuit_breakers(d: &PodDump, origin: &RawRecord<'_>) -> Option<Cited> {
    let name = origin.value(Slot::UpstreamCluster)?;
    let c = d.dump.cluster(name.trim_end_matches(';'))?;
    let cb = c.circuit_breakers.as_ref()?;
    // Istio writes 4294967295 (2^32 - 1) where no connectionPool limit is set.
    let show = |v: Option<u64>| match v {
        Some(n) if n >= u64::from(u32::MAX) => "unlimited".to_string(),
        Some(n) => n.to_string(),
        None => "Envoy's default".to_string(),
    };
    Some(cited(
        "Cluster",
        d,
        &c.name,
        format!(
            "circuit breakers: max_connections {}, max_pending_requests {}, max_requests {}, max_retries {}",
            show(cb.max_connections),
            show(cb.max_pending_requests),
            show(cb.max_requests),
            show(cb.max_retries)
        ),
    ))
}

/// The upstream TLS of the cluster the origin hop logged, and the DestinationRule setting it.
fn upstream_tls(d: &PodDump, origin: &RawRecord<'_>) -> Option<Cited> {
    let name = origin.value(Slot::UpstreamCluster)?;
    let c = d.dump.cluster(name.trim_end_matches(';'))?;
    // An inbound cluster leads to the application beside the sidecar, in plaintext by design:
    // its TLS says nothing about the failure.
    if c.tls_mode() == TlsMode::None
        && meshtrace_parsers::cluster::parse_cluster_name(&c.name).is_some_and(|n| n.is_inbound())
    {
        return None;
    }
    let tls = c
        .upstream_tls
        .as_ref()
        .map(|t| t.describe())
        .unwrap_or_else(|| "NONE (plaintext)".into());
    let dr = c
        .istio_config
        .as_deref()
        .and_then(meshtrace_parsers::configdump::istio_config_ref)
        .map(|(_, n, x)| format!(", set by DestinationRule {n}/{x}"))
        .unwrap_or_default();
    let hint = match c.tls_mode() {
        TlsMode::IstioMutual => {
            "; the destination must answer with an Istio workload certificate (a sidecar)"
        }
        TlsMode::None => "; a destination that requires mTLS resets this connection",
        _ => "",
    };
    Some(cited(
        "Cluster",
        d,
        &c.name,
        format!("upstream TLS {tls}{dr}{hint}"),
    ))
}

/// Where the observed hop left the predicted route.
fn left_predicted_route(d: &PodDump, origin: &RawRecord<'_>, req: &Request) -> Option<Cited> {
    if req.host.is_empty() {
        return None;
    }
    let observed = origin.value(Slot::UpstreamCluster)?;
    let h = simulate(&d.dump, &pod_of(d), req);
    let Outcome::Cluster { name } = &h.outcome else {
        return None;
    };
    if name.trim_end_matches(';') == observed.trim_end_matches(';')
        || h.clusters.iter().any(|(c, _)| c == observed)
    {
        return None;
    }
    Some(cited(
        "Route",
        d,
        h.route.as_deref().unwrap_or("?"),
        format!(
            "the config predicts {name} for Host {:?} on {}, but the proxy logged {observed}: the config changed or the dump is from another time",
            req.host,
            h.listener.as_deref().unwrap_or("?")
        ),
    ))
}

/// The RDS names the listener refers to that the dump does not have.
fn missing_route_configs(d: &PodDump, req: Option<&Request>) -> Vec<Cited> {
    let dump = &d.dump;
    let Some(port) = req.and_then(|r| r.port) else {
        return Vec::new();
    };
    let Some(l) = listener_for(dump, port) else {
        return Vec::new();
    };
    l.filter_chains
        .iter()
        .filter_map(|c| match c.http.as_ref().map(|h| &h.routes) {
            Some(RouteSource::Rds(n)) if dump.route_config(n).is_none() => Some(cited(
                "Listener",
                d,
                &l.name,
                format!("its route configuration {n} is not in the dump (RDS not received)"),
            )),
            _ => None,
        })
        .collect()
}

/// The access-log format of a pod's `istio-proxy` logs, read from its config dump: the one TEXT
/// format its listeners use, when it is not one of the built-ins (those are detected per line).
pub fn log_format_of(
    dumps: &[PodDump],
    namespace: &str,
    pod: &str,
    container: &str,
) -> Option<meshtrace_parsers::FormatSpec> {
    if container != "istio-proxy" {
        return None;
    }
    let d = dumps
        .iter()
        .find(|d| d.namespace == namespace && d.pod == pod)?;
    let mut texts: Vec<&str> = d
        .dump
        .access_logs()
        .into_iter()
        .filter_map(|(_, a)| match &a.format {
            meshtrace_parsers::configdump::LogFormat::Text(t) => Some(t.trim_end()),
            _ => None,
        })
        .collect();
    texts.sort_unstable();
    texts.dedup();
    let [text] = texts.as_slice() else {
        return None;
    };
    if meshtrace_parsers::builtins::BUILTIN_TEXT
        .iter()
        .any(|b| b.format.trim_end() == *text)
    {
        return None;
    }
    meshtrace_parsers::FormatSpec::parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrace_parsers::{LineOutcome, LineParser};

    /// The example bundle's dumps, compiled in (this crate reads no files).
    const DUMPS: &[(&str, &str, &str)] = &[
        (
            "istio-system",
            "istio-ingressgateway-64694db8d5-zmcc7",
            include_str!(
                "../../testdata/bundles/rhoai-400-app-error/config_dump/istio-system/istio-ingressgateway-64694db8d5-zmcc7.json"
            ),
        ),
        (
            "knative-serving",
            "activator-5b7c9f8d6-h2xqp",
            include_str!(
                "../../testdata/bundles/rhoai-400-app-error/config_dump/knative-serving/activator-5b7c9f8d6-h2xqp.json"
            ),
        ),
        (
            "aiproject",
            "test-predictor-00001-deployment-bfc57c85b-ns2vj",
            include_str!(
                "../../testdata/bundles/rhoai-400-app-error/config_dump/aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj.json"
            ),
        ),
    ];

    fn pod_dump(ns: &str, pod: &str) -> PodDump {
        let text = DUMPS
            .iter()
            .find(|(n, p, _)| *n == ns && *p == pod)
            .map(|(_, _, t)| *t)
            .expect("a dump of the example bundle");
        PodDump {
            namespace: ns.into(),
            pod: pod.into(),
            path: format!("config_dump/{ns}/{pod}.json"),
            dump: ConfigDump::parse(text).unwrap(),
        }
    }

    fn rec(l: &str) -> RawRecord<'static> {
        match LineParser::auto().parse(l) {
            LineOutcome::Record(r) => r.into_owned(),
            other => panic!("{other:?}: {l}"),
        }
    }

    const GW: &str = "istio-ingressgateway-64694db8d5-zmcc7";
    const PRED: &str = "test-predictor-00001-deployment-bfc57c85b-ns2vj";

    #[test]
    fn route_not_found_cites_the_virtual_hosts_tried() {
        let d = [pod_dump("istio-system", GW)];
        let r = rec(
            "[2024-06-03T09:12:31.402Z] \"GET / HTTP/2\" 404 NR route_not_found - \"-\" 0 0 0 - \"10.134.0.2\" \"curl/8.6.0\" \"id1\" \"nope.apps.mycluster.example.com\" \"-\" - - 10.135.0.43:8443 10.134.0.2:56558 nope.apps.mycluster.example.com -",
        );
        let c = cite_config(
            &d,
            Some(&format!("istio-system/{GW}")),
            &r,
            Cause::RouteNotFound,
        );
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            c[0].object
                .ends_with(":https.443.https.knative-ingress-gateway.knative-serving"),
            "{c:?}"
        );
        assert!(c[0].why.contains("no virtual host matches Host"), "{c:?}");
        assert!(
            c[0].why
                .contains("test-aiproject.apps.mycluster.example.com:443"),
            "{c:?}"
        );
    }

    #[test]
    fn a_direct_response_cites_the_route_that_answered() {
        // Real Envoy 1.40's dump and line (scripts/envoy-formats): a static listener whose
        // route answers 404 for /v1/models/missing.
        let d = [PodDump {
            namespace: "default".into(),
            pod: "model".into(),
            path: "config_dump/default/model.json".into(),
            dump: ConfigDump::parse(include_str!(
                "../../testdata/explain/envoy-custom-formats.config_dump.json"
            ))
            .unwrap(),
        }];
        let log = include_str!("../../testdata/explain/envoy-custom-formats.log");
        let line = log.lines().nth(8).unwrap();
        let spec = meshtrace_parsers::FormatSpec::parse("[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%").unwrap();
        let LineOutcome::Record(r) = LineParser::new(&spec).parse(line) else {
            panic!("{line}")
        };
        assert_eq!(r.status(), Some(404));
        let c = cite_config(&d, Some("default/model"), &r, Cause::DirectResponse);
        assert!(
            c.iter().any(|x| x.why.contains("virtual host model")
                && x.why.contains("answers 404 by itself")
                && x.why.contains("/v1/models/missing:predict")),
            "{c:?}"
        );
    }

    #[test]
    fn a_direct_response_names_the_gateway_api_route_behind_istios_virtual_service() {
        // Istio serves an HTTPRoute through a VirtualService it generates
        // (`<route>-<n>-istio-autogenerated-k8s-gateway`) and stamps the route's metadata with
        // it; a backendRef that does not resolve becomes a 500 direct response there. The
        // dump is shaped as Istio's gateway dumps (testdata/peer's istioctl cases); istiod is
        // not run here.
        let dump = ConfigDump::parse(
            r#"{"configs":[
            {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","dynamic_listeners":[
              {"name":"0.0.0.0_8080","active_state":{"listener":{"name":"0.0.0.0_8080",
                "address":{"socket_address":{"address":"0.0.0.0","port_value":8080}},
                "filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager",
                  "typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix":"outbound_0.0.0.0_8080","rds":{"route_config_name":"http.8080"}}}]}]}}}]},
            {"@type":"type.googleapis.com/envoy.admin.v3.RoutesConfigDump","dynamic_route_configs":[
            {"route_config":{"name":"http.8080","virtual_hosts":[
              {"name":"models.example.com:8080","domains":["models.example.com"],"routes":[
                {"match":{"prefix":"/v1/","case_sensitive":true},
                 "direct_response":{"status":500},
                 "metadata":{"filter_metadata":{"istio":{"config":"/apis/networking.istio.io/v1/namespaces/llm/virtual-service/llm-route-1-istio-autogenerated-k8s-gateway"}}}}
              ]}]}}]}]}"#,
        )
        .unwrap();
        let d = [PodDump {
            namespace: "istio-system".into(),
            pod: "inference-gateway-istio-7d9f8c6b5-abcde".into(),
            path: "config_dump/istio-system/inference-gateway-istio-7d9f8c6b5-abcde.json".into(),
            dump,
        }];
        let r = rec(
            "[2025-03-10T14:02:11.118Z] \"POST /v1/completions HTTP/1.1\" 500 - direct_response - \"-\" 112 0 0 - \"10.244.0.1\" \"curl/8.5.0\" \"6f1c2d4e-0b7a-4c1e-9d3f-2a8b7c6d5e4f\" \"models.example.com\" \"-\" - - 10.244.1.7:8080 10.244.0.1:51234 - -",
        );
        let c = cite_config(
            &d,
            Some("istio-system/inference-gateway-istio-7d9f8c6b5-abcde"),
            &r,
            Cause::DirectResponse,
        );
        assert!(
            c.iter().any(|x| x.why.contains("answers 500 by itself")
                && x.why.contains(
                    "the route comes from HTTPRoute or GRPCRoute llm/llm-route (through Istio's generated VirtualService llm/llm-route-1-istio-autogenerated-k8s-gateway)"
                )),
            "{c:?}"
        );
    }

    #[test]
    fn plaintext_into_strict_port_cites_the_listener() {
        let d = [pod_dump("aiproject", PRED)];
        let r = rec(
            "[2024-06-03T09:12:31.402Z] \"- - -\" 0 NR filter_chain_not_found - \"-\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" - - 10.133.2.13:8012 10.134.0.9:40000 - -",
        );
        let c = cite_config(
            &d,
            Some(&format!("aiproject/{PRED}")),
            &r,
            Cause::PlaintextToMtls,
        );
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].object.starts_with("Listener/aiproject/"), "{c:?}");
        assert!(c[0].why.contains("ISTIO_MUTUAL"), "{c:?}");
    }

    #[test]
    fn upstream_failure_cites_the_cluster_tls_mode() {
        let d = [pod_dump("istio-system", GW)];
        let r = rec(
            "[2024-06-03T09:12:31.402Z] \"GET / HTTP/2\" 503 UF upstream_reset_before_response_started{connection_termination} - \"-\" 0 91 3 - \"10.134.0.2\" \"curl/8.6.0\" \"id2\" \"test-aiproject.apps.mycluster.example.com\" \"10.135.0.43:8081\" outbound|80||knative-local-gateway.istio-system.svc.cluster.local - 10.135.0.43:8443 10.134.0.2:56558 test-aiproject.apps.mycluster.example.com -",
        );
        let c = cite_config(
            &d,
            Some(&format!("istio-system/{GW}")),
            &r,
            Cause::UpstreamConnectFailure,
        );
        assert!(
            c.iter()
                .any(|x| x.object.starts_with("Cluster/istio-system/")
                    && x.why.contains("ISTIO_MUTUAL")
                    && x.why.contains("DestinationRule istio-system/default")),
            "{c:?}"
        );
    }

    #[test]
    fn no_dump_for_the_pod_cites_nothing() {
        let d = [pod_dump("istio-system", GW)];
        let r = rec(
            "[2024-06-03T09:12:31.402Z] \"GET / HTTP/2\" 404 NR route_not_found - \"-\" 0 0 0 - \"-\" \"curl\" \"id\" \"x\" \"-\" - - 10.0.0.1:8443 10.0.0.2:1 - -",
        );
        assert!(cite_config(&d, Some("other/pod"), &r, Cause::RouteNotFound).is_empty());
        assert!(cite_config(&d, None, &r, Cause::RouteNotFound).is_empty());
    }
}
