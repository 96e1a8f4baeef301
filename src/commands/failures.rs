//! `meshtrace failures`: triage every failed request in the evidence.

use std::io::Write;

use anyhow::{Context as _, Result};
use chrono::{DateTime, FixedOffset};

use crate::causes::Cause;
use crate::commands::{EXIT_NOTHING, EXIT_OK, check_files, format_spec, no_access_log};
use crate::failures::{Filters, failures, failures_streaming};
use crate::report::{OutputFormat, write_failures};
use crate::source::merge::Merged;

/// Arguments of `failures`.
#[derive(Debug, clap::Args)]
pub struct FailuresArgs {
    /// Plain log files to read in addition to (or instead of) a bundle.
    pub files: Vec<String>,
    /// Evidence bundle: a folder or .tar.gz written by `meshtrace collect` (its layout:
    /// docs/bundle.md in meshtrace's source repository), or an istioctl bug-report archive.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// Log format for every log (overrides the bundle manifest).
    #[arg(long, value_name = "FMT")]
    pub log_format: Option<String>,
    /// Only these statuses: `4xx`, `5xx`, `403`, `0` (TCP), comma-separated.
    #[arg(long, value_name = "STATUS", value_parser = crate::commands::parse_status)]
    pub status: Option<String>,
    /// Only this cause, e.g. `rbac_denied` (the causes `trace` and `explain` name; all of them:
    /// docs/causes.md in meshtrace's source repository).
    #[arg(long, value_name = "CAUSE")]
    pub cause: Option<String>,
    /// Keep Knative and kubelet probe requests (left out by default).
    #[arg(long)]
    pub include_probes: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Without --bundle and files, the evidence is collected live from the cluster. Its
    /// `--since`/`--since-time`/`--until` also filter the failures of a bundle: `--since` counts
    /// back from when the bundle was collected (its manifest), else from the newest record.
    #[command(flatten)]
    pub live: crate::commands::collect::LiveArgs,
    /// The proxies' logs from Loki instead (docs/loki.md in meshtrace's source repository).
    #[command(flatten)]
    pub loki: crate::commands::loki::LokiArgs,
}

/// A command-line time (jiff, the type kube-rs takes for log windows) as the evidence's time
/// type (chrono, which the parsers use for every record).
fn time(t: &jiff::Timestamp) -> Result<DateTime<FixedOffset>> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().unsigned_abs())
        .map(|d| d.fixed_offset())
        .with_context(|| format!("{t} is outside the range of times meshtrace handles"))
}

/// Run `failures`. Exit 0 when nothing failed, 1 when failures were found.
pub fn run(a: FailuresArgs) -> Result<i32> {
    let cause = match &a.cause {
        Some(c) => Some(Cause::from_id(c).with_context(|| {
            let ids: Vec<&str> = Cause::ALL.iter().map(|c| c.id()).collect();
            format!("unknown cause {c:?}; one of: {}", ids.join(", "))
        })?),
        None => None,
    };
    let spec = a.log_format.as_deref().map(format_spec).transpose()?;
    check_files(&a.files)?;
    // No evidence given: collect a bundle from the cluster, then the same offline path.
    let (_live, bundle) = match crate::commands::loki::read(
        &a.loki,
        &a.live.options(false),
        spec.as_ref(),
        crate::commands::loki::Read::All,
        a.bundle.as_deref(),
    )? {
        Some((dir, path)) => (Some(dir), Some(path)),
        None => crate::commands::collect::bundle_or_live(
            a.bundle.as_deref(),
            !a.files.is_empty(),
            &a.live,
        )?,
    };
    let bundle = bundle.as_deref();
    let mut filters = Filters {
        status: a.status.clone(),
        cause,
        include_probes: a.include_probes,
        ..Filters::default()
    };
    if let Some(t) = &a.live.since_time {
        filters.since = Some(time(t)?);
    }
    if let Some(t) = &a.live.until {
        filters.until = Some(time(t)?);
    }
    // Every log is read on its own thread, large ones keeping only failed records, merged in
    // time order; each request is counted once complete and dropped (bounded memory).
    let (ev, inputs) = crate::source::load::open_streams(bundle, &a.files, spec.as_ref())?;
    // `--since` with no collection time counts back from the newest record, known only once
    // every log is read: the logs are then read whole below, and no streaming reader may start
    // first (it would take standard input's first bytes, and the second reading would miss them).
    let whole_first =
        a.live.since.is_some() && a.live.since_time.is_none() && ev.collected_at.is_none();
    let mut merged = if whole_first {
        drop(inputs);
        Merged::counting(Vec::new())
    } else {
        Merged::counting(inputs)
    };
    // ztunnel connection lines read along the way (ambient mode).
    let mut connections: Vec<meshtrace_analysis::model::ConnLine> = Vec::new();
    // The OpenShift router's (HAProxy's) failed lines.
    let mut router: Vec<meshtrace_analysis::model::RouterLine> = Vec::new();
    let mut report = match (a.live.since, ev.collected_at) {
        (Some(d), Some(collected)) if a.live.since_time.is_none() => {
            let d = chrono::Duration::from_std(d).context("--since is too long")?;
            filters.since = Some(collected - d);
            failures_streaming(&ev, &mut merged, &filters)
        }
        // `--since` counts back from the newest record: known only once everything is read.
        (Some(d), None) if a.live.since_time.is_none() => {
            let ev = crate::source::load::load_filtered(
                bundle,
                &a.files,
                spec.as_ref(),
                &crate::source::input::LineFilter::Failed,
            )?;
            let d = chrono::Duration::from_std(d).context("--since is too long")?;
            let reference = ev
                .logs
                .records
                .iter()
                .filter_map(|l| l.record.start_time())
                .max()
                .context("--since needs a time reference: the evidence has neither a manifest collected_at nor timestamps")?;
            filters.since = Some(reference - d);
            connections = ev.logs.connections.clone();
            router = ev.logs.router.clone();
            failures(&ev, &filters)
        }
        _ => failures_streaming(&ev, &mut merged, &filters),
    };
    connections.append(&mut merged.failed_connections);
    router.append(&mut merged.failed_router);
    // Router lines read: counted by the streaming readers, or kept whole by the whole reading.
    let router_lines = merged
        .skipped
        .get("haproxy")
        .copied()
        .unwrap_or(0)
        .max(router.len() as u64);
    let ztunnel_lines = merged.skipped.get("ztunnel").copied().unwrap_or(0);
    if let Some(n) = merged
        .skipped
        .get(crate::source::merge::CONNECTIONS_NOT_KEPT)
    {
        report.notes.push(format!(
            "{n} more failed ztunnel connection(s) were not counted (at most {} per log are kept)",
            crate::source::merge::FAILED_CONNECTIONS_KEPT
        ));
    }
    meshtrace_analysis::ambient::add_connection_failures(
        &mut report,
        &connections,
        &ev.topology,
        &filters,
    );
    meshtrace_analysis::router::add_router_failures(&mut report, &router, router_lines, &filters);
    if let Some(n) = merged.skipped.get(crate::source::merge::ROUTER_NOT_KEPT) {
        report.notes.push(format!(
            "{n} more failed OpenShift router (HAProxy) line(s) were not counted (at most {} per log are kept)",
            crate::source::merge::FAILED_ROUTER_KEPT
        ));
    }
    if report.records_read == 0 && ztunnel_lines == 0 && connections.is_empty() && router_lines == 0
    {
        return Err(no_access_log(&ev.logs.inputs, &report.notes));
    }
    let mut out = crate::report::stdout();
    let width = out.width(200);
    write_failures(&mut out, &report, a.output, width)?;
    out.flush()?;
    Ok(if report.groups.is_empty() {
        EXIT_OK
    } else {
        EXIT_NOTHING
    })
}
