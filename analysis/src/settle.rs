//! The windowed settler: explains time-ordered records in windows and hands out each request
//! once all its lines are complete, so memory holds minutes of records, not whole logs.

use std::collections::HashMap;

use meshtrace_parsers::record::RawRecord;

use crate::diagnose::Context;
use crate::explain::{RequestReport, explain_with};
use crate::model::{LogLine, LogSet};

/// Records in end-time order from a source, with what the source counted on the way.
pub trait RecordStream: Iterator<Item = LogLine> {
    /// Successful records counted without being kept.
    fn ok_records(&self) -> u64;
    /// Malformed lines seen.
    fn malformed(&self) -> u64;
    /// Inputs that could not be read (completely), one sentence each.
    fn problems(&self) -> &[String];
}

/// End of a record's request (start + duration) in Unix ms; records without a time sort first.
pub fn end_ms(r: &RawRecord<'_>) -> i64 {
    match r.start_time() {
        Some(t) => t
            .timestamp_millis()
            .saturating_add(i64::try_from(r.duration_ms().unwrap_or(0)).unwrap_or(0)),
        None => i64::MIN,
    }
}

/// Requests whose lines ended this long before the newest line read are complete: the lines of
/// one request are written within milliseconds of each other (its outermost hop last), and
/// Envoy flushes each worker's access log at least every second.
const HORIZON_MS: i64 = 15_000;
/// Settle once the newest line is this far past the last cut: each record is explained about
/// `1 + HORIZON_MS / SETTLE_EVERY_MS` times.
const SETTLE_EVERY_MS: i64 = 45_000;
/// Records explained at least this many at a time.
const MIN_ROUND: usize = 4096;
/// Beyond this many records waiting, settle everything older than a few seconds.
const MAX_WINDOW: usize = 1 << 13;

/// A complete request handed out by [`Settler`].
pub struct Settled<'w> {
    /// Its explanation.
    pub report: &'w RequestReport,
    /// Its client-side (first) line.
    pub first: &'w LogLine,
    /// The line that produced its status.
    pub origin: &'w LogLine,
}

/// Explains time-ordered records in windows: a request is handed out once all its lines ended
/// `HORIZON_MS` (15 s) before the newest line, then its lines are dropped. Memory holds the last
/// minute or so of records, whatever the size of the logs.
pub struct Settler {
    window: LogSet,
    /// End time of each record of `window` (Unix ms).
    ends: Vec<i64>,
    settled_to: i64,
    limit: usize,
    /// What the records said so far about roles (activators), plus the topology's facts.
    pub ctx: Context,
}

impl Settler {
    /// Start with what is known about roles.
    pub fn new(ctx: Context) -> Settler {
        Settler {
            window: LogSet::default(),
            ends: Vec::new(),
            settled_to: i64::MIN,
            limit: MAX_WINDOW,
            ctx,
        }
    }

    /// Add the next record (in end-time order); settles a round when one is due.
    pub fn push(&mut self, l: LogLine, on: &mut dyn FnMut(Settled<'_>, &Context)) {
        self.ctx.learn(&l.record);
        let end = end_ms(&l.record);
        self.window.records.push(l);
        self.ends.push(end);
        if end == i64::MIN || self.window.records.len() < MIN_ROUND {
            return;
        }
        // A crowded window (a very busy log) settles all but its last seconds.
        let crowded = self.window.records.len() > self.limit;
        let cut = end - if crowded { 5_000 } else { HORIZON_MS };
        if crowded || cut >= self.settled_to.saturating_add(SETTLE_EVERY_MS) {
            self.settle(cut, on);
            self.settled_to = cut;
            self.limit = MAX_WINDOW.max(self.window.records.len() * 2);
        }
    }

    /// Settle everything left.
    pub fn finish(&mut self, on: &mut dyn FnMut(Settled<'_>, &Context)) {
        self.settle(i64::MAX, on);
    }

    /// Explain the window and hand out every request whose lines all ended before `cut` (Unix
    /// ms); the lines of the other requests stay for the next round.
    fn settle(&mut self, cut: i64, on: &mut dyn FnMut(Settled<'_>, &Context)) {
        let report = explain_with(&self.window, &self.ctx);
        let recs = &self.window.records;
        let idx: HashMap<(&str, u64), usize> = recs
            .iter()
            .enumerate()
            .map(|(i, l)| ((&*l.input, l.line), i))
            .collect();
        let ends = &self.ends;
        let mut keep: Vec<bool> = ends.iter().map(|&e| e >= cut).collect();
        let hops: Vec<Vec<usize>> = report
            .requests
            .iter()
            .map(|r| {
                r.hops
                    .iter()
                    .filter_map(|h| idx.get(&(h.input.as_str(), h.line)).copied())
                    .collect()
            })
            .collect();
        // A request with a line that ended after the cut waits, and so do all its lines.
        let waiting: Vec<bool> = hops
            .iter()
            .map(|h| h.iter().any(|&i| ends[i] >= cut))
            .collect();
        for (h, _) in hops.iter().zip(&waiting).filter(|(_, w)| **w) {
            for &i in h {
                keep[i] = true;
            }
        }
        for ((r, h), w) in report.requests.iter().zip(&hops).zip(&waiting) {
            // A complete request whose lines another one still needs (it continues it after an
            // id change) is handed out in the round that settles that one.
            if *w || h.iter().any(|&i| keep[i]) {
                continue;
            }
            let (Some(&first), Some(&origin)) = (
                h.first(),
                idx.get(&(r.origin_input.as_str(), r.origin_line)),
            ) else {
                continue;
            };
            on(
                Settled {
                    report: r,
                    first: &recs[first],
                    origin: &recs[origin],
                },
                &self.ctx,
            );
        }
        drop(idx);
        let mut k = keep.iter();
        self.window
            .records
            .retain(|_| k.next().copied().unwrap_or(true));
        let mut k = keep.iter();
        self.ends.retain(|_| k.next().copied().unwrap_or(true));
    }
}
