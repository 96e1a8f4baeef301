//! The built-in access-log formats: Istio's defaults of every version, Envoy's default, and the
//! JSON key sets of Istio and Envoy Gateway.
//!
//! The format strings are data from istio/istio and envoyproxy/envoy (Apache-2.0); see
//! `../testdata/peer/SOURCES.md` for where each one was read.

use std::sync::{Arc, OnceLock};

use crate::format::TextFormat;

/// A built-in TEXT format.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinText {
    /// Name used by `--log-format` and in output.
    pub name: &'static str,
    /// Which proxies write it.
    pub description: &'static str,
    /// The Envoy format string.
    pub format: &'static str,
    /// Tried by auto-detection (formats identical on the wire to another are not).
    pub detect: bool,
}

const ISTIO_1_23: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";
const ISTIO_1_9: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";
const ISTIO_1_8: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";
const ISTIO_1_3: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%DYNAMIC_METADATA(istio.mixer:status)%\" \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";
const ISTIO_1_1: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME%\n";
const ENVOY: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// Emissary-ingress's (formerly Ambassador's) default: Envoy's default prefixed with `ACCESS `,
/// for a Module without `envoy_log_format` (emissary-ingress/emissary, the listeners' access
/// log in `python/ambassador/envoy/v3/`).
const EMISSARY: &str = "ACCESS [%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// All built-in TEXT formats, in auto-detection order.
pub const BUILTIN_TEXT: &[BuiltinText] = &[
    BuiltinText {
        name: "istio-1.23",
        description: "Istio default TEXT format since 1.23 (%UPSTREAM_CLUSTER_RAW%); on the wire identical to istio-1.9",
        format: ISTIO_1_23,
        detect: true,
    },
    BuiltinText {
        name: "istio-1.9",
        description: "Istio default TEXT format 1.9 to 1.22 (%UPSTREAM_CLUSTER%)",
        format: ISTIO_1_9,
        detect: false,
    },
    BuiltinText {
        name: "istio-1.3",
        description: "Istio default TEXT format 1.3 to 1.7 (Mixer status field after the flags)",
        format: ISTIO_1_3,
        detect: true,
    },
    BuiltinText {
        name: "istio-1.8",
        description: "Istio default TEXT format 1.8 (no response code details)",
        format: ISTIO_1_8,
        detect: true,
    },
    BuiltinText {
        name: "istio-1.1",
        description: "Istio 1.1/1.2 TEXT format as printed without its Mixer field (Envoy's default plus cluster, addresses and SNI)",
        format: ISTIO_1_1,
        detect: true,
    },
    BuiltinText {
        name: "envoy",
        description: "Envoy's own default format (a listener with no format configured)",
        format: ENVOY,
        detect: true,
    },
    BuiltinText {
        name: "emissary",
        description: "Emissary-ingress (Ambassador) default: Envoy's default prefixed with ACCESS",
        format: EMISSARY,
        detect: true,
    },
];

/// Look up a built-in TEXT format by name (case-insensitive; `istio` means `istio-1.23`).
pub fn builtin_text(name: &str) -> Option<&'static BuiltinText> {
    let name = name.to_ascii_lowercase();
    let name = match name.as_str() {
        "istio" | "istio-default" => "istio-1.23",
        "istio-1.22" => "istio-1.9",
        "istio-1.7" => "istio-1.3",
        "istio-1.2" => "istio-1.1",
        "envoy-default" => "envoy",
        n => n,
    };
    BUILTIN_TEXT.iter().find(|b| b.name == name)
}

/// The compiled built-ins (compiled once per process).
pub fn compiled_builtins() -> &'static [Arc<TextFormat>] {
    static CELL: OnceLock<Vec<Arc<TextFormat>>> = OnceLock::new();
    CELL.get_or_init(|| {
        BUILTIN_TEXT
            .iter()
            .filter_map(|b| TextFormat::compile(b.name, b.format).ok().map(Arc::new))
            .collect()
    })
}

/// Istio's default JSON encoding: key → operator (pilot/pkg/model/telemetry_logging.go).
pub const ISTIO_JSON_KEYS: &[(&str, &str)] = &[
    ("start_time", "START_TIME"),
    ("route_name", "ROUTE_NAME"),
    ("method", "REQ(:METHOD)"),
    ("path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("protocol", "PROTOCOL"),
    ("response_code", "RESPONSE_CODE"),
    ("response_flags", "RESPONSE_FLAGS"),
    ("response_code_details", "RESPONSE_CODE_DETAILS"),
    (
        "connection_termination_details",
        "CONNECTION_TERMINATION_DETAILS",
    ),
    ("bytes_received", "BYTES_RECEIVED"),
    ("bytes_sent", "BYTES_SENT"),
    ("duration", "DURATION"),
    (
        "upstream_service_time",
        "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)",
    ),
    ("x_forwarded_for", "REQ(X-FORWARDED-FOR)"),
    ("user_agent", "REQ(USER-AGENT)"),
    ("request_id", "REQ(X-REQUEST-ID)"),
    ("authority", "REQ(:AUTHORITY)"),
    ("upstream_host", "UPSTREAM_HOST"),
    ("upstream_cluster", "UPSTREAM_CLUSTER_RAW"),
    ("upstream_local_address", "UPSTREAM_LOCAL_ADDRESS"),
    ("downstream_local_address", "DOWNSTREAM_LOCAL_ADDRESS"),
    ("downstream_remote_address", "DOWNSTREAM_REMOTE_ADDRESS"),
    ("requested_server_name", "REQUESTED_SERVER_NAME"),
    (
        "upstream_transport_failure_reason",
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
    ),
];

/// Envoy Gateway's default JSON access log: header-style keys (site docs, proxy-accesslog.md).
pub const ENVOY_GATEWAY_JSON_KEYS: &[(&str, &str)] = &[
    ("start_time", "START_TIME"),
    ("method", "REQ(:METHOD)"),
    ("x-envoy-origin-path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("protocol", "PROTOCOL"),
    ("response_code", "RESPONSE_CODE"),
    ("response_flags", "RESPONSE_FLAGS"),
    ("response_code_details", "RESPONSE_CODE_DETAILS"),
    (
        "connection_termination_details",
        "CONNECTION_TERMINATION_DETAILS",
    ),
    (
        "upstream_transport_failure_reason",
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
    ),
    ("bytes_received", "BYTES_RECEIVED"),
    ("bytes_sent", "BYTES_SENT"),
    ("duration", "DURATION"),
    (
        "x-envoy-upstream-service-time",
        "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)",
    ),
    ("x-forwarded-for", "REQ(X-FORWARDED-FOR)"),
    ("user-agent", "REQ(USER-AGENT)"),
    ("x-request-id", "REQ(X-REQUEST-ID)"),
    (":authority", "REQ(:AUTHORITY)"),
    ("upstream_host", "UPSTREAM_HOST"),
    ("upstream_cluster", "UPSTREAM_CLUSTER"),
    ("upstream_local_address", "UPSTREAM_LOCAL_ADDRESS"),
    ("downstream_local_address", "DOWNSTREAM_LOCAL_ADDRESS"),
    ("downstream_remote_address", "DOWNSTREAM_REMOTE_ADDRESS"),
    ("requested_server_name", "REQUESTED_SERVER_NAME"),
    ("route_name", "ROUTE_NAME"),
];

/// Key names (normalised: lower case, words joined by `_`, `requestId` → `request_id`) that
/// custom `json_format`s use for Envoy's operators, for reading a JSON log given without
/// `--log-format`. Only names that mean one operator in every access log seen are listed;
/// ambiguous ones (`time`, `request_time` — nginx's duration —, `id`) are not.
pub const JSON_KEY_VOCABULARY: &[(&str, &str)] = &[
    ("start_time", "START_TIME"),
    ("timestamp", "START_TIME"),
    ("request_start_time", "START_TIME"),
    ("method", "REQ(:METHOD)"),
    ("http_method", "REQ(:METHOD)"),
    ("request_method", "REQ(:METHOD)"),
    ("req_method", "REQ(:METHOD)"),
    ("path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("req_path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("request_path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("http_path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("uri", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("request_uri", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("original_path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("x_envoy_origin_path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)"),
    ("protocol", "PROTOCOL"),
    ("http_protocol", "PROTOCOL"),
    ("server_protocol", "PROTOCOL"),
    ("http_version", "PROTOCOL"),
    ("response_code", "RESPONSE_CODE"),
    ("resp_code", "RESPONSE_CODE"),
    ("status", "RESPONSE_CODE"),
    ("status_code", "RESPONSE_CODE"),
    ("code", "RESPONSE_CODE"),
    ("http_status", "RESPONSE_CODE"),
    ("http_status_code", "RESPONSE_CODE"),
    ("response_status", "RESPONSE_CODE"),
    ("response_flags", "RESPONSE_FLAGS"),
    ("resp_flags", "RESPONSE_FLAGS"),
    ("response_flag", "RESPONSE_FLAGS"),
    ("flags", "RESPONSE_FLAGS"),
    ("envoy_flags", "RESPONSE_FLAGS"),
    ("response_code_details", "RESPONSE_CODE_DETAILS"),
    ("resp_code_details", "RESPONSE_CODE_DETAILS"),
    ("code_details", "RESPONSE_CODE_DETAILS"),
    ("response_details", "RESPONSE_CODE_DETAILS"),
    (
        "connection_termination_details",
        "CONNECTION_TERMINATION_DETAILS",
    ),
    ("termination_details", "CONNECTION_TERMINATION_DETAILS"),
    (
        "upstream_transport_failure_reason",
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
    ),
    (
        "transport_failure_reason",
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
    ),
    (
        "upstream_failure_reason",
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
    ),
    ("bytes_received", "BYTES_RECEIVED"),
    ("bytes_in", "BYTES_RECEIVED"),
    ("request_bytes", "BYTES_RECEIVED"),
    ("bytes_sent", "BYTES_SENT"),
    ("bytes_out", "BYTES_SENT"),
    ("response_bytes", "BYTES_SENT"),
    ("duration", "DURATION"),
    ("duration_ms", "DURATION"),
    ("latency_ms", "DURATION"),
    ("elapsed_ms", "DURATION"),
    ("request_duration_ms", "DURATION"),
    (
        "upstream_service_time",
        "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)",
    ),
    (
        "x_envoy_upstream_service_time",
        "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)",
    ),
    (
        "upstream_service_time_ms",
        "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)",
    ),
    ("x_forwarded_for", "REQ(X-FORWARDED-FOR)"),
    ("xff", "REQ(X-FORWARDED-FOR)"),
    ("forwarded_for", "REQ(X-FORWARDED-FOR)"),
    ("http_x_forwarded_for", "REQ(X-FORWARDED-FOR)"),
    ("user_agent", "REQ(USER-AGENT)"),
    ("http_user_agent", "REQ(USER-AGENT)"),
    ("request_id", "REQ(X-REQUEST-ID)"),
    ("x_request_id", "REQ(X-REQUEST-ID)"),
    ("req_id", "REQ(X-REQUEST-ID)"),
    ("authority", "REQ(:AUTHORITY)"),
    ("host", "REQ(:AUTHORITY)"),
    ("http_host", "REQ(:AUTHORITY)"),
    ("request_authority", "REQ(:AUTHORITY)"),
    ("upstream_host", "UPSTREAM_HOST"),
    ("upstream", "UPSTREAM_HOST"),
    ("upstream_addr", "UPSTREAM_HOST"),
    ("upstream_address", "UPSTREAM_HOST"),
    ("upstream_endpoint", "UPSTREAM_HOST"),
    ("upstream_cluster", "UPSTREAM_CLUSTER"),
    ("cluster", "UPSTREAM_CLUSTER"),
    ("upstream_cluster_name", "UPSTREAM_CLUSTER"),
    ("upstream_local_address", "UPSTREAM_LOCAL_ADDRESS"),
    ("downstream_local_address", "DOWNSTREAM_LOCAL_ADDRESS"),
    ("local_address", "DOWNSTREAM_LOCAL_ADDRESS"),
    ("downstream_remote_address", "DOWNSTREAM_REMOTE_ADDRESS"),
    ("remote_address", "DOWNSTREAM_REMOTE_ADDRESS"),
    ("downstream_peer_address", "DOWNSTREAM_REMOTE_ADDRESS"),
    ("requested_server_name", "REQUESTED_SERVER_NAME"),
    ("sni", "REQUESTED_SERVER_NAME"),
    ("route_name", "ROUTE_NAME"),
    ("route", "ROUTE_NAME"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_compiles() {
        assert_eq!(compiled_builtins().len(), BUILTIN_TEXT.len());
        for f in compiled_builtins() {
            assert!(f.typed_field_count() >= 14, "{}", f.name());
        }
    }

    #[test]
    fn aliases() {
        assert_eq!(builtin_text("ISTIO").unwrap().name, "istio-1.23");
        assert_eq!(builtin_text("istio-1.22").unwrap().name, "istio-1.9");
        assert!(builtin_text("nginx").is_none());
    }
}
