//! `trace -o otlp`: a rebuilt request as an OpenTelemetry OTLP/JSON `ExportTraceServiceRequest`
//! (opentelemetry-proto's JSON encoding: lowerCamelCase fields, trace and span ids in hex, enums
//! as integers, 64-bit integers as decimal strings), ready for Jaeger, Tempo or an OTel
//! collector.
//!
//! The mapping (also in `docs/live.md`): one span per hop (one access-log line), in one trace per
//! client request. A sidecar's outbound hop (the application in the pod called out) is a
//! `CLIENT` span, every other hop (a gateway or a sidecar receiving a request) a `SERVER` span.
//! Each span's parent is the hop that called it: a hop of the previous position on the path whose
//! time span holds this one's start (retry attempts of one position are siblings under the
//! attempt that sent them). Start and end come from the log (`START_TIME`, plus `DURATION`). The
//! hop that produced the client's status is the only span with an error status (its message: the
//! cause and summary), so the UI points at it. The trace id is the one the evidence carries (a
//! W3C `traceparent`, a B3 `x-b3-traceid` or Envoy's `%TRACE_ID%` logged with the hops), else a
//! stable hash of the first x-request-id, so exporting the same request twice gives the same
//! trace; span ids are stable hashes of the trace id and the hop's evidence line.

use std::io::{self, Write};

use serde::Serialize;

use crate::trace::{TraceHop, TraceReport};

/// Span kind `SPAN_KIND_SERVER` (opentelemetry-proto `trace.proto`).
pub const SPAN_KIND_SERVER: u8 = 2;
/// Span kind `SPAN_KIND_CLIENT`.
pub const SPAN_KIND_CLIENT: u8 = 3;
/// Status code `STATUS_CODE_ERROR`.
pub const STATUS_CODE_ERROR: u8 = 2;
/// Status code `STATUS_CODE_UNSET`.
pub const STATUS_CODE_UNSET: u8 = 0;

/// What the access-log line of one hop says beyond the trace's hop row (read by the command from
/// the evidence; every field optional).
#[derive(Debug, Clone, Default)]
pub struct HopExtras {
    /// `%REQ(:METHOD)%`.
    pub method: Option<String>,
    /// `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%`.
    pub path: Option<String>,
    /// `%REQ(:AUTHORITY)%`.
    pub authority: Option<String>,
    /// A trace context logged with the line: a `traceparent` header, a B3 trace id, or
    /// `%TRACE_ID%` (raw text; checked by [`trace_id_from_context`]).
    pub trace_context: Option<String>,
}

/// `ExportTraceServiceRequest` (opentelemetry-proto `collector/trace/v1`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportTraceServiceRequest {
    /// One entry per proxy (pod) that logged a hop.
    pub resource_spans: Vec<ResourceSpans>,
}

/// The spans of one resource (one proxy).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpans {
    /// The proxy's pod, namespace and workload.
    pub resource: Resource,
    /// One scope: meshtrace.
    pub scope_spans: Vec<ScopeSpans>,
}

/// A resource: its attributes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `service.name`, `k8s.pod.name`, `k8s.namespace.name`, `meshtrace.role`.
    pub attributes: Vec<KeyValue>,
}

/// Spans of one instrumentation scope.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSpans {
    /// Who made the spans.
    pub scope: Scope,
    /// The spans.
    pub spans: Vec<Span>,
}

/// The instrumentation scope.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// `meshtrace`.
    pub name: &'static str,
    /// meshtrace's version.
    pub version: &'static str,
}

/// One span: one hop.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The calling hop's span id (absent for the first hop).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent_span_id: String,
    /// `<role> <direction> <listener>`.
    pub name: String,
    /// [`SPAN_KIND_SERVER`] or [`SPAN_KIND_CLIENT`].
    pub kind: u8,
    /// Nanoseconds since the Unix epoch, as a decimal string.
    pub start_time_unix_nano: String,
    /// Nanoseconds since the Unix epoch, as a decimal string.
    pub end_time_unix_nano: String,
    /// Hop attributes.
    pub attributes: Vec<KeyValue>,
    /// Error on the hop that produced the status.
    pub status: Status,
}

/// A span's status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Why (error only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// [`STATUS_CODE_ERROR`] or [`STATUS_CODE_UNSET`].
    pub code: u8,
}

/// An attribute.
#[derive(Debug, Clone, Serialize)]
pub struct KeyValue {
    /// Attribute name (semantic-convention names where they exist, else `meshtrace.*`).
    pub key: &'static str,
    /// Its value.
    pub value: AnyValue,
}

/// An attribute value (`AnyValue`; `intValue` is an int64, a decimal string in JSON).
#[derive(Debug, Clone, Serialize)]
pub enum AnyValue {
    /// A string.
    #[serde(rename = "stringValue")]
    String(String),
    /// An integer.
    #[serde(rename = "intValue")]
    Int(String),
    /// A list.
    #[serde(rename = "arrayValue")]
    Array(ArrayValue),
}

/// A list of values.
#[derive(Debug, Clone, Serialize)]
pub struct ArrayValue {
    /// The values.
    pub values: Vec<AnyValue>,
}

fn s(key: &'static str, v: impl Into<String>) -> KeyValue {
    KeyValue {
        key,
        value: AnyValue::String(v.into()),
    }
}

fn int(key: &'static str, v: impl Into<i64>) -> KeyValue {
    KeyValue {
        key,
        value: AnyValue::Int(v.into().to_string()),
    }
}

fn strings(key: &'static str, v: &[String]) -> KeyValue {
    KeyValue {
        key,
        value: AnyValue::Array(ArrayValue {
            values: v.iter().cloned().map(AnyValue::String).collect(),
        }),
    }
}

/// FNV-1a 64 over `data` from `seed`: stable across versions and platforms (ids must not change
/// between two exports of the same request).
fn fnv(seed: u64, data: &[u8]) -> u64 {
    let mut h = seed;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A 16-byte trace id from text (never all zeros).
fn hashed_trace_id(text: &str) -> [u8; 16] {
    let a = fnv(FNV_OFFSET, text.as_bytes());
    let b = fnv(a ^ 0x9e37_79b9_7f4a_7c15, text.as_bytes());
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_be_bytes());
    id[8..].copy_from_slice(&b.to_be_bytes());
    if id == [0; 16] {
        id[15] = 1;
    }
    id
}

fn is_hex(v: &str, len: usize) -> bool {
    v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The trace id a logged trace context carries, as 32 lowercase hex digits: a W3C `traceparent`
/// (`00-<32 hex>-<16 hex>-<2 hex>`), a B3 trace id (16 or 32 hex; 16 is left-padded with zeros
/// as B3 specifies), a single-header `b3` (`<trace id>-<span id>[-…]`) or Envoy's `%TRACE_ID%`.
/// `None` for anything else, `-`, or an all-zero (invalid) id.
pub fn trace_id_from_context(raw: &str) -> Option<String> {
    let v = raw.trim().trim_matches('"');
    let first = v.split('-').collect::<Vec<_>>();
    let candidate = match first.as_slice() {
        // traceparent: version-traceid-parentid-flags
        [ver, tid, pid, flags, ..] if is_hex(ver, 2) && is_hex(pid, 16) && is_hex(flags, 2) => {
            (*tid).to_string()
        }
        // b3 single header: traceid-spanid[-sampled[-parentspanid]]
        [tid, sid, ..] if is_hex(sid, 16) => (*tid).to_string(),
        [tid] => (*tid).to_string(),
        _ => return None,
    };
    let id = if is_hex(&candidate, 32) {
        candidate.to_ascii_lowercase()
    } else if is_hex(&candidate, 16) {
        format!("{:0>32}", candidate.to_ascii_lowercase())
    } else {
        return None;
    };
    (id.bytes().any(|b| b != b'0')).then_some(id)
}

/// Nanoseconds since the epoch of an RFC 3339 time.
fn nanos(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()?
        .timestamp_nanos_opt()
}

/// `ip:port` split (IPv6 in brackets or bare); `None` when there is no numeric port.
fn split_host_port(a: &str) -> Option<(&str, i64)> {
    let (h, p) = a.rsplit_once(':')?;
    let port: i64 = p.parse().ok()?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    (!h.is_empty()).then_some((h, port))
}

/// The workload of a pod from its name, by the names Kubernetes controllers give pods: a
/// Deployment's `<name>-<pod-template-hash>-<5>` and a DaemonSet's or Job's `<name>-<5>` (both
/// suffixes from Kubernetes' safe alphabet), a StatefulSet's `<name>-<ordinal>`.
pub fn workload_of(pod: &str) -> &str {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let safe = |seg: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&seg.len()) && seg.bytes().all(|b| SAFE.contains(&b))
    };
    let Some((rest, last)) = pod.rsplit_once('-') else {
        return pod;
    };
    if safe(last, 5, 5) {
        if let Some((name, hash)) = rest.rsplit_once('-')
            && safe(hash, 6, 10)
            && !name.is_empty()
        {
            return name;
        }
        if !rest.is_empty() {
            return rest;
        }
    }
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty() {
        return rest;
    }
    pod
}

/// Start and end (ns) of a hop; `None` when its start time is unknown.
fn window(h: &TraceHop) -> Option<(i64, i64)> {
    let start = nanos(h.start.as_deref()?)?;
    let dur = i64::try_from(h.duration_ms.unwrap_or(0))
        .unwrap_or(i64::MAX / 1_000_000)
        .saturating_mul(1_000_000);
    Some((start, start.saturating_add(dur)))
}

/// The same position on the path: retry attempts of one hop share it.
fn position_key(h: &TraceHop) -> (&Option<String>, &Option<String>, &str, &Option<String>) {
    (&h.namespace, &h.pod, h.direction.as_str(), &h.listener)
}

/// The index of each hop's calling hop (`None` for the first position's hops).
pub fn parents(hops: &[TraceHop]) -> Vec<Option<usize>> {
    // Positions: runs of consecutive hops at the same place (the trace lists attempts together).
    let mut layer_of = Vec::with_capacity(hops.len());
    let mut layers: Vec<Vec<usize>> = Vec::new();
    for (i, h) in hops.iter().enumerate() {
        let same = i > 0 && position_key(&hops[i - 1]) == position_key(h);
        if !same {
            layers.push(Vec::new());
        }
        if let Some(l) = layers.last_mut() {
            l.push(i);
        }
        layer_of.push(layers.len() - 1);
    }
    // Milliseconds in the log: allow one either side.
    const SLACK: i64 = 1_000_000;
    hops.iter()
        .enumerate()
        .map(|(i, h)| {
            let layer = layer_of[i];
            if layer == 0 {
                return None;
            }
            let callers = &layers[layer - 1];
            let me = window(h);
            let holds = |c: usize| match (window(&hops[c]), me) {
                (Some((cs, ce)), Some((ms, _))) => cs - SLACK <= ms && ms <= ce + SLACK,
                _ => false,
            };
            let same_id = |c: usize| h.request_id.is_some() && hops[c].request_id == h.request_id;
            let started_before = |c: usize| match (window(&hops[c]), me) {
                (Some((cs, _)), Some((ms, _))) => cs <= ms + SLACK,
                _ => false,
            };
            let start = |c: usize| window(&hops[c]).map(|w| w.0).unwrap_or(i64::MIN);
            // The caller holding this hop's start (the same request id first, then the latest
            // to start), else the latest caller that started before it, else the first.
            callers
                .iter()
                .copied()
                .filter(|&c| holds(c))
                .max_by_key(|&c| (same_id(c), start(c)))
                .or_else(|| {
                    callers
                        .iter()
                        .copied()
                        .filter(|&c| started_before(c))
                        .max_by_key(|&c| start(c))
                })
                .or_else(|| callers.first().copied())
        })
        .collect()
}

/// The OTLP request for one traced request. `extras[i]` is what hop `i`'s line adds (may be
/// shorter than the hops).
pub fn export_request(t: &TraceReport, extras: &[HopExtras]) -> ExportTraceServiceRequest {
    let trace_id = extras
        .iter()
        .filter_map(|e| e.trace_context.as_deref())
        .find_map(trace_id_from_context)
        .unwrap_or_else(|| {
            let seed = t.request_ids.first().unwrap_or(&t.query);
            hex(&hashed_trace_id(seed))
        });
    let span_ids: Vec<String> = t
        .hops
        .iter()
        .map(|h| {
            let key = format!(
                "{trace_id}\u{0}{}\u{0}{}\u{0}{}",
                h.index, h.evidence.file, h.evidence.line
            );
            let mut id = fnv(FNV_OFFSET, key.as_bytes());
            if id == 0 {
                id = 1;
            }
            hex(&id.to_be_bytes())
        })
        .collect();
    let parents = parents(&t.hops);
    // Hops without a start time get their caller's (or the earliest known) start.
    let earliest = t.hops.iter().filter_map(window).map(|w| w.0).min();
    let mut windows: Vec<(i64, i64)> = Vec::with_capacity(t.hops.len());
    for (i, h) in t.hops.iter().enumerate() {
        let w = window(h).unwrap_or_else(|| {
            let s = parents[i]
                .and_then(|p| windows.get(p).map(|w| w.0))
                .or(earliest)
                .unwrap_or(0);
            let d = i64::try_from(h.duration_ms.unwrap_or(0))
                .unwrap_or(0)
                .saturating_mul(1_000_000);
            (s, s.saturating_add(d))
        });
        windows.push(w);
    }

    let mut groups: Vec<ResourceSpans> = Vec::new();
    let mut group_keys: Vec<(Option<String>, Option<String>, String)> = Vec::new();
    for (i, h) in t.hops.iter().enumerate() {
        let extra = extras.get(i).cloned().unwrap_or_default();
        let span = span(t, h, &extra, &trace_id, &span_ids, parents[i], windows[i]);
        let key = (h.namespace.clone(), h.pod.clone(), h.role.clone());
        match group_keys.iter().position(|k| *k == key) {
            Some(g) => groups[g].scope_spans[0].spans.push(span),
            None => {
                group_keys.push(key);
                groups.push(ResourceSpans {
                    resource: resource(h),
                    scope_spans: vec![ScopeSpans {
                        scope: Scope {
                            name: "meshtrace",
                            version: env!("CARGO_PKG_VERSION"),
                        },
                        spans: vec![span],
                    }],
                });
            }
        }
    }
    ExportTraceServiceRequest {
        resource_spans: groups,
    }
}

fn resource(h: &TraceHop) -> Resource {
    let service = match &h.pod {
        Some(p) => workload_of(p).to_string(),
        None => h.role.clone(),
    };
    let mut a = vec![s("service.name", service)];
    if let Some(p) = &h.pod {
        a.push(s("k8s.pod.name", p.clone()));
    }
    if let Some(ns) = &h.namespace {
        a.push(s("k8s.namespace.name", ns.clone()));
    }
    a.push(s("meshtrace.role", h.role.clone()));
    Resource { attributes: a }
}

#[allow(clippy::too_many_arguments)]
fn span(
    t: &TraceReport,
    h: &TraceHop,
    extra: &HopExtras,
    trace_id: &str,
    span_ids: &[String],
    parent: Option<usize>,
    (start, end): (i64, i64),
) -> Span {
    let client = h.direction == "outbound";
    let idx = h.index.saturating_sub(1);
    let mut a: Vec<KeyValue> = Vec::new();
    if let Some(m) = &extra.method {
        a.push(s("http.request.method", m.clone()));
    }
    if let Some(p) = &extra.path {
        a.push(s("url.path", p.clone()));
    }
    if let Some(st) = h.status {
        a.push(int("http.response.status_code", st));
    }
    // Semantic conventions: a server span's server.* is the address that received the request;
    // a client span's server.* is what the application called, network.peer.* where it went.
    let upstream = h.upstream_host.as_deref().and_then(split_host_port);
    if client {
        if let Some(auth) = &extra.authority {
            a.push(s("server.address", auth.clone()));
        } else if let Some((host, port)) = h.listener.as_deref().and_then(split_host_port) {
            a.push(s("server.address", host));
            a.push(int("server.port", port));
        }
        if let Some((host, port)) = upstream {
            a.push(s("network.peer.address", host));
            a.push(int("network.peer.port", port));
        }
    } else if let Some((host, port)) = h.listener.as_deref().and_then(split_host_port) {
        a.push(s("server.address", host));
        a.push(int("server.port", port));
    }
    if let Some(id) = &h.request_id {
        a.push(strings(
            "http.request.header.x-request-id",
            std::slice::from_ref(id),
        ));
    }
    if let Some(n) = h.attempt
        && n > 1
    {
        a.push(int(
            "http.request.resend_count",
            i64::try_from(n - 1).unwrap_or(i64::MAX),
        ));
    }
    a.push(int(
        "meshtrace.hop",
        i64::try_from(h.index).unwrap_or(i64::MAX),
    ));
    a.push(s("meshtrace.direction", h.direction.clone()));
    if let Some(l) = &h.listener {
        a.push(s("meshtrace.listener", l.clone()));
    }
    if let Some(c) = &h.upstream_cluster {
        a.push(s("meshtrace.upstream_cluster", c.clone()));
    }
    if let Some(u) = &h.upstream_host {
        a.push(s("meshtrace.upstream_host", u.clone()));
    }
    if !h.flags.is_empty() {
        a.push(strings("meshtrace.response_flags", &h.flags));
    }
    if let Some(d) = &h.details {
        a.push(s("meshtrace.response_code_details", d.clone()));
    }
    if let Some(u) = h.upstream_service_time_ms {
        a.push(int(
            "meshtrace.upstream_service_time_ms",
            i64::try_from(u).unwrap_or(i64::MAX),
        ));
    }
    if let Some(n) = h.attempt {
        a.push(int(
            "meshtrace.attempt",
            i64::try_from(n).unwrap_or(i64::MAX),
        ));
    }
    a.push(s(
        "meshtrace.evidence",
        format!("{}:{}", h.evidence.file, h.evidence.line),
    ));
    let origin = !t.succeeded && h.index == t.origin_hop;
    let status = if origin {
        a.push(s("error.type", t.cause.id()));
        a.push(s("meshtrace.cause", t.cause.id()));
        a.push(s("meshtrace.cause.title", t.cause.title()));
        if !t.fix.is_empty() {
            a.push(s("meshtrace.fix", t.fix.clone()));
        }
        if !t.objects.is_empty() {
            a.push(strings("meshtrace.objects", &t.objects));
        }
        Status {
            message: Some(format!(
                "{}: {}",
                t.cause.id(),
                if t.summary.is_empty() {
                    t.cause.title()
                } else {
                    t.summary.as_str()
                }
            )),
            code: STATUS_CODE_ERROR,
        }
    } else {
        Status {
            message: None,
            code: STATUS_CODE_UNSET,
        }
    };
    Span {
        trace_id: trace_id.to_string(),
        span_id: span_ids[idx.min(span_ids.len().saturating_sub(1))].clone(),
        parent_span_id: parent
            .and_then(|p| span_ids.get(p).cloned())
            .unwrap_or_default(),
        name: format!(
            "{} {} {}",
            h.role,
            h.direction,
            h.listener.as_deref().unwrap_or("-")
        ),
        kind: if client {
            SPAN_KIND_CLIENT
        } else {
            SPAN_KIND_SERVER
        },
        start_time_unix_nano: start.max(0).to_string(),
        end_time_unix_nano: end.max(start).max(0).to_string(),
        attributes: a,
        status,
    }
}

/// The request as compact JSON (the body posted to a receiver).
pub fn to_json(req: &ExportTraceServiceRequest) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(req)
}

/// Write the request as pretty JSON (`trace -o otlp`).
pub fn write(out: &mut dyn Write, req: &ExportTraceServiceRequest) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, req).map_err(|e| match e.io_error_kind() {
        Some(kind) => io::Error::from(kind),
        None => io::Error::other(e),
    })?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_contexts() {
        assert_eq!(
            trace_id_from_context("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")
                .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id_from_context("463ac35c9f6413ad").as_deref(),
            Some("0000000000000000463ac35c9f6413ad")
        );
        assert_eq!(
            trace_id_from_context("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1").as_deref(),
            Some("80f198ee56343ba864fe8b2a57d3eff7")
        );
        assert_eq!(trace_id_from_context("-"), None);
        assert_eq!(
            trace_id_from_context("00000000000000000000000000000000"),
            None
        );
        assert_eq!(trace_id_from_context("not-a-trace"), None);
    }

    #[test]
    fn workloads() {
        assert_eq!(
            workload_of("test-predictor-00001-deployment-5d9f7c8b6-x7k2p"),
            "test-predictor-00001-deployment"
        );
        assert_eq!(
            workload_of("istio-ingressgateway-7c9d5f8b6-q2x7k"),
            "istio-ingressgateway"
        );
        assert_eq!(workload_of("ztunnel-x7k2p"), "ztunnel");
        assert_eq!(workload_of("web-0"), "web");
        assert_eq!(workload_of("standalone"), "standalone");
        assert_eq!(workload_of("my-app"), "my-app");
    }

    #[test]
    fn stable_ids() {
        assert_eq!(hashed_trace_id("abc"), hashed_trace_id("abc"));
        assert_ne!(hashed_trace_id("abc"), hashed_trace_id("abd"));
        assert_eq!(hex(&hashed_trace_id("abc")).len(), 32);
    }
}
