//! Istio ambient: one request through client ztunnel (outbound) → waypoint Envoy → server
//! ztunnel (inbound), joined by addresses, HBONE addresses, identities and time containment
//! (a connection carries many requests), with ztunnel's failures classified and waypoint
//! bypass reported. Pure: evidence in, a [`TraceReport`] out.
//!
//! How the lines join (ztunnel's and Envoy's documented fields):
//! - client ztunnel `outbound` line: `src.addr` is the application's own connection;
//!   `dst.addr` is `<waypoint or pod IP>:15008`; `dst.hbone_addr` is what the client asked
//!   for (the Service VIP when the connection goes to a waypoint);
//! - waypoint Envoy line: downstream remote address = the client's `src.addr`, downstream
//!   local address = `dst.hbone_addr`, cluster `inbound-vip|<port>|http|<service>`, upstream
//!   host `envoy://connect_originate/<pod ip:port>`;
//! - server ztunnel `inbound` line: `dst.hbone_addr` = the pod `ip:port` (the waypoint's
//!   `connect_originate` target, or the client's own `dst.hbone_addr` without a waypoint),
//!   source = the waypoint (or the client pod), and its interval contains the request's.

use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Duration, FixedOffset};
use meshtrace_parsers::Slot;
use meshtrace_parsers::ztunnel::{Connection, Failure};

use crate::causes::Cause;
use crate::correlate::Start;
use crate::diagnose::diagnose_in;
use crate::evidence::Evidence;
use crate::model::{ConnLine, LogLine};
use crate::objects::{Cited, applies_to, describe_rule};
use crate::topology::Topology;
use crate::trace::{EvidenceRef, SCHEMA, TraceHop, TraceReport, hop_row};

/// Clock slack when nesting a request in a connection (ztunnel and Envoy log with their own
/// clocks, ztunnel at millisecond resolution of the duration).
const SLACK_MS: i64 = 1_000;
/// At most this many candidate lines are scored per side (evidence is bounded, this keeps
/// one trace linear).
const MAX_CANDIDATES: usize = 10_000;

/// Where one request went through the ambient data plane: indexes into
/// `ev.logs.connections` (client, server) and `ev.logs.records` (waypoint).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AmbientPath {
    /// The client node's ztunnel line (`direction="outbound"`).
    pub client: Option<usize>,
    /// The waypoint's access-log line.
    pub waypoint: Option<usize>,
    /// The server node's ztunnel line (`direction="inbound"`).
    pub server: Option<usize>,
}

/// Is this Envoy line a waypoint's (an ambient `inbound-vip` cluster or an HBONE upstream)?
pub fn is_waypoint_line(l: &LogLine) -> bool {
    let r = &l.record;
    r.get(Slot::UpstreamHost)
        .is_some_and(|h| h.starts_with("envoy://connect_originate/"))
        || r.get(Slot::UpstreamCluster)
            .is_some_and(|c| c.starts_with("inbound-vip|"))
}

/// When the connection started and ended (ztunnel logs `connection complete` at the end).
pub fn interval(c: &Connection) -> Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)> {
    let end = DateTime::parse_from_rfc3339(c.time.as_deref()?).ok()?;
    let d = i64::try_from(c.duration_ms.unwrap_or(0)).unwrap_or(i64::MAX / 4);
    let start = end.checked_sub_signed(Duration::milliseconds(d))?;
    Some((start, end))
}

fn sock(s: Option<&str>) -> Option<SocketAddr> {
    s?.trim().parse().ok()
}

fn ip_of(s: Option<&str>) -> Option<IpAddr> {
    sock(s).map(|a| a.ip())
}

/// The waypoint line's (start, end).
fn record_interval(l: &LogLine) -> Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)> {
    let s = l.record.start_time()?;
    let d = i64::try_from(l.record.duration_ms().unwrap_or(0)).unwrap_or(0);
    Some((s, s.checked_add_signed(Duration::milliseconds(d))?))
}

/// Does connection `c` contain the interval `inner` (with slack)? Unknown times do not rule a
/// candidate out.
fn contains(c: &Connection, inner: Option<(DateTime<FixedOffset>, DateTime<FixedOffset>)>) -> bool {
    match (interval(c), inner) {
        (Some((a, b)), Some((x, y))) => {
            let slack = Duration::milliseconds(SLACK_MS);
            x >= a - slack && y <= b + slack
        }
        _ => true,
    }
}

/// Time distance between two connections' end times (ms), large when unknown.
fn end_gap(a: &Connection, b: &Connection) -> i64 {
    match (interval(a), interval(b)) {
        (Some((_, x)), Some((_, y))) => (x - y).num_milliseconds().abs(),
        _ => SLACK_MS * 10,
    }
}

/// Is the connection's destination a waypoint (by topology, else by the waypoint's own
/// access-log lines naming its address)?
fn to_waypoint(ev: &Evidence, c: &Connection) -> bool {
    let Some(ip) = ip_of(c.dst_addr.as_deref()) else {
        return false;
    };
    if let Some(p) = ev.topology.pod_by_ip(ip) {
        return p.is_waypoint();
    }
    // Without topology: the destination's workload is the one that logged waypoint lines.
    ev.logs.records.iter().any(|l| {
        is_waypoint_line(l)
            && c.dst_workload.as_deref().is_some_and(|w| {
                l.pod
                    .as_deref()
                    .is_some_and(|p| p.rsplit('/').next() == Some(w))
            })
    })
}

/// Find the request's path from `start`. `None` when no ztunnel line or waypoint line is
/// involved (the sidecar trace then applies).
pub fn find(ev: &Evidence, start: &Start) -> Option<AmbientPath> {
    let conns = &ev.logs.connections;
    if conns.is_empty() {
        return None;
    }
    let lines = &ev.logs.records;
    let mut path = AmbientPath::default();
    match start {
        Start::RequestId(id) => {
            let w = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.record.request_id() == Some(id.as_str()) && is_waypoint_line(l))
                .max_by_key(|(_, l)| {
                    (l.record.status().unwrap_or(0) >= 400, l.record.start_time())
                })?
                .0;
            path.waypoint = Some(w);
            path.client = client_of_waypoint(ev, &lines[w]);
        }
        Start::Address(a) => {
            let text = a.to_string();
            let pick = |outbound: bool| {
                conns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        c.conn.src_addr.as_deref() == Some(text.as_str())
                            && c.conn.is_outbound() == outbound
                    })
                    .max_by_key(|(_, c)| (c.conn.failed(), c.conn.time.clone()))
                    .map(|(i, _)| i)
            };
            if let Some(i) = pick(true) {
                path.client = Some(i);
            } else if let Some(i) = pick(false) {
                path.server = Some(i);
                return Some(path);
            } else {
                return None;
            }
        }
        Start::Ip(ip) => {
            let i = conns
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.conn.is_outbound() && ip_of(c.conn.src_addr.as_deref()) == Some(*ip)
                })
                .max_by_key(|(_, c)| (c.conn.failed(), c.conn.time.clone()))?
                .0;
            path.client = Some(i);
        }
    }
    if path.waypoint.is_none()
        && let Some(ci) = path.client
        && to_waypoint(ev, &conns[ci].conn)
    {
        path.waypoint = waypoint_of_client(ev, &conns[ci].conn);
    }
    path.server = match (path.waypoint, path.client) {
        (Some(w), _) => server_of_waypoint(ev, &lines[w]),
        (None, Some(c)) if !to_waypoint(ev, &conns[c].conn) => server_of_client(ev, &conns[c].conn),
        _ => None,
    };
    Some(path)
}

/// The client ztunnel line that carried a waypoint request: outbound, from the request's
/// downstream remote address (or its IP), to the waypoint's listener address, containing it.
fn client_of_waypoint(ev: &Evidence, w: &LogLine) -> Option<usize> {
    let remote = w.record.value(Slot::DownstreamRemoteAddress);
    let local = w.record.value(Slot::DownstreamLocalAddress);
    let inner = record_interval(w);
    ev.logs
        .connections
        .iter()
        .enumerate()
        .take(MAX_CANDIDATES)
        .filter(|(_, c)| c.conn.is_outbound() && contains(&c.conn, inner))
        .filter_map(|(i, c)| {
            let exact = remote.is_some() && c.conn.src_addr.as_deref() == remote;
            let same_ip =
                ip_of(remote).is_some() && ip_of(c.conn.src_addr.as_deref()) == ip_of(remote);
            let hbone = local.is_some() && c.conn.dst_hbone_addr.as_deref() == local;
            let score = u8::from(exact) * 4 + u8::from(hbone) * 2 + u8::from(same_ip);
            (exact || (same_ip && hbone)).then_some((score, i))
        })
        .max()
        .map(|(_, i)| i)
}

/// The waypoint line carried by a client connection: downstream remote = its `src.addr`,
/// listener = its HBONE address, inside its interval; the failed one first, then the latest.
fn waypoint_of_client(ev: &Evidence, c: &Connection) -> Option<usize> {
    let iv = interval(c);
    ev.logs
        .records
        .iter()
        .enumerate()
        .take(MAX_CANDIDATES)
        .filter(|(_, l)| is_waypoint_line(l))
        .filter(|(_, l)| {
            let r = &l.record;
            let remote = r.value(Slot::DownstreamRemoteAddress);
            (remote.is_some() && remote == c.src_addr.as_deref())
                || (ip_of(remote).is_some()
                    && ip_of(remote) == ip_of(c.src_addr.as_deref())
                    && r.value(Slot::DownstreamLocalAddress) == c.dst_hbone_addr.as_deref())
        })
        .filter(|(_, l)| match (iv, record_interval(l)) {
            (Some((a, b)), Some((x, y))) => {
                let slack = Duration::milliseconds(SLACK_MS);
                x >= a - slack && y <= b + slack
            }
            _ => true,
        })
        .max_by_key(|(_, l)| (l.record.status().unwrap_or(0) >= 400, l.record.start_time()))
        .map(|(i, _)| i)
}

/// The server ztunnel line behind a waypoint request: inbound, HBONE address = the
/// `connect_originate` target (or the upstream host), containing the request.
fn server_of_waypoint(ev: &Evidence, w: &LogLine) -> Option<usize> {
    let host = w.record.value(Slot::UpstreamHost)?;
    let target = host
        .strip_prefix("envoy://connect_originate/")
        .unwrap_or(host);
    let inner = record_interval(w);
    ev.logs
        .connections
        .iter()
        .enumerate()
        .take(MAX_CANDIDATES)
        .filter(|(_, c)| {
            c.conn.is_inbound()
                && (c.conn.dst_hbone_addr.as_deref() == Some(target)
                    || (c.conn.dst_hbone_addr.is_none()
                        && c.conn.dst_addr.as_deref() == Some(target)))
                && contains(&c.conn, inner)
        })
        .max_by_key(|(_, c)| (c.conn.failed(), c.conn.time.clone()))
        .map(|(i, _)| i)
}

/// The server ztunnel line of a direct (no waypoint) connection: inbound, same HBONE
/// address, from the client's IP, closest in time, bytes mirrored when they can be.
fn server_of_client(ev: &Evidence, c: &Connection) -> Option<usize> {
    let target = c.dst_hbone_addr.as_deref().or(c.dst_addr.as_deref())?;
    let src_ip = ip_of(c.src_addr.as_deref());
    ev.logs
        .connections
        .iter()
        .enumerate()
        .take(MAX_CANDIDATES)
        .filter(|(_, s)| {
            s.conn.is_inbound()
                && (s.conn.dst_hbone_addr.as_deref() == Some(target)
                    || s.conn.dst_addr.as_deref() == Some(target))
                && (src_ip.is_none() || ip_of(s.conn.src_addr.as_deref()) == src_ip)
                && end_gap(&s.conn, c) <= SLACK_MS * 5
        })
        .min_by_key(|(_, s)| {
            let mirrored = s.conn.bytes_sent == c.bytes_recv && s.conn.bytes_recv == c.bytes_sent;
            (
                !mirrored,
                s.conn.failed() != c.failed(),
                end_gap(&s.conn, c),
            )
        })
        .map(|(i, _)| i)
}

/// One hop row for a ztunnel line.
fn conn_hop(topo: &Topology, l: &ConnLine, index: usize) -> TraceHop {
    let c = &l.conn;
    let (ns, pod) = match l.pod.as_deref().and_then(|p| p.split_once('/')) {
        Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
        None => (None, None),
    };
    let status = match c.failure() {
        Some(Failure::HttpStatus(code)) => Some(code),
        _ => None,
    };
    let upstream_is = match (c.dst_workload.as_deref(), c.dst_namespace.as_deref()) {
        (Some(w), Some(n)) => Some(format!("pod {n}/{w}")),
        (Some(w), None) => Some(format!("pod {w}")),
        _ => sock(c.dst_addr.as_deref()).map(|a| topo.describe(a)),
    };
    TraceHop {
        index,
        role: "ztunnel".into(),
        namespace: ns,
        pod,
        direction: c.direction.clone().unwrap_or_default(),
        listener: c.src_addr.clone(),
        request_id: None,
        status,
        flags: Vec::new(),
        details: c.error_text(),
        start: interval(c).map(|(s, _)| s.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        duration_ms: c.duration_ms,
        upstream_service_time_ms: None,
        self_time_ms: None,
        upstream_host: c.dst_hbone_addr.clone().or_else(|| c.dst_addr.clone()),
        upstream_is,
        upstream_cluster: c.dst_service.clone(),
        attempt: None,
        gen_ai: Default::default(),
        evidence: EvidenceRef {
            file: l.input.to_string(),
            line: l.line,
        },
    }
}

/// What a ztunnel failure means, which side it names, and what to do.
struct Reading {
    cause: Cause,
    summary: String,
    fix: String,
}

fn who(c: &Connection, src: bool) -> String {
    let (w, n, id) = if src {
        (&c.src_workload, &c.src_namespace, &c.src_identity)
    } else {
        (&c.dst_workload, &c.dst_namespace, &c.dst_identity)
    };
    let base = match (n, w) {
        (Some(n), Some(w)) => format!("{n}/{w}"),
        (None, Some(w)) => w.clone(),
        _ => (if src { &c.src_addr } else { &c.dst_addr })
            .clone()
            .unwrap_or_else(|| "an unknown workload".into()),
    };
    match id {
        Some(id) => format!("{base} ({id})"),
        None => format!("{base} (no mesh identity: not in the mesh or plaintext)"),
    }
}

fn read_failure(f: &Failure, c: &Connection, side: &str) -> Reading {
    let from = who(c, true);
    let to = who(c, false);
    let err = c.error_text().unwrap_or_default();
    match f {
        Failure::PolicyDenied { policy } if policy.ends_with("/istio_converted_static_strict") => {
            Reading {
                cause: Cause::PlaintextToMtls,
                summary: format!(
                    "The {side} ztunnel refused the connection from {from} to {to}: a STRICT PeerAuthentication (ztunnel names it `{policy}`) admits only mTLS (HBONE) and this client sent plaintext — it is not in the mesh."
                ),
                fix: "Enrol the client in the mesh (label its namespace or pod `istio.io/dataplane-mode: ambient`), or relax the PeerAuthentication to PERMISSIVE for this workload/port (Istio docs: Ambient L4 policy, PeerAuthentication).".into(),
            }
        }
        Failure::PolicyDenied { policy } => Reading {
            cause: Cause::RbacDenied,
            summary: format!(
                "The {side} ztunnel refused the connection from {from} to {to}: AuthorizationPolicy `{policy}` (action DENY) matched it (L4 authorization, enforced by the destination's ztunnel)."
            ),
            fix: format!(
                "Change AuthorizationPolicy {policy} so its DENY rules do not match this source (principal {}), or remove it if the traffic is legitimate (Istio docs: Ambient L4 policy).",
                c.src_identity.as_deref().map_or("-", |i| i.trim_start_matches("spiffe://"))
            ),
        },
        Failure::NoAllowMatch | Failure::PolicyRejected => Reading {
            cause: Cause::RbacDenied,
            summary: format!(
                "The {side} ztunnel refused the connection from {from} to {to}: ALLOW AuthorizationPolicies select the destination and none of their rules matched this source ({err})."
            ),
            fix: format!(
                "Add the source's identity ({}) or namespace to an ALLOW rule of the destination's AuthorizationPolicy; when a waypoint serves the destination, its identity must be allowed instead (Istio docs: Ambient L4 policy).",
                c.src_identity.as_deref().map_or("-", |i| i.trim_start_matches("spiffe://"))
            ),
        },
        Failure::HboneBlocked => Reading {
            cause: Cause::UpstreamConnectFailure,
            summary: format!(
                "The {side} ztunnel could not open the HBONE tunnel from {from} to {to} at {}: the TCP connection to port 15008 timed out — a NetworkPolicy (or firewall) most likely drops port 15008.",
                c.dst_addr.as_deref().unwrap_or("-")
            ),
            fix: "Allow TCP port 15008 in the ingress rules of every NetworkPolicy selecting the destination pods (ambient tunnels all traffic through 15008; policies that list only the application port block it) (Istio docs: Ambient and Kubernetes NetworkPolicy).".into(),
        },
        Failure::Timeout => Reading {
            cause: Cause::UpstreamConnectFailure,
            summary: format!("The {side} ztunnel's connection from {from} to {to} timed out ({err})."),
            fix: "Check that the destination pod is running and reachable from the client's node (NetworkPolicies, node firewalls, port 15008).".into(),
        },
        Failure::Tls => Reading {
            cause: Cause::TlsError,
            summary: format!("The {side} ztunnel's mTLS handshake between {from} and {to} failed ({err})."),
            fix: "Check both ztunnels' certificates (`istioctl ztunnel-config certificates`) and that both sides trust the same root CA; restart ztunnel after a CA rotation.".into(),
        },
        Failure::Identity => Reading {
            cause: Cause::TlsError,
            summary: format!("The {side} ztunnel rejected the peer's identity between {from} and {to} ({err})."),
            fix: "The certificate presented is not the identity ztunnel expected (service account / trust domain): check `istioctl ztunnel-config workloads` for the destination and the pods' service accounts.".into(),
        },
        Failure::UnknownWaypoint => Reading {
            cause: Cause::NoHealthyUpstream,
            summary: format!("The {side} ztunnel could not send {from}'s connection to {to}: the waypoint the destination uses is unknown to ztunnel ({err})."),
            fix: "Deploy the waypoint the `istio.io/use-waypoint` label names (`istioctl waypoint apply -n <ns>`) and check its Gateway is Programmed, or remove the label.".into(),
        },
        Failure::NoHealthyUpstream => Reading {
            cause: Cause::NoHealthyUpstream,
            summary: format!("The {side} ztunnel found no healthy endpoint for {to} ({err})."),
            fix: "Check that the destination Service has ready endpoints (`kubectl get endpointslices`) and that the pods are enrolled in the mesh.".into(),
        },
        Failure::UnknownWorkload => Reading {
            cause: Cause::UpstreamConnectFailure,
            summary: format!(
                "The {side} ztunnel did not handle the connection from {from} to {to}: a workload of the connection is not in its workload state ({err})."
            ),
            fix: "Check that the pod is enrolled in ambient (label `istio.io/dataplane-mode: ambient` on it or its namespace) and running, and that this node's ztunnel is connected to istiod: `istioctl ztunnel-config workloads` on that ztunnel should list the pod's IP (a pod created or recreated moments ago appears once istiod pushes it).".into(),
        },
        Failure::HttpStatus(code) => Reading {
            cause: match code {
                401 | 403 => Cause::RbacDenied,
                503 => Cause::NoHealthyUpstream,
                _ => Cause::Unknown,
            },
            summary: format!(
                "The other end of the {side} ztunnel's HBONE tunnel from {from} to {to} answered {code} ({err}){}.",
                if matches!(code, 401 | 403) {
                    ": the destination's ztunnel refused it by policy — its own line names the policy"
                } else {
                    ""
                }
            ),
            fix: "Read the destination node's ztunnel log (inbound line of the same connection) for the reason; collect it with the bundle.".into(),
        },
        Failure::Refused => Reading {
            cause: Cause::UpstreamConnectFailure,
            summary: format!("Nothing accepted the connection from {from} to {to} ({err})."),
            fix: "Check that the destination container listens on the port the Service targets.".into(),
        },
        Failure::Reset => Reading {
            cause: Cause::UpstreamReset,
            summary: format!("The connection from {from} to {to} was reset ({err})."),
            fix: "Check the destination's logs and restarts at that time.".into(),
        },
        Failure::Other => Reading {
            cause: Cause::Unknown,
            summary: format!("The {side} ztunnel reported an error between {from} and {to}: {err}."),
            fix: "Read the ztunnel log around this line (`kubectl logs -n istio-system ds/ztunnel`).".into(),
        },
    }
}

/// Waypoint bypass: the client's connection went straight to a pod whose Service or
/// namespace is labelled `istio.io/use-waypoint`. The waypoint's `namespace/name` and the
/// object carrying the label.
fn bypass(ev: &Evidence, c: &Connection) -> Option<(String, String)> {
    if !c.is_outbound() || to_waypoint(ev, c) {
        return None;
    }
    let ns = c.dst_namespace.as_deref()?;
    let svc = c.dst_service.as_deref().and_then(|s| {
        let suffix = format!(".{ns}.svc.");
        s.find(&suffix).map(|i| &s[..i])
    });
    let waypoint = ev.topology.use_waypoint(ns, svc)?;
    let labelled = match svc {
        Some(s)
            if ev.topology.services.iter().any(|x| {
                x.namespace == ns && x.name == s && x.labels.contains_key("istio.io/use-waypoint")
            }) =>
        {
            format!("Service/{ns}/{s}")
        }
        _ => format!("Namespace/{ns}"),
    };
    Some((waypoint, labelled))
}

/// The configuration behind a ztunnel failure: the AuthorizationPolicy it names, the ALLOW
/// policies selecting the destination, the NetworkPolicies without port 15008, the waypoint.
fn citations(ev: &Evidence, c: &Connection, f: Option<&Failure>) -> Vec<Cited> {
    let mut out = Vec::new();
    let dst_pod = ip_of(c.dst_hbone_addr.as_deref())
        .and_then(|ip| ev.topology.pod_by_ip(ip))
        .or_else(|| ip_of(c.dst_addr.as_deref()).and_then(|ip| ev.topology.pod_by_ip(ip)));
    match f {
        Some(Failure::PolicyDenied { policy }) => {
            if let Some((ns, name)) = policy.split_once('/')
                && let Some(o) = ev.objects.iter().find(|o| {
                    o.kind == "AuthorizationPolicy"
                        && o.namespace.as_deref() == Some(ns)
                        && o.name == name
                })
            {
                let rules: Vec<String> = o
                    .spec()
                    .get("rules")
                    .and_then(|r| r.as_array())
                    .map(|a| a.iter().take(8).map(describe_rule).collect())
                    .unwrap_or_default();
                out.push(Cited {
                    object: o.reference(),
                    why: format!(
                        "named by ztunnel as the policy that denied the connection (action {}; rules: {})",
                        o.str_at("/spec/action").unwrap_or("ALLOW"),
                        if rules.is_empty() { "any".into() } else { rules.join("; ") }
                    ),
                });
            }
        }
        Some(Failure::NoAllowMatch | Failure::PolicyRejected | Failure::HttpStatus(401 | 403)) => {
            if let Some(pod) = dst_pod {
                for o in ev.objects.iter().filter(|o| {
                    o.kind == "AuthorizationPolicy"
                        && o.str_at("/spec/action").unwrap_or("ALLOW") == "ALLOW"
                        && o.value.pointer("/spec/targetRefs").is_none()
                        && o.value.pointer("/spec/targetRef").is_none()
                        && applies_to(o, "/spec/selector/matchLabels", pod)
                }) {
                    let rules: Vec<String> = o
                        .spec()
                        .get("rules")
                        .and_then(|r| r.as_array())
                        .map(|a| a.iter().take(8).map(describe_rule).collect())
                        .unwrap_or_default();
                    out.push(Cited {
                        object: o.reference(),
                        why: format!(
                            "ALLOW policy enforced by {}'s ztunnel; none of its rules admits {} (rules: {})",
                            pod.reference(),
                            c.src_identity.as_deref().unwrap_or("a source without identity"),
                            if rules.is_empty() { "none".into() } else { rules.join("; ") }
                        ),
                    });
                }
            }
        }
        Some(Failure::HboneBlocked | Failure::Timeout) => {
            if let Some(pod) = dst_pod {
                for o in ev.objects.iter().filter(|o| {
                    o.kind == "NetworkPolicy"
                        && o.namespace.as_deref() == Some(pod.namespace.as_str())
                        && {
                            let sel = o.string_map("/spec/podSelector/matchLabels");
                            sel.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
                        }
                }) {
                    let ports = network_policy_ports(o);
                    if ports.iter().any(|p| p == "15008") {
                        continue;
                    }
                    out.push(Cited {
                        object: o.reference(),
                        why: format!(
                            "selects {} and admits ingress only on port(s) {} — not the HBONE port 15008",
                            pod.reference(),
                            if ports.is_empty() { "none".into() } else { ports.join(", ") }
                        ),
                    });
                }
            }
        }
        _ => {}
    }
    out
}

/// The ingress ports a NetworkPolicy names (as written).
fn network_policy_ports(o: &crate::model::Object) -> Vec<String> {
    let mut out = Vec::new();
    for rule in o
        .value
        .pointer("/spec/ingress")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .take(64)
    {
        for p in rule
            .get("ports")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .take(64)
        {
            match p.get("port") {
                Some(serde_json::Value::Number(n)) => out.push(n.to_string()),
                Some(serde_json::Value::String(s)) => out.push(s.clone()),
                _ => {}
            }
        }
    }
    out
}

/// Trace one request through the ambient data plane. `None` when `start` names no ztunnel
/// or waypoint line (the sidecar trace then applies).
pub fn trace(ev: &Evidence, query: &str, start: &Start) -> Option<TraceReport> {
    let path = find(ev, start)?;
    let conns = &ev.logs.connections;
    let lines = &ev.logs.records;
    let ctx = ev.context();
    let topo = &ev.topology;
    let mut hops: Vec<TraceHop> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    if let Some(c) = path.client {
        hops.push(conn_hop(topo, &conns[c], hops.len() + 1));
    }
    if let Some(w) = path.waypoint {
        let mut h = hop_row(topo, &ctx, &lines[w], hops.len(), None, None);
        h.role = "waypoint".into();
        h.direction = "inbound".into();
        hops.push(h);
    }
    if let Some(s) = path.server {
        hops.push(conn_hop(topo, &conns[s], hops.len() + 1));
    }
    if hops.is_empty() {
        return None;
    }
    // The failing side: the innermost ztunnel that names a cause, else the waypoint's own
    // status, else the client's ztunnel.
    let server_fail = path
        .server
        .and_then(|s| conns[s].conn.failure().map(|f| (s, f)));
    let client_fail = path
        .client
        .and_then(|c| conns[c].conn.failure().map(|f| (c, f)));
    let waypoint_failed = path
        .waypoint
        .is_some_and(|w| lines[w].record.status().is_some_and(|s| s >= 400 || s == 0));
    let client_bypass = path.client.and_then(|c| bypass(ev, &conns[c].conn));
    let pos = |kind: &str| hops.iter().position(|h| h.role == kind);
    let (origin_hop, mut reading, mut cited, evidence_lines, status) = if let Some((s, f)) =
        server_fail.as_ref().filter(|(_, f)| {
            // A server-side timeout behind a waypoint 503 is still the server's.
            f.specificity() >= 2 || client_fail.is_none()
        }) {
        let c = &conns[*s].conn;
        let r = read_failure(f, c, "destination's");
        (
            hops.len(),
            r,
            citations(ev, c, Some(f)),
            vec![format!(
                "ztunnel error: {}",
                c.error_text().unwrap_or_default()
            )],
            path.waypoint.and_then(|w| lines[w].record.status()),
        )
    } else if waypoint_failed
        && client_fail
            .as_ref()
            .is_none_or(|(_, f)| matches!(f, Failure::HttpStatus(_)))
    {
        let w = path.waypoint.unwrap_or_default();
        let recs = [&lines[w].record];
        let v = diagnose_in(&recs, &[lines[w].pod.as_deref()], &ctx);
        (
            pos("waypoint").map_or(1, |p| p + 1),
            Reading {
                cause: v.cause,
                summary: format!(
                    "The waypoint answered {}: {}",
                    lines[w].record.status().unwrap_or(0),
                    v.summary
                ),
                fix: v.fix,
            },
            Vec::new(),
            v.evidence,
            lines[w].record.status(),
        )
    } else if let Some((c, f)) = client_fail.as_ref() {
        let conn = &conns[*c].conn;
        let r = read_failure(f, conn, "client's");
        (
            1,
            r,
            citations(ev, conn, Some(f)),
            vec![format!(
                "ztunnel error: {}",
                conn.error_text().unwrap_or_default()
            )],
            path.waypoint.and_then(|w| lines[w].record.status()),
        )
    } else {
        let status = path.waypoint.and_then(|w| lines[w].record.status());
        (
            // The waypoint produced the status the client got; without one, the last hop.
            pos("waypoint").map_or(hops.len(), |p| p + 1),
            Reading {
                cause: Cause::Ok,
                summary: format!(
                    "The connection went through {} without an error{}.",
                    hops.iter()
                        .map(|h| h.role.as_str())
                        .collect::<Vec<_>>()
                        .join(" → "),
                    status
                        .map(|s| format!("; the waypoint answered {s}"))
                        .unwrap_or_default()
                ),
                fix: String::new(),
            },
            Vec::new(),
            Vec::new(),
            status,
        )
    };
    if let Some((waypoint, labelled)) = &client_bypass {
        let c = path.client.map(|c| &conns[c].conn);
        let dst = c.and_then(|c| c.dst_addr.clone()).unwrap_or_default();
        let finding = format!(
            "Waypoint bypass: the client's ztunnel sent this connection straight to {dst} (pod {}) instead of through waypoint {waypoint}, which {labelled} requires with `istio.io/use-waypoint` — the waypoint's L7 policies and routing were not applied.",
            c.and_then(|c| c.dst_workload.clone())
                .unwrap_or_else(|| "-".into())
        );
        reading.summary = format!("{finding} {}", reading.summary);
        reading.fix = format!(
            "Address the Service (its ClusterIP or DNS name), not the pod IP, so ztunnel routes through the waypoint; check the waypoint exists and is Programmed (`kubectl get gateway -n {}`); to enforce it, let the destination's ztunnel admit only the waypoint's identity (Istio docs: Ambient L7 features, requiring traffic to traverse a waypoint). {}",
            waypoint.split('/').next().unwrap_or(""),
            reading.fix
        );
        cited.push(Cited {
            object: labelled.clone(),
            why: format!("labelled `istio.io/use-waypoint` → waypoint {waypoint}; this connection did not go through it"),
        });
        if let Some((ns, name)) = waypoint.split_once('/')
            && let Some(o) = ev.objects.iter().find(|o| {
                o.kind == "Gateway" && o.namespace.as_deref() == Some(ns) && o.name == name
            })
        {
            cited.push(Cited {
                object: o.reference(),
                why: "the waypoint the destination's traffic should go through".into(),
            });
        }
        notes.push("waypoint_bypass: the connection reached the destination pod directly".into());
    }
    if path.client.is_none() {
        notes.push("No client-side ztunnel line: the client is not in the mesh, or its node's ztunnel log is not in the evidence.".into());
    }
    if path.waypoint.is_none()
        && client_bypass.is_none()
        && path.client.is_some_and(|c| to_waypoint(ev, &conns[c].conn))
    {
        notes.push("The connection went to a waypoint but no waypoint access-log line falls inside it (is the waypoint's log in the evidence?).".into());
    }
    if path.server.is_none() && !matches!(client_fail, Some((_, Failure::HboneBlocked))) {
        notes.push("No destination-side ztunnel line matched (the destination node's ztunnel log may be missing).".into());
    }
    let succeeded = reading.cause == Cause::Ok;
    let request_ids: Vec<String> = path
        .waypoint
        .and_then(|w| lines[w].record.request_id())
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    Some(TraceReport {
        schema: SCHEMA,
        query: query.to_string(),
        request_ids,
        status,
        succeeded,
        origin_hop,
        cause: reading.cause,
        summary: reading.summary,
        fix: reading.fix,
        fix_apply: None,
        objects: cited.iter().map(|c| c.object.clone()).collect(),
        citations: cited,
        evidence: evidence_lines,
        hops,
        notes,
    })
}

/// A ztunnel failure's group key for `failures`: the failure id and, for a DENY, the policy.
pub fn failure_key(c: &Connection) -> Option<String> {
    let f = c.failure()?;
    Some(match &f {
        Failure::PolicyDenied { policy } => format!("{} {policy}", f.id()),
        Failure::HttpStatus(code) => format!("{} {code}", f.id()),
        _ => f.id().to_string(),
    })
}

/// How close (ms) the client's and the destination's ztunnel lines of one refused connection
/// end: both ztunnels log it, and `failures` counts it once.
const PAIR_MS: i64 = 2_000;

/// Does the status filter of `failures` (`--status`) admit connection failures (status `0`)?
fn status_admits_connections(f: &crate::failures::Filters) -> bool {
    f.status
        .as_deref()
        .is_none_or(|s| s.split(',').any(|x| x.trim() == "0"))
}

/// Add the failed ztunnel connections (lines with `error=`) to a `failures` report: one group
/// per cause, failure (with the DENY policy or HTTP status) and destination, kind
/// `connection`. A connection both ztunnels logged (the client's outbound line and the
/// destination's inbound line: same source and destination IPs, ending within
/// `PAIR_MS`) counts once, with the destination's reading (it names the policy).
pub fn add_connection_failures(
    report: &mut crate::failures::FailuresReport,
    conns: &[ConnLine],
    topo: &Topology,
    f: &crate::failures::Filters,
) {
    use crate::failures::{Client, FailureGroup};
    use std::collections::{BTreeMap, BTreeSet};
    let in_window = |c: &Connection| match interval(c) {
        Some((start, _)) => {
            !(f.since.is_some_and(|s| start < s) || f.until.is_some_and(|u| start >= u))
        }
        None => true,
    };
    let failed: Vec<(&ConnLine, Failure)> = conns
        .iter()
        .filter(|l| in_window(&l.conn))
        .filter_map(|l| l.conn.failure().map(|x| (l, x)))
        .collect();
    if failed.is_empty() || !status_admits_connections(f) {
        return;
    }
    let inbound = |c: &Connection| c.direction.as_deref() == Some("inbound");
    let same_ips = |a: &Connection, b: &Connection| {
        ip_of(a.src_addr.as_deref()) == ip_of(b.src_addr.as_deref())
            && ip_of(a.dst_addr.as_deref()) == ip_of(b.dst_addr.as_deref())
    };
    type Acc = (
        usize,
        Option<DateTime<FixedOffset>>,
        Option<DateTime<FixedOffset>>,
        BTreeSet<Client>,
        (String, String, String),
    );
    let mut groups: BTreeMap<(Cause, String, String), Acc> = BTreeMap::new();
    for (l, failure) in &failed {
        let c = &l.conn;
        // The client's line of a connection the destination's ztunnel also logged.
        if !inbound(c)
            && failed.iter().any(|(o, _)| {
                inbound(&o.conn) && same_ips(c, &o.conn) && end_gap(c, &o.conn) <= PAIR_MS
            })
        {
            continue;
        }
        let side = if inbound(c) {
            "destination's"
        } else {
            "client's"
        };
        let r = read_failure(failure, c, side);
        if f.cause.is_some_and(|want| want != r.cause) {
            continue;
        }
        let Some(key) = failure_key(c) else {
            continue;
        };
        let target = c
            .dst_service
            .clone()
            .or_else(|| c.dst_hbone_addr.clone())
            .or_else(|| c.dst_addr.clone())
            .unwrap_or_else(|| "-".into());
        let g = groups.entry((r.cause, target, key)).or_insert_with(|| {
            (
                0,
                None,
                None,
                BTreeSet::new(),
                (
                    r.summary.clone(),
                    r.fix.clone(),
                    format!("{}:{}", l.input, l.line),
                ),
            )
        });
        g.0 += 1;
        if let Some((start, _)) = interval(c) {
            g.1 = Some(g.1.map_or(start, |x| x.min(start)));
            g.2 = Some(g.2.map_or(start, |x| x.max(start)));
        }
        if let Some(ip) = ip_of(c.src_addr.as_deref()) {
            let pod = topo.pod_by_ip(ip);
            // Ambient pods run without a sidecar by design: that is no remark here.
            g.3.insert(Client {
                address: ip.to_string(),
                pod: pod.map(|p| p.reference()),
                has_sidecar: None,
            });
        }
    }
    let fmt = |t: Option<DateTime<FixedOffset>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    for ((cause, target, _), (count, first, last, clients, (summary, fix, at))) in groups {
        report.requests += count;
        report.failed += count;
        report.groups.push(FailureGroup {
            cause,
            status: None,
            origin_role: "ztunnel".into(),
            kind: "connection",
            target,
            count,
            first_seen: fmt(first),
            last_seen: fmt(last),
            example_request_ids: Vec::new(),
            clients: clients.into_iter().collect(),
            summary,
            fix,
            example_evidence: at,
            example: None,
        });
    }
    crate::failures::sort_groups(&mut report.groups);
}

/// One ztunnel connection as `explain` lists it: the client's line (`outbound`) and the
/// destination's line (`inbound`) of one connection together, read as `trace` and `failures`
/// read them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionReport {
    /// The application's own connection: the client's `ip:port` (`src.addr`); what `trace`
    /// takes to follow it.
    pub source: Option<String>,
    /// `namespace/pod` of the source, when ztunnel names it.
    pub source_workload: Option<String>,
    /// Where it went: the Service host, else the address inside the HBONE tunnel, else the
    /// address ztunnel connected to.
    pub destination: Option<String>,
    /// `namespace/pod` of the destination, when ztunnel names it.
    pub destination_workload: Option<String>,
    /// Cause class (`ok` when no side logged an error).
    pub cause: Cause,
    /// Input of the line the verdict reads.
    pub origin_input: std::sync::Arc<str>,
    /// The line the verdict reads: the destination's when it names a cause, else the client's.
    pub origin_line: u64,
    /// The connection's lines, the client's first.
    pub lines: Vec<ConnectionLine>,
    /// Bytes sent and received and the duration, as the origin line says.
    pub bytes_sent: Option<u64>,
    /// Bytes received.
    pub bytes_received: Option<u64>,
    /// Duration in milliseconds.
    pub duration_ms: Option<u64>,
    /// Plain-language summary.
    pub summary: String,
    /// Usual fix (empty when the connection succeeded).
    pub fix: String,
    /// ztunnel's own words for the failure.
    pub evidence: Vec<String>,
}

/// One ztunnel line of a [`ConnectionReport`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionLine {
    /// Input name.
    pub input: std::sync::Arc<str>,
    /// 1-based line.
    pub line: u64,
    /// `outbound` (the client's ztunnel) or `inbound` (the destination's).
    pub direction: Option<String>,
    /// `error=` values, joined.
    pub error: Option<String>,
}

/// `namespace/pod` of one side of a connection, when ztunnel names the workload.
fn workload(c: &Connection, src: bool) -> Option<String> {
    let (w, n) = if src {
        (&c.src_workload, &c.src_namespace)
    } else {
        (&c.dst_workload, &c.dst_namespace)
    };
    match (n, w) {
        (Some(n), Some(w)) => Some(format!("{n}/{w}")),
        (None, Some(w)) => Some(w.clone()),
        _ => None,
    }
}

/// Explain ztunnel connection lines, one report per connection in the order of their first
/// line. Both ztunnels log a connection between two meshed pods: the client's `outbound` line
/// and the destination's `inbound` line (same source and destination IPs, ending within
/// `PAIR_MS`; the same source port first) are one connection, read as `trace` reads it: the
/// destination's failure when it names a cause (a policy, a refused port), else the client's.
pub fn explain_connections(conns: &[ConnLine]) -> Vec<ConnectionReport> {
    use std::collections::HashMap;
    let inbound = |c: &Connection| c.direction.as_deref() == Some("inbound");
    let outbound = |c: &Connection| c.direction.as_deref() == Some("outbound");
    // Inbound lines by source IP, for the client lines to find theirs.
    let mut by_src: HashMap<IpAddr, Vec<usize>> = HashMap::new();
    for (i, l) in conns.iter().enumerate() {
        if inbound(&l.conn)
            && let Some(ip) = ip_of(l.conn.src_addr.as_deref())
        {
            by_src.entry(ip).or_default().push(i);
        }
    }
    let mut paired: Vec<Option<usize>> = vec![None; conns.len()];
    let mut taken = vec![false; conns.len()];
    for (i, l) in conns.iter().enumerate() {
        let c = &l.conn;
        if !outbound(c) {
            continue;
        }
        let Some(src_ip) = ip_of(c.src_addr.as_deref()) else {
            continue;
        };
        let dst_ip = ip_of(c.dst_addr.as_deref());
        let best = by_src
            .get(&src_ip)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&j| !taken[j])
            .filter(|&j| {
                let o = &conns[j].conn;
                dst_ip.is_some() && ip_of(o.dst_addr.as_deref()) == dst_ip
                    || c.dst_hbone_addr.is_some() && o.dst_hbone_addr == c.dst_hbone_addr
            })
            .map(|j| (j, end_gap(c, &conns[j].conn)))
            .filter(|&(_, gap)| gap <= PAIR_MS)
            // The same source port first, then the nearest end.
            .min_by_key(|&(j, gap)| (conns[j].conn.src_addr != c.src_addr, gap));
        if let Some((j, _)) = best {
            taken[j] = true;
            paired[i] = Some(j);
        }
    }
    conns
        .iter()
        .enumerate()
        .filter(|&(i, _)| !taken[i])
        .map(|(i, l)| {
            let (client, server) = match paired[i] {
                Some(j) => (Some(l), Some(&conns[j])),
                None if inbound(&l.conn) => (None, Some(l)),
                None => (Some(l), None),
            };
            connection_report(client, server, l)
        })
        .collect()
}

/// One connection's report from its client-side and destination-side lines; `first` is the
/// one read first (one of the two).
fn connection_report(
    client: Option<&ConnLine>,
    server: Option<&ConnLine>,
    first: &ConnLine,
) -> ConnectionReport {
    let server_fail = server.and_then(|s| s.conn.failure().map(|f| (s, f)));
    let client_fail = client.and_then(|c| c.conn.failure().map(|f| (c, f)));
    let chosen = match (&server_fail, &client_fail) {
        (Some((s, f)), c) if f.specificity() >= 2 || c.is_none() => {
            Some((*s, f.clone(), "destination's"))
        }
        (_, Some((c, f))) => Some((*c, f.clone(), "client's")),
        _ => None,
    };
    // Both sides are the same connection: where one side is silent, the other names it.
    let either = |f: &dyn Fn(&Connection) -> Option<String>| {
        client
            .and_then(|l| f(&l.conn))
            .or_else(|| server.and_then(|l| f(&l.conn)))
    };
    let (origin, cause, summary, fix, evidence) = match chosen {
        Some((l, f, side)) => {
            let r = read_failure(&f, &l.conn, side);
            (
                l,
                r.cause,
                r.summary,
                r.fix,
                vec![format!(
                    "ztunnel error: {}",
                    l.conn.error_text().unwrap_or_default()
                )],
            )
        }
        None => {
            let l = first;
            let c = &l.conn;
            let mut facts = Vec::new();
            if let Some(b) = c.bytes_sent {
                facts.push(format!("{b} bytes sent"));
            }
            if let Some(b) = c.bytes_recv {
                facts.push(format!("{b} received"));
            }
            if let Some(d) = c.duration_ms {
                facts.push(format!("{d} ms"));
            }
            let sides = match (client, server) {
                (Some(_), Some(_)) => "both ztunnels logged it",
                (Some(_), None) => "the client's ztunnel logged it",
                _ => "the destination's ztunnel logged it",
            };
            (
                l,
                Cause::Ok,
                format!(
                    "The connection from {} to {} ended without an error ({sides}{}{}).",
                    who(c, true),
                    who(c, false),
                    if facts.is_empty() { "" } else { ": " },
                    facts.join(", ")
                ),
                String::new(),
                Vec::new(),
            )
        }
    };
    let line = |l: &ConnLine| ConnectionLine {
        input: l.input.clone(),
        line: l.line,
        direction: l.conn.direction.clone(),
        error: l.conn.error_text(),
    };
    ConnectionReport {
        source: either(&|c| c.src_addr.clone()),
        source_workload: either(&|c| workload(c, true)),
        destination: either(&|c| {
            c.dst_service
                .clone()
                .or_else(|| c.dst_hbone_addr.clone())
                .or_else(|| c.dst_addr.clone())
        }),
        destination_workload: either(&|c| workload(c, false)),
        cause,
        origin_input: origin.input.clone(),
        origin_line: origin.line,
        lines: client.into_iter().chain(server).map(line).collect(),
        bytes_sent: origin.conn.bytes_sent,
        bytes_received: origin.conn.bytes_recv,
        duration_ms: origin.conn.duration_ms,
        summary,
        fix,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u64, dir: &str, src_port: u16, error: Option<&str>) -> ConnLine {
        ConnLine {
            input: std::sync::Arc::from("z.log"),
            line: n,
            pod: None,
            conn: Connection {
                time: Some("2025-01-01T00:00:01.000Z".into()),
                direction: Some(dir.into()),
                src_addr: Some(format!("10.0.0.1:{src_port}")),
                dst_addr: Some("10.0.0.2:15008".into()),
                dst_hbone_addr: Some("10.0.0.2:8080".into()),
                errors: error.map(|e| vec![e.to_string()]).unwrap_or_default(),
                ..Connection::default()
            },
        }
    }

    /// Two connections between the same pods, ending together: each client line joins the
    /// destination line of its own source port, whatever the order of the lines.
    #[test]
    fn client_and_destination_lines_join_by_source_port_first() {
        let denied = "connection closed due to policy rejection: explicitly denied by: ns/deny";
        let conns = [
            line(1, "outbound", 4000, None),
            line(2, "outbound", 5000, Some("http status: 401 Unauthorized")),
            line(3, "inbound", 5000, Some(denied)),
            line(4, "inbound", 4000, None),
        ];
        let out = explain_connections(&conns);
        let lines: Vec<Vec<u64>> = out
            .iter()
            .map(|c| c.lines.iter().map(|l| l.line).collect())
            .collect();
        assert_eq!(lines, [vec![1, 4], vec![2, 3]]);
        assert_eq!(out[0].cause, Cause::Ok);
        // The destination's line names the policy: its reading wins over the client's 401.
        assert_eq!(out[1].cause, Cause::RbacDenied);
        assert_eq!(out[1].origin_line, 3);
        assert!(out[1].summary.contains("ns/deny"), "{}", out[1].summary);
    }

    /// Lines that end far apart, or lead to another pod, are two connections.
    #[test]
    fn lines_far_apart_or_to_another_pod_stay_apart() {
        let mut late = line(2, "inbound", 4000, None);
        late.conn.time = Some("2025-01-01T00:00:09.000Z".into());
        let mut other = line(3, "inbound", 4000, None);
        other.conn.dst_addr = Some("10.0.0.3:15008".into());
        other.conn.dst_hbone_addr = Some("10.0.0.3:8080".into());
        let out = explain_connections(&[line(1, "outbound", 4000, None), late, other]);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|c| c.lines.len() == 1));
    }
}
