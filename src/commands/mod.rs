//! One module per subcommand: its clap arguments and its `run`, which returns the exit code.
//!
//! To add a command: a module here with `pub struct XArgs` (clap::Args) and
//! `pub fn run(args: XArgs) -> anyhow::Result<i32>`, then one variant in `cli::Command` and one
//! line in `cli::dispatch`.

use anyhow::{Context as _, Result};
use meshtrace_parsers::detect::FormatSpec;

pub mod collect;
pub mod doctor;
pub mod explain;
pub mod failures;
pub mod formats;
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

/// Resolve a `--log-format` value (reading `@FILE`).
pub fn format_spec(value: &str) -> Result<FormatSpec> {
    let text = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read log format file {path}"))?,
        None => value.to_string(),
    };
    FormatSpec::parse(&text).with_context(|| format!("--log-format {value:?}"))
}
