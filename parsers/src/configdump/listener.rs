//! Listeners: address, filter chains with their match and downstream TLS, the HTTP connection
//! manager (RDS name or inline routes) or TCP proxy of each chain, and access-log formats.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::route::RouteConfig;
use super::value::{arr, b, get, os, path, s, strs, type_name, typed_config, u};
use super::{ConfigDump, route};

/// A listener address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SocketAddr {
    /// IP (or host name) and port.
    Socket {
        /// `0.0.0.0`, an IP, `::`.
        address: String,
        /// Port.
        port: u32,
    },
    /// Unix domain socket.
    Pipe {
        /// Path.
        path: String,
    },
    /// Envoy internal listener address.
    Internal {
        /// Server listener name.
        name: String,
        /// Endpoint id (the original destination, e.g. `10.0.0.1:80`), if any.
        endpoint_id: Option<String>,
    },
}

impl SocketAddr {
    pub(crate) fn from_value(v: &Value) -> Option<SocketAddr> {
        if let Some(sa) = get(v, "socket_address") {
            return Some(SocketAddr::Socket {
                address: s(sa, "address").unwrap_or("").to_string(),
                port: u(sa, "port_value").unwrap_or(0) as u32,
            });
        }
        if let Some(p) = get(v, "pipe") {
            return Some(SocketAddr::Pipe {
                path: s(p, "path").unwrap_or("").to_string(),
            });
        }
        get(v, "envoy_internal_address").map(|i| SocketAddr::Internal {
            name: s(i, "server_listener_name").unwrap_or("").to_string(),
            endpoint_id: os(i, "endpoint_id"),
        })
    }

    /// The port, if a socket address.
    pub fn port(&self) -> Option<u32> {
        match self {
            SocketAddr::Socket { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// The IP/host part, if a socket address.
    pub fn ip(&self) -> Option<&str> {
        match self {
            SocketAddr::Socket { address, .. } => Some(address),
            _ => None,
        }
    }
}

impl std::fmt::Display for SocketAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddr::Socket { address, port } if address.contains(':') => {
                write!(f, "[{address}]:{port}")
            }
            SocketAddr::Socket { address, port } => write!(f, "{address}:{port}"),
            SocketAddr::Pipe { path } => write!(f, "unix://{path}"),
            SocketAddr::Internal {
                name,
                endpoint_id: Some(id),
            } => write!(f, "envoy://{name}/{id}"),
            SocketAddr::Internal { name, .. } => write!(f, "envoy://{name}"),
        }
    }
}

/// Downstream or upstream TLS mode, in Istio's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TlsMode {
    /// Plaintext.
    #[default]
    None,
    /// Server certificate only (one-way TLS; a Gateway's `SIMPLE`).
    Simple,
    /// Client certificates verified against a CA (a Gateway's `MUTUAL`, a DestinationRule's).
    Mutual,
    /// Istio's workload certificate (SDS `default`) and mesh root (`ROOTCA`).
    IstioMutual,
}

impl TlsMode {
    /// `NONE`, `SIMPLE`, `MUTUAL`, `ISTIO_MUTUAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "NONE",
            TlsMode::Simple => "SIMPLE",
            TlsMode::Mutual => "MUTUAL",
            TlsMode::IstioMutual => "ISTIO_MUTUAL",
        }
    }
}

/// The TLS settings of a filter chain (downstream) or cluster (upstream).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DownstreamTls {
    /// Mode.
    pub mode: TlsMode,
    /// Client certificate required.
    pub require_client_certificate: bool,
    /// SDS names of the certificates (`default`, `kubernetes://ingress-certs`).
    pub certificate_sds: Vec<String>,
    /// SDS name of the validation context (`ROOTCA`, `kubernetes://x-cacert`).
    pub validation_sds: Option<String>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// SNI sent (upstream only).
    pub sni: Option<String>,
}

/// Read a `DownstreamTlsContext`/`UpstreamTlsContext` (v3 typed config or v2 `tls_context`).
pub(crate) fn read_tls(ctx: &Value) -> DownstreamTls {
    let common = get(ctx, "common_tls_context").unwrap_or(&Value::Null);
    let certificate_sds: Vec<String> = arr(common, "tls_certificate_sds_secret_configs")
        .iter()
        .filter_map(|c| s(c, "name"))
        .map(str::to_string)
        .collect();
    let validation_sds = path(
        common,
        &[
            "combined_validation_context",
            "validation_context_sds_secret_config",
            "name",
        ],
    )
    .or_else(|| path(common, &["validation_context_sds_secret_config", "name"]))
    .and_then(Value::as_str)
    .map(str::to_string);
    let has_validation = validation_sds.is_some()
        || get(common, "validation_context").is_some()
        || path(
            common,
            &["combined_validation_context", "default_validation_context"],
        )
        .is_some_and(|d| d.as_object().is_some_and(|o| !o.is_empty()));
    let require = b(ctx, "require_client_certificate").unwrap_or(false);
    // Istio before SDS (≤1.4) mounted the workload certificate under /etc/certs.
    let istio_files = arr(common, "tls_certificates").iter().any(|c| {
        path(c, &["certificate_chain", "filename"])
            .and_then(Value::as_str)
            .is_some_and(|f| f.starts_with("/etc/certs/"))
    });
    let mode = if (certificate_sds.iter().any(|n| n == "default")
        && validation_sds.as_deref() == Some("ROOTCA"))
        || istio_files
    {
        TlsMode::IstioMutual
    } else if require || has_validation {
        TlsMode::Mutual
    } else {
        TlsMode::Simple
    };
    DownstreamTls {
        mode,
        require_client_certificate: require,
        certificate_sds,
        validation_sds,
        alpn: strs(common, "alpn_protocols"),
        sni: os(ctx, "sni"),
    }
}

/// The TLS context of a transport socket, if it is TLS.
pub(crate) fn transport_tls(owner: &Value) -> Option<DownstreamTls> {
    if let Some(ts) = get(owner, "transport_socket") {
        let name = s(ts, "name").unwrap_or("");
        let tc = typed_config(ts);
        let ty = tc.and_then(type_name).unwrap_or("");
        if name.contains("tls") && !name.contains("raw_buffer") || ty.ends_with("TlsContext") {
            return Some(read_tls(tc.unwrap_or(&Value::Null)));
        }
        return None;
    }
    get(owner, "tls_context").map(read_tls)
}

/// What selects a filter chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainMatch {
    /// Original destination port.
    pub destination_port: Option<u32>,
    /// SNI names (`*.example.com` allowed).
    pub server_names: Vec<String>,
    /// `tls` or `raw_buffer`.
    pub transport_protocol: Option<String>,
    /// ALPN (`istio-peer-exchange`, `istio`, `h2c`, `http/1.1`).
    pub application_protocols: Vec<String>,
    /// Destination prefixes `ip/len`.
    pub prefix_ranges: Vec<String>,
    /// Source prefixes `ip/len`.
    pub source_prefix_ranges: Vec<String>,
}

fn ranges(v: &Value, key: &str) -> Vec<String> {
    arr(v, key)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                s(r, "address_prefix").unwrap_or(""),
                u(r, "prefix_len").unwrap_or(0)
            )
        })
        .collect()
}

/// How an access log is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum LogFormat {
    /// Envoy's default text format (no format configured).
    Default,
    /// A text format string.
    Text(String),
    /// JSON: key → command operator (non-string values kept as JSON text).
    Json(BTreeMap<String, String>),
}

/// One access log of a listener or filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessLog {
    /// Extension name (`envoy.access_loggers.file`).
    pub name: String,
    /// File path (`/dev/stdout`), when a file logger.
    pub path: Option<String>,
    /// Format.
    pub format: LogFormat,
}

fn json_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn read_access_logs(owner: &Value) -> Vec<AccessLog> {
    arr(owner, "access_log")
        .iter()
        .map(|a| {
            let tc = typed_config(a).unwrap_or(&Value::Null);
            let lf = get(tc, "log_format");
            let format = if let Some(t) = lf
                .and_then(|l| path(l, &["text_format_source", "inline_string"]))
                .and_then(Value::as_str)
                .or_else(|| lf.and_then(|l| s(l, "text_format")))
                .or_else(|| s(tc, "format"))
            {
                LogFormat::Text(t.to_string())
            } else if let Some(j) = lf
                .and_then(|l| get(l, "json_format"))
                .or_else(|| get(tc, "json_format"))
            {
                LogFormat::Json(json_map(j))
            } else {
                LogFormat::Default
            };
            AccessLog {
                name: s(a, "name").unwrap_or("").to_string(),
                path: os(tc, "path"),
                format,
            }
        })
        .collect()
}

/// Where an HTTP connection manager gets its routes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum RouteSource {
    /// RDS: the route configuration's name.
    Rds(String),
    /// Inline route configuration.
    Inline(Box<RouteConfig>),
    /// Scoped routes or something else.
    Other,
}

/// An HTTP connection manager.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpManager {
    /// Stat prefix.
    pub stat_prefix: Option<String>,
    /// Routes.
    pub routes: RouteSource,
    /// HTTP filter names, in order (`istio.metadata_exchange`, `envoy.filters.http.rbac`, …).
    pub http_filters: Vec<String>,
    /// `use_remote_address`.
    pub use_remote_address: bool,
    /// Access logs configured on the manager.
    pub access_logs: Vec<AccessLog>,
    /// External processing filters (`envoy.filters.http.ext_proc`: an inference gateway's
    /// endpoint picker), in filter order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ext_proc: Vec<ExtProcFilter>,
}

/// An `envoy.filters.http.ext_proc` filter of an HTTP connection manager.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtProcFilter {
    /// The filter's name.
    pub name: String,
    /// `grpc_service.envoy_grpc.cluster_name`: the cluster the external processor is called on.
    pub cluster: Option<String>,
    /// `grpc_service.google_grpc.target_uri`, when Google gRPC is used instead.
    pub target_uri: Option<String>,
    /// `failure_mode_allow`: when the processor fails, requests continue without it.
    pub failure_mode_allow: bool,
    /// `message_timeout`, as written (`0.2s`).
    pub message_timeout: Option<String>,
}

impl ExtProcFilter {
    fn from_value(name: &str, tc: &Value) -> ExtProcFilter {
        let grpc = get(tc, "grpc_service").unwrap_or(&Value::Null);
        ExtProcFilter {
            name: name.to_string(),
            cluster: get(grpc, "envoy_grpc").and_then(|e| os(e, "cluster_name")),
            target_uri: get(grpc, "google_grpc").and_then(|e| os(e, "target_uri")),
            failure_mode_allow: b(tc, "failure_mode_allow").unwrap_or(false),
            message_timeout: get(tc, "message_timeout")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// A TCP proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpProxy {
    /// Stat prefix.
    pub stat_prefix: Option<String>,
    /// Single cluster.
    pub cluster: Option<String>,
    /// Weighted clusters `(name, weight)`.
    pub weighted_clusters: Vec<(String, u64)>,
    /// Access logs.
    pub access_logs: Vec<AccessLog>,
}

/// One filter chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterChain {
    /// Name (Istio names them, e.g. `0.0.0.0_8443`, `inbound-vip|8000||…-http`).
    pub name: Option<String>,
    /// Selection.
    #[serde(rename = "match")]
    pub chain_match: ChainMatch,
    /// Downstream TLS, if the chain terminates TLS.
    pub tls: Option<DownstreamTls>,
    /// Network filter names, in order.
    pub filters: Vec<String>,
    /// The HTTP connection manager, if any.
    pub http: Option<HttpManager>,
    /// The TCP proxy, if any.
    pub tcp: Option<TcpProxy>,
    /// Whether this is the listener's default filter chain.
    pub is_default: bool,
}

impl FilterChain {
    fn from_value(fc: &Value, is_default: bool) -> FilterChain {
        let m = get(fc, "filter_chain_match").unwrap_or(&Value::Null);
        let chain_match = ChainMatch {
            destination_port: u(m, "destination_port").map(|p| p as u32),
            server_names: strs(m, "server_names"),
            transport_protocol: os(m, "transport_protocol"),
            application_protocols: strs(m, "application_protocols"),
            prefix_ranges: ranges(m, "prefix_ranges"),
            source_prefix_ranges: ranges(m, "source_prefix_ranges"),
        };
        let mut http = None;
        let mut tcp = None;
        let mut filters = Vec::new();
        for f in arr(fc, "filters") {
            let name = s(f, "name").unwrap_or("").to_string();
            let tc = typed_config(f).unwrap_or(&Value::Null);
            let ty = type_name(tc).unwrap_or("");
            if http.is_none()
                && (name.contains("http_connection_manager")
                    || ty.ends_with("HttpConnectionManager"))
            {
                let routes = if let Some(r) = get(tc, "rds") {
                    RouteSource::Rds(s(r, "route_config_name").unwrap_or("").to_string())
                } else if let Some(rc) = get(tc, "route_config") {
                    RouteSource::Inline(Box::new(route::read_route_config(rc, false)))
                } else {
                    RouteSource::Other
                };
                http = Some(HttpManager {
                    stat_prefix: os(tc, "stat_prefix"),
                    routes,
                    http_filters: arr(tc, "http_filters")
                        .iter()
                        .filter_map(|h| s(h, "name"))
                        .map(str::to_string)
                        .collect(),
                    use_remote_address: b(tc, "use_remote_address").unwrap_or(false),
                    access_logs: read_access_logs(tc),
                    ext_proc: arr(tc, "http_filters")
                        .iter()
                        .filter_map(|h| {
                            let hc = typed_config(h).unwrap_or(&Value::Null);
                            let name = s(h, "name").unwrap_or("");
                            (name.contains("ext_proc")
                                || type_name(hc).is_some_and(|t| t.ends_with("ExternalProcessor")))
                            .then(|| ExtProcFilter::from_value(name, hc))
                        })
                        .take(16)
                        .collect(),
                });
            } else if tcp.is_none() && (name.contains("tcp_proxy") || ty.ends_with("TcpProxy")) {
                tcp = Some(TcpProxy {
                    stat_prefix: os(tc, "stat_prefix"),
                    cluster: os(tc, "cluster"),
                    weighted_clusters: get(tc, "weighted_clusters")
                        .map(|w| {
                            arr(w, "clusters")
                                .iter()
                                .map(|c| {
                                    (
                                        s(c, "name").unwrap_or("").to_string(),
                                        u(c, "weight").unwrap_or(0),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    access_logs: read_access_logs(tc),
                });
            }
            filters.push(name);
        }
        FilterChain {
            name: os(fc, "name"),
            chain_match,
            tls: transport_tls(fc),
            filters,
            http,
            tcp,
            is_default,
        }
    }
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    /// Name (`0.0.0.0_8443`, `virtualInbound`, `main_internal`; may be empty for static ones).
    pub name: String,
    /// Address (none for internal listeners).
    pub address: Option<SocketAddr>,
    /// Additional addresses.
    pub additional_addresses: Vec<SocketAddr>,
    /// `INBOUND` / `OUTBOUND`, when set.
    pub traffic_direction: Option<String>,
    /// Listener filter names (`envoy.filters.listener.tls_inspector`, …).
    pub listener_filters: Vec<String>,
    /// Filter chains in order, the default chain last.
    pub filter_chains: Vec<FilterChain>,
    /// Listener-level access logs.
    pub access_logs: Vec<AccessLog>,
    /// `static`, `active`, `warming`, `draining`.
    pub state: String,
    /// Whether chains are selected by a `filter_chain_matcher` tree instead of their matches.
    pub has_matcher_tree: bool,
}

impl Listener {
    pub(crate) fn from_value(l: &Value, state: &str) -> Listener {
        let mut filter_chains: Vec<FilterChain> = arr(l, "filter_chains")
            .iter()
            .map(|fc| FilterChain::from_value(fc, false))
            .collect();
        if let Some(d) = get(l, "default_filter_chain") {
            filter_chains.push(FilterChain::from_value(d, true));
        }
        Listener {
            name: s(l, "name").unwrap_or("").to_string(),
            address: get(l, "address").and_then(SocketAddr::from_value),
            additional_addresses: arr(l, "additional_addresses")
                .iter()
                .filter_map(|a| get(a, "address").and_then(SocketAddr::from_value))
                .collect(),
            traffic_direction: os(l, "traffic_direction"),
            listener_filters: arr(l, "listener_filters")
                .iter()
                .filter_map(|f| s(f, "name"))
                .map(str::to_string)
                .collect(),
            filter_chains,
            access_logs: read_access_logs(l),
            state: state.to_string(),
            has_matcher_tree: get(l, "filter_chain_matcher").is_some(),
        }
    }

    /// The port, if bound to a socket.
    pub fn port(&self) -> Option<u32> {
        self.address.as_ref().and_then(SocketAddr::port)
    }

    /// `HTTP`, `TCP`, `HTTP+TCP` (chains with an HTTP manager / a TCP proxy that is not to
    /// `BlackHoleCluster`), or `UNKNOWN`.
    pub fn protocol(&self) -> &'static str {
        let h = self.filter_chains.iter().any(|c| c.http.is_some());
        // A TCP proxy to BlackHoleCluster drops traffic: it does not make the listener TCP.
        let t = self.filter_chains.iter().any(|c| {
            c.tcp
                .as_ref()
                .is_some_and(|t| t.cluster.as_deref() != Some("BlackHoleCluster"))
        });
        match (h, t) {
            (true, true) => "HTTP+TCP",
            (true, false) => "HTTP",
            (false, true) => "TCP",
            _ => "UNKNOWN",
        }
    }
}

pub(crate) fn read_section(sec: &Value, at: &str, d: &mut ConfigDump) {
    for (n, x) in arr(sec, "static_listeners").iter().enumerate() {
        match get(x, "listener") {
            Some(l) if l.is_object() => d.listeners.push(Listener::from_value(l, "static")),
            _ => d.warnings.push(format!(
                "{at}.static_listeners[{n}]: no listener object; skipped"
            )),
        }
    }
    for (n, x) in arr(sec, "dynamic_listeners").iter().enumerate() {
        let mut found = false;
        for (key, state) in [
            ("active_state", "active"),
            ("warming_state", "warming"),
            ("draining_state", "draining"),
        ] {
            if let Some(l) = get(x, key).and_then(|st| get(st, "listener")) {
                d.listeners.push(Listener::from_value(l, state));
                found = true;
            }
        }
        if !found && get(x, "error_state").is_none() {
            d.warnings.push(format!(
                "{at}.dynamic_listeners[{n}]: no active, warming or draining listener; skipped"
            ));
        }
    }
    // v2-era admin output.
    for (key, state) in [
        ("dynamic_active_listeners", "active"),
        ("dynamic_warming_listeners", "warming"),
        ("dynamic_draining_listeners", "draining"),
    ] {
        for x in arr(sec, key) {
            if let Some(l) = get(x, "listener") {
                d.listeners.push(Listener::from_value(l, state));
            }
        }
    }
}
