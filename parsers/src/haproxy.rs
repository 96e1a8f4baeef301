//! HAProxy's access-log lines, as the OpenShift router writes them: the first hop of a Route
//! (KServe Standard mode on OpenShift AI, any Route in front of a mesh gateway).
//!
//! The OpenShift router is HAProxy. Its access log is off by default; with
//! `spec.logging.access` on the IngressController it writes, through a `logs` sidecar container
//! or to syslog, HAProxy's `option httplog` lines for HTTP (`public` on port 80, `fe_sni` /
//! `fe_no_sni` where it terminates TLS) and `option tcplog` lines for the TLS connections of
//! `public_ssl` (HAProxy configuration manual, "Log formats": HTTP
//! `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq
//! %hr %hs %{+Q}r`, where the captured headers appear only when captures are configured; TCP
//! `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`; HAProxy 1.x wrote
//! `Tq/Tw/Tc/Tr/Tt` in the same places). Before that, whatever carried the line: the sidecar's
//! `2020-05-11T19:11:50.135710+00:00 <host> <host> haproxy[108]: `, a syslog `<134>May 11
//! 19:11:50 haproxy[108]: `, a log store's time.
//!
//! Backends name the Route (`be_http:<namespace>:<route>`, `be_edge_http:…` for edge and
//! re-encrypt, `be_secure:…` for re-encrypt, `be_tcp:…` for passthrough, `openshift_default` when
//! no Route matched) and servers the endpoint (`pod:<pod>:<service>:<port name>:<ip>:<port>`;
//! `<NOSRV>` when none was picked). Pure, bounded, never panics.

use std::net::IpAddr;

/// Values longer than this are cut (at a character boundary).
pub const MAX_VALUE: usize = 512;
/// At most this many `[` are tried as the accept date.
const MAX_BRACKETS: usize = 8;

/// One HAProxy access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterLine {
    /// The accept date as written (`11/May/2020:19:11:50.133`).
    pub time: String,
    /// The same, as Unix milliseconds (HAProxy writes the router's local time, UTC in the
    /// router pod).
    pub time_ms: Option<i64>,
    /// The client's `ip:port`.
    pub client: String,
    /// The frontend (`public`, `fe_sni`, `public_ssl`; `~` after it means TLS).
    pub frontend: String,
    /// The backend (`be_http:<ns>:<route>`, `openshift_default`, …).
    pub backend: String,
    /// The server (`pod:<pod>:<service>:<port name>:<ip>:<port>`), `<NOSRV>` when none.
    pub server: String,
    /// An HTTP line (`option httplog`); else a TCP line (`option tcplog`).
    pub http: bool,
    /// HTTP: `TR/Tw/Tc/Tr/Ta` (ms; -1: the step did not happen). TCP: `Tw/Tc/Tt`.
    pub timers: Vec<i64>,
    /// HTTP status sent to the client (`None` for a TCP line or `-1`).
    pub status: Option<u16>,
    /// Bytes sent to the client.
    pub bytes: Option<u64>,
    /// Session state at disconnection: 4 characters for HTTP, 2 for TCP (`----`, `sH--`, `SC`).
    pub termination: String,
    /// Captured request and response headers, as written between braces.
    pub captures: Vec<String>,
    /// The request line (`GET /path HTTP/1.1`, `<BADREQ>`), HTTP only.
    pub request: Option<String>,
}

impl RouterLine {
    /// The first character of the session state: who ended the session (`-` normally).
    pub fn ended_by(&self) -> char {
        self.termination.chars().next().unwrap_or('-')
    }

    /// The second character: where the session was (`R` request, `Q` queue, `C` connect, `H`
    /// headers, `D` data, `L` last data, `T` tarpit, `-`).
    pub fn phase(&self) -> char {
        self.termination.chars().nth(1).unwrap_or('-')
    }

    /// Did the request fail: a status of 400 or more, or a session that did not end normally
    /// (anything but `-` or a local answer `L` first)?
    pub fn failed(&self) -> bool {
        self.status.is_some_and(|s| s >= 400) || !matches!(self.ended_by(), '-' | 'L')
    }

    /// No server took the request (`<NOSRV>`).
    pub fn no_server(&self) -> bool {
        self.server == "<NOSRV>"
    }

    /// The total time (ms): `Ta` for HTTP, `Tt` for TCP.
    pub fn total_ms(&self) -> Option<i64> {
        self.timers.last().copied().filter(|t| *t >= 0)
    }

    /// The time the server took to send its response headers (`Tr`, HTTP only).
    pub fn response_ms(&self) -> Option<i64> {
        if self.http {
            self.timers.get(3).copied().filter(|t| *t >= 0)
        } else {
            None
        }
    }

    /// The request's method, path and protocol, when the request line has them.
    pub fn method_path(&self) -> Option<(&str, &str)> {
        let mut it = self.request.as_deref()?.split(' ');
        let m = it.next()?;
        let p = it.next()?;
        (!m.is_empty() && p.starts_with('/')).then_some((m, p))
    }

    /// The OpenShift Route behind the backend.
    pub fn route(&self) -> Option<Backend<'_>> {
        Backend::of(&self.backend)
    }

    /// The OpenShift endpoint behind the server.
    pub fn endpoint(&self) -> Option<Endpoint<'_>> {
        Endpoint::of(&self.server)
    }
}

/// An OpenShift router backend: one Route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend<'a> {
    /// `be_http` (plain), `be_edge_http` (edge, and re-encrypt in some versions), `be_secure`
    /// (re-encrypt), `be_tcp` (passthrough).
    pub kind: &'a str,
    /// The Route's namespace.
    pub namespace: &'a str,
    /// The Route's name.
    pub route: &'a str,
}

impl<'a> Backend<'a> {
    /// Read `be_<kind>:<namespace>:<route>`.
    pub fn of(b: &'a str) -> Option<Backend<'a>> {
        let (kind, rest) = b.split_once(':')?;
        let (namespace, route) = rest.split_once(':')?;
        (kind.starts_with("be_") && !namespace.is_empty() && !route.is_empty()).then_some(Backend {
            kind,
            namespace,
            route,
        })
    }

    /// How the Route terminates TLS, by its backend's kind.
    pub fn termination(&self) -> &'static str {
        match self.kind {
            "be_http" => "none (plain HTTP)",
            "be_edge_http" => "edge or re-encrypt",
            "be_secure" => "re-encrypt",
            "be_tcp" => "passthrough",
            _ => "unknown",
        }
    }
}

/// An OpenShift router server: one endpoint of the Route's Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// The pod.
    pub pod: &'a str,
    /// The Service.
    pub service: &'a str,
    /// The endpoint's `ip:port` (IPv6 as written, without brackets).
    pub addr: &'a str,
}

impl<'a> Endpoint<'a> {
    /// Read `pod:<pod>:<service>:<port name>:<ip>:<port>` (the port name may be missing).
    pub fn of(s: &'a str) -> Option<Endpoint<'a>> {
        let rest = s.strip_prefix("pod:")?;
        let (pod, rest) = rest.split_once(':')?;
        let (service, rest) = rest.split_once(':')?;
        // `<port name>:<ip>:<port>` or `<ip>:<port>`; an IPv6 address holds colons itself.
        let addr = match rest.split_once(':') {
            Some((name, after)) if name.parse::<IpAddr>().is_err() && !after.is_empty() => {
                let ip_part = after.rsplit_once(':').map(|(ip, _)| ip)?;
                if ip_part.parse::<IpAddr>().is_ok() {
                    after
                } else {
                    rest
                }
            }
            _ => rest,
        };
        let (ip, port) = addr.rsplit_once(':')?;
        (ip.parse::<IpAddr>().is_ok() && port.parse::<u16>().is_ok()).then_some(Endpoint {
            pod,
            service,
            addr,
        })
    }
}

/// Cut a value at `MAX_VALUE` bytes (a character boundary).
fn cap(s: &str) -> String {
    crate::words::cap(s, MAX_VALUE)
}

/// A proxy or server name as HAProxy allows it (letters, digits, `-`, `_`, `.`, `:`; a TLS
/// frontend ends in `~`), or one of its special servers (`<NOSRV>`, `<STATS>`, …).
fn name_ok(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_uppercase());
    }
    let s = s.strip_suffix('~').unwrap_or(s);
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// `-1`, `+5`, `12`: a timer or a count as HAProxy writes it.
fn number(s: &str) -> Option<i64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    s.parse().ok()
}

/// The accept date's `DD/Mon/YYYY:HH:MM:SS[.mmm]` at the start of `s`; its length and Unix ms.
fn accept_date(s: &str) -> Option<(usize, Option<i64>)> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if !(digits(0..2)
        && b.get(2) == Some(&b'/')
        && b.get(3..6)
            .is_some_and(|m| m.iter().all(u8::is_ascii_alphabetic))
        && b.get(6) == Some(&b'/')
        && digits(7..11)
        && b.get(11) == Some(&b':')
        && digits(12..14)
        && b.get(14) == Some(&b':')
        && digits(15..17)
        && b.get(17) == Some(&b':')
        && digits(18..20))
    {
        return None;
    }
    let mut end = 20;
    if b.get(20) == Some(&b'.') {
        end = 21;
        while end < b.len() && end < 30 && b[end].is_ascii_digit() {
            end += 1;
        }
    }
    let ms = chrono::NaiveDateTime::parse_from_str(s.get(..end)?, "%d/%b/%Y:%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis());
    Some((end, ms))
}

/// Is `s` a client `ip:port` (IPv4, or IPv6 written without brackets)?
fn client_addr(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((ip, port)) => {
            port.parse::<u16>().is_ok()
                && ip
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok()
        }
        None => false,
    }
}

/// Read one HAProxy access-log line (HTTP or TCP), whatever carried it. `None` when the line is
/// not one.
pub fn parse(line: &str) -> Option<RouterLine> {
    let line = line.trim_end_matches(['\r', '\n']);
    // The accept date: a `[` after the client's `ip:port`.
    let mut found = None;
    for (n, at) in memchr::memchr_iter(b'[', line.as_bytes()).enumerate() {
        if n >= MAX_BRACKETS {
            break;
        }
        if at < 2 || line.as_bytes()[at - 1] != b' ' {
            continue;
        }
        let Some((len, ms)) = line.get(at + 1..).and_then(accept_date) else {
            continue;
        };
        let before = &line[..at - 1];
        let client = before.rsplit(' ').next().unwrap_or(before);
        if client_addr(client) && line.as_bytes().get(at + 1 + len) == Some(&b']') {
            found = Some((client, at + 1, len, ms));
            break;
        }
    }
    let (client, date_at, date_len, time_ms) = found?;
    let mut rest = line.get(date_at + date_len + 1..)?.strip_prefix(' ')?;
    // The next space-separated field of `rest`.
    let mut next = || -> Option<&str> {
        let r = rest.trim_start_matches(' ');
        let (field, after) = r.split_once(' ').unwrap_or((r, ""));
        rest = after;
        (!field.is_empty()).then_some(field)
    };
    let frontend = next()?;
    let (backend, server) = next()?.split_once('/')?;
    if !(name_ok(frontend) && name_ok(backend) && name_ok(server)) {
        return None;
    }
    let timers: Vec<i64> = next()?
        .split('/')
        .map(number)
        .collect::<Option<Vec<i64>>>()?;
    let http = match timers.len() {
        5 => true,
        3 => false,
        _ => return None,
    };
    let status = if http { Some(number(next()?)?) } else { None };
    let bytes = number(next()?)?;
    let valid_state = |s: &str| {
        s.len() == if http { 4 } else { 2 }
            && s.bytes().all(|c| c.is_ascii_alphabetic() || c == b'-')
    };
    // HTTP: the persistence cookies (`-` unless the backend uses one), then the state; some
    // formats write one more number (bytes uploaded) before them.
    let termination = if http {
        let mut state = None;
        for i in 0..4 {
            let f = next()?;
            if i >= 2 && valid_state(f) {
                state = Some(f);
                break;
            }
        }
        state?
    } else {
        next().filter(|s| valid_state(s))?
    };
    // `ac/fc/bc/sc/rc` and `sq/bq`: numbers only.
    let counts_ok = |s: &str, n: usize| {
        let parts: Vec<&str> = s.split('/').collect();
        parts.len() == n && parts.iter().all(|x| number(x).is_some())
    };
    if !counts_ok(next()?, 5) || !counts_ok(next()?, 2) {
        return None;
    }
    // HTTP: the captured headers (only when captures are configured), then the request.
    let mut tail = rest.trim_start_matches(' ');
    let mut captures = Vec::new();
    while let Some(inner) = tail.strip_prefix('{') {
        let end = inner.find('}')?;
        captures.push(cap(&inner[..end]));
        tail = inner[end + 1..].trim_start_matches(' ');
        if captures.len() >= 2 {
            break;
        }
    }
    let request = if http {
        let r = tail.trim();
        r.strip_prefix('"')
            .map(|r| cap(r.strip_suffix('"').unwrap_or(r)))
    } else {
        None
    };
    Some(RouterLine {
        time: line[date_at..date_at + date_len].to_string(),
        time_ms,
        client: cap(client),
        frontend: cap(frontend),
        backend: cap(backend),
        server: cap(server),
        http,
        timers,
        status: status.and_then(|s| u16::try_from(s).ok()),
        bytes: u64::try_from(bytes).ok(),
        termination: termination.to_string(),
        captures,
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, http, client, frontend, backend, server, timers, status, state, request)
    type Row<'a> = (
        &'a str,
        bool,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a [i64],
        Option<u16>,
        &'a str,
        Option<&'a str>,
    );

    #[test]
    fn lines_as_haproxy_writes_them() {
        let rows: &[Row] = &[
            // HAProxy configuration manual, "HTTP log format" (captures configured).
            (
                r#"Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#,
                true,
                "10.0.1.2:33317",
                "http-in",
                "static",
                "srv1",
                &[10, 0, 30, 69, 109],
                Some(200),
                "----",
                Some("GET /index.html HTTP/1.1"),
            ),
            // The same manual, "TCP log format".
            (
                "Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0",
                false,
                "10.0.1.2:33313",
                "fnt",
                "bck",
                "srv1",
                &[0, 0, 5007],
                None,
                "--",
                None,
            ),
            // haproxy/haproxy#897: a request timeout, syslog priority first, one more number.
            (
                r#"<131>Oct 14 14:14:16 haproxy[10341]: 127.0.0.1:45396 [14/Oct/2020:14:14:14.713] my-frontend my-frontend/<NOSRV> -1/-1/-1/-1/2002 408 237 0 - - cR-- 1/1/0/0/0 0/0 {} "<BADREQ>""#,
                true,
                "127.0.0.1:45396",
                "my-frontend",
                "my-frontend",
                "<NOSRV>",
                &[-1, -1, -1, -1, 2002],
                Some(408),
                "cR--",
                Some("<BADREQ>"),
            ),
            // rancher/rancher#2414: no server, TCP.
            (
                "Nov  3 22:22:19 localhost haproxy[44]: 10.42.0.1:12558 [03/Nov/2016:22:22:19.363] 900 900/<NOSRV> -1/-1/4 213 SC 0/0/0/0/0 0/0",
                false,
                "10.42.0.1:12558",
                "900",
                "900",
                "<NOSRV>",
                &[-1, -1, 4],
                None,
                "SC",
                None,
            ),
            // The OpenShift router's `logs` sidecar (rsyslog), no captures: a Route timeout.
            (
                r#"2024-11-05T10:20:31.512271+00:00 router-default-5d8c9f7b-x2k4p router-default-5d8c9f7b-x2k4p haproxy[412]: 10.0.140.21:51874 [05/Nov/2024:10:20:01.498] fe_sni~ be_secure:aiproject:granite/pod:granite-predictor-7d9f8-abcde:granite-predictor:https:10.131.0.37:8443 0/0/1/-1/30001 504 194 - - sH-- 3/2/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
                true,
                "10.0.140.21:51874",
                "fe_sni~",
                "be_secure:aiproject:granite",
                "pod:granite-predictor-7d9f8-abcde:granite-predictor:https:10.131.0.37:8443",
                &[0, 0, 1, -1, 30001],
                Some(504),
                "sH--",
                Some("POST /v1/completions HTTP/1.1"),
            ),
            // IPv6 client, `+` on a timer (option logasap).
            (
                r#"::ffff:10.0.0.7:40000 [05/Nov/2024:10:20:01.498] public be_http:ns:r/pod:p:s:8080-tcp:10.128.2.12:8080 0/0/0/4/+4 200 +120 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/2.0""#,
                true,
                "::ffff:10.0.0.7:40000",
                "public",
                "be_http:ns:r",
                "pod:p:s:8080-tcp:10.128.2.12:8080",
                &[0, 0, 0, 4, 4],
                Some(200),
                "----",
                Some("GET / HTTP/2.0"),
            ),
        ];
        for (line, http, client, fe, be, srv, timers, status, state, req) in rows {
            let r = parse(line).unwrap_or_else(|| panic!("not read: {line}"));
            assert_eq!(r.http, *http, "{line}");
            assert_eq!(r.client, *client, "{line}");
            assert_eq!(r.frontend, *fe, "{line}");
            assert_eq!(r.backend, *be, "{line}");
            assert_eq!(r.server, *srv, "{line}");
            assert_eq!(r.timers, *timers, "{line}");
            assert_eq!(r.status, *status, "{line}");
            assert_eq!(r.termination, *state, "{line}");
            assert_eq!(r.request.as_deref(), *req, "{line}");
        }
        let r = parse(rows[0].0).unwrap();
        assert_eq!(r.captures, ["1wt.eu", ""]);
        assert_eq!(r.time, "06/Feb/2009:12:14:14.655");
        assert_eq!(r.time_ms, Some(1_233_922_454_655));
        assert_eq!(r.method_path(), Some(("GET", "/index.html")));
        let r = parse(rows[4].0).unwrap();
        assert_eq!((r.ended_by(), r.phase()), ('s', 'H'));
        assert_eq!(r.response_ms(), None);
        assert_eq!(r.total_ms(), Some(30001));
        assert_eq!(
            r.route(),
            Some(Backend {
                kind: "be_secure",
                namespace: "aiproject",
                route: "granite"
            })
        );
        assert_eq!(
            r.endpoint(),
            Some(Endpoint {
                pod: "granite-predictor-7d9f8-abcde",
                service: "granite-predictor",
                addr: "10.131.0.37:8443"
            })
        );
        assert!(parse(rows[2].0).unwrap().no_server());
    }

    #[test]
    fn other_lines_are_not_read() {
        for line in [
            "",
            "[",
            r#"[2024-06-03T09:00:00.069Z] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 2 1 1 "-" "curl" "id" "a" "10.0.0.1:80" outbound|80||a - 10.0.0.2:80 10.0.0.3:4 - default"#,
            "10.0.0.1:80 [not a date] fe be/srv 0/0/0/0/0 200 1 - - ---- 1/1/1/1/0 0/0",
            "10.0.0.1:80 [06/Feb/2009:12:14:14.655] fe be/srv 0/0/0 200 1 - - ---- 1/1/1/1/0 0/0",
            "10.0.0.1:80 [06/Feb/2009:12:14:14.655] fe be/srv 0/0/0/0/0 200 1 - - xx 1/1/1/1/0 0/0",
            "10.0.0.1:80 [06/Feb/2009:12:14:14.655] fe be/srv 0/0/0/0/0 200 1 - - ---- 1/1/1/0 0/0",
            "10.0.0.1:80 [06/Feb/2009:12:14:14.655] fe be/srv 0/0/0/0/0",
            "host:80 [06/Feb/2009:12:14:14.655] fe be/srv 0/0/5007 212 -- 0/0/0/0/3 0/0",
            "172.16.0.1 - - [06/Feb/2009:12:14:14 +0000] \"GET / HTTP/1.1\" 200 12 \"-\" \"curl\"",
            // Names HAProxy does not allow: a backtick, a pipe.
            "10.0.0.1:80 [06/Feb/2009:12:14:14.655] fe be`x/srv 0/0/5007 212 -- 0/0/0/0/3 0/0",
            "10.0.0.1:80 [06/Feb/2009:12:14:14.655] fe be/s|x 0/0/5007 212 -- 0/0/0/0/3 0/0",
        ] {
            assert_eq!(parse(line), None, "{line}");
        }
    }

    #[test]
    fn openshift_names() {
        assert_eq!(Backend::of("openshift_default"), None);
        assert_eq!(Backend::of("be_tcp:ns:").map(|b| b.route), None);
        assert_eq!(
            Backend::of("be_edge_http:project1:frontend").map(|b| (b.namespace, b.route)),
            Some(("project1", "frontend"))
        );
        // Without a port name, and with an IPv6 endpoint.
        assert_eq!(
            Endpoint::of("pod:p-1:svc:10.1.2.3:8080").map(|e| e.addr),
            Some("10.1.2.3:8080")
        );
        assert_eq!(
            Endpoint::of("pod:p-1:svc:http:fd00::12:8080").map(|e| e.addr),
            Some("fd00::12:8080")
        );
        assert_eq!(Endpoint::of("srv1"), None);
        assert_eq!(Endpoint::of("<NOSRV>"), None);
    }

    #[test]
    fn never_panics_on_cut_lines() {
        let line = r#"2024-11-05T10:20:31.512271+00:00 r r haproxy[412]: 10.0.140.21:51874 [05/Nov/2024:10:20:01.498] fe_sni~ be_secure:aiproject:granite/pod:g:g:https:10.131.0.37:8443 0/0/1/-1/30001 504 194 - - sH-- 3/2/0/0/0 0/0 {a|b} "POST /v1/é HTTP/1.1""#;
        for end in 0..=line.len() {
            if let Some(cut) = line.get(..end) {
                let _ = parse(cut);
            }
        }
        for start in 0..line.len() {
            if let Some(cut) = line.get(start..) {
                let _ = parse(cut);
            }
        }
    }
}
