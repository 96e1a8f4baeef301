//! The kube-rs client: configuration (kubeconfig, `--context`, in-cluster), the reachability
//! probe, API discovery of the custom resources, and paginated lists as raw JSON.

use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::discover::Target;
use super::error::{CallError, LiveError};
use super::{LiveOptions, Problems};

/// How a kind is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListPolicy {
    /// Cluster-wide (falling back to namespaces on 403): needed to resolve any address.
    Cluster,
    /// Only the target namespaces (e.g. Events).
    Target,
}

/// A kind the server serves.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub policy: ListPolicy,
}

impl Resolved {
    pub(crate) fn core(kind: &str, plural: &str) -> Resolved {
        Resolved {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            policy: ListPolicy::Cluster,
        }
    }

    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `virtualservices.networking.istio.io`: the RBAC resource name.
    pub(crate) fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn url(&self, ns: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match ns {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }
}

/// A list that failed, to be worded.
pub(crate) struct ListProblem {
    resource: String,
    ns: Option<String>,
    error: CallError,
}

impl ListProblem {
    pub(crate) fn new(r: &Resolved, ns: Option<&str>, error: CallError) -> ListProblem {
        ListProblem {
            resource: r.resource_name(),
            ns: ns.map(str::to_string),
            error,
        }
    }

    pub(crate) fn record(self, p: &mut Problems) {
        match self.error {
            CallError::Forbidden(_) => p.forbidden(
                "list",
                &self.resource,
                self.ns.as_deref(),
                format!("no {} were collected there", self.resource),
            ),
            e => p.other(format!(
                "listing {}{}: {e}",
                self.resource,
                self.ns
                    .map(|n| format!(" in namespace {n}"))
                    .unwrap_or_default()
            )),
        }
    }
}

/// The outcome of listing one kind by its policy.
pub(crate) enum Listed {
    Items(Vec<Value>),
    ForbiddenClusterWide,
    Failed(ListProblem),
}

/// A connected client.
pub(crate) struct Kube {
    pub client: Client,
    pub cluster: String,
    pub default_namespace: String,
    /// Bounds every API call in flight.
    pub permits: Arc<Semaphore>,
}

fn context_name(opts: &LiveOptions) -> Option<String> {
    if let Some(c) = &opts.context {
        return Some(c.clone());
    }
    let kc = match &opts.kubeconfig {
        Some(p) => Kubeconfig::read_from(p).ok()?,
        None => Kubeconfig::read().ok()?,
    };
    kc.current_context
}

impl Kube {
    /// Load the configuration, build the client and check the API server answers.
    pub(crate) async fn connect(opts: &LiveOptions) -> Result<Kube, LiveError> {
        let kopts = KubeConfigOptions {
            context: opts.context.clone(),
            cluster: None,
            user: None,
        };
        let cfg_err = |message: String| LiveError::Config {
            context: opts.context.clone(),
            message,
        };
        let mut config = match &opts.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| cfg_err(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kc, &kopts)
                    .await
                    .map_err(|e| cfg_err(e.to_string()))?
            }
            None if opts.context.is_some() => Config::from_kubeconfig(&kopts)
                .await
                .map_err(|e| cfg_err(e.to_string()))?,
            None => Config::infer().await.map_err(|e| {
                cfg_err(format!(
                    "{e} (no kubeconfig found: set KUBECONFIG or --kubeconfig, or run inside a pod)"
                ))
            })?,
        };
        config.connect_timeout = Some(opts.connect_timeout);
        config.default_retry = false;
        let url = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let whose = match context_name(opts) {
            Some(c) => format!("context {c}"),
            None => "in-cluster service account".to_string(),
        };
        let cluster = format!("{url} ({whose})");
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| cfg_err(e.to_string()))?;
        let probe = tokio::time::timeout(opts.connect_timeout, client.apiserver_version()).await;
        match probe {
            Err(_) => {
                return Err(LiveError::Unreachable {
                    url,
                    cluster: whose,
                    message: format!("no answer within {:?}", opts.connect_timeout),
                });
            }
            Ok(Err(kube::Error::Api(s))) if s.code == 401 => {
                return Err(LiveError::Unauthorized {
                    url,
                    cluster: whose,
                    message: format!("{} ({} {})", s.message, s.code, s.reason),
                });
            }
            // Some servers forbid /version to anonymous users; the lists will tell.
            Ok(Err(kube::Error::Api(_))) | Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                // The innermost cause says it best ("Connection refused", a DNS failure…).
                let mut message = e.to_string();
                let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
                while let Some(s) = src {
                    message = s.to_string();
                    src = s.source();
                }
                return Err(LiveError::Unreachable {
                    url,
                    cluster: whose,
                    message,
                });
            }
        }
        Ok(Kube {
            client,
            cluster,
            default_namespace,
            permits: Arc::new(Semaphore::new(opts.concurrency.max(1))),
        })
    }

    /// Which of the wanted kinds exist; notes for the products not installed.
    pub(crate) async fn resolve(
        &self,
        wanted: &[(&str, &str, &str, ListPolicy)],
    ) -> (Vec<Resolved>, Vec<String>) {
        let mut out = Vec::new();
        let mut notes = Vec::new();
        let core_plural = |k: &str| match k {
            "Pod" => "pods",
            "Service" => "services",
            "Endpoints" => "endpoints",
            "Event" => "events",
            "ConfigMap" => "configmaps",
            _ => "",
        };
        for (g, k, _, policy) in wanted.iter().filter(|w| w.0.is_empty()) {
            let mut r = Resolved::core(k, core_plural(k));
            r.group = g.to_string();
            r.policy = *policy;
            out.push(r);
        }
        let groups = {
            let _p = self.permits.acquire().await;
            self.client.list_api_groups().await
        };
        let groups = match groups {
            Ok(g) => g.groups,
            Err(e) => {
                notes.push(format!(
                    "API discovery failed ({}); only core objects were collected",
                    CallError::from_kube(e)
                ));
                return (out, notes);
            }
        };
        let mut group_names: Vec<&str> = wanted
            .iter()
            .filter(|w| !w.0.is_empty())
            .map(|w| w.0)
            .collect();
        group_names.dedup();
        // Every served version of each group (a kind may live in one version only, as
        // EnvoyFilter in networking.istio.io/v1alpha3), fetched concurrently.
        let lookups = group_names.iter().map(|g| {
            let found = groups.iter().find(|x| x.name == *g);
            async move {
                let Some(found) = found else {
                    return (*g, None);
                };
                let preferred = found
                    .preferred_version
                    .as_ref()
                    .map(|p| p.group_version.clone());
                let mut gvs: Vec<String> = preferred.iter().cloned().collect();
                gvs.extend(
                    found
                        .versions
                        .iter()
                        .map(|v| v.group_version.clone())
                        .filter(|gv| Some(gv) != preferred.as_ref()),
                );
                let fetched = futures::future::join_all(gvs.into_iter().map(|gv| async move {
                    let _p = self.permits.acquire().await;
                    let r = self.client.list_api_group_resources(&gv).await;
                    (gv, r.map_err(CallError::from_kube))
                }))
                .await;
                (*g, Some(fetched))
            }
        });
        let results = futures::future::join_all(lookups).await;
        let mut absent_products: Vec<String> = Vec::new();
        for (g, res) in results {
            let kinds: Vec<&(&str, &str, &str, ListPolicy)> =
                wanted.iter().filter(|w| w.0 == g).collect();
            let product = kinds.first().map(|w| w.2).unwrap_or(g);
            let Some(versions) = res else {
                let ks: Vec<&str> = kinds.iter().map(|w| w.1).collect();
                absent_products.push(format!("{product} ({g}: no {})", ks.join("/")));
                continue;
            };
            for (gv, r) in &versions {
                if let Err(e) = r {
                    notes.push(format!("API {gv}: discovery failed ({e})"));
                }
            }
            let mut unserved: Vec<&str> = Vec::new();
            for (_, k, _, policy) in kinds {
                let hit = versions.iter().find_map(|(gv, r)| {
                    let list = r.as_ref().ok()?;
                    let res = list
                        .resources
                        .iter()
                        .find(|r| r.kind == *k && !r.name.contains('/'))?;
                    Some((gv.clone(), res.name.clone(), res.namespaced))
                });
                match hit {
                    Some((gv, plural, namespaced)) => out.push(Resolved {
                        group: g.to_string(),
                        version: gv.split_once('/').map(|x| x.1).unwrap_or(&gv).to_string(),
                        kind: k.to_string(),
                        plural,
                        namespaced,
                        policy: *policy,
                    }),
                    None => unserved.push(k),
                }
            }
            if !unserved.is_empty() {
                notes.push(format!("{g} serves no {}", unserved.join(", ")));
            }
        }
        if !absent_products.is_empty() {
            notes.push(format!("not installed: {}", absent_products.join(", ")));
        }
        (out, notes)
    }

    /// One list, every page, items as raw JSON with `apiVersion` and `kind` set.
    pub(crate) async fn list(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, CallError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let request = kube::core::Request::new(r.url(ns));
        for _page in 0..10_000 {
            let mut lp = kube::api::ListParams::default().limit(500);
            if let Some(s) = label_selector {
                lp = lp.labels(s);
            }
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let req = request
                .list(&lp)
                .map_err(|e| CallError::Other(e.to_string()))?;
            let page: Value = {
                let _p = self.permits.acquire().await;
                self.client
                    .request::<Value>(req)
                    .await
                    .map_err(CallError::from_kube)?
            };
            let av = r.api_version();
            if let Some(Value::Array(list)) = page.get("items") {
                for item in list {
                    let mut item = item.clone();
                    if let Value::Object(m) = &mut item {
                        // Items of a list carry no type: put it first, as kubectl does.
                        let mut typed = serde_json::Map::new();
                        typed.insert("apiVersion".into(), Value::String(av.clone()));
                        typed.insert("kind".into(), Value::String(r.kind.clone()));
                        for (k, v) in std::mem::take(m) {
                            if k != "apiVersion" && k != "kind" {
                                typed.insert(k, v);
                            }
                        }
                        *m = typed;
                    }
                    items.push(item);
                }
            }
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(items)
    }

    /// List a kind as its policy says: cluster-wide, or in each target namespace.
    pub(crate) async fn list_policy(&self, r: &Resolved, target: &Target) -> Listed {
        let cluster_wide =
            !r.namespaced || matches!(target, Target::All) || r.policy == ListPolicy::Cluster;
        if cluster_wide {
            return match self.list(r, None, None).await {
                Ok(v) => Listed::Items(v),
                Err(CallError::Forbidden(_)) => match target {
                    Target::All => Listed::Failed(ListProblem::new(
                        r,
                        None,
                        CallError::Forbidden(String::new()),
                    )),
                    Target::Namespaces(_) => Listed::ForbiddenClusterWide,
                },
                Err(e) => Listed::Failed(ListProblem::new(r, None, e)),
            };
        }
        let Target::Namespaces(nss) = target else {
            return Listed::Items(Vec::new());
        };
        let mut out = Vec::new();
        for ns in nss {
            match self.list(r, Some(ns), None).await {
                Ok(mut v) => out.append(&mut v),
                Err(e) => return Listed::Failed(ListProblem::new(r, Some(ns), e)),
            }
        }
        Listed::Items(out)
    }
}
