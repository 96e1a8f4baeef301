//! `meshtrace doctor`: static checks of the serving path in a bundle.

use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};

use crate::cli::{EXIT_NOTHING, EXIT_OK};
use crate::doctor::{CHECKS, Scope, Severity, doctor};
use crate::report::{OutputFormat, write_doctor};

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Only this InferenceService (and the pods serving it).
    pub isvc: Option<String>,
    /// Only this namespace.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Evidence bundle: a folder or .tar.gz (see docs/bundle.md), or an istioctl bug-report.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// List the checks and exit.
    #[arg(long)]
    pub list: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Run `doctor`. Exit 0 when no warning or error was found, 1 otherwise.
pub fn run(a: DoctorArgs) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    if a.list {
        for (id, name, what) in CHECKS {
            writeln!(out, "{id}  {name:<28} {what}")?;
        }
        return Ok(EXIT_OK);
    }
    let Some(bundle) = a.bundle.as_deref() else {
        bail!("no evidence: give --bundle DIR|FILE.tar.gz (collect one with `meshtrace collect`)");
    };
    let ev = crate::evidence::load(Some(bundle), &[], None)?;
    let findings = doctor(
        &ev.objects,
        &ev.topology,
        &Scope {
            namespace: a.namespace.clone(),
            isvc: a.isvc.clone(),
        },
    );
    let width = if std::io::stdout().is_terminal() {
        None
    } else {
        Some(200)
    };
    write_doctor(&mut out, &findings, &ev.problems, a.output, width)?;
    out.flush()?;
    Ok(
        if findings.iter().any(|f| f.severity <= Severity::Warning) {
            EXIT_NOTHING
        } else {
            EXIT_OK
        },
    )
}
