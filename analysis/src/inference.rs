//! Inference gateways (Gateway API Inference Extension, llm-d, KServe `LLMInferenceService`):
//! a gateway that calls an endpoint picker (EPP) over Envoy ext_proc before routing. Reads the
//! `ext_proc_error_gRPC_error_<N>` details into a verdict naming the InferencePool and the EPP
//! Service behind it, and the HTTPRoute `timeouts.request` behind a gateway 504 `UT`. Pure.

use meshtrace_parsers::flags::ResponseFlag as Flag;
use meshtrace_parsers::grpc::{
    epp_likely_cause, ext_proc_transport_reason, parse_ext_proc_error, status,
};
use meshtrace_parsers::record::RawRecord;
use serde_json::Value;

use crate::causes::Cause;
use crate::evidence::Evidence;
use crate::model::Object;
use crate::objects::Cited;

/// API groups of InferencePool (v1 GA and the earlier x-k8s.io alpha).
const POOL_GROUPS: [&str; 2] = [
    "inference.networking.k8s.io",
    "inference.networking.x-k8s.io",
];

/// A verdict read from the evidence: what happened, what to do, what configuration says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The cause.
    pub cause: Cause,
    /// One paragraph.
    pub summary: String,
    /// What to do.
    pub fix: String,
    /// Objects behind it.
    pub cited: Vec<Cited>,
}

fn is_pool(o: &Object) -> bool {
    o.kind == "InferencePool"
        && POOL_GROUPS
            .iter()
            .any(|g| o.api_version.starts_with(&format!("{g}/")))
}

/// The EPP Service a pool names: `spec.endpointPickerRef` (v1) or `spec.extensionRef`
/// (v1alpha2), with its port when given.
fn epp_ref(pool: &Object) -> Option<(String, Option<u64>)> {
    if let Some(name) = pool.str_at("/spec/endpointPickerRef/name") {
        let port = pool
            .value
            .pointer("/spec/endpointPickerRef/port/number")
            .and_then(Value::as_u64);
        return Some((name.to_string(), port));
    }
    let name = pool.str_at("/spec/extensionRef/name")?;
    let port = pool
        .value
        .pointer("/spec/extensionRef/portNumber")
        .and_then(Value::as_u64);
    Some((name.to_string(), port))
}

/// HTTPRoutes whose backendRefs name an InferencePool, with the pools' names.
fn routes_to_pools(objects: &[Object]) -> impl Iterator<Item = (&Object, String)> {
    objects
        .iter()
        .filter(|o| o.kind == "HTTPRoute")
        .flat_map(|o| {
            o.value
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .take(64)
                .flat_map(|r| {
                    r.get("backendRefs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .take(64)
                })
                .filter(|b| b.get("kind").and_then(Value::as_str) == Some("InferencePool"))
                .filter_map(|b| b.get("name").and_then(Value::as_str).map(str::to_string))
                .map(move |n| (o, n))
        })
}

/// Does an HTTPRoute serve this Host (no hostnames: every host; `*.x` wildcards)?
fn serves_host(route: &Object, host: Option<&str>) -> bool {
    let names = route.strings_at("/spec/hostnames");
    let Some(host) = host.map(|h| h.split(':').next().unwrap_or(h)) else {
        return true;
    };
    names.is_empty()
        || names.iter().any(|n| {
            n == host
                || n.strip_prefix("*.")
                    .is_some_and(|s| host.ends_with(&format!(".{s}")))
        })
}

/// The InferencePool a gateway request went to: named by an HTTPRoute serving its Host, else
/// the only pool of the bundle.
fn pool_for<'a>(ev: &'a Evidence, host: Option<&str>) -> Option<(&'a Object, Option<&'a Object>)> {
    for (route, name) in routes_to_pools(&ev.objects) {
        if !serves_host(route, host) {
            continue;
        }
        if let Some(p) = ev
            .objects
            .iter()
            .find(|p| is_pool(p) && p.name == name && p.namespace == route.namespace)
        {
            return Some((p, Some(route)));
        }
    }
    let mut pools = ev.objects.iter().filter(|o| is_pool(o));
    match (pools.next(), pools.next()) {
        (Some(p), None) => Some((p, None)),
        _ => None,
    }
}

/// What is wrong with the EPP Service, as far as the bundle shows.
fn epp_service_findings(
    ev: &Evidence,
    ns: &str,
    name: &str,
    port: Option<u64>,
) -> (Option<Cited>, Vec<String>) {
    let Some(svc) = ev
        .objects
        .iter()
        .find(|o| o.kind == "Service" && o.namespace.as_deref() == Some(ns) && o.name == name)
    else {
        return (
            None,
            vec![format!(
                "the EPP Service {ns}/{name} the pool names is not in the evidence (missing, or not collected)"
            )],
        );
    };
    let mut findings = Vec::new();
    let ports: Vec<&Value> = svc
        .value
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| a.iter().take(64).collect())
        .unwrap_or_default();
    let chosen = ports
        .iter()
        .find(|p| port.is_none() || p.get("port").and_then(Value::as_u64) == port);
    match chosen {
        None => findings.push(format!(
            "Service {ns}/{name} has no port {}",
            port.map_or("-".to_string(), |p| p.to_string())
        )),
        Some(p) => {
            let pname = p.get("name").and_then(Value::as_str).unwrap_or("");
            let app = p.get("appProtocol").and_then(Value::as_str).unwrap_or("");
            let h2 = pname.starts_with("grpc")
                || pname.starts_with("http2")
                || matches!(app, "http2" | "grpc" | "kubernetes.io/h2c");
            if !h2 {
                findings.push(format!(
                    "port {} of Service {ns}/{name} is named `{pname}` without `appProtocol: http2`: the mesh may not speak gRPC (HTTP/2) to it",
                    p.get("port").and_then(Value::as_u64).unwrap_or(0)
                ));
            }
        }
    }
    let selector = svc.string_map("/spec/selector");
    if !selector.is_empty() {
        let ready = ev.topology.pods.iter().any(|p| {
            p.namespace == ns
                && selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                && p.phase.as_deref() == Some("Running")
        });
        if !ready {
            findings.push(format!(
                "no running pod matches Service {ns}/{name}'s selector: the endpoint picker is down"
            ));
        }
    }
    let why = if findings.is_empty() {
        "the endpoint picker's Service the gateway calls over ext_proc".to_string()
    } else {
        format!("the endpoint picker's Service: {}", findings.join("; "))
    };
    (
        Some(Cited {
            object: svc.reference(),
            why,
        }),
        findings,
    )
}

/// The verdict for a gateway line whose details are `ext_proc_error_gRPC_error_<N>`.
pub fn ext_proc_reading(ev: &Evidence, r: &RawRecord<'_>) -> Option<Reading> {
    let details = r.details()?;
    let e = parse_ext_proc_error(details.raw)?;
    let (name, meaning) = status(e.code)?;
    let cause = Cause::from_ext_proc_details(details.raw)?;
    let mut cited = Vec::new();
    let mut what = String::new();
    let mut findings = Vec::new();
    if let Some((pool, route)) = pool_for(ev, r.authority()) {
        let ns = pool.namespace.clone().unwrap_or_default();
        let epp = epp_ref(pool);
        cited.push(Cited {
            object: pool.reference(),
            why: match &epp {
                Some((svc, port)) => format!(
                    "the InferencePool behind the route; its endpoint picker is Service {ns}/{svc}{}",
                    port.map(|p| format!(" port {p}")).unwrap_or_default()
                ),
                None => "the InferencePool behind the route (no endpoint picker reference)".into(),
            },
        });
        if let Some(route) = route {
            cited.push(Cited {
                object: route.reference(),
                why: format!("routes this Host to InferencePool {}", pool.name),
            });
        }
        if let Some((svc, port)) = epp {
            what = format!(
                " (InferencePool {ns}/{}, EPP Service {ns}/{svc})",
                pool.name
            );
            let (c, f) = epp_service_findings(ev, &ns, &svc, port);
            cited.extend(c);
            findings = f;
        }
    }
    let transport = e
        .message
        .and_then(ext_proc_transport_reason)
        .map(|t| format!(" Envoy's message on the gRPC connection: {t}."))
        .unwrap_or_default();
    let summary = if e.code == 14 {
        format!(
            "The gateway could not reach the endpoint picker{what}: its ext_proc call failed with gRPC {} {name} ({meaning}), so the gateway answered {} by itself and the request never reached a model server.{transport}{}",
            e.code,
            r.status().unwrap_or(0),
            if findings.is_empty() {
                String::new()
            } else {
                format!(" In the evidence: {}.", findings.join("; "))
            }
        )
    } else {
        format!(
            "The gateway's call to its external processor{what} failed with gRPC {} {name} ({meaning}); the gateway answered {} by itself.{transport}",
            e.code,
            r.status().unwrap_or(0)
        )
    };
    let fix = format!(
        "Likely cause: {}. Check the EPP pod (`kubectl get pods` and its log), that its Service has endpoints on the port the InferencePool names, that the port is declared gRPC (`appProtocol: http2`), and that TLS settings match between gateway and EPP (a DestinationRule/BackendTLSPolicy); `failureMode: FailOpen` on the pool routes around a dead EPP (Gateway API Inference Extension docs).",
        epp_likely_cause(e.code)
    );
    Some(Reading {
        cause,
        summary,
        fix,
        cited,
    })
}

/// A gateway 504 `UT` on a route whose HTTPRoute sets `timeouts.request`: cite it (KServe's
/// generated HTTPRoute sets 60 s, which long LLM generations exceed).
pub fn route_timeout_citation(ev: &Evidence, r: &RawRecord<'_>) -> Option<Cited> {
    if r.status() != Some(504) || !r.flags().contains(Flag::UpstreamRequestTimeout) {
        return None;
    }
    let host = r.authority();
    ev.objects
        .iter()
        .filter(|o| o.kind == "HTTPRoute" && serves_host(o, host))
        .find_map(|o| {
            let t = o
                .value
                .pointer("/spec/rules")
                .and_then(Value::as_array)?
                .iter()
                .take(64)
                .find_map(|rule| rule.pointer("/timeouts/request").and_then(Value::as_str))?;
            Some(Cited {
                object: o.reference(),
                why: format!(
                    "sets `timeouts.request: {t}`: the gateway stops waiting after it and answers 504 UT (raise it for long generations, or stream the response)"
                ),
            })
        })
}
