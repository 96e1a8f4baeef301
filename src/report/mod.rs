//! Rendering for people (tables, text) and machines (JSON). The only layer that writes output.

mod blocks;
pub mod compact;
pub mod describe;
pub mod explain_stream;
pub mod json;
mod kernel_copy;
pub mod markdown;
pub mod otlp;
pub mod proxy_config;
pub mod route_check;
pub mod safe;
pub mod style;
pub mod table;
pub mod yaml;

use std::collections::BTreeMap;
use std::io::{self, Write};

pub use safe::Line;
use style::{Paint, paint};
use table::{Cell, Grid};

use crate::explain::ExplainReport;
use meshtrace_analysis::model::LogSet;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables and text for people.
    Table,
    /// The same, every value printed whole (tables as wide as their values).
    Wide,
    /// JSON for machines.
    Json,
    /// The same document as YAML (same field names and values as JSON).
    Yaml,
}

/// Standard output: the one handle every printer writes to (nothing outside this module opens
/// it; a test keeps it so). Everything written goes through [`safe::Sanitizer`]: secrets
/// masked, control characters and bidirectional overrides escaped, whatever the printer.
pub struct Stdout {
    out: safe::Sanitizer<io::StdoutLock<'static>>,
    terminal: bool,
}

/// Open standard output for a printer.
pub fn stdout() -> Stdout {
    use std::io::IsTerminal;
    let s = io::stdout();
    Stdout {
        terminal: s.is_terminal(),
        out: safe::Sanitizer::new(s.lock()),
    }
}

/// Is standard output a terminal (for `--color auto`)?
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    io::stdout().is_terminal()
}

impl Stdout {
    /// The width tables fit in: `COLUMNS` when set to a number, else the terminal's own, or
    /// `pipe_width` columns when writing to a pipe or a file.
    pub fn width(&self, pipe_width: u16) -> Option<u16> {
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|c| *c >= 20);
        let terminal = || {
            self.terminal
                .then(terminal_size::terminal_size)
                .flatten()
                .map(|(w, _)| w.0)
                .filter(|w| *w >= 20)
        };
        Some(columns.or_else(terminal).unwrap_or(pipe_width))
    }

    /// Write `bytes`, which [`compact::to_vec_checked`] found the sanitiser would leave as they
    /// are, past its scan ([`safe::Sanitizer::write_clean`]).
    pub fn write_clean(&mut self, bytes: &[u8]) -> io::Result<()> {
        crate::live::progress::clear(true);
        self.out.write_clean(bytes)
    }

    /// Copy a file that was sanitised as it was written (a reader thread's spool) as it is,
    /// after what was written before it: with [`Stdout::write_clean`], the only way bytes reach
    /// standard output without this writer's scan, and only bytes that went through another
    /// sanitiser or that the JSON writer checked with its tests.
    pub fn copy_sanitized(&mut self, file: &mut safe::SanitizedFile) -> io::Result<u64> {
        crate::live::progress::clear(true);
        self.out.copy_sanitized(file)
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The command's output begins: the progress line goes for good.
        crate::live::progress::clear(true);
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

static PIPE_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Record that the reader of standard output went away (a write failed with `BrokenPipe`).
fn note_closed_pipe() {
    PIPE_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Did a write to standard output fail because its reader went away (`meshtrace … | head`)?
/// Then the command's error, however it was wrapped on the way up, is not worth reporting.
pub fn stdout_closed() -> bool {
    PIPE_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Is this error, or any error in its chain, a closed pipe (also inside a serde_json error)?
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// Standard error for diagnostics, sanitised like standard output.
pub fn stderr() -> safe::Sanitizer<io::StderrLock<'static>> {
    crate::live::progress::clear(false);
    safe::Sanitizer::new(io::stderr().lock())
}

/// A one-line diagnostic on standard error: `meshtrace: <message>`, the message (which quotes
/// evidence: file names, ids) escaped and its secrets masked.
pub fn warn(message: impl std::fmt::Display) {
    let _ = writeln!(stderr(), "meshtrace: {}", Line(&message.to_string()));
}

/// A usage error (clap's message, which quotes the arguments given) on standard error, its
/// own line breaks kept and everything else escaped.
pub fn usage_error(message: &str) {
    let mut err = stderr();
    let _ = err.write_all(safe::text(message).as_bytes());
    let _ = err.flush();
}

/// The error that ends a command, on standard error: `meshtrace: error: <chain>`, escaped like
/// every evidence field (a file name or request id in it cannot reach the terminal raw).
pub fn error(e: &anyhow::Error) {
    let text = format!("{e:#}");
    // A message's own further lines (`source::push_note`) are kept as lines; any other line
    // break is escaped with the rest (each piece is one `Line`).
    let mut pieces = text.split(crate::source::CONTINUATION);
    let mut err = stderr();
    let _ = writeln!(
        err,
        "meshtrace: error: {}",
        Line(pieces.next().unwrap_or(""))
    );
    for p in pieces {
        let _ = writeln!(err, "  {}", Line(p));
    }
}

/// A script or page meshtrace writes from its own definitions (shell completions, manual
/// pages), through the sanitiser like everything else (it holds no control character).
pub fn write_script(out: &mut dyn Write, text: &str) -> io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// A machine-readable document as pretty JSON or as YAML (`proxy-config`, `route-check`),
/// secret values masked (header lists carry names and values apart).
pub fn write_json_or_yaml(
    out: &mut dyn Write,
    yaml: bool,
    doc: &serde_json::Value,
) -> anyhow::Result<()> {
    let mut doc = doc.clone();
    crate::redact::mask_value(&mut doc);
    if yaml {
        yaml::write(out, &doc)?;
    } else {
        serde_json::to_writer_pretty(&mut *out, &doc).map_err(json_io_error)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// A finished document (Markdown or JSON report), ending with a newline.
pub fn write_document(out: &mut dyn Write, text: &str) -> io::Result<()> {
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    out.flush()
}

/// `meshtrace formats`: the built-in access-log formats.
pub fn write_formats(out: &mut dyn Write) -> io::Result<()> {
    for b in meshtrace_parsers::builtins::BUILTIN_TEXT {
        writeln!(
            out,
            "{:<12} {}{}",
            b.name,
            b.description,
            if b.detect { "" } else { " (explicit only)" }
        )?;
        writeln!(out, "             {}", b.format.trim_end())?;
    }
    writeln!(
        out,
        "{:<12} Istio's JSON encoding (default JSON keys)",
        "istio-json"
    )?;
    writeln!(
        out,
        "{:<12} Envoy Gateway's default JSON access log (header-style keys)",
        "envoy-gateway-json"
    )?;
    writeln!(
        out,
        "JSON lines are detected automatically; `--log-format json` forces JSON."
    )?;
    out.flush()
}

/// `meshtrace doctor --list`: the checks.
pub fn write_check_list(out: &mut dyn Write, checks: &[(&str, &str, &str)]) -> io::Result<()> {
    for (id, name, what) in checks {
        writeln!(out, "{id}  {name:<28} {what}")?;
    }
    out.flush()
}

/// The last line of `meshtrace collect`: what the bundle holds.
pub fn write_collect_summary(
    out: &mut dyn Write,
    written: &str,
    s: &crate::live::Summary,
) -> io::Result<()> {
    writeln!(
        out,
        "bundle {}: {} pod(s) listed, logs of {} pod(s) ({} file(s), {:.1} MiB), {} config dump(s), {} other object(s){}",
        Line(written),
        s.pods_listed,
        s.pods_selected,
        s.logs,
        s.bytes as f64 / (1024.0 * 1024.0),
        s.config_dumps,
        s.objects,
        if s.problems.is_empty() {
            String::new()
        } else {
            format!("; {} part(s) not collected (above)", s.problems.len())
        }
    )?;
    out.flush()
}

/// Write the explain report.
pub fn write_explain(
    out: &mut dyn Write,
    set: &LogSet,
    report: &ExplainReport,
    format: OutputFormat,
    width: Option<u16>,
) -> io::Result<()> {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            // Element by element, as the streamed path writes it: the document is never held
            // as one tree of values.
            let mut w = ExplainStream::start(out, format, set.inputs.len() > 1)?;
            for r in &report.requests {
                w.request(r)?;
            }
            w.next_array("records")?;
            for l in &set.records {
                w.value(&json::RecordJson(l))?;
            }
            w.next_array("skipped")?;
            for sk in &set.skipped {
                w.value(&json::SkippedJson(sk))?;
            }
            w.end_json()
        }
        OutputFormat::Table => write_explain_table(out, set, report, width),
        OutputFormat::Wide => write_explain_table(out, set, report, None),
    }
}

fn write_explain_table(
    out: &mut dyn Write,
    set: &LogSet,
    report: &ExplainReport,
    width: Option<u16>,
) -> io::Result<()> {
    let multi = set.inputs.len() > 1;
    let loc = |input: &str, line: u64| line_ref(multi, input, line);
    let failed = report
        .requests
        .iter()
        .filter(|r| r.cause.is_failure())
        .count();
    writeln!(
        out,
        "{} access-log record{} in {} request{} ({} failed) from {}",
        set.records.len(),
        plural(set.records.len()),
        report.requests.len(),
        plural(report.requests.len()),
        failed,
        inputs_list(&set.inputs)
    )?;
    if !report.requests.is_empty() {
        let mut t = Grid::new(
            &["#", "request id", "status", "cause", "origin", "lines"],
            width,
        );
        for (i, r) in report.requests.iter().enumerate() {
            t.add_row(vec![
                (i + 1).to_string().into(),
                cell(r.request_id.as_deref().unwrap_or("-")).into(),
                Cell::status(
                    r.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                ),
                r.cause.id().to_string().into(),
                loc(&r.origin_input, r.origin_line).into(),
                r.lines
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
                    .into(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    for (i, r) in report.requests.iter().enumerate() {
        write_request(out, i + 1, r, &loc)?;
    }
    write_skipped(out, set)
}

/// `explain` output for large inputs, written as requests complete so memory stays flat.
/// JSON: the same `meshtrace.explain/v1` document as [`write_explain`], requests in the order
/// they completed, then `records` and `skipped` from a second reading of the inputs. Text: each
/// request's block as it completes, then the totals (no overview table).
pub struct ExplainStream<'o> {
    out: DocumentOut<'o>,
    json: bool,
    /// The document as YAML (`json` is then false).
    yaml: bool,
    multi: bool,
    requests: usize,
    failed: usize,
    /// No element written yet in the current JSON array.
    empty: bool,
    /// The element being written (reused).
    buf: Vec<u8>,
}

/// Where an [`ExplainStream`] writes: any writer, or standard output (buffered), which also
/// takes files sanitised as they were written as they are ([`ExplainStream::spooled_sanitized`]).
enum DocumentOut<'o> {
    Any(&'o mut dyn Write),
    Stdout {
        w: &'o mut io::BufWriter<Stdout>,
        /// JSON elements the sanitiser would leave as they are ([`compact::to_vec_checked`]),
        /// not yet written: they go out together past the sanitiser's scan, after everything
        /// written to `w` before them.
        clean: Vec<u8>,
        keys: safe::KeyChecks,
    },
}

/// Clean elements gathered before they are written in one piece.
const CLEAN_CHUNK: usize = 1 << 16;

impl DocumentOut<'_> {
    /// Write the clean elements gathered, after what is buffered before them.
    fn write_clean(&mut self) -> io::Result<()> {
        if let DocumentOut::Stdout { w, clean, .. } = self
            && !clean.is_empty()
        {
            w.flush()?;
            let r = w.get_mut().write_clean(clean);
            clean.clear();
            r?;
        }
        Ok(())
    }
}

impl Drop for DocumentOut<'_> {
    fn drop(&mut self) {
        // A document left unfinished (an error on the way) still gets what was gathered; a
        // write error here has nowhere to go (a closed pipe was already recorded).
        let _ = self.write_clean();
    }
}

impl Write for DocumentOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_clean()?;
        match self {
            DocumentOut::Any(w) => w.write(buf),
            DocumentOut::Stdout { w, .. } => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_clean()?;
        match self {
            DocumentOut::Any(w) => w.write_all(buf),
            DocumentOut::Stdout { w, .. } => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.write_clean()?;
        match self {
            DocumentOut::Any(w) => w.flush(),
            DocumentOut::Stdout { w, .. } => w.flush(),
        }
    }
}

impl<'o> ExplainStream<'o> {
    /// Start the output; `multi`: several inputs (lines are shown with their input).
    pub fn start(
        out: &'o mut dyn Write,
        format: OutputFormat,
        multi: bool,
    ) -> io::Result<ExplainStream<'o>> {
        Self::begin(DocumentOut::Any(out), format, multi)
    }

    /// [`ExplainStream::start`] on standard output, which can also take sanitised spools as
    /// they are ([`ExplainStream::spooled_sanitized`]).
    pub fn start_stdout(
        out: &'o mut io::BufWriter<Stdout>,
        format: OutputFormat,
        multi: bool,
    ) -> io::Result<ExplainStream<'o>> {
        // A document is large: a wider pipe to whatever reads it.
        kernel_copy::widen_pipe(io::stdout());
        let out = DocumentOut::Stdout {
            w: out,
            clean: Vec::new(),
            keys: safe::KeyChecks::default(),
        };
        Self::begin(out, format, multi)
    }

    fn begin(
        mut out: DocumentOut<'o>,
        format: OutputFormat,
        multi: bool,
    ) -> io::Result<ExplainStream<'o>> {
        let json = format == OutputFormat::Json;
        let yaml = format == OutputFormat::Yaml;
        if json {
            write!(
                out,
                "{{\n  \"schema\": \"{}\",\n  \"requests\": [",
                crate::explain::SCHEMA
            )?;
        }
        if yaml {
            write!(out, "schema: {}\nrequests:", crate::explain::SCHEMA)?;
        }
        Ok(ExplainStream {
            out,
            json,
            yaml,
            multi,
            requests: 0,
            failed: 0,
            empty: true,
            buf: Vec::new(),
        })
    }

    /// Requests written so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// One complete request.
    pub fn request(&mut self, r: &crate::explain::RequestReport) -> io::Result<()> {
        self.requests += 1;
        if r.cause.is_failure() {
            self.failed += 1;
        }
        if self.json || self.yaml {
            return self.value_with(r, |keys, buf| {
                explain_stream::request_element_checked(r, keys, buf)
            });
        }
        let multi = self.multi;
        let loc = move |input: &str, line: u64| {
            if multi {
                format!("{}:{line}", Line(input))
            } else {
                format!("line {line}")
            }
        };
        write_request(&mut self.out, self.requests, r, &loc)
    }

    /// One element of the current JSON array (`requests`, `records` or `skipped`), serialised
    /// straight into a reused buffer and written in one piece.
    ///
    /// On standard output, a JSON element the writer finds clean joins the clean ones gathered
    /// to go out past the sanitiser's scan (as the spooled records do).
    pub fn value<T: serde::Serialize + ?Sized>(&mut self, v: &T) -> io::Result<()> {
        self.value_with(v, |keys, buf| {
            explain_stream::json_element_checked(v, keys, buf)
        })
    }

    /// [`ExplainStream::value`], the checked JSON element written by `checked` (the same bytes
    /// as `v`'s `Serialize`, with the verdict of [`compact::to_vec_checked`]).
    fn value_with<T: serde::Serialize + ?Sized>(
        &mut self,
        v: &T,
        checked: impl FnOnce(&mut safe::KeyChecks, &mut Vec<u8>) -> io::Result<bool>,
    ) -> io::Result<()> {
        self.buf.clear();
        // A JSON element starts with its `,`, but the first one of an array.
        let skip = usize::from(self.empty && !self.yaml);
        self.empty = false;
        if let DocumentOut::Stdout { clean, keys, .. } = &mut self.out
            && self.json
            && !style::enabled()
        {
            if checked(keys, &mut self.buf)? {
                clean.extend_from_slice(&self.buf[skip..]);
                if clean.len() >= CLEAN_CHUNK {
                    self.out.write_clean()?;
                }
                return Ok(());
            }
        } else {
            explain_stream::element(self.yaml, v, &mut self.buf)?;
        }
        self.out.write_all(&self.buf[skip..])
    }

    /// Elements written by [`explain_stream::element`] into a file (in this document's
    /// format), copied as they are.
    pub fn spooled(&mut self, mut from: impl io::Read) -> io::Result<()> {
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            let n = match from.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let skip = usize::from(self.empty && !self.yaml);
            self.empty = false;
            self.out.write_all(&chunk[skip..n])?;
        }
    }

    /// Like [`ExplainStream::spooled`], from a file that was sanitised as it was written: on
    /// standard output it is copied as it is (after what was written before), elsewhere it is
    /// written through the writer like any other bytes.
    pub fn spooled_sanitized(&mut self, file: &mut safe::SanitizedFile) -> io::Result<()> {
        if file.is_empty() {
            return Ok(());
        }
        if self.empty && !self.yaml {
            file.skip_ascii(b',')?;
        }
        self.empty = false;
        self.out.write_clean()?;
        match &mut self.out {
            DocumentOut::Stdout { w, .. } => {
                w.flush()?;
                w.get_mut().copy_sanitized(file)?;
            }
            DocumentOut::Any(w) => {
                io::copy(file, w)?;
            }
        }
        Ok(())
    }

    /// Close the current JSON array and open the next (`records`, then `skipped`).
    pub fn next_array(&mut self, name: &str) -> io::Result<()> {
        if self.yaml {
            let close = if self.empty { " []" } else { "" };
            self.empty = true;
            return write!(self.out, "{close}\n{name}:");
        }
        let close = if self.empty { "]" } else { "\n  ]" };
        self.empty = true;
        write!(self.out, "{close},\n  \"{name}\": [")
    }

    /// One section of lines other than access-log records ([`LineSection`]): as text, before
    /// the totals, with `lines` read and, for large inputs, how many were not kept; as an array
    /// of the document (JSON, YAML) when it has entries.
    pub fn section(
        &mut self,
        section: &LineSection<'_>,
        lines: u64,
        not_listed: Option<u64>,
        width: Option<u16>,
    ) -> io::Result<()> {
        if self.json || self.yaml {
            if section.is_empty() {
                return Ok(());
            }
            self.next_array(section.key())?;
            return match section {
                LineSection::Connections(v) => v.iter().try_for_each(|x| self.value(x)),
                LineSection::Router(v) => v.iter().try_for_each(|x| self.value(x)),
                LineSection::Knative(v) => v.iter().try_for_each(|x| self.value(x)),
                LineSection::Epp(v) => v.iter().try_for_each(|x| self.value(x)),
            };
        }
        let multi = self.multi;
        section.write_text(&mut self.out, lines, multi, not_listed, width)
    }

    /// End the JSON (or YAML) document.
    pub fn end_json(&mut self) -> io::Result<()> {
        if self.yaml {
            return writeln!(self.out, "{}", if self.empty { " []" } else { "" });
        }
        let close = if self.empty { "]" } else { "\n  ]" };
        writeln!(self.out, "{close}\n}}")
    }

    /// End the text: totals and skipped lines (counts by kind, the first malformed ones).
    pub fn end_text(
        &mut self,
        records: u64,
        inputs: &[String],
        skipped: &BTreeMap<String, u64>,
        malformed: &[meshtrace_analysis::model::SkippedLine],
    ) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{records} access-log record{} in {} request{} ({} failed) from {}",
            plural(records as usize),
            self.requests,
            plural(self.requests),
            self.failed,
            inputs_list(inputs)
        )?;
        let total: u64 = skipped.values().sum();
        if total == 0 {
            return Ok(());
        }
        let parts: Vec<String> = skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        writeln!(
            self.out,
            "Skipped {total} line{}: {}",
            plural(total as usize),
            parts.join(", ")
        )?;
        for s in malformed {
            writeln!(
                self.out,
                "  {}:{}: {}",
                Line(&s.input),
                s.line,
                Line(&s.reason)
            )?;
        }
        let n = skipped.get("malformed").copied().unwrap_or(0);
        if n > malformed.len() as u64 {
            writeln!(
                self.out,
                "  … and {} more malformed lines (see -o json)",
                n - malformed.len() as u64
            )?;
        }
        Ok(())
    }
}

/// One request's block of `explain`'s text output.
fn write_request(
    out: &mut dyn Write,
    n: usize,
    r: &crate::explain::RequestReport,
    loc: &dyn Fn(&str, u64) -> String,
) -> io::Result<()> {
    writeln!(out)?;
    let status = r
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let kind = if r.cause.is_failure() {
        Paint::Failed
    } else {
        Paint::Ok
    };
    writeln!(
        out,
        "{}",
        paint(
            kind,
            &format!(
                "Request {} · {} · {} · {}",
                n,
                Line(r.request_id.as_deref().unwrap_or("(no request id)")),
                status,
                r.cause.id()
            )
        )
    )?;
    writeln!(out, "  What happened: {}", Line(&r.summary))?;
    if !r.cause.is_failure() {
        return Ok(());
    }
    if r.hops.len() > 1 {
        writeln!(out, "  Hops (client first):")?;
        for h in &r.hops {
            let mark = if h.line == r.origin_line && h.input == r.origin_input {
                "◀ origin"
            } else {
                ""
            };
            writeln!(
                out,
                "    {:<10} {:>4}  {} {}",
                loc(&h.input, h.line),
                h.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                Line(&h.hop),
                mark
            )?;
        }
    }
    if !r.evidence.is_empty() {
        writeln!(out, "  Evidence ({}):", loc(&r.origin_input, r.origin_line))?;
        for e in &r.evidence {
            writeln!(out, "    - {}", Line(e))?;
        }
    }
    writeln!(out, "  Fix: {}", Line(&r.fix))?;
    Ok(())
}

/// The lines `explain` reads besides access-log records, each kind explained in a section of
/// its own: a line of totals, a table and one block per line in the text, an array of the
/// document (named by [`LineSection::key`]) in JSON and YAML.
pub enum LineSection<'a> {
    /// ztunnel connections (Istio ambient).
    Connections(&'a [meshtrace_analysis::ambient::ConnectionReport]),
    /// The OpenShift router's (HAProxy's) lines.
    Router(&'a [meshtrace_analysis::router::RouterReport]),
    /// The Knative activator's and queue-proxy's lines about requests they could not proxy.
    Knative(&'a [meshtrace_analysis::knative::KnativeReport]),
    /// An endpoint picker's lines (Gateway API Inference Extension).
    Epp(&'a [meshtrace_analysis::inference::EppReport]),
}

impl LineSection<'_> {
    /// The section's array in the document.
    pub fn key(&self) -> &'static str {
        match self {
            LineSection::Connections(_) => "connections",
            LineSection::Router(_) => "router",
            LineSection::Knative(_) => "knative",
            LineSection::Epp(_) => "epp",
        }
    }

    /// Nothing to list.
    pub fn is_empty(&self) -> bool {
        match self {
            LineSection::Connections(v) => v.is_empty(),
            LineSection::Router(v) => v.is_empty(),
            LineSection::Knative(v) => v.is_empty(),
            LineSection::Epp(v) => v.is_empty(),
        }
    }

    /// The text section: nothing when no such line was read. `lines` is how many were read;
    /// `not_listed` is set for large inputs, where only the failed lines are kept (at most a
    /// few thousand per log), with how many more failed lines were not.
    pub fn write_text(
        &self,
        out: &mut dyn Write,
        lines: u64,
        multi: bool,
        not_listed: Option<u64>,
        width: Option<u16>,
    ) -> io::Result<()> {
        if self.is_empty() && lines == 0 {
            return Ok(());
        }
        let loc = |input: &str, line: u64| line_ref(multi, input, line);
        let status = |s: Option<u16>| s.map_or_else(|| "-".to_string(), |s| s.to_string());
        // "N more failed lines not listed (at most K per log are kept)" after the totals.
        let more = |n: u64, what: &str, kept: usize| {
            if n == 0 {
                return String::new();
            }
            format!("{n}{what} not listed (at most {kept} per log are kept)")
        };
        let lines_word = format!("line{}", plural(lines as usize));
        writeln!(out)?;
        match self {
            LineSection::Connections(conns) => {
                let failed = conns.iter().filter(|c| c.cause.is_failure()).count();
                match not_listed {
                    Some(n) => writeln!(
                        out,
                        "{lines} ztunnel connection {lines_word} (Istio ambient); {failed} failed connection{} listed{}",
                        plural(failed),
                        comma(more(
                            n,
                            &format!(" more failed line{}", plural(n as usize)),
                            crate::source::merge::FAILED_CONNECTIONS_KEPT
                        ))
                    )?,
                    None => writeln!(
                        out,
                        "{lines} ztunnel connection {lines_word} (Istio ambient) in {} connection{} ({failed} failed)",
                        conns.len(),
                        plural(conns.len())
                    )?,
                }
                table_and_blocks(
                    out,
                    conns,
                    &["#", "source", "destination", "cause", "origin", "lines"],
                    width,
                    |c| {
                        vec![
                            cell(c.source.as_deref().unwrap_or("-")).into(),
                            cell(c.destination.as_deref().unwrap_or("-")).into(),
                            c.cause.id().to_string().into(),
                            loc(&c.origin_input, c.origin_line).into(),
                            c.lines
                                .iter()
                                .map(|l| l.line.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                                .into(),
                        ]
                    },
                    |out, i, c| {
                        let heading = format!(
                            "Connection {i} · {} → {} · {}",
                            Line(c.source.as_deref().unwrap_or("-")),
                            Line(c.destination.as_deref().unwrap_or("-")),
                            c.cause.id()
                        );
                        let failed = c.cause.is_failure();
                        let at = loc(&c.origin_input, c.origin_line);
                        write_verdict_block(
                            out,
                            &heading,
                            failed,
                            &c.summary,
                            &at,
                            &c.evidence,
                            &c.fix,
                        )?;
                        match c.source.as_ref().filter(|_| failed) {
                            Some(src) => {
                                writeln!(out, "  Follow it: meshtrace trace {}", Line(src))
                            }
                            None => Ok(()),
                        }
                    },
                )
            }
            LineSection::Router(reports) => {
                let failed = reports.iter().filter(|r| r.cause.is_failure()).count();
                match not_listed {
                    Some(n) => writeln!(
                        out,
                        "{lines} OpenShift router (HAProxy) {lines_word}; {failed} failed line{} listed{}",
                        plural(failed),
                        comma(more(
                            n,
                            &format!(" more failed line{}", plural(n as usize)),
                            crate::source::merge::FAILED_ROUTER_KEPT
                        ))
                    )?,
                    None => writeln!(
                        out,
                        "{lines} OpenShift router (HAProxy) {lines_word} ({failed} failed)"
                    )?,
                }
                table_and_blocks(
                    out,
                    reports,
                    &["#", "status", "state", "cause", "route", "request", "line"],
                    width,
                    |r| {
                        vec![
                            Cell::status(status(r.status)),
                            cell(&r.termination).into(),
                            r.cause.id().to_string().into(),
                            cell(r.route.as_deref().unwrap_or("-")).into(),
                            cell(r.request.as_deref().unwrap_or("-")).into(),
                            loc(&r.input, r.line).into(),
                        ]
                    },
                    |out, i, r| {
                        let heading = format!(
                            "Router line {i} · {} · {} · {}",
                            status(r.status),
                            Line(&r.termination),
                            r.cause.id()
                        );
                        let at = loc(&r.input, r.line);
                        let failed = r.cause.is_failure();
                        write_verdict_block(
                            out,
                            &heading,
                            failed,
                            &r.summary,
                            &at,
                            &r.evidence,
                            &r.fix,
                        )
                    },
                )
            }
            LineSection::Knative(reports) => {
                let note = more(
                    not_listed.unwrap_or(0),
                    "",
                    crate::source::merge::FAILED_KNATIVE_KEPT,
                );
                writeln!(
                    out,
                    "{lines} Knative proxy error {lines_word} (activator, queue-proxy){}",
                    if note.is_empty() {
                        note
                    } else {
                        format!("; {note}")
                    }
                )?;
                table_and_blocks(
                    out,
                    reports,
                    &["#", "component", "revision", "error", "time", "line"],
                    width,
                    |r| {
                        vec![
                            r.component.into(),
                            cell(r.revision.as_deref().unwrap_or("-")).into(),
                            r.kind.into(),
                            cell(r.time.as_deref().unwrap_or("-")).into(),
                            loc(&r.input, r.line).into(),
                        ]
                    },
                    |out, i, r| {
                        let heading = format!(
                            "Knative line {i} · {} · {} · {}",
                            r.component,
                            Line(r.revision.as_deref().unwrap_or("-")),
                            r.kind
                        );
                        let at = loc(&r.input, r.line);
                        let mut evidence = vec![format!(
                            "{} logged `{}`{}{}: `{}`",
                            r.component,
                            r.message,
                            r.pod
                                .as_deref()
                                .map(|p| format!(" in pod {p}"))
                                .unwrap_or_default(),
                            r.time
                                .as_deref()
                                .map(|t| format!(" at {t}"))
                                .unwrap_or_default(),
                            r.error
                        )];
                        if let Some(t) = &r.target {
                            evidence.push(format!("the address in the error: {t}"));
                        }
                        write_verdict_block(out, &heading, true, &r.summary, &at, &evidence, &r.fix)
                    },
                )
            }
            LineSection::Epp(reports) => {
                let refused = reports.iter().filter(|r| r.status.is_some()).count();
                match not_listed {
                    Some(n) => writeln!(
                        out,
                        "{lines} endpoint picker {lines_word} (Gateway API Inference Extension); {refused} refusal{} listed{}",
                        plural(refused),
                        comma(more(n, " more", crate::source::merge::FAILED_EPP_KEPT))
                    )?,
                    None => writeln!(
                        out,
                        "{lines} endpoint picker {lines_word} (Gateway API Inference Extension) ({refused} refused)"
                    )?,
                }
                let decision = |r: &meshtrace_analysis::inference::EppReport| match (
                    &r.code,
                    &r.pod,
                    &r.endpoint,
                ) {
                    (Some(c), _, _) => format!("refused: {c}"),
                    (None, Some(p), _) => format!("picked {p}"),
                    (None, None, Some(e)) => format!("picked {e}"),
                    (None, None, None) => "picked".to_string(),
                };
                table_and_blocks(
                    out,
                    reports,
                    &["#", "request id", "decision", "status", "cause", "line"],
                    width,
                    |r| {
                        vec![
                            cell(&r.request_id).into(),
                            cell(&decision(r)).into(),
                            Cell::status(status(r.status)),
                            r.cause.id().to_string().into(),
                            loc(&r.input, r.line).into(),
                        ]
                    },
                    |out, i, r| {
                        let heading = format!(
                            "Picker line {i} · {} · {} · {}",
                            Line(&r.request_id),
                            status(r.status),
                            r.cause.id()
                        );
                        let at = loc(&r.input, r.line);
                        let evidence = vec![
                            format!("the picker's code {}", r.code.as_deref().unwrap_or("-")),
                            format!("follow it: meshtrace trace {}", r.request_id),
                        ];
                        write_verdict_block(
                            out,
                            &heading,
                            r.cause.is_failure(),
                            &r.summary,
                            &at,
                            &evidence,
                            &r.fix,
                        )
                    },
                )
            }
        }
    }
}

/// `, <note>`, or nothing for no note.
fn comma(note: String) -> String {
    if note.is_empty() {
        note
    } else {
        format!(", {note}")
    }
}

/// The table of a [`LineSection`] (its first column the entry's number, then `row`'s cells)
/// and a block per entry (`block` gets its number, from 1).
fn table_and_blocks<T>(
    out: &mut dyn Write,
    items: &[T],
    columns: &[&str],
    width: Option<u16>,
    row: impl Fn(&T) -> Vec<Cell>,
    block: impl Fn(&mut dyn Write, usize, &T) -> io::Result<()>,
) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut t = Grid::new(columns, width);
    for (i, x) in items.iter().enumerate() {
        let mut cells: Vec<Cell> = vec![(i + 1).to_string().into()];
        cells.extend(row(x));
        t.add_row(cells);
    }
    writeln!(out, "{t}")?;
    for (i, x) in items.iter().enumerate() {
        block(out, i + 1, x)?;
    }
    Ok(())
}

/// Where a line is, for the text: `line N`, or `input:N` when there are several inputs.
fn line_ref(multi: bool, input: &str, line: u64) -> String {
    if multi {
        format!("{}:{line}", Line(input))
    } else {
        format!("line {line}")
    }
}

/// One failed or healthy item's block in `explain`'s text: its heading, what happened and, when
/// it failed, the evidence (with where it is) and the fix.
fn write_verdict_block(
    out: &mut dyn Write,
    heading: &str,
    failed: bool,
    summary: &str,
    at: &str,
    evidence: &[String],
    fix: &str,
) -> io::Result<()> {
    writeln!(out)?;
    let kind = if failed { Paint::Failed } else { Paint::Ok };
    writeln!(out, "{}", paint(kind, heading))?;
    writeln!(out, "  What happened: {}", Line(summary))?;
    if !failed {
        return Ok(());
    }
    if !evidence.is_empty() {
        writeln!(out, "  Evidence ({at}):")?;
        for e in evidence {
            writeln!(out, "    - {}", Line(e))?;
        }
    }
    writeln!(out, "  Fix: {}", Line(fix))
}

fn write_skipped(out: &mut dyn Write, set: &LogSet) -> io::Result<()> {
    if set.skipped.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &set.skipped {
        *by_kind.entry(s.kind.as_str()).or_default() += 1;
    }
    let parts: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        "Skipped {} line{}: {}",
        set.skipped.len(),
        plural(set.skipped.len()),
        parts.join(", ")
    )?;
    let malformed: Vec<_> = set.malformed().collect();
    const SHOW: usize = 20;
    for s in malformed.iter().take(SHOW) {
        writeln!(out, "  {}:{}: {}", Line(&s.input), s.line, Line(&s.reason))?;
    }
    if malformed.len() > SHOW {
        writeln!(
            out,
            "  … and {} more malformed lines (see -o json)",
            malformed.len() - SHOW
        )?;
    }
    Ok(())
}

/// Keep the I/O error kind (e.g. a closed pipe) of a serde_json write error.
fn json_io_error(e: serde_json::Error) -> io::Error {
    match e.io_error_kind() {
        Some(kind) => io::Error::from(kind),
        None => io::Error::other(e),
    }
}

/// A table cell holding evidence: one line, unsafe characters escaped.
fn cell(s: &str) -> String {
    safe::line(s).into_owned()
}

/// Input names, comma-separated, each escaped.
fn inputs_list(inputs: &[String]) -> String {
    inputs
        .iter()
        .map(|i| cell(i))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Output format of `trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceOutput {
    /// Hop table, verdict and latency waterfall.
    Table,
    /// The table with request ids, upstreams, clusters and timings.
    Wide,
    /// JSON (`meshtrace.trace/v1`).
    Json,
    /// The same document as YAML.
    Yaml,
    /// OpenTelemetry OTLP/JSON (an `ExportTraceServiceRequest`: one span per hop) for Jaeger,
    /// Tempo or an OTel collector.
    Otlp,
}

/// The value as one escaped line, or `-`.
fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|x| cell(&x.to_string()))
        .unwrap_or_else(|| "-".into())
}

/// Write a trace report.
pub fn write_trace(
    out: &mut dyn Write,
    t: &crate::trace::TraceReport,
    format: TraceOutput,
    width: Option<u16>,
) -> io::Result<()> {
    if format == TraceOutput::Json {
        serde_json::to_writer_pretty(&mut *out, t).map_err(json_io_error)?;
        return writeln!(out);
    }
    if format == TraceOutput::Yaml {
        return yaml::write(out, t);
    }
    if format == TraceOutput::Otlp {
        return otlp::write(out, &otlp::export_request(t, &[]));
    }
    let wide = format == TraceOutput::Wide;
    writeln!(
        out,
        "Request {} — {} hop{}{}",
        Line(&t.query),
        t.hops.len(),
        plural(t.hops.len()),
        if t.request_ids.len() > 1 {
            format!(
                " (x-request-id changed along the path: {})",
                t.request_ids
                    .iter()
                    .map(|i| cell(i))
                    .collect::<Vec<_>>()
                    .join(" → ")
            )
        } else {
            String::new()
        }
    )?;
    // Evidence paths share a long prefix (the bundle's logs/ folder): print it once.
    let files: Vec<&str> = t.hops.iter().map(|h| h.evidence.file.as_str()).collect();
    let prefix = common_dir_prefix(&files);
    if !prefix.is_empty() {
        writeln!(out, "Evidence under {}", Line(&prefix))?;
    }
    let mut header = vec![
        "#", "role", "pod", "dir", "listener", "status", "flags", "details", "ms",
    ];
    if wide {
        header.extend(["self ms", "request id", "upstream", "cluster", "start"]);
    }
    header.push("evidence");
    let mut tab = Grid::new(&header, if wide { None } else { width });
    for h in &t.hops {
        let mark = if h.index == t.origin_hop { "◀ " } else { "" };
        let pod = match (&h.namespace, &h.pod) {
            (Some(ns), Some(p)) => cell(&format!("{ns}/{p}")),
            _ => "-".into(),
        };
        let role = match h.attempt {
            Some(a) => format!("{} (try {a})", Line(&h.role)),
            None => cell(&h.role),
        };
        let mut row: Vec<Cell> = vec![
            Cell::from(format!("{mark}{}", h.index)).whole(),
            role.into(),
            pod.into(),
            cell(&h.direction).into(),
            or_dash(h.listener.as_ref()).into(),
            Cell::status(or_dash(h.status)),
            if h.flags.is_empty() {
                "-".into()
            } else {
                cell(&h.flags.join(",")).into()
            },
            or_dash(h.details.as_ref()).into(),
            or_dash(h.duration_ms).into(),
        ];
        if wide {
            row.extend([
                or_dash(h.self_time_ms).into(),
                or_dash(h.request_id.as_ref()).into(),
                match (&h.upstream_host, &h.upstream_is) {
                    (Some(u), Some(d)) => cell(&format!("{u} = {d}")).into(),
                    (Some(u), None) => cell(u).into(),
                    _ => "-".into(),
                },
                or_dash(h.upstream_cluster.as_ref()).into(),
                or_dash(h.start.as_ref()).into(),
            ]);
        }
        // The pod column already names the pod: show the log file's own name under it.
        let rel = &h.evidence.file[prefix.len()..];
        let shown = match (&h.namespace, &h.pod) {
            (Some(ns), Some(p)) => rel.strip_prefix(&format!("{ns}/{p}/")).unwrap_or(rel),
            _ => rel,
        };
        row.push(format!("{}:{}", Line(shown), h.evidence.line).into());
        tab.add_row(row);
    }
    writeln!(out, "{tab}")?;
    writeln!(out)?;
    let verdict = format!(
        "Verdict: {} {} at hop {}",
        or_dash(t.status),
        t.cause.id(),
        t.origin_hop
    );
    let kind = if t.succeeded {
        Paint::Ok
    } else {
        Paint::Failed
    };
    writeln!(out, "{}", paint(kind, &verdict))?;
    writeln!(out, "  {}", Line(&t.summary))?;
    if !t.evidence.is_empty() {
        writeln!(out, "  Evidence:")?;
        for e in &t.evidence {
            writeln!(out, "    - {}", Line(e))?;
        }
    }
    if !t.citations.is_empty() {
        writeln!(out, "  Configuration:")?;
        for c in &t.citations {
            writeln!(out, "    - {}: {}", Line(&c.object), Line(&c.why))?;
        }
    }
    if !t.succeeded {
        writeln!(out, "  Fix: {}", Line(&t.fix))?;
        if let Some(f) = &t.fix_apply {
            write_fix_yaml(out, f)?;
        }
    }
    write_waterfall(out, t)?;
    if !t.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint(Paint::Heading, "Notes:"))?;
        for n in &t.notes {
            writeln!(out, "  - {}", Line(n))?;
        }
    }
    Ok(())
}

/// A fix's objects after its one-line summary, as YAML flush left so the lines can be copied
/// to `kubectl apply -f -` (every line escaped like any other output).
fn write_fix_yaml(out: &mut dyn Write, f: &meshtrace_analysis::fixes::Fix) -> io::Result<()> {
    writeln!(
        out,
        "  To apply (`kubectl apply -f -`): {}",
        Line(&f.summary)
    )?;
    for l in f.yaml.lines() {
        writeln!(out, "{}", Line(l))?;
    }
    Ok(())
}

/// The longest common prefix of `paths` ending in `/` (empty when a path has no `/` in it).
fn common_dir_prefix(paths: &[&str]) -> String {
    let Some(first) = paths.first() else {
        return String::new();
    };
    let mut end = first.len();
    for p in &paths[1..] {
        end = end.min(
            first
                .bytes()
                .zip(p.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    // Bytes, not `str`: two names may share only the first byte of a character (`café`,
    // `cafè`), and a `/` byte is always a character of its own.
    match first.as_bytes()[..end].iter().rposition(|&b| b == b'/') {
        Some(i) if paths.iter().all(|p| p.len() > i + 1) => first[..=i].to_string(),
        _ => String::new(),
    }
}

/// `ms` of `total` (> 0) milliseconds in columns of `cols`, in 128 bits: a damaged line's
/// duration may be near the largest number.
pub(crate) fn columns(ms: i64, total: i64, cols: i64) -> i64 {
    (i128::from(ms) * i128::from(cols) / i128::from(total.max(1))) as i64
}

/// A small latency waterfall: one bar per hop, offset by its start, as long as its duration.
fn write_waterfall(out: &mut dyn Write, t: &crate::trace::TraceReport) -> io::Result<()> {
    const COLS: i64 = 40;
    let starts: Vec<Option<chrono::DateTime<chrono::FixedOffset>>> = t
        .hops
        .iter()
        .map(|h| {
            h.start
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        })
        .collect();
    let t0 = starts.iter().flatten().min().copied();
    let mut spans = Vec::new();
    for (h, s) in t.hops.iter().zip(&starts) {
        let Some(d) = h.duration_ms else { continue };
        let off = match (s, t0) {
            (Some(s), Some(t0)) => (*s - t0).num_milliseconds().max(0),
            _ => 0,
        };
        spans.push((h, off, i64::try_from(d).unwrap_or(i64::MAX)));
    }
    let total = spans
        .iter()
        .map(|(_, o, d)| o.saturating_add(*d))
        .max()
        .unwrap_or(0);
    if spans.is_empty() || total <= 0 {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        paint(Paint::Heading, &format!("Latency (0 … {total} ms):"))
    )?;
    let label_w = spans
        .iter()
        .map(|(h, _, _)| safe::line(&h.role).chars().count())
        .max()
        .unwrap_or(0);
    for (h, off, d) in spans {
        let start_col = columns(off, total, COLS);
        let len = columns(d, total, COLS).max(1).min(COLS - start_col).max(1);
        let bar = format!(
            "{}{}{}",
            " ".repeat(usize::try_from(start_col).unwrap_or(0)),
            "█".repeat(usize::try_from(len).unwrap_or(1)),
            " ".repeat(usize::try_from(COLS - start_col - len).unwrap_or(0))
        );
        writeln!(
            out,
            "  {:>2} {:<label_w$} |{bar}| {d}",
            h.index,
            Line(&h.role)
        )?;
    }
    Ok(())
}

/// Write the failures triage.
/// The first line of `failures`: how many failed of how many read. Successful records of large
/// logs are counted line by line (one per proxy on a request's path), not as requests.
pub fn failures_headline(r: &crate::failures::FailuresReport) -> String {
    let groups = format!("{} group{}", r.groups.len(), plural(r.groups.len()));
    if r.successful_records == 0 {
        return format!(
            "{} failed of {} request{} and connection{} in {groups}",
            r.failed,
            r.requests,
            plural(r.requests),
            plural(r.requests),
        );
    }
    format!(
        "{} failed request{} and connection{} in {groups}, of {} access-log record{} read ({} successful: in large logs successes are counted line by line, one per proxy on a request's path)",
        r.failed,
        plural(r.failed),
        plural(r.failed),
        r.records_read,
        plural(r.records_read as usize),
        r.successful_records,
    )
}

pub fn write_failures(
    out: &mut dyn Write,
    r: &crate::failures::FailuresReport,
    format: OutputFormat,
    width: Option<u16>,
) -> io::Result<()> {
    if format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut *out, r).map_err(json_io_error)?;
        return writeln!(out);
    }
    if format == OutputFormat::Yaml {
        return yaml::write(out, r);
    }
    let width = if format == OutputFormat::Wide {
        None
    } else {
        width
    };
    writeln!(out, "{}", failures_headline(r))?;
    if !r.groups.is_empty() {
        let mut t = Grid::new(
            &[
                "#",
                "count",
                "status",
                "cause",
                "origin",
                "target",
                "first seen",
                "last seen",
                "examples",
            ],
            width,
        );
        for (i, g) in r.groups.iter().enumerate() {
            let examples = if g.kind == "connection" {
                g.clients
                    .iter()
                    .map(|c| match (&c.pod, c.has_sidecar) {
                        (Some(p), Some(false)) => format!("{} (no sidecar)", Line(p)),
                        (Some(p), _) => cell(p),
                        (None, _) => cell(&c.address),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                inputs_list(&g.example_request_ids)
            };
            t.add_row(vec![
                (i + 1).to_string().into(),
                g.count.to_string().into(),
                Cell::status(or_dash(g.status)),
                g.cause.id().to_string().into(),
                cell(&g.origin_role).into(),
                if g.kind == "connection" {
                    format!("listener {}", Line(&g.target)).into()
                } else {
                    cell(&g.target).into()
                },
                or_dash(g.first_seen.as_deref().map(short_time)).into(),
                or_dash(g.last_seen.as_deref().map(short_time)).into(),
                examples.into(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    for (i, g) in r.groups.iter().enumerate() {
        writeln!(out)?;
        writeln!(
            out,
            "{}. {} × {} {} at {} ({})",
            i + 1,
            g.count,
            or_dash(g.status),
            g.cause.id(),
            Line(&g.origin_place()),
            Line(&g.example_evidence)
        )?;
        writeln!(out, "   {}", Line(&g.summary))?;
        writeln!(out, "   Fix: {}", Line(&g.fix))?;
        if let Some(q) = g
            .example
            .as_ref()
            .map(|t| &t.query)
            .or(g.example_request_ids.first())
        {
            writeln!(
                out,
                "   Trace one: {}",
                safe::command(&["meshtrace", "trace"], &[], &[q])
            )?;
        }
    }
    if !r.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint(Paint::Heading, "Notes:"))?;
        for n in &r.notes {
            writeln!(out, "  - {}", Line(n))?;
        }
    }
    Ok(())
}

/// `2024-05-01T10:00:00.123Z` → `05-01 10:00:00.123` (the table column is narrow).
fn short_time(t: &str) -> String {
    match (t.get(5..10), t.get(11..23)) {
        (Some(d), Some(h)) => format!("{d} {h}"),
        _ => t.to_string(),
    }
}

/// Write doctor findings.
pub fn write_doctor(
    out: &mut dyn Write,
    findings: &[crate::doctor::Finding],
    problems: &[String],
    format: OutputFormat,
    width: Option<u16>,
) -> io::Result<()> {
    if matches!(format, OutputFormat::Json | OutputFormat::Yaml) {
        let v = serde_json::json!({"schema": "meshtrace.doctor/v1", "findings": findings, "skipped": problems});
        if format == OutputFormat::Yaml {
            return yaml::write(out, &v);
        }
        serde_json::to_writer_pretty(&mut *out, &v).map_err(json_io_error)?;
        return writeln!(out);
    }
    let width = if format == OutputFormat::Wide {
        None
    } else {
        width
    };
    let count = |s: crate::doctor::Severity| findings.iter().filter(|f| f.severity == s).count();
    writeln!(
        out,
        "{} finding{}: {} error, {} warning, {} info",
        findings.len(),
        plural(findings.len()),
        count(crate::doctor::Severity::Error),
        count(crate::doctor::Severity::Warning),
        count(crate::doctor::Severity::Info)
    )?;
    if !findings.is_empty() {
        let mut t = Grid::new(&["#", "severity", "id", "check", "finding"], width);
        for (i, f) in findings.iter().enumerate() {
            let sev = serde_json::to_value(f.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let sev_paint = match f.severity {
                crate::doctor::Severity::Error => Some(Paint::Bad),
                crate::doctor::Severity::Warning => Some(Paint::Warn),
                crate::doctor::Severity::Info => None,
            };
            t.add_row(vec![
                (i + 1).to_string().into(),
                Cell::painted(sev, sev_paint),
                f.id.to_string().into(),
                f.check.to_string().into(),
                cell(&f.title).into(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    for (i, f) in findings.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "{}. [{}] {}", i + 1, f.id, Line(&f.title))?;
        writeln!(out, "   Objects: {}", inputs_list(&f.objects))?;
        writeln!(out, "   Evidence: {}", Line(&f.evidence))?;
        writeln!(out, "   Fix: {}", Line(&f.fix))?;
    }
    if !problems.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            paint(Paint::Heading, "Skipped parts of the evidence:")
        )?;
        for p in problems {
            writeln!(out, "  - {}", Line(p))?;
        }
    }
    Ok(())
}
