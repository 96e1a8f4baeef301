//! Streaming the records of many logs in time order with bounded memory: each input is read on
//! its own thread (large ones keeping only failed records) and handed over in small batches
//! through bounded channels; [`Merged::next`] always yields the record that ended first.

use meshtrace_analysis::settle::{RecordStream, end_ms};
use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use meshtrace_parsers::detect::FormatSpec;

use std::collections::BTreeMap;

use crate::source::input::read_streamed_from;
use crate::source::runs::{MAX_RUNS, Positioned, Run, find_runs};
use meshtrace_analysis::model::{
    ConnLine, EppLine, KnativeLine, LineSink, LogLine, RouterLine, SkippedLine,
};

/// Records between the readers and the merge, for all readers together (in batches being
/// filled, waiting in the channels and being merged): bounded however many logs a bundle has
/// or how many runs a log is cut into (each batch holds at least 16 records).
const RECORDS_IN_FLIGHT: usize = 2048;
/// Batches waiting, for all readers together (besides the one each is filling and the one
/// being merged): each reader gets this divided by the number of readers, at least two, so a
/// single reader runs up to eight batches ahead of the merge and does not wait for it.
const IN_FLIGHT_TOTAL: usize = 8;
/// Readers for the time-ordered runs of inputs, beyond one per input, for all inputs together.
const EXTRA_RUN_READERS: usize = 64;

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

/// Logs to stream, each with its bytes readable at any offset when they are (a file, a bundle
/// member): such an input is cut into its time-ordered runs, each read by its own reader.
#[derive(Default)]
pub struct Streams(pub Vec<(StreamInput, Option<Positioned>)>);

impl From<Vec<StreamInput>> for Streams {
    /// Inputs read as they come (standard input, streams).
    fn from(v: Vec<StreamInput>) -> Streams {
        Streams(v.into_iter().map(|i| (i, None)).collect())
    }
}

/// What one reader thread reads: an input, or one run of it.
pub(crate) struct Reader {
    pub(crate) input: StreamInput,
    run: Option<(Positioned, Run)>,
}

impl Reader {
    /// The bytes this reader reads, when known: its run's, or its input's size.
    pub(crate) fn bytes(&self) -> Option<u64> {
        match &self.run {
            Some((_, run)) => run
                .end
                .or(self.input.size)
                .map(|end| end.saturating_sub(run.start)),
            None => self.input.size,
        }
    }

    /// Open what this reader reads, with the lines of its input before it (a run after the
    /// first starts past the lines of the runs before it).
    pub(crate) fn open(&mut self) -> std::io::Result<(Box<dyn Read + Send>, u64)> {
        match &self.run {
            Some((at, run)) => Ok((
                Box::new(at.reader(run.start, run.end)) as Box<dyn Read + Send>,
                run.lines_before,
            )),
            None => {
                let open = std::mem::replace(
                    &mut self.input.open,
                    Box::new(|| Err(std::io::Error::other("opened already"))),
                );
                open().map(|reader| (reader, 0))
            }
        }
    }
}

/// One reader per input, or per time-ordered run of an input readable at any offset (gzip
/// streams and inputs whose runs cannot be found are read whole); at most [`MAX_RUNS`] per input
/// and [`EXTRA_RUN_READERS`] beyond one per input for all of them.
pub(crate) fn split_runs(inputs: Vec<(StreamInput, Option<Positioned>)>) -> Vec<Reader> {
    let mut extra = EXTRA_RUN_READERS;
    let mut out = Vec::with_capacity(inputs.len());
    for (input, at) in inputs {
        let runs = match &at {
            Some(at) if extra > 0 && !at.is_empty() && !at.is_gzip() => {
                find_runs(at, &input.spec, MAX_RUNS.min(extra + 1)).ok()
            }
            _ => None,
        };
        match (at, runs) {
            (Some(at), Some(runs)) if !runs.is_empty() => {
                extra -= runs.len() - 1;
                // The first run with the input itself, the others with a copy of its name,
                // format and size (their bytes come from `at`, never from the opener).
                let others: Vec<Reader> = runs[1..]
                    .iter()
                    .map(|run| Reader {
                        input: StreamInput {
                            name: input.name.clone(),
                            pod: input.pod.clone(),
                            spec: input.spec.clone(),
                            size: input.size,
                            open: Box::new(|| Err(std::io::Error::other("opened by offset"))),
                            keep_all: input.keep_all,
                        },
                        run: Some((at.clone(), run.clone())),
                    })
                    .collect();
                out.push(Reader {
                    input,
                    run: Some((at, runs[0].clone())),
                });
                out.extend(others);
            }
            (Some(at), None) => out.push(Reader {
                input,
                run: Some((
                    at,
                    Run {
                        start: 0,
                        end: None,
                        lines_before: 0,
                    },
                )),
            }),
            (None, _) | (Some(_), Some(_)) => out.push(Reader { input, run: None }),
        }
    }
    out
}

enum Msg {
    Records(Vec<LogLine>),
    Done {
        ok_records: u64,
        skipped: BTreeMap<String, u64>,
        malformed: Vec<SkippedLine>,
        failed_connections: Vec<ConnLine>,
        failed_router: Vec<RouterLine>,
        knative: Vec<KnativeLine>,
        failed_epp: Vec<EppLine>,
        error: Option<String>,
    },
}

/// Malformed lines kept as examples per input (the others are only counted).
pub const MALFORMED_EXAMPLES: usize = 20;

/// Failed ztunnel connection lines (`error=`) kept per input for `failures` (the others are
/// only counted, with a note).
pub const FAILED_CONNECTIONS_KEPT: usize = 4_096;

/// The count of failed ztunnel connection lines past [`FAILED_CONNECTIONS_KEPT`] in
/// `Merged::skipped` (not a kind of line: the commands take it out and say it).
pub const CONNECTIONS_NOT_KEPT: &str = "ztunnel-failed-not-kept";

/// Failed HAProxy (OpenShift router) lines kept per input for `explain` and `failures` (the
/// others are only counted, under [`ROUTER_NOT_KEPT`], and said in a note).
pub const FAILED_ROUTER_KEPT: usize = 4_096;

/// The count of failed router lines past [`FAILED_ROUTER_KEPT`] in `Merged::skipped` (not a
/// kind of line: the commands take it out and say it).
pub const ROUTER_NOT_KEPT: &str = "haproxy-failed-not-kept";

/// Knative activator and queue-proxy error lines kept per input for `explain` (the others are
/// only counted, under [`KNATIVE_NOT_KEPT`], and said in a note).
pub const FAILED_KNATIVE_KEPT: usize = 4_096;

/// The count of Knative error lines past [`FAILED_KNATIVE_KEPT`] in `Merged::skipped` (not a
/// kind of line: the commands take it out and say it).
pub const KNATIVE_NOT_KEPT: &str = "knative-not-kept";

/// The endpoint picker's refusals kept per input for `explain` (its lines about requests it
/// handled are only counted; refusals past this are counted under [`EPP_NOT_KEPT`]).
pub const FAILED_EPP_KEPT: usize = 4_096;

/// The count of the picker's refusals past [`FAILED_EPP_KEPT`] in `Merged::skipped` (not a
/// kind of line: the commands take it out and say it).
pub const EPP_NOT_KEPT: &str = "epp-refusals-not-kept";

/// Batches records into the channel; counts what it does not pass on.
struct ChannelSink {
    tx: SyncSender<Msg>,
    batch_size: usize,
    batch: Vec<LogLine>,
    ok_records: u64,
    skipped: BTreeMap<String, u64>,
    malformed: Vec<SkippedLine>,
    failed_connections: Vec<ConnLine>,
    failed_router: Vec<RouterLine>,
    knative: Vec<KnativeLine>,
    failed_epp: Vec<EppLine>,
    /// Keep the Knative and endpoint picker lines (`explain` lists them; `failures` only
    /// counts the lines it read).
    keep_listed: bool,
    closed: bool,
    /// Set when nobody takes the records any more: the reader stops.
    stop: Arc<AtomicBool>,
}

impl ChannelSink {
    fn flush(&mut self) {
        if !self.batch.is_empty() && !self.closed {
            let b = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
            // The merge stopped listening: drop what is found until the reader notices `stop`.
            self.closed = self.tx.send(Msg::Records(b)).is_err();
            if self.closed {
                self.stop.store(true, Ordering::Relaxed);
            }
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
    fn connection(&mut self, line: ConnLine, skipped: SkippedLine) {
        if line.conn.failure().is_some() {
            if self.failed_connections.len() < FAILED_CONNECTIONS_KEPT {
                self.failed_connections.push(line);
            } else {
                *self.skipped.entry(CONNECTIONS_NOT_KEPT.into()).or_default() += 1;
            }
        }
        self.skipped(skipped);
    }
    fn router(&mut self, line: RouterLine, skipped: SkippedLine) {
        if line.entry.failed() {
            if self.failed_router.len() < FAILED_ROUTER_KEPT {
                self.failed_router.push(line);
            } else {
                *self.skipped.entry(ROUTER_NOT_KEPT.into()).or_default() += 1;
            }
        }
        self.skipped(skipped);
    }
    fn knative(&mut self, line: KnativeLine, skipped: SkippedLine) {
        if self.keep_listed {
            if self.knative.len() < FAILED_KNATIVE_KEPT {
                self.knative.push(line);
            } else {
                *self.skipped.entry(KNATIVE_NOT_KEPT.into()).or_default() += 1;
            }
        }
        self.skipped(skipped);
    }
    fn epp(&mut self, line: EppLine, skipped: SkippedLine) {
        if self.keep_listed && line.decision.status().is_some() {
            if self.failed_epp.len() < FAILED_EPP_KEPT {
                self.failed_epp.push(line);
            } else {
                *self.skipped.entry(EPP_NOT_KEPT.into()).or_default() += 1;
            }
        }
        self.skipped(skipped);
    }
}

/// The records of one input waiting to be merged: the batch its reader sent, taken as it is
/// (no copy of its records), and the end time of the first one (the merge key), read once.
#[derive(Default)]
pub struct EndQueue {
    records: VecDeque<LogLine>,
    front_end: Option<i64>,
}

impl EndQueue {
    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Queue a batch (in its order).
    pub fn push_batch(&mut self, batch: Vec<LogLine>) {
        if self.records.is_empty() {
            self.records = VecDeque::from(batch);
        } else {
            self.records.extend(batch);
        }
    }

    /// The end time of the first record (`None`: none waits).
    pub fn front_end(&mut self) -> Option<i64> {
        if self.front_end.is_none() {
            self.front_end = self.records.front().map(|l| end_ms(&l.record));
        }
        self.front_end
    }

    /// Take the first record.
    pub fn pop(&mut self) -> Option<LogLine> {
        self.front_end = None;
        self.records.pop_front()
    }
}

/// The next record of a merge in end-time order: the first record of the queue whose first
/// record ended first (the earlier input on a tie), once `fill` has given every queue a
/// record unless its input is finished. The queues are taken out of the merge while `fill`,
/// which reads the merge's channels, runs.
pub fn pop_earliest<M>(
    merge: &mut M,
    queues: fn(&mut M) -> &mut Vec<EndQueue>,
    mut fill: impl FnMut(&mut M, usize, &mut EndQueue),
) -> Option<LogLine> {
    let mut qs = std::mem::take(queues(merge));
    let mut best: Option<(i64, usize)> = None;
    for (i, q) in qs.iter_mut().enumerate() {
        fill(merge, i, q);
        if let Some(k) = q.front_end()
            && best.is_none_or(|(b, _)| k < b)
        {
            best = Some((k, i));
        }
    }
    let next = best.and_then(|(_, i)| qs[i].pop());
    *queues(merge) = qs;
    next
}

/// The time-ordered merge of several inputs.
pub struct Merged {
    rx: Vec<Receiver<Msg>>,
    /// Records waiting per input.
    queues: Vec<EndQueue>,
    done: Vec<bool>,
    /// Successful records of large inputs, counted and dropped.
    pub ok_records: u64,
    /// Lines that are not access-log records, by kind (`malformed`, `istio-log`, …).
    pub skipped: BTreeMap<String, u64>,
    /// The first malformed lines of each input.
    pub malformed_examples: Vec<SkippedLine>,
    /// Failed ztunnel connections (at most [`FAILED_CONNECTIONS_KEPT`] per input).
    pub failed_connections: Vec<ConnLine>,
    /// Failed HAProxy (OpenShift router) lines (at most [`FAILED_ROUTER_KEPT`] per input).
    pub failed_router: Vec<RouterLine>,
    /// Knative activator and queue-proxy error lines (at most [`FAILED_KNATIVE_KEPT`] per
    /// input).
    pub knative: Vec<KnativeLine>,
    /// The endpoint picker's refusals (at most [`FAILED_EPP_KEPT`] per input).
    pub failed_epp: Vec<EppLine>,
    /// Inputs that could not be read (completely), one sentence each.
    pub problems: Vec<String>,
    /// Tells the reader threads to stop (set when the merge is dropped).
    stop: Arc<AtomicBool>,
}

impl Drop for Merged {
    /// Whoever merged has stopped (finished, or gave up on a closed output): the readers stop
    /// reading at their next chunk instead of going through the rest of their inputs.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The batches each reader may have waiting, `budget` shared in proportion to what they read.
/// The merge takes records in end-time order, and the runs of one log (or the logs of one
/// bundle) span about the same time, so a reader of a larger part is emptied faster: with the
/// same room as a small one, it would stop (its channel full) while a round of requests is
/// settled and then hold the merge up. The total, and so the memory, stays `budget` (plus two
/// batches a reader at least); with a size unknown, every reader gets an equal share.
pub(crate) fn room_by_size(readers: &[Reader], budget: usize) -> Vec<usize> {
    let sizes: Option<Vec<u64>> = readers.iter().map(Reader::bytes).collect();
    shares(sizes.as_deref(), readers.len(), budget)
}

/// [`room_by_size`] of `n` readers of `sizes` (unknown: `None`).
fn shares(sizes: Option<&[u64]>, n: usize, budget: usize) -> Vec<usize> {
    let total: u128 = sizes
        .iter()
        .copied()
        .flatten()
        .map(|s| u128::from(*s))
        .sum();
    match sizes {
        Some(sizes) if total > 0 => sizes
            .iter()
            .map(|s| {
                let share = u128::from(*s) * budget as u128 / total;
                usize::try_from(share)
                    .unwrap_or(budget)
                    .clamp(2, budget.max(2))
            })
            .collect(),
        _ => vec![(budget / n.max(1)).max(2); n],
    }
}

impl Merged {
    /// Start reading: one reader thread per input, or per time-ordered run of an input that can
    /// be read at any offset (see [`crate::source::runs`]): several proxies' logs one after
    /// another in one file are merged like separate logs.
    pub fn start(inputs: impl Into<Streams>) -> Merged {
        Merged::start_keeping(inputs, true)
    }

    /// [`Merged::start`] for a command that only counts the Knative and endpoint picker lines
    /// (`failures`): none is kept.
    pub fn counting(inputs: impl Into<Streams>) -> Merged {
        Merged::start_keeping(inputs, false)
    }

    fn start_keeping(inputs: impl Into<Streams>, keep_listed: bool) -> Merged {
        let readers = split_runs(inputs.into().0);
        let mut rx = Vec::with_capacity(readers.len());
        let n = readers.len().max(1);
        let in_flight = (IN_FLIGHT_TOTAL / n).clamp(2, IN_FLIGHT_TOTAL);
        let batch_size = (RECORDS_IN_FLIGHT / (n * (in_flight + 2))).clamp(16, 256);
        let room = room_by_size(&readers, in_flight * n);
        let stop = Arc::new(AtomicBool::new(false));
        for (mut r, in_flight) in readers.into_iter().zip(room) {
            let stop = stop.clone();
            let (tx, receiver) = sync_channel(in_flight);
            rx.push(receiver);
            let reader = std::thread::Builder::new().name("meshtrace-read".into());
            let spawned = reader.spawn(move || {
                let stopped = stop.clone();
                let mut sink = ChannelSink {
                    tx,
                    batch_size,
                    batch: Vec::with_capacity(batch_size),
                    ok_records: 0,
                    skipped: BTreeMap::new(),
                    malformed: Vec::new(),
                    failed_connections: Vec::new(),
                    failed_router: Vec::new(),
                    knative: Vec::new(),
                    failed_epp: Vec::new(),
                    keep_listed,
                    closed: false,
                    stop,
                };
                let opened = r.open();
                let input = r.input;
                let error = match opened {
                    Ok((reader, lines_before)) => read_streamed_from(
                        reader,
                        &input.name,
                        input.pod,
                        &input.spec,
                        input.size,
                        input.keep_all,
                        &mut sink,
                        Some(&stopped),
                        lines_before,
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
                    failed_connections: std::mem::take(&mut sink.failed_connections),
                    failed_router: std::mem::take(&mut sink.failed_router),
                    knative: std::mem::take(&mut sink.knative),
                    failed_epp: std::mem::take(&mut sink.failed_epp),
                    error,
                });
            });
            // Without a thread the receiver reports the input as stopped (see `fill`).
            drop(spawned);
        }
        let n = rx.len();
        Merged {
            rx,
            queues: (0..n).map(|_| EndQueue::default()).collect(),
            done: vec![false; n],
            ok_records: 0,
            skipped: BTreeMap::new(),
            malformed_examples: Vec::new(),
            failed_connections: Vec::new(),
            failed_router: Vec::new(),
            knative: Vec::new(),
            failed_epp: Vec::new(),
            problems: Vec::new(),
            stop,
        }
    }

    /// Wait until input `i` (its queue `q`) has a record queued or is finished.
    fn fill(&mut self, i: usize, q: &mut EndQueue) {
        while q.is_empty() && !self.done[i] {
            match self.rx[i].recv() {
                Ok(Msg::Records(v)) => q.push_batch(v),
                Ok(Msg::Done {
                    ok_records,
                    skipped,
                    malformed,
                    failed_connections,
                    failed_router,
                    knative,
                    failed_epp,
                    error,
                }) => {
                    self.done[i] = true;
                    self.ok_records += ok_records;
                    for (k, n) in skipped {
                        *self.skipped.entry(k).or_default() += n;
                    }
                    self.malformed_examples.extend(malformed);
                    self.failed_connections.extend(failed_connections);
                    self.failed_router.extend(failed_router);
                    self.knative.extend(knative);
                    self.failed_epp.extend(failed_epp);
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
        pop_earliest(self, |m| &mut m.queues, Merged::fill)
    }
}

impl RecordStream for Merged {
    fn ok_records(&self) -> u64 {
        self.ok_records
    }
    fn malformed(&self) -> u64 {
        Merged::malformed(self)
    }
    fn problems(&self) -> &[String] {
        &self.problems
    }
}

#[cfg(test)]
mod room_tests {
    use super::shares;

    #[test]
    fn readers_get_room_by_what_they_read_within_the_budget() {
        // One log cut into five runs: two large proxies' logs and three small ones.
        let sizes = [28_840_678, 25_376_657, 4_343_792, 4_293_272, 4_254_000];
        let room = shares(Some(&sizes), 5, 20);
        assert_eq!(room, vec![8, 7, 2, 2, 2]);
        // Equal parts share equally; unknown or empty sizes too; never under two.
        assert_eq!(shares(Some(&[5, 5, 5, 5]), 4, 8), vec![2, 2, 2, 2]);
        assert_eq!(shares(None, 3, 9), vec![3, 3, 3]);
        assert_eq!(shares(Some(&[0, 0]), 2, 8), vec![4, 4]);
        assert_eq!(shares(Some(&[u64::MAX, 1]), 2, 8), vec![7, 2]);
        assert_eq!(shares(Some(&[1]), 1, 0), vec![2]);
        assert!(shares(Some(&[]), 0, 8).is_empty());
    }
}

#[cfg(test)]
mod keep_tests {
    use super::*;

    /// An input of the public Knative and endpoint picker lines, repeated `times` times.
    fn input(times: usize) -> StreamInput {
        let text = include_str!("../../testdata/pasted/knative-threads.log").repeat(times);
        StreamInput {
            name: "knative.log".into(),
            pod: None,
            spec: FormatSpec::Auto,
            size: Some(text.len() as u64),
            open: Box::new(
                move || Ok(Box::new(std::io::Cursor::new(text)) as Box<dyn Read + Send>),
            ),
            keep_all: false,
        }
    }

    #[test]
    fn failures_counts_the_knative_lines_without_keeping_them() {
        // `explain` lists the lines (at most FAILED_KNATIVE_KEPT per log); `failures` only
        // counts them, so its readers keep none (a bundle of many activator logs full of
        // errors would otherwise hold thousands per log to no use).
        let mut kept = Merged::start(vec![input(50)]);
        assert_eq!(kept.by_ref().count(), 0);
        assert_eq!(kept.knative.len(), 200);
        let mut counted = Merged::counting(vec![input(50)]);
        assert_eq!(counted.by_ref().count(), 0);
        assert!(counted.knative.is_empty());
        assert_eq!(counted.skipped.get("knative"), Some(&200));
        assert_eq!(counted.skipped.get(KNATIVE_NOT_KEPT), None);
    }
}
