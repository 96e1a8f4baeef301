//! `meshtrace collect`: write an evidence bundle straight from the cluster (see `src/live/`), and
//! the cluster flags shared with the commands that run live (`trace` without `--bundle`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::commands::EXIT_OK;
use crate::live::private::PrivateDir;
use crate::live::{LiveOptions, Summary, Window};

/// Where and what to collect from the cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long, value_name = "FILE", help_heading = "Cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME", help_heading = "Cluster")]
    pub context: Option<String>,
    /// Namespace of the model (repeatable; default: the context's namespace). Gateways and the
    /// activator are found wherever they run.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        help_heading = "Cluster"
    )]
    pub namespace: Vec<String>,
    /// Every namespace: every pod's logs.
    #[arg(
        short = 'A',
        long = "all-namespaces",
        conflicts_with = "namespace",
        help_heading = "Cluster"
    )]
    pub all_namespaces: bool,
    /// Only this pod (repeatable; `NAME` in the namespace, or `NS/NAME`) plus the path's gateways
    /// and activator.
    #[arg(long = "pod", value_name = "[NS/]NAME", help_heading = "Cluster")]
    pub pod: Vec<String>,
    /// Only pods matching this label selector (sent to the API server), plus the path's gateways
    /// and activator.
    #[arg(
        short = 'l',
        long = "selector",
        value_name = "SELECTOR",
        help_heading = "Cluster"
    )]
    pub selector: Vec<String>,
    /// Only log lines newer than this: 30s, 15m, 2h, 1d, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Cluster")]
    pub since: Option<Duration>,
    /// Only log lines from this time on (RFC 3339, e.g. 2024-06-03T09:10:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "since", help_heading = "Cluster")]
    pub since_time: Option<jiff::Timestamp>,
    /// Only log lines up to this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "Cluster")]
    pub until: Option<jiff::Timestamp>,
    /// Containers whose logs to take (repeatable). Without it: `istio-proxy`, plus by the pod's
    /// role the OpenShift router's access-log container (`logs`), the Knative activator's own
    /// log (`activator`) and `queue-proxy`.
    #[arg(
        short = 'c',
        long = "container",
        value_name = "NAME",
        help_heading = "Cluster"
    )]
    pub container: Vec<String>,
    /// Take every container's log, not only the proxies'.
    #[arg(long, help_heading = "Cluster")]
    pub all_containers: bool,
    /// API calls in flight at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256), help_heading = "Cluster")]
    pub concurrency: u16,
    /// Namespace of the Istio control plane (its `istio` MeshConfig ConfigMap); istiod pods found
    /// elsewhere are used too.
    #[arg(
        long,
        value_name = "NS",
        default_value = "istio-system",
        help_heading = "Cluster"
    )]
    pub istio_namespace: Vec<String>,
    /// How long to wait for the API server to answer at all (seconds).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10,
        help_heading = "Cluster"
    )]
    pub connect_timeout: u64,
    /// Give up one API call (or a log or config dump that sends nothing) after this long, as
    /// kubectl's flag: plain seconds or 30s, 1m, 1h; 0 waits forever. What was collected
    /// before is kept.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = "Cluster")]
    pub request_timeout: Duration,
    /// Stop collecting after this long in all (30s, 10m, 1h; 0: no limit); what was collected
    /// until then is kept and analysed.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration, help_heading = "Cluster")]
    pub deadline: Duration,
}

/// `30s`, `15m`, `2h`, `1d`, `1h30m`, or plain seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut any = false;
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{s:?}: use a number with s, m, h or d (e.g. 15m)")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?}: a number must come before {ch:?}"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!("{s:?}: use a number with s, m, h or d (e.g. 15m)"));
    }
    Ok(Duration::from_secs(total))
}

fn parse_time(s: &str) -> std::result::Result<jiff::Timestamp, String> {
    s.trim()
        .parse::<jiff::Timestamp>()
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2024-06-03T09:10:00Z: {e}"))
}

impl LiveArgs {
    /// The collection options these flags ask for.
    pub fn options(&self, config_dumps: bool) -> LiveOptions {
        LiveOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespaces: self.namespace.clone(),
            all_namespaces: self.all_namespaces,
            pods: self.pod.clone(),
            selectors: self.selector.clone(),
            window: Window {
                since: self.since,
                since_time: self.since_time,
                until: self.until,
            },
            containers: if self.container.is_empty() {
                vec!["istio-proxy".to_string()]
            } else {
                self.container.clone()
            },
            role_containers: self.container.is_empty(),
            all_containers: self.all_containers,
            config_dumps,
            concurrency: usize::from(self.concurrency),
            istio_namespaces: self.istio_namespace.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout.max(1)),
            request_timeout: Some(self.request_timeout).filter(|d| !d.is_zero()),
            deadline: Some(self.deadline).filter(|d| !d.is_zero()),
            progress: std::io::stderr().is_terminal(),
            ..LiveOptions::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub live: LiveArgs,
    /// Bundle folder to write (default: meshtrace-bundle-<UTC time>); it must not exist or be empty.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        conflicts_with = "archive"
    )]
    pub output: Option<PathBuf>,
    /// Write a .tar.gz bundle instead of a folder.
    #[arg(long, value_name = "FILE.tar.gz")]
    pub archive: Option<PathBuf>,
    /// Skip the Envoy config dumps (port-forward / exec).
    #[arg(long)]
    pub no_config_dump: bool,
    /// The proxies' logs from Loki instead of the pods (docs/loki.md in meshtrace's source repository).
    #[command(flatten)]
    pub loki: crate::commands::loki::LokiArgs,
}

/// Notes and problems of a collection, on stderr.
pub fn report_summary(s: &Summary) {
    for n in &s.notes {
        crate::report::warn(format!("found: {n}"));
    }
    for p in &s.problems {
        crate::report::warn(format!("not collected: {p}"));
    }
}

/// The bundle an analysing command reads: the one given, or — when neither a bundle nor log files
/// were given — one collected live into a private temporary folder (kept alive by the returned
/// guard; removed when it is dropped, and on Ctrl-C or SIGTERM).
pub fn bundle_or_live(
    bundle: Option<&Path>,
    have_files: bool,
    live: &LiveArgs,
) -> Result<(Option<PrivateDir>, Option<std::path::PathBuf>)> {
    if bundle.is_some() || have_files {
        return Ok((None, bundle.map(Path::to_path_buf)));
    }
    let dir = collect_for_trace(live)?;
    let path = dir.path().to_path_buf();
    Ok((Some(dir), Some(path)))
}

/// Collect into a fresh private temporary bundle (for commands that run live); config dumps are
/// skipped.
pub fn collect_for_trace(live: &LiveArgs) -> Result<PrivateDir> {
    let dir = crate::live::private::temp_dir("meshtrace-live-")
        .context("cannot create a temporary folder for the live bundle")?;
    let summary = crate::live::collect(&live.options(false), dir.path())
        .context("no --bundle or log files given, so meshtrace collected from the cluster")?;
    report_summary(&summary);
    Ok(dir)
}

fn ensure_empty(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => {
            if it.next().is_some() {
                bail!(
                    "{} exists and is not empty: choose a new folder with -o",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot use {}", dir.display())),
    }
}

/// Run `collect`.
pub fn run(a: CollectArgs) -> Result<i32> {
    let opts = a.live.options(!a.no_config_dump);
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let (summary, written) = match &a.archive {
        Some(archive) => {
            let tmp = crate::live::private::temp_dir("meshtrace-collect-")
                .context("cannot create a temporary folder")?;
            let s = if a.loki.active() {
                crate::commands::loki::collect(&a.loki, &opts, tmp.path())?
            } else {
                crate::live::collect(&opts, tmp.path())?
            };
            // An archive cut short (an error, Ctrl-C) is removed, not left half-written.
            let unfinished = crate::live::private::Unfinished::new(archive);
            crate::live::write_archive(tmp.path(), archive)?;
            unfinished.keep();
            (s, archive.display().to_string())
        }
        None => {
            let dir = a
                .output
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("meshtrace-bundle-{stamp}")));
            ensure_empty(&dir)?;
            let s = if a.loki.active() {
                crate::commands::loki::collect(&a.loki, &opts, &dir)?
            } else {
                crate::live::collect(&opts, &dir)?
            };
            (s, dir.display().to_string())
        }
    };
    report_summary(&summary);
    crate::report::write_collect_summary(&mut crate::report::stdout(), &written, &summary)?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
