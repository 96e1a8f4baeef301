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
    /// Evidence bundle: a folder or .tar.gz written by `meshtrace collect` (its layout:
    /// docs/bundle.md in meshtrace's source repository), or an istioctl bug-report archive.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// Log format for every log (overrides the bundle manifest): see `explain --log-format`.
    #[arg(long, value_name = "FMT")]
    pub log_format: Option<String>,
    /// Keep Knative and kubelet probe requests (dropped by default).
    #[arg(long)]
    pub include_probes: bool,
    /// Output format (`otlp`: OpenTelemetry OTLP/JSON, one span per hop, for Jaeger or Tempo).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: crate::report::TraceOutput,
    /// Also send the trace to this OTLP/HTTP receiver (Jaeger, Tempo, an OTel collector):
    /// `http://HOST:4318` (posted to `/v1/traces`) or a URL ending in `/v1/traces`.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Give up sending to the OTLP receiver after this long (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::collect::parse_duration)]
    pub otlp_timeout: Option<std::time::Duration>,
    /// Live: do not fetch the Envoy config dumps of the proxies on the request's path (they let
    /// the verdict cite the route, listener or cluster behind it; fetching needs the opt-in
    /// port-forward role of deploy/rbac/config-dump.yaml).
    #[arg(long)]
    pub no_config_dump: bool,
    /// The status the client saw (e.g. 403). When no proxy we can read logged that status for
    /// this request, the verdict names the hop in between that writes no access log (KServe
    /// Standard mode: kube-rbac-proxy or oauth-proxy on 8443, the OpenShift router) and what to
    /// check there. START may then also be the InferenceService or its Route host.
    #[arg(long, value_name = "STATUS", value_parser = clap::value_parser!(u16).range(100..=599))]
    pub client_status: Option<u16>,
    /// Without --bundle and files, the evidence is collected live from the cluster.
    #[command(flatten)]
    pub live: crate::commands::collect::LiveArgs,
    /// The proxies' logs from Loki instead (docs/loki.md in meshtrace's source repository).
    #[command(flatten)]
    pub loki: crate::commands::loki::LokiArgs,
}

/// Run `trace`.
pub fn run(a: TraceArgs) -> Result<i32> {
    let spec = a.log_format.as_deref().map(format_spec).transpose()?;
    check_files(&a.files)?;
    // No evidence given: collect a bundle from the cluster, then the same offline path.
    let from_cluster = a.bundle.is_none() && a.files.is_empty() && a.loki.loki.is_empty();
    let (_live, bundle) = match crate::commands::loki::read(
        &a.loki,
        &a.live.options(false),
        spec.as_ref(),
        crate::commands::loki::Read::Trace {
            start: &a.start,
            include_probes: a.include_probes,
        },
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
    let start = crate::correlate::Start::parse(&a.start);
    let mut ev = crate::source::load::load_widening(
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
    // The status the client saw, when no readable proxy logged it (KServe Standard mode).
    // With the OpenShift router's access log in the evidence, its line for the Route gives the
    // status (without `--client-status`) and the router hop's evidence.
    let client = a
        .client_status
        .map(meshtrace_analysis::standard::ClientView::from_status);
    let report = match (&client, report.is_none() && !ev.logs.router.is_empty()) {
        (Some(_), _) | (None, true) => meshtrace_analysis::standard::verdict_with_router(
            &ev.objects,
            &ev.topology,
            client.as_ref(),
            &a.start,
            report.as_ref(),
            &ev.logs.router,
        )
        .or(report),
        (None, false) => report,
    };
    let Some(mut report) = report else {
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
    // Live: the config dumps of the proxies on the path, so the verdict cites what an offline
    // trace of a full bundle cites.
    if from_cluster
        && !a.no_config_dump
        // A hop that wrote no line has no Envoy to ask (KServe Standard mode).
        && !report
            .hops
            .iter()
            .any(|h| h.direction == meshtrace_analysis::standard::NOT_LOGGED)
        && let Some(dir) = bundle
        && let Some(r) = with_path_dumps(&a, dir, &mut ev, &report)?
    {
        report = r;
    }
    let mut out = crate::report::stdout();
    let width = out.width(200);
    let otlp = (a.output == crate::report::TraceOutput::Otlp || a.otlp_endpoint.is_some())
        .then(|| crate::report::otlp::export_request(&report, &hop_extras(&ev, &report)));
    match &otlp {
        Some(req) if a.output == crate::report::TraceOutput::Otlp => {
            crate::report::otlp::write(&mut out, req)?
        }
        _ => crate::report::write_trace(&mut out, &report, a.output, width)?,
    }
    out.flush()?;
    if let (Some(endpoint), Some(req)) = (&a.otlp_endpoint, &otlp) {
        send_otlp(
            endpoint,
            req,
            a.otlp_timeout
                .unwrap_or(crate::live::bounds::OTLP_DEFAULT_TIMEOUT),
        )?;
    }
    Ok(if report.succeeded {
        EXIT_OK
    } else {
        EXIT_NOTHING
    })
}

/// What each hop's access-log line says beyond the hop row: method, path, authority and a
/// logged trace context (a `traceparent`, B3 or `%TRACE_ID%` field of a custom format).
fn hop_extras(
    ev: &crate::evidence::Evidence,
    report: &crate::trace::TraceReport,
) -> Vec<crate::report::otlp::HopExtras> {
    use meshtrace_parsers::Slot;
    let wanted: std::collections::HashMap<(&str, u64), usize> = report
        .hops
        .iter()
        .enumerate()
        .map(|(i, h)| ((h.evidence.file.as_str(), h.evidence.line), i))
        .collect();
    let mut out = vec![crate::report::otlp::HopExtras::default(); report.hops.len()];
    for l in &ev.logs.records {
        let Some(&i) = wanted.get(&(&*l.input, l.line)) else {
            continue;
        };
        let r = &l.record;
        let trace_context = r
            .extras()
            .find(|(k, v)| {
                let k = k.to_ascii_lowercase();
                (k.contains("traceparent")
                    || k.contains("x-b3-traceid")
                    || k == "trace_id"
                    || k == "req(b3)")
                    && crate::report::otlp::trace_id_from_context(v).is_some()
            })
            .map(|(_, v)| v.to_string());
        out[i] = crate::report::otlp::HopExtras {
            method: r.value(Slot::Method).map(str::to_string),
            path: r.value(Slot::Path).map(str::to_string),
            authority: r.value(Slot::Authority).map(str::to_string),
            trace_context,
        };
    }
    out
}

/// Post the trace to an OTLP/HTTP receiver and say so on stderr.
fn send_otlp(
    endpoint: &str,
    req: &crate::report::otlp::ExportTraceServiceRequest,
    timeout: std::time::Duration,
) -> Result<()> {
    let body = crate::report::otlp::to_json(req)?;
    let spans: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let posted = crate::live::otlp::post(endpoint, body, timeout)?;
    let trace_id = req
        .resource_spans
        .first()
        .and_then(|r| r.scope_spans.first())
        .and_then(|s| s.spans.first())
        .map(|s| s.trace_id.as_str())
        .unwrap_or("-");
    crate::report::warn(format!(
        "sent {spans} span(s) of trace {trace_id} to {} (HTTP {})",
        posted.url, posted.status
    ));
    if let Some((n, why)) = posted.rejected {
        crate::report::warn(format!(
            "the OTLP receiver rejected {n} span(s){}",
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ));
    }
    Ok(())
}

/// Fetch the config dumps of the pods on the traced path that the live bundle `dir` lacks, add
/// them to the evidence and trace again; `None` when nothing new was fetched. A dump that cannot
/// be fetched (no port-forward role, no proxy) is one sentence on stderr and the verdict stays
/// as it was, without the citations the dump would have given.
fn with_path_dumps(
    a: &TraceArgs,
    dir: &std::path::Path,
    ev: &mut crate::evidence::Evidence,
    report: &crate::trace::TraceReport,
) -> Result<Option<crate::trace::TraceReport>> {
    let mut pods: Vec<(String, String)> = Vec::new();
    for h in &report.hops {
        if let (Some(ns), Some(pod)) = (&h.namespace, &h.pod) {
            let key = (ns.clone(), pod.clone());
            let have = ev
                .config_dumps
                .iter()
                .any(|d| d.namespace == *ns && d.pod == *pod);
            if !have && !pods.contains(&key) {
                pods.push(key);
            }
        }
    }
    if pods.is_empty() {
        return Ok(None);
    }
    let fetched = crate::live::dumps::config_dumps(&a.live.options(true), &pods, dir)?;
    for p in &fetched.problems {
        crate::report::warn(format!("not collected: {p}"));
    }
    if fetched.dumps.is_empty() {
        return Ok(None);
    }
    let b = crate::source::bundle::Bundle::open(dir)?;
    let mut problems = Vec::new();
    ev.config_dumps = crate::source::load::read_config_dumps(&b, &mut problems);
    for p in &problems {
        crate::report::warn(format!("skipped: {p}"));
    }
    let start = crate::correlate::Start::parse(&a.start);
    Ok(crate::ambient::trace(ev, &a.start, &start)
        .or_else(|| crate::trace::trace(ev, &a.start, &start, a.include_probes)))
}
