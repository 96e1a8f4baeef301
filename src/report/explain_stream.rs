//! The skipped-lines summary of `explain`'s text output from counts and a few examples, so a
//! command never has to keep every skipped line to print it.

use std::collections::BTreeMap;
use std::io::{self, Write};

use meshtrace_analysis::model::SkippedLine;

use super::{Line, plural};

/// Write `Skipped N lines: …` (counts by kind) and the first malformed lines with their file
/// and line, the way the in-memory `explain` ends; nothing when no line was skipped.
/// `malformed` holds the examples kept (in input order); the count of the others comes from
/// `skipped["malformed"]`.
pub fn write_skipped_summary(
    out: &mut dyn Write,
    skipped: &BTreeMap<String, u64>,
    malformed: &[SkippedLine],
) -> io::Result<()> {
    let total: u64 = skipped.values().sum();
    if total == 0 {
        return Ok(());
    }
    writeln!(out)?;
    let parts: Vec<String> = skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        "Skipped {total} line{}: {}",
        plural(usize::try_from(total).unwrap_or(usize::MAX)),
        parts.join(", ")
    )?;
    for s in malformed {
        writeln!(out, "  {}:{}: {}", Line(&s.input), s.line, Line(&s.reason))?;
    }
    let n = skipped.get("malformed").copied().unwrap_or(0);
    if n > malformed.len() as u64 {
        writeln!(
            out,
            "  … and {} more malformed lines (see -o json)",
            n - malformed.len() as u64
        )?;
    }
    Ok(())
}
