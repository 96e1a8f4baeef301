//! Command-line interface: arguments (clap) and dispatch to the commands. Returns exit codes.

use std::io::{IsTerminal, Write};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use meshtrace_parsers::detect::FormatSpec;

use crate::explain::explain;
use crate::input::{InputSource, LogSet, read_input};
use crate::report::{OutputFormat, write_explain};

/// Exit code: the command ran and found what it looked for.
pub const EXIT_OK: i32 = 0;
/// Exit code: `explain` found no access-log record; `trace`: the request failed.
pub const EXIT_NOTHING: i32 = 1;
/// Exit code: bad arguments or unreadable input.
pub const EXIT_ERROR: i32 = 2;

/// Why one request to a model failed, and at which hop.
#[derive(Debug, Parser)]
#[command(name = "meshtrace", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain access-log lines: group them by request and say what each status means.
    ///
    /// Reads Envoy/Istio access logs in any built-in format (auto-detected per input), JSON,
    /// `kubectl logs --timestamps`, CRI and docker json-file lines, and lines pasted into a ticket
    /// (wrapped over several lines, the leading `[START_TIME] "` cut off).
    Explain(ExplainArgs),
    /// Rebuild one request's hop-by-hop path and name the hop and the cause of its status.
    ///
    /// START is an x-request-id (it may change at a gateway: the path is followed across the
    /// change), a client `ip:port`, or a client IP (its latest failed request). Evidence comes
    /// from `--bundle` and/or log files. Exit code: 0 the request succeeded, 1 it failed, 2 it
    /// was not found or the input was unusable.
    Trace(TraceArgs),
    /// List the built-in access-log formats.
    Formats,
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    /// Log files to read; `-` or nothing reads standard input.
    files: Vec<String>,
    /// Log format: `auto`, a built-in name (see `meshtrace formats`), `json`, an Envoy format
    /// string with %OPERATORS%, a JSON mapping {"key": "%OPERATOR%"}, or @FILE holding one.
    #[arg(long, value_name = "FMT", default_value = "auto")]
    log_format: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: OutputFormat,
}

#[derive(Debug, clap::Args)]
struct TraceArgs {
    /// x-request-id, client ip:port, or client IP.
    start: String,
    /// Plain log files to read in addition to (or instead of) a bundle.
    files: Vec<String>,
    /// Evidence bundle: a folder or .tar.gz (see docs/bundle.md), or an istioctl bug-report.
    #[arg(long, value_name = "DIR|FILE")]
    bundle: Option<std::path::PathBuf>,
    /// Log format for every log (overrides the bundle manifest): see `explain --log-format`.
    #[arg(long, value_name = "FMT")]
    log_format: Option<String>,
    /// Keep Knative and kubelet probe requests (dropped by default).
    #[arg(long)]
    include_probes: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: crate::report::TraceOutput,
}

/// Parse arguments, run, and return the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // `meshtrace … | head` closing the pipe early is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return EXIT_OK;
            }
            eprintln!("meshtrace: error: {e:#}");
            EXIT_ERROR
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Explain(a) => cmd_explain(a),
        Command::Trace(a) => cmd_trace(a),
        Command::Formats => cmd_formats(),
    }
}

/// Resolve a `--log-format` value (reading `@FILE`).
pub fn format_spec(value: &str) -> Result<FormatSpec> {
    let text = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read log format file {path}"))?,
        None => value.to_string(),
    };
    FormatSpec::parse(&text).with_context(|| format!("--log-format {value:?}"))
}

fn cmd_explain(a: ExplainArgs) -> Result<i32> {
    let spec = format_spec(&a.log_format)?;
    let sources: Vec<InputSource> = if a.files.is_empty() {
        vec![InputSource::Stdin]
    } else {
        a.files.iter().map(|f| InputSource::from_arg(f)).collect()
    };
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
    let stdout = std::io::stdout();
    let width = if stdout.is_terminal() {
        None
    } else {
        Some(160)
    };
    let mut out = stdout.lock();
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

fn cmd_trace(a: TraceArgs) -> Result<i32> {
    if a.bundle.is_none() && a.files.is_empty() {
        anyhow::bail!(
            "no evidence: give --bundle DIR|FILE.tar.gz and/or log files (`-` for stdin)"
        );
    }
    let spec = a.log_format.as_deref().map(format_spec).transpose()?;
    let ev = crate::evidence::load(a.bundle.as_deref(), &a.files, spec.as_ref())?;
    let start = crate::correlate::Start::parse(&a.start);
    let Some(report) = crate::trace::trace(&ev, &a.start, &start, a.include_probes) else {
        for p in &ev.problems {
            eprintln!("meshtrace: skipped: {p}");
        }
        let near: Vec<&str> = ev
            .logs
            .records
            .iter()
            .filter_map(|l| l.record.request_id())
            .filter(|id| {
                a.start.len() >= 4
                    && (id.starts_with(&a.start[..4]) || id.contains(a.start.as_str()))
            })
            .take(3)
            .collect();
        anyhow::bail!(
            "{} not found in {} access-log record(s) of {} log(s){}",
            a.start,
            ev.logs.records.len(),
            ev.logs.inputs.len(),
            if near.is_empty() {
                String::new()
            } else {
                format!("; similar request ids: {}", near.join(", "))
            }
        );
    };
    let stdout = std::io::stdout();
    let width = if stdout.is_terminal() {
        None
    } else {
        Some(200)
    };
    let mut out = stdout.lock();
    crate::report::write_trace(&mut out, &report, a.output, width)?;
    out.flush()?;
    Ok(if report.succeeded {
        EXIT_OK
    } else {
        EXIT_NOTHING
    })
}

fn cmd_formats() -> Result<i32> {
    let mut out = std::io::stdout().lock();
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
    Ok(EXIT_OK)
}
