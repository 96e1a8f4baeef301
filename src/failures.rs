//! `failures`: every failed request in the evidence, grouped by cause, origin role, status and
//! target, with counts, first/last seen, example request ids, explanation and fix. Pure.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, FixedOffset};
use serde::Serialize;

use meshtrace_parsers::Slot;

use crate::causes::Cause;
use crate::correlate::is_probe;
use crate::diagnose::Context;
use crate::evidence::Evidence;
use crate::explain::{RequestReport, explain_with};
use crate::input::LogLine;
use crate::trace::{pod_of, role_and_direction};

/// JSON schema identifier of `failures -o json`.
pub const SCHEMA: &str = "meshtrace.failures/v1";

/// Which failures to keep.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Only failures that started at or after this instant.
    pub since: Option<DateTime<FixedOffset>>,
    /// Only failures that started before this instant.
    pub until: Option<DateTime<FixedOffset>>,
    /// Status filter: `4xx`, `5xx`, `403`, `0`…
    pub status: Option<String>,
    /// Only this cause.
    pub cause: Option<Cause>,
    /// Keep Knative and kubelet probes.
    pub include_probes: bool,
}

/// Does `status` pass the filter (`4xx`, `5xx`, `403`, `0`, or a comma list of those)?
pub fn status_matches(filter: &str, status: Option<u16>) -> bool {
    filter
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .any(|f| {
            let s = status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            if f.len() == 3 && f.ends_with("xx") {
                s.len() == 3 && s.as_bytes()[0] == f.as_bytes()[0]
            } else {
                s == f
            }
        })
}

/// A client of a connection-level failure.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Client {
    /// Address as logged.
    pub address: String,
    /// `namespace/pod` when the topology knows the IP.
    pub pod: Option<String>,
    /// Whether that pod runs an istio-proxy sidecar.
    pub has_sidecar: Option<bool>,
}

/// One group of like failures.
#[derive(Debug, Clone, Serialize)]
pub struct FailureGroup {
    /// Cause class.
    pub cause: Cause,
    /// Status the client got.
    pub status: Option<u16>,
    /// Role of the hop that produced it.
    pub origin_role: String,
    /// `request` (HTTP, with request ids) or `connection` (TCP-level, no request id).
    pub kind: &'static str,
    /// Host (authority) the requests asked for, or `listener` for connection failures.
    pub target: String,
    /// How many requests / connections.
    pub count: usize,
    /// Earliest start (RFC 3339).
    pub first_seen: Option<String>,
    /// Latest start (RFC 3339).
    pub last_seen: Option<String>,
    /// Up to three request ids (each runnable as `meshtrace trace <id>`).
    pub example_request_ids: Vec<String>,
    /// Clients of connection-level failures, resolved to pods.
    pub clients: Vec<Client>,
    /// The explanation of the first example.
    pub summary: String,
    /// The fix.
    pub fix: String,
    /// Where the first example's origin line is.
    pub example_evidence: String,
}

/// The whole triage.
#[derive(Debug, Clone, Serialize)]
pub struct FailuresReport {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Requests (and connections) considered after filters.
    pub requests: usize,
    /// How many of them failed.
    pub failed: usize,
    /// Groups, largest first.
    pub groups: Vec<FailureGroup>,
    /// Remarks.
    pub notes: Vec<String>,
}

/// (cause, origin role, status, target, kind).
type GroupKey = (Cause, String, Option<u16>, String, &'static str);
/// A failed request: its report, its first (client-side) line and its origin line.
type Member<'e> = (&'e RequestReport, &'e LogLine, &'e LogLine);

/// Topology-aware context for the whole evidence (activators, pods without sidecar).
pub fn context_for(ev: &Evidence) -> Context {
    let mut ctx = Context::from_records(ev.logs.records.iter().map(|l| &l.record));
    for p in &ev.topology.pods {
        if p.role == crate::topology::PodRole::Activator {
            ctx.activators.extend(p.ips.iter().copied());
        }
        if !p.has_sidecar {
            ctx.without_sidecar.extend(p.ips.iter().copied());
        }
    }
    ctx
}

/// Records by (input, line), for linear lookups from request reports.
fn index(ev: &Evidence) -> HashMap<(&str, u64), &LogLine> {
    ev.logs
        .records
        .iter()
        .map(|l| ((&*l.input, l.line), l))
        .collect()
}

/// Triage every failure in the evidence.
pub fn failures(ev: &Evidence, f: &Filters) -> FailuresReport {
    let ctx = context_for(ev);
    let report = explain_with(&ev.logs, &ctx);
    let idx = index(ev);
    let find = |input: &str, line: u64| idx.get(&(input, line)).copied();
    let mut groups: BTreeMap<GroupKey, Vec<Member<'_>>> = BTreeMap::new();
    let mut considered = 0usize;
    let mut probes = 0usize;
    for r in report.requests.iter().filter(|r| r.part_of.is_none()) {
        let Some(first) = r.hops.first().and_then(|h| find(&h.input, h.line)) else {
            continue;
        };
        let Some(origin) = find(&r.origin_input, r.origin_line) else {
            continue;
        };
        if !f.include_probes && is_probe(&first.record) {
            probes += 1;
            continue;
        }
        let start = first.record.start_time();
        if f.since.is_some_and(|s| start.is_some_and(|t| t < s))
            || f.until.is_some_and(|u| start.is_some_and(|t| t >= u))
        {
            continue;
        }
        considered += 1;
        if !r.cause.is_failure() {
            continue;
        }
        if f.cause.is_some_and(|c| c != r.cause)
            || f.status
                .as_deref()
                .is_some_and(|s| !status_matches(s, r.status))
        {
            continue;
        }
        let (role, _) = role_and_direction(
            &ev.topology,
            &ctx,
            pod_of(&ev.topology, origin),
            &origin.record,
        );
        let connection = r.request_id.is_none() && first.record.is_tcp();
        let target = if connection {
            origin
                .record
                .get(Slot::DownstreamLocalAddress)
                .unwrap_or("-")
                .to_string()
        } else {
            first.record.authority().unwrap_or("-").to_string()
        };
        groups
            .entry((
                r.cause,
                role,
                r.status,
                target,
                if connection { "connection" } else { "request" },
            ))
            .or_default()
            .push((r, first, origin));
    }
    let mut out: Vec<FailureGroup> = groups
        .into_iter()
        .map(|((cause, role, status, target, kind), members)| {
            let times: Vec<DateTime<FixedOffset>> = members
                .iter()
                .filter_map(|(_, first, _)| first.record.start_time())
                .collect();
            let fmt = |t: Option<&DateTime<FixedOffset>>| {
                t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            };
            let mut clients: Vec<Client> = Vec::new();
            if kind == "connection" {
                for (_, first, _) in &members {
                    let addr = first
                        .record
                        .get(Slot::DownstreamRemoteAddress)
                        .unwrap_or("-")
                        .to_string();
                    let pod = first
                        .record
                        .downstream_remote()
                        .and_then(|a| a.ip())
                        .and_then(|ip| ev.topology.pod_by_ip(ip));
                    let c = Client {
                        address: addr
                            .rsplit_once(':')
                            .map(|(ip, _)| ip.to_string())
                            .unwrap_or(addr),
                        pod: pod.map(|p| p.reference()),
                        has_sidecar: pod.map(|p| p.has_sidecar),
                    };
                    if !clients.contains(&c) {
                        clients.push(c);
                    }
                }
                clients.sort();
            }
            let (r0, _, o0) = members[0];
            FailureGroup {
                cause,
                status,
                origin_role: role,
                kind,
                target,
                count: members.len(),
                first_seen: fmt(times.iter().min()),
                last_seen: fmt(times.iter().max()),
                example_request_ids: members
                    .iter()
                    .filter_map(|(r, _, _)| r.request_id.clone())
                    .take(3)
                    .collect(),
                clients,
                summary: r0.summary.clone(),
                fix: r0.fix.clone(),
                example_evidence: format!("{}:{}", o0.input, o0.line),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.cause.cmp(&b.cause))
            .then(a.target.cmp(&b.target))
    });
    let mut notes = Vec::new();
    if ev.logs.ok_records > 0 {
        notes.push(format!(
            "{} successful record(s) of large logs were counted, not kept: request totals count only the requests of small inputs and the failed ones",
            ev.logs.ok_records
        ));
    }
    if probes > 0 {
        notes.push(format!(
            "{probes} Knative/kubelet probe request(s) left out (use --include-probes)"
        ));
    }
    notes.extend(ev.problems.iter().map(|p| format!("skipped: {p}")));
    let malformed = ev.logs.malformed().count();
    if malformed > 0 {
        notes.push(format!(
            "{malformed} malformed line(s) (see `meshtrace explain`)"
        ));
    }
    FailuresReport {
        schema: SCHEMA,
        requests: considered,
        failed: out.iter().map(|g| g.count).sum(),
        groups: out,
        notes,
    }
}

/// Parse a `--since` duration: `90s`, `15m`, `2h`, `1d`, `1h30m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        total += match c {
            's' => Duration::seconds(n),
            'm' => Duration::minutes(n),
            'h' => Duration::hours(n),
            'd' => Duration::days(n),
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() {
        return None;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters() {
        assert!(status_matches("4xx", Some(403)));
        assert!(!status_matches("4xx", Some(503)));
        assert!(status_matches("403,503", Some(503)));
        assert!(status_matches("0", Some(0)));
        assert!(!status_matches("5xx", None));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Some(Duration::minutes(15)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("2d"), Some(Duration::days(2)));
        assert_eq!(parse_duration("15"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration(""), None);
    }
}
