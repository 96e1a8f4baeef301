//! The access-log record: raw field values borrowed from the line, with typed accessors.
//!
//! Values are kept as the text Envoy wrote (`-` included) so nothing is lost; the typed
//! accessors (`status()`, `flags()`, `start_time()`, …) parse on demand and return `None` for
//! unset values. Text lines never allocate here; JSON values that needed unescaping are owned.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::address::{Address, parse_address};
use crate::cluster::{ClusterName, Direction, parse_cluster_name};
use crate::details::{CodeDetails, TransportFailure, parse_code_details, parse_transport_failure};
use crate::flags::{ResponseFlags, UnknownFlag, parse_response_flags};
use crate::slot::Slot;
use std::net::SocketAddr;

/// One access-log record.
#[derive(Clone)]
pub struct RawRecord<'a> {
    format: Arc<str>,
    values: Values<'a>,
    time_format: Option<Arc<str>>,
    /// Operators of the format that the line did not carry (cut off when pasted).
    pub missing: Vec<Arc<str>>,
    /// What meshtrace assumed or repaired to read this line (JSON keys read by their names, a
    /// request line whose lost space or doubled quotes were put back): shown with the evidence.
    pub notes: Vec<Arc<str>>,
}

/// Where a record's values live: borrowed from the line while it is parsed, then (after
/// [`RawRecord::into_owned`]) packed into one buffer — one allocation per record instead of one
/// per value, which is what lets the readers of large logs keep many records in flight.
/// The parsed form's slots are boxed: a record in flight then takes the packed form's size, not
/// the parsed one's (600 bytes more each), for one allocation per line parsed.
// The packed form is the larger one now; it is what records in flight hold, so it stays inline.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Values<'a> {
    Parsed {
        slots: Box<[Option<Cow<'a, str>>; Slot::COUNT]>,
        extra: Vec<(Arc<str>, Cow<'a, str>)>,
    },
    Packed {
        text: Box<str>,
        slots: [Span; Slot::COUNT],
        extra: Vec<(Arc<str>, Span)>,
        /// The start time and status, parsed once when packed: every reading of a record in
        /// flight (end time, correlation, diagnosis, serialising) asks for them.
        start: Option<DateTime<FixedOffset>>,
        status: Option<u16>,
        /// `%DURATION%`, parsed once when packed (every end time needs it).
        duration: Option<u64>,
        /// The socket addresses of [`ADDRESS_SLOTS`], parsed once when packed: correlation and
        /// diagnosis compare them for every hop, every time a request is explained.
        sockets: [PackedSocket; 4],
        /// `%UPSTREAM_CLUSTER%` parsed once when packed (diagnosis and hop labels ask for it
        /// several times per record).
        cluster: PackedCluster,
        /// [`RawRecord::flags`], read once when packed (diagnosis asks for them per hop).
        flags: ResponseFlags,
    },
}

/// A packed record's [`ClusterName`], its strings as places in the record's text.
#[derive(Clone, Copy)]
enum PackedCluster {
    /// No cluster (absent, empty or `-`).
    None,
    /// Not kept: parse the text.
    Parse,
    Istio {
        direction: Direction,
        port: u16,
        subset: Span,
        host: Span,
    },
    BlackHole,
    Passthrough,
    InboundPassthrough,
    Other(Span),
}

impl PackedCluster {
    /// Keep `c`, whose strings are slices of `text` (an empty one may be any empty string).
    fn of(text: &str, c: Option<ClusterName<'_>>) -> PackedCluster {
        let span = |s: &str| -> Option<Span> {
            if s.is_empty() {
                return Some(Span { start: 0, end: 0 });
            }
            let start = (s.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
            let end = start.checked_add(s.len())?;
            if end > text.len() {
                return None;
            }
            Some(Span {
                start: u32::try_from(start).ok()?,
                end: u32::try_from(end).ok()?,
            })
        };
        let packed = match c {
            None => Some(PackedCluster::None),
            Some(ClusterName::Istio {
                direction,
                port,
                subset,
                host,
            }) => span(subset)
                .zip(span(host))
                .map(|(subset, host)| PackedCluster::Istio {
                    direction,
                    port,
                    subset,
                    host,
                }),
            Some(ClusterName::BlackHole) => Some(PackedCluster::BlackHole),
            Some(ClusterName::Passthrough) => Some(PackedCluster::Passthrough),
            Some(ClusterName::InboundPassthrough) => Some(PackedCluster::InboundPassthrough),
            Some(ClusterName::Other(o)) => span(o).map(PackedCluster::Other),
        };
        packed.unwrap_or(PackedCluster::Parse)
    }

    /// The cluster, or `Err(())` when it must be parsed from the text.
    fn get(self, text: &str) -> Result<Option<ClusterName<'_>>, ()> {
        let of = |s: Span| s.of(text).ok_or(());
        Ok(match self {
            PackedCluster::None => None,
            PackedCluster::Parse => return Err(()),
            PackedCluster::Istio {
                direction,
                port,
                subset,
                host,
            } => Some(ClusterName::Istio {
                direction,
                port,
                subset: of(subset)?,
                host: of(host)?,
            }),
            PackedCluster::BlackHole => Some(ClusterName::BlackHole),
            PackedCluster::Passthrough => Some(ClusterName::Passthrough),
            PackedCluster::InboundPassthrough => Some(ClusterName::InboundPassthrough),
            PackedCluster::Other(o) => Some(ClusterName::Other(of(o)?)),
        })
    }
}

/// The address slots whose socket addresses a packed record keeps parsed.
const ADDRESS_SLOTS: [Slot; 4] = [
    Slot::UpstreamHost,
    Slot::UpstreamLocalAddress,
    Slot::DownstreamLocalAddress,
    Slot::DownstreamRemoteAddress,
];

/// An address slot's socket address in 8 bytes: none, an IPv4 socket, or "parse the text"
/// (IPv6, which is rare, keeps the record small).
#[derive(Clone, Copy, PartialEq, Eq)]
struct PackedSocket(u64);

impl PackedSocket {
    const NONE: PackedSocket = PackedSocket(0);
    const PARSE: PackedSocket = PackedSocket(1);
    const V4: u64 = 1 << 48;

    fn of(s: Option<SocketAddr>) -> PackedSocket {
        match s {
            None => PackedSocket::NONE,
            Some(SocketAddr::V4(v4)) => PackedSocket(
                PackedSocket::V4 | u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port()),
            ),
            Some(SocketAddr::V6(_)) => PackedSocket::PARSE,
        }
    }

    /// The socket, or `Err(())` when it must be parsed from the text.
    fn get(self) -> Result<Option<SocketAddr>, ()> {
        match self.0 {
            0 => Ok(None),
            1 => Err(()),
            x => {
                let ip = std::net::Ipv4Addr::from_bits((x >> 16) as u32);
                Ok(Some(SocketAddr::from((ip, x as u16))))
            }
        }
    }
}

/// A value's place in [`Values::Packed`]'s text; [`Span::NONE`] when the field is absent.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        end: 0,
    };

    fn of<'t>(&self, text: &'t str) -> Option<&'t str> {
        if self.start == u32::MAX {
            return None;
        }
        text.get(self.start as usize..self.end as usize)
    }
}

impl std::fmt::Debug for RawRecord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRecord")
            .field("format", &self.format)
            .field("slots", &self.slots().collect::<Vec<_>>())
            .field("extra", &self.extras().collect::<Vec<_>>())
            .field("time_format", &self.time_format)
            .field("missing", &self.missing)
            .field("notes", &self.notes)
            .finish()
    }
}

impl PartialEq for RawRecord<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.format == other.format
            && self.time_format == other.time_format
            && self.missing == other.missing
            && self.notes == other.notes
            && Slot::ALL.iter().all(|s| self.get(*s) == other.get(*s))
            && self.extras().eq(other.extras())
    }
}

impl Eq for RawRecord<'_> {}

impl<'a> RawRecord<'a> {
    /// An empty record of the named format.
    pub fn new(format: Arc<str>) -> Self {
        RawRecord {
            format,
            values: Values::Parsed {
                slots: Default::default(),
                extra: Vec::new(),
            },
            time_format: None,
            missing: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Name of the format the line matched.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// Turn a packed record's values back into owned strings, so one can be set (setting a
    /// value after [`RawRecord::into_owned`] is rare: tests and repaired lines).
    fn unpack(&mut self) {
        if let Values::Packed {
            text, slots, extra, ..
        } = &self.values
        {
            let slots = Box::new(slots.map(|s| s.of(text).map(|v| Cow::Owned(v.to_owned()))));
            let extra = extra
                .iter()
                .map(|(k, s)| (k.clone(), Cow::Owned(s.of(text).unwrap_or("").to_owned())))
                .collect();
            self.values = Values::Parsed { slots, extra };
        }
    }

    /// Set a typed slot.
    pub fn set(&mut self, slot: Slot, value: Cow<'a, str>) {
        self.unpack();
        if let Values::Parsed { slots, .. } = &mut self.values {
            slots[slot as usize] = Some(value);
        }
    }

    /// Add a value of an operator meshtrace has no slot for.
    pub fn push_extra(&mut self, key: Arc<str>, value: Cow<'a, str>) {
        self.unpack();
        if let Values::Parsed { extra, .. } = &mut self.values {
            extra.push((key, value));
        }
    }

    pub(crate) fn set_format(&mut self, f: Arc<str>) {
        self.format = f;
    }

    pub(crate) fn set_time_format(&mut self, f: Arc<str>) {
        self.unpack();
        self.time_format = Some(f);
    }

    /// Raw text of a slot as logged (`-` included); `None` when the format has no such field.
    pub fn get(&self, slot: Slot) -> Option<&str> {
        match &self.values {
            Values::Parsed { slots, .. } => slots[slot as usize].as_deref(),
            Values::Packed { text, slots, .. } => slots[slot as usize].of(text),
        }
    }

    /// Value of a slot, `None` when absent, empty or `-` (Envoy's "unset").
    pub fn value(&self, slot: Slot) -> Option<&str> {
        match self.get(slot) {
            None | Some("-") | Some("") => None,
            Some(v) => Some(v),
        }
    }

    /// Value of an operator without a slot, by its text (e.g. `UPSTREAM_REQUEST_ATTEMPT_COUNT`).
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extras().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Bytes the record's values take (what holding it costs beyond its fixed size).
    pub fn values_len(&self) -> usize {
        // Each operator without a slot also holds its name and place.
        const EXTRA: usize = std::mem::size_of::<(Arc<str>, Span)>();
        match &self.values {
            Values::Packed { text, extra, .. } => text.len() + extra.len() * EXTRA,
            Values::Parsed { slots, extra } => {
                slots.iter().flatten().map(|v| v.len()).sum::<usize>()
                    + extra.iter().map(|(_, v)| v.len() + EXTRA).sum::<usize>()
            }
        }
    }

    /// One byte in every 64 of the record's packed values, folded together. Run over many
    /// records before they are read (see `meshtrace_analysis::settle::warm`), it brings their
    /// values into the CPU's cache many at a time, since these loads do not wait for one
    /// another, instead of one cache miss at a time where each value is first read.
    pub fn touch_values(&self) -> u8 {
        match &self.values {
            Values::Packed { text, .. } => text.as_bytes().iter().step_by(64).fold(0, |a, b| a ^ b),
            Values::Parsed { .. } => 0,
        }
    }

    /// All operators without a slot, in format order.
    pub fn extras(&self) -> impl Iterator<Item = (&str, &str)> {
        let (parsed, packed) = match &self.values {
            Values::Parsed { extra, .. } => (Some(extra), None),
            Values::Packed { text, extra, .. } => (None, Some((text, extra))),
        };
        let parsed = parsed
            .into_iter()
            .flatten()
            .map(|(k, v)| (&**k, v.as_ref()));
        let packed = packed.into_iter().flat_map(|(text, extra)| {
            extra
                .iter()
                .map(move |(k, s)| (&**k, s.of(text).unwrap_or("")))
        });
        parsed.chain(packed)
    }

    /// All typed slots present, in record order, with their raw text.
    pub fn slots(&self) -> impl Iterator<Item = (Slot, &str)> {
        Slot::ALL
            .iter()
            .filter_map(|s| self.get(*s).map(|v| (*s, v)))
    }

    /// Number of typed slots that carry a value (not `-`).
    pub fn filled(&self) -> usize {
        Slot::ALL
            .iter()
            .filter(|s| self.value(**s).is_some())
            .count()
    }

    /// Copy every borrowed value so the record outlives its line: all values packed into one
    /// buffer.
    pub fn into_owned(self) -> RawRecord<'static> {
        let (start, status, duration) = (self.start_time(), self.status(), self.duration_ms());
        let flags = self.flags();
        let sockets = ADDRESS_SLOTS.map(|slot| PackedSocket::of(self.socket(slot)));
        let values = match self.values {
            Values::Packed {
                text,
                slots,
                extra,
                start,
                status,
                duration,
                sockets,
                cluster,
                flags,
            } => Values::Packed {
                text,
                slots,
                extra,
                start,
                status,
                duration,
                sockets,
                cluster,
                flags,
            },
            Values::Parsed { slots, extra } => {
                let len = slots.iter().flatten().map(|v| v.len()).sum::<usize>()
                    + extra.iter().map(|(_, v)| v.len()).sum::<usize>();
                let mut text = String::with_capacity(len);
                let mut put = |v: &str| {
                    let start = text.len();
                    text.push_str(v);
                    // A record's values fit in 4 GiB (lines are bounded far below that); past
                    // it, the value reads as absent rather than wrong.
                    match (u32::try_from(start), u32::try_from(text.len())) {
                        (Ok(start), Ok(end)) if start != u32::MAX => Span { start, end },
                        _ => Span::NONE,
                    }
                };
                let slots = (*slots).map(|v| v.map_or(Span::NONE, |v| put(&v)));
                let extra = extra.into_iter().map(|(k, v)| (k, put(&v))).collect();
                let text = text.into_boxed_str();
                let cluster = PackedCluster::of(
                    &text,
                    slots[Slot::UpstreamCluster as usize]
                        .of(&text)
                        .filter(|v| !matches!(*v, "-" | ""))
                        .and_then(parse_cluster_name),
                );
                Values::Packed {
                    text,
                    slots,
                    extra,
                    start,
                    status,
                    duration,
                    sockets,
                    cluster,
                    flags,
                }
            }
        };
        RawRecord {
            format: self.format,
            values,
            time_format: self.time_format,
            missing: self.missing,
            notes: self.notes,
        }
    }

    // ---- typed accessors -------------------------------------------------------------

    /// HTTP status; `Some(0)` for TCP connections and requests that never got a response.
    pub fn status(&self) -> Option<u16> {
        if let Values::Packed { status, .. } = &self.values {
            return *status;
        }
        self.value(Slot::ResponseCode).and_then(|v| v.parse().ok())
    }

    /// Response flags; unknown flag names are an error naming the token.
    pub fn flags_checked(&self) -> Result<ResponseFlags, UnknownFlag<'_>> {
        match self.get(Slot::ResponseFlags) {
            None => Ok(ResponseFlags::empty()),
            Some(v) => parse_response_flags(v),
        }
    }

    /// Response flags, ignoring names this Envoy vocabulary does not know.
    pub fn flags(&self) -> ResponseFlags {
        if let Values::Packed { flags, .. } = &self.values {
            return *flags;
        }
        match self.get(Slot::ResponseFlags) {
            None => ResponseFlags::empty(),
            Some(v) => parse_response_flags(v).unwrap_or_else(|_| {
                let mut f = ResponseFlags::empty();
                for tok in v.split(',') {
                    if let Some(flag) = crate::flags::ResponseFlag::from_name(tok.trim()) {
                        f.insert(flag);
                    }
                }
                f
            }),
        }
    }

    /// `%RESPONSE_CODE_DETAILS%` split into base, reset reason, transport failure, RBAC policy.
    pub fn details(&self) -> Option<CodeDetails<'_>> {
        self.value(Slot::ResponseCodeDetails)
            .and_then(parse_code_details)
    }

    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
    pub fn transport_failure(&self) -> Option<TransportFailure<'_>> {
        self.value(Slot::UpstreamTransportFailureReason)
            .and_then(parse_transport_failure)
    }

    /// `%ACCESS_LOG_TYPE%` (`DownstreamEnd`, `DownstreamPeriodic`, `UpstreamPeriodic`, …), from
    /// the operator or a JSON key named after it (`access_log_type`, `accessLogType`, `log_type`).
    pub fn access_log_type(&self) -> Option<&str> {
        self.extras().find_map(|(k, v)| {
            // The key's letters and digits, lower-cased, compared without allocating.
            let key = || {
                k.bytes()
                    .filter(u8::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase())
            };
            let named =
                key().eq(b"accesslogtype".iter().copied()) || key().eq(b"logtype".iter().copied());
            named.then_some(v).filter(|v| !v.is_empty() && *v != "-")
        })
    }

    /// Is this line written while the request was still running (`%ACCESS_LOG_TYPE%` of a
    /// periodic or start entry: `DownstreamPeriodic`, `UpstreamPeriodic`, `DownstreamStart`,
    /// `UpstreamPoolReady`, `TcpPeriodic`, …) rather than at its end? Envoy writes such lines
    /// with `access_log_flush_interval` or `flush_access_log_on_new_request`; only the end line
    /// (`DownstreamEnd`, `UpstreamEnd`, `TcpConnectionEnd`, …) closes the request.
    pub fn is_progress_line(&self) -> bool {
        matches!(
            self.access_log_type(),
            Some(
                "DownstreamPeriodic"
                    | "DownstreamStart"
                    | "DownstreamTunnelSuccessfullyEstablished"
                    | "UpstreamPeriodic"
                    | "UpstreamPoolReady"
                    | "TcpUpstreamConnected"
                    | "TcpPeriodic"
                    | "UdpTunnelUpstreamConnected"
                    | "UdpPeriodic"
            )
        )
    }

    /// `%CONNECTION_TERMINATION_DETAILS%`.
    pub fn termination_details(&self) -> Option<&str> {
        self.value(Slot::ConnectionTerminationDetails)
    }

    /// Start of the request. Envoy's default (RFC 3339) is parsed without chrono's generic
    /// parser; `START_TIME(fmt)` formats go through chrono with the format translated.
    pub fn start_time(&self) -> Option<DateTime<FixedOffset>> {
        if let Values::Packed { start, .. } = &self.values {
            return *start;
        }
        let v = self.value(Slot::StartTime)?;
        match &self.time_format {
            None => parse_rfc3339(v),
            Some(f) => parse_with_strftime(v, f),
        }
    }

    /// The strftime format of `%START_TIME(…)%`, when the format gives one (otherwise the
    /// time is read as RFC 3339).
    pub fn time_format(&self) -> Option<&str> {
        self.time_format.as_deref()
    }

    /// `%REQ(:METHOD)%`.
    pub fn method(&self) -> Option<&str> {
        self.value(Slot::Method)
    }
    /// `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%`.
    pub fn path(&self) -> Option<&str> {
        self.value(Slot::Path)
    }
    /// `%PROTOCOL%`.
    pub fn protocol(&self) -> Option<&str> {
        self.value(Slot::Protocol)
    }
    /// `%REQ(X-REQUEST-ID)%`.
    pub fn request_id(&self) -> Option<&str> {
        self.value(Slot::RequestId)
    }
    /// `%REQ(:AUTHORITY)%`.
    pub fn authority(&self) -> Option<&str> {
        self.value(Slot::Authority)
    }
    /// `%REQ(USER-AGENT)%`.
    pub fn user_agent(&self) -> Option<&str> {
        self.value(Slot::UserAgent)
    }
    /// `%REQ(X-FORWARDED-FOR)%` split on commas, trimmed.
    pub fn forwarded_for(&self) -> impl Iterator<Item = &str> {
        self.value(Slot::XForwardedFor)
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
    /// `%BYTES_RECEIVED%`.
    pub fn bytes_received(&self) -> Option<u64> {
        self.num(Slot::BytesReceived)
    }
    /// `%BYTES_SENT%`.
    pub fn bytes_sent(&self) -> Option<u64> {
        self.num(Slot::BytesSent)
    }
    /// `%DURATION%` in milliseconds.
    pub fn duration_ms(&self) -> Option<u64> {
        if let Values::Packed { duration, .. } = &self.values {
            return *duration;
        }
        self.num(Slot::Duration)
    }
    /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` in milliseconds.
    pub fn upstream_service_time_ms(&self) -> Option<u64> {
        self.num(Slot::UpstreamServiceTime)
    }
    /// `%UPSTREAM_HOST%`.
    pub fn upstream_host(&self) -> Option<Address<'_>> {
        self.value(Slot::UpstreamHost).and_then(parse_address)
    }
    /// `%UPSTREAM_LOCAL_ADDRESS%`.
    pub fn upstream_local(&self) -> Option<Address<'_>> {
        self.value(Slot::UpstreamLocalAddress)
            .and_then(parse_address)
    }
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    pub fn downstream_local(&self) -> Option<Address<'_>> {
        self.value(Slot::DownstreamLocalAddress)
            .and_then(parse_address)
    }
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`.
    pub fn downstream_remote(&self) -> Option<Address<'_>> {
        self.value(Slot::DownstreamRemoteAddress)
            .and_then(parse_address)
    }
    /// The socket address in an address slot (an `ip:port`, or an internal address's target),
    /// as [`Address::socket`] gives it; kept parsed in a packed record for the four address
    /// slots (`%UPSTREAM_HOST%`, `%UPSTREAM_LOCAL_ADDRESS%`, `%DOWNSTREAM_LOCAL_ADDRESS%`,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`). A format that logs the address without its port and the
    /// port apart (`%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%` and `%DOWNSTREAM_LOCAL_PORT%`, or
    /// JSON keys of those names) gives the two joined.
    pub fn socket(&self, slot: Slot) -> Option<SocketAddr> {
        if let Values::Packed { sockets, .. } = &self.values
            && let Some(i) = ADDRESS_SLOTS.iter().position(|s| *s == slot)
            && let Ok(s) = sockets[i].get()
        {
            return s;
        }
        let addr = self.value(slot).and_then(parse_address);
        match addr.as_ref().and_then(Address::socket) {
            Some(s) => Some(s),
            None => self.socket_from_parts(slot, addr.and_then(|a| a.ip())),
        }
    }

    /// An address slot's IP (from the slot, or from its `…_ADDRESS_WITHOUT_PORT` field) joined
    /// with the port its `…_PORT` field holds, when both are there.
    fn socket_from_parts(&self, slot: Slot, ip: Option<std::net::IpAddr>) -> Option<SocketAddr> {
        let (without_port, port_key) = match slot {
            Slot::DownstreamLocalAddress => (
                "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
                "DOWNSTREAM_LOCAL_PORT",
            ),
            Slot::DownstreamRemoteAddress => (
                "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
                "DOWNSTREAM_REMOTE_PORT",
            ),
            Slot::UpstreamLocalAddress => {
                ("UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", "UPSTREAM_LOCAL_PORT")
            }
            Slot::UpstreamHost => (
                "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
                "UPSTREAM_REMOTE_PORT",
            ),
            _ => return None,
        };
        let (mut ip, mut port) = (ip, None);
        for (k, v) in self.extras() {
            if k.eq_ignore_ascii_case(port_key) {
                port = v.trim().parse::<u16>().ok();
            } else if ip.is_none() && k.eq_ignore_ascii_case(without_port) {
                ip = parse_address(v.trim()).and_then(|a| a.ip());
            }
        }
        Some(SocketAddr::new(ip?, port?))
    }

    /// `%UPSTREAM_CLUSTER%` / `%UPSTREAM_CLUSTER_RAW%`, trailing `;` stripped.
    pub fn upstream_cluster(&self) -> Option<ClusterName<'_>> {
        if let Values::Packed { text, cluster, .. } = &self.values
            && let Ok(c) = cluster.get(text)
        {
            return c;
        }
        self.value(Slot::UpstreamCluster)
            .and_then(parse_cluster_name)
    }
    /// `%REQUESTED_SERVER_NAME%` (SNI).
    pub fn sni(&self) -> Option<&str> {
        self.value(Slot::RequestedServerName)
    }
    /// `%ROUTE_NAME%`.
    pub fn route_name(&self) -> Option<&str> {
        self.value(Slot::RouteName)
    }

    /// A TCP (L4) record: no method/protocol, or status 0 with `- - -` request line.
    pub fn is_tcp(&self) -> bool {
        self.method().is_none() && self.protocol().is_none() && self.path().is_none()
    }

    fn num(&self, slot: Slot) -> Option<u64> {
        self.value(slot).and_then(|v| v.parse().ok())
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u32 = 0;
    for c in b {
        n = n.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(n)
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (a space instead of `T` is accepted).
pub fn parse_rfc3339(v: &str) -> Option<DateTime<FixedOffset>> {
    let b = v.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])? as i32;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        None => 0, // Envoy always writes Z; tolerate a missing zone as UTC.
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let h = digits(&b[i + 1..i + 3])? as i32;
            let m = digits(&b[i + 4..i + 6])? as i32;
            let s = h * 3600 + m * 60;
            if *sign == b'-' { -s } else { s }
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let naive = date.and_hms_nano_opt(hour, min, sec.min(59), nanos)?;
    let off = FixedOffset::east_opt(offset_secs)?;
    off.from_local_datetime(&naive).single()
}

/// Parse a time written with an Envoy `START_TIME(fmt)` strftime format.
fn parse_with_strftime(v: &str, fmt: &str) -> Option<DateTime<FixedOffset>> {
    // Envoy's %s is whole seconds since the epoch; chrono's %s is the same.
    if let Ok(dt) = DateTime::parse_from_str(v, fmt) {
        return Some(dt);
    }
    if let Ok(n) = NaiveDateTime::parse_from_str(v, fmt) {
        return Some(Utc.from_utc_datetime(&n).fixed_offset());
    }
    if fmt.trim() == "%s" {
        let secs: i64 = v.trim().parse().ok()?;
        return DateTime::from_timestamp(secs, 0).map(|d| d.fixed_offset());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_a_packed_record_reads_one_byte_in_every_64_of_its_values() {
        let mut r = RawRecord::new(Arc::from("json"));
        let agent = format!("a{}b{}c", "x".repeat(63), "y".repeat(63));
        r.set(Slot::UserAgent, Cow::Owned(agent));
        // Only packed values are read (a record being parsed is in the cache already).
        assert_eq!(r.touch_values(), 0);
        let owned = r.into_owned();
        assert_eq!(owned.values_len(), 129);
        assert_eq!(owned.touch_values(), b'a' ^ b'b' ^ b'c');
    }

    /// Formats that log an address and its port apart: a text format's operators, or JSON keys
    /// of the same names (istio/istio#29565 logs `downstream_local_address` as the IP alone and
    /// `downstream_local_port` beside it).
    #[test]
    fn an_address_and_its_port_logged_apart_are_joined() {
        let spec = crate::detect::FormatSpec::parse(
            "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT% %RESPONSE_CODE% %UPSTREAM_HOST%\n",
        )
        .unwrap();
        let mut p = crate::detect::LineParser::new(&spec);
        let crate::detect::LineOutcome::Record(r) = p.parse("10.0.0.9 8443 503 10.0.0.5:80") else {
            panic!("not read");
        };
        let want: SocketAddr = "10.0.0.9:8443".parse().unwrap();
        assert_eq!(r.socket(Slot::DownstreamLocalAddress), Some(want));
        assert_eq!(
            r.clone().into_owned().socket(Slot::DownstreamLocalAddress),
            Some(want)
        );
        // The slot's own ip:port is used as it is.
        assert_eq!(
            r.socket(Slot::UpstreamHost),
            Some("10.0.0.5:80".parse().unwrap())
        );
        let mut j = RawRecord::new(Arc::from("json"));
        j.set(Slot::DownstreamLocalAddress, Cow::Borrowed("100.64.226.69"));
        j.push_extra(Arc::from("downstream_local_port"), Cow::Borrowed("443"));
        j.push_extra(Arc::from("downstream_remote_port"), Cow::Borrowed("13231"));
        assert_eq!(
            j.socket(Slot::DownstreamLocalAddress),
            Some("100.64.226.69:443".parse().unwrap())
        );
        // A port without an address, or a port that is no number, gives nothing.
        assert_eq!(j.socket(Slot::DownstreamRemoteAddress), None);
        let mut bad = RawRecord::new(Arc::from("json"));
        bad.set(Slot::DownstreamLocalAddress, Cow::Borrowed("100.64.226.69"));
        bad.push_extra(Arc::from("downstream_local_port"), Cow::Borrowed("https"));
        assert_eq!(bad.socket(Slot::DownstreamLocalAddress), None);
    }

    #[test]
    fn packed_records_answer_as_parsed_ones() {
        let mut r = RawRecord::new(Arc::from("t"));
        r.set(Slot::StartTime, Cow::Borrowed("2024-06-03T09:00:00.069Z"));
        r.set(Slot::ResponseCode, Cow::Borrowed("503"));
        let (start, status) = (r.start_time(), r.status());
        assert_eq!(status, Some(503));
        assert!(start.is_some());
        let mut owned = r.into_owned();
        assert_eq!((owned.start_time(), owned.status()), (start, status));
        // Setting a value after packing is read back, not the value parsed when packed.
        owned.set(Slot::ResponseCode, Cow::Borrowed("200"));
        owned.set(Slot::StartTime, Cow::Borrowed("2024-06-03T09:00:01Z"));
        assert_eq!(owned.status(), Some(200));
        assert_eq!(
            owned.start_time().map(|t| t.timestamp_millis()),
            Some(1_717_405_201_000)
        );
        let repacked = owned.into_owned();
        assert_eq!(repacked.status(), Some(200));
        assert_eq!(
            repacked.start_time().map(|t| t.timestamp_millis()),
            Some(1_717_405_201_000)
        );
    }

    /// Flags read once when packed are the flags read from the text, lenient reading of unknown
    /// names included; flags set after packing are read from the new text.
    #[test]
    fn packed_flags_answer_as_the_text_read_again() {
        for v in [
            "-",
            "",
            "UF",
            "UF,URX",
            "NR",
            "UF,BOGUS,UH",
            "BOGUS",
            " UT ",
            "DPE,UMSDR",
        ] {
            let mut r = RawRecord::new(Arc::from("t"));
            r.set(Slot::ResponseFlags, Cow::Borrowed(v));
            let parsed = r.flags();
            let owned = r.into_owned();
            assert_eq!(owned.flags(), parsed, "{v}");
            let mut changed = owned;
            changed.set(Slot::ResponseFlags, Cow::Borrowed("UO"));
            let repacked = changed.into_owned();
            assert_eq!(repacked.flags(), parse_response_flags("UO").unwrap(), "{v}");
        }
        assert_eq!(
            RawRecord::new(Arc::from("t")).into_owned().flags(),
            ResponseFlags::empty()
        );
    }

    #[test]
    fn packed_sockets_and_durations_answer_as_the_text_parsed_again() {
        let values = [
            "10.135.0.43:8081",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[2001:db8::1]:8080",
            "envoy://connect_originate/10.244.0.32:9080",
            "envoy://internal_client_address/",
            "10.0.0.1",
            "unix:/var/run/envoy.sock",
            "-",
            "",
            "not an address",
            "10.0.0.1:99999",
        ];
        let durations = ["117", "0", "-", "", "18446744073709551615", "12.5", "x"];
        for (k, v) in values.iter().enumerate() {
            let mut r = RawRecord::new(Arc::from("t"));
            for slot in ADDRESS_SLOTS {
                r.set(
                    slot,
                    Cow::Borrowed(values[(k + slot as usize) % values.len()]),
                );
            }
            r.set(
                Slot::Duration,
                Cow::Borrowed(durations[k % durations.len()]),
            );
            let parsed: Vec<_> = ADDRESS_SLOTS.iter().map(|s| r.socket(*s)).collect();
            let by_address: Vec<_> = ADDRESS_SLOTS
                .iter()
                .map(|s| r.value(*s).and_then(parse_address).and_then(|a| a.socket()))
                .collect();
            assert_eq!(parsed, by_address, "{v}");
            let duration = r.duration_ms();
            let owned = r.into_owned();
            let packed: Vec<_> = ADDRESS_SLOTS.iter().map(|s| owned.socket(*s)).collect();
            assert_eq!(packed, parsed, "{v}");
            assert_eq!(owned.duration_ms(), duration, "{v}");
            // Set after packing: the new text is read, not what was parsed when packed.
            let mut changed = owned;
            changed.set(Slot::UpstreamHost, Cow::Borrowed("10.9.9.9:1"));
            changed.set(Slot::Duration, Cow::Borrowed("5"));
            let repacked = changed.into_owned();
            assert_eq!(
                repacked.socket(Slot::UpstreamHost),
                Some("10.9.9.9:1".parse().unwrap())
            );
            assert_eq!(repacked.duration_ms(), Some(5));
        }
    }

    #[test]
    fn packed_clusters_answer_as_the_text_parsed_again() {
        let values = [
            "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
            "inbound|8012||",
            "inbound-vip|80|http|x.y.svc.cluster.local",
            "outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local",
            "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
            "BlackHoleCluster",
            "PassthroughCluster;",
            "InboundPassthroughClusterIpv4",
            "httproute/default/llm/rule/0",
            "outbound|99999||x",
            "outbound|80||é",
            ";",
            "-",
            "",
        ];
        for v in values {
            let mut r = RawRecord::new(Arc::from("t"));
            r.set(Slot::Method, Cow::Borrowed("GET"));
            r.set(Slot::UpstreamCluster, Cow::Borrowed(v));
            r.set(Slot::Path, Cow::Borrowed("/x"));
            let parsed = r.upstream_cluster().map(|c| format!("{c:?} = {c}"));
            let owned = r.into_owned();
            let packed = owned.upstream_cluster().map(|c| format!("{c:?} = {c}"));
            assert_eq!(packed, parsed, "{v}");
            assert_eq!(
                packed,
                owned
                    .value(Slot::UpstreamCluster)
                    .and_then(parse_cluster_name)
                    .map(|c| format!("{c:?} = {c}")),
                "{v}"
            );
            // Set after packing: the new text is read.
            let mut changed = owned;
            changed.set(Slot::UpstreamCluster, Cow::Borrowed("outbound|81||y"));
            assert_eq!(changed.upstream_cluster().map(|c| c.port()), Some(Some(81)));
            let repacked = changed.into_owned();
            assert_eq!(
                repacked.upstream_cluster().map(|c| c.to_string()),
                Some("outbound|81||y".to_string())
            );
        }
    }

    #[test]
    fn a_record_in_flight_is_small() {
        // Readers keep thousands of records in flight and settlers a window of them: the
        // parsed form's 25 slots (600 bytes) must not be carried inline by every record. The
        // packed form is 25 spans plus what it keeps parsed (time, status, duration, four
        // sockets, the cluster, the flags).
        let size = std::mem::size_of::<RawRecord<'static>>();
        assert!(size <= 416, "RawRecord takes {size} bytes");
        let mut r = RawRecord::new(Arc::from("t"));
        r.set(Slot::Method, Cow::Borrowed("GET"));
        let owned = r.into_owned();
        assert_eq!(owned.get(Slot::Method), Some("GET"));
    }

    #[test]
    fn rfc3339_shapes() {
        let t = parse_rfc3339("2020-11-25T21:26:18.409Z").unwrap();
        assert_eq!(t.timestamp_millis(), 1_606_339_578_409);
        let t = parse_rfc3339("2025-01-30T12:10:13.682034460Z").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 682_034_460);
        let t = parse_rfc3339("2024-04-25T22:21:43.725+02:00").unwrap();
        assert_eq!(
            t.timestamp_millis(),
            parse_rfc3339("2024-04-25T20:21:43.725Z")
                .unwrap()
                .timestamp_millis()
        );
        for bad in [
            "",
            "2020",
            "2020-13-01T00:00:00Z",
            "2020-11-25T21:26:18.Z",
            "2020-11-25T21:26:18.409Zjunk",
            "2020-11-25T21:26:18+0",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn strftime_start_time() {
        assert!(parse_with_strftime("2024/04/25 20:21:43", "%Y/%m/%d %H:%M:%S").is_some());
        assert_eq!(
            parse_with_strftime("1700000000", "%s").unwrap().timestamp(),
            1_700_000_000
        );
        assert!(parse_with_strftime("nonsense", "%Y").is_none());
    }
}
