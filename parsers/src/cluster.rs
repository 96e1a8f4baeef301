//! Istio/Envoy upstream cluster names (`%UPSTREAM_CLUSTER%`, `%UPSTREAM_CLUSTER_RAW%`) and Istio's SNI form: direction, port, subset and host.

use std::fmt;

/// Traffic direction encoded in an Istio cluster name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `outbound|...`
    Outbound,
    /// `inbound|...`
    Inbound,
    /// `inbound-vip|...` (ambient waypoints)
    InboundVip,
}

impl Direction {
    /// The name as written in cluster names: `outbound`, `inbound` or `inbound-vip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::InboundVip => "inbound-vip",
        }
    }

    fn from_str(s: &str) -> Option<Self> {
        match s {
            "outbound" => Some(Direction::Outbound),
            "inbound" => Some(Direction::Inbound),
            "inbound-vip" => Some(Direction::InboundVip),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed cluster name; borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterName<'a> {
    /// `direction|port|subset|host` or the SNI form `direction_.port_.subset_.host`.
    Istio {
        /// `inbound` or `outbound`.
        direction: Direction,
        /// The service (or inbound) port.
        port: u16,
        /// `""` when there is no subset.
        subset: &'a str,
        /// `""` when there is no host (e.g. `inbound|8012||`).
        host: &'a str,
    },
    /// `BlackHoleCluster`
    BlackHole,
    /// `PassthroughCluster`
    Passthrough,
    /// `InboundPassthroughCluster`, `InboundPassthroughClusterIpv4`, `InboundPassthroughClusterIpv6`
    InboundPassthrough,
    /// Any other cluster name (with a trailing `;` removed), e.g. `xds-grpc`, `httproute/default/backend/rule/0`.
    Other(&'a str),
}

/// Parses a decimal port: ASCII digits only (no sign), at most 65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_pipe_form(s: &str) -> Option<ClusterName<'_>> {
    // Exactly four `|`-separated parts; found with memchr (names are parsed on every access).
    let pipe = |from: usize| memchr::memchr(b'|', s.as_bytes().get(from..)?).map(|i| from + i);
    let a = pipe(0)?;
    let direction = Direction::from_str(&s[..a])?;
    let b = pipe(a + 1)?;
    let port = parse_port(&s[a + 1..b])?;
    let c = pipe(b + 1)?;
    let subset = &s[b + 1..c];
    if pipe(c + 1).is_some() {
        return None;
    }
    let host = &s[c + 1..];
    Some(ClusterName::Istio {
        direction,
        port,
        subset,
        host,
    })
}

/// Parses a cluster name. `None` for `-`, an empty string or only `;`.
///
/// A trailing `;` (alt stat names) is stripped. Malformed Istio names such as
/// `outbound|99999||x` come back as [`ClusterName::Other`].
pub fn parse_cluster_name(s: &str) -> Option<ClusterName<'_>> {
    let s = s.trim_end_matches(';');
    if s.is_empty() || s == "-" {
        return None;
    }
    Some(match s {
        "BlackHoleCluster" => ClusterName::BlackHole,
        "PassthroughCluster" => ClusterName::Passthrough,
        "InboundPassthroughCluster"
        | "InboundPassthroughClusterIpv4"
        | "InboundPassthroughClusterIpv6" => ClusterName::InboundPassthrough,
        _ => parse_pipe_form(s)
            .or_else(|| {
                parse_istio_sni(s).map(|(direction, port, subset, host)| ClusterName::Istio {
                    direction,
                    port,
                    subset,
                    host,
                })
            })
            .unwrap_or(ClusterName::Other(s)),
    })
}

/// Parses Istio's SNI form `outbound_.80_._.host` -> `(Outbound, 80, "", host)` and
/// `outbound_.9080_.v1_.reviews.default.svc.cluster.local` -> `(Outbound, 9080, "v1", host)`.
/// A subset written as `_` also means none. A plain DNS SNI returns `None`; so does an empty host.
pub fn parse_istio_sni(s: &str) -> Option<(Direction, u16, &str, &str)> {
    let mut parts = s.splitn(4, "_.");
    let direction = Direction::from_str(parts.next()?)?;
    let port = parse_port(parts.next()?)?;
    let subset = parts.next()?;
    let host = parts.next()?;
    if host.is_empty() {
        return None;
    }
    let subset = if subset == "_" { "" } else { subset };
    Some((direction, port, subset, host))
}

impl ClusterName<'_> {
    /// The service host of an Istio cluster, if it has one.
    pub fn host(&self) -> Option<&str> {
        match self {
            ClusterName::Istio { host, .. } if !host.is_empty() => Some(host),
            _ => None,
        }
    }

    /// The service port of an Istio cluster.
    pub fn port(&self) -> Option<u16> {
        match self {
            ClusterName::Istio { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// The subset of an Istio cluster, if it has one.
    pub fn subset(&self) -> Option<&str> {
        match self {
            ClusterName::Istio { subset, .. } if !subset.is_empty() => Some(subset),
            _ => None,
        }
    }

    /// The direction of an Istio cluster.
    pub fn direction(&self) -> Option<Direction> {
        match self {
            ClusterName::Istio { direction, .. } => Some(*direction),
            _ => None,
        }
    }

    /// Whether the cluster carries inbound traffic (`inbound`, `inbound-vip`, `InboundPassthroughCluster*`).
    pub fn is_inbound(&self) -> bool {
        matches!(
            self,
            ClusterName::Istio {
                direction: Direction::Inbound | Direction::InboundVip,
                ..
            } | ClusterName::InboundPassthrough
        )
    }
}

impl fmt::Display for ClusterName<'_> {
    /// Canonical form: `direction|port|subset|host` for Istio clusters (also for ones parsed from
    /// the SNI form), `BlackHoleCluster`, `PassthroughCluster`, `InboundPassthroughCluster`, or the name as given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl ClusterName<'_> {
    /// Append the [`Display`](fmt::Display) form to `out` without the formatting machinery
    /// (hop labels are built for every record explained).
    pub fn push_to(&self, out: &mut String) {
        // Writing to a `String` cannot fail.
        let _ = self.write_to(out);
    }

    /// The [`Display`](fmt::Display) form, piece by piece.
    fn write_to<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        match self {
            ClusterName::Istio {
                direction,
                port,
                subset,
                host,
            } => {
                let mut digits = [0u8; 5];
                w.write_str(direction.as_str())?;
                w.write_char('|')?;
                w.write_str(decimal(*port, &mut digits))?;
                w.write_char('|')?;
                w.write_str(subset)?;
                w.write_char('|')?;
                w.write_str(host)
            }
            ClusterName::BlackHole => w.write_str("BlackHoleCluster"),
            ClusterName::Passthrough => w.write_str("PassthroughCluster"),
            ClusterName::InboundPassthrough => w.write_str("InboundPassthroughCluster"),
            ClusterName::Other(s) => w.write_str(s),
        }
    }
}

/// `n` in decimal, written into the end of `buf`.
fn decimal(mut n: u16, buf: &mut [u8; 5]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// The Gateway API route kinds Envoy Gateway names its clusters and routes after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `httproute/…` (HTTPRoute)
    Http,
    /// `grpcroute/…` (GRPCRoute)
    Grpc,
    /// `tcproute/…` (TCPRoute)
    Tcp,
    /// `tlsroute/…` (TLSRoute)
    Tls,
    /// `udproute/…` (UDPRoute)
    Udp,
}

impl RouteKind {
    /// The Kubernetes kind: `HTTPRoute`, `GRPCRoute`, `TCPRoute`, `TLSRoute`, `UDPRoute`.
    pub fn kind(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
            RouteKind::Tcp => "TCPRoute",
            RouteKind::Tls => "TLSRoute",
            RouteKind::Udp => "UDPRoute",
        }
    }

    fn from_prefix(s: &str) -> Option<Self> {
        Some(match s {
            "httproute" => RouteKind::Http,
            "grpcroute" => RouteKind::Grpc,
            "tcproute" => RouteKind::Tcp,
            "tlsroute" => RouteKind::Tls,
            "udproute" => RouteKind::Udp,
            _ => return None,
        })
    }
}

/// A Gateway API route rule named by an Envoy Gateway cluster (`httproute/<ns>/<name>/rule/<i>`)
/// or route (`httproute/<ns>/<name>/rule/<i>/match/<j>/<host>`); borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayRoute<'a> {
    /// HTTPRoute, GRPCRoute, …
    pub kind: RouteKind,
    /// The route's namespace.
    pub namespace: &'a str,
    /// The route's name.
    pub name: &'a str,
    /// The 0-based index of the rule in `spec.rules`, when named.
    pub rule: Option<u32>,
    /// The 0-based index of the match in the rule's `matches`, when named (route names only).
    pub match_index: Option<u32>,
}

impl fmt::Display for GatewayRoute<'_> {
    /// `HTTPRoute ns/name rule 0` (and ` match 1` when known).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.kind(), self.namespace, self.name)?;
        if let Some(r) = self.rule {
            write!(f, " rule {r}")?;
        }
        if let Some(m) = self.match_index {
            write!(f, " match {m}")?;
        }
        Ok(())
    }
}

/// Kubernetes object names: lower-case letters, digits, `-` and `.`, at most 253 bytes.
fn is_k8s_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn parse_index(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses Envoy Gateway's cluster and route names: `httproute/<ns>/<name>/rule/<i>` (clusters;
/// `grpcroute/`, `tcproute/`, `tlsroute/`, `udproute/` alike) and
/// `httproute/<ns>/<name>/rule/<i>/match/<j>/<host>` (route names). A trailing `;` is ignored.
/// `None` for any other name, including Istio's.
pub fn parse_gateway_route(s: &str) -> Option<GatewayRoute<'_>> {
    let s = s.trim_end_matches(';');
    let mut parts = s.split('/');
    let kind = RouteKind::from_prefix(parts.next()?)?;
    let namespace = parts.next().filter(|p| is_k8s_name(p))?;
    let name = parts.next().filter(|p| is_k8s_name(p))?;
    let mut route = GatewayRoute {
        kind,
        namespace,
        name,
        rule: None,
        match_index: None,
    };
    match parts.next() {
        None => return Some(route),
        Some("rule") => route.rule = Some(parse_index(parts.next()?)?),
        Some(_) => return None,
    }
    match parts.next() {
        None => Some(route),
        Some("match") => {
            route.match_index = Some(parse_index(parts.next()?)?);
            // What follows (the host with `.` written `_`, or `*`) is not needed.
            Some(route)
        }
        Some(_) => None,
    }
}

impl<'a> ClusterName<'a> {
    /// The Gateway API route rule an Envoy Gateway cluster is named after
    /// (`httproute/<ns>/<name>/rule/<i>`), if it is one.
    pub fn gateway_route(&self) -> Option<GatewayRoute<'a>> {
        match self {
            ClusterName::Other(s) => parse_gateway_route(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::*;
    use super::*;

    /// The pipe form as `split('|')` reads it: the oracle of the memchr version.
    fn pipe_form_by_split(s: &str) -> Option<ClusterName<'_>> {
        let mut parts = s.split('|');
        let direction = Direction::from_str(parts.next()?)?;
        let port = parse_port(parts.next()?)?;
        let subset = parts.next()?;
        let host = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        Some(ClusterName::Istio {
            direction,
            port,
            subset,
            host,
        })
    }

    #[test]
    fn pipe_form_agrees_with_splitting() {
        let table = [
            "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            "inbound|8012||",
            "inbound-vip|80|http|x.y.svc.cluster.local",
            "outbound|80||a|b",
            "outbound|80|",
            "outbound|80",
            "outbound||x|y",
            "outbound|99999||x",
            "outbound|80||",
            "|||",
            "outbound|8|0|",
            "outbound|80|é|hôte",
        ];
        for s in table {
            assert_eq!(parse_pipe_form(s), pipe_form_by_split(s), "{s:?}");
        }
        // Every string of up to 6 characters over pieces that matter.
        let pieces = ["outbound", "inbound", "|", "8", "0", "x", "é"];
        let mut strings = vec![String::new()];
        for _ in 0..6 {
            let mut next = Vec::new();
            for s in &strings {
                for p in pieces {
                    next.push(format!("{s}{p}"));
                }
            }
            for s in &next {
                assert_eq!(parse_pipe_form(s), pipe_form_by_split(s), "{s:?}");
            }
            strings = next;
        }
    }

    #[test]
    fn pushed_names_are_their_display() {
        let names = [
            istio(Direction::Outbound, 80, "", "a.b.svc.cluster.local"),
            istio(Direction::Inbound, 8012, "", ""),
            istio(Direction::InboundVip, 0, "v1", "x"),
            istio(Direction::Outbound, 65535, "v2", "é"),
            istio(Direction::Outbound, 9, "", "h"),
            istio(Direction::Outbound, 10, "", "h"),
            ClusterName::BlackHole,
            ClusterName::Passthrough,
            ClusterName::InboundPassthrough,
            ClusterName::Other("httproute/default/r/rule/0"),
        ];
        for c in names {
            let mut pushed = String::from(">");
            c.push_to(&mut pushed);
            assert_eq!(pushed, format!(">{c}"));
        }
        assert_eq!(
            istio(Direction::Outbound, 65535, "", "h").to_string(),
            "outbound|65535||h"
        );
        assert_eq!(
            istio(Direction::Outbound, 0, "", "h").to_string(),
            "outbound|0||h"
        );
    }

    fn istio<'a>(
        direction: Direction,
        port: u16,
        subset: &'a str,
        host: &'a str,
    ) -> ClusterName<'a> {
        ClusterName::Istio {
            direction,
            port,
            subset,
            host,
        }
    }

    #[test]
    fn cluster_table() {
        // (input, parsed, canonical display)
        let cases: &[(&str, Option<ClusterName<'_>>, &str)] = &[
            (
                "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
                Some(istio(
                    Outbound,
                    80,
                    "",
                    "knative-local-gateway.istio-system.svc.cluster.local",
                )),
                "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
            ),
            (
                "outbound|9080|v1|reviews.default.svc.cluster.local",
                Some(istio(
                    Outbound,
                    9080,
                    "v1",
                    "reviews.default.svc.cluster.local",
                )),
                "outbound|9080|v1|reviews.default.svc.cluster.local",
            ),
            (
                "inbound|8012||",
                Some(istio(Inbound, 8012, "", "")),
                "inbound|8012||",
            ),
            (
                "inbound|8000||httpbin.foo.svc.cluster.local",
                Some(istio(Inbound, 8000, "", "httpbin.foo.svc.cluster.local")),
                "inbound|8000||httpbin.foo.svc.cluster.local",
            ),
            (
                "inbound-vip|9080|http|details.bookinfo.svc.cluster.local",
                Some(istio(
                    InboundVip,
                    9080,
                    "http",
                    "details.bookinfo.svc.cluster.local",
                )),
                "inbound-vip|9080|http|details.bookinfo.svc.cluster.local",
            ),
            (
                "outbound|9080|v1|reviews.default.svc.cluster.local;",
                Some(istio(
                    Outbound,
                    9080,
                    "v1",
                    "reviews.default.svc.cluster.local",
                )),
                "outbound|9080|v1|reviews.default.svc.cluster.local",
            ),
            (
                "outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local",
                Some(istio(
                    Outbound,
                    80,
                    "",
                    "knative-local-gateway.istio-system.svc.cluster.local",
                )),
                "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
            ),
            (
                "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
                Some(istio(
                    Outbound,
                    9080,
                    "v1",
                    "reviews.default.svc.cluster.local",
                )),
                "outbound|9080|v1|reviews.default.svc.cluster.local",
            ),
            (
                "outbound|0||x",
                Some(istio(Outbound, 0, "", "x")),
                "outbound|0||x",
            ),
            (
                "outbound|65535||x",
                Some(istio(Outbound, 65535, "", "x")),
                "outbound|65535||x",
            ),
            (
                "BlackHoleCluster",
                Some(ClusterName::BlackHole),
                "BlackHoleCluster",
            ),
            (
                "BlackHoleCluster;",
                Some(ClusterName::BlackHole),
                "BlackHoleCluster",
            ),
            (
                "PassthroughCluster",
                Some(ClusterName::Passthrough),
                "PassthroughCluster",
            ),
            (
                "InboundPassthroughClusterIpv4",
                Some(ClusterName::InboundPassthrough),
                "InboundPassthroughCluster",
            ),
            (
                "InboundPassthroughClusterIpv6",
                Some(ClusterName::InboundPassthrough),
                "InboundPassthroughCluster",
            ),
            (
                "InboundPassthroughCluster",
                Some(ClusterName::InboundPassthrough),
                "InboundPassthroughCluster",
            ),
            (
                "prometheus_stats",
                Some(ClusterName::Other("prometheus_stats")),
                "prometheus_stats",
            ),
            ("xds-grpc", Some(ClusterName::Other("xds-grpc")), "xds-grpc"),
            ("agent", Some(ClusterName::Other("agent")), "agent"),
            (
                "httproute/default/backend/rule/0",
                Some(ClusterName::Other("httproute/default/backend/rule/0")),
                "httproute/default/backend/rule/0",
            ),
            ("-", None, ""),
            ("", None, ""),
            (";", None, ""),
            ("-;", None, ""),
            // Garbage.
            (
                "outbound|99999||x",
                Some(ClusterName::Other("outbound|99999||x")),
                "outbound|99999||x",
            ),
            (
                "outbound|+80||x",
                Some(ClusterName::Other("outbound|+80||x")),
                "outbound|+80||x",
            ),
            (
                "outbound|||x",
                Some(ClusterName::Other("outbound|||x")),
                "outbound|||x",
            ),
            (
                "outbound|80|x",
                Some(ClusterName::Other("outbound|80|x")),
                "outbound|80|x",
            ),
            (
                "outbound|80||x|y",
                Some(ClusterName::Other("outbound|80||x|y")),
                "outbound|80||x|y",
            ),
            (
                "Outbound|80||x",
                Some(ClusterName::Other("Outbound|80||x")),
                "Outbound|80||x",
            ),
            ("|||||", Some(ClusterName::Other("|||||")), "|||||"),
            ("|||", Some(ClusterName::Other("|||")), "|||"),
            (
                "outbound_.80_._.",
                Some(ClusterName::Other("outbound_.80_._.")),
                "outbound_.80_._.",
            ),
            (
                "outbound_.99999_._.x",
                Some(ClusterName::Other("outbound_.99999_._.x")),
                "outbound_.99999_._.x",
            ),
            (
                "outbound|184467440737095516150||x",
                Some(ClusterName::Other("outbound|184467440737095516150||x")),
                "outbound|184467440737095516150||x",
            ),
            (
                "outbound|80||héllo.ü",
                Some(istio(Outbound, 80, "", "héllo.ü")),
                "outbound|80||héllo.ü",
            ),
            ("ünïcode", Some(ClusterName::Other("ünïcode")), "ünïcode"),
            ("[", Some(ClusterName::Other("[")), "["),
        ];
        for (input, want, display) in cases {
            let got = parse_cluster_name(input);
            assert_eq!(got, *want, "input {input:?}");
            if let Some(c) = got {
                assert_eq!(c.to_string(), *display, "display of {input:?}");
                // The canonical form parses back to the same value.
                assert_eq!(
                    parse_cluster_name(&c.to_string()),
                    Some(c),
                    "reparse {input:?}"
                );
            }
        }
    }

    #[test]
    fn accessors() {
        let c = parse_cluster_name("outbound|9080|v1|reviews.default.svc.cluster.local");
        let c = c.unwrap_or(ClusterName::BlackHole);
        assert_eq!(c.host(), Some("reviews.default.svc.cluster.local"));
        assert_eq!(c.port(), Some(9080));
        assert_eq!(c.subset(), Some("v1"));
        assert_eq!(c.direction(), Some(Outbound));
        assert!(!c.is_inbound());

        let c = parse_cluster_name("inbound|8012||").unwrap_or(ClusterName::BlackHole);
        assert_eq!(c.host(), None);
        assert_eq!(c.subset(), None);
        assert_eq!(c.port(), Some(8012));
        assert!(c.is_inbound());

        assert!(istio(InboundVip, 1, "", "h").is_inbound());
        assert!(ClusterName::InboundPassthrough.is_inbound());
        assert!(!ClusterName::Passthrough.is_inbound());
        assert!(!ClusterName::BlackHole.is_inbound());
        assert!(!ClusterName::Other("inbound").is_inbound());
        assert_eq!(ClusterName::Other("x").host(), None);
        assert_eq!(ClusterName::BlackHole.port(), None);
    }

    #[test]
    fn sni_table() {
        type Sni = Option<(Direction, u16, &'static str, &'static str)>;
        let cases: &[(&str, Sni)] = &[
            (
                "outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local",
                Some((
                    Outbound,
                    80,
                    "",
                    "knative-local-gateway.istio-system.svc.cluster.local",
                )),
            ),
            (
                "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
                Some((Outbound, 9080, "v1", "reviews.default.svc.cluster.local")),
            ),
            ("outbound_.80_.__.h", Some((Outbound, 80, "", "h"))),
            ("inbound_.8080_._.h", Some((Inbound, 8080, "", "h"))),
            ("outbound_.80_._.a_.b", Some((Outbound, 80, "", "a_.b"))),
            ("reviews.default.svc.cluster.local", None),
            ("example.com", None),
            ("outbound|80||x", None),
            ("outbound_.80_._.", None),
            ("outbound_.80", None),
            ("outbound_.x_._.h", None),
            ("outbound_.99999_._.h", None),
            ("_._._.", None),
            ("", None),
            ("-", None),
            ("ü_.80_._.h", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_istio_sni(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn gateway_route_table() {
        use RouteKind::*;
        let r = |kind, ns, name, rule, m| GatewayRoute {
            kind,
            namespace: ns,
            name,
            rule,
            match_index: m,
        };
        // (input, parsed): cluster and route names as Envoy Gateway writes them
        // (testdata/peer/envoy-gateway and its proxy-accesslog docs).
        let cases: &[(&str, Option<GatewayRoute<'_>>)] = &[
            (
                "httproute/default/backend/rule/0",
                Some(r(Http, "default", "backend", Some(0), None)),
            ),
            (
                "httproute/default/backend/rule/0/match/0/www_example_com",
                Some(r(Http, "default", "backend", Some(0), Some(0))),
            ),
            (
                "httproute/llm/qwen-route/rule/12/match/3/*",
                Some(r(Http, "llm", "qwen-route", Some(12), Some(3))),
            ),
            (
                "grpcroute/default/yages/rule/1",
                Some(r(Grpc, "default", "yages", Some(1), None)),
            ),
            ("tcproute/default/tcp-app-1/rule/-1", None),
            (
                "tcproute/default/tcp-app-1",
                Some(r(Tcp, "default", "tcp-app-1", None, None)),
            ),
            (
                "tlsroute/default/tls-passthrough/rule/0;",
                Some(r(Tls, "default", "tls-passthrough", Some(0), None)),
            ),
            (
                "udproute/default/coredns/rule/0",
                Some(r(Udp, "default", "coredns", Some(0), None)),
            ),
            ("httproute/default", None),
            ("httproute//backend/rule/0", None),
            ("httproute/Default/backend/rule/0", None),
            ("httproute/default/backend/rule/x", None),
            ("httproute/default/backend/rule/99999999999", None),
            ("httproute/default/backend/rules/0", None),
            ("httproute/default/backend/rule/0/extra", None),
            ("outbound|80||a.b.svc.cluster.local", None),
            ("ingressroute/default/backend/rule/0", None),
            ("", None),
            ("/", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_gateway_route(input), *want, "{input:?}");
        }
        let c = parse_cluster_name("httproute/default/backend/rule/0").unwrap();
        assert_eq!(
            c.gateway_route().map(|g| g.to_string()),
            Some("HTTPRoute default/backend rule 0".to_string())
        );
        assert_eq!(
            parse_cluster_name("outbound|80||x").and_then(|c| c.gateway_route()),
            None
        );
    }
}
