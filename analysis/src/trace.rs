//! `trace`: one request's hop-by-hop path, the hop that produced its status, the cause, the
//! configuration behind it and the fix. Pure: evidence in, [`TraceReport`] out.

use std::net::IpAddr;

use serde::Serialize;

use meshtrace_parsers::Slot;
use meshtrace_parsers::record::RawRecord;

use crate::causes::Cause;
use crate::correlate::{Start, correlate_at};
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
    /// What an AI gateway logged about the request (`gen_ai.*`: model, tokens); empty otherwise.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub gen_ai: std::collections::BTreeMap<String, String>,
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
    /// The fix as Kubernetes objects ready for `kubectl apply -f -`, when the objects behind
    /// the verdict are known ([`crate::fixes`]); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_apply: Option<crate::fixes::Fix>,
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
    trace_in(
        ev,
        &ev.logs.records,
        &ev.context(),
        query,
        (start, None),
        include_probes,
    )
}

/// [`trace`] over `lines` rather than the evidence's own records (the window of records
/// `failures` holds while streaming), with what is known about roles (`ctx`). The evidence
/// gives the topology, objects and config dumps. With an anchor (an index into `lines`), the
/// request traced is that line's (see [`correlate_at`]).
pub fn trace_in(
    ev: &Evidence,
    lines: &[LogLine],
    ctx: &Context,
    query: &str,
    (start, anchor): (&Start, Option<usize>),
    include_probes: bool,
) -> Option<TraceReport> {
    let mut corr = correlate_at(lines, start, anchor, include_probes);
    // Progress lines (`%ACCESS_LOG_TYPE%` `DownstreamPeriodic`…) are not hops: the end line is.
    let (progress, ended): (Vec<usize>, Vec<usize>) = corr
        .hops
        .iter()
        .partition(|&&i| lines[i].record.is_progress_line());
    if !ended.is_empty() {
        corr.hops = ended;
    }
    if corr.hops.is_empty() {
        return None;
    }
    let topo = &ev.topology;
    let recs: Vec<&RawRecord<'_>> = corr.hops.iter().map(|&i| &lines[i].record).collect();
    let pods: Vec<Option<&str>> = corr.hops.iter().map(|&i| lines[i].pod.as_deref()).collect();
    let v = diagnose_in(&recs, &pods, ctx);
    let order: Vec<usize> = v.order.iter().map(|&k| corr.hops[k]).collect();
    let hops = hop_rows(lines, topo, ctx, &order);
    let origin_line = corr.hops[v.origin];
    let origin_pos = order.iter().position(|&i| i == origin_line).unwrap_or(0);
    let origin = Origin::at(lines, topo, &order, origin_pos, origin_line);
    let citations = citations_for(ev, &origin, v.cause);
    let succeeded = v.cause == Cause::Ok;
    let fix = fix_for(
        topo,
        &origin,
        &hops[origin_pos],
        &citations,
        v.cause,
        &v.fix,
    );
    let summary = summarise(
        &hops,
        origin_pos,
        &origin.line.record,
        &lines[order[0]].record,
        v.cause,
        order.len(),
    );
    let mut notes = trace_notes(ev, &corr.notes, &hops);
    notes.extend(crate::inference::progress_note(lines, &progress));
    for h in &hops {
        if !h.gen_ai.is_empty() {
            let kv: Vec<String> = h.gen_ai.iter().map(|(k, v)| format!("{k}={v}")).collect();
            notes.push(format!(
                "hop {} ({}) logged {}",
                h.index,
                h.role,
                kv.join(" ")
            ));
        }
    }
    notes.extend(crate::inference::edge_request_id_note(&recs));
    // Inference gateways: the endpoint picker behind an ext_proc failure, the HTTPRoute
    // timeout behind a gateway 504 UT.
    let (mut cause, mut summary, mut fix, mut citations) = (v.cause, summary, fix, citations);
    if let Some(r) =
        crate::inference::ext_proc_reading_at(ev, &origin.line.record, origin.line.pod.as_deref())
    {
        (cause, summary, fix) = (r.cause, r.summary, r.fix);
        citations.extend(r.cited);
    }
    citations.extend(crate::inference::route_timeout_citation(
        ev,
        &origin.line.record,
    ));
    for &i in &order {
        if let Some(c) = crate::inference::route_rule_citation(ev, &lines[i].record)
            && !citations.iter().any(|x| x.object == c.object)
        {
            citations.push(c);
        }
    }
    // Istio gateways, Knative and Seldon Core: what their objects add to the verdict.
    let site = crate::reading::Site {
        ev,
        lines,
        order: &order,
        origin_pos,
        cause,
    };
    crate::refine::apply(&site, &mut summary, &mut fix, &mut citations, &mut notes);
    // Inference gateways: the endpoint picker's own line about this request, as a hop.
    let (mut hops, mut origin_pos) = (hops, origin_pos);
    let pod_names: Vec<String> = order
        .iter()
        .filter_map(|&i| lines[i].pod.as_deref().map(str::to_string))
        .collect();
    let pod_refs: Vec<&str> = pod_names.iter().map(String::as_str).collect();
    let epp = crate::inference::join_epp(ev, lines, &order, &pod_refs);
    notes.extend(epp.notes);
    if let Some((gw_pos, h)) = epp.hop {
        hops.insert(gw_pos + 1, picker_row(h));
        for (n, h) in hops.iter_mut().enumerate() {
            h.index = n + 1;
        }
        if epp.reading.is_some() {
            origin_pos = gw_pos + 1;
        } else if origin_pos > gw_pos {
            origin_pos += 1;
        }
    }
    if let Some(r) = epp.reading {
        (cause, summary, fix) = (r.cause, r.summary, r.fix);
        citations.extend(r.cited);
    }
    let fix_apply = crate::fixes::for_trace(&crate::fixes::Site {
        objects: &ev.objects,
        topo,
        origin: &origin.line.record,
        origin_pod: origin.pod,
        caller_pod: origin
            .line
            .record
            .downstream_remote()
            .and_then(|a| a.ip())
            .and_then(|ip| topo.pod_by_ip(ip)),
        cause,
        from_record: v.apply.as_ref(),
    });
    Some(TraceReport {
        schema: SCHEMA,
        query: query.to_string(),
        request_ids: request_ids(&hops),
        status: v.status,
        succeeded,
        origin_hop: origin_pos + 1,
        cause,
        summary,
        fix,
        fix_apply,
        objects: citations.iter().map(|c| c.object.clone()).collect(),
        citations,
        evidence: v.evidence,
        hops,
        notes,
    })
}

/// The endpoint picker's line as a row of the hop table (its index is set by the caller).
fn picker_row(h: crate::inference::PickerHop) -> TraceHop {
    TraceHop {
        index: 0,
        role: "endpoint-picker".into(),
        namespace: h.namespace,
        pod: h.pod,
        direction: "ext_proc".into(),
        listener: None,
        request_id: Some(h.request_id),
        status: h.status,
        flags: Vec::new(),
        details: Some(h.details),
        start: h.start,
        duration_ms: None,
        upstream_service_time_ms: None,
        self_time_ms: None,
        upstream_host: h.upstream_host,
        upstream_is: h.upstream_is,
        upstream_cluster: None,
        attempt: None,
        gen_ai: h.gen_ai,
        evidence: EvidenceRef {
            file: h.file,
            line: h.line,
        },
    }
}

/// The hop table, client first (`order` holds indexes into `lines`).
fn hop_rows(lines: &[LogLine], topo: &Topology, ctx: &Context, order: &[usize]) -> Vec<TraceHop> {
    order
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let next = order.get(n + 1).map(|&j| &lines[j].record);
            hop_row(topo, ctx, &lines[i], n, next, attempt_of(lines, order, i))
        })
        .collect()
}

/// Retry attempt number of line `i`: the same proxy hop (pod, listener, cluster) logged more
/// than once, numbered in the order they started (a proxy may give each attempt a new
/// x-request-id). `None` when the hop was logged once.
fn attempt_of(lines: &[LogLine], order: &[usize], i: usize) -> Option<usize> {
    let key = |l: &LogLine| {
        (
            l.pod.clone(),
            l.record
                .get(Slot::DownstreamLocalAddress)
                .map(str::to_string),
            l.record.get(Slot::UpstreamCluster).map(str::to_string),
        )
    };
    let mut same: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&j| key(&lines[j]) == key(&lines[i]))
        .collect();
    same.sort_by_key(|&j| (lines[j].record.start_time(), j));
    (same.len() > 1).then(|| same.iter().position(|&j| j == i).unwrap_or(0) + 1)
}

/// One row of the hop table: hop `n` (0-based) logged by `l`, `next` being the hop after it.
pub(crate) fn hop_row(
    topo: &Topology,
    ctx: &Context,
    l: &LogLine,
    n: usize,
    next: Option<&RawRecord<'_>>,
    attempt: Option<usize>,
) -> TraceHop {
    let r = &l.record;
    let pod = pod_of(topo, l);
    let (role, direction) = role_and_direction(topo, ctx, pod, r);
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
    TraceHop {
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
        upstream_is: r.socket(Slot::UpstreamHost).map(|s| topo.describe(s)),
        upstream_cluster: r.value(Slot::UpstreamCluster).map(str::to_string),
        attempt,
        gen_ai: crate::inference::gen_ai_fields(r),
        evidence: EvidenceRef {
            file: l.input.to_string(),
            line: l.line,
        },
    }
}

/// The hop that produced the status, with its pod and its neighbour towards the client.
struct Origin<'a> {
    /// The origin hop's line.
    line: &'a LogLine,
    /// The pod that logged it.
    pod: Option<&'a PodInfo>,
    /// The hop before it in the trace, if any.
    prev: Option<&'a LogLine>,
    /// That hop's record when it sent the origin hop its request (or connection).
    caller: Option<&'a RawRecord<'static>>,
}

impl<'a> Origin<'a> {
    /// The origin hop at position `pos` of `order`, logged on `lines[line]`.
    fn at(
        lines: &'a [LogLine],
        topo: &'a Topology,
        order: &[usize],
        pos: usize,
        line: usize,
    ) -> Origin<'a> {
        let origin = &lines[line];
        let prev = pos.checked_sub(1).map(|p| &lines[order[p]]);
        Origin {
            line: origin,
            pod: pod_of(topo, origin),
            prev,
            caller: prev
                .map(|l| &l.record)
                .filter(|c| crate::diagnose::links_to(c, &origin.record)),
        }
    }
}

/// The configuration behind the verdict: Kubernetes objects, then config-dump entries.
fn citations_for(ev: &Evidence, origin: &Origin<'_>, cause: Cause) -> Vec<Cited> {
    let mut citations = cite(
        &ev.objects,
        &ev.topology,
        &origin.line.record,
        origin.pod,
        origin.caller,
        cause,
    );
    citations.extend(crate::configcite::cite_config(
        &ev.config_dumps,
        origin.line.pod.as_deref(),
        &origin.line.record,
        cause,
    ));
    citations
}

/// The fix: the diagnosis's, made specific when plaintext met an mTLS-only listener at a
/// gateway or at a sidecar's inbound listener.
fn fix_for(
    topo: &Topology,
    origin: &Origin<'_>,
    origin_hop: &TraceHop,
    citations: &[Cited],
    cause: Cause,
    fix: &str,
) -> String {
    let mut fix = fix.to_string();
    if matches!(cause, Cause::MissingSidecar | Cause::PlaintextToMtls)
        && origin_hop.direction == "gateway"
    {
        fix = gateway_plaintext_fix(topo, origin.line, origin_hop);
    }
    if cause == Cause::PlaintextToMtls
        && origin_hop.direction == "inbound"
        && let Some(c) = origin.caller
    {
        fix = inbound_plaintext_fix(topo, origin, c, origin_hop, citations);
    }
    fix
}

/// Fix for a caller speaking plaintext to a gateway listener that accepts only mTLS.
fn gateway_plaintext_fix(topo: &Topology, origin: &LogLine, origin_hop: &TraceHop) -> String {
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
    format!(
        "The caller {caller} speaks plaintext to the {} listener {}, which accepts only mTLS. Either put the caller in the mesh (inject istio-proxy), or give it a plaintext entry point: a Gateway server on port 8080 with protocol HTTP selecting the same gateway pods, an ExternalName Service pointing at the gateway and a VirtualService that sets Host to the predictor (the plain-HTTP gateway pattern of Knative's net-istio: a `knative-http-gateway` Gateway on port 8080), or OpenShift AI's private endpoint for KServe.",
        origin_hop.role,
        origin_hop.listener.as_deref().unwrap_or("-")
    )
}

/// Fix for a sidecar that sent plaintext (`caller`) to a sidecar inbound listener that accepts
/// only mTLS, naming the DestinationRule behind the caller's TLS mode when one is cited.
fn inbound_plaintext_fix(
    topo: &Topology,
    origin: &Origin<'_>,
    caller: &RawRecord<'_>,
    origin_hop: &TraceHop,
    citations: &[Cited],
) -> String {
    let caller_pod = caller
        .upstream_local()
        .or_else(|| caller.downstream_remote())
        .and_then(|a| a.ip())
        .and_then(|ip| topo.pod_by_ip(ip))
        .or_else(|| origin.prev.and_then(|l| pod_of(topo, l)));
    let dr = citations
        .iter()
        .find(|c| c.object.starts_with("DestinationRule/"))
        .map(|c| c.object.clone());
    format!(
        "The sidecar of {} sent plaintext to {} on {}, whose inbound listener accepts only mTLS (PeerAuthentication STRICT), so the connection found no filter chain. {}Remove the DestinationRule's `tls` override (Istio's auto mTLS then applies) or set `tls.mode: ISTIO_MUTUAL` for this host; PERMISSIVE on the destination would only hide that the traffic is not encrypted.",
        caller_pod
            .map(|p| p.reference())
            .unwrap_or_else(|| "the calling pod".into()),
        origin_hop.listener.as_deref().unwrap_or("-"),
        origin
            .pod
            .map(|p| p.reference())
            .unwrap_or_else(|| "the destination".into()),
        dr.map(|d| format!("{d} sets the TLS mode its proxy used for this host. "))
            .unwrap_or_default()
    )
}

/// The report's notes: correlation remarks, how retries multiplied, what was skipped.
fn trace_notes(ev: &Evidence, correlation_notes: &[String], hops: &[TraceHop]) -> Vec<String> {
    let mut notes = correlation_notes.to_vec();
    notes.extend(retry_note(hops));
    let skipped = ev.logs.skipped.len();
    if skipped > 0 {
        notes.push(format!("{skipped} line(s) of the evidence were not access-log records (see `meshtrace explain` for them)"));
    }
    notes.extend(ev.logs.notes.iter().cloned());
    notes.extend(ev.problems.iter().map(|p| format!("skipped: {p}")));
    notes
}

/// How retries multiplied: each proxy with a retry policy repeats what is behind it. `None`
/// when no hop was tried more than once.
fn retry_note(hops: &[TraceHop]) -> Option<String> {
    let mut tries: Vec<(String, usize)> = Vec::new();
    for h in hops {
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
    if tries.is_empty() {
        return None;
    }
    let parts: Vec<String> = tries.iter().map(|(w, n)| format!("{w}: {n}")).collect();
    Some(format!(
        "retries: this one client request was tried {} (each proxy with a retry policy repeats everything behind it; Istio's default retries 503s twice)",
        parts.join(", ")
    ))
}

/// The x-request-ids along the path, first seen first.
fn request_ids(hops: &[TraceHop]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for h in hops {
        if let Some(id) = &h.request_id
            && !ids.contains(id)
        {
            ids.push(id.clone());
        }
    }
    ids
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
