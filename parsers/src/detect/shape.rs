//! Reading a TEXT access log given without `--log-format` whose format is none of the
//! built-ins, by the shape of its fields.
//!
//! Envoy's own default format and every Istio default begin alike —
//! `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
//! %RESPONSE_CODE% %RESPONSE_FLAGS%` — and a custom format is most often one of them with
//! operators added or left out in the same order (Envoy's default with
//! `%RESPONSE_CODE_DETAILS%` after the flags, Istio's without the server name and route). So a
//! line that starts that way is read as Istio's operators after the flags, in Istio's order,
//! each present or not: the fields after the flags are aligned with that list, quoted with
//! quoted and bare with bare, each value of a shape its operator writes (numbers for byte
//! counts, `ip:port` for addresses, a known details value, a cluster name with `|`…).
//!
//! One shape never decides: the line counts only when the best alignment is clear (the two
//! ways of breaking ties put every value that is not `-` in the same place), at least
//! [`MIN_AFTER_FLAGS`] fields follow the flags, and one of them is a field only a proxy logs
//! (details, upstream host or cluster, upstream service time). The format found travels with
//! every record read by it as a note, so the user sees what was assumed and can pass the
//! proxy's real format instead.

use crate::address::parse_address;
use crate::details::detail_meaning;
use crate::flags::parse_response_flags;
use crate::format::{TextFormat, looks_like_timestamp};

/// Name of the format of records read this way.
pub const FORMAT_NAME: &str = "text-by-shape";

/// Fewest fields after `%RESPONSE_FLAGS%` for a line to be read by shape.
pub(super) const MIN_AFTER_FLAGS: usize = 4;

/// Most fields a line read by shape may have after the flags (Istio's list has 18).
const MAX_FIELDS: usize = 24;

/// The start every format read by shape shares.
const HEAD: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS%";

/// What a field's value must look like to be read as an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `via_upstream`, `upstream_reset_before_response_started{…}`.
    Details,
    /// A word of letters, digits and `_`, with an optional bracketed argument.
    Word,
    /// Any text.
    Text,
    /// Digits; never `-` (Envoy always writes byte counts and durations).
    Count,
    /// Digits or `-`.
    Millis,
    /// IP addresses separated by commas.
    IpList,
    /// An id: no spaces, 8 characters or more.
    Id,
    /// A host name or address, with an optional port.
    Host,
    /// `ip:port` (or another address Envoy writes).
    Address,
    /// `outbound|80||name`, `inbound|8080||`, `PassthroughCluster`, or a cluster name.
    Cluster,
    /// Any token.
    Token,
}

/// One operator of Istio's default format after `%RESPONSE_FLAGS%`: its text, whether it is
/// quoted, its value's shape, and whether only a proxy logs it.
struct Op {
    text: &'static str,
    quoted: bool,
    shape: Shape,
    proxy_only: bool,
}

const fn op(text: &'static str, quoted: bool, shape: Shape, proxy_only: bool) -> Op {
    Op {
        text,
        quoted,
        shape,
        proxy_only,
    }
}

/// Istio's default TEXT format (1.9 and later) after `%RESPONSE_FLAGS%`, in order.
const OPS: &[Op] = &[
    op("%RESPONSE_CODE_DETAILS%", false, Shape::Details, true),
    op("%CONNECTION_TERMINATION_DETAILS%", false, Shape::Word, true),
    op(
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
        true,
        Shape::Text,
        true,
    ),
    op("%BYTES_RECEIVED%", false, Shape::Count, false),
    op("%BYTES_SENT%", false, Shape::Count, false),
    op("%DURATION%", false, Shape::Count, false),
    op(
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        false,
        Shape::Millis,
        true,
    ),
    op("%REQ(X-FORWARDED-FOR)%", true, Shape::IpList, false),
    op("%REQ(USER-AGENT)%", true, Shape::Text, false),
    op("%REQ(X-REQUEST-ID)%", true, Shape::Id, false),
    op("%REQ(:AUTHORITY)%", true, Shape::Host, false),
    op("%UPSTREAM_HOST%", true, Shape::Address, true),
    op("%UPSTREAM_CLUSTER%", false, Shape::Cluster, true),
    op("%UPSTREAM_LOCAL_ADDRESS%", false, Shape::Address, true),
    op("%DOWNSTREAM_LOCAL_ADDRESS%", false, Shape::Address, false),
    op("%DOWNSTREAM_REMOTE_ADDRESS%", false, Shape::Address, false),
    op("%REQUESTED_SERVER_NAME%", false, Shape::Host, false),
    op("%ROUTE_NAME%", false, Shape::Token, false),
];

/// One field of the line after the flags.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    value: &'a str,
    quoted: bool,
}

/// The format a line is written in, read from the shape of its fields, when it is clear; see
/// the module's documentation. The format is compiled and reads `line` in full.
pub(super) fn infer(line: &str) -> Option<TextFormat> {
    let fields = fields_after_flags(line)?;
    if fields.len() < MIN_AFTER_FLAGS || fields.len() > MAX_FIELDS {
        return None;
    }
    let first = align(&fields, false)?;
    let last = align(&fields, true)?;
    // Ties broken both ways must agree on every value that says something.
    let agree = fields
        .iter()
        .zip(first.iter().zip(&last))
        .all(|(f, (a, b))| a == b || f.value == "-");
    if !agree {
        return None;
    }
    let proxy_field = fields
        .iter()
        .zip(&first)
        .any(|(f, &o)| OPS[o].proxy_only && f.value != "-");
    if !proxy_field {
        return None;
    }
    let mut source = String::from(HEAD);
    for (f, &o) in fields.iter().zip(&first) {
        source.push(' ');
        if f.quoted {
            source.push('"');
            source.push_str(OPS[o].text);
            source.push('"');
        } else {
            source.push_str(OPS[o].text);
        }
    }
    source.push('\n');
    let format = TextFormat::compile(FORMAT_NAME, &source).ok()?;
    matches!(
        format.match_line(line),
        crate::format::MatchOutcome::Full(_)
    )
    .then_some(format)
}

/// The fields after `[START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS`, each one space apart, or
/// `None` when the line does not start that way.
fn fields_after_flags(line: &str) -> Option<Vec<Field<'_>>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    if !looks_like_timestamp(&rest[..close]) {
        return None;
    }
    let rest = rest[close + 1..].strip_prefix(" \"")?;
    let end = rest.find("\" ")?;
    let mut request = rest[..end].split(' ');
    let (method, path, protocol) = (request.next()?, request.next()?, request.next()?);
    let method_ok = method == "-"
        || (!method.is_empty() && method.bytes().all(|c| c.is_ascii_uppercase() || c == b'_'));
    let protocol_ok = protocol == "-" || protocol.starts_with("HTTP/");
    if request.next().is_some() || path.is_empty() || !method_ok || !protocol_ok {
        return None;
    }
    let mut rest = &rest[end + 2..];
    let mut fields = Vec::new();
    while !rest.is_empty() {
        if fields.len() > MAX_FIELDS + 2 {
            return None;
        }
        let (field, after) = match rest.strip_prefix('"') {
            Some(inner) => {
                // A quoted value ends at the quote followed by a space or the line's end.
                let end = inner
                    .match_indices('"')
                    .map(|(i, _)| i)
                    .find(|&i| matches!(inner.as_bytes().get(i + 1), None | Some(b' ')))?;
                (
                    Field {
                        value: &inner[..end],
                        quoted: true,
                    },
                    &inner[end + 1..],
                )
            }
            None => {
                let end = rest.find(' ').unwrap_or(rest.len());
                (
                    Field {
                        value: &rest[..end],
                        quoted: false,
                    },
                    &rest[end..],
                )
            }
        };
        if field.value.is_empty() && !field.quoted {
            return None;
        }
        fields.push(field);
        rest = match after.strip_prefix(' ') {
            Some(r) if !r.is_empty() && !r.starts_with(' ') => r,
            Some(_) => return None,
            None if after.is_empty() => after,
            None => return None,
        };
    }
    let mut fields = fields.into_iter();
    let code = fields.next()?;
    let flags = fields.next()?;
    let code_ok = !code.quoted
        && (1..=3).contains(&code.value.len())
        && code.value.bytes().all(|c| c.is_ascii_digit());
    if !code_ok || flags.quoted || parse_response_flags(flags.value).is_err() {
        return None;
    }
    Some(fields.collect())
}

/// How well `v` fits `shape`: `None` when it cannot be that operator's value; more for a
/// shape only that operator writes.
fn fit(v: &str, shape: Shape) -> Option<u32> {
    if v == "-" {
        return (shape != Shape::Count).then_some(0);
    }
    let no_space = !v.is_empty() && !v.contains([' ', '"']);
    match shape {
        Shape::Details => {
            let base = word_base(v)?;
            Some(if detail_meaning(base).is_some() { 4 } else { 1 })
        }
        Shape::Word => word_base(v).map(|_| 1),
        Shape::Text => (!v.is_empty()).then_some(1),
        Shape::Count | Shape::Millis => {
            (v.len() <= 20 && v.bytes().all(|c| c.is_ascii_digit())).then_some(2)
        }
        Shape::IpList => v
            .split(',')
            .all(|ip| ip.trim().parse::<std::net::IpAddr>().is_ok())
            .then_some(3),
        Shape::Id => (no_space && v.len() >= 8).then_some(if v.len() == 36 { 2 } else { 1 }),
        Shape::Host => (no_space
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_:[]".contains(&c)))
        .then_some(1),
        Shape::Address => parse_address(v).filter(|a| a.port().is_some()).map(|_| 3),
        Shape::Cluster => {
            if !no_space {
                None
            } else if v.contains('|') || v.ends_with("Cluster") {
                Some(3)
            } else {
                Some(1)
            }
        }
        Shape::Token => no_space.then_some(1),
    }
}

/// The word before an optional bracketed argument (`{…}`, `[…]`, `(…)` closing at the end),
/// when `v` is a lower-case word of letters, digits and `_`.
fn word_base(v: &str) -> Option<&str> {
    let cut = v.find(['{', '[', '(']).unwrap_or(v.len());
    let (base, arg) = v.split_at(cut);
    let base_ok = base.starts_with(|c: char| c.is_ascii_lowercase())
        && base
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    let arg_ok = arg.is_empty() || arg.ends_with(['}', ']', ')']);
    (base_ok && arg_ok && !v.contains([' ', '"'])).then_some(base)
}

/// The best alignment of `fields` with [`OPS`] (each field to one operator, in order, quoted
/// with quoted): the index of each field's operator. Ties go to the earlier operators, or to
/// the later ones with `later`.
fn align(fields: &[Field<'_>], later: bool) -> Option<Vec<usize>> {
    let (n, m) = (fields.len(), OPS.len());
    // best[i][j]: the best score of the first i fields aligned within the first j operators.
    let mut best = vec![vec![None::<u32>; m + 1]; n + 1];
    // took[i][j]: whether best[i][j] puts field i-1 on operator j-1.
    let mut took = vec![vec![false; m + 1]; n + 1];
    best[0].fill(Some(0));
    for i in 1..=n {
        for j in 1..=m {
            let skip = best[i][j - 1];
            let f = fields[i - 1];
            let op = &OPS[j - 1];
            let take = if f.quoted == op.quoted {
                best[i - 1][j - 1]
                    .zip(fit(f.value, op.shape))
                    .map(|(a, b)| a + b)
            } else {
                None
            };
            let use_take = match (take, skip) {
                (Some(t), Some(s)) => t > s || (later && t == s),
                (Some(_), None) => true,
                _ => false,
            };
            if use_take {
                best[i][j] = take;
                took[i][j] = true;
            } else {
                best[i][j] = skip;
            }
        }
    }
    best[n][m]?;
    let mut out = vec![0; n];
    let (mut i, mut j) = (n, m);
    while i > 0 {
        if j == 0 {
            return None;
        }
        if took[i][j] {
            out[i - 1] = j - 1;
            i -= 1;
        }
        j -= 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::MatchOutcome;
    use crate::slot::Slot;

    fn format_of(line: &str) -> Option<String> {
        infer(line).map(|f| f.source().trim_end().to_string())
    }

    #[test]
    fn envoy_default_with_details_after_the_flags() {
        let line = r#"[2024-03-01T10:00:00.123Z] "GET /v1/models/foo HTTP/1.1" 503 UF upstream_reset_before_response_started{connection_failure} 0 91 1 - "10.1.2.3" "curl/7.81.0" "a1b2c3d4-0000-4000-8000-000000000001" "foo.example.com" "10.244.1.5:8080""#;
        assert_eq!(
            format_of(line).as_deref(),
            Some(
                "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\""
            )
        );
        let f = infer(line).unwrap();
        let MatchOutcome::Full(r) = f.match_line(line) else {
            panic!("the inferred format reads its line")
        };
        assert_eq!(r.status(), Some(503));
        assert_eq!(
            r.details().map(|d| d.base),
            Some("upstream_reset_before_response_started")
        );
        assert_eq!(r.get(Slot::UpstreamHost), Some("10.244.1.5:8080"));
        assert_eq!(
            r.get(Slot::RequestId),
            Some("a1b2c3d4-0000-4000-8000-000000000001")
        );
    }

    #[test]
    fn istio_without_server_name_and_route() {
        let line = r#"[2024-03-01T10:00:00.123Z] "POST /v2/models/m/infer HTTP/2" 404 NR route_not_found - "-" 0 0 0 - "-" "python-requests/2.31" "5e1f0000-aaaa-4bbb-8ccc-000000000001" "m.example.com" "-" - - 10.0.0.7:8081 10.0.0.9:51234"#;
        let got = format_of(line).unwrap();
        assert!(
            got.ends_with("\"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%"),
            "{got}"
        );
        assert!(got.contains("%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED%"), "{got}");
    }

    #[test]
    fn cluster_and_addresses_in_their_places() {
        let line = r#"[2024-03-01T10:00:00.123Z] "GET /healthz HTTP/1.1" 200 - via_upstream 0 2 3 2 "-" "kube-probe/1.28" "abcdef12-3456" "10.0.0.7:8080" "10.0.0.7:8080" inbound|8080|| 127.0.0.6:40000 10.0.0.7:8080 10.0.0.1:33333"#;
        let f = infer(line).unwrap();
        let MatchOutcome::Full(r) = f.match_line(line) else {
            panic!()
        };
        assert_eq!(r.get(Slot::UpstreamCluster), Some("inbound|8080||"));
        assert_eq!(r.get(Slot::UpstreamLocalAddress), Some("127.0.0.6:40000"));
        assert_eq!(r.get(Slot::DownstreamRemoteAddress), Some("10.0.0.1:33333"));
        assert_eq!(r.upstream_service_time_ms(), Some(2));
    }

    #[test]
    fn lines_that_say_too_little_or_are_not_envoys_are_refused() {
        for line in [
            // No field only a proxy writes.
            r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 200 - 0 2 3 "-" "curl/8""#,
            // Too few fields after the flags.
            r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 200 - via_upstream 0"#,
            // Not flags.
            r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 200 hello via_upstream 0 2 3 4"#,
            // A web server's log: no brackets around an ISO time.
            r#"10.0.0.1 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8""#,
            // Fields out of Istio's order (user agent before the byte counts).
            r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 200 - "curl/8" via_upstream 0 2 3 4"#,
            // Two spaces between fields.
            r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 200 -  via_upstream 0 2 3 4"#,
            // An unclosed quote.
            r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 200 - via_upstream 0 2 3 "curl"#,
            "",
            "[",
            "[2024-03-01T10:00:00.123Z] \"",
        ] {
            assert_eq!(format_of(line), None, "{line}");
        }
    }

    #[test]
    fn an_unclear_alignment_is_refused() {
        // Two bare words after the flags could be details and termination details or the
        // other way round only if both read as words: a known details value decides; two
        // unknown words do not.
        let clear = r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 503 UF via_upstream 0 2 3 4 "-" "curl/8" "0123456789" "h" "10.0.0.1:80""#;
        assert!(format_of(clear).is_some());
        let unclear = r#"[2024-03-01T10:00:00.123Z] "GET / HTTP/1.1" 503 UF some_word 0 2 3 4 "-" "curl/8" "0123456789" "h" "10.0.0.1:80""#;
        assert_eq!(format_of(unclear), None);
    }
}
