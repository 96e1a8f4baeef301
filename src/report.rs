//! Rendering for people (tables, text) and machines (JSON). The only layer that writes output.

use std::collections::BTreeMap;
use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets};

use crate::explain::{ExplainReport, to_json};
use crate::input::LogSet;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables and text for people.
    Table,
    /// JSON for machines.
    Json,
}

fn new_table(width: Option<u16>) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(w) = width {
        t.set_width(w);
    }
    t
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
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &to_json(set, report))
                .map_err(json_io_error)?;
            writeln!(out)
        }
        OutputFormat::Table => write_explain_table(out, set, report, width),
    }
}

fn write_explain_table(
    out: &mut dyn Write,
    set: &LogSet,
    report: &ExplainReport,
    width: Option<u16>,
) -> io::Result<()> {
    let multi = set.inputs.len() > 1;
    let loc = |input: &str, line: u64| {
        if multi {
            format!("{input}:{line}")
        } else {
            format!("line {line}")
        }
    };
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
        set.inputs.join(", ")
    )?;
    if !report.requests.is_empty() {
        let mut t = new_table(width);
        t.set_header(vec![
            "#",
            "request id",
            "status",
            "cause",
            "origin",
            "lines",
        ]);
        for (i, r) in report.requests.iter().enumerate() {
            t.add_row(vec![
                (i + 1).to_string(),
                r.request_id.clone().unwrap_or_else(|| "-".into()),
                r.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.cause.id().to_string(),
                loc(&r.origin_input, r.origin_line),
                r.lines
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    for (i, r) in report.requests.iter().enumerate() {
        writeln!(out)?;
        writeln!(
            out,
            "Request {} · {} · {} · {}",
            i + 1,
            r.request_id.as_deref().unwrap_or("(no request id)"),
            r.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            r.cause.id()
        )?;
        writeln!(out, "  What happened: {}", r.summary)?;
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
                    h.hop,
                    mark
                )?;
            }
        }
        if !r.evidence.is_empty() {
            writeln!(out, "  Evidence ({}):", loc(&r.origin_input, r.origin_line))?;
            for e in &r.evidence {
                writeln!(out, "    - {e}")?;
            }
        }
        writeln!(out, "  Fix: {}", r.fix)?;
    }
    write_skipped(out, set)
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
        writeln!(out, "  {}:{}: {}", s.input, s.line, s.reason)?;
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

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
