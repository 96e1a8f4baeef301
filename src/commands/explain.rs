//! `meshtrace explain`: explain access-log lines from files or stdin.
//!
//! Small inputs (together under [`STREAM_MIN_BYTES`]) are read whole, so wrapped pasted lines
//! join and the overview table lists every request; larger ones — files or standard input — are
//! explained as their requests complete, with flat memory. Either way skipped lines are counted
//! with a few examples, never kept one by one, and a closed output stops the reading at once.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::{Context as _, Result};
use meshtrace_parsers::detect::FormatSpec;

use crate::commands::{EXIT_ERROR, EXIT_NOTHING, EXIT_OK, format_spec};
use crate::diagnose::Context;
use crate::explain::explain;
use crate::report::explain_stream::{element, record_element_checked, write_skipped_summary};
use crate::report::json::{RecordJson, SkippedJson};
use crate::report::safe::{KeyChecks, PlainBudget, SanitizedFile, SanitizingSpool};
use crate::report::{ExplainStream, LineSection, OutputFormat, write_explain};
use crate::source::input::{InputSource, STREAM_MIN_BYTES, read_streamed, read_streamed_from};
use crate::source::merge::{
    self, EndQueue, MALFORMED_EXAMPLES, Merged, Reader, StreamInput, Streams, pop_earliest,
    split_runs,
};
use crate::source::runs::Positioned;
use meshtrace_analysis::explain::RequestReport;
use meshtrace_analysis::model::{
    ConnLine, EppLine, KnativeLine, LineSink, LogLine, LogSet, RouterLine, SkippedLine,
};
use meshtrace_analysis::settle::{CROWDED, LateLines, Settled, Settler, crowded_note};

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Log files to read; `-` or nothing reads standard input.
    pub files: Vec<String>,
    /// Log format: `auto`, a built-in name (see `meshtrace formats`), `json`, an Envoy format
    /// string with %OPERATORS%, a JSON mapping {"key": "%OPERATOR%"}, or @FILE holding one.
    #[arg(long, value_name = "FMT", default_value = "auto")]
    pub log_format: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Read the proxies' logs from the cluster (as `trace` does without a bundle): the serving
    /// path of `-n`, or `--pod`/`-l`. Implied by `-n`, `-A`, `--pod` or `-l` without files.
    #[arg(long, conflicts_with = "files")]
    pub live: bool,
    #[command(flatten)]
    pub cluster: crate::commands::collect::LiveArgs,
    /// The proxies' logs from Loki instead (docs/loki.md in meshtrace's source repository).
    #[command(flatten)]
    pub loki: crate::commands::loki::LokiArgs,
    /// The status the client saw (e.g. 403). A pasted `curl -v` transcript among the inputs
    /// gives it too (with its `server` header and body). When no access-log line in the input
    /// has it, the hop in between that writes no access log is named (KServe Standard mode:
    /// kube-rbac-proxy, the OpenShift router) with what to check there.
    #[arg(long, value_name = "STATUS", value_parser = clap::value_parser!(u16).range(100..=599))]
    pub client_status: Option<u16>,
}

/// One input of `explain`.
enum Input {
    File(std::path::PathBuf),
    /// A log collected from the cluster: its file in the private live bundle, the name shown
    /// (`namespace/pod/container.log`) and its format (the mesh's, or `--log-format`).
    Live {
        path: std::path::PathBuf,
        name: String,
        spec: FormatSpec,
    },
    /// Standard input: what was read first (at most [`STREAM_MIN_BYTES`]) and whether that was
    /// all of it.
    Stdin {
        head: Vec<u8>,
        whole: bool,
    },
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Live { name, .. } => name.clone(),
            Input::Stdin { .. } => InputSource::Stdin.name(),
        }
    }

    /// The format this input is read with.
    fn spec<'s>(&'s self, default: &'s FormatSpec) -> &'s FormatSpec {
        match self {
            Input::Live { spec, .. } => spec,
            _ => default,
        }
    }
}

/// Does `explain` read from the cluster? With `--live`, or when no file is given and a cluster
/// scope is (`-n`, `-A`, `--pod`, `-l`): standard input is then not what was meant.
fn wants_live(a: &ExplainArgs) -> bool {
    let c = &a.cluster;
    a.live
        || a.loki.active()
        || (a.files.is_empty()
            && (!c.namespace.is_empty()
                || c.all_namespaces
                || !c.pod.is_empty()
                || !c.selector.is_empty()))
}

/// Collect the proxies' logs into a private temporary bundle and list them with the format of
/// each (the mesh's access-log format from MeshConfig/Telemetry as the bundle records it, or
/// `--log-format` when one is given).
fn live_inputs(
    a: &ExplainArgs,
    spec: &FormatSpec,
) -> Result<(crate::live::private::PrivateDir, Vec<Input>)> {
    let forced = (!matches!(spec, FormatSpec::Auto)).then_some(spec);
    // From Loki when `--loki` is given (objects from the cluster when reachable), else from
    // the pods' logs.
    let (dir, root) = match crate::commands::loki::read(
        &a.loki,
        &a.cluster.options(false),
        forced,
        crate::commands::loki::Read::All,
        None,
    )? {
        Some((dir, path)) => (dir, path),
        None => {
            let dir = crate::commands::collect::collect_for_trace(&a.cluster)?;
            let path = dir.path().to_path_buf();
            (dir, path)
        }
    };
    let (_ev, streams) = crate::source::load::open_streams(Some(&root), &[], forced)?;
    let root = root.display().to_string();
    let inputs: Vec<Input> = streams
        .0
        .into_iter()
        .map(|(s, _)| {
            let name = s
                .name
                .strip_prefix(root.trim_end_matches('/'))
                .map(|r| r.trim_start_matches('/'))
                .map(|r| r.strip_prefix("logs/").unwrap_or(r))
                .unwrap_or(&s.name)
                .to_string();
            Input::Live {
                path: std::path::PathBuf::from(&s.name),
                name,
                spec: s.spec,
            }
        })
        .collect();
    if inputs.is_empty() {
        anyhow::bail!(
            "no proxy log was collected from the cluster or the log store; check the namespace (-n), --pod or -l, the time range (--since), and the messages above"
        );
    }
    Ok((dir, inputs))
}

/// Run `explain`.
pub fn run(a: ExplainArgs) -> Result<i32> {
    let spec = format_spec(&a.log_format)?;
    if wants_live(&a) {
        let (_dir, inputs) = live_inputs(&a, &spec)?;
        let total: u64 = inputs
            .iter()
            .map(|i| match i {
                Input::Live { path, .. } => std::fs::metadata(path).map_or(0, |m| m.len()),
                _ => 0,
            })
            .sum();
        return if total >= STREAM_MIN_BYTES {
            run_streaming(inputs, &spec, a.output)
        } else {
            run_whole(inputs, &spec, a.output)
        };
    }
    let sources: Vec<InputSource> = if a.files.is_empty() {
        vec![InputSource::Stdin]
    } else {
        a.files.iter().map(|f| InputSource::from_arg(f)).collect()
    };
    let mut inputs = Vec::with_capacity(sources.len());
    let mut total = 0u64;
    for s in &sources {
        match s {
            InputSource::File(p) => {
                total = total.saturating_add(std::fs::metadata(p).map_or(0, |m| m.len()));
                inputs.push(Input::File(p.clone()));
            }
            InputSource::Stdin => {
                // Enough to tell a pasted snippet from a log to stream, and no more.
                let mut head = Vec::new();
                std::io::stdin()
                    .lock()
                    .take(STREAM_MIN_BYTES)
                    .read_to_end(&mut head)
                    .context("cannot read standard input")?;
                let whole = (head.len() as u64) < STREAM_MIN_BYTES;
                total = total.saturating_add(if whole { head.len() as u64 } else { u64::MAX });
                inputs.push(Input::Stdin { head, whole });
            }
        }
    }
    if total >= STREAM_MIN_BYTES {
        return run_streaming(inputs, &spec, a.output);
    }
    let client = client_view(&a, &inputs);
    let code = run_whole(inputs, &spec, a.output)?;
    match client {
        Some(c) => client_verdict(&a, &spec, &c, code),
        None => Ok(code),
    }
}

/// Keeps the records of small inputs; counts skipped lines by kind, keeps the first malformed
/// ones as examples and, for JSON, writes each to a temporary file in order.
struct Collected {
    set: LogSet,
    skipped: BTreeMap<String, u64>,
    malformed: Vec<SkippedLine>,
    /// `skipped` elements of the document (JSON or YAML: `yaml`), in input order.
    spool: Option<std::io::BufWriter<std::fs::File>>,
    yaml: bool,
    buf: Vec<u8>,
    error: Option<std::io::Error>,
    /// ztunnel connection lines (Istio ambient), at most [`CONNECTIONS_KEPT`].
    connections: Vec<ConnLine>,
    /// ztunnel connection lines read.
    connection_lines: u64,
    /// HAProxy (OpenShift router) lines, at most [`CONNECTIONS_KEPT`].
    router: Vec<RouterLine>,
    /// HAProxy lines read.
    router_lines: u64,
    /// Knative activator and queue-proxy error lines, at most [`CONNECTIONS_KEPT`].
    knative: Vec<KnativeLine>,
    /// Knative error lines read.
    knative_lines: u64,
    /// Endpoint picker lines, at most [`CONNECTIONS_KEPT`] (refusals up to twice that).
    epp: Vec<EppLine>,
    /// Endpoint picker lines read.
    epp_lines: u64,
}

/// ztunnel connection lines `explain` keeps from small inputs (a small input holds at most a
/// few tens of thousands); past it only the failed ones, up to the same number again.
const CONNECTIONS_KEPT: usize = 50_000;

impl LineSink for Collected {
    fn record(&mut self, line: LogLine) {
        self.set.records.push(line);
    }
    fn skipped(&mut self, line: SkippedLine) {
        if let Some(w) = &mut self.spool
            && self.error.is_none()
        {
            self.buf.clear();
            if let Err(e) = element(self.yaml, &SkippedJson(&line), &mut self.buf)
                .and_then(|()| w.write_all(&self.buf))
            {
                self.error = Some(e);
            }
        }
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
        self.set.ok_records += n;
    }
    fn connection(&mut self, line: ConnLine, skipped: SkippedLine) {
        self.connection_lines += 1;
        if self.connections.len() < CONNECTIONS_KEPT
            || (line.conn.failed() && self.connections.len() < 2 * CONNECTIONS_KEPT)
        {
            self.connections.push(line);
        }
        self.skipped(skipped);
    }
    fn router(&mut self, line: RouterLine, skipped: SkippedLine) {
        self.router_lines += 1;
        if self.router.len() < CONNECTIONS_KEPT
            || (line.entry.failed() && self.router.len() < 2 * CONNECTIONS_KEPT)
        {
            self.router.push(line);
        }
        self.skipped(skipped);
    }
    fn knative(&mut self, line: KnativeLine, skipped: SkippedLine) {
        self.knative_lines += 1;
        if self.knative.len() < CONNECTIONS_KEPT {
            self.knative.push(line);
        }
        self.skipped(skipped);
    }
    fn epp(&mut self, line: EppLine, skipped: SkippedLine) {
        self.epp_lines += 1;
        if self.epp.len() < CONNECTIONS_KEPT
            || (line.decision.status().is_some() && self.epp.len() < 2 * CONNECTIONS_KEPT)
        {
            self.epp.push(line);
        }
        self.skipped(skipped);
    }
}

/// `explain` on small inputs: read whole, explained together.
fn run_whole(inputs: Vec<Input>, spec: &FormatSpec, output: OutputFormat) -> Result<i32> {
    let json = matches!(output, OutputFormat::Json | OutputFormat::Yaml);
    let spool = if json {
        let f = tempfile::tempfile().context("cannot create a temporary file for skipped lines")?;
        Some(std::io::BufWriter::new(f))
    } else {
        None
    };
    let mut c = Collected {
        set: LogSet::default(),
        skipped: BTreeMap::new(),
        malformed: Vec::new(),
        spool,
        yaml: output == OutputFormat::Yaml,
        buf: Vec::new(),
        error: None,
        connections: Vec::new(),
        connection_lines: 0,
        router: Vec::new(),
        router_lines: 0,
        knative: Vec::new(),
        knative_lines: 0,
        epp: Vec::new(),
        epp_lines: 0,
    };
    let mut failed_inputs = 0;
    for input in &inputs {
        let name = input.name();
        c.set.inputs.push(name.clone());
        let spec = input.spec(spec);
        let read = match input {
            Input::File(p) | Input::Live { path: p, .. } => std::fs::File::open(p)
                .map_err(|source| crate::source::input::InputError::Open {
                    path: name.clone(),
                    source,
                })
                .and_then(|f| {
                    let size = f.metadata().ok().map(|m| m.len());
                    read_streamed(f, &name, None, spec, size, true, &mut c, None)
                }),
            Input::Stdin { head, .. } => read_streamed(
                head.as_slice(),
                &name,
                None,
                spec,
                Some(head.len() as u64),
                true,
                &mut c,
                None,
            ),
        };
        if let Err(e) = read {
            // A bad input is a message, not an abort: the others are still analysed.
            crate::report::warn(format!("{e}"));
            failed_inputs += 1;
        }
    }
    if failed_inputs == inputs.len() {
        anyhow::bail!("no input could be read");
    }
    if let Some(e) = c.error.take() {
        return Err(e).context("cannot write skipped lines to a temporary file");
    }
    let report = explain(&c.set);
    let connections = meshtrace_analysis::ambient::explain_connections(&c.connections);
    let router = meshtrace_analysis::router::explain_router_lines(&c.router);
    let knative = meshtrace_analysis::knative::explain_knative_lines(&c.knative);
    let epp = meshtrace_analysis::inference::explain_epp_lines(&c.epp);
    let mut out = crate::report::stdout();
    let width = out.width(160);
    if json {
        let mut stream = ExplainStream::start(&mut out, output, c.set.inputs.len() > 1)?;
        for r in &report.requests {
            stream.request(r)?;
        }
        stream.next_array("records")?;
        for l in &c.set.records {
            stream.value(&RecordJson(l))?;
        }
        stream.next_array("skipped")?;
        if let Some(spool) = c.spool.take() {
            let f = rewound(spool)?;
            stream.spooled(std::io::BufReader::with_capacity(1 << 16, f))?;
        }
        // Present when the inputs hold such lines.
        for s in sections(&connections, &router, &knative, &epp) {
            stream.section(&s, 0, None, None)?;
        }
        stream.end_json()?;
    } else {
        write_explain(&mut out, &c.set, &report, output, width)?;
        let counts = [
            c.connection_lines,
            c.router_lines,
            c.knative_lines,
            c.epp_lines,
        ];
        for (s, lines) in sections(&connections, &router, &knative, &epp)
            .iter()
            .zip(counts)
        {
            s.write_text(&mut out, lines, c.set.inputs.len() > 1, None, width)?;
        }
        write_skipped_summary(&mut out, &c.skipped, &c.malformed)?;
    }
    out.flush()?;
    let malformed = c.skipped.get("malformed").copied().unwrap_or(0);
    if malformed > 0 && json {
        crate::report::warn(format!(
            "{malformed} malformed line(s); see \"skipped\" in the output"
        ));
    }
    if c.set.records.is_empty()
        && connections.is_empty()
        && router.is_empty()
        && knative.is_empty()
        && epp.is_empty()
    {
        crate::report::warn(nothing_found(&c.set.inputs, &c.skipped));
        return Ok(EXIT_NOTHING);
    }
    Ok(if failed_inputs > 0 {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// Records between the reader threads and the settling, for all readers together. Settling is
/// done in rounds (a window of a few thousand records explained at once); while a round is
/// explained, the readers go on parsing and serialising only if this holds more records than
/// they read meanwhile. 2 048 left the reader idle for half of each round and the settling
/// idle for the other half (explain -o json on 64 MiB: 1.7 s → 1.3 s with 6 144, for 1–3 MiB
/// more); 9 216 took another 5 % off at 512 MiB and 2 GiB, paid for by the smaller binary of
/// whole-program LTO (peak RSS 28.9 MiB at 2 GiB; see docs/performance.md). Since each reader
/// has a serialiser, the readers keep their queues full, so the bound is reached: 9 216 took
/// 32.1–32.6 MiB at 2 GiB, 7 168 takes 30 MiB as fast (within the noise of paired runs).
const RECORDS_IN_FLIGHT: usize = 7168;
/// The same bound in bytes of the records' serialised form, so that long lines do not multiply
/// the memory the count allows (a record of Envoy's default format serialises to about 1 KiB).
const RECORD_BYTES_IN_FLIGHT: usize = 18 << 20;
/// Batches waiting per reader (besides the one it fills and the one being settled).
const BATCHES_IN_FLIGHT: usize = 22;
/// Batches waiting between a reader and its serialiser (besides the one being serialised).
const SERIALISER_BATCHES: usize = 1;
/// Runs at least this large (or of unknown size: standard input) have their records
/// serialised on a thread of their own; a smaller run's reader serialises them itself (a
/// bundle of hundreds of small logs would otherwise start twice as many threads, for runs
/// serialised in a few tens of milliseconds).
const SERIALISE_APART_MIN_BYTES: u64 = 16 << 20;
/// Batches of one reader besides those waiting to be settled: the one it fills, the ones
/// waiting for or in its serialiser, and the one being settled.
const BATCHES_BESIDES: usize = SERIALISER_BATCHES + 3;

/// What a reader thread of [`run_streaming_document`] sends.
enum Msg {
    Records(Vec<LogLine>),
    Done(Box<Finished>),
}

/// What a reader thread hands over at the end of its input.
struct Finished {
    skipped: BTreeMap<String, u64>,
    /// The input's failed ztunnel connections (at most `FAILED_CONNECTIONS_KEPT`).
    failed_connections: Vec<ConnLine>,
    /// The input's failed HAProxy lines (at most `FAILED_ROUTER_KEPT`).
    failed_router: Vec<RouterLine>,
    /// The input's Knative error lines (at most `FAILED_KNATIVE_KEPT`).
    knative: Vec<KnativeLine>,
    /// The input's endpoint picker refusals (at most `FAILED_EPP_KEPT`).
    failed_epp: Vec<EppLine>,
    /// The input could not be read (completely): one sentence.
    problem: Option<String>,
    /// The input's `records` and `skipped` elements, in input order, sanitised and ready to
    /// copy to standard output as they are.
    spools: Result<(SanitizedFile, SanitizedFile), SpoolFailure>,
}

impl Finished {
    /// An input left unread because its spools could not be created (`e`).
    fn unread(e: std::io::Error) -> Finished {
        Finished {
            skipped: BTreeMap::new(),
            failed_connections: Vec::new(),
            failed_router: Vec::new(),
            knative: Vec::new(),
            failed_epp: Vec::new(),
            problem: None,
            spools: Err(SpoolFailure::Create(e)),
        }
    }
}

/// Elements serialised before they are written to a spool together (the spool's sanitiser
/// then takes whole lines straight from this buffer). As large as the spool's buffer
/// (`SanitizingSpool`, 64 KiB), so a chunk goes to the file in one write without being copied
/// into that buffer first.
const SPOOL_CHUNK: usize = 1 << 16;

/// Bytes a record is reckoned to take serialised, besides its values (its keys, numbers and
/// punctuation: a record of Envoy's default format takes about 1.2 KiB with 350 bytes of
/// values), for the bound of [`RECORD_BYTES_IN_FLIGHT`]: the reader batches records before
/// they are serialised, so it counts what their serialised form will take.
const RECORD_SERIALISED_EXTRA: usize = 640;

/// What a reader thread of [`run_streaming_document`] sends its serialiser
/// ([`serialise_records`]).
enum Parsed {
    /// Records to serialise into the spool and pass on to be settled.
    Records(Vec<LogLine>),
    /// The end of the input: what the reader hands over, once given the records' spool.
    Done(Box<dyn FnOnce(std::io::Result<SanitizedFile>) -> Finished + Send>),
}

/// The records of one input serialised into its spool (the document's `records`, in input
/// order, sanitised as they are written).
struct RecordSpooler {
    yaml: bool,
    records: SanitizingSpool,
    /// `records` elements not yet written to their spool.
    buf: Vec<u8>,
    /// JSON without colour: each record is checked as it is serialised, and `buf` holds only
    /// those the sanitiser would leave as they are (written past it).
    checked: bool,
    /// The verdicts on the records' keys, remembered from one record to the next.
    keys: KeyChecks,
    /// Writing the spool failed (a full disk): nothing more is written, the error is reported
    /// after the requests.
    error: Option<std::io::Error>,
}

impl RecordSpooler {
    fn new(yaml: bool, records: SanitizingSpool) -> RecordSpooler {
        RecordSpooler {
            yaml,
            records,
            buf: Vec::with_capacity(2 * SPOOL_CHUNK),
            checked: !yaml && !crate::report::style::enabled(),
            keys: KeyChecks::default(),
            error: None,
        }
    }

    /// Serialise one record into the spool.
    fn spool(&mut self, line: &LogLine) {
        if self.error.is_some() {
            return;
        }
        let before = self.buf.len();
        let r = if self.checked {
            // `buf` holds only elements the sanitiser would leave as they are; one that it
            // may change goes through it, after them.
            record_element_checked(line, &mut self.keys, &mut self.buf).and_then(|clean| {
                if !clean {
                    self.records.write_clean(&self.buf[..before])?;
                    self.records.write_all(&self.buf[before..])?;
                    self.buf.clear();
                } else if self.buf.len() >= SPOOL_CHUNK {
                    self.records.write_clean(&self.buf)?;
                    self.buf.clear();
                }
                Ok(())
            })
        } else {
            element(self.yaml, &RecordJson(line), &mut self.buf).and_then(|()| {
                if self.buf.len() >= SPOOL_CHUNK {
                    self.records.write_all(&self.buf)?;
                    self.buf.clear();
                }
                Ok(())
            })
        };
        // A spool that cannot be written (a full disk) stops spooling, not reading: the
        // requests are still settled and written in full, and the error is reported after them.
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    /// Serialise a batch of records into the spool, in order.
    fn spool_all(&mut self, lines: &[LogLine]) {
        for line in lines {
            self.spool(line);
        }
    }

    /// The spool complete and rewound, or why it is not.
    fn finish(mut self) -> std::io::Result<SanitizedFile> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.checked {
            self.records.write_clean(&self.buf)?;
        } else {
            self.records.write_all(&self.buf)?;
        }
        self.records.finish()
    }
}

/// The serialiser of one reader thread, on a thread of its own: each batch of records goes
/// into the input's spool, then on to be settled. So the reader of the run the settling waits
/// for parses while its last records are serialised, on the other core (both cores were idle
/// 15–19 % of `explain -o json` on 2 GiB while the settling waited for one reader).
fn serialise_records(
    rx: Receiver<Parsed>,
    mut spooler: RecordSpooler,
    tx: SyncSender<Msg>,
    stop: Arc<AtomicBool>,
) {
    for parsed in rx {
        match parsed {
            Parsed::Records(batch) => {
                spooler.spool_all(&batch);
                if tx.send(Msg::Records(batch)).is_err() {
                    // Nobody settles any more: stop reading.
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
            Parsed::Done(end) => {
                let _ = tx.send(Msg::Done(Box::new(end(spooler.finish()))));
                return;
            }
        }
    }
    // The reader stopped without its end: the merge reports the input as stopped.
}

/// Where a reader thread's batches go: its serialiser's thread, or (when that thread could not
/// be started) its own serialiser and then the settling.
enum Serialiser {
    Thread(SyncSender<Parsed>),
    Inline(Box<RecordSpooler>, SyncSender<Msg>),
}

/// The sink of one reader thread: batches the records for its serialiser (which writes them
/// into the document's `records` spool and passes them on to be settled in end-time order),
/// and serialises each skipped line into the input's `skipped` spool (sanitised as it is
/// written, on this thread).
struct SpoolSink {
    yaml: bool,
    out: Serialiser,
    batch_size: usize,
    /// Send the batch once its records' serialised form will take this many bytes.
    batch_bytes: usize,
    batch: Vec<LogLine>,
    /// Bytes the records of `batch` will take serialised (reckoned).
    batch_spooled: usize,
    skipped_spool: SanitizingSpool,
    /// The `skipped` element being written.
    skipped_buf: Vec<u8>,
    skipped: BTreeMap<String, u64>,
    /// Failed ztunnel connections (at most `FAILED_CONNECTIONS_KEPT`).
    failed_connections: Vec<ConnLine>,
    /// Failed HAProxy lines (at most `FAILED_ROUTER_KEPT`).
    failed_router: Vec<RouterLine>,
    /// Knative error lines (at most `FAILED_KNATIVE_KEPT`).
    knative: Vec<KnativeLine>,
    /// Endpoint picker refusals (at most `FAILED_EPP_KEPT`).
    failed_epp: Vec<EppLine>,
    /// Writing the skipped lines' spool failed.
    error: Option<std::io::Error>,
    /// Set when the settling stopped (the output failed): every reader stops.
    stop: Arc<AtomicBool>,
}

impl SpoolSink {
    /// A sink for YAML or JSON whose records go `out`, in batches of `batch_size` records or
    /// `batch_bytes` bytes serialised, and whose skipped lines go into `skipped_spool`.
    fn new(
        (yaml, out): (bool, Serialiser),
        (batch_size, batch_bytes): (usize, usize),
        skipped_spool: SanitizingSpool,
        stop: Arc<AtomicBool>,
    ) -> SpoolSink {
        SpoolSink {
            yaml,
            out,
            batch_size,
            batch_bytes,
            batch: Vec::with_capacity(batch_size),
            batch_spooled: 0,
            skipped_spool,
            skipped_buf: Vec::new(),
            skipped: BTreeMap::new(),
            failed_connections: Vec::new(),
            failed_router: Vec::new(),
            knative: Vec::new(),
            failed_epp: Vec::new(),
            error: None,
            stop,
        }
    }

    /// Serialise a skipped line into its spool.
    fn spool_skipped(&mut self, v: &SkippedJson<'_>) {
        if self.error.is_some() {
            return;
        }
        self.skipped_buf.clear();
        let r = element(self.yaml, v, &mut self.skipped_buf)
            .and_then(|()| self.skipped_spool.write_all(&self.skipped_buf));
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    /// The end of the input: the last batch sent, then what the reader hands over (completed
    /// with the records' spool by the serialiser).
    fn finish(mut self, problem: Option<String>) {
        self.flush();
        let SpoolSink {
            out,
            skipped_spool,
            skipped,
            failed_connections,
            failed_router,
            knative,
            failed_epp,
            error,
            ..
        } = self;
        let skipped_file = match error {
            Some(e) => Err(e),
            None => skipped_spool.finish(),
        };
        let end = move |records: std::io::Result<SanitizedFile>| Finished {
            skipped,
            failed_connections,
            failed_router,
            knative,
            failed_epp,
            problem,
            spools: records
                .and_then(|r| Ok((r, skipped_file?)))
                .map_err(SpoolFailure::Write),
        };
        match out {
            Serialiser::Thread(tx) => {
                let _ = tx.send(Parsed::Done(Box::new(end)));
            }
            Serialiser::Inline(spooler, tx) => {
                let _ = tx.send(Msg::Done(Box::new(end(spooler.finish()))));
            }
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.batch_spooled = 0;
        let b = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        let sent = match &mut self.out {
            Serialiser::Thread(tx) => tx.send(Parsed::Records(b)).is_ok(),
            Serialiser::Inline(spooler, tx) => {
                spooler.spool_all(&b);
                tx.send(Msg::Records(b)).is_ok()
            }
        };
        if !sent {
            // Nobody settles any more: stop reading.
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

impl LineSink for SpoolSink {
    fn record(&mut self, line: LogLine) {
        self.batch_spooled += line.record.values_len() + RECORD_SERIALISED_EXTRA;
        self.batch.push(line);
        if self.batch.len() >= self.batch_size || self.batch_spooled >= self.batch_bytes {
            self.flush();
        }
    }
    fn skipped(&mut self, line: SkippedLine) {
        self.spool_skipped(&SkippedJson(&line));
        match self.skipped.get_mut(&line.kind) {
            Some(n) => *n += 1,
            None => {
                self.skipped.insert(line.kind, 1);
            }
        }
    }
    fn ok_records(&mut self, _: u64) {}
    fn connection(&mut self, line: ConnLine, skipped: SkippedLine) {
        if line.conn.failed() && self.failed_connections.len() < merge::FAILED_CONNECTIONS_KEPT {
            self.failed_connections.push(line);
        }
        self.skipped(skipped);
    }
    fn router(&mut self, line: RouterLine, skipped: SkippedLine) {
        if line.entry.failed() && self.failed_router.len() < merge::FAILED_ROUTER_KEPT {
            self.failed_router.push(line);
        }
        self.skipped(skipped);
    }
    fn knative(&mut self, line: KnativeLine, skipped: SkippedLine) {
        if self.knative.len() < merge::FAILED_KNATIVE_KEPT {
            self.knative.push(line);
        }
        self.skipped(skipped);
    }
    fn epp(&mut self, line: EppLine, skipped: SkippedLine) {
        if line.decision.status().is_some() && self.failed_epp.len() < merge::FAILED_EPP_KEPT {
            self.failed_epp.push(line);
        }
        self.skipped(skipped);
    }
}

/// The spool of small inputs' skipped lines, written out and rewound for copying.
fn rewound(w: std::io::BufWriter<std::fs::File>) -> std::io::Result<std::fs::File> {
    let mut f = w.into_inner().map_err(|e| e.into_error())?;
    f.seek(std::io::SeekFrom::Start(0))?;
    Ok(f)
}

/// How each input is opened on its reader thread; a regular file can also be read at any
/// offset, so it is cut into its time-ordered runs (several proxies' logs one after another),
/// each read by a reader of its own and merged by end time like separate logs.
fn stream_inputs(inputs: Vec<Input>, spec: &FormatSpec) -> Streams {
    let streams = inputs
        .into_iter()
        .map(|input| {
            let name = input.name();
            let input_spec = input.spec(spec).clone();
            match input {
                Input::File(path) | Input::Live { path, .. } => {
                    let at = Positioned::regular_file(&path);
                    let input = StreamInput {
                        name,
                        pod: None,
                        spec: input_spec,
                        size: match &at {
                            Some(at) => Some(at.len()),
                            None => std::fs::metadata(&path).ok().map(|m| m.len()),
                        },
                        open: Box::new(move || {
                            std::fs::File::open(&path).map(|f| Box::new(f) as Box<dyn Read + Send>)
                        }),
                        keep_all: true,
                    };
                    (input, at)
                }
                Input::Stdin { head, whole } => {
                    let size = whole.then_some(head.len() as u64);
                    let rest = std::io::Cursor::new(head);
                    let reader: Box<dyn Read + Send> = if whole {
                        Box::new(rest)
                    } else {
                        Box::new(rest.chain(std::io::stdin()))
                    };
                    let input = StreamInput {
                        name,
                        pod: None,
                        spec: input_spec,
                        size,
                        open: Box::new(move || Ok(reader)),
                        keep_all: true,
                    };
                    (input, None)
                }
            }
        })
        .collect();
    Streams(streams)
}

/// Settle records (in end-time order), handing each request to `deliver` as it completes;
/// stops at the first error `deliver` returns (a write error). Returns the number of records.
fn settle_into(
    records: impl Iterator<Item = LogLine>,
    mut deliver: impl FnMut(RequestReport) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut settler = Settler::new(Context::default());
    let mut n = 0u64;
    let error: std::cell::RefCell<Option<std::io::Error>> = Default::default();
    let mut on = |s: Settled<'_>, _: &Context| {
        if error.borrow().is_none()
            && let Err(e) = deliver(s.report)
        {
            *error.borrow_mut() = Some(e);
        }
    };
    for l in records {
        n += 1;
        settler.push(l, &mut on);
        if error.borrow().is_some() {
            break;
        }
    }
    if error.borrow().is_none() {
        settler.finish(&mut on);
        let crowded = settler.crowded_rounds();
        match settler.late_lines() {
            Some(late) => crate::report::warn(late_warning(late, crowded > 0)),
            None if crowded > 0 => crate::report::warn(crowded_note(crowded, "listed")),
            None => {}
        }
    }
    match error.into_inner() {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// Lines that came after requests of their time were written: some request may be listed once
/// per part of the evidence its lines are in.
fn late_warning(late: &LateLines, crowded: bool) -> String {
    let why = if crowded {
        CROWDED
    } else {
        "several proxies' logs one after another in one file or stream? `explain` reads each input in the order of its lines"
    };
    format!(
        "{}:{}{} ended up to {} before requests already written ({why}): a request whose lines are in different parts of the evidence may be listed once per part; give each proxy's log as its own file{}",
        late.input,
        late.line,
        late.more(),
        late.behind(),
        if crowded {
            ", or a shorter time range"
        } else {
            ""
        }
    )
}

/// `explain` on large inputs (files or standard input): requests are settled and written as
/// they complete (see [`Settler`]), records read on one thread per input and merged in end-time
/// order. A write error (the reader of the output went away) stops everything at once.
fn run_streaming(inputs: Vec<Input>, spec: &FormatSpec, output: OutputFormat) -> Result<i32> {
    if matches!(output, OutputFormat::Json | OutputFormat::Yaml) {
        return run_streaming_document(inputs, spec, output);
    }
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    let streams = stream_inputs(inputs, spec);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::report::stdout());
    let mut stream = ExplainStream::start(&mut out, output, names.len() > 1)?;
    let mut merged = Merged::start(streams);
    // On an error, dropping the merge stops its readers at their next chunk.
    let records = settle_into(merged.by_ref(), |r| stream.request(&r))?;
    for p in &merged.problems {
        crate::report::warn(p);
    }
    // Large inputs keep only their failed ztunnel connections, router lines and endpoint
    // picker refusals, and at most a few thousand of each per log: every line read is counted
    // under its kind, the ones not kept apart (not a kind of line: said with their section).
    let connections = meshtrace_analysis::ambient::explain_connections(&merged.failed_connections);
    let router = meshtrace_analysis::router::explain_router_lines(&merged.failed_router);
    let knative = meshtrace_analysis::knative::explain_knative_lines(&merged.knative);
    let epp = meshtrace_analysis::inference::explain_epp_lines(&merged.failed_epp);
    for (section, (kind, not_kept)) in sections(&connections, &router, &knative, &epp)
        .iter()
        .zip(SECTION_KINDS.into_iter().zip(NOT_KEPT))
    {
        let lines = merged.skipped.get(kind).copied().unwrap_or(0);
        let not_listed = merged.skipped.remove(not_kept).unwrap_or(0);
        stream.section(section, lines, Some(not_listed), None)?;
    }
    stream.end_text(records, &names, &merged.skipped, &merged.malformed_examples)?;
    drop(stream);
    out.flush()?;
    Ok(streaming_exit(
        records + section_lines(&merged.skipped),
        &merged.skipped,
        &names,
        merged.problems.is_empty(),
    ))
}

/// The skipped kinds of the lines of [`sections`], in its order, and the counts of those of
/// each that a large input did not keep.
const SECTION_KINDS: [&str; 4] = ["ztunnel", "haproxy", "knative", "epp"];
const NOT_KEPT: [&str; 4] = [
    merge::CONNECTIONS_NOT_KEPT,
    merge::ROUTER_NOT_KEPT,
    merge::KNATIVE_NOT_KEPT,
    merge::EPP_NOT_KEPT,
];

/// The lines explained in [`sections`] (ztunnel connections, router, Knative and endpoint
/// picker lines), which count with the records for the exit code.
fn section_lines(skipped: &BTreeMap<String, u64>) -> u64 {
    SECTION_KINDS
        .iter()
        .map(|k| skipped.get(*k).copied().unwrap_or(0))
        .sum()
}

/// The exit code of a streamed `explain`, with the warning when no record was found;
/// `records` counts the access-log records and the ztunnel connection lines explained.
fn streaming_exit(
    records: u64,
    skipped: &BTreeMap<String, u64>,
    names: &[String],
    all_read: bool,
) -> i32 {
    if records == 0 {
        crate::report::warn(nothing_found(names, skipped));
        return EXIT_NOTHING;
    }
    if all_read { EXIT_OK } else { EXIT_ERROR }
}

/// What to say when the inputs held no access-log record: what their lines were instead, and
/// what to give. Lines in no known shape may be a custom format (`--log-format`); lines that
/// are all other logs (an application's, Envoy's own, Knative's) mean the access logs are
/// missing.
fn nothing_found(names: &[String], skipped: &BTreeMap<String, u64>) -> String {
    let total: u64 = skipped.values().sum();
    let head = format!(
        "no access-log record found in {} ({total} line(s) skipped",
        names.join(", ")
    );
    let kinds = skipped
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    if total == 0 {
        return format!("{head}): the input is empty");
    }
    if skipped.get("malformed").copied().unwrap_or(0) > 0 {
        return format!(
            "{head}: {kinds}); if the proxy uses a custom format, pass it with --log-format"
        );
    }
    let mut hint = String::from(
        "these are other logs, not access logs: give the proxies' access logs (the `istio-proxy` container's, a gateway's)",
    );
    if skipped.contains_key("envoy-log") {
        hint.push_str("; Envoy's own log is there, so its access log may be off (Istio: `meshConfig.accessLogFile: /dev/stdout`, or the Telemetry API's `accessLogging`)");
    }
    format!("{head}: {kinds}); {hint}")
}

/// The records of the reader threads of [`run_streaming_document`] in end-time order (the
/// merge of `Merged`: the record that ended first, the earlier input on a tie), collecting what
/// each reader hands over at its end.
struct SpoolMerge {
    rx: Vec<Receiver<Msg>>,
    queues: Vec<EndQueue>,
    finished: Vec<Option<Box<Finished>>>,
    done: Vec<bool>,
    skipped: BTreeMap<String, u64>,
    malformed: u64,
    problems: Vec<String>,
    stop: Arc<AtomicBool>,
}

impl Drop for SpoolMerge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl SpoolMerge {
    fn fill(&mut self, i: usize, q: &mut EndQueue) {
        while q.is_empty() && !self.done[i] {
            match self.rx[i].recv() {
                Ok(Msg::Records(v)) => {
                    meshtrace_analysis::settle::warm(&v);
                    q.push_batch(v)
                }
                Ok(Msg::Done(f)) => {
                    self.done[i] = true;
                    for (k, n) in &f.skipped {
                        *self.skipped.entry(k.clone()).or_default() += n;
                    }
                    self.malformed += f.skipped.get("malformed").copied().unwrap_or(0);
                    self.problems.extend(f.problem.clone());
                    self.finished[i] = Some(f);
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

impl Iterator for SpoolMerge {
    type Item = LogLine;
    fn next(&mut self) -> Option<LogLine> {
        pop_earliest(self, |m| &mut m.queues, SpoolMerge::fill)
    }
}

/// Start one reader thread per input: each parses its input once, writes its `records` and
/// `skipped` elements into two temporary files (in input order) and sends the records on.
fn start_spooling(streams: Streams, yaml: bool) -> SpoolMerge {
    // One reader per input, or per time-ordered run of a file (in input order, so the spools
    // of an input's runs, copied one after another, are its records in input order).
    let streams = split_runs(streams.0);
    let n = streams.len().max(1);
    let in_flight = (BATCHES_IN_FLIGHT / n).clamp(2, BATCHES_IN_FLIGHT);
    let batch_size = (RECORDS_IN_FLIGHT / (n * (in_flight + BATCHES_BESIDES))).clamp(16, 256);
    let batch_bytes = RECORD_BYTES_IN_FLIGHT / (n * (in_flight + BATCHES_BESIDES));
    let room = merge::room_by_size(&streams, in_flight * n);
    let stop = Arc::new(AtomicBool::new(false));
    // The spools together stay as written while the kernel would keep them in memory, and
    // are compressed past that (see `report::blocks`), unless the user set another figure.
    let budget = crate::source::limits::mib_from_env(crate::source::limits::PLAIN_SPOOL_ENV)
        .map_or_else(PlainBudget::for_this_machine, PlainBudget::new);
    let mut rx = Vec::with_capacity(streams.len());
    for (input, in_flight) in streams.into_iter().zip(room) {
        let (tx, receiver) = sync_channel(in_flight);
        rx.push(receiver);
        let stop = stop.clone();
        let budget = budget.clone();
        let spawned = std::thread::Builder::new()
            .name("meshtrace-read".into())
            .spawn(move || {
                read_and_spool(input, yaml, tx, (batch_size, batch_bytes), budget, stop)
            });
        // Without a thread the receiver reports the input as stopped (see `fill`).
        drop(spawned);
    }
    let n = rx.len();
    SpoolMerge {
        rx,
        queues: (0..n).map(|_| EndQueue::default()).collect(),
        finished: (0..n).map(|_| None).collect(),
        done: vec![false; n],
        skipped: BTreeMap::new(),
        malformed: 0,
        problems: Vec::new(),
        stop,
    }
}

/// The work of one reader thread of [`start_spooling`].
fn read_and_spool(
    mut reader: Reader,
    yaml: bool,
    tx: SyncSender<Msg>,
    (batch_size, batch_bytes): (usize, usize),
    budget: PlainBudget,
    stop: Arc<AtomicBool>,
) {
    let spools = SanitizingSpool::new(budget.clone())
        .and_then(|r| Ok((r, SanitizingSpool::new(budget.clone())?)));
    let (records, skipped_spool) = match spools {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Msg::Done(Box::new(Finished::unread(e))));
            return;
        }
    };
    // The records of a large run are serialised on a thread of their own; those of a small
    // one (a bundle's many small logs), or without that thread, on this one.
    let apart = reader
        .bytes()
        .is_none_or(|b| b >= SERIALISE_APART_MIN_BYTES);
    let spooler = RecordSpooler::new(yaml, records);
    let out = if apart {
        let (to_serialiser, parsed) = sync_channel(SERIALISER_BATCHES);
        let (settle, stopped) = (tx.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("meshtrace-spool".into())
            .spawn(move || serialise_records(parsed, spooler, settle, stopped));
        match spawned {
            Ok(_) => Serialiser::Thread(to_serialiser),
            // The spooler went with the thread that did not start: a spool of its own here.
            Err(_) => match SanitizingSpool::new(budget) {
                Ok(records) => Serialiser::Inline(Box::new(RecordSpooler::new(yaml, records)), tx),
                Err(e) => {
                    let _ = tx.send(Msg::Done(Box::new(Finished::unread(e))));
                    return;
                }
            },
        }
    } else {
        Serialiser::Inline(Box::new(spooler), tx)
    };
    let mut sink = SpoolSink::new(
        (yaml, out),
        (batch_size, batch_bytes),
        skipped_spool,
        stop.clone(),
    );
    let opened = reader.open();
    let input = reader.input;
    let problem = match opened {
        Ok((bytes, lines_before)) => read_streamed_from(
            bytes,
            &input.name,
            input.pod,
            &input.spec,
            input.size,
            input.keep_all,
            &mut sink,
            Some(&stop),
            lines_before,
        )
        .err()
        .map(|e| e.to_string()),
        Err(e) => Some(format!("{}: unreadable: {e}", input.name)),
    };
    sink.finish(problem);
}

/// `explain -o json|yaml` on large inputs in one reading: each input is parsed once on its own
/// thread, which serialises its records and skipped lines into temporary files while the
/// requests are settled in end-time order on this thread and written on another
/// ([`write_document`]); then the spooled `records` and `skipped` are copied after them, input
/// by input. Memory stays flat (the temporary files hold what the document holds beyond the
/// requests).
fn run_streaming_document(
    inputs: Vec<Input>,
    spec: &FormatSpec,
    output: OutputFormat,
) -> Result<i32> {
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    let streams = stream_inputs(inputs, spec);
    let (tx, rx) = sync_channel(REPORT_BATCHES);
    let multi = names.len() > 1;
    let writer = std::thread::Builder::new()
        .name("meshtrace-write".into())
        .spawn(move || write_document(rx, output, multi))
        .context("cannot start a thread to write the document")?;
    let mut merged = start_spooling(streams, output == OutputFormat::Yaml);
    // On an error, dropping the merge stops its readers at their next chunk.
    let mut batch = Vec::with_capacity(REPORTS_PER_BATCH);
    let settled = settle_into(merged.by_ref(), |r| {
        batch.push(r);
        if batch.len() < REPORTS_PER_BATCH {
            return Ok(());
        }
        let full = std::mem::replace(&mut batch, Vec::with_capacity(REPORTS_PER_BATCH));
        tx.send(ToWriter::Requests(full))
            .map_err(|_| std::io::Error::other("the document's writer stopped"))
    });
    if settled.is_ok() {
        for p in &merged.problems {
            crate::report::warn(p);
        }
        let finished = std::mem::take(&mut merged.finished);
        // A writer that stopped says why when joined.
        let _ = tx.send(ToWriter::Requests(batch));
        let _ = tx.send(ToWriter::End(
            finished.into_iter().flatten().map(|f| *f).collect(),
        ));
    }
    drop(tx);
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the thread writing the document stopped unexpectedly"))?;
    // The writer's error first: a settling that stopped did so because the writer had.
    written?;
    let records = settled?;
    if merged.malformed > 0 {
        crate::report::warn(format!(
            "{} malformed line(s); see \"skipped\" in the output",
            merged.malformed
        ));
    }
    // The lines of the document's other sections are explained too.
    Ok(streaming_exit(
        records + section_lines(&merged.skipped),
        &merged.skipped,
        &names,
        merged.problems.is_empty(),
    ))
}

/// What the settling of [`run_streaming_document`] sends its writer.
enum ToWriter {
    /// Requests settled, in the order they are written.
    Requests(Vec<RequestReport>),
    /// Every request was sent: the readers' spools, to copy after them.
    End(Vec<Finished>),
}

/// Requests per batch sent to the writer of a document, and batches waiting: the settling
/// goes on with the next round while the writer serialises the last one (a fifth of the
/// settling thread's time was the requests' JSON and its writes).
const REPORTS_PER_BATCH: usize = 64;
const REPORT_BATCHES: usize = 8;

/// The writer of [`run_streaming_document`]: the document on standard output, its requests as
/// they come, then the spooled `records` and `skipped`. Stops at the first write error, and
/// without ending the document when the settling stopped before its end.
fn write_document(rx: Receiver<ToWriter>, output: OutputFormat, multi: bool) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::report::stdout());
    let mut stream = ExplainStream::start_stdout(&mut out, output, multi)?;
    let finished = loop {
        match rx.recv() {
            Ok(ToWriter::Requests(batch)) => {
                for r in &batch {
                    stream.request(r)?;
                }
            }
            Ok(ToWriter::End(finished)) => break finished,
            Err(_) => return Ok(()),
        }
    };
    // A spool copied is closed on another thread: giving its pages back to the system takes
    // about as long as copying them, and the next spool is copied meanwhile (the end of
    // `explain -o json` on 512 MiB spent 0.3 s on one core doing both in turn).
    std::thread::scope(|s| {
        let (release, released) = sync_channel::<SanitizedFile>(SPOOLS_BEING_CLOSED);
        let closer = std::thread::Builder::new()
            .name("meshtrace-close".into())
            .spawn_scoped(s, move || released.into_iter().for_each(drop));
        // Without a closer, each spool is closed here once copied.
        let release = closer.is_ok().then_some(release);
        // The sender goes when the copy ends, however it ends, and the closer with it.
        copy_spools(&mut stream, finished, |f| {
            if let Some(tx) = &release {
                let _ = tx.send(f);
            }
        })
    })?;
    drop(stream);
    out.flush()?;
    Ok(())
}

/// The `records` and `skipped` arrays of [`write_document`]: the readers' spools copied in
/// input order, each handed to `close` once copied.
fn copy_spools(
    stream: &mut ExplainStream<'_>,
    finished: Vec<Finished>,
    close: impl Fn(SanitizedFile),
) -> Result<()> {
    let mut skipped_files = Vec::with_capacity(finished.len());
    let mut connections: Vec<ConnLine> = Vec::new();
    let mut router: Vec<RouterLine> = Vec::new();
    let mut knative: Vec<KnativeLine> = Vec::new();
    let mut epp: Vec<EppLine> = Vec::new();
    stream.next_array("records")?;
    for mut f in finished {
        connections.append(&mut f.failed_connections);
        router.append(&mut f.failed_router);
        knative.append(&mut f.knative);
        epp.append(&mut f.failed_epp);
        let (mut r, sk) = f.spools.map_err(spool_failure)?;
        stream.spooled_sanitized(&mut r)?;
        close(r);
        skipped_files.push(sk);
    }
    stream.next_array("skipped")?;
    for mut sk in skipped_files {
        stream.spooled_sanitized(&mut sk)?;
        close(sk);
    }
    // The failed ztunnel connections, router lines, Knative error lines and endpoint picker
    // refusals, when there are any.
    let connections = meshtrace_analysis::ambient::explain_connections(&connections);
    let router = meshtrace_analysis::router::explain_router_lines(&router);
    let knative = meshtrace_analysis::knative::explain_knative_lines(&knative);
    let epp = meshtrace_analysis::inference::explain_epp_lines(&epp);
    for s in sections(&connections, &router, &knative, &epp) {
        stream.section(&s, 0, None, None)?;
    }
    Ok(stream.end_json()?)
}

/// The sections of the lines that are not access-log records, in the document's order.
fn sections<'a>(
    connections: &'a [meshtrace_analysis::ambient::ConnectionReport],
    router: &'a [meshtrace_analysis::router::RouterReport],
    knative: &'a [meshtrace_analysis::knative::KnativeReport],
    epp: &'a [meshtrace_analysis::inference::EppReport],
) -> [LineSection<'a>; 4] {
    [
        LineSection::Connections(connections),
        LineSection::Router(router),
        LineSection::Knative(knative),
        LineSection::Epp(epp),
    ]
}

/// Spools copied and waiting to be closed by [`write_document`]'s closer.
const SPOOLS_BEING_CLOSED: usize = 4;

/// Why a reader's spools are missing.
#[derive(Debug)]
enum SpoolFailure {
    /// They could not be created: the input was not read.
    Create(std::io::Error),
    /// Writing them failed (a full disk): the input was read to its end and its records
    /// settled, only its `records` and `skipped` are lost.
    Write(std::io::Error),
}

/// Why the `records` and `skipped` of a document could not be written, and what to do.
fn spool_failure(failure: SpoolFailure) -> anyhow::Error {
    let dir = std::env::temp_dir();
    let (e, done) = match failure {
        SpoolFailure::Create(e) => (
            e,
            "an input was not read, so the requests above may be incomplete",
        ),
        SpoolFailure::Write(e) => (
            e,
            "the requests above are complete, the records and skipped lines are not written",
        ),
    };
    let fix = if crate::source::limits::out_of_room(&e) {
        format!(
            "they take up to 3.6 bytes of disk per byte of log read, a tenth of that compressed: free space there, set TMPDIR to a folder with more room, or set {}=0 to compress them all",
            crate::source::limits::PLAIN_SPOOL_ENV
        )
    } else {
        "set TMPDIR to a writable folder".to_string()
    };
    anyhow::anyhow!(
        "cannot write the records and skipped lines of the document to a temporary file in {} ({e}); {done}; {fix}",
        dir.display()
    )
}

/// What the client saw: a `curl -v` transcript found among the (small) inputs, its status
/// replaced by `--client-status` when both are given; `None` when neither is there.
fn client_view(
    a: &ExplainArgs,
    inputs: &[Input],
) -> Option<meshtrace_analysis::standard::ClientView> {
    use meshtrace_analysis::standard::ClientView;
    let mut found = None;
    for input in inputs {
        let text = match input {
            // Regular files only: reading a pipe or a FIFO here would take the lines the
            // explanation itself is about to read (and a FIFO's second open waits for a writer
            // that never comes).
            Input::File(p) if !std::fs::metadata(p).is_ok_and(|m| m.is_file()) => continue,
            Input::File(p) => {
                let mut head = Vec::new();
                let read = std::fs::File::open(p)
                    .and_then(|f| f.take(STREAM_MIN_BYTES).read_to_end(&mut head));
                if read.is_err() {
                    continue;
                }
                String::from_utf8_lossy(&head).into_owned()
            }
            Input::Stdin { head, .. } => String::from_utf8_lossy(head).into_owned(),
            Input::Live { .. } => continue,
        };
        if let Some(t) = meshtrace_parsers::curl::parse(&text) {
            found = Some(ClientView::from_transcript(
                &t,
                &format!("the curl transcript in {}", input.name()),
            ));
            break;
        }
    }
    match (found, a.client_status) {
        (Some(mut c), Some(s)) => {
            c.status = Some(s);
            Some(c)
        }
        (Some(c), None) => Some(c),
        (None, Some(s)) => Some(ClientView::from_status(s)),
        (None, None) => None,
    }
}

/// After the explanation of the input's lines: the hop that answered the client when no line
/// has its status (or its x-request-id with that status). Printed with `-o table`/`wide`; the
/// input then counts as analysed (exit 0).
fn client_verdict(
    a: &ExplainArgs,
    spec: &FormatSpec,
    c: &meshtrace_analysis::standard::ClientView,
    code: i32,
) -> Result<i32> {
    if matches!(a.output, OutputFormat::Json | OutputFormat::Yaml) {
        crate::report::warn(
            "the client-side verdict (--client-status, curl transcript) is printed with -o table or wide only",
        );
        return Ok(code);
    }
    let files: Vec<String> = a
        .files
        .iter()
        .filter(|f| f.as_str() != "-")
        .cloned()
        .collect();
    let forced = (!matches!(spec, FormatSpec::Auto)).then_some(spec);
    let ev = if files.is_empty() {
        crate::evidence::Evidence::default()
    } else {
        crate::source::load::load(None, &files, forced).unwrap_or_default()
    };
    let logged = match &c.request_id {
        Some(id) => crate::trace::trace(&ev, id, &crate::correlate::Start::parse(id), true),
        None => None,
    };
    // A line with the client's status (and no request id to go by) explains it already.
    if logged.is_none()
        && c.request_id.is_none()
        && ev
            .logs
            .records
            .iter()
            .any(|l| l.record.status() == c.status)
    {
        return Ok(code);
    }
    let query = c
        .request_id
        .clone()
        .or_else(|| c.host.clone())
        .unwrap_or_default();
    let Some(report) = meshtrace_analysis::standard::verdict(
        &ev.objects,
        &ev.topology,
        c,
        &query,
        logged.as_ref(),
    ) else {
        return Ok(code);
    };
    let mut out = crate::report::stdout();
    let width = out.width(160);
    writeln!(out)?;
    crate::report::write_trace(&mut out, &report, crate::report::TraceOutput::Table, width)?;
    out.flush()?;
    Ok(if code == EXIT_NOTHING { EXIT_OK } else { code })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// A packed record of `input` at `line`, with a user agent that the sanitiser changes on
    /// every seventh line (a bidi override, which JSON leaves as it is), so both kinds of
    /// elements are spooled.
    fn record(input: &Arc<str>, line: u64) -> LogLine {
        let mut r = meshtrace_parsers::record::RawRecord::new(Arc::from("istio"));
        r.set(
            meshtrace_parsers::Slot::RequestId,
            Cow::Owned(format!("id-{line}")),
        );
        let agent = if line.is_multiple_of(7) {
            "curl\u{202e}fdp.exe"
        } else {
            "curl/8.6.0"
        };
        r.set(meshtrace_parsers::Slot::UserAgent, Cow::Borrowed(agent));
        LogLine {
            input: input.clone(),
            line,
            lines: 1,
            envelope: "none",
            pod: None,
            record: r.into_owned(),
        }
    }

    /// What one reader's sink passes on for `n` records, sent in batches of 16 through its
    /// serialiser's thread (`threaded`) or serialised on the reader's own: the lines of the
    /// records settled in order, and the bytes of the records' spool.
    fn spooled(n: u64, threaded: bool) -> (Vec<u64>, Vec<u8>) {
        let budget = PlainBudget::new(1 << 30);
        let (tx, rx) = sync_channel(4);
        let stop = Arc::new(AtomicBool::new(false));
        let spooler = RecordSpooler::new(false, SanitizingSpool::new(budget.clone()).unwrap());
        let out = if threaded {
            let (to, from) = sync_channel(SERIALISER_BATCHES);
            let (settle, stopped) = (tx, stop.clone());
            std::thread::spawn(move || serialise_records(from, spooler, settle, stopped));
            Serialiser::Thread(to)
        } else {
            Serialiser::Inline(Box::new(spooler), tx)
        };
        let mut sink = SpoolSink::new(
            (false, out),
            (16, usize::MAX),
            SanitizingSpool::new(budget).unwrap(),
            stop,
        );
        let input: Arc<str> = Arc::from("big.log");
        let reader = std::thread::spawn(move || {
            for line in 1..=n {
                sink.record(record(&input, line));
            }
            sink.finish(None);
        });
        let mut lines = Vec::new();
        let mut bytes = Vec::new();
        for msg in rx {
            match msg {
                Msg::Records(batch) => {
                    assert!(batch.len() <= 16);
                    lines.extend(batch.iter().map(|l| l.line));
                }
                Msg::Done(f) => {
                    let (mut records, skipped) = f.spools.expect("spools written");
                    records.read_to_end(&mut bytes).unwrap();
                    assert!(skipped.is_empty());
                    break;
                }
            }
        }
        reader.join().unwrap();
        (lines, bytes)
    }

    /// A reader's records reach the settling in the order read, in batches, and its records'
    /// spool holds each of them once, sanitised, whether they are serialised on a thread of
    /// their own or (when that thread cannot start) on the reader's.
    #[test]
    fn records_are_serialised_in_order_on_the_serialisers_thread_or_the_readers() {
        let (lines, bytes) = spooled(100, true);
        assert_eq!(lines, (1..=100).collect::<Vec<u64>>());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.matches("\"request_id\":\"id-").count(), 100);
        assert!(text.contains("\"request_id\":\"id-100\""));
        // The bidi override is shown escaped, never written as it is.
        assert!(!text.contains('\u{202e}'), "{text}");
        assert_eq!(text.matches("curl\\u202efdp.exe").count(), 14, "{text}");
        let first = text.find("\"id-1\"").unwrap();
        assert!(first < text.find("\"id-2\"").unwrap());
        assert_eq!(spooled(100, false), (lines, bytes));
    }
}
