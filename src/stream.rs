//! Streaming the records of many logs in time order with bounded memory: each input is read on
//! its own thread (large ones keeping only failed records) and handed over in small batches
//! through bounded channels; [`Merged::next`] always yields the record that ended first.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use meshtrace_parsers::detect::FormatSpec;
use meshtrace_parsers::record::RawRecord;

use std::collections::{BTreeMap, HashMap};

use crate::diagnose::Context;
use crate::explain::{RequestReport, explain_with};
use crate::input::{LineSink, LogLine, LogSet, SkippedLine, read_streamed};

/// Records per batch handed from a reader thread to the merge, for all inputs together: each
/// input's batches are this divided by the number of inputs (at least 16, at most 256), so the
/// records in flight stay bounded however many logs a bundle has.
const BATCH_TOTAL: usize = 2048;
/// Batches waiting per input (besides the one being filled and the one being merged).
const IN_FLIGHT: usize = 2;

/// Opens an input's bytes on its reader thread.
pub type Opener = Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>;

/// One log to stream.
pub struct StreamInput {
    /// Name for messages and evidence references.
    pub name: String,
    /// `namespace/pod` whose log this is (bundle logs).
    pub pod: Option<Arc<str>>,
    /// Its format.
    pub spec: FormatSpec,
    /// Size in bytes when known (small inputs are read whole).
    pub size: Option<u64>,
    /// How to open it.
    pub open: Opener,
    /// Keep every record even of a large input (else only failed ones, successes counted).
    pub keep_all: bool,
}

enum Msg {
    Records(Vec<LogLine>),
    Done {
        ok_records: u64,
        skipped: BTreeMap<String, u64>,
        malformed: Vec<SkippedLine>,
        error: Option<String>,
    },
}

/// Malformed lines kept as examples per input (the others are only counted).
pub const MALFORMED_EXAMPLES: usize = 20;

/// Batches records into the channel; counts what it does not pass on.
struct ChannelSink {
    tx: SyncSender<Msg>,
    batch_size: usize,
    batch: Vec<LogLine>,
    ok_records: u64,
    skipped: BTreeMap<String, u64>,
    malformed: Vec<SkippedLine>,
    closed: bool,
}

impl ChannelSink {
    fn flush(&mut self) {
        if !self.batch.is_empty() && !self.closed {
            let b = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
            // The merge stopped listening: keep reading (the reader cannot be interrupted) but
            // drop what it finds.
            self.closed = self.tx.send(Msg::Records(b)).is_err();
        }
        self.batch.clear();
    }
}

impl LineSink for ChannelSink {
    fn record(&mut self, line: LogLine) {
        self.batch.push(line);
        if self.batch.len() >= self.batch_size {
            self.flush();
        }
    }
    fn skipped(&mut self, line: SkippedLine) {
        match self.skipped.get_mut(&line.kind) {
            Some(n) => *n += 1,
            None => {
                self.skipped.insert(line.kind.clone(), 1);
            }
        }
        if line.kind == "malformed" && self.malformed.len() < MALFORMED_EXAMPLES {
            self.malformed.push(line);
        }
    }
    fn ok_records(&mut self, n: u64) {
        self.ok_records += n;
    }
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

/// The time-ordered merge of several inputs.
pub struct Merged {
    rx: Vec<Receiver<Msg>>,
    /// Records waiting per input, with their end time (the merge key).
    queues: Vec<VecDeque<(i64, LogLine)>>,
    done: Vec<bool>,
    /// Successful records of large inputs, counted and dropped.
    pub ok_records: u64,
    /// Lines that are not access-log records, by kind (`malformed`, `istio-log`, …).
    pub skipped: BTreeMap<String, u64>,
    /// The first malformed lines of each input.
    pub malformed_examples: Vec<SkippedLine>,
    /// Inputs that could not be read (completely), one sentence each.
    pub problems: Vec<String>,
}

impl Merged {
    /// Start one reader thread per input.
    pub fn start(inputs: Vec<StreamInput>) -> Merged {
        let mut rx = Vec::with_capacity(inputs.len());
        let batch_size = (BATCH_TOTAL / inputs.len().max(1)).clamp(16, 256);
        for input in inputs {
            let (tx, r) = sync_channel(IN_FLIGHT);
            rx.push(r);
            let reader = std::thread::Builder::new().name("meshtrace-read".into());
            let spawned = reader.spawn(move || {
                let mut sink = ChannelSink {
                    tx,
                    batch_size,
                    batch: Vec::with_capacity(batch_size),
                    ok_records: 0,
                    skipped: BTreeMap::new(),
                    malformed: Vec::new(),
                    closed: false,
                };
                let error = match (input.open)() {
                    Ok(reader) => read_streamed(
                        reader,
                        &input.name,
                        input.pod,
                        &input.spec,
                        input.size,
                        input.keep_all,
                        &mut sink,
                    )
                    .err()
                    .map(|e| e.to_string()),
                    Err(e) => Some(format!("{}: unreadable: {e}", input.name)),
                };
                sink.flush();
                let _ = sink.tx.send(Msg::Done {
                    ok_records: sink.ok_records,
                    skipped: std::mem::take(&mut sink.skipped),
                    malformed: std::mem::take(&mut sink.malformed),
                    error,
                });
            });
            // Without a thread the receiver reports the input as stopped (see `fill`).
            drop(spawned);
        }
        let n = rx.len();
        Merged {
            rx,
            queues: (0..n).map(|_| VecDeque::new()).collect(),
            done: vec![false; n],
            ok_records: 0,
            skipped: BTreeMap::new(),
            malformed_examples: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Wait until input `i` has a record queued or is finished.
    fn fill(&mut self, i: usize) {
        while self.queues[i].is_empty() && !self.done[i] {
            match self.rx[i].recv() {
                Ok(Msg::Records(v)) => {
                    self.queues[i].extend(v.into_iter().map(|l| (end_ms(&l.record), l)))
                }
                Ok(Msg::Done {
                    ok_records,
                    skipped,
                    malformed,
                    error,
                }) => {
                    self.done[i] = true;
                    self.ok_records += ok_records;
                    for (k, n) in skipped {
                        *self.skipped.entry(k).or_default() += n;
                    }
                    self.malformed_examples.extend(malformed);
                    self.problems.extend(error);
                }
                Err(_) => {
                    self.done[i] = true;
                    self.problems.push(
                        "a log reader stopped unexpectedly; its remaining lines are missing".into(),
                    );
                }
            }
        }
    }
}

impl Merged {
    /// Malformed lines seen.
    pub fn malformed(&self) -> u64 {
        self.skipped.get("malformed").copied().unwrap_or(0)
    }
}

impl Iterator for Merged {
    type Item = LogLine;

    /// The next record across all inputs: the one whose request ended first.
    fn next(&mut self) -> Option<LogLine> {
        let mut best: Option<(i64, usize)> = None;
        for i in 0..self.queues.len() {
            self.fill(i);
            if let Some(&(k, _)) = self.queues[i].front()
                && best.is_none_or(|(b, _)| k < b)
            {
                best = Some((k, i));
            }
        }
        let (_, i) = best?;
        self.queues[i].pop_front().map(|(_, l)| l)
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
/// [`HORIZON_MS`] before the newest line, then its lines are dropped. Memory holds the last
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
