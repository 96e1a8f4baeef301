//! Pure: simulate Envoy's request matching on a config dump — listener by port, filter chain
//! by SNI/transport, route configuration, virtual host by Envoy's domain rules, first matching
//! route — recording the decision at every step, the action and the VirtualService behind it;
//! and follow a request hop by hop through the config dumps of several proxies.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;

use meshtrace_parsers::configdump::{
    Action, ClusterChoice, ConfigDump, FilterChain, HeaderMatch, HeaderMatchKind, Listener,
    PathMatch, Route, RouteConfig, RouteSource, SocketAddr, TcpProxy, VirtualHost,
    istio_config_ref,
};

/// The request to simulate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Request {
    /// Host / `:authority` (may carry `:port`).
    pub host: String,
    /// Path with optional query.
    pub path: String,
    /// Method.
    pub method: String,
    /// Other request headers `(name, value)`, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Destination port of the connection (the listener port), if known.
    pub port: Option<u32>,
    /// TLS SNI, if the connection is TLS (`None`: decided by the filter chains).
    pub sni: Option<String>,
    /// Whether the connection is TLS, when known (the previous proxy's cluster said so):
    /// `Some(false)` is plaintext, which a chain matching `transport_protocol: tls` refuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        match name {
            ":authority" | "host" => Some(&self.host),
            ":path" => Some(&self.path),
            ":method" => Some(&self.method),
            _ => self
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
        }
    }

    fn set_header(&mut self, name: &str, value: &str) {
        if name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host") {
            self.host = value.to_string();
            return;
        }
        let lower = name.to_ascii_lowercase();
        self.headers.retain(|(k, _)| *k != lower);
        self.headers.push((lower, value.to_string()));
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `listener`, `filter chain`, `route config`, `virtual host`, `route`, `action`, `cluster`.
    pub stage: String,
    /// What was decided and why.
    pub decision: String,
    /// False when the request stops here.
    pub ok: bool,
}

/// A virtual host or route that was tried and did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Virtual host name, or `vhost / route n (match)`.
    pub name: String,
    /// Why it did not match.
    pub why: String,
}

/// How the simulation on one proxy ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Forwarded to a cluster.
    Cluster {
        /// The cluster (heaviest of weighted clusters).
        name: String,
    },
    /// TCP proxy to a cluster.
    Tcp {
        /// The cluster.
        name: String,
    },
    /// Direct response.
    DirectResponse {
        /// Status.
        status: u64,
    },
    /// Redirect.
    Redirect {
        /// Description.
        description: String,
    },
    /// No listener on the port: connection refused.
    NoListener,
    /// No filter chain matched: connection closed (`NR`, `filter_chain_not_found`).
    NoFilterChain,
    /// The route configuration was not received (RDS name unknown).
    NoRouteConfig,
    /// No virtual host matched: 404 `NR` (`route_not_found`).
    NoVirtualHost,
    /// A virtual host matched but no route: 404 `NR` (`route_not_found`).
    NoRoute,
    /// Something the simulation cannot follow.
    Unknown,
}

/// The simulation on one proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopPrediction {
    /// Which proxy (`namespace/pod` or the file).
    pub proxy: String,
    /// The request as it arrived.
    pub request: Request,
    /// Listener chosen.
    pub listener: Option<String>,
    /// Filter chain chosen.
    pub filter_chain: Option<String>,
    /// Downstream TLS mode of the chain.
    pub downstream_tls: Option<String>,
    /// Route configuration used.
    pub route_config: Option<String>,
    /// Virtual host matched.
    pub virtual_host: Option<String>,
    /// Route matched (`name` or `#index`) and its match.
    pub route: Option<String>,
    /// The Istio object the route came from (`VirtualService namespace/name`).
    pub virtual_service: Option<String>,
    /// Clusters with weights.
    pub clusters: Vec<(String, u64)>,
    /// Host after rewrites.
    pub host_rewrite: Option<String>,
    /// Path prefix rewrite.
    pub prefix_rewrite: Option<String>,
    /// Request headers the route sets.
    pub headers_set: Vec<(String, String)>,
    /// Timeout and retries, described.
    pub policy: Option<String>,
    /// Upstream TLS of the cluster.
    pub upstream_tls: Option<String>,
    /// Endpoints of the cluster `(address, health)`.
    pub endpoints: Vec<(String, String)>,
    /// SNI the cluster sends upstream (Istio mTLS: `outbound_.80_._.host`).
    pub upstream_sni: Option<String>,
    /// Every decision in order.
    pub steps: Vec<Step>,
    /// Closest virtual hosts / routes tried and why each failed (when nothing matched).
    pub candidates: Vec<Candidate>,
    /// How the request got here when an application (not a proxy) forwarded it.
    pub note: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request as it leaves (rewritten Host, path, headers).
    pub forwarded: Option<Request>,
}

impl HopPrediction {
    fn new(proxy: &str, req: &Request) -> HopPrediction {
        HopPrediction {
            proxy: proxy.into(),
            request: req.clone(),
            listener: None,
            filter_chain: None,
            downstream_tls: None,
            route_config: None,
            virtual_host: None,
            route: None,
            virtual_service: None,
            clusters: Vec::new(),
            host_rewrite: None,
            prefix_rewrite: None,
            headers_set: Vec::new(),
            policy: None,
            upstream_tls: None,
            endpoints: Vec::new(),
            upstream_sni: None,
            steps: Vec::new(),
            candidates: Vec::new(),
            note: None,
            outcome: Outcome::Unknown,
            forwarded: None,
        }
    }

    fn step(&mut self, stage: &str, ok: bool, decision: String) {
        self.steps.push(Step {
            stage: stage.into(),
            decision,
            ok,
        });
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// How a domain matches a host: 4 exact, 3 suffix wildcard, 2 prefix wildcard, 1 `*`
/// (with the wildcard length for tie-breaking), or `None`.
pub fn domain_match(domain: &str, host: &str) -> Option<(u8, usize)> {
    let d = domain.to_ascii_lowercase();
    let h = host.to_ascii_lowercase();
    if d == "*" {
        return Some((1, 0));
    }
    if d == h {
        return Some((4, d.len()));
    }
    if let Some(suffix) = d.strip_prefix('*') {
        if h.len() > suffix.len() && h.ends_with(suffix) {
            return Some((3, suffix.len()));
        }
        return None;
    }
    if let Some(prefix) = d.strip_suffix('*')
        && h.len() > prefix.len()
        && h.starts_with(prefix)
    {
        return Some((2, prefix.len()));
    }
    None
}

fn best_vhost<'a>(rc: &'a RouteConfig, host: &str) -> Option<(&'a VirtualHost, String)> {
    let mut best: Option<((u8, usize), &VirtualHost, &str)> = None;
    for vh in &rc.virtual_hosts {
        for d in &vh.domains {
            if let Some(score) = domain_match(d, host)
                && best.as_ref().is_none_or(|(b, _, _)| score > *b)
            {
                best = Some((score, vh, d));
            }
        }
    }
    best.map(|((kind, _), vh, d)| {
        let how = match kind {
            4 => "exact domain",
            3 => "suffix wildcard",
            2 => "prefix wildcard",
            _ => "catch-all",
        };
        (vh, format!("{how} {d:?}"))
    })
}

fn common_suffix(a: &str, b: &str) -> usize {
    a.bytes()
        .rev()
        .zip(b.bytes().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

fn full_match(pattern: &str, text: &str) -> Result<bool, String> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map(|r| r.is_match(text))
        .map_err(|e| format!("regex {pattern:?} does not compile: {e}"))
}

fn path_only(p: &str) -> &str {
    p.split(['?', '#']).next().unwrap_or(p)
}

/// Why `route` does not match `req`, or `None` when it matches.
pub fn route_mismatch(route: &Route, req: &Request) -> Option<String> {
    let path = path_only(&req.path);
    let (p, pm) = if route.case_sensitive {
        (path.to_string(), route.path.clone())
    } else {
        let low = |s: &str| s.to_ascii_lowercase();
        (
            low(path),
            match &route.path {
                PathMatch::Prefix(x) => PathMatch::Prefix(low(x)),
                PathMatch::Path(x) => PathMatch::Path(low(x)),
                PathMatch::PathSeparatedPrefix(x) => PathMatch::PathSeparatedPrefix(low(x)),
                other => other.clone(),
            },
        )
    };
    let path_fail = match &pm {
        PathMatch::Prefix(x) => {
            (!p.starts_with(x.as_str())).then(|| format!("path {path:?} does not start with {x:?}"))
        }
        PathMatch::Path(x) => (p != *x).then(|| format!("path {path:?} is not {x:?}")),
        PathMatch::Regex(x) => match full_match(x, &p) {
            Ok(true) => None,
            Ok(false) => Some(format!("path {path:?} does not match regex {x:?}")),
            Err(e) => Some(e),
        },
        PathMatch::PathSeparatedPrefix(x) => {
            let x = x.trim_end_matches('/');
            (!(p == x || p.starts_with(&format!("{x}/"))))
                .then(|| format!("path {path:?} is not under segment prefix {x:?}"))
        }
        PathMatch::Connect => {
            (req.method != "CONNECT").then(|| format!("method {} is not CONNECT", req.method))
        }
        PathMatch::Other(x) => Some(format!("path matcher {x:?} is not simulated")),
    };
    if path_fail.is_some() {
        return path_fail;
    }
    for h in &route.headers {
        if let Some(why) = header_mismatch(h, req) {
            return Some(why);
        }
    }
    let query = req.path.split_once('?').map(|(_, q)| q).unwrap_or("");
    for q in &route.query_params {
        if !query
            .split('&')
            .any(|kv| kv.split('=').next() == Some(q.as_str()))
        {
            return Some(format!("query parameter {q:?} absent"));
        }
    }
    None
}

fn header_mismatch(h: &HeaderMatch, req: &Request) -> Option<String> {
    let v = req.header(&h.name);
    let cmp = |a: &str, b: &str| {
        if h.ignore_case {
            (a.to_ascii_lowercase(), b.to_ascii_lowercase())
        } else {
            (a.to_string(), b.to_string())
        }
    };
    let (matched, what) = match (&h.kind, v) {
        (HeaderMatchKind::Present, v) => (v.is_some() == (h.value == "true"), "present"),
        (_, None) => (false, "present"),
        (HeaderMatchKind::Exact, Some(v)) => {
            let (a, b) = cmp(v, &h.value);
            (a == b, "equal to")
        }
        (HeaderMatchKind::Prefix, Some(v)) => {
            let (a, b) = cmp(v, &h.value);
            (a.starts_with(&b), "starting with")
        }
        (HeaderMatchKind::Suffix, Some(v)) => {
            let (a, b) = cmp(v, &h.value);
            (a.ends_with(&b), "ending with")
        }
        (HeaderMatchKind::Contains, Some(v)) => {
            let (a, b) = cmp(v, &h.value);
            (a.contains(&b), "containing")
        }
        (HeaderMatchKind::Regex, Some(v)) => match full_match(&h.value, v) {
            Ok(m) => (m, "matching regex"),
            Err(e) => return Some(e),
        },
        (HeaderMatchKind::Other, _) => {
            return Some(format!("header matcher on {} is not simulated", h.name));
        }
    };
    if matched != h.invert {
        return None;
    }
    let actual = v
        .map(|x| format!("{x:?}"))
        .unwrap_or_else(|| "absent".into());
    Some(format!(
        "header {} is {actual}, {}{what} {:?}",
        h.name,
        if h.invert { "must not be " } else { "not " },
        h.value
    ))
}

/// `path` matcher as text.
pub fn describe_path(p: &PathMatch) -> String {
    match p {
        PathMatch::Prefix(x) => format!("prefix {x}"),
        PathMatch::Path(x) => format!("path {x}"),
        PathMatch::Regex(x) => format!("regex {x}"),
        PathMatch::PathSeparatedPrefix(x) => format!("path-separated prefix {x}"),
        PathMatch::Connect => "CONNECT".into(),
        PathMatch::Other(x) => x.clone(),
    }
}

fn describe_route(i: usize, r: &Route) -> String {
    let mut s = format!(
        "#{} {}{}",
        i + 1,
        r.name
            .as_deref()
            .map(|n| format!("{n} "))
            .unwrap_or_default(),
        describe_path(&r.path)
    );
    for h in &r.headers {
        s.push_str(&format!(" + header {} {:?} {:?}", h.name, h.kind, h.value));
    }
    s
}

fn sni_match(names: &[String], sni: &str) -> Option<u8> {
    names
        .iter()
        .filter_map(|n| match domain_match(n, sni) {
            Some((4, _)) => Some(2),
            Some((3, _)) => Some(1),
            _ => None,
        })
        .max()
}

/// Choose the filter chain for a connection to `port` with optional SNI.
fn pick_chain<'a>(
    l: &'a Listener,
    port: Option<u32>,
    sni: Option<&str>,
    tls_known: bool,
    plaintext: bool,
) -> Result<(&'a FilterChain, String), String> {
    let mut best: Option<(u8, &FilterChain, String)> = None;
    let mut why_not = Vec::new();
    for fc in l.filter_chains.iter().filter(|c| !c.is_default) {
        let m = &fc.chain_match;
        let label = fc.name.clone().unwrap_or_else(|| "(unnamed)".into());
        if let (Some(want), Some(p)) = (m.destination_port, port)
            && want != p
        {
            why_not.push(format!("{label}: destination port {want}"));
            continue;
        }
        let mut score = u8::from(m.destination_port.is_some()) * 4;
        if plaintext && m.transport_protocol.as_deref() == Some("tls") {
            why_not.push(format!(
                "{label}: needs TLS, and the calling proxy's cluster sends plaintext"
            ));
            continue;
        }
        if !m.server_names.is_empty() {
            match sni.and_then(|s| sni_match(&m.server_names, s)) {
                Some(k) => score += k,
                None => {
                    why_not.push(format!(
                        "{label}: SNI {} not in [{}]",
                        sni.unwrap_or("(none)"),
                        m.server_names.join(", ")
                    ));
                    continue;
                }
            }
        }
        if m.transport_protocol.as_deref() == Some("tls") && sni.is_none() && fc.tls.is_none() {
            why_not.push(format!("{label}: needs TLS"));
            continue;
        }
        if tls_known && m.transport_protocol.as_deref() == Some("raw_buffer") {
            why_not.push(format!("{label}: plaintext only"));
            continue;
        }
        let how = if m == &Default::default() {
            "matches everything".to_string()
        } else {
            crate::proxyconfig::describe_match(fc)
        };
        if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
            best = Some((score, fc, how));
        }
    }
    if let Some((_, fc, how)) = best {
        return Ok((fc, how));
    }
    if let Some(d) = l.filter_chains.iter().find(|c| c.is_default) {
        return Ok((d, "default filter chain".into()));
    }
    Err(if why_not.is_empty() {
        "the listener has no filter chain".into()
    } else {
        format!("no filter chain matched ({})", why_not.join("; "))
    })
}

fn find_listener(d: &ConfigDump, port: u32) -> Option<(&Listener, String)> {
    if let Some(l) = d
        .listeners
        .iter()
        .filter(|l| l.state != "draining" && l.port() == Some(port))
        .min_by_key(|l| u8::from(l.address.as_ref().and_then(SocketAddr::ip) != Some("0.0.0.0")))
    {
        return Some((l, format!("bound to port {port}")));
    }
    d.listeners
        .iter()
        .filter(|l| {
            l.name == "virtualInbound"
                || l.name == "virtualOutbound"
                || l.listener_filters
                    .iter()
                    .any(|f| f.contains("original_dst"))
        })
        .find(|l| {
            l.filter_chains
                .iter()
                .any(|c| c.chain_match.destination_port == Some(port))
        })
        .map(|l| {
            (
                l,
                format!(
                    "no listener on {port}; original destination port {port} is served by {}",
                    l.name
                ),
            )
        })
}

/// Simulate one request on one proxy's config.
pub fn simulate(d: &ConfigDump, proxy: &str, req: &Request) -> HopPrediction {
    let mut h = HopPrediction::new(proxy, req);
    let Some(rc) = route_config_for(d, &mut h, req) else {
        return h;
    };
    h.route_config = Some(rc.name.clone());
    route_on(d, &rc, &mut h, req);
    h
}

/// The route configuration the request is matched against: through the listener and filter
/// chain when the port is known, else by Host. `None` when the simulation ends before routing.
fn route_config_for<'d>(
    d: &'d ConfigDump,
    h: &mut HopPrediction,
    req: &Request,
) -> Option<Cow<'d, RouteConfig>> {
    match req.port {
        Some(port) => {
            let l = listener_step(d, h, port)?;
            let fc = filter_chain_step(l, h, req, port)?;
            chain_route_config(d, fc, h, req)
        }
        None => route_config_by_host(d, h, req),
    }
}

/// The listener serving `port`; `None` (connection refused) when there is none.
fn listener_step<'d>(d: &'d ConfigDump, h: &mut HopPrediction, port: u32) -> Option<&'d Listener> {
    let Some((l, why)) = find_listener(d, port) else {
        let ports: Vec<String> = d
            .listeners
            .iter()
            .filter_map(|l| l.port())
            .map(|p| p.to_string())
            .collect();
        h.step(
            "listener",
            false,
            format!(
                "no listener on port {port} (listeners on: {}): connection refused",
                ports.join(", ")
            ),
        );
        h.outcome = Outcome::NoListener;
        return None;
    };
    h.listener = Some(if l.name.is_empty() {
        format!("port {port}")
    } else {
        l.name.clone()
    });
    h.step(
        "listener",
        true,
        format!("{}: {why}", h.listener.as_deref().unwrap_or("")),
    );
    Some(l)
}

/// The listener's filter chain for the connection's SNI and transport; `None` (connection
/// closed) when no chain matches.
fn filter_chain_step<'l>(
    l: &'l Listener,
    h: &mut HopPrediction,
    req: &Request,
    port: u32,
) -> Option<&'l FilterChain> {
    // An SNI given (or sent by the previous proxy's TLS cluster) means TLS; otherwise
    // the Host stands in for the SNI a client would send.
    let plaintext = req.tls == Some(false);
    let tls_known = req.sni.is_some() || req.tls == Some(true);
    let sni = req
        .sni
        .clone()
        .or_else(|| (!plaintext).then(|| strip_port(&req.host).to_string()));
    let (fc, how) = match pick_chain(l, Some(port), sni.as_deref(), tls_known, plaintext) {
        Ok(x) => x,
        Err(e) => {
            h.step(
                "filter chain",
                false,
                format!("{e}: the connection is closed (NR filter_chain_not_found)"),
            );
            h.outcome = Outcome::NoFilterChain;
            return None;
        }
    };
    h.filter_chain = Some(fc.name.clone().unwrap_or_else(|| "(unnamed)".into()));
    let tls = fc.tls.as_ref().map(|t| t.mode.as_str()).unwrap_or("NONE");
    h.downstream_tls = Some(tls.into());
    h.step(
        "filter chain",
        true,
        format!(
            "{} ({how}); downstream TLS {tls}{}",
            h.filter_chain.as_deref().unwrap_or(""),
            fc.tls
                .as_ref()
                .filter(|t| !t.certificate_sds.is_empty())
                .map(|t| format!(" with certificate {}", t.certificate_sds.join(",")))
                .unwrap_or_default()
        ),
    );
    Some(fc)
}

/// What the chain does with the connection: the HTTP manager's route configuration, or the TCP
/// proxy's cluster (the simulation ends there, `None`).
fn chain_route_config<'d>(
    d: &'d ConfigDump,
    fc: &FilterChain,
    h: &mut HopPrediction,
    req: &Request,
) -> Option<Cow<'d, RouteConfig>> {
    if let Some(http) = &fc.http {
        route_source_step(d, &http.routes, h)
    } else if let Some(tcp) = &fc.tcp {
        tcp_proxy_step(d, tcp, h, req);
        None
    } else {
        h.step(
            "action",
            false,
            "the chain has neither an HTTP manager nor a TCP proxy".into(),
        );
        None
    }
}

/// The HTTP manager's route configuration (RDS or inline); `None` when it was not received or
/// cannot be simulated.
fn route_source_step<'d>(
    d: &'d ConfigDump,
    routes: &RouteSource,
    h: &mut HopPrediction,
) -> Option<Cow<'d, RouteConfig>> {
    match routes {
        RouteSource::Rds(n) => match d.route_config(n) {
            Some(rc) => {
                h.step("route config", true, format!("RDS {n}"));
                Some(Cow::Borrowed(rc))
            }
            None => {
                h.step(
                    "route config",
                    false,
                    format!("RDS {n} is not in the dump (not received from istiod): 404 NR"),
                );
                h.route_config = Some(n.clone());
                h.outcome = Outcome::NoRouteConfig;
                None
            }
        },
        RouteSource::Inline(rc) => {
            h.step("route config", true, format!("inline {}", rc.name));
            Some(Cow::Owned((**rc).clone()))
        }
        RouteSource::Other => {
            h.step(
                "route config",
                false,
                "scoped or unknown route source: not simulated".into(),
            );
            None
        }
    }
}

/// A TCP proxy forwards the connection to its (heaviest) cluster as it is.
fn tcp_proxy_step(d: &ConfigDump, tcp: &TcpProxy, h: &mut HopPrediction, req: &Request) {
    let c = tcp
        .cluster
        .clone()
        .or_else(|| {
            tcp.weighted_clusters
                .iter()
                .max_by_key(|c| c.1)
                .map(|c| c.0.clone())
        })
        .unwrap_or_default();
    h.step("action", true, format!("TCP proxy to {c}"));
    h.clusters = vec![(c.clone(), 100)];
    cluster_step(d, h, &c);
    h.outcome = Outcome::Tcp { name: c };
    h.forwarded = Some(req.clone());
}

/// Without a port: the first named route configuration with a virtual host for the Host.
fn route_config_by_host<'d>(
    d: &'d ConfigDump,
    h: &mut HopPrediction,
    req: &Request,
) -> Option<Cow<'d, RouteConfig>> {
    let host = req.host.to_ascii_lowercase();
    let found = d
        .route_configs
        .iter()
        .filter(|rc| !rc.is_static)
        .find(|rc| best_vhost(rc, &host).is_some_and(|(_, how)| !how.starts_with("catch-all")))
        .or_else(|| {
            d.route_configs
                .iter()
                .filter(|rc| !rc.is_static)
                .find(|rc| best_vhost(rc, &host).is_some())
        })
        .or_else(|| d.route_configs.iter().find(|rc| !rc.is_static));
    match found {
        Some(rc) => {
            h.step(
                "route config",
                true,
                format!(
                    "{} (no --port: first route configuration with a virtual host for the Host)",
                    rc.name
                ),
            );
            Some(Cow::Borrowed(rc))
        }
        None => {
            h.step(
                "route config",
                false,
                "the dump has no route configuration".into(),
            );
            h.outcome = Outcome::NoRouteConfig;
            None
        }
    }
}

/// Match the request on a route configuration: virtual host, route, then the route's action.
fn route_on(d: &ConfigDump, rc: &RouteConfig, h: &mut HopPrediction, req: &Request) {
    let host = req.host.to_ascii_lowercase();
    let Some((vh, how, note)) = vhost_step(rc, &host) else {
        no_vhost(rc, &host, h);
        return;
    };
    h.virtual_host = Some(vh.name.clone());
    h.step("virtual host", true, format!("{} by {how}{note}", vh.name));
    let (found, tried) = first_matching_route(vh, req);
    let Some((i, r)) = found else {
        h.candidates = tried;
        h.step(
            "route",
            false,
            format!(
                "none of the {} routes of {} matches {} {}: 404 NR route_not_found",
                vh.routes.len(),
                vh.name,
                req.method,
                req.path
            ),
        );
        h.outcome = Outcome::NoRoute;
        return;
    };
    h.route = Some(describe_route(i, r));
    h.virtual_service = route_origin(r);
    h.step(
        "route",
        true,
        format!(
            "{}{}{}",
            h.route.as_deref().unwrap_or(""),
            if tried.is_empty() {
                String::new()
            } else {
                format!(" (after {} that did not match)", tried.len())
            },
            h.virtual_service
                .as_deref()
                .map(|v| format!(", from {v}"))
                .unwrap_or_default()
        ),
    );
    let mut fwd = req.clone();
    for (k, v) in vh
        .request_headers_to_add
        .iter()
        .chain(&r.request_headers_to_add)
    {
        h.headers_set.push((k.clone(), v.clone()));
        fwd.set_header(k, v);
    }
    action_step(d, h, r, fwd);
}

/// The virtual host for `host`, how it matched, and a note when it matched only without the
/// port.
fn vhost_step<'a>(rc: &'a RouteConfig, host: &str) -> Option<(&'a VirtualHost, String, String)> {
    if let Some((vh, how)) = best_vhost(rc, host) {
        return Some((vh, how, String::new()));
    }
    if strip_port(host) == host {
        return None;
    }
    let (vh, how) = best_vhost(rc, strip_port(host))?;
    let note = format!(
        " (matched without the port{})",
        if rc.ignore_port_in_host_matching {
            ", ignore_port_in_host_matching"
        } else {
            ""
        }
    );
    Some((vh, how, note))
}

/// No virtual host matches: the closest ones (longest common domain suffix first) and why
/// each failed; 404 `NR`.
fn no_vhost(rc: &RouteConfig, host: &str, h: &mut HopPrediction) {
    let mut cands: Vec<(usize, Candidate)> = rc
        .virtual_hosts
        .iter()
        .map(|vh| {
            let best = vh
                .domains
                .iter()
                .max_by_key(|d| common_suffix(d, host))
                .cloned()
                .unwrap_or_default();
            (
                vh.domains.iter().map(|d| common_suffix(d, host)).max().unwrap_or(0),
                Candidate {
                    name: vh.name.clone(),
                    why: format!(
                        "no domain equals {host:?} or a wildcard covering it (domains: {}; closest {best:?})",
                        vh.domains.join(", ")
                    ),
                },
            )
        })
        .collect();
    cands.sort_by_key(|c| std::cmp::Reverse(c.0));
    h.candidates = cands.into_iter().map(|c| c.1).collect();
    h.step(
        "virtual host",
        false,
        format!(
            "no virtual host of {} matches Host {host:?} (tried {}): 404 NR route_not_found",
            rc.name,
            rc.virtual_hosts.len()
        ),
    );
    h.outcome = Outcome::NoVirtualHost;
}

/// The first route of the virtual host that matches (Envoy takes the first), and the routes
/// tried before it with why each did not match.
fn first_matching_route<'a>(
    vh: &'a VirtualHost,
    req: &Request,
) -> (Option<(usize, &'a Route)>, Vec<Candidate>) {
    let mut tried = Vec::new();
    for (i, r) in vh.routes.iter().enumerate() {
        match route_mismatch(r, req) {
            None => return (Some((i, r)), tried),
            Some(why) => tried.push(Candidate {
                name: format!("{} / {}", vh.name, describe_route(i, r)),
                why,
            }),
        }
    }
    (None, tried)
}

/// The Istio object a route came from (`VirtualService ns/name`, `HTTPRoute ns/name`). A
/// Gateway API route reaches the proxy through a VirtualService istiod generates for it, named
/// `<route>-<n>-istio-autogenerated-k8s-gateway` in the route's namespace (Istio's Gateway API
/// conversion): the object to edit is then the route, named with the generated one beside it.
fn route_origin(r: &Route) -> Option<String> {
    let (kind, ns, name) = r.istio_config.as_deref().and_then(istio_config_ref)?;
    Some(match kind.as_str() {
        "virtual-service" => match gateway_api_route(&name) {
            Some(route) => format!(
                "HTTPRoute or GRPCRoute {ns}/{route} (through Istio's generated VirtualService {ns}/{name})"
            ),
            None => format!("VirtualService {ns}/{name}"),
        },
        "http-route" | "httproute" => format!("HTTPRoute {ns}/{name}"),
        "grpc-route" | "grpcroute" => format!("GRPCRoute {ns}/{name}"),
        other => format!("{other} {ns}/{name}"),
    })
}

/// The Gateway API route a VirtualService istiod generated is named after: `http` for
/// `http-0-istio-autogenerated-k8s-gateway`.
fn gateway_api_route(virtual_service: &str) -> Option<&str> {
    let (route, n) = virtual_service
        .strip_suffix("-istio-autogenerated-k8s-gateway")?
        .rsplit_once('-')?;
    (!route.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(route)
}

/// What the matched route does: forward (with rewrites and policy), answer directly, redirect.
fn action_step(d: &ConfigDump, h: &mut HopPrediction, r: &Route, fwd: Request) {
    match &r.action {
        Action::Route { .. } => forward_step(d, h, r, fwd),
        Action::DirectResponse { status, body } => {
            h.step(
                "action",
                true,
                format!(
                    "direct response {status}{}",
                    body.as_deref()
                        .map(|b| format!(" {b:?}"))
                        .unwrap_or_default()
                ),
            );
            h.outcome = Outcome::DirectResponse { status: *status };
        }
        Action::Redirect { description } => {
            h.step("action", true, format!("redirect {description}"));
            h.outcome = Outcome::Redirect {
                description: description.clone(),
            };
        }
        Action::Other => {
            h.step("action", false, "non-forwarding or unknown action".into());
        }
    }
}

/// A forwarding route: its clusters, Host and path rewrites applied to the forwarded request,
/// timeout and retries, then the heaviest cluster.
fn forward_step(d: &ConfigDump, h: &mut HopPrediction, r: &Route, mut fwd: Request) {
    let Action::Route {
        cluster,
        host_rewrite,
        auto_host_rewrite,
        prefix_rewrite,
        timeout,
        retry_on,
        num_retries,
        per_try_timeout,
    } = &r.action
    else {
        return;
    };
    h.clusters = match cluster {
        ClusterChoice::Cluster(c) => vec![(c.clone(), 100)],
        ClusterChoice::Weighted(w) => w.clone(),
        ClusterChoice::Header(x) => vec![(format!("(from header {x})"), 100)],
        ClusterChoice::Other => Vec::new(),
    };
    if let Some(hr) = host_rewrite {
        fwd.host = hr.clone();
        h.host_rewrite = Some(hr.clone());
    } else if *auto_host_rewrite {
        h.host_rewrite = Some("(the upstream host's name)".into());
    }
    if let Some(p) = prefix_rewrite {
        if let PathMatch::Prefix(m) = &r.path {
            fwd.path = format!("{p}{}", fwd.path.get(m.len()..).unwrap_or(""));
        }
        h.prefix_rewrite = Some(p.clone());
    }
    h.policy = describe_policy(
        timeout.as_deref(),
        retry_on.as_deref(),
        *num_retries,
        per_try_timeout.as_deref(),
    );
    let act = describe_forward(h);
    h.step("action", true, act);
    let main = h
        .clusters
        .iter()
        .max_by_key(|c| c.1)
        .map(|c| c.0.clone())
        .unwrap_or_default();
    cluster_step(d, h, &main);
    h.outcome = Outcome::Cluster { name: main };
    h.forwarded = Some(fwd);
}

/// A route's timeout and retries in words; `None` when it sets neither.
fn describe_policy(
    timeout: Option<&str>,
    retry_on: Option<&str>,
    num_retries: Option<u64>,
    per_try_timeout: Option<&str>,
) -> Option<String> {
    let mut pol = Vec::new();
    if let Some(t) = timeout {
        pol.push(if t == "0s" {
            "no timeout".to_string()
        } else {
            format!("timeout {t}")
        });
    }
    if let Some(n) = num_retries {
        pol.push(format!(
            "{n} retries on {}{}",
            retry_on.unwrap_or("?"),
            per_try_timeout
                .map(|t| format!(" ({t} per try)"))
                .unwrap_or_default()
        ));
    }
    (!pol.is_empty()).then(|| pol.join(", "))
}

/// The forward decision in words: clusters (with weights when several), rewrites, headers set,
/// policy.
fn describe_forward(h: &HopPrediction) -> String {
    let mut act = format!(
        "forward to {}",
        h.clusters
            .iter()
            .map(|(c, w)| if h.clusters.len() > 1 {
                format!("{c} ({w})")
            } else {
                c.clone()
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(hr) = &h.host_rewrite {
        act.push_str(&format!("; Host rewritten to {hr}"));
    }
    if let Some(p) = &h.prefix_rewrite {
        act.push_str(&format!("; path prefix rewritten to {p}"));
    }
    for (k, v) in &h.headers_set {
        act.push_str(&format!("; sets {k}: {v}"));
    }
    if let Some(p) = &h.policy {
        act.push_str(&format!("; {p}"));
    }
    act
}

fn cluster_step(d: &ConfigDump, h: &mut HopPrediction, name: &str) {
    let Some(c) = d.cluster(name) else {
        h.step(
            "cluster",
            false,
            format!("{name} is not in the dump: Envoy answers 503 NC (cluster_not_found)"),
        );
        return;
    };
    h.upstream_tls = Some(
        c.upstream_tls
            .as_ref()
            .map(|t| t.describe())
            .unwrap_or_else(|| "NONE".into()),
    );
    h.upstream_sni = c.upstream_tls.as_ref().and_then(|t| t.tls.sni.clone());
    if let Some(e) = d.endpoints_of(name) {
        h.endpoints = e
            .endpoints
            .iter()
            .map(|x| (x.address.to_string(), x.health.clone()))
            .collect();
    }
    let eds = c.kind == "EDS";
    let eps = if h.endpoints.is_empty() {
        if c.kind == "ORIGINAL_DST" {
            "the connection's original destination".to_string()
        } else if !eds {
            format!("resolved by {} discovery", c.kind)
        } else if !d
            .sections
            .iter()
            .any(|s| s == "EndpointsConfigDump" || s == "ClusterStatuses")
        {
            "endpoints not dumped".to_string()
        } else {
            "none: 503 UH (no healthy upstream)".to_string()
        }
    } else {
        h.endpoints
            .iter()
            .map(|(a, s)| format!("{a} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let dr = c
        .istio_config
        .as_deref()
        .and_then(istio_config_ref)
        .map(|(_, ns, n)| format!("; DestinationRule {ns}/{n}"))
        .unwrap_or_default();
    h.step(
        "cluster",
        !h.endpoints.is_empty()
            || !eds
            || !d
                .sections
                .iter()
                .any(|s| s == "EndpointsConfigDump" || s == "ClusterStatuses"),
        format!(
            "{name}: {}, upstream TLS {}{dr}; endpoints: {eps}",
            c.kind,
            h.upstream_tls.as_deref().unwrap_or("NONE")
        ),
    );
}

/// One proxy of a mesh, for hop-by-hop prediction.
#[derive(Debug, Clone)]
pub struct Proxy<'a> {
    /// `namespace/pod`.
    pub id: String,
    /// Role (`ingress-gateway`, `activator`, `predictor`, …).
    pub role: String,
    /// Pod IPs.
    pub ips: Vec<IpAddr>,
    /// Its config dump.
    pub dump: &'a ConfigDump,
}

/// A Service's cluster IP, to follow an application (the Knative activator) that forwards.
#[derive(Debug, Clone)]
pub struct ServiceIp {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// ClusterIP.
    pub ip: String,
}

/// The predicted path: one simulation per proxy, and how the path ends.
#[derive(Debug, Clone, Serialize)]
pub struct PredictedPath {
    /// Hops in order.
    pub hops: Vec<HopPrediction>,
    /// How the path ends (last hop's outcome in words).
    pub end: String,
}

fn endpoint_ip_port(e: &str) -> Option<(IpAddr, u32)> {
    let (ip, port) = e.rsplit_once(':')?;
    Some((
        ip.trim_matches(['[', ']']).parse().ok()?,
        port.parse().ok()?,
    ))
}

/// Follow `req` from proxy `first` through the proxies whose pods own the chosen endpoints
/// (at most `max_hops`). The Knative activator is followed by its `Knative-Serving-Revision`
/// header to the revision's private Service.
pub fn predict(
    proxies: &[Proxy<'_>],
    services: &[ServiceIp],
    first: usize,
    req: &Request,
    max_hops: usize,
) -> PredictedPath {
    let mut hops = Vec::new();
    let mut cur = first;
    let mut req = req.clone();
    let mut end = String::new();
    let mut note: Option<String> = None;
    for _ in 0..max_hops.max(1) {
        let Some(p) = proxies.get(cur) else { break };
        let mut h = simulate(p.dump, &p.id, &req);
        h.note = note.take();
        let next = next_hop(proxies, services, cur, &h);
        hops.push(h);
        match next {
            Next::Proxy {
                index,
                request,
                note: how,
            } => {
                cur = index;
                req = request;
                note = how;
            }
            Next::End(why) => {
                end = why;
                break;
            }
            Next::Stop => break,
        }
    }
    if end.is_empty() {
        end = "stopped after the maximum number of hops".into();
    }
    PredictedPath { hops, end }
}

/// Where a predicted request goes after one proxy.
enum Next {
    /// On to a proxy (the same one when an application in its pod forwards), with the request
    /// as it arrives there and how it got there.
    Proxy {
        index: usize,
        request: Request,
        note: Option<String>,
    },
    /// The path ends, for this reason.
    End(String),
    /// Nothing was forwarded: the path ends without a reason.
    Stop,
}

/// After proxy `cur` decided `h`: the proxy owning the chosen endpoint (with the cluster's SNI
/// and TLS mode), the pod's application (the activator forwards), or the end of the path.
fn next_hop(proxies: &[Proxy<'_>], services: &[ServiceIp], cur: usize, h: &HopPrediction) -> Next {
    let p = &proxies[cur];
    match &h.outcome {
        Outcome::Cluster { .. } | Outcome::Tcp { .. } => {}
        other => return Next::End(format!("stops at {}: {}", p.id, describe_outcome(other))),
    }
    let Some(mut next_req) = h.forwarded.clone() else {
        return Next::Stop;
    };
    let inbound = matches!(&h.outcome, Outcome::Cluster { name } | Outcome::Tcp { name } if name.starts_with("inbound|"));
    if inbound {
        // Handed to the application container of this pod.
        return handed_to_application(p, services, cur, next_req);
    }
    let next_ep = h
        .endpoints
        .iter()
        .find(|(_, s)| s == "HEALTHY")
        .or(h.endpoints.first())
        .and_then(|(a, _)| endpoint_ip_port(a));
    let Some((ip, port)) = next_ep else {
        return Next::End(format!(
            "forwarded by {} to a cluster whose endpoints are not in the dump",
            p.id
        ));
    };
    let Some(n) = proxies.iter().position(|x| x.ips.contains(&ip)) else {
        return Next::End(format!(
            "forwarded by {} to {ip}:{port}, a pod without a config dump in the evidence",
            p.id
        ));
    };
    next_req.port = Some(port);
    next_req.sni = h.upstream_sni.clone();
    // The cluster's TLS mode decides what the next proxy's listener sees.
    next_req.tls = h.upstream_tls.as_deref().map(|t| t != "NONE");
    Next::Proxy {
        index: n,
        request: next_req,
        note: None,
    }
}

/// A request handed to the application of proxy `cur`'s pod: the Knative activator forwards it
/// to the revision's private Service through its own sidecar; any other application ends the
/// path.
fn handed_to_application(
    p: &Proxy<'_>,
    services: &[ServiceIp],
    cur: usize,
    mut next_req: Request,
) -> Next {
    if p.role != "activator" {
        return Next::End(format!(
            "handed to the application in {} ({})",
            p.id,
            if p.role.is_empty() { "app" } else { &p.role }
        ));
    }
    let rev = next_req
        .header("knative-serving-revision")
        .map(str::to_string);
    let ns = next_req
        .header("knative-serving-namespace")
        .map(str::to_string);
    let svc = rev.as_ref().and_then(|r| {
        services.iter().find(|s| {
            s.name == format!("{r}-private") && ns.as_ref().is_none_or(|n| *n == s.namespace)
        })
    });
    let Some(s) = svc else {
        return Next::End(format!(
            "handed to the activator in {}; its target revision's private Service is not in the evidence",
            p.id
        ));
    };
    let note = format!(
        "the Knative activator forwards to revision {}'s private Service {}/{} ({}:80)",
        rev.as_deref().unwrap_or("?"),
        s.namespace,
        s.name,
        s.ip
    );
    next_req.host = format!("{}:80", s.ip);
    next_req.port = Some(80);
    next_req.sni = None;
    next_req.tls = None;
    // The activator's own sidecar handles its outbound request.
    Next::Proxy {
        index: cur,
        request: next_req,
        note: Some(note),
    }
}

/// An outcome in words.
pub fn describe_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Cluster { name } => format!("forwarded to {name}"),
        Outcome::Tcp { name } => format!("TCP proxied to {name}"),
        Outcome::DirectResponse { status } => format!("direct response {status}"),
        Outcome::Redirect { description } => format!("redirect ({description})"),
        Outcome::NoListener => "no listener on the port: connection refused".into(),
        Outcome::NoFilterChain => "no filter chain matched: connection closed (NR)".into(),
        Outcome::NoRouteConfig => "route configuration missing: 404 NR".into(),
        Outcome::NoVirtualHost => "no virtual host matched: 404 NR (route_not_found)".into(),
        Outcome::NoRoute => "no route matched: 404 NR (route_not_found)".into(),
        Outcome::Unknown => "not simulated".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_names_the_object_behind_it() {
        // istioctl's own cases (testdata/peer): an HTTPRoute, served through the VirtualService
        // istiod generates for it, and a VirtualService.
        let origin = |case: &str| {
            let d = ConfigDump::parse(
                &std::fs::read_to_string(format!(
                    "{}/../testdata/peer/istio/istioctl/pkg/writer/envoy/configdump/testdata/routes/{case}/configdump.json",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .unwrap(),
            )
            .unwrap();
            simulate(
                &d,
                "p",
                &Request {
                    host: "httpbin.example.com".into(),
                    path: "/get".into(),
                    method: "GET".into(),
                    ..Request::default()
                },
            )
            .virtual_service
        };
        assert_eq!(
            origin("k8s-gateway-http-route-path-prefix").as_deref(),
            Some(
                "HTTPRoute or GRPCRoute default/http (through Istio's generated VirtualService default/http-0-istio-autogenerated-k8s-gateway)"
            )
        );
        assert_eq!(
            origin("istio-gateway-http-route-prefix").as_deref(),
            Some("VirtualService default/httpbin")
        );
        for (vs, route) in [
            ("http-0-istio-autogenerated-k8s-gateway", Some("http")),
            (
                "my-api-v2-12-istio-autogenerated-k8s-gateway",
                Some("my-api-v2"),
            ),
            ("http-istio-autogenerated-k8s-gateway", None),
            ("-0-istio-autogenerated-k8s-gateway", None),
            ("http-0a-istio-autogenerated-k8s-gateway", None),
            ("reviews", None),
        ] {
            assert_eq!(gateway_api_route(vs), route, "{vs}");
        }
    }

    #[test]
    fn envoy_domain_rules() {
        assert_eq!(
            domain_match("a.example.com", "A.example.com"),
            Some((4, 13))
        );
        assert_eq!(
            domain_match("*.example.com", "a.example.com"),
            Some((3, 12))
        );
        assert_eq!(domain_match("*.example.com", "example.com"), None);
        assert_eq!(domain_match("*-foo.com", "bar-foo.com"), Some((3, 8)));
        assert_eq!(domain_match("api.*", "api.example.com"), Some((2, 4)));
        assert_eq!(domain_match("*", "anything"), Some((1, 0)));
        assert_eq!(domain_match("a.example.com", "a.example.com:80"), None);
        assert_eq!(
            domain_match("a.example.com:80", "a.example.com:80"),
            Some((4, 16))
        );
    }

    #[test]
    fn exact_beats_longest_suffix_beats_prefix_beats_star() {
        let d = ConfigDump::parse(
            r#"{"configs":[{"@type":"t/envoy.admin.v3.RoutesConfigDump","dynamic_route_configs":[
            {"route_config":{"name":"r","virtual_hosts":[
              {"name":"star","domains":["*"],"routes":[{"match":{"prefix":"/"},"direct_response":{"status":418}}]},
              {"name":"pre","domains":["api.*"],"routes":[{"match":{"prefix":"/"},"direct_response":{"status":201}}]},
              {"name":"short","domains":["*.com"],"routes":[{"match":{"prefix":"/"},"direct_response":{"status":202}}]},
              {"name":"long","domains":["*.example.com"],"routes":[{"match":{"prefix":"/"},"direct_response":{"status":203}}]},
              {"name":"exact","domains":["api.example.com"],"routes":[{"match":{"prefix":"/"},"direct_response":{"status":204}}]}
            ]}}]}]}"#,
        )
        .unwrap();
        let vh = |host: &str| {
            simulate(
                &d,
                "p",
                &Request {
                    host: host.into(),
                    path: "/".into(),
                    method: "GET".into(),
                    ..Request::default()
                },
            )
            .virtual_host
        };
        assert_eq!(vh("api.example.com").as_deref(), Some("exact"));
        assert_eq!(vh("www.example.com").as_deref(), Some("long"));
        assert_eq!(vh("www.other.com").as_deref(), Some("short"));
        assert_eq!(vh("api.other.org").as_deref(), Some("pre"));
        assert_eq!(vh("x.org").as_deref(), Some("star"));
    }

    #[test]
    fn header_and_regex_matches_and_rewrites() {
        let d = ConfigDump::parse(
            r#"{"configs":[{"@type":"t/envoy.admin.v3.RoutesConfigDump","dynamic_route_configs":[
            {"route_config":{"name":"r","virtual_hosts":[{"name":"v","domains":["*"],"routes":[
              {"match":{"safe_regex":{"regex":"/v[0-9]+/models/.*"},"headers":[{"name":"x-user","string_match":{"exact":"alice"}}]},
               "route":{"cluster":"a","prefix_rewrite":"/"}},
              {"match":{"prefix":"/v1","headers":[{"name":"x-canary","present_match":true,"invert_match":true}]},
               "route":{"weighted_clusters":{"clusters":[{"name":"b","weight":90},{"name":"c","weight":10}]},"host_rewrite_literal":"c.ns.svc.cluster.local"}}
            ]}]}}]}]}"#,
        )
        .unwrap();
        let req = |path: &str, headers: &[(&str, &str)]| Request {
            host: "h".into(),
            path: path.into(),
            method: "POST".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Request::default()
        };
        let h = simulate(
            &d,
            "p",
            &req("/v1/models/m:predict", &[("x-user", "alice")]),
        );
        assert_eq!(h.outcome, Outcome::Cluster { name: "a".into() });
        let h = simulate(&d, "p", &req("/v1/models/m:predict", &[]));
        assert_eq!(h.outcome, Outcome::Cluster { name: "b".into() });
        assert_eq!(h.clusters.len(), 2);
        assert_eq!(
            h.forwarded.as_ref().map(|f| f.host.as_str()),
            Some("c.ns.svc.cluster.local")
        );
        let h = simulate(&d, "p", &req("/v1/x", &[("x-canary", "1")]));
        assert_eq!(h.outcome, Outcome::NoRoute);
        assert_eq!(h.candidates.len(), 2);
        assert!(
            h.candidates[0].why.contains("does not match regex"),
            "{:?}",
            h.candidates
        );
        assert!(
            h.candidates[1].why.contains("x-canary"),
            "{:?}",
            h.candidates
        );
    }

    #[test]
    fn no_listener_and_no_chain() {
        let d = ConfigDump::parse(
            r#"{"configs":[{"@type":"t/envoy.admin.v3.ListenersConfigDump","dynamic_listeners":[
            {"name":"0.0.0.0_8081","active_state":{"listener":{"name":"0.0.0.0_8081",
             "address":{"socket_address":{"address":"0.0.0.0","port_value":8081}},
             "filter_chains":[{"filter_chain_match":{"server_names":["*.svc.cluster.local"]},"filters":[]}]}}}]}]}"#,
        )
        .unwrap();
        let mut r = Request {
            host: "x.example.com".into(),
            path: "/".into(),
            method: "GET".into(),
            port: Some(8080),
            ..Request::default()
        };
        assert_eq!(simulate(&d, "p", &r).outcome, Outcome::NoListener);
        r.port = Some(8081);
        let h = simulate(&d, "p", &r);
        assert_eq!(h.outcome, Outcome::NoFilterChain);
        assert!(
            h.steps.last().unwrap().decision.contains("SNI"),
            "{:?}",
            h.steps
        );
    }
}
