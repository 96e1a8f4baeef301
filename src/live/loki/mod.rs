//! The log-store source: the proxies' access logs read from Loki (Grafana Loki, or the LokiStack
//! gateway of OpenShift Logging) when the pods are gone, written as the container logs of an
//! evidence bundle (`logs/<namespace>/<pod>/<container>.log`) that the offline commands then read.
//!
//! Two ways of reading: [`Mode::All`] reads the selected streams over the time range (access-log
//! lines only, unless a custom format is given) for `failures`, `explain`, `report` and
//! `collect`; [`Mode::Trace`] never reads a whole stream: it asks for the lines holding the
//! request id (`|= "<id>"`), then — round by round — for the next ids and connection addresses
//! the caller's correlation finds, in the request's time range. Every query is paged
//! (`direction=forward`, the next page from the last time seen, lines at the boundary
//! deduplicated), bounded (`bounds::LOKI_*`) and shown to the caller's `log` for `-v`.
//! `query` holds the pure request builders and answer parsing; `client` the HTTP client.

pub mod client;
pub mod query;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;

use super::Window;
use super::bounds::{
    self, Clock, LOKI_CONCURRENCY, LOKI_DEFAULT_LOOKBACK, LOKI_MAX_BYTES, LOKI_MAX_PAGES,
    LOKI_PAGE_LINES, LOKI_TRACE_NEEDLES, LOKI_TRACE_ROUNDS,
};
use super::private;
use client::{Auth, CallError, Loki, Plan};
use query::{Convention, Entry, LineFilter};

/// What to read from which Loki.
#[derive(Debug, Clone, Default)]
pub struct LokiOptions {
    /// `--loki URL` (repeatable).
    pub urls: Vec<String>,
    /// Token, CA, org id, kubeconfig.
    pub auth: Auth,
    /// `--loki-selector` (replaces the selector built from the labels).
    pub selector: Option<String>,
    /// `-n` (empty: every namespace).
    pub namespaces: Vec<String>,
    /// `-c` (empty: every container).
    pub containers: Vec<String>,
    /// Keep only access-log lines in [`Mode::All`] (off with a custom `--log-format`).
    pub access_log_filter: bool,
    /// `--since`, `--since-time`, `--until`.
    pub window: Window,
    /// `--connect-timeout`.
    pub connect_timeout: Duration,
    /// `--request-timeout` (`None`: none).
    pub request_timeout: Option<Duration>,
    /// `--deadline` (`None`: none).
    pub deadline: Option<Duration>,
}

/// A trace's correlation: given the bundle folder written so far, every needle known and the
/// request's time range (Unix nanoseconds).
pub type Widen<'a> = dyn FnMut(&Path) -> (Vec<String>, Option<(i128, i128)>) + 'a;

/// What to read.
pub enum Mode<'a> {
    /// Every selected line over the time range.
    All,
    /// Only the lines of one request: start with `needles`, then ask `widen` (given the bundle
    /// folder as written so far) for every needle known and the request's time range (Unix
    /// nanoseconds).
    Trace {
        /// The first search strings (the request id, or the client address).
        needles: Vec<String>,
        /// The caller's correlation.
        widen: &'a mut Widen<'a>,
    },
}

/// What a read did.
#[derive(Debug, Clone, Default)]
pub struct LokiSummary {
    /// HTTP calls made (label names and every page).
    pub calls: usize,
    /// `query_range` calls made.
    pub query_calls: usize,
    /// Lines kept (after deduplication).
    pub lines: usize,
    /// Bytes of lines kept.
    pub bytes: u64,
    /// Container logs written.
    pub logs: usize,
    /// The time range read (Unix nanoseconds, end exclusive).
    pub range: (i128, i128),
    /// What was found (label conventions, selectors).
    pub notes: Vec<String>,
    /// What could not be read, one sentence each (the read goes on where it can).
    pub problems: Vec<String>,
}

/// A failure that leaves nothing to analyse.
#[derive(Debug, thiserror::Error)]
pub enum LokiError {
    /// Bad options (URL, token file, CA file, time range).
    #[error("{0}")]
    Setup(String),
    /// No Loki could be read at all.
    #[error("{0}")]
    Failed(String),
    /// Writing the bundle failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Read from every `--loki` into the bundle folder `dir` (its `logs/`); `log` receives one line
/// per call for `-v` (the token is never in it).
pub fn fetch(
    opts: &LokiOptions,
    dir: &Path,
    mode: Mode<'_>,
    log: &dyn Fn(&str),
) -> Result<LokiSummary, LokiError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LokiError::Runtime)?;
    rt.block_on(run(opts, dir, mode, log))
}

/// The time range in Unix nanoseconds: `--since-time` or now minus `--since` (default
/// [`LOKI_DEFAULT_LOOKBACK`]) up to `--until` or now.
pub fn range(w: &Window, now: jiff::Timestamp) -> Result<(i128, i128), String> {
    let end = w.until.unwrap_or(now);
    let start = match (w.since_time, w.since) {
        (Some(t), _) => t.as_nanosecond(),
        (None, Some(d)) => now.as_nanosecond() - d.as_nanos() as i128,
        (None, None) => end.as_nanosecond() - LOKI_DEFAULT_LOOKBACK.as_nanos() as i128,
    };
    // Loki's `end` is exclusive: one nanosecond more keeps a line written at --until.
    let end = end.as_nanosecond() + 1;
    if start >= end {
        return Err(format!(
            "the time range is empty: --since-time/--since start at or after --until ({})",
            w.until.map(|t| t.to_string()).unwrap_or_default()
        ));
    }
    Ok((start, end))
}

/// Lines kept, by container, in time order, deduplicated.
#[derive(Debug, Default)]
struct Store {
    files: BTreeMap<(String, String, String), BTreeSet<(i128, String)>>,
    bytes: u64,
    lines: usize,
    unattributed: usize,
    full: bool,
}

/// A path component from a label value: letters, digits, `.`, `-`, `_` (anything else `_`),
/// never `.` or `..`.
fn component(s: Option<&str>) -> String {
    let s = s.unwrap_or("").trim();
    let c: String = s
        .chars()
        .take(253)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if c.is_empty() || c.chars().all(|c| c == '.') {
        "unknown".to_string()
    } else {
        c
    }
}

impl Store {
    /// Keep one line; `false` if it was already kept (or the store is full).
    fn insert(&mut self, e: &Entry, conv: Convention) -> bool {
        let a = query::attribute(e, conv);
        if a.pod.is_none() {
            self.unattributed += 1;
        }
        let key = (
            component(a.namespace.as_deref()),
            component(a.pod.as_deref()),
            component(a.container.as_deref()),
        );
        let size = a.text.len() as u64 + 1;
        if self.bytes + size > LOKI_MAX_BYTES {
            self.full = true;
            return false;
        }
        let set = self.files.entry(key).or_default();
        if set.insert((e.ts, a.text)) {
            self.bytes += size;
            self.lines += 1;
            true
        } else {
            false
        }
    }

    /// Write every container log (rewritten whole: lines in time order).
    fn write(&self, dir: &Path) -> Result<usize, LokiError> {
        for ((ns, pod, c), lines) in &self.files {
            let path = dir.join("logs").join(ns).join(pod).join(format!("{c}.log"));
            let io = |e| LokiError::Io {
                path: path.display().to_string(),
                source: e,
            };
            let f = private::create_file(&path).map_err(io)?;
            let mut w = std::io::BufWriter::new(f);
            for (_, l) in lines {
                w.write_all(l.as_bytes()).map_err(io)?;
                w.write_all(b"\n").map_err(io)?;
            }
            w.flush().map_err(io)?;
        }
        Ok(self.files.len())
    }
}

/// One Loki ready to query: its client, label convention and stream selector.
struct Source {
    loki: Loki,
    conv: Convention,
    selector: String,
    /// A 401/403/404/TLS answer: nothing more is asked of it.
    dead: bool,
}

/// The answer of one query (every page), or how it ended early.
struct Answer {
    entries: Vec<Entry>,
    pages: usize,
    error: Option<CallError>,
    cut: Option<String>,
}

async fn run(
    opts: &LokiOptions,
    dir: &Path,
    mode: Mode<'_>,
    log: &dyn Fn(&str),
) -> Result<LokiSummary, LokiError> {
    if opts.urls.is_empty() {
        return Err(LokiError::Setup("no --loki URL given".into()));
    }
    let clock = Clock::new(opts.request_timeout, opts.deadline);
    let (start, end) = range(&opts.window, jiff::Timestamp::now()).map_err(LokiError::Setup)?;
    let mut summary = LokiSummary {
        range: (start, end),
        ..LokiSummary::default()
    };
    let mut sources: Vec<Source> = Vec::new();
    for url in &opts.urls {
        let plan = Plan::new(url, &opts.auth).await.map_err(LokiError::Setup)?;
        match connect(opts, &plan, &clock, (start, end), log, &mut summary).await {
            Ok(s) => sources.push(s),
            Err(e) => summary.problems.push(e),
        }
    }
    if sources.is_empty() {
        return Err(LokiError::Failed(summary.problems.join(" ")));
    }
    private::create_dir_all(dir).map_err(|e| LokiError::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let mut store = Store::default();
    match mode {
        Mode::All => {
            let filter = if opts.access_log_filter {
                LineFilter::AccessLogs
            } else {
                LineFilter::None
            };
            let jobs: Vec<(usize, String)> = sources
                .iter()
                .enumerate()
                .map(|(i, s)| (i, query::logql(&s.selector, &filter)))
                .collect();
            run_queries(
                &mut sources,
                jobs,
                (start, end),
                &clock,
                log,
                &mut store,
                &mut summary,
            )
            .await;
        }
        Mode::Trace { needles, widen } => {
            let mut asked: BTreeSet<String> = BTreeSet::new();
            let mut pending = needles;
            let mut window = (start, end);
            let mut capped = false;
            for _round in 0..LOKI_TRACE_ROUNDS {
                let mut fresh: Vec<String> = Vec::new();
                for n in pending {
                    if n.is_empty() || asked.contains(&n) || fresh.contains(&n) {
                        continue;
                    }
                    if asked.len() + fresh.len() >= LOKI_TRACE_NEEDLES {
                        capped = true;
                        break;
                    }
                    fresh.push(n);
                }
                if fresh.is_empty() {
                    break;
                }
                asked.extend(fresh.iter().cloned());
                let mut jobs = Vec::new();
                for (i, s) in sources.iter().enumerate() {
                    for n in &fresh {
                        jobs.push((
                            i,
                            query::logql(&s.selector, &LineFilter::Contains(n.clone())),
                        ));
                    }
                }
                run_queries(
                    &mut sources,
                    jobs,
                    window,
                    &clock,
                    log,
                    &mut store,
                    &mut summary,
                )
                .await;
                if sources.iter().all(|s| s.dead) || store.full {
                    break;
                }
                summary.logs = store.write(dir)?;
                let (next, w) = widen(dir);
                if let Some((a, b)) = w {
                    // The request's own time range (with the caller's slack), inside the user's.
                    let a = a.max(start);
                    let b = (b + 1).min(end);
                    if a < b {
                        window = (a, b);
                    }
                }
                pending = next;
            }
            // The Knative proxies' own lines name the revision, not the request: asked once,
            // over the request's time range, wherever they run (the activator's namespace is
            // seldom the model's), unless the user chose the streams.
            if opts.selector.is_none() && !store.full && !sources.iter().all(|s| s.dead) {
                let containers: Vec<String> = query::KNATIVE_CONTAINERS
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                let jobs: Vec<(usize, String)> = sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| !s.dead)
                    .map(|(i, s)| {
                        let sel = query::selector(s.conv, &[], &containers);
                        (i, query::logql(&sel, &LineFilter::KnativeErrors))
                    })
                    .collect();
                run_queries(
                    &mut sources,
                    jobs,
                    window,
                    &clock,
                    log,
                    &mut store,
                    &mut summary,
                )
                .await;
            }
            if capped {
                summary.problems.push(format!(
                    "the search in Loki stopped at {LOKI_TRACE_NEEDLES} request ids and connection addresses (bounds::LOKI_TRACE_NEEDLES); hops found through later ones are missing"
                ));
            }
        }
    }
    if store.full {
        summary.problems.push(format!(
            "the lines read from Loki reached {} and the rest was not read; narrow the time range with --since/--until or the streams with -n/-c",
            bounds::bytes(LOKI_MAX_BYTES)
        ));
    }
    if store.unattributed > 0 {
        summary.problems.push(format!(
            "{} line(s) from Loki name no pod (no pod label, no kubernetes.pod_name); they are kept under logs/…/unknown/ and get no role: give --loki-selector on streams that carry pod labels",
            store.unattributed
        ));
    }
    summary.logs = store.write(dir)?;
    summary.lines = store.lines;
    summary.bytes = store.bytes;
    Ok(summary)
}

/// Reach one Loki: ask its label names once (over the range) to choose the label convention
/// (a LokiStack tenant URL is ViaQ when the answer says nothing), and build the selector. A TLS
/// failure with the system's trusted CAs is retried once with the kubeconfig's cluster CA.
async fn connect(
    opts: &LokiOptions,
    plan: &Plan,
    clock: &Clock,
    (start, end): (i128, i128),
    log: &dyn Fn(&str),
    summary: &mut LokiSummary,
) -> Result<Source, String> {
    let path = query::labels_path(start, end);
    let mut loki = plan.client(false, opts.connect_timeout, clock.clone())?;
    let headers = query::shown_headers(loki.org_id.as_deref(), loki.token_from.is_some());
    log(&format!(
        "loki: GET {}{path}{}",
        loki.url,
        if headers.is_empty() {
            String::new()
        } else {
            format!(" ({headers})")
        }
    ));
    summary.calls += 1;
    let mut answer = loki.get(&path).await;
    if matches!(answer, Err(CallError::Tls(_))) && plan.has_cluster_ca() {
        loki = plan.client(true, opts.connect_timeout, clock.clone())?;
        log(&format!(
            "loki: TLS with the system's CAs failed; again with {}: GET {}{path}",
            loki.ca_from, loki.url
        ));
        summary.calls += 1;
        answer = loki.get(&path).await;
    }
    let names = match answer {
        Ok(body) => query::parse_labels(&body).map_err(|e| format!("Loki at {}: {e}", loki.url))?,
        // A server that answers queries but not label names (a proxy allowing only
        // query_range) still gets the queries; anything that says the URL or the token is
        // wrong stops here.
        Err(e) if e.is_fatal() => {
            return Err(match (&e, loki.token_from) {
                (CallError::Status { status: 401, .. }, Some(from)) => {
                    format!("{e} (token from {from})")
                }
                _ => e.to_string(),
            });
        }
        Err(e) => {
            summary.problems.push(format!(
                "{e} (asking the label names; the label convention is guessed from the URL)"
            ));
            Vec::new()
        }
    };
    let conv = Convention::from_labels(&names)
        .or_else(|| Convention::from_url(&loki.url))
        .unwrap_or(Convention::Plain);
    let selector = match &opts.selector {
        Some(s) => s.clone(),
        None => query::selector(conv, &opts.namespaces, &opts.containers),
    };
    let tenant = query::lokistack_tenant(&loki.url)
        .map(|t| format!(", LokiStack tenant {t}"))
        .unwrap_or_default();
    summary.notes.push(format!(
        "Loki at {}: {}{tenant}; streams {selector}; token from {}; TLS with {}",
        loki.url,
        conv.name(),
        loki.token_from.unwrap_or("nowhere (none sent)"),
        loki.ca_from
    ));
    log(&format!(
        "loki: {}",
        summary.notes.last().map(String::as_str).unwrap_or("")
    ));
    if Convention::from_labels(&names).is_none() && opts.selector.is_none() && !names.is_empty() {
        summary.problems.push(format!(
            "Loki at {} has none of the known pod labels ({}); the selector {selector} may match nothing: give --loki-selector",
            loki.url,
            names.iter().take(12).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(Source {
        loki,
        conv,
        selector,
        dead: false,
    })
}

/// Run `jobs` (source index, LogQL) over `range`, at most [`LOKI_CONCURRENCY`] at once, and keep
/// their lines.
async fn run_queries(
    sources: &mut [Source],
    jobs: Vec<(usize, String)>,
    range: (i128, i128),
    clock: &Clock,
    log: &dyn Fn(&str),
    store: &mut Store,
    summary: &mut LokiSummary,
) {
    let _ = clock;
    let answers: Vec<(usize, Answer)> = {
        let srcs: &[Source] = sources;
        futures::stream::iter(jobs.into_iter().filter(|(i, _)| !srcs[*i].dead))
            .map(|(i, q)| async move { (i, query_pages(&srcs[i].loki, &q, range, log).await) })
            .buffer_unordered(LOKI_CONCURRENCY)
            .collect()
            .await
    };
    for (i, a) in answers {
        summary.calls += a.pages;
        summary.query_calls += a.pages;
        for e in &a.entries {
            store.insert(e, sources[i].conv);
        }
        if let Some(c) = a.cut {
            summary.problems.push(c);
        }
        if let Some(e) = a.error {
            if e.is_fatal() {
                sources[i].dead = true;
            }
            let s = format!("{e}; the lines read before are kept");
            if !summary.problems.contains(&s) {
                summary.problems.push(s);
            }
        }
    }
}

/// Every page of one query: `direction=forward`, [`LOKI_PAGE_LINES`] a page, the next page from
/// the last time seen (lines of that time seen twice are dropped), at most [`LOKI_MAX_PAGES`]
/// pages and [`LOKI_MAX_BYTES`] of lines.
async fn query_pages(
    loki: &Loki,
    q: &str,
    (start, end): (i128, i128),
    log: &dyn Fn(&str),
) -> Answer {
    let mut out = Answer {
        entries: Vec::new(),
        pages: 0,
        error: None,
        cut: None,
    };
    let mut seen: BTreeSet<(String, i128, String)> = BTreeSet::new();
    let mut from = start;
    let mut bytes: u64 = 0;
    loop {
        if out.pages == LOKI_MAX_PAGES {
            out.cut = Some(format!(
                "the query {q} on Loki at {} was cut after {LOKI_MAX_PAGES} pages of {LOKI_PAGE_LINES} lines (bounds::LOKI_MAX_PAGES); narrow the time range with --since/--until",
                loki.url
            ));
            break;
        }
        let path = query::query_range_path(q, from, end, LOKI_PAGE_LINES);
        log(&format!(
            "loki: GET {}{}",
            loki.url,
            client::short_path(&path)
        ));
        out.pages += 1;
        let body = match loki.get(&path).await {
            Ok(b) => b,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        let entries = match query::parse_streams(&body) {
            Ok(e) => e,
            Err(e) => {
                out.error = Some(CallError::Answer(format!("Loki at {}: {e}", loki.url)));
                break;
            }
        };
        let n = entries.len();
        let mut fresh = 0usize;
        let mut last = from;
        for e in entries {
            last = last.max(e.ts);
            let key = (format!("{:?}", e.stream), e.ts, e.line.clone());
            if seen.insert(key) {
                fresh += 1;
                bytes += e.line.len() as u64;
                out.entries.push(e);
            }
        }
        if bytes > LOKI_MAX_BYTES {
            out.cut = Some(format!(
                "the query {q} on Loki at {} reached {} and was cut; narrow the time range with --since/--until",
                loki.url,
                bounds::bytes(LOKI_MAX_BYTES)
            ));
            break;
        }
        if n < LOKI_PAGE_LINES || last >= end {
            break;
        }
        // A full page: the next one starts at the last time seen (more lines may share it);
        // a page of nothing new means more lines share one nanosecond than a page holds.
        if fresh == 0 {
            out.cut = Some(format!(
                "more than {LOKI_PAGE_LINES} lines of the query {q} on Loki at {} share one timestamp; the others at that time were skipped",
                loki.url
            ));
            from = last + 1;
        } else {
            from = last;
        }
        // Forget what is older than the next page: only lines at `from` can come again.
        seen.retain(|(_, ts, _)| *ts >= from);
    }
    out
}

/// The manifest of a bundle written from Loki: `base` (a given bundle's manifest, or a live
/// collection's) with the time reference set to the end of the range read, and the Loki notes
/// and problems added.
pub fn write_manifest(
    dir: &Path,
    base: Option<serde_json::Value>,
    summary: &LokiSummary,
    urls: &[String],
) -> Result<(), LokiError> {
    let mut m = base.unwrap_or_else(|| {
        serde_json::json!({
            "version": 1,
            "log_formats": {"default": "auto"},
        })
    });
    let end = jiff::Timestamp::from_nanosecond(summary.range.1 - 1)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    if let Some(o) = m.as_object_mut() {
        o.insert("collected_at".into(), serde_json::json!(end));
        o.insert(
            "collector".into(),
            serde_json::json!(format!(
                "meshtrace {} (Loki: {})",
                env!("CARGO_PKG_VERSION"),
                urls.join(", ")
            )),
        );
        let mut notes: Vec<String> = o
            .get("notes")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| vec![s.to_string()])
            .unwrap_or_default();
        notes.extend(summary.notes.iter().cloned());
        o.insert("notes".into(), serde_json::json!(notes.join("\n")));
        let mut problems: Vec<serde_json::Value> = o
            .get("problems")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        problems.extend(summary.problems.iter().map(|p| serde_json::json!(p)));
        o.insert("problems".into(), serde_json::Value::Array(problems));
    }
    let path = dir.join("meshtrace-bundle.json");
    let io = |e| LokiError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let f = private::create_file(&path).map_err(io)?;
    let mut w = std::io::BufWriter::new(f);
    serde_json::to_writer_pretty(&mut w, &m).map_err(|e| io(std::io::Error::other(e)))?;
    w.flush().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_window_flags() {
        let now: jiff::Timestamp = "2024-04-25T21:00:00Z".parse().unwrap();
        let w = Window {
            since: Some(Duration::from_secs(60)),
            ..Window::default()
        };
        let (a, b) = range(&w, now).unwrap();
        assert_eq!(b - a, 60_000_000_001);
        let w = Window {
            since_time: Some("2024-04-25T20:00:00Z".parse().unwrap()),
            until: Some("2024-04-25T20:30:00Z".parse().unwrap()),
            ..Window::default()
        };
        let (a, b) = range(&w, now).unwrap();
        assert_eq!(b - a, 1_800_000_000_001);
        let w = Window {
            since_time: Some("2024-04-25T20:40:00Z".parse().unwrap()),
            until: Some("2024-04-25T20:30:00Z".parse().unwrap()),
            ..Window::default()
        };
        assert!(range(&w, now).is_err());
        let (a, b) = range(&Window::default(), now).unwrap();
        assert_eq!(b - a, LOKI_DEFAULT_LOOKBACK.as_nanos() as i128 + 1);
    }

    #[test]
    fn label_values_become_safe_path_components() {
        assert_eq!(component(Some("istio-proxy")), "istio-proxy");
        assert_eq!(component(Some("../etc")), ".._etc");
        assert_eq!(component(Some("..")), "unknown");
        assert_eq!(component(Some("a/b")), "a_b");
        assert_eq!(component(None), "unknown");
    }

    #[test]
    fn the_store_deduplicates_and_orders() {
        let mut s = Store::default();
        let e = |ts: i128, l: &str| Entry {
            stream: [
                ("namespace".to_string(), "n".to_string()),
                ("pod".to_string(), "p".to_string()),
                ("container".to_string(), "istio-proxy".to_string()),
            ]
            .into_iter()
            .collect(),
            ts,
            line: l.to_string(),
        };
        assert!(s.insert(&e(2, "b"), Convention::Plain));
        assert!(s.insert(&e(1, "a"), Convention::Plain));
        assert!(!s.insert(&e(2, "b"), Convention::Plain));
        assert_eq!(s.lines, 2);
        let d = tempfile::tempdir().unwrap();
        assert_eq!(s.write(d.path()).unwrap(), 1);
        let text = std::fs::read_to_string(d.path().join("logs/n/p/istio-proxy.log")).unwrap();
        assert_eq!(text, "a\nb\n");
    }
}
