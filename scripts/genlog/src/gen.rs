//! The generator itself, shared by the `genlog` binary and meshtrace's out-of-order tests
//! (`tests/it/disorder.rs` includes this file as a module): standard library only.
//!
//! Two modes. [`write_ordered`]: one log whose lines are in perfect time order (the project's
//! original benchmark data). [`Envoy`]: logs as Envoy writes them — each proxy appends a line
//! when a request *ends*, stamped with its *start* time; every worker thread flushes its buffer
//! once a second, so lines of different workers interleave within a second; long-lived streamed
//! requests, long TCP connections and slow model errors end up to ten minutes after they start;
//! each proxy has its own log (ingress gateway, activator, three predictor replicas) and the
//! caller concatenates them or writes them apart. The failure mix is a parameter, and
//! [`Truth`] counts exactly what was written: client requests, failed ones per cause (with
//! meshtrace's cause ids), probes and lines.

#![allow(dead_code)]

use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::io::{self, Write};

const GATEWAY: &str = "10.135.0.43";
const ACTIVATOR: &str = "10.135.0.44";
const PREDICTOR: &str = "10.133.2.13";
const FEATURE_STORE: &str = "10.133.3.7";
const FEATURE_STORE_CLUSTER: &str = "outbound|9000||feature-store.aiproject.svc.cluster.local";
const VIP: &str = "172.31.58.48:80";
const LOCAL_GW_CLUSTER: &str = "outbound|80||knative-local-gateway.istio-system.svc.cluster.local";
const PRED_CLUSTER: &str = "outbound|80||test-predictor-00001.aiproject.svc.cluster.local";
const PRIV_CLUSTER: &str = "outbound|80||test-predictor-00001-private.aiproject.svc.cluster.local";
const LOCAL_GW_SNI: &str = "outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local";
const PRED_SNI: &str = "outbound_.80_._.test-predictor-00001.aiproject.svc.cluster.local";
const PRIV_SNI: &str = "outbound_.80_._.test-predictor-00001-private.aiproject.svc.cluster.local";
const AUTHORITY: &str = "test-predictor.aiproject.svc.cluster.local";
const EXTERNAL_SNI: &str = "test-aiproject.apps.mycluster.example.com";
const TLS_DETAILS: &str = "upstream_reset_before_response_started{remote_connection_failure,TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end}";
const TLS_REASON: &str =
    "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end";
const CONNECT_DETAILS: &str =
    "upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}";
const RBAC_DETAILS: &str =
    "rbac_access_denied_matched_policy[ns[knative-serving]-policy[activator-authz]-rule[0]]";
pub const DEFAULT_TRACE_ID: &str = "7e5f3c1a-0b9d-4c2e-9a6f-5d4b3c2a1f00";
/// 2024-06-03T09:00:00Z in milliseconds.
const EPOCH_MS: i64 = 1_717_405_200_000;

/// splitmix64: small, fast, and the same on every platform.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn port(&mut self) -> u16 {
        self.range(32768, 60999) as u16
    }
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            8 + (b >> 62),
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }
}

/// One access-log record; `None` is Envoy's unset value (`-` in TEXT, null in JSON).
#[derive(Clone, Default)]
struct Rec {
    /// Which hop of the path logged it (1 ingress gateway … 5 predictor inbound); not written.
    hop: u8,
    start_ms: i64,
    method: Option<&'static str>,
    path: Option<&'static str>,
    protocol: Option<&'static str>,
    status: u16,
    flags: &'static str,
    details: Option<&'static str>,
    transport_failure: Option<&'static str>,
    rx: u64,
    tx: u64,
    duration: u64,
    ust: Option<u64>,
    xff: Option<String>,
    user_agent: Option<&'static str>,
    request_id: Option<String>,
    authority: Option<String>,
    upstream_host: Option<String>,
    cluster: Option<&'static str>,
    upstream_local: Option<String>,
    downstream_local: String,
    downstream_remote: String,
    sni: Option<&'static str>,
    route: Option<&'static str>,
}

fn time(ms: i64, out: &mut String) {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    );
}

fn text(r: &Rec, out: &mut String) {
    fn opt(v: Option<&str>) -> &str {
        v.unwrap_or("-")
    }
    out.push('[');
    time(r.start_ms, out);
    let _ = writeln!(
        out,
        "] \"{} {} {}\" {} {} {} - \"{}\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} {} {} {} {} {}",
        opt(r.method),
        opt(r.path),
        opt(r.protocol),
        r.status,
        r.flags,
        opt(r.details),
        opt(r.transport_failure),
        r.rx,
        r.tx,
        r.duration,
        r.ust.map_or("-".to_string(), |v| v.to_string()),
        opt(r.xff.as_deref()),
        opt(r.user_agent),
        opt(r.request_id.as_deref()),
        opt(r.authority.as_deref()),
        opt(r.upstream_host.as_deref()),
        opt(r.cluster),
        opt(r.upstream_local.as_deref()),
        r.downstream_local,
        r.downstream_remote,
        opt(r.sni),
        opt(r.route),
    );
}

fn json(r: &Rec, out: &mut String) {
    fn s(out: &mut String, key: &str, v: Option<&str>, first: bool) {
        if !first {
            out.push(',');
        }
        match v {
            // The generated values need no escaping.
            Some(v) => {
                let _ = write!(out, "\"{key}\":\"{v}\"");
            }
            None => {
                let _ = write!(out, "\"{key}\":null");
            }
        }
    }
    fn n(out: &mut String, key: &str, v: u64) {
        let _ = write!(out, ",\"{key}\":{v}");
    }
    out.push('{');
    s(out, "authority", r.authority.as_deref(), true);
    n(out, "bytes_received", r.rx);
    n(out, "bytes_sent", r.tx);
    s(out, "connection_termination_details", None, false);
    s(
        out,
        "downstream_local_address",
        Some(&r.downstream_local),
        false,
    );
    s(
        out,
        "downstream_remote_address",
        Some(&r.downstream_remote),
        false,
    );
    n(out, "duration", r.duration);
    s(out, "method", r.method, false);
    s(out, "path", r.path, false);
    s(out, "protocol", r.protocol, false);
    s(out, "request_id", r.request_id.as_deref(), false);
    s(out, "requested_server_name", r.sni, false);
    n(out, "response_code", u64::from(r.status));
    s(out, "response_code_details", r.details, false);
    s(out, "response_flags", Some(r.flags), false);
    s(out, "route_name", r.route, false);
    let mut t = String::with_capacity(24);
    time(r.start_ms, &mut t);
    s(out, "start_time", Some(&t), false);
    s(out, "upstream_cluster", r.cluster, false);
    s(out, "upstream_host", r.upstream_host.as_deref(), false);
    s(
        out,
        "upstream_local_address",
        r.upstream_local.as_deref(),
        false,
    );
    let ust = r.ust.map(|v| v.to_string());
    s(out, "upstream_service_time", ust.as_deref(), false);
    s(
        out,
        "upstream_transport_failure_reason",
        r.transport_failure,
        false,
    );
    s(out, "user_agent", r.user_agent, false);
    s(out, "x_forwarded_for", r.xff.as_deref(), false);
    out.push_str("}\n");
}

/// What happens to one simulated request.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    Ok,
    AppError400,
    Rbac403,
    NoRoute404,
    RateLimited429,
    Tls503,
    Connect503,
    NoHealthy503,
    Tcp0,
    KubeProbe,
    ActivatorProbe,
    AgentLine,
    /// Envoy-like mode only: a model that answers 500 after 20 s to 10 min (all five hops).
    SlowAppError500,
    /// Envoy-like mode only: a streamed 200 (server-sent events) lasting 20 s to 10 min.
    Stream,
    /// Envoy-like mode only: a TCP connection through the gateway lasting 20 s to 10 min.
    TcpLong,
}

/// Weights out of 1000.
const MIX: &[(Kind, u64)] = &[
    (Kind::Ok, 790),
    (Kind::AppError400, 40),
    (Kind::Rbac403, 20),
    (Kind::NoRoute404, 20),
    (Kind::RateLimited429, 20),
    (Kind::Tls503, 20),
    (Kind::Connect503, 10),
    (Kind::NoHealthy503, 10),
    (Kind::Tcp0, 20),
    (Kind::KubeProbe, 25),
    (Kind::ActivatorProbe, 20),
    (Kind::AgentLine, 5),
];

pub struct Gen {
    pub rng: Rng,
    pub now: i64,
}

impl Gen {
    pub fn pick(&mut self) -> Kind {
        let mut x = self.rng.below(1000);
        for &(k, w) in MIX {
            if x < w {
                return k;
            }
            x -= w;
        }
        Kind::Ok
    }

    /// The records of one request, innermost hop first (the order Envoy writes them).
    fn request(&mut self, kind: Kind, traced: Option<&str>, predictor: &str) -> Vec<Rec> {
        let r = &mut self.rng;
        self.now += r.range(1, 12) as i64;
        let t0 = self.now;
        let client = format!("10.134.{}.{}", r.range(0, 3), r.range(2, 250));
        let (method, path, rx) = match r.below(4) {
            0 => ("GET", "/v2/models/test", 0),
            _ => ("POST", "/v2/models/test/infer", r.range(120, 4000)),
        };
        let ua = match r.below(3) {
            0 => "curl/8.6.0",
            1 => "python-requests/2.31.0",
            _ => "Go-http-client/2.0",
        };
        let id_a = traced.map_or_else(|| r.uuid(), str::to_string);
        // The gateway starts a new x-request-id in one request in ten (always for the traced one).
        let id_b = if traced.is_some() || r.below(10) == 0 {
            r.uuid()
        } else {
            id_a.clone()
        };
        let (p1, p2, p3, p4, p5, p6) = (r.port(), r.port(), r.port(), r.port(), r.port(), r.port());
        let xff1 = client.clone();
        let xff2 = format!("{client},{GATEWAY}");
        let xff3 = format!("{client},{GATEWAY}, 127.0.0.6");
        let base = Rec {
            method: Some(method),
            path: Some(path),
            protocol: Some("HTTP/1.1"),
            flags: "-",
            details: Some("via_upstream"),
            rx,
            user_agent: Some(ua),
            route: Some("default"),
            ..Rec::default()
        };
        // Hop 1: ingress gateway, external listener.
        let gw = Rec {
            hop: 1,
            start_ms: t0,
            protocol: Some("HTTP/2"),
            xff: Some(xff1),
            request_id: Some(id_a),
            authority: Some(AUTHORITY.into()),
            upstream_host: Some(format!("{GATEWAY}:8081")),
            cluster: Some(LOCAL_GW_CLUSTER),
            upstream_local: Some(format!("{GATEWAY}:{p2}")),
            downstream_local: format!("{GATEWAY}:8443"),
            downstream_remote: format!("{client}:{p1}"),
            sni: Some(EXTERNAL_SNI),
            route: None,
            ..base.clone()
        };
        // Hop 2: the same gateway pod, knative-local-gateway listener.
        let lgw = Rec {
            hop: 2,
            start_ms: t0 + 2,
            protocol: Some("HTTP/2"),
            xff: Some(xff2.clone()),
            request_id: Some(id_b.clone()),
            authority: Some(AUTHORITY.into()),
            upstream_host: Some(format!("{ACTIVATOR}:8012")),
            cluster: Some(PRED_CLUSTER),
            upstream_local: Some(format!("{GATEWAY}:{p3}")),
            downstream_local: format!("{GATEWAY}:8081"),
            downstream_remote: format!("{GATEWAY}:{p2}"),
            sni: Some(LOCAL_GW_SNI),
            route: None,
            ..base.clone()
        };
        // Hop 3: activator sidecar, inbound.
        let act_in = Rec {
            hop: 3,
            start_ms: t0 + 4,
            xff: Some(xff2),
            request_id: Some(id_b.clone()),
            authority: Some(AUTHORITY.into()),
            upstream_host: Some(format!("{ACTIVATOR}:8012")),
            cluster: Some("inbound|8012||"),
            upstream_local: Some(format!("127.0.0.6:{p4}")),
            downstream_local: format!("{ACTIVATOR}:8012"),
            downstream_remote: format!("{GATEWAY}:0"),
            sni: Some(PRED_SNI),
            ..base.clone()
        };
        // Hop 4: activator sidecar, outbound to the revision's private Service.
        let act_out = Rec {
            hop: 4,
            start_ms: t0 + 5,
            xff: Some(xff3.clone()),
            request_id: Some(id_b.clone()),
            authority: Some(VIP.into()),
            upstream_host: Some(format!("{predictor}:8012")),
            cluster: Some(PRIV_CLUSTER),
            upstream_local: Some(format!("{ACTIVATOR}:{p5}")),
            downstream_local: VIP.into(),
            downstream_remote: "127.0.0.6:0".into(),
            sni: None,
            ..base.clone()
        };
        // Hop 5: predictor sidecar, inbound.
        let pred = Rec {
            hop: 5,
            start_ms: t0 + 6,
            xff: Some(xff3),
            request_id: Some(id_b),
            authority: Some(VIP.into()),
            upstream_host: Some(format!("{predictor}:8012")),
            cluster: Some("inbound|8012||"),
            upstream_local: Some(format!("127.0.0.6:{p6}")),
            downstream_local: format!("{predictor}:8012"),
            downstream_remote: "127.0.0.6:0".into(),
            sni: Some(PRIV_SNI),
            ..base
        };
        let mut path5 = vec![gw, lgw, act_in, act_out, pred];
        // Durations nest: the model's time plus a little per hop outwards.
        let model = match kind {
            Kind::Ok => r.range(3, 900),
            Kind::Stream | Kind::SlowAppError500 => r.range(20_000, 600_000),
            _ => r.range(1, 40),
        };
        let (status, tx) = match kind {
            Kind::Ok => (200, r.range(150, 2500)),
            Kind::Stream => (200, r.range(20_000, 4_000_000)),
            Kind::SlowAppError500 => (500, 21),
            _ => (400, 32),
        };
        // Each hop ends after the hop it forwarded to: outer duration = inner duration + the
        // difference of their start times + 1–2 ms of its own.
        let mut inner: Option<(i64, u64)> = None;
        for h in path5.iter_mut().rev() {
            h.status = status;
            h.tx = tx;
            h.duration = match inner {
                None => model,
                Some((start, dur)) => dur + (start - h.start_ms) as u64 + r.range(1, 2),
            };
            h.ust = Some(h.duration.saturating_sub(r.range(0, 1)));
            inner = Some((h.start_ms, h.duration));
        }
        let rev = |mut v: Vec<Rec>| {
            v.reverse();
            v
        };
        match kind {
            Kind::Ok | Kind::AppError400 | Kind::Stream | Kind::SlowAppError500 => rev(path5),
            Kind::TcpLong => {
                // A client's TCP connection through the gateway's TCP port to a service without
                // a sidecar, open for minutes.
                let duration = r.range(20_000, 600_000);
                vec![Rec {
                    hop: 1,
                    start_ms: t0,
                    flags: "-",
                    rx: r.range(1_000, 9_000_000),
                    tx: r.range(1_000, 9_000_000),
                    duration,
                    upstream_host: Some(format!("{FEATURE_STORE}:9000")),
                    cluster: Some(FEATURE_STORE_CLUSTER),
                    upstream_local: Some(format!("{GATEWAY}:{p2}")),
                    downstream_local: format!("{GATEWAY}:31400"),
                    downstream_remote: format!("{client}:{p1}"),
                    ..Rec::default()
                }]
            }
            Kind::Rbac403 => {
                // The activator's AuthorizationPolicy… seen at the local gateway in the bundles:
                // the local gateway's listener denies, the ingress gateway relays the 403.
                let mut v: Vec<Rec> = path5.drain(..2).collect();
                for h in &mut v {
                    h.status = 403;
                    h.tx = 19;
                    h.ust = None;
                }
                v[1].flags = "-";
                v[1].details = Some(RBAC_DETAILS);
                v[1].upstream_host = None;
                v[1].upstream_local = None;
                v[1].duration = 0;
                v[0].duration = r.range(1, 4);
                v[0].ust = Some(v[0].duration - 1);
                rev(v)
            }
            Kind::NoRoute404 | Kind::RateLimited429 | Kind::NoHealthy503 => {
                let mut g = path5.swap_remove(0);
                let details;
                (g.status, g.flags, details, g.tx) = match kind {
                    Kind::NoRoute404 => (404, "NR", "route_not_found", 0),
                    Kind::RateLimited429 => (429, "RL", "local_rate_limited", 18),
                    _ => (503, "UH", "no_healthy_upstream", 19),
                };
                g.details = Some(details);
                if kind == Kind::NoRoute404 {
                    g.cluster = None;
                }
                g.upstream_host = None;
                g.upstream_local = None;
                g.ust = None;
                g.duration = r.range(0, 1);
                vec![g]
            }
            Kind::Tls503 => {
                // The local gateway's TLS towards the activator fails; the gateway relays 503.
                let mut v: Vec<Rec> = path5.drain(..2).collect();
                for h in &mut v {
                    h.status = 503;
                    h.tx = 234;
                }
                v[1].flags = "UF,URX";
                v[1].details = Some(TLS_DETAILS);
                v[1].transport_failure = Some(TLS_REASON);
                v[1].upstream_local = None;
                v[1].ust = None;
                v[1].duration = r.range(3, 9);
                v[0].duration = v[1].duration + 2;
                v[0].ust = Some(v[0].duration - 1);
                rev(v)
            }
            Kind::Connect503 => {
                // The activator cannot connect to the predictor pod.
                let mut v: Vec<Rec> = path5.drain(..4).collect();
                for h in &mut v {
                    h.status = 503;
                    h.tx = 168;
                }
                v[3].flags = "UF,URX";
                v[3].details = Some(CONNECT_DETAILS);
                v[3].transport_failure = Some("delayed connect error: 111");
                v[3].upstream_local = None;
                v[3].ust = None;
                rev(v)
            }
            Kind::Tcp0 => {
                // A plaintext client into the ISTIO_MUTUAL local-gateway listener.
                vec![Rec {
                    hop: 2,
                    start_ms: t0,
                    flags: "NR",
                    details: Some("filter_chain_not_found"),
                    downstream_local: format!("{GATEWAY}:8081"),
                    downstream_remote: format!("10.134.1.{}:{}", r.range(2, 250), p1),
                    ..Rec::default()
                }]
            }
            Kind::KubeProbe => {
                let target = if r.below(2) == 0 {
                    ACTIVATOR
                } else {
                    predictor
                };
                vec![Rec {
                    hop: if target == ACTIVATOR { 3 } else { 5 },
                    start_ms: t0,
                    method: Some("GET"),
                    path: Some(if target == ACTIVATOR { "/" } else { "/healthz" }),
                    protocol: Some("HTTP/1.1"),
                    status: 200,
                    flags: "-",
                    details: Some("via_upstream"),
                    duration: r.range(0, 2),
                    ust: Some(0),
                    user_agent: Some("kube-probe/1.28"),
                    request_id: Some(r.uuid()),
                    authority: Some(format!("{target}:8012")),
                    upstream_host: Some(format!("{target}:8012")),
                    cluster: Some("inbound|8012||"),
                    upstream_local: Some(format!("127.0.0.6:{p4}")),
                    downstream_local: format!("{target}:8012"),
                    downstream_remote: format!("10.135.0.2:{p5}"),
                    route: Some("default"),
                    ..Rec::default()
                }]
            }
            Kind::ActivatorProbe => {
                let id = r.uuid();
                let probe = Rec {
                    start_ms: t0,
                    method: Some("GET"),
                    path: Some("/healthz"),
                    protocol: Some("HTTP/1.1"),
                    status: 200,
                    flags: "-",
                    details: Some("via_upstream"),
                    tx: 0,
                    duration: 1,
                    ust: Some(1),
                    user_agent: Some("Knative-Activator-Probe"),
                    request_id: Some(id),
                    route: Some("default"),
                    ..Rec::default()
                };
                vec![
                    Rec {
                        hop: 5,
                        authority: Some(format!("{predictor}:8012")),
                        upstream_host: Some(format!("{predictor}:8012")),
                        cluster: Some("inbound|8012||"),
                        upstream_local: Some(format!("127.0.0.6:{p6}")),
                        downstream_local: format!("{predictor}:8012"),
                        downstream_remote: format!("{ACTIVATOR}:{p5}"),
                        sni: Some(PRIV_SNI),
                        ..probe.clone()
                    },
                    Rec {
                        hop: 4,
                        xff: None,
                        authority: Some(format!("{predictor}:8012")),
                        upstream_host: Some(format!("{predictor}:8012")),
                        cluster: Some(PRIV_CLUSTER),
                        upstream_local: Some(format!("{ACTIVATOR}:{p5}")),
                        downstream_local: format!("{predictor}:8012"),
                        downstream_remote: format!("{ACTIVATOR}:{p4}"),
                        ..probe
                    },
                ]
            }
            Kind::AgentLine => Vec::new(),
        }
    }
}

/// Writes the original ordered log (`--format … --size … --out …` without `--envoy`): requests
/// one after another in time order, the traced one once `size / 2` bytes are written. Returns
/// (lines, bytes, whether the traced request was written).
pub fn write_ordered(
    seed: u64,
    size: u64,
    as_json: bool,
    trace_id: &str,
    w: &mut dyn Write,
) -> io::Result<(u64, u64, bool)> {
    let mut g = Gen {
        rng: Rng(seed),
        now: EPOCH_MS,
    };
    let (mut written, mut lines, mut traced_done) = (0u64, 0u64, false);
    let mut buf = String::with_capacity(1 << 16);
    while written < size {
        buf.clear();
        let traced = !traced_done && written >= size / 2;
        let kind = if traced { Kind::AppError400 } else { g.pick() };
        let recs = g.request(kind, traced.then_some(trace_id), PREDICTOR);
        traced_done |= traced;
        if kind == Kind::AgentLine {
            buf.push_str(
                "2024-06-03T09:12:31.402000Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod-data-science-smcp.istio-system.svc:15012\n",
            );
            lines += 1;
        }
        for r in &recs {
            if as_json {
                json(r, &mut buf)
            } else {
                text(r, &mut buf)
            }
            lines += 1;
        }
        w.write_all(buf.as_bytes())?;
        written += buf.len() as u64;
    }
    Ok((lines, written, traced_done))
}

/// The proxies of the Envoy-like mode: (namespace, pod). Hops 1–2 are logged by the ingress
/// gateway, 3–4 by the activator, 5 by one of the three predictor replicas.
pub const PROXIES: [(&str, &str); 5] = [
    ("istio-system", "istio-ingressgateway-5c7d8b7f9-x2k4p"),
    ("knative-serving", "activator-6b8f4d9c7-kq2mz"),
    ("aiproject", "test-predictor-00001-deployment-7d9f8-abcde"),
    ("aiproject", "test-predictor-00001-deployment-7d9f8-fghij"),
    ("aiproject", "test-predictor-00001-deployment-7d9f8-klmno"),
];
/// Pod IPs of the predictor replicas (proxies 2, 3, 4).
const PREDICTORS: [&str; 3] = [PREDICTOR, "10.133.2.14", "10.133.2.15"];
/// Envoy worker threads per proxy: each buffers its lines and flushes them once a second.
const WORKERS: u64 = 2;
const FLUSH_MS: i64 = 1000;
/// Up to this much idle time between two requests (besides the 1–12 ms of the ordered mode).
const IDLE_MS: u64 = 100;

/// Failed kinds of the Envoy-like mode, with their weights and meshtrace's cause id.
const FAIL_MIX: &[(Kind, u64, &str)] = &[
    (Kind::AppError400, 40, "app_error"),
    (Kind::Rbac403, 20, "rbac_denied"),
    (Kind::NoRoute404, 20, "route_not_found"),
    (Kind::RateLimited429, 20, "rate_limited"),
    (Kind::Tls503, 20, "mtls_mismatch"),
    (Kind::Connect503, 10, "upstream_connect_failure"),
    (Kind::NoHealthy503, 10, "no_healthy_upstream"),
    (Kind::Tcp0, 20, "plaintext_to_mtls"),
    (Kind::SlowAppError500, 5, "app_error"),
];

/// What the Envoy-like mode wrote, counted exactly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    /// Client requests and TCP connections (not probes), as `failures` counts them when every
    /// line is kept.
    pub requests: u64,
    /// Of those, failed ones.
    pub failed: u64,
    /// Failed requests per meshtrace cause id.
    pub causes: BTreeMap<&'static str, u64>,
    /// Knative and kubelet probe requests.
    pub probes: u64,
    /// Lines written per proxy (index into [`PROXIES`]).
    pub lines: Vec<u64>,
    /// Bytes written in all.
    pub bytes: u64,
    /// The largest step back in start time between a line and an earlier line of the same
    /// proxy's log (ms): how far out of start-time order the logs are.
    pub max_start_disorder_ms: i64,
    /// The largest step back in end time (start + duration) within one proxy's log (ms): the
    /// workers' one-second flushes.
    pub max_end_disorder_ms: i64,
    /// First start and last end written (Unix ms).
    pub span_ms: (i64, i64),
    /// Whether the traced request was written.
    pub traced: bool,
}

impl Truth {
    /// As a JSON object (the generator has no dependencies, so written by hand).
    pub fn to_json(&self) -> String {
        let causes: Vec<String> = self
            .causes
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        let lines: Vec<String> = self.lines.iter().map(u64::to_string).collect();
        format!(
            "{{\"requests\":{},\"failed\":{},\"causes\":{{{}}},\"probes\":{},\"lines\":[{}],\"bytes\":{},\"max_start_disorder_ms\":{},\"max_end_disorder_ms\":{},\"span_ms\":[{},{}],\"traced\":{}}}",
            self.requests,
            self.failed,
            causes.join(","),
            self.probes,
            lines.join(","),
            self.bytes,
            self.max_start_disorder_ms,
            self.max_end_disorder_ms,
            self.span_ms.0,
            self.span_ms.1,
            self.traced
        )
    }
}

/// Options of the Envoy-like mode.
#[derive(Debug, Clone)]
pub struct Envoy {
    pub seed: u64,
    /// Stop starting requests once this many bytes are written or waiting.
    pub size: u64,
    pub json: bool,
    /// Percentage of client requests that fail (0.5, 6.5, 20 …).
    pub fail_rate: f64,
    /// The known failed request, written once half the size is reached.
    pub trace_id: Option<String>,
}

/// A line waiting in its worker's buffer: (flush time, worker, end, start, line).
type Pending = std::cmp::Reverse<(i64, u64, i64, i64, String)>;

impl Envoy {
    /// Which kind of event comes next.
    fn pick(&self, r: &mut Rng) -> Kind {
        match r.below(1000) {
            0..25 => return Kind::KubeProbe,
            25..45 => return Kind::ActivatorProbe,
            45..50 => return Kind::AgentLine,
            _ => {}
        }
        let ppm = (self.fail_rate * 10_000.0).round().clamp(0.0, 1e6) as u64;
        if r.below(1_000_000) < ppm {
            let total: u64 = FAIL_MIX.iter().map(|(_, w, _)| w).sum();
            let mut x = r.below(total);
            for &(k, w, _) in FAIL_MIX {
                if x < w {
                    return k;
                }
                x -= w;
            }
        }
        match r.below(1000) {
            0..10 => Kind::Stream,
            10..20 => Kind::TcpLong,
            _ => Kind::Ok,
        }
    }

    /// Generate; `out(proxy, bytes)` receives each proxy's log in the order Envoy writes it
    /// (`proxy` indexes [`PROXIES`]).
    pub fn run(&self, out: &mut dyn FnMut(usize, &[u8]) -> io::Result<()>) -> io::Result<Truth> {
        let mut g = Gen {
            rng: Rng(self.seed),
            now: EPOCH_MS,
        };
        // Each worker flushes on its own one-second tick.
        let offsets: Vec<i64> = (0..PROXIES.len() as u64 * WORKERS)
            .map(|_| g.rng.below(FLUSH_MS as u64) as i64)
            .collect();
        let mut heaps: Vec<BinaryHeap<Pending>> =
            (0..PROXIES.len()).map(|_| BinaryHeap::new()).collect();
        let mut truth = Truth {
            lines: vec![0; PROXIES.len()],
            span_ms: (i64::MAX, i64::MIN),
            ..Truth::default()
        };
        let mut last = vec![(i64::MIN, i64::MIN); PROXIES.len()]; // (max start, max end) written
        let mut pending_bytes = 0u64;
        let mut line = String::with_capacity(1024);
        let mut flush = |heaps: &mut Vec<BinaryHeap<Pending>>,
                         until: i64,
                         truth: &mut Truth,
                         pending: &mut u64|
         -> io::Result<()> {
            for (p, h) in heaps.iter_mut().enumerate() {
                while h.peek().is_some_and(|e| e.0.0 <= until) {
                    let std::cmp::Reverse((_, _, end, start, l)) = h.pop().expect("peeked");
                    out(p, l.as_bytes())?;
                    *pending -= l.len() as u64;
                    truth.bytes += l.len() as u64;
                    truth.lines[p] += 1;
                    let (ms, me) = &mut last[p];
                    truth.max_start_disorder_ms =
                        truth.max_start_disorder_ms.max(ms.saturating_sub(start));
                    truth.max_end_disorder_ms =
                        truth.max_end_disorder_ms.max(me.saturating_sub(end));
                    *ms = (*ms).max(start);
                    *me = (*me).max(end);
                }
            }
            Ok(())
        };
        while truth.bytes + pending_bytes < self.size {
            let traced = self.trace_id.is_some()
                && !truth.traced
                && truth.bytes + pending_bytes >= self.size / 2;
            let kind = if traced {
                Kind::AppError400
            } else {
                self.pick(&mut g.rng)
            };
            // A moderately busy service (about 17 requests a second): the logs span hours, and
            // a long request ends minutes of lines after it started.
            g.now += g.rng.below(IDLE_MS + 1) as i64;
            let replica = g.rng.below(PREDICTORS.len() as u64) as usize;
            let recs = g.request(
                kind,
                self.trace_id.as_deref().filter(|_| traced),
                PREDICTORS[replica],
            );
            truth.traced |= traced;
            match kind {
                Kind::KubeProbe | Kind::ActivatorProbe => truth.probes += 1,
                Kind::AgentLine => {}
                _ => {
                    truth.requests += 1;
                    if let Some(&(_, _, cause)) = FAIL_MIX.iter().find(|(k, ..)| *k == kind) {
                        truth.failed += 1;
                        *truth.causes.entry(cause).or_default() += 1;
                    }
                }
            }
            if kind == Kind::AgentLine {
                line.clear();
                time(g.now, &mut line);
                line.pop(); // the agent writes microseconds
                line.push_str("000Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod-data-science-smcp.istio-system.svc:15012\n");
                let p = g.rng.below(PROXIES.len() as u64) as usize;
                pending_bytes += line.len() as u64;
                heaps[p].push(std::cmp::Reverse((g.now, 0, g.now, g.now, line.clone())));
            }
            for r in &recs {
                let p = match r.hop {
                    1 | 2 => 0,
                    3 | 4 => 1,
                    _ => 2 + replica,
                };
                let end = r.start_ms + r.duration as i64;
                let w = g.rng.below(WORKERS);
                let off = offsets[p * WORKERS as usize + w as usize];
                let flush_at = off + (end - off + FLUSH_MS - 1).div_euclid(FLUSH_MS) * FLUSH_MS;
                line.clear();
                if self.json {
                    json(r, &mut line)
                } else {
                    text(r, &mut line)
                }
                truth.span_ms.0 = truth.span_ms.0.min(r.start_ms);
                truth.span_ms.1 = truth.span_ms.1.max(end);
                pending_bytes += line.len() as u64;
                // One flush writes the worker's buffer: its lines in the order they ended.
                heaps[p].push(std::cmp::Reverse((
                    flush_at,
                    w,
                    end,
                    r.start_ms,
                    line.clone(),
                )));
            }
            flush(&mut heaps, g.now, &mut truth, &mut pending_bytes)?;
        }
        flush(&mut heaps, i64::MAX, &mut truth, &mut pending_bytes)?;
        Ok(truth)
    }
}
