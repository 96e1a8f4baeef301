//! `meshtrace failures`: triage every failed request in the evidence.

use std::io::{IsTerminal, Write};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, FixedOffset};

use crate::causes::Cause;
use crate::cli::{EXIT_NOTHING, EXIT_OK, format_spec};
use crate::failures::{Filters, failures, parse_duration};
use crate::report::{OutputFormat, write_failures};

/// Arguments of `failures`.
#[derive(Debug, clap::Args)]
pub struct FailuresArgs {
    /// Plain log files to read in addition to (or instead of) a bundle.
    pub files: Vec<String>,
    /// Evidence bundle: a folder or .tar.gz (see docs/bundle.md), or an istioctl bug-report.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// Log format for every log (overrides the bundle manifest).
    #[arg(long, value_name = "FMT")]
    pub log_format: Option<String>,
    /// Only failures in the last DURATION (`30s`, `15m`, `2h`, `1d`) before the evidence was
    /// collected (the bundle manifest's `collected_at`, else the newest record).
    #[arg(long, value_name = "DURATION", conflicts_with = "since_time")]
    pub since: Option<String>,
    /// Only failures at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since_time: Option<String>,
    /// Only failures before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only these statuses: `4xx`, `5xx`, `403`, `0` (TCP), comma-separated.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only this cause (see docs/causes.md), e.g. `rbac_denied`.
    #[arg(long, value_name = "CAUSE")]
    pub cause: Option<String>,
    /// Keep Knative and kubelet probe requests (left out by default).
    #[arg(long)]
    pub include_probes: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

fn time(s: &str, what: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).with_context(|| {
        format!("{what} {s:?} is not an RFC 3339 time such as 2024-05-01T10:00:00Z")
    })
}

/// Run `failures`. Exit 0 when nothing failed, 1 when failures were found.
pub fn run(a: FailuresArgs) -> Result<i32> {
    if a.bundle.is_none() && a.files.is_empty() {
        bail!("no evidence: give --bundle DIR|FILE.tar.gz and/or log files (`-` for stdin)");
    }
    let cause = match &a.cause {
        Some(c) => Some(Cause::from_id(c).with_context(|| {
            let ids: Vec<&str> = Cause::ALL.iter().map(|c| c.id()).collect();
            format!("unknown cause {c:?}; one of: {}", ids.join(", "))
        })?),
        None => None,
    };
    let spec = a.log_format.as_deref().map(format_spec).transpose()?;
    // Large logs: every line is parsed (on two threads for big files), only failures are kept.
    let ev = crate::evidence::load_filtered(
        a.bundle.as_deref(),
        &a.files,
        spec.as_ref(),
        &crate::input::LineFilter::Failed,
    )?;
    let mut filters = Filters {
        status: a.status.clone(),
        cause,
        include_probes: a.include_probes,
        ..Filters::default()
    };
    if let Some(s) = &a.since {
        let d = parse_duration(s).with_context(|| {
            format!("--since {s:?}: expected a duration such as 30s, 15m, 2h, 1d")
        })?;
        let reference = ev
            .collected_at
            .or_else(|| ev.logs.records.iter().filter_map(|l| l.record.start_time()).max())
            .context("--since needs a time reference: the evidence has neither a manifest collected_at nor timestamps")?;
        filters.since = Some(reference - d);
    }
    if let Some(s) = &a.since_time {
        filters.since = Some(time(s, "--since-time")?);
    }
    if let Some(s) = &a.until {
        filters.until = Some(time(s, "--until")?);
    }
    let report = failures(&ev, &filters);
    let stdout = std::io::stdout();
    let width = if stdout.is_terminal() {
        None
    } else {
        Some(200)
    };
    let mut out = stdout.lock();
    write_failures(&mut out, &report, a.output, width)?;
    out.flush()?;
    Ok(if report.groups.is_empty() {
        EXIT_OK
    } else {
        EXIT_NOTHING
    })
}
