//! `meshtrace proxy-config routes|clusters|listeners|endpoints|secrets|bootstrap|ecds|all`:
//! istioctl-equivalent tables of one proxy's Envoy config dump (a file, or a pod of a bundle).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use meshtrace_parsers::configdump::ConfigDump;

use crate::commands::EXIT_OK;
use crate::proxyconfig::{self as pc, Filter, Table};
pub use crate::report::proxy_config::PcOutput;

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Route configurations, one row per route.
    Routes,
    /// Clusters.
    Clusters,
    /// Listeners, one row per filter chain.
    Listeners,
    /// Endpoints of every cluster.
    Endpoints,
    /// SDS secrets with certificate validity.
    Secrets,
    /// Istio and Envoy versions.
    Bootstrap,
    /// ECDS extension configs.
    Ecds,
    /// Everything above.
    All,
}

/// Where the config dump comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct DumpSource {
    /// A config dump file (`/config_dump`, `?include_eds`, `/clusters?format=json`), `-` for
    /// standard input; with --bundle, a pod (`namespace/name`, a name, or a name prefix).
    pub target: Option<String>,
    /// Evidence bundle whose `config_dump/<namespace>/<pod>.json` to read.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ProxyConfigArgs {
    /// What to print.
    #[arg(value_enum)]
    pub kind: Kind,
    #[command(flatten)]
    pub source: DumpSource,
    /// Cluster service FQDN (clusters), or part of the cluster name (endpoints).
    #[arg(long)]
    pub fqdn: Option<String>,
    /// Port: cluster port, listener port, endpoint port, or route config port.
    #[arg(long)]
    pub port: Option<u32>,
    /// Cluster direction (`inbound`, `outbound`, `inbound-vip`).
    #[arg(long)]
    pub direction: Option<String>,
    /// Cluster subset.
    #[arg(long)]
    pub subset: Option<String>,
    /// Name of the route config, listener, cluster or secret.
    #[arg(long)]
    pub name: Option<String>,
    /// Listener or endpoint address.
    #[arg(long)]
    pub address: Option<String>,
    /// Listener type (`HTTP`, `TCP`).
    #[arg(long = "type")]
    pub listener_type: Option<String>,
    /// Endpoint health status (`healthy`, `unhealthy`).
    #[arg(long)]
    pub status: Option<String>,
    /// The time certificates are checked against (RFC 3339); default: now.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: PcOutput,
    /// Without --bundle, a TARGET that is not a file is a pod (`NAME` in `-n`, or `NS/NAME`)
    /// whose config dump is fetched from the cluster, as `istioctl proxy-config` does.
    #[command(flatten)]
    pub live: crate::commands::collect::LiveArgs,
}

/// A loaded dump and where it came from.
pub struct LoadedDump {
    /// File or `bundle:namespace/pod`.
    pub origin: String,
    /// Namespace and pod, when from a bundle.
    pub pod: Option<(String, String)>,
    /// The dump.
    pub dump: ConfigDump,
}

/// Read a config dump, at most `MAX_CONFIG_DUMP_BYTES` (the limit bundles use too).
fn read_all(r: impl Read, name: &str) -> Result<String> {
    let max = crate::source::limits::MAX_CONFIG_DUMP_BYTES;
    let mut b = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut b)
        .with_context(|| format!("cannot read {name}"))?;
    if b.len() as u64 > max {
        anyhow::bail!(
            "{name} is larger than {} MiB, the largest config dump meshtrace reads; pass the dump of one proxy (`istioctl proxy-config all <pod> -o json` or its admin `/config_dump`)",
            max >> 20
        );
    }
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Parse one dump file (`-` = stdin).
pub fn load_file(path: &str) -> Result<LoadedDump> {
    let text = if path == "-" {
        read_all(std::io::stdin().lock(), "<stdin>")?
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("cannot read {path}"))?;
        read_all(f, path)?
    };
    let dump = ConfigDump::parse(&text).with_context(|| path.to_string())?;
    Ok(LoadedDump {
        origin: path.into(),
        pod: None,
        dump,
    })
}

/// Parse every config dump of a bundle; unusable ones are reported in `problems`.
pub fn load_bundle(bundle: &Path, problems: &mut Vec<String>) -> Result<Vec<LoadedDump>> {
    let b = crate::source::bundle::Bundle::open(bundle)?;
    Ok(crate::source::load::read_config_dumps(&b, problems)
        .into_iter()
        .map(|p| LoadedDump {
            origin: format!("{}/{}", b.root.trim_end_matches('/'), p.path),
            pod: Some((p.namespace, p.pod)),
            dump: p.dump,
        })
        .collect())
}

/// Pick a pod's dump: `ns/name`, `name`, or a unique name prefix.
pub fn pick<'a>(dumps: &'a [LoadedDump], want: &str) -> Result<&'a LoadedDump> {
    let (ns, name) = match want.split_once('/') {
        Some((a, b)) => (Some(a), b),
        None => (None, want),
    };
    let ok_ns = |d: &&LoadedDump| ns.is_none_or(|n| d.pod.as_ref().is_some_and(|p| p.0 == n));
    if let Some(d) = dumps
        .iter()
        .filter(ok_ns)
        .find(|d| d.pod.as_ref().is_some_and(|p| p.1 == name))
    {
        return Ok(d);
    }
    let pre: Vec<&LoadedDump> = dumps
        .iter()
        .filter(ok_ns)
        .filter(|d| d.pod.as_ref().is_some_and(|p| p.1.starts_with(name)))
        .collect();
    match pre.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no config dump for pod {want:?} in the bundle (it has: {})",
            list(dumps)
        ),
        _ => bail!("{want:?} names several pods: {}", list(&pre)),
    }
}

fn list<D: std::borrow::Borrow<LoadedDump>>(dumps: &[D]) -> String {
    let v: Vec<String> = dumps
        .iter()
        .filter_map(|d| d.borrow().pod.as_ref().map(|(n, p)| format!("{n}/{p}")))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Load the one dump a command works on.
pub fn load_one(src: &DumpSource) -> Result<LoadedDump> {
    match (&src.bundle, &src.target) {
        (None, Some(t)) => load_file(t),
        (None, None) => bail!("give a config dump file, or --bundle DIR and a pod"),
        (Some(b), t) => {
            let mut problems = Vec::new();
            let mut dumps = load_bundle(b, &mut problems)?;
            for p in &problems {
                crate::report::warn(format!("skipped: {p}"));
            }
            let idx = match t {
                Some(t) => {
                    let d = pick(&dumps, t)?;
                    dumps.iter().position(|x| std::ptr::eq(x, d)).unwrap_or(0)
                }
                None if dumps.len() == 1 => 0,
                None => bail!(
                    "the bundle has {} config dumps ({}): name a pod",
                    dumps.len(),
                    list(&dumps)
                ),
            };
            if dumps.is_empty() {
                bail!("the bundle has no config dump");
            }
            Ok(dumps.swap_remove(idx))
        }
    }
}

/// "now" for certificate validity: `--now` or the clock.
pub fn now_unix(arg: Option<&str>) -> Result<i64> {
    match arg {
        Some(t) => Ok(chrono::DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--now {t:?}: not RFC 3339"))?
            .timestamp()),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)),
    }
}

/// The tables of `kind` (`all` prefixes names as istioctl does).
pub fn tables(d: &ConfigDump, kind: Kind, f: &Filter, now: i64, short: bool) -> Vec<Table> {
    let all = kind == Kind::All;
    let mut out = Vec::new();
    for k in [
        Kind::Clusters,
        Kind::Listeners,
        Kind::Routes,
        Kind::Secrets,
        Kind::Endpoints,
        Kind::Ecds,
    ] {
        if !(all || kind == k) {
            continue;
        }
        let t = match k {
            Kind::Clusters => pc::clusters(d, f, all),
            Kind::Listeners if short => pc::listeners_short(d, f),
            Kind::Listeners => pc::listeners(d, f, all),
            Kind::Routes if short => pc::routes_short(d, f),
            Kind::Routes => pc::routes(d, f, all),
            Kind::Secrets => pc::secrets(d, f, now, all),
            Kind::Endpoints => pc::endpoints(d, f, all),
            Kind::Ecds => pc::ecds(d),
            _ => continue,
        };
        if all && t.rows.is_empty() {
            continue;
        }
        out.push(t);
    }
    out
}

fn items(d: &ConfigDump, kind: Kind, f: &Filter) -> serde_json::Value {
    let want = |k: Kind| kind == Kind::All || kind == k;
    let mut v = serde_json::Map::new();
    if want(Kind::Bootstrap) {
        v.insert("bootstrap".into(), json!(d.bootstrap));
    }
    if want(Kind::Clusters) {
        let c: Vec<_> = d
            .clusters
            .iter()
            .filter(|c| pc::cluster_selected(c, f))
            .collect();
        v.insert("clusters".into(), json!(c));
    }
    if want(Kind::Listeners) {
        let l: Vec<_> = d
            .listeners
            .iter()
            .filter(|l| pc::listener_passes(l, f))
            .collect();
        v.insert("listeners".into(), json!(l));
    }
    if want(Kind::Routes) {
        let r: Vec<_> = d
            .route_configs
            .iter()
            .filter(|r| pc::route_config_passes(r, f))
            .collect();
        v.insert("route_configs".into(), json!(r));
    }
    if want(Kind::Endpoints) {
        let mut e = d.endpoints.clone();
        for ce in &mut e {
            ce.endpoints.retain(|x| {
                f.port.is_none_or(|p| x.address.port() == Some(p))
                    && f.address
                        .as_deref()
                        .is_none_or(|a| x.address.ip() == Some(a))
                    && f.status
                        .as_deref()
                        .is_none_or(|s| x.health.eq_ignore_ascii_case(s))
            });
        }
        e.retain(|ce| {
            !ce.endpoints.is_empty()
                && f.fqdn.as_deref().is_none_or(|x| ce.cluster.contains(x))
                && f.name.as_deref().is_none_or(|x| x == ce.cluster)
        });
        v.insert("endpoints".into(), json!(e));
    }
    if want(Kind::Secrets) {
        v.insert("secrets".into(), json!(d.secrets));
    }
    if want(Kind::Ecds) {
        v.insert("ecds".into(), json!(d.ecds));
    }
    serde_json::Value::Object(v)
}

/// The pod to fetch live: without --bundle, a target that is neither `-` nor an existing file.
fn live_pod(src: &DumpSource) -> Option<&str> {
    match (&src.bundle, src.target.as_deref()) {
        (None, Some(t)) if t != "-" && std::fs::symlink_metadata(t).is_err() => Some(t),
        _ => None,
    }
}

/// Fetch a pod's config dump from the cluster into a private temporary folder (removed when the
/// returned guard is dropped) and load it.
pub fn load_live(
    live: &crate::commands::collect::LiveArgs,
    pod: &str,
) -> Result<(crate::live::private::PrivateDir, LoadedDump)> {
    let dir = crate::live::private::temp_dir("meshtrace-live-")
        .context("cannot create a temporary folder for the config dump")?;
    let (ns, name, path) = crate::live::dumps::pod_config_dump(
        &live.options(true),
        pod,
        dir.path(),
    )
    .with_context(|| {
        format!(
            "{pod} is not a file, so meshtrace fetched pod {pod}'s config dump from the cluster"
        )
    })?;
    let mut loaded = load_file(&path.display().to_string())?;
    loaded.origin = format!("{ns}/{name} (live config dump)");
    loaded.pod = Some((ns, name));
    Ok((dir, loaded))
}

/// Run `proxy-config`.
pub fn run(a: ProxyConfigArgs) -> Result<i32> {
    let (_live, loaded) = match live_pod(&a.source) {
        Some(pod) => {
            let (dir, l) = load_live(&a.live, pod)?;
            (Some(dir), l)
        }
        None => (None, load_one(&a.source)?),
    };
    let d = &loaded.dump;
    let f = Filter {
        fqdn: a.fqdn.clone(),
        port: a.port,
        direction: a.direction.clone(),
        subset: a.subset.clone(),
        name: a.name.clone(),
        address: a.address.clone(),
        listener_type: a.listener_type.clone(),
        status: a.status.clone(),
    };
    let now = now_unix(a.now.as_deref())?;
    for w in &d.warnings {
        crate::report::warn(format!("{}: {w}", loaded.origin));
    }
    let mut out = crate::report::stdout();
    match a.output {
        PcOutput::Json | PcOutput::Yaml => {
            let doc = json!({
                "schema": "meshtrace.proxy-config/v1",
                "source": loaded.origin,
                "kind": format!("{:?}", a.kind).to_lowercase(),
                "config": items(d, a.kind, &f),
            });
            crate::report::proxy_config::write_document(&mut out, a.output, &doc)?;
        }
        PcOutput::Table | PcOutput::Wide | PcOutput::Short => {
            let bootstrap = if matches!(a.kind, Kind::Bootstrap | Kind::All) {
                pc::bootstrap_summary(d)
            } else {
                Vec::new()
            };
            let short = a.output == PcOutput::Short;
            crate::report::proxy_config::write_tables(
                &mut out,
                &bootstrap,
                &tables(d, a.kind, &f, now, short),
                short,
            )?;
        }
    }
    Ok(EXIT_OK)
}
