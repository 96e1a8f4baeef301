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

use anyhow::{Context as _, Result};
use meshtrace_parsers::detect::FormatSpec;

use crate::commands::{EXIT_ERROR, EXIT_NOTHING, EXIT_OK, format_spec};
use crate::diagnose::Context;
use crate::explain::explain;
use crate::report::explain_stream::write_skipped_summary;
use crate::report::json::{RecordJson, SkippedJson};
use crate::report::{ExplainStream, OutputFormat, write_explain};
use crate::source::input::{InputSource, STREAM_MIN_BYTES, read_streamed};
use crate::source::limits::MAX_STDIN_COPY_BYTES;
use crate::source::merge::{MALFORMED_EXAMPLES, Merged, StreamInput};
use meshtrace_analysis::model::{LineSink, LogLine, LogSet, SkippedLine};
use meshtrace_analysis::settle::{Settled, Settler};

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
    run_whole(inputs, &spec, a.output)
}

/// Keeps the records of small inputs; counts skipped lines by kind, keeps the first malformed
/// ones as examples and, for JSON, writes each to a temporary file in order.
struct Collected {
    set: LogSet,
    skipped: BTreeMap<String, u64>,
    malformed: Vec<SkippedLine>,
    spool: Option<std::io::BufWriter<std::fs::File>>,
    error: Option<std::io::Error>,
}

impl LineSink for Collected {
    fn record(&mut self, line: LogLine) {
        self.set.records.push(line);
    }
    fn skipped(&mut self, line: SkippedLine) {
        if let Some(w) = &mut self.spool
            && self.error.is_none()
            && let Err(e) = serde_json::to_writer(&mut *w, &SkippedJson(&line))
                .map_err(std::io::Error::other)
                .and_then(|()| w.write_all(b"\n"))
        {
            self.error = Some(e);
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
}

/// `explain` on small inputs: read whole, explained together.
fn run_whole(inputs: Vec<Input>, spec: &FormatSpec, output: OutputFormat) -> Result<i32> {
    let json = output == OutputFormat::Json;
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
        error: None,
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
            copy_spooled(spool, &mut stream)?;
        }
        stream.end_json()?;
    } else {
        write_explain(&mut out, &c.set, &report, output, width)?;
        write_skipped_summary(&mut out, &c.skipped, &c.malformed)?;
    }
    out.flush()?;
    let malformed = c.skipped.get("malformed").copied().unwrap_or(0);
    if malformed > 0 && json {
        crate::report::warn(format!(
            "{malformed} malformed line(s); see \"skipped\" in the output"
        ));
    }
    if c.set.records.is_empty() {
        crate::report::warn(format!(
            "no access-log record found in {} ({} line(s) skipped); if the proxy uses a custom format, pass it with --log-format",
            c.set.inputs.join(", "),
            c.skipped.values().sum::<u64>()
        ));
        return Ok(EXIT_NOTHING);
    }
    Ok(if failed_inputs > 0 {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// Write the JSON lines of a spooled `skipped` array as its elements.
fn copy_spooled(
    spool: std::io::BufWriter<std::fs::File>,
    stream: &mut ExplainStream<'_>,
) -> Result<()> {
    let mut f = spool.into_inner().map_err(|e| e.into_error())?;
    f.seek(std::io::SeekFrom::Start(0))?;
    let mut lines = std::io::BufReader::new(f);
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut lines, &mut line)? > 0 {
        stream.raw_value(line.trim_end())?;
        line.clear();
    }
    Ok(())
}

/// Passes on the records and skipped lines of the second reading (JSON `records`/`skipped`).
struct JsonSink<'s, 'o> {
    stream: &'s mut ExplainStream<'o>,
    /// `skipped` entries, one JSON value per line, written after the records.
    skipped: std::io::BufWriter<std::fs::File>,
    records: u64,
    error: Option<std::io::Error>,
    /// Set on the first write error: the reading stops.
    stop: &'s AtomicBool,
}

impl JsonSink<'_, '_> {
    fn fail(&mut self, e: std::io::Error) {
        self.error = Some(e);
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl LineSink for JsonSink<'_, '_> {
    fn record(&mut self, line: LogLine) {
        self.records += 1;
        if self.error.is_none()
            && let Err(e) = self.stream.value(&RecordJson(&line))
        {
            self.fail(e);
        }
    }
    fn skipped(&mut self, line: SkippedLine) {
        if self.error.is_none()
            && let Err(e) = serde_json::to_writer(&mut self.skipped, &SkippedJson(&line))
                .map_err(std::io::Error::other)
                .and_then(|()| self.skipped.write_all(b"\n"))
        {
            self.fail(e);
        }
    }
    fn ok_records(&mut self, _: u64) {}
}

/// Copies standard input to a temporary file as it is read (for the second reading of
/// `-o json`), up to [`MAX_STDIN_COPY_BYTES`]; notes what went wrong instead of failing the read.
struct Tee<R> {
    inner: R,
    copy: std::fs::File,
    copied: u64,
    failed: Arc<std::sync::Mutex<Option<String>>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let fail = |m: String| {
            if let Ok(mut f) = self.failed.lock() {
                f.get_or_insert(m);
            }
        };
        if self.copied + n as u64 > MAX_STDIN_COPY_BYTES {
            fail(format!(
                "standard input is larger than the {} GiB meshtrace copies for -o json; save it to a file and pass the file",
                MAX_STDIN_COPY_BYTES >> 30
            ));
        } else if let Err(e) = self.copy.write_all(&buf[..n]) {
            fail(format!(
                "cannot copy standard input to a temporary file for -o json ({e}); save it to a file and pass the file"
            ));
        } else {
            self.copied += n as u64;
        }
        Ok(n)
    }
}

/// Where the second reading of an input (JSON `records`/`skipped`) comes from.
enum Again {
    /// The file again.
    Path(std::path::PathBuf),
    /// The copy of standard input made while it was read.
    Copy(std::fs::File),
}

/// `explain` on large inputs (files or standard input): requests are settled and written as
/// they complete (see [`Settler`]); for JSON the inputs are read a second time for `records`
/// and `skipped` (standard input from the copy made while it was read). A write error (the
/// reader of the output went away) stops everything at once.
fn run_streaming(inputs: Vec<Input>, spec: &FormatSpec, output: OutputFormat) -> Result<i32> {
    let json = output == OutputFormat::Json;
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    let copy_failed = Arc::new(std::sync::Mutex::new(None::<String>));
    // Where the second reading of each input comes from.
    let mut again: Vec<(String, Again, Option<u64>, FormatSpec)> = Vec::new();
    let mut streams = Vec::with_capacity(inputs.len());
    for input in inputs {
        let name = input.name();
        let input_spec = input.spec(spec).clone();
        match input {
            Input::File(path) | Input::Live { path, .. } => {
                let size = std::fs::metadata(&path).ok().map(|m| m.len());
                let p = path.clone();
                streams.push(StreamInput {
                    name: name.clone(),
                    pod: None,
                    spec: input_spec.clone(),
                    size,
                    open: Box::new(move || {
                        std::fs::File::open(&p).map(|f| Box::new(f) as Box<dyn Read + Send>)
                    }),
                    keep_all: true,
                });
                again.push((name, Again::Path(path), size, input_spec));
            }
            Input::Stdin { head, whole } => {
                let size = whole.then_some(head.len() as u64);
                let rest = std::io::Cursor::new(head);
                let reader: Box<dyn Read + Send> = match (json, whole) {
                    (false, true) => Box::new(rest),
                    (false, false) => Box::new(rest.chain(std::io::stdin())),
                    (true, _) => {
                        let copy = tempfile::tempfile()
                            .context("cannot create a temporary file for standard input")?;
                        again.push((
                            name.clone(),
                            Again::Copy(copy.try_clone()?),
                            size,
                            spec.clone(),
                        ));
                        let inner: Box<dyn Read + Send> = if whole {
                            Box::new(rest)
                        } else {
                            Box::new(rest.chain(std::io::stdin()))
                        };
                        Box::new(Tee {
                            inner,
                            copy,
                            copied: 0,
                            failed: copy_failed.clone(),
                        })
                    }
                };
                streams.push(StreamInput {
                    name,
                    pod: None,
                    spec: spec.clone(),
                    size,
                    open: Box::new(move || Ok(reader)),
                    keep_all: true,
                });
            }
        }
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::report::stdout());
    let mut stream = ExplainStream::start(&mut out, output, names.len() > 1)?;
    let mut merged = Merged::start(streams);
    let mut settler = Settler::new(Context::default());
    let mut records = 0u64;
    let error: std::cell::RefCell<Option<std::io::Error>> = Default::default();
    let mut on = |s: Settled<'_>, _: &Context| {
        if error.borrow().is_none()
            && let Err(e) = stream.request(s.report)
        {
            *error.borrow_mut() = Some(e);
        }
    };
    for l in merged.by_ref() {
        records += 1;
        settler.push(l, &mut on);
        if error.borrow().is_some() {
            break;
        }
    }
    if error.borrow().is_none() {
        settler.finish(&mut on);
    }
    if let Some(e) = error.into_inner() {
        // Dropping the merge stops its readers at their next chunk.
        drop(merged);
        return Err(e.into());
    }
    for p in &merged.problems {
        crate::report::warn(p);
    }
    if json {
        if let Ok(mut f) = copy_failed.lock()
            && let Some(m) = f.take()
        {
            anyhow::bail!(m);
        }
        stream.next_array("records")?;
        let tmp =
            tempfile::tempfile().context("cannot create a temporary file for skipped lines")?;
        let stop = AtomicBool::new(false);
        let mut sink = JsonSink {
            stream: &mut stream,
            skipped: std::io::BufWriter::new(tmp),
            records: 0,
            error: None,
            stop: &stop,
        };
        for (name, from, size, spec) in again {
            let f = match from {
                Again::Copy(mut f) => {
                    f.seek(std::io::SeekFrom::Start(0))?;
                    f
                }
                Again::Path(p) => {
                    std::fs::File::open(&p).with_context(|| format!("cannot reopen {name}"))?
                }
            };
            read_streamed(f, &name, None, &spec, size, true, &mut sink, Some(&stop))?;
            if let Some(e) = sink.error.take() {
                return Err(e.into());
            }
        }
        let spool = sink.skipped;
        stream.next_array("skipped")?;
        copy_spooled(spool, &mut stream)?;
        stream.end_json()?;
    } else {
        stream.end_text(records, &names, &merged.skipped, &merged.malformed_examples)?;
    }
    out.flush()?;
    let malformed = merged.malformed();
    if malformed > 0 && json {
        crate::report::warn(format!(
            "{malformed} malformed line(s); see \"skipped\" in the output"
        ));
    }
    if records == 0 {
        let skipped: u64 = merged.skipped.values().sum();
        crate::report::warn(format!(
            "no access-log record found in {} ({skipped} line(s) skipped); if the proxy uses a custom format, pass it with --log-format",
            names.join(", ")
        ));
        return Ok(EXIT_NOTHING);
    }
    Ok(if merged.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
