//! Streaming the records of many logs in time order with bounded memory: each input is read on
//! its own thread (large ones keeping only failed records) and handed over in small batches
//! through bounded channels; [`Merged::next`] always yields the record that ended first.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use meshtrace_parsers::detect::FormatSpec;
use meshtrace_parsers::record::RawRecord;

use crate::input::{LineSink, LogLine, SkippedLine, read_failed};

/// Records per batch handed from a reader thread to the merge.
const BATCH: usize = 256;
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
}

enum Msg {
    Records(Vec<LogLine>),
    Done {
        ok_records: u64,
        malformed: u64,
        error: Option<String>,
    },
}

/// Batches records into the channel; counts what it does not pass on.
struct ChannelSink {
    tx: SyncSender<Msg>,
    batch: Vec<LogLine>,
    ok_records: u64,
    malformed: u64,
    closed: bool,
}

impl ChannelSink {
    fn flush(&mut self) {
        if !self.batch.is_empty() && !self.closed {
            let b = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
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
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }
    fn skipped(&mut self, line: SkippedLine) {
        if line.kind == "malformed" {
            self.malformed += 1;
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
    queues: Vec<VecDeque<LogLine>>,
    done: Vec<bool>,
    /// Successful records of large inputs, counted and dropped.
    pub ok_records: u64,
    /// Malformed lines seen.
    pub malformed: u64,
    /// Inputs that could not be read (completely), one sentence each.
    pub problems: Vec<String>,
}

impl Merged {
    /// Start one reader thread per input.
    pub fn start(inputs: Vec<StreamInput>) -> Merged {
        let mut rx = Vec::with_capacity(inputs.len());
        for input in inputs {
            let (tx, r) = sync_channel(IN_FLIGHT);
            rx.push(r);
            let reader = std::thread::Builder::new().name("meshtrace-read".into());
            let spawned = reader.spawn(move || {
                let mut sink = ChannelSink {
                    tx,
                    batch: Vec::with_capacity(BATCH),
                    ok_records: 0,
                    malformed: 0,
                    closed: false,
                };
                let error = match (input.open)() {
                    Ok(reader) => read_failed(
                        reader,
                        &input.name,
                        input.pod,
                        &input.spec,
                        input.size,
                        &mut sink,
                    )
                    .err()
                    .map(|e| e.to_string()),
                    Err(e) => Some(format!("{}: unreadable: {e}", input.name)),
                };
                sink.flush();
                let _ = sink.tx.send(Msg::Done {
                    ok_records: sink.ok_records,
                    malformed: sink.malformed,
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
            malformed: 0,
            problems: Vec::new(),
        }
    }

    /// Wait until input `i` has a record queued or is finished.
    fn fill(&mut self, i: usize) {
        while self.queues[i].is_empty() && !self.done[i] {
            match self.rx[i].recv() {
                Ok(Msg::Records(v)) => self.queues[i].extend(v),
                Ok(Msg::Done {
                    ok_records,
                    malformed,
                    error,
                }) => {
                    self.done[i] = true;
                    self.ok_records += ok_records;
                    self.malformed += malformed;
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

impl Iterator for Merged {
    type Item = LogLine;

    /// The next record across all inputs: the one whose request ended first.
    fn next(&mut self) -> Option<LogLine> {
        let mut best: Option<(i64, usize)> = None;
        for i in 0..self.queues.len() {
            self.fill(i);
            if let Some(l) = self.queues[i].front() {
                let k = end_ms(&l.record);
                if best.is_none_or(|(b, _)| k < b) {
                    best = Some((k, i));
                }
            }
        }
        let (_, i) = best?;
        self.queues[i].pop_front()
    }
}
