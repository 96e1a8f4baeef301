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

use crate::source::input::read_streamed;
use meshtrace_analysis::model::{LineSink, LogLine, SkippedLine};

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

impl Merged {
    /// Start one reader thread per input.
    pub fn start(inputs: Vec<StreamInput>) -> Merged {
        let mut rx = Vec::with_capacity(inputs.len());
        let batch_size = (BATCH_TOTAL / inputs.len().max(1)).clamp(16, 256);
        let stop = Arc::new(AtomicBool::new(false));
        for input in inputs {
            let stop = stop.clone();
            let (tx, r) = sync_channel(IN_FLIGHT);
            rx.push(r);
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
                    closed: false,
                    stop,
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
                        Some(&stopped),
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
            stop,
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
