//! Route configurations: virtual hosts with their domains, routes with path/header matches and
//! actions (cluster, weighted clusters, host rewrite, header edits, timeout, retries, redirect,
//! direct response) and the Istio object each route came from.

use serde::Serialize;
use serde_json::Value;

use super::value::{arr, b, get, os, path, s, strs, u};
use super::{ConfigDump, istio_meta};

/// How a route matches the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum PathMatch {
    /// Path starts with.
    Prefix(String),
    /// Path equals (query string excluded).
    Path(String),
    /// RE2 regex matching the whole path.
    Regex(String),
    /// Prefix on `/`-separated segments (Gateway API `PathPrefix`).
    PathSeparatedPrefix(String),
    /// CONNECT requests.
    Connect,
    /// Something else (path template, extension), described.
    Other(String),
}

/// Kind of a header match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderMatchKind {
    /// Equals.
    Exact,
    /// Starts with.
    Prefix,
    /// Ends with.
    Suffix,
    /// Contains.
    Contains,
    /// RE2 regex, whole value.
    Regex,
    /// Header present (or absent when `invert`).
    Present,
    /// Something else (range, …).
    Other,
}

/// One header matcher of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderMatch {
    /// Header name (`:authority`, `x-user`).
    pub name: String,
    /// Kind.
    pub kind: HeaderMatchKind,
    /// Value or pattern.
    pub value: String,
    /// Match when the matcher does not.
    pub invert: bool,
    /// Case-insensitive string match.
    pub ignore_case: bool,
}

fn read_header_match(h: &Value) -> HeaderMatch {
    let name = s(h, "name").unwrap_or("").to_string();
    let invert = b(h, "invert_match").unwrap_or(false);
    let sm = get(h, "string_match");
    let ignore_case = sm.and_then(|m| b(m, "ignore_case")).unwrap_or(false);
    let pick = |v: &Value| -> Option<(HeaderMatchKind, String)> {
        if let Some(x) = s(v, "exact").or_else(|| s(v, "exact_match")) {
            return Some((HeaderMatchKind::Exact, x.into()));
        }
        if let Some(x) = s(v, "prefix").or_else(|| s(v, "prefix_match")) {
            return Some((HeaderMatchKind::Prefix, x.into()));
        }
        if let Some(x) = s(v, "suffix").or_else(|| s(v, "suffix_match")) {
            return Some((HeaderMatchKind::Suffix, x.into()));
        }
        if let Some(x) = s(v, "contains").or_else(|| s(v, "contains_match")) {
            return Some((HeaderMatchKind::Contains, x.into()));
        }
        if let Some(x) = path(v, &["safe_regex", "regex"])
            .or_else(|| path(v, &["safe_regex_match", "regex"]))
            .and_then(Value::as_str)
            .or_else(|| s(v, "regex_match"))
        {
            return Some((HeaderMatchKind::Regex, x.into()));
        }
        None
    };
    let (kind, value) = sm
        .and_then(pick)
        .or_else(|| pick(h))
        .or_else(|| {
            b(h, "present_match").map(|p| {
                (
                    HeaderMatchKind::Present,
                    if p { "true" } else { "false" }.into(),
                )
            })
        })
        .unwrap_or((HeaderMatchKind::Other, String::new()));
    HeaderMatch {
        name,
        kind,
        value,
        invert,
        ignore_case,
    }
}

/// Which cluster(s) a route sends to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ClusterChoice {
    /// One cluster.
    Cluster(String),
    /// Weighted clusters `(name, weight)`.
    Weighted(Vec<(String, u64)>),
    /// Cluster named by a request header.
    Header(String),
    /// A cluster specifier plugin or none.
    Other,
}

/// What a matched route does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Forward upstream.
    Route {
        /// Target cluster(s).
        cluster: ClusterChoice,
        /// Literal Host rewrite (Istio: `rewrite.authority`, `headers.request.set.Host`).
        host_rewrite: Option<String>,
        /// Host rewritten from the upstream host name.
        auto_host_rewrite: bool,
        /// Path prefix rewrite.
        prefix_rewrite: Option<String>,
        /// Route timeout (`0s` = none).
        timeout: Option<String>,
        /// `retry_on` conditions.
        retry_on: Option<String>,
        /// Retries.
        num_retries: Option<u64>,
        /// Per-try timeout.
        per_try_timeout: Option<String>,
    },
    /// Redirect (`https_redirect`, `host_redirect`, `path_redirect`, …), described.
    Redirect {
        /// Description.
        description: String,
    },
    /// Answer directly.
    DirectResponse {
        /// Status.
        status: u64,
        /// Inline body, if any.
        body: Option<String>,
    },
    /// Non-forwarding / filter action, or nothing recognised.
    Other,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Route name (Istio: `<vs-http-name>` or `default`).
    pub name: Option<String>,
    /// Path match.
    pub path: PathMatch,
    /// Path match is case sensitive (Envoy's default).
    pub case_sensitive: bool,
    /// Header matches (all must match).
    pub headers: Vec<HeaderMatch>,
    /// Query parameter names matched.
    pub query_params: Vec<String>,
    /// Action.
    pub action: Action,
    /// Request headers added/set `(name, value)`.
    pub request_headers_to_add: Vec<(String, String)>,
    /// Request headers removed.
    pub request_headers_to_remove: Vec<String>,
    /// `filter_metadata.istio.config` (the VirtualService), if any.
    pub istio_config: Option<String>,
    /// Decorator operation.
    pub decorator: Option<String>,
}

fn headers_to_add(v: &Value) -> Vec<(String, String)> {
    arr(v, "request_headers_to_add")
        .iter()
        .filter_map(|h| {
            let hv = get(h, "header")?;
            Some((
                s(hv, "key")?.to_string(),
                s(hv, "value").unwrap_or("").to_string(),
            ))
        })
        .collect()
}

fn read_route(r: &Value) -> Route {
    let m = get(r, "match").unwrap_or(&Value::Null);
    let pmatch = if let Some(p) = s(m, "prefix") {
        PathMatch::Prefix(p.into())
    } else if let Some(p) = s(m, "path") {
        PathMatch::Path(p.into())
    } else if let Some(p) = path(m, &["safe_regex", "regex"])
        .and_then(Value::as_str)
        .or_else(|| s(m, "regex"))
    {
        PathMatch::Regex(p.into())
    } else if let Some(p) = s(m, "path_separated_prefix") {
        PathMatch::PathSeparatedPrefix(p.into())
    } else if get(m, "connect_matcher").is_some() {
        PathMatch::Connect
    } else {
        PathMatch::Other(
            m.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
        )
    };
    let action = if let Some(a) = get(r, "route") {
        let cluster = if let Some(c) = s(a, "cluster") {
            ClusterChoice::Cluster(c.into())
        } else if let Some(w) = get(a, "weighted_clusters") {
            ClusterChoice::Weighted(
                arr(w, "clusters")
                    .iter()
                    .map(|c| {
                        (
                            s(c, "name").unwrap_or("").to_string(),
                            u(c, "weight").unwrap_or(0),
                        )
                    })
                    .collect(),
            )
        } else if let Some(h) = s(a, "cluster_header") {
            ClusterChoice::Header(h.into())
        } else {
            ClusterChoice::Other
        };
        let rp = get(a, "retry_policy");
        Action::Route {
            cluster,
            host_rewrite: os(a, "host_rewrite_literal").or_else(|| os(a, "host_rewrite")),
            auto_host_rewrite: b(a, "auto_host_rewrite").unwrap_or(false),
            prefix_rewrite: os(a, "prefix_rewrite"),
            timeout: os(a, "timeout"),
            retry_on: rp.and_then(|p| os(p, "retry_on")),
            num_retries: rp.and_then(|p| u(p, "num_retries")),
            per_try_timeout: rp.and_then(|p| os(p, "per_try_timeout")),
        }
    } else if let Some(rd) = get(r, "redirect") {
        Action::Redirect {
            description: rd
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
        }
    } else if let Some(dr) = get(r, "direct_response") {
        Action::DirectResponse {
            status: u(dr, "status").unwrap_or(0),
            body: path(dr, &["body", "inline_string"])
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    } else {
        Action::Other
    };
    Route {
        name: os(r, "name"),
        path: pmatch,
        case_sensitive: b(m, "case_sensitive").unwrap_or(true),
        headers: arr(m, "headers").iter().map(read_header_match).collect(),
        query_params: arr(m, "query_parameters")
            .iter()
            .filter_map(|q| s(q, "name"))
            .map(str::to_string)
            .collect(),
        action,
        request_headers_to_add: headers_to_add(r),
        request_headers_to_remove: strs(r, "request_headers_to_remove"),
        istio_config: istio_meta(r),
        decorator: get(r, "decorator").and_then(|d| os(d, "operation")),
    }
}

/// A virtual host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualHost {
    /// Name (Istio: `host:port`).
    pub name: String,
    /// Domains matched against Host/:authority.
    pub domains: Vec<String>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// Request headers added on every route of the host.
    pub request_headers_to_add: Vec<(String, String)>,
}

/// A route configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteConfig {
    /// Name (`http.8080`, `https.443.https.gw.ns`; empty for some static/inline ones).
    pub name: String,
    /// Virtual hosts.
    pub virtual_hosts: Vec<VirtualHost>,
    /// Loaded statically (bootstrap) rather than by RDS.
    pub is_static: bool,
    /// `ignore_port_in_host_matching`.
    pub ignore_port_in_host_matching: bool,
}

pub(crate) fn read_route_config(rc: &Value, is_static: bool) -> RouteConfig {
    RouteConfig {
        name: s(rc, "name").unwrap_or("").to_string(),
        virtual_hosts: arr(rc, "virtual_hosts")
            .iter()
            .map(|vh| VirtualHost {
                name: s(vh, "name").unwrap_or("").to_string(),
                domains: strs(vh, "domains"),
                routes: arr(vh, "routes").iter().map(read_route).collect(),
                request_headers_to_add: headers_to_add(vh),
            })
            .collect(),
        is_static,
        ignore_port_in_host_matching: b(rc, "ignore_port_in_host_matching").unwrap_or(false),
    }
}

pub(crate) fn read_section(sec: &Value, at: &str, d: &mut ConfigDump) {
    for (key, is_static) in [
        ("static_route_configs", true),
        ("dynamic_route_configs", false),
    ] {
        for (n, x) in arr(sec, key).iter().enumerate() {
            match get(x, "route_config") {
                Some(rc) if rc.is_object() => {
                    d.route_configs.push(read_route_config(rc, is_static))
                }
                _ => d
                    .warnings
                    .push(format!("{at}.{key}[{n}]: no route_config object; skipped")),
            }
        }
    }
}
