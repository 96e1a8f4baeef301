//! gRPC status codes and Envoy's ext_proc failure details (`ext_proc_error_gRPC_error_<N>`,
//! optionally followed by `{<message>}`): the code's name, what it means, and what usually
//! causes it when the external processor is an inference gateway's endpoint picker (EPP).

/// The 17 gRPC status codes: (code, name, meaning), from grpc/grpc `doc/statuscodes.md`.
pub const STATUS: [(u32, &str, &str); 17] = [
    (0, "OK", "not an error"),
    (
        1,
        "CANCELLED",
        "the call was cancelled, typically by the caller",
    ),
    (
        2,
        "UNKNOWN",
        "an unknown error (an exception without a status on the server)",
    ),
    (3, "INVALID_ARGUMENT", "the client sent an invalid argument"),
    (
        4,
        "DEADLINE_EXCEEDED",
        "the deadline expired before the call completed",
    ),
    (5, "NOT_FOUND", "a requested entity was not found"),
    (6, "ALREADY_EXISTS", "the entity already exists"),
    (
        7,
        "PERMISSION_DENIED",
        "the caller is not permitted to make the call",
    ),
    (
        8,
        "RESOURCE_EXHAUSTED",
        "a resource ran out (quota, message size, flow control)",
    ),
    (
        9,
        "FAILED_PRECONDITION",
        "the system is not in a state the call requires",
    ),
    (
        10,
        "ABORTED",
        "the call was aborted (a concurrency conflict)",
    ),
    (11, "OUT_OF_RANGE", "an argument was out of range"),
    (
        12,
        "UNIMPLEMENTED",
        "the server does not implement the method",
    ),
    (
        13,
        "INTERNAL",
        "an internal error of the server or the transport",
    ),
    (
        14,
        "UNAVAILABLE",
        "the service could not be reached (connection refused, reset or closed)",
    ),
    (15, "DATA_LOSS", "unrecoverable data loss"),
    (16, "UNAUTHENTICATED", "the call has no valid credentials"),
];

/// `(name, meaning)` of a gRPC status code.
pub fn status(code: u32) -> Option<(&'static str, &'static str)> {
    STATUS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, n, m)| (*n, *m))
}

/// An ext_proc gRPC failure as Envoy writes it in `%RESPONSE_CODE_DETAILS%`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtProcError<'a> {
    /// The gRPC status code.
    pub code: u32,
    /// The message Envoy appended in braces (Envoy ≥ 1.34), as written (spaces are `_`).
    pub message: Option<&'a str>,
}

const PREFIX: &str = "ext_proc_error_gRPC_error_";

/// Read `ext_proc_error_gRPC_error_14` / `ext_proc_error_gRPC_error_14{…}`.
pub fn parse_ext_proc_error(details: &str) -> Option<ExtProcError<'_>> {
    let rest = details.trim().strip_prefix(PREFIX)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 2 {
        return None;
    }
    let code: u32 = rest.get(..digits)?.parse().ok()?;
    status(code)?;
    let tail = rest.get(digits..).unwrap_or("");
    let message = tail
        .strip_prefix('{')
        .map(|m| m.strip_suffix('}').unwrap_or(m))
        .filter(|m| !m.is_empty());
    Some(ExtProcError { code, message })
}

/// What the transport message in braces after `ext_proc_error_gRPC_error_<N>` says went wrong
/// on the gRPC connection (Envoy writes its upstream reset reason there, spaces as `_`, e.g.
/// `upstream_connect_error_or_disconnect/reset_before_headers._reset_reason:_remote_connection_failure{…delayed_connect_error:_Connection_refused}}`).
/// `None` when the message names no reason this knows.
pub fn ext_proc_transport_reason(message: &str) -> Option<&'static str> {
    // Most specific first: the innermost transport failure decides.
    const REASONS: [(&str, &str); 8] = [
        (
            "Connection_refused",
            "the connection was refused: nothing listens on that address and port",
        ),
        (
            "CERTIFICATE_VERIFY_FAILED",
            "the TLS handshake failed: the peer's certificate is not trusted",
        ),
        (
            "WRONG_VERSION_NUMBER",
            "the TLS handshake failed: the peer answered in plaintext",
        ),
        ("TLS_error", "the TLS handshake failed"),
        (
            "connection_timeout",
            "the connection timed out: the address does not answer (no pod behind it, or a network policy drops it)",
        ),
        (
            "overflow",
            "the connection pool's circuit breaker overflowed",
        ),
        (
            "protocol_error",
            "the HTTP/2 connection failed: the port may not speak gRPC (HTTP/2)",
        ),
        (
            "connection_termination",
            "the connection was closed before the answer",
        ),
    ];
    REASONS
        .iter()
        .find(|(k, _)| message.contains(k))
        .map(|(_, v)| *v)
}

/// What usually causes this ext_proc failure when the external processor is an endpoint
/// picker (Gateway API Inference Extension, llm-d, KServe `LLMInferenceService`).
pub fn epp_likely_cause(code: u32) -> &'static str {
    match code {
        14 => {
            "the gateway could not reach the endpoint picker: its pod is down or not ready, its Service has no endpoints or the wrong port, the port is not declared as gRPC/HTTP2 (name `grpc-…` or `appProtocol: http2`), or TLS and plaintext disagree between the gateway and the EPP"
        }
        4 => {
            "the endpoint picker did not answer within the ext_proc message timeout: it is overloaded or waiting on metrics from the model servers"
        }
        13 => {
            "the endpoint picker (or the transport to it) failed internally: read the EPP's log for the request"
        }
        16 | 7 => {
            "the gateway and the endpoint picker disagree on authentication (mTLS identity or token)"
        }
        12 => "the endpoint picker does not implement the ext_proc service the gateway called",
        8 => "a message exceeded a size or flow-control limit between the gateway and the EPP",
        _ => "the external processor returned an error status",
    }
}

/// One sentence for `ext_proc_error_gRPC_error_<N>` (the details lookup uses it).
pub fn ext_proc_meaning(details: &str) -> Option<&'static str> {
    let e = parse_ext_proc_error(details)?;
    Some(match e.code {
        14 => {
            "The gateway's ext_proc filter could not reach its external processor (gRPC 14 UNAVAILABLE): with an inference gateway, the endpoint picker (EPP) is down or unreachable, so the gateway answered by itself."
        }
        4 => {
            "The gateway's external processor did not answer in time (gRPC 4 DEADLINE_EXCEEDED): with an inference gateway, the endpoint picker (EPP) is slow."
        }
        13 => {
            "The gateway's external processor failed (gRPC 13 INTERNAL); the gateway answered by itself."
        }
        16 => {
            "The gateway's external processor refused the call as unauthenticated (gRPC 16 UNAUTHENTICATED)."
        }
        7 => "The gateway's external processor refused the call (gRPC 7 PERMISSION_DENIED).",
        _ => {
            "The gateway's ext_proc filter got an error status from its external processor and answered by itself."
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: what real Envoy 1.40 writes when the ext_proc gRPC cluster's port is closed
    /// (testdata/lab/inference-epp-unreachable): the message nests braces.
    #[test]
    fn ext_proc_details_from_real_envoy() {
        let real = "ext_proc_error_gRPC_error_14{upstream_connect_error_or_disconnect/reset_before_headers._reset_reason:_remote_connection_failure{upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}}}";
        let e = parse_ext_proc_error(real).unwrap();
        assert_eq!(e.code, 14);
        let m = e.message.unwrap();
        assert!(
            m.starts_with("upstream_connect_error_or_disconnect/"),
            "{m}"
        );
        assert!(m.ends_with("Connection_refused}}"), "{m}");
        assert!(ext_proc_transport_reason(m).unwrap().contains("refused"));
        assert!(
            ext_proc_transport_reason(
                "upstream_connect_error_or_disconnect/reset_before_headers._reset_reason:_overflow"
            )
            .unwrap()
            .contains("circuit breaker")
        );
        assert_eq!(ext_proc_transport_reason("something_else"), None);
    }

    #[test]
    fn ext_proc_details() {
        assert_eq!(
            parse_ext_proc_error("ext_proc_error_gRPC_error_14"),
            Some(ExtProcError {
                code: 14,
                message: None
            })
        );
        let e = parse_ext_proc_error(
            "ext_proc_error_gRPC_error_14{upstream_connect_error_or_disconnect/reset_before_headers._reset_reason:_overflow}",
        )
        .unwrap();
        assert_eq!(e.code, 14);
        assert!(e.message.unwrap().starts_with("upstream_connect_error"));
        assert_eq!(parse_ext_proc_error("ext_proc_error_gRPC_error_"), None);
        assert_eq!(parse_ext_proc_error("ext_proc_error_gRPC_error_99"), None);
        assert_eq!(parse_ext_proc_error("ext_proc_error_gRPC_error_123"), None);
        assert_eq!(parse_ext_proc_error("via_upstream"), None);
        assert_eq!(status(14), Some(("UNAVAILABLE", STATUS[14].2)));
        assert!(
            ext_proc_meaning("ext_proc_error_gRPC_error_4")
                .unwrap()
                .contains("DEADLINE")
        );
        assert!(epp_likely_cause(14).contains("endpoint picker"));
        for (i, (c, _, _)) in STATUS.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}
