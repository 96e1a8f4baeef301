//! Clusters (type, upstream TLS mode, circuit breakers, outlier detection, the DestinationRule
//! behind them) and endpoints (EDS dump, `/clusters?format=json`, inline load assignments).

use serde::Serialize;
use serde_json::Value;

use super::listener::{DownstreamTls, SocketAddr, TlsMode, read_tls, transport_tls};
use super::value::{arr, b, get, os, path, s, typed_config, u};
use super::{ConfigDump, istio_meta};

/// Upstream TLS of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamTls {
    /// TLS settings (mode, SDS names, SNI, ALPN).
    pub tls: DownstreamTls,
    /// Istio auto mTLS: TLS only to endpoints labelled `tlsMode: istio`, plaintext to others.
    pub auto: bool,
}

impl UpstreamTls {
    /// `ISTIO_MUTUAL`, `ISTIO_MUTUAL (auto)`, `SIMPLE`, `MUTUAL`.
    pub fn describe(&self) -> String {
        if self.auto {
            format!("{} (auto mTLS)", self.tls.mode.as_str())
        } else {
            self.tls.mode.as_str().to_string()
        }
    }
}

/// Circuit-breaker thresholds (default priority).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CircuitBreakers {
    /// `max_connections`.
    pub max_connections: Option<u64>,
    /// `max_pending_requests`.
    pub max_pending_requests: Option<u64>,
    /// `max_requests`.
    pub max_requests: Option<u64>,
    /// `max_retries`.
    pub max_retries: Option<u64>,
}

/// Outlier detection settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutlierDetection {
    /// `consecutive_5xx`.
    pub consecutive_5xx: Option<u64>,
    /// `consecutive_gateway_failure`.
    pub consecutive_gateway_failure: Option<u64>,
    /// `interval`.
    pub interval: Option<String>,
    /// `base_ejection_time`.
    pub base_ejection_time: Option<String>,
    /// `max_ejection_percent`.
    pub max_ejection_percent: Option<u64>,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// Name (`outbound|80||svc.ns.svc.cluster.local`, `BlackHoleCluster`, `agent`).
    pub name: String,
    /// Discovery type (`EDS`, `STATIC`, `STRICT_DNS`, `ORIGINAL_DST`, or a custom type name).
    pub kind: String,
    /// `static`, `active`, `warming`.
    pub state: String,
    /// Upstream TLS, if any.
    pub upstream_tls: Option<UpstreamTls>,
    /// Circuit breakers.
    pub circuit_breakers: Option<CircuitBreakers>,
    /// Outlier detection.
    pub outlier_detection: Option<OutlierDetection>,
    /// `filter_metadata.istio.config` (the DestinationRule), if any.
    pub istio_config: Option<String>,
    /// Connect timeout.
    pub connect_timeout: Option<String>,
    /// EDS service name.
    pub eds_service_name: Option<String>,
    /// Endpoints given inline (`load_assignment`).
    #[serde(skip)]
    pub inline_endpoints: Option<ClusterEndpoints>,
}

impl Cluster {
    fn from_value(c: &Value, state: &str) -> Cluster {
        let kind = os(c, "type")
            .or_else(|| get(c, "cluster_type").and_then(|t| os(t, "name")))
            .unwrap_or_else(|| "STATIC".into());
        let mut upstream_tls = transport_tls(c).map(|tls| UpstreamTls { tls, auto: false });
        if upstream_tls.is_none() {
            for m in arr(c, "transport_socket_matches") {
                let istio = path(m, &["match", "tlsMode"])
                    .and_then(Value::as_str)
                    .is_some_and(|t| t == "istio");
                if let Some(tls) = get(m, "transport_socket")
                    .filter(|ts| s(ts, "name").is_some_and(|n| n.contains("tls")))
                    .and_then(typed_config)
                    .map(read_tls)
                {
                    upstream_tls = Some(UpstreamTls { tls, auto: istio });
                    break;
                }
            }
        }
        let cb = arr(
            get(c, "circuit_breakers").unwrap_or(&Value::Null),
            "thresholds",
        )
        .first()
        .map(|t| CircuitBreakers {
            max_connections: u(t, "max_connections"),
            max_pending_requests: u(t, "max_pending_requests"),
            max_requests: u(t, "max_requests"),
            max_retries: u(t, "max_retries"),
        });
        let od = get(c, "outlier_detection").map(|o| OutlierDetection {
            consecutive_5xx: u(o, "consecutive_5xx"),
            consecutive_gateway_failure: u(o, "consecutive_gateway_failure"),
            interval: os(o, "interval"),
            base_ejection_time: os(o, "base_ejection_time"),
            max_ejection_percent: u(o, "max_ejection_percent"),
        });
        let name = s(c, "name").unwrap_or("").to_string();
        let inline_endpoints = get(c, "load_assignment").map(|la| {
            let mut e = read_cla(la);
            if e.cluster.is_empty() {
                e.cluster = name.clone();
            }
            e
        });
        Cluster {
            kind,
            state: state.into(),
            upstream_tls,
            circuit_breakers: cb,
            outlier_detection: od,
            istio_config: istio_meta(c),
            connect_timeout: os(c, "connect_timeout"),
            eds_service_name: get(c, "eds_cluster_config").and_then(|e| os(e, "service_name")),
            inline_endpoints,
            name,
        }
    }

    /// Upstream TLS mode (`NONE` when plaintext).
    pub fn tls_mode(&self) -> TlsMode {
        self.upstream_tls
            .as_ref()
            .map(|t| t.tls.mode)
            .unwrap_or(TlsMode::None)
    }
}

/// One endpoint of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Address.
    pub address: SocketAddr,
    /// Health (`HEALTHY`, `UNHEALTHY`, `DRAINING`, `TIMEOUT`, `DEGRADED`, `UNKNOWN`).
    pub health: String,
    /// `region/zone/sub_zone` (empty when unset).
    pub locality: String,
    /// Failed outlier detection (from `/clusters`).
    pub outlier_failed: bool,
    /// Load-balancing weight.
    pub weight: Option<u64>,
    /// `tlsMode` label of the endpoint (`istio` = has a sidecar), if known.
    pub tls_mode: Option<String>,
}

/// The endpoints of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterEndpoints {
    /// Cluster name.
    pub cluster: String,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
}

fn locality(v: Option<&Value>) -> String {
    let Some(l) = v else { return String::new() };
    ["region", "zone", "sub_zone"]
        .iter()
        .filter_map(|k| s(l, k).filter(|x| !x.is_empty()))
        .collect::<Vec<_>>()
        .join("/")
}

fn read_cla(la: &Value) -> ClusterEndpoints {
    let mut endpoints = Vec::new();
    for group in arr(la, "endpoints") {
        let loc = locality(get(group, "locality"));
        for lb in arr(group, "lb_endpoints") {
            let Some(address) = path(lb, &["endpoint", "address"]).and_then(SocketAddr::from_value)
            else {
                continue;
            };
            endpoints.push(Endpoint {
                address,
                health: s(lb, "health_status").unwrap_or("UNKNOWN").to_string(),
                locality: loc.clone(),
                outlier_failed: false,
                weight: u(lb, "load_balancing_weight"),
                tls_mode: path(
                    lb,
                    &[
                        "metadata",
                        "filter_metadata",
                        "envoy.transport_socket_match",
                        "tlsMode",
                    ],
                )
                .and_then(Value::as_str)
                .map(str::to_string),
            });
        }
    }
    ClusterEndpoints {
        cluster: s(la, "cluster_name").unwrap_or("").to_string(),
        endpoints,
    }
}

pub(crate) fn read_section(sec: &Value, at: &str, d: &mut ConfigDump) {
    for (key, state) in [
        ("static_clusters", "static"),
        ("dynamic_active_clusters", "active"),
        ("dynamic_warming_clusters", "warming"),
    ] {
        for (n, x) in arr(sec, key).iter().enumerate() {
            match get(x, "cluster") {
                Some(c) if c.is_object() => d.clusters.push(Cluster::from_value(c, state)),
                _ => d
                    .warnings
                    .push(format!("{at}.{key}[{n}]: no cluster object; skipped")),
            }
        }
    }
}

pub(crate) fn read_endpoints_section(sec: &Value, d: &mut ConfigDump) {
    for key in ["static_endpoint_configs", "dynamic_endpoint_configs"] {
        for x in arr(sec, key) {
            if let Some(la) = get(x, "endpoint_config") {
                d.endpoints.push(read_cla(la));
            }
        }
    }
}

/// `/clusters?format=json` → endpoints with health and outlier status.
pub(crate) fn from_cluster_statuses(list: &[Value]) -> Vec<ClusterEndpoints> {
    list.iter()
        .map(|c| ClusterEndpoints {
            cluster: s(c, "name").unwrap_or("").to_string(),
            endpoints: arr(c, "host_statuses")
                .iter()
                .filter_map(|h| {
                    let address = get(h, "address").and_then(SocketAddr::from_value)?;
                    let hs = get(h, "health_status").unwrap_or(&Value::Null);
                    let failed_active = b(hs, "failed_active_health_check").unwrap_or(false);
                    let health = match s(hs, "eds_health_status") {
                        Some(x) => x.to_string(),
                        None if failed_active => "UNHEALTHY".into(),
                        None => "HEALTHY".into(),
                    };
                    Some(Endpoint {
                        address,
                        health,
                        locality: locality(get(h, "locality")),
                        outlier_failed: b(hs, "failed_outlier_check").unwrap_or(false),
                        weight: u(h, "weight"),
                        tls_mode: None,
                    })
                })
                .collect(),
        })
        .collect()
}
