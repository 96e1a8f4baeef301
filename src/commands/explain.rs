//! `meshtrace explain`: explain access-log lines from files or stdin.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::cli::{EXIT_ERROR, EXIT_NOTHING, EXIT_OK, format_spec};
use crate::explain::explain;
use crate::input::{InputSource, LogSet, read_input};
use crate::report::{OutputFormat, write_explain};

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
