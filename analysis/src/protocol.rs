//! HTTP answers a line explains by its `%RESPONSE_CODE_DETAILS%` alone, where the cause's usual
//! words would mislead: a response cut after it had started, an HTTP/1.0 request refused (426),
//! an upgrade the route does not allow (403), request headers over the listener's limits. Pure.
//!
//! - `upstream_reset_after_response_started{<reason>}`: the status and headers came from the
//!   upstream and were sent on; the stream broke while the body was flowing (Envoy's response
//!   code details: "original success headers may have been sent downstream despite the
//!   subsequent failure"). The client sees the status, then a truncated body or a reset stream.
//! - `low_version` (426): "the HTTP/1.0 or HTTP/0.9 request was rejected due to HTTP/1.0
//!   support not being configured" — Envoy accepts HTTP/1.0 only with `accept_http_10`, which
//!   Istio sets for a proxy whose metadata has `HTTP10: "1"`, or for all with istiod's
//!   `PILOT_HTTP10`. nginx's `proxy_pass` speaks HTTP/1.0 upstream unless told otherwise.
//! - `upgrade_failed` (403): "the request was rejected because it attempted an unsupported
//!   upgrade" — Envoy proxies an `Upgrade:` only for the types the connection manager's or the
//!   route's `upgrade_configs` enable (Envoy's HTTP upgrades documentation); SPDY, which older
//!   `kubectl exec`/`port-forward` use, is never supported.
//! - `http1.headers_too_large`, `http1.too_many_headers`, `http2.too_many_headers`: the request's
//!   headers exceed the connection manager's `max_request_headers_kb` (60 KiB by default) or
//!   `max_headers_count` (100); HTTP/1 gets a 431, an HTTP/2 stream is reset (status 0).

use meshtrace_parsers::record::RawRecord;

use crate::causes::Cause;

/// What the line's details say happened, when it is one of the answers of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// `upstream_reset_after_response_started{reason}`.
    CutAfterStart(&'a str),
    /// `low_version`: an HTTP/1.0 (or 0.9) request refused with 426.
    Http10Refused,
    /// `upgrade_failed`: an `Upgrade:` the route does not allow, refused with 403.
    UpgradeRefused,
    /// `http1.headers_too_large`, `http1.too_many_headers`, `http2.too_many_headers`.
    HeadersOverLimit(&'a str),
}

impl<'a> Answer<'a> {
    /// The answer a record's details name, if any.
    pub fn of(r: &'a RawRecord<'_>) -> Option<Answer<'a>> {
        let d = r.details()?;
        match d.base {
            "upstream_reset_after_response_started" => {
                Some(Answer::CutAfterStart(d.reset_reason.unwrap_or("")))
            }
            "low_version" => Some(Answer::Http10Refused),
            "upgrade_failed" => Some(Answer::UpgradeRefused),
            b @ ("http1.headers_too_large"
            | "http1.too_many_headers"
            | "http2.too_many_headers") => Some(Answer::HeadersOverLimit(b)),
            _ => None,
        }
    }
}

/// The cause of a request refused for its protocol (`low_version`, `upgrade_failed`): an HTTP
/// protocol problem of the client's request, decided by the proxy, not the application.
pub fn refused_cause(r: &RawRecord<'_>) -> Option<Cause> {
    match Answer::of(r)? {
        Answer::Http10Refused | Answer::UpgradeRefused | Answer::HeadersOverLimit(_) => {
            Some(Cause::ProtocolError)
        }
        Answer::CutAfterStart(_) => None,
    }
}

/// What broke a response after it started, by Envoy's reset reason.
fn cut_by(reason: &str) -> &'static str {
    match reason {
        "protocol_error" => {
            "the proxy found the upstream's response breaking HTTP after its headers (a body that does not match its Content-Length or chunking, a duplicated Transfer-Encoding, a header HTTP/2 forbids) and reset the stream"
        }
        "remote_reset" | "connection_termination" | "remote_refused_stream_reset" => {
            "the upstream reset the stream or closed its connection in the middle of the response: the application failed or restarted while sending, or a timeout on its side (or of a proxy behind it) cut a long or streaming response"
        }
        "local_reset" => {
            "this proxy reset the stream itself while the response was flowing (an idle or duration timeout of the route or listener, or the client going away)"
        }
        "overflow" => "a limit of this proxy (a circuit breaker or buffer) cut the response",
        _ => "the stream broke while the response was flowing",
    }
}

/// The summary of a line this module explains, or `None`.
pub fn summary(r: &RawRecord<'_>, status: &str, label: &str) -> Option<String> {
    Some(match Answer::of(r)? {
        Answer::CutAfterStart(reason) => format!(
            "{status} came from the upstream ({}) through {label}, but the stream was reset after the response had started (reset reason `{}`): the client got the status and headers, then a truncated body or a reset stream — {}.",
            r.get(meshtrace_parsers::Slot::UpstreamHost).unwrap_or("-"),
            if reason.is_empty() { "-" } else { reason },
            cut_by(reason)
        ),
        Answer::Http10Refused => format!(
            "{status} was generated by {label}, not by the application: the request came in {}, which the proxy refuses unless HTTP/1.0 support is configured (details `low_version`). A usual sender is nginx's `proxy_pass`, which speaks HTTP/1.0 to its upstream by default.",
            r.protocol()
                .filter(|p| !p.is_empty() && *p != "-")
                .unwrap_or("HTTP/1.0 or 0.9")
        ),
        Answer::HeadersOverLimit(details) => format!(
            "{status} was generated by {label}, not by the application: the request's headers are over this proxy's limits (details `{details}`) — by default 60 KiB in all (`max_request_headers_kb`) and 100 headers (`max_headers_count`); an HTTP/1 request gets 431, an HTTP/2 stream is reset instead (status 0). Large cookies or tokens are the usual cause, or an EnvoyFilter that lowered the limit."
        ),
        Answer::UpgradeRefused => format!(
            "{status} was generated by {label}, not by the application: the request asked to switch protocols (an `Upgrade:` header: WebSocket, SPDY, h2c…) and this route does not allow that upgrade (details `upgrade_failed`); the proxy forwards only the upgrade types enabled in its connection manager's or the route's `upgrade_configs`."
        ),
    })
}

/// The fix of a line this module explains, or `None`.
pub fn fix(r: &RawRecord<'_>) -> Option<String> {
    Some(match Answer::of(r)? {
        Answer::CutAfterStart("protocol_error") => "Capture the upstream's raw response (call the pod directly with `curl -v`, or raise this proxy's log level: `istioctl proxy-config log <pod> --level http:debug`) and fix what breaks HTTP in it: a Content-Length that does not match the body, a Transfer-Encoding sent twice, connection-specific headers in an HTTP/2 response.".to_string(),
        Answer::CutAfterStart("local_reset") => "Check this proxy's timeouts for long responses: the route's timeout and idle timeout (VirtualService `timeout`, DestinationRule `connectionPool.http.idleTimeout`) and the listener's `stream_idle_timeout`; streamed responses (gRPC streams, model token streams) need them above the longest pause between chunks.".to_string(),
        Answer::CutAfterStart(_) => "Look at the upstream around this time: its log and restarts (`kubectl get pod` restart count, OOMKilled in `kubectl describe pod`), the response size and duration, and the timeouts of the application server and of every proxy behind this one; a streamed response needs each hop's idle timeout above its longest pause.".to_string(),
        Answer::Http10Refused => "Make the client speak HTTP/1.1 (nginx: `proxy_http_version 1.1;` in the location that proxies to the mesh), or accept HTTP/1.0 on this proxy: proxy metadata `ISTIO_META_HTTP10: \"1\"` (pod annotation `proxy.istio.io/config: '{\"proxyMetadata\":{\"ISTIO_META_HTTP10\":\"1\"}}'`), or `PILOT_HTTP10=1` on istiod for every proxy (Envoy: `http_protocol_options.accept_http_10`).".to_string(),
        Answer::HeadersOverLimit(_) => "Send smaller headers (cookies, tokens, forwarded headers that pile up), or raise the limits of this proxy's HTTP connection manager: an EnvoyFilter that merges `max_request_headers_kb` (at most 8192) or `common_http_protocol_options.max_headers_count` into it; list the EnvoyFilters that set them (`kubectl get envoyfilter -A -o yaml | grep -n max_request_headers_kb`), one may have lowered the default.".to_string(),
        Answer::UpgradeRefused => "Enable the upgrade for this route: Envoy `upgrade_configs: [{upgrade_type: websocket}]` on the HTTP connection manager or the route (Istio enables WebSocket on its routes by default: look for an EnvoyFilter that changes it); Envoy Gateway: a BackendTrafficPolicy `httpUpgrade` for the type. SPDY (older `kubectl exec`/`port-forward`) cannot be proxied by Envoy: use a client that upgrades to WebSocket. On Envoy Gateway a route whose backend has no ready endpoint also answers an upgrade with 403 `upgrade_failed` instead of 503: check the backend's endpoints.".to_string(),
    })
}

/// The HTTP status Envoy's local reply would have had, by the flags and details that made it.
fn local_reply_status(r: &RawRecord<'_>) -> Option<u16> {
    use meshtrace_parsers::flags::ResponseFlag as F;
    let flags = r.flags();
    let base = r.details().map(|d| d.base).unwrap_or("");
    let has = |f: F| flags.contains(f);
    // A status the upstream gave (relayed, or sent before the stream broke) is no local reply.
    if !crate::reply::envoy_generated(r) || base == "upstream_reset_after_response_started" {
        return None;
    }
    Some(if has(F::NoRouteFound) || base == "route_not_found" {
        404
    } else if has(F::UnauthorizedExternalService)
        || base.starts_with("ext_authz")
        || base.starts_with("rbac_access_denied")
    {
        403
    } else if base.starts_with("jwt_authn") {
        401
    } else if has(F::RateLimited) {
        429
    } else if has(F::UpstreamRequestTimeout) {
        504
    } else if [
        F::UpstreamConnectionFailure,
        F::NoHealthyUpstream,
        F::UpstreamConnectionTermination,
        F::UpstreamOverflow,
        F::UpstreamRetryLimitExceeded,
        F::NoClusterFound,
        F::LocalReset,
        F::UpstreamRemoteReset,
    ]
    .into_iter()
    .any(has)
    {
        503
    } else {
        return None;
    })
}

/// gRPC's status for the HTTP status of a local reply, as Envoy maps it (`grpc-status` of a
/// reply to a gRPC request): 400 INTERNAL, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404
/// UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, anything else UNKNOWN.
fn grpc_status_of(http: u16) -> u32 {
    match http {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

/// A sentence for a gRPC call the proxy failed with HTTP 200: Envoy answers a gRPC request it
/// cannot serve with status 200 and puts the error in the `grpc-status` trailer, so a `200`
/// beside a failure flag (`200 UF`, `200 NR`) over HTTP/2 is a failed call, not a success.
pub fn grpc_local_reply(r: &RawRecord<'_>) -> Option<String> {
    if r.status() != Some(200) || !matches!(r.protocol(), Some("HTTP/2" | "HTTP/3")) {
        return None;
    }
    let http = local_reply_status(r)?;
    let code = grpc_status_of(http);
    let name = meshtrace_parsers::grpc::status(code).map_or("", |(n, _)| n);
    Some(format!(
        "The call is gRPC: Envoy answers a gRPC request it cannot serve with HTTP 200 and the error in the `grpc-status` trailer, so this 200 is a failure — the client got {code} {name} (what Envoy sends for the {http} it would have answered)."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrace_parsers::detect::{LineOutcome, LineParser};

    fn record(line: &str) -> RawRecord<'static> {
        match LineParser::auto().parse(line) {
            LineOutcome::Record(r) => r.into_owned(),
            other => panic!("not a record: {other:?}"),
        }
    }

    /// Lines from public threads (`testdata/pasted/README.md`) and Envoy's details.
    #[test]
    fn answers_are_read_from_the_details() {
        let cut = record(
            r#"[2021-11-07T12:06:36.161Z] "GET /api HTTP/1.1" 200 UPE upstream_reset_after_response_started{protocol_error} - "-" 0 43707 3 2 "10.128.0.79" "Mozilla/5.0" "4f6928b9-9936-4617-ade1-eb486e2054bf" "demo:9002" "10.127.2.36:9002" outbound|9002||demo.demo.svc.cluster.local 10.127.3.145:35164 10.127.3.145:9002 10.128.0.79:3235 - -"#,
        );
        assert_eq!(
            Answer::of(&cut),
            Some(Answer::CutAfterStart("protocol_error"))
        );
        assert_eq!(refused_cause(&cut), None);
        let s = summary(&cut, "200", "the gateway").unwrap();
        assert!(
            s.starts_with("200 came from the upstream (10.127.2.36:9002)"),
            "{s}"
        );
        assert!(s.contains("breaking HTTP after its headers"), "{s}");
        assert!(fix(&cut).unwrap().contains("Content-Length"));

        let old = record(
            r#"[2022-07-11T08:47:29.750Z] "GET /api/v1/version HTTP/1.0" 426 - low_version - "-" 0 0 0 - "172.16.0.4" "Mozilla/5.0" "5ef74ed5-2082-4f89-b23b-5d109c90df59" "mon-signoz-query-service:8080" "-" - - 10.240.0.16:8080 10.240.1.221:37958 - -"#,
        );
        assert_eq!(refused_cause(&old), Some(Cause::ProtocolError));
        let s = summary(&old, "426", "the sidecar").unwrap();
        assert!(s.contains("came in HTTP/1.0"), "{s}");
        assert!(fix(&old).unwrap().contains("proxy_http_version 1.1"));

        let up = record(
            r#"[2025-02-13T11:59:05.192Z] "POST /pods/x/portforward HTTP/1.1" 403 - upgrade_failed - "-" 0 0 0 - "100.64.0.5" "kubectl/v1.30.2" "b462263b-4491-4693-b401-479d70b7c4f9" "ecp.example" "-" httproute/ns/r/rule/0 - 10.119.6.29:10443 100.64.0.5:59184 - -"#,
        );
        assert_eq!(refused_cause(&up), Some(Cause::ProtocolError));
        assert!(
            summary(&up, "403", "x")
                .unwrap()
                .contains("not by the application")
        );
        assert!(fix(&up).unwrap().contains("upgrade_configs"));

        // A TSB troubleshooting page: an EnvoyFilter lowered the limit to 10 KiB, HTTP/2 client.
        let big = record(
            r#"[2022-10-19T20:39:58.081Z] "- - HTTP/2" 0 - http2.too_many_headers - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 10.211.129.34:8443 10.240.0.38:63077 httpbin.example.io -"#,
        );
        assert_eq!(refused_cause(&big), Some(Cause::ProtocolError));
        let s = summary(&big, "0", "the gateway").unwrap();
        assert!(
            s.contains("max_request_headers_kb") && s.contains("reset"),
            "{s}"
        );
        assert!(fix(&big).unwrap().contains("EnvoyFilter"));

        let other = record(
            r#"[2021-11-07T12:06:36.161Z] "GET /api HTTP/1.1" 503 UC upstream_reset_before_response_started{connection_termination} - "-" 0 95 3 - "-" "curl" "id" "demo:9002" "10.127.2.36:9002" outbound|9002||demo.demo.svc.cluster.local - 10.127.3.145:9002 10.128.0.79:3235 - -"#,
        );
        assert_eq!(Answer::of(&other), None);
        assert_eq!(summary(&other, "503", "x"), None);
    }

    /// gRPC calls the proxy failed, as logged in public threads (istio/istio#8509, #7620).
    #[test]
    fn a_grpc_call_failed_with_200_is_said_to_have_failed() {
        let uf = record(
            r#"[2018-09-06T01:52:33.283Z] "POST /test.PingService/Ping HTTP/2" 200 UF 18 0 1 - "-" "grpc-go/1.15.0-dev" "9ff26768-08c0-9e82-916c-c4badbacc358" "server.test.svc.cluster.local:1443" "172.20.50.36:1443""#,
        );
        let s = grpc_local_reply(&uf).unwrap();
        assert!(s.contains("14 UNAVAILABLE") && s.contains("503"), "{s}");
        let nr = record(
            r#"[2024-05-01T10:00:00.000Z] "POST /a.B/C HTTP/2" 200 NR route_not_found - "-" 0 0 0 - "-" "grpc-go" "id" "h" "-" - - 10.0.0.1:80 10.0.0.2:5000 - -"#,
        );
        assert!(grpc_local_reply(&nr).unwrap().contains("12 UNIMPLEMENTED"));
        // A gRPC success, an HTTP/1.1 200, and a 200 relayed from upstream are not.
        for line in [
            r#"[2024-05-01T10:00:00.000Z] "POST /a.B/C HTTP/2" 200 - via_upstream - "-" 0 0 3 2 "-" "grpc-go" "id" "h" "10.0.0.3:80" outbound|80||h - 10.0.0.1:80 10.0.0.2:5000 - -"#,
            r#"[2024-05-01T10:00:00.000Z] "GET /x HTTP/1.1" 200 UF - - "-" 0 0 3 2 "-" "curl" "id" "h" "-" - - 10.0.0.1:80 10.0.0.2:5000 - -"#,
            r#"[2024-05-01T10:00:00.000Z] "POST /a.B/C HTTP/2" 200 URX via_upstream - "-" 5 0 93 92 "-" "grpc-python" "id" "h" "10.1.0.16:9000" outbound|80||g - 10.1.0.8:8080 10.0.0.2:5000 - -"#,
            // `URX` alone, no details, an upstream host: the upstream's status after retries.
            r#"[2018-09-06T01:52:33.283Z] "POST /a.B/C HTTP/2" 200 URX 18 0 1 1 "-" "grpc-go" "id" "h" "172.20.50.36:1443""#,
        ] {
            assert_eq!(grpc_local_reply(&record(line)), None, "{line}");
        }
        assert_eq!(grpc_status_of(403), 7);
        assert_eq!(grpc_status_of(401), 16);
        assert_eq!(grpc_status_of(500), 2);
    }

    #[test]
    fn each_reset_reason_has_its_own_words() {
        let words: Vec<&str> = [
            "protocol_error",
            "remote_reset",
            "local_reset",
            "overflow",
            "",
        ]
        .into_iter()
        .map(cut_by)
        .collect();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), words.len());
        assert_eq!(cut_by("connection_termination"), cut_by("remote_reset"));
    }
}
