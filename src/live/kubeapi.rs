//! The kube-rs client: configuration (kubeconfig, `--context`, in-cluster), the reachability
//! probe, API discovery of the custom resources, and paginated lists as raw JSON. Every call is
//! bounded in time (`--request-timeout`, `--deadline`) and in bytes (`bounds`).

use std::sync::Arc;

use http_body_util::BodyExt;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::bounds::{self, Clock, DiskBudget};
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
            e @ (CallError::TimedOut(_) | CallError::TooLarge { .. }) => p.cut(
                &e,
                &format!(
                    "the {}{} listed until then are kept",
                    self.resource,
                    self.ns
                        .as_deref()
                        .map(|n| format!(" of namespace {n}"))
                        .unwrap_or_default()
                ),
            ),
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
    /// Cut by a failure or a bound: the items read before, and the problem.
    Partial(Vec<Value>, ListProblem),
}

/// A list that stopped: the items of the pages read before, and why.
pub(crate) struct Partial {
    pub items: Vec<Value>,
    pub error: CallError,
}

/// `GET /version`, its body read up to 1 MiB (only the answer's status matters).
async fn probe_version(client: &Client) -> Result<(u16, Vec<u8>), kube::Error> {
    let req = http::Request::get("/version")
        .body(Body::empty())
        .map_err(kube::Error::HttpError)?;
    let res = client.send(req).await?;
    let code = res.status().as_u16();
    let mut body = res.into_body();
    let mut text = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            text.extend_from_slice(&data);
            if text.len() > 1 << 20 {
                break;
            }
        }
    }
    Ok((code, text))
}

/// A connected client.
pub(crate) struct Kube {
    pub client: Client,
    pub cluster: String,
    pub default_namespace: String,
    /// Bounds every API call in flight.
    pub permits: Arc<Semaphore>,
    /// `--request-timeout` and `--deadline`.
    pub clock: Clock,
    /// Bytes left for logs and config dumps.
    pub disk: DiskBudget,
}

/// `GET /api/v1/pods?limit=500`: a request as the sentences name it.
pub(crate) fn describe<B>(req: &http::Request<B>) -> String {
    let uri = req.uri();
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{} {}", req.method(), pq.replacen("?&", "?", 1))
}

/// Read a body, at most `cap` bytes.
pub(crate) async fn read_capped(body: Body, cap: u64, call: &str) -> Result<Vec<u8>, CallError> {
    let mut body = body;
    let mut out: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            CallError::Other(format!("`{call}` was cut after {} bytes: {e}", out.len()))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() as u64 + data.len() as u64 > cap {
                return Err(CallError::TooLarge {
                    call: call.to_string(),
                    cap,
                });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// A 2xx answer as it is; anything else as a [`CallError`] from its (capped) `Status` body.
pub(crate) async fn check(res: http::Response<Body>, call: &str) -> Result<Body, CallError> {
    let code = res.status();
    if code.is_success() {
        return Ok(res.into_body());
    }
    let mut body = res.into_body();
    let mut text: Vec<u8> = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            let room = (bounds::MAX_ERROR_BYTES as usize).saturating_sub(text.len());
            text.extend_from_slice(&data[..data.len().min(room)]);
            if room <= data.len() {
                break;
            }
        }
    }
    let _ = call;
    Err(CallError::from_answer(code.as_u16(), &text))
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
        let probe = tokio::time::timeout(opts.connect_timeout, probe_version(&client)).await;
        match probe {
            Err(_) => {
                return Err(LiveError::Unreachable {
                    url,
                    cluster: whose,
                    message: format!("no answer within {:?}", opts.connect_timeout),
                });
            }
            Ok(Ok((401, body))) => {
                let message = match CallError::from_answer(401, &body) {
                    CallError::Other(m) => m,
                    other => other.to_string(),
                };
                return Err(LiveError::Unauthorized {
                    url,
                    cluster: whose,
                    message,
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
            clock: Clock::new(opts.request_timeout, opts.deadline),
            disk: DiskBudget::new(bounds::MAX_BUNDLE_BYTES),
        })
    }

    /// Wait for a turn among the calls in flight (within the deadline).
    pub(crate) async fn permit(&self, call: &str) -> Result<SemaphorePermit<'_>, CallError> {
        match self
            .clock
            .until_deadline(call, self.permits.acquire())
            .await
        {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(e)) => Err(CallError::Other(e.to_string())),
            Err(t) => Err(CallError::TimedOut(t)),
        }
    }

    /// Send a request and wait for the answer's head, within the per-call timeout: a 2xx body
    /// to read, or the error it answered.
    pub(crate) async fn send(
        &self,
        req: http::Request<Vec<u8>>,
        call: &str,
    ) -> Result<Body, CallError> {
        let fut = async {
            let res = self
                .client
                .send(req.map(Body::from))
                .await
                .map_err(CallError::from_kube)?;
            check(res, call).await
        };
        self.clock
            .call(call, fut)
            .await
            .map_err(CallError::TimedOut)?
    }

    /// One GET answered with JSON: the whole call within the per-call timeout and the deadline,
    /// the body at most `cap` bytes. Returns the value and the body's size.
    pub(crate) async fn get_json(
        &self,
        req: http::Request<Vec<u8>>,
        cap: u64,
    ) -> Result<(Value, u64), CallError> {
        let call = describe(&req);
        let _p = self.permit(&call).await?;
        let fut = async {
            let res = self
                .client
                .send(req.map(Body::from))
                .await
                .map_err(CallError::from_kube)?;
            let body = check(res, &call).await?;
            let bytes = read_capped(body, cap, &call).await?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                CallError::Other(format!(
                    "`{call}` answered with JSON that cannot be read: {e}"
                ))
            })?;
            Ok((v, bytes.len() as u64))
        };
        self.clock
            .call(&call, fut)
            .await
            .map_err(CallError::TimedOut)?
    }

    /// A discovery document, typed.
    async fn discovery<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        let req = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| CallError::Other(e.to_string()))?;
        let (v, _) = self.get_json(req, bounds::MAX_RESPONSE_BYTES).await?;
        serde_json::from_value(v)
            .map_err(|e| CallError::Other(format!("`GET {path}`: unexpected answer: {e}")))
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
            "Namespace" => "namespaces",
            _ => "",
        };
        for (g, k, _, policy) in wanted.iter().filter(|w| w.0.is_empty()) {
            let mut r = Resolved::core(k, core_plural(k));
            r.group = g.to_string();
            r.policy = *policy;
            r.namespaced = *k != "Namespace";
            out.push(r);
        }
        let groups = self
            .discovery::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList>("/apis")
            .await;
        let groups = match groups {
            Ok(g) => g.groups,
            Err(e) => {
                notes.push(format!(
                    "API discovery failed ({e}); only core objects were collected"
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
                    let r = self
                        .discovery::<k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList>(
                            &format!("/apis/{gv}"),
                        )
                        .await;
                    (gv, r)
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

    /// One list, every page, items as raw JSON with `apiVersion` and `kind` set (and
    /// `managedFields`, which meshtrace never reads, left out). Each page is bounded by the
    /// per-call timeout and [`bounds::MAX_RESPONSE_BYTES`], all pages by
    /// [`bounds::MAX_LIST_BYTES`]; a list cut by a bound keeps the pages read before.
    pub(crate) async fn list(
        &self,
        r: &Resolved,
        ns: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, Partial> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut total: u64 = 0;
        let request = kube::core::Request::new(r.url(ns));
        for _page in 0..10_000 {
            let mut lp = kube::api::ListParams::default().limit(500);
            if let Some(s) = label_selector {
                lp = lp.labels(s);
            }
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let req = request.list(&lp).map_err(|e| Partial {
                items: Vec::new(),
                error: CallError::Other(e.to_string()),
            })?;
            let call = describe(&req);
            let cap = bounds::MAX_RESPONSE_BYTES.min(bounds::MAX_LIST_BYTES - total);
            let (page, size) = match self.get_json(req, cap).await {
                Ok(x) => x,
                Err(CallError::TooLarge { .. }) if cap < bounds::MAX_RESPONSE_BYTES => {
                    return Err(Partial {
                        items,
                        error: CallError::TooLarge {
                            call,
                            cap: bounds::MAX_LIST_BYTES,
                        },
                    });
                }
                Err(error) => return Err(Partial { items, error }),
            };
            total += size;
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
                        if let Some(Value::Object(meta)) = typed.get_mut("metadata") {
                            meta.remove("managedFields");
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
                Err(Partial {
                    error: CallError::Forbidden(_),
                    ..
                }) => match target {
                    Target::All => Listed::Failed(ListProblem::new(
                        r,
                        None,
                        CallError::Forbidden(String::new()),
                    )),
                    // A namespaced kind can still be listed namespace by namespace.
                    Target::Namespaces(_) if r.namespaced => Listed::ForbiddenClusterWide,
                    Target::Namespaces(_) => Listed::Failed(ListProblem::new(
                        r,
                        None,
                        CallError::Forbidden(String::new()),
                    )),
                },
                Err(p) => Listed::Partial(p.items, ListProblem::new(r, None, p.error)),
            };
        }
        let Target::Namespaces(nss) = target else {
            return Listed::Items(Vec::new());
        };
        let mut out = Vec::new();
        for ns in nss {
            match self.list(r, Some(ns), None).await {
                Ok(mut v) => out.append(&mut v),
                Err(mut p) => {
                    out.append(&mut p.items);
                    return Listed::Partial(out, ListProblem::new(r, Some(ns), p.error));
                }
            }
        }
        Listed::Items(out)
    }
}
