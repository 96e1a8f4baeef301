//! Live collection straight from a Kubernetes cluster with kube-rs: the **only async module** and
//! the only code that talks to Kubernetes.
//!
//! [`collect`] discovers the serving path (InferenceServices, Knative Services/Revisions, the
//! activator, gateways from the Gateway objects' `spec.selector`, SeldonDeployments, `--pod`,
//! `-l`), lists Pods, Services and the Istio/Knative/KServe/Seldon objects, streams the proxies'
//! logs to files (bounded concurrency; a log never sits in memory) and fetches Envoy config dumps
//! (port-forward to 15000, falling back to exec `pilot-agent request`), and writes an evidence
//! bundle in the layout of `docs/bundle.md`. A 403 becomes one sentence and collection goes on.
//! Everything outside this module stays synchronous: [`collect`] owns its Tokio runtime.

pub mod bounds;
pub mod discover;
pub mod dumps;
mod envoy;
pub mod error;
mod kubeapi;
mod logs;
pub mod loki;
pub mod meshconfig;
pub mod otlp;
pub mod private;
pub mod progress;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

pub use error::LiveError;
pub use writer::write_archive;

use discover::{PodKey, Target};
use kubeapi::{Kube, ListPolicy, Resolved};

/// The time window of the logs.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Only lines newer than this (`--since 15m`).
    pub since: Option<Duration>,
    /// Only lines from this time on (`--since-time`).
    pub since_time: Option<jiff::Timestamp>,
    /// Only lines up to this time (`--until`; the logs are then fetched with timestamps, read
    /// line by line and the stream is closed at the first later line).
    pub until: Option<jiff::Timestamp>,
}

/// What to collect and how to reach the cluster.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `-n` (empty: the context's namespace).
    pub namespaces: Vec<String>,
    /// `-A`.
    pub all_namespaces: bool,
    /// `--pod [NS/]NAME`.
    pub pods: Vec<String>,
    /// `-l SELECTOR` (sent to the API server).
    pub selectors: Vec<String>,
    /// Log window.
    pub window: Window,
    /// Containers whose logs to fetch (default `istio-proxy`).
    pub containers: Vec<String>,
    /// Every container's log.
    pub all_containers: bool,
    /// Also the containers whose logs are evidence by the pod's role
    /// ([`discover::is_role_container`]): on unless `--container` was given.
    pub role_containers: bool,
    /// Fetch Envoy config dumps.
    pub config_dumps: bool,
    /// Concurrent API calls.
    pub concurrency: usize,
    /// Namespaces of the Istio control plane (MeshConfig ConfigMaps), in addition to those
    /// of istiod pods found.
    pub istio_namespaces: Vec<String>,
    /// How long to wait for the API server to answer at all.
    pub connect_timeout: Duration,
    /// `--request-timeout`: one API call, or one silence in a stream (`None`: no timeout).
    pub request_timeout: Option<Duration>,
    /// `--deadline`: the whole collection (`None`: no deadline).
    pub deadline: Option<Duration>,
    /// Timeout of one config dump.
    pub dump_timeout: Duration,
    /// Show progress on stderr.
    pub progress: bool,
    /// Text for the manifest's `collector`.
    pub collector: String,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            kubeconfig: None,
            context: None,
            namespaces: Vec::new(),
            all_namespaces: false,
            pods: Vec::new(),
            selectors: Vec::new(),
            window: Window::default(),
            containers: vec!["istio-proxy".to_string()],
            all_containers: false,
            role_containers: true,
            config_dumps: true,
            concurrency: 10,
            istio_namespaces: vec!["istio-system".to_string()],
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(bounds::DEFAULT_REQUEST_TIMEOUT),
            deadline: Some(bounds::DEFAULT_DEADLINE),
            dump_timeout: Duration::from_secs(60),
            progress: false,
            collector: format!("meshtrace {} (live)", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// What a collection did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Cluster and context.
    pub cluster: String,
    /// Pods listed (all of `pods.json`).
    pub pods_listed: usize,
    /// Pods whose logs were fetched.
    pub pods_selected: usize,
    /// Log files written.
    pub logs: usize,
    /// Bytes of logs and config dumps written.
    pub bytes: u64,
    /// Config dumps written.
    pub config_dumps: usize,
    /// Objects written (Pods excluded).
    pub objects: usize,
    /// What discovery found and did not find.
    pub notes: Vec<String>,
    /// What could not be collected, one sentence each (forbidden, vanished pods, …).
    pub problems: Vec<String>,
}

/// Problems gathered while collecting: 403s are grouped into one sentence per verb, resource
/// and namespace.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    forbidden: BTreeMap<(String, String, Option<String>), Vec<String>>,
    /// Calls cut by a time bound, by bound: said once per bound, with the first call and how
    /// many more.
    timeouts: BTreeMap<String, Vec<(error::CallError, String)>>,
    other: Vec<String>,
}

impl Problems {
    pub(crate) fn forbidden(&mut self, verb: &str, resource: &str, ns: Option<&str>, what: String) {
        self.forbidden
            .entry((
                verb.to_string(),
                resource.to_string(),
                ns.map(str::to_string),
            ))
            .or_default()
            .push(what);
    }

    pub(crate) fn other(&mut self, s: String) {
        self.other.push(s);
    }

    /// A call cut by a bound (time or bytes); `kept` says what was kept.
    pub(crate) fn cut(&mut self, e: &error::CallError, kept: &str) {
        match e {
            error::CallError::TimedOut(t) => {
                self.timeouts
                    .entry(format!("{:?}", t.bound))
                    .or_default()
                    .push((error::CallError::TimedOut(t.clone()), kept.to_string()));
            }
            e => self.other.push(error::cut_sentence(e, kept)),
        }
    }

    /// Anything went wrong?
    fn is_empty(&self) -> bool {
        self.forbidden.is_empty() && self.timeouts.is_empty() && self.other.is_empty()
    }

    fn sentences(self) -> Vec<String> {
        let mut out = Vec::new();
        for ((verb, resource, ns), whats) in self.forbidden {
            let consequence = if whats.len() == 1 {
                whats[0].clone()
            } else {
                format!("{} ({} more)", whats[0], whats.len() - 1)
            };
            out.push(error::forbidden_sentence(
                &verb,
                &resource,
                ns.as_deref(),
                &consequence,
            ));
        }
        out.extend(self.other);
        for cuts in self.timeouts.values() {
            match cuts.as_slice() {
                [] => {}
                [(first, kept)] => out.push(error::cut_sentence(first, kept)),
                [(first, _), rest @ ..] => {
                    let what = match first {
                        error::CallError::TimedOut(t) => format!(
                            "{t} (and {} more call(s)); what was collected until then is kept; {}",
                            rest.len(),
                            t.advice()
                        ),
                        other => other.to_string(),
                    };
                    out.push(what);
                }
            }
        }
        out
    }
}

/// Collect a bundle into `dir` (created if needed). Only a failure to reach or authenticate to
/// the cluster, or to write the bundle, is an error; everything else is a `problem`.
pub fn collect(opts: &LiveOptions, dir: &Path) -> Result<Summary, LiveError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LiveError::Runtime)?;
    rt.block_on(run(opts, dir))
}

/// The kinds meshtrace reads, with the product that provides them.
const WANTED: &[(&str, &str, &str, ListPolicy)] = &[
    ("", "Pod", "Kubernetes", ListPolicy::Cluster),
    ("", "Service", "Kubernetes", ListPolicy::Cluster),
    ("", "Endpoints", "Kubernetes", ListPolicy::Cluster),
    ("", "Event", "Kubernetes", ListPolicy::Target),
    // Namespace labels say which namespaces are ambient and which waypoint they use.
    ("", "Namespace", "Kubernetes", ListPolicy::Cluster),
    // Replicas wanted and available (an endpoint picker or model scaled to zero).
    ("apps", "Deployment", "Kubernetes", ListPolicy::Cluster),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        "Kubernetes network policies",
        ListPolicy::Cluster,
    ),
    (
        "gateway.networking.k8s.io",
        "Gateway",
        "Gateway API",
        ListPolicy::Cluster,
    ),
    (
        "gateway.networking.k8s.io",
        "HTTPRoute",
        "Gateway API",
        ListPolicy::Cluster,
    ),
    (
        "inference.networking.k8s.io",
        "InferencePool",
        "Gateway API Inference Extension",
        ListPolicy::Cluster,
    ),
    (
        "inference.networking.x-k8s.io",
        "InferencePool",
        "Gateway API Inference Extension (alpha)",
        ListPolicy::Cluster,
    ),
    (
        "networking.istio.io",
        "Gateway",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "networking.istio.io",
        "VirtualService",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "networking.istio.io",
        "DestinationRule",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "networking.istio.io",
        "ServiceEntry",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "networking.istio.io",
        "Sidecar",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "networking.istio.io",
        "EnvoyFilter",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "security.istio.io",
        "PeerAuthentication",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "security.istio.io",
        "AuthorizationPolicy",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "security.istio.io",
        "RequestAuthentication",
        "Istio",
        ListPolicy::Cluster,
    ),
    (
        "telemetry.istio.io",
        "Telemetry",
        "Istio telemetry",
        ListPolicy::Cluster,
    ),
    (
        "serving.kserve.io",
        "InferenceService",
        "KServe",
        ListPolicy::Cluster,
    ),
    (
        "serving.knative.dev",
        "Service",
        "Knative Serving",
        ListPolicy::Cluster,
    ),
    (
        "serving.knative.dev",
        "Revision",
        "Knative Serving",
        ListPolicy::Cluster,
    ),
    (
        "serving.knative.dev",
        "Route",
        "Knative Serving",
        ListPolicy::Cluster,
    ),
    (
        "machinelearning.seldon.io",
        "SeldonDeployment",
        "Seldon Core",
        ListPolicy::Cluster,
    ),
    (
        "route.openshift.io",
        "Route",
        "OpenShift routes",
        ListPolicy::Cluster,
    ),
    (
        "maistra.io",
        "ServiceMeshControlPlane",
        "OpenShift Service Mesh",
        ListPolicy::Cluster,
    ),
];

async fn run(opts: &LiveOptions, dir: &Path) -> Result<Summary, LiveError> {
    let kube = Kube::connect(opts).await?;
    let mut problems = Problems::default();
    let mut summary = Summary {
        cluster: kube.cluster.clone(),
        ..Summary::default()
    };
    let target = if opts.all_namespaces {
        Target::All
    } else if opts.namespaces.is_empty() {
        Target::Namespaces(vec![kube.default_namespace.clone()])
    } else {
        Target::Namespaces(opts.namespaces.clone())
    };

    // Which APIs exist.
    let (resolved, missing) = kube.resolve(WANTED).await;
    summary.notes.extend(missing);

    // List everything (concurrently, bounded by the client's semaphore).
    let mut lists: Vec<(Resolved, Vec<Value>)> = Vec::new();
    let results = futures::stream::iter(resolved.iter().cloned())
        .map(|r| {
            let kube = &kube;
            let target = &target;
            async move {
                let res = kube.list_policy(&r, target).await;
                (r, res)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut retry: Vec<Resolved> = Vec::new();
    for (r, res) in results {
        match res {
            kubeapi::Listed::Items(items) => lists.push((r, items)),
            kubeapi::Listed::ForbiddenClusterWide => retry.push(r),
            kubeapi::Listed::Failed(p) => {
                p.record(&mut problems);
                lists.push((r, Vec::new()));
            }
            kubeapi::Listed::Partial(items, p) => {
                p.record(&mut problems);
                lists.push((r, items));
            }
        }
    }
    // A 403 cluster-wide: say so, then list namespace by namespace where it matters: the
    // target and control-plane namespaces, every namespace seen in what was listed and every
    // namespace the objects point to (a VirtualService's `ns/gateway`, a host's
    // `name.ns.svc…`), again while new ones appear (a few rounds at most).
    if !retry.is_empty() {
        let mut seeds: BTreeSet<String> = match &target {
            Target::All => BTreeSet::new(),
            Target::Namespaces(v) => v.iter().cloned().collect(),
        };
        seeds.extend(opts.istio_namespaces.iter().cloned());
        let mut retried: Vec<(Resolved, Vec<Value>)> =
            retry.into_iter().map(|r| (r, Vec::new())).collect();
        let mut done: BTreeSet<String> = BTreeSet::new();
        for _round in 0..4 {
            let mut nss = seeds.clone();
            for (_, items) in lists.iter().chain(retried.iter()) {
                nss.extend(items.iter().map(|o| discover::namespace(o).to_string()));
                nss.extend(discover::referenced_namespaces(items));
            }
            nss.remove("");
            let fresh: Vec<String> = nss.difference(&done).cloned().collect();
            if fresh.is_empty() {
                break;
            }
            for (r, items) in &mut retried {
                for ns in &fresh {
                    match kube.list(r, Some(ns), None).await {
                        Ok(mut v) => items.append(&mut v),
                        Err(mut p) => {
                            items.append(&mut p.items);
                            kubeapi::ListProblem::new(r, Some(ns), p.error).record(&mut problems)
                        }
                    }
                }
            }
            done.extend(fresh);
        }
        let ns_list: Vec<String> = done.iter().cloned().collect();
        for (r, items) in retried {
            problems.forbidden(
                "list",
                &r.resource_name(),
                None,
                format!(
                    "{} were listed only in namespace(s) {}",
                    r.plural,
                    if ns_list.is_empty() {
                        "(none known)".to_string()
                    } else {
                        ns_list.join(", ")
                    }
                ),
            );
            lists.push((r, items));
        }
    }

    let pods: Vec<Value> = lists
        .iter()
        .filter(|(r, _)| r.group.is_empty() && r.kind == "Pod")
        .flat_map(|(_, v)| v.iter().cloned())
        .collect();
    let mut objects: Vec<Value> = lists
        .iter()
        .filter(|(r, _)| !(r.group.is_empty() && r.kind == "Pod"))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect();
    if pods.is_empty() && objects.is_empty() && !problems.is_empty() {
        return Err(LiveError::Nothing(format!(
            "nothing could be listed on {}: {}",
            kube.cluster,
            problems.sentences().join(" ")
        )));
    }

    // The pods the user named.
    let chosen = chosen_pods(&kube, opts, &target, &pods, &mut problems).await;
    let sel = discover::select(&pods, &objects, &target, chosen.as_ref());
    summary.notes.extend(sel.notes.iter().cloned());

    // MeshConfig and Knative ConfigMaps, from the control-plane and activator namespaces.
    let mut istio_ns: BTreeSet<String> = opts.istio_namespaces.iter().cloned().collect();
    istio_ns.extend(
        pods.iter()
            .filter(|p| {
                discover::label(p, "app") == Some("istiod")
                    || discover::label(p, "istio") == Some("pilot")
            })
            .map(|p| discover::namespace(p).to_string()),
    );
    let knative_ns: BTreeSet<String> = pods
        .iter()
        .filter(|p| {
            sel.pods.contains(&(
                discover::namespace(p).to_string(),
                discover::name(p).to_string(),
            ))
        })
        .filter(|p| {
            discover::label(p, "app") == Some("activator")
                || discover::label(p, "role") == Some("activator")
        })
        .map(|p| discover::namespace(p).to_string())
        .collect();
    // The Envoy rate-limit service's namespace: its descriptors and limits live in a ConfigMap
    // (`domain:` + `descriptors:`), which says which limit a 429 hit.
    let ratelimit_ns: BTreeSet<String> = pods
        .iter()
        .filter(|p| {
            discover::label(p, "app") == Some("ratelimit")
                || discover::label(p, "app.kubernetes.io/name") == Some("ratelimit")
        })
        .map(|p| discover::namespace(p).to_string())
        .collect();
    let is_ratelimit_config = |o: &Value| {
        o.get("data").and_then(Value::as_object).is_some_and(|d| {
            d.values()
                .filter_map(Value::as_str)
                .any(|v| v.contains("domain:") && v.contains("descriptors:"))
        })
    };
    let cm = Resolved::core("ConfigMap", "configmaps");
    let config_ns: BTreeSet<String> = istio_ns
        .union(&knative_ns)
        .cloned()
        .chain(ratelimit_ns.iter().cloned())
        .collect();
    for ns in &config_ns {
        let (items, err) = match kube.list(&cm, Some(ns), None).await {
            Ok(items) => (items, None),
            Err(p) => (p.items, Some(p.error)),
        };
        objects.extend(items.into_iter().filter(|o| {
            let n = discover::name(o);
            (istio_ns.contains(ns) && (n == "istio" || n.starts_with("istio-")))
                || (knative_ns.contains(ns) && n.starts_with("config-"))
                || (ratelimit_ns.contains(ns) && is_ratelimit_config(o))
        }));
        match err {
            None => {}
            Some(error::CallError::Forbidden(_)) => problems.forbidden(
                "list",
                "configmaps",
                Some(ns),
                if ratelimit_ns.contains(ns) && !istio_ns.contains(ns) && !knative_ns.contains(ns) {
                    "the rate-limit service's descriptors and limits could not be read".into()
                } else {
                    "the mesh's access-log format (MeshConfig) could not be read and lines are auto-detected".into()
                },
            ),
            Some(error::CallError::NotFound(_)) => {}
            Some(e @ (error::CallError::TimedOut(_) | error::CallError::TooLarge { .. })) => {
                problems.cut(
                    &e,
                    &format!("the ConfigMaps of namespace {ns} listed until then are kept"),
                )
            }
            Some(e) => problems.other(format!("ConfigMaps in namespace {ns}: {e}")),
        }
    }
    let mut fmt_notes = Vec::new();
    let log_formats = meshconfig::log_formats(&objects, &pods, &sel.pods, &mut fmt_notes);
    summary.notes.extend(fmt_notes);

    // Write the objects now; then stream the logs.
    private::create_dir_all(dir).map_err(|e| LiveError::io(dir, e))?;
    writer::write_pods(dir, &pods)?;
    summary.objects = writer::write_objects(dir, &mut objects)?;
    summary.pods_listed = pods.len();

    let wanted = |p: &Value, c: &str| {
        opts.all_containers
            || opts.containers.iter().any(|w| w == c)
            || (opts.role_containers && discover::is_role_container(p, c))
    };
    let mut jobs: Vec<logs::PodJob> = Vec::new();
    let mut no_container: Vec<String> = Vec::new();
    for p in pods.iter().filter(|p| {
        sel.pods.contains(&(
            discover::namespace(p).to_string(),
            discover::name(p).to_string(),
        ))
    }) {
        let cs: Vec<(String, i64)> = discover::containers(p)
            .into_iter()
            .filter(|(c, _)| wanted(p, c))
            .collect();
        if cs.is_empty() {
            no_container.push(format!("{}/{}", discover::namespace(p), discover::name(p)));
            continue;
        }
        let has_proxy = cs.iter().any(|(c, _)| c == "istio-proxy")
            || discover::containers(p)
                .iter()
                .any(|(c, _)| c == "istio-proxy");
        jobs.push(logs::PodJob {
            namespace: discover::namespace(p).to_string(),
            pod: discover::name(p).to_string(),
            containers: cs,
            // A ztunnel's admin port serves ztunnel's own config, not an Envoy config dump.
            config_dump: opts.config_dumps && has_proxy && !discover::is_ztunnel(p),
        });
    }
    if !no_container.is_empty() {
        summary.notes.push(format!(
            "{} selected pod(s) have no {} container, no logs taken: {}",
            no_container.len(),
            opts.containers.join("/"),
            no_container.join(", ")
        ));
    }
    let missing_selected: Vec<String> = sel
        .pods
        .iter()
        .filter(|k| {
            !pods.iter().any(|p| {
                (discover::namespace(p), discover::name(p)) == (k.0.as_str(), k.1.as_str())
            })
        })
        .map(|(a, b)| format!("{a}/{b}"))
        .collect();
    if !missing_selected.is_empty() {
        problems.other(format!("pod(s) not found: {}", missing_selected.join(", ")));
    }
    summary.pods_selected = jobs.len();

    let progress = Arc::new(progress::Progress::new(opts.progress, jobs.len()));
    let outcomes = futures::stream::iter(jobs)
        .map(|job| {
            let kube = &kube;
            let progress = progress.clone();
            async move {
                let o =
                    logs::collect_pod(kube, &job, &opts.window, opts.dump_timeout, dir, &progress)
                        .await;
                progress.pod_done();
                o
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    progress.finish();
    for o in outcomes {
        summary.logs += o.logs;
        summary.config_dumps += o.config_dumps;
        summary.bytes += o.bytes;
        summary.notes.extend(o.notes);
        for p in o.problems {
            p.record(&mut problems);
        }
    }

    let manifest = serde_json::json!({
        "version": 1,
        "collected_at": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "collector": opts.collector,
        "cluster": kube.cluster,
        "log_formats": log_formats,
        "notes": summary.notes.join("\n"),
        "scope": match &target { Target::All => "all namespaces".to_string(), Target::Namespaces(v) => format!("namespace(s) {}", v.join(", ")) },
        "problems": Value::Null,
    });
    summary.problems = problems.sentences();
    let mut manifest = manifest;
    manifest["problems"] = serde_json::json!(summary.problems);
    writer::write_json(&dir.join("meshtrace-bundle.json"), &manifest)?;
    Ok(summary)
}

/// `--pod` and `-l`: the pods the user named, or `None` to take every pod of the namespaces.
async fn chosen_pods(
    kube: &Kube,
    opts: &LiveOptions,
    target: &Target,
    pods: &[Value],
    problems: &mut Problems,
) -> Option<BTreeSet<PodKey>> {
    if opts.pods.is_empty() && opts.selectors.is_empty() {
        return None;
    }
    let mut out = BTreeSet::new();
    let default_ns = match target {
        Target::Namespaces(v) => v
            .first()
            .cloned()
            .unwrap_or_else(|| kube.default_namespace.clone()),
        Target::All => kube.default_namespace.clone(),
    };
    for p in &opts.pods {
        let (ns, name) = match p.split_once('/') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => match target {
                // With -A a bare name may be in any namespace.
                Target::All => match pods.iter().find(|x| discover::name(x) == p) {
                    Some(x) => (discover::namespace(x).to_string(), p.clone()),
                    None => (default_ns.clone(), p.clone()),
                },
                Target::Namespaces(_) => (default_ns.clone(), p.clone()),
            },
        };
        if !pods
            .iter()
            .any(|x| discover::namespace(x) == ns && discover::name(x) == name)
        {
            problems.other(format!("--pod {p}: no pod {name} in namespace {ns}"));
        }
        out.insert((ns, name));
    }
    let pod_res = Resolved::core("Pod", "pods");
    for s in &opts.selectors {
        let nss: Vec<Option<String>> = match target {
            Target::All => vec![None],
            Target::Namespaces(v) => v.iter().cloned().map(Some).collect(),
        };
        for ns in nss {
            let listed = match kube.list(&pod_res, ns.as_deref(), Some(s)).await {
                Ok(items) => Ok(items),
                Err(p) if p.items.is_empty() => Err(p.error),
                Err(p) => {
                    kubeapi::ListProblem::new(&pod_res, ns.as_deref(), p.error).record(problems);
                    Ok(p.items)
                }
            };
            match listed {
                Ok(items) => {
                    if items.is_empty() {
                        problems.other(format!(
                            "-l {s}: no pod matches{}",
                            ns.as_deref()
                                .map(|n| format!(" in namespace {n}"))
                                .unwrap_or_default()
                        ));
                    }
                    out.extend(items.iter().map(|o| {
                        (
                            discover::namespace(o).to_string(),
                            discover::name(o).to_string(),
                        )
                    }));
                }
                Err(e) => kubeapi::ListProblem::new(&pod_res, ns.as_deref(), e).record(problems),
            }
        }
    }
    Some(out)
}
