//! Envoy admin config dumps (`/config_dump`, `?include_eds`, `/clusters?format=json`) as typed
//! listeners, route configs, clusters, endpoints, secrets, bootstrap and ECDS filters.
//!
//! Pure and tolerant: unknown fields, extensions and section types are skipped (counted in
//! [`ConfigDump::sections`]), keys are read in snake_case or camelCase, v2 resources wrapped in a
//! v3 admin dump are read like v3. A text that is not JSON is a [`DumpError`] naming the JSON
//! path where reading stopped. Nothing here does I/O, reads a clock or panics: secret validity
//! takes "now" as an argument ([`secret::Secret::valid_at`]). [`table`] reads `istioctl
//! proxy-config` text tables pasted by users.

pub mod cluster;
mod der;
pub mod error;
pub mod listener;
pub mod route;
pub mod secret;
pub mod table;
mod value;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use cluster::{Cluster, ClusterEndpoints, Endpoint, UpstreamTls};
pub use error::{DumpError, json_path_at};
pub use listener::{
    AccessLog, ChainMatch, DownstreamTls, ExtProcFilter, FilterChain, HttpManager, Listener,
    LogFormat, RouteSource, SocketAddr, TcpProxy, TlsMode,
};
pub use route::{
    Action, ClusterChoice, HeaderMatch, HeaderMatchKind, PathMatch, Route, RouteConfig, VirtualHost,
};
pub use secret::{CertInfo, Secret, SecretKind};
pub use value::duration_ms;

use value::{arr, get, os, path, s, type_name, u};

/// Versions and identity of the proxy, from the bootstrap section.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Node id (`sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local`).
    pub node_id: Option<String>,
    /// Node cluster (`istio-ingressgateway.istio-system`).
    pub node_cluster: Option<String>,
    /// `ISTIO_VERSION` of the node metadata.
    pub istio_version: Option<String>,
    /// `ISTIO_PROXY_SHA` without its `istio-proxy:` prefix.
    pub istio_proxy_version: Option<String>,
    /// Envoy version `major.minor.patch[/status/build type/ssl]` (`0.0.0` when not reported).
    pub envoy_version: String,
    /// String-valued node metadata (`NAME`, `NAMESPACE`, `CLUSTER_ID`, `MESH_ID`, …).
    pub metadata: BTreeMap<String, String>,
}

impl Bootstrap {
    fn from_value(b: &Value) -> Bootstrap {
        let node = get(b, "node").unwrap_or(&Value::Null);
        let md = get(node, "metadata");
        let mut metadata = BTreeMap::new();
        if let Some(o) = md.and_then(Value::as_object) {
            for (k, v) in o {
                if let Some(t) = v.as_str() {
                    metadata.insert(k.clone(), t.to_string());
                }
            }
        }
        let ubv = get(node, "user_agent_build_version");
        let ver = ubv.and_then(|x| get(x, "version"));
        let num = |k: &str| ver.and_then(|v| u(v, k)).unwrap_or(0);
        let mut envoy_version = format!(
            "{}.{}.{}",
            num("major_number"),
            num("minor_number"),
            num("patch")
        );
        if let Some(m) = ubv.and_then(|x| get(x, "metadata")) {
            for k in ["revision.status", "build.type", "ssl.version"] {
                if let Some(t) = m.get(k).and_then(Value::as_str) {
                    envoy_version.push('/');
                    envoy_version.push_str(t);
                }
            }
        }
        Bootstrap {
            node_id: os(node, "id"),
            node_cluster: os(node, "cluster"),
            istio_version: metadata.get("ISTIO_VERSION").cloned(),
            istio_proxy_version: metadata
                .get("ISTIO_PROXY_SHA")
                .map(|v| v.strip_prefix("istio-proxy:").unwrap_or(v).to_string()),
            envoy_version,
            metadata,
        }
    }
}

/// One extension config delivered by ECDS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EcdsFilter {
    /// Extension name.
    pub name: String,
    /// Short type name of its typed config (empty when it has none).
    pub type_name: String,
}

/// A whole config dump.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigDump {
    /// Bootstrap section, if dumped.
    pub bootstrap: Option<Bootstrap>,
    /// Static and dynamic listeners (active, warming, draining).
    pub listeners: Vec<Listener>,
    /// Static and dynamic route configurations (RDS), in dump order.
    pub route_configs: Vec<RouteConfig>,
    /// Static and dynamic clusters.
    pub clusters: Vec<Cluster>,
    /// Endpoints: EDS section, `/clusters?format=json`, or static clusters' load assignments.
    pub endpoints: Vec<ClusterEndpoints>,
    /// SDS secrets (active and warming).
    pub secrets: Vec<Secret>,
    /// ECDS extension configs.
    pub ecds: Vec<EcdsFilter>,
    /// Short type name of every section read (`ListenersConfigDump`, …), unknown ones included.
    pub sections: Vec<String>,
    /// Parts that were skipped, with their JSON path.
    pub warnings: Vec<String>,
}

impl ConfigDump {
    /// Read a config dump from text. Accepts `{"configs": […]}`, one section object with an
    /// `@type`, or `/clusters?format=json` (`{"cluster_statuses": […]}`).
    pub fn parse(text: &str) -> Result<ConfigDump, DumpError> {
        let v: Value = serde_json::from_str(text).map_err(|e| error::syntax(text, &e))?;
        ConfigDump::from_value(&v)
    }

    /// Read a config dump from an already parsed JSON value.
    pub fn from_value(v: &Value) -> Result<ConfigDump, DumpError> {
        let mut d = ConfigDump::default();
        if !v.is_object() {
            return Err(DumpError::Shape {
                path: "$".into(),
                expected:
                    "a JSON object (`configs`, a section with `@type`, or `cluster_statuses`)"
                        .into(),
            });
        }
        if let Some(cs) = get(v, "cluster_statuses") {
            let list = cs.as_array().ok_or_else(|| DumpError::Shape {
                path: "$.cluster_statuses".into(),
                expected: "an array".into(),
            })?;
            d.sections.push("ClusterStatuses".into());
            d.endpoints = cluster::from_cluster_statuses(list);
            return Ok(d);
        }
        if let Some(c) = get(v, "configs") {
            let list = c.as_array().ok_or_else(|| DumpError::Shape {
                path: "$.configs".into(),
                expected: "an array of config sections".into(),
            })?;
            for (i, sec) in list.iter().enumerate() {
                d.section(sec, &format!("$.configs[{i}]"));
            }
        } else if v.get("@type").is_some() {
            d.section(v, "$");
        } else {
            return Err(DumpError::Shape {
                path: "$".into(),
                expected: "a `configs` array, a section with `@type`, or `cluster_statuses`".into(),
            });
        }
        // Static clusters carry their endpoints inline; list them when EDS was not dumped.
        if d.sections.iter().any(|s| s == "EndpointsConfigDump") {
            return Ok(d);
        }
        let known: std::collections::HashSet<String> =
            d.endpoints.iter().map(|e| e.cluster.clone()).collect();
        let inline: Vec<ClusterEndpoints> = d
            .clusters
            .iter()
            .filter_map(|c| c.inline_endpoints.clone())
            .filter(|e| !known.contains(&e.cluster))
            .collect();
        d.endpoints.extend(inline);
        Ok(d)
    }

    fn section(&mut self, sec: &Value, at: &str) {
        let ty = type_name(sec)
            .unwrap_or("")
            .rsplit('.')
            .next()
            .unwrap_or("");
        self.sections.push(if ty.is_empty() {
            "(untyped)".into()
        } else {
            ty.to_string()
        });
        match ty {
            "BootstrapConfigDump" => {
                if let Some(b) = get(sec, "bootstrap") {
                    self.bootstrap = Some(Bootstrap::from_value(b));
                }
            }
            "ListenersConfigDump" => listener::read_section(sec, at, self),
            "RoutesConfigDump" => route::read_section(sec, at, self),
            "ClustersConfigDump" => cluster::read_section(sec, at, self),
            "EndpointsConfigDump" => cluster::read_endpoints_section(sec, self),
            "SecretsConfigDump" => secret::read_section(sec, self),
            "EcdsConfigDump" => {
                for (n, f) in arr(sec, "ecds_filters").iter().enumerate() {
                    match get(f, "ecds_filter") {
                        Some(x) => self.ecds.push(EcdsFilter {
                            name: s(x, "name").unwrap_or("").to_string(),
                            type_name: get(x, "typed_config")
                                .and_then(type_name)
                                .unwrap_or("")
                                .to_string(),
                        }),
                        None => self
                            .warnings
                            .push(format!("{at}.ecds_filters[{n}]: no ecds_filter; skipped")),
                    }
                }
            }
            _ => {}
        }
    }

    /// The route configuration named `name`.
    pub fn route_config(&self, name: &str) -> Option<&RouteConfig> {
        self.route_configs.iter().find(|r| r.name == name)
    }

    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The endpoints of cluster `name`.
    pub fn endpoints_of(&self, name: &str) -> Option<&ClusterEndpoints> {
        self.endpoints.iter().find(|c| c.cluster == name)
    }

    /// The access-log formats of the listeners, `(listener name, log)`.
    pub fn access_logs(&self) -> Vec<(&str, &AccessLog)> {
        let mut out = Vec::new();
        for l in &self.listeners {
            for a in &l.access_logs {
                out.push((l.name.as_str(), a));
            }
            for c in &l.filter_chains {
                for a in c.http.iter().flat_map(|h| &h.access_logs) {
                    out.push((l.name.as_str(), a));
                }
                for a in c.tcp.iter().flat_map(|t| &t.access_logs) {
                    out.push((l.name.as_str(), a));
                }
            }
        }
        out
    }
}

/// `filter_metadata.istio.config` of a route/cluster (`/apis/networking.istio.io/v1/namespaces/
/// NS/virtual-service/NAME`) as `(kind, namespace, name)`.
pub fn istio_config_ref(meta_config: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = meta_config.trim_matches('/').split('/').collect();
    let i = parts.iter().position(|p| *p == "namespaces")?;
    let ns = parts.get(i + 1)?;
    let kind = parts.get(i + 2)?;
    let name = parts.get(i + 3)?;
    Some((kind.to_string(), ns.to_string(), name.to_string()))
}

pub(crate) fn istio_meta(v: &Value) -> Option<String> {
    path(v, &["metadata", "filter_metadata", "istio", "config"])
        .and_then(Value::as_str)
        .map(str::to_string)
}
