//! `--loki URL`: the flags of the log-store source shared by `trace`, `failures`, `explain`,
//! `report` and `collect`, and the glue that turns a read from Loki into an evidence bundle in a
//! private temporary folder (or `collect`'s folder) that the offline path then reads. Objects come
//! from `--bundle` (its objects, config dumps and formats; not its logs), else from the cluster
//! when a kubeconfig is usable, else roles are inferred from the lines.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::live::LiveOptions;
use crate::live::loki::{LokiOptions, LokiSummary, Mode};
use crate::live::private::PrivateDir;

/// Where the proxies' logs are read from when the pods are gone.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LokiArgs {
    /// Read the proxies' access logs from Loki (repeatable): a Loki base URL such as
    /// http://loki:3100, or a LokiStack tenant URL such as
    /// https://<gateway>/api/logs/v1/application (docs/loki.md in meshtrace's source repository). -n, -c, --since,
    /// --since-time and --until choose the streams and the time range.
    #[arg(long = "loki", value_name = "URL", help_heading = "Log store")]
    pub loki: Vec<String>,
    /// Bearer token for Loki, read from this file (default: the kubeconfig's token, over HTTPS
    /// only).
    #[arg(
        long,
        value_name = "FILE",
        requires = "loki",
        help_heading = "Log store"
    )]
    pub loki_token_file: Option<PathBuf>,
    /// CA bundle (PEM) that signed Loki's certificate (default: the system's trusted CAs, then
    /// the kubeconfig's cluster CA).
    #[arg(
        long,
        value_name = "FILE",
        requires = "loki",
        help_heading = "Log store"
    )]
    pub loki_ca_file: Option<PathBuf>,
    /// Tenant of a multi-tenant Loki, sent as X-Scope-OrgID.
    #[arg(
        long,
        value_name = "TENANT",
        requires = "loki",
        help_heading = "Log store"
    )]
    pub loki_org_id: Option<String>,
    /// Stream selector to use instead of the one built from the labels, e.g.
    /// '{namespace="kserve-test", container="istio-proxy"}'.
    #[arg(
        long,
        value_name = "SELECTOR",
        requires = "loki",
        help_heading = "Log store"
    )]
    pub loki_selector: Option<String>,
    /// Show each log-store query on standard error (the token is never shown).
    #[arg(short = 'v', long = "verbose", help_heading = "Log store")]
    pub verbose: bool,
}

/// What a command reads from Loki.
pub enum Read<'a> {
    /// Every selected access-log line in the time range.
    All,
    /// The lines of one request (`trace`, `report <id>`).
    Trace {
        /// The request id or client address as given.
        start: &'a str,
        /// `--include-probes`.
        include_probes: bool,
    },
}

impl LokiArgs {
    /// `--loki` was given.
    pub fn active(&self) -> bool {
        !self.loki.is_empty()
    }

    fn options(&self, lo: &LiveOptions, custom_format: bool) -> LokiOptions {
        LokiOptions {
            urls: self.loki.clone(),
            auth: crate::live::loki::client::Auth {
                token_file: self.loki_token_file.clone(),
                ca_file: self.loki_ca_file.clone(),
                org_id: self.loki_org_id.clone(),
                kubeconfig: lo.kubeconfig.clone(),
                context: lo.context.clone(),
            },
            selector: self.loki_selector.clone(),
            // -A or no -n: every namespace (gateways and the activator run elsewhere than the
            // model); with -n, those and the control-plane namespaces (where the ingress
            // gateway usually runs).
            namespaces: if lo.all_namespaces || lo.namespaces.is_empty() {
                Vec::new()
            } else {
                let mut v = lo.namespaces.clone();
                for n in &lo.istio_namespaces {
                    if !v.contains(n) {
                        v.push(n.clone());
                    }
                }
                v
            },
            containers: if lo.all_containers {
                Vec::new()
            } else {
                lo.containers.clone()
            },
            access_log_filter: !custom_format,
            window: lo.window.clone(),
            connect_timeout: lo.connect_timeout,
            request_timeout: lo.request_timeout,
            deadline: lo.deadline,
        }
    }
}

/// Read from Loki into a fresh private temporary bundle (removed when the guard is dropped).
pub fn evidence(
    loki: &LokiArgs,
    live: &LiveOptions,
    bundle: Option<&Path>,
    format: Option<&meshtrace_parsers::detect::FormatSpec>,
    read: Read<'_>,
) -> Result<(PrivateDir, PathBuf)> {
    let dir = crate::live::private::temp_dir("meshtrace-loki-")
        .context("cannot create a temporary folder for the logs read from Loki")?;
    fill(loki, live, bundle, format, read, dir.path())?;
    let p = dir.path().to_path_buf();
    Ok((dir, p))
}

/// Write a bundle from Loki into `dir`: objects (from `bundle`, else the cluster), then the logs.
pub fn fill(
    loki: &LokiArgs,
    live: &LiveOptions,
    bundle: Option<&Path>,
    format: Option<&meshtrace_parsers::detect::FormatSpec>,
    read: Read<'_>,
    dir: &Path,
) -> Result<LokiSummary> {
    let base = match bundle {
        Some(b) => Some(copy_objects(b, dir)?),
        None => cluster_objects(live, dir),
    };
    let opts = loki.options(live, format.is_some());
    let verbose = loki.verbose;
    let log = |s: &str| {
        if verbose {
            crate::report::warn(s);
        }
    };
    let summary = match read {
        Read::All => crate::live::loki::fetch(&opts, dir, Mode::All, &log),
        Read::Trace {
            start,
            include_probes,
        } => {
            let st = crate::correlate::Start::parse(start);
            let mut widen = |d: &Path| -> (Vec<String>, Option<(i128, i128)>) {
                let Ok(ev) = crate::source::load::load(Some(d), &[], format) else {
                    return (Vec::new(), None);
                };
                let (needles, window) =
                    crate::correlate::widening(&ev.logs.records, &st, include_probes);
                let nanos = |t: chrono::DateTime<chrono::FixedOffset>| {
                    t.timestamp_nanos_opt().map(i128::from)
                };
                let w = window.and_then(|(a, b)| Some((nanos(a)?, nanos(b)?)));
                (needles, w)
            };
            crate::live::loki::fetch(
                &opts,
                dir,
                Mode::Trace {
                    needles: st.needles(),
                    widen: &mut widen,
                },
                &log,
            )
        }
    }
    .context("reading the logs from Loki")?;
    crate::live::loki::write_manifest(dir, base, &summary, &loki.loki)?;
    for n in &summary.notes {
        if !verbose {
            crate::report::warn(format!("found: {n}"));
        }
    }
    for p in &summary.problems {
        crate::report::warn(format!("not read from Loki: {p}"));
    }
    if summary.lines == 0 {
        let t = |ns: i128| {
            jiff::Timestamp::from_nanosecond(ns)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default()
        };
        crate::report::warn(format!(
            "Loki returned no line between {} and {}: widen the time range with --since, --since-time or --until (without them, the last 24 hours are read), or check -n, -c and --loki-selector",
            t(summary.range.0),
            t(summary.range.1 - 1)
        ));
    }
    if verbose {
        crate::report::warn(format!(
            "loki: {} call(s) ({} query page(s)), {} line(s) kept in {} log(s)",
            summary.calls, summary.query_calls, summary.lines, summary.logs
        ));
    }
    Ok(summary)
}

/// The objects, config dumps and formats of a given bundle, copied into `dir` (its logs are not:
/// they come from Loki). Returns the manifest to extend.
fn copy_objects(bundle: &Path, dir: &Path) -> Result<serde_json::Value> {
    use crate::source::limits::MAX_CONFIG_DUMP_BYTES;
    use std::io::Read as _;
    let b = crate::source::bundle::Bundle::open(bundle)
        .with_context(|| format!("--bundle {}", bundle.display()))?;
    let items: Vec<&serde_json::Value> = b.objects.iter().map(|o| &o.value).collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let path = dir.join("resources").join("from-bundle.json");
    let f = crate::live::private::create_file(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    serde_json::to_writer(std::io::BufWriter::new(f), &list)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for c in &b.config_dumps {
        let mut text = Vec::new();
        if c.source
            .open()
            .and_then(|r| r.take(MAX_CONFIG_DUMP_BYTES + 1).read_to_end(&mut text))
            .is_err()
            || text.len() as u64 > MAX_CONFIG_DUMP_BYTES
        {
            continue;
        }
        let ns = sanitize(&c.namespace);
        let pod = sanitize(&c.pod);
        let path = dir.join("config_dump").join(ns).join(format!("{pod}.json"));
        let mut f = crate::live::private::create_file(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut f, &text)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let m = b.manifest.clone().unwrap_or_default();
    let mut formats = m.log_formats.clone();
    if formats.is_empty() {
        formats.insert("default".into(), "auto".into());
    }
    Ok(serde_json::json!({
        "version": 1,
        "cluster": m.cluster,
        "log_formats": formats,
        "notes": format!("objects from {}", bundle.display()),
    }))
}

fn sanitize(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if c.is_empty() || c.chars().all(|c| c == '.') {
        "unknown".into()
    } else {
        c
    }
}

/// The cluster's objects (no logs, no config dumps) when a kubeconfig is usable; otherwise a
/// note, and roles are inferred from the lines.
fn cluster_objects(live: &LiveOptions, dir: &Path) -> Option<serde_json::Value> {
    let mut opts = live.clone();
    opts.config_dumps = false;
    opts.containers = Vec::new();
    opts.all_containers = false;
    opts.progress = false;
    opts.collector = format!("meshtrace {} (objects: cluster)", env!("CARGO_PKG_VERSION"));
    match crate::live::collect(&opts, dir) {
        Ok(s) => {
            for p in &s.problems {
                crate::report::warn(format!("not collected: {p}"));
            }
            std::fs::read(dir.join("meshtrace-bundle.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        }
        Err(crate::live::LiveError::Config { .. }) => {
            crate::report::warn(
                "no kubeconfig: the pods and mesh objects are not known; roles are inferred from the lines (give --bundle with the objects for citations)",
            );
            None
        }
        Err(e) => {
            crate::report::warn(format!(
                "the mesh objects could not be read from the cluster ({e}); roles are inferred from the lines (give --bundle with the objects for citations)"
            ));
            None
        }
    }
}

/// With `--loki`: a bundle written from Loki in a private temporary folder (objects from
/// `bundle` or the cluster), and its path; `None` without `--loki`.
pub fn read(
    loki: &LokiArgs,
    live: &LiveOptions,
    format: Option<&meshtrace_parsers::detect::FormatSpec>,
    read: Read<'_>,
    bundle: Option<&Path>,
) -> Result<Option<(PrivateDir, PathBuf)>> {
    if !loki.active() {
        return Ok(None);
    }
    evidence(loki, live, bundle, format, read).map(Some)
}

/// `collect --loki`: the bundle layout of a live collection, its logs read from Loki (for an
/// incident whose pods are gone), its objects from the cluster when reachable.
pub fn collect(loki: &LokiArgs, live: &LiveOptions, dir: &Path) -> Result<crate::live::Summary> {
    let s = fill(loki, live, None, None, Read::All, dir)?;
    Ok(crate::live::Summary {
        cluster: loki.loki.join(", "),
        logs: s.logs,
        bytes: s.bytes,
        // Already said on standard error by `fill`.
        ..crate::live::Summary::default()
    })
}
