//! The cause classes: stable identifiers shared by every command, with meaning and usual fixes.
//!
//! `docs/causes.md` documents the same list; a test keeps the two in step.

use serde::Serialize;

/// Why a request ended the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The request succeeded.
    Ok,
    /// The application behind the proxies produced the status.
    AppError,
    /// The Knative activator answered by itself.
    ActivatorError,
    /// An AuthorizationPolicy (Envoy RBAC filter) denied the request.
    RbacDenied,
    /// An external authorizer (CUSTOM policy, ext_authz) denied the request.
    ExtAuthzDenied,
    /// Request authentication (JWT) failed.
    AuthnFailed,
    /// A local or global rate limit rejected the request.
    RateLimited,
    /// The rate limit service could not be asked and `failure_mode_deny` rejected the request.
    RateLimitServiceError,
    /// No route matched the Host and path.
    RouteNotFound,
    /// The route named a cluster the proxy does not have.
    ClusterNotFound,
    /// The matched route answered by itself (a direct response), without a backend.
    DirectResponse,
    /// Plaintext arrived at a listener that accepts only mTLS.
    PlaintextToMtls,
    /// The two sides disagree on mTLS.
    MtlsMismatch,
    /// A pod without a sidecar is on one side of an mTLS connection.
    MissingSidecar,
    /// The TLS handshake failed (certificates, trust, SNI).
    TlsError,
    /// The cluster had no healthy endpoint.
    NoHealthyUpstream,
    /// The mesh blocked traffic to an unregistered host.
    EgressBlocked,
    /// The proxy could not connect to the upstream.
    UpstreamConnectFailure,
    /// The upstream closed or reset the connection before answering.
    UpstreamReset,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// A circuit breaker (connection or request limit) rejected the request.
    CircuitBreaker,
    /// An HTTP protocol error on either side.
    ProtocolError,
    /// The client went away before the response.
    DownstreamDisconnect,
    /// An idle or duration timeout closed the stream.
    IdleTimeout,
    /// A fault-injection rule answered or delayed the request.
    FaultInjected,
    /// The evidence does not say.
    Unknown,
}

impl Cause {
    /// The cause behind an ext_proc filter's failure (`ext_proc_error_gRPC_error_<N>…` details,
    /// e.g. an inference gateway's endpoint picker): gRPC UNAVAILABLE (14) is a connection
    /// failure, DEADLINE_EXCEEDED (4) a timeout, any other code unknown. `None` for other details.
    pub fn from_ext_proc_details(details: &str) -> Option<Cause> {
        let e = meshtrace_parsers::grpc::parse_ext_proc_error(details)?;
        Some(match e.code {
            14 => Cause::UpstreamConnectFailure,
            4 => Cause::UpstreamTimeout,
            _ => Cause::Unknown,
        })
    }

    /// Every cause, in documentation order.
    pub const ALL: [Cause; 26] = [
        Cause::Ok,
        Cause::AppError,
        Cause::ActivatorError,
        Cause::RbacDenied,
        Cause::ExtAuthzDenied,
        Cause::AuthnFailed,
        Cause::RateLimited,
        Cause::RateLimitServiceError,
        Cause::RouteNotFound,
        Cause::ClusterNotFound,
        Cause::DirectResponse,
        Cause::PlaintextToMtls,
        Cause::MtlsMismatch,
        Cause::MissingSidecar,
        Cause::TlsError,
        Cause::NoHealthyUpstream,
        Cause::EgressBlocked,
        Cause::UpstreamConnectFailure,
        Cause::UpstreamReset,
        Cause::UpstreamTimeout,
        Cause::CircuitBreaker,
        Cause::ProtocolError,
        Cause::DownstreamDisconnect,
        Cause::IdleTimeout,
        Cause::FaultInjected,
        Cause::Unknown,
    ];

    /// Stable identifier (snake_case).
    pub fn id(self) -> &'static str {
        match self {
            Cause::Ok => "ok",
            Cause::AppError => "app_error",
            Cause::ActivatorError => "activator_error",
            Cause::RbacDenied => "rbac_denied",
            Cause::ExtAuthzDenied => "ext_authz_denied",
            Cause::AuthnFailed => "authn_failed",
            Cause::RateLimited => "rate_limited",
            Cause::RateLimitServiceError => "rate_limit_service_error",
            Cause::RouteNotFound => "route_not_found",
            Cause::ClusterNotFound => "cluster_not_found",
            Cause::DirectResponse => "direct_response",
            Cause::PlaintextToMtls => "plaintext_to_mtls",
            Cause::MtlsMismatch => "mtls_mismatch",
            Cause::MissingSidecar => "missing_sidecar",
            Cause::TlsError => "tls_error",
            Cause::NoHealthyUpstream => "no_healthy_upstream",
            Cause::EgressBlocked => "egress_blocked",
            Cause::UpstreamConnectFailure => "upstream_connect_failure",
            Cause::UpstreamReset => "upstream_reset",
            Cause::UpstreamTimeout => "upstream_timeout",
            Cause::CircuitBreaker => "circuit_breaker",
            Cause::ProtocolError => "protocol_error",
            Cause::DownstreamDisconnect => "downstream_disconnect",
            Cause::IdleTimeout => "idle_timeout",
            Cause::FaultInjected => "fault_injected",
            Cause::Unknown => "unknown",
        }
    }

    /// Look a cause up by identifier.
    pub fn from_id(id: &str) -> Option<Cause> {
        Cause::ALL.iter().copied().find(|c| c.id() == id)
    }

    /// One-line meaning.
    pub fn title(self) -> &'static str {
        match self {
            Cause::Ok => "the request succeeded",
            Cause::AppError => "the application itself returned this status",
            Cause::ActivatorError => "the Knative activator answered the request itself",
            Cause::RbacDenied => {
                "an Istio AuthorizationPolicy (Envoy RBAC filter) denied the request"
            }
            Cause::ExtAuthzDenied => {
                "the external authorization service denied the request or failed"
            }
            Cause::AuthnFailed => "JWT authentication (RequestAuthentication) rejected the request",
            Cause::RateLimited => "a rate limit rejected the request",
            Cause::RateLimitServiceError => {
                "the rate limit service could not be asked, and the proxy rejected the request rather than let it through"
            }
            Cause::RouteNotFound => "no route matched the request's host and path",
            Cause::ClusterNotFound => {
                "the matched route points to a cluster the proxy does not have"
            }
            Cause::DirectResponse => {
                "the matched route answered by itself (a direct response): no backend was called"
            }
            Cause::PlaintextToMtls => {
                "a plaintext connection arrived at a listener that requires TLS/mTLS"
            }
            Cause::MtlsMismatch => {
                "client and server disagree about TLS (e.g. TLS spoken to a plaintext port)"
            }
            Cause::MissingSidecar => "a peer that must be in the mesh has no istio-proxy sidecar",
            Cause::TlsError => "the TLS handshake failed (certificate, CA, expiry, protocol)",
            Cause::NoHealthyUpstream => "the destination has no healthy endpoints",
            Cause::EgressBlocked => {
                "outbound traffic was blocked (REGISTRY_ONLY / BlackHoleCluster)"
            }
            Cause::UpstreamConnectFailure => "the proxy could not connect to the destination",
            Cause::UpstreamReset => {
                "the destination closed or reset the connection before answering"
            }
            Cause::UpstreamTimeout => "the destination did not answer within the route timeout",
            Cause::CircuitBreaker => {
                "a circuit breaker (connection/request limit) rejected the request"
            }
            Cause::ProtocolError => "an HTTP protocol error (malformed request or response)",
            Cause::DownstreamDisconnect => "the client went away before the response was complete",
            Cause::IdleTimeout => "an idle or maximum-duration timeout closed the stream",
            Cause::FaultInjected => {
                "a VirtualService fault injection aborted or delayed the request"
            }
            Cause::Unknown => "the evidence does not identify the cause",
        }
    }

    /// The usual fixes, most likely first.
    pub fn fix(self) -> &'static str {
        match self {
            Cause::Ok => "Nothing to fix.",
            Cause::AppError => {
                "Read the model container's logs for this request (queue-proxy and kserve-container); the proxies only relayed the status. For a 400 check the request body against the model's protocol (v1 `instances` / v2 `inputs`) and the model name in the path."
            }
            Cause::ActivatorError => {
                "Check the activator's logs (knative-serving/activator) and the revision's readiness: scale-from-zero failing, no ready pods within the activator timeout, or the private service unreachable. `kubectl get revision,pods -n <ns>`."
            }
            Cause::RbacDenied => {
                "Find the AuthorizationPolicy named in the details (or, for `[none]`, the ALLOW policies that select this workload and that the request did not match) and add a rule that admits this caller, path and headers: `kubectl get authorizationpolicy -A`, `istioctl x authz check <pod>`."
            }
            Cause::ExtAuthzDenied => {
                "Check the CUSTOM AuthorizationPolicy's provider (MeshConfig extensionProviders) and the authorizer's logs and reachability: details `ext_authz_denied` are the authorizer's own decision (often 401 or 403), `ext_authz_error` means it could not be asked and the proxy answered its status_on_error (403 unless configured)."
            }
            Cause::AuthnFailed => {
                "Send a valid token (Authorization: Bearer …) whose issuer and audience match the RequestAuthentication, and check the JWKS URI is reachable from the proxy."
            }
            Cause::RateLimited => {
                "Raise or scope the limit (EnvoyFilter local_ratelimit / ratelimit service descriptors) or slow the client."
            }
            Cause::RateLimitServiceError => {
                "No limit was reached: the proxy could not get an answer from the rate limit service (unreachable, timed out, a gRPC error). Check the service's pods and the cluster the ratelimit filter's `rate_limit_service` names (`istioctl proxy-config cluster <pod>`, its endpoints and mTLS); with `failure_mode_deny: false` (Envoy's default) requests pass while the service is down."
            }
            Cause::RouteNotFound => {
                "Make the request's Host match a VirtualService host bound to this gateway (or mesh) and its path a route: check `meshtrace route-check`/`istioctl proxy-config routes`, the Gateway's hosts and the Host header (cluster-local services need `Host: <svc>.<ns>`)."
            }
            Cause::ClusterNotFound => {
                "The route's destination host/port/subset does not exist in the proxy: check the VirtualService destination against the Service and DestinationRule subsets, and Sidecar egress scoping."
            }
            Cause::DirectResponse => {
                "Find the route that answers directly for this host and path (`istioctl proxy-config routes <pod> -o json` shows its `directResponse`, `meshtrace route-check` names it): a VirtualService `directResponse`, an Envoy Gateway HTTPRouteFilter `directResponse`, or an EnvoyFilter; change or remove it if the request should reach a backend."
            }
            Cause::PlaintextToMtls => {
                "The client sent plaintext to an mTLS-only listener (STRICT PeerAuthentication or an ISTIO_MUTUAL gateway such as knative-local-gateway:8081). A client without a sidecar: give it one, or call through an HTTP gateway. A client with a sidecar: its DestinationRule for this host turns Istio mTLS off (`tls.mode` DISABLE or SIMPLE): remove the override or set ISTIO_MUTUAL. PERMISSIVE on the port only accepts the plaintext."
            }
            Cause::MtlsMismatch => {
                "Align the DestinationRule tls mode with the server: ISTIO_MUTUAL only towards pods with a sidecar, DISABLE towards plaintext services, SIMPLE for TLS-terminating backends; remove a DestinationRule that forces mTLS to a non-mesh peer."
            }
            Cause::MissingSidecar => {
                "Inject the istio-proxy sidecar into the workload (namespace label istio-injection=enabled or sidecar.istio.io/inject: \"true\" and restart it), or stop requiring mTLS for it (PeerAuthentication PERMISSIVE / DestinationRule DISABLE)."
            }
            Cause::TlsError => {
                "Check the certificates on both sides: CA trust (DestinationRule caCertificates / credentialName), expiry (`istioctl proxy-config secret`), SAN/SNI names and TLS versions."
            }
            Cause::NoHealthyUpstream => {
                "The destination Service has no ready endpoints in this proxy: check the pods are Ready, the Service selector and ports, outlier detection ejections, and (Knative) whether the revision scaled to zero."
            }
            Cause::EgressBlocked => {
                "Add a ServiceEntry for the external host (outboundTrafficPolicy REGISTRY_ONLY), or allow it in the egress policy; for KServe runtimes that install packages, allow the package hosts."
            }
            Cause::UpstreamConnectFailure => {
                "The destination refused or did not accept the connection: check the target pod is running and listening on the port, NetworkPolicies, and the transport failure reason for TLS problems."
            }
            Cause::UpstreamReset => {
                "The destination closed the connection: check its logs for crashes or OOM, its max connection age/keep-alive settings, and whether it expects a different protocol (HTTP/2 vs HTTP/1.1, TLS vs plaintext)."
            }
            Cause::UpstreamTimeout => {
                "Raise the VirtualService route timeout (KServe/Knative routes have their own) or make the model answer faster; check for slow cold starts."
            }
            Cause::CircuitBreaker => {
                "Raise the DestinationRule connectionPool limits (http1MaxPendingRequests, http2MaxRequests, maxConnections) or add capacity."
            }
            Cause::ProtocolError => {
                "The request or response broke HTTP rules (bad header, wrong protocol on the port): check the Service port name/appProtocol (http vs http2/grpc) and the headers sent."
            }
            Cause::DownstreamDisconnect => {
                "The client closed the connection early: check the client's own timeout and whether the request simply took too long."
            }
            Cause::IdleTimeout => {
                "Raise the idle/stream timeout (DestinationRule idleTimeout, route timeout, HCM stream_idle_timeout) or keep the stream active."
            }
            Cause::FaultInjected => {
                "Remove or scope the `fault` block of the VirtualService that matched this route."
            }
            Cause::Unknown => {
                "Collect the access logs of the next hop and the proxies' config dumps (`meshtrace collect`) and check the response code details."
            }
        }
    }

    /// True for outcomes that are failures.
    pub fn is_failure(self) -> bool {
        self != Cause::Ok
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Cause::ALL {
            assert_eq!(Cause::from_id(c.id()), Some(c));
            assert!(seen.insert(c.id()));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.id().into())
            );
        }
    }

    #[test]
    fn docs_list_every_cause() {
        let doc = include_str!("../../docs/causes.md");
        for c in Cause::ALL {
            assert!(
                doc.contains(&format!("## `{}`", c.id())),
                "docs/causes.md lacks a section for {}",
                c.id()
            );
        }
    }
}
