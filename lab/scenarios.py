"""The lab's scenarios: what each one breaks, the traffic it sends, and the ground truth.

The ground truth (`expect.json`) comes from the construction: which proxy the lab configured to
refuse or time out, which application answers what, which client sent the failing request. The
statuses of the inner hops are what Envoy does with that construction; run.py checks each one
against the access-log line Envoy actually wrote (without meshtrace) and refuses to write a bundle
whose logs disagree.
"""

import uuid
from dataclasses import dataclass, field

import certs
import topology as T

GW, ACT, PRED, CLIENT = T.GATEWAY, T.ACTIVATOR, T.PREDICTOR, T.CLIENT


def rid(scenario, what):
    """Stable x-request-ids, so regenerated bundles name their requests the same way. Shaped as
    version-4 UUIDs: Envoy's UUID request-id extension rewrites the version nibble of an id to
    record a trace decision, which would change any other version."""
    u = uuid.uuid5(uuid.NAMESPACE_URL, f"https://meshtrace.lab/{scenario}/{what}")
    return str(uuid.UUID(bytes=u.bytes, version=4))


@dataclass
class Hop:
    pod: T.Pod
    direction: str  # gateway | inbound | outbound
    listener: str
    status: int
    note: str = ""

    def to_json(self):
        return {"pod": self.pod.ref, "direction": self.direction, "listener": self.listener, "status": self.status}


def full_path(statuses, notes=("", "", "", "", "")):
    """The five hops of the serving path, outermost first."""
    spots = [
        (GW, "gateway", T.L_8443),
        (GW, "gateway", T.L_8081),
        (ACT, "inbound", T.L_ACT_IN),
        (ACT, "outbound", T.L_ACT_OUT),
        (PRED, "inbound", T.L_PRED_IN),
    ]
    return [Hop(p, d, lis, s, n) for (p, d, lis), s, n in zip(spots, statuses, notes)]


@dataclass
class Request:
    """The failing request, as the client sends it."""

    method: str = "POST"
    path: str = "/v2/models/test/infer"
    body: bytes = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}'
    host: str = T.EXTERNAL_HOST
    via: str = "gateway"  # gateway: HTTPS to 127.0.0.10:8443 | plaintext-8081: raw HTTP to :8081 | tls-8443: a TLS handshake only
    sni: str = None  # tls-8443: the server name sent (None: none, as when calling by IP address)
    src_ip: str = T.EXTERNAL_CLIENT_IP
    src_port: int = 0  # fixed client port for requests traced by ip:port
    headers: tuple = ()  # extra request headers: (name, value) pairs
    give_up_s: float = 0  # the client closes the connection after this many seconds (0 = waits)


@dataclass
class Scenario:
    name: str
    title: str
    story: str
    cause: str
    client_status: int
    hops: list
    origin: int  # index into hops
    failing: Request = field(default_factory=Request)
    knobs: T.Knobs = field(default_factory=T.Knobs)
    healthy_before: int = 3  # healthy requests sent (concurrently) before the failing one
    healthy_alongside: int = 3  # healthy requests sent concurrently with the failing one
    failures: int = 1  # failed client requests in the whole bundle
    trace_by: str = "request_id"  # or "client" (ip:port: no request id on the wire)
    flip: str = ""  # what changes between the healthy requests and the failing one
    notes: str = ""
    # Envoy's matching (listener, filter chain, virtual host, route) succeeds on every proxy of
    # the path that has a config: what `meshtrace route-check` must predict.
    routed: bool = True
    wire_checks: list = field(default_factory=list)  # (pod, regex) every run must show

    @property
    def start(self):
        if self.trace_by == "client":
            return f"{self.failing.src_ip}:{self.failing.src_port}"
        return rid(self.name, "failing")


GOOD_BODY = Request().body
BAD_BODY = b'{"instances": [[1.0, 2.0]]}'  # v1 payload sent to the v2 endpoint


SCENARIOS = [
    Scenario(
        name="app-400",
        title="The model answers 400 through all five hops",
        story=(
            "A client POSTs a KServe **v1** payload (`instances`) to the v2 infer endpoint "
            "`/v2/models/test/infer`. The model server rejects it with 400; every proxy relays it."
        ),
        failing=Request(body=BAD_BODY),
        cause="app_error",
        client_status=400,
        hops=full_path([400] * 5),
        origin=4,
    ),
    Scenario(
        name="app-500",
        title="The model answers 500 through all five hops",
        story=(
            "POST `/v2/models/crash/infer`: the model server fails with 500 (a CUDA error). 500 is "
            "not in Istio's retriable codes, so nothing retries; every proxy relays it."
        ),
        failing=Request(path="/v2/models/crash/infer"),
        cause="app_error",
        client_status=500,
        hops=full_path([500] * 5),
        origin=4,
    ),
    Scenario(
        name="route-timeout-504",
        title="Gateway route timeout (2 s) fires before the model answers (3 s)",
        story=(
            "VirtualService `aiproject/test` sets `timeout: 2s`. POST `/v2/models/slow/infer`: the "
            "model needs 3 s. At 2 s the gateway's 8443 route gives up and answers 504 `UT "
            "response_timeout`, resetting its HTTP/2 stream to 8081; 8081 logs the downstream reset, "
            "the activator's inbound sidecar logs the downstream disconnect; the activator app's "
            "own upstream request is not cancelled, so the activator outbound and the predictor log "
            "200 a second later."
        ),
        failing=Request(path="/v2/models/slow/infer"),
        knobs=T.Knobs(route_timeout_s=2),
        cause="upstream_timeout",
        client_status=504,
        hops=full_path(
            [504, 0, 0, 200, 200],
            ("UT response_timeout", "DR: 8443 reset the stream", "DC: 8081 closed the connection", "", ""),
        ),
        origin=0,
        wire_checks=[(GW, r'" 504 UT response_timeout ')],
    ),
    Scenario(
        name="client-gives-up",
        title="The client gives up after 1 s while the model takes 3 s",
        story=(
            "POST `/v2/models/slow/infer` with a client timeout of 1 s (a script's `timeout=1`): "
            "the model needs 3 s. The client closes its connection; the gateway's 8443 logs `0 "
            "DC downstream_remote_disconnect` and resets its stream to 8081, which logs the "
            "downstream reset; the activator's inbound sidecar sees its downstream go away; the "
            "activator app's own request is not cancelled, so the activator outbound and the "
            "predictor log 200 two seconds later. Nothing in the mesh failed: the client did."
        ),
        failing=Request(path="/v2/models/slow/infer", give_up_s=1.0),
        cause="downstream_disconnect",
        client_status=0,
        hops=full_path(
            [0, 0, 0, 200, 200],
            ("DC downstream_remote_disconnect", "DR: 8443 reset the stream", "DC: 8081 closed the connection", "", ""),
        ),
        origin=0,
        wire_checks=[(GW, r'" 0 DC downstream_remote_disconnect ')],
    ),
    Scenario(
        name="model-503-retries",
        title="The model answers 503 every time; Istio's retry policy retries at every proxy",
        story=(
            "POST `/v2/models/busy/infer`: the model server answers 503 (queue full) every time. "
            "503 is retriable in Istio's default policy (2 retries) on the routes of 8443, 8081 and "
            "the activator's outbound: 3 × 3 × 3 = 27 calls reach the model. Each 8443 attempt is a "
            "new request at 8081 with a new x-request-id. The client gets 503 once."
        ),
        failing=Request(path="/v2/models/busy/infer"),
        cause="app_error",
        client_status=503,
        hops=full_path([503] * 5, ("URX", "URX", "", "URX", "")),
        origin=4,
        wire_checks=[(GW, r'" 503 URX via_upstream ')],
    ),
    Scenario(
        name="activator-503",
        title="The activator answers 503 itself (no ready endpoints)",
        story=(
            "After three good requests the revision's pods stop being ready (as the activator "
            "sees it): the activator answers `503 activator request timeout` itself without "
            "calling the private Service. 8081 and 8443 retry the 503 (3 × 3 activator answers), "
            "the client gets 503. The activator's outbound and the predictor never see the request."
        ),
        knobs=T.Knobs(activator_503=True),
        flip="activator_503",
        healthy_alongside=0,
        cause="activator_error",
        client_status=503,
        hops=full_path([503, 503, 503])[:3],
        origin=2,
    ),
    Scenario(
        name="model-down",
        title="The model container stops: the predictor sidecar cannot connect",
        story=(
            "After three good requests the model server stops listening. The predictor's sidecar "
            "answers `503 UF` with `delayed_connect_error:_Connection_refused` (inbound routes have "
            "no retries); the activator outbound retries the 503 twice, then 8081 and 8443 retry "
            "too. The client gets 503."
        ),
        knobs=T.Knobs(model_down=True),
        flip="model_down",
        healthy_alongside=0,
        cause="upstream_connect_failure",
        client_status=503,
        hops=full_path([503] * 5, ("URX", "URX", "", "URX", "UF connection refused")),
        origin=4,
        wire_checks=[(PRED, r"Connection_refused")],
    ),
    Scenario(
        name="model-oom-reset",
        title="The model process is killed mid-request: the predictor sidecar sees the connection close",
        story=(
            "After three good requests the model server is killed while it holds the request (the "
            "kernel's OOM killer: `kserve-container` restarted once, last state `OOMKilled`, exit "
            "code 137). Its socket closes without an answer; the predictor's sidecar answers `503 "
            "UC` with `upstream_reset_before_response_started{connection_termination}` (inbound "
            "routes have no retries); the activator outbound retries the 503 twice, then 8081 and "
            "8443 retry too. The client gets 503."
        ),
        knobs=T.Knobs(model_oom=True),
        flip="model_oom",
        healthy_alongside=0,
        cause="upstream_reset",
        client_status=503,
        hops=full_path([503] * 5, ("URX", "URX", "", "URX", "UC connection_termination")),
        origin=4,
        wire_checks=[(PRED, r"503 UC upstream_reset_before_response_started\{connection_termination\}")],
    ),
    Scenario(
        name="circuit-breaker-overflow",
        title="A DestinationRule connection pool of one: the activator's sidecar overflows",
        story=(
            "DestinationRule `aiproject/test-predictor-00001-private` limits the private Service to "
            "`maxConnections: 1`, `http1MaxPendingRequests: 1` and `http2MaxRequests: 1` (Envoy "
            "circuit breakers on `outbound|80||test-predictor-00001-private…`). Two slow requests "
            "(3 s each) hold the one connection and the one pending slot; the failing request "
            "arrives meanwhile and the activator's sidecar answers `503 UO` with "
            "`upstream_reset_before_response_started{overflow}` without calling the predictor. "
            "8081 and 8443 retry the 503 and overflow again; the client gets 503, the two slow "
            "requests get 200."
        ),
        knobs=T.Knobs(pool_limit=1),
        flip="saturate",
        healthy_before=0,
        healthy_alongside=2,
        cause="circuit_breaker",
        client_status=503,
        hops=full_path([503, 503, 503, 503], ("URX", "URX", "", "UO overflow"))[:4],
        origin=3,
        wire_checks=[(ACT, r"503 UO upstream_reset_before_response_started\{overflow\}")],
    ),
    Scenario(
        name="plaintext-sidecar-to-strict",
        title="DestinationRule DISABLE: the activator sends plaintext into the STRICT predictor",
        story=(
            "A DestinationRule `aiproject/test-predictor-00001-private` sets `tls.mode: DISABLE` "
            "for the private Service, while PeerAuthentication `istio-system/default` is STRICT. "
            "The activator's sidecar sends plain HTTP/1.1 to the predictor's 8012; the predictor's "
            "`virtualInbound` has only TLS filter chains: `NR filter_chain_not_found`, the "
            "connection is closed, the activator outbound answers 503. Every request fails; the "
            "lab sends only the one."
        ),
        knobs=T.Knobs(activator_tls="DISABLE"),
        healthy_before=0,
        healthy_alongside=0,
        cause="plaintext_to_mtls",
        client_status=503,
        hops=full_path([503, 503, 503, 503, 0], ("URX", "URX", "", "UC", "NR filter_chain_not_found")),
        origin=4,
        routed=False,
        wire_checks=[(PRED, r'"- - -" 0 NR filter_chain_not_found')],
        notes=(
            "The origin is the predictor's listener that refused the plaintext connection: the "
            "activator outbound's 503 is only its consequence."
        ),
    ),
    Scenario(
        name="mtls-to-no-sidecar",
        title="ISTIO_MUTUAL towards a predictor pod without a sidecar",
        story=(
            "The predictor pod runs without an istio-proxy (`sidecar.istio.io/inject: \"false\"`); "
            "its model server listens on 8012 itself. The mesh-wide DestinationRule "
            "`istio-system/default` (`ISTIO_MUTUAL`) makes the activator's sidecar start a TLS "
            "handshake; the model server answers the ClientHello with a plain `HTTP/1.1 400` and "
            "the sidecar fails with `WRONG_VERSION_NUMBER`: 503 `UF`, retried (URX). Every request "
            "fails; the lab sends only the one."
        ),
        knobs=T.Knobs(predictor_sidecar=False),
        healthy_before=0,
        healthy_alongside=0,
        cause="missing_sidecar",
        client_status=503,
        hops=full_path([503, 503, 503, 503], ("URX", "URX", "", "UF WRONG_VERSION_NUMBER"))[:4],
        origin=3,
        wire_checks=[(ACT, r"WRONG_VERSION_NUMBER")],
        notes="docs/causes.md: a TLS mismatch towards a pod known (pods.json) to run without istio-proxy is `missing_sidecar`.",
    ),
    Scenario(
        name="untrusted-peer-cert",
        title="The predictor's sidecar presents a certificate from an untrusted CA",
        story=(
            "The predictor's sidecar serves a workload certificate (right SPIFFE ID) signed by a "
            "CA the mesh does not trust (e.g. a plugged-in CA rotated on one side only). The "
            "activator's sidecar fails the handshake with `CERTIFICATE_VERIFY_FAILED`: 503 `UF`, "
            "retried (URX). The predictor logs nothing (no HTTP request ever reached it). Every "
            "request fails; the lab sends only the one."
        ),
        knobs=T.Knobs(predictor_cert="untrusted"),
        healthy_before=0,
        healthy_alongside=0,
        cause="tls_error",
        client_status=503,
        hops=full_path([503, 503, 503, 503], ("URX", "URX", "", "UF CERTIFICATE_VERIFY_FAILED"))[:4],
        origin=3,
        wire_checks=[(ACT, r"CERTIFICATE_VERIFY_FAILED")],
    ),
    Scenario(
        name="plaintext-client-to-8081",
        title="A pod without sidecar sends plain HTTP to the ISTIO_MUTUAL local gateway",
        story=(
            "`aiproject/model-client-7b8c9d6f5-h3j9k` (no istio-proxy) calls "
            "`http://test-predictor.aiproject.svc.cluster.local` which resolves to "
            "knative-local-gateway (8081, ISTIO_MUTUAL). The listener has only a TLS filter "
            "chain: `\"- - -\" 0 NR filter_chain_not_found`, connection closed, no request id. "
            "Traced by the client's ip:port. Healthy requests go through the gateway meanwhile."
        ),
        failing=Request(
            method="POST",
            host=T.PREDICTOR_HOST,
            via="plaintext-8081",
            src_ip=CLIENT.ip,
            src_port=47050,
        ),
        trace_by="client",
        cause="missing_sidecar",
        client_status=0,
        hops=[Hop(GW, "gateway", T.L_8081, 0, "NR filter_chain_not_found")],
        origin=0,
        wire_checks=[(GW, r'"- - -" 0 NR filter_chain_not_found .* 127\.0\.0\.50:47050 ')],
        notes=(
            "docs/causes.md: `filter_chain_not_found` from a client pod known to run without a "
            "sidecar is `missing_sidecar` (plaintext_to_mtls without topology)."
        ),
    ),
    Scenario(
        name="plaintext-unknown-to-8081",
        title="Plain HTTP to the ISTIO_MUTUAL local gateway from an address no pod has",
        story=(
            "Something at 127.0.0.99 (no pod in the bundle: a node process, another cluster) sends "
            "plain HTTP to knative-local-gateway's 8081: `\"- - -\" 0 NR filter_chain_not_found`. "
            "Traced by the client's ip:port."
        ),
        failing=Request(
            method="POST",
            host=T.PREDICTOR_HOST,
            via="plaintext-8081",
            src_ip=T.UNKNOWN_CLIENT_IP,
            src_port=47099,
        ),
        trace_by="client",
        cause="plaintext_to_mtls",
        client_status=0,
        hops=[Hop(GW, "gateway", T.L_8081, 0, "NR filter_chain_not_found")],
        origin=0,
        wire_checks=[(GW, r'"- - -" 0 NR filter_chain_not_found .* 127\.0\.0\.99:47099 ')],
    ),
    Scenario(
        name="rbac-allow-no-match",
        title="An ALLOW AuthorizationPolicy on the predictor that the request does not match",
        story=(
            "AuthorizationPolicy `aiproject/allow-infer` (ALLOW) lets the activator's identity "
            "`POST /v2/models/test/infer` only. A `GET /v2/models/test` (model metadata) matches "
            "no rule: the predictor's sidecar answers 403 "
            "`rbac_access_denied_matched_policy[none]`; 403 is not retried."
        ),
        failing=Request(method="GET", path="/v2/models/test", body=b""),
        knobs=T.Knobs(rbac="allow-infer"),
        cause="rbac_denied",
        client_status=403,
        hops=full_path([403] * 5, ("", "", "", "", "rbac_access_denied_matched_policy[none]")),
        origin=4,
        wire_checks=[(PRED, r"rbac_access_denied_matched_policy\[none\]")],
    ),
    Scenario(
        name="rbac-deny-named",
        title="A DENY AuthorizationPolicy on the predictor matches the request",
        story=(
            "AuthorizationPolicy `aiproject/deny-delete` (DENY) refuses method DELETE. `DELETE "
            "/v2/models/test` gets 403 "
            "`rbac_access_denied_matched_policy[ns[aiproject]-policy[deny-delete]-rule[0]]` at "
            "the predictor's sidecar."
        ),
        failing=Request(method="DELETE", path="/v2/models/test", body=b""),
        knobs=T.Knobs(rbac="deny-delete"),
        cause="rbac_denied",
        client_status=403,
        hops=full_path([403] * 5, ("", "", "", "", "rbac_access_denied_matched_policy[ns[aiproject]-policy[deny-delete]-rule[0]]")),
        origin=4,
        wire_checks=[(PRED, r"rbac_access_denied_matched_policy\[ns\[aiproject\]-policy\[deny-delete\]-rule\[0\]\]")],
    ),
    Scenario(
        name="local-ratelimit-429",
        title="Local rate limit on the predictor's sidecar (EnvoyFilter)",
        story=(
            "EnvoyFilter `aiproject/predictor-local-ratelimit` inserts Envoy's local rate limit "
            "filter (4 tokens per minute) into the predictor's inbound HTTP chain. Four good "
            "requests use the tokens; the fifth gets 429 `RL local_rate_limited` (not retried)."
        ),
        knobs=T.Knobs(ratelimit_tokens=4),
        healthy_before=4,
        healthy_alongside=0,
        cause="rate_limited",
        client_status=429,
        hops=full_path([429] * 5, ("", "", "", "", "RL local_rate_limited")),
        origin=4,
        wire_checks=[(PRED, r'" 429 RL local_rate_limited ')],
    ),
    Scenario(
        name="ext-authz-denied",
        title="The external authorizer of a CUSTOM AuthorizationPolicy answers 401 (no token)",
        story=(
            "AuthorizationPolicy `aiproject/test-authz` (action CUSTOM, provider "
            "`opendatahub-auth-provider`, as Open Data Hub's KServe sets up for token "
            "authentication) sends every request to the predictor through Authorino "
            "(`authorino-authorino-authorization.opendatahub-auth-provider.svc.cluster.local:5001`). "
            "The good requests carry `Authorization: Bearer …`; the failing one carries none: "
            "Authorino answers 401 and the predictor's sidecar returns it, `UAEX ext_authz_denied`. "
            "401 is not retried."
        ),
        knobs=T.Knobs(ext_authz="deny"),
        cause="ext_authz_denied",
        client_status=401,
        hops=full_path([401] * 5, ("", "", "", "", "UAEX ext_authz_denied")),
        origin=4,
        wire_checks=[(PRED, r'" 401 UAEX ext_authz_denied ')],
    ),
    Scenario(
        name="ext-authz-unreachable",
        title="The external authorizer of a CUSTOM AuthorizationPolicy cannot be reached",
        story=(
            "As in ext-authz-denied, but nothing answers at the authorizer's address (its pod "
            "`opendatahub-auth-provider/authorino-6b8d9c7f4-t5v2n` is crash-looping). The "
            "predictor's sidecar cannot ask it and refuses the request with Envoy's "
            "`status_on_error`, 403 `UAEX ext_authz_error`, even with a valid token. Every request "
            "fails; the lab sends only the one."
        ),
        failing=Request(headers=(("authorization", f"Bearer {T.AUTHZ_TOKEN}"),)),
        knobs=T.Knobs(ext_authz="unreachable"),
        healthy_before=0,
        healthy_alongside=0,
        cause="ext_authz_denied",
        client_status=403,
        hops=full_path([403] * 5, ("", "", "", "", "UAEX ext_authz_error")),
        origin=4,
        wire_checks=[(PRED, r'" 403 UAEX ext_authz_error ')],
        notes="The authorizer failed rather than denied: the evidence must name the authorizer's Service, not an access rule.",
    ),
    Scenario(
        name="wrong-sni-8443",
        title="A TLS client asks the ingress gateway for a host of another domain",
        story=(
            "A client uses the model's URL on another cluster's domain, "
            "`test-aiproject.apps.other.example.org`, resolved to this gateway. Its TLS ClientHello "
            "carries that server name; the gateway's 8443 has one filter chain, for "
            "`*.apps.lab.example.com` (Gateway `knative-serving/knative-ingress-gateway`): `\"- - -\" "
            "0 NR filter_chain_not_found` with the SNI logged, the handshake fails, no HTTP request "
            "is made. Traced by the client's ip:port."
        ),
        failing=Request(via="tls-8443", src_port=47120, sni="test-aiproject.apps.other.example.org"),
        trace_by="client",
        cause="tls_error",
        client_status=0,
        hops=[Hop(GW, "gateway", T.L_8443, 0, "NR filter_chain_not_found")],
        origin=0,
        routed=False,
        wire_checks=[(GW, r'"- - -" 0 NR filter_chain_not_found .* 127\.0\.0\.2:47120 test-aiproject\.apps\.other\.example\.org ')],
    ),
    Scenario(
        name="no-sni-8443",
        title="A TLS client calls the ingress gateway by IP address, without a server name",
        story=(
            "A client calls `https://127.0.0.10:8443/…` by IP address with certificate checks off: "
            "its TLS ClientHello carries no server name. The gateway's 8443 has one filter chain, "
            "for SNI `*.apps.lab.example.com`: `\"- - -\" 0 NR filter_chain_not_found` with no SNI "
            "logged, the handshake fails. The line looks like plain text sent to a TLS port; it is "
            "TLS without a name. Traced by the client's ip:port."
        ),
        failing=Request(via="tls-8443", src_port=47121, sni=None),
        trace_by="client",
        cause="tls_error",
        client_status=0,
        hops=[Hop(GW, "gateway", T.L_8443, 0, "NR filter_chain_not_found")],
        origin=0,
        routed=False,
        wire_checks=[(GW, r'"- - -" 0 NR filter_chain_not_found .* 127\.0\.0\.2:47121 - ')],
    ),
    Scenario(
        name="jwt-bad-signature",
        title="RequestAuthentication: a token signed by a key the issuer does not publish",
        story=(
            "RequestAuthentication `aiproject/test-jwt` verifies tokens of issuer "
            "`https://keycloak.lab.example.com/realms/ai` on the predictor (Envoy's jwt_authn filter, "
            "the issuer's keys inlined by istiod). Requests without a token pass; the failing "
            "request carries a token of that issuer whose signature no published key made (signed "
            "by another realm's key, or tampered with). The predictor's sidecar answers 401 "
            "`jwt_authn_access_denied{Jwt_verification_fails}`; every proxy relays it."
        ),
        failing=Request(
            headers=(
                (
                    "authorization",
                    "Bearer "
                    + certs.unsigned_jwt(
                        certs.JWT_KID, {"iss": T.JWT_ISSUER, "sub": "lab-user", "aud": "test", "exp": 4102444800}
                    ),
                ),
            )
        ),
        knobs=T.Knobs(jwt_issuer=T.JWT_ISSUER),
        cause="authn_failed",
        client_status=401,
        hops=full_path([401] * 5, ("", "", "", "", "jwt_authn_access_denied")),
        origin=4,
        wire_checks=[(PRED, r'" 401 - jwt_authn_access_denied')],
    ),
    Scenario(
        name="fault-abort-left-on",
        title="A chaos-test VirtualService still aborts the requests it matches",
        story=(
            "VirtualService `aiproject/test-chaos`, bound to the ingress gateway, was written for a "
            "resilience test: requests marked `x-chaos: abort` get `fault.abort` with 503 at 100 %. "
            "It was never removed; a client that still sends the header gets 503 `FI "
            "fault_filter_abort` from the gateway's 8443, before any routing. Other requests take "
            "the usual path."
        ),
        failing=Request(headers=(("x-chaos", "abort"),)),
        knobs=T.Knobs(fault_abort=503),
        cause="fault_injected",
        client_status=503,
        hops=[Hop(GW, "gateway", T.L_8443, 503, "FI fault_filter_abort")],
        origin=0,
        wire_checks=[(GW, r'" 503 FI fault_filter_abort ')],
    ),
    Scenario(
        name="vs-subset-missing",
        title="A canary VirtualService routes to a subset no DestinationRule defines",
        story=(
            "VirtualService `aiproject/test-canary`, bound to the ingress gateway, sends requests "
            "marked `x-canary: true` to subset `canary` of "
            "`test-predictor.aiproject.svc.cluster.local`; DestinationRule `aiproject/test-predictor` "
            "defines only `stable`. Istio builds no cluster `outbound|80|canary|…`, so the gateway's "
            "router answers 503 `NC cluster_not_found` at 8443. Requests without the header take the "
            "usual path."
        ),
        failing=Request(headers=(("x-canary", "true"),)),
        knobs=T.Knobs(canary_subset="canary"),
        cause="cluster_not_found",
        client_status=503,
        hops=[Hop(GW, "gateway", T.L_8443, 503, "NC cluster_not_found")],
        origin=0,
        wire_checks=[(GW, r'" 503 NC cluster_not_found ')],
    ),
    Scenario(
        name="no-route-8443",
        title="Unknown Host at the ingress gateway",
        story=(
            "The client mistypes the host: `tset-aiproject.apps.lab.example.com`. The SNI matches "
            "the gateway's `*.apps.lab.example.com` filter chain, but no virtual host of "
            "`https.443.https.knative-ingress-gateway.knative-serving` has that domain: 404 `NR "
            "route_not_found` at 8443."
        ),
        failing=Request(host="tset-aiproject.apps.lab.example.com"),
        cause="route_not_found",
        client_status=404,
        hops=[Hop(GW, "gateway", T.L_8443, 404, "NR route_not_found")],
        origin=0,
        routed=False,
        wire_checks=[(GW, r'" 404 NR route_not_found ')],
    ),
    Scenario(
        name="no-route-8081",
        title="A VirtualService left behind sends a Host the local gateway has no route for",
        story=(
            "InferenceService `test-v2` was deleted but its VirtualService `aiproject/test-v2` "
            "stayed: the gateway's 8443 still routes `test-v2-aiproject.apps.lab.example.com` to "
            "knative-local-gateway with Host `test-v2-predictor.aiproject.svc.cluster.local`, which "
            "no route of 8081 serves any more: 404 `NR route_not_found` at 8081, relayed by 8443."
        ),
        failing=Request(host="test-v2-aiproject.apps.lab.example.com"),
        knobs=T.Knobs(stale_vs_host="test-v2-aiproject.apps.lab.example.com"),
        cause="route_not_found",
        client_status=404,
        hops=[
            Hop(GW, "gateway", T.L_8443, 404),
            Hop(GW, "gateway", T.L_8081, 404, "NR route_not_found"),
        ],
        origin=1,
        routed=False,
        wire_checks=[(GW, r'" 404 NR route_not_found ')],
    ),
    Scenario(
        name="inference-epp-unreachable",
        title="The gateway's endpoint picker (ext_proc) is unreachable",
        story=(
            "The ingress gateway runs Envoy's `envoy.filters.http.ext_proc` filter on 8443 (an "
            "EnvoyFilter, as an inference gateway calls its endpoint picker before routing; "
            "`failure_mode_allow: false`). Its gRPC cluster "
            "`outbound|9002||test-epp.aiproject.svc.cluster.local` points to the EPP Service's "
            "ClusterIP where nothing listens (the EPP pod is gone): the gRPC call fails with "
            "UNAVAILABLE (14) and the gateway answers 500 `ext_proc_error_gRPC_error_14` itself; "
            "no request leaves the gateway. Every request fails; the lab sends only the one."
        ),
        knobs=T.Knobs(epp_unreachable=True),
        healthy_before=0,
        healthy_alongside=0,
        cause="upstream_connect_failure",
        client_status=500,
        hops=[Hop(GW, "gateway", T.L_8443, 500, "ext_proc_error_gRPC_error_14")],
        origin=0,
        wire_checks=[(GW, r'" 500 - ext_proc_error_gRPC_error_14')],
    ),
]


def by_name(names):
    if not names:
        return list(SCENARIOS)
    want = set(names)
    unknown = want - {s.name for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return [s for s in SCENARIOS if s.name in want]
