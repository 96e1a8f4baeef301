//! Pure: `istioctl proxy-config`-equivalent tables (clusters, listeners, routes, endpoints,
//! secrets, bootstrap, ECDS) from a parsed [`ConfigDump`], with istioctl-like filters.

use serde::Serialize;

use meshtrace_parsers::cluster::{ClusterName, parse_cluster_name};
use meshtrace_parsers::configdump::{
    Action, ClusterChoice, ConfigDump, FilterChain, Listener, PathMatch, RouteConfig, RouteSource,
    SocketAddr, istio_config_ref,
};

/// A table: column names and rows of cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Column names, as istioctl prints them.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(cols: &[&str]) -> Table {
        Table {
            columns: cols.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Render with columns aligned (tabwriter-like, three spaces between columns).
    pub fn render(&self) -> String {
        let mut width: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = width.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                l.push_str(c);
                if i + 1 < cells.len() {
                    let pad = width
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(c.chars().count())
                        + 3;
                    l.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.columns, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

/// istioctl-like filters (unset = no filtering).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Cluster FQDN (clusters), substring of the cluster name (endpoints).
    pub fqdn: Option<String>,
    /// Port: cluster port, listener port, endpoint port; route config name suffix for routes.
    pub port: Option<u32>,
    /// Cluster direction (`inbound`, `outbound`).
    pub direction: Option<String>,
    /// Cluster subset.
    pub subset: Option<String>,
    /// Route config / listener / secret / cluster name.
    pub name: Option<String>,
    /// Listener or endpoint address.
    pub address: Option<String>,
    /// Listener type (`HTTP`, `TCP`).
    pub listener_type: Option<String>,
    /// Endpoint health status.
    pub status: Option<String>,
}

fn pfx(prefix: bool, kind: &str, name: &str) -> String {
    if prefix {
        format!("{kind}/{name}")
    } else {
        name.to_string()
    }
}

/// `name.namespace` of an Istio config reference.
pub fn short_ref(meta: Option<&str>) -> String {
    meta.and_then(istio_config_ref)
        .map(|(_, ns, name)| format!("{name}.{ns}"))
        .unwrap_or_default()
}

/// Clusters: `SERVICE FQDN  PORT  SUBSET  DIRECTION  TYPE  DESTINATION RULE` (`NAME` first when
/// `prefix`, as in `proxy-config all`).
pub fn clusters(d: &ConfigDump, f: &Filter, prefix: bool) -> Table {
    let mut t = if prefix {
        Table::new(&[
            "NAME",
            "SERVICE FQDN",
            "PORT",
            "SUBSET",
            "DIRECTION",
            "TYPE",
            "DESTINATION RULE",
        ])
    } else {
        Table::new(&[
            "SERVICE FQDN",
            "PORT",
            "SUBSET",
            "DIRECTION",
            "TYPE",
            "DESTINATION RULE",
        ])
    };
    let mut rows = Vec::new();
    for c in &d.clusters {
        let key = istioctl_cluster_key(&c.name);
        let name_cell = pfx(prefix, "cluster", &c.name);
        let (fqdn, port, subset, dir) = match parse_cluster_name(&c.name) {
            Some(ClusterName::Istio {
                direction,
                port,
                subset,
                host,
            }) => (
                host.to_string(),
                port.to_string(),
                if subset.is_empty() { "-" } else { subset }.to_string(),
                direction.as_str().to_string(),
            ),
            _ => (name_cell.clone(), "-".into(), "-".into(), "-".into()),
        };
        if f.fqdn.as_deref().is_some_and(|x| x != fqdn)
            || f.port.is_some_and(|p| p.to_string() != port)
            || f.subset.as_deref().is_some_and(|x| x != subset)
            || f.direction.as_deref().is_some_and(|x| x != dir)
            || f.name.as_deref().is_some_and(|x| x != c.name)
        {
            continue;
        }
        let mut row = vec![
            fqdn,
            port,
            subset,
            dir,
            c.kind.clone(),
            short_ref(c.istio_config.as_deref()),
        ];
        if prefix {
            row.insert(0, name_cell);
        }
        rows.push((key, row));
    }
    // istioctl's order (`retrieveSortedClusterSlice`): host, then subset, then port as a
    // number, then direction; a name that is not `direction|port|subset|host` sorts as a host.
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    t.rows = rows.into_iter().map(|(_, r)| r).collect();
    t
}

/// istioctl's cluster sort key `(host, subset, port, direction)` (its `safelyParseSubsetKey`:
/// only names with more than three `|`-separated parts are parsed).
fn istioctl_cluster_key(name: &str) -> (String, String, u32, String) {
    let parts: Vec<&str> = name.split('|').collect();
    if let [direction, port, subset, host, ..] = parts.as_slice() {
        return (
            host.to_string(),
            subset.to_string(),
            port.parse().unwrap_or(0),
            direction.to_string(),
        );
    }
    (name.to_string(), String::new(), 0, String::new())
}

fn addr_ip(a: &SocketAddr) -> String {
    match a {
        SocketAddr::Socket { address, .. } => address.clone(),
        other => other.to_string(),
    }
}

/// istioctl's description of a filter chain's match.
pub fn describe_match(fc: &FilterChain) -> String {
    let m = &fc.chain_match;
    let mut d = Vec::new();
    if !m.server_names.is_empty() {
        d.push(format!("SNI: {}", m.server_names.join(",")));
    }
    if let Some(t) = &m.transport_protocol {
        d.push(format!("Trans: {t}"));
    }
    if !m.application_protocols.is_empty() {
        d.push(format!("App: {}", m.application_protocols.join(",")));
    }
    let port = m
        .destination_port
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    if !m.prefix_ranges.is_empty() {
        d.push(format!("Addr: {}{port}", m.prefix_ranges.join(",")));
    } else if !port.is_empty() {
        d.push(format!("Addr: *{port}"));
    }
    if d.is_empty() {
        "ALL".into()
    } else {
        d.join("; ")
    }
}

fn describe_path(p: &PathMatch) -> String {
    match p {
        PathMatch::Prefix(x) => format!("{x}*"),
        PathMatch::Path(x) => x.clone(),
        PathMatch::Regex(x) => format!("regex {x}"),
        PathMatch::PathSeparatedPrefix(x) => format!("PathPrefix:{x}"),
        PathMatch::Connect => "CONNECT".into(),
        PathMatch::Other(x) => x.clone(),
    }
}

fn match_all_cluster(rc: &RouteConfig) -> Option<String> {
    let [vh] = rc.virtual_hosts.as_slice() else {
        return None;
    };
    if vh.domains != ["*"] {
        return None;
    }
    let [r] = vh.routes.as_slice() else {
        return None;
    };
    if r.path != PathMatch::Prefix("/".into()) {
        return None;
    }
    match &r.action {
        Action::Route {
            cluster: ClusterChoice::Cluster(c),
            ..
        } => Some(if c.contains("Cluster") {
            c.clone()
        } else {
            format!("Cluster: {c}")
        }),
        _ => None,
    }
}

/// istioctl's description of where a filter chain sends traffic.
pub fn describe_destination(fc: &FilterChain) -> String {
    if let Some(h) = &fc.http {
        return match &h.routes {
            RouteSource::Rds(n) => format!("Route: {n}"),
            RouteSource::Inline(rc) => match_all_cluster(rc).unwrap_or_else(|| {
                let vhs: Vec<String> = rc
                    .virtual_hosts
                    .iter()
                    .map(|vh| {
                        let routes: Vec<String> =
                            vh.routes.iter().map(|r| describe_path(&r.path)).collect();
                        let doms = describe_domains(&vh.domains);
                        if doms == "*" || doms.is_empty() {
                            routes.join(", ")
                        } else {
                            format!("{doms} {}", routes.join(", "))
                        }
                    })
                    .collect();
                format!("Inline Route: {}", vhs.join("; "))
            }),
            RouteSource::Other => "HTTP".into(),
        };
    }
    if let Some(t) = &fc.tcp {
        if let Some(c) = &t.cluster {
            return if c.contains("Cluster") {
                c.clone()
            } else {
                format!("Cluster: {c}")
            };
        }
        if !t.weighted_clusters.is_empty() {
            return format!(
                "WeightedClusters: {}",
                t.weighted_clusters
                    .iter()
                    .map(|(n, w)| format!("{n}({w})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    "Non-HTTP/Non-TCP".into()
}

fn listener_selected(l: &Listener, f: &Filter) -> bool {
    !(f.port.is_some_and(|p| l.port() != Some(p))
        || f.address
            .as_deref()
            .is_some_and(|a| l.address.as_ref().and_then(SocketAddr::ip) != Some(a))
        || f.listener_type
            .as_deref()
            .is_some_and(|t| !l.protocol().eq_ignore_ascii_case(t))
        || f.name.as_deref().is_some_and(|n| n != l.name))
}

/// Listeners, one row per filter chain: `ADDRESSES  PORT  MATCH  DESTINATION`.
pub fn listeners(d: &ConfigDump, f: &Filter, prefix: bool) -> Table {
    let mut t = if prefix {
        Table::new(&["NAME", "ADDRESSES", "PORT", "MATCH", "DESTINATION"])
    } else {
        Table::new(&["ADDRESSES", "PORT", "MATCH", "DESTINATION"])
    };
    for l in sorted_listeners(d, f) {
        let mut addrs: Vec<String> = l.address.iter().map(addr_ip).collect();
        addrs.extend(l.additional_addresses.iter().map(addr_ip));
        let addrs = addrs
            .into_iter()
            .filter(|a| !a.starts_with("envoy://"))
            .collect::<Vec<_>>()
            .join(",");
        // istioctl prints a listener's filter chains by destination, descending.
        let mut chains: Vec<(String, String)> = l
            .filter_chains
            .iter()
            .map(|fc| (describe_match(fc), describe_destination(fc)))
            .collect();
        chains.sort_by(|a, b| b.1.cmp(&a.1));
        for (m, dest) in chains {
            let mut row = vec![addrs.clone(), l.port().unwrap_or(0).to_string(), m, dest];
            if prefix {
                row.insert(0, pfx(true, "listener", &l.name));
            }
            t.rows.push(row);
        }
    }
    t
}

/// The selected listeners in istioctl's order (`PrintListenerSummary`): port, then address,
/// then type (`HTTP`, `HTTP+TCP`, `TCP`, …).
fn sorted_listeners<'a>(d: &'a ConfigDump, f: &Filter) -> Vec<&'a Listener> {
    let mut v: Vec<&Listener> = d
        .listeners
        .iter()
        .filter(|l| listener_selected(l, f))
        .collect();
    v.sort_by(|a, b| {
        let addr = |l: &Listener| l.address.as_ref().map(addr_ip).unwrap_or_default();
        (a.port().unwrap_or(0), addr(a), a.protocol()).cmp(&(
            b.port().unwrap_or(0),
            addr(b),
            b.protocol(),
        ))
    });
    v
}

/// Listeners, one row per listener (istioctl 1.6 layout): `ADDRESS  PORT  TYPE`.
pub fn listeners_short(d: &ConfigDump, f: &Filter) -> Table {
    let mut t = Table::new(&["ADDRESS", "PORT", "TYPE"]);
    for l in sorted_listeners(d, f) {
        t.rows.push(vec![
            l.address.as_ref().map(addr_ip).unwrap_or_default(),
            l.port().unwrap_or(0).to_string(),
            l.protocol().to_string(),
        ]);
    }
    t
}

/// Domains without their `:port` twins, joined.
pub fn describe_domains(domains: &[String]) -> String {
    let kept: Vec<&str> = domains
        .iter()
        .map(String::as_str)
        .filter(|d| {
            !d.rsplit_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    kept.join(", ")
}

fn route_selected(rc: &RouteConfig, f: &Filter) -> bool {
    !(f.name.as_deref().is_some_and(|n| n != rc.name)
        || f.port.is_some_and(|p| {
            rc.name != p.to_string() && !rc.name.split('.').any(|x| x == p.to_string())
        }))
}

/// Routes, one row per route: `NAME  VHOST NAME  DOMAINS  MATCH  VIRTUAL SERVICE`.
pub fn routes(d: &ConfigDump, f: &Filter, prefix: bool) -> Table {
    let mut t = Table::new(&["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"]);
    for rc in sorted_route_configs(d, f) {
        let name = if prefix && !rc.name.is_empty() {
            pfx(true, "route", &rc.name)
        } else {
            rc.name.clone()
        };
        for vh in &rc.virtual_hosts {
            let doms = describe_domains(&vh.domains);
            if vh.routes.is_empty() {
                t.rows.push(vec![
                    name.clone(),
                    vh.name.clone(),
                    doms.clone(),
                    String::new(),
                    String::new(),
                ]);
            }
            for r in &vh.routes {
                t.rows.push(vec![
                    name.clone(),
                    vh.name.clone(),
                    doms.clone(),
                    describe_path(&r.path),
                    short_ref(r.istio_config.as_deref()),
                ]);
            }
        }
    }
    t
}

/// The selected route configurations in istioctl's order (`retrieveSortedRouteSlice`): RDS
/// (dynamic) ones first, then static ones, each in the dump's order, with the ones named by a
/// port number (`9080`, `15004`) in ascending numeric order among themselves (istioctl's
/// comparison orders only two numeric names; the others keep their places here).
fn sorted_route_configs<'a>(d: &'a ConfigDump, f: &Filter) -> Vec<&'a RouteConfig> {
    let mut v: Vec<&RouteConfig> = d
        .route_configs
        .iter()
        .filter(|rc| !rc.is_static && route_selected(rc, f))
        .chain(
            d.route_configs
                .iter()
                .filter(|rc| rc.is_static && route_selected(rc, f)),
        )
        .collect();
    let slots: Vec<usize> = (0..v.len())
        .filter(|&i| v[i].name.parse::<u64>().is_ok())
        .collect();
    let mut numeric: Vec<&RouteConfig> = slots.iter().map(|&i| v[i]).collect();
    numeric.sort_by_key(|rc| rc.name.parse::<u64>().unwrap_or(0));
    for (slot, rc) in slots.into_iter().zip(numeric) {
        v[slot] = rc;
    }
    v
}

/// Route configurations (istioctl 1.6 layout): `NAME  VIRTUAL HOSTS` (named ones).
pub fn routes_short(d: &ConfigDump, f: &Filter) -> Table {
    let mut t = Table::new(&["NAME", "VIRTUAL HOSTS"]);
    for rc in sorted_route_configs(d, f)
        .into_iter()
        .filter(|rc| !rc.name.is_empty())
    {
        t.rows
            .push(vec![rc.name.clone(), rc.virtual_hosts.len().to_string()]);
    }
    t
}

/// Endpoints: `NAME  STATUS  OUTLIER CHECK  LOCALITY  CLUSTER`.
pub fn endpoints(d: &ConfigDump, f: &Filter, prefix: bool) -> Table {
    let mut t = Table::new(&["NAME", "STATUS", "OUTLIER CHECK", "LOCALITY", "CLUSTER"]);
    let unix = d.sections.iter().any(|s| s == "ClusterStatuses");
    let mut rows = Vec::new();
    for ce in &d.endpoints {
        if f.fqdn.as_deref().is_some_and(|x| !ce.cluster.contains(x))
            || f.name.as_deref().is_some_and(|x| x != ce.cluster)
        {
            continue;
        }
        for e in &ce.endpoints {
            let addr = match &e.address {
                SocketAddr::Pipe { path } if !unix => path.clone(),
                a => a.to_string(),
            };
            if f.port.is_some_and(|p| e.address.port() != Some(p))
                || f.address
                    .as_deref()
                    .is_some_and(|a| e.address.ip() != Some(a))
                || f.status
                    .as_deref()
                    .is_some_and(|s| !e.health.eq_ignore_ascii_case(s))
            {
                continue;
            }
            rows.push(vec![
                pfx(prefix, "endpoint", &addr),
                e.health.clone(),
                if e.outlier_failed { "FAILED" } else { "OK" }.into(),
                e.locality.clone(),
                ce.cluster.clone(),
            ]);
        }
    }
    rows.sort_by(|a, b| (&a[4], &a[0]).cmp(&(&b[4], &b[0])));
    t.rows = rows;
    t
}

/// Secrets: `RESOURCE NAME  TYPE  STATUS  VALID CERT  SERIAL NUMBER  NOT AFTER  NOT BEFORE
/// [TRUST DOMAIN]`. `now_unix` decides VALID CERT.
pub fn secrets(d: &ConfigDump, f: &Filter, now_unix: i64, prefix: bool) -> Table {
    let spire = d.secrets.iter().any(|s| s.trust_domain.is_some());
    let mut cols = vec![
        "RESOURCE NAME",
        "TYPE",
        "STATUS",
        "VALID CERT",
        "SERIAL NUMBER",
        "NOT AFTER",
        "NOT BEFORE",
    ];
    if spire {
        cols.push("TRUST DOMAIN");
    }
    let mut t = Table::new(&cols);
    for s in d
        .secrets
        .iter()
        .filter(|s| f.name.as_deref().is_none_or(|n| n == s.name))
    {
        let c = s.cert.as_ref();
        let mut row = vec![
            pfx(prefix, "secret", &s.name),
            s.kind.as_str().into(),
            s.status.clone(),
            s.valid_at(now_unix).to_string(),
            c.map(|c| c.serial.clone()).unwrap_or_default(),
            c.map(|c| c.not_after.clone()).unwrap_or_default(),
            c.map(|c| c.not_before.clone()).unwrap_or_default(),
        ];
        if spire {
            row.push(
                s.trust_domain
                    .clone()
                    .or_else(|| c.and_then(|c| c.trust_domain()).map(str::to_string))
                    .unwrap_or_default(),
            );
        }
        t.rows.push(row);
    }
    t
}

/// Bootstrap summary lines `(label, value)`.
pub fn bootstrap_summary(d: &ConfigDump) -> Vec<(String, String)> {
    let Some(b) = &d.bootstrap else {
        return Vec::new();
    };
    vec![
        (
            "Istio Version".into(),
            b.istio_version.clone().unwrap_or_default(),
        ),
        (
            "Istio Proxy Version".into(),
            b.istio_proxy_version.clone().unwrap_or_default(),
        ),
        ("Envoy Version".into(), b.envoy_version.clone()),
    ]
}

/// ECDS: `ECDS NAME  TYPE`.
pub fn ecds(d: &ConfigDump) -> Table {
    let mut t = Table::new(&["ECDS NAME", "TYPE"]);
    for e in &d.ecds {
        t.rows.push(vec![e.name.clone(), e.type_name.clone()]);
    }
    t
}

/// Whether a cluster passes the filter (same rules as [`clusters`]).
pub fn cluster_selected(c: &meshtrace_parsers::configdump::Cluster, f: &Filter) -> bool {
    let (fqdn, port, subset, dir) = match parse_cluster_name(&c.name) {
        Some(ClusterName::Istio {
            direction,
            port,
            subset,
            host,
        }) => (
            host.to_string(),
            port.to_string(),
            if subset.is_empty() { "-" } else { subset }.to_string(),
            direction.as_str().to_string(),
        ),
        _ => (c.name.clone(), "-".into(), "-".into(), "-".into()),
    };
    !(f.fqdn.as_deref().is_some_and(|x| x != fqdn)
        || f.port.is_some_and(|p| p.to_string() != port)
        || f.subset.as_deref().is_some_and(|x| x != subset)
        || f.direction.as_deref().is_some_and(|x| x != dir)
        || f.name.as_deref().is_some_and(|x| x != c.name))
}

/// Whether a listener passes the filter.
pub fn listener_passes(l: &Listener, f: &Filter) -> bool {
    listener_selected(l, f)
}

/// Whether a route configuration passes the filter.
pub fn route_config_passes(rc: &RouteConfig, f: &Filter) -> bool {
    route_selected(rc, f)
}
