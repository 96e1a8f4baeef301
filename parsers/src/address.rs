//! Envoy address fields (`%UPSTREAM_HOST%`, `%DOWNSTREAM_REMOTE_ADDRESS%`, `%UPSTREAM_LOCAL_ADDRESS%`, ...): IP sockets, bare IPs, internal listeners and pipes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

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
    if let Some(sock) = ipv4_socket(body.as_bytes()) {
        return Some(Address::Socket(SocketAddr::V4(sock)));
    }
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

/// `a.b.c.d:port` as the standard library reads it, for the usual shape only (four octets and
/// a port in decimal, no leading zeros in an octet): several addresses are read per access-log line, and
/// this is about five times faster than the general parser. Anything else is `None` and goes
/// to the general parser, so what is accepted is exactly what `SocketAddr::from_str` accepts.
fn ipv4_socket(b: &[u8]) -> Option<SocketAddrV4> {
    // The digit at `b[i]`, if there is one there.
    let digit = |i: usize| {
        b.get(i)
            .map(|c| u32::from(c.wrapping_sub(b'0')))
            .filter(|d| *d <= 9)
    };
    let mut i = 0;
    let mut ip = 0u32;
    for sep in [b'.', b'.', b'.', b':'] {
        // One to three digits, no leading zero, at most 255; then the separator.
        let mut octet = digit(i)?;
        i += 1;
        if let Some(d) = digit(i) {
            if octet == 0 {
                return None;
            }
            octet = octet * 10 + d;
            i += 1;
            if let Some(d) = digit(i) {
                octet = octet * 10 + d;
                i += 1;
            }
        }
        if octet > 255 || b.get(i) != Some(&sep) {
            return None;
        }
        ip = ip << 8 | octet;
        i += 1;
    }
    // The port: one to nine digits (leading zeros allowed), at most 65535, to the end.
    let port = b.get(i..).filter(|p| !p.is_empty() && p.len() <= 9)?;
    let mut n = 0u32;
    for &c in port {
        let d = u32::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return None;
        }
        n = n * 10 + d;
    }
    let port = u16::try_from(n).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from_bits(ip), port))
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
    use std::net::Ipv6Addr;

    /// The fast path accepts exactly what the standard parser accepts, with the same value.
    #[test]
    fn ipv4_socket_agrees_with_the_standard_parser() {
        let table = [
            "10.135.0.43:39352",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "1.2.3.4:65536",
            "256.1.1.1:80",
            "01.2.3.4:80",
            "1.2.3.4:080",
            "1.2.3.4:0",
            "1.2.3:80",
            "1.2.3.4.5:80",
            "1.2.3.4:",
            ":80",
            "1.2.3.4",
            "1.2.3.4:80 ",
            " 1.2.3.4:80",
            "1..3.4:80",
            "1.2.3.4:8a",
            "1.2.3.4:123456",
            "1.2.3.4:00",
            "1000.2.3.4:1",
            "[::1]:80",
            "1.2.3.4:+80",
            "+1.2.3.4:80",
            "1.2.3.4:99999",
            "",
        ];
        for t in table {
            assert_eq!(
                ipv4_socket(t.as_bytes()),
                t.parse::<SocketAddrV4>().ok(),
                "{t:?}"
            );
        }
        // Every short string over the characters that matter, against the standard parser
        // (a fast path may refuse what std accepts, never the other way, and never differ).
        let alphabet = b"0129.:";
        let mut buf = Vec::new();
        for n in 0..=7u32 {
            for mut k in 0..(alphabet.len() as u32).pow(n) {
                buf.clear();
                for _ in 0..n {
                    buf.push(alphabet[(k % alphabet.len() as u32) as usize]);
                    k /= alphabet.len() as u32;
                }
                let text = std::str::from_utf8(&buf).unwrap();
                if let Some(fast) = ipv4_socket(&buf) {
                    assert_eq!(Some(fast), text.parse().ok(), "{text:?}");
                }
            }
        }
    }

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
