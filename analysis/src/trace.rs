//! `trace`: one request's hop-by-hop path, the hop that produced its status, the cause, the
//! configuration behind it and the fix. Pure: evidence in, [`TraceReport`] out.

use std::net::IpAddr;

use serde::Serialize;

use meshtrace_parsers::Slot;
use meshtrace_parsers::record::RawRecord;

use crate::causes::Cause;
use crate::correlate::{Start, correlate};
use crate::diagnose::{Context, diagnose_in, envoy_generated};
use crate::evidence::Evidence;
use crate::model::LogLine;
use crate::objects::{Cited, cite};
use crate::topology::{PodInfo, PodRole, Topology};

/// JSON schema identifier of `trace -o json`.
pub const SCHEMA: &str = "meshtrace.trace/v1";

/// Where a hop's line was read.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRef {
    /// File (bundle path included).
    pub file: String,
    /// 1-based line.
    pub line: u64,
}

/// One hop of the request.
#[derive(Debug, Clone, Serialize)]
pub struct TraceHop {
    /// 1-based position from the client inwards.
    pub index: usize,
    /// `ingress-gateway`, `local-gateway`, `activator`, `predictor`, `transformer`, …, `unknown`.
    pub role: String,
    /// Pod namespace, when known.
    pub namespace: Option<String>,
    /// Pod name, when known.
    pub pod: Option<String>,
    /// `gateway`, `inbound` or `outbound`.
    pub direction: String,
    /// The Envoy listener address (downstream local address).
    pub listener: Option<String>,
    /// x-request-id at this hop.
    pub request_id: Option<String>,
    /// Status this hop returned.
    pub status: Option<u16>,
    /// Response flags (short names).
    pub flags: Vec<String>,
    /// Response code details as logged.
    pub details: Option<String>,
    /// Start time (RFC 3339).
    pub start: Option<String>,
    /// Total duration in this hop (ms).
    pub duration_ms: Option<u64>,
    /// Upstream service time (ms).
    pub upstream_service_time_ms: Option<u64>,
    /// Time spent in this hop itself: its duration minus the next hop's (ms).
    pub self_time_ms: Option<u64>,
    /// Upstream host.
    pub upstream_host: Option<String>,
    /// What the upstream host is (pod/service/unknown).
    pub upstream_is: Option<String>,
    /// Upstream cluster.
    pub upstream_cluster: Option<String>,
    /// Retry attempt number when this hop was tried more than once.
    pub attempt: Option<usize>,
    /// The access-log line.
    pub evidence: EvidenceRef,
}

/// The trace of one request.
#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// What the user asked for.
    pub query: String,
    /// x-request-ids along the path (they can change at a gateway).
    pub request_ids: Vec<String>,
    /// Status the client got.
    pub status: Option<u16>,
    /// Did the request succeed?
    pub succeeded: bool,
    /// 1-based index of the hop that produced the status.
    pub origin_hop: usize,
    /// Cause class.
    pub cause: Cause,
    /// One paragraph.
    pub summary: String,
    /// What to do.
    pub fix: String,
    /// Config objects cited, as `kind/namespace/name`.
    pub objects: Vec<String>,
    /// Why each object is cited.
    pub citations: Vec<Cited>,
    /// Readings of the origin hop's flags, details and transport failure.
    pub evidence: Vec<String>,
    /// The hops, client first.
    pub hops: Vec<TraceHop>,
    /// Remarks: ambiguities, what was skipped.
    pub notes: Vec<String>,
}

/// The pod that wrote a line: from the log's path, else from the line's own addresses.
pub fn pod_of<'t>(topo: &'t Topology, l: &LogLine) -> Option<&'t PodInfo> {
    if let Some(p) = &l.pod
        && let Some((ns, name)) = p.split_once('/')
        && let Some(info) = topo.pod(ns, name)
    {
        return Some(info);
    }
    let r = &l.record;
    let ip = |a: Option<meshtrace_parsers::address::Address<'_>>| {
        a.and_then(|a| a.ip())
            .filter(|ip: &IpAddr| !ip.is_loopback())
    };
    let inbound = r.upstream_cluster().is_some_and(|c| c.is_inbound());
    let candidates = if inbound {
        [ip(r.downstream_local()), None]
    } else {
        [ip(r.upstream_local()), ip(r.downstream_local())]
    };
    candidates
        .into_iter()
        .flatten()
        .find_map(|ip| topo.pod_by_ip(ip))
}

/// Role (`ingress-gateway`, `activator`, …) and direction (`gateway`, `inbound`, `outbound`)
/// of the hop a record was logged at.
pub fn role_and_direction(
    topo: &Topology,
    ctx: &Context,
    pod: Option<&PodInfo>,
    r: &RawRecord<'_>,
) -> (String, &'static str) {
    let inbound = r.upstream_cluster().is_some_and(|c| c.is_inbound());
    let port = r.downstream_local().and_then(|a| a.port());
    match pod {
        Some(p) if p.role == PodRole::IngressGateway => (
            topo.gateway_listener_role(p, port.unwrap_or(0)).to_string(),
            "gateway",
        ),
        Some(p) => {
            // A connection refused on the pod's own address (no cluster: `filter_chain_not_found`)
            // came in through the sidecar's inbound listener.
            let own_listener = r.upstream_cluster().is_none()
                && r.downstream_local()
                    .and_then(|a| a.ip())
                    .is_some_and(|ip| p.ips.contains(&ip));
            (
                p.role.name().to_string(),
                if inbound || own_listener {
                    "inbound"
                } else {
                    "outbound"
                },
            )
        }
        None => {
            let local_ip = if inbound {
                r.downstream_local()
            } else {
                r.upstream_local()
            }
            .and_then(|a| a.ip());
            let revision_sni = r
                .sni()
                .and_then(meshtrace_parsers::cluster::parse_istio_sni)
                .map(|(_, _, _, host)| {
                    host.split('.')
                        .next()
                        .unwrap_or("")
                        .trim_end_matches("-private")
                })
                .is_some_and(crate::diagnose::is_knative_revision);
            let role = if local_ip.is_some_and(|ip| ctx.activators.contains(&ip)) {
                "activator"
            } else if inbound && revision_sni {
                "predictor"
            } else if !inbound && port == Some(8081) {
                "local-gateway"
            } else if !inbound && matches!(port, Some(8443) | Some(8080)) {
                "ingress-gateway"
            } else {
                "unknown"
            };
            let dir = if inbound {
                "inbound"
            } else if role.ends_with("gateway") {
                "gateway"
            } else {
                "outbound"
            };
            (role.to_string(), dir)
        }
    }
}

/// Trace the request named by `start`. `None` when no line matches.
pub fn trace(
    ev: &Evidence,
    query: &str,
    start: &Start,
    include_probes: bool,
) -> Option<TraceReport> {
    let lines = &ev.logs.records;
    let corr = correlate(lines, start, include_probes);
    if corr.hops.is_empty() {
        return None;
    }
    let topo = &ev.topology;
    let mut ctx = Context::from_records(lines.iter().map(|l| &l.record));
    for p in &topo.pods {
        if p.role == PodRole::Activator {
            ctx.activators.extend(p.ips.iter().copied());
        }
        if !p.has_sidecar {
            ctx.without_sidecar.extend(p.ips.iter().copied());
        }
    }
    let recs: Vec<&RawRecord<'_>> = corr.hops.iter().map(|&i| &lines[i].record).collect();
    let pods: Vec<Option<&str>> = corr.hops.iter().map(|&i| lines[i].pod.as_deref()).collect();
    let v = diagnose_in(&recs, &pods, &ctx);
    let order: Vec<usize> = v.order.iter().map(|&k| corr.hops[k]).collect();

    // Retry attempts: the same proxy hop (pod, listener, cluster) logged more than once, numbered
    // in the order they started (a proxy may give each attempt a new x-request-id).
    let key = |l: &LogLine| {
        (
            l.pod.clone(),
            l.record
                .get(Slot::DownstreamLocalAddress)
                .map(str::to_string),
            l.record.get(Slot::UpstreamCluster).map(str::to_string),
        )
    };
    let mut hops = Vec::with_capacity(order.len());
    for (n, &i) in order.iter().enumerate() {
        let l = &lines[i];
        let r = &l.record;
        let pod = pod_of(topo, l);
        let (role, direction) = role_and_direction(topo, &ctx, pod, r);
        let mut same: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&j| key(&lines[j]) == key(l))
            .collect();
        same.sort_by_key(|&j| (lines[j].record.start_time(), j));
        let attempt = (same.len() > 1).then(|| same.iter().position(|&j| j == i).unwrap_or(0) + 1);
        let next = order.get(n + 1).map(|&j| &lines[j].record);
        let self_time = match (r.duration_ms(), next.and_then(|x| x.duration_ms())) {
            (Some(a), Some(b)) => Some(a.saturating_sub(b)),
            (Some(a), None) => Some(a),
            _ => None,
        };
        let (ns, name) = match (pod, &l.pod) {
            (Some(p), _) => (Some(p.namespace.clone()), Some(p.name.clone())),
            (None, Some(p)) => match p.split_once('/') {
                Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
                None => (None, None),
            },
            _ => (None, None),
        };
        hops.push(TraceHop {
            index: n + 1,
            role,
            namespace: ns,
            pod: name,
            direction: direction.to_string(),
            listener: r.value(Slot::DownstreamLocalAddress).map(str::to_string),
            request_id: r.request_id().map(str::to_string),
            status: r.status(),
            flags: r.flags().iter().map(|f| f.short().to_string()).collect(),
            details: r.value(Slot::ResponseCodeDetails).map(str::to_string),
            start: r
                .start_time()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            duration_ms: r.duration_ms(),
            upstream_service_time_ms: r.upstream_service_time_ms(),
            self_time_ms: self_time,
            upstream_host: r.value(Slot::UpstreamHost).map(str::to_string),
            upstream_is: r
                .upstream_host()
                .and_then(|a| a.socket())
                .map(|s| topo.describe(s)),
            upstream_cluster: r.value(Slot::UpstreamCluster).map(str::to_string),
            attempt,
            evidence: EvidenceRef {
                file: l.input.to_string(),
                line: l.line,
            },
        });
    }
    let origin_line = corr.hops[v.origin];
    let origin_pos = order.iter().position(|&i| i == origin_line).unwrap_or(0);
    let origin = &lines[origin_line];
    let origin_pod = pod_of(topo, origin);
    // The hop that sent the origin hop its request (or connection), when it is in the trace.
    let caller = origin_pos
        .checked_sub(1)
        .map(|p| &lines[order[p]].record)
        .filter(|c| crate::diagnose::links_to(c, &origin.record));
    let mut citations = cite(
        &ev.objects,
        topo,
        &origin.record,
        origin_pod,
        caller,
        v.cause,
    );
    citations.extend(crate::configcite::cite_config(
        &ev.config_dumps,
        origin.pod.as_deref(),
        &origin.record,
        v.cause,
    ));
    let succeeded = v.cause == Cause::Ok;
    let mut fix = v.fix.clone();
    let origin_hop = &hops[origin_pos];
    if matches!(v.cause, Cause::MissingSidecar | Cause::PlaintextToMtls)
        && origin_hop.direction == "gateway"
    {
        let caller = origin
            .record
            .downstream_remote()
            .and_then(|a| a.ip())
            .and_then(|ip| topo.pod_by_ip(ip))
            .map(|p| {
                format!(
                    "{} ({})",
                    p.reference(),
                    if p.has_sidecar {
                        "has a sidecar"
                    } else {
                        "no sidecar"
                    }
                )
            })
            .unwrap_or_else(|| {
                origin
                    .record
                    .get(Slot::DownstreamRemoteAddress)
                    .unwrap_or("the caller")
                    .to_string()
            });
        fix = format!(
            "The caller {caller} speaks plaintext to the {} listener {}, which accepts only mTLS. Either put the caller in the mesh (inject istio-proxy), or give it a plaintext entry point: a Gateway server on port 8080 with protocol HTTP selecting the same gateway pods, an ExternalName Service pointing at the gateway and a VirtualService that sets Host to the predictor (the plain-HTTP gateway pattern of Knative's net-istio: a `knative-http-gateway` Gateway on port 8080), or OpenShift AI's private endpoint for KServe.",
            origin_hop.role,
            origin_hop.listener.as_deref().unwrap_or("-")
        );
    }
    if v.cause == Cause::PlaintextToMtls
        && origin_hop.direction == "inbound"
        && let Some(c) = caller
    {
        let caller_pod = c
            .upstream_local()
            .or_else(|| c.downstream_remote())
            .and_then(|a| a.ip())
            .and_then(|ip| topo.pod_by_ip(ip))
            .or_else(|| {
                origin_pos
                    .checked_sub(1)
                    .and_then(|p| pod_of(topo, &lines[order[p]]))
            });
        let dr = citations
            .iter()
            .find(|c| c.object.starts_with("DestinationRule/"))
            .map(|c| c.object.clone());
        fix = format!(
            "The sidecar of {} sent plaintext to {} on {}, whose inbound listener accepts only mTLS (PeerAuthentication STRICT), so the connection found no filter chain. {}Remove the DestinationRule's `tls` override (Istio's auto mTLS then applies) or set `tls.mode: ISTIO_MUTUAL` for this host; PERMISSIVE on the destination would only hide that the traffic is not encrypted.",
            caller_pod
                .map(|p| p.reference())
                .unwrap_or_else(|| "the calling pod".into()),
            origin_hop.listener.as_deref().unwrap_or("-"),
            origin_pod
                .map(|p| p.reference())
                .unwrap_or_else(|| "the destination".into()),
            dr.map(|d| format!("{d} sets the TLS mode its proxy used for this host. "))
                .unwrap_or_default()
        );
    }
    let summary = summarise(
        &hops,
        origin_pos,
        &origin.record,
        &lines[order[0]].record,
        v.cause,
        order.len(),
    );
    let mut notes = corr.notes.clone();
    // Retries multiply: each proxy with a retry policy repeats what is behind it.
    let mut tries: Vec<(String, usize)> = Vec::new();
    for h in &hops {
        if h.attempt.is_some() {
            let what = format!(
                "{} {} {}",
                h.role,
                h.direction,
                h.listener.as_deref().unwrap_or("-")
            );
            match tries.iter_mut().find(|(w, _)| *w == what) {
                Some((_, n)) => *n += 1,
                None => tries.push((what, 1)),
            }
        }
    }
    if !tries.is_empty() {
        let parts: Vec<String> = tries.iter().map(|(w, n)| format!("{w}: {n}")).collect();
        notes.push(format!(
            "retries: this one client request was tried {} (each proxy with a retry policy repeats everything behind it; Istio's default retries 503s twice)",
            parts.join(", ")
        ));
    }
    let skipped = ev.logs.skipped.len();
    if skipped > 0 {
        notes.push(format!("{skipped} line(s) of the evidence were not access-log records (see `meshtrace explain` for them)"));
    }
    notes.extend(ev.problems.iter().map(|p| format!("skipped: {p}")));
    Some(TraceReport {
        schema: SCHEMA,
        query: query.to_string(),
        request_ids: {
            let mut ids: Vec<String> = Vec::new();
            for h in &hops {
                if let Some(id) = &h.request_id
                    && !ids.contains(id)
                {
                    ids.push(id.clone());
                }
            }
            ids
        },
        status: v.status,
        succeeded,
        origin_hop: origin_pos + 1,
        cause: v.cause,
        summary,
        fix,
        objects: citations.iter().map(|c| c.object.clone()).collect(),
        citations,
        evidence: v.evidence,
        hops,
        notes,
    })
}

fn summarise(
    hops: &[TraceHop],
    origin: usize,
    r: &RawRecord<'_>,
    outer: &RawRecord<'_>,
    cause: Cause,
    n: usize,
) -> String {
    let h = &hops[origin];
    let status = h
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let who = format!(
        "hop {} of {n}, the {}{} ({} {})",
        origin + 1,
        h.role,
        match (&h.namespace, &h.pod) {
            (Some(ns), Some(p)) => format!(" {ns}/{p}"),
            _ => String::new(),
        },
        h.direction,
        h.listener.as_deref().unwrap_or("-")
    );
    let request = match (outer.method(), outer.authority(), outer.path()) {
        (m, Some(a), Some(p)) => format!("{} {a}{p}", m.unwrap_or("-")),
        _ if outer.is_tcp() => format!(
            "the TCP connection from {} to {}",
            outer.get(Slot::DownstreamRemoteAddress).unwrap_or("-"),
            outer.get(Slot::DownstreamLocalAddress).unwrap_or("-")
        ),
        _ => "the request".into(),
    };
    let client_status = outer.status();
    let got = if h.status == Some(0) && client_status.is_some_and(|s| s != 0) && origin > 0 {
        format!(
            "got {}: the connection its proxy opened to the next hop was closed",
            client_status.map(|s| s.to_string()).unwrap_or_default()
        )
    } else if h.status == Some(0) {
        "was closed (status 0)".to_string()
    } else {
        format!("got {status}")
    };
    let how = if cause == Cause::Ok {
        format!("{request} succeeded with {status}")
    } else if cause == Cause::ActivatorError {
        format!(
            "{request} got {status} from {who}: the activator answered by itself — its inbound hop has no outbound hop to a revision pod for this request"
        )
    } else if !envoy_generated(r) {
        if origin + 1 == n && r.upstream_cluster().is_some_and(|c| c.is_inbound()) {
            format!(
                "{request} got {status} from the application behind {who}: every proxy on the path relayed it (`via_upstream`)"
            )
        } else {
            format!(
                "{request} {got}, relayed by {who} from its upstream {}; the next hop is not in the evidence",
                h.upstream_host.as_deref().unwrap_or("-")
            )
        }
    } else {
        let mut what = Vec::new();
        if !h.flags.is_empty() {
            what.push(format!("flags {}", h.flags.join(",")));
        }
        if let Some(d) = &h.details {
            what.push(format!("details {d}"));
        }
        format!(
            "{request} {got}, by the proxy at {who} ({})",
            what.join(", ")
        )
    };
    format!("{how}: {}.", cause.title())
}
