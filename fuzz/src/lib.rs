//! Helpers shared by the meshtrace-parsers fuzz targets: call every typed accessor of a record
//! and every field-level parser, so a panic anywhere behind them is found by any target.

use std::fmt::Write as _;
use std::hint::black_box;

use meshtrace_parsers::address::{Address, parse_address};
use meshtrace_parsers::cluster::{ClusterName, parse_cluster_name, parse_istio_sni};
use meshtrace_parsers::details::{
    CodeDetails, TransportFailure, detail_meaning, parse_code_details, parse_rbac_policy,
    parse_transport_failure,
};
use meshtrace_parsers::flags::{ResponseFlags, parse_response_flags};
use meshtrace_parsers::{Event, LineOutcome, RawRecord};

/// Lossy UTF-8 view of the fuzz input (borrowed when the input is valid UTF-8).
pub fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

fn address(a: Option<Address<'_>>) {
    if let Some(a) = a {
        black_box((a.ip(), a.port(), a.socket()));
        black_box(format!("{a:?}"));
    }
}

fn cluster(c: Option<ClusterName<'_>>) {
    if let Some(c) = c {
        black_box((
            c.host(),
            c.port(),
            c.subset(),
            c.direction(),
            c.is_inbound(),
        ));
        if let Some(d) = c.direction() {
            black_box(d.as_str());
        }
    }
}

fn flags(f: ResponseFlags) {
    black_box((f.is_empty(), f.len(), f.bits()));
    black_box(f.iter().count());
    let mut s = String::new();
    let _ = write!(s, "{f} {}", f.long_names());
    black_box(s);
}

fn transport(t: Option<TransportFailure<'_>>) {
    if let Some(t) = t {
        black_box((t.kind, t.openssl_code, t.library, t.reason, t.explain()));
    }
}

fn details(d: Option<CodeDetails<'_>>) {
    if let Some(d) = d {
        black_box((d.base, d.arg, d.reset_reason, d.rbac_policy));
        black_box(detail_meaning(d.base));
        black_box(detail_meaning(d.raw));
        transport(d.transport_failure);
    }
}

/// Call every typed accessor (and the raw views) of a record.
pub fn record(r: &RawRecord<'_>) {
    black_box(r.format());
    black_box(r.status());
    match r.flags_checked() {
        Ok(f) => flags(f),
        Err(e) => {
            black_box(format!("{e:?}"));
        }
    }
    flags(r.flags());
    details(r.details());
    transport(r.transport_failure());
    black_box(r.termination_details());
    if let Some(t) = r.start_time() {
        black_box((t.timestamp_millis(), t.to_rfc3339()));
    }
    black_box((r.method(), r.path(), r.protocol(), r.request_id()));
    black_box((r.authority(), r.user_agent(), r.sni(), r.route_name()));
    black_box(r.forwarded_for().count());
    black_box((r.bytes_received(), r.bytes_sent(), r.duration_ms()));
    black_box(r.upstream_service_time_ms());
    address(r.upstream_host());
    address(r.upstream_local());
    address(r.downstream_local());
    address(r.downstream_remote());
    cluster(r.upstream_cluster());
    black_box((r.is_tcp(), r.filled(), r.missing.len()));
    black_box(
        r.slots()
            .map(|(s, v)| s.key().len() + v.len())
            .sum::<usize>(),
    );
    black_box(r.extras().count());
    black_box(r.clone().into_owned());
}

/// Inspect a line verdict, including its messages.
pub fn outcome(o: &LineOutcome<'_>) {
    match o {
        LineOutcome::Record(r) => record(r),
        LineOutcome::Truncated { record: r, fields } => {
            black_box(*fields);
            record(r);
        }
        LineOutcome::NotAccessLog(n) => {
            black_box((n.kind(), n.to_string()));
        }
        LineOutcome::Malformed(m) => {
            black_box(m.to_string());
        }
        LineOutcome::Blank => {}
    }
}

/// Inspect an assembler event.
pub fn event(e: &Event<'_>) {
    match e {
        Event::Record(l) => {
            black_box((
                l.line,
                l.lines,
                l.envelope.name(),
                l.envelope_time.as_deref(),
            ));
            record(&l.record);
        }
        Event::Skipped { line, kind } => {
            black_box((*line, kind.kind(), kind.to_string()));
        }
        Event::Malformed { line, text, error } => {
            black_box((*line, text.len(), error.to_string()));
        }
    }
}

/// Run every field-level parser on an arbitrary value.
pub fn field_parsers(s: &str) {
    match parse_response_flags(s) {
        Ok(f) => flags(f),
        Err(e) => {
            black_box(format!("{e:?}"));
        }
    }
    details(parse_code_details(s));
    transport(parse_transport_failure(s));
    black_box(parse_rbac_policy(s));
    black_box(detail_meaning(s));
    cluster(parse_cluster_name(s));
    black_box(parse_istio_sni(s));
    address(parse_address(s));
}
