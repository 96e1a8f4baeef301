//! Inference gateways (Gateway API Inference Extension, llm-d, KServe `LLMInferenceService`):
//! a gateway that calls an endpoint picker (EPP) over Envoy ext_proc before routing. Reads the
//! `ext_proc_error_gRPC_error_<N>` details into a verdict naming the InferencePool and the EPP
//! Service behind it, and the HTTPRoute `timeouts.request` behind a gateway 504 `UT`. Also the
//! Gateway API side of a trace: the HTTPRoute rule an Envoy Gateway cluster or route name
//! (`httproute/<ns>/<name>/rule/<i>`) points at, Envoy Gateway's new `x-request-id` at the
//! edge, progress lines of long responses (`%ACCESS_LOG_TYPE%` `DownstreamPeriodic`), and the
//! `gen_ai.*` fields AI gateways log. Pure.

use meshtrace_parsers::flags::ResponseFlag as Flag;
use meshtrace_parsers::grpc::{
    epp_likely_cause, ext_proc_transport_reason, parse_ext_proc_error, status,
};
use std::collections::BTreeMap;

use meshtrace_parsers::Slot;
use meshtrace_parsers::cluster::{GatewayRoute, parse_gateway_route};
use meshtrace_parsers::configdump::{ExtProcFilter, Listener};
use meshtrace_parsers::epp::Decision;
use meshtrace_parsers::record::RawRecord;
use serde_json::Value;

use crate::causes::Cause;
use crate::evidence::Evidence;
use crate::model::{EppLine, LogLine, Object, PodDump};
use crate::objects::Cited;
use crate::topology::Topology;

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

/// The ext_proc filters of the evidence's config dumps, with the dump and listener carrying
/// them: those of `pod` (`namespace/name`) when it has a dump, else every dump's.
pub fn ext_proc_filters<'a>(
    ev: &'a Evidence,
    pod: Option<&str>,
) -> Vec<(&'a PodDump, &'a Listener, &'a ExtProcFilter)> {
    let all = |d: &'a PodDump| {
        d.dump.listeners.iter().flat_map(move |l| {
            l.filter_chains
                .iter()
                .filter_map(|fc| fc.http.as_ref())
                .flat_map(|h| h.ext_proc.iter())
                .map(move |f| (d, l, f))
        })
    };
    let of_pod: Vec<_> = ev
        .config_dumps
        .iter()
        .filter(|d| pod.is_some_and(|p| p == format!("{}/{}", d.namespace, d.pod)))
        .flat_map(all)
        .collect();
    let mut out = if of_pod.is_empty() {
        ev.config_dumps.iter().flat_map(all).collect()
    } else {
        of_pod
    };
    // One entry per (pod, filter, cluster): filter chains repeat the same filter.
    out.dedup_by(|a, b| {
        (a.0.path == b.0.path) && a.2.name == b.2.name && a.2.cluster == b.2.cluster
    });
    out.truncate(16);
    out
}

/// The gRPC cluster an ext_proc filter calls, cited from the config dump, with its endpoints'
/// health when the dump has them.
fn ext_proc_cluster_citation(d: &PodDump, l: &Listener, f: &ExtProcFilter) -> Option<Cited> {
    let cluster = f.cluster.as_deref().or(f.target_uri.as_deref())?;
    let eps: Vec<String> = d
        .dump
        .endpoints
        .iter()
        .filter(|e| e.cluster == cluster)
        .flat_map(|e| e.endpoints.iter())
        .take(8)
        .map(|e| format!("{} {}", e.address, e.health))
        .collect();
    Some(Cited {
        object: format!("Cluster/{}/{}:{cluster}", d.namespace, d.pod),
        why: format!(
            "the ext_proc filter `{}` on listener {} calls the endpoint picker over gRPC on this cluster{}{}",
            f.name,
            l.name,
            if eps.is_empty() {
                String::new()
            } else {
                format!(" (endpoints: {})", eps.join(", "))
            },
            if f.failure_mode_allow {
                "; `failure_mode_allow: true`: when the call fails, requests continue without the picker"
            } else {
                "; fail closed (`failure_mode_allow` unset): when the call fails, the gateway answers by itself"
            }
        ),
    })
}

/// Degradation a config dump shows on a traced gateway: ext_proc filters with
/// `failure_mode_allow: true` (the pool's `failureMode: FailOpen`), through which requests go on
/// without the endpoint picker when it fails — to the route's default backend, not a picked
/// endpoint — while every status looks fine.
pub fn failure_mode_allow_notes(ev: &Evidence, pods: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for d in &ev.config_dumps {
        let pod = format!("{}/{}", d.namespace, d.pod);
        if !pods.is_empty() && !pods.contains(&pod.as_str()) {
            continue;
        }
        for (_, l, f) in ext_proc_filters(ev, Some(&pod)) {
            if f.failure_mode_allow && out.len() < 4 {
                out.push(format!(
                    "degraded: the ext_proc filter `{}` on listener {} of {pod} has `failure_mode_allow: true` (an InferencePool with `failureMode: FailOpen`): when the endpoint picker{} fails or times out{}, requests bypass it and go to the route's default backend instead of a picked endpoint; check the EPP pod and its log if latency or cache hit rates look wrong",
                    f.name,
                    l.name,
                    f.cluster
                        .as_deref()
                        .map(|c| format!(" (cluster {c})"))
                        .unwrap_or_default(),
                    f.message_timeout
                        .as_deref()
                        .map(|t| format!(" (message_timeout {t})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    out.dedup();
    out
}

/// The verdict for a gateway line whose details are `ext_proc_error_gRPC_error_<N>`.
pub fn ext_proc_reading(ev: &Evidence, r: &RawRecord<'_>) -> Option<Reading> {
    ext_proc_reading_at(ev, r, None)
}

/// [`ext_proc_reading`] for a line logged by `pod` (`namespace/name`): the ext_proc filter's
/// gRPC cluster is cited from that pod's config dump when the evidence has one.
pub fn ext_proc_reading_at(ev: &Evidence, r: &RawRecord<'_>, pod: Option<&str>) -> Option<Reading> {
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
    if let Some((d, l, f)) = ext_proc_filters(ev, pod).into_iter().next()
        && let Some(c) = ext_proc_cluster_citation(d, l, f)
    {
        cited.push(c);
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

/// The Gateway API route rule a gateway line names: its cluster (`httproute/<ns>/<name>/rule/<i>`,
/// Envoy Gateway) or, failing that, its route name (`…/rule/<i>/match/<j>/<host>`).
pub fn gateway_route<'r>(r: &'r RawRecord<'_>) -> Option<GatewayRoute<'r>> {
    r.upstream_cluster()
        .and_then(|c| c.gateway_route())
        .or_else(|| r.route_name().and_then(parse_gateway_route))
}

/// Cite the HTTPRoute (GRPCRoute, …) rule a gateway line's cluster or route name points at:
/// what the rule matches and where it sends traffic, or that the object is not in the evidence.
pub fn route_rule_citation(ev: &Evidence, r: &RawRecord<'_>) -> Option<Cited> {
    let g = gateway_route(r)?;
    let kind = g.kind.kind();
    let rule_txt = g
        .rule
        .map(|i| format!("rule {i}"))
        .unwrap_or_else(|| "a rule".into());
    let obj = ev.objects.iter().find(|o| {
        o.kind == kind && o.name == g.name && o.namespace.as_deref() == Some(g.namespace)
    });
    let Some(obj) = obj else {
        return Some(Cited {
            object: format!("{kind}/{}/{}", g.namespace, g.name),
            why: format!(
                "the gateway routed this request by its {rule_txt} (Envoy Gateway names the cluster after it); the object is not in the evidence"
            ),
        });
    };
    let rule = g.rule.and_then(|i| {
        obj.value
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .and_then(|a| a.get(i as usize))
    });
    let mut what = Vec::new();
    if let Some(rule) = rule {
        let backends: Vec<String> = rule
            .get("backendRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(8)
            .filter_map(|b| {
                let name = b.get("name").and_then(Value::as_str)?;
                let kind = b.get("kind").and_then(Value::as_str).unwrap_or("Service");
                let port = b
                    .get("port")
                    .and_then(Value::as_u64)
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default();
                Some(format!("{kind} {name}{port}"))
            })
            .collect();
        if !backends.is_empty() {
            what.push(format!("sends to {}", backends.join(", ")));
        }
        if let Some(t) = rule.pointer("/timeouts/request").and_then(Value::as_str) {
            what.push(format!("`timeouts.request: {t}`"));
        }
    } else if g.rule.is_some() {
        what.push("the object in the evidence has no such rule (changed since?)".into());
    }
    Some(Cited {
        object: obj.reference(),
        why: format!(
            "the gateway routed this request by its {rule_txt}{}",
            if what.is_empty() {
                String::new()
            } else {
                format!(": {}", what.join("; "))
            }
        ),
    })
}

/// Envoy Gateway generates a new `x-request-id` at the edge (its listeners do not keep the
/// client's id): when a trace found only the gateway's line, say so, so the reader looks for the
/// inner hops by connection or by the gateway's id rather than the client's.
pub fn edge_request_id_note(hops: &[&RawRecord<'_>]) -> Option<String> {
    let [only] = hops else { return None };
    if only.format() != "envoy-gateway-json" && gateway_route(only).is_none() {
        return None;
    }
    Some(format!(
        "only the gateway's line was found: Envoy Gateway generates a new x-request-id at the edge (the client's id is not kept unless the ClientTrafficPolicy preserves it), so the backends log {} rather than the id the client sent; trace that id, or the gateway's upstream connection {}, in the backends' logs",
        only.request_id().unwrap_or("the gateway's id"),
        only.get(Slot::UpstreamLocalAddress)
            .filter(|v| *v != "-")
            .unwrap_or("(not logged)")
    ))
}

/// Is this an `x-gen-ai`-style field an AI gateway logged about the request (Envoy AI Gateway and
/// agentgateway `gen_ai.*`, agentgateway's older `llm.*`)?
fn is_gen_ai_key(k: &str) -> bool {
    let lower = k.to_ascii_lowercase();
    lower.starts_with("gen_ai.") || lower.starts_with("gen_ai_") || lower.starts_with("llm.")
}

/// The `gen_ai.*` fields of a record (model, tokens), by key.
pub fn gen_ai_fields(r: &RawRecord<'_>) -> BTreeMap<String, String> {
    r.extras()
        .filter(|(k, v)| is_gen_ai_key(k) && !v.is_empty() && *v != "-")
        .take(32)
        .map(|(k, v)| (k.to_string(), v.chars().take(200).collect()))
        .collect()
}

/// Progress lines of the traced request (`%ACCESS_LOG_TYPE%` `DownstreamPeriodic`, …) among
/// `lines[hops]`, as one note; `None` when there are none.
pub fn progress_note(lines: &[LogLine], progress: &[usize]) -> Option<String> {
    if progress.is_empty() {
        return None;
    }
    let mut sorted: Vec<&LogLine> = progress.iter().map(|&i| &lines[i]).collect();
    sorted.sort_by_key(|l| (l.record.duration_ms(), l.line));
    let parts: Vec<String> = sorted
        .iter()
        .take(12)
        .map(|l| {
            let r = &l.record;
            format!(
                "{} after {} ms, {} bytes sent",
                r.access_log_type().unwrap_or("-"),
                r.duration_ms().map_or("-".into(), |d| d.to_string()),
                r.value(Slot::BytesSent).unwrap_or("-")
            )
        })
        .collect();
    let more = sorted.len().saturating_sub(12);
    Some(format!(
        "progress: {} line(s) written while the response was still streaming (access_log_flush_interval; not a request end, not counted by `failures`): {}{}",
        sorted.len(),
        parts.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    ))
}

/// The endpoint picker's lines about the requests with these ids, in input order.
pub fn epp_lines<'a>(ev: &'a Evidence, ids: &[String]) -> Vec<&'a EppLine> {
    ev.logs
        .epp
        .iter()
        .filter(|l| ids.contains(&l.decision.request_id))
        .take(16)
        .collect()
}

/// The EPP's line as a hop of a trace (role `endpoint-picker`, direction `ext_proc`): what
/// `trace` shows of it.
#[derive(Debug, Clone)]
pub struct PickerHop {
    /// Pod namespace, when known.
    pub namespace: Option<String>,
    /// Pod name, when known.
    pub pod: Option<String>,
    /// The request id the picker logged.
    pub request_id: String,
    /// The status the picker answered, when it refused.
    pub status: Option<u16>,
    /// Its error, or its message.
    pub details: String,
    /// When it logged.
    pub start: Option<String>,
    /// The endpoint it picked.
    pub upstream_host: Option<String>,
    /// What that endpoint is.
    pub upstream_is: Option<String>,
    /// The model asked for and the one sent on.
    pub gen_ai: BTreeMap<String, String>,
    /// Input name.
    pub file: String,
    /// 1-based line.
    pub line: u64,
}

/// The EPP's line as a [`PickerHop`].
pub fn picker_hop(topo: &Topology, l: &EppLine) -> PickerHop {
    let d = &l.decision;
    let (namespace, pod) = match l.pod.as_deref().and_then(|p| p.split_once('/')) {
        Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
        None => (None, None),
    };
    let upstream_is = d.endpoint_ip().map(|ip| match topo.pod_by_ip(ip) {
        Some(p) => format!("pod {}", p.reference()),
        None => match &d.pod {
            Some(n) => format!("pod {n}"),
            None => "unknown".into(),
        },
    });
    let mut gen_ai = BTreeMap::new();
    if let Some(m) = &d.model {
        gen_ai.insert("model".to_string(), m.clone());
    }
    if let Some(m) = d
        .target_model
        .as_ref()
        .filter(|t| Some(*t) != d.model.as_ref())
    {
        gen_ai.insert("target_model".to_string(), m.clone());
    }
    PickerHop {
        namespace,
        pod,
        request_id: d.request_id.clone(),
        status: d.status(),
        details: d.error.clone().unwrap_or_else(|| d.message.clone()),
        start: d.time.clone(),
        upstream_host: d.endpoint.clone(),
        upstream_is,
        gen_ai,
        file: l.input.to_string(),
        line: l.line,
    }
}

/// The endpoint the picker chose for a gateway line: from the EPP's own line, or from the
/// gateway's `inferencepool.selected_endpoint` (agentgateway).
fn picked<'a>(gw: &'a RawRecord<'_>, epp: Option<&'a Decision>) -> Option<(String, &'static str)> {
    if let Some(e) = epp.and_then(|d| d.endpoint.clone()) {
        return Some((e, "the endpoint picker's log"));
    }
    gw.extra("inferencepool.selected_endpoint")
        .filter(|v| !v.is_empty() && *v != "-")
        .map(|v| {
            (
                v.to_string(),
                "the gateway's `inferencepool.selected_endpoint`",
            )
        })
}

fn ip_of(s: &str) -> Option<std::net::IpAddr> {
    s.parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// "Picked endpoint ≠ served endpoint": the endpoint picker chose one pod and the gateway sent
/// the request to another (its upstream host). `None` when they agree or one is unknown.
pub fn picked_vs_served(gw: &RawRecord<'_>, epp: Option<&Decision>) -> Option<String> {
    let (pick, from) = picked(gw, epp)?;
    let served = gw.value(Slot::UpstreamHost)?;
    let (a, b) = (ip_of(&pick)?, ip_of(served)?);
    (a != b).then(|| {
        format!(
            "picked endpoint ≠ served endpoint: the endpoint picker chose {pick} ({from}) but the gateway sent the request to {served}: the gateway did not follow the picker (a retry to another endpoint, a route whose backend is the Service rather than the InferencePool, or a gateway that ignores the `x-gateway-destination-endpoint` the picker sets — Gateway API Inference Extension, endpoint picker protocol)"
        )
    })
}

/// The verdict when the endpoint picker itself refused the request (its `inference gateway:
/// <Code>` error): 429 when the pool is saturated or flow control shed the request, 503 when it
/// found no ready endpoint, with the InferencePool cited.
pub fn epp_refusal_reading(ev: &Evidence, gw: &RawRecord<'_>, d: &Decision) -> Option<Reading> {
    let status = d.status()?;
    let code = d.code.as_deref().unwrap_or("-");
    let msg = d
        .error
        .as_deref()
        .and_then(|e| e.split_once(" - ").map(|x| x.1))
        .unwrap_or("");
    let mut cited = Vec::new();
    let mut what = String::new();
    if let Some((pool, route)) = pool_for(ev, gw.authority()) {
        let ns = pool.namespace.clone().unwrap_or_default();
        what = format!(" of InferencePool {ns}/{}", pool.name);
        cited.push(Cited {
            object: pool.reference(),
            why: match status {
                429 => "the pool whose endpoints the picker judged saturated".into(),
                503 => "the pool in which the picker found no ready endpoint".into(),
                _ => "the pool the endpoint picker serves".into(),
            },
        });
        if let Some(route) = route {
            cited.push(Cited {
                object: route.reference(),
                why: format!("routes this Host to InferencePool {}", pool.name),
            });
        }
    }
    let (cause, meaning, fix) = refusal_words(status);
    Some(Reading {
        cause,
        summary: format!(
            "The endpoint picker{what} refused the request with {status} ({code}{}): {meaning}. The gateway returned its answer; no model server was called.",
            if msg.is_empty() {
                String::new()
            } else {
                format!(": {msg}")
            }
        ),
        fix: fix.to_string(),
        cited,
    })
}

/// What an endpoint picker's refusal with `status` means: the cause, in words, and the fix.
fn refusal_words(status: u16) -> (Cause, &'static str, &'static str) {
    match status {
        429 => (
            Cause::RateLimited,
            "every model server of the pool is saturated (queue or KV-cache thresholds), so the picker shed the request (flow control / admission); sheddable requests (negative priority in their InferenceObjective) go first",
            "Add model server replicas or capacity to the pool, lower the load, or raise the request's priority in its InferenceObjective; check the saturation thresholds of the EPP's configuration and the model servers' queue and KV-cache metrics (Gateway API Inference Extension docs).",
        ),
        503 => (
            Cause::NoHealthyUpstream,
            "the picker found no ready endpoint in the pool: no pod matches the pool's selector, none is Ready, or the picker has no metrics from them",
            "Check the model server pods the InferencePool selects (`kubectl get pods -l <pool selector>`: Running and Ready), that the pool's `targetPorts` match the model server's port, and the EPP's log for metric scrape errors.",
        ),
        _ => (
            Cause::Unknown,
            "the picker failed to process the request",
            "Read the endpoint picker's log line cited and the request body it refused.",
        ),
    }
}

/// One endpoint picker line as `explain` lists it: the endpoint it picked for a request, or
/// its refusal.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EppReport {
    /// Input name.
    pub input: std::sync::Arc<str>,
    /// 1-based line.
    pub line: u64,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// The time as written.
    pub time: Option<String>,
    /// The model the client asked for, and the one the picker sent on.
    pub model: Option<String>,
    /// The model the picker sent the request on as (`targetModel`).
    pub target_model: Option<String>,
    /// The endpoint picked (`ip[:port]`), for a request handled.
    pub endpoint: Option<String>,
    /// The pod picked, when the line names it.
    pub pod: Option<String>,
    /// The status the picker answered with, for a refusal.
    pub status: Option<u16>,
    /// The refusal's code (`InferencePoolResourceExhausted`, `ServiceUnavailable`, …).
    pub code: Option<String>,
    /// Cause class: `ok` for a request handled.
    pub cause: Cause,
    /// Plain-language summary.
    pub summary: String,
    /// Usual fix (empty for a request handled).
    pub fix: String,
}

/// Read every endpoint picker line, in the order read.
pub fn explain_epp_lines(lines: &[crate::model::EppLine]) -> Vec<EppReport> {
    lines
        .iter()
        .map(|l| {
            let d = &l.decision;
            let models = match (&d.model, &d.target_model) {
                (Some(m), Some(t)) if m != t => format!(" (model {m}, sent on as {t})"),
                (Some(m), _) | (None, Some(m)) => format!(" (model {m})"),
                (None, None) => String::new(),
            };
            let (cause, summary, fix) = match d.status() {
                Some(status) => {
                    let (cause, meaning, fix) = refusal_words(status);
                    let msg = d
                        .error
                        .as_deref()
                        .and_then(|e| e.split_once(" - ").map(|x| x.1))
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    (
                        cause,
                        format!(
                            "The endpoint picker refused request {}{models} with {status} ({}{msg}): {meaning}. The gateway answers with it; no model server is called.",
                            d.request_id,
                            d.code.as_deref().unwrap_or("-")
                        ),
                        fix.to_string(),
                    )
                }
                None => {
                    let to = match (&d.pod, &d.endpoint) {
                        (Some(p), Some(e)) => format!("pod {p} ({e})"),
                        (Some(p), None) => format!("pod {p}"),
                        (None, Some(e)) => e.clone(),
                        (None, None) => "a model server".to_string(),
                    };
                    (
                        Cause::Ok,
                        format!(
                            "The endpoint picker sent request {}{models} to {to}.",
                            d.request_id
                        ),
                        String::new(),
                    )
                }
            };
            EppReport {
                input: l.input.clone(),
                line: l.line,
                request_id: d.request_id.clone(),
                time: d.time.clone(),
                model: d.model.clone(),
                target_model: d.target_model.clone(),
                endpoint: d.endpoint.clone(),
                pod: d.pod.clone(),
                status: d.status(),
                code: d.code.clone(),
                cause,
                summary,
                fix,
            }
        })
        .collect()
}

/// What the endpoint picker's log adds to a trace.
#[derive(Debug)]
pub struct EppJoin {
    /// The picker's hop and the position (0-based) of the gateway hop it goes after.
    pub hop: Option<(usize, PickerHop)>,
    /// The verdict when the picker refused the request (429/503) and the gateway relayed it:
    /// the picker's hop is then the origin.
    pub reading: Option<Reading>,
    /// Picked ≠ served, `failure_mode_allow` degradation.
    pub notes: Vec<String>,
}

/// Join the endpoint picker's log to a trace by request id (`order` indexes `lines`, client
/// first): its line goes after the gateway hop with the same id; "picked ≠ served" is noted; a
/// refusal the gateway relayed becomes the verdict. `pods` are the trace's pods
/// (`namespace/name`), for the `failure_mode_allow` notes.
pub fn join_epp(ev: &Evidence, lines: &[LogLine], order: &[usize], pods: &[&str]) -> EppJoin {
    let mut notes = Vec::new();
    let mut reading = None;
    let mut hop = None;
    let ids: Vec<String> = order
        .iter()
        .filter_map(|&i| lines[i].record.request_id().map(str::to_string))
        .collect();
    let epp = epp_lines(ev, &ids);
    // A refusal says more than a pick.
    let chosen = epp
        .iter()
        .find(|l| l.decision.status().is_some())
        .or_else(|| epp.last())
        .copied();
    match chosen {
        Some(el) => {
            let d = &el.decision;
            let gw_pos = order
                .iter()
                .position(|&i| lines[i].record.request_id() == Some(d.request_id.as_str()))
                .unwrap_or(0);
            if let Some(&gi) = order.get(gw_pos) {
                let gw = &lines[gi].record;
                notes.extend(picked_vs_served(gw, Some(d)));
                if d.status().is_some() && gw.status() == d.status() && gw.upstream_host().is_none()
                {
                    reading = epp_refusal_reading(ev, gw, d);
                }
                hop = Some((gw_pos, picker_hop(&ev.topology, el)));
            }
        }
        None => {
            for &i in order.iter().take(8) {
                notes.extend(picked_vs_served(&lines[i].record, None));
            }
        }
    }
    notes.extend(failure_mode_allow_notes(ev, pods));
    EppJoin {
        hop,
        reading,
        notes,
    }
}
