//! `failures`: every failed request in the evidence, grouped by cause, origin role, status and
//! target, with counts, first/last seen, example request ids, explanation and fix. Pure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use meshtrace_parsers::Slot;

use crate::causes::Cause;
use crate::correlate::{MAX_ATTEMPTS_PER_LISTENER, Start, is_probe, reused_at_one_listener};
use crate::diagnose::Context;
use crate::evidence::Evidence;
use crate::explain::{RequestReport, explain_with};
use crate::model::LogLine;
use crate::settle::{CROWDED, LateLines, Settled, Settler, crowded_note};
use crate::trace::{TraceReport, pod_of, role_and_direction, trace_in};

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

/// The order of a report's groups: the largest first, then by cause and target.
pub fn sort_groups(groups: &mut [FailureGroup]) {
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.cause.cmp(&b.cause))
            .then(a.target.cmp(&b.target))
    });
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
    /// The explanation of the first example: `meshtrace trace`'s summary of it.
    pub summary: String,
    /// The fix: `meshtrace trace`'s fix for the first example.
    pub fix: String,
    /// Where the first example's origin line is.
    pub example_evidence: String,
    /// What `meshtrace trace` says about the first example (its request id, or the client's
    /// `ip:port` of a connection failure: [`TraceReport::query`]): the same verdict, objects
    /// cited and fix. The group's other members are counted by their class only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<Box<TraceReport>>,
}

impl FailureGroup {
    /// Where the failures were produced, for a sentence: `the <role>` when the role is known,
    /// else the pod of the example's origin hop, else the proxy whose log holds its line.
    pub fn origin_place(&self) -> String {
        if self.origin_role != "unknown" {
            return format!("the {}", self.origin_role);
        }
        let hop = self
            .example
            .as_ref()
            .and_then(|t| t.hops.get(t.origin_hop.saturating_sub(1)));
        if let Some((ns, pod)) = hop.and_then(|h| h.namespace.as_ref().zip(h.pod.as_ref())) {
            return format!("{ns}/{pod}");
        }
        let file = self
            .example_evidence
            .rsplit_once(':')
            .map_or(self.example_evidence.as_str(), |(f, _)| f);
        if file.is_empty() {
            "a proxy not in the topology".to_string()
        } else {
            format!("the proxy whose log is {file}")
        }
    }
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
    /// Access-log records read, before any filter (0: the evidence holds no access log).
    pub records_read: u64,
    /// Successful records of large logs counted line by line without being read into
    /// requests (one per proxy on a request's path): not in `requests`.
    pub successful_records: u64,
}

/// (cause, origin role, status, target, kind).
type GroupKey = (Cause, String, Option<u16>, String, &'static str);

/// Order of examples: earliest client-side start first, then input and line.
type ExampleKey = (i64, Arc<str>, u64);

/// Which member is traced: the earliest with a request id, else the earliest.
type VerdictKey = (bool, ExampleKey);

/// The traced member of a group: its key, `trace`'s report (`None` when the trace found
/// nothing, which leaves the cause's general words) and its origin line (`input:line`).
type Traced = (VerdictKey, Option<Box<TraceReport>>, String);

/// One group being counted.
#[derive(Default)]
struct GroupAcc {
    count: usize,
    first_seen: Option<DateTime<FixedOffset>>,
    last_seen: Option<DateTime<FixedOffset>>,
    /// The earliest members that have a request id (at most three, in order).
    examples: Vec<(ExampleKey, String)>,
    /// The member traced for the group's words: built only when a member comes before it.
    traced: Option<Traced>,
    clients: BTreeSet<Client>,
}

/// What a request is traced by: its request id, else (a connection failure, or an id many
/// requests among `lines` reuse) its client's `ip:port`, else nothing.
fn trace_query(r: &RequestReport, first: &LogLine, lines: &[LogLine]) -> Option<String> {
    let client = || {
        first
            .record
            .get(Slot::DownstreamRemoteAddress)
            .filter(|a| {
                a.parse::<std::net::SocketAddr>()
                    .is_ok_and(|s| s.port() != 0)
            })
            .map(str::to_string)
    };
    match &r.request_id {
        Some(id) if id_reused(lines, id) => client().or_else(|| Some(id.clone())),
        Some(id) => Some(id.clone()),
        None => client(),
    }
}

/// Is `id` on the lines of many requests among `lines` (see [`reused_at_one_listener`])?
fn id_reused(lines: &[LogLine], id: &str) -> bool {
    let on: Vec<&LogLine> = lines
        .iter()
        .filter(|l| l.record.request_id() == Some(id))
        .collect();
    on.len() > MAX_ATTEMPTS_PER_LISTENER && reused_at_one_listener(&on)
}

/// Failed requests folded into groups one by one, so that nothing but the groups is kept.
#[derive(Default)]
struct Triage {
    groups: BTreeMap<GroupKey, GroupAcc>,
    considered: usize,
    probes: usize,
}

impl Triage {
    /// Count one request (not a continuation of another): `first` is its client-side line,
    /// `origin` the line that produced its status.
    /// `lines` are the records the request was explained among (all of them, or the settler's
    /// window): a group's example is traced among them, with `ctx` (full words).
    #[allow(clippy::too_many_arguments)]
    fn fold(
        &mut self,
        r: &RequestReport,
        first: &LogLine,
        origin: &LogLine,
        lines: &[LogLine],
        ev: &Evidence,
        ctx: &Context,
        f: &Filters,
    ) {
        let topology = &ev.topology;
        if !f.include_probes && is_probe(&first.record) {
            self.probes += 1;
            return;
        }
        let start = first.record.start_time();
        if f.since.is_some_and(|s| start.is_some_and(|t| t < s))
            || f.until.is_some_and(|u| start.is_some_and(|t| t >= u))
        {
            return;
        }
        self.considered += 1;
        if !r.cause.is_failure()
            || f.cause.is_some_and(|c| c != r.cause)
            || f.status
                .as_deref()
                .is_some_and(|s| !status_matches(s, r.status))
        {
            return;
        }
        let (role, _) = role_and_direction(topology, ctx, pod_of(topology, origin), &origin.record);
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
        let kind = if connection { "connection" } else { "request" };
        let g = self
            .groups
            .entry((r.cause, role, r.status, target, kind))
            .or_default();
        g.count += 1;
        if let Some(t) = start {
            g.first_seen = Some(g.first_seen.map_or(t, |f| f.min(t)));
            g.last_seen = Some(g.last_seen.map_or(t, |l| l.max(t)));
        }
        let key: ExampleKey = (
            start.map_or(i64::MAX, |t| t.timestamp_millis()),
            first.input.clone(),
            first.line,
        );
        // Only the member that comes first is traced (its words, objects and fix are the
        // group's); the others are counted by their class.
        let vkey: VerdictKey = (r.request_id.is_none(), key.clone());
        if g.traced.as_ref().is_none_or(|(k, ..)| vkey < *k) {
            // `trace`'s words: a context that builds them.
            let words;
            let ctx = if ctx.brief {
                words = Context {
                    brief: false,
                    ..ctx.clone()
                };
                &words
            } else {
                ctx
            };
            // The example's own line: its id may be reused by many requests.
            let anchor = lines.iter().position(|l| std::ptr::eq(l, origin));
            let report = trace_query(r, first, lines).and_then(|q| {
                let start = Start::parse(&q);
                trace_in(ev, lines, ctx, &q, (&start, anchor), f.include_probes).map(Box::new)
            });
            g.traced = Some((vkey, report, format!("{}:{}", origin.input, origin.line)));
        }
        if let Some(id) = &r.request_id
            && (g.examples.len() < 3 || g.examples.last().is_some_and(|(k, _)| key < *k))
        {
            let at = g.examples.partition_point(|(k, _)| *k < key);
            g.examples.insert(at, (key, id.clone()));
            g.examples.truncate(3);
        }
        if connection {
            let addr = first
                .record
                .get(Slot::DownstreamRemoteAddress)
                .unwrap_or("-")
                .to_string();
            let pod = first
                .record
                .downstream_remote()
                .and_then(|a| a.ip())
                .and_then(|ip| topology.pod_by_ip(ip));
            g.clients.insert(Client {
                address: addr
                    .rsplit_once(':')
                    .map(|(ip, _)| ip.to_string())
                    .unwrap_or(addr),
                pod: pod.map(|p| p.reference()),
                has_sidecar: pod.map(|p| p.has_sidecar),
            });
        }
    }

    fn finish(self, notes: Vec<String>) -> FailuresReport {
        // Without a trace of the example (none found), the cause's general words.
        let words = |cause: Cause, example: &Option<Box<TraceReport>>, origin: String| match example
        {
            Some(t) => {
                let at = t
                    .hops
                    .get(t.origin_hop.saturating_sub(1))
                    .map(|h| format!("{}:{}", h.evidence.file, h.evidence.line))
                    .unwrap_or(origin);
                (t.summary.clone(), t.fix.clone(), at)
            }
            None => (
                format!("{}.", cause.title()),
                cause.fix().to_string(),
                origin,
            ),
        };
        let fmt = |t: Option<DateTime<FixedOffset>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        };
        let mut out: Vec<FailureGroup> = self
            .groups
            .into_iter()
            .map(|((cause, role, status, target, kind), g)| {
                let (example, origin) = g
                    .traced
                    .map(|(_, t, origin)| (t, origin))
                    .unwrap_or_default();
                let (summary, fix, evidence) = words(cause, &example, origin);
                FailureGroup {
                    cause,
                    status,
                    origin_role: role,
                    kind,
                    target,
                    count: g.count,
                    first_seen: fmt(g.first_seen),
                    last_seen: fmt(g.last_seen),
                    example_request_ids: g.examples.into_iter().map(|(_, id)| id).collect(),
                    clients: g.clients.into_iter().collect(),
                    summary,
                    fix,
                    example_evidence: evidence,
                    example,
                }
            })
            .collect();
        sort_groups(&mut out);
        FailuresReport {
            schema: SCHEMA,
            requests: self.considered,
            failed: out.iter().map(|g| g.count).sum(),
            groups: out,
            notes,
            records_read: 0,
            successful_records: 0,
        }
    }
}

/// The notes every triage ends with.
fn notes(ok_records: u64, probes: usize, problems: &[String], malformed: u64) -> Vec<String> {
    let mut notes = Vec::new();
    if ok_records > 0 {
        notes.push(format!(
            "{ok_records} successful record(s) of large logs were counted, not kept: request totals count only the requests of small inputs and the failed ones"
        ));
    }
    if probes > 0 {
        notes.push(format!(
            "{probes} Knative/kubelet probe request(s) left out (use --include-probes)"
        ));
    }
    notes.extend(problems.iter().map(|p| format!("skipped: {p}")));
    if malformed > 0 {
        notes.push(format!(
            "{malformed} malformed line(s) (see `meshtrace explain`)"
        ));
    }
    notes
}

/// The note for lines read after requests of their time were counted.
fn late_note(late: &LateLines, crowded: bool) -> String {
    let (behind, more) = (late.behind(), late.more());
    if crowded {
        return format!(
            "{}:{}{more} ended up to {behind} before requests already counted ({CROWDED}): a request whose lines are further apart in the evidence may be counted once per part; give each proxy's log as its own file, or a shorter time range",
            late.input, late.line
        );
    }
    format!(
        "{}:{}{more} ended up to {behind} before requests already counted (several proxies' logs one after another in one stream?): a request whose lines are in different parts of the evidence may be counted once per part; for exact counts give the uncompressed file itself rather than standard input or a gzip stream (a file is cut where its time goes back), or each proxy's log as its own file",
        late.input, late.line
    )
}

/// Triage every failure in the evidence (all of it in memory).
pub fn failures(ev: &Evidence, f: &Filters) -> FailuresReport {
    // Every request is classified; only each group's example is put into words (by `trace`).
    let ctx = Context {
        brief: true,
        ..ev.context()
    };
    let report = explain_with(&ev.logs, &ctx);
    let idx: HashMap<(&str, u64), &LogLine> = ev
        .logs
        .records
        .iter()
        .map(|l| ((&*l.input, l.line), l))
        .collect();
    let mut t = Triage::default();
    for r in report.requests.iter().filter(|r| r.part_of.is_none()) {
        let first = r.hops.first().and_then(|h| idx.get(&(&*h.input, h.line)));
        let origin = idx.get(&(&*r.origin_input, r.origin_line));
        if let (Some(first), Some(origin)) = (first, origin) {
            t.fold(r, first, origin, &ev.logs.records, ev, &ctx, f);
        }
    }
    let probes = t.probes;
    let mut report = t.finish(notes(
        ev.logs.ok_records,
        probes,
        &ev.problems,
        ev.logs.malformed().count() as u64,
    ));
    report.records_read = ev.logs.records.len() as u64 + ev.logs.ok_records;
    report.successful_records = ev.logs.ok_records;
    report
}

/// Triage records streamed in time order (see [`crate::settle`]): each request is counted once
/// its lines are complete and then dropped, so memory holds only the last minutes of failures
/// whatever the size of the logs. `ev` carries the topology and the problems of loading.
pub fn failures_streaming(
    ev: &Evidence,
    records: &mut dyn crate::settle::RecordStream,
    f: &Filters,
) -> FailuresReport {
    let mut t = Triage::default();
    // Every request is classified; only each group's example is put into words (by `trace`).
    let mut settler = Settler::new(Context {
        brief: true,
        ..ev.context()
    });
    let mut on = |s: Settled<'_>, ctx: &Context| {
        // A continuation is counted with the request it continues.
        if s.report.part_of.is_none() {
            t.fold(&s.report, s.first, s.origin, s.lines, ev, ctx, f);
        }
    };
    let mut read = 0u64;
    for l in &mut *records {
        read += 1;
        settler.push(l, &mut on);
    }
    settler.finish(&mut on);
    let mut problems = ev.problems.clone();
    problems.extend(records.problems().iter().cloned());
    let probes = t.probes;
    let mut report = t.finish(notes(
        records.ok_records(),
        probes,
        &problems,
        records.malformed(),
    ));
    let crowded = settler.crowded_rounds();
    match settler.late_lines() {
        Some(late) => report.notes.push(late_note(late, crowded > 0)),
        None if crowded > 0 => report.notes.push(crowded_note(crowded, "counted")),
        None => {}
    }
    report.records_read = read + records.ok_records();
    report.successful_records = records.ok_records();
    report
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
}
