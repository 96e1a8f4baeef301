//! `meshtrace proxy-config`'s printer: istioctl-style tables, or the typed configuration as
//! `meshtrace.proxy-config/v1` JSON or YAML.

use std::io::Write;

use anyhow::Result;

use super::Line;
use super::safe::line;
use crate::proxyconfig::Table;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PcOutput {
    /// istioctl's current table layout.
    Table,
    /// The table (its values are never cut: the same as `table`, for scripts that pass
    /// `-o wide` to every command).
    Wide,
    /// Summary layout (istioctl 1.6: listeners `ADDRESS PORT TYPE`, routes `NAME VIRTUAL HOSTS`).
    Short,
    /// The typed configuration as JSON.
    Json,
    /// The typed configuration as YAML.
    Yaml,
}

/// The JSON/YAML document.
pub fn write_document(
    out: &mut dyn Write,
    format: PcOutput,
    doc: &serde_json::Value,
) -> Result<()> {
    super::write_json_or_yaml(out, format == PcOutput::Yaml, doc)
}

/// The bootstrap summary lines (if any), then each table, separated by blank lines.
pub fn write_tables(
    out: &mut dyn Write,
    bootstrap: &[(String, String)],
    tables: &[Table],
    short: bool,
) -> Result<()> {
    let mut first = true;
    for (k, v) in bootstrap {
        writeln!(out, "{:<21}{}", format!("{}:", Line(k)), Line(v))?;
        first = false;
    }
    for t in tables {
        if !first {
            writeln!(out)?;
        }
        first = false;
        if short && t.columns == ["NAME", "VIRTUAL HOSTS"] {
            writeln!(
                out,
                "NOTE: This output only contains named route configurations."
            )?;
        }
        // Names come from the config dump: each cell one line, escaped, before the columns are
        // measured.
        let safe = Table {
            columns: t.columns.clone(),
            rows: t
                .rows
                .iter()
                .map(|r| r.iter().map(|c| line(c).into_owned()).collect())
                .collect(),
        };
        write!(out, "{}", safe.render())?;
    }
    out.flush()?;
    Ok(())
}
