//! KServe Standard (RawDeployment) mode and the hops that write no access log: the serving path
//! of an InferenceService deployed as a plain Deployment + Service, exposed by an OpenShift Route,
//! an Ingress or a Gateway API HTTPRoute, with an authenticating proxy sidecar (`kube-rbac-proxy`
//! or `oauth-proxy` on 8443) in front of the model container (8080); and the verdict that reasons
//! from the *missing* line — the status the client saw (`--client-status`, or a pasted `curl -v`
//! transcript) with no proxy line for it names the hop in between and what to check there.
//!
//! Names are the projects' own: KServe's `serving.kserve.io/deploymentMode` annotation
//! (`RawDeployment`, called `Standard` in OpenShift AI) and `status.deploymentMode`; Open Data
//! Hub's `security.opendatahub.io/enable-auth` and `security.opendatahub.io/auth-proxy-type`
//! annotations, the `kube-rbac-proxy` container (`--secure-listen-address=:8443`,
//! `--upstream=http://localhost:8080`, `--config-file` from ConfigMap
//! `<isvc>-kube-rbac-proxy-sar-config`, a SubjectAccessReview for `get` on the
//! InferenceService) and the Route odh-model-controller creates for `networking.kserve.io/
//! visibility: exposed` (named after the InferenceService; `reencrypt` with auth, `edge`
//! without; its `haproxy.router.openshift.io/timeout` annotation). The OpenShift router is
//! HAProxy: its access log is off by default, its 503 page says "Application is not available"
//! and its 504 page "504 Gateway Time-out". Pure: objects and a client's view in, a
//! [`TraceReport`] out.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::causes::Cause;
use crate::model::{Cited, Object};
use crate::topology::Topology;
use crate::trace::{EvidenceRef, SCHEMA, TraceHop, TraceReport};

/// KServe's deployment-mode annotation.
pub const DEPLOYMENT_MODE: &str = "serving.kserve.io/deploymentMode";
/// Open Data Hub / OpenShift AI: put an authenticating proxy in front of the model.
pub const ENABLE_AUTH: &str = "security.opendatahub.io/enable-auth";
/// Open Data Hub: `kube-rbac-proxy` or `oauth-proxy`.
pub const AUTH_PROXY_TYPE: &str = "security.opendatahub.io/auth-proxy-type";
/// The OpenShift router's per-Route server timeout.
pub const ROUTE_TIMEOUT: &str = "haproxy.router.openshift.io/timeout";
/// The OpenShift router's default server timeout when a Route has no timeout annotation.
pub const ROUTER_DEFAULT_TIMEOUT: &str = "30s";

/// The `direction` of a hop that wrote no line.
pub const NOT_LOGGED: &str = "not logged";

/// An authenticating proxy sidecar in front of the model container.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthProxy {
    /// `kube-rbac-proxy` or `oauth-proxy`.
    pub kind: String,
    /// Container name.
    pub container: String,
    /// `Pod/ns/name` or `Deployment/ns/name` it was read from.
    pub owner: String,
    /// Pod name, when read from a pod.
    pub pod: Option<String>,
    /// Pod IP, when known.
    pub pod_ip: Option<String>,
    /// TLS port it listens on (`--secure-listen-address`, `--https-address`, else its port named
    /// `https`).
    pub port: Option<u16>,
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--upstream-timeout` (kube-rbac-proxy).
    pub upstream_timeout: Option<String>,
    /// `--config-file` (kube-rbac-proxy: the SubjectAccessReview attributes).
    pub config_file: Option<String>,
    /// `--openshift-sar` / `--openshift-delegate-urls` (oauth-proxy).
    pub openshift_sar: Option<String>,
}

/// An object that exposes the InferenceService outside the cluster.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Exposure {
    /// `Route`, `Ingress` or `HTTPRoute`.
    pub kind: String,
    /// `kind/namespace/name`.
    pub object: String,
    /// Host names.
    pub hosts: Vec<String>,
    /// The Service it sends to.
    pub service: String,
    /// Target port (name or number) as written.
    pub target_port: Option<String>,
    /// Route `spec.tls.termination` (`edge`, `reencrypt`, `passthrough`).
    pub tls_termination: Option<String>,
    /// Route `spec.tls.insecureEdgeTerminationPolicy`.
    pub insecure_policy: Option<String>,
    /// Route `haproxy.router.openshift.io/timeout`, HTTPRoute `timeouts.request`.
    pub timeout: Option<String>,
}

/// One InferenceService in Standard (RawDeployment) mode and its serving path.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StandardService {
    /// Namespace.
    pub namespace: String,
    /// InferenceService name.
    pub name: String,
    /// The mode as declared (`RawDeployment`, `Standard`), or `inferred` from its pods.
    pub mode: String,
    /// `security.opendatahub.io/enable-auth`, as written.
    pub enable_auth: Option<String>,
    /// `security.opendatahub.io/auth-proxy-type`, as written.
    pub auth_proxy_type: Option<String>,
    /// Its Services (`name`).
    pub services: Vec<String>,
    /// Routes, Ingresses and HTTPRoutes that send to those Services.
    pub exposures: Vec<Exposure>,
    /// Auth proxy sidecars found in its pods (or Deployment templates).
    pub proxies: Vec<AuthProxy>,
    /// Its pods: (name, IP, ready).
    pub pods: Vec<(String, Option<String>, bool)>,
    /// The model container's port (`kserve-container`), when declared.
    pub model_port: Option<u16>,
    /// The SubjectAccessReview ConfigMap (`<isvc>-kube-rbac-proxy-sar-config`), if present.
    pub sar_config: Option<String>,
}

impl StandardService {
    /// `InferenceService/ns/name`.
    pub fn reference(&self) -> String {
        format!("InferenceService/{}/{}", self.namespace, self.name)
    }

    /// Is auth requested by annotation?
    pub fn auth_requested(&self) -> bool {
        self.enable_auth
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Does one of its exposures serve `host`?
    pub fn serves_host(&self, host: &str) -> bool {
        let host = host_only(host);
        self.exposures
            .iter()
            .any(|e| e.hosts.iter().any(|h| host_matches(h, host)))
    }
}

/// `host:port` → `host` (IPv6 in brackets kept whole).
fn host_only(h: &str) -> &str {
    let h = h.trim();
    if h.starts_with('[') {
        return h.find(']').and_then(|i| h.get(..=i)).unwrap_or(h);
    }
    h.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(h, |(a, _)| a)
}

/// Does a route host (possibly `*.apps.example.com`) match a request host?
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(suffix)),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// Is this object an InferenceService in Standard mode (declared), and with what value?
fn declared_mode(o: &Object) -> Option<String> {
    let is_raw =
        |v: &str| v.eq_ignore_ascii_case("RawDeployment") || v.eq_ignore_ascii_case("Standard");
    o.annotation(DEPLOYMENT_MODE)
        .filter(|v| is_raw(v))
        .or_else(|| o.str_at("/status/deploymentMode").filter(|v| is_raw(v)))
        .map(str::to_string)
}

/// The value of `--flag=value` or `--flag value` in a container's args/command.
fn flag(args: &[String], name: &str) -> Option<String> {
    let long = format!("--{name}");
    let short = format!("-{name}");
    for (i, a) in args.iter().enumerate() {
        for p in [&long, &short] {
            if let Some(v) = a.strip_prefix(p.as_str()) {
                if let Some(v) = v.strip_prefix('=') {
                    return Some(v.to_string());
                }
                if v.is_empty() {
                    return args.get(i + 1).cloned();
                }
            }
        }
    }
    None
}

/// `:8443`, `0.0.0.0:8443`, `[::]:8443` → 8443.
fn port_of_address(a: &str) -> Option<u16> {
    a.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// The auth proxy containers of a pod spec (`/spec` of a Pod, `/spec/template/spec` of a
/// Deployment).
fn proxies_in(
    spec: &Value,
    owner: &str,
    pod: Option<&str>,
    pod_ip: Option<&str>,
) -> Vec<AuthProxy> {
    let mut out = Vec::new();
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let kind = if name == "oauth-proxy"
            || (name != "kube-rbac-proxy" && image.contains("oauth-proxy"))
        {
            "oauth-proxy"
        } else if name == "kube-rbac-proxy" || image.contains("kube-rbac-proxy") {
            "kube-rbac-proxy"
        } else {
            continue;
        };
        let args: Vec<String> = ["command", "args"]
            .iter()
            .flat_map(|k| crate::model::strings(c.get(*k)))
            .collect();
        let named_https = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some("https"))
            .and_then(|p| p.get("containerPort").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok());
        let port = flag(&args, "secure-listen-address")
            .or_else(|| flag(&args, "https-address"))
            .and_then(|a| port_of_address(&a))
            .or(named_https);
        let sar = flag(&args, "openshift-sar").or_else(|| flag(&args, "openshift-delegate-urls"));
        out.push(AuthProxy {
            kind: kind.to_string(),
            container: name.to_string(),
            owner: owner.to_string(),
            pod: pod.map(str::to_string),
            pod_ip: pod_ip.map(str::to_string),
            port,
            upstream: flag(&args, "upstream"),
            upstream_timeout: flag(&args, "upstream-timeout"),
            config_file: flag(&args, "config-file"),
            openshift_sar: sar,
        });
    }
    out
}

/// The `kserve-container`'s first declared port.
fn model_port_in(spec: &Value) -> Option<u16> {
    spec.get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("kserve-container"))
        .and_then(|c| c.pointer("/ports/0/containerPort"))
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
}

/// Is the pod Ready (condition `Ready` True)?
fn pod_ready(o: &Object) -> bool {
    o.condition("Ready")
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// What exposes `services` of namespace `ns`: Routes, Ingresses, HTTPRoutes.
fn exposures(objects: &[Object], ns: &str, services: &[String]) -> Vec<Exposure> {
    let mut out = Vec::new();
    let ours = |s: &str| services.iter().any(|x| x == s);
    for o in objects
        .iter()
        .filter(|o| o.namespace.as_deref() == Some(ns))
    {
        match (
            o.kind.as_str(),
            o.api_version.split('/').next().unwrap_or(""),
        ) {
            ("Route", "route.openshift.io") => {
                let mut backends = vec![o.str_at("/spec/to/name").unwrap_or("").to_string()];
                for b in o
                    .value
                    .pointer("/spec/alternateBackends")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(n) = b.get("name").and_then(Value::as_str) {
                        backends.push(n.to_string());
                    }
                }
                let Some(service) = backends.into_iter().find(|b| ours(b)) else {
                    continue;
                };
                let mut hosts: Vec<String> = o
                    .str_at("/spec/host")
                    .map(str::to_string)
                    .into_iter()
                    .collect();
                for i in o
                    .value
                    .pointer("/status/ingress")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(h) = i.get("host").and_then(Value::as_str)
                        && !hosts.iter().any(|x| x == h)
                    {
                        hosts.push(h.to_string());
                    }
                }
                out.push(Exposure {
                    kind: "Route".into(),
                    object: o.reference(),
                    hosts,
                    service,
                    target_port: o.value.pointer("/spec/port/targetPort").map(value_text),
                    tls_termination: o.str_at("/spec/tls/termination").map(str::to_string),
                    insecure_policy: o
                        .str_at("/spec/tls/insecureEdgeTerminationPolicy")
                        .map(str::to_string),
                    timeout: o.annotation(ROUTE_TIMEOUT).map(str::to_string),
                });
            }
            ("Ingress", "networking.k8s.io") => {
                let mut hosts = Vec::new();
                let mut hit: Option<(String, Option<String>)> = None;
                let backend = |b: &Value| {
                    let name = b.pointer("/service/name").and_then(Value::as_str)?;
                    let port = b
                        .pointer("/service/port/number")
                        .or_else(|| b.pointer("/service/port/name"))
                        .map(value_text);
                    Some((name.to_string(), port))
                };
                if let Some((n, p)) = o.value.pointer("/spec/defaultBackend").and_then(backend)
                    && ours(&n)
                {
                    hit = Some((n, p));
                }
                for r in o
                    .value
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for p in r
                        .pointer("/http/paths")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some((n, port)) = p.get("backend").and_then(backend)
                            && ours(&n)
                        {
                            if let Some(h) = r.get("host").and_then(Value::as_str) {
                                hosts.push(h.to_string());
                            }
                            hit.get_or_insert((n, port));
                        }
                    }
                }
                if let Some((service, target_port)) = hit {
                    out.push(Exposure {
                        kind: "Ingress".into(),
                        object: o.reference(),
                        hosts,
                        service,
                        target_port,
                        tls_termination: None,
                        insecure_policy: None,
                        timeout: None,
                    });
                }
            }
            ("HTTPRoute", "gateway.networking.k8s.io") => {
                let mut hit: Option<(String, Option<String>, Option<String>)> = None;
                for r in o
                    .value
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for b in r
                        .get("backendRefs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let kind = b.get("kind").and_then(Value::as_str).unwrap_or("Service");
                        if let Some(n) = b.get("name").and_then(Value::as_str)
                            && kind == "Service"
                            && ours(n)
                        {
                            hit.get_or_insert((
                                n.to_string(),
                                b.get("port").map(value_text),
                                r.pointer("/timeouts/request")
                                    .and_then(Value::as_str)
                                    .map(str::to_string),
                            ));
                        }
                    }
                }
                if let Some((service, target_port, timeout)) = hit {
                    out.push(Exposure {
                        kind: "HTTPRoute".into(),
                        object: o.reference(),
                        hosts: o.strings_at("/spec/hostnames"),
                        service,
                        target_port,
                        tls_termination: None,
                        insecure_policy: None,
                        timeout,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// A JSON scalar as text (`8443`, `"https"` → `https`).
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every InferenceService in Standard mode: those that declare it (annotation or status), and
/// those whose pods show it (labelled with the InferenceService, no Knative revision, no
/// queue-proxy) when the InferenceService object itself is not in the evidence.
pub fn from_objects(objects: &[Object], topo: &Topology) -> Vec<StandardService> {
    let mut found: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut annotations: BTreeMap<(String, String), (Option<String>, Option<String>)> =
        BTreeMap::new();
    for o in objects
        .iter()
        .filter(|o| o.kind == "InferenceService" && o.api_version.starts_with("serving.kserve.io/"))
    {
        let key = (o.namespace.clone().unwrap_or_default(), o.name.clone());
        annotations.insert(
            key.clone(),
            (
                o.annotation(ENABLE_AUTH).map(str::to_string),
                o.annotation(AUTH_PROXY_TYPE).map(str::to_string),
            ),
        );
        if let Some(mode) = declared_mode(o) {
            found.insert(key, mode);
        }
    }
    for p in topo.pods.iter().filter(|p| p.is_kserve_standard()) {
        if let Some(isvc) = &p.isvc {
            let key = (p.namespace.clone(), isvc.clone());
            if !annotations.contains_key(&key) {
                found.entry(key).or_insert_with(|| "inferred".into());
            }
        }
    }
    found
        .into_iter()
        .map(|((ns, name), mode)| {
            service_path(
                objects,
                topo,
                &ns,
                &name,
                mode,
                annotations.get(&(ns.clone(), name.clone())),
            )
        })
        .collect()
}

/// The serving path of one Standard InferenceService.
fn service_path(
    objects: &[Object],
    topo: &Topology,
    ns: &str,
    name: &str,
    mode: String,
    annotations: Option<&(Option<String>, Option<String>)>,
) -> StandardService {
    let isvc_label = |o: &Object| o.label("serving.kserve.io/inferenceservice") == Some(name);
    let pods: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind == "Pod" && o.namespace.as_deref() == Some(ns) && isvc_label(o))
        .collect();
    let mut services: Vec<String> = topo
        .services
        .iter()
        .filter(|s| {
            s.namespace == ns
                && (s
                    .labels
                    .get("serving.kserve.io/inferenceservice")
                    .map(String::as_str)
                    == Some(name)
                    || pods.iter().any(|p| {
                        crate::topology::selects(&s.selector, &p.string_map("/metadata/labels"))
                    }))
        })
        .map(|s| s.name.clone())
        .collect();
    services.dedup();
    let mut proxies = Vec::new();
    let mut model_port = None;
    let mut pod_rows = Vec::new();
    let mut seen_pods = std::collections::BTreeSet::new();
    for p in &pods {
        if !seen_pods.insert(p.name.clone()) {
            continue;
        }
        let ip = p.str_at("/status/podIP");
        proxies.extend(proxies_in(p.spec(), &p.reference(), Some(&p.name), ip));
        model_port = model_port.or_else(|| model_port_in(p.spec()));
        pod_rows.push((p.name.clone(), ip.map(str::to_string), pod_ready(p)));
    }
    if proxies.is_empty() {
        for d in objects.iter().filter(|o| {
            o.kind == "Deployment" && o.namespace.as_deref() == Some(ns) && isvc_label(o)
        }) {
            if let Some(spec) = d.value.pointer("/spec/template/spec") {
                proxies.extend(proxies_in(spec, &d.reference(), None, None));
                model_port = model_port.or_else(|| model_port_in(spec));
            }
        }
    }
    let sar_name = format!("{name}-kube-rbac-proxy-sar-config");
    let sar_config = objects
        .iter()
        .find(|o| o.kind == "ConfigMap" && o.namespace.as_deref() == Some(ns) && o.name == sar_name)
        .map(Object::reference);
    let (enable_auth, auth_proxy_type) = annotations.cloned().unwrap_or_default();
    StandardService {
        namespace: ns.to_string(),
        name: name.to_string(),
        mode,
        enable_auth,
        auth_proxy_type,
        exposures: exposures(objects, ns, &services),
        services,
        proxies,
        pods: pod_rows,
        model_port,
        sar_config,
    }
}

/// What the client saw, as the user reports it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClientView {
    /// Status the client got.
    pub status: Option<u16>,
    /// `server:` response header.
    pub server: Option<String>,
    /// `x-request-id:` response header.
    pub request_id: Option<String>,
    /// Host the client asked for.
    pub host: Option<String>,
    /// Port it connected to.
    pub port: Option<u16>,
    /// HTTP version of the response (`HTTP/1.0` is what HAProxy's error pages say).
    pub http_version: Option<String>,
    /// Reason phrase of the response (`Forbidden`; none with HTTP/2).
    pub reason: Option<String>,
    /// `content-type:` response header.
    pub content_type: Option<String>,
    /// First body lines.
    pub body: Vec<String>,
    /// curl's own error (no response).
    pub curl_error: Option<String>,
    /// Where this came from (`--client-status`, `curl transcript in <file>`).
    pub source: String,
}

impl ClientView {
    /// Only a status, from `--client-status`.
    pub fn from_status(status: u16) -> ClientView {
        ClientView {
            status: Some(status),
            source: "--client-status".into(),
            ..ClientView::default()
        }
    }

    /// From a pasted `curl -v` transcript.
    pub fn from_transcript(t: &meshtrace_parsers::curl::Transcript, source: &str) -> ClientView {
        ClientView {
            status: t.status,
            server: t.server().map(str::to_string),
            request_id: t.request_id().map(str::to_string),
            host: t.host.clone().or_else(|| t.connected_host.clone()),
            port: t.connected_port,
            http_version: t.http_version.clone(),
            reason: t.reason.clone().filter(|r| !r.is_empty()),
            content_type: t.header("content-type").map(str::to_string),
            body: t.body.clone(),
            curl_error: t.curl_error.clone(),
            source: source.to_string(),
        }
    }

    fn body_has(&self, needle: &str) -> bool {
        self.body.iter().any(|l| l.contains(needle))
    }
}

/// Which kind of hop answered, by the marks it left on the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marks {
    /// `server: envoy` / `istio-envoy`: an Envoy (gateway, sidecar, waypoint) answered.
    Envoy,
    /// HAProxy's pages: "Application is not available" (the OpenShift router's 503), "504
    /// Gateway Time-out".
    Router,
    /// kube-rbac-proxy's own refusals (Go `http.Error`): `Forbidden (user=…, verb=…)`,
    /// `Authorization error (user=…)`.
    KubeRbacProxy,
    /// Go's TLS server answering plain HTTP: "Client sent an HTTP request to an HTTPS server."
    PlainHttpToTls,
    /// Nothing that names the hop.
    None,
}

fn marks(c: &ClientView) -> Marks {
    if c.server
        .as_deref()
        .is_some_and(|s| s.to_ascii_lowercase().contains("envoy"))
    {
        Marks::Envoy
    } else if c.body_has("Application is not available")
        || c.body_has("504 Gateway Time-out")
        || c.body_has("The server didn't respond in time")
    {
        Marks::Router
    } else if c.body.first().is_some_and(|l| {
        l.starts_with("Forbidden (user=") || l.starts_with("Authorization error (user=")
    }) {
        Marks::KubeRbacProxy
    } else if c.body_has("Client sent an HTTP request to an HTTPS server") {
        Marks::PlainHttpToTls
    } else {
        Marks::None
    }
}

/// Pick the Standard InferenceService the request went to: by the client's Host, by the query
/// (an InferenceService name, `ns/name`, a host or URL), by the pods of the logged hops, or the
/// only one in the evidence.
fn choose<'s>(
    paths: &'s [StandardService],
    client: &ClientView,
    query: &str,
    logged: Option<&TraceReport>,
) -> Option<&'s StandardService> {
    if let Some(h) = &client.host
        && let Some(s) = paths.iter().find(|s| s.serves_host(h))
    {
        return Some(s);
    }
    let q = query.trim();
    let q_host = q
        .split_once("://")
        .map_or(q, |(_, r)| r)
        .split('/')
        .next()
        .unwrap_or(q);
    if let Some(s) = paths.iter().find(|s| {
        q == s.name || q == format!("{}/{}", s.namespace, s.name) || s.serves_host(q_host)
    }) {
        return Some(s);
    }
    if let Some(t) = logged
        && let Some(s) = paths.iter().find(|s| {
            t.hops.iter().any(|h| {
                h.namespace.as_deref() == Some(s.namespace.as_str())
                    && h.pod
                        .as_ref()
                        .is_some_and(|p| s.pods.iter().any(|(n, _, _)| n == p))
            })
        })
    {
        return Some(s);
    }
    (paths.len() == 1).then(|| &paths[0])
}

/// The hop that answered without writing a line, and why.
struct Finding {
    /// Role shown in the hop table: `openshift-router`, `kube-rbac-proxy`, `model-server`, ….
    role: String,
    namespace: Option<String>,
    pod: Option<String>,
    listener: Option<String>,
    /// "kube-rbac-proxy on 8443 in pod ns/p".
    place: String,
    cause: Cause,
    checks: Vec<String>,
    cited: Vec<Cited>,
}

fn cite(object: &str, why: impl Into<String>) -> Cited {
    Cited {
        object: object.to_string(),
        why: why.into(),
    }
}

/// The auth proxy hop of a path.
fn proxy_hop(s: &StandardService, p: &AuthProxy, status: Option<u16>, c: &ClientView) -> Finding {
    let port = p.port.map_or_else(|| "8443".to_string(), |n| n.to_string());
    let pod = p.pod.clone();
    let place = format!(
        "{} on {port} in {}",
        p.kind,
        match &pod {
            Some(n) => format!("pod {}/{n}", s.namespace),
            None => p.owner.clone(),
        }
    );
    let user = c
        .body
        .first()
        .and_then(|l| l.strip_prefix("Forbidden (user="))
        .and_then(|r| r.split(',').next())
        .map(str::to_string);
    let mut checks = Vec::new();
    let logs = format!(
        "its log: `oc logs -n {} {} -c {}` (it writes no access log; at `--v=2` or more it logs each refusal as `Forbidden (user=…, verb=…, resource=…)`)",
        s.namespace,
        pod.as_deref().unwrap_or("<pod>"),
        p.container
    );
    let can_i = format!(
        "`oc auth can-i get inferenceservices.serving.kserve.io/{} -n {} --as={}`",
        s.name,
        s.namespace,
        user.as_deref()
            .unwrap_or("system:serviceaccount:<namespace>:<name>")
    );
    let cause = match status {
        Some(401) => {
            checks.push("the request carries `Authorization: Bearer <token>` (a token from `oc create token <serviceaccount> -n <namespace>` or `oc whoami -t`): without one, or with one the API server's TokenReview does not accept (expired, from another cluster, wrong audience), the proxy answers 401 `Unauthorized`".into());
            checks.push(logs);
            Cause::ExtAuthzDenied
        }
        Some(500) => {
            checks.push("the proxy could not ask the API server (`Authorization error (user=…)`: the SubjectAccessReview call itself failed): its ServiceAccount needs `create` on `subjectaccessreviews` and `tokenreviews` (the system:auth-delegator ClusterRole)".into());
            checks.push(logs);
            Cause::ExtAuthzDenied
        }
        Some(502) => {
            checks.push(format!(
                "the proxy's upstream `{}` answers: the model container is listening on that port and not restarting (`oc get pod -n {} -o wide`, `oc logs -c kserve-container`); a Go reverse proxy answers 502 when its upstream refuses or resets the connection",
                p.upstream.as_deref().unwrap_or("--upstream"),
                s.namespace
            ));
            Cause::UpstreamConnectFailure
        }
        Some(504) => {
            checks.push(format!(
                "the proxy's `--upstream-timeout` ({}) against the model's response time",
                p.upstream_timeout.as_deref().unwrap_or("not set")
            ));
            Cause::UpstreamTimeout
        }
        _ => {
            if p.kind == "oauth-proxy" {
                checks.push(format!(
                    "oauth-proxy's access rule {}: the caller's identity must be allowed by it (`oc whoami`, and {can_i})",
                    p.openshift_sar
                        .as_deref()
                        .map_or("(`--openshift-sar` / `--openshift-delegate-urls`)".to_string(), |v| format!("`{v}`"))
                ));
            } else {
                checks.push(format!(
                    "the token's identity{} may `get` this InferenceService — the SubjectAccessReview in {}: {can_i}; grant it with a Role allowing `get` on `inferenceservices` (resourceNames: [{}]) bound to that ServiceAccount",
                    user.as_deref().map(|u| format!(" ({u})")).unwrap_or_default(),
                    s.sar_config
                        .clone()
                        .unwrap_or_else(|| format!("ConfigMap {}-kube-rbac-proxy-sar-config", s.name)),
                    s.name
                ));
            }
            checks.push(logs);
            Cause::ExtAuthzDenied
        }
    };
    let owner_obj = match &pod {
        Some(n) => format!("Pod/{}/{n}", s.namespace),
        None => p.owner.clone(),
    };
    let mut cited = vec![cite(
        &owner_obj,
        format!(
            "container {} listens on {port} and forwards to {}{}",
            p.container,
            p.upstream.as_deref().unwrap_or("its --upstream"),
            p.config_file
                .as_deref()
                .map(|f| format!("; authorization attributes from {f}"))
                .unwrap_or_default()
        ),
    )];
    if let Some(cm) = &s.sar_config {
        cited.push(cite(
            cm,
            format!(
                "the SubjectAccessReview the proxy asks for: `get` on inferenceservices/{}",
                s.name
            ),
        ));
    }
    Finding {
        role: p.kind.clone(),
        namespace: Some(s.namespace.clone()),
        pod,
        listener: p.pod_ip.as_ref().map(|ip| format!("{ip}:{port}")),
        place,
        cause,
        checks,
        cited,
    }
}

/// The router hop (Route) or the ingress hop (Ingress, HTTPRoute) of a path.
fn router_hop(s: &StandardService, e: &Exposure, status: Option<u16>, c: &ClientView) -> Finding {
    let is_route = e.kind == "Route";
    let place = if is_route {
        format!("the OpenShift router for {}", e.object)
    } else {
        format!("the {} controller for {}", e.kind, e.object)
    };
    let mut checks = Vec::new();
    let proxy_port = s.proxies.first().and_then(|p| p.port);
    let target = e.target_port.as_deref().unwrap_or("-");
    let targets_tls = target == "https" || proxy_port.is_some_and(|p| target == p.to_string());
    let ready = s.pods.iter().filter(|(_, _, r)| *r).count();
    let cause = match status {
        Some(504) => {
            checks.push(format!(
                "the router's timeout for this Route: `{ROUTE_TIMEOUT}` is {} — the model took longer; raise it on the Route (`oc annotate route -n {} {} {ROUTE_TIMEOUT}=5m --overwrite`), or on the InferenceService, from which OpenShift AI copies it to the Route it creates",
                e.timeout
                    .as_deref()
                    .map_or(format!("not set (the router's default, {ROUTER_DEFAULT_TIMEOUT})"), |t| format!("`{t}`")),
                s.namespace,
                e.object.rsplit('/').next().unwrap_or("")
            ));
            if let Some(t) = s.proxies.iter().find_map(|p| p.upstream_timeout.as_deref()) {
                checks.push(format!(
                    "the auth proxy's own `--upstream-timeout={t}` must be at least as long"
                ));
            }
            checks.push(
                "the model container's log for the slow request (`oc logs -c kserve-container`)"
                    .into(),
            );
            Cause::UpstreamTimeout
        }
        Some(503) => {
            if let Some(h) = &c.host
                && !s.serves_host(h)
            {
                checks.push(format!(
                    "no Route of this InferenceService serves the host `{h}` the client asked for (Route hosts: {}): the router answers any unknown host with its 503 page",
                    e.hosts.join(", ")
                ));
                checks.push("`oc get route -A | grep <host>`".into());
                return Finding {
                    role: "openshift-router".into(),
                    namespace: None,
                    pod: None,
                    listener: Some(h.clone()),
                    place,
                    cause: Cause::RouteNotFound,
                    checks,
                    cited: vec![cite(&e.object, format!("serves {}", e.hosts.join(", ")))],
                };
            }
            checks.push(format!(
                "the Route's Service `{}` has ready endpoints: {ready} of {} pod(s) of the InferenceService are Ready (`oc get endpoints -n {} {}`); with none the router answers \"Application is not available\"",
                e.service,
                s.pods.len(),
                s.namespace,
                e.service
            ));
            checks.push(format!(
                "the Route's TLS: termination `{}` to target port `{target}` — `reencrypt` must point at the auth proxy's TLS port (`https`, 8443), `edge` at a plain HTTP port; a router that cannot complete the connection to the pod answers 503",
                e.tls_termination.as_deref().unwrap_or("none")
            ));
            if ready == 0 && !s.pods.is_empty() {
                Cause::NoHealthyUpstream
            } else if e.tls_termination.as_deref() == Some("reencrypt") && !targets_tls {
                Cause::MtlsMismatch
            } else {
                Cause::NoHealthyUpstream
            }
        }
        Some(400) => {
            checks.push(format!(
                "the Route's TLS: termination `{}` sends plain HTTP to target port `{target}`, where the auth proxy expects TLS (Go's HTTPS server answers \"Client sent an HTTP request to an HTTPS server.\"): use `reencrypt` for the `https` port",
                e.tls_termination.as_deref().unwrap_or("none")
            ));
            Cause::MtlsMismatch
        }
        Some(302) | Some(301) => {
            checks.push(format!(
                "`insecureEdgeTerminationPolicy: {}` redirects plain HTTP to HTTPS: call the https:// URL",
                e.insecure_policy.as_deref().unwrap_or("Redirect")
            ));
            Cause::Unknown
        }
        _ => {
            checks.push("the router's access log is off by default: enable it on the IngressController (`spec.logging.access`) to see this request".into());
            Cause::Unknown
        }
    };
    let mut why = format!("exposes Service {} as {}", e.service, e.hosts.join(", "));
    if let Some(t) = &e.tls_termination {
        why.push_str(&format!(
            "; TLS {t}{}",
            e.insecure_policy
                .as_deref()
                .map(|p| format!(", insecureEdgeTerminationPolicy {p}"))
                .unwrap_or_default()
        ));
    }
    why.push_str(&format!("; target port {target}"));
    if is_route {
        why.push_str(&format!(
            "; {ROUTE_TIMEOUT} {}",
            e.timeout
                .as_deref()
                .unwrap_or("not set (router default 30s)")
        ));
    } else if let Some(t) = &e.timeout {
        why.push_str(&format!("; timeout {t}"));
    }
    Finding {
        role: if is_route {
            "openshift-router".into()
        } else {
            format!("{}-controller", e.kind.to_ascii_lowercase())
        },
        namespace: None,
        pod: None,
        listener: e.hosts.first().cloned(),
        place,
        cause,
        checks,
        cited: vec![cite(&e.object, why)],
    }
}

/// The model container hop of a path.
fn model_hop(s: &StandardService, status: Option<u16>) -> Finding {
    let port = s.model_port.unwrap_or(8080);
    let pod = s.pods.first().map(|(n, _, _)| n.clone());
    let ip = s.pods.first().and_then(|(_, ip, _)| ip.clone());
    let mut checks = vec![format!(
        "the model server's own log for this request: `oc logs -n {} {} -c kserve-container` (the proxies in front relay its status without logging it)",
        s.namespace,
        pod.as_deref().unwrap_or("<pod>")
    )];
    if status == Some(404) {
        checks.push("the model name and protocol in the path (`/v1/models/<name>:predict`, `/v2/models/<name>/infer`, `/v1/completions` for vLLM's OpenAI API)".into());
    }
    Finding {
        role: "model-server".into(),
        namespace: Some(s.namespace.clone()),
        pod: pod.clone(),
        listener: ip.map(|ip| format!("{ip}:{port}")),
        place: format!(
            "the model container (kserve-container on {port}) in {}",
            pod.map_or_else(|| s.reference(), |p| format!("pod {}/{p}", s.namespace))
        ),
        cause: match status {
            Some(s) if s < 400 => Cause::Ok,
            _ => Cause::AppError,
        },
        checks,
        cited: Vec::new(),
    }
}

/// The finding when no Standard path is known: from the response's own marks only.
fn generic_hop(marks: Marks, c: &ClientView) -> Finding {
    let status = c.status;
    let (role, place, cause, checks): (&str, String, Cause, Vec<String>) = match (marks, status) {
        (Marks::Envoy, _) => (
            "envoy",
            format!("an Envoy proxy (`server: {}`)", c.server.as_deref().unwrap_or("envoy")),
            Cause::Unknown,
            vec!["an Envoy answered but its access-log line is not in the evidence: collect the istio-proxy logs of the gateway and of the model pod's sidecar for this time (`meshtrace collect`), or check that access logging is on (MeshConfig `accessLogFile`, a Telemetry `accessLogging` provider)".into()],
        ),
        (Marks::Router, Some(504)) => (
            "openshift-router",
            "the OpenShift router (HAProxy's 504 page)".into(),
            Cause::UpstreamTimeout,
            vec![format!("the Route's `{ROUTE_TIMEOUT}` annotation (the router's default is {ROUTER_DEFAULT_TIMEOUT}) against the model's response time")],
        ),
        (Marks::Router, _) => (
            "openshift-router",
            "the OpenShift router (its \"Application is not available\" page)".into(),
            Cause::NoHealthyUpstream,
            vec![
                "a Route serves this host and path (`oc get route -A`)".into(),
                "the Route's Service has ready endpoints (`oc get endpoints`)".into(),
                "the Route's TLS termination matches its target port (`reencrypt` for the auth proxy's https port 8443, `edge` for a plain HTTP port)".into(),
            ],
        ),
        (Marks::KubeRbacProxy, _) => (
            "kube-rbac-proxy",
            "kube-rbac-proxy (the authenticating sidecar of KServe Standard mode, on 8443)".into(),
            Cause::ExtAuthzDenied,
            vec![
                "the identity in the body may `get` the InferenceService: `oc auth can-i get inferenceservices.serving.kserve.io/<name> -n <namespace> --as=<user>` (the SubjectAccessReview in ConfigMap `<name>-kube-rbac-proxy-sar-config`)".into(),
                "`oc logs <pod> -c kube-rbac-proxy` (no access log; refusals at `--v=2` or more)".into(),
            ],
        ),
        (Marks::PlainHttpToTls, _) => (
            "openshift-router",
            "the hop in front of a TLS port, which spoke plain HTTP to it".into(),
            Cause::MtlsMismatch,
            vec!["the Route's TLS termination: `reencrypt` to the auth proxy's https port (8443), not `edge` or none".into()],
        ),
        (Marks::None, Some(401 | 403)) => (
            "auth-proxy",
            "an authenticating hop that writes no access log (in KServe Standard mode: kube-rbac-proxy or oauth-proxy on 8443 in the model pod)".into(),
            Cause::ExtAuthzDenied,
            vec![
                "a bearer token is sent (`Authorization: Bearer $(oc create token <serviceaccount>)`), and its identity may `get` the InferenceService (`oc auth can-i get inferenceservices/<name> --as=…`)".into(),
                "collect the InferenceService, its pods and Route (`meshtrace collect -n <namespace>`) so the hop can be named".into(),
            ],
        ),
        (Marks::None, Some(504)) => (
            "router",
            "a hop with a timeout in front of the model (the OpenShift router: `haproxy.router.openshift.io/timeout`, default 30s)".into(),
            Cause::UpstreamTimeout,
            vec!["the Route's timeout annotation and the auth proxy's `--upstream-timeout` against the model's response time".into()],
        ),
        (Marks::None, Some(502 | 503)) => (
            "router",
            "a hop in front of the model that writes no access log (the OpenShift router, an Ingress controller)".into(),
            Cause::NoHealthyUpstream,
            vec!["the Route or Ingress, its Service's ready endpoints and its TLS termination".into()],
        ),
        (Marks::None, None) => (
            "client",
            "no hop: the client got no response".into(),
            Cause::Unknown,
            vec![client_error_check(c.curl_error.as_deref())],
        ),
        (Marks::None, Some(_)) => (
            "model-server",
            "the model server or a hop that writes no access log".into(),
            Cause::AppError,
            vec!["the model container's own log (`oc logs <pod> -c kserve-container`)".into()],
        ),
    };
    Finding {
        role: role.into(),
        namespace: None,
        pod: None,
        listener: c.host.clone(),
        place,
        cause,
        checks,
        cited: Vec::new(),
    }
}

/// What to check for curl's own error (no HTTP response at all).
fn client_error_check(e: Option<&str>) -> String {
    let code = e
        .and_then(|e| e.strip_prefix('('))
        .and_then(|e| e.split(')').next())
        .unwrap_or("");
    match code {
        "28" => "curl gave up first (`--max-time`/`-m`): its timeout is shorter than the model's response time; the router's Route timeout (default 30s) comes next".into(),
        "6" | "7" => "the client could not resolve or reach the router: DNS for the Route host, the load balancer in front of the router".into(),
        "35" | "60" => "TLS with the router failed: trust its certificate (`--cacert` with the ingress CA) or check the Route's TLS".into(),
        "52" | "56" => "the connection was closed without a response: the router or the pod reset it (restarts, OOM kills, idle timeouts)".into(),
        _ => format!("curl's error {}", e.unwrap_or("-")),
    }
}

/// The status a logged request ended with (the outermost hop's).
fn logged_status(t: &TraceReport) -> Option<u16> {
    t.hops.first().and_then(|h| h.status).or(t.status)
}

/// The verdict for a request whose client-side status no readable proxy logged: the hop in
/// between and what to check there. `logged`: the trace of the same request through the
/// proxies that did log it, if any. `None` when the logged trace already explains the status
/// the client saw (an Envoy-served hop: its own verdict stands) or when the client reported
/// nothing to reason from.
pub fn verdict(
    objects: &[Object],
    topo: &Topology,
    client: &ClientView,
    query: &str,
    logged: Option<&TraceReport>,
) -> Option<TraceReport> {
    if client.status.is_none() && client.curl_error.is_none() {
        return None;
    }
    if let Some(t) = logged
        && client.status.is_some()
        && logged_status(t) == client.status
    {
        return None;
    }
    let paths = from_objects(objects, topo);
    let path = choose(&paths, client, query, logged);
    let m = marks(client);
    let finding = match path {
        Some(s) if m != Marks::Envoy => path_finding(s, m, client),
        _ => generic_hop(m, client),
    };
    Some(report(client, query, logged, path, finding))
}

/// [`verdict`] with the OpenShift router's access-log lines in the evidence. A line of the Route
/// that exposes the InferenceService (`query` names it, or its host) becomes the router hop's
/// evidence: with the client's status, the line that has that status; without one, the last
/// failed line gives the status the client saw. When the router answered by itself (a timeout,
/// no ready endpoint, a refused connection), its reading of the line is the verdict; when it
/// relayed the pod's answer, the line says so beside the verdict on the pod.
pub fn verdict_with_router(
    objects: &[Object],
    topo: &Topology,
    client: Option<&ClientView>,
    query: &str,
    logged: Option<&TraceReport>,
    router: &[crate::model::RouterLine],
) -> Option<TraceReport> {
    let paths = from_objects(objects, topo);
    let probe = client.cloned().unwrap_or_default();
    let path = choose(&paths, &probe, query, logged);
    // The Routes that expose it; without objects, a Route named as the query.
    let routes: Vec<(String, String)> = match path {
        Some(s) => s
            .exposures
            .iter()
            .filter(|e| e.kind == "Route")
            .filter_map(|e| {
                let mut it = e.object.splitn(3, '/');
                let (_, ns, name) = (it.next()?, it.next()?, it.next()?);
                Some((ns.to_string(), name.to_string()))
            })
            .collect(),
        None => Vec::new(),
    };
    let of_route = |l: &&crate::model::RouterLine| {
        l.entry.route().is_some_and(|b| {
            routes
                .iter()
                .any(|(ns, name)| b.namespace == ns && b.route == name)
                || (routes.is_empty()
                    && (b.route == query || format!("{}/{}", b.namespace, b.route) == query))
        })
    };
    let line = match client.and_then(|c| c.status) {
        Some(s) => router
            .iter()
            .filter(of_route)
            .rfind(|l| l.entry.status == Some(s)),
        None if client.is_none() => router
            .iter()
            .filter(of_route)
            .rfind(|l| l.entry.failed() && l.entry.status.is_some()),
        None => None,
    };
    let from_line;
    let client = match (client, line) {
        (Some(c), _) => c,
        (None, Some(l)) => {
            from_line = ClientView {
                source: format!("the OpenShift router's access log, {}:{}", l.input, l.line),
                ..ClientView::from_status(l.entry.status.unwrap_or_default())
            };
            &from_line
        }
        (None, None) => return None,
    };
    let mut report = verdict(objects, topo, client, query, logged)?;
    let Some(l) = line else {
        return Some(report);
    };
    let r = crate::router::explain_router_lines(std::slice::from_ref(l)).remove(0);
    let at = report
        .hops
        .iter()
        .position(|h| h.role == "openshift-router");
    if let Some(h) = at.and_then(|i| report.hops.get_mut(i)) {
        h.direction = "inbound".into();
        h.status = l.entry.status;
        h.details = Some(format!("HAProxy state {}", l.entry.termination));
        h.duration_ms = l.entry.total_ms().and_then(|t| u64::try_from(t).ok());
        h.upstream_host = l.entry.endpoint().map(|e| e.addr.to_string());
        h.evidence = EvidenceRef {
            file: l.input.to_string(),
            line: l.line,
        };
    }
    let mut evidence = vec![format!(
        "OpenShift router access log ({}:{}): {} `{}` on `{}/{}`",
        l.input,
        l.line,
        l.entry.status.map_or_else(|| "-".into(), |s| s.to_string()),
        l.entry.termination,
        l.entry.backend,
        l.entry.server
    )];
    evidence.extend(r.evidence.iter().cloned());
    if r.cause.is_failure() && r.cause != Cause::AppError {
        // The router answered by itself: its reading of the line is the verdict.
        report.cause = r.cause;
        report.summary = r.summary.clone();
        report.fix = r.fix.clone();
        if let Some(i) = at {
            report.origin_hop = i + 1;
        }
        evidence.append(&mut report.evidence);
        report.evidence = evidence;
    } else {
        report.evidence.extend(evidence);
        report.notes.push(format!(
            "The OpenShift router's line shows it relayed this status from {}: the answer came from behind the router.",
            r.endpoint.as_deref().unwrap_or("the Route's pod")
        ));
    }
    report.status = l.entry.status.or(report.status);
    Some(report)
}

/// The hop of a known Standard path that answered, from the status and the response's marks.
fn path_finding(s: &StandardService, m: Marks, c: &ClientView) -> Finding {
    let status = c.status;
    let exposure = c
        .host
        .as_deref()
        .and_then(|h| {
            s.exposures
                .iter()
                .find(|e| e.hosts.iter().any(|x| host_matches(x, host_only(h))))
        })
        .or_else(|| s.exposures.first());
    let proxy = s.proxies.first();
    match (m, status, proxy, exposure) {
        (Marks::Router | Marks::PlainHttpToTls, _, _, Some(e)) => router_hop(s, e, status, c),
        (_, Some(401 | 403), Some(p), _) => proxy_hop(s, p, status, c),
        (Marks::KubeRbacProxy, _, Some(p), _) => proxy_hop(s, p, status, c),
        (_, Some(504 | 503 | 400 | 301 | 302), _, Some(e)) => router_hop(s, e, status, c),
        (_, Some(502), Some(p), _) => proxy_hop(s, p, status, c),
        (_, Some(502), None, Some(e)) => router_hop(s, e, status, c),
        (_, None, _, _) => {
            let mut f = generic_hop(Marks::None, c);
            f.cited.push(cite(
                &s.reference(),
                "the InferenceService the client called",
            ));
            f
        }
        _ => {
            let mut f = model_hop(s, status);
            if matches!(status, Some(401 | 403)) {
                f.checks.insert(0, format!(
                    "no auth proxy container in the pods of {}{}: the model server or a hop outside the evidence refused the request",
                    s.reference(),
                    if s.auth_requested() {
                        format!(" although `{ENABLE_AUTH}` is \"true\" (pods created before the annotation? restart them)")
                    } else {
                        String::new()
                    }
                ));
            }
            f
        }
    }
}

/// The report: the expected path with the answering hop marked, the checks as the fix.
fn report(
    client: &ClientView,
    query: &str,
    logged: Option<&TraceReport>,
    path: Option<&StandardService>,
    f: Finding,
) -> TraceReport {
    let status_text = client
        .status
        .map_or_else(|| "no response".to_string(), |s| s.to_string());
    let unlogged = |role: &str,
                    ns: Option<String>,
                    pod: Option<String>,
                    listener: Option<String>,
                    status: Option<u16>| TraceHop {
        index: 0,
        role: role.to_string(),
        namespace: ns,
        pod,
        direction: NOT_LOGGED.into(),
        listener,
        request_id: client.request_id.clone(),
        status,
        flags: Vec::new(),
        details: None,
        start: None,
        duration_ms: None,
        upstream_service_time_ms: None,
        self_time_ms: None,
        upstream_host: None,
        upstream_is: None,
        upstream_cluster: None,
        attempt: None,
        gen_ai: Default::default(),
        evidence: EvidenceRef {
            file: NOT_LOGGED.into(),
            line: 0,
        },
    };
    let mut hops: Vec<TraceHop> = Vec::new();
    let mut origin = 0usize;
    match logged {
        Some(t) => {
            // The hop in front of the logged ones answered.
            hops.push(unlogged(
                &f.role,
                f.namespace.clone(),
                f.pod.clone(),
                f.listener.clone(),
                client.status,
            ));
            hops.extend(t.hops.iter().cloned());
        }
        None => {
            // The expected path, client first: router/ingress, auth proxy, model container.
            let mut row =
                |role: &str, ns: Option<String>, pod: Option<String>, listener: Option<String>| {
                    let is_origin = role == f.role && origin == 0;
                    if is_origin {
                        origin = hops.len();
                    }
                    hops.push(unlogged(
                        role,
                        ns,
                        pod,
                        listener,
                        if is_origin { client.status } else { None },
                    ));
                };
            if let Some(s) = path {
                if let Some(e) = s.exposures.first() {
                    let role = if e.kind == "Route" {
                        "openshift-router".to_string()
                    } else {
                        format!("{}-controller", e.kind.to_ascii_lowercase())
                    };
                    row(&role, None, None, e.hosts.first().cloned());
                }
                if let Some(p) = s.proxies.first() {
                    let port = p.port.unwrap_or(8443);
                    row(
                        &p.kind,
                        Some(s.namespace.clone()),
                        p.pod.clone(),
                        p.pod_ip.as_ref().map(|ip| format!("{ip}:{port}")),
                    );
                }
                let m = model_hop(s, None);
                row("model-server", m.namespace, m.pod, m.listener);
            }
            if !hops.iter().any(|h| h.role == f.role) {
                origin = hops.len();
                hops.push(unlogged(
                    &f.role,
                    f.namespace.clone(),
                    f.pod.clone(),
                    f.listener.clone(),
                    client.status,
                ));
            }
        }
    }
    for (i, h) in hops.iter_mut().enumerate() {
        h.index = i + 1;
    }
    let seen = match logged {
        Some(t) => format!(
            "the proxies we can read logged this request with {} at hop 1 ({}), so the answer came from a hop in front of them",
            logged_status(t).map_or_else(|| "-".into(), |s| s.to_string()),
            t.hops.first().map_or("-", |h| h.role.as_str())
        ),
        None => "no proxy we can read logged it".into(),
    };
    let summary = match client.status {
        Some(_) => format!(
            "The client saw {status_text} but {seen}: the hop in between is {} — it writes no access log.",
            f.place
        ),
        None => format!(
            "The client got no HTTP response ({}) and {seen}.",
            client.curl_error.as_deref().unwrap_or("no status")
        ),
    };
    let mut evidence = vec![format!("client: {status_text} (from {})", client.source)];
    if let Some(v) = &client.http_version {
        evidence.push(format!(
            "response line: {v} {status_text}{}",
            client
                .reason
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        ));
    }
    match &client.server {
        Some(s) => evidence.push(format!("`server: {s}` response header")),
        None if client.http_version.is_some() => evidence.push("no `server` response header: not an Envoy (Envoy sets `server: envoy` or `istio-envoy`)".into()),
        None => {}
    }
    if let Some(b) = client.body.first() {
        evidence.push(format!("body: {b}"));
    }
    if let Some(h) = &client.host {
        evidence.push(format!(
            "host: {h}{}",
            client
                .port
                .map(|p| format!(" (port {p})"))
                .unwrap_or_default()
        ));
    }
    let mut citations = Vec::new();
    let mut notes = Vec::new();
    if let Some(s) = path {
        citations.push(cite(
            &s.reference(),
            format!(
                "KServe Standard mode ({}{}); Services {}",
                if s.mode == "inferred" {
                    "inferred from its pods: no Knative revision, no queue-proxy".to_string()
                } else {
                    format!("{DEPLOYMENT_MODE}: {}", s.mode)
                },
                s.enable_auth
                    .as_deref()
                    .map(|a| format!(", {ENABLE_AUTH}: {a}"))
                    .unwrap_or_default(),
                if s.services.is_empty() {
                    "-".into()
                } else {
                    s.services.join(", ")
                }
            ),
        ));
        if s.auth_requested() && s.proxies.is_empty() {
            notes.push(format!("{ENABLE_AUTH} is \"true\" on {} but no kube-rbac-proxy or oauth-proxy container was found in its pods or Deployment", s.reference()));
        }
    } else {
        notes.push("no KServe Standard-mode InferenceService in the evidence matches this request: the hop is named from the response alone; add the bundle (`--bundle`, or `meshtrace collect -n <namespace>`) to name the pod and Route".into());
    }
    for c in f.cited {
        if !citations.contains(&c) {
            citations.push(c);
        }
    }
    if let Some(t) = logged {
        notes.extend(t.notes.iter().cloned());
    }
    let fix = format!(
        "Check at {}: {}",
        f.place,
        f.checks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("({}) {c}", i + 1))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let cause = if client.status.is_some_and(|s| s < 400) {
        Cause::Ok
    } else {
        f.cause
    };
    TraceReport {
        schema: SCHEMA,
        query: query.to_string(),
        request_ids: client
            .request_id
            .iter()
            .cloned()
            .chain(
                logged
                    .into_iter()
                    .flat_map(|t| t.request_ids.iter().cloned()),
            )
            .collect(),
        status: client.status,
        succeeded: cause == Cause::Ok,
        origin_hop: origin + 1,
        cause,
        summary,
        fix,
        fix_apply: None,
        objects: citations.iter().map(|c| c.object.clone()).collect(),
        citations,
        evidence,
        hops,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        Object::from_value(v, "test".into()).unwrap()
    }

    fn world(route_timeout: Option<&str>, ready: bool) -> Vec<Object> {
        let mut route = json!({"apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": "iris", "namespace": "demo", "annotations": {}},
            "spec": {"host": "iris-demo.apps.example.com", "to": {"kind": "Service", "name": "iris-predictor"},
                     "port": {"targetPort": "https"}, "tls": {"termination": "reencrypt", "insecureEdgeTerminationPolicy": "Redirect"}}});
        if let Some(t) = route_timeout {
            route["metadata"]["annotations"][ROUTE_TIMEOUT] = json!(t);
        }
        vec![
            obj(
                json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                "metadata": {"name": "iris", "namespace": "demo", "annotations": {DEPLOYMENT_MODE: "RawDeployment", ENABLE_AUTH: "true"}}}),
            ),
            obj(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "iris-predictor-7f9c-abcde", "namespace": "demo", "labels": {"serving.kserve.io/inferenceservice": "iris", "app": "isvc.iris-predictor"}},
                "spec": {"containers": [
                    {"name": "kserve-container", "image": "x", "ports": [{"containerPort": 8080, "name": "http"}]},
                    {"name": "kube-rbac-proxy", "image": "quay.io/opendatahub/odh-kube-auth-proxy", "args": ["--secure-listen-address=:8443", "--upstream=http://localhost:8080", "--config-file=/etc/kube-rbac-proxy/config-file.yaml", "--upstream-timeout=60s"],
                     "ports": [{"containerPort": 8443, "name": "https"}]}]},
                "status": {"phase": "Running", "podIP": "10.128.2.14", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})),
            obj(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "iris-predictor", "namespace": "demo", "labels": {"serving.kserve.io/inferenceservice": "iris"}},
                "spec": {"clusterIP": "172.30.5.9", "selector": {"app": "isvc.iris-predictor"}, "ports": [{"name": "https", "port": 8443, "targetPort": 8443}]}})),
            obj(route),
            obj(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "iris-kube-rbac-proxy-sar-config", "namespace": "demo"}}),
            ),
        ]
    }

    fn run(objects: &[Object], c: &ClientView) -> TraceReport {
        let topo = Topology::from_objects(objects, &mut Vec::new());
        verdict(objects, &topo, c, "iris", None).expect("a verdict")
    }

    #[test]
    fn the_path_is_read_from_the_objects() {
        let objects = world(None, true);
        let topo = Topology::from_objects(&objects, &mut Vec::new());
        let paths = from_objects(&objects, &topo);
        assert_eq!(paths.len(), 1);
        let s = &paths[0];
        assert_eq!(
            (s.mode.as_str(), s.auth_requested()),
            ("RawDeployment", true)
        );
        assert_eq!(s.services, vec!["iris-predictor".to_string()]);
        assert_eq!(s.exposures[0].tls_termination.as_deref(), Some("reencrypt"));
        assert_eq!(s.proxies[0].port, Some(8443));
        assert_eq!(
            s.proxies[0].upstream.as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(s.model_port, Some(8080));
        assert_eq!(
            s.sar_config.as_deref(),
            Some("ConfigMap/demo/iris-kube-rbac-proxy-sar-config")
        );
        assert!(s.serves_host("iris-demo.apps.example.com:443"));
    }

    #[test]
    fn a_403_nobody_logged_is_the_rbac_proxy() {
        let r = run(&world(None, true), &ClientView::from_status(403));
        assert_eq!(r.cause, Cause::ExtAuthzDenied);
        let h = &r.hops[r.origin_hop - 1];
        assert_eq!(
            (h.role.as_str(), h.listener.as_deref()),
            ("kube-rbac-proxy", Some("10.128.2.14:8443"))
        );
        assert_eq!(r.hops.len(), 3);
        assert!(
            r.summary.contains("no proxy we can read logged it"),
            "{}",
            r.summary
        );
        assert!(
            r.summary
                .contains("kube-rbac-proxy on 8443 in pod demo/iris-predictor-7f9c-abcde"),
            "{}",
            r.summary
        );
        assert!(
            r.fix
                .contains("oc auth can-i get inferenceservices.serving.kserve.io/iris -n demo"),
            "{}",
            r.fix
        );
        assert!(
            r.objects
                .contains(&"ConfigMap/demo/iris-kube-rbac-proxy-sar-config".to_string())
        );
    }

    #[test]
    fn a_504_is_the_router_and_its_timeout() {
        let r = run(&world(Some("30s"), true), &ClientView::from_status(504));
        assert_eq!(r.cause, Cause::UpstreamTimeout);
        assert_eq!(r.hops[r.origin_hop - 1].role, "openshift-router");
        assert!(r.fix.contains("`30s`"), "{}", r.fix);
        assert!(r.fix.contains("--upstream-timeout=60s"), "{}", r.fix);
        let r = run(&world(None, true), &ClientView::from_status(504));
        assert!(
            r.fix.contains("not set (the router's default, 30s)"),
            "{}",
            r.fix
        );
    }

    #[test]
    fn a_503_with_no_ready_pod_is_no_healthy_upstream() {
        let r = run(&world(None, false), &ClientView::from_status(503));
        assert_eq!(r.cause, Cause::NoHealthyUpstream);
        assert!(r.fix.contains("0 of 1 pod(s)"), "{}", r.fix);
        let c = ClientView {
            host: Some("other.apps.example.com".into()),
            ..ClientView::from_status(503)
        };
        // The only Standard service is chosen, but the host is not one of its Route's.
        assert_eq!(run(&world(None, true), &c).cause, Cause::RouteNotFound);
    }

    #[test]
    fn an_envoy_answer_or_a_logged_status_is_not_ours() {
        let objects = world(None, true);
        let topo = Topology::from_objects(&objects, &mut Vec::new());
        let c = ClientView {
            server: Some("istio-envoy".into()),
            ..ClientView::from_status(403)
        };
        let r = verdict(&objects, &topo, &c, "x", None).unwrap();
        assert_eq!(r.hops[r.origin_hop - 1].role, "envoy");
        assert!(verdict(&objects, &topo, &ClientView::default(), "x", None).is_none());
    }

    #[test]
    fn without_objects_the_marks_name_the_hop() {
        let topo = Topology::default();
        let c = ClientView {
            body: vec!["Forbidden (user=system:serviceaccount:demo:default, verb=get, resource=inferenceservices, subresource=)".into()],
            ..ClientView::from_status(403)
        };
        let r = verdict(&[], &topo, &c, "x", None).unwrap();
        assert_eq!(r.hops[r.origin_hop - 1].role, "kube-rbac-proxy");
        let c = ClientView {
            body: vec!["<h1>Application is not available</h1>".into()],
            ..ClientView::from_status(503)
        };
        assert_eq!(
            verdict(&[], &topo, &c, "x", None).unwrap().hops[0].role,
            "openshift-router"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(host_only("a.b:443"), "a.b");
        assert_eq!(host_only("[::1]:8443"), "[::1]");
        assert!(host_matches("*.apps.x", "m.apps.x"));
        assert!(!host_matches("*.apps.x", "apps.x"));
        let args: Vec<String> = ["--upstream", "http://u", "--https-address=:8443"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flag(&args, "upstream").as_deref(), Some("http://u"));
        assert_eq!(
            flag(&args, "https-address").and_then(|a| port_of_address(&a)),
            Some(8443)
        );
        assert_eq!(flag(&args, "upstream-timeout"), None);
    }
}
