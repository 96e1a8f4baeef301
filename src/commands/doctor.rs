//! `meshtrace doctor`: static checks of the serving path in a bundle.

use std::io::Write;

use anyhow::Result;

use crate::commands::{EXIT_NOTHING, EXIT_OK};
use crate::doctor::{CHECKS, Scope, Severity, doctor};
use crate::report::{OutputFormat, write_doctor};

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Only this InferenceService (and the pods serving it).
    pub isvc: Option<String>,
    /// Evidence bundle: a folder or .tar.gz written by `meshtrace collect` (its layout:
    /// docs/bundle.md in meshtrace's source repository), or an istioctl bug-report archive.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// List the checks and exit.
    #[arg(long)]
    pub list: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Without --bundle, the objects are collected live from the cluster; `-n` also limits the
    /// checks to that namespace.
    #[command(flatten)]
    pub live: crate::commands::collect::LiveArgs,
}

/// Run `doctor`. Exit 0 when no warning or error was found, 1 otherwise.
pub fn run(a: DoctorArgs) -> Result<i32> {
    let mut out = crate::report::stdout();
    if a.list {
        crate::report::write_check_list(&mut out, CHECKS)?;
        return Ok(EXIT_OK);
    }
    // No bundle: collect one from the cluster, then the same offline checks.
    let (_live, bundle) =
        crate::commands::collect::bundle_or_live(a.bundle.as_deref(), false, &a.live)?;
    let bundle = bundle.as_deref();
    let ev = crate::source::load::load(bundle, &[], None)?;
    let scope = Scope {
        namespace: a.live.namespace.first().cloned(),
        isvc: a.isvc.clone(),
    };
    let findings = doctor(&ev.objects, &ev.topology, &scope);
    let width = out.width(200);
    write_doctor(&mut out, &findings, &ev.problems, a.output, width)?;
    out.flush()?;
    // Checks ran on what was there, but without a single Pod most of them could not: that is
    // unusable evidence, not a clean bill of health.
    if ev.topology.pods.is_empty() {
        let from = ev.bundle.as_deref().unwrap_or("the evidence");
        anyhow::bail!(
            "no Pod could be read from {from}, so the checks of pods, sidecars and their serving path did not run; collect the bundle again with access to pods (see docs/live.md), or check the problems listed above"
        );
    }
    Ok(
        if findings.iter().any(|f| f.severity <= Severity::Warning) {
            EXIT_NOTHING
        } else {
            EXIT_OK
        },
    )
}
