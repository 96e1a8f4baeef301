//! JSON for machines: the records and skipped lines of `meshtrace.explain/v1`, built from the
//! parsed records (the analysis crate's types carry `Serialize`; the field maps of records are
//! written here, the only layer that knows the document's shape).

use serde::Serialize;
use serde_json::{Map, Value, json};

use meshtrace_analysis::explain::{ExplainReport, SCHEMA};
use meshtrace_analysis::model::{LogLine, LogSet, SkippedLine};
use meshtrace_analysis::redact::{MASK, is_secret_name, mask_text};
use meshtrace_parsers::Slot;
use meshtrace_parsers::cluster::ClusterName;
use meshtrace_parsers::details::{RbacPolicy, TransportFailure, TransportFailureKind};
use meshtrace_parsers::record::RawRecord;

/// The `explain -o json` document.
pub fn to_json(set: &LogSet, report: &ExplainReport) -> Value {
    let records: Vec<Value> = set.records.iter().map(record_json).collect();
    let skipped: Vec<Value> = set.skipped.iter().map(skipped_json).collect();
    json!({
        "schema": SCHEMA,
        "requests": report.requests,
        "records": records,
        "skipped": skipped,
    })
}

/// One entry of the document's `records`.
pub fn record_json(l: &LogLine) -> Value {
    let mut o = Map::new();
    o.insert("line".into(), json!(l.line));
    o.insert("input".into(), json!(&*l.input));
    o.insert("format".into(), json!(l.record.format()));
    if l.lines > 1 {
        o.insert("physical_lines".into(), json!(l.lines));
    }
    if l.envelope != "none" {
        o.insert("envelope".into(), json!(l.envelope));
    }
    if !l.record.missing.is_empty() {
        let m: Vec<&str> = l.record.missing.iter().map(|m| &**m).collect();
        o.insert("missing".into(), json!(m));
    }
    o.insert("fields".into(), record_fields(&l.record));
    Value::Object(o)
}

/// One entry of the document's `skipped`.
pub fn skipped_json(s: &SkippedLine) -> Value {
    let mut o = Map::new();
    o.insert("line".into(), json!(s.line));
    o.insert("input".into(), json!(&*s.input));
    o.insert("kind".into(), json!(s.kind));
    o.insert("reason".into(), json!(s.reason));
    if let Some(t) = &s.text {
        o.insert("text".into(), json!(mask_text(t)));
    }
    Value::Object(o)
}

fn opt<T: Serialize>(v: Option<T>) -> Value {
    match v {
        Some(v) => json!(v),
        None => Value::Null,
    }
}

fn transport_json(t: &TransportFailure<'_>) -> Value {
    json!({
        "raw": t.raw,
        "kind": match t.kind { TransportFailureKind::Tls => "tls", TransportFailureKind::ConnectError => "connect_error", TransportFailureKind::Other => "other" },
        "reason": t.reason,
        "openssl_code": t.openssl_code,
        "meaning": t.explain(),
    })
}

/// Typed fields of one record: only the operators its format has; unset values are null.
/// Secrets are masked: values of operators that log secret headers (`%REQ(AUTHORIZATION)%`,
/// `%REQ(COOKIE)%`, …) and secret query parameters, JWTs and credentials inside any value.
pub fn record_fields(r: &RawRecord<'_>) -> Value {
    let mut o = Map::new();
    for (slot, raw) in r.slots() {
        let unset = raw == "-" || raw.is_empty();
        let v = match slot {
            _ if unset && slot != Slot::ResponseFlags => Value::Null,
            Slot::StartTime => match r.start_time() {
                Some(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => json!(raw),
            },
            Slot::ResponseCode => opt(r.status()),
            Slot::ResponseFlags => {
                let f: Vec<&str> = r.flags().iter().map(|f| f.short()).collect();
                json!(f)
            }
            Slot::ResponseCodeDetails => match r.details() {
                Some(d) => {
                    let rbac = match d.rbac_policy {
                        Some(RbacPolicy::None) => json!({"matched": "none"}),
                        Some(RbacPolicy::Policy {
                            namespace,
                            name,
                            rule,
                        }) => json!({"namespace": namespace, "name": name, "rule": rule}),
                        Some(RbacPolicy::Other(o)) => json!({"id": o}),
                        None => Value::Null,
                    };
                    let mut m = Map::new();
                    m.insert("raw".into(), json!(d.raw));
                    m.insert("base".into(), json!(d.base));
                    if let Some(a) = d.arg {
                        m.insert("arg".into(), json!(a));
                    }
                    if let Some(rr) = d.reset_reason {
                        m.insert("reset_reason".into(), json!(rr));
                    }
                    if let Some(t) = &d.transport_failure {
                        m.insert("transport_failure".into(), transport_json(t));
                    }
                    if !rbac.is_null() {
                        m.insert("rbac_policy".into(), rbac);
                    }
                    Value::Object(m)
                }
                None => Value::Null,
            },
            Slot::UpstreamTransportFailureReason => match r.transport_failure() {
                Some(t) => transport_json(&t),
                None => Value::Null,
            },
            Slot::BytesReceived => opt(r.bytes_received()),
            Slot::BytesSent => opt(r.bytes_sent()),
            Slot::Duration => opt(r.duration_ms()),
            Slot::UpstreamServiceTime => opt(r.upstream_service_time_ms()),
            Slot::XForwardedFor => {
                let v: Vec<&str> = r.forwarded_for().collect();
                json!(v)
            }
            Slot::UpstreamCluster => match r.upstream_cluster() {
                Some(
                    c @ ClusterName::Istio {
                        direction,
                        port,
                        subset,
                        host,
                    },
                ) => json!({
                    "raw": raw, "name": c.to_string(), "direction": direction.as_str(), "port": port,
                    "subset": if subset.is_empty() { Value::Null } else { json!(subset) },
                    "host": if host.is_empty() { Value::Null } else { json!(host) },
                }),
                Some(c) => json!({"raw": raw, "name": c.to_string()}),
                None => Value::Null,
            },
            _ => json!(mask_text(raw)),
        };
        o.insert(slot.key().into(), v);
    }
    let extras: Map<String, Value> = r
        .extras()
        .map(|(k, v)| {
            let v = if is_secret_name(k) && v != "-" && !v.is_empty() {
                json!(MASK)
            } else {
                json!(mask_text(v))
            };
            (k.to_string(), v)
        })
        .collect();
    if !extras.is_empty() {
        o.insert("extra".into(), Value::Object(extras));
    }
    Value::Object(o)
}
