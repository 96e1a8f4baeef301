//! Topology: who is who. Maps pod IPs and Service VIPs to pods, services and roles. Pure.
//!
//! Roles come from labels, owner references and Gateway selectors — never from pod names (a
//! gateway may run as `ingressgateway-…` in a custom namespace such as `city-ingress`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Pod, Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;

use crate::model::{Object, strings};

/// What a pod is in the serving path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PodRole {
    /// An Istio ingress gateway (may also serve the Knative local gateway).
    IngressGateway,
    /// The Knative activator.
    Activator,
    /// A KServe predictor (or a plain Knative revision pod).
    Predictor,
    /// A KServe transformer.
    Transformer,
    /// A KServe explainer.
    Explainer,
    /// A Seldon Core predictor.
    SeldonPredictor,
    /// Any other workload.
    Workload,
}

impl PodRole {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            PodRole::IngressGateway => "ingress-gateway",
            PodRole::Activator => "activator",
            PodRole::Predictor => "predictor",
            PodRole::Transformer => "transformer",
            PodRole::Explainer => "explainer",
            PodRole::SeldonPredictor => "seldon-predictor",
            PodRole::Workload => "workload",
        }
    }
}

/// A pod and what it is.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Pod IPs.
    pub ips: Vec<IpAddr>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Container names (init containers included).
    pub containers: Vec<String>,
    /// Runs an istio-proxy sidecar.
    pub has_sidecar: bool,
    /// Role.
    pub role: PodRole,
    /// KServe InferenceService name.
    pub isvc: Option<String>,
    /// Knative revision.
    pub revision: Option<String>,
    /// Seldon deployment.
    pub seldon: Option<String>,
    /// Pod phase.
    pub phase: Option<String>,
    /// Sum of container restarts.
    pub restarts: i32,
    /// Each container's last termination, for containers that restarted or are terminated
    /// (`status.containerStatuses[].lastState.terminated`, else `state.terminated`).
    pub terminations: Vec<Termination>,
    /// Gateways (`namespace/name`) whose selector matches this pod.
    pub gateways: Vec<String>,
}

/// How one container of a pod last ended (Kubernetes `ContainerStateTerminated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The container's name.
    pub container: String,
    /// Its restart count.
    pub restarts: i32,
    /// The kubelet's reason (`OOMKilled`, `Error`, `Completed`, `ContainerCannotRun`…).
    pub reason: Option<String>,
    /// The exit code (137 = killed by SIGKILL, e.g. by the kernel's OOM killer).
    pub exit_code: i32,
    /// When it ended (RFC 3339, as the API writes it).
    pub finished_at: Option<String>,
}

impl Termination {
    /// Killed by the kernel's OOM killer for exceeding its memory limit.
    pub fn oom_killed(&self) -> bool {
        self.reason.as_deref() == Some("OOMKilled")
    }

    /// `OOMKilled (exit code 137)`, `Error (exit code 1)`, `exit code 2`.
    pub fn describe(&self) -> String {
        match &self.reason {
            Some(r) => format!("{} (exit code {})", short(r), self.exit_code),
            None => format!("exit code {}", self.exit_code),
        }
    }
}

/// A reason as the kubelet writes it is one word; a longer one is cut at 64 characters.
fn short(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Most container terminations kept per pod (a pod object is untrusted input).
const MAX_TERMINATIONS: usize = 16;

impl PodInfo {
    /// `namespace/name`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Is this an Istio ambient waypoint (an Envoy deployed for a Gateway of class
    /// `istio-waypoint`, labelled `gateway.istio.io/managed: istio.io-mesh-controller`)?
    pub fn is_waypoint(&self) -> bool {
        let l = |k: &str| self.labels.get(k).map(String::as_str);
        l("gateway.istio.io/managed") == Some("istio.io-mesh-controller")
            || l("gateway.networking.k8s.io/gateway-class-name") == Some("istio-waypoint")
    }

    /// The authenticating proxy sidecar of a KServe Standard (RawDeployment) pod, by container
    /// name: `kube-rbac-proxy` (OpenShift AI 3.x, Open Data Hub's KServe with
    /// `security.opendatahub.io/enable-auth: "true"`) or `oauth-proxy` (OpenShift AI 2.x). Such a
    /// proxy terminates TLS on 8443 and writes no access log.
    pub fn auth_proxy(&self) -> Option<&str> {
        self.containers
            .iter()
            .map(String::as_str)
            .find(|c| matches!(*c, "kube-rbac-proxy" | "oauth-proxy"))
    }

    /// Is this a pod of a KServe InferenceService in Standard (RawDeployment) mode: labelled
    /// `serving.kserve.io/inferenceservice`, but no Knative revision and no queue-proxy?
    pub fn is_kserve_standard(&self) -> bool {
        self.isvc.is_some()
            && self.revision.is_none()
            && !self.containers.iter().any(|c| c == "queue-proxy")
    }
}

/// A Service port.
#[derive(Debug, Clone)]
pub struct ServicePort {
    /// Port name.
    pub name: Option<String>,
    /// Service port.
    pub port: u16,
    /// Numeric targetPort, when numeric.
    pub target_port: Option<u16>,
}

/// A Service.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// ClusterIP(s).
    pub ips: Vec<IpAddr>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// Selector.
    pub selector: BTreeMap<String, String>,
    /// `type`.
    pub kind: String,
    /// Labels (`istio.io/use-waypoint` among them).
    pub labels: BTreeMap<String, String>,
}

impl ServiceInfo {
    /// `name.namespace.svc.cluster.local`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.namespace)
    }
}

/// One server of an Istio Gateway.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayServer {
    /// `port.number`.
    pub port: u16,
    /// `port.name`.
    pub port_name: String,
    /// `port.protocol`.
    pub protocol: String,
    /// `hosts`.
    pub hosts: Vec<String>,
    /// `tls.mode` (SIMPLE, MUTUAL, ISTIO_MUTUAL, PASSTHROUGH, …).
    pub tls_mode: Option<String>,
    /// `tls.credentialName`.
    pub credential: Option<String>,
}

/// An Istio Gateway.
#[derive(Debug, Clone)]
pub struct GatewayInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// Servers.
    pub servers: Vec<GatewayServer>,
}

impl GatewayInfo {
    /// `namespace/name`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    /// A pod IP (index into `pods`).
    Pod(usize),
    /// A Service VIP (index into `services`).
    Service(usize),
    /// Loopback or Envoy's inbound passthrough source (127.0.0.6).
    Local,
    /// Not known.
    Unknown,
}

/// The topology of the evidence.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// Pods.
    pub pods: Vec<PodInfo>,
    /// Services.
    pub services: Vec<ServiceInfo>,
    /// Istio Gateways.
    pub gateways: Vec<GatewayInfo>,
    /// Labels of the Namespace objects read (`istio.io/dataplane-mode`,
    /// `istio.io/use-waypoint`).
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    by_ip: HashMap<IpAddr, usize>,
    svc_by_ip: HashMap<IpAddr, usize>,
}

/// Does `labels` contain every pair of `selector`? (An empty selector matches nothing here.)
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// An Istio Gateway object as its selector and servers.
fn gateway_info(o: &Object) -> GatewayInfo {
    let servers = o
        .spec()
        .get("servers")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(gateway_server).collect())
        .unwrap_or_default();
    GatewayInfo {
        namespace: o.namespace.clone().unwrap_or_default(),
        name: o.name.clone(),
        selector: o.string_map("/spec/selector"),
        servers,
    }
}

/// One entry of a Gateway's `spec.servers`.
fn gateway_server(s: &Value) -> GatewayServer {
    let text = |ptr: &str| s.pointer(ptr).and_then(Value::as_str);
    GatewayServer {
        port: s
            .pointer("/port/number")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        port_name: text("/port/name").unwrap_or("").to_string(),
        protocol: text("/port/protocol").unwrap_or("").to_string(),
        hosts: strings(s.get("hosts")),
        tls_mode: text("/tls/mode").map(str::to_string),
        credential: text("/tls/credentialName").map(str::to_string),
    }
}

/// A v1 Service's ClusterIPs (`clusterIPs`, then `clusterIP` when not among them).
fn cluster_ips(spec: &ServiceSpec) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .filter_map(|s| s.parse().ok())
        .collect();
    if let Some(ip) = spec.cluster_ip.as_deref().and_then(|s| s.parse().ok())
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    ips
}

/// A v1 Service's ports; `target_port` only when numeric (defaulting to the port).
fn service_ports(ports: Vec<k8s_openapi::api::core::v1::ServicePort>) -> Vec<ServicePort> {
    ports
        .into_iter()
        .filter_map(|p| {
            Some(ServicePort {
                name: p.name,
                port: u16::try_from(p.port).ok()?,
                target_port: match p.target_port {
                    Some(IntOrString::Int(n)) => u16::try_from(n).ok(),
                    Some(_) => None,
                    None => u16::try_from(p.port).ok(),
                },
            })
        })
        .collect()
}

/// A pod's role from its labels; `gateway`: a Gateway's selector matches it.
fn pod_role(labels: &BTreeMap<String, String>, gateway: bool) -> PodRole {
    let l = |k: &str| labels.get(k).map(String::as_str);
    // A Gateway API gateway deployed by Istio (not an ambient waypoint) is an ingress gateway.
    let gateway_api = l("gateway.networking.k8s.io/gateway-name").is_some()
        && l("gateway.istio.io/managed") != Some("istio.io-mesh-controller")
        && l("gateway.networking.k8s.io/gateway-class-name") != Some("istio-waypoint");
    if gateway
        || gateway_api
        || l("istio") == Some("ingressgateway")
        || l("knative") == Some("ingressgateway")
    {
        PodRole::IngressGateway
    } else if l("app") == Some("activator")
        || l("role") == Some("activator")
        || l("app.kubernetes.io/component") == Some("activator")
    {
        PodRole::Activator
    } else if l("serving.kserve.io/inferenceservice").is_some() {
        match l("component") {
            Some("transformer") => PodRole::Transformer,
            Some("explainer") => PodRole::Explainer,
            _ => PodRole::Predictor,
        }
    } else if l("seldon-deployment-id").is_some() || l("seldon-app").is_some() {
        PodRole::SeldonPredictor
    } else if l("serving.knative.dev/revision").is_some() {
        PodRole::Predictor
    } else {
        PodRole::Workload
    }
}

impl Topology {
    /// Build from bundle objects. Objects that do not deserialize are reported in `problems`.
    pub fn from_objects(objects: &[Object], problems: &mut Vec<String>) -> Topology {
        let mut t = Topology {
            gateways: objects
                .iter()
                .filter(|o| o.kind == "Gateway" && o.api_version.starts_with("networking.istio.io"))
                .map(gateway_info)
                .collect(),
            ..Topology::default()
        };
        for o in objects
            .iter()
            .filter(|o| o.kind == "Service" && o.api_version == "v1")
        {
            t.add_service(o, problems);
        }
        for o in objects.iter().filter(|o| o.kind == "Pod") {
            t.add_pod(o, problems);
        }
        for o in objects
            .iter()
            .filter(|o| o.kind == "Namespace" && o.api_version == "v1")
        {
            t.namespace_labels
                .insert(o.name.clone(), o.string_map("/metadata/labels"));
        }
        t
    }

    /// The waypoint that traffic to this Service (or its namespace) must go through: the
    /// `istio.io/use-waypoint` label of the Service, else of its Namespace (`none` on the
    /// Service opts out). `namespace/name` of the waypoint Gateway.
    pub fn use_waypoint(&self, namespace: &str, service: Option<&str>) -> Option<String> {
        const KEY: &str = "istio.io/use-waypoint";
        const NS_KEY: &str = "istio.io/use-waypoint-namespace";
        let svc = service.and_then(|s| {
            self.services
                .iter()
                .find(|x| x.namespace == namespace && x.name == s)
        });
        let (labels, home) = match svc.and_then(|s| s.labels.get(KEY).map(|_| &s.labels)) {
            Some(l) => (l, namespace),
            None => (self.namespace_labels.get(namespace)?, namespace),
        };
        let name = labels.get(KEY)?;
        if name == "none" || name.is_empty() {
            return None;
        }
        let ns = labels.get(NS_KEY).map(String::as_str).unwrap_or(home);
        Some(format!("{ns}/{name}"))
    }

    /// Is this namespace enrolled in ambient mode (`istio.io/dataplane-mode: ambient`)?
    pub fn ambient_namespace(&self, namespace: &str) -> bool {
        self.namespace_labels
            .get(namespace)
            .and_then(|l| l.get("istio.io/dataplane-mode"))
            .is_some_and(|m| m == "ambient")
    }

    /// Index a v1 Service by its ClusterIPs.
    fn add_service(&mut self, o: &Object, problems: &mut Vec<String>) {
        let svc: Service = match serde_json::from_value(o.value.clone()) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{}: Service {} unreadable: {e}", o.source, o.name));
                return;
            }
        };
        let spec = svc.spec.unwrap_or_default();
        let ips = cluster_ips(&spec);
        let idx = self.services.len();
        for ip in &ips {
            self.svc_by_ip.insert(*ip, idx);
        }
        self.services.push(ServiceInfo {
            namespace: o.namespace.clone().unwrap_or_default(),
            name: o.name.clone(),
            ips,
            ports: service_ports(spec.ports.unwrap_or_default()),
            selector: spec.selector.unwrap_or_default(),
            kind: spec.type_.unwrap_or_else(|| "ClusterIP".into()),
            labels: svc.metadata.labels.unwrap_or_default(),
        });
    }

    /// Index a Pod by its IPs (after the gateways, whose selectors give it its role).
    fn add_pod(&mut self, o: &Object, problems: &mut Vec<String>) {
        let pod: Pod = match serde_json::from_value(o.value.clone()) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{}: Pod {} unreadable: {e}", o.source, o.name));
                return;
            }
        };
        // pods.json is read before resources/: a pod seen twice keeps its first copy.
        if self
            .pods
            .iter()
            .any(|p| p.name == o.name && Some(&p.namespace) == o.namespace.as_ref())
        {
            return;
        }
        let info = self.pod_info(o, &pod);
        let idx = self.pods.len();
        for ip in &info.ips {
            self.by_ip.insert(*ip, idx);
        }
        self.pods.push(info);
    }

    fn pod_info(&self, o: &Object, pod: &Pod) -> PodInfo {
        let labels: BTreeMap<String, String> = pod.metadata.labels.clone().unwrap_or_default();
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let mut containers: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
        containers.extend(
            spec.init_containers
                .unwrap_or_default()
                .iter()
                .map(|c| c.name.clone()),
        );
        let has_sidecar = containers.iter().any(|c| c == "istio-proxy")
            || annotations.contains_key("sidecar.istio.io/status");
        let status = pod.status.clone().unwrap_or_default();
        let mut ips: Vec<IpAddr> = status
            .pod_ips
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.ip.parse().ok())
            .collect();
        if let Some(ip) = status.pod_ip.as_deref().and_then(|s| s.parse().ok())
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
        let statuses = status.container_statuses.unwrap_or_default();
        let restarts = statuses.iter().map(|c| c.restart_count).sum();
        let terminations = statuses
            .iter()
            .filter_map(|c| {
                let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                let now = c.state.as_ref().and_then(|s| s.terminated.as_ref());
                let t = last.or(now)?;
                Some(Termination {
                    container: c.name.clone(),
                    restarts: c.restart_count,
                    reason: t.reason.clone().filter(|r| !r.is_empty()),
                    exit_code: t.exit_code,
                    finished_at: t.finished_at.as_ref().map(|t| t.0.to_string()),
                })
            })
            .take(MAX_TERMINATIONS)
            .collect();
        let gateways: Vec<String> = self
            .gateways
            .iter()
            .filter(|g| selects(&g.selector, &labels))
            .map(GatewayInfo::reference)
            .collect();
        let l = |k: &str| labels.get(k).map(String::as_str);
        let isvc = l("serving.kserve.io/inferenceservice").map(str::to_string);
        let role = pod_role(&labels, !gateways.is_empty());
        PodInfo {
            namespace: o.namespace.clone().unwrap_or_default(),
            name: o.name.clone(),
            ips,
            labels: labels.clone(),
            containers,
            has_sidecar,
            role,
            isvc,
            revision: l("serving.knative.dev/revision").map(str::to_string),
            seldon: l("seldon-deployment-id").map(str::to_string),
            phase: status.phase,
            restarts,
            terminations,
            gateways,
        }
    }

    /// The pod with this IP.
    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&PodInfo> {
        self.by_ip.get(&ip).map(|i| &self.pods[*i])
    }

    /// The pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodInfo> {
        self.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    /// The Service with this VIP.
    pub fn service_by_ip(&self, ip: IpAddr) -> Option<&ServiceInfo> {
        self.svc_by_ip.get(&ip).map(|i| &self.services[*i])
    }

    /// What an IP is.
    pub fn classify(&self, ip: IpAddr) -> AddrKind {
        if let Some(i) = self.by_ip.get(&ip) {
            AddrKind::Pod(*i)
        } else if let Some(i) = self.svc_by_ip.get(&ip) {
            AddrKind::Service(*i)
        } else if ip.is_loopback() {
            AddrKind::Local
        } else {
            AddrKind::Unknown
        }
    }

    /// Human description of an address: `pod ns/name:8012 (predictor)`, `service ns/name:80`.
    pub fn describe(&self, addr: SocketAddr) -> String {
        match self.classify(addr.ip()) {
            AddrKind::Pod(i) => {
                let p = &self.pods[i];
                format!(
                    "{}:{} ({}{})",
                    p.reference(),
                    addr.port(),
                    p.role.name(),
                    if p.has_sidecar { "" } else { ", no sidecar" }
                )
            }
            AddrKind::Service(i) => format!(
                "service {}/{}:{}",
                self.services[i].namespace,
                self.services[i].name,
                addr.port()
            ),
            AddrKind::Local => format!("local {addr}"),
            AddrKind::Unknown => format!("{addr} (unknown address)"),
        }
    }

    /// Ports of the Services selecting `pod`, for Istio's gateway port translation
    /// ([`crate::gatewayport`]).
    pub fn gateway_targets(&self, pod: &PodInfo) -> Vec<crate::gatewayport::TargetPort> {
        self.services
            .iter()
            .filter(|svc| selects(&svc.selector, &pod.labels))
            .flat_map(|svc| {
                let opted_out = svc
                    .labels
                    .contains_key(crate::gatewayport::DISABLE_TRANSLATION_LABEL);
                svc.ports
                    .iter()
                    .map(move |p| crate::gatewayport::TargetPort {
                        port: p.port,
                        target: p.target_port,
                        opted_out,
                    })
            })
            .collect()
    }

    /// Gateway servers that an Envoy listener port of `pod` serves, after Istio's port
    /// translation ([`crate::gatewayport`]): a server's port is the listener port unless a
    /// Service selecting the pod maps that number to a targetPort.
    pub fn gateway_servers(
        &self,
        pod: &PodInfo,
        listener_port: u16,
    ) -> Vec<(&GatewayInfo, &GatewayServer)> {
        let mut out = Vec::new();
        for g in self
            .gateways
            .iter()
            .filter(|g| selects(&g.selector, &pod.labels))
        {
            for s in &g.servers {
                if crate::gatewayport::listener_port(s.port, &self.gateway_targets(pod))
                    == listener_port
                {
                    out.push((g, s));
                }
            }
        }
        out
    }

    /// Role of a gateway pod's listener: `local-gateway` when the Gateway serving that port is a
    /// cluster-local one (its name ends in `local-gateway`, or it only serves `*.svc.cluster.local`
    /// hosts), else `ingress-gateway`.
    pub fn gateway_listener_role(&self, pod: &PodInfo, listener_port: u16) -> &'static str {
        let servers = self.gateway_servers(pod, listener_port);
        let local = servers.iter().any(|(g, s)| {
            g.name.ends_with("local-gateway")
                || (!s.hosts.is_empty()
                    && s.hosts
                        .iter()
                        .all(|h| h.ends_with(".svc.cluster.local") || h.ends_with(".svc")))
        });
        // Without Gateway objects, Knative's convention: the local gateway listens on 8081.
        if local || (servers.is_empty() && listener_port == 8081) {
            "local-gateway"
        } else {
            "ingress-gateway"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        Object::from_value(v, "test".into()).expect("test objects have a kind and a name")
    }

    fn pod(ns: &str, name: &str, ip: &str, labels: Value, containers: &[&str]) -> Object {
        let cs: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "x"}))
            .collect();
        obj(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
                   "spec": {"containers": cs}, "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}}),
        )
    }

    fn world() -> Vec<Object> {
        vec![
            // The gateway runs in city-ingress under another name; a Gateway selects it.
            pod(
                "city-ingress",
                "ingressgateway-7d9f6c5b8-abcde",
                "10.0.0.9",
                json!({"app": "ingressgateway", "gw": "city"}),
                &["istio-proxy"],
            ),
            obj(
                json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway", "metadata": {"name": "knative-local-gateway", "namespace": "knative-serving"},
                       "spec": {"selector": {"gw": "city"}, "servers": [{"port": {"number": 8081, "name": "https", "protocol": "HTTPS"}, "hosts": ["*.svc.cluster.local"], "tls": {"mode": "ISTIO_MUTUAL"}}]}}),
            ),
            obj(
                json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway", "metadata": {"name": "knative-ingress-gateway", "namespace": "knative-serving"},
                       "spec": {"selector": {"gw": "city"}, "servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*.example.com"], "tls": {"mode": "SIMPLE", "credentialName": "c"}}]}}),
            ),
            obj(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw", "namespace": "city-ingress"},
                       "spec": {"clusterIP": "10.96.0.10", "selector": {"gw": "city"}, "ports": [{"port": 443, "targetPort": 8443}, {"port": 80, "targetPort": "http"}]}}),
            ),
            pod(
                "knative-serving",
                "activator-abc",
                "10.0.0.44",
                json!({"app": "activator", "role": "activator"}),
                &["activator", "istio-proxy"],
            ),
            pod(
                "kserve-test",
                "sklearn-iris-predictor-00001-deployment-x",
                "10.0.0.17",
                json!({"serving.kserve.io/inferenceservice": "sklearn-iris", "component": "predictor", "serving.knative.dev/revision": "sklearn-iris-predictor-00001"}),
                &["kserve-container", "queue-proxy", "istio-proxy"],
            ),
            pod(
                "kserve-test",
                "transformer-x",
                "10.0.0.18",
                json!({"serving.kserve.io/inferenceservice": "sklearn-iris", "component": "transformer"}),
                &["kserve-container"],
            ),
            pod(
                "seldon",
                "iris-main-0",
                "10.0.0.30",
                json!({"seldon-deployment-id": "iris"}),
                &["classifier", "istio-proxy"],
            ),
            pod(
                "notebooks",
                "nb-0",
                "10.0.0.50",
                json!({"app": "nb"}),
                &["notebook"],
            ),
            obj(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "broken", "namespace": "x"}, "spec": {"containers": "not-a-list"}}),
            ),
        ]
    }

    #[test]
    fn roles_come_from_labels_and_selectors() {
        let mut problems = Vec::new();
        let t = Topology::from_objects(&world(), &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("Pod broken unreadable"));
        let role = |ip: &str| t.pod_by_ip(ip.parse().unwrap()).map(|p| p.role);
        assert_eq!(role("10.0.0.9"), Some(PodRole::IngressGateway));
        assert_eq!(role("10.0.0.44"), Some(PodRole::Activator));
        assert_eq!(role("10.0.0.17"), Some(PodRole::Predictor));
        assert_eq!(role("10.0.0.18"), Some(PodRole::Transformer));
        assert_eq!(role("10.0.0.30"), Some(PodRole::SeldonPredictor));
        assert_eq!(role("10.0.0.50"), Some(PodRole::Workload));
        let nb = t.pod_by_ip("10.0.0.50".parse().unwrap()).unwrap();
        assert!(!nb.has_sidecar);
        let p = t.pod_by_ip("10.0.0.17".parse().unwrap()).unwrap();
        assert_eq!(
            (p.isvc.as_deref(), p.revision.as_deref(), p.has_sidecar),
            (
                Some("sklearn-iris"),
                Some("sklearn-iris-predictor-00001"),
                true
            )
        );
        assert_eq!(
            t.classify("10.96.0.10".parse().unwrap()),
            AddrKind::Service(0)
        );
        assert_eq!(t.classify("127.0.0.6".parse().unwrap()), AddrKind::Local);
        assert_eq!(t.classify("192.0.2.1".parse().unwrap()), AddrKind::Unknown);
    }

    #[test]
    fn gateway_listener_ports_map_to_servers() {
        let t = Topology::from_objects(&world(), &mut Vec::new());
        let gw = t.pod_by_ip("10.0.0.9".parse().unwrap()).unwrap();
        assert_eq!(gw.gateways.len(), 2);
        // 8081 is served directly; 8443 through the Service's 443 → 8443.
        let s = t.gateway_servers(gw, 8081);
        assert_eq!(
            (s.len(), s[0].1.tls_mode.as_deref()),
            (1, Some("ISTIO_MUTUAL"))
        );
        assert_eq!(t.gateway_listener_role(gw, 8081), "local-gateway");
        let s = t.gateway_servers(gw, 8443);
        assert_eq!(s[0].0.name, "knative-ingress-gateway");
        assert_eq!(t.gateway_listener_role(gw, 8443), "ingress-gateway");
        assert!(t.gateway_servers(gw, 9999).is_empty());
        assert_eq!(
            t.describe("10.0.0.50:8080".parse().unwrap()),
            "notebooks/nb-0:8080 (workload, no sidecar)"
        );
    }
}
