//! `describe pod|isvc`: what `istioctl x describe pod` reports, from a bundle's objects (and the
//! pod's config dump when there is one). Pure: objects, topology and dumps in, a description out.
//!
//! Rules, as Istio documents them:
//! - **PeerAuthentication** (istio.io "PeerAuthentication" reference; Istio's
//!   `ComposePeerAuthentication`): mesh-wide (root namespace, no selector) → namespace (no
//!   selector) → workload (selector); the oldest policy of a level wins; an UNSET mode inherits
//!   the level above; `portLevelMtls` (workload policies only) is keyed by the workload's port
//!   and an UNSET port inherits the workload mode; nothing at all means PERMISSIVE.
//! - **DestinationRule** (istio.io "Destination Rule" reference): looked up in the client's
//!   namespace, then the service's, then the root namespace; an exact host beats a wildcard, a
//!   longer wildcard a shorter one; `portLevelSettings` for the port override `trafficPolicy`.
//! - **AuthorizationPolicy** (istio.io "Authorization Policy" reference): a policy in the root
//!   namespace applies mesh-wide, one without selector to its namespace; CUSTOM, then DENY, then
//!   ALLOW are evaluated; once any ALLOW policy applies, a request matching none is denied.
//! - **VirtualService route lines** follow istioctl's `describe` (`httpRouteMatchSvc`,
//!   `renderMatch`, `printDestinationRule`), so the same statements read the same.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use meshtrace_parsers::cluster::{ClusterName, parse_cluster_name};
use meshtrace_parsers::configdump::route::{Action, ClusterChoice};
use meshtrace_parsers::configdump::{ConfigDump, istio_config_ref};

use crate::model::{Object, PodDump, strings};
use crate::objects::describe_rule;
use crate::topology::{Topology, selects};

/// How bad a conflict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Requests will fail.
    Error,
    /// Some requests will fail, or will once a default changes.
    Warning,
    /// Worth knowing.
    Info,
}

/// One conflict between objects that concern the pod.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Conflict {
    /// Severity.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The objects involved (`kind/namespace/name`).
    pub objects: Vec<String>,
}

/// A port a container declares.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PodPort {
    /// `containerPort`.
    pub port: u32,
    /// `protocol` when not TCP.
    pub protocol: String,
    /// Container name.
    pub container: String,
}

/// One port of a Service that selects the pod.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePortView {
    /// Port name (may be empty).
    pub name: String,
    /// Service port.
    pub port: u32,
    /// Istio's protocol for the port (`HTTP`, `GRPC`, `TCP`, `auto-detect`, …).
    pub protocol: String,
    /// The pod port it targets, when it resolves.
    pub target_port: Option<u32>,
    /// Why the target port does not resolve.
    pub target_error: Option<String>,
    /// Effective mTLS mode on the pod port this Service port targets.
    pub mtls: String,
    /// The DestinationRule clients use for this host and port.
    pub destination_rule: Option<DestinationRuleView>,
    /// The client TLS mode for this port (`ISTIO_MUTUAL`, `DISABLE`, …; `auto` when no
    /// DestinationRule sets one: Istio's auto mTLS decides).
    pub client_tls: String,
    /// VirtualServices routing to this Service.
    pub virtual_services: Vec<VirtualServiceView>,
}

/// A Service that selects the pod.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `name.namespace.svc.cluster.local`.
    pub fqdn: String,
    /// Why it is the pod's (`selector`, or the Knative revision label).
    pub via: String,
    /// Ports.
    pub ports: Vec<ServicePortView>,
}

/// A DestinationRule as it applies to one Service port.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DestinationRuleView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.host`.
    pub host: String,
    /// Found in the proxy's config dump (the cluster's Istio metadata) rather than by host
    /// match over the objects.
    pub from_config_dump: bool,
    /// Subsets whose labels match the pod.
    pub matching_subsets: Vec<String>,
    /// Subsets whose labels do not.
    pub nonmatching_subsets: Vec<String>,
    /// `trafficPolicy.tls.mode`, when set.
    pub tls_mode: Option<String>,
    /// Has a `trafficPolicy` at all.
    pub has_traffic_policy: bool,
    /// `load balancer`, `connection pool`, `outlier detection` set in `trafficPolicy`.
    pub policies: Vec<String>,
    /// `portLevelSettings`: port, tls mode, policies.
    pub port_level: Vec<PortLevelSetting>,
}

/// One `portLevelSettings` entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PortLevelSetting {
    /// Port number.
    pub port: u32,
    /// TLS mode, when set.
    pub tls_mode: Option<String>,
    /// Policies set.
    pub policies: Vec<String>,
}

/// A VirtualService routing to one of the pod's Services.
#[derive(Debug, Clone, Serialize)]
pub struct VirtualServiceView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.hosts`.
    pub hosts: Vec<String>,
    /// Where it is bound (`spec.gateways`; `mesh` = every sidecar).
    pub gateways: Vec<GatewayBinding>,
    /// istioctl's statements: route lines, match lines, warnings.
    pub facts: Vec<String>,
    /// At least one route reaches the pod.
    pub reaches_pod: bool,
}

/// A Gateway a VirtualService is bound to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GatewayBinding {
    /// `namespace/name`, or `mesh`.
    pub gateway: String,
    /// The Gateway object exists in the evidence (always true for `mesh`).
    pub found: bool,
    /// The servers whose hosts cover the VirtualService's hosts: `port/protocol hosts [tls]`.
    pub servers: Vec<String>,
    /// The gateway pods its selector matches.
    pub pods: Vec<String>,
}

/// The effective PeerAuthentication of a workload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EffectiveMtls {
    /// Workload mTLS mode (`STRICT`, `PERMISSIVE`, `DISABLE`).
    pub mode: String,
    /// Port-level modes (pod port → mode).
    pub per_port: BTreeMap<u32, String>,
    /// The policies that apply (`name.namespace`), mesh first.
    pub applied: Vec<String>,
    /// Which level set the workload mode (`mesh`, `namespace`, `workload`, `default`).
    pub decided_by: String,
}

impl EffectiveMtls {
    /// The mode on one pod port.
    pub fn port_mode(&self, port: u32) -> &str {
        self.per_port.get(&port).unwrap_or(&self.mode)
    }
}

/// An AuthorizationPolicy in force on the pod.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthzView {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `ALLOW`, `DENY`, `CUSTOM`, `AUDIT`.
    pub action: String,
    /// CUSTOM: the extension provider.
    pub provider: Option<String>,
    /// Why it applies (`mesh-wide`, `namespace-wide`, `selector app=x`).
    pub scope: String,
    /// Each rule, in words (`anything` matches every request).
    pub rules: Vec<String>,
}

/// The effective mTLS mode on one pod port.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PortMtls {
    /// Pod port.
    pub port: u32,
    /// Mode.
    pub mode: String,
}

/// Everything `describe pod` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PodDescription {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Istio revision (`istio.io/rev` label or the sidecar status annotation).
    pub revision: String,
    /// Phase.
    pub phase: Option<String>,
    /// Runs an istio-proxy sidecar.
    pub has_sidecar: bool,
    /// Role in the serving path.
    pub role: String,
    /// Declared container ports.
    pub ports: Vec<PodPort>,
    /// istioctl's pod warnings (not ready containers, no sidecar, UID 1337).
    pub warnings: Vec<String>,
    /// Services that select it.
    pub services: Vec<ServiceView>,
    /// The effective PeerAuthentication.
    pub peer_authentication: EffectiveMtls,
    /// The mode per pod port (declared ports and the ports Services target).
    pub port_mtls: Vec<PortMtls>,
    /// AuthorizationPolicies in force, CUSTOM then DENY then ALLOW.
    pub authorization_policies: Vec<AuthzView>,
    /// Conflicts.
    pub conflicts: Vec<Conflict>,
    /// Whether the pod's config dump was read.
    pub config_dump: bool,
}

/// A Knative object summarised.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KnativeView {
    /// `Service`, `Route`, `Revision`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `Ready` condition: status, and reason/message when not True.
    pub ready: String,
    /// `status.url`, when set.
    pub url: Option<String>,
    /// Route traffic: `revision percent%`.
    pub traffic: Vec<String>,
}

/// Everything `describe isvc` reports.
#[derive(Debug, Clone, Serialize)]
pub struct IsvcDescription {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The InferenceService object was in the evidence.
    pub found: bool,
    /// `status.url`.
    pub url: Option<String>,
    /// `Ready` condition.
    pub ready: String,
    /// Deployment mode (annotation `serving.kserve.io/deploymentMode`, default Serverless).
    pub deployment_mode: String,
    /// Knative Services, Routes and Revisions of the InferenceService.
    pub knative: Vec<KnativeView>,
    /// VirtualServices it owns (its entry routes).
    pub entry_virtual_services: Vec<VirtualServiceView>,
    /// Its pods.
    pub pods: Vec<PodDescription>,
}

/// The mesh settings describe needs: the root namespace and whether auto mTLS is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshSettings {
    /// MeshConfig `rootNamespace` (default: the control plane's namespace, `istio-system`).
    pub root_namespace: String,
    /// MeshConfig `enableAutoMtls: false`.
    pub auto_mtls_off: bool,
}

impl MeshSettings {
    /// From the MeshConfig ConfigMap (`istio`, `istio-<revision>`) or, failing that, the
    /// namespace of a ServiceMeshControlPlane.
    pub fn from_objects(objects: &[Object]) -> MeshSettings {
        let mut root = None;
        let mut off = false;
        for o in objects.iter().filter(|o| {
            o.kind == "ConfigMap" && (o.name == "istio" || o.name.starts_with("istio-"))
        }) {
            let Some(mesh) = o.str_at("/data/mesh") else {
                continue;
            };
            for line in mesh.lines() {
                let t = line.trim();
                if let Some(v) = t.strip_prefix("rootNamespace:") {
                    root = Some(v.trim().trim_matches(['"', '\'']).to_string());
                }
                if let Some(v) = t.strip_prefix("enableAutoMtls:") {
                    off |= v.trim() == "false";
                }
            }
            if root.is_none() {
                root = o.namespace.clone();
            }
        }
        let smcp = objects
            .iter()
            .find(|o| o.kind == "ServiceMeshControlPlane")
            .and_then(|o| o.namespace.clone());
        MeshSettings {
            root_namespace: root.or(smcp).unwrap_or_else(|| "istio-system".to_string()),
            auto_mtls_off: off,
        }
    }
}

/// The evidence describe reads.
pub struct Inputs<'a> {
    /// Every object.
    pub objects: &'a [Object],
    /// Who is who.
    pub topology: &'a Topology,
    /// Config dumps of the bundle.
    pub dumps: &'a [PodDump],
    /// Root namespace and auto mTLS.
    pub mesh: MeshSettings,
}

fn of<'a>(objects: &'a [Object], kind: &'static str) -> impl Iterator<Item = &'a Object> {
    objects.iter().filter(move |o| o.kind == kind)
}

fn ns_of(o: &Object) -> &str {
    o.namespace.as_deref().unwrap_or("")
}

fn created(o: &Object) -> &str {
    o.str_at("/metadata/creationTimestamp").unwrap_or("")
}

/// An Istio mTLS mode, UNSET (or absent) as `None`.
fn set_mode(v: Option<&Value>) -> Option<String> {
    let m = v?.get("mode")?.as_str()?;
    (m != "UNSET" && !m.is_empty()).then(|| m.to_string())
}

/// The effective PeerAuthentication of a workload with `labels` in `namespace` (Istio's
/// composition rules; see the module comment).
pub fn effective_mtls(
    objects: &[Object],
    root_ns: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> EffectiveMtls {
    let mut mesh: Option<&Object> = None;
    let mut nsp: Option<&Object> = None;
    let mut wl: Option<&Object> = None;
    let older = |cur: Option<&Object>, o: &Object| cur.is_none_or(|c| created(o) < created(c));
    for o in of(objects, "PeerAuthentication") {
        let ons = ns_of(o);
        let sel = o.string_map("/spec/selector/matchLabels");
        if sel.is_empty() {
            if ons == root_ns {
                if older(mesh, o) {
                    mesh = Some(o);
                }
            } else if ons == namespace && older(nsp, o) {
                nsp = Some(o);
            }
        } else if ons == namespace && ons != root_ns && selects(&sel, labels) && older(wl, o) {
            wl = Some(o);
        }
    }
    let mut mode = "PERMISSIVE".to_string();
    let mut decided_by = "default".to_string();
    for (level, o) in [("mesh", mesh), ("namespace", nsp), ("workload", wl)] {
        if let Some(m) = o.and_then(|o| set_mode(o.value.pointer("/spec/mtls"))) {
            mode = m;
            decided_by = level.into();
        }
    }
    let mut per_port = BTreeMap::new();
    if let Some(plm) = wl
        .and_then(|o| o.value.pointer("/spec/portLevelMtls"))
        .and_then(Value::as_object)
    {
        for (k, v) in plm {
            if let Ok(p) = k.parse::<u32>() {
                per_port.insert(p, set_mode(Some(v)).unwrap_or_else(|| mode.clone()));
            }
        }
    }
    let applied = [mesh, nsp, wl]
        .into_iter()
        .flatten()
        .map(|o| format!("{}.{}", o.name, ns_of(o)))
        .collect();
    EffectiveMtls {
        mode,
        per_port,
        applied,
        decided_by,
    }
}

/// Istio's short-name resolution (`ResolveShortnameToFQDN` then istioctl's `extendFQDN`).
pub fn resolve_host(host: &str, namespace: &str) -> String {
    if host.starts_with('*') {
        return host.to_string();
    }
    let h = if host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.{namespace}")
    };
    if h.ends_with(".svc.cluster.local") {
        h
    } else if h.ends_with(".svc") {
        format!("{h}.cluster.local")
    } else if h.matches('.').count() == 1 {
        format!("{h}.svc.cluster.local")
    } else {
        h
    }
}

/// Does DestinationRule host `dr_host` (in `dr_ns`) cover `fqdn`? Returns its specificity
/// (higher wins): exact beats wildcard, a longer wildcard suffix a shorter one.
fn dr_specificity(dr_host: &str, dr_ns: &str, fqdn: &str) -> Option<usize> {
    if let Some(suffix) = dr_host.strip_prefix('*') {
        return fqdn.ends_with(suffix).then_some(suffix.len());
    }
    (resolve_host(dr_host, dr_ns) == fqdn).then_some(usize::MAX)
}

/// The DestinationRule a client in `client_ns` uses for `fqdn` of a Service in `svc_ns`: the
/// client's namespace, then the Service's, then the root namespace; the most specific host
/// within the first namespace that has one (`exportTo` is not evaluated).
pub fn destination_rule_for<'a>(
    objects: &'a [Object],
    root_ns: &str,
    client_ns: &str,
    svc_ns: &str,
    fqdn: &str,
) -> Option<&'a Object> {
    for ns in [client_ns, svc_ns, root_ns] {
        let best = of(objects, "DestinationRule")
            .filter(|o| ns_of(o) == ns)
            .filter_map(|o| {
                dr_specificity(o.str_at("/spec/host").unwrap_or(""), ns, fqdn).map(|s| (s, o))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(created(b.1).cmp(created(a.1))));
        if let Some((_, o)) = best {
            return Some(o);
        }
    }
    None
}

/// `load balancer`/`connection pool`/`outlier detection` present in a traffic policy.
fn short_policies(tp: &Value) -> Vec<String> {
    [
        ("loadBalancer", "load balancer"),
        ("connectionPool", "connection pool"),
        ("outlierDetection", "outlier detection"),
    ]
    .into_iter()
    .filter(|(k, _)| tp.get(*k).is_some_and(|v| !v.is_null()))
    .map(|(_, l)| l.to_string())
    .collect()
}

/// A DestinationRule seen against the pod's labels.
pub fn dr_view(
    dr: &Object,
    pod_labels: &[&BTreeMap<String, String>],
    from_dump: bool,
) -> DestinationRuleView {
    let mut matching = Vec::new();
    let mut nonmatching = Vec::new();
    for s in dr
        .value
        .pointer("/spec/subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = s
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let sel: BTreeMap<String, String> = s
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        // An empty label set selects every pod (Kubernetes selector semantics).
        if pod_labels
            .iter()
            .any(|l| sel.is_empty() || selects(&sel, l))
        {
            matching.push(name);
        } else {
            nonmatching.push(name);
        }
    }
    let tp = dr.value.pointer("/spec/trafficPolicy");
    let tp_set = tp.is_some_and(|v| !v.is_null());
    let empty = Value::Null;
    let tpv = tp.unwrap_or(&empty);
    let port_level = tpv
        .get("portLevelSettings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| PortLevelSetting {
            port: p
                .pointer("/port/number")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            tls_mode: p
                .pointer("/tls/mode")
                .and_then(Value::as_str)
                .map(str::to_string),
            policies: short_policies(p),
        })
        .collect();
    DestinationRuleView {
        namespace: ns_of(dr).to_string(),
        name: dr.name.clone(),
        host: dr.str_at("/spec/host").unwrap_or("").to_string(),
        from_config_dump: from_dump,
        matching_subsets: matching,
        nonmatching_subsets: nonmatching,
        tls_mode: tpv
            .pointer("/tls/mode")
            .and_then(Value::as_str)
            .map(str::to_string),
        has_traffic_policy: tp_set,
        policies: if tp_set {
            short_policies(tpv)
        } else {
            Vec::new()
        },
        port_level,
    }
}

impl DestinationRuleView {
    /// The TLS mode clients use to `port`: its `portLevelSettings` entry, else `trafficPolicy`.
    pub fn tls_for_port(&self, port: u32) -> Option<&str> {
        self.port_level
            .iter()
            .find(|p| p.port == port)
            .and_then(|p| p.tls_mode.as_deref())
            .or(self.tls_mode.as_deref())
    }
}

/// The `namespace/name` of an Istio config path of `kind` (`virtual-service`,
/// `destination-rule`).
fn config_ref(path: &str, kind: &str) -> Option<(String, String)> {
    let (k, ns, name) = istio_config_ref(path)?;
    (k == kind).then_some((ns, name))
}

/// istioctl's `getIstioVirtualServicePathForSvcFromRoute`: the VirtualService a proxy's routes
/// attribute to Service `svc.ns` on `port`, as `(namespace, name)`. Route configurations named
/// after the port or `http.*`/`https.*` are read; a route matches when its virtual host has the
/// Service's `name.namespace.svc.cluster.local` domain or its cluster is
/// `outbound|port|…|name.namespace.svc.cluster.local`.
pub fn vs_from_dump(dump: &ConfigDump, svc: &str, ns: &str, port: u32) -> Option<(String, String)> {
    let sport = port.to_string();
    let fqdn = format!("{svc}.{ns}.svc.cluster.local");
    for rc in &dump.route_configs {
        if rc.name != sport && !rc.name.starts_with("http.") && !rc.name.starts_with("https.") {
            continue;
        }
        for vh in &rc.virtual_hosts {
            let domain_hit = vh.domains.iter().any(|d| {
                d.strip_suffix(".svc.cluster.local")
                    .and_then(|rest| rest.split_once('.'))
                    .is_some_and(|(s, n)| s == svc && n == ns && !n.contains('.'))
            });
            for r in &vh.routes {
                let cluster = match &r.action {
                    Action::Route {
                        cluster: ClusterChoice::Cluster(c),
                        ..
                    } => Some(c.as_str()),
                    Action::Route {
                        cluster: ClusterChoice::Weighted(w),
                        ..
                    } => w.first().map(|(c, _)| c.as_str()),
                    _ => None,
                };
                let cluster_hit = cluster.and_then(parse_cluster_name).is_some_and(|c| {
                    matches!(c, ClusterName::Istio { direction, port: p, host, .. }
                        if direction.as_str() == "outbound" && u32::from(p) == port && host == fqdn)
                });
                if domain_hit || cluster_hit {
                    return r
                        .istio_config
                        .as_deref()
                        .and_then(|c| config_ref(c, "virtual-service"));
                }
            }
        }
    }
    None
}

/// istioctl's `getIstioDestinationRulePathForSvc`: the DestinationRule of the proxy's outbound
/// cluster for `fqdn` and `port` (any subset), as `(namespace, name)`.
pub fn dr_from_dump(dump: &ConfigDump, fqdn: &str, port: u32) -> Option<(String, String)> {
    dump.clusters
        .iter()
        .filter(|c| {
            matches!(parse_cluster_name(&c.name), Some(ClusterName::Istio { direction, port: p, host, .. })
                if direction.as_str() == "outbound" && u32::from(p) == port && host == fqdn)
        })
        .find_map(|c| {
            c.istio_config
                .as_deref()
                .and_then(|p| config_ref(p, "destination-rule"))
        })
}

/// istioctl's rendering of a `StringMatch`.
fn render_string_match(sm: &Value) -> String {
    for (k, f) in [("exact", ""), ("prefix", "*")] {
        if let Some(v) = sm.get(k).and_then(Value::as_str) {
            return format!("{v}{f}");
        }
    }
    if let Some(v) = sm.get("regex").and_then(Value::as_str) {
        return format!("regex:{v:?}");
    }
    String::new()
}

/// istioctl's `renderMatch` of one `HTTPMatchRequest` (headers sorted by name).
fn render_match(m: &Value) -> String {
    let mut s = "Match:".to_string();
    if let Some(u) = m.get("uri") {
        s.push(' ');
        s.push_str(&render_string_match(u));
        if m.get("ignoreUriCase").and_then(Value::as_bool) == Some(true) {
            s.push_str(" uncased");
        }
    }
    if let Some(h) = m
        .get("headers")
        .and_then(Value::as_object)
        .filter(|h| !h.is_empty())
    {
        let conds: Vec<String> = h
            .iter()
            .map(|(k, v)| format!("{k}={}", render_string_match(v)))
            .collect();
        s.push_str(" when headers are ");
        s.push_str(&conds.join("; "));
    }
    // Beyond istioctl (which prints a bare `Match:` for these): the authority and the gateways
    // a match is limited to, as Knative's and KServe's routes match on them.
    if let Some(a) = m.get("authority") {
        s.push_str(&format!(" authority {}", render_string_match(a)));
    }
    let gws = strings(m.get("gateways"));
    if !gws.is_empty() {
        s.push_str(&format!(" via {}", gws.join(",")));
    }
    s.trim().to_string()
}

fn render_matches(ms: &[Value]) -> String {
    if ms.is_empty() {
        return "everything".into();
    }
    ms.iter().map(render_match).collect::<Vec<_>>().join(", ")
}

/// istioctl's `httpRouteMatchSvc`: whether one HTTP route reaches Service `svc_fqdn` (with the
/// pod's subsets), and its statements.
fn http_route_facts(
    vs_ns: &str,
    route: &Value,
    svc_fqdn: &str,
    dr: Option<&DestinationRuleView>,
) -> (bool, Vec<String>) {
    let empty = Vec::new();
    let matching = dr.map(|d| &d.matching_subsets).unwrap_or(&empty);
    let nonmatching = dr.map(|d| &d.nonmatching_subsets).unwrap_or(&empty);
    let matches: Vec<Value> = route
        .get("match")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut facts = Vec::new();
    let mut mismatch = Vec::new();
    let mut hit = false;
    for dest in route
        .get("route")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host = dest
            .pointer("/destination/host")
            .and_then(Value::as_str)
            .unwrap_or("");
        let subset = dest
            .pointer("/destination/subset")
            .and_then(Value::as_str)
            .unwrap_or("");
        let weight = dest.get("weight").and_then(Value::as_i64).unwrap_or(0);
        if resolve_host(host, vs_ns) == svc_fqdn {
            if !subset.is_empty() {
                if nonmatching.iter().any(|s| s == subset) {
                    mismatch.push(format!(
                        "Route to non-matching subset {subset} for ({})",
                        render_matches(&matches)
                    ));
                    continue;
                }
                if !matching.iter().any(|s| s == subset) {
                    mismatch.push(match dr {
                        None => format!(
                            "Warning: Route to subset {subset} but NO DESTINATION RULE defining subsets!"
                        ),
                        Some(d) => format!(
                            "Warning: Route to UNKNOWN subset {subset}; check DestinationRule {}",
                            d.name
                        ),
                    });
                    continue;
                }
            }
            hit = true;
            if weight > 0 {
                let mut f = format!("Route to host \"{host}\"");
                if !subset.is_empty() {
                    f.push_str(&format!(" subset \"{subset}\""));
                }
                f.push_str(&format!(" with weight {weight}%"));
                facts.push(f);
            }
        } else if subset.is_empty() {
            facts.push(format!("Route to host \"{host}\" with weight {weight}%"));
        } else {
            // istioctl says `Route to HOST with invalid config` here; the route is valid, it
            // only leads to another Service.
            facts.push(format!(
                "Route to host \"{host}\" subset \"{subset}\" with weight {weight}% (another Service)"
            ));
        }
    }
    if hit {
        let mut req = Vec::new();
        if route.get("fault").is_some_and(|f| !f.is_null()) {
            req.push("Fault injection".to_string());
        }
        req.extend(matches.iter().map(render_match));
        if !req.is_empty() {
            facts.push(req.join(", "));
        }
    } else {
        facts.extend(mismatch);
    }
    (hit, facts)
}

/// Does a TCP/TLS route reach `svc_fqdn`?
fn l4_route_hits(vs_ns: &str, route: &Value, svc_fqdn: &str) -> bool {
    route
        .get("route")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|d| {
            resolve_host(
                d.pointer("/destination/host")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                vs_ns,
            ) == svc_fqdn
        })
}

/// Does a Gateway server host pattern (`ns/host`, `host`, `*`, `*.suffix`) cover a
/// VirtualService host?
fn server_host_covers(pattern: &str, vs_host: &str) -> bool {
    let p = pattern.rsplit_once('/').map(|(_, h)| h).unwrap_or(pattern);
    p == "*"
        || vs_host == "*"
        || p == vs_host
        || p.strip_prefix('*').is_some_and(|s| vs_host.ends_with(s))
        || vs_host.strip_prefix('*').is_some_and(|s| p.ends_with(s))
}

fn gateway_bindings(topo: &Topology, vs: &Object) -> Vec<GatewayBinding> {
    let vs_ns = ns_of(vs);
    let hosts = vs.strings_at("/spec/hosts");
    let mut gws = vs.strings_at("/spec/gateways");
    if gws.is_empty() {
        gws.push("mesh".into());
    }
    gws.iter()
        .map(|g| {
            if g == "mesh" {
                return GatewayBinding {
                    gateway: "mesh".into(),
                    found: true,
                    servers: Vec::new(),
                    pods: Vec::new(),
                };
            }
            let (gns, gname) = g
                .split_once('/')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or((vs_ns.to_string(), g.clone()));
            let gref = format!("{gns}/{gname}");
            let info = topo
                .gateways
                .iter()
                .find(|x| x.namespace == gns && x.name == gname);
            let servers = info
                .map(|gi| {
                    gi.servers
                        .iter()
                        .filter(|s| {
                            s.hosts
                                .iter()
                                .any(|p| hosts.iter().any(|h| server_host_covers(p, h)))
                        })
                        .map(|s| {
                            let mut d = format!("{}/{} {}", s.port, s.protocol, s.hosts.join(","));
                            if let Some(t) = &s.tls_mode {
                                d.push_str(&format!(" tls {t}"));
                            }
                            d
                        })
                        .collect()
                })
                .unwrap_or_default();
            let pods = topo
                .pods
                .iter()
                .filter(|p| p.gateways.contains(&gref))
                .map(|p| p.reference())
                .collect();
            GatewayBinding {
                gateway: gref,
                found: info.is_some(),
                servers,
                pods,
            }
        })
        .collect()
}

/// istioctl's `printVirtualService` facts for one VirtualService against one Service.
fn vs_view(
    topo: &Topology,
    vs: &Object,
    svc_fqdn: &str,
    dr: Option<&DestinationRuleView>,
) -> VirtualServiceView {
    let vs_ns = ns_of(vs);
    let http: Vec<Value> = vs
        .value
        .pointer("/spec/http")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tcp: Vec<Value> = vs
        .value
        .pointer("/spec/tcp")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tls_n = vs
        .value
        .pointer("/spec/tls")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut facts = Vec::new();
    let mut mismatch = Vec::new();
    let mut matches = 0usize;
    let mut n_facts = 0usize;
    for r in &http {
        let (hit, f) = http_route_facts(vs_ns, r, svc_fqdn, dr);
        if hit {
            matches += 1;
            n_facts += f.len();
            facts.extend(f);
        } else {
            mismatch.extend(f);
        }
    }
    for r in &tcp {
        if l4_route_hits(vs_ns, r, svc_fqdn) {
            matches += 1;
            for m in r
                .get("match")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                facts.push(format!("Match: {m}"));
                n_facts += 1;
            }
        }
    }
    if matches == 0 {
        if !http.is_empty() {
            facts.push(format!(
                "WARNING: No destinations match pod subsets (checked {} HTTP routes)",
                http.len()
            ));
        }
        if !tcp.is_empty() {
            facts.push(format!(
                "WARNING: No destinations match pod subsets (checked {} TCP routes)",
                tcp.len()
            ));
        }
        facts.extend(mismatch.iter().map(|m| format!("   {m}")));
    } else {
        let possible = http.len() + tls_n + tcp.len();
        if matches < possible {
            facts.push(format!(
                "{} additional destination(s) that will not reach this pod",
                possible - matches
            ));
            if n_facts == 0 {
                facts.extend(mismatch.iter().map(|m| format!("   {m}")));
            }
        } else if n_facts == 0 {
            if !http.is_empty() {
                facts.push(format!("{} HTTP route(s)", http.len()));
            }
            if !tcp.is_empty() {
                facts.push(format!("{} TCP route(s)", tcp.len()));
            }
        }
    }
    VirtualServiceView {
        namespace: vs_ns.to_string(),
        name: vs.name.clone(),
        hosts: vs.strings_at("/spec/hosts"),
        gateways: gateway_bindings(topo, vs),
        facts,
        reaches_pod: matches > 0,
    }
}

/// Does any destination of the VirtualService name `svc_fqdn`?
fn vs_targets(vs: &Object, svc_fqdn: &str) -> bool {
    let ns = ns_of(vs);
    ["/spec/http", "/spec/tcp", "/spec/tls"].iter().any(|p| {
        vs.value
            .pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| l4_route_hits(ns, r, svc_fqdn))
    })
}

/// Istio's protocol for a Service port (istioctl's `findProtocolForPort`): `appProtocol`, else
/// the name's prefix before `-`; no name and no appProtocol: `auto-detect` (Istio sniffs).
pub fn port_protocol(name: &str, protocol: &str, app_protocol: Option<&str>) -> String {
    if protocol.eq_ignore_ascii_case("UDP") {
        return "UDP".into();
    }
    let parse = |s: &str| -> Option<&'static str> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" => "HTTP",
            "http2" => "HTTP2",
            "https" => "HTTPS",
            "grpc" => "GRPC",
            "grpc-web" => "GRPC-Web",
            "tcp" => "TCP",
            "tls" => "TLS",
            "mongo" => "Mongo",
            "redis" => "Redis",
            "mysql" => "MySQL",
            "kubernetes.io/h2c" => "HTTP2",
            "kubernetes.io/ws" | "kubernetes.io/wss" => "HTTP",
            _ => return None,
        })
    };
    if let Some(p) = app_protocol.and_then(parse) {
        return p.into();
    }
    if name.is_empty() && app_protocol.is_none() {
        return "auto-detect".into();
    }
    let prefix = name.split('-').next().unwrap_or("");
    parse(prefix)
        .or_else(|| parse(name))
        .unwrap_or("auto-detect")
        .into()
}

fn pod_ports(pod: &Object) -> Vec<PodPort> {
    let mut out = Vec::new();
    for c in pod
        .value
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cname = c.get("name").and_then(Value::as_str).unwrap_or("");
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("containerPort").and_then(Value::as_u64) {
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                out.push(PodPort {
                    port: u32::try_from(n).unwrap_or(0),
                    protocol: if proto == "TCP" {
                        String::new()
                    } else {
                        proto.into()
                    },
                    container: cname.into(),
                });
            }
        }
    }
    out
}

/// A Service port's target on the pod (Kubernetes' `FindPort`): a number, or a named
/// container port.
fn target_port(pod: &Object, sp: &Value) -> Result<u32, String> {
    let port = sp.get("port").and_then(Value::as_u64).unwrap_or(0);
    match sp.get("targetPort") {
        None | Some(Value::Null) => Ok(u32::try_from(port).unwrap_or(0)),
        Some(Value::Number(n)) => Ok(n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0)),
        Some(Value::String(s)) => {
            if let Ok(n) = s.parse::<u32>() {
                return Ok(n);
            }
            pod.value
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| {
                    c.get("ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
                .find(|p| p.get("name").and_then(Value::as_str) == Some(s.as_str()))
                .and_then(|p| p.get("containerPort").and_then(Value::as_u64))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("no container port named {s:?} in the pod"))
        }
        Some(_) => Err("targetPort is neither a number nor a name".into()),
    }
}

/// istioctl's pod revision: the `istio.io/rev` label, else the sidecar status annotation's.
fn revision(pod: &Object) -> String {
    if let Some(r) = pod.label("istio.io/rev") {
        return r.into();
    }
    pod.annotation("sidecar.istio.io/status")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| {
            v.get("revision")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn pod_warnings(pod: &Object, has_sidecar: bool) -> Vec<String> {
    let mut w = Vec::new();
    let name = format!("{}.{}", pod.name, ns_of(pod));
    if let Some(phase) = pod.str_at("/status/phase").filter(|p| *p != "Running") {
        w.push(format!("Pod is not Running ({phase})"));
        return w;
    }
    for (ptr, what) in [
        ("/status/containerStatuses", "Container"),
        ("/status/initContainerStatuses", "Init Container"),
    ] {
        for cs in pod
            .value
            .pointer(ptr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if cs.get("ready").and_then(Value::as_bool) == Some(false) {
                let c = cs.get("name").and_then(Value::as_str).unwrap_or("?");
                w.push(format!("WARNING: Pod {name} {what} {c} NOT READY"));
            }
        }
    }
    if !has_sidecar {
        w.push(format!(
            "WARNING: {name} is not part of mesh; no Istio sidecar"
        ));
    }
    let uid = |v: Option<&Value>| v.and_then(Value::as_i64) == Some(1337);
    let containers = pod
        .value
        .pointer("/spec/containers")
        .and_then(Value::as_array);
    if uid(pod.value.pointer("/spec/securityContext/runAsUser"))
        || containers.into_iter().flatten().any(|c| {
            c.get("name").and_then(Value::as_str) != Some("istio-proxy")
                && uid(c.pointer("/securityContext/runAsUser"))
        })
    {
        w.push("WARNING: User ID (UID) 1337 is reserved for the sidecar proxy.".into());
    }
    w
}

/// The AuthorizationPolicies in force on a workload, CUSTOM then DENY then ALLOW (then AUDIT).
pub fn authz_in_force(
    objects: &[Object],
    root_ns: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<AuthzView> {
    let mut out: Vec<AuthzView> = Vec::new();
    for o in of(objects, "AuthorizationPolicy") {
        let ons = ns_of(o);
        if ons != namespace && ons != root_ns {
            continue;
        }
        let sel = o.string_map("/spec/selector/matchLabels");
        let target_refs: Vec<&Value> = ["/spec/targetRef", "/spec/targetRefs"]
            .iter()
            .filter_map(|p| o.value.pointer(p))
            .flat_map(|v| match v {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .collect();
        let scope = if !target_refs.is_empty() {
            let gw = labels.get("gateway.networking.k8s.io/gateway-name");
            let hit = target_refs.iter().any(|t| {
                t.get("kind").and_then(Value::as_str) == Some("Gateway")
                    && t.get("name").and_then(Value::as_str) == gw.map(String::as_str)
            });
            if !hit || ons != namespace {
                continue;
            }
            format!("targetRef Gateway {}", gw.map(String::as_str).unwrap_or(""))
        } else if !sel.is_empty() {
            if !selects(&sel, labels) {
                continue;
            }
            format!(
                "selector {}",
                sel.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        } else if ons == root_ns {
            "mesh-wide (root namespace, no selector)".into()
        } else {
            "namespace-wide (no selector)".into()
        };
        let rules = match o.value.pointer("/spec/rules").and_then(Value::as_array) {
            Some(rs) => rs.iter().map(describe_rule).collect(),
            None => Vec::new(),
        };
        out.push(AuthzView {
            namespace: ons.into(),
            name: o.name.clone(),
            action: o.str_at("/spec/action").unwrap_or("ALLOW").to_string(),
            provider: o.str_at("/spec/provider/name").map(str::to_string),
            scope,
            rules,
        });
    }
    let rank = |a: &str| match a {
        "CUSTOM" => 0,
        "DENY" => 1,
        "ALLOW" => 2,
        _ => 3,
    };
    out.sort_by(|a, b| {
        rank(&a.action)
            .cmp(&rank(&b.action))
            .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
    });
    out
}

/// The Services of a pod: those whose selector matches it, plus (Knative) the revision's
/// Services labelled with its `serving.knative.dev/revision`, whose endpoints Knative manages.
fn pod_services<'a>(objects: &'a [Object], pod: &Object) -> Vec<(&'a Object, &'static str)> {
    let ns = ns_of(pod);
    let labels = pod.string_map("/metadata/labels");
    let rev = labels.get("serving.knative.dev/revision");
    let mut out = Vec::new();
    for s in of(objects, "Service").filter(|s| s.api_version == "v1" && ns_of(s) == ns) {
        let sel = s.string_map("/spec/selector");
        if !sel.is_empty() && selects(&sel, &labels) {
            out.push((s, "selector"));
        } else if sel.is_empty()
            && rev.is_some()
            && s.label("serving.knative.dev/revision") == rev.map(String::as_str)
        {
            out.push((s, "Knative revision (endpoints managed by Knative)"));
        }
    }
    out
}

/// Describe one pod. `pod` must be a Pod object of `inputs.objects`.
pub fn describe_pod(inputs: &Inputs<'_>, pod: &Object) -> PodDescription {
    let ns = ns_of(pod).to_string();
    let labels = pod.string_map("/metadata/labels");
    let root = inputs.mesh.root_namespace.as_str();
    let info = inputs.topology.pod(&ns, &pod.name);
    let has_sidecar = info.is_some_and(|p| p.has_sidecar);
    let dump = inputs
        .dumps
        .iter()
        .find(|d| d.namespace == ns && d.pod == pod.name)
        .map(|d| &d.dump);
    let pa = effective_mtls(inputs.objects, root, &ns, &labels);
    let ports = pod_ports(pod);
    let mut conflicts = Vec::new();
    let mut services = Vec::new();
    let mut port_mtls: BTreeMap<u32, String> = ports
        .iter()
        .map(|p| (p.port, pa.port_mode(p.port).to_string()))
        .collect();
    let pa_objects: Vec<String> = pa
        .applied
        .iter()
        .map(|a| {
            let (n, s) = a.split_once('.').unwrap_or((a, ""));
            format!("PeerAuthentication/{s}/{n}")
        })
        .collect();
    for (svc, via) in pod_services(inputs.objects, pod) {
        let fqdn = format!("{}.{}.svc.cluster.local", svc.name, ns);
        let mut pviews = Vec::new();
        for sp in svc
            .value
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = sp.get("name").and_then(Value::as_str).unwrap_or("");
            let port = sp
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            let protocol = port_protocol(
                name,
                sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP"),
                sp.get("appProtocol").and_then(Value::as_str),
            );
            let (target, target_error) = match target_port(pod, sp) {
                Ok(t) => (Some(t), None),
                Err(e) => (None, Some(e)),
            };
            let mtls = match target {
                Some(t) => pa.port_mode(t).to_string(),
                None => pa.mode.clone(),
            };
            if let Some(t) = target {
                port_mtls.insert(t, mtls.clone());
            }
            // The DestinationRule: what the proxy was given when its dump is here, else by host.
            let dr_obj = dump
                .and_then(|d| dr_from_dump(d, &fqdn, port))
                .and_then(|(dns, dname)| {
                    of(inputs.objects, "DestinationRule")
                        .find(|o| ns_of(o) == dns && o.name == dname)
                        .map(|o| (o, true))
                })
                .or_else(|| {
                    destination_rule_for(inputs.objects, root, &ns, &ns, &fqdn).map(|o| (o, false))
                });
            let drv = dr_obj.map(|(o, from_dump)| dr_view(o, &[&labels], from_dump));
            let client_tls = drv
                .as_ref()
                .and_then(|d| d.tls_for_port(port))
                .unwrap_or("auto")
                .to_string();
            // VirtualServices: the one the proxy names for this Service and port, and every one
            // whose destinations name the Service.
            let named = dump.and_then(|d| vs_from_dump(d, &svc.name, &ns, port));
            let mut vss: Vec<&Object> = of(inputs.objects, "VirtualService")
                .filter(|v| {
                    vs_targets(v, &fqdn)
                        || named
                            .as_ref()
                            .is_some_and(|(n, m)| ns_of(v) == n && v.name == *m)
                })
                .collect();
            vss.sort_by(|a, b| (ns_of(a), &a.name).cmp(&(ns_of(b), &b.name)));
            let vviews: Vec<VirtualServiceView> = vss
                .iter()
                .map(|v| vs_view(inputs.topology, v, &fqdn, drv.as_ref()))
                .collect();
            port_conflicts(
                &mut conflicts,
                inputs,
                PortCtx {
                    svc: &svc.name,
                    ns: &ns,
                    port,
                    mtls: &mtls,
                    has_sidecar,
                    dr: dr_obj.map(|(o, _)| o),
                    drv: drv.as_ref(),
                    pa_objects: &pa_objects,
                },
            );
            for v in &vviews {
                for f in &v.facts {
                    if f.contains("NO DESTINATION RULE") || f.contains("UNKNOWN subset") {
                        let mut objs = vec![format!("VirtualService/{}/{}", v.namespace, v.name)];
                        if let Some(d) = &drv {
                            objs.push(format!("DestinationRule/{}/{}", d.namespace, d.name));
                        }
                        push_unique(
                            &mut conflicts,
                            Conflict {
                                severity: Severity::Error,
                                message: format!(
                                    "VirtualService {}.{}: {} — requests on that route get 503 NR/no healthy upstream; define the subset in a DestinationRule for host {}",
                                    v.name,
                                    v.namespace,
                                    f.trim().trim_start_matches("Warning: "),
                                    svc.name
                                ),
                                objects: objs,
                            },
                        );
                    }
                }
                for g in v.gateways.iter().filter(|g| !g.found) {
                    push_unique(
                        &mut conflicts,
                        Conflict {
                            severity: Severity::Warning,
                            message: format!(
                                "VirtualService {}.{} is bound to Gateway {}, which is not in the evidence (missing, or not collected)",
                                v.name, v.namespace, g.gateway
                            ),
                            objects: vec![format!("VirtualService/{}/{}", v.namespace, v.name)],
                        },
                    );
                }
            }
            pviews.push(ServicePortView {
                name: name.to_string(),
                port,
                protocol,
                target_port: target,
                target_error,
                mtls,
                destination_rule: drv,
                client_tls,
                virtual_services: vviews,
            });
        }
        services.push(ServiceView {
            namespace: ns.clone(),
            name: svc.name.clone(),
            fqdn,
            via: via.to_string(),
            ports: pviews,
        });
    }
    let authz = authz_in_force(inputs.objects, root, &ns, &labels);
    for a in &authz {
        if a.action == "ALLOW" && a.rules.is_empty() {
            conflicts.push(Conflict {
                severity: Severity::Warning,
                message: format!(
                    "AuthorizationPolicy {}.{} is ALLOW without rules: it matches nothing, so every request to this pod is denied (403 RBAC: access denied)",
                    a.name, a.namespace
                ),
                objects: vec![format!("AuthorizationPolicy/{}/{}", a.namespace, a.name)],
            });
        }
    }
    if services.is_empty() {
        conflicts.push(Conflict {
            severity: Severity::Warning,
            message: format!(
                "No Kubernetes Services select pod {}.{}: Istio needs a Service for the pod to receive mesh traffic (istio.io \"Application requirements\")",
                pod.name, ns
            ),
            objects: vec![format!("Pod/{ns}/{}", pod.name)],
        });
    }
    conflicts.sort_by_key(|c| c.severity);
    PodDescription {
        namespace: ns,
        name: pod.name.clone(),
        revision: revision(pod),
        phase: pod.str_at("/status/phase").map(str::to_string),
        has_sidecar,
        role: info.map_or("workload", |p| p.role.name()).to_string(),
        ports,
        warnings: pod_warnings(pod, has_sidecar),
        services,
        peer_authentication: pa,
        port_mtls: port_mtls
            .into_iter()
            .map(|(port, mode)| PortMtls { port, mode })
            .collect(),
        authorization_policies: authz,
        conflicts,
        config_dump: dump.is_some(),
    }
}

fn push_unique(v: &mut Vec<Conflict>, c: Conflict) {
    if !v.contains(&c) {
        v.push(c);
    }
}

/// What the per-port conflict checks read.
struct PortCtx<'a> {
    svc: &'a str,
    ns: &'a str,
    port: u32,
    mtls: &'a str,
    has_sidecar: bool,
    dr: Option<&'a Object>,
    drv: Option<&'a DestinationRuleView>,
    pa_objects: &'a [String],
}

fn port_conflicts(out: &mut Vec<Conflict>, inputs: &Inputs<'_>, c: PortCtx<'_>) {
    let Some(drv) = c.drv else {
        return;
    };
    let dr_ref = c.dr.map(Object::reference).unwrap_or_default();
    let dr_name = format!("{}.{}", drv.name, drv.namespace);
    let tls = drv.tls_for_port(c.port);
    let target = format!("{}.{}:{}", c.svc, c.ns, c.port);
    let mut objs = vec![dr_ref.clone()];
    objs.extend(c.pa_objects.iter().cloned());
    match (c.has_sidecar, c.mtls, tls) {
        (true, "STRICT", Some(m @ ("DISABLE" | "SIMPLE" | "MUTUAL"))) => push_unique(
            out,
            Conflict {
                severity: Severity::Error,
                message: format!(
                    "STRICT mTLS on the pod but DestinationRule {dr_name} sets tls mode {m} for {target}: clients do not send Istio mTLS and the sidecar refuses the connection (503 UF/URX, upstream connect error … connection termination)"
                ),
                objects: objs,
            },
        ),
        (true, "STRICT", None) => {
            let (severity, how) = if inputs.mesh.auto_mtls_off {
                (
                    Severity::Error,
                    "auto mTLS is off in the MeshConfig (enableAutoMtls: false), so clients send plaintext, which STRICT refuses",
                )
            } else {
                (
                    Severity::Info,
                    "clients rely on auto mTLS (on by default); if it is turned off (enableAutoMtls: false), they send plaintext, which STRICT refuses",
                )
            };
            push_unique(
                out,
                Conflict {
                    severity,
                    message: format!(
                        "DestinationRule {dr_name} applies to {target} without tls settings while the pod is STRICT: {how}; set trafficPolicy.tls.mode: ISTIO_MUTUAL to make it explicit"
                    ),
                    objects: objs,
                },
            );
        }
        (false, _, Some("ISTIO_MUTUAL")) => push_unique(
            out,
            Conflict {
                severity: Severity::Error,
                message: format!(
                    "DestinationRule {dr_name} sets tls mode ISTIO_MUTUAL for {target}, but the pod has no sidecar to terminate Istio mTLS: clients' connections fail (503 UF, connection reset / WRONG_VERSION_NUMBER); add tls mode DISABLE for this host or inject the sidecar"
                ),
                objects: vec![dr_ref],
            },
        ),
        _ => {}
    }
}

/// Find a pod by `name` (exact, or a unique prefix) in `namespace` (any when `None`).
pub fn find_pod<'a>(
    objects: &'a [Object],
    namespace: Option<&str>,
    name: &str,
) -> Result<&'a Object, String> {
    let (ns, name) = match (namespace, name.split_once('/')) {
        (_, Some((n, p))) => (Some(n), p),
        (n, None) => (n, name),
    };
    let mut pods: Vec<&Object> = of(objects, "Pod")
        .filter(|p| ns.is_none_or(|n| ns_of(p) == n))
        .collect();
    // The same pod read twice (a must-gather lists it and has its own file) is one pod.
    let mut seen = std::collections::BTreeSet::new();
    pods.retain(|p| seen.insert((ns_of(p), p.name.as_str())));
    if let Some(p) = pods.iter().find(|p| p.name == name) {
        return Ok(p);
    }
    let pre: Vec<&&Object> = pods.iter().filter(|p| p.name.starts_with(name)).collect();
    let list = |v: &[&&Object]| {
        v.iter()
            .take(10)
            .map(|p| format!("{}/{}", ns_of(p), p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match pre.as_slice() {
        [one] => Ok(one),
        [] => {
            let all: Vec<&&Object> = pods.iter().collect();
            Err(format!(
                "no pod {name:?}{} in the evidence (pods: {})",
                ns.map(|n| format!(" in namespace {n}")).unwrap_or_default(),
                if all.is_empty() {
                    "none".into()
                } else {
                    list(&all)
                }
            ))
        }
        many => Err(format!("{name:?} names several pods: {}", list(many))),
    }
}

fn ready_of(o: &Object) -> String {
    match o.condition("Ready") {
        None => "unknown".into(),
        Some(c) => {
            let s = c.get("status").and_then(Value::as_str).unwrap_or("Unknown");
            if s == "True" {
                "True".into()
            } else {
                let r = c.get("reason").and_then(Value::as_str).unwrap_or("");
                let m = c.get("message").and_then(Value::as_str).unwrap_or("");
                format!("{s} {r}: {m}")
                    .trim()
                    .trim_end_matches(':')
                    .to_string()
            }
        }
    }
}

fn knative_view(o: &Object) -> KnativeView {
    KnativeView {
        kind: o.kind.clone(),
        namespace: ns_of(o).into(),
        name: o.name.clone(),
        ready: ready_of(o),
        url: o.str_at("/status/url").map(str::to_string),
        traffic: o
            .value
            .pointer("/status/traffic")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| {
                let rev = t.get("revisionName").and_then(Value::as_str).unwrap_or("?");
                let pct = t.get("percent").and_then(Value::as_i64).unwrap_or(0);
                let tag = t
                    .get("tag")
                    .and_then(Value::as_str)
                    .map(|t| format!(" (tag {t})"))
                    .unwrap_or_default();
                format!("{rev} {pct}%{tag}")
            })
            .collect(),
    }
}

/// Describe an InferenceService: its Knative objects, entry VirtualServices and every pod.
pub fn describe_isvc(
    inputs: &Inputs<'_>,
    namespace: Option<&str>,
    name: &str,
) -> Result<IsvcDescription, String> {
    let isvcs: Vec<&Object> = of(inputs.objects, "InferenceService")
        .filter(|o| o.name == name && namespace.is_none_or(|n| ns_of(o) == n))
        .collect();
    if isvcs.len() > 1 {
        return Err(format!(
            "InferenceService {name:?} exists in several namespaces ({}): give -n",
            isvcs
                .iter()
                .map(|o| ns_of(o))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let isvc = isvcs.first().copied();
    let pods: Vec<&Object> = of(inputs.objects, "Pod")
        .filter(|p| {
            p.label("serving.kserve.io/inferenceservice") == Some(name)
                && namespace.is_none_or(|n| ns_of(p) == n)
                && isvc.is_none_or(|i| ns_of(i) == ns_of(p))
        })
        .collect();
    let ns = isvc
        .map(|o| ns_of(o).to_string())
        .or_else(|| pods.first().map(|p| ns_of(p).to_string()))
        .or_else(|| namespace.map(str::to_string));
    let Some(ns) = ns.filter(|_| isvc.is_some() || !pods.is_empty()) else {
        let known: Vec<String> = of(inputs.objects, "InferenceService")
            .map(|o| format!("{}/{}", ns_of(o), o.name))
            .collect();
        return Err(format!(
            "no InferenceService {name:?} and no pod labelled serving.kserve.io/inferenceservice={name} in the evidence (InferenceServices: {})",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        ));
    };
    let ksvcs: Vec<&Object> = inputs
        .objects
        .iter()
        .filter(|o| {
            o.kind == "Service"
                && o.api_version.starts_with("serving.knative.dev")
                && ns_of(o) == ns
                && o.label("serving.kserve.io/inferenceservice") == Some(name)
        })
        .collect();
    let ksvc_names: Vec<&str> = ksvcs.iter().map(|o| o.name.as_str()).collect();
    let mut knative: Vec<KnativeView> = ksvcs.iter().map(|o| knative_view(o)).collect();
    for kind in ["Route", "Revision"] {
        for o in inputs.objects.iter().filter(|o| {
            o.kind == kind
                && o.api_version.starts_with("serving.knative.dev")
                && ns_of(o) == ns
                && (o.label("serving.kserve.io/inferenceservice") == Some(name)
                    || o.label("serving.knative.dev/service")
                        .is_some_and(|s| ksvc_names.contains(&s))
                    || (kind == "Route" && ksvc_names.contains(&o.name.as_str())))
        }) {
            knative.push(knative_view(o));
        }
    }
    let entry: Vec<VirtualServiceView> = of(inputs.objects, "VirtualService")
        .filter(|v| {
            ns_of(v) == ns
                && v.value
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|r| {
                        r.get("kind").and_then(Value::as_str) == Some("InferenceService")
                            && r.get("name").and_then(Value::as_str) == Some(name)
                    })
        })
        .map(|v| {
            let mut view = vs_view(inputs.topology, v, "", None);
            // Entry routes lead to gateways, not to the pods: list where they send traffic.
            view.facts = strings_of_routes(v);
            view
        })
        .collect();
    Ok(IsvcDescription {
        namespace: ns.clone(),
        name: name.to_string(),
        found: isvc.is_some(),
        url: isvc.and_then(|o| o.str_at("/status/url").map(str::to_string)),
        ready: isvc.map_or_else(|| "unknown".into(), ready_of),
        deployment_mode: isvc
            .and_then(|o| o.annotation("serving.kserve.io/deploymentMode"))
            .unwrap_or("Serverless")
            .to_string(),
        knative,
        entry_virtual_services: entry,
        pods: pods.iter().map(|p| describe_pod(inputs, p)).collect(),
    })
}

/// Each HTTP route of a VirtualService: its destinations with weights and its matches.
fn strings_of_routes(vs: &Object) -> Vec<String> {
    let mut out = Vec::new();
    for r in vs
        .value
        .pointer("/spec/http")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for d in r
            .get("route")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let host = d
                .pointer("/destination/host")
                .and_then(Value::as_str)
                .unwrap_or("");
            let w = d.get("weight").and_then(Value::as_i64).unwrap_or(100);
            out.push(format!("Route to host \"{host}\" with weight {w}%"));
        }
        let ms: Vec<String> = r
            .get("match")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(render_match)
            .collect();
        if !ms.is_empty() {
            out.push(ms.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        Object::from_value(v, "test".into()).unwrap()
    }

    fn pa(ns: &str, name: &str, ts: &str, spec: Value) -> Object {
        obj(
            json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts}, "spec": spec}),
        )
    }

    #[test]
    fn peer_authentication_precedence() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "m".to_string())].into();
        let objs = vec![
            pa(
                "istio-system",
                "mesh",
                "2024-01-01T00:00:00Z",
                json!({"mtls": {"mode": "STRICT"}}),
            ),
            pa(
                "ns",
                "nsw",
                "2024-01-01T00:00:00Z",
                json!({"mtls": {"mode": "UNSET"}}),
            ),
            pa(
                "ns",
                "wl-new",
                "2024-03-01T00:00:00Z",
                json!({"selector": {"matchLabels": {"app": "m"}}, "mtls": {"mode": "DISABLE"}}),
            ),
            pa(
                "ns",
                "wl-old",
                "2024-02-01T00:00:00Z",
                json!({"selector": {"matchLabels": {"app": "m"}},
                       "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}, "9090": {"mode": "UNSET"}}}),
            ),
        ];
        let e = effective_mtls(&objs, "istio-system", "ns", &labels);
        // The oldest workload policy wins and sets no mode: the namespace's UNSET inherits the
        // mesh's STRICT; port 9090 UNSET inherits the workload mode.
        assert_eq!(e.mode, "STRICT");
        assert_eq!(e.decided_by, "mesh");
        assert_eq!(e.port_mode(8080), "PERMISSIVE");
        assert_eq!(e.port_mode(9090), "STRICT");
        assert_eq!(e.port_mode(1), "STRICT");
        assert_eq!(e.applied, vec!["mesh.istio-system", "nsw.ns", "wl-old.ns"]);
        // Nothing at all: PERMISSIVE.
        let e = effective_mtls(&[], "istio-system", "ns", &labels);
        assert_eq!(
            (e.mode.as_str(), e.decided_by.as_str()),
            ("PERMISSIVE", "default")
        );
    }

    #[test]
    fn destination_rule_precedence() {
        let dr = |ns: &str, name: &str, host: &str| {
            obj(
                json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": name, "namespace": ns}, "spec": {"host": host}}),
            )
        };
        let objs = vec![
            dr("istio-system", "all", "*.cluster.local"),
            dr("svc-ns", "wild", "*.svc-ns.svc.cluster.local"),
            dr("svc-ns", "exact", "model"),
        ];
        let f = "model.svc-ns.svc.cluster.local";
        let got = destination_rule_for(&objs, "istio-system", "client", "svc-ns", f).unwrap();
        assert_eq!(got.name, "exact");
        let got = destination_rule_for(&objs, "istio-system", "client", "other", f).unwrap();
        assert_eq!(got.name, "all");
    }

    #[test]
    fn protocols_like_istioctl() {
        // istioctl describe_test.go TestFindProtocolForPort.
        assert_eq!(port_protocol("http", "TCP", None), "HTTP");
        assert_eq!(port_protocol("GRPC-port", "TCP", None), "GRPC");
        assert_eq!(port_protocol("", "TCP", Some("HTTP")), "HTTP");
        assert_eq!(port_protocol("", "TCP", None), "auto-detect");
        assert_eq!(port_protocol("", "UDP", None), "UDP");
    }
}
