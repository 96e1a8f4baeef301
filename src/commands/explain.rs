//! `meshtrace explain`: explain access-log lines from files or stdin.

use std::io::Write;

use anyhow::{Context as _, Result};
use meshtrace_parsers::detect::FormatSpec;

use crate::commands::{EXIT_ERROR, EXIT_NOTHING, EXIT_OK, format_spec};
use crate::diagnose::Context;
use crate::explain::explain;
use crate::report::json::{record_json, skipped_json};
use crate::report::{ExplainStream, OutputFormat, write_explain};
use crate::source::input::{InputSource, STREAM_MIN_BYTES, read_input, read_streamed};
use crate::source::merge::{Merged, StreamInput};
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
}

/// Run `explain`.
pub fn run(a: ExplainArgs) -> Result<i32> {
    let spec = format_spec(&a.log_format)?;
    let sources: Vec<InputSource> = if a.files.is_empty() {
        vec![InputSource::Stdin]
    } else {
        a.files.iter().map(|f| InputSource::from_arg(f)).collect()
    };
    // Large files: explained as requests complete, with flat memory.
    let files: Vec<&std::path::Path> = sources
        .iter()
        .filter_map(|s| match s {
            InputSource::File(p) => Some(p.as_path()),
            InputSource::Stdin => None,
        })
        .collect();
    let total: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if files.len() == sources.len() && total >= STREAM_MIN_BYTES {
        return run_streaming(&files, &spec, a.output);
    }
    let mut set = LogSet::default();
    let mut failed_inputs = 0;
    for s in &sources {
        if let Err(e) = read_input(s, &spec, &mut set) {
            // A bad input is a message, not an abort: the others are still analysed.
            eprintln!("meshtrace: {e}");
            failed_inputs += 1;
        }
    }
    if failed_inputs == sources.len() {
        anyhow::bail!("no input could be read");
    }
    let report = explain(&set);
    let mut out = crate::report::stdout();
    let width = out.width(160);
    write_explain(&mut out, &set, &report, a.output, width)?;
    out.flush()?;
    let malformed = set.malformed().count();
    if malformed > 0 && a.output == OutputFormat::Json {
        eprintln!("meshtrace: {malformed} malformed line(s); see \"skipped\" in the output");
    }
    if set.records.is_empty() {
        eprintln!(
            "meshtrace: no access-log record found in {} ({} line(s) skipped); if the proxy uses a custom format, pass it with --log-format",
            set.inputs.join(", "),
            set.skipped.len()
        );
        return Ok(EXIT_NOTHING);
    }
    Ok(if failed_inputs > 0 {
        EXIT_ERROR
    } else {
        EXIT_OK
    })
}

/// Passes on the records and skipped lines of the second reading (JSON `records`/`skipped`).
struct JsonSink<'s, 'o> {
    stream: &'s mut ExplainStream<'o>,
    /// `skipped` entries, one JSON value per line, written after the records.
    skipped: std::io::BufWriter<std::fs::File>,
    records: u64,
    error: Option<std::io::Error>,
}

impl LineSink for JsonSink<'_, '_> {
    fn record(&mut self, line: LogLine) {
        self.records += 1;
        if self.error.is_none()
            && let Err(e) = self.stream.value(&record_json(&line))
        {
            self.error = Some(e);
        }
    }
    fn skipped(&mut self, line: SkippedLine) {
        if self.error.is_none()
            && let Err(e) = serde_json::to_writer(&mut self.skipped, &skipped_json(&line))
                .map_err(std::io::Error::other)
                .and_then(|()| self.skipped.write_all(b"\n"))
        {
            self.error = Some(e);
        }
    }
    fn ok_records(&mut self, _: u64) {}
}

/// `explain` on large files: requests are settled and written as they complete (see
/// `crate::source::merge::Settler`); for JSON the files are read a second time for `records` and
/// `skipped`.
fn run_streaming(
    files: &[&std::path::Path],
    spec: &FormatSpec,
    output: OutputFormat,
) -> Result<i32> {
    let inputs: Vec<StreamInput> = files
        .iter()
        .map(|p| {
            let path = p.to_path_buf();
            StreamInput {
                name: p.display().to_string(),
                pod: None,
                spec: spec.clone(),
                size: std::fs::metadata(p).ok().map(|m| m.len()),
                open: Box::new(move || {
                    std::fs::File::open(&path).map(|f| Box::new(f) as Box<dyn std::io::Read + Send>)
                }),
                keep_all: true,
            }
        })
        .collect();
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::report::stdout());
    let mut stream = ExplainStream::start(&mut out, output, files.len() > 1)?;
    let mut merged = Merged::start(inputs);
    let mut settler = Settler::new(Context::default());
    let mut records = 0u64;
    let mut error: Option<std::io::Error> = None;
    let mut on = |s: Settled<'_>, _: &Context| {
        if error.is_none()
            && let Err(e) = stream.request(s.report)
        {
            error = Some(e);
        }
    };
    for l in merged.by_ref() {
        records += 1;
        settler.push(l, &mut on);
    }
    settler.finish(&mut on);
    if let Some(e) = error {
        return Err(e.into());
    }
    for p in &merged.problems {
        eprintln!("meshtrace: {p}");
    }
    if output == OutputFormat::Json {
        stream.next_array("records")?;
        let tmp =
            tempfile::tempfile().context("cannot create a temporary file for skipped lines")?;
        let mut sink = JsonSink {
            stream: &mut stream,
            skipped: std::io::BufWriter::new(tmp),
            records: 0,
            error: None,
        };
        for p in files {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot reopen {}", p.display()))?;
            let size = f.metadata().ok().map(|m| m.len());
            read_streamed(
                f,
                &p.display().to_string(),
                None,
                spec,
                size,
                true,
                &mut sink,
            )?;
            if let Some(e) = sink.error.take() {
                return Err(e.into());
            }
        }
        let tmp = sink.skipped.into_inner().map_err(|e| e.into_error())?;
        stream.next_array("skipped")?;
        let mut lines = std::io::BufReader::new(tmp);
        std::io::Seek::seek(&mut lines, std::io::SeekFrom::Start(0))?;
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut lines, &mut line)? > 0 {
            stream.raw_value(line.trim_end())?;
            line.clear();
        }
        stream.end_json()?;
    } else {
        stream.end_text(records, &names, &merged.skipped, &merged.malformed_examples)?;
    }
    out.flush()?;
    let malformed = merged.malformed();
    if malformed > 0 && output == OutputFormat::Json {
        eprintln!("meshtrace: {malformed} malformed line(s); see \"skipped\" in the output");
    }
    if records == 0 {
        let skipped: u64 = merged.skipped.values().sum();
        eprintln!(
            "meshtrace: no access-log record found in {} ({skipped} line(s) skipped); if the proxy uses a custom format, pass it with --log-format",
            names.join(", ")
        );
        return Ok(EXIT_NOTHING);
    }
    Ok(if merged.problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}
