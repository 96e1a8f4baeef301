//! The windowed settler: explains records in rounds of a window and hands out each request once
//! all its lines are complete, so memory holds a window of records, not whole logs.

use std::sync::Arc;

use meshtrace_parsers::record::RawRecord;

use crate::diagnose::Context;
use crate::explain::{RequestReport, explain_except};
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
/// Records held before a round is settled. Until then nothing is handed out, so evidence with
/// fewer failed records than this is explained as a whole, whatever the order of its lines (a
/// pasted ticket with several proxies' logs one after another). Each round explains the records
/// that arrived since the last one plus the last seconds it kept back, so a record is explained
/// about once, however often the times go back. A record takes a few KiB in memory: 4 096 of
/// them keep `failures` near 20 MiB (16 384 measured 80 MiB on 512 MiB of log).
const WINDOW: usize = 1 << 12;
/// When a round keeps more than half a window back (a very busy log), it keeps only this much.
const CROWDED_HORIZON_MS: i64 = 5_000;
/// A round is also due once the records held take this many bytes of values: a window of
/// Envoy's lines takes 2–4 MiB, but 4 096 records of near-1 MiB lines would take 4 GiB.
const WINDOW_BYTES: usize = 32 << 20;

/// Why a crowded round kept only the newest records ([`Settler::crowded_rounds`]), for notes:
/// the bounds above in words.
pub const CROWDED: &str = "the logs hold more requests a second than meshtrace keeps in memory at once: when even their last 5 s hold more than 4 096 records or 32 MiB, only the newest 2 048 records or 16 MiB are kept";

/// The note for `rounds` crowded rounds with no line seen late: requests may still be
/// `handed` (listed, counted) once per part.
pub fn crowded_note(rounds: u64, handed: &str) -> String {
    format!(
        "{rounds} settling round(s) kept only the newest records ({CROWDED}), so a request whose lines are further apart than that may be {handed} once per part; give each proxy's log as its own file, or a shorter time range"
    )
}

/// Read the values of `lines` once, many at a time, so that the reads that follow find them in
/// the CPU's cache: records reach the settling from a reader on another core, thousands of
/// records later, and the settling thread spent a quarter of its time waiting on the first
/// read of each record's values (each value's first read a miss of its own).
pub fn warm(lines: &[LogLine]) {
    let folded = lines.iter().fold(0u8, |a, l| a ^ l.record.touch_values());
    std::hint::black_box(folded);
}

/// A complete request handed out by [`Settler`].
pub struct Settled<'w> {
    /// Its explanation, handed over (the window keeps only its lines).
    pub report: RequestReport,
    /// Its client-side (first) line.
    pub first: &'w LogLine,
    /// The line that produced its status.
    pub origin: &'w LogLine,
    /// Every record it was explained among (the window), to trace it among.
    pub lines: &'w [LogLine],
}

/// Lines that arrived after requests of their time had been handed out: the evidence goes back
/// in time by more than a window (several proxies' logs one after another in a stream that
/// could not be cut into its time-ordered runs: standard input, gzip), or a crowded round kept
/// only the newest records (see [`Settler::crowded_rounds`]), so a request whose lines are in
/// different parts may have been handed out once per part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateLines {
    /// How many.
    pub count: u64,
    /// The first one: its input and line.
    pub input: Arc<str>,
    /// Its line number.
    pub line: u64,
    /// How far the furthest one ended before the requests already handed out (ms).
    pub behind_ms: i64,
}

impl LateLines {
    /// How far behind the furthest one ended, for a person: `3 s`, `12 min`.
    pub fn behind(&self) -> String {
        let secs = (self.behind_ms + 999) / 1000;
        if secs >= 120 {
            format!("{} min", secs / 60)
        } else {
            format!("{secs} s")
        }
    }

    /// ` and N later line(s)` after the first one, or nothing.
    pub fn more(&self) -> String {
        match self.count {
            1 => String::new(),
            n => format!(" and {} later line(s)", n - 1),
        }
    }
}

/// Explains records in rounds and hands out each request once all its lines are complete: a
/// round starts once `WINDOW` (4 096) records are held and hands out every request whose lines all
/// ended `HORIZON_MS` (15 s) before the newest line read, then drops its lines. Memory holds at
/// most a window or so of records, whatever the size of the logs.
pub struct Settler {
    window: LogSet,
    /// End time of each record of `window` (Unix ms).
    ends: Vec<i64>,
    /// The latest end read.
    newest: i64,
    /// Requests whose lines ended before this were handed out (Unix ms).
    settled_to: i64,
    /// Settle when the window holds this many records.
    next_round: usize,
    /// Bytes of values the window's records take.
    bytes: usize,
    /// Settle when they take this many.
    next_round_bytes: usize,
    late: Option<LateLines>,
    /// Rounds that kept only the newest records (see [`Settler::crowded_rounds`]).
    crowded: u64,
    /// What the records said so far about roles (activators), plus the topology's facts.
    pub ctx: Context,
}

impl Settler {
    /// Start with what is known about roles.
    pub fn new(ctx: Context) -> Settler {
        Settler {
            window: LogSet {
                records: Vec::with_capacity(WINDOW),
                ..LogSet::default()
            },
            ends: Vec::with_capacity(WINDOW),
            newest: i64::MIN,
            settled_to: i64::MIN,
            next_round: WINDOW,
            bytes: 0,
            next_round_bytes: WINDOW_BYTES,
            late: None,
            crowded: 0,
            ctx,
        }
    }

    /// Add the next record (in the order read, ideally by end time); settles a round when one
    /// is due.
    pub fn push(&mut self, l: LogLine, on: &mut dyn FnMut(Settled<'_>, &Context)) {
        self.ctx.learn(&l.record);
        let end = end_ms(&l.record);
        if end != i64::MIN && end < self.settled_to {
            match &mut self.late {
                Some(late) => {
                    late.count += 1;
                    late.behind_ms = late.behind_ms.max(self.settled_to - end);
                }
                None => {
                    self.late = Some(LateLines {
                        count: 1,
                        input: l.input.clone(),
                        line: l.line,
                        behind_ms: self.settled_to - end,
                    })
                }
            }
        }
        self.newest = self.newest.max(end);
        self.bytes += l.record.values_len();
        self.window.records.push(l);
        self.ends.push(end);
        let due =
            self.window.records.len() >= self.next_round || self.bytes >= self.next_round_bytes;
        if !due || self.newest == i64::MIN {
            return;
        }
        let mut cut = self.newest - HORIZON_MS;
        let mut kept = self.settle(cut, on);
        // A very busy log: keep only its last seconds rather than explain them again and again.
        if kept > WINDOW / 2 {
            cut = self.newest - CROWDED_HORIZON_MS;
            kept = self.settle(cut, on);
        }
        self.bytes = self.kept_bytes();
        // Busier still (thousands of requests a second, or very long lines): keep only the
        // newest records, so memory stays bounded whatever the rate. A request still in flight
        // may then be handed out before its last line; a line that comes after is counted in
        // `late_lines`.
        if kept > WINDOW || self.bytes > WINDOW_BYTES {
            self.crowded += 1;
            cut = cut.max(self.newest_cut());
            kept = self.settle(cut, on);
            self.bytes = self.kept_bytes();
        }
        self.settled_to = self.settled_to.max(cut);
        self.next_round = kept + WINDOW.max(kept);
        // Likewise in bytes: what was kept plus a window's worth (at least what was kept, so a
        // round never comes more often than once per kept amount).
        self.next_round_bytes = self.bytes + WINDOW_BYTES.max(self.bytes);
        // Room for exactly the records of the next round: grown by doubling, the window's
        // vectors would hold up to twice that (a few MiB of a process that stays near 30).
        let more = self.next_round.saturating_sub(self.ends.len());
        self.window.records.reserve_exact(more);
        self.ends.reserve_exact(more);
    }

    /// Bytes of values the window's records take.
    fn kept_bytes(&self) -> usize {
        self.window
            .records
            .iter()
            .map(|l| l.record.values_len())
            .sum()
    }

    /// The cut that keeps only the newest records of the window that fit in half a window
    /// (by count and by bytes): the end of the newest record that does not fit, plus 1 ms.
    fn newest_cut(&self) -> i64 {
        let mut by_end: Vec<(i64, usize)> = self
            .ends
            .iter()
            .zip(&self.window.records)
            .map(|(&e, l)| (e, l.record.values_len()))
            .collect();
        by_end.sort_unstable_by_key(|&(end, _)| std::cmp::Reverse(end));
        let (mut n, mut bytes) = (0usize, 0usize);
        for (end, len) in by_end {
            n += 1;
            bytes += len;
            if n > WINDOW / 2 || bytes > WINDOW_BYTES / 2 {
                return end.saturating_add(1);
            }
        }
        i64::MIN
    }

    /// Settle everything left.
    pub fn finish(&mut self, on: &mut dyn FnMut(Settled<'_>, &Context)) {
        self.settle(i64::MAX, on);
    }

    /// Lines that arrived after requests of their time had been handed out, if any: counts may
    /// then count a request once per part of the evidence its lines are in.
    pub fn late_lines(&self) -> Option<&LateLines> {
        self.late.as_ref()
    }

    /// Rounds that kept only the newest records of the window (half a window's worth), because
    /// even its last 5 s held more than a window: thousands of requests a second, or very long
    /// lines. Lines that then arrive late are in [`Settler::late_lines`].
    pub fn crowded_rounds(&self) -> u64 {
        self.crowded
    }

    /// Explain the window and hand out every request whose lines all ended before `cut` (Unix
    /// ms); the lines of the other requests stay for the next round.
    /// Returns how many records it kept.
    fn settle(&mut self, cut: i64, on: &mut dyn FnMut(Settled<'_>, &Context)) -> usize {
        // A request with a line that ended after the cut waits (below): it is explained without
        // its words, which the next round writes (a fifth of a round's records come back).
        warm(&self.window.records);
        let ends = &self.ends;
        // (A place is an index into the window; one that were not would count as waiting.)
        let late = |i: usize| ends.get(i).is_none_or(|&e| e >= cut);
        let report = explain_except(&self.window, &self.ctx, &late);
        let recs = &self.window.records;
        let mut keep: Vec<bool> = ends.iter().map(|&e| e >= cut).collect();
        // A request with a line that ended after the cut waits, and so do all its lines.
        let waiting: Vec<bool> = report
            .places
            .iter()
            .map(|p| p.hops.iter().any(|&i| late(i)))
            .collect();
        for (p, _) in report.places.iter().zip(&waiting).filter(|(_, w)| **w) {
            for &i in &p.hops {
                if let Some(k) = keep.get_mut(i) {
                    *k = true;
                }
            }
        }
        for ((r, p), w) in report
            .requests
            .into_iter()
            .zip(&report.places)
            .zip(&waiting)
        {
            // A complete request whose lines another one still needs (it continues it after an
            // id change) is handed out in the round that settles that one.
            if *w || p.hops.iter().any(|&i| keep.get(i).is_none_or(|&k| k)) {
                continue;
            }
            let (Some(first), Some(origin)) = (
                p.hops.first().and_then(|&i| recs.get(i)),
                recs.get(p.origin),
            ) else {
                continue;
            };
            on(
                Settled {
                    report: r,
                    first,
                    origin,
                    lines: recs,
                },
                &self.ctx,
            );
        }
        let mut k = keep.iter();
        self.window
            .records
            .retain(|_| k.next().copied().unwrap_or(true));
        let mut k = keep.iter();
        self.ends.retain(|_| k.next().copied().unwrap_or(true));
        self.ends.len()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use meshtrace_parsers::Slot;

    use super::*;

    /// A 503 record that started `minute` minutes after 10:00, with a `ua_len`-byte user agent.
    fn line(minute: u64, ua_len: usize) -> LogLine {
        let mut r = RawRecord::new(Arc::from("istio"));
        let start = format!(
            "2024-05-01T{:02}:{:02}:00.000Z",
            10 + minute / 60,
            minute % 60
        );
        r.set(Slot::StartTime, Cow::Owned(start));
        r.set(Slot::ResponseCode, Cow::Borrowed("503"));
        r.set(Slot::ResponseFlags, Cow::Borrowed("UF"));
        r.set(Slot::Duration, Cow::Borrowed("5"));
        r.set(Slot::RequestId, Cow::Owned(format!("id-{minute}")));
        r.set(Slot::UserAgent, Cow::Owned("a".repeat(ua_len)));
        LogLine {
            input: Arc::from("big.log"),
            line: minute + 1,
            lines: 1,
            envelope: "none",
            pod: None,
            record: r.into_owned(),
        }
    }

    #[test]
    fn rounds_come_by_bytes_when_lines_are_long() {
        let mut s = Settler::new(Context::default());
        let mut handed = 0usize;
        let mut most = 0usize;
        for m in 0..300 {
            s.push(line(m, 512 << 10), &mut |_, _| handed += 1);
            most = most.max(s.window.records.len());
        }
        // 300 records of 512 KiB: far fewer than a window's 4 096, yet rounds were settled
        // (by bytes) and the window never held more than about two rounds' worth.
        assert!(
            handed > 200,
            "only {handed} requests handed out before the end"
        );
        assert!(
            most <= 2 * (WINDOW_BYTES / (512 << 10)) + 2,
            "window held {most}"
        );
        s.finish(&mut |_, _| handed += 1);
        assert_eq!(handed, 300);
    }

    /// A record of request `id` that ended `ms` milliseconds after 10:00, with a `ua_len`-byte
    /// user agent.
    fn busy_line(id: u64, ms: u64, ua_len: usize) -> LogLine {
        let mut l = line(0, ua_len);
        let start = format!(
            "2024-05-01T10:{:02}:{:02}.{:03}Z",
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000
        );
        l.record.set(Slot::StartTime, Cow::Owned(start));
        l.record.set(Slot::Duration, Cow::Borrowed("0"));
        l.record
            .set(Slot::RequestId, Cow::Owned(format!("id-{id}")));
        l.line = id + 1;
        l
    }

    /// Thousands of requests a second: the window stays bounded (it grew by a window each
    /// round when everything was inside the crowded horizon), and every request is handed out
    /// once.
    #[test]
    fn a_crowded_log_keeps_a_bounded_window() {
        let mut s = Settler::new(Context::default());
        let mut handed = 0usize;
        let mut most = 0usize;
        // 40 000 requests in 4 seconds.
        for id in 0..40_000u64 {
            s.push(busy_line(id, id / 10, 10), &mut |_, _| handed += 1);
            most = most.max(s.window.records.len());
        }
        assert!(most <= 2 * WINDOW, "window held {most}");
        assert!(handed > 30_000, "only {handed} handed out before the end");
        s.finish(&mut |_, _| handed += 1);
        assert_eq!(handed, 40_000);
        assert!(s.late_lines().is_none(), "{:?}", s.late_lines());
        assert!(s.crowded_rounds() > 0);
    }

    /// Long lines within a few seconds: bounded in bytes too.
    #[test]
    fn a_crowded_log_of_long_lines_keeps_a_bounded_window() {
        let mut s = Settler::new(Context::default());
        let mut handed = 0usize;
        let mut most = 0usize;
        for id in 0..400u64 {
            s.push(busy_line(id, id * 5, 512 << 10), &mut |_, _| handed += 1);
            most = most.max(s.window.records.len());
        }
        assert!(
            most <= 2 * (WINDOW_BYTES / (512 << 10)) + 2,
            "window held {most}"
        );
        s.finish(&mut |_, _| handed += 1);
        assert_eq!(handed, 400);
    }

    #[test]
    fn short_lines_are_settled_by_count_as_before() {
        let mut s = Settler::new(Context::default());
        let mut handed = 0usize;
        for m in 0..1000 {
            s.push(line(m, 100), &mut |_, _| handed += 1);
        }
        assert_eq!(handed, 0, "a round came before a window's worth of records");
        s.finish(&mut |_, _| handed += 1);
        assert_eq!(handed, 1000);
    }
}
