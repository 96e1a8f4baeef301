//! The typed fields of an access-log record ([`Slot`]): which Envoy command operators fill each,
//! and the cheap syntactic check each value gets.

use std::fmt;

/// The typed fields meshtrace understands. Each maps to one or more Envoy command operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Slot {
    /// `%START_TIME%` (and its other spellings).
    StartTime,
    /// `%REQ(:METHOD)%` (and its other spellings).
    Method,
    /// `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%` (and its other spellings).
    Path,
    /// `%PROTOCOL%` (and its other spellings).
    Protocol,
    /// `%RESPONSE_CODE%` (and its other spellings).
    ResponseCode,
    /// `%RESPONSE_FLAGS%` (and its other spellings).
    ResponseFlags,
    /// `%RESPONSE_CODE_DETAILS%` (and its other spellings).
    ResponseCodeDetails,
    /// `%CONNECTION_TERMINATION_DETAILS%` (and its other spellings).
    ConnectionTerminationDetails,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%` (and its other spellings).
    UpstreamTransportFailureReason,
    /// `%BYTES_RECEIVED%` (and its other spellings).
    BytesReceived,
    /// `%BYTES_SENT%` (and its other spellings).
    BytesSent,
    /// `%DURATION%` (and its other spellings).
    Duration,
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` (and its other spellings).
    UpstreamServiceTime,
    /// `%REQ(X-FORWARDED-FOR)%` (and its other spellings).
    XForwardedFor,
    /// `%REQ(USER-AGENT)%` (and its other spellings).
    UserAgent,
    /// `%REQ(X-REQUEST-ID)%` (and its other spellings).
    RequestId,
    /// `%REQ(:AUTHORITY)%` (and its other spellings).
    Authority,
    /// `%UPSTREAM_HOST%` (and its other spellings).
    UpstreamHost,
    /// `%UPSTREAM_CLUSTER%` (and its other spellings).
    UpstreamCluster,
    /// `%UPSTREAM_LOCAL_ADDRESS%` (and its other spellings).
    UpstreamLocalAddress,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%` (and its other spellings).
    DownstreamLocalAddress,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%` (and its other spellings).
    DownstreamRemoteAddress,
    /// `%REQUESTED_SERVER_NAME%` (and its other spellings).
    RequestedServerName,
    /// `%ROUTE_NAME%` (and its other spellings).
    RouteName,
    /// `%DYNAMIC_METADATA(istio.mixer:status)%` (and its other spellings).
    MixerStatus,
}

impl Slot {
    /// Number of slots.
    pub const COUNT: usize = 25;
    /// All slots, in record order.
    pub const ALL: [Slot; Slot::COUNT] = [
        Slot::StartTime,
        Slot::Method,
        Slot::Path,
        Slot::Protocol,
        Slot::ResponseCode,
        Slot::ResponseFlags,
        Slot::ResponseCodeDetails,
        Slot::ConnectionTerminationDetails,
        Slot::UpstreamTransportFailureReason,
        Slot::BytesReceived,
        Slot::BytesSent,
        Slot::Duration,
        Slot::UpstreamServiceTime,
        Slot::XForwardedFor,
        Slot::UserAgent,
        Slot::RequestId,
        Slot::Authority,
        Slot::UpstreamHost,
        Slot::UpstreamCluster,
        Slot::UpstreamLocalAddress,
        Slot::DownstreamLocalAddress,
        Slot::DownstreamRemoteAddress,
        Slot::RequestedServerName,
        Slot::RouteName,
        Slot::MixerStatus,
    ];

    /// Stable snake_case name used in JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Slot::StartTime => "start_time",
            Slot::Method => "method",
            Slot::Path => "path",
            Slot::Protocol => "protocol",
            Slot::ResponseCode => "response_code",
            Slot::ResponseFlags => "response_flags",
            Slot::ResponseCodeDetails => "response_code_details",
            Slot::ConnectionTerminationDetails => "connection_termination_details",
            Slot::UpstreamTransportFailureReason => "upstream_transport_failure_reason",
            Slot::BytesReceived => "bytes_received",
            Slot::BytesSent => "bytes_sent",
            Slot::Duration => "duration",
            Slot::UpstreamServiceTime => "upstream_service_time",
            Slot::XForwardedFor => "x_forwarded_for",
            Slot::UserAgent => "user_agent",
            Slot::RequestId => "request_id",
            Slot::Authority => "authority",
            Slot::UpstreamHost => "upstream_host",
            Slot::UpstreamCluster => "upstream_cluster",
            Slot::UpstreamLocalAddress => "upstream_local_address",
            Slot::DownstreamLocalAddress => "downstream_local_address",
            Slot::DownstreamRemoteAddress => "downstream_remote_address",
            Slot::RequestedServerName => "requested_server_name",
            Slot::RouteName => "route_name",
            Slot::MixerStatus => "mixer_status",
        }
    }

    /// The canonical Envoy operator for this slot (what a person would write in a format).
    pub fn operator(self) -> &'static str {
        match self {
            Slot::StartTime => "START_TIME",
            Slot::Method => "REQ(:METHOD)",
            Slot::Path => "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)",
            Slot::Protocol => "PROTOCOL",
            Slot::ResponseCode => "RESPONSE_CODE",
            Slot::ResponseFlags => "RESPONSE_FLAGS",
            Slot::ResponseCodeDetails => "RESPONSE_CODE_DETAILS",
            Slot::ConnectionTerminationDetails => "CONNECTION_TERMINATION_DETAILS",
            Slot::UpstreamTransportFailureReason => "UPSTREAM_TRANSPORT_FAILURE_REASON",
            Slot::BytesReceived => "BYTES_RECEIVED",
            Slot::BytesSent => "BYTES_SENT",
            Slot::Duration => "DURATION",
            Slot::UpstreamServiceTime => "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)",
            Slot::XForwardedFor => "REQ(X-FORWARDED-FOR)",
            Slot::UserAgent => "REQ(USER-AGENT)",
            Slot::RequestId => "REQ(X-REQUEST-ID)",
            Slot::Authority => "REQ(:AUTHORITY)",
            Slot::UpstreamHost => "UPSTREAM_HOST",
            Slot::UpstreamCluster => "UPSTREAM_CLUSTER",
            Slot::UpstreamLocalAddress => "UPSTREAM_LOCAL_ADDRESS",
            Slot::DownstreamLocalAddress => "DOWNSTREAM_LOCAL_ADDRESS",
            Slot::DownstreamRemoteAddress => "DOWNSTREAM_REMOTE_ADDRESS",
            Slot::RequestedServerName => "REQUESTED_SERVER_NAME",
            Slot::RouteName => "ROUTE_NAME",
            Slot::MixerStatus => "DYNAMIC_METADATA(istio.mixer:status)",
        }
    }

    /// What a value of this slot looks like, for "expected …" messages.
    pub fn expectation(self) -> &'static str {
        match self {
            Slot::StartTime => "a timestamp",
            Slot::Method => "an HTTP method or `-`",
            Slot::Path => "a request path",
            Slot::Protocol => "a protocol such as HTTP/1.1 or `-`",
            Slot::ResponseCode => "a numeric response code",
            Slot::ResponseFlags => "response flags such as `-` or `UF,URX`",
            Slot::BytesReceived | Slot::BytesSent | Slot::Duration => "a number",
            Slot::UpstreamServiceTime => "a number or `-`",
            Slot::UpstreamHost
            | Slot::UpstreamLocalAddress
            | Slot::DownstreamLocalAddress
            | Slot::DownstreamRemoteAddress => "an address (ip:port) or `-`",
            Slot::UpstreamCluster => "a cluster name or `-`",
            _ => "a value",
        }
    }

    /// Map an operator name and argument to a slot.
    pub fn from_operator(name: &str, arg: Option<&str>) -> Option<Slot> {
        let slot = match (name, arg) {
            ("START_TIME", _) => Slot::StartTime,
            ("PROTOCOL", None) => Slot::Protocol,
            ("RESPONSE_CODE", None) => Slot::ResponseCode,
            ("RESPONSE_FLAGS" | "RESPONSE_FLAGS_LONG", None) => Slot::ResponseFlags,
            ("RESPONSE_CODE_DETAILS", None) => Slot::ResponseCodeDetails,
            ("CONNECTION_TERMINATION_DETAILS", None) => Slot::ConnectionTerminationDetails,
            ("UPSTREAM_TRANSPORT_FAILURE_REASON", None) => Slot::UpstreamTransportFailureReason,
            ("BYTES_RECEIVED", None) => Slot::BytesReceived,
            ("BYTES_SENT", None) => Slot::BytesSent,
            ("DURATION", None) => Slot::Duration,
            ("UPSTREAM_HOST", None) => Slot::UpstreamHost,
            ("UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW", None) => Slot::UpstreamCluster,
            ("UPSTREAM_LOCAL_ADDRESS", None) => Slot::UpstreamLocalAddress,
            ("DOWNSTREAM_LOCAL_ADDRESS", None) => Slot::DownstreamLocalAddress,
            ("DOWNSTREAM_REMOTE_ADDRESS", None) => Slot::DownstreamRemoteAddress,
            ("REQUESTED_SERVER_NAME", None) => Slot::RequestedServerName,
            ("ROUTE_NAME", None) => Slot::RouteName,
            ("DYNAMIC_METADATA", Some(a)) if a.eq_ignore_ascii_case("istio.mixer:status") => {
                Slot::MixerStatus
            }
            ("REQ", Some(h)) => {
                let h = h.to_ascii_uppercase();
                match h.as_str() {
                    ":METHOD" => Slot::Method,
                    "X-ENVOY-ORIGINAL-PATH?:PATH" | ":PATH" | ":PATH?X-ENVOY-ORIGINAL-PATH" => {
                        Slot::Path
                    }
                    "X-FORWARDED-FOR" => Slot::XForwardedFor,
                    "USER-AGENT" => Slot::UserAgent,
                    "X-REQUEST-ID" => Slot::RequestId,
                    ":AUTHORITY" | "HOST" | ":AUTHORITY?HOST" | "HOST?:AUTHORITY" => {
                        Slot::Authority
                    }
                    _ => return None,
                }
            }
            ("RESP", Some(h)) if h.eq_ignore_ascii_case("X-ENVOY-UPSTREAM-SERVICE-TIME") => {
                Slot::UpstreamServiceTime
            }
            _ => return None,
        };
        Some(slot)
    }

    /// Cheap syntactic check of a raw (not `-`) value, used to reject lines of another format.
    pub(crate) fn accepts(self, v: &str) -> bool {
        if v == "-" {
            return !matches!(self, Slot::ResponseCode | Slot::StartTime);
        }
        let b = v.as_bytes();
        match self {
            Slot::ResponseCode => !b.is_empty() && b.len() <= 3 && b.iter().all(u8::is_ascii_digit),
            Slot::BytesReceived | Slot::BytesSent | Slot::Duration | Slot::UpstreamServiceTime => {
                !b.is_empty() && b.len() <= 20 && b.iter().all(u8::is_ascii_digit)
            }
            Slot::ResponseFlags => crate::flags::looks_like_flags(v),
            Slot::Method => {
                !b.is_empty()
                    && b.len() <= 32
                    && b.iter()
                        .all(|c| c.is_ascii_uppercase() || *c == b'-' || *c == b'_')
            }
            Slot::Protocol => v.starts_with("HTTP/") || v == "HTTP",
            Slot::UpstreamHost
            | Slot::UpstreamLocalAddress
            | Slot::DownstreamLocalAddress
            | Slot::DownstreamRemoteAddress => {
                !b.is_empty()
                    && !crate::swar::has_either(b' ', b'"', b)
                    && crate::swar::has_either(b':', b'.', b)
            }
            Slot::UpstreamCluster | Slot::RequestedServerName | Slot::ResponseCodeDetails => {
                !crate::swar::has_either(b' ', b'"', b)
            }
            _ => true,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
