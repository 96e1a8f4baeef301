//! `explain`: group access-log records by request and diagnose each group. Pure.

use foldhash::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

use meshtrace_parsers::record::RawRecord;
use meshtrace_parsers::slot::Slot;

use crate::causes::Cause;
use crate::correlate::{
    MAX_ATTEMPTS_PER_LISTENER, fit, reused_at_one_listener, same_destination, time_parts,
};
use crate::diagnose::{
    Context, Verdict, diagnose_with, envoy_generated, refused_connection,
    upstream_connection_failed,
};
use crate::model::{LogLine, LogSet};

/// JSON schema identifier of `explain -o json`.
pub const SCHEMA: &str = "meshtrace.explain/v1";

/// One request: the records that share an x-request-id (or one record without an id).
#[derive(Debug, Clone, Serialize)]
pub struct RequestReport {
    /// The x-request-id, if logged.
    pub request_id: Option<String>,
    /// Status the client got.
    pub status: Option<u16>,
    /// Cause class.
    pub cause: Cause,
    /// Line that produced the status.
    pub origin_line: u64,
    /// Input of the origin line.
    pub origin_input: Arc<str>,
    /// Lines of this request, in the order read: input order, or end-time order where inputs
    /// (or the time-ordered runs of one file) are merged.
    pub lines: Vec<u64>,
    /// The same lines from the client inwards, with their inputs.
    pub hops: Vec<HopRef>,
    /// Plain-language summary.
    pub summary: String,
    /// Usual fixes.
    pub fix: String,
    /// Readings of the origin line's flags, details and transport failure.
    pub evidence: Vec<String>,
    /// The request id of the request this one continues (the id changed at a gateway): the
    /// same client request, so counts should not add both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_of: Option<String>,
}

/// A line reference.
#[derive(Debug, Clone, Serialize)]
pub struct HopRef {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line.
    pub line: u64,
    /// Status of this hop.
    pub status: Option<u16>,
    /// Where the hop sits ([`crate::diagnose::hop_label`]; shared by the hops of one listener
    /// and cluster).
    pub hop: Arc<str>,
}

/// The whole explanation.
#[derive(Debug, Clone)]
pub struct ExplainReport {
    /// One entry per request.
    pub requests: Vec<RequestReport>,
    /// Where each request's lines sit among the records explained, in the order of `requests`.
    pub places: Vec<RequestPlaces>,
}

/// Where one request's lines sit among the records explained (indexes into
/// [`LogSet::records`]), so that a caller holding the records finds them without looking up
/// inputs and line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPlaces {
    /// The records of [`RequestReport::hops`], in that order.
    pub hops: Vec<usize>,
    /// The record that produced its status ([`RequestReport::origin_line`]).
    pub origin: usize,
}

/// Group the records of `set` into requests and diagnose each.
pub fn explain(set: &LogSet) -> ExplainReport {
    let ctx = Context::from_records(set.records.iter().map(|l| &l.record));
    explain_with(set, &ctx)
}

/// [`explain`] with facts from elsewhere (topology: activators, pods without sidecar).
pub fn explain_with(set: &LogSet, ctx: &Context) -> ExplainReport {
    explain_except(set, ctx, &|_| false)
}

/// Where `l`, a record of `records`, sits in it (by address: every line a group holds is
/// borrowed from the set explained).
fn index_in(records: &[LogLine], l: &LogLine) -> usize {
    let size = std::mem::size_of::<LogLine>().max(1);
    std::ptr::from_ref(l)
        .addr()
        .wrapping_sub(records.as_ptr().addr())
        / size
}

/// [`explain_with`] for a settling round: a request with a line that `waits` (given its index
/// in `set.records`: it ended too late to be complete) is not handed out this round, so it is
/// reported without its words (summary, fix, evidence) and with blank hop labels: only its
/// status, cause and lines, which say which lines it holds. Every other request is reported
/// in full.
pub fn explain_except(set: &LogSet, ctx: &Context, waits: &dyn Fn(usize) -> bool) -> ExplainReport {
    let groups = group_by_request_id(set);
    let waiting: Vec<bool> = groups
        .iter()
        .map(|g| g.iter().any(|l| waits(index_in(&set.records, l))))
        .collect();
    // One pair of lists for every group's records and pods (two allocations per request
    // otherwise, a few percent of a round).
    let (mut recs, mut pods): (Vec<&RawRecord<'_>>, Vec<Option<&str>>) = Default::default();
    let verdicts: Vec<Verdict> = groups
        .iter()
        .zip(&waiting)
        .map(|(g, &w)| {
            recs.clear();
            recs.extend(g.iter().map(|l| &l.record));
            pods.clear();
            pods.extend(g.iter().map(|l| l.pod.as_deref()));
            diagnose_with(&recs, &pods, ctx, ctx.brief || w)
        })
        .collect();
    let continuations = Continuations::new(set, &groups, &verdicts);
    let follows: Vec<_> = (0..groups.len())
        .map(|gi| continuations.follow(gi))
        .collect();
    drop(continuations);
    // A verdict's texts move into the last report that uses them (usually its own group's).
    let mut uses = vec![0u32; groups.len()];
    for (target, _) in &follows {
        uses[*target] += 1;
    }
    let mut verdicts = verdicts;
    let mut places = Vec::with_capacity(follows.len());
    let mut requests: Vec<RequestReport> = follows
        .iter()
        .enumerate()
        .map(|(gi, (target, via))| {
            uses[*target] -= 1;
            // The request's hops are its group's lines and its target's.
            let brief = waiting[gi] || waiting[*target];
            let (report, place) = request_report(
                (&groups, &set.records),
                &mut verdicts,
                (gi, *target),
                via,
                uses[*target] == 0,
                brief,
            );
            places.push(place);
            report
        })
        .collect();
    let mut marks = continued_into(&requests);
    marks.extend(called_by_logged_hops(&groups, &verdicts, &requests));
    for (j, outer_id) in marks {
        if requests[j].part_of.is_none() {
            requests[j].part_of = Some(outer_id);
        }
    }
    ExplainReport { requests, places }
}

/// The records of one x-request-id together, in input order (groups in order of first line);
/// a record without an id is a group of its own. Progress lines (`%ACCESS_LOG_TYPE%`
/// `DownstreamPeriodic`…) are not a request's end and are left out; `trace` shows them.
fn group_by_request_id(set: &LogSet) -> Groups<'_> {
    // Each record's group first, then every group's records placed together in one list (a
    // list per group cost two allocations per request in each round).
    let mut of_line: Vec<(u32, &LogLine)> = Vec::with_capacity(set.records.len());
    let mut sizes: Vec<u32> = Vec::new();
    let mut by_id: HashMap<&str, u32> =
        HashMap::with_capacity_and_hasher(set.records.len(), Default::default());
    for l in set.records.iter().filter(|l| !l.record.is_progress_line()) {
        let mut new_group = || {
            sizes.push(0);
            (sizes.len() - 1) as u32
        };
        let g = match l.record.request_id() {
            Some(id) => *by_id.entry(id).or_insert_with(new_group),
            None => new_group(),
        };
        sizes[g as usize] += 1;
        of_line.push((g, l));
    }
    let mut ends = Vec::with_capacity(sizes.len());
    let mut end = 0usize;
    for size in &mut sizes {
        // `sizes` becomes where each group's next record goes.
        let start = end;
        end += *size as usize;
        ends.push(end);
        *size = start as u32;
    }
    let mut lines: Vec<&LogLine> = match of_line.first() {
        Some(&(_, l)) => vec![l; of_line.len()],
        None => Vec::new(),
    };
    for (g, l) in of_line {
        let at = &mut sizes[g as usize];
        lines[*at as usize] = l;
        *at += 1;
    }
    let groups = Groups { lines, ends };
    if groups.iter().any(|g| g.len() > MAX_ATTEMPTS_PER_LISTENER) {
        split_reused_ids(groups)
    } else {
        groups
    }
}

/// Each group of [`group_by_request_id`] with more than [`MAX_ATTEMPTS_PER_LISTENER`] lines at
/// one listener (`%DOWNSTREAM_LOCAL_ADDRESS%`) cut into its requests: lines whose times
/// overlap (an outer hop's time holds its inner hops' and their attempts') are one request;
/// a gap in time starts the next. Requests that reuse an id at the same time stay one.
/// Groups with an untimed line stay whole.
fn split_reused_ids(groups: Groups<'_>) -> Groups<'_> {
    let mut lines = Vec::with_capacity(groups.lines.len());
    let mut ends = Vec::with_capacity(groups.ends.len());
    for g in groups.iter() {
        let parts = (g.len() > MAX_ATTEMPTS_PER_LISTENER && reused_at_one_listener(g))
            .then(|| time_parts(g))
            .flatten();
        let Some((part, parts)) = parts else {
            lines.extend_from_slice(g);
            ends.push(lines.len());
            continue;
        };
        // Requests in the order of their first line in the input, each with its lines in
        // input order: numbered as first met, then placed by number (linear in the lines).
        let mut rank = vec![usize::MAX; parts];
        let mut next = 0;
        for &p in &part {
            if rank[p] == usize::MAX {
                rank[p] = next;
                next += 1;
            }
        }
        let mut at = vec![0usize; parts + 1];
        for &p in &part {
            at[rank[p] + 1] += 1;
        }
        for r in 0..parts {
            at[r + 1] += at[r];
        }
        let base = lines.len();
        ends.extend(at[1..].iter().map(|&e| base + e));
        lines.extend_from_slice(g);
        for (l, &p) in g.iter().zip(&part) {
            let slot = &mut at[rank[p]];
            lines[base + *slot] = *l;
            *slot += 1;
        }
    }
    Groups { lines, ends }
}

/// The records of each x-request-id ([`group_by_request_id`]) in one list: group `g` is
/// `lines[ends[g - 1]..ends[g]]`.
struct Groups<'s> {
    lines: Vec<&'s LogLine>,
    ends: Vec<usize>,
}

impl<'s> Groups<'s> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[&'s LogLine]> {
        (0..self.len()).map(|g| &self[g])
    }
}

impl<'s> std::ops::Index<usize> for Groups<'s> {
    type Output = [&'s LogLine];
    fn index(&self, g: usize) -> &[&'s LogLine] {
        let start = if g == 0 { 0 } else { self.ends[g - 1] };
        &self.lines[start..self.ends[g]]
    }
}

/// Where a group's status was only relayed outwards (its innermost hop is an outbound
/// `via_upstream`), the request may continue under another x-request-id on the same
/// connection (ids change at gateways); a connection failure may continue into the refused
/// connection the next proxy logged. Indexes so following continuations stays linear on large
/// evidence.
struct Continuations<'a, 's> {
    /// The groups of [`group_by_request_id`].
    groups: &'a Groups<'s>,
    /// Their verdicts.
    verdicts: &'a [Verdict],
    /// The records explained, which the groups' lines borrow.
    records: &'s [LogLine],
    /// Group of each record, by its index in `records` (`u32::MAX`: none, a progress line).
    group_index: Vec<u32>,
    /// Records by client address, sorted by start time (untimed first): a keep-alive
    /// connection carries many requests, and only those inside the relaying hop's time can
    /// continue it.
    by_remote: HashMap<SocketAddr, OnAddress<'s>>,
    /// Connections a proxy refused before any request (no request id), by listener.
    refused: HashMap<SocketAddr, Vec<&'s LogLine>>,
}

/// The entries of one address in an index by address ([`Continuations::by_remote`], the
/// upstream local addresses of [`called_by_logged_hops`]): nearly always one (client ports are
/// nearly all different), kept without a list of its own.
enum OneOrMany<T> {
    One([T; 1]),
    Many(Vec<T>),
}

impl<T: Copy> OneOrMany<T> {
    fn push(&mut self, e: T) {
        match self {
            OneOrMany::One([first]) => *self = OneOrMany::Many(vec![*first, e]),
            OneOrMany::Many(v) => v.push(e),
        }
    }

    fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => one,
            OneOrMany::Many(v) => v,
        }
    }
}

/// The records of one client address in [`Continuations::by_remote`], with their start times.
type OnAddress<'s> = OneOrMany<(i64, &'s LogLine)>;

impl<'a, 's> Continuations<'a, 's> {
    /// Index the records of `set` grouped as `groups`.
    fn new(
        set: &'s LogSet,
        groups: &'a Groups<'s>,
        verdicts: &'a [Verdict],
    ) -> Continuations<'a, 's> {
        let mut group_index = vec![u32::MAX; set.records.len()];
        for (gi, g) in groups.iter().enumerate() {
            for l in g {
                if let Some(at) = group_index.get_mut(index_in(&set.records, l)) {
                    *at = u32::try_from(gi).unwrap_or(u32::MAX);
                }
            }
        }
        let mut by_remote: HashMap<SocketAddr, OnAddress<'_>> =
            HashMap::with_capacity_and_hasher(set.records.len(), Default::default());
        for l in set.records.iter().filter(|l| !l.record.is_progress_line()) {
            if let Some(s) = l
                .record
                .socket(Slot::DownstreamRemoteAddress)
                .filter(|s| s.port() != 0)
            {
                let t = l
                    .record
                    .start_time()
                    .map_or(i64::MIN, |t| t.timestamp_millis());
                by_remote
                    .entry(s)
                    .and_modify(|on| on.push((t, l)))
                    .or_insert(OneOrMany::One([(t, l)]));
            }
        }
        for on in by_remote.values_mut() {
            if let OneOrMany::Many(v) = on {
                v.sort_by_key(|(t, _)| *t);
            }
        }
        let mut refused: HashMap<SocketAddr, Vec<&LogLine>> = HashMap::default();
        for g in groups.iter() {
            if let [l] = g
                && refused_connection(&l.record)
                && let Some(s) = l.record.socket(Slot::DownstreamLocalAddress)
            {
                refused.entry(s).or_default().push(l);
            }
        }
        Continuations {
            groups,
            verdicts,
            records: &set.records,
            group_index,
            by_remote,
            refused,
        }
    }

    /// The group a line belongs to.
    fn group_of(&self, line: &LogLine) -> Option<usize> {
        self.group_index
            .get(index_in(self.records, line))
            .filter(|&&g| g != u32::MAX)
            .map(|&g| g as usize)
    }

    /// Follow up to a few id changes from group `gi`: the group the request ends in, and the
    /// first line of each continuation taken.
    fn follow(&self, gi: usize) -> (usize, Vec<&'s LogLine>) {
        let mut target = gi;
        let mut via: Vec<&LogLine> = Vec::new();
        for _ in 0..4 {
            match self.next(target) {
                Some((next, line)) if next != gi && !via.iter().any(|l| std::ptr::eq(*l, line)) => {
                    via.push(line);
                    target = next;
                }
                _ => break,
            }
        }
        (target, via)
    }

    /// The group that continues group `gi`, and the line it continues on.
    fn next(&self, gi: usize) -> Option<(usize, &'s LogLine)> {
        let v = &self.verdicts[gi];
        let r = &self.groups[gi][v.origin].record;
        // A connection the hop could not use: the next proxy may have logged why it refused it.
        // (Retries may have logged later attempts after it: it need not be the innermost.)
        if upstream_connection_failed(r) {
            let up = r.socket(Slot::UpstreamHost)?;
            let refused = self.refused.get(&up)?.iter().copied();
            return self.best_fit(gi, r, refused);
        }
        if envoy_generated(r)
            || r.upstream_cluster().is_some_and(|c| c.is_inbound())
            || v.order.last() != Some(&v.origin)
        {
            return None;
        }
        let ul = r
            .socket(Slot::UpstreamLocalAddress)
            .filter(|s| s.port() != 0)?;
        let on = self.by_remote.get(&ul)?.as_slice();
        let untimed = on.partition_point(|(t, _)| *t == i64::MIN);
        // `fit` refuses a hop starting over a second outside the relaying hop.
        let timed = match (r.start_time(), r.duration_ms()) {
            (Some(t), Some(d)) => {
                let from = t.timestamp_millis() - 1000;
                let to = t.timestamp_millis() + i64::try_from(d).unwrap_or(i64::MAX / 2) + 1000;
                let a = on.partition_point(|(t, _)| *t < from);
                let b = on.partition_point(|(t, _)| *t <= to);
                &on[a.max(untimed)..b.max(untimed)]
            }
            _ => &on[untimed..],
        };
        let candidates = on[..untimed]
            .iter()
            .chain(timed)
            .map(|(_, c)| *c)
            .filter(|c| same_destination(r, &c.record));
        self.best_fit(gi, r, candidates)
    }

    /// Of `candidates`, the line that fits best as the hop `r` (of group `gi`) forwarded to,
    /// with its group, when that is another group.
    fn best_fit(
        &self,
        gi: usize,
        r: &RawRecord<'_>,
        candidates: impl Iterator<Item = &'s LogLine>,
    ) -> Option<(usize, &'s LogLine)> {
        candidates
            .filter_map(|c| fit(r, &c.record).map(|s| (s, c)))
            .max_by_key(|(s, _)| *s)
            .and_then(|(_, c)| self.group_of(c).filter(|&g| g != gi).map(|g| (g, c)))
    }
}

/// The report of group `gi`, whose request continues in group `target` (itself when the id did
/// not change) through the lines `via`; `last` when no later report uses `target`'s verdict
/// texts, which then move. With it, where its lines sit in `records` (the set the groups hold).
fn request_report(
    (groups, records): (&Groups<'_>, &[LogLine]),
    verdicts: &mut [Verdict],
    (gi, target): (usize, usize),
    via: &[&LogLine],
    last: bool,
    brief: bool,
) -> (RequestReport, RequestPlaces) {
    let (g, tg) = (&groups[gi], &groups[target]);
    let text = |tv: &mut Verdict| {
        if brief {
            // Its target's words, when it has them, are for the target's own request.
            (String::new(), String::new(), Vec::new())
        } else if last {
            (
                std::mem::take(&mut tv.summary),
                std::mem::take(&mut tv.fix),
                std::mem::take(&mut tv.evidence),
            )
        } else {
            (tv.summary.clone(), tv.fix.clone(), tv.evidence.clone())
        }
    };
    let (tsummary, fix, evidence) = text(&mut verdicts[target]);
    let (v, tv) = (&verdicts[gi], &verdicts[target]);
    let origin = tg[tv.origin];
    let mut summary = tsummary;
    if target != gi && !brief {
        let relay = g[v.origin];
        let first = via[0];
        summary = format!(
            "{} was relayed by line {} ({}); the request continues at {}:{} under x-request-id {} (the id changed at the gateway): {}",
            v.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            relay.line,
            crate::diagnose::hop_label(&relay.record),
            first.input,
            first.line,
            first.record.request_id().unwrap_or("-"),
            summary
        );
    }
    let mut hops: Vec<HopRef> = v.order.iter().map(|&i| hop_ref(g[i], brief)).collect();
    let mut places: Vec<usize> = v.order.iter().map(|&i| index_in(records, g[i])).collect();
    if target != gi {
        hops.extend(tv.order.iter().map(|&i| hop_ref(tg[i], brief)));
        places.extend(tv.order.iter().map(|&i| index_in(records, tg[i])));
    }
    let place = RequestPlaces {
        hops: places,
        origin: index_in(records, origin),
    };
    let report = RequestReport {
        request_id: g[v.origin].record.request_id().map(str::to_string),
        status: v.status,
        cause: tv.cause,
        origin_line: origin.line,
        origin_input: origin.input.clone(),
        lines: g.iter().map(|l| l.line).collect(),
        hops,
        summary,
        fix,
        evidence,
        part_of: None,
    };
    (report, place)
}

/// Requests another one continues into: the same client request, part of the outer one.
/// Requests are indexed by their first own line so this stays linear.
fn continued_into(requests: &[RequestReport]) -> Vec<(usize, String)> {
    // Sized at once: grown entry by entry, rehashing was a twentieth of a settling round.
    let mut by_first: HashMap<(&str, u64), Vec<usize>> =
        HashMap::with_capacity_and_hasher(requests.len(), Default::default());
    for (j, r) in requests.iter().enumerate() {
        if let Some(h) = r.hops.first() {
            by_first.entry((&*h.input, h.line)).or_default().push(j);
        }
    }
    let mut marks: Vec<(usize, String)> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let Some(outer_id) = &r.request_id else {
            continue;
        };
        // Hops past the request's own lines are those of its continuation.
        let covered: std::collections::HashSet<(&str, u64)> = r
            .hops
            .iter()
            .skip(r.lines.len())
            .map(|h| (&*h.input, h.line))
            .collect();
        for &(input, line) in &covered {
            for &j in by_first.get(&(input, line)).into_iter().flatten() {
                let own = &requests[j].hops[..requests[j].lines.len().min(requests[j].hops.len())];
                if j != i && own.iter().all(|h| covered.contains(&(&*h.input, h.line))) {
                    marks.push((j, outer_id.clone()));
                }
            }
        }
    }
    marks
}

/// A group, the time its hop ran (Unix ms) when known, and the hop.
type Span<'s> = (usize, Option<(i64, i64)>, &'s LogLine);

/// Requests that another logged hop sent: their outermost hop's downstream connection is that
/// hop's upstream connection, opened while it ran (a retry attempt, which the proxy starts under
/// a new x-request-id when it regenerates ids, or a request forwarded after an id change), or a
/// connection refused by the listener that hop failed to reach. They are part of the request
/// that sent them, not client requests of their own.
fn called_by_logged_hops<'s>(
    groups: &Groups<'s>,
    verdicts: &[crate::diagnose::Verdict],
    requests: &[RequestReport],
) -> Vec<(usize, String)> {
    let span = crate::correlate::span_ms;
    let mut by_upstream_local: HashMap<std::net::SocketAddr, OneOrMany<Span<'s>>> =
        HashMap::with_capacity_and_hasher(groups.lines.len(), Default::default());
    let mut failed_to: HashMap<std::net::SocketAddr, Vec<Span<'s>>> = HashMap::default();
    for (gi, g) in groups.iter().enumerate() {
        for l in g {
            let r = &l.record;
            if let Some(ul) = r
                .socket(Slot::UpstreamLocalAddress)
                .filter(|s| s.port() != 0)
            {
                let e = (gi, span(r), *l);
                by_upstream_local
                    .entry(ul)
                    .and_modify(|on| on.push(e))
                    .or_insert(OneOrMany::One([e]));
            }
            if upstream_connection_failed(r)
                && let Some(up) = r.socket(Slot::UpstreamHost)
            {
                failed_to.entry(up).or_default().push((gi, span(r), l));
            }
        }
    }
    let mut marks = Vec::new();
    for (j, g) in groups.iter().enumerate() {
        let Some(&first) = verdicts[j].order.first() else {
            continue;
        };
        let r = &g[first].record;
        let Some(start) = r.start_time().map(|t| t.timestamp_millis()) else {
            continue;
        };
        let candidates = if refused_connection(r) {
            r.socket(Slot::DownstreamLocalAddress)
                .and_then(|s| failed_to.get(&s))
                .map(Vec::as_slice)
        } else {
            r.socket(Slot::DownstreamRemoteAddress)
                .filter(|s| s.port() != 0)
                .and_then(|s| by_upstream_local.get(&s))
                .map(OneOrMany::as_slice)
        };
        let caller = candidates.into_iter().flatten().find(|(gi, sp, l)| {
            *gi != j
                && sp.is_some_and(|(s, e)| start >= s - 1000 && start <= e + 1000)
                && same_destination(&l.record, r)
        });
        if let Some((gi, _, _)) = caller {
            let id = requests[*gi].request_id.clone().unwrap_or_else(|| {
                let l = groups[*gi][verdicts[*gi].order.first().copied().unwrap_or(0)];
                format!("{}:{}", l.input, l.line)
            });
            marks.push((j, id));
        }
    }
    marks
}

/// The hop label of a request reported without its words ([`explain_except`]).
static NO_LABEL: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));

/// A hop of a request; its label blank when the request is reported without its words.
fn hop_ref(l: &LogLine, brief: bool) -> HopRef {
    HopRef {
        input: l.input.clone(),
        line: l.line,
        status: l.record.status(),
        hop: if brief {
            Arc::clone(&NO_LABEL)
        } else {
            crate::diagnose::shared_hop_label(&l.record)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrace_parsers::detect::{LineOutcome, LineParser};

    /// The OpenShift AI example's proxies (the gateway, the activator, the predictor): a request
    /// whose x-request-id changes at the gateway, and others.
    fn example() -> LogSet {
        let logs = [
            (
                "gateway",
                "istio-system/istio-ingressgateway-64694db8d5-zmcc7",
                include_str!(
                    "../../testdata/bundles/rhoai-400-app-error/logs/istio-system/istio-ingressgateway-64694db8d5-zmcc7/istio-proxy.log"
                ),
            ),
            (
                "activator",
                "knative-serving/activator-5b7c9f8d6-h2xqp",
                include_str!(
                    "../../testdata/bundles/rhoai-400-app-error/logs/knative-serving/activator-5b7c9f8d6-h2xqp/istio-proxy.log"
                ),
            ),
            (
                "predictor",
                "aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj",
                include_str!(
                    "../../testdata/bundles/rhoai-400-app-error/logs/aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj/istio-proxy.log"
                ),
            ),
        ];
        let mut set = LogSet::default();
        let mut parser = LineParser::auto();
        for (input, pod, text) in logs {
            for (i, l) in text.lines().enumerate() {
                if let LineOutcome::Record(r) = parser.parse(l) {
                    set.records.push(LogLine {
                        input: Arc::from(input),
                        line: i as u64 + 1,
                        lines: 1,
                        envelope: "none",
                        pod: Some(Arc::from(pod)),
                        record: r.into_owned(),
                    });
                }
            }
        }
        set
    }

    /// What says which lines a request holds and what it was found to be.
    fn shape(r: &RequestReport) -> String {
        let hops: Vec<(&str, u64, Option<u16>)> = r
            .hops
            .iter()
            .map(|h| (&*h.input, h.line, h.status))
            .collect();
        format!(
            "{:?} {:?} {:?} {}:{} {:?} {hops:?} {:?}",
            r.request_id, r.status, r.cause, r.origin_input, r.origin_line, r.lines, r.part_of
        )
    }

    /// A settling round's explanation: every request with no waiting line is the full one, the
    /// others the same requests without their words; whatever the cut.
    #[test]
    fn requests_that_wait_are_the_same_requests_without_their_words() {
        // As logged, and with the activator's and predictor's clocks 30 s ahead of the gateway's
        // (a request's continuation then ends after the line that relays into it).
        let (mut relayed_waits, mut skewed) = (0, example());
        for l in &mut skewed.records {
            if &*l.input != "gateway"
                && let Some(t) = l.record.start_time()
            {
                let t = t + chrono::Duration::seconds(30);
                l.record.set(
                    meshtrace_parsers::Slot::StartTime,
                    std::borrow::Cow::Owned(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                );
            }
        }
        for set in [example(), skewed] {
            relayed_waits += same_requests_without_words(&set);
        }
        assert!(
            relayed_waits > 0,
            "no continuation waited without its relay"
        );
    }

    /// Check [`explain_except`] against [`explain_with`] at every cut; the number of requests
    /// that waited only because of their continuation.
    fn same_requests_without_words(set: &LogSet) -> usize {
        let ctx = Context::from_records(set.records.iter().map(|l| &l.record));
        let full = explain_with(set, &ctx);
        let mut ends: Vec<i64> = set
            .records
            .iter()
            .map(|l| crate::settle::end_ms(&l.record))
            .collect();
        ends.sort_unstable();
        ends.dedup();
        let (mut described, mut wordless, mut relayed, mut relayed_waits) = (0, 0, 0, 0);
        for &cut in &ends {
            let waits = |l: &LogLine| crate::settle::end_ms(&l.record) >= cut;
            let round = explain_except(set, &ctx, &|i| waits(&set.records[i]));
            assert_eq!(round.requests.len(), full.requests.len(), "cut {cut}");
            assert_eq!(round.places.len(), round.requests.len(), "cut {cut}");
            // The places name the very records of each request's hops and origin.
            for (r, p) in round.requests.iter().zip(&round.places) {
                let at = |i: usize| (&*set.records[i].input, set.records[i].line);
                let hops: Vec<(&str, u64)> = p.hops.iter().map(|&i| at(i)).collect();
                let want: Vec<(&str, u64)> = r.hops.iter().map(|h| (&*h.input, h.line)).collect();
                assert_eq!(hops, want, "cut {cut}");
                assert_eq!(at(p.origin), (&*r.origin_input, r.origin_line), "cut {cut}");
            }
            for (r, f) in round.requests.iter().zip(&full.requests) {
                assert_eq!(shape(r), shape(f), "cut {cut}");
                let waiting = r.hops.iter().any(|h| {
                    set.records
                        .iter()
                        .any(|l| l.input == h.input && l.line == h.line && waits(l))
                });
                if waiting {
                    wordless += 1;
                    let own_wait = r.hops[..r.lines.len()].iter().any(|h| {
                        set.records
                            .iter()
                            .any(|l| l.input == h.input && l.line == h.line && waits(l))
                    });
                    relayed_waits += usize::from(!own_wait);
                    assert!(
                        r.summary.is_empty() && r.fix.is_empty() && r.evidence.is_empty(),
                        "cut {cut}: {r:?}"
                    );
                    assert!(r.hops.iter().all(|h| h.hop.is_empty()));
                } else {
                    described += 1;
                    assert!(!r.summary.is_empty() && !r.fix.is_empty(), "{r:?}");
                    assert!(r.hops.iter().all(|h| !h.hop.is_empty()), "{r:?}");
                    relayed += usize::from(r.hops.len() > r.lines.len());
                    assert_eq!(format!("{r:?}"), format!("{f:?}"), "cut {cut}");
                }
            }
        }
        assert!(
            described > 20 && wordless > 20 && relayed > 0,
            "{described} described, {wordless} without words, {relayed} across an id change"
        );
        relayed_waits
    }

    /// A gateway line and the predictor's line of one request under x-request-id `id`,
    /// starting `ms` after 10:00:00 on client port `port`; the predictor answers `status`.
    fn two_hops(n: u64, id: &str, ms: u64, port: u16, status: u16) -> [LogLine; 2] {
        use crate::correlate::ll;
        let t = |ms: u64| {
            format!(
                "2024-05-01T10:{:02}:{:02}.{:03}Z",
                ms / 60_000,
                ms / 1000 % 60,
                ms % 1000
            )
        };
        let flags = "- via_upstream";
        let (gw, pod) = (t(ms), t(ms + 2));
        [
            ll(
                n,
                &format!(
                    r#"[{gw}] "POST /v1/models/a:predict HTTP/1.1" {status} {flags} - "-" 10 32 30 29 "10.1.0.2" "load" "{id}" "a.example.com" "10.0.0.44:8012" outbound|80||a-predictor.ns.svc.cluster.local 10.0.0.9:{p} 10.0.0.9:8443 10.1.0.2:{port} a.example.com -"#,
                    p = port + 10_000
                ),
            ),
            ll(
                n + 1,
                &format!(
                    r#"[{pod}] "POST /v1/models/a:predict HTTP/1.1" {status} {flags} - "-" 10 32 25 25 "10.1.0.2,10.0.0.9" "load" "{id}" "a.example.com" "127.0.0.1:8080" inbound|8012|| 127.0.0.6:{port} 10.0.0.44:8012 10.0.0.9:{p} outbound_.80_._.a-predictor.ns.svc.cluster.local default"#,
                    p = port + 10_000
                ),
            ),
        ]
    }

    /// A load generator that sends one fixed x-request-id: each of its requests is explained
    /// on its own (they were one request with 80 lines, and `failures` counted one request
    /// where there were 40), each with its own two hops.
    #[test]
    fn requests_that_reuse_an_id_are_each_explained() {
        let mut set = LogSet::default();
        for k in 0..40u64 {
            let status = if k == 13 { 503 } else { 200 };
            set.records.extend(two_hops(
                2 * k + 1,
                "fixed-id",
                k * 100,
                20_000 + k as u16,
                status,
            ));
        }
        let report = explain(&set);
        assert_eq!(
            report.requests.len(),
            40,
            "{:?}",
            report.requests.iter().map(shape).collect::<Vec<_>>()
        );
        for (k, r) in report.requests.iter().enumerate() {
            assert_eq!(r.request_id.as_deref(), Some("fixed-id"));
            assert_eq!(r.lines.len(), 2, "{}", shape(r));
            assert!(r.lines.contains(&(2 * k as u64 + 1)), "{}", shape(r));
            assert_eq!(
                r.status,
                Some(if k == 13 { 503 } else { 200 }),
                "{}",
                shape(r)
            );
        }
    }

    /// Many attempts of one retried request at the next proxy stay one request: their times
    /// lie within the line of the proxy that retried.
    #[test]
    fn the_attempts_of_one_retried_request_stay_one_request() {
        let mut set = LogSet::default();
        let [gw, _] = two_hops(1, "retried", 0, 30_000, 503);
        let mut gw = gw;
        // The gateway's line takes 2 s: 36 attempts at the predictor, one every 50 ms.
        gw.record
            .set(Slot::Duration, std::borrow::Cow::Borrowed("2000"));
        set.records.push(gw);
        for a in 0..36u64 {
            let [_, pod] = two_hops(2 + a, "retried", 10 + a * 50, 30_000, 503);
            set.records.push(pod);
        }
        let report = explain(&set);
        assert_eq!(
            report.requests.len(),
            1,
            "{:?}",
            report.requests.iter().map(shape).collect::<Vec<_>>()
        );
        assert_eq!(report.requests[0].lines.len(), 37);
    }
}
