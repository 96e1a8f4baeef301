//! `meshtrace report`: a post-incident report of one request, or of every failure, in Markdown
//! or JSON, with secrets masked and optional redaction of IPs, pod names and hostnames.

use std::io::{BufRead, BufReader};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::commands::{EXIT_NOTHING, EXIT_OK, check_files, format_spec, no_access_log};
use crate::correlate::Start;
use crate::failures::{Filters, failures};
use crate::redact::Redactor;
use crate::report::markdown::{
    EvidenceLines, SCHEMA, failures_markdown, learn_names, mask_line, object_excerpt,
    record_secrets, reproduce_command, request_markdown,
};

/// Output format of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown (renders on GitHub/GitLab, Mermaid included).
    Markdown,
    /// JSON (`meshtrace.report/v1`).
    Json,
    /// The same document as YAML.
    Yaml,
}

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// x-request-id, client ip:port or client IP of the request to report on (omit with --failures).
    #[arg(required_unless_present = "failures")]
    pub start: Option<String>,
    /// Plain log files to read in addition to (or instead of) a bundle.
    pub files: Vec<String>,
    /// Report every failure in the evidence instead of one request.
    #[arg(long)]
    pub failures: bool,
    /// Evidence bundle: a folder or .tar.gz written by `meshtrace collect` (its layout:
    /// docs/bundle.md in meshtrace's source repository), or an istioctl bug-report archive.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// Log format for every log (overrides the bundle manifest).
    #[arg(long, value_name = "FMT")]
    pub log_format: Option<String>,
    /// Keep Knative and kubelet probe requests.
    #[arg(long)]
    pub include_probes: bool,
    /// Replace IP addresses, pod names and hostnames by stable tokens (ip-1, pod-1, host-1).
    #[arg(long)]
    pub redact: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "markdown")]
    pub output: ReportFormat,
    /// Without --bundle and files, the evidence is collected live from the cluster.
    #[command(flatten)]
    pub live: crate::commands::collect::LiveArgs,
    /// The proxies' logs from Loki instead (docs/loki.md in meshtrace's source repository).
    #[command(flatten)]
    pub loki: crate::commands::loki::LokiArgs,
}

/// Read physical lines `[line, line + n)` of a file; `None` if it is not a readable file.
fn read_lines(path: &str, line: u64, n: u32) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut out = Vec::new();
    for (i, l) in BufReader::new(f).lines().enumerate() {
        let no = i as u64 + 1;
        if no >= line + u64::from(n.max(1)) {
            break;
        }
        if no >= line {
            out.push(l.ok()?);
        }
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

/// The report's document as pretty JSON or as YAML (the same value).
fn document(format: ReportFormat, doc: &serde_json::Value) -> Result<String> {
    Ok(if format == ReportFormat::Yaml {
        crate::report::yaml::value_to_string(doc)
    } else {
        serde_json::to_string_pretty(doc)?
    })
}

/// Run `report`. Exit code as `trace` (0 succeeded, 1 failed) or as `failures`.
pub fn run(a: ReportArgs) -> Result<i32> {
    let spec = a.log_format.as_deref().map(format_spec).transpose()?;
    // With --failures there is no request to name: the first positional argument is a file
    // (`report --failures a.log b.log`), not a request id.
    let mut files = a.files.clone();
    let start = match (a.failures, &a.start) {
        (true, Some(first)) => {
            files.insert(0, first.clone());
            None
        }
        (_, s) => s.clone(),
    };
    check_files(&files)?;
    // No evidence given: collect a bundle from the cluster, then the same offline path.
    let read = match &start {
        Some(s) => crate::commands::loki::Read::Trace {
            start: s,
            include_probes: a.include_probes,
        },
        None => crate::commands::loki::Read::All,
    };
    let (_live, bundle) = match crate::commands::loki::read(
        &a.loki,
        &a.live.options(false),
        spec.as_ref(),
        read,
        a.bundle.as_deref(),
    )? {
        Some((dir, path)) => (Some(dir), Some(path)),
        None => crate::commands::collect::bundle_or_live(
            a.bundle.as_deref(),
            !files.is_empty(),
            &a.live,
        )?,
    };
    let bundle = bundle.as_deref();
    let ev = crate::source::load::load(bundle, &files, spec.as_ref())?;
    let version = env!("CARGO_PKG_VERSION");
    let mut red = Redactor::default();
    let (text, code) = if a.failures {
        let filters = Filters {
            include_probes: a.include_probes,
            ..Filters::default()
        };
        let mut r = failures(&ev, &filters);
        // ztunnel's failed connections count as `failures` counts them (Istio ambient).
        meshtrace_analysis::ambient::add_connection_failures(
            &mut r,
            &ev.logs.connections,
            &ev.topology,
            &filters,
        );
        // And the OpenShift router's (HAProxy's) lines, as `failures` groups them.
        meshtrace_analysis::router::add_router_failures(
            &mut r,
            &ev.logs.router,
            ev.logs.router.len() as u64,
            &filters,
        );
        if r.records_read == 0 && ev.logs.connections.is_empty() && ev.logs.router.is_empty() {
            return Err(no_access_log(&ev.logs.inputs, &r.notes));
        }
        let hosts: Vec<String> = r
            .groups
            .iter()
            .filter(|g| g.kind == "request")
            .map(|g| g.target.clone())
            .collect();
        learn_names(&mut red, &ev, hosts);
        let text = match a.output {
            ReportFormat::Markdown => failures_markdown(&r, &ev, version),
            ReportFormat::Json | ReportFormat::Yaml => document(
                a.output,
                &json!({"schema": SCHEMA, "kind": "failures", "failures": r}),
            )?,
        };
        (
            text,
            if r.groups.is_empty() {
                EXIT_OK
            } else {
                EXIT_NOTHING
            },
        )
    } else {
        let query = start.context("give a request id, or --failures")?;
        let start = Start::parse(&query);
        // As `trace` reads it: Istio ambient first, else the sidecar path, else (KServe Standard
        // mode) the OpenShift router's line for the InferenceService's Route.
        let t = crate::ambient::trace(&ev, &query, &start)
            .or_else(|| crate::trace::trace(&ev, &query, &start, a.include_probes))
            .or_else(|| {
                meshtrace_analysis::standard::verdict_with_router(
                    &ev.objects,
                    &ev.topology,
                    None,
                    &query,
                    None,
                    &ev.logs.router,
                )
            });
        let Some(t) = t else {
            bail!(
                "{query} not found in {} access-log record(s) of {} log(s)",
                ev.logs.records.len(),
                ev.logs.inputs.len()
            );
        };
        // The evidence lines as logged, secret header values masked.
        let lines: EvidenceLines = t
            .hops
            .iter()
            .map(|h| {
                let l = ev
                    .logs
                    .records
                    .iter()
                    .find(|l| *l.input == h.evidence.file && l.line == h.evidence.line)?;
                let raw = read_lines(&h.evidence.file, l.line, l.lines)?;
                Some(mask_line(&raw, &record_secrets(&l.record)))
            })
            .collect();
        let mut hosts: Vec<String> = Vec::new();
        for h in &t.hops {
            if let Some(l) = ev
                .logs
                .records
                .iter()
                .find(|l| *l.input == h.evidence.file && l.line == h.evidence.line)
            {
                hosts.extend(
                    l.record
                        .authority()
                        .map(|s| s.split(':').next().unwrap_or(s).to_string()),
                );
                hosts.extend(l.record.sni().map(str::to_string));
                hosts.extend(
                    l.record
                        .upstream_cluster()
                        .and_then(|c| c.host().map(str::to_string)),
                );
            }
        }
        learn_names(&mut red, &ev, hosts);
        let reproduce = reproduce_command(&query, &ev, &files);
        let text = match a.output {
            ReportFormat::Markdown => request_markdown(&t, &ev, &lines, &reproduce, version),
            ReportFormat::Json | ReportFormat::Yaml => {
                let objects: Vec<_> = t
                    .citations
                    .iter()
                    .map(|c| json!({"object": c.object, "why": c.why, "yaml": object_excerpt(&ev, &c.object)}))
                    .collect();
                document(
                    a.output,
                    &json!({
                        "schema": SCHEMA, "kind": "request", "trace": t, "evidence_lines": lines,
                        "objects": objects, "reproduce": reproduce,
                    }),
                )?
            }
        };
        (text, if t.succeeded { EXIT_OK } else { EXIT_NOTHING })
    };
    let text = if a.redact { red.apply(&text) } else { text };
    crate::report::write_document(&mut crate::report::stdout(), &text)?;
    Ok(code)
}
