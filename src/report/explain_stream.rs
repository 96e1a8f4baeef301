//! Pieces of `explain`'s streamed output: one element of the document's arrays in the bytes it
//! is written with (so reader threads can serialise records into a file while the requests
//! are written, see `commands/explain.rs`), and the skipped-lines summary of the text output
//! from counts and a few examples, so a command never has to keep every skipped line to print
//! it.

use std::collections::BTreeMap;
use std::io::{self, Write};

use meshtrace_analysis::model::SkippedLine;

use super::{Line, plural};

/// Append one element of a `requests`, `records` or `skipped` array as the document writes it:
/// JSON `,\n    {…}` (the stream drops the `,` of an array's first element), YAML `\n- …`
/// (the element's lines, without the last newline).
pub fn element<T: serde::Serialize + ?Sized>(
    yaml: bool,
    v: &T,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    if yaml {
        let item = super::yaml::seq_item(v)?;
        buf.push(b'\n');
        buf.extend_from_slice(item.trim_end_matches('\n').as_bytes());
        return Ok(());
    }
    buf.extend_from_slice(b",\n    ");
    super::compact::to_vec(buf, v).map_err(io::Error::other)
}

/// [`element`] for JSON, and whether the sanitiser would leave the element as it is
/// ([`super::compact::to_vec_checked`]): such elements can be written with
/// `SanitizingSpool::write_clean`, without a second look at their bytes.
pub fn json_element_checked<T: serde::Serialize + ?Sized>(
    v: &T,
    keys: &mut super::safe::KeyChecks,
    buf: &mut Vec<u8>,
) -> io::Result<bool> {
    checked_element(buf, |buf| super::compact::to_vec_checked(buf, keys, v))
}

/// An element of a JSON array after its `,` and indentation, written by `write`, which says
/// whether the sanitiser would leave it as it is.
fn checked_element(
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<bool, super::compact::Error>,
) -> io::Result<bool> {
    buf.extend_from_slice(b",\n    ");
    write(buf).map_err(io::Error::other)
}

/// [`json_element_checked`] for a record ([`super::json::RecordJson`]), by the record writer
/// of its own ([`super::json::record_checked`]): the same bytes and the same verdict, faster.
pub fn record_element_checked(
    l: &meshtrace_analysis::model::LogLine,
    keys: &mut super::safe::KeyChecks,
    buf: &mut Vec<u8>,
) -> io::Result<bool> {
    checked_element(buf, |buf| super::json::record_checked(l, keys, buf))
}

/// [`json_element_checked`] for a request, by the request writer of its own
/// ([`super::json::request_checked`]): the same bytes and the same verdict, faster.
pub fn request_element_checked(
    r: &crate::explain::RequestReport,
    keys: &mut super::safe::KeyChecks,
    buf: &mut Vec<u8>,
) -> io::Result<bool> {
    checked_element(buf, |buf| super::json::request_checked(r, keys, buf))
}

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
