//! Diagnosis: order the hops of one request, find the hop that produced the status, name the cause.
//!
//! Pure: records and facts in, a [`Verdict`] out. No I/O, no printing, no clock.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use meshtrace_parsers::address::parse_address;
use meshtrace_parsers::cluster::{ClusterName, Direction};
use meshtrace_parsers::details::{RbacPolicy, TransportFailureKind, detail_meaning};
use meshtrace_parsers::flags::ResponseFlag as F;
use meshtrace_parsers::record::RawRecord;
use meshtrace_parsers::slot::Slot;

use crate::causes::Cause;
pub use crate::reply::{
    envoy_generated, local_reply_without_details, refused_connection,
    retries_exhausted_on_upstream_status,
};

/// What is known about addresses beyond the lines of one request.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Pod IPs of Knative activators.
    pub activators: BTreeSet<IpAddr>,
    /// Pod IPs known to run without an istio-proxy sidecar.
    pub without_sidecar: BTreeSet<IpAddr>,
    /// Why each activator IP is believed to be one.
    pub activator_reasons: std::collections::BTreeMap<IpAddr, String>,
    /// Gateway listeners (`ip:port`) whose Gateway server terminates TLS itself (SIMPLE,
    /// MUTUAL): plaintext refused there is a TLS error, not an mTLS one (filled from the
    /// topology by `Evidence::context`).
    pub tls_listeners: BTreeSet<std::net::SocketAddr>,
    /// Classify only: verdicts carry status, cause, origin and hop order but no summary, fix
    /// or readings (`failures` puts only each group's example into words, through `trace`).
    pub brief: bool,
}

impl Context {
    /// Learn what the access-log lines themselves say about roles: a proxy that sends to a
    /// revision's `-private` Service, or the endpoint of `activator-service`, is an activator.
    pub fn from_records<'r>(records: impl IntoIterator<Item = &'r RawRecord<'r>>) -> Context {
        let mut ctx = Context::default();
        for r in records {
            ctx.learn(r);
        }
        ctx
    }

    /// Learn from one more record (see [`Context::from_records`]).
    pub fn learn(&mut self, r: &RawRecord<'_>) {
        let Some(ClusterName::Istio {
            direction: Direction::Outbound,
            host,
            ..
        }) = r.upstream_cluster()
        else {
            return;
        };
        let svc = host.split('.').next().unwrap_or("");
        if svc.ends_with("-private") && is_knative_revision(svc.trim_end_matches("-private")) {
            // The reason is kept even when the topology named the activator first (streamed
            // evidence learns the lines after the topology).
            if let Some(ip) = socket_and_ip(r, Slot::UpstreamLocalAddress).1
                && !self.activator_reasons.contains_key(&ip)
            {
                self.activators.insert(ip);
                self.activator_reasons.insert(
                    ip,
                    format!("{ip} is a Knative activator: its proxy forwards to the revision's private Service {host}"),
                );
            }
        } else if svc == "activator-service"
            && let Some(ip) = socket_and_ip(r, Slot::UpstreamHost).1
            && !self.activator_reasons.contains_key(&ip)
        {
            self.activators.insert(ip);
            self.activator_reasons.insert(
                ip,
                format!("{ip} is a Knative activator: it is an endpoint of {host}"),
            );
        }
    }
}

/// `<name>-00001`: a Knative revision name.
pub fn is_knative_revision(name: &str) -> bool {
    match name.rsplit_once('-') {
        Some((base, generation)) => {
            !base.is_empty()
                && generation.len() == 5
                && generation.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The conclusion about one request.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Status the client got (outermost hop).
    pub status: Option<u16>,
    /// Cause class.
    pub cause: Cause,
    /// Index (into the input slice) of the hop that produced the status.
    pub origin: usize,
    /// Hop indices from the client inwards.
    pub order: Vec<usize>,
    /// One paragraph for a person.
    pub summary: String,
    /// What to do about it.
    pub fix: String,
    /// Plain-language readings of the origin hop's flags, details and transport failure.
    pub evidence: Vec<String>,
    /// The fix as objects to apply, when the origin hop's record alone names the object
    /// ([`crate::fixes::from_record`]); a trace refines it with the bundle's objects.
    pub apply: Option<crate::fixes::Fix>,
}

fn is_inbound(r: &RawRecord<'_>) -> bool {
    r.upstream_cluster()
        .is_some_and(|c| c.is_inbound() || matches!(c, ClusterName::InboundPassthrough))
}

/// An address slot's socket (kept parsed by a packed record) and its IP, also of an address
/// without a port.
fn socket_and_ip(r: &RawRecord<'_>, slot: Slot) -> (Option<std::net::SocketAddr>, Option<IpAddr>) {
    let socket = r.socket(slot);
    let ip = match socket {
        Some(s) => Some(s.ip()),
        None => r.value(slot).and_then(parse_address).and_then(|a| a.ip()),
    };
    (socket, ip)
}

/// What forwarding links are judged on, parsed once per hop.
#[derive(Clone, Copy)]
struct LinkFacts<'p> {
    upstream_host: Option<std::net::SocketAddr>,
    upstream_local: Option<std::net::SocketAddr>,
    upstream_local_ip: Option<IpAddr>,
    downstream_local: Option<std::net::SocketAddr>,
    downstream_local_ip: Option<IpAddr>,
    downstream_remote: Option<std::net::SocketAddr>,
    downstream_remote_ip: Option<IpAddr>,
    inbound: bool,
    duration: Option<u64>,
    /// Start in Unix ms.
    start: Option<i64>,
    /// The pod whose log holds the line (`namespace/name`), when known.
    pod: Option<&'p str>,
}

impl<'p> LinkFacts<'p> {
    /// Nothing known (a place to fill).
    const NONE: LinkFacts<'static> = LinkFacts {
        upstream_host: None,
        upstream_local: None,
        upstream_local_ip: None,
        downstream_local: None,
        downstream_local_ip: None,
        downstream_remote: None,
        downstream_remote_ip: None,
        inbound: false,
        duration: None,
        start: None,
        pod: None,
    };

    fn of(r: &RawRecord<'_>, pod: Option<&'p str>) -> LinkFacts<'p> {
        let (upstream_local, upstream_local_ip) = socket_and_ip(r, Slot::UpstreamLocalAddress);
        let (downstream_local, downstream_local_ip) =
            socket_and_ip(r, Slot::DownstreamLocalAddress);
        let (downstream_remote, downstream_remote_ip) =
            socket_and_ip(r, Slot::DownstreamRemoteAddress);
        LinkFacts {
            upstream_host: r.socket(Slot::UpstreamHost),
            upstream_local,
            upstream_local_ip,
            downstream_local,
            downstream_local_ip,
            downstream_remote,
            downstream_remote_ip,
            inbound: is_inbound(r),
            duration: r.duration_ms(),
            start: r.start_time().map(|t| t.timestamp_millis()),
            pod,
        }
    }

    /// Did `b` start while `a` was open (5 ms slack for clocks and rounding)? Unknown times
    /// do not refute it.
    fn starts_inside(&self, b: &LinkFacts<'_>) -> bool {
        match (self.start, b.start) {
            (Some(a0), Some(b0)) => {
                let a1 = a0.saturating_add(i64::try_from(self.duration.unwrap_or(0)).unwrap_or(0));
                b0 >= a0 - 5 && b0 <= a1 + 5
            }
            _ => self.duration.unwrap_or(u64::MAX) >= b.duration.unwrap_or(0),
        }
    }

    fn links_to(&self, b: &LinkFacts<'_>) -> bool {
        let a = self;
        if let (Some(up), Some(dl)) = (a.upstream_host, b.downstream_local)
            && up == dl
            && !(a.inbound && a.downstream_local == Some(up))
        {
            return true;
        }
        if let (Some(ul), Some(dr)) = (a.upstream_local, b.downstream_remote)
            && ul.port() != 0
            && ul == dr
        {
            return true;
        }
        // Same pod: the sidecar's inbound hop hands the request to the app, whose outbound call
        // leaves through the same sidecar. The pod is known from the log the lines came from, or
        // from the outbound hop's own addresses: its upstream local address is on the pod IP, and
        // so is the app's connection into the sidecar (the only address left when the upstream
        // connection never opened: `UF`, `UH`).
        if !a.inbound || b.inbound {
            return false;
        }
        let same_pod = match (a.pod, b.pod) {
            (Some(x), Some(y)) => x == y,
            _ => {
                a.downstream_local_ip.is_some()
                    && (a.downstream_local_ip == b.upstream_local_ip
                        || (b.upstream_local_ip.is_none()
                            && a.downstream_local_ip == b.downstream_remote_ip))
            }
        };
        same_pod && a.starts_inside(b)
    }
}

/// Does hop `a` forward to hop `b`?
pub fn links_to(a: &RawRecord<'_>, b: &RawRecord<'_>) -> bool {
    LinkFacts::of(a, None).links_to(&LinkFacts::of(b, None))
}

/// Order hops from the client inwards (see [`order_hops_in`]).
pub fn order_hops(hops: &[&RawRecord<'_>]) -> Vec<usize> {
    order_hops_in(hops, &[])
}

/// Order hops from the client inwards. Forwarding links decide first (a hop's depth is the
/// longest chain of links that leads to it): the upstream host is the next hop's listener, the
/// upstream connection is the next hop's downstream connection, or the next hop is the same pod's
/// outbound call. Hops the links do not place are ordered by start time (an outer hop starts
/// before the ones it waits for), and durations only break ties: an inner hop may outlive an
/// outer one that gave up (route timeouts, client resets). `pods[i]`, when given, names the pod
/// whose log holds hop `i`.
pub fn order_hops_in(hops: &[&RawRecord<'_>], pods: &[Option<&str>]) -> Vec<usize> {
    let n = hops.len();
    let fact = |i: usize| LinkFacts::of(hops[i], pods.get(i).copied().flatten());
    // A request's few hops are ordered without a list of their own: this runs for every
    // request of every settling round, and its lists were most of its cost.
    if n <= FEW_HOPS {
        let mut facts = [LinkFacts::NONE; FEW_HOPS];
        for (i, f) in facts.iter_mut().enumerate().take(n) {
            *f = fact(i);
        }
        order_by_facts(&facts[..n])
    } else {
        let facts: Vec<LinkFacts<'_>> = (0..n).map(fact).collect();
        order_by_facts(&facts)
    }
}

/// Hops up to which [`order_hops_in`] keeps its facts, links and depths in place.
const FEW_HOPS: usize = 8;

/// [`order_hops_in`] on the hops' facts.
fn order_by_facts(facts: &[LinkFacts<'_>]) -> Vec<usize> {
    let n = facts.len();
    let links = (0..n)
        .flat_map(|a| (0..n).map(move |b| (a, b)))
        .filter(|&(a, b)| a != b && facts[a].links_to(&facts[b]));
    let mut few = ([(0usize, 0usize); FEW_HOPS * FEW_HOPS], [0usize; FEW_HOPS]);
    let mut many: (Vec<(usize, usize)>, Vec<usize>);
    let (links, depth): (&[(usize, usize)], &mut [usize]) = if n <= FEW_HOPS {
        // At most n × (n − 1) links, which fit.
        let mut k = 0;
        for (slot, link) in few.0.iter_mut().zip(links) {
            *slot = link;
            k += 1;
        }
        (&few.0[..k], &mut few.1[..n])
    } else {
        many = (links.collect(), vec![0usize; n]);
        (&many.0, &mut many.1)
    };
    longest_chains(links, depth);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&x, &y| {
        let (a, b) = (&facts[x], &facts[y]);
        depth[x]
            .cmp(&depth[y])
            .then(
                a.start
                    .unwrap_or(i64::MAX)
                    .cmp(&b.start.unwrap_or(i64::MAX)),
            )
            .then(b.duration.unwrap_or(0).cmp(&a.duration.unwrap_or(0)))
            .then(a.inbound.cmp(&b.inbound))
            .then(x.cmp(&y))
    });
    idx
}

/// Each hop's depth: the longest chain of `links` that leads to it.
fn longest_chains(links: &[(usize, usize)], depth: &mut [usize]) {
    let n = depth.len();
    // n rounds bound it even if links form a cycle.
    for _ in 0..n {
        let mut changed = false;
        for &(a, b) in links {
            if depth[b] < depth[a] + 1 && depth[a] < n {
                depth[b] = depth[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// A hop whose only flags say the downstream went away (`DC`, `DR`) after a response status
/// existed: a proxy that retries resets the attempt it gives up on, and a client may leave while
/// the body flows. The status itself came from upstream when an upstream host answered.
fn downstream_left_after_status(r: &RawRecord<'_>) -> bool {
    let mut flags = r.flags();
    let left = flags.contains(F::DownstreamConnectionTermination)
        || flags.contains(F::DownstreamRemoteReset);
    flags.remove(F::DownstreamConnectionTermination);
    flags.remove(F::DownstreamRemoteReset);
    // `URX` beside them: retries were exhausted on the upstream's own retriable status (the
    // reset overwrote the `via_upstream` details).
    flags.remove(F::UpstreamRetryLimitExceeded);
    left && flags.is_empty()
        && r.status().is_some_and(|s| s >= 100)
        && r.upstream_host().is_some()
        && (r.upstream_service_time_ms().is_some() || r.upstream_local().is_some())
}

/// Did this hop hand on a status it got from upstream (rather than generate one)?
fn relays_status(r: &RawRecord<'_>) -> bool {
    !envoy_generated(r) || downstream_left_after_status(r)
}

/// Did this hop fail to get any response from its upstream connection (connect failure, reset,
/// TLS failure)? The hop behind it, if any, may have logged why.
pub fn upstream_connection_failed(r: &RawRecord<'_>) -> bool {
    let f = r.flags();
    f.contains(F::UpstreamConnectionFailure)
        || f.contains(F::UpstreamConnectionTermination)
        || f.contains(F::UpstreamRemoteReset)
        || (f.contains(F::UpstreamRetryLimitExceeded)
            && r.details().is_some_and(|d| d.base != "via_upstream")
            && !downstream_left_after_status(r))
        || r.details()
            .is_some_and(|d| d.base.starts_with("upstream_reset_before_response_started"))
}

/// Diagnose one request from its hops (any order).
pub fn diagnose(hops: &[&RawRecord<'_>], ctx: &Context) -> Verdict {
    diagnose_in(hops, &[], ctx)
}

/// [`diagnose`] knowing the pod whose log holds each hop (`pods[i]`, `namespace/name`).
pub fn diagnose_in(hops: &[&RawRecord<'_>], pods: &[Option<&str>], ctx: &Context) -> Verdict {
    diagnose_with(hops, pods, ctx, ctx.brief)
}

/// [`diagnose_in`], without the words (summary, fix, evidence) when `brief`: the status,
/// cause, origin and order only.
pub(crate) fn diagnose_with(
    hops: &[&RawRecord<'_>],
    pods: &[Option<&str>],
    ctx: &Context,
    brief: bool,
) -> Verdict {
    let order = order_hops_in(hops, pods);
    let Some(&outer) = order.first() else {
        return Verdict {
            status: None,
            cause: Cause::Unknown,
            origin: 0,
            order,
            summary: "no access-log record".into(),
            fix: Cause::Unknown.fix().into(),
            evidence: Vec::new(),
            apply: None,
        };
    };
    // The client got the outermost hop's status, whatever the inner hops logged later.
    let status = hops[outer].status();
    // Walk inwards while the status is relayed unchanged.
    let mut origin = outer;
    for (k, w) in order.iter().copied().enumerate() {
        if hops[w].status() != status && w != outer {
            break;
        }
        origin = w;
        if !relays_status(hops[w]) {
            // A connection this hop could not use may have been refused by the next proxy,
            // which then logged why (plaintext into an mTLS-only listener, a failed handshake).
            if upstream_connection_failed(hops[w])
                && let Some(&refused) = order[k + 1..]
                    .iter()
                    .find(|&&x| refused_connection(hops[x]) && links_to(hops[w], hops[x]))
            {
                origin = refused;
            }
            break;
        }
    }
    let rec = hops[origin];
    let innermost = origin == *order.last().unwrap_or(&origin);
    let mut cause = classify(rec, ctx);
    let client_failed = status.is_none_or(|s| s >= 400 || (s == 0 && !hops[outer].is_tcp()));
    if cause == Cause::Ok && client_failed {
        // An inner hop that succeeded cannot be why the client failed: the outer hop gave up
        // (timeout, reset) and answered by itself.
        origin = outer;
        cause = match classify(hops[outer], ctx) {
            Cause::Ok => Cause::Unknown,
            c => c,
        };
    }
    let rec = hops[origin];
    if brief {
        return Verdict {
            status,
            cause,
            origin,
            order,
            summary: String::new(),
            fix: String::new(),
            evidence: Vec::new(),
            apply: None,
        };
    }
    let mut evidence = read_evidence(rec);
    if cause == Cause::ActivatorError
        && let Some(reason) = rec
            .downstream_local()
            .and_then(|a| a.ip())
            .and_then(|ip| ctx.activator_reasons.get(&ip))
    {
        evidence.push(reason.clone());
    }
    let summary = summarise(rec, hops[outer], cause, innermost);
    let fix = specific_fix(rec, cause);
    Verdict {
        status,
        cause,
        origin,
        order,
        summary,
        fix,
        evidence,
        apply: crate::fixes::from_record(rec, cause),
    }
}

/// Listener ports where gateways serve HTTPS: Istio's ingress gateway 8443 (behind Service port
/// 443), Gateway API listeners on 443, Envoy Gateway's 10443 (its Service's 443).
const GATEWAY_TLS_PORTS: [u16; 3] = [443, 8443, 10443];

/// A connection no filter chain accepted (`filter_chain_not_found`) with no server name, on a
/// port where gateways serve HTTPS: without a bundle saying which proxy this is, a TLS client
/// without SNI at a gateway is as likely as plaintext at a sidecar.
fn unnamed_client_at_gateway_port(r: &RawRecord<'_>) -> bool {
    r.details()
        .is_some_and(|d| d.base == "filter_chain_not_found")
        && r.sni().is_none_or(|s| s.is_empty() || s == "-")
        && r.socket(Slot::DownstreamLocalAddress)
            .is_some_and(|a| GATEWAY_TLS_PORTS.contains(&a.port()))
}

fn tls_reason(r: &RawRecord<'_>) -> Option<(TransportFailureKind, String)> {
    let from_details = r.details().and_then(|d| {
        d.transport_failure
            .map(|t| (t.kind, t.reason.unwrap_or(t.raw).to_string()))
    });
    let from_field = r
        .transport_failure()
        .map(|t| (t.kind, t.reason.unwrap_or(t.raw).to_string()));
    from_field.or(from_details)
}

/// The cause class of the hop that produced the status: policy decisions first (RBAC,
/// ext_authz, authentication, rate limits, faults, egress), then a status relayed from upstream,
/// then connection-level failures, then timeouts and resets, then the plain status.
pub fn classify(r: &RawRecord<'_>, ctx: &Context) -> Cause {
    policy_cause(r)
        .or_else(|| relayed(r, ctx))
        .or_else(|| connection_cause(r, ctx))
        .or_else(|| timeout_or_reset_cause(r, ctx))
        .or_else(|| direct_response_cause(r))
        .unwrap_or_else(|| plain_cause(r, ctx))
}

/// A failed status the matched route answered by itself (details `direct_response`: Envoy's
/// router filter answered from the route's configuration without calling a backend).
fn direct_response_cause(r: &RawRecord<'_>) -> Option<Cause> {
    let failed = r.status().is_some_and(|s| s >= 400);
    (failed && r.details().is_some_and(|d| d.base == "direct_response"))
        .then_some(Cause::DirectResponse)
}

/// A policy that answered: RBAC, ext_authz, JWT, rate limits, fault injection, egress blocking.
fn policy_cause(r: &RawRecord<'_>) -> Option<Cause> {
    let flags = r.flags();
    let details = r.details();
    let base = details.as_ref().map(|d| d.base).unwrap_or("");
    let has = |f: F| flags.contains(f);
    let status = r.status();
    let cluster = r.upstream_cluster();
    if base.starts_with("rbac_access_denied") {
        return Some(Cause::RbacDenied);
    }
    if let Some(c) = Cause::from_ext_proc_details(base) {
        return Some(c);
    }
    if base.starts_with("ext_authz") || has(F::UnauthorizedExternalService) {
        return Some(Cause::ExtAuthzDenied);
    }
    if base.starts_with("jwt_authn") || (status == Some(401) && base.contains("jwt")) {
        return Some(Cause::AuthnFailed);
    }
    // The service behind a global rate limit failed (`RLSE`, `rate_limiter_error`): no limit
    // was reached, so it is not `rate_limited` (Envoy answers 500, not 429).
    if has(F::RateLimitServiceError) || base == "rate_limiter_error" {
        return Some(Cause::RateLimitServiceError);
    }
    if has(F::RateLimited) || matches!(base, "request_rate_limited" | "local_rate_limited") {
        return Some(Cause::RateLimited);
    }
    if has(F::FaultInjected) || has(F::DelayInjected) || base.starts_with("fault_filter") {
        return Some(Cause::FaultInjected);
    }
    if matches!(cluster, Some(ClusterName::BlackHole)) || r.route_name() == Some("block_all") {
        return Some(Cause::EgressBlocked);
    }
    None
}

/// A status the hop relayed from upstream.
fn relayed(r: &RawRecord<'_>, ctx: &Context) -> Option<Cause> {
    let base = r.details().map(|d| d.base).unwrap_or("");
    // The status came from upstream: the hop relayed it, whatever else it noted (`URX` after
    // the last attempt's own 503, `DC`/`DR` when the caller reset the stream afterwards).
    if !r.is_tcp()
        && (base == "via_upstream"
            || downstream_left_after_status(r)
            || retries_exhausted_on_upstream_status(r))
    {
        return Some(relayed_cause(r, ctx));
    }
    None
}

/// Connection-level failures: no filter chain, no route or cluster, circuit breakers, no
/// healthy upstream, TLS, connect failures.
fn connection_cause(r: &RawRecord<'_>, ctx: &Context) -> Option<Cause> {
    let flags = r.flags();
    let details = r.details();
    let base = details.as_ref().map(|d| d.base).unwrap_or("");
    let has = |f: F| flags.contains(f);
    if base == "filter_chain_not_found" {
        if r.socket(Slot::DownstreamLocalAddress)
            .is_some_and(|l| ctx.tls_listeners.contains(&l))
        {
            return Some(Cause::TlsError);
        }
        let client = r.downstream_remote().and_then(|a| a.ip());
        if client.is_some_and(|ip| ctx.without_sidecar.contains(&ip)) {
            return Some(Cause::MissingSidecar);
        }
        // A server name logged: the client spoke TLS (SNI travels only in a TLS ClientHello),
        // and no filter chain matched that name (a Gateway server's hosts, say), not plaintext.
        if r.sni().is_some_and(|s| !s.is_empty() && s != "-") {
            return Some(Cause::TlsError);
        }
        return Some(Cause::PlaintextToMtls);
    }
    if has(F::NoRouteFound) || matches!(base, "route_not_found" | "route_configuration_not_found") {
        return Some(Cause::RouteNotFound);
    }
    if has(F::NoClusterFound) || base == "cluster_not_found" {
        return Some(Cause::ClusterNotFound);
    }
    if has(F::UpstreamOverflow) || details.as_ref().and_then(|d| d.reset_reason) == Some("overflow")
    {
        return Some(Cause::CircuitBreaker);
    }
    if has(F::NoHealthyUpstream) || base == "no_healthy_upstream" {
        return Some(Cause::NoHealthyUpstream);
    }
    let upstream_ip = r.upstream_host().and_then(|a| a.ip());
    let peer_without_sidecar = upstream_ip.is_some_and(|ip| ctx.without_sidecar.contains(&ip));
    if let Some((kind, reason)) = tls_reason(r)
        && kind == TransportFailureKind::Tls
    {
        let reason = reason.to_ascii_uppercase().replace(' ', "_");
        if reason.contains("WRONG_VERSION_NUMBER") || reason.contains("HTTP_REQUEST") {
            return Some(if peer_without_sidecar {
                Cause::MissingSidecar
            } else {
                Cause::MtlsMismatch
            });
        }
        if peer_without_sidecar && reason.contains("CONNECTION_RESET") {
            return Some(Cause::MissingSidecar);
        }
        return Some(Cause::TlsError);
    }
    // `URX` only says retries ran out; the flag beside it says on what. A per-try timeout or a
    // reset is read as such below.
    let retried_on_other = [
        F::UpstreamRequestTimeout,
        F::UpstreamConnectionTermination,
        F::UpstreamRemoteReset,
        F::UpstreamProtocolError,
        F::LocalReset,
    ]
    .into_iter()
    .any(has);
    if has(F::UpstreamConnectionFailure)
        || (has(F::UpstreamRetryLimitExceeded) && !retried_on_other)
        || has(F::DnsResolutionFailed)
    {
        if peer_without_sidecar {
            return Some(Cause::MissingSidecar);
        }
        return Some(Cause::UpstreamConnectFailure);
    }
    None
}

/// Timeouts, downstream disconnects, protocol errors, upstream resets, idle timeouts.
fn timeout_or_reset_cause(r: &RawRecord<'_>, ctx: &Context) -> Option<Cause> {
    let flags = r.flags();
    let details = r.details();
    let base = details.as_ref().map(|d| d.base).unwrap_or("");
    let has = |f: F| flags.contains(f);
    let peer_without_sidecar = r
        .upstream_host()
        .and_then(|a| a.ip())
        .is_some_and(|ip| ctx.without_sidecar.contains(&ip));
    if has(F::UpstreamRequestTimeout)
        || matches!(
            base,
            "response_timeout"
                | "upstream_per_try_timeout"
                | "upstream_per_try_idle_timeout"
                | "request_overall_timeout"
        )
        || has(F::UpstreamMaxStreamDurationReached)
    {
        return Some(Cause::UpstreamTimeout);
    }
    if has(F::DownstreamConnectionTermination)
        || has(F::DownstreamRemoteReset)
        || base == "downstream_remote_disconnect"
        || base == "http2.remote_reset"
    {
        return Some(Cause::DownstreamDisconnect);
    }
    if let Some(c) = crate::protocol::refused_cause(r) {
        return Some(c);
    }
    if has(F::UpstreamProtocolError)
        || has(F::DownstreamProtocolError)
        || has(F::InvalidEnvoyRequestHeaders)
        || base.starts_with("http1.")
        || base.starts_with("http2.")
        || base.starts_with("codec_error")
        || details.as_ref().and_then(|d| d.reset_reason) == Some("protocol_error")
    {
        return Some(Cause::ProtocolError);
    }
    if has(F::UpstreamConnectionTermination)
        || has(F::UpstreamRemoteReset)
        || has(F::LocalReset)
        || base.starts_with("upstream_reset")
    {
        if peer_without_sidecar {
            return Some(Cause::MissingSidecar);
        }
        return Some(Cause::UpstreamReset);
    }
    if has(F::StreamIdleTimeout)
        || has(F::DurationTimeout)
        || matches!(
            base,
            "stream_idle_timeout"
                | "duration_timeout"
                | "max_duration_timeout"
                | "request_header_timeout"
                | "downstream_header_timeout"
        )
        || (base == "downstream_local_disconnect"
            && details
                .as_ref()
                .and_then(|d| d.arg)
                .is_some_and(|a| a.contains("timeout")))
    {
        return Some(Cause::IdleTimeout);
    }
    None
}

/// No Envoy-generated evidence: the status itself says (success, the application, unknown).
fn plain_cause(r: &RawRecord<'_>, ctx: &Context) -> Cause {
    let flags = r.flags();
    let details = r.details();
    let base = details.as_ref().map(|d| d.base).unwrap_or("");
    let status = r.status();
    // A TCP connection that closed normally: status 0, no flags, no local-reply details.
    if r.is_tcp() && flags.is_empty() && (details.is_none() || base == "via_upstream") {
        return Cause::Ok;
    }
    let failed = status.is_none_or(|s| s == 0 || s >= 400);
    if local_reply_without_details(r) {
        // Of the filters that answer before the router, only authentication ones answer 401
        // (jwt_authn for a RequestAuthentication, oauth2, ext_authz configured so); other
        // statuses could come from several (RBAC and ext_authz both answer 403).
        return if status == Some(401) {
            Cause::AuthnFailed
        } else {
            Cause::Unknown
        };
    }
    if failed && format_cannot_tell_who_answered(r) {
        return Cause::Unknown;
    }
    if base == "via_upstream"
        || (details.is_none() && flags.is_empty() && status.is_some_and(|s| s != 0))
    {
        return relayed_cause(r, ctx);
    }
    if !failed && flags.is_empty() {
        return Cause::Ok;
    }
    Cause::Unknown
}

/// A format that logs neither `%RESPONSE_FLAGS%`, `%RESPONSE_CODE_DETAILS%` nor
/// `%UPSTREAM_HOST%` (a custom JSON log with its own keys, say) cannot tell a proxy's own answer
/// from the upstream's: a line without them says nothing either way. (A field written as `-`
/// says "none"; a field the format lacks says nothing.)
fn format_cannot_tell_who_answered(r: &RawRecord<'_>) -> bool {
    use meshtrace_parsers::Slot;
    [
        Slot::ResponseFlags,
        Slot::ResponseCodeDetails,
        Slot::UpstreamHost,
    ]
    .iter()
    .all(|s| r.get(*s).is_none())
        && r.missing.is_empty()
}

/// The cause of a status that came from upstream: success, the activator's own answer, or the
/// application's.
fn relayed_cause(r: &RawRecord<'_>, ctx: &Context) -> Cause {
    if !r.status().is_none_or(|s| s == 0 || s >= 400) {
        return Cause::Ok;
    }
    let pod = r.downstream_local().and_then(|a| a.ip());
    if is_inbound(r) && pod.is_some_and(|ip| ctx.activators.contains(&ip)) {
        return Cause::ActivatorError;
    }
    Cause::AppError
}

/// Plain-language readings of a record's flags, details and transport failure.
pub fn read_evidence(r: &RawRecord<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for f in r.flags().iter() {
        out.push(format!(
            "flag {} ({}): {}",
            f.short(),
            f.long(),
            f.meaning()
        ));
    }
    if retries_exhausted_on_upstream_status(r) {
        out.push(format!(
            "URX with no connection-failure flag (UF, UC, UR, UT) and upstream host {}: the status is the upstream's own, passed on after the last retry",
            r.get(meshtrace_parsers::Slot::UpstreamHost).unwrap_or("-")
        ));
    }
    if local_reply_without_details(r) {
        out.push(
            "upstream host `-`, no response flag, no response-code details: the proxy answered without calling any upstream (a local reply)".into(),
        );
    }
    if r.status().is_none_or(|s| s == 0 || s >= 400) && format_cannot_tell_who_answered(r) {
        out.push(
            "this log format has no %RESPONSE_FLAGS%, %RESPONSE_CODE_DETAILS% or %UPSTREAM_HOST%: nothing in the line tells the proxy's own answer from the upstream's; add them to the access log format (Envoy docs: access log command operators)".into(),
        );
    }
    let details = r.details();
    if let Some(d) = &details {
        let meaning = detail_meaning(d.raw).or_else(|| detail_meaning(d.base));
        let mut s = String::with_capacity(d.raw.len() + meaning.map_or(0, str::len) + 16);
        s.push_str("details `");
        s.push_str(d.raw);
        s.push('`');
        if let Some(m) = meaning {
            s.push_str(": ");
            s.push_str(m);
        }
        if let Some(reason) = d.reset_reason {
            s.push_str(" Reset reason: ");
            s.push_str(reason);
            s.push('.');
        }
        out.push(s);
        match d.rbac_policy {
            Some(RbacPolicy::None) => out.push(
                "RBAC policy `[none]`: no DENY policy matched; the workload has ALLOW policies and the request matched none of their rules".into(),
            ),
            Some(RbacPolicy::Policy { namespace, name, rule }) => out.push(format!(
                "RBAC policy: AuthorizationPolicy {namespace}/{name}{} matched with action DENY (or a CUSTOM/AUDIT provider denied)",
                rule.map(|n| format!(", rule {n}")).unwrap_or_default()
            )),
            Some(RbacPolicy::Other(o)) => out.push(format!("RBAC policy id `{o}`")),
            None => {}
        }
        if d.base == "filter_chain_not_found" {
            match r.sni().filter(|s| !s.is_empty() && *s != "-") {
                Some(sni) => out.push(format!(
                    "server name `{sni}` was sent, so the client spoke TLS: no filter chain of this listener serves that name (a Gateway server's `hosts`, a sidecar's inbound port) — call it with a host the listener lists, or add this one"
                )),
                None => out.push(
                    "no server name (SNI) in the line: the client sent plaintext, or TLS without a server name, to a listener whose filter chains all expect one".into(),
                ),
            }
        }
        if d.base == "direct_response" && r.status() == Some(500) {
            out.push(
                "a 500 direct response is either one the route was given (a VirtualService `directResponse`, an EnvoyFilter) or, on a Gateway API gateway, the answer for a route rule whose backendRefs are all invalid (Gateway API HTTPRoute reference: an invalid backendRef MUST get 500): check the route's `ResolvedRefs` condition (`kubectl get httproute <name> -o yaml`)".into(),
            );
        }
    }
    let tf = r
        .transport_failure()
        .or_else(|| details.and_then(|d| d.transport_failure));
    if let Some(t) = tf {
        let what = t.reason.unwrap_or(t.raw);
        match t.explain() {
            Some(e) => out.push(format!("transport failure {what}: {e}")),
            None => out.push(format!("transport failure: {}", t.raw)),
        }
    }
    match r.upstream_cluster() {
        Some(ClusterName::BlackHole) => out.push(
            "upstream cluster BlackHoleCluster: Istio's sink for traffic to hosts not in the service registry (outboundTrafficPolicy REGISTRY_ONLY)".into(),
        ),
        Some(ClusterName::Passthrough) => out.push(
            "upstream cluster PassthroughCluster: traffic to a host outside the registry, allowed by ALLOW_ANY".into(),
        ),
        _ => {}
    }
    if r.route_name() == Some("block_all") {
        out.push("route block_all: Istio's route for HTTP to hosts not in the service registry under REGISTRY_ONLY (answers 502)".into());
    }
    if let Some(t) = r.termination_details() {
        out.push(format!("connection termination: {t}"));
    }
    for n in &r.notes {
        out.push(n.to_string());
    }
    if !r.missing.is_empty() {
        let names: Vec<&str> = r.missing.iter().map(|m| &**m).collect();
        out.push(format!(
            "fields not in the pasted line: {}",
            names.join(", ")
        ));
    }
    out
}

/// Short description of where a hop sits: `inbound 10.1.2.3:8012 (inbound|8012||)`.
/// Built for every hop of every request explained, so without the formatting machinery.
pub fn hop_label(r: &RawRecord<'_>) -> String {
    let cluster = r.upstream_cluster();
    let Some(local) = r
        .get(meshtrace_parsers::Slot::DownstreamLocalAddress)
        .filter(|l| *l != "-")
    else {
        // Envoy's default format logs neither the listener address nor the cluster.
        return match cluster {
            Some(c) => {
                let mut s = String::from("the proxy sending to ");
                c.push_to(&mut s);
                s
            }
            None => "the proxy that wrote this line".into(),
        };
    };
    // The longest wording and the cluster as written (its name is written back about as
    // long): one allocation, where a fixed 96 bytes grew once for most outbound labels.
    let cluster_len = r
        .get(meshtrace_parsers::Slot::UpstreamCluster)
        .map_or(0, str::len);
    let mut s = String::with_capacity(32 + local.len() + cluster_len);
    match cluster {
        Some(c) if c.is_inbound() => {
            s.push_str("sidecar inbound ");
            s.push_str(local);
            s.push_str(" (");
            c.push_to(&mut s);
            s.push(')');
        }
        Some(c) => {
            s.push_str("the proxy handling ");
            s.push_str(local);
            s.push_str(" → ");
            c.push_to(&mut s);
        }
        None => {
            s.push_str("the proxy handling ");
            s.push_str(local);
            s.push_str(" (no upstream cluster)");
        }
    }
    s
}

/// [`hop_label`], shared: a label is built once for each listener address and cluster (of
/// the last 256 seen on this thread, found by a hash of both) and handed out again
/// while they repeat, as they do for every request through the same proxies.
pub fn shared_hop_label(r: &RawRecord<'_>) -> Arc<str> {
    let local = r.get(Slot::DownstreamLocalAddress).unwrap_or("");
    let cluster = r.get(Slot::UpstreamCluster).unwrap_or("");
    if local.len() + cluster.len() > LABEL_FROM_MAX {
        return Arc::from(hop_label(r));
    }
    let slot = label_slot(local.as_bytes(), cluster.as_bytes());
    HOP_LABELS.with_borrow_mut(|labels| {
        if labels.is_empty() {
            labels.resize_with(LABEL_SLOTS, Default::default);
        }
        let l = &mut labels[slot];
        if let Some(label) = &l.label
            && l.local == local
            && l.cluster == cluster
        {
            return label.clone();
        }
        let label: Arc<str> = Arc::from(hop_label(r));
        l.local.clear();
        l.local.push_str(local);
        l.cluster.clear();
        l.cluster.push_str(cluster);
        l.label = Some(label.clone());
        label
    })
}

/// One label of [`shared_hop_label`] and what it was built from.
#[derive(Default)]
struct SharedLabel {
    local: String,
    cluster: String,
    label: Option<Arc<str>>,
}

/// How many labels [`shared_hop_label`] keeps per thread, and the longest address and cluster
/// it keeps one for.
const LABEL_SLOTS: usize = 256;
const LABEL_FROM_MAX: usize = 512;

thread_local! {
    static HOP_LABELS: std::cell::RefCell<Vec<SharedLabel>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The slot of [`HOP_LABELS`] for a listener address and a cluster: a hash of every byte of
/// both, a word at a time (byte by byte cost more than building the label).
fn label_slot(local: &[u8], cluster: &[u8]) -> usize {
    let mut h = (local.len() as u64) << 32 | cluster.len() as u64;
    for part in [local, cluster] {
        let mut words = part.chunks_exact(8);
        for w in words.by_ref() {
            let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        }
        let mut last = [0u8; 8];
        last[..words.remainder().len()].copy_from_slice(words.remainder());
        h = (h ^ u64::from_le_bytes(last)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    ((h ^ (h >> 32)).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 56) as usize % LABEL_SLOTS
}

fn summarise(r: &RawRecord<'_>, outer: &RawRecord<'_>, cause: Cause, innermost: bool) -> String {
    let status = r
        .status()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let label = hop_label(r);
    // What the details alone explain (a response cut after it started, an HTTP/1.0 or upgrade
    // request refused), in their own words.
    let own_words = crate::protocol::summary(r, &status, &label);
    let mut s = match cause {
        _ if own_words.is_some() => own_words.unwrap_or_default(),
        Cause::PlaintextToMtls if unnamed_client_at_gateway_port(r) => format!(
            "{status} was generated by {label}: no filter chain of this listener accepted the connection, and the client sent no server name (SNI). On a gateway's HTTPS port that is a TLS client without a server name (called by IP address, or a client that omits it), where every server of the Gateway names its hosts — or plaintext HTTP sent to the HTTPS port; on a sidecar's port under STRICT mTLS, a plaintext client."
        ),
        Cause::ExtAuthzDenied if r.status().is_some_and(|c| (300..400).contains(&c)) => format!(
            "{status} was generated by {label}: the external authorizer answered with a redirect, the way an OIDC authorizer (oauth2-proxy, Authservice, a CUSTOM provider) sends a client without a valid session to sign in — not a failure of the proxy. The client follows it to the sign-in host; an error after that is that host's (a 404 there: no route for it at this gateway)."
        ),
        Cause::Unknown if format_cannot_tell_who_answered(r) => format!(
            "{status} at {label}: this log format does not record who answered (no response flags, details or upstream host), so the line cannot tell the proxy's own {status} from the upstream's."
        ),
        _ if local_reply_without_details(r) => format!(
            "{status} was generated by {label} itself, not by the application: no upstream host was chosen and no response flag was set, so a filter that answers before the router replied — {} This log format has no %RESPONSE_CODE_DETAILS%, the field that names the filter (`jwt_authn_access_denied{{…}}`, `rbac_access_denied_matched_policy[…]`, `ext_authz_denied`, `direct_response`).",
            local_reply_candidates(r.status())
        ),
        Cause::AppError | Cause::ActivatorError if innermost && !is_inbound(r) => {
            let up = r.upstream_host();
            let same_pod = match (
                up.and_then(|a| a.ip()),
                r.downstream_local().and_then(|a| a.ip()),
            ) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            };
            format!(
                "{status} was relayed by {label} from its upstream ({}{}); no later hop of this request id is in the evidence, so {}. The x-request-id can change at a gateway: follow the connection with `meshtrace trace`.",
                r.get(meshtrace_parsers::Slot::UpstreamHost).unwrap_or("-"),
                if same_pod {
                    ", another listener of this same proxy"
                } else {
                    ""
                },
                cause.title()
            )
        }
        Cause::RateLimited | Cause::RateLimitServiceError
            if crate::ratelimit::Kind::of(r).is_some() =>
        {
            format!(
                "{status} was generated by {label}: {}.",
                crate::ratelimit::Kind::of(r).map_or("", |k| k.summary())
            )
        }
        // The usual summaries, pieced together (one per request explained).
        _ => {
            let between = match cause {
                Cause::AppError | Cause::ActivatorError => " came from the application behind ",
                Cause::Ok => " from ",
                _ => " was generated by ",
            };
            let title = cause.title();
            let mut s = String::with_capacity(
                status.len() + between.len() + label.len() + title.len() + 96,
            );
            s.push_str(&status);
            s.push_str(between);
            s.push_str(&label);
            s.push_str(": ");
            s.push_str(title);
            s.push('.');
            s
        }
    };
    if let Some(grpc) = crate::protocol::grpc_local_reply(r) {
        s.push(' ');
        s.push_str(&grpc);
    }
    if retries_exhausted_on_upstream_status(r) {
        s.push_str(&format!(
            " The route's retries were used up (URX) on this {status} from the upstream itself: every attempt reached the application and got its error, so this is not a connection failure; retrying more will not help."
        ));
    }
    if let (Some(a), Some(p)) = (outer.authority(), outer.path()) {
        s.push_str(" Request: ");
        s.push_str(outer.method().unwrap_or("-"));
        s.push(' ');
        s.push_str(a);
        s.push_str(p);
        s.push('.');
    }
    s
}

/// Which filters answer a status before the router, for a local reply without details.
fn local_reply_candidates(status: Option<u16>) -> &'static str {
    match status {
        Some(401) => {
            "a 401 comes from authentication: jwt_authn (a RequestAuthentication rejecting a missing, expired or badly signed token), oauth2, or an ext_authz (CUSTOM) provider answering 401."
        }
        Some(403) => {
            "a 403 is an authorization denial, by the RBAC filter of an Istio AuthorizationPolicy or by an ext_authz (CUSTOM) provider."
        }
        Some(429) => {
            "a 429 without the RL flag comes from a Lua/Wasm filter or an ext_authz provider answering 429."
        }
        _ => {
            "the candidates are a direct_response route, a Lua/Wasm filter, an ext_authz provider, or a fault abort in a format without flags."
        }
    }
}

fn specific_fix(r: &RawRecord<'_>, cause: Cause) -> String {
    let general = cause.fix();
    if local_reply_without_details(r) {
        return format!(
            "Add %RESPONSE_CODE_DETAILS% (and %RESPONSE_FLAGS%, %UPSTREAM_CLUSTER%) to the access-log format (MeshConfig accessLogFormat, a Telemetry provider, or the EnvoyFilter/bootstrap that sets it; Istio's default format has them) so the next occurrence names the filter; meanwhile list what answers before the router on this proxy: `kubectl get requestauthentication,authorizationpolicy,envoyfilter -A` for the policies selecting its pod. {general}"
        );
    }
    if let Some(fix) = crate::protocol::fix(r) {
        return fix;
    }
    if cause == Cause::PlaintextToMtls && unnamed_client_at_gateway_port(r) {
        return format!(
            "At a gateway: call it by a host its Gateway server lists, so that the client sends that name (`curl --resolve <host>:443:<ip> https://<host>/`), or add a server with `hosts: \"*\"` for clients that send none; use https:// on this port. At a sidecar: {general}"
        );
    }
    let d = r.details();
    match (cause, d.as_ref().and_then(|d| d.rbac_policy)) {
        (
            Cause::RbacDenied,
            Some(RbacPolicy::Policy {
                namespace,
                name,
                rule,
            }),
        ) => crate::authz::deny_fix(namespace, name, rule),
        (Cause::RbacDenied, Some(RbacPolicy::None)) => format!(
            "No ALLOW rule matched: list the AuthorizationPolicies whose selector matches this proxy's pod labels (`kubectl get authorizationpolicy -A -o wide`, `istioctl x authz check <pod>`) and add a rule that this request satisfies (method {}, path {}, the headers and source it carries).",
            r.method().unwrap_or("-"),
            r.path().unwrap_or("-")
        ),
        (Cause::RateLimited | Cause::RateLimitServiceError, _)
            if crate::ratelimit::Kind::of(r).is_some() =>
        {
            crate::ratelimit::Kind::of(r)
                .map_or(general, |k| k.fix())
                .to_string()
        }
        (Cause::RouteNotFound, _) => format!(
            "No route for Host `{}` path `{}` on {}. {general}",
            r.authority().unwrap_or("-"),
            r.path().unwrap_or("-"),
            r.get(meshtrace_parsers::Slot::DownstreamLocalAddress)
                .unwrap_or("this listener")
        ),
        (Cause::DirectResponse, _) => {
            let what = format!(
                "The route matching Host `{}` path `{}` answered {} by itself.",
                r.authority().unwrap_or("-"),
                r.path().unwrap_or("-"),
                r.status().map_or("-".to_string(), |s| s.to_string())
            );
            if r.status() == Some(500) {
                // Gateway API: "requests that would have otherwise been routed to an invalid
                // backend" get a 500 (HTTPRoute backendRefs), which Envoy Gateway and other
                // Envoy-based gateways write as a direct response.
                format!(
                    "{what} On a Gateway API gateway this is the 500 answered for a rule whose backendRefs are invalid: read the HTTPRoute's status (`kubectl get httproute -A -o yaml`, condition `ResolvedRefs`) for a Service, InferencePool or port that does not exist, or another namespace's backend without a ReferenceGrant. Otherwise: {general}"
                )
            } else {
                format!("{what} {general}")
            }
        }
        _ => general.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrace_parsers::detect::{LineOutcome, LineParser};

    /// Build an Istio 1.23 line from the interesting fields.
    #[allow(clippy::too_many_arguments)]
    fn line(
        code: &str,
        flags: &str,
        details: &str,
        tf: &str,
        cluster: &str,
        up_host: &str,
        local: &str,
        remote: &str,
    ) -> String {
        format!(
            "[2024-05-01T10:00:00.000Z] \"POST /v1/models/m:predict HTTP/1.1\" {code} {flags} {details} - \"{tf}\" 10 20 5 - \"-\" \"curl/8\" \"rid\" \"m.ns\" \"{up_host}\" {cluster} 10.0.0.1:40000 {local} {remote} - default"
        )
    }

    fn rec(l: &str) -> RawRecord<'static> {
        match LineParser::auto().parse(l) {
            LineOutcome::Record(r) => r.into_owned(),
            other => panic!("{other:?}: {l}"),
        }
    }

    /// A chain of `n` proxies, each forwarding to the next one's listener, is ordered from the
    /// client inwards whatever order its lines come in: for a request's usual few hops (kept in
    /// place) and for more than [`FEW_HOPS`] (kept in lists), the same rule.
    #[test]
    fn chains_of_few_and_many_hops_are_ordered_by_their_links() {
        for n in [2usize, 5, FEW_HOPS, FEW_HOPS + 1, 13] {
            let hops: Vec<RawRecord<'static>> = (0..n)
                .map(|i| {
                    let next = if i + 1 < n {
                        format!("10.0.{}.1:8080", i + 1)
                    } else {
                        "10.9.9.9:9000".to_string()
                    };
                    rec(&line(
                        "200",
                        "-",
                        "via_upstream",
                        "-",
                        "outbound|8080||next.ns.svc.cluster.local",
                        &next,
                        &format!("10.0.{i}.1:8080"),
                        "10.1.0.1:1234",
                    ))
                })
                .collect();
            // Every line at the same time and of the same length: only the links order them.
            for rotate in [0, n / 2, n - 1] {
                let mut given: Vec<usize> = (0..n).rev().collect();
                given.rotate_left(rotate);
                let refs: Vec<&RawRecord<'_>> = given.iter().map(|&i| &hops[i]).collect();
                let order: Vec<usize> = order_hops(&refs).into_iter().map(|k| given[k]).collect();
                assert_eq!(
                    order,
                    (0..n).collect::<Vec<_>>(),
                    "{n} hops, rotated {rotate}"
                );
            }
        }
    }

    #[test]
    fn a_failed_direct_response_is_the_route_answering() {
        let ctx = Context::default();
        let at = |code: &str| {
            rec(&line(
                code,
                "-",
                "direct_response",
                "-",
                "-",
                "-",
                "10.0.0.1:8080",
                "10.0.0.2:5000",
            ))
        };
        assert_eq!(classify(&at("404"), &ctx), Cause::DirectResponse);
        assert_eq!(classify(&at("500"), &ctx), Cause::DirectResponse);
        // A redirect or a 2xx answered by the route is no failure.
        assert_eq!(classify(&at("301"), &ctx), Cause::Ok);
        assert_eq!(classify(&at("200"), &ctx), Cause::Ok);
        let r500 = at("500");
        let v = diagnose(&[&r500], &ctx);
        assert!(v.fix.contains("backendRefs are invalid"), "{}", v.fix);
        assert!(v.fix.contains("`/v1/models/m:predict`"), "{}", v.fix);
        let r404 = at("404");
        assert!(!diagnose(&[&r404], &ctx).fix.contains("backendRefs"));
    }

    /// A shared label is the label, for listener addresses and clusters that repeat, differ in
    /// one byte or share a slot; a label handed out again is the same one (no new string).
    #[test]
    fn shared_hop_labels_are_the_labels() {
        let locals = [
            "10.0.0.7:8081",
            "10.0.0.8:8081",
            "10.0.0.7:8082",
            "-",
            "127.0.0.1:15006",
        ];
        let clusters = [
            "outbound|80||a.ns.svc.cluster.local",
            "outbound|80||b.ns.svc.cluster.local",
            "inbound|8012||",
            "inbound|8013||",
            "PassthroughCluster",
            "-",
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for _ in 0..3_000 {
            let (local, cluster) = (locals[next(locals.len())], clusters[next(clusters.len())]);
            let r = rec(&line(
                "200",
                "-",
                "via_upstream",
                "-",
                cluster,
                "10.0.0.9:80",
                local,
                "10.0.0.1:1",
            ));
            assert_eq!(&*shared_hop_label(&r), hop_label(&r), "{local} {cluster}");
        }
        // Two pairs in one slot push each other out, and keep their own labels.
        let a = ("10.0.0.7:8081", "outbound|80||a.ns.svc.cluster.local");
        let b = (0..100_000)
            .map(|i| format!("10.{}.{}.7:8081", i / 250, i % 250))
            .filter(|l| l != a.0)
            .find(|l| {
                label_slot(l.as_bytes(), a.1.as_bytes())
                    == label_slot(a.0.as_bytes(), a.1.as_bytes())
            })
            .expect("an address in the same slot");
        let at = |local: &str| {
            let l = line(
                "200",
                "-",
                "via_upstream",
                "-",
                a.1,
                "10.0.0.9:80",
                local,
                "10.0.0.1:1",
            );
            rec(&l)
        };
        let (ra, rb) = (at(a.0), at(&b));
        for _ in 0..3 {
            assert_eq!(&*shared_hop_label(&ra), hop_label(&ra));
            assert_eq!(&*shared_hop_label(&rb), hop_label(&rb));
        }
        assert!(Arc::ptr_eq(&shared_hop_label(&rb), &shared_hop_label(&rb)));
    }

    fn cause_of(l: &str, ctx: &Context) -> Cause {
        classify(&rec(l), ctx)
    }

    const OUT: &str = "outbound|80||m-predictor-00001.ns.svc.cluster.local";

    /// A connection no filter chain took is plaintext to an mTLS listener only when the client
    /// sent no server name: with SNI in the line it spoke TLS (envoyproxy/envoy#15698: scanners
    /// hitting a gateway's address with names no Gateway server lists).
    #[test]
    fn no_filter_chain_with_a_server_name_is_tls_not_plaintext() {
        let ctx = Context::default();
        let refused = |sni: &str| {
            format!(
                "[2021-03-25T23:59:51.372Z] \"- - -\" 0 NR filter_chain_not_found - \"-\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" - - 100.97.92.14:8443 172.20.49.60:57605 {sni} -"
            )
        };
        assert_eq!(cause_of(&refused("-"), &ctx), Cause::PlaintextToMtls);
        assert_eq!(cause_of(&refused("scanner.example"), &ctx), Cause::TlsError);
    }

    /// Lines from public threads (see testdata/explain/*-thread.log) and their variants: what
    /// the flags say the proxy did, combined with whether the status came from upstream.
    #[test]
    fn retries_and_local_replies_from_issue_threads() {
        let ctx = Context::default();
        // (cause, generated by the proxy, line)
        let rows: &[(Cause, bool, &str)] = &[
            // Istio workshop / envoyproxy/envoy#13170: retries used up on the app's own 503.
            (
                Cause::AppError,
                false,
                r#"[2024-10-01T10:00:00.000Z] "GET /status/503 HTTP/1.1" 503 URX via_upstream - "-" 0 0 120 119 "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f20" "localhost" "10.42.0.9:8080" outbound|8000||httpbin.default.svc.cluster.local 10.42.0.7:38902 10.42.0.7:8080 10.42.0.1:51761 - -"#,
            ),
            // The same in a format without details (Istio ≤1.8): URX alone is still the app's.
            (
                Cause::AppError,
                false,
                r#"[2021-08-26T10:00:00.000Z] "GET /status/502 HTTP/1.1" 502 URX "-" "-" 0 0 120 119 "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f20" "remote-host.whatever.com" "10.42.0.9:8080" outbound|8000||httpbin.default.svc.cluster.local 10.42.0.7:38902 10.42.0.7:8080 10.42.0.1:51761 - -"#,
            ),
            // UF beside URX: the connection never opened, whatever the details field lacks.
            (
                Cause::UpstreamConnectFailure,
                true,
                r#"[2021-08-26T10:00:00.000Z] "GET /status/503 HTTP/1.1" 503 UF,URX "-" "-" 0 91 30 - "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f20" "localhost" "10.42.0.9:8080" outbound|8000||httpbin.default.svc.cluster.local - 10.42.0.7:8080 10.42.0.1:51761 - -"#,
            ),
            // URX with a per-try timeout: the proxy gave up, the app never answered.
            (
                Cause::UpstreamTimeout,
                true,
                r#"[2024-10-01T10:00:00.000Z] "GET /slow HTTP/1.1" 504 URX,UT upstream_per_try_timeout - "-" 0 24 6002 - "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f20" "localhost" "10.42.0.9:8080" outbound|8000||httpbin.default.svc.cluster.local 10.42.0.7:38902 10.42.0.7:8080 10.42.0.1:51761 - -"#,
            ),
            // Envoy's default format (no details, no cluster): a 401 with no upstream host is an
            // authentication filter's local reply, not the app's.
            (
                Cause::AuthnFailed,
                true,
                r#"[2024-10-01T10:00:00.000Z] "GET /headers HTTP/1.1" 401 - 0 14 0 - "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f21" "httpbin.example.com" "-""#,
            ),
            // A 403 the same way: RBAC or ext_authz, the line cannot say which.
            (
                Cause::Unknown,
                true,
                r#"[2024-10-01T10:00:00.000Z] "GET /admin HTTP/1.1" 403 - 0 19 0 - "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f23" "httpbin.example.com" "-""#,
            ),
            // Details `-` in Istio's format, cluster chosen but no host: still a local reply.
            (
                Cause::AuthnFailed,
                true,
                r#"[2024-10-01T10:00:00.000Z] "GET /headers HTTP/1.1" 401 - - - "-" 0 14 0 - "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f24" "httpbin.example.com" "-" outbound|8000||httpbin.default.svc.cluster.local - 10.42.0.7:8080 10.42.0.1:51761 - -"#,
            ),
            // The app's own 401 (upstream host and service time logged) stays the app's.
            (
                Cause::AppError,
                false,
                r#"[2024-10-01T10:00:00.000Z] "GET /headers HTTP/1.1" 401 - 0 14 3 2 "10.42.0.1" "curl/8.7.1" "dcb3b100-e296-4031-8f45-1234d20b0f25" "httpbin.example.com" "10.42.0.9:8080""#,
            ),
        ];
        for (want, generated, l) in rows {
            let r = rec(l);
            assert_eq!(classify(&r, &ctx), *want, "{l}");
            assert_eq!(envoy_generated(&r), *generated, "{l}");
            let v = diagnose(&[&r], &ctx);
            if local_reply_without_details(&r) {
                assert!(
                    v.summary.contains("not by the application"),
                    "{}",
                    v.summary
                );
                assert!(v.fix.contains("%RESPONSE_CODE_DETAILS%"), "{}", v.fix);
            }
            if retries_exhausted_on_upstream_status(&r) {
                assert!(v.summary.contains("retries were used up"), "{}", v.summary);
            }
        }
    }

    #[test]
    fn table_of_causes() {
        let ctx = Context::default();
        let cases: &[(Cause, String)] = &[
            (
                Cause::Ok,
                line(
                    "200",
                    "-",
                    "via_upstream",
                    "-",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::AppError,
                line(
                    "400",
                    "-",
                    "via_upstream",
                    "-",
                    "inbound|8012||",
                    "10.0.0.9:8012",
                    "10.0.0.9:8012",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::RbacDenied,
                line(
                    "403",
                    "-",
                    "rbac_access_denied_matched_policy[ns[ns]-policy[deny]-rule[0]]",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::ExtAuthzDenied,
                line(
                    "403",
                    "UAEX",
                    "ext_authz_denied",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::AuthnFailed,
                line(
                    "401",
                    "-",
                    "jwt_authn_access_denied{Jwt_is_missing}",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::RateLimited,
                line(
                    "429",
                    "RL",
                    "request_rate_limited",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::RateLimited,
                line(
                    "429",
                    "-",
                    "local_rate_limited",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::RateLimitServiceError,
                line(
                    "500",
                    "RLSE",
                    "rate_limiter_error",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::RouteNotFound,
                line(
                    "404",
                    "NR",
                    "route_not_found",
                    "-",
                    "-",
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::ClusterNotFound,
                line(
                    "503",
                    "NC",
                    "cluster_not_found",
                    "-",
                    "-",
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::PlaintextToMtls,
                line(
                    "0",
                    "NR",
                    "filter_chain_not_found",
                    "-",
                    "-",
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::MtlsMismatch,
                line(
                    "503",
                    "UF,URX",
                    "upstream_reset_before_response_started{connection_failure,TLS_error:_268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER}",
                    "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::TlsError,
                line(
                    "503",
                    "UF,URX",
                    "upstream_reset_before_response_started{connection_failure,TLS_error:_268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED}",
                    "-",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::NoHealthyUpstream,
                line(
                    "503",
                    "UH",
                    "no_healthy_upstream",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::EgressBlocked,
                line(
                    "502",
                    "-",
                    "direct_response",
                    "-",
                    "BlackHoleCluster",
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::UpstreamConnectFailure,
                line(
                    "503",
                    "UF,URX",
                    "upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}",
                    "delayed connect error: 111",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::UpstreamReset,
                line(
                    "503",
                    "UC",
                    "upstream_reset_before_response_started{connection_termination}",
                    "-",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::UpstreamTimeout,
                line(
                    "504",
                    "UT",
                    "response_timeout",
                    "-",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::CircuitBreaker,
                line(
                    "503",
                    "UO",
                    "upstream_reset_before_response_started{overflow}",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::ProtocolError,
                line(
                    "502",
                    "UPE",
                    "upstream_reset_before_response_started{protocol_error}",
                    "-",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::ProtocolError,
                line(
                    "400",
                    "DPE",
                    "http1.codec_error",
                    "-",
                    "-",
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::DownstreamDisconnect,
                line(
                    "0",
                    "DC",
                    "downstream_remote_disconnect",
                    "-",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::IdleTimeout,
                line(
                    "408",
                    "SI",
                    "stream_idle_timeout",
                    "-",
                    OUT,
                    "10.0.0.9:8012",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::FaultInjected,
                line(
                    "503",
                    "FI",
                    "fault_filter_abort",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
            (
                Cause::Unknown,
                line(
                    "500",
                    "-",
                    "some_new_envoy_detail",
                    "-",
                    OUT,
                    "-",
                    "10.0.0.1:8081",
                    "10.0.0.2:5000",
                ),
            ),
        ];
        for (want, l) in cases {
            assert_eq!(cause_of(l, &ctx), *want, "{l}");
        }
    }

    #[test]
    fn context_turns_tls_and_plaintext_failures_into_missing_sidecar() {
        let mut ctx = Context::default();
        ctx.without_sidecar.insert("10.0.0.9".parse().unwrap());
        ctx.without_sidecar.insert("10.0.0.2".parse().unwrap());
        let mtls = line(
            "503",
            "UF,URX",
            "upstream_reset_before_response_started{connection_failure,TLS_error:_268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER}",
            "-",
            OUT,
            "10.0.0.9:8012",
            "10.0.0.1:8081",
            "10.0.0.7:5000",
        );
        assert_eq!(cause_of(&mtls, &ctx), Cause::MissingSidecar);
        let plain = line(
            "0",
            "NR",
            "filter_chain_not_found",
            "-",
            "-",
            "-",
            "10.0.0.1:8081",
            "10.0.0.2:5000",
        );
        assert_eq!(cause_of(&plain, &ctx), Cause::MissingSidecar);
    }

    #[test]
    fn activator_answering_itself() {
        // The activator's inbound hop returns 503 via_upstream and the lines of other requests
        // show this pod sending to a revision's -private service.
        let act_in = rec(&line(
            "503",
            "-",
            "via_upstream",
            "-",
            "inbound|8012||",
            "10.0.0.44:8012",
            "10.0.0.44:8012",
            "10.0.0.43:0",
        ));
        let other = rec(&line(
            "200",
            "-",
            "via_upstream",
            "-",
            "outbound|80||m-predictor-00001-private.ns.svc.cluster.local",
            "10.0.0.13:8012",
            "172.31.58.48:80",
            "127.0.0.6:0",
        )
        .replace("10.0.0.1:40000", "10.0.0.44:50332"));
        let ctx = Context::from_records([&act_in, &other]);
        assert!(
            ctx.activators
                .contains(&"10.0.0.44".parse::<IpAddr>().unwrap())
        );
        let v = diagnose(&[&act_in], &ctx);
        assert_eq!(v.cause, Cause::ActivatorError);
    }

    #[test]
    fn origin_is_the_innermost_hop_that_generated_the_status() {
        let gw = rec(&line(
            "503",
            "-",
            "via_upstream",
            "-",
            OUT,
            "10.0.0.9:8012",
            "10.0.0.1:8443",
            "10.0.0.2:5000",
        )
        .replace(" 5 - ", " 30 29 "));
        let side = rec(&line(
            "503",
            "UF,URX",
            "upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}",
            "-",
            "inbound|8012||",
            "10.0.0.9:8012",
            "10.0.0.9:8012",
            "10.0.0.1:40000",
        ));
        let v = diagnose(&[&side, &gw], &Context::default());
        assert_eq!(v.order, vec![1, 0]);
        assert_eq!(v.origin, 0);
        assert_eq!(v.cause, Cause::UpstreamConnectFailure);
        assert_eq!(v.status, Some(503));
        assert!(
            v.evidence.iter().any(|e| e.starts_with("flag UF")),
            "{:?}",
            v.evidence
        );
    }

    /// Real Envoy 1.40 lines (the lab's route-timeout scenario): the gateway gave up after 2 s
    /// (`504 UT`) while the inner hops went on and logged `200` after 3 s. The client got 504.
    const TIMEOUT: [&str; 5] = [
        r#"[2026-12-03T10:02:40.505Z] "POST /v2/models/slow/infer HTTP/1.1" 504 UT response_timeout - "-" 76 24 2001 - "127.0.0.2" "meshtrace-lab/1.0" "687936a7-318c-4adf-a83f-13a3a280ad21" "test-predictor.aiproject.svc.cluster.local" "127.0.0.10:8081" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 127.0.0.10:43128 127.0.0.10:8443 127.0.0.2:54227 test-aiproject.apps.lab.example.com -"#,
        r#"[2026-12-03T10:02:40.506Z] "POST /v2/models/slow/infer HTTP/2" 0 DR http2.remote_reset - "-" 76 0 2001 - "127.0.0.2,127.0.0.10" "meshtrace-lab/1.0" "12d30cec-d4ea-4271-918c-b4b5b68a9795" "test-predictor.aiproject.svc.cluster.local" "127.0.0.20:8012" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 127.0.0.10:36182 127.0.0.10:8081 127.0.0.10:43128 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#,
        r#"[2026-12-03T10:02:40.506Z] "POST /v2/models/slow/infer HTTP/1.1" 0 DC downstream_remote_disconnect - "-" 76 0 2001 - "127.0.0.2,127.0.0.10" "meshtrace-lab/1.0" "12d30cec-d4ea-4271-918c-b4b5b68a9795" "test-predictor.aiproject.svc.cluster.local" "127.0.0.20:18012" inbound|8012|| 127.0.0.6:55820 127.0.0.20:8012 127.0.0.10:0 outbound_.80_._.test-predictor-00001.aiproject.svc.cluster.local default"#,
        r#"[2026-12-03T10:02:40.507Z] "POST /v2/models/slow/infer HTTP/1.1" 200 - via_upstream - "-" 76 101 3002 3002 "127.0.0.2,127.0.0.10, 127.0.0.6" "meshtrace-lab/1.0" "12d30cec-d4ea-4271-918c-b4b5b68a9795" "127.0.1.30:80" "127.0.0.30:8012" outbound|80||test-predictor-00001-private.aiproject.svc.cluster.local 127.0.0.20:49634 127.0.1.30:80 127.0.0.6:0 - default"#,
        r#"[2026-12-03T10:02:40.508Z] "POST /v2/models/slow/infer HTTP/1.1" 200 - via_upstream - "-" 76 101 3001 3001 "127.0.0.2,127.0.0.10, 127.0.0.6" "meshtrace-lab/1.0" "12d30cec-d4ea-4271-918c-b4b5b68a9795" "127.0.1.30:80" "127.0.0.30:18080" inbound|8012|| 127.0.0.6:56484 127.0.0.30:8012 127.0.0.6:0 outbound_.80_._.test-predictor-00001-private.aiproject.svc.cluster.local default"#,
    ];

    #[test]
    fn a_route_timeout_is_not_a_success_because_the_inner_hops_finished_later() {
        let recs: Vec<RawRecord<'static>> = TIMEOUT.iter().map(|l| rec(l)).collect();
        // Any input order: the inner 200s (longer than the gateway's 2 s) must not come first.
        let refs: Vec<&RawRecord<'_>> = [4, 3, 2, 1, 0].iter().map(|&i| &recs[i]).collect();
        let v = diagnose(&refs, &Context::default());
        assert_eq!(v.order, vec![4, 3, 2, 1, 0], "hops from the client inwards");
        assert_eq!(v.status, Some(504));
        assert_eq!(v.origin, 4, "the gateway that timed out");
        assert_eq!(v.cause, Cause::UpstreamTimeout);
    }

    #[test]
    fn a_status_relayed_before_a_retry_reset_or_after_retries_is_the_upstreams() {
        let ctx = Context::default();
        // `URX via_upstream`: retries exhausted on the upstream's own 503.
        let urx = line(
            "503",
            "URX",
            "via_upstream",
            "-",
            OUT,
            "10.0.0.9:8012",
            "10.0.0.1:80",
            "10.0.0.2:5000",
        );
        assert_eq!(cause_of(&urx, &ctx), Cause::AppError);
        // The caller reset the attempt it was going to retry: the 503 still came from upstream.
        for (flag, details) in [
            ("DR", "http2.remote_reset"),
            ("DC", "downstream_remote_disconnect"),
        ] {
            let l = line(
                "503",
                flag,
                details,
                "-",
                "inbound|8012||",
                "10.0.0.9:8080",
                "10.0.0.9:8012",
                "10.0.0.1:0",
            )
            .replace(" 5 - ", " 5 4 ");
            assert_eq!(cause_of(&l, &ctx), Cause::AppError, "{flag}");
        }
        // Real Envoy 1.40 (the lab's activator 503, one run in several): the gateway's 8081
        // attempt that its 8443 caller reset to retry, after its own retries were exhausted.
        let reset_after_retries = r#"[2026-12-03T11:28:20.818Z] "POST /v2/models/test/infer HTTP/2" 503 URX,DR http2.remote_reset - "-" 76 0 29 29 "127.0.0.2,127.0.0.10" "meshtrace-lab/1.0" "b7b197cf-e3e3-42d6-8d58-bd66bdfd3c6b" "test-predictor.aiproject.svc.cluster.local" "127.0.0.20:8012" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 127.0.0.10:51282 127.0.0.10:8081 127.0.0.10:59848 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#;
        let r = rec(reset_after_retries);
        assert!(relays_status(&r));
        assert!(!upstream_connection_failed(&r));
        assert_eq!(classify(&r, &ctx), Cause::AppError);
        // A client that left before any status: a downstream disconnect.
        let gone = line(
            "0",
            "DC",
            "downstream_remote_disconnect",
            "-",
            OUT,
            "10.0.0.9:8012",
            "10.0.0.1:80",
            "10.0.0.2:5000",
        );
        assert_eq!(cause_of(&gone, &ctx), Cause::DownstreamDisconnect);
    }

    #[test]
    fn an_outbound_hop_whose_connection_never_opened_follows_its_pods_inbound_hop() {
        // `UF`: no upstream local address; the app's connection into its own sidecar still
        // comes from the pod IP.
        let inbound = rec(&line(
            "503",
            "-",
            "via_upstream",
            "-",
            "inbound|8012||",
            "10.0.0.20:18012",
            "10.0.0.20:8012",
            "10.0.0.10:0",
        )
        .replace(" 5 - ", " 30 29 "));
        let outbound = rec(&line(
            "503",
            "UF",
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
            "-",
            "outbound|80||m-predictor-00001-private.ns.svc.cluster.local",
            "10.0.0.30:8012",
            "10.0.1.30:80",
            "10.0.0.20:41000",
        )
        .replace("10.0.0.1:40000", "-"));
        let gateway = rec(&line(
            "503",
            "-",
            "via_upstream",
            "-",
            OUT,
            "10.0.0.20:8012",
            "10.0.0.10:8081",
            "10.0.0.2:5000",
        )
        .replace(" 5 - ", " 40 39 "));
        let v = diagnose(&[&outbound, &gateway, &inbound], &Context::default());
        assert_eq!(v.order, vec![1, 2, 0]);
        assert_eq!(v.origin, 0);
        assert_eq!(v.cause, Cause::UpstreamConnectFailure);
    }
}
