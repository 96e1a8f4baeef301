//! Correlation: from one request id (or client address), find every hop of that request. Pure.
//!
//! Links followed until no new hop appears: the same x-request-id; the exact connection (a hop's
//! upstream local address is the next hop's downstream remote address, port ≠ 0) — which is how
//! the path survives the request id changing at a gateway; a hop's upstream host being the next
//! hop's listener when one side has no request id. A connection carries many requests
//! (keep-alive, HTTP/2), so candidates are scored — time nesting, method, path, status, byte
//! counts — and only the best one is taken: concurrent requests are never merged.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Duration, FixedOffset};
use meshtrace_parsers::record::RawRecord;
use meshtrace_parsers::slot::Slot;

use crate::diagnose::{envoy_generated, links_to};
use crate::model::LogLine;
use meshtrace_parsers::flags::ResponseFlag;

/// Where a trace starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// An x-request-id.
    RequestId(String),
    /// A client connection `ip:port` (downstream remote address of the first hop).
    Address(SocketAddr),
    /// A client IP: its most recent failed request.
    Ip(IpAddr),
}

impl Start {
    /// Parse the `trace` argument.
    pub fn parse(s: &str) -> Start {
        let t = s.trim();
        if let Ok(a) = t.parse::<SocketAddr>() {
            Start::Address(a)
        } else if let Ok(ip) = t.parse::<IpAddr>() {
            Start::Ip(ip)
        } else {
            Start::RequestId(t.to_string())
        }
    }
}

impl Start {
    /// The strings a line of this request contains, to search large logs for.
    pub fn needles(&self) -> Vec<String> {
        match self {
            Start::RequestId(id) => vec![id.clone()],
            Start::Address(a) => vec![a.to_string()],
            Start::Ip(ip) => vec![format!("{ip}:")],
        }
    }
}

/// From the records found so far: every request id and connection address of the request's
/// hops (to search for next) and the time range they ran in, with 30 s of slack for clocks.
#[allow(clippy::type_complexity)]
pub fn widening(
    lines: &[LogLine],
    start: &Start,
    include_probes: bool,
) -> (
    Vec<String>,
    Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)>,
) {
    let corr = correlate(lines, start, include_probes);
    let mut needles = Vec::new();
    let mut window: Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)> = None;
    for &i in &corr.hops {
        let r = &lines[i].record;
        if let Some((t, end)) = span(r) {
            let slack = Duration::seconds(30);
            window = Some(match window {
                Some((a, b)) => (a.min(t - slack), b.max(end + slack)),
                None => (t - slack, end + slack),
            });
        }
        let found = [
            r.request_id().map(str::to_string),
            r.socket(Slot::UpstreamLocalAddress)
                .filter(|s| s.port() != 0)
                .map(|s| s.to_string()),
            r.socket(Slot::DownstreamRemoteAddress)
                .filter(|s| s.port() != 0)
                .map(|s| s.to_string()),
        ];
        for n in found.into_iter().flatten() {
            if !needles.contains(&n) {
                needles.push(n);
            }
        }
    }
    (needles, window)
}

/// How two hops were linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Same x-request-id.
    RequestId,
    /// Upstream local address = next hop's downstream remote address.
    Connection,
    /// Upstream host = next hop's listener, time nested.
    Listener,
}

/// The hops of one request.
#[derive(Debug, Clone, Default)]
pub struct Correlation {
    /// Indices into the log lines, in input order.
    pub hops: Vec<usize>,
    /// Links used: (outer, inner, kind).
    pub links: Vec<(usize, usize, LinkKind)>,
    /// Request ids seen along the path, in discovery order.
    pub request_ids: Vec<String>,
    /// Remarks for the reader (ambiguities, probes dropped…).
    pub notes: Vec<String>,
}

/// Is this a Knative or kubelet probe?
pub fn is_probe(r: &RawRecord<'_>) -> bool {
    match r.user_agent() {
        Some(ua) => {
            ua.starts_with("kube-probe/") || (ua.starts_with("Knative-") && ua.ends_with("-Probe"))
        }
        None => false,
    }
}

/// The longest `%DURATION%` taken for a time: a century. A damaged line's larger one would end
/// the request past the last date a clock holds (adding it panicked), or near it, where the
/// seconds of slack added to an end would.
const MAX_DURATION_MS: u64 = 100 * 366 * 86_400_000;

/// A record's start and end (start plus `%DURATION%`); `None` without either, or with a
/// duration over [`MAX_DURATION_MS`].
fn interval(r: &RawRecord<'_>) -> Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)> {
    let s = r.start_time()?;
    let d = r.duration_ms().filter(|&d| d <= MAX_DURATION_MS)?;
    Some((
        s,
        s.checked_add_signed(Duration::try_milliseconds(d as i64)?)?,
    ))
}

/// [`interval`], or the start alone when the end is unknown.
fn span(r: &RawRecord<'_>) -> Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)> {
    interval(r).or_else(|| r.start_time().map(|t| (t, t)))
}

/// Did `inner` come in on the connection `outer` opened upstream? Its downstream remote address
/// is `outer`'s upstream local one (port ≠ 0), and [`same_destination`] does not refute it.
pub fn same_connection(outer: &RawRecord<'_>, inner: &RawRecord<'_>) -> bool {
    matches!(
        (outer.socket(Slot::UpstreamLocalAddress), inner.socket(Slot::DownstreamRemoteAddress)),
        (Some(ul), Some(dr)) if ul.port() != 0 && ul == dr
    ) && same_destination(outer, inner)
}

/// Could `outer`'s upstream connection end at the listener `inner` logged? A TCP connection is
/// named by both its ends, so one local address and port carry connections to several
/// destinations at once (Linux hands out the same ephemeral port for different destinations):
/// equal source addresses alone do not make one connection. An Istio outbound cluster's upstream
/// host is the endpoint the proxy connected to, a pod address not translated on the way, so when
/// `inner` logged the address it was reached at, the two must be equal. Other clusters may
/// connect through a translated address (a Service's cluster IP): nothing is refuted there.
pub fn same_destination(outer: &RawRecord<'_>, inner: &RawRecord<'_>) -> bool {
    use meshtrace_parsers::cluster::{ClusterName, Direction};
    match (
        outer.upstream_cluster(),
        outer.socket(Slot::UpstreamHost),
        inner.socket(Slot::DownstreamLocalAddress),
    ) {
        (
            Some(ClusterName::Istio {
                direction: Direction::Outbound,
                ..
            }),
            Some(up),
            Some(dl),
        ) => up == dl,
        _ => true,
    }
}

/// How well `inner` fits as the hop `outer` forwarded to. `None`: impossible (time disjoint).
pub fn fit(outer: &RawRecord<'_>, inner: &RawRecord<'_>) -> Option<i32> {
    let mut s = 0;
    if let (Some((os, oe)), Some((is, ie))) = (interval(outer), interval(inner)) {
        let slack = Duration::milliseconds(5);
        // An outer hop that answered by itself (route timeout, reset, retries given up) stops
        // waiting: the inner hop it abandoned goes on and ends later. It still started inside.
        let gave_up =
            envoy_generated(outer) || outer.flags().contains(ResponseFlag::UpstreamRequestTimeout);
        if is >= os - slack && (ie <= oe + slack || (gave_up && is <= oe + slack)) {
            s += 4;
        } else if is >= os - Duration::seconds(1) && ie <= oe + Duration::seconds(1) {
            s += 1;
        } else {
            return None;
        }
    }
    let eq = |a: Option<&str>, b: Option<&str>| match (a, b) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    match eq(outer.method(), inner.method()) {
        Some(true) => s += 1,
        Some(false) => s -= 2,
        None => {}
    }
    match eq(outer.path(), inner.path()) {
        Some(true) => s += 2,
        Some(false) => s -= 1,
        None => {}
    }
    if outer.status().is_some() && outer.status() == inner.status() {
        s += 2;
    }
    if outer.bytes_received().is_some() && outer.bytes_received() == inner.bytes_received() {
        s += 1;
    }
    if outer.bytes_sent().is_some() && outer.bytes_sent() == inner.bytes_sent() {
        s += 1;
    }
    if let (Some(a), Some(b)) = (outer.duration_ms(), inner.duration_ms())
        && b <= a
    {
        s += 1;
    }
    // The X-Forwarded-For chain only grows inwards: the inner hop's list starts with the outer's.
    let ox: Vec<&str> = outer.forwarded_for().collect();
    let ix: Vec<&str> = inner.forwarded_for().collect();
    if !ox.is_empty() && !ix.is_empty() {
        if ix.starts_with(&ox) {
            s += 1;
        } else if !ox.starts_with(&ix) {
            s -= 2;
        }
    }
    Some(s)
}

/// The most lines one x-request-id brings into a trace. A request crosses a handful of proxies,
/// a few times over with retries; an id on more lines is reused by many requests (a client or
/// probe sending a fixed id), and following every line of it made a trace take seconds per
/// thousand lines (every selected hop looks for its neighbours among all the lines).
const MAX_LINES_PER_ID: usize = 64;

/// The most lines one request leaves at one listener: Envoy logs each attempt of a retried
/// request at the next proxy, and Istio's default policy retries twice at every client proxy,
/// so through the KServe serving path's three retrying proxies (8443, 8081, the activator's
/// outbound) one request can reach the predictor 3 × 3 × 3 = 27 times. More lines of one
/// x-request-id at one listener are many requests that reuse the id (a client or load
/// generator sending a fixed id).
pub(crate) const MAX_ATTEMPTS_PER_LISTENER: usize = 32;

/// Does some listener hold more than [`MAX_ATTEMPTS_PER_LISTENER`] of the lines `g`?
pub(crate) fn reused_at_one_listener(g: &[&LogLine]) -> bool {
    let mut at: Vec<_> = g
        .iter()
        .filter_map(|l| l.record.socket(Slot::DownstreamLocalAddress))
        .collect();
    at.sort_unstable();
    at.chunk_by(|a, b| a == b)
        .any(|same| same.len() > MAX_ATTEMPTS_PER_LISTENER)
}

/// [`span`] in Unix ms.
pub(crate) fn span_ms(r: &RawRecord<'_>) -> Option<(i64, i64)> {
    span(r).map(|(a, b)| (a.timestamp_millis(), b.timestamp_millis()))
}

/// Slack on a line's end when lines of one request are told by their times: Envoy writes
/// times in whole milliseconds (an inner hop's start can be stamped 1 ms after its outer hop's
/// end), and the clocks of pods on different nodes differ by a few.
const SAME_REQUEST_SLACK_MS: i64 = 10;

/// The requests of lines `g` of one x-request-id reused by many ([`reused_at_one_listener`]):
/// lines whose times overlap (an outer hop's time holds its inner hops' and their attempts',
/// give or take [`SAME_REQUEST_SLACK_MS`]) are one request, and a gap in time starts the next. Returns each line's request (numbered
/// in order of start) and how many there are; `None` when a line is untimed. Requests that
/// reuse an id at the same time stay one.
pub(crate) fn time_parts(g: &[&LogLine]) -> Option<(Vec<usize>, usize)> {
    let spans: Vec<(i64, i64)> = g
        .iter()
        .map(|l| span_ms(&l.record))
        .collect::<Option<_>>()?;
    let mut by_start: Vec<usize> = (0..g.len()).collect();
    by_start.sort_by_key(|&k| (spans[k].0, k));
    let mut part = vec![0usize; g.len()];
    let (mut parts, mut until) = (0usize, i64::MIN);
    for &k in &by_start {
        if parts == 0 || spans[k].0 > until.saturating_add(SAME_REQUEST_SLACK_MS) {
            parts += 1;
            until = spans[k].1;
        } else {
            until = until.max(spans[k].1);
        }
        part[k] = parts - 1;
    }
    Some((part, parts))
}

/// Keep the [`MAX_LINES_PER_ID`] lines of `hits` (indexes in order) that started nearest in
/// time to line `anchor` (then nearest in the input; untimed lines last), in order.
fn nearest_in_time(lines: &[LogLine], hits: &mut Vec<usize>, anchor: usize) {
    let ms = |i: usize| lines[i].record.start_time().map(|t| t.timestamp_millis());
    let at = ms(anchor);
    let distance = |i: usize| {
        let dt = match (ms(i), at) {
            (Some(t), Some(a)) => t.abs_diff(a),
            (None, None) => 0,
            _ => u64::MAX,
        };
        (dt, i.abs_diff(anchor))
    };
    hits.sort_by_cached_key(|&i| distance(i));
    hits.truncate(MAX_LINES_PER_ID);
    hits.sort_unstable();
}

/// Find the hops of the request named by `start`.
pub fn correlate(lines: &[LogLine], start: &Start, include_probes: bool) -> Correlation {
    correlate_at(lines, start, None, include_probes)
}

/// [`correlate`] for the request of line `anchor` (an index into `lines`) when its x-request-id
/// is reused by many requests: the lines of that id followed are those of its request, told
/// apart by their times, and at most the 64 nearest in time to it.
pub fn correlate_at(
    lines: &[LogLine],
    start: &Start,
    anchor: Option<usize>,
    include_probes: bool,
) -> Correlation {
    let mut w = Walk {
        lines,
        anchor: anchor.filter(|&a| a < lines.len()),
        include_probes,
        c: Correlation::default(),
        sel: BTreeSet::new(),
        ids: Vec::new(),
        done_ids: 0,
        probes_dropped: 0,
    };
    w.start_at(start);
    for _round in 0..64 {
        let before = w.sel.len();
        w.same_id_round();
        w.link_round();
        if w.sel.len() == before && w.done_ids == w.ids.len() {
            break;
        }
    }
    w.finish()
}

/// One correlation under way: the hops selected so far and the request ids to follow.
struct Walk<'l> {
    /// All log lines.
    lines: &'l [LogLine],
    /// The line whose request is traced, when known (see [`correlate_at`]).
    anchor: Option<usize>,
    /// Keep probe lines.
    include_probes: bool,
    /// Links and notes so far.
    c: Correlation,
    /// Selected hops (indexes into `lines`).
    sel: BTreeSet<usize>,
    /// Request ids seen, in discovery order.
    ids: Vec<String>,
    /// How many of `ids` have been followed.
    done_ids: usize,
    /// Probe lines left out.
    probes_dropped: usize,
}

impl Walk<'_> {
    /// May line `i` be part of the request (probes only when asked)?
    fn usable(&self, i: usize) -> bool {
        self.include_probes || !is_probe(&self.lines[i].record)
    }

    /// Remember line `i`'s request id to follow it.
    fn learn_id(&mut self, i: usize) {
        if let Some(id) = self.lines[i].record.request_id()
            && !self.ids.iter().any(|x| x == id)
        {
            self.ids.push(id.to_string());
        }
    }

    /// The first hop: the request id given, or the latest (failed) request of the client
    /// connection or IP given.
    fn start_at(&mut self, start: &Start) {
        let lines = self.lines;
        match start {
            Start::RequestId(id) => {
                self.ids.push(id.clone());
            }
            Start::Address(a) => {
                let hits: Vec<usize> = (0..lines.len())
                    .filter(|&i| {
                        self.usable(i)
                            && lines[i].record.socket(Slot::DownstreamRemoteAddress) == Some(*a)
                    })
                    .collect();
                let what = format!("connection {a}");
                pick_latest_failed(lines, &hits, &mut self.sel, &mut self.c, &what);
            }
            Start::Ip(ip) => {
                let hits: Vec<usize> = (0..lines.len())
                    .filter(|&i| {
                        self.usable(i)
                            && lines[i].record.downstream_remote().and_then(|a| a.ip()) == Some(*ip)
                    })
                    .collect();
                let what = format!("client {ip}");
                pick_latest_failed(lines, &hits, &mut self.sel, &mut self.c, &what);
            }
        }
        let selected: Vec<usize> = self.sel.iter().copied().collect();
        for i in selected {
            self.learn_id(i);
        }
    }

    /// Select every line of each request id not followed yet, linked to the id's first line;
    /// of an id on more than [`MAX_LINES_PER_ID`] lines (reused by many requests), only those
    /// nearest in time to the request traced, with a note.
    fn same_id_round(&mut self) {
        let lines = self.lines;
        while self.done_ids < self.ids.len() {
            let id = self.ids[self.done_ids].clone();
            self.done_ids += 1;
            let mut hits = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                if l.record.request_id() == Some(id.as_str()) {
                    if self.usable(i) {
                        hits.push(i);
                    } else {
                        self.probes_dropped += 1;
                    }
                }
            }
            let on = hits.len();
            let parts = (on > MAX_ATTEMPTS_PER_LISTENER)
                .then(|| hits.iter().map(|&i| &lines[i]).collect::<Vec<_>>())
                .filter(|of| reused_at_one_listener(of))
                .and_then(|of| time_parts(&of));
            if let Some((part, _)) = parts.filter(|&(_, n)| n > 1) {
                // Many requests under one id: the one of the request traced.
                let (anchor, how) = self.anchor_among(&hits);
                let at = hits.binary_search(&anchor).map_or(0, |k| part[k]);
                let mut k = 0;
                hits.retain(|_| {
                    k += 1;
                    part[k - 1] == at
                });
                self.c.notes.push(format!(
                    "x-request-id {id} is on {on} lines: many requests reuse it (a client or probe that sends a fixed id?), so only the request at {}:{} ({how}) was followed, by the lines that ran at its time; trace another of them by its connection (`meshtrace trace <client ip:port>`)",
                    lines[anchor].input, lines[anchor].line
                ));
            }
            if hits.len() > MAX_LINES_PER_ID {
                let (anchor, how) = self.anchor_among(&hits);
                nearest_in_time(lines, &mut hits, anchor);
                self.c.notes.push(format!(
                    "x-request-id {id} is on {on} lines: many requests reuse it (a client or probe that sends a fixed id?), so only the {MAX_LINES_PER_ID} lines nearest in time to {}:{} ({how}) were followed; trace another of its requests by its connection (`meshtrace trace <client ip:port>`)",
                    lines[anchor].input, lines[anchor].line
                ));
            }
            if let Some((&first, rest)) = hits.split_first() {
                self.sel.insert(first);
                for &i in rest {
                    self.c.links.push((first, i, LinkKind::RequestId));
                    self.sel.insert(i);
                }
            }
        }
    }

    /// The line of `hits` (an id's lines, in order) whose request is traced: the anchor given,
    /// else a line already selected (the id was reached through it), else the latest failed
    /// one, as for a client address; with how it was picked, for the note.
    fn anchor_among(&self, hits: &[usize]) -> (usize, &'static str) {
        if let Some(a) = self.anchor.filter(|a| hits.binary_search(a).is_ok()) {
            return (a, "the request traced");
        }
        if let Some(&a) = hits.iter().find(|i| self.sel.contains(i)) {
            return (a, "the hop it was reached through");
        }
        match latest_failed(self.lines, hits) {
            Some((a, true)) => (a, "its latest failed line"),
            Some((a, false)) => (a, "its latest line"),
            None => (hits[0], "its first line"),
        }
    }

    /// Connection and listener links, inwards and outwards from every selected hop.
    fn link_round(&mut self) {
        let snapshot: Vec<usize> = self.sel.iter().copied().collect();
        for &h in &snapshot {
            for inward in [true, false] {
                self.link_from(h, inward);
            }
        }
    }

    /// Join hop `h`'s neighbour on one side (`inward`: the hop it forwarded to), unless it has
    /// one already.
    fn link_from(&mut self, h: usize, inward: bool) {
        let lines = self.lines;
        let hr = &lines[h].record;
        let retried = hr
            .flags()
            .contains(ResponseFlag::UpstreamRetryLimitExceeded);
        if self.joined(h, inward) {
            // A proxy that retried sent every attempt on its upstream connections: the
            // other attempts are the same request, not neighbours of another one.
            if inward && retried {
                let attempts = retry_attempts(lines, h, &self.sel, &|i| self.usable(i));
                for cand in attempts {
                    self.sel.insert(cand);
                    self.c.links.push((h, cand, LinkKind::Connection));
                    self.learn_id(cand);
                }
            }
            return;
        }
        let Some((cand, kind, tie)) = self.best_neighbour(h, inward) else {
            return;
        };
        if tie && !retried {
            self.c.notes.push(format!(
                "{}:{}: several hops fit equally well {} it; took {}:{} (closest in time)",
                lines[h].input,
                lines[h].line,
                if inward { "after" } else { "before" },
                lines[cand].input,
                lines[cand].line
            ));
        }
        self.sel.insert(cand);
        self.c.links.push(if inward {
            (h, cand, kind)
        } else {
            (cand, h, kind)
        });
        self.learn_id(cand);
    }

    /// Is hop `h` already joined on this side (by request id, connection or same pod)? Then it
    /// has its neighbour: looking further would pull in another request on a shared connection.
    fn joined(&self, h: usize, inward: bool) -> bool {
        let hr = &self.lines[h].record;
        self.sel.iter().any(|&s| {
            s != h
                && if inward {
                    links_to(hr, &self.lines[s].record)
                } else {
                    links_to(&self.lines[s].record, hr)
                }
        })
    }

    /// The unselected line that fits best as hop `h`'s neighbour on one side, how it links, and
    /// whether another fit equally well.
    fn best_neighbour(&self, h: usize, inward: bool) -> Option<(usize, LinkKind, bool)> {
        let hr = &self.lines[h].record;
        let mut best: Option<(i32, usize, LinkKind)> = None;
        let mut tie = false;
        for (cand, cl) in self.lines.iter().enumerate() {
            if self.sel.contains(&cand) || !self.usable(cand) {
                continue;
            }
            let cr = &cl.record;
            let (outer, inner) = if inward { (hr, cr) } else { (cr, hr) };
            let Some(kind) = link_kind(outer, inner) else {
                continue;
            };
            let Some(score) = fit(outer, inner) else {
                continue;
            };
            if kind == LinkKind::Listener && score < 4 {
                continue;
            }
            match best {
                Some((b, _, _)) if score < b => {}
                Some((b, _, _)) if score == b => tie = true,
                _ => {
                    tie = false;
                    best = Some((score, cand, kind));
                }
            }
        }
        best.map(|(_, cand, kind)| (cand, kind, tie))
    }

    /// The correlation: hops in input order, the request ids that have hops, the notes.
    fn finish(self) -> Correlation {
        let Walk {
            lines,
            mut c,
            sel,
            ids,
            probes_dropped,
            ..
        } = self;
        if probes_dropped > 0 {
            c.notes.push(format!(
                "{probes_dropped} probe line(s) with this request id left out (use --include-probes)"
            ));
        }
        c.hops = sel.into_iter().collect();
        c.request_ids = ids
            .into_iter()
            .filter(|id| {
                c.hops
                    .iter()
                    .any(|&i| lines[i].record.request_id() == Some(id))
            })
            .collect();
        c
    }
}

/// How `outer` may have forwarded to `inner`: the exact connection (upstream local address =
/// downstream remote address, port ≠ 0), or the listener (upstream host = listener) when one
/// side has no request id and both are timed. `None`: not linked.
fn link_kind(outer: &RawRecord<'_>, inner: &RawRecord<'_>) -> Option<LinkKind> {
    if same_connection(outer, inner) {
        Some(LinkKind::Connection)
    } else if let (Some(up), Some(dl)) = (
        outer.socket(Slot::UpstreamHost),
        inner.socket(Slot::DownstreamLocalAddress),
    ) && up == dl
        && (outer.request_id().is_none() || inner.request_id().is_none())
        && interval(outer).is_some()
        && interval(inner).is_some()
    {
        Some(LinkKind::Listener)
    } else {
        None
    }
}

/// The other attempts of a hop that retried (`URX`): lines on one of its upstream connections
/// that started and ended while it ran, with its method and path and a failed status.
fn retry_attempts(
    lines: &[LogLine],
    h: usize,
    sel: &BTreeSet<usize>,
    usable: &dyn Fn(usize) -> bool,
) -> Vec<usize> {
    let outer = &lines[h].record;
    let Some((os, oe)) = interval(outer) else {
        return Vec::new();
    };
    let Some(ul) = outer
        .socket(Slot::UpstreamLocalAddress)
        .filter(|s| s.port() != 0)
    else {
        return Vec::new();
    };
    // Attempts may use other connections of the same proxy to the same upstream listener: the
    // same local IP, and a downstream local address one of the selected attempts has.
    let listeners: BTreeSet<SocketAddr> = sel
        .iter()
        .filter(|&&s| lines[s].record.socket(Slot::DownstreamRemoteAddress) == Some(ul))
        .filter_map(|&s| lines[s].record.socket(Slot::DownstreamLocalAddress))
        .collect();
    let slack = Duration::milliseconds(5);
    (0..lines.len())
        .filter(|&i| !sel.contains(&i) && usable(i))
        .filter(|&i| {
            let r = &lines[i].record;
            let remote = r.socket(Slot::DownstreamRemoteAddress);
            let on_connection = remote == Some(ul)
                || (remote.is_some_and(|a| a.ip() == ul.ip())
                    && r.socket(Slot::DownstreamLocalAddress)
                        .is_some_and(|l| listeners.contains(&l)));
            on_connection
                && interval(r).is_some_and(|(is, ie)| is >= os - slack && ie <= oe + slack)
                && r.method() == outer.method()
                && r.path() == outer.path()
                && r.status().is_none_or(|s| s == 0 || s >= 500)
        })
        .collect()
}

fn pick_latest_failed(
    lines: &[LogLine],
    hits: &[usize],
    sel: &mut BTreeSet<usize>,
    c: &mut Correlation,
    what: &str,
) {
    if let Some((b, failed)) = latest_failed(lines, hits) {
        sel.insert(b);
        if hits.len() > 1 {
            c.notes.push(format!(
                "{what} made {} request(s) in the evidence; traced the latest {}one ({}:{}) — give a request id or the exact ip:port to pick another",
                hits.len(),
                if failed { "failed " } else { "" },
                lines[b].input,
                lines[b].line
            ));
        }
    }
}

/// The line of `hits` that started last among the failed ones (status 0 or ≥ 400, or none),
/// else among all; with whether it failed.
fn latest_failed(lines: &[LogLine], hits: &[usize]) -> Option<(usize, bool)> {
    let latest = |failed: bool| {
        hits.iter()
            .copied()
            .filter(|&i| !failed || lines[i].record.status().is_none_or(|s| s == 0 || s >= 400))
            .max_by_key(|&i| (lines[i].record.start_time(), i))
    };
    latest(true)
        .map(|i| (i, true))
        .or_else(|| latest(false).map(|i| (i, false)))
}

/// Test lines for the other modules' tests too.
#[cfg(test)]
pub(crate) use tests::ll;

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrace_parsers::detect::{LineOutcome, LineParser};
    use std::sync::Arc;

    /// Line `n` of `t.log`, parsed as `auto` reads it.
    pub(crate) fn ll(n: u64, line: &str) -> LogLine {
        let r = match LineParser::auto().parse(line) {
            LineOutcome::Record(r) => r.into_owned(),
            o => panic!("{o:?}"),
        };
        LogLine {
            input: Arc::from("t.log"),
            line: n,
            lines: 1,
            envelope: "none",
            pod: None,
            record: r,
        }
    }

    // Two concurrent requests share the gateway→local-gateway connection 10.0.0.9:39352 and the
    // request id changes at the gateway. Each outer hop must pair with its own inner hop.
    fn lines() -> Vec<LogLine> {
        vec![
            ll(
                1,
                r#"[2024-05-01T10:00:00.000Z] "POST /v1/models/a:predict HTTP/2" 400 - via_upstream - "-" 10 32 30 29 "10.1.0.2" "curl" "id-a-outer" "a.example.com" "10.0.0.9:8081" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.0.0.9:39352 10.0.0.9:8443 10.1.0.2:5000 a.example.com -"#,
            ),
            ll(
                2,
                r#"[2024-05-01T10:00:00.002Z] "POST /v1/models/b:predict HTTP/2" 200 - via_upstream - "-" 99 64 40 39 "10.1.0.3" "curl" "id-b-outer" "b.example.com" "10.0.0.9:8081" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.0.0.9:39352 10.0.0.9:8443 10.1.0.3:5001 b.example.com -"#,
            ),
            ll(
                3,
                r#"[2024-05-01T10:00:00.003Z] "POST /v1/models/b:predict HTTP/2" 200 - via_upstream - "-" 99 64 36 36 "10.1.0.3,10.0.0.9" "curl" "id-b-inner" "b.ns.svc.cluster.local" "10.0.0.44:8012" outbound|80||b-predictor-00001.ns.svc.cluster.local 10.0.0.9:45990 10.0.0.9:8081 10.0.0.9:39352 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#,
            ),
            ll(
                4,
                r#"[2024-05-01T10:00:00.001Z] "POST /v1/models/a:predict HTTP/2" 400 - via_upstream - "-" 10 32 25 25 "10.1.0.2,10.0.0.9" "curl" "id-a-inner" "a.ns.svc.cluster.local" "10.0.0.44:8012" outbound|80||a-predictor-00001.ns.svc.cluster.local 10.0.0.9:45991 10.0.0.9:8081 10.0.0.9:39352 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#,
            ),
            ll(
                5,
                r#"[2024-05-01T10:00:00.004Z] "POST /v1/models/a:predict HTTP/1.1" 400 - via_upstream - "-" 10 32 20 20 "10.1.0.2,10.0.0.9" "curl" "id-a-inner" "a.ns.svc.cluster.local" "10.0.0.44:8012" inbound|8012|| 127.0.0.6:40375 10.0.0.44:8012 10.0.0.9:0 outbound_.80_._.a-predictor-00001.ns.svc.cluster.local default"#,
            ),
            ll(
                6,
                r#"[2024-05-01T10:00:00.005Z] "GET /healthz HTTP/1.1" 200 - via_upstream - "-" 0 2 1 1 "-" "Knative-Activator-Probe" "id-a-inner" "10.0.0.50:8012" "10.0.0.50:8012" inbound|8012|| 127.0.0.6:1 10.0.0.50:8012 10.0.0.44:0 - default"#,
            ),
        ]
    }

    #[test]
    fn an_id_reused_by_many_requests_is_followed_near_the_request_traced() {
        // A client that sends a fixed x-request-id: 300 requests under one id, each on its own
        // connection. Following every line made a trace (and `failures`, which traces each
        // group's example) take seconds per thousand lines.
        let lines: Vec<LogLine> = (0..300u64)
            .map(|n| {
                ll(
                    n + 1,
                    &format!(
                        r#"[2024-05-01T10:00:{:02}.{:03}Z] "POST /v1/models/a:predict HTTP/1.1" 503 UF upstream_reset_before_response_started{{connection_failure}} - "-" 10 91 1 - "-" "hey/0.0.1" "fixed-id" "a.example.com" "10.0.0.44:8012" outbound|80||a.ns.svc.cluster.local - 10.0.0.9:8443 10.1.0.2:{} a.example.com -"#,
                        n / 1000,
                        n % 1000,
                        20000 + n
                    ),
                )
            })
            .collect();
        // By the id alone: its latest failed line, and the lines nearest it in time.
        let c = correlate(&lines, &Start::RequestId("fixed-id".into()), false);
        assert_eq!(c.hops.len(), MAX_LINES_PER_ID, "{:?}", c.notes);
        assert_eq!(c.hops, (300 - MAX_LINES_PER_ID..300).collect::<Vec<_>>());
        assert!(
            c.notes.iter().any(|n| n.starts_with(
                "x-request-id fixed-id is on 300 lines: many requests reuse it (a client or probe that sends a fixed id?), so only the 64 lines nearest in time to t.log:300 (its latest failed line) were followed"
            )),
            "{:?}",
            c.notes
        );
        // From one of its requests (a `failures` group's example): that line and its
        // neighbours in time, whatever their place among the id's lines.
        let c = correlate_at(
            &lines,
            &Start::RequestId("fixed-id".into()),
            Some(150),
            false,
        );
        assert_eq!(c.hops, (118..182).collect::<Vec<_>>(), "{:?}", c.notes);
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("nearest in time to t.log:151 (the request traced)")),
            "{:?}",
            c.notes
        );
        // A request on fewer lines is followed whole, without the note.
        let c = correlate(&lines[..5], &Start::RequestId("fixed-id".into()), false);
        assert_eq!(c.hops.len(), 5);
        assert!(
            !c.notes.iter().any(|n| n.contains("reuse")),
            "{:?}",
            c.notes
        );
    }

    /// A damaged or hostile line whose `%DURATION%` would end it past the last date a clock
    /// can hold: its end is unknown, not a panic.
    #[test]
    fn a_duration_past_the_end_of_time_is_no_end() {
        let mut l = lines();
        for k in [0, 3] {
            l[k].record.set(
                Slot::Duration,
                std::borrow::Cow::Borrowed("99999999999999999"),
            );
        }
        let (needles, window) = widening(&l, &Start::RequestId("id-a-outer".into()), false);
        assert!(needles.contains(&"id-a-inner".to_string()), "{needles:?}");
        assert!(window.is_some());
        let c = correlate(&l, &Start::RequestId("id-a-outer".into()), false);
        assert!(c.hops.contains(&0), "{:?}", c.hops);
    }

    #[test]
    fn one_local_port_to_two_destinations_is_two_connections() {
        // The same ephemeral port towards a feature store (TCP) and the local gateway (HTTP).
        let tcp = ll(
            1,
            r#"[2024-06-03T09:08:24.404Z] "- - -" 0 - - - "-" 6274031 8468288 94307 - "-" "-" "-" "-" "10.133.3.7:9000" outbound|9000||feature-store.aiproject.svc.cluster.local 10.135.0.43:52485 10.135.0.43:31400 10.134.2.239:42599 - -"#,
        );
        let gw = ll(
            2,
            r#"[2024-06-03T09:09:09.355Z] "POST /v2/models/test/infer HTTP/2" 503 - via_upstream - "-" 2312 168 32 32 "10.134.2.169" "curl/8.6.0" "b4403270-8274-4571-85f1-bb462ce17ad4" "test-predictor.aiproject.svc.cluster.local" "10.135.0.43:8081" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.135.0.43:52485 10.135.0.43:8443 10.134.2.169:42287 test-aiproject.apps.mycluster.example.com -"#,
        );
        let local = ll(
            3,
            r#"[2024-06-03T09:09:09.357Z] "POST /v2/models/test/infer HTTP/2" 503 - via_upstream - "-" 2312 168 28 27 "10.134.2.169,10.135.0.43" "curl/8.6.0" "b4403270-8274-4571-85f1-bb462ce17ad4" "test-predictor.aiproject.svc.cluster.local" "10.135.0.44:8012" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 10.135.0.43:44757 10.135.0.43:8081 10.135.0.43:52485 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#,
        );
        assert!(same_connection(&gw.record, &local.record));
        assert!(!same_connection(&tcp.record, &local.record));
        assert_eq!(link_kind(&tcp.record, &local.record), None);
        // Traced from the TCP connection, the path stays on it.
        let l = vec![tcp, gw, local];
        let c = correlate(
            &l,
            &Start::Address("10.134.2.239:42599".parse().unwrap()),
            false,
        );
        assert_eq!(c.hops, vec![0]);
    }

    #[test]
    fn follows_the_connection_across_the_id_change_without_merging_concurrent_requests() {
        let l = lines();
        let c = correlate(&l, &Start::RequestId("id-a-outer".into()), false);
        assert_eq!(c.hops, vec![0, 3, 4]);
        assert_eq!(c.request_ids, vec!["id-a-outer", "id-a-inner"]);
        assert!(c.links.contains(&(0, 3, LinkKind::Connection)));
        assert!(c.notes.iter().any(|n| n.contains("probe")), "{:?}", c.notes);
        // Starting from the inner id walks back out to the gateway's 8443 hop.
        let c = correlate(&l, &Start::RequestId("id-a-inner".into()), false);
        assert_eq!(c.hops, vec![0, 3, 4]);
        let c = correlate(&l, &Start::RequestId("id-b-outer".into()), false);
        assert_eq!(c.hops, vec![1, 2]);
    }

    /// `explain` follows each request across the id change on the shared connection: the
    /// client address 10.0.0.9:39352 carries both inner requests, and each outer request
    /// continues into the one inside its own time.
    #[test]
    fn explain_continues_each_request_on_its_own_part_of_a_shared_connection() {
        let set = crate::model::LogSet {
            records: lines(),
            ..Default::default()
        };
        let report = crate::explain::explain(&set);
        let hops_of = |id: &str| -> Vec<u64> {
            let r = report
                .requests
                .iter()
                .find(|r| r.request_id.as_deref() == Some(id))
                .unwrap_or_else(|| panic!("no request {id}"));
            r.hops.iter().map(|h| h.line).collect()
        };
        // (Line 6, the activator's probe, carries the inner id too: `explain` groups by id.)
        assert_eq!(hops_of("id-a-outer"), vec![1, 4, 6, 5]);
        assert_eq!(hops_of("id-b-outer"), vec![2, 3]);
    }

    #[test]
    fn probes_only_when_asked() {
        let l = lines();
        let c = correlate(&l, &Start::RequestId("id-a-inner".into()), true);
        assert!(c.hops.contains(&5));
    }

    #[test]
    fn client_address_start() {
        let l = lines();
        let c = correlate(&l, &Start::parse("10.1.0.2:5000"), false);
        assert_eq!(c.hops, vec![0, 3, 4]);
        let c = correlate(&l, &Start::parse("10.1.0.3"), false);
        assert_eq!(c.hops, vec![1, 2]);
        assert_eq!(Start::parse("abc"), Start::RequestId("abc".into()));
    }

    #[test]
    fn unknown_id_finds_nothing() {
        assert!(
            correlate(&lines(), &Start::RequestId("nope".into()), false)
                .hops
                .is_empty()
        );
    }
}
