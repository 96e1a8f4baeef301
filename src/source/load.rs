//! Loading evidence for analysis: a bundle and/or plain log files, parsed, with the topology.

use meshtrace_analysis::evidence::Evidence;
use meshtrace_analysis::model::PodDump;
use std::path::Path;
use std::sync::Arc;

use meshtrace_parsers::configdump::ConfigDump;
use meshtrace_parsers::detect::FormatSpec;

use crate::source::bundle::{Bundle, LogSource, over_limit};
use crate::source::input::{
    InputSource, LineFilter, NeedleFilter, STREAM_MIN_BYTES, read_input_filtered, read_log_file,
    read_needles_open, read_pod_log_filtered,
};
use crate::source::limits::MAX_CONFIG_DUMP_BYTES;
use crate::source::merge::{Opener, StreamInput, Streams};
use crate::source::meshformats;
use crate::source::runs::Positioned;
use crate::topology::Topology;
use meshtrace_analysis::model::LogSet;

/// Read and parse every config dump of a bundle; unreadable, malformed ones and those over
/// [`MAX_CONFIG_DUMP_BYTES`] (checked on the size first, then while reading) go to `problems`.
pub fn read_config_dumps(b: &Bundle, problems: &mut Vec<String>) -> Vec<PodDump> {
    let mut out = Vec::new();
    let what = "a config dump";
    for c in &b.config_dumps {
        if let Some(size) = c.source.size().filter(|s| *s > MAX_CONFIG_DUMP_BYTES) {
            problems.push(over_limit(&c.path, size, MAX_CONFIG_DUMP_BYTES, what));
            continue;
        }
        let mut text = Vec::new();
        let read = c.source.open().and_then(|r| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(r, MAX_CONFIG_DUMP_BYTES + 1),
                &mut text,
            )
        });
        if let Err(e) = read {
            problems.push(format!("{}: unreadable: {e}", c.path));
            continue;
        }
        if text.len() as u64 > MAX_CONFIG_DUMP_BYTES {
            problems.push(over_limit(
                &c.path,
                text.len() as u64,
                MAX_CONFIG_DUMP_BYTES,
                what,
            ));
            continue;
        }
        let text = match String::from_utf8(text) {
            Ok(t) => t,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        // The must-gather scripts send `pilot-agent`'s messages to the same file as the dump
        // (`2>&1`): what comes before the JSON's first line is not part of it.
        let json = match text.trim_start().starts_with('{') {
            true => text.as_str(),
            false => text.find("\n{").map_or(text.as_str(), |i| &text[i + 1..]),
        };
        match ConfigDump::parse(json) {
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

/// A bundle opened once for every round of reading its logs.
struct Opened {
    bundle: Bundle,
    dumps: Vec<PodDump>,
    /// The access-log formats the bundle's own objects define (MeshConfig, SMCP, Telemetry), in
    /// the manifest's `log_formats` shape.
    mesh_formats: std::collections::BTreeMap<String, String>,
    problems: Vec<String>,
}

impl Opened {
    /// The format of one of the bundle's logs: `format` if given; else the manifest's for this
    /// container; else the manifest's default when it names one; else a custom format of the
    /// pod's listeners (from its config dump); else the one the bundle's MeshConfig, SMCP or
    /// Telemetry objects give this pod (or the mesh); else auto-detection.
    fn spec_for(
        &self,
        l: &crate::source::bundle::LogFile,
        format: Option<&FormatSpec>,
        problems: &mut Vec<String>,
    ) -> FormatSpec {
        if let Some(f) = format {
            return f.clone();
        }
        let parse = |v: &str, whence: &str, problems: &mut Vec<String>| {
            FormatSpec::parse(v).unwrap_or_else(|e| {
                problems.push(format!("{}: {whence} log format ignored: {e}", l.path));
                FormatSpec::Auto
            })
        };
        let key = format!("{}/{}/{}", l.namespace, l.pod, l.container);
        let manifest = self.bundle.manifest.as_ref();
        if let Some(v) = manifest.and_then(|m| m.log_formats.get(&key)) {
            return parse(v, "manifest", problems);
        }
        if let Some(v) = manifest
            .and_then(|m| m.log_formats.get("default"))
            .filter(|v| !v.trim().eq_ignore_ascii_case("auto"))
        {
            return parse(v, "manifest", problems);
        }
        if let Some(f) =
            crate::configcite::log_format_of(&self.dumps, &l.namespace, &l.pod, &l.container)
        {
            return f;
        }
        if l.container == meshformats::PROXY
            && let Some(v) = self
                .mesh_formats
                .get(&key)
                .or_else(|| self.mesh_formats.get("default"))
        {
            return parse(v, "mesh", problems);
        }
        FormatSpec::Auto
    }

    fn open(path: &Path) -> anyhow::Result<Opened> {
        let bundle = Bundle::open(path)?;
        let mut problems = bundle.problems.clone();
        let dumps = read_config_dumps(&bundle, &mut problems);
        let objects: Vec<&serde_json::Value> = bundle.objects.iter().map(|o| &o.value).collect();
        let pods: Vec<&serde_json::Value> = bundle
            .objects
            .iter()
            .filter(|o| o.kind == "Pod" && o.api_version == "v1")
            .map(|o| &o.value)
            .collect();
        let mesh_formats = meshformats::log_formats(&objects, &pods, &mut problems);
        Ok(Opened {
            bundle,
            dumps,
            mesh_formats,
            problems,
        })
    }
}

/// What one round of loading for a trace learned: the strings to search for next (request ids,
/// connection addresses) and the time range the request ran in.
#[derive(Debug, Default)]
pub struct Widening {
    /// Every needle known so far.
    pub needles: Vec<String>,
    /// The request's time range, with slack.
    pub window: Option<crate::source::input::TimeWindow>,
}

/// Load for a trace: on large logs, parse only the lines that mention the request, starting
/// with `needles` and widening the search with what `widen` learns from each round's records
/// (the caller correlates them; the loader knows no analysis). The first round reads every
/// large file whole (and indexes it); later rounds read only the part of each file written
/// while the request ran.
pub fn load_widening(
    bundle: Option<&Path>,
    files: &[String],
    format: Option<&FormatSpec>,
    needles: Vec<String>,
    widen: &mut dyn FnMut(&LogSet) -> Widening,
) -> anyhow::Result<Evidence> {
    let opened = bundle.map(Opened::open).transpose()?;
    // Standard input and named pipes (`<(kubectl logs …)`, FIFOs) can be read once only, and
    // the rounds below may read every input again: each is first copied to an anonymous
    // temporary file (disk, not memory) and read from there.
    let mut spooled: Vec<(String, LogSource)> = Vec::new();
    for f in files {
        if spooled.iter().any(|(n, _)| n == f) {
            continue;
        }
        if f == "-" {
            spooled.push((f.clone(), spool(std::io::stdin().lock(), "standard input")?));
        } else if std::fs::metadata(f).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            let pipe =
                std::fs::File::open(f).map_err(|e| anyhow::anyhow!("cannot read {f}: {e}"))?;
            spooled.push((f.clone(), spool(pipe, f)?));
        }
    }
    let mut filter = NeedleFilter::new(needles);
    // (On large logs the activators are known from the bundle's pods, not from every line that
    // mentions a revision's private Service: that is a third of a busy log.)
    // What a round's reading left out (a bound reached) stays said when the next round reads
    // less.
    let mut notes: Vec<String> = Vec::new();
    let mut noted = |mut logs: LogSet| {
        for n in std::mem::take(&mut logs.notes) {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        logs.notes = notes.clone();
        logs
    };
    for _round in 0..6 {
        let (logs, problems) = read_logs(
            opened.as_ref(),
            files,
            &spooled,
            format,
            &LineFilter::Needles(filter.clone()),
        );
        let logs = noted(logs);
        if logs.filtered_inputs == 0 {
            // Every input was small enough to be read whole.
            return Ok(finish(opened, logs, problems));
        }
        let w = widen(&logs);
        filter.window = match (filter.window, w.window) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, y) => x.or(y),
        };
        let mut grew = false;
        for n in w.needles {
            if !filter.needles.contains(&n) {
                filter.needles.push(n);
                grew = true;
            }
        }
        if !grew {
            return Ok(finish(opened, logs, problems));
        }
    }
    let (logs, problems) = read_logs(
        opened.as_ref(),
        files,
        &spooled,
        format,
        &LineFilter::Needles(filter),
    );
    Ok(finish(opened, noted(logs), problems))
}

/// Load keeping what `filter` asks for from each large log (see [`LineFilter`]).
pub fn load_filtered(
    bundle: Option<&Path>,
    files: &[String],
    format: Option<&FormatSpec>,
    filter: &LineFilter,
) -> anyhow::Result<Evidence> {
    let opened = bundle.map(Opened::open).transpose()?;
    let (logs, problems) = read_logs(opened.as_ref(), files, &[], format, filter);
    Ok(finish(opened, logs, problems))
}

/// Open the evidence for a streaming analysis: the bundle's objects, topology and dumps now,
/// and one [`StreamInput`] per log (bundle logs, then files) to be read by `crate::source::merge`,
/// each with its bytes readable at any offset when they are (files, bundle members: cut into
/// their time-ordered runs; standard input is read as it comes).
pub fn open_streams(
    bundle: Option<&Path>,
    files: &[String],
    format: Option<&FormatSpec>,
) -> anyhow::Result<(Evidence, Streams)> {
    let opened = bundle.map(Opened::open).transpose()?;
    let mut logs = LogSet::default();
    let mut problems = Vec::new();
    let mut inputs = Vec::new();
    if let Some(o) = &opened {
        let b = &o.bundle;
        for l in &b.logs {
            let spec = o.spec_for(l, format, &mut problems);
            let name = format!("{}/{}", b.root.trim_end_matches('/'), l.path);
            let source = l.source.clone();
            logs.inputs.push(name.clone());
            // Knative's proxies' own lines about failed requests are read before the stream, so
            // that every request's words (a group's traced example) can cite them wherever
            // their log comes in the merge.
            if matches!(l.container.as_str(), "queue-proxy" | "activator") {
                logs.knative
                    .extend(knative_lines(&source, &name, &l.namespace, &l.pod, &spec));
            }
            let at = match &source {
                // (Not opened here if it cannot be: the opener then names the error.)
                LogSource::File(p) => Positioned::regular_file(p),
                LogSource::Memory(bytes) => Some(Positioned::Memory(bytes.clone())),
                LogSource::Spooled { file, start, len } => Some(Positioned::File {
                    file: file.clone(),
                    start: *start,
                    len: *len,
                    bounded: true,
                }),
            };
            inputs.push((
                StreamInput {
                    name,
                    pod: Some(Arc::from(format!("{}/{}", l.namespace, l.pod))),
                    spec,
                    size: source.size(),
                    open: Box::new(move || source.open()),
                    keep_all: false,
                },
                at,
            ));
        }
    }
    let spec = format.cloned().unwrap_or(FormatSpec::Auto);
    for f in files {
        let source = InputSource::from_arg(f);
        let name = source.name();
        logs.inputs.push(name.clone());
        let (size, open, at): (Option<u64>, Opener, Option<Positioned>) = match source {
            InputSource::Stdin => (
                None,
                Box::new(|| Ok(Box::new(std::io::stdin()) as Box<dyn std::io::Read + Send>)),
                None,
            ),
            InputSource::File(p) => (
                std::fs::metadata(&p).ok().map(|m| m.len()),
                {
                    let p = p.clone();
                    Box::new(move || {
                        std::fs::File::open(&p)
                            .map(|f| Box::new(f) as Box<dyn std::io::Read + Send>)
                    })
                },
                // Only regular files: a named pipe or a device is read as it comes.
                Positioned::regular_file(&p),
            ),
        };
        inputs.push((
            StreamInput {
                name,
                pod: None,
                spec: spec.clone(),
                size,
                open,
                keep_all: false,
            },
            at,
        ));
    }
    Ok((finish(opened, logs, problems), Streams(inputs)))
}

/// Read the logs of a bundle and plain files; problems reading them are returned as sentences.
fn read_logs(
    opened: Option<&Opened>,
    files: &[String],
    spooled: &[(String, LogSource)],
    format: Option<&FormatSpec>,
    filter: &LineFilter,
) -> (LogSet, Vec<String>) {
    let mut logs = LogSet::default();
    let mut problems = Vec::new();
    if let Some(o) = opened {
        let b = &o.bundle;
        for l in &b.logs {
            let spec = o.spec_for(l, format, &mut problems);
            let name = format!("{}/{}", b.root.trim_end_matches('/'), l.path);
            let pod: Arc<str> = Arc::from(format!("{}/{}", l.namespace, l.pod));
            let read = match (&l.source, filter) {
                (LogSource::File(p), _) => {
                    logs.inputs.push(name.clone());
                    read_log_file(p, &name, Some(pod), &spec, &mut logs, filter)
                }
                // A large archive log spooled to a temporary file of its own: searched in place.
                (
                    LogSource::Spooled {
                        file,
                        start: 0,
                        len,
                    },
                    LineFilter::Needles(nf),
                ) if *len >= STREAM_MIN_BYTES && !crate::source::scan::is_gzip(file) => {
                    logs.inputs.push(name.clone());
                    read_needles_open(file, *len, &name, Some(pod), &spec, &mut logs, nf)
                }
                (other, _) => match other.open() {
                    Ok(r) => {
                        logs.inputs.push(name.clone());
                        read_pod_log_filtered(
                            r,
                            &name,
                            Some(pod),
                            &spec,
                            &mut logs,
                            filter,
                            other.size(),
                        )
                    }
                    Err(e) => {
                        problems.push(format!("{name}: unreadable: {e}"));
                        Ok(())
                    }
                },
            };
            if let Err(e) = read {
                problems.push(e.to_string());
            }
        }
    }
    let spec = format.cloned().unwrap_or(FormatSpec::Auto);
    for f in files {
        let read = match spooled.iter().find(|(n, _)| n == f) {
            Some((_, src)) => {
                let name = InputSource::from_arg(f).name();
                read_spooled(src, &name, &spec, &mut logs, filter)
            }
            None => read_input_filtered(&InputSource::from_arg(f), &spec, &mut logs, filter),
        };
        if let Err(e) = read {
            problems.push(e.to_string());
        }
    }
    (logs, problems)
}

/// Copy an input that can be read once only (standard input, a named pipe) to an anonymous
/// temporary file (removed by the system when meshtrace exits, however it exits), so that it
/// can be read more than once; at most
/// [`MAX_STDIN_COPY_BYTES`](crate::source::limits::MAX_STDIN_COPY_BYTES).
fn spool(input: impl std::io::Read, what: &str) -> anyhow::Result<LogSource> {
    let mut file = tempfile::tempfile().map_err(|e| {
        anyhow::anyhow!(
            "cannot create a temporary file to hold {what} ({e}); set TMPDIR to a writable folder, or pass the log as a file"
        )
    })?;
    let max = crate::source::limits::MAX_STDIN_COPY_BYTES;
    let len = copy_counted(&mut std::io::Read::take(input, max + 1), &mut file).map_err(
        |e| match e {
            Copy::Read(e) => anyhow::anyhow!("reading {what}: {e}"),
            Copy::Write(e) => anyhow::anyhow!(
                "cannot copy {what} to a temporary file in {} ({e}); meshtrace reads it more than once, so it holds a copy: free space there, set TMPDIR to a folder with more room, or pass the log as a file",
                std::env::temp_dir().display()
            ),
        },
    )?;
    if len > max {
        anyhow::bail!(
            "{what} is larger than the {} GiB meshtrace copies to trace a request; save it to a file and pass the file",
            max >> 30
        );
    }
    Ok(LogSource::Spooled {
        file: Arc::new(file),
        start: 0,
        len,
    })
}

/// Which side of [`copy_counted`] failed.
enum Copy {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// `std::io::copy`, telling a failed read from a failed write (a full temporary folder is not
/// a problem of the input). Ends with the input: each turn reads at least one byte or stops.
fn copy_counted(
    input: &mut impl std::io::Read,
    out: &mut impl std::io::Write,
) -> Result<u64, Copy> {
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(len),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(Copy::Write)?;
        len += n as u64;
    }
}

/// Read the copy of standard input or a named pipe (see [`spool`]) like a file: searched in
/// place when large.
fn read_spooled(
    src: &LogSource,
    name: &str,
    spec: &FormatSpec,
    logs: &mut LogSet,
    filter: &LineFilter,
) -> Result<(), crate::source::input::InputError> {
    logs.inputs.push(name.to_string());
    match (src, filter) {
        (
            LogSource::Spooled {
                file,
                start: 0,
                len,
            },
            LineFilter::Needles(nf),
        ) if *len >= STREAM_MIN_BYTES && !crate::source::scan::is_gzip(file) => {
            read_needles_open(file, *len, name, None, spec, logs, nf)
        }
        _ => match src.open() {
            Ok(r) => read_pod_log_filtered(r, name, None, spec, logs, filter, src.size()),
            Err(source) => Err(crate::source::input::InputError::Open {
                path: name.to_string(),
                source,
            }),
        },
    }
}

/// Put the logs, the bundle's objects, topology and dumps together.
fn finish(opened: Option<Opened>, logs: LogSet, read_problems: Vec<String>) -> Evidence {
    let mut ev = Evidence {
        logs,
        ..Evidence::default()
    };
    if let Some(Opened {
        bundle: b,
        dumps,
        problems,
        ..
    }) = opened
    {
        ev.bundle = Some(b.root.clone());
        ev.collected_at = b
            .manifest
            .as_ref()
            .and_then(|m| m.collected_at.as_deref())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        ev.problems = problems;
        ev.problems.extend(read_problems);
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
    } else {
        ev.problems = read_problems;
    }
    ev
}

/// The most Knative proxy-error lines [`knative_lines`] keeps from one log.
const KNATIVE_LINES_KEPT: usize = 4_096;

/// The Knative activator's or queue-proxy's `error reverse proxying request` lines of one log
/// (at most [`KNATIVE_LINES_KEPT`]); an unreadable log gives none (the stream reports it).
fn knative_lines(
    source: &LogSource,
    name: &str,
    namespace: &str,
    pod: &str,
    spec: &FormatSpec,
) -> Vec<meshtrace_analysis::model::KnativeLine> {
    use meshtrace_analysis::model::{KnativeLine, LineSink, LogLine, SkippedLine};
    #[derive(Default)]
    struct Keep(Vec<KnativeLine>);
    impl LineSink for Keep {
        fn record(&mut self, _: LogLine) {}
        fn skipped(&mut self, _: SkippedLine) {}
        fn ok_records(&mut self, _: u64) {}
        fn knative(&mut self, line: KnativeLine, _: SkippedLine) {
            if self.0.len() < KNATIVE_LINES_KEPT {
                self.0.push(line);
            }
        }
    }
    let mut keep = Keep::default();
    if let Ok(r) = source.open() {
        let _ = crate::source::input::read_streamed(
            r,
            name,
            Some(Arc::from(format!("{namespace}/{pod}"))),
            spec,
            source.size(),
            false,
            &mut keep,
            None,
        );
    }
    keep.0
}
