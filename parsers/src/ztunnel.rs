//! ztunnel's L4 access log (Istio ambient): one line per connection, in its text form
//! (`<ts>\t<level>\taccess\tconnection complete\tsrc.addr=… dst.addr=… error="…"`) or with
//! `LOG_FORMAT=json` (`{"level":…,"time":…,"scope":"access","message":"connection complete",
//! "src.addr":…,"bytes_sent":16,…}`), into a [`Connection`]; and ztunnel's failure vocabulary
//! ([`Failure`]).
//!
//! The key names are ztunnel's own (`src.addr`, `src.workload`, `src.namespace`,
//! `src.identity`, `dst.addr`, `dst.hbone_addr`, `dst.service`, `dst.workload`,
//! `dst.namespace`, `dst.identity`, `direction`, `bytes_sent`, `bytes_recv`, `duration`,
//! `error`). Unknown keys are ignored; a line without any address key is not a connection line.
//! Never panics; every loop is bounded by the line's length and [`MAX_FIELDS`].

use crate::json::{JsonValue, scan_object};
use crate::words::token;

/// At most this many `key=value` fields are read from one line (ztunnel writes about 20).
pub const MAX_FIELDS: usize = 64;
/// At most this many `error=` values are kept (ztunnel writes one or two).
pub const MAX_ERRORS: usize = 4;
/// Longest field value kept (longer values are cut at a character boundary).
pub const MAX_VALUE: usize = 1024;

/// One ztunnel connection line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    /// Timestamp as written (RFC 3339), when the line has one. ztunnel writes it when the
    /// connection is logged: at completion for `connection complete`.
    pub time: Option<String>,
    /// Log level (`info`, `error`, …).
    pub level: String,
    /// The message: `connection complete`, `connection opened`, `connection failed`, ….
    pub message: String,
    /// Source `ip:port` (the application's own connection on the client side; the peer on
    /// the server side).
    pub src_addr: Option<String>,
    /// Source workload (pod) name.
    pub src_workload: Option<String>,
    /// Source namespace.
    pub src_namespace: Option<String>,
    /// Source SPIFFE identity.
    pub src_identity: Option<String>,
    /// Destination `ip:port` ztunnel connected to (`<ip>:15008` for HBONE).
    pub dst_addr: Option<String>,
    /// The address carried inside the HBONE tunnel: what the client asked for (a Service
    /// VIP when sent to a waypoint, the pod `ip:port` otherwise).
    pub dst_hbone_addr: Option<String>,
    /// Destination Service host.
    pub dst_service: Option<String>,
    /// Destination workload (pod) name: the waypoint's pod when sent to a waypoint.
    pub dst_workload: Option<String>,
    /// Destination namespace.
    pub dst_namespace: Option<String>,
    /// Destination SPIFFE identity.
    pub dst_identity: Option<String>,
    /// `outbound` (client side) or `inbound` (server side).
    pub direction: Option<String>,
    /// Bytes sent.
    pub bytes_sent: Option<u64>,
    /// Bytes received.
    pub bytes_recv: Option<u64>,
    /// Connection duration in milliseconds.
    pub duration_ms: Option<u64>,
    /// `error=` values, in order.
    pub errors: Vec<String>,
}

impl Connection {
    /// Is this the client side (`direction="outbound"`)?
    pub fn is_outbound(&self) -> bool {
        self.direction.as_deref() == Some("outbound")
    }

    /// Is this the server side (`direction="inbound"`)?
    pub fn is_inbound(&self) -> bool {
        self.direction.as_deref() == Some("inbound")
    }

    /// Did the connection fail (an `error=` field)?
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The most telling failure among the `error=` values (ztunnel may write a generic one
    /// and then a specific one).
    pub fn failure(&self) -> Option<Failure> {
        self.errors
            .iter()
            .map(|e| Failure::classify(e))
            .max_by_key(Failure::specificity)
    }

    /// The `error=` values joined with `; `.
    pub fn error_text(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| self.errors.join("; "))
    }

    fn set(&mut self, key: &str, value: &str) {
        let v = || Some(cap(value));
        match key {
            "src.addr" => self.src_addr = v(),
            "src.workload" => self.src_workload = v(),
            "src.namespace" => self.src_namespace = v(),
            "src.identity" => self.src_identity = v(),
            "dst.addr" => self.dst_addr = v(),
            "dst.hbone_addr" => self.dst_hbone_addr = v(),
            "dst.service" => self.dst_service = v(),
            "dst.workload" => self.dst_workload = v(),
            "dst.namespace" => self.dst_namespace = v(),
            "dst.identity" => self.dst_identity = v(),
            "direction" => self.direction = v(),
            "bytes_sent" => self.bytes_sent = value.parse().ok(),
            "bytes_recv" => self.bytes_recv = value.parse().ok(),
            "duration" => self.duration_ms = parse_duration_ms(value),
            "error" if self.errors.len() < MAX_ERRORS => self.errors.push(cap(value)),
            "time" | "timestamp" => self.time = v(),
            "level" => self.level = cap(value).to_ascii_lowercase(),
            "message" | "msg" => self.message = cap(value),
            _ => {}
        }
    }

    fn has_address(&self) -> bool {
        self.src_addr.is_some() || self.dst_addr.is_some()
    }
}

/// ztunnel's failure vocabulary (the `error=` value), from its source and the lines users
/// posted (istio/ztunnel#1229, #1273).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `connection closed due to policy rejection: explicitly denied by: <ns>/<name>`: an
    /// AuthorizationPolicy with action DENY matched (enforced by the destination's ztunnel).
    PolicyDenied {
        /// `namespace/name` of the policy (`istio-system/istio_converted_static_strict` is
        /// ztunnel's rendering of a STRICT PeerAuthentication).
        policy: String,
    },
    /// `… policy rejection: allow policies exist, but none allowed`: ALLOW policies select
    /// the destination and none matched the connection.
    NoAllowMatch,
    /// `connection closed due to policy rejection` without more detail.
    PolicyRejected,
    /// `connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008`.
    HboneBlocked,
    /// Another timeout (`deadline has elapsed`, `connection timed out`).
    Timeout,
    /// A TLS handshake failure (`tls error`, certificate errors).
    Tls,
    /// The peer's identity was not the expected one (`identity error`, `identity verification
    /// error`).
    Identity,
    /// `unknown waypoint`: the destination names a waypoint ztunnel does not know.
    UnknownWaypoint,
    /// `no healthy upstream`: no ready endpoint behind the Service.
    NoHealthyUpstream,
    /// ztunnel does not know a workload of the connection: `unknown destination: <ip>`
    /// (inbound, no local workload at that address), `unknown source: <ip>`, `failed to fetch
    /// information about local workload: …` (outbound, the client pod is not in its state yet),
    /// `no valid routing destination for workload: …`. Its workload state (from istiod) lacks
    /// the pod: not enrolled, just (re)created, or the istiod connection is behind.
    UnknownWorkload,
    /// `http status: <code> …`: the other end of the HBONE tunnel answered the CONNECT
    /// with this status (401 = the destination's ztunnel refused it by policy).
    HttpStatus(u16),
    /// `connection refused` (os error 111): nothing listens on the destination port.
    Refused,
    /// `connection reset by peer`.
    Reset,
    /// Anything else (kept verbatim).
    Other,
}

impl Failure {
    /// Classify one `error=` value.
    pub fn classify(e: &str) -> Failure {
        let l = e.to_ascii_lowercase();
        if let Some(i) = l.find("explicitly denied by:") {
            let rest = e.get(i + "explicitly denied by:".len()..).unwrap_or("");
            let policy: String = rest
                .trim()
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ',' && *c != ';' && *c != '"')
                .take(256)
                .collect();
            return Failure::PolicyDenied { policy };
        }
        if l.contains("allow policies exist, but none allowed") {
            return Failure::NoAllowMatch;
        }
        if l.contains("policy rejection") {
            return Failure::PolicyRejected;
        }
        if l.contains("15008") && (l.contains("timed out") || l.contains("networkpolicy")) {
            return Failure::HboneBlocked;
        }
        if l.contains("unknown waypoint") {
            return Failure::UnknownWaypoint;
        }
        if l.contains("no healthy upstream") {
            return Failure::NoHealthyUpstream;
        }
        if l.contains("unknown destination")
            || l.contains("unknown source")
            || l.contains("information about local workload")
            || l.contains("no valid routing destination")
        {
            return Failure::UnknownWorkload;
        }
        if let Some(i) = l.find("http status:") {
            let code: String = l
                .get(i + "http status:".len()..)
                .unwrap_or("")
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .take(3)
                .collect();
            if let Ok(c) = code.parse::<u16>() {
                return Failure::HttpStatus(c);
            }
        }
        if l.contains("identity") {
            return Failure::Identity;
        }
        if l.contains("tls") || l.contains("certificate") || l.contains("handshake") {
            return Failure::Tls;
        }
        if l.contains("connection refused") || l.contains("os error 111") {
            return Failure::Refused;
        }
        if l.contains("reset by peer") || l.contains("os error 104") {
            return Failure::Reset;
        }
        if l.contains("timed out") || l.contains("deadline has elapsed") {
            return Failure::Timeout;
        }
        Failure::Other
    }

    /// A stable short identifier (`policy_denied`, `hbone_blocked`, …).
    pub fn id(&self) -> &'static str {
        match self {
            Failure::PolicyDenied { .. } => "policy_denied",
            Failure::NoAllowMatch => "no_allow_match",
            Failure::PolicyRejected => "policy_rejected",
            Failure::HboneBlocked => "hbone_blocked",
            Failure::Timeout => "timeout",
            Failure::Tls => "tls_error",
            Failure::Identity => "identity_error",
            Failure::UnknownWaypoint => "unknown_waypoint",
            Failure::NoHealthyUpstream => "no_healthy_upstream",
            Failure::UnknownWorkload => "unknown_workload",
            Failure::HttpStatus(_) => "http_status",
            Failure::Refused => "connection_refused",
            Failure::Reset => "connection_reset",
            Failure::Other => "other",
        }
    }

    /// How much a failure says: a relayed `http status` or a bare timeout says less than the
    /// cause named by the side that refused.
    pub fn specificity(&self) -> u8 {
        match self {
            Failure::Other => 0,
            Failure::Timeout | Failure::Reset => 1,
            Failure::HttpStatus(_) => 2,
            Failure::PolicyRejected => 3,
            _ => 4,
        }
    }
}

/// Read a ztunnel line in either form.
pub fn parse(line: &str) -> Option<Connection> {
    if line.trim_start().starts_with('{') {
        parse_json(line)
    } else {
        parse_text(line)
    }
}

/// Read a text line: `[<ts>] <level> access <message> key=value …`, fields separated by tabs
/// (as ztunnel writes them) or spaces (as pasted). What a viewer put before the line (a pod
/// name from a multi-pod tail, a log store's own time and `|`, a pane border) is skipped: the
/// header is found as a level followed by `access` after at most four other words, and the
/// word before the level is the time when it reads as one. `None` when the line is not a ztunnel access line.
pub fn parse_text(line: &str) -> Option<Connection> {
    let mut c = Connection::default();
    let (time, level, mut rest) = header(line)?;
    c.time = time.map(cap);
    c.level = level.to_ascii_lowercase();
    // The message: words up to the first `key=`.
    let mut msg_end = 0;
    let mut cursor = rest;
    let mut words = 0;
    while words < 8 {
        let (w, after) = token(cursor);
        if w.is_empty() || w.contains('=') {
            break;
        }
        msg_end = rest.len() - after.len();
        cursor = after;
        words += 1;
    }
    c.message = cap(rest.get(..msg_end).unwrap_or("").trim());
    if !c.message.starts_with("connection") {
        return None;
    }
    rest = cursor;
    let mut fields = 0;
    while fields < MAX_FIELDS {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let key = &rest[..eq];
        if key.is_empty() || key.contains(char::is_whitespace) {
            // Not `key=value`: skip one word.
            let (_, after) = token(rest);
            rest = after;
            fields += 1;
            continue;
        }
        let after_eq = &rest[eq + 1..];
        let (value, after) = if let Some(q) = after_eq.strip_prefix('"') {
            quoted(q)
        } else if after_eq.starts_with(char::is_whitespace) {
            (String::new(), after_eq)
        } else {
            let (v, a) = token(after_eq);
            (v.to_string(), a)
        };
        c.set(key, &value);
        rest = after;
        fields += 1;
    }
    c.has_address().then_some(c)
}

/// Read a `LOG_FORMAT=json` line. `None` when it is not a ztunnel access line (no
/// `scope: access`-style message about a connection and no address).
pub fn parse_json(line: &str) -> Option<Connection> {
    let mut c = Connection::default();
    let mut scope_access = false;
    let mut fields = 0;
    scan_object(line.trim(), |k, v| {
        fields += 1;
        if fields > MAX_FIELDS {
            return;
        }
        if k == "scope" || k == "target" {
            scope_access |= matches!(&v, JsonValue::Str(s) if s == "access");
            return;
        }
        if let Some(t) = v.into_text() {
            c.set(&k, &t);
        }
    })
    .ok()?;
    (c.has_address() && (scope_access || c.message.starts_with("connection"))).then_some(c)
}

/// Words a line may carry before ztunnel's own (see [`parse_text`]).
const MAX_PREFIX_WORDS: usize = 4;

/// A text line's header: its time (when written), its level, and what follows `access`.
fn header(line: &str) -> Option<(Option<&str>, &str, &str)> {
    let mut before: Option<&str> = None;
    let mut rest = line;
    for _ in 0..=MAX_PREFIX_WORDS + 1 {
        let (w, after) = token(rest);
        if w.is_empty() {
            return None;
        }
        if is_level(w) {
            let (scope, after) = token(after);
            if scope == "access" {
                return Some((before.filter(|t| is_time(t)), w, after));
            }
        }
        before = Some(w);
        rest = after;
    }
    None
}

/// A word that reads as a time: RFC 3339 (`2024-08-22T10:00:00.000000Z`) or a bare clock.
fn is_time(w: &str) -> bool {
    let b = w.as_bytes();
    b.first().is_some_and(u8::is_ascii_digit)
        && b.contains(&b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'.' | b'+'))
}

fn is_level(w: &str) -> bool {
    matches!(
        w.to_ascii_lowercase().as_str(),
        "trace" | "debug" | "info" | "warn" | "warning" | "error"
    )
}

/// A double-quoted value, at most [`MAX_VALUE`] bytes kept.
fn quoted(s: &str) -> (String, &str) {
    crate::words::quoted(s, MAX_VALUE)
}

/// A value cut to [`MAX_VALUE`] bytes.
fn cap(v: &str) -> String {
    crate::words::cap(v, MAX_VALUE)
}

/// `2ms`, `1006ms`, `1.5s`, `300us`, `0ms` → milliseconds.
pub fn parse_duration_ms(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("µs").or_else(|| v.strip_suffix("us")) {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ns") {
        (n, 0.000_001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    let x: f64 = num.trim().parse().ok()?;
    (x.is_finite() && (0.0..1e15).contains(&x)).then(|| (x * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY: &str = "2024-08-22T10:00:00.000000Z\terror\taccess\tconnection complete\tsrc.addr=10.244.1.6:45208 src.workload=\"reviews-v1-6584ddcf65-k78wz\" src.namespace=\"default\" src.identity=\"spiffe://cluster.local/ns/default/sa/bookinfo-reviews\" dst.addr=10.244.1.9:15008 dst.hbone_addr=10.244.1.9:9080 dst.service=\"productpage.default.svc.cluster.local\" dst.workload=\"productpage-v1-d5789fdfb-c5w2c\" dst.namespace=\"default\" dst.identity=\"spiffe://cluster.local/ns/default/sa/bookinfo-productpage\" direction=\"inbound\" bytes_sent=0 bytes_recv=0 duration=\"0ms\" error=\"connection closed due to policy rejection: explicitly denied by: default/deny-reviews\"";

    #[test]
    fn text_line() {
        let c = parse_text(DENY).unwrap();
        assert_eq!(c.time.as_deref(), Some("2024-08-22T10:00:00.000000Z"));
        assert_eq!(c.level, "error");
        assert_eq!(c.message, "connection complete");
        assert_eq!(c.src_addr.as_deref(), Some("10.244.1.6:45208"));
        assert_eq!(c.dst_hbone_addr.as_deref(), Some("10.244.1.9:9080"));
        assert_eq!(
            c.dst_workload.as_deref(),
            Some("productpage-v1-d5789fdfb-c5w2c")
        );
        assert!(c.is_inbound());
        assert_eq!(c.bytes_sent, Some(0));
        assert_eq!(c.duration_ms, Some(0));
        assert_eq!(
            c.failure(),
            Some(Failure::PolicyDenied {
                policy: "default/deny-reviews".into()
            })
        );
    }

    #[test]
    fn spaces_instead_of_tabs_and_no_timestamp() {
        let spaced = DENY.replace('\t', " ");
        assert_eq!(parse_text(&spaced), parse_text(DENY));
        let no_ts = spaced.split_once(' ').unwrap().1;
        let c = parse_text(no_ts).unwrap();
        assert_eq!(c.time, None);
        assert_eq!(c.src_addr.as_deref(), Some("10.244.1.6:45208"));
    }

    /// Shapes of ztunnel lines as users pasted them in public threads: a multi-pod tail's pod
    /// name (istio/istio#52208), a log store's time and `|` (istio/istio#53696), a pane border
    /// (istio/istio#56956), no time at all (istio/ztunnel#1273); each reads as the bare line.
    #[test]
    fn prefixes_before_the_line_are_skipped() {
        let bare = parse_text(DENY).unwrap();
        let spaced = DENY.replace('\t', "    ");
        for prefixed in [
            format!("ztunnel-kk5qg {spaced}"),
            format!("2024-08-22T10:00:00.936Z | {DENY}"),
            format!("\u{2502} {spaced} "),
            format!("[pod/ztunnel-x7k2p/istio-proxy] {DENY}"),
        ] {
            assert_eq!(parse_text(&prefixed).as_ref(), Some(&bare), "{prefixed}");
        }
        let untimed = spaced.split_once("    ").unwrap().1;
        let c = parse_text(&format!("ztunnel-kk5qg {untimed}")).unwrap();
        assert_eq!(c.time, None, "a pod name is not a time");
        assert_eq!(c.failure(), bare.failure());
        // Not ztunnel's: no level before `access`, or `access` too far in.
        assert_eq!(
            parse_text("GET /access connection complete src.addr=1.2.3.4:5"),
            None
        );
        assert_eq!(
            parse_text(&format!("a b c d e f {DENY}")),
            None,
            "more than {MAX_PREFIX_WORDS} words before the line"
        );
    }

    #[test]
    fn json_equals_text() {
        let json = r#"{"level":"error","time":"2024-08-22T10:00:00.000000Z","scope":"access","message":"connection complete","src.addr":"10.244.1.6:45208","src.workload":"reviews-v1-6584ddcf65-k78wz","src.namespace":"default","src.identity":"spiffe://cluster.local/ns/default/sa/bookinfo-reviews","dst.addr":"10.244.1.9:15008","dst.hbone_addr":"10.244.1.9:9080","dst.service":"productpage.default.svc.cluster.local","dst.workload":"productpage-v1-d5789fdfb-c5w2c","dst.namespace":"default","dst.identity":"spiffe://cluster.local/ns/default/sa/bookinfo-productpage","direction":"inbound","bytes_sent":0,"bytes_recv":0,"duration":"0ms","error":"connection closed due to policy rejection: explicitly denied by: default/deny-reviews"}"#;
        assert_eq!(parse(json), parse(DENY));
    }

    #[test]
    fn failures() {
        let f = |s| Failure::classify(s);
        assert_eq!(
            f("connection closed due to policy rejection: allow policies exist, but none allowed"),
            Failure::NoAllowMatch
        );
        assert_eq!(
            f(
                "connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008: deadline has elapsed"
            ),
            Failure::HboneBlocked
        );
        assert_eq!(f("http status: 401 Unauthorized"), Failure::HttpStatus(401));
        assert_eq!(
            f("http status: 503 Service Unavailable"),
            Failure::HttpStatus(503)
        );
        assert_eq!(
            f("unknown waypoint: default/waypoint"),
            Failure::UnknownWaypoint
        );
        assert_eq!(f("no healthy upstream"), Failure::NoHealthyUpstream);
        // istio/istio#56956 and #54889: ztunnel does not know a workload of the connection.
        assert_eq!(
            f("unknown destination: 10.191.231.144"),
            Failure::UnknownWorkload
        );
        assert_eq!(
            f(
                "failed to fetch information about local workload: default.istio-synthetic-tests (fortio-ztunnel-server-7c957c9776-zj8c8)"
            ),
            Failure::UnknownWorkload
        );
        assert_eq!(f("tls error: invalid peer certificate"), Failure::Tls);
        assert_eq!(
            f("identity error: expected spiffe://a got spiffe://b"),
            Failure::Identity
        );
        assert_eq!(
            f("io error: Connection refused (os error 111)"),
            Failure::Refused
        );
        assert_eq!(f("something new"), Failure::Other);
        // Two errors: the specific one wins.
        let c = Connection {
            errors: vec![
                "io error: deadline has elapsed".into(),
                "connection timed out maybe a NetworkPolicy is blocking HBONE port 15008".into(),
            ],
            ..Connection::default()
        };
        assert_eq!(c.failure(), Some(Failure::HboneBlocked));
    }

    #[test]
    fn not_ztunnel() {
        assert_eq!(
            parse_text("2024-01-01T00:00:00Z\tinfo\txds\tconnected"),
            None
        );
        assert_eq!(
            parse_text("2024-01-01T00:00:00Z\tinfo\taccess\tconnection complete"),
            None
        );
        assert_eq!(parse_json(r#"{"level":"info","msg":"hello"}"#), None);
        assert_eq!(parse("{"), None);
        assert_eq!(parse("src.addr=\"unterminated"), None);
        for s in [
            "",
            " ",
            "=",
            "a=b",
            "info access connection x=\"\\",
            "\u{00e9}=\"\u{00e9}",
        ] {
            let _ = parse(s);
        }
    }

    /// Kiali's vendored ztunnel log (real lines of Istio 1.22–1.24): every line is a
    /// connection with both addresses, a direction and byte counts.
    #[test]
    fn kiali_oracle() {
        let log = include_str!("../../testdata/peer/kiali/tests/data/logs/ztunnel.log");
        let mut n = 0;
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let c = parse(line).unwrap_or_else(|| panic!("not read: {line}"));
            assert!(c.src_addr.is_some() && c.dst_addr.is_some(), "{line}");
            assert!(c.is_inbound() || c.is_outbound(), "{line}");
            assert!(c.bytes_sent.is_some() && c.duration_ms.is_some(), "{line}");
            assert!(!c.failed());
            n += 1;
        }
        assert_eq!(n, 28);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10002ms"), Some(10002));
        assert_eq!(parse_duration_ms("1.5s"), Some(1500));
        assert_eq!(parse_duration_ms("NaNms"), None);
        assert_eq!(parse_duration_ms("-1ms"), None);
    }
}
