//! Envoy config dumps of named pods, fetched live through port-forward (exec as the fallback) as
//! `collect` fetches them: `proxy-config <pod>` without a file or bundle, and the proxies on a
//! traced request's path once its hops are known (so a live trace cites the same configuration
//! as an offline one). Each dump is written to `config_dump/<ns>/<pod>.json` of a bundle folder.

use std::path::{Path, PathBuf};

use super::discover;
use super::error::CallError;
use super::kubeapi::{Kube, Resolved};
use super::logs::PodProblem;
use super::{LiveError, LiveOptions, Problems, envoy, progress, writer};

/// What a fetch brought back.
#[derive(Debug, Default)]
pub struct Fetched {
    /// `(namespace, pod, file)` of every dump written.
    pub dumps: Vec<(String, String, PathBuf)>,
    /// What could not be fetched, one sentence each (a missing role says which one grants it).
    pub problems: Vec<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime, LiveError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LiveError::Runtime)
}

/// Fetch the config dumps of `pods` (`(namespace, name)`) into the bundle folder `dir`.
/// Only a failure to reach or authenticate to the cluster is an error; a pod whose dump cannot
/// be fetched (forbidden, gone, no proxy) is a problem sentence.
pub fn config_dumps(
    opts: &LiveOptions,
    pods: &[(String, String)],
    dir: &Path,
) -> Result<Fetched, LiveError> {
    runtime()?.block_on(async {
        let kube = Kube::connect(opts).await?;
        Ok(fetch(&kube, opts, pods, dir).await)
    })
}

async fn fetch(kube: &Kube, opts: &LiveOptions, pods: &[(String, String)], dir: &Path) -> Fetched {
    let progress = progress::Progress::new(opts.progress, pods.len());
    let mut problems = Problems::default();
    let mut out = Fetched::default();
    // Pods whose dump only a missing role kept away: said in one sentence for them all.
    let mut forbidden: Vec<(String, String)> = Vec::new();
    for (ns, pod) in pods {
        match envoy::config_dump(kube, ns, pod, dir, opts.dump_timeout, &progress).await {
            Ok(_) => match writer::dump_path(dir, ns, pod) {
                Ok(p) => out.dumps.push((ns.clone(), pod.clone(), p)),
                Err(e) => problems.other(e),
            },
            Err(ps)
                if !ps.is_empty()
                    && ps.iter().all(|p| matches!(p, PodProblem::Forbidden { .. })) =>
            {
                forbidden.push((ns.clone(), pod.clone()));
            }
            Err(ps) => {
                for p in ps {
                    p.record(&mut problems);
                }
            }
        }
        progress.pod_done();
    }
    progress.finish();
    out.problems = problems.sentences();
    if !forbidden.is_empty() {
        out.problems.insert(0, forbidden_sentence(&forbidden));
    }
    out
}

/// One sentence for the pods whose config dump a missing role kept away.
fn forbidden_sentence(pods: &[(String, String)]) -> String {
    let mut nss: Vec<&str> = pods.iter().map(|(ns, _)| ns.as_str()).collect();
    nss.sort_unstable();
    nss.dedup();
    let names: Vec<String> = pods
        .iter()
        .take(3)
        .map(|(ns, p)| format!("{ns}/{p}"))
        .collect();
    format!(
        "forbidden: you may not create pods/portforward (nor pods/exec) in namespace{} {} (403 from the API server), so the Envoy config dump{} of {}{} {} not fetched and nothing is cited from {}; deploy/rbac/config-dump.yaml grants it (opt-in), or use --no-config-dump",
        if nss.len() == 1 { "" } else { "s" },
        nss.join(", "),
        if pods.len() == 1 { "" } else { "s" },
        names.join(", "),
        if pods.len() > 3 {
            format!(" and {} more", pods.len() - 3)
        } else {
            String::new()
        },
        if pods.len() == 1 { "was" } else { "were" },
        if pods.len() == 1 { "it" } else { "them" },
    )
}

/// The pod `want` names — `NS/NAME`, or `NAME` in `--namespace` (default: the context's
/// namespace); a unique name prefix is accepted, as in a bundle — and its config dump fetched
/// into `dir`. Returns `(namespace, pod, file)`, or one sentence saying why there is none.
pub fn pod_config_dump(
    opts: &LiveOptions,
    want: &str,
    dir: &Path,
) -> Result<(String, String, PathBuf), LiveError> {
    runtime()?.block_on(async {
        let kube = Kube::connect(opts).await?;
        let (ns, name) = match want.split_once('/') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (
                opts.namespaces
                    .first()
                    .cloned()
                    .unwrap_or_else(|| kube.default_namespace.clone()),
                want.to_string(),
            ),
        };
        let pods_res = Resolved::core("Pod", "pods");
        let listed = kube.list(&pods_res, Some(&ns), None).await;
        let pod = match listed {
            Ok(items) => {
                let names: Vec<&str> = items.iter().map(discover::name).collect();
                if names.contains(&name.as_str()) {
                    name.clone()
                } else {
                    let pre: Vec<&str> = names
                        .iter()
                        .copied()
                        .filter(|n| n.starts_with(name.as_str()))
                        .collect();
                    match pre.as_slice() {
                        [one] => (*one).to_string(),
                        [] => {
                            return Err(LiveError::Nothing(format!(
                                "no pod {name} in namespace {ns} of {}; check the name, or give its namespace with -n or as NAMESPACE/POD",
                                kube.cluster
                            )));
                        }
                        many => {
                            return Err(LiveError::Nothing(format!(
                                "{name:?} names several pods in namespace {ns}: {}; give the whole name",
                                many.join(", ")
                            )));
                        }
                    }
                }
            }
            // Pods cannot be listed here: try the name as given.
            Err(p) if matches!(p.error, CallError::Forbidden(_)) => name.clone(),
            Err(p) => {
                return Err(LiveError::Nothing(format!(
                    "cannot list the pods of namespace {ns}: {}",
                    p.error
                )));
            }
        };
        let fetched = fetch(&kube, opts, &[(ns.clone(), pod.clone())], dir).await;
        match fetched.dumps.into_iter().next() {
            Some(d) => Ok(d),
            None => Err(LiveError::Nothing(if fetched.problems.is_empty() {
                format!("the Envoy config dump of pod {ns}/{pod} could not be fetched")
            } else {
                fetched.problems.join(" ")
            })),
        }
    })
}
