//! A fake Kubernetes API server for the live tests and the collect bench, fed from an evidence
//! bundle: discovery (`/api`, `/apis`, `/apis/{group}/{version}`) with the custom resources of the
//! bundle present (or hidden), JSON lists with label/field selectors and pagination,
//! `pods/{name}/log` with `container`, `sinceSeconds`, `sinceTime`, `previous` and `timestamps`,
//! WebSocket `pods/{name}/portforward` (`v4.channel.k8s.io` framing) to a fake Envoy admin
//! serving the bundle's config dumps, WebSocket `pods/{name}/exec` for `pilot-agent request`,
//! `Status` objects for 400/403/404, optional latency per call. kube-rs reaches it through a
//! generated kubeconfig. For the untrusted-cluster tests it can stall (after `/version`, in the
//! middle of a list, in a log stream), send an endless list body, record every call as RBAC sees
//! it (verb, group, resource, subresource, namespace) and enforce an RBAC policy read from
//! `docs/rbac.yaml` (`rbac.rs`). Every stall ends after [`STALL_MAX`] and everything stops when
//! the server is dropped.

#![allow(dead_code)]

pub mod rbac;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Who may not do what.
#[derive(Debug, Clone)]
pub struct Forbid {
    /// `get`, `list`, `create`.
    pub verb: &'static str,
    /// `pods`, `pods/log`, `pods/portforward`, `virtualservices`…
    pub resource: &'static str,
    /// `None`: every namespace and cluster-wide; `Some("")`: cluster-wide calls only;
    /// `Some(ns)`: that namespace only.
    pub namespace: Option<String>,
}

/// The longest any stall lasts (then the answer ends), so a test can never hang on the fake.
pub const STALL_MAX: Duration = Duration::from_secs(60);

/// Where the fake stops answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stall {
    /// `/version` answers, then no other call does.
    AfterVersion,
    /// Lists of this resource (plural) send the start of their body, then nothing.
    MidList(String),
    /// The log of this pod is sent, then the stream neither sends nor ends.
    Log {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
    },
}

/// One API call as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// `get`, `list`, `create`.
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// Plural (`pods`).
    pub resource: String,
    /// `log`, `portforward`, `exec`, or `""`.
    pub subresource: String,
    /// `None`: cluster-wide.
    pub namespace: Option<String>,
}

impl Call {
    /// `pods` or `pods/log`, as in an RBAC rule.
    pub fn rbac_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// Behaviour of the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    /// Where to stop answering.
    pub stall: Vec<Stall>,
    /// Lists of this resource (plural) send a body that never ends (up to 2 GiB, fast).
    pub endless_list: Option<String>,
    /// Only what this policy allows is answered; the rest gets a 403.
    pub rbac: Option<rbac::Rbac>,
    /// Added before every answer.
    pub latency: Duration,
    /// 403s.
    pub forbid: Vec<Forbid>,
    /// Pods that are listed but gone by the time anything else is asked (404).
    pub vanish: Vec<(String, String)>,
    /// API groups not installed even if the bundle has their objects.
    pub absent_groups: Vec<String>,
    /// Every port-forward fails (nothing listens on 15000), so exec is the way.
    pub portforward_refused: bool,
    /// Config dumps to serve besides the bundle's: `(ns, pod)` → JSON text.
    pub extra_dumps: Vec<((String, String), String)>,
    /// Pods whose logs are generated on the fly: `(ns, pod, container)` → bytes to stream.
    pub generated_logs: Vec<((String, String, String), u64)>,
}

struct LogLines {
    /// Each line with its newline, and its time.
    lines: Vec<(jiff::Timestamp, Vec<u8>)>,
}

struct Kind {
    group: String,
    version: String,
    kind: String,
    plural: String,
}

struct StateInner {
    cfg: FakeConfig,
    kinds: Vec<Kind>,
    /// (group, plural) → objects (with apiVersion/kind).
    objects: BTreeMap<(String, String), Vec<Value>>,
    /// (ns, pod, container, previous) → lines.
    logs: BTreeMap<(String, String, String, bool), LogLines>,
    /// (ns, pod) → fake Envoy admin address.
    admins: BTreeMap<(String, String), SocketAddr>,
    /// (ns, pod) → dump text (for exec).
    dumps: BTreeMap<(String, String), Arc<Vec<u8>>>,
    requests: Mutex<Vec<String>>,
    calls: Mutex<Vec<Call>>,
}

type St = Arc<StateInner>;

/// A running fake API server (its own Tokio runtime; stopped on drop).
pub struct FakeApiServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: St,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

pub fn plural_of(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    match k.as_str() {
        "endpoints" => k,
        _ if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") => {
            format!("{}ies", &k[..k.len() - 1])
        }
        _ if k.ends_with('s') => format!("{k}es"),
        _ => format!("{k}s"),
    }
}

fn split_api_version(av: &str) -> (String, String) {
    match av.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), av.to_string()),
    }
}

/// The time of a log line: a `kubectl logs --timestamps` prefix, or an access log's
/// `[START_TIME]`, or a logrus `time="…"`.
fn line_time(line: &[u8]) -> Option<jiff::Timestamp> {
    let text = String::from_utf8_lossy(&line[..line.len().min(200)]);
    let first = text.split(' ').next().unwrap_or("");
    if let Ok(t) = first.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    if let Some(i) = text.find('[')
        && i < 60
        && let Some(j) = text[i..].find(']')
        && let Ok(t) = text[i + 1..i + j].parse::<jiff::Timestamp>()
    {
        return Some(t);
    }
    if let Some(i) = text.find("time=\"")
        && let Some(j) = text[i + 6..].find('"')
        && let Ok(t) = text[i + 6..i + 6 + j].parse::<jiff::Timestamp>()
    {
        return Some(t);
    }
    None
}

fn split_lines(bytes: &[u8]) -> LogLines {
    let mut raw: Vec<Vec<u8>> = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            raw.push(bytes[start..=i].to_vec());
            start = i + 1;
        }
    }
    if start < bytes.len() {
        raw.push(bytes[start..].to_vec());
    }
    let times: Vec<Option<jiff::Timestamp>> = raw.iter().map(|l| line_time(l)).collect();
    let first = times
        .iter()
        .flatten()
        .next()
        .copied()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut last = first;
    let mut lines = Vec::new();
    for (l, t) in raw.into_iter().zip(times) {
        if let Some(t) = t {
            last = t;
        }
        lines.push((last, l));
    }
    LogLines { lines }
}

fn status(code: u16, reason: &str, message: String, details: Value) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "details": details, "code": code,
    });
    let mut r = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn json_response(v: Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn not_found_path() -> Response {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource".into(),
        json!({}),
    )
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Kubernetes label selector semantics: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
/// `k`, `!k`, joined by commas.
pub fn selector_matches(sel: &str, labels: &serde_json::Map<String, Value>) -> bool {
    let mut reqs = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in sel.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch);
            }
            ')' => {
                depth -= 1;
                cur.push(ch);
            }
            ',' if depth == 0 => reqs.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    reqs.push(cur);
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    reqs.iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .all(|r| {
            let set = |s: &str| -> Vec<String> {
                s.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .collect()
            };
            if let Some((k, rest)) = r.split_once(" notin ") {
                return get(k.trim()).is_none_or(|v| !set(rest).iter().any(|x| x == v));
            }
            if let Some((k, rest)) = r.split_once(" in ") {
                return get(k.trim()).is_some_and(|v| set(rest).iter().any(|x| x == v));
            }
            if let Some((k, v)) = r.split_once("!=") {
                return get(k.trim()) != Some(v.trim());
            }
            if let Some((k, v)) = r.split_once("==").or_else(|| r.split_once('=')) {
                return get(k.trim()) == Some(v.trim());
            }
            if let Some(k) = r.strip_prefix('!') {
                return get(k.trim()).is_none();
            }
            get(r).is_some()
        })
}

impl FakeApiServer {
    /// Serve `bundle` (a folder in the layout of docs/bundle.md).
    pub fn start(bundle: &Path, cfg: FakeConfig) -> FakeApiServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let b = meshtrace::source::bundle::Bundle::open(bundle).expect("bundle opens");

        // Objects by kind; core kinds always served.
        let mut kinds: Vec<Kind> = Vec::new();
        let mut objects: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
        for k in ["Pod", "Service", "Endpoints", "Event", "ConfigMap"] {
            kinds.push(Kind {
                group: String::new(),
                version: "v1".into(),
                kind: k.into(),
                plural: plural_of(k),
            });
            seen.insert((String::new(), "v1".into(), k.into()));
            objects.entry((String::new(), plural_of(k))).or_default();
        }
        let mut dedup: BTreeSet<String> = BTreeSet::new();
        for o in &b.objects {
            let (g, v) = split_api_version(&o.api_version);
            if cfg.absent_groups.contains(&g)
                || !dedup.insert(format!("{}|{}", o.api_version, o.reference()))
            {
                continue;
            }
            if seen.insert((g.clone(), v.clone(), o.kind.clone())) {
                kinds.push(Kind {
                    group: g.clone(),
                    version: v.clone(),
                    kind: o.kind.clone(),
                    plural: plural_of(&o.kind),
                });
            }
            objects
                .entry((g, plural_of(&o.kind)))
                .or_default()
                .push(o.value.clone());
        }

        // Logs.
        let mut logs = BTreeMap::new();
        for l in &b.logs {
            let mut bytes = Vec::new();
            if let Ok(mut r) = l.source.open() {
                let _ = std::io::Read::read_to_end(&mut r, &mut bytes);
            }
            logs.insert(
                (
                    l.namespace.clone(),
                    l.pod.clone(),
                    l.container.clone(),
                    l.previous,
                ),
                split_lines(&bytes),
            );
        }

        // Fake Envoy admins, one listener per pod with a dump.
        let mut dumps: BTreeMap<(String, String), Arc<Vec<u8>>> = BTreeMap::new();
        for d in &b.config_dumps {
            let mut bytes = Vec::new();
            if let Ok(mut r) = d.source.open() {
                let _ = std::io::Read::read_to_end(&mut r, &mut bytes);
            }
            dumps.insert((d.namespace.clone(), d.pod.clone()), Arc::new(bytes));
        }
        for (k, text) in &cfg.extra_dumps {
            dumps.insert(k.clone(), Arc::new(text.clone().into_bytes()));
        }
        let mut admins = BTreeMap::new();
        for (k, body) in &dumps {
            let body = body.clone();
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind admin");
            let addr = listener.local_addr().expect("addr");
            let app = axum::Router::new().route(
                "/config_dump",
                axum::routing::get(move |q: axum::extract::RawQuery| {
                    let body = body.clone();
                    async move {
                        if q.0.as_deref().is_some_and(|q| q.contains("include_eds")) {
                            (StatusCode::OK, body.as_ref().clone()).into_response()
                        } else {
                            (StatusCode::BAD_REQUEST, "include_eds expected").into_response()
                        }
                    }
                }),
            );
            rt.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            admins.insert(k.clone(), addr);
        }

        let state = Arc::new(StateInner {
            cfg,
            kinds,
            objects,
            logs,
            admins,
            dumps,
            requests: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        });
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://{addr}");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\nusers:\n- name: support\n  user:\n    token: fake-token\ncontexts:\n- name: fake-ctx\n  context:\n    cluster: fake\n    user: support\n    namespace: default\ncurrent-context: fake-ctx\n"
            ),
        )
        .expect("kubeconfig");
        FakeApiServer {
            url,
            state,
            kubeconfig,
            _dir: dir,
            rt: Some(rt),
        }
    }

    /// The generated kubeconfig (context `fake-ctx`, namespace `default`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Every API call so far on a resource, as RBAC sees it (discovery and `/version` left out:
    /// every authenticated user may read them).
    pub fn calls(&self) -> Vec<Call> {
        self.state
            .calls
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Every request so far: `GET /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

fn forbidden(st: &StateInner, verb: &str, resource: &str, ns: Option<&str>) -> bool {
    st.cfg.forbid.iter().any(|f| {
        f.verb == verb
            && f.resource == resource
            && match (&f.namespace, ns) {
                (None, _) => true,
                (Some(x), None) => x.is_empty(),
                (Some(x), Some(n)) => x == n,
            }
    })
}

fn forbid_response(verb: &str, resource: &str, name: Option<&str>, ns: Option<&str>) -> Response {
    let (plural, group) = match resource.split_once('.') {
        Some((p, g)) => (p, g),
        None => (resource, ""),
    };
    let subject = match name {
        Some(n) => format!("{} \"{n}\"", plural.split('/').next().unwrap_or(plural)),
        None => plural.split('/').next().unwrap_or(plural).to_string(),
    };
    let scope = match ns {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    status(
        403,
        "Forbidden",
        format!(
            "{subject} is forbidden: User \"system:serviceaccount:support:meshtrace\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}"
        ),
        json!({"name": name.unwrap_or(""), "kind": plural}),
    )
}

async fn handle(State(st): State<St>, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    if let Ok(mut r) = st.requests.lock() {
        r.push(format!("{} {path}?{query}", parts.method));
    }
    if !st.cfg.latency.is_zero() {
        tokio::time::sleep(st.cfg.latency).await;
    }
    if st.cfg.stall.contains(&Stall::AfterVersion) && path != "/version" {
        tokio::time::sleep(STALL_MAX).await;
        return status(504, "Timeout", "stalled".into(), json!({}));
    }
    let q = query_pairs(&query);
    let qv = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => json_response(json!({
            "major": "1", "minor": "30", "gitVersion": "v1.30.0-fake", "gitCommit": "0",
            "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.22",
            "compiler": "gc", "platform": "linux/amd64"
        })),
        ["api"] => json_response(json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": []})),
        ["api", "v1"] => json_response(resource_list(&st, "", "v1")),
        ["apis"] => {
            let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for k in st.kinds.iter().filter(|k| !k.group.is_empty()) {
                let e = groups.entry(&k.group).or_default();
                if !e.contains(&k.version.as_str()) {
                    e.push(&k.version);
                }
            }
            let list: Vec<Value> = groups
                .iter()
                .map(|(g, vs)| {
                    let versions: Vec<Value> = vs
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                        .collect();
                    json!({"name": g, "versions": versions, "preferredVersion": versions[0].clone()})
                })
                .collect();
            json_response(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}))
        }
        ["apis", g, v] => {
            if st.kinds.iter().any(|k| k.group == *g && k.version == *v) {
                json_response(resource_list(&st, g, v))
            } else {
                not_found_path()
            }
        }
        ["api", "v1", rest @ ..] => resource(&st, &mut parts, "", "v1", rest, &qv).await,
        ["apis", g, v, rest @ ..] => {
            let (g, v) = (g.to_string(), v.to_string());
            resource(&st, &mut parts, &g, &v, rest, &qv).await
        }
        _ => not_found_path(),
    }
}

fn resource_list(st: &StateInner, g: &str, v: &str) -> Value {
    let mut resources = Vec::new();
    for k in st.kinds.iter().filter(|k| k.group == g && k.version == v) {
        resources.push(
            json!({"name": k.plural, "singularName": k.kind.to_ascii_lowercase(),
            "namespaced": true, "kind": k.kind, "verbs": ["get", "list", "watch"]}),
        );
        if k.kind == "Pod" {
            for sub in ["log", "portforward", "exec"] {
                resources.push(json!({"name": format!("pods/{sub}"), "singularName": "",
                    "namespaced": true, "kind": if sub == "log" { "Pod" } else { "PodPortForwardOptions" },
                    "verbs": ["get", "create"]}));
            }
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": if g.is_empty() { v.to_string() } else { format!("{g}/{v}") },
        "resources": resources})
}

async fn resource(
    st: &St,
    parts: &mut axum::http::request::Parts,
    g: &str,
    v: &str,
    rest: &[&str],
    qv: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Response {
    let (ns, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns), tail),
        r => (None, r),
    };
    let Some((plural, name, sub)) = (match rest {
        [p] => Some((*p, None, None)),
        [p, n] => Some((*p, Some(*n), None)),
        [p, n, s] => Some((*p, Some(*n), Some(*s))),
        _ => None,
    }) else {
        return not_found_path();
    };
    let Some(kind) = st
        .kinds
        .iter()
        .find(|k| k.group == g && k.version == v && k.plural == plural)
    else {
        return not_found_path();
    };
    let rbac_res = match (g, sub) {
        ("", Some(s)) => format!("{plural}/{s}"),
        ("", None) => plural.to_string(),
        (g, Some(s)) => format!("{plural}/{s}.{g}"),
        (g, None) => format!("{plural}.{g}"),
    };
    let verb = match (name, sub) {
        (None, _) => "list",
        (Some(_), Some("portforward" | "exec")) => "create",
        _ => "get",
    };
    let call = Call {
        verb: verb.to_string(),
        group: g.to_string(),
        resource: plural.to_string(),
        subresource: sub.unwrap_or("").to_string(),
        namespace: ns.map(str::to_string),
    };
    if let Ok(mut c) = st.calls.lock() {
        c.push(call.clone());
    }
    if st.cfg.rbac.as_ref().is_some_and(|r| !r.allows(&call)) {
        return forbid_response(verb, &rbac_res, name, ns);
    }
    if forbidden(st, verb, &rbac_res, ns) {
        return forbid_response(verb, &rbac_res, name, ns);
    }
    let all = st
        .objects
        .get(&(g.to_string(), plural.to_string()))
        .cloned()
        .unwrap_or_default();
    let Some(name) = name else {
        return list(st, kind, &all, ns, qv);
    };
    let ns_s = ns.unwrap_or("");
    let vanished = st.cfg.vanish.iter().any(|(a, b)| a == ns_s && b == name);
    let obj = all.iter().find(|o| {
        o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
            && o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                == ns_s
    });
    let Some(obj) = obj.filter(|_| !vanished) else {
        return status(
            404,
            "NotFound",
            format!("{plural} \"{name}\" not found"),
            json!({"name": name, "kind": plural}),
        );
    };
    match sub {
        None => json_response(obj.clone()),
        Some("log") => pod_log(st, ns_s, name, obj, qv),
        Some("portforward") => {
            let ws = match WebSocketUpgrade::from_request_parts(parts, &()).await {
                Ok(ws) => ws,
                Err(e) => return e.into_response(),
            };
            let port: u16 = qv("ports").and_then(|p| p.parse().ok()).unwrap_or(0);
            let admin = if st.cfg.portforward_refused || port != 15000 {
                None
            } else {
                st.admins
                    .get(&(ns_s.to_string(), name.to_string()))
                    .copied()
            };
            let who = name.to_string();
            ws.protocols(["v4.channel.k8s.io"])
                .on_upgrade(move |socket| port_forward(socket, port, admin, who))
        }
        Some("exec") => {
            let ws = match WebSocketUpgrade::from_request_parts(parts, &()).await {
                Ok(ws) => ws,
                Err(e) => return e.into_response(),
            };
            let dump = st.dumps.get(&(ns_s.to_string(), name.to_string())).cloned();
            let command: Vec<String> = parts
                .uri
                .query()
                .map(query_pairs)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v)
                .collect();
            ws.protocols(["v4.channel.k8s.io"])
                .on_upgrade(move |socket| exec(socket, command, dump))
        }
        Some(_) => not_found_path(),
    }
}

fn list(
    st: &StateInner,
    kind: &Kind,
    all: &[Value],
    ns: Option<&str>,
    qv: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Response {
    let empty = serde_json::Map::new();
    let sel = qv("labelSelector");
    let fsel = qv("fieldSelector");
    let items: Vec<Value> = all
        .iter()
        .filter(|o| {
            ns.is_none_or(|n| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(n))
        })
        .filter(|o| {
            sel.as_deref().is_none_or(|s| {
                let labels = o
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                selector_matches(s, labels)
            })
        })
        .filter(|o| {
            fsel.as_deref().is_none_or(|f| {
                f.split(',').all(|r| match r.split_once('=') {
                    Some(("metadata.name", v)) => {
                        o.pointer("/metadata/name").and_then(Value::as_str) == Some(v)
                    }
                    Some(("metadata.namespace", v)) => {
                        o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(v)
                    }
                    _ => true,
                })
            })
        })
        .map(|o| {
            // Items of a list carry no apiVersion/kind on the wire.
            let mut o = o.clone();
            if let Value::Object(m) = &mut o {
                m.remove("apiVersion");
                m.remove("kind");
            }
            o
        })
        .collect();
    let start: usize = qv("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = qv("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(items.len());
    let page: Vec<Value> = items
        .get(start.min(items.len())..end)
        .unwrap_or(&[])
        .to_vec();
    let mut meta = json!({"resourceVersion": "4242"});
    if end < items.len() {
        meta["continue"] = json!(end.to_string());
        meta["remainingItemCount"] = json!(items.len() - end);
    }
    let doc = json!({
        "kind": format!("{}List", kind.kind),
        "apiVersion": if kind.group.is_empty() { kind.version.clone() } else { format!("{}/{}", kind.group, kind.version) },
        "metadata": meta,
        "items": page,
    });
    if st.cfg.endless_list.as_deref() == Some(kind.plural.as_str()) {
        return endless_list(&kind.kind);
    }
    if st.cfg.stall.contains(&Stall::MidList(kind.plural.clone())) {
        let text = doc.to_string();
        let head = Bytes::copy_from_slice(&text.as_bytes()[..text.len().min(200)]);
        return Response::new(Body::from_stream(then_stall(vec![head])));
    }
    json_response(doc)
}

/// `chunks`, then nothing for [`STALL_MAX`], then the end.
fn then_stall(
    chunks: Vec<Bytes>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    use futures::StreamExt;
    futures::stream::iter(chunks.into_iter().map(Ok)).chain(futures::stream::once(async {
        tokio::time::sleep(STALL_MAX).await;
        Ok(Bytes::new())
    }))
}

/// A list whose items never end: the same item again and again, 2 GiB at most.
fn endless_list(kind: &str) -> Response {
    let head = Bytes::from(format!(
        "{{\"kind\":\"{kind}List\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"items\":["
    ));
    let item = r#"{"metadata":{"name":"again","namespace":"default","labels":{"app":"again"}},"spec":{"containers":[{"name":"istio-proxy"}]}},"#;
    let chunk = Bytes::from(item.repeat(64 * 1024 / item.len() + 1));
    let limit: u64 = 2 << 30;
    let stream = futures::stream::unfold((0u64, true), move |(sent, first)| {
        let (head, chunk) = (head.clone(), chunk.clone());
        async move {
            if sent >= limit {
                return None;
            }
            let b = if first { head } else { chunk };
            let n = b.len() as u64;
            Some((Ok::<Bytes, std::io::Error>(b), (sent + n, false)))
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn pod_log(
    st: &StateInner,
    ns: &str,
    name: &str,
    pod: &Value,
    qv: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Response {
    let containers: Vec<String> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let container = match qv("container") {
        Some(c) => c,
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return status(
                400,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ),
                json!({}),
            );
        }
    };
    if !containers.contains(&container) {
        return status(
            400,
            "BadRequest",
            format!("container {container} is not valid for pod {name}"),
            json!({}),
        );
    }
    let previous = qv("previous").as_deref() == Some("true");
    let timestamps = qv("timestamps").as_deref() == Some("true");
    let since: Option<jiff::Timestamp> =
        qv("sinceTime").and_then(|t| t.parse().ok()).or_else(|| {
            qv("sinceSeconds")
                .and_then(|s| s.parse::<i64>().ok())
                .and_then(|s| {
                    jiff::Timestamp::now()
                        .checked_sub(jiff::SignedDuration::from_secs(s))
                        .ok()
                })
        });
    if let Some(((_, _, _), size)) = st
        .cfg
        .generated_logs
        .iter()
        .find(|((a, b, c), _)| a == ns && b == name && *c == container)
    {
        return generated(*size);
    }
    let key = (
        ns.to_string(),
        name.to_string(),
        container.clone(),
        previous,
    );
    let Some(lines) = st.logs.get(&key) else {
        if previous {
            return status(
                400,
                "BadRequest",
                format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ),
                json!({}),
            );
        }
        return (StatusCode::OK, Body::empty()).into_response();
    };
    let mut out: Vec<u8> = Vec::new();
    for (t, l) in &lines.lines {
        if since.is_some_and(|s| *t < s) {
            continue;
        }
        if timestamps {
            out.extend_from_slice(t.strftime("%Y-%m-%dT%H:%M:%S.%fZ").to_string().as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(l);
    }
    // Sent in small chunks, as a streaming API server does.
    let chunks: Vec<Result<Bytes, std::io::Error>> = out
        .chunks(4096)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stalled = st
        .cfg
        .stall
        .iter()
        .any(|s| matches!(s, Stall::Log { namespace, pod } if namespace == ns && pod == name));
    let mut r = if stalled {
        let chunks: Vec<Bytes> = chunks.into_iter().filter_map(Result::ok).collect();
        Response::new(Body::from_stream(then_stall(chunks)))
    } else {
        Response::new(Body::from_stream(futures::stream::iter(chunks)))
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// A synthetic access log of `size` bytes, produced as it is sent.
fn generated(size: u64) -> Response {
    let line = b"[2024-06-03T09:12:31.402Z] \"GET /v2/models/m/ready HTTP/1.1\" 200 - via_upstream - \"-\" 0 0 1 1 \"-\" \"probe\" \"00000000-0000-0000-0000-000000000000\" \"m\" \"10.0.0.1:8080\" inbound|8080|| 127.0.0.6:1 10.0.0.1:8080 10.0.0.2:1 - default\n";
    let per_chunk = 256usize;
    let chunk: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * per_chunk)
        .collect();
    let chunk = Bytes::from(chunk);
    let stream = futures::stream::unfold(0u64, move |sent| {
        let chunk = chunk.clone();
        async move {
            if sent >= size {
                return None;
            }
            let n = (size - sent).min(chunk.len() as u64) as usize;
            Some((
                Ok::<Bytes, std::io::Error>(chunk.slice(..n)),
                sent + n as u64,
            ))
        }
    });
    Response::new(Body::from_stream(stream))
}

/// `v4.channel.k8s.io` port-forward: data channel 0, error channel 1; each starts with the port
/// (little-endian u16).
async fn port_forward(mut ws: WebSocket, port: u16, admin: Option<SocketAddr>, pod: String) {
    let p = port.to_le_bytes();
    let _ = ws
        .send(Message::Binary(Bytes::from(vec![0, p[0], p[1]])))
        .await;
    let _ = ws
        .send(Message::Binary(Bytes::from(vec![1, p[0], p[1]])))
        .await;
    let tcp = match admin {
        Some(a) => tokio::net::TcpStream::connect(a).await.ok(),
        None => None,
    };
    let Some(mut tcp) = tcp else {
        let mut msg = vec![1u8];
        msg.extend_from_slice(
            format!("error forwarding port {port} to pod {pod}, uid : failed to execute portforward in network namespace: dial tcp4 127.0.0.1:{port}: connect: connection refused").as_bytes(),
        );
        let _ = ws.send(Message::Binary(Bytes::from(msg))).await;
        let _ = ws.send(Message::Close(None)).await;
        return;
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            m = ws.recv() => match m {
                Some(Ok(Message::Binary(b))) => {
                    // Channel 0 carries the bytes for the pod's port.
                    let data = b.get(1..).filter(|_| b.first() == Some(&0)).unwrap_or(&[]);
                    let written = tcp.write_all(data).await;
                    if written.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            },
            n = tcp.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = ws.send(Message::Close(None)).await;
                    break;
                }
                Ok(n) => {
                    let mut msg = Vec::with_capacity(n + 1);
                    msg.push(0u8);
                    msg.extend_from_slice(&buf[..n]);
                    if ws.send(Message::Binary(Bytes::from(msg))).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// `v4.channel.k8s.io` exec: stdout 1, stderr 2, status 3.
async fn exec(mut ws: WebSocket, command: Vec<String>, dump: Option<Arc<Vec<u8>>>) {
    let is_dump = command.first().map(String::as_str) == Some("pilot-agent")
        && command.iter().any(|c| c.starts_with("config_dump"));
    match dump.filter(|_| is_dump) {
        Some(d) => {
            for c in d.chunks(8192) {
                let mut m = vec![1u8];
                m.extend_from_slice(c);
                let _ = ws.send(Message::Binary(Bytes::from(m))).await;
            }
            let mut m = vec![3u8];
            m.extend_from_slice(br#"{"metadata":{},"status":"Success"}"#);
            let _ = ws.send(Message::Binary(Bytes::from(m))).await;
        }
        None => {
            let mut e = vec![2u8];
            e.extend_from_slice(b"Error: failed to fetch config_dump: connection refused\n");
            let _ = ws.send(Message::Binary(Bytes::from(e))).await;
            let mut m = vec![3u8];
            m.extend_from_slice(br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [pilot-agent request GET config_dump?include_eds], exit code 1","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"1"}]}}"#);
            let _ = ws.send(Message::Binary(Bytes::from(m))).await;
        }
    }
    let _ = ws.send(Message::Close(None)).await;
}

/// Write a bundle of `pods` pods in namespace `bench`, each with an `istio-proxy` log of
/// `lines` access-log lines, and a config dump each; for the concurrency test and bench.
pub fn synthetic_bundle(dir: &Path, pods: usize, lines: usize) {
    let mut items = Vec::new();
    for i in 0..pods {
        let name = format!("model-{i:03}-predictor-7d8c9b5f4-x{i:03}");
        items.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "bench",
                "labels": {"app": format!("model-{i:03}"), "security.istio.io/tlsMode": "istio"}},
            "spec": {"containers": [{"name": "kserve-container"}, {"name": "istio-proxy"}]},
            "status": {"podIP": format!("10.1.{}.{}", i / 250, i % 250 + 1)}
        }));
        let log_dir = dir.join("logs/bench").join(&name);
        std::fs::create_dir_all(&log_dir).expect("mkdir");
        let mut text = String::new();
        for n in 0..lines {
            text.push_str(&format!(
                "[2024-06-03T09:12:{:02}.{:03}Z] \"POST /v2/models/m/infer HTTP/1.1\" 200 - via_upstream - \"-\" 120 80 5 4 \"-\" \"client\" \"{:08x}-0000-4000-8000-{:012x}\" \"model-{i:03}.bench.svc.cluster.local\" \"10.1.0.1:8080\" inbound|8080|| 127.0.0.6:40000 10.1.0.1:8080 10.2.0.9:50000 - default\n",
                n % 60,
                n % 1000,
                i,
                n
            ));
        }
        std::fs::write(log_dir.join("istio-proxy.log"), text).expect("write log");
        let dump_dir = dir.join("config_dump/bench");
        std::fs::create_dir_all(&dump_dir).expect("mkdir");
        std::fs::write(
            dump_dir.join(format!("{name}.json")),
            format!("{{\"configs\":[{{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\"bootstrap\":{{\"node\":{{\"id\":\"sidecar~10.1.0.1~{name}.bench~bench.svc.cluster.local\"}}}}}}]}}"),
        )
        .expect("write dump");
    }
    std::fs::write(
        dir.join("pods.json"),
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    )
    .expect("pods.json");
}
