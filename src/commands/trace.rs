//! `meshtrace trace`: one request's hop-by-hop path and verdict.

use std::io::Write;

use anyhow::Result;

use crate::commands::{EXIT_NOTHING, EXIT_OK, check_files, format_spec};

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// x-request-id, client ip:port, or client IP.
    pub start: String,
    /// Plain log files to read in addition to (or instead of) a bundle.
    pub files: Vec<String>,
    /// Evidence bundle: a folder or .tar.gz (see docs/bundle.md), or an istioctl bug-report.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// Log format for every log (overrides the bundle manifest): see `explain --log-format`.
    #[arg(long, value_name = "FMT")]
    pub log_format: Option<String>,
    /// Keep Knative and kubelet probe requests (dropped by default).
    #[arg(long)]
    pub include_probes: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: crate::report::TraceOutput,
    /// Without --bundle and files, the evidence is collected live from the cluster.
    #[command(flatten)]
    pub live: crate::commands::collect::LiveArgs,
}

/// Run `trace`.
pub fn run(a: TraceArgs) -> Result<i32> {
    let spec = a.log_format.as_deref().map(format_spec).transpose()?;
    check_files(&a.files)?;
    // No evidence given: collect a bundle from the cluster, then the same offline path.
    let (_live, bundle) = crate::commands::collect::bundle_or_live(
        a.bundle.as_deref(),
        !a.files.is_empty(),
        &a.live,
    )?;
    let bundle = bundle.as_deref();
    let start = crate::correlate::Start::parse(&a.start);
    let ev = crate::source::load::load_widening(
        bundle,
        &a.files,
        spec.as_ref(),
        start.needles(),
        &mut |logs| {
            let (needles, window) =
                crate::correlate::widening(&logs.records, &start, a.include_probes);
            crate::source::load::Widening { needles, window }
        },
    )?;
    // Istio ambient (ztunnel connection lines, waypoints) first; else the sidecar path.
    let report = crate::ambient::trace(&ev, &a.start, &start)
        .or_else(|| crate::trace::trace(&ev, &a.start, &start, a.include_probes));
    let Some(report) = report else {
        for p in &ev.problems {
            crate::report::warn(format!("skipped: {p}"));
        }
        // The first four characters (not bytes: an id may be any UTF-8).
        let prefix: String = a.start.chars().take(4).collect();
        let near: Vec<&str> = ev
            .logs
            .records
            .iter()
            .filter_map(|l| l.record.request_id())
            .filter(|id| {
                prefix.chars().count() == 4
                    && (id.starts_with(&prefix) || id.contains(a.start.as_str()))
            })
            .take(3)
            .collect();
        anyhow::bail!(
            "{} not found in {} access-log record(s) of {} log(s){}",
            a.start,
            ev.logs.records.len(),
            ev.logs.inputs.len(),
            if near.is_empty() {
                String::new()
            } else {
                format!("; similar request ids: {}", near.join(", "))
            }
        );
    };
    let mut out = crate::report::stdout();
    let width = out.width(200);
    crate::report::write_trace(&mut out, &report, a.output, width)?;
    out.flush()?;
    Ok(if report.succeeded {
        EXIT_OK
    } else {
        EXIT_NOTHING
    })
}
