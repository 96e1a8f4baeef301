//! One module per subcommand: its clap arguments and its `run`, which returns the exit code.
//!
//! To add a command: a module here with `pub struct XArgs` (clap::Args) and
//! `pub fn run(args: XArgs) -> anyhow::Result<i32>`, then one variant in `cli::Command` and one
//! line in `cli::dispatch`.

use anyhow::{Context as _, Result};
use meshtrace_parsers::detect::FormatSpec;

pub mod collect;
pub mod completions;
pub mod describe;
pub mod doctor;
pub mod explain;
pub mod failures;
pub mod formats;
pub mod gather;
pub mod loki;
pub mod proxy_config;
pub mod report;
pub mod route_check;
pub mod trace;

/// Exit code: the command ran and found what it looked for (every exit code is defined here;
/// `main` exits with what `cli::run` returns).
pub const EXIT_OK: i32 = 0;
/// Exit code: `explain` found no access-log record; `trace`: the request failed.
pub const EXIT_NOTHING: i32 = 1;
/// Exit code: bad arguments or unreadable input.
pub const EXIT_ERROR: i32 = 2;

/// Check the files named on the command line before reading anything: each must be `-`
/// (standard input) or a readable file. A typo or a folder is an error (exit 2), not an empty
/// result.
pub fn check_files(files: &[String]) -> Result<()> {
    for f in files {
        if f == "-" {
            continue;
        }
        let p = std::path::Path::new(f);
        match std::fs::metadata(p) {
            Err(e) => anyhow::bail!("cannot read {f}: {}; check the path", io_reason(&e)),
            Ok(m) if m.is_dir() => anyhow::bail!(
                "{f} is a folder, not a log file; pass the log files in it, or `--bundle {f}` if it is an evidence bundle"
            ),
            // A named pipe (`<(kubectl logs …)`, a FIFO) is not opened here: opening and
            // closing it would throw away what its writer sent before the real read.
            Ok(m) if !m.is_file() => {}
            Ok(_) => {
                let file = match std::fs::File::open(p) {
                    Ok(file) => file,
                    Err(e) => {
                        anyhow::bail!("cannot read {f}: {}; check its permissions", io_reason(&e))
                    }
                };
                if let Some(kind) = crate::source::input::archive_kind(file) {
                    anyhow::bail!(
                        "{f} is a {kind} archive, not a log file; read it with `--bundle {f}` (a meshtrace bundle, an istioctl bug-report or a must-gather), or extract it and pass its log files"
                    );
                }
            }
        }
    }
    Ok(())
}

/// An I/O error's reason without Rust's `(os error N)` suffix.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The error for evidence that holds no access-log record at all: what was read, why nothing
/// counted, and what to do. `notes` are the reader's remarks (malformed lines, skipped inputs).
pub fn no_access_log(inputs: &[String], notes: &[String]) -> anyhow::Error {
    // The name comes from the evidence: its line breaks are escaped, so that only this
    // message's own notes start lines of their own (see `report::error`).
    use crate::source::{one_line, push_note};
    let what = match inputs.len() {
        0 => "the evidence".to_string(),
        1 => one_line(&inputs[0]),
        n => format!("{n} logs ({}, …)", one_line(&inputs[0])),
    };
    let mut m = format!(
        "no access-log line in {what}: check that these are Envoy or ztunnel access logs, give their format with --log-format, or run `meshtrace explain FILE` to see why each line was not read"
    );
    for n in notes.iter().take(5) {
        push_note(&mut m, n);
    }
    anyhow::anyhow!(m)
}

/// `--status` values: comma-separated `4xx`/`5xx` classes or three-digit codes, or `0` (a TCP
/// connection, or a request that got no response).
pub fn parse_status(v: &str) -> std::result::Result<String, String> {
    for part in v.split(',') {
        let p = part.trim();
        let b = p.as_bytes();
        let ok = p == "0"
            || (b.len() == 3
                && (b'1'..=b'5').contains(&b[0])
                && ((b[1].is_ascii_digit() && b[2].is_ascii_digit())
                    || b[1..].eq_ignore_ascii_case(b"xx")));
        if !ok {
            return Err(format!(
                "{p:?} is not a status: use classes like 4xx or 5xx, codes like 403 or 503, or 0, comma-separated"
            ));
        }
    }
    Ok(v.to_ascii_lowercase())
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
