//! Loading evidence for analysis: a bundle and/or plain log files, parsed, with the topology.

use std::path::Path;
use std::sync::Arc;

use meshtrace_parsers::configdump::ConfigDump;
use meshtrace_parsers::detect::FormatSpec;

use crate::bundle::{Bundle, Object};
use crate::correlate::{Start, correlate};
use crate::input::{InputSource, LineFilter, LogSet, read_input_filtered, read_pod_log_filtered};
use crate::topology::Topology;

/// Everything an analysis needs.
#[derive(Debug, Default)]
pub struct Evidence {
    /// Parsed log lines of every input.
    pub logs: LogSet,
    /// Kubernetes objects (from a bundle).
    pub objects: Vec<Object>,
    /// Who is who.
    pub topology: Topology,
    /// What could not be used, one sentence each.
    pub problems: Vec<String>,
    /// The bundle opened, if any.
    pub bundle: Option<String>,
    /// When the bundle was collected (its manifest's `collected_at`).
    pub collected_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// The bundle's Envoy config dumps that could be read.
    pub config_dumps: Vec<PodDump>,
}

/// The Envoy config dump of one pod of a bundle.
#[derive(Debug, Clone)]
pub struct PodDump {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Path inside the bundle.
    pub path: String,
    /// The parsed dump.
    pub dump: ConfigDump,
}

/// Read and parse every config dump of a bundle; unreadable or malformed ones go to `problems`.
pub fn read_config_dumps(b: &Bundle, problems: &mut Vec<String>) -> Vec<PodDump> {
    let mut out = Vec::new();
    for c in &b.config_dumps {
        let mut text = Vec::new();
        let read = c
            .source
            .open()
            .and_then(|mut r| std::io::Read::read_to_end(&mut r, &mut text));
        if let Err(e) = read {
            problems.push(format!("{}: unreadable: {e}", c.path));
            continue;
        }
        match ConfigDump::parse(&String::from_utf8_lossy(&text)) {
            Ok(dump) => out.push(PodDump {
                namespace: c.namespace.clone(),
                pod: c.pod.clone(),
                path: c.path.clone(),
                dump,
            }),
            Err(e) => problems.push(format!("{}: {e}", c.path)),
        }
    }
    out
}

/// Load a bundle (optional) and plain files. `format` overrides the manifest's formats.
pub fn load(
    bundle: Option<&Path>,
    files: &[String],
    format: Option<&FormatSpec>,
) -> anyhow::Result<Evidence> {
    load_filtered(bundle, files, format, &LineFilter::All)
}

/// Load for a trace: on large logs, parse only the lines that mention the request (its ids and
/// connection addresses), widening the search as correlation discovers new ids and addresses.
pub fn load_for_trace(
    bundle: Option<&Path>,
    files: &[String],
    format: Option<&FormatSpec>,
    start: &Start,
    include_probes: bool,
) -> anyhow::Result<Evidence> {
    let mut needles: Vec<String> = match start {
        Start::RequestId(id) => vec![id.clone()],
        Start::Address(a) => vec![a.to_string()],
        Start::Ip(ip) => vec![format!("{ip}:")],
    };
    // (On large logs the activators are known from the bundle's pods, not from every line that
    // mentions a revision's private Service: that is a third of a busy log.)
    let mut window: Option<crate::input::TimeWindow> = None;
    for _round in 0..6 {
        let filter = match window {
            Some(w) => LineFilter::NeedlesInWindow(needles.clone(), w),
            None => LineFilter::Needles(needles.clone()),
        };
        let ev = load_filtered(bundle, files, format, &filter)?;
        if ev.logs.filtered_inputs == 0 {
            return Ok(ev); // every input was small enough to be read whole
        }
        let corr = correlate(&ev.logs.records, start, include_probes);
        let mut grew = false;
        for &i in &corr.hops {
            let r = &ev.logs.records[i].record;
            // Hops of one request happen within its outermost hop's time, give or take clock skew.
            if let Some(t) = r.start_time() {
                let end = t + chrono::Duration::milliseconds(
                    i64::try_from(r.duration_ms().unwrap_or(0)).unwrap_or(0),
                );
                let slack = chrono::Duration::seconds(30);
                window = Some(match window {
                    Some((a, b)) => (a.min(t - slack), b.max(end + slack)),
                    None => (t - slack, end + slack),
                });
            }
            let found = [
                r.request_id().map(str::to_string),
                r.upstream_local()
                    .and_then(|a| a.socket())
                    .filter(|s| s.port() != 0)
                    .map(|s| s.to_string()),
                r.downstream_remote()
                    .and_then(|a| a.socket())
                    .filter(|s| s.port() != 0)
                    .map(|s| s.to_string()),
            ];
            for n in found.into_iter().flatten() {
                if !needles.contains(&n) {
                    needles.push(n);
                    grew = true;
                }
            }
        }
        if !grew {
            return Ok(ev);
        }
    }
    let filter = match window {
        Some(w) => LineFilter::NeedlesInWindow(needles, w),
        None => LineFilter::Needles(needles),
    };
    load_filtered(bundle, files, format, &filter)
}

/// Load keeping what `filter` asks for from each large log (see [`LineFilter`]).
pub fn load_filtered(
    bundle: Option<&Path>,
    files: &[String],
    format: Option<&FormatSpec>,
    filter: &LineFilter,
) -> anyhow::Result<Evidence> {
    let mut ev = Evidence::default();
    let auto = FormatSpec::Auto;
    if let Some(path) = bundle {
        let b = Bundle::open(path)?;
        ev.bundle = Some(b.root.clone());
        ev.collected_at = b
            .manifest
            .as_ref()
            .and_then(|m| m.collected_at.as_deref())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        ev.problems.extend(b.problems.iter().cloned());
        let dumps = read_config_dumps(&b, &mut ev.problems);
        for l in &b.logs {
            let spec = match format {
                Some(f) => f.clone(),
                None => match b.log_format_for(l) {
                    Some(v) => match FormatSpec::parse(v) {
                        Ok(s) => s,
                        Err(e) => {
                            ev.problems
                                .push(format!("{}: manifest log format ignored: {e}", l.path));
                            auto.clone()
                        }
                    },
                    // A custom format of the pod's listeners, from its config dump.
                    None => {
                        crate::configcite::log_format_of(&dumps, &l.namespace, &l.pod, &l.container)
                            .unwrap_or_else(|| auto.clone())
                    }
                },
            };
            let name = format!("{}/{}", b.root.trim_end_matches('/'), l.path);
            let pod: Arc<str> = Arc::from(format!("{}/{}", l.namespace, l.pod));
            match l.source.open() {
                Ok(r) => {
                    ev.logs.inputs.push(name.clone());
                    if let Err(e) = read_pod_log_filtered(
                        r,
                        &name,
                        Some(pod),
                        &spec,
                        &mut ev.logs,
                        filter,
                        l.source.size(),
                    ) {
                        ev.problems.push(e.to_string());
                    }
                }
                Err(e) => ev.problems.push(format!("{name}: unreadable: {e}")),
            }
        }
        ev.topology = Topology::from_objects(&b.objects, &mut ev.problems);
        for l in &b.logs {
            match ev.topology.pod(&l.namespace, &l.pod) {
                None if !ev.topology.pods.is_empty() => ev.problems.push(format!(
                    "{}: pod {}/{} is not among the bundle's Pods; its lines are used without a role",
                    l.path, l.namespace, l.pod
                )),
                Some(p) if !p.containers.contains(&l.container) => ev.problems.push(format!(
                    "{}: pod {}/{} has no container {:?} (it has {}); its lines are used anyway",
                    l.path,
                    l.namespace,
                    l.pod,
                    l.container,
                    p.containers.join(", ")
                )),
                _ => {}
            }
        }
        ev.config_dumps = dumps;
        ev.objects = b.objects;
    }
    let spec = format.cloned().unwrap_or(FormatSpec::Auto);
    for f in files {
        if let Err(e) = read_input_filtered(&InputSource::from_arg(f), &spec, &mut ev.logs, filter)
        {
            ev.problems.push(e.to_string());
        }
    }
    Ok(ev)
}
