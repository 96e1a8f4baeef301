//! Envoy response flags (`%RESPONSE_FLAGS%` / `%RESPONSE_FLAGS_LONG%`): the 30 known flags, their meanings, and a never-panicking parser into a bitset.

use std::fmt;

/// One Envoy response flag. Variant order is Envoy's enum index (bit position in [`ResponseFlags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResponseFlag {
    /// `LH`.
    FailedLocalHealthCheck,
    /// `UH`.
    NoHealthyUpstream,
    /// `UT`.
    UpstreamRequestTimeout,
    /// `LR`.
    LocalReset,
    /// `UR`.
    UpstreamRemoteReset,
    /// `UF`.
    UpstreamConnectionFailure,
    /// `UC`.
    UpstreamConnectionTermination,
    /// `UO`.
    UpstreamOverflow,
    /// `NR`.
    NoRouteFound,
    /// `DI`.
    DelayInjected,
    /// `FI`.
    FaultInjected,
    /// `RL`.
    RateLimited,
    /// `UAEX`.
    UnauthorizedExternalService,
    /// `RLSE`.
    RateLimitServiceError,
    /// `DC`.
    DownstreamConnectionTermination,
    /// `URX`.
    UpstreamRetryLimitExceeded,
    /// `SI`.
    StreamIdleTimeout,
    /// `IH`.
    InvalidEnvoyRequestHeaders,
    /// `DPE`.
    DownstreamProtocolError,
    /// `UMSDR`.
    UpstreamMaxStreamDurationReached,
    /// `RFCF`.
    ResponseFromCacheFilter,
    /// `NFCF`.
    NoFilterConfigFound,
    /// `DT`.
    DurationTimeout,
    /// `UPE`.
    UpstreamProtocolError,
    /// `NC`.
    NoClusterFound,
    /// `OM`.
    OverloadManagerTerminated,
    /// `DF`.
    DnsResolutionFailed,
    /// `DO`.
    DropOverload,
    /// `DR`.
    DownstreamRemoteReset,
    /// `UDO`.
    UnconditionalDropOverload,
}

/// Number of known response flags.
pub const FLAG_COUNT: usize = 30;

/// Flag table data: (short name, long name, meaning, scope), in enum-index order.
///
/// Data taken from envoyproxy/envoy (Apache-2.0): docs/root/configuration/observability/access_log/usage.rst
/// and envoy/stream_info/stream_info.h, as collected in testdata/peer/envoy/response-flags.tsv.
const TABLE: [(&str, &str, &str, &str); FLAG_COUNT] = [
    (
        "LH",
        "FailedLocalHealthCheck",
        "Local service failed health check request in addition to 503 response code.",
        "HTTP only",
    ),
    (
        "UH",
        "NoHealthyUpstream",
        "No healthy upstream hosts in upstream cluster in addition to 503 response code.",
        "HTTP and TCP",
    ),
    (
        "UT",
        "UpstreamRequestTimeout",
        "Upstream request timeout in addition to 504 response code.",
        "HTTP only",
    ),
    (
        "LR",
        "LocalReset",
        "Connection local reset in addition to 503 response code.",
        "HTTP only",
    ),
    (
        "UR",
        "UpstreamRemoteReset",
        "Upstream remote reset in addition to 503 response code.",
        "HTTP only",
    ),
    (
        "UF",
        "UpstreamConnectionFailure",
        "Upstream connection failure in addition to 503 response code.",
        "HTTP and TCP",
    ),
    (
        "UC",
        "UpstreamConnectionTermination",
        "Upstream connection termination in addition to 503 response code.",
        "HTTP only",
    ),
    (
        "UO",
        "UpstreamOverflow",
        "Upstream overflow (circuit breaking) in addition to 503 response code.",
        "HTTP and TCP",
    ),
    (
        "NR",
        "NoRouteFound",
        "No route configured for a given request in addition to 404 response code, or no matching filter chain for a downstream connection.",
        "HTTP and TCP",
    ),
    (
        "DI",
        "DelayInjected",
        "The request processing was delayed for a period specified via fault injection.",
        "HTTP only",
    ),
    (
        "FI",
        "FaultInjected",
        "The request was aborted with a response code specified via fault injection.",
        "HTTP only",
    ),
    (
        "RL",
        "RateLimited",
        "The request was ratelimited locally by the HTTP rate limit filter in addition to 429 response code.",
        "HTTP only",
    ),
    (
        "UAEX",
        "UnauthorizedExternalService",
        "The request was denied by the external authorization service.",
        "HTTP only",
    ),
    (
        "RLSE",
        "RateLimitServiceError",
        "The request was rejected because there was an error in rate limit service.",
        "HTTP only",
    ),
    (
        "DC",
        "DownstreamConnectionTermination",
        "Downstream connection termination.",
        "HTTP only",
    ),
    (
        "URX",
        "UpstreamRetryLimitExceeded",
        "The request was rejected because the upstream retry limit (HTTP) or maximum connect attempts (TCP) was reached.",
        "HTTP and TCP",
    ),
    (
        "SI",
        "StreamIdleTimeout",
        "Stream idle timeout in addition to 408 response code.",
        "HTTP only",
    ),
    (
        "IH",
        "InvalidEnvoyRequestHeaders",
        "The request was rejected because it set an invalid value for a strictly-checked header in addition to 400 response code.",
        "HTTP only",
    ),
    (
        "DPE",
        "DownstreamProtocolError",
        "The downstream request had an HTTP protocol error.",
        "HTTP only",
    ),
    (
        "UMSDR",
        "UpstreamMaxStreamDurationReached",
        "The upstream request reached max stream duration.",
        "HTTP only",
    ),
    (
        "RFCF",
        "ResponseFromCacheFilter",
        "The response was served from an Envoy cache filter.",
        "HTTP only (not in usage.rst list)",
    ),
    (
        "NFCF",
        "NoFilterConfigFound",
        "Filter config was not received within the permitted warming deadline.",
        "not in usage.rst list",
    ),
    (
        "DT",
        "DurationTimeout",
        "A request or connection exceeded max_connection_duration or max_downstream_connection_duration.",
        "HTTP and TCP",
    ),
    (
        "UPE",
        "UpstreamProtocolError",
        "The upstream response had an HTTP protocol error.",
        "HTTP only",
    ),
    (
        "NC",
        "NoClusterFound",
        "Upstream cluster not found.",
        "HTTP and TCP",
    ),
    (
        "OM",
        "OverloadManagerTerminated",
        "Overload Manager terminated the request.",
        "HTTP only",
    ),
    (
        "DF",
        "DnsResolutionFailed",
        "The request was terminated due to DNS resolution failure.",
        "HTTP only",
    ),
    (
        "DO",
        "DropOverload",
        "Drop certain percentage of overloaded traffic (router sends local 503 'drop overload', response code details drop_overload).",
        "not in usage.rst list",
    ),
    (
        "DR",
        "DownstreamRemoteReset",
        "Downstream remote codec level reset was received on the stream.",
        "not in usage.rst list",
    ),
    (
        "UDO",
        "UnconditionalDropOverload",
        "Unconditionally drop all traffic because drop_overload is set to 100% (response code details unconditional_drop_overload).",
        "not in usage.rst list",
    ),
];

impl ResponseFlag {
    /// Every flag, in enum-index order (`ALL[i].index() == i`).
    pub const ALL: [ResponseFlag; FLAG_COUNT] = [
        ResponseFlag::FailedLocalHealthCheck,
        ResponseFlag::NoHealthyUpstream,
        ResponseFlag::UpstreamRequestTimeout,
        ResponseFlag::LocalReset,
        ResponseFlag::UpstreamRemoteReset,
        ResponseFlag::UpstreamConnectionFailure,
        ResponseFlag::UpstreamConnectionTermination,
        ResponseFlag::UpstreamOverflow,
        ResponseFlag::NoRouteFound,
        ResponseFlag::DelayInjected,
        ResponseFlag::FaultInjected,
        ResponseFlag::RateLimited,
        ResponseFlag::UnauthorizedExternalService,
        ResponseFlag::RateLimitServiceError,
        ResponseFlag::DownstreamConnectionTermination,
        ResponseFlag::UpstreamRetryLimitExceeded,
        ResponseFlag::StreamIdleTimeout,
        ResponseFlag::InvalidEnvoyRequestHeaders,
        ResponseFlag::DownstreamProtocolError,
        ResponseFlag::UpstreamMaxStreamDurationReached,
        ResponseFlag::ResponseFromCacheFilter,
        ResponseFlag::NoFilterConfigFound,
        ResponseFlag::DurationTimeout,
        ResponseFlag::UpstreamProtocolError,
        ResponseFlag::NoClusterFound,
        ResponseFlag::OverloadManagerTerminated,
        ResponseFlag::DnsResolutionFailed,
        ResponseFlag::DropOverload,
        ResponseFlag::DownstreamRemoteReset,
        ResponseFlag::UnconditionalDropOverload,
    ];

    /// Envoy's enum index of this flag (0..30), also its bit position in [`ResponseFlags`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The flag with the given enum index, if any.
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }

    const fn row(self) -> (&'static str, &'static str, &'static str, &'static str) {
        // The discriminant is always < FLAG_COUNT, so this index is in bounds.
        TABLE[self as usize]
    }

    /// Short name as written by `%RESPONSE_FLAGS%`, e.g. `"UH"`.
    pub const fn short(self) -> &'static str {
        self.row().0
    }

    /// Long name as written by `%RESPONSE_FLAGS_LONG%`, e.g. `"NoHealthyUpstream"`.
    pub const fn long(self) -> &'static str {
        self.row().1
    }

    /// Envoy's documented meaning of the flag.
    pub const fn meaning(self) -> &'static str {
        self.row().2
    }

    /// Where the flag applies: `"HTTP only"`, `"HTTP and TCP"`, or a note that Envoy's docs do not list it.
    pub const fn scope(self) -> &'static str {
        self.row().3
    }

    /// Looks up a short name (case-sensitive, exact), e.g. `"URX"`.
    pub fn from_short(s: &str) -> Option<Self> {
        use ResponseFlag::*;
        Some(match s.as_bytes() {
            b"LH" => FailedLocalHealthCheck,
            b"UH" => NoHealthyUpstream,
            b"UT" => UpstreamRequestTimeout,
            b"LR" => LocalReset,
            b"UR" => UpstreamRemoteReset,
            b"UF" => UpstreamConnectionFailure,
            b"UC" => UpstreamConnectionTermination,
            b"UO" => UpstreamOverflow,
            b"NR" => NoRouteFound,
            b"DI" => DelayInjected,
            b"FI" => FaultInjected,
            b"RL" => RateLimited,
            b"UAEX" => UnauthorizedExternalService,
            b"RLSE" => RateLimitServiceError,
            b"DC" => DownstreamConnectionTermination,
            b"URX" => UpstreamRetryLimitExceeded,
            b"SI" => StreamIdleTimeout,
            b"IH" => InvalidEnvoyRequestHeaders,
            b"DPE" => DownstreamProtocolError,
            b"UMSDR" => UpstreamMaxStreamDurationReached,
            b"RFCF" => ResponseFromCacheFilter,
            b"NFCF" => NoFilterConfigFound,
            b"DT" => DurationTimeout,
            b"UPE" => UpstreamProtocolError,
            b"NC" => NoClusterFound,
            b"OM" => OverloadManagerTerminated,
            b"DF" => DnsResolutionFailed,
            b"DO" => DropOverload,
            b"DR" => DownstreamRemoteReset,
            b"UDO" => UnconditionalDropOverload,
            _ => return None,
        })
    }

    /// Looks up a long name (case-sensitive, exact), e.g. `"UpstreamRetryLimitExceeded"`.
    pub fn from_long(s: &str) -> Option<Self> {
        // Long names are at least 10 bytes; skip the scan for short tokens.
        if s.len() < 10 {
            return None;
        }
        Self::ALL.iter().copied().find(|f| f.long() == s)
    }

    /// Looks up a short name first, then a long name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::from_short(s).or_else(|| Self::from_long(s))
    }
}

impl fmt::Display for ResponseFlag {
    /// Writes the short name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// A set of response flags; bit `i` is the flag with enum index `i`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResponseFlags(u32);

impl ResponseFlags {
    const MASK: u32 = (1u32 << FLAG_COUNT) - 1;

    /// The empty set.
    pub const fn empty() -> Self {
        ResponseFlags(0)
    }

    /// Builds a set from raw bits; bits above the known flags are dropped.
    pub const fn from_bits_truncate(bits: u32) -> Self {
        ResponseFlags(bits & Self::MASK)
    }

    /// Whether `f` is in the set.
    pub fn contains(self, f: ResponseFlag) -> bool {
        self.0 & (1 << f.index()) != 0
    }

    /// Adds `f` to the set.
    pub fn insert(&mut self, f: ResponseFlag) {
        self.0 |= 1 << f.index();
    }

    /// Removes `f` from the set.
    pub fn remove(&mut self, f: ResponseFlag) {
        self.0 &= !(1 << f.index());
    }

    /// The union of two sets.
    pub const fn union(self, other: Self) -> Self {
        ResponseFlags(self.0 | other.0)
    }

    /// Whether the set has no flags.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of flags in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The flags in the set, in enum-index order.
    pub fn iter(self) -> impl Iterator<Item = ResponseFlag> {
        FlagIter(self.0)
    }

    /// The raw bitset.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Displays the set with long names (`%RESPONSE_FLAGS_LONG%` style), `-` when empty.
    pub fn long_names(self) -> LongNames {
        LongNames(self)
    }
}

impl From<ResponseFlag> for ResponseFlags {
    fn from(f: ResponseFlag) -> Self {
        let mut s = ResponseFlags::empty();
        s.insert(f);
        s
    }
}

impl FromIterator<ResponseFlag> for ResponseFlags {
    fn from_iter<I: IntoIterator<Item = ResponseFlag>>(iter: I) -> Self {
        let mut s = ResponseFlags::empty();
        for f in iter {
            s.insert(f);
        }
        s
    }
}

impl IntoIterator for ResponseFlags {
    type Item = ResponseFlag;
    type IntoIter = FlagIter;
    fn into_iter(self) -> FlagIter {
        FlagIter(self.0)
    }
}

/// Iterator over the flags of a [`ResponseFlags`], in enum-index order.
#[derive(Debug, Clone)]
pub struct FlagIter(u32);

impl Iterator for FlagIter {
    type Item = ResponseFlag;
    fn next(&mut self) -> Option<ResponseFlag> {
        while self.0 != 0 {
            let i = self.0.trailing_zeros() as usize;
            self.0 &= self.0 - 1;
            if let Some(f) = ResponseFlag::from_index(i) {
                return Some(f);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.0 & ResponseFlags::MASK).count_ones() as usize;
        (n, Some(n))
    }
}

fn write_joined(
    flags: ResponseFlags,
    f: &mut fmt::Formatter<'_>,
    name: fn(ResponseFlag) -> &'static str,
) -> fmt::Result {
    if flags.is_empty() {
        return f.write_str("-");
    }
    for (i, flag) in flags.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        f.write_str(name(flag))?;
    }
    Ok(())
}

impl fmt::Display for ResponseFlags {
    /// Comma-separated short names in enum order, `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_joined(*self, f, ResponseFlag::short)
    }
}

/// Display adapter returned by [`ResponseFlags::long_names`].
#[derive(Debug, Clone, Copy)]
pub struct LongNames(ResponseFlags);

impl fmt::Display for LongNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_joined(self.0, f, ResponseFlag::long)
    }
}

/// A token in a response-flags field that is not a known short or long flag name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown response flag `{token}`")]
pub struct UnknownFlag<'a> {
    /// The token as written.
    pub token: &'a str,
}

/// Parses a `%RESPONSE_FLAGS%` or `%RESPONSE_FLAGS_LONG%` value.
///
/// `-` or an empty (or all-whitespace) string gives the empty set; otherwise comma-separated short
/// names (`UF,URX`) or long names (`UpstreamConnectionFailure,UpstreamRetryLimitExceeded`), which may
/// be mixed. Whitespace around tokens is ignored. The first token that is not a known name
/// (including an empty token, as in `UF,,URX`) is returned as the error.
pub fn parse_response_flags(s: &str) -> Result<ResponseFlags, UnknownFlag<'_>> {
    let mut out = ResponseFlags::empty();
    // Fast path: the common values are "-" (no flag: most lines) or a single short flag.
    if s == "-" {
        return Ok(out);
    }
    if let Some(f) = ResponseFlag::from_short(s) {
        out.insert(f);
        return Ok(out);
    }
    let s = s.trim();
    if s.is_empty() || s == "-" {
        return Ok(out);
    }
    for token in s.split(',') {
        let token = token.trim();
        match ResponseFlag::from_name(token) {
            Some(f) => out.insert(f),
            None => return Err(UnknownFlag { token }),
        }
    }
    Ok(out)
}

/// Cheap syntactic check used for format detection: `-`, or one or more non-empty tokens of
/// ASCII letters separated by single commas (no whitespace). Does not check the names are known.
pub fn looks_like_flags(s: &str) -> bool {
    if s == "-" {
        return true;
    }
    !s.is_empty()
        && s.split(',')
            .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::ResponseFlag::*;
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, f) in ResponseFlag::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
            assert_eq!(ResponseFlag::from_index(i), Some(*f));
            assert_eq!(ResponseFlag::from_short(f.short()), Some(*f));
            assert_eq!(ResponseFlag::from_long(f.long()), Some(*f));
            assert_eq!(ResponseFlag::from_name(f.short()), Some(*f));
            assert_eq!(ResponseFlag::from_name(f.long()), Some(*f));
            assert!(!f.meaning().is_empty());
            assert!(!f.scope().is_empty());
        }
        assert_eq!(ResponseFlag::from_index(FLAG_COUNT), None);
    }

    #[test]
    fn parse_table() {
        let ok: &[(&str, &[ResponseFlag])] = &[
            ("-", &[]),
            ("", &[]),
            ("  ", &[]),
            (" - ", &[]),
            ("UH", &[NoHealthyUpstream]),
            (
                "UF,URX",
                &[UpstreamConnectionFailure, UpstreamRetryLimitExceeded],
            ),
            (
                "URX,UF",
                &[UpstreamConnectionFailure, UpstreamRetryLimitExceeded],
            ),
            (
                "UF, URX ",
                &[UpstreamConnectionFailure, UpstreamRetryLimitExceeded],
            ),
            (
                "UpstreamConnectionFailure,UpstreamRetryLimitExceeded",
                &[UpstreamConnectionFailure, UpstreamRetryLimitExceeded],
            ),
            ("UAEX", &[UnauthorizedExternalService]),
            (
                "DC,DPE",
                &[DownstreamConnectionTermination, DownstreamProtocolError],
            ),
            ("UF,UF", &[UpstreamConnectionFailure]),
            (
                "UC,NoHealthyUpstream",
                &[NoHealthyUpstream, UpstreamConnectionTermination],
            ),
            ("UDO", &[UnconditionalDropOverload]),
            ("LH", &[FailedLocalHealthCheck]),
        ];
        for (input, want) in ok {
            let got = parse_response_flags(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let got: Vec<_> = got.iter().collect();
            assert_eq!(&got, want, "input {input:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("XX", "XX"),
            ("UF,XX", "XX"),
            ("UF,,URX", ""),
            ("UF,", ""),
            (",", ""),
            ("uf", "uf"),
            ("--", "--"),
            ("UF;URX", "UF;URX"),
            ("ÜF", "ÜF"),
            ("UF,noHealthyUpstream", "noHealthyUpstream"),
        ];
        for (input, token) in bad {
            assert_eq!(
                parse_response_flags(input),
                Err(UnknownFlag { token }),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn display_and_bits() {
        let mut s = ResponseFlags::empty();
        assert!(s.is_empty());
        assert_eq!(s.len(), 0);
        assert_eq!(s.to_string(), "-");
        assert_eq!(s.long_names().to_string(), "-");
        s.insert(UpstreamRetryLimitExceeded);
        s.insert(UpstreamConnectionFailure);
        assert_eq!(s.to_string(), "UF,URX");
        assert_eq!(
            s.long_names().to_string(),
            "UpstreamConnectionFailure,UpstreamRetryLimitExceeded"
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.bits(), (1 << 5) | (1 << 15));
        assert!(s.contains(UpstreamConnectionFailure));
        assert!(!s.contains(NoHealthyUpstream));
        s.remove(UpstreamConnectionFailure);
        assert_eq!(s.to_string(), "URX");
        let all: ResponseFlags = ResponseFlag::ALL.iter().copied().collect();
        assert_eq!(all.len(), FLAG_COUNT);
        assert_eq!(all.iter().count(), FLAG_COUNT);
        assert_eq!(ResponseFlags::from_bits_truncate(u32::MAX), all);
        assert_eq!(parse_response_flags(&all.to_string()), Ok(all));
        assert_eq!(parse_response_flags(&all.long_names().to_string()), Ok(all));
        assert_eq!(ResponseFlags::from(NoRouteFound).to_string(), "NR");
        assert_eq!(NoRouteFound.to_string(), "NR");
    }

    #[test]
    fn looks_like_flags_table() {
        let cases: &[(&str, bool)] = &[
            ("-", true),
            ("UF", true),
            ("UF,URX", true),
            ("NoHealthyUpstream", true),
            ("GET", true),
            ("", false),
            (",", false),
            ("UF,", false),
            ("UF, URX", false),
            ("200", false),
            ("UF-URX", false),
            ("--", false),
            ("ÜF", false),
        ];
        for (input, want) in cases {
            assert_eq!(looks_like_flags(input), *want, "input {input:?}");
        }
    }
}
