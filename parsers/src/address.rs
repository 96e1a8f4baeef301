//! Envoy address fields (`%UPSTREAM_HOST%`, `%DOWNSTREAM_REMOTE_ADDRESS%`, `%UPSTREAM_LOCAL_ADDRESS%`, ...): IP sockets, bare IPs, internal listeners and pipes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A parsed address field; borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address<'a> {
    /// `10.135.0.43:39352`, `[2001:db8::1]:8080`
    Socket(SocketAddr),
    /// An IP without a port: `10.0.0.1`, `2001:db8::1`, `[2001:db8::1]`
    Ip(IpAddr),
    /// Envoy internal address: `envoy://connect_originate/10.244.0.32:9080` has listener
    /// `connect_originate` and a target; `envoy://internal_client_address/` has no target.
    Internal {
        /// The internal listener's name.
        listener: &'a str,
        /// The address behind it, when there is one.
        target: Option<SocketAddr>,
    },
    /// A unix-domain socket path (`unix:` prefix removed), e.g. `/var/run/envoy.sock` or `@abstract`.
    Pipe(&'a str),
    /// Anything else, as given.
    Other(&'a str),
}

fn parse_internal(rest: &str) -> Option<Address<'_>> {
    let (listener, target) = match rest.split_once('/') {
        Some((l, t)) => (l, t),
        None => (rest, ""),
    };
    if listener.is_empty() {
        return None;
    }
    let target = if target.is_empty() {
        None
    } else {
        Some(target.parse::<SocketAddr>().ok()?)
    };
    Some(Address::Internal { listener, target })
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    // `[v6]` without a port.
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Parses an address field. `None` for `-` or an empty string. A leading `tcp://` (old Envoy docs) is stripped.
pub fn parse_address(s: &str) -> Option<Address<'_>> {
    if s.is_empty() || s == "-" {
        return None;
    }
    let body = s.strip_prefix("tcp://").unwrap_or(s);
    if let Ok(sock) = body.parse::<SocketAddr>() {
        return Some(Address::Socket(sock));
    }
    if let Some(rest) = body.strip_prefix("envoy://") {
        return Some(parse_internal(rest).unwrap_or(Address::Other(s)));
    }
    if let Some(path) = body.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        return Some(if path.is_empty() {
            Address::Other(s)
        } else {
            Address::Pipe(path)
        });
    }
    if body.len() > 1 && (body.starts_with('/') || body.starts_with('@')) {
        return Some(Address::Pipe(body));
    }
    if let Some(ip) = parse_ip(body) {
        return Some(Address::Ip(ip));
    }
    Some(Address::Other(s))
}

impl Address<'_> {
    /// The IP of a socket, a bare IP, or an internal address's target.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            _ => self.socket().map(|s| s.ip()),
        }
    }

    /// The port of a socket or an internal address's target.
    pub fn port(&self) -> Option<u16> {
        self.socket().map(|s| s.port())
    }

    /// The socket address: a [`Address::Socket`], or an internal address's target.
    pub fn socket(&self) -> Option<SocketAddr> {
        match self {
            Address::Socket(s) => Some(*s),
            Address::Internal { target, .. } => *target,
            _ => None,
        }
    }
}

impl fmt::Display for Address<'_> {
    /// Envoy's form: `ip:port`, `[v6]:port`, bare IP, `envoy://listener/target`, the pipe path, or the input.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Socket(s) => write!(f, "{s}"),
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Internal { listener, target } => {
                write!(f, "envoy://{listener}/")?;
                match target {
                    Some(t) => write!(f, "{t}"),
                    None => Ok(()),
                }
            }
            Address::Pipe(p) => f.write_str(p),
            Address::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn sock(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|e| panic!("bad test socket {s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("bad test ip {s}: {e}"))
    }

    #[test]
    fn address_table() {
        // (input, parsed, ip, port)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Option<Address<'_>>, Option<IpAddr>, Option<u16>)> = vec![
            (
                "10.135.0.43:39352",
                Some(Address::Socket(sock("10.135.0.43:39352"))),
                Some(ip("10.135.0.43")),
                Some(39352),
            ),
            (
                "[2001:db8::1]:8080",
                Some(Address::Socket(sock("[2001:db8::1]:8080"))),
                Some(ip("2001:db8::1")),
                Some(8080),
            ),
            (
                "127.0.0.6:0",
                Some(Address::Socket(sock("127.0.0.6:0"))),
                Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6))),
                Some(0),
            ),
            (
                "tcp://10.0.2.1:80",
                Some(Address::Socket(sock("10.0.2.1:80"))),
                Some(ip("10.0.2.1")),
                Some(80),
            ),
            (
                "envoy://connect_originate/10.244.0.32:9080",
                Some(Address::Internal {
                    listener: "connect_originate",
                    target: Some(sock("10.244.0.32:9080")),
                }),
                Some(ip("10.244.0.32")),
                Some(9080),
            ),
            (
                "envoy://internal_client_address/",
                Some(Address::Internal {
                    listener: "internal_client_address",
                    target: None,
                }),
                None,
                None,
            ),
            (
                "envoy://main_internal",
                Some(Address::Internal {
                    listener: "main_internal",
                    target: None,
                }),
                None,
                None,
            ),
            (
                "unix:/var/run/envoy.sock",
                Some(Address::Pipe("/var/run/envoy.sock")),
                None,
                None,
            ),
            (
                "unix:///var/run/envoy.sock",
                Some(Address::Pipe("/var/run/envoy.sock")),
                None,
                None,
            ),
            (
                "/var/run/envoy.sock",
                Some(Address::Pipe("/var/run/envoy.sock")),
                None,
                None,
            ),
            (
                "@envoy_admin",
                Some(Address::Pipe("@envoy_admin")),
                None,
                None,
            ),
            (
                "10.0.0.1",
                Some(Address::Ip(ip("10.0.0.1"))),
                Some(ip("10.0.0.1")),
                None,
            ),
            (
                "2001:db8::1",
                Some(Address::Ip(IpAddr::V6(Ipv6Addr::new(
                    0x2001, 0xdb8, 0, 0, 0, 0, 0, 1,
                )))),
                Some(ip("2001:db8::1")),
                None,
            ),
            (
                "[2001:db8::1]",
                Some(Address::Ip(ip("2001:db8::1"))),
                Some(ip("2001:db8::1")),
                None,
            ),
            ("-", None, None, None),
            ("", None, None, None),
            // Garbage.
            ("envoy://", Some(Address::Other("envoy://")), None, None),
            (
                "envoy:///10.0.0.1:80",
                Some(Address::Other("envoy:///10.0.0.1:80")),
                None,
                None,
            ),
            (
                "envoy://l/not-an-address",
                Some(Address::Other("envoy://l/not-an-address")),
                None,
                None,
            ),
            ("unix:", Some(Address::Other("unix:")), None, None),
            ("tcp://", Some(Address::Other("tcp://")), None, None),
            ("/", Some(Address::Other("/")), None, None),
            ("[", Some(Address::Other("[")), None, None),
            ("[]", Some(Address::Other("[]")), None, None),
            (
                "[2001:db8::1",
                Some(Address::Other("[2001:db8::1")),
                None,
                None,
            ),
            (
                "10.0.0.1:99999",
                Some(Address::Other("10.0.0.1:99999")),
                None,
                None,
            ),
            ("10.0.0.1:", Some(Address::Other("10.0.0.1:")), None, None),
            (
                "10.0.0.256:80",
                Some(Address::Other("10.0.0.256:80")),
                None,
                None,
            ),
            (
                "10.0.0.1:184467440737095516150",
                Some(Address::Other("10.0.0.1:184467440737095516150")),
                None,
                None,
            ),
            (
                "reviews:9080",
                Some(Address::Other("reviews:9080")),
                None,
                None,
            ),
            ("|||||", Some(Address::Other("|||||")), None, None),
            ("ünïcode:80", Some(Address::Other("ünïcode:80")), None, None),
        ];
        for (input, want, want_ip, want_port) in &cases {
            let got = parse_address(input);
            assert_eq!(got, *want, "input {input:?}");
            let got_ip = got.and_then(|a| a.ip());
            let got_port = got.and_then(|a| a.port());
            assert_eq!(got_ip, *want_ip, "ip of {input:?}");
            assert_eq!(got_port, *want_port, "port of {input:?}");
        }
    }

    #[test]
    fn display_round_trip() {
        for input in [
            "10.135.0.43:39352",
            "[2001:db8::1]:8080",
            "envoy://connect_originate/10.244.0.32:9080",
            "envoy://internal_client_address/",
            "/var/run/envoy.sock",
            "10.0.0.1",
            "garbage",
        ] {
            let a = parse_address(input);
            assert_eq!(a.map(|a| a.to_string()).as_deref(), Some(input));
        }
        let a = parse_address("tcp://10.0.2.1:80");
        assert_eq!(a.map(|a| a.to_string()).as_deref(), Some("10.0.2.1:80"));
        let a = parse_address("envoy://connect_originate/10.244.0.32:9080");
        assert_eq!(a.and_then(|a| a.socket()), Some(sock("10.244.0.32:9080")));
        assert_eq!(parse_address("10.0.0.1").and_then(|a| a.socket()), None);
    }
}
