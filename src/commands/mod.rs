//! One module per subcommand: its clap arguments and its `run`, which returns the exit code.
//!
//! To add a command: a module here with `pub struct XArgs` (clap::Args) and
//! `pub fn run(args: XArgs) -> anyhow::Result<i32>`, then one variant in `cli::Command` and one
//! line in `cli::dispatch`.

pub mod collect;
pub mod doctor;
pub mod explain;
pub mod failures;
pub mod formats;
pub mod proxy_config;
pub mod report;
pub mod route_check;
pub mod trace;
