//! agentgateway's request log lines (`<ts>\tinfo\trequest gateway=… http.status=… endpoint=…
//! inferencepool.selected_endpoint=… error="…" duration=…ms`) read into a [`RawRecord`].
//!
//! agentgateway writes one `key=value` line per request at level `info`, target `request`
//! (`crates/agentgateway/src/telemetry/log.rs` of agentgateway/agentgateway): `gateway`,
//! `listener`, `route_rule`, `route`, `endpoint` (the upstream it dialled), `src.addr`,
//! `http.method`, `http.host`, `http.path`, `http.version`, `http.status`, `grpc.status`,
//! `trace.id`, `span.id`, `protocol`, `inferencepool.selected_endpoint` (what the endpoint
//! picker chose), `gen_ai.*` (model, tokens), `retry.attempt`, `error` (quoted), `reason`
//! (absent when the upstream answered), `duration` (`…ms`, last). The line is written when the
//! request ends, so its timestamp is the end time: the start is the timestamp minus the
//! duration. Fields map to Envoy's typed slots where they mean the same; the others are kept
//! as extras under their own key. Pure, bounded, never panics.

use crate::words::token;
use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat};

use crate::format::Slot;
use crate::record::RawRecord;

/// Name of the format records read here carry.
pub const FORMAT_NAME: &str = "agentgateway";

/// At most this many `key=value` fields are read from one line.
pub const MAX_FIELDS: usize = 96;

/// Values longer than this are cut (at a character boundary).
pub const MAX_VALUE: usize = 2048;

/// Read one agentgateway request line. `None` when the line is not one: it must be
/// `[<RFC 3339 time>] <level> request key=value …` (tabs as written, or spaces as pasted) and
/// carry `http.status` or `endpoint` and a `duration`.
pub fn parse(line: &str) -> Option<RawRecord<'static>> {
    let mut rest = line.trim();
    let (first, after) = token(rest);
    let mut time = None;
    let level = if is_level(first) {
        rest = after;
        first
    } else {
        if crate::envelope::rfc3339_prefix_len(first) == 0 {
            return None;
        }
        time = DateTime::parse_from_rfc3339(first).ok();
        let (level, after) = token(after);
        rest = after;
        level
    };
    if !is_level(level) {
        return None;
    }
    let (target, after) = token(rest);
    if target != "request" {
        return None;
    }
    rest = after;
    let mut rec = RawRecord::new(Arc::from(FORMAT_NAME));
    let mut fields = 0;
    let (mut has_status, mut has_endpoint, mut duration, mut reason) = (false, false, None, false);
    while fields < MAX_FIELDS {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let key = &rest[..eq];
        if key.is_empty() || key.contains(char::is_whitespace) || key.contains('"') {
            // Not `key=value` (a wrapped or pasted fragment): skip one word.
            let (_, after) = token(rest);
            rest = after;
            fields += 1;
            continue;
        }
        let after_eq = &rest[eq + 1..];
        let (value, after) = if let Some(q) = after_eq.strip_prefix('"') {
            quoted(q)
        } else if after_eq.starts_with(char::is_whitespace) || after_eq.is_empty() {
            (String::new(), after_eq)
        } else {
            let (v, a) = token(after_eq);
            (cap(v), a)
        };
        rest = after;
        fields += 1;
        let slot = match key {
            "http.status" => {
                if !value.bytes().all(|b| b.is_ascii_digit()) || value.is_empty() {
                    return None;
                }
                has_status = true;
                Some(Slot::ResponseCode)
            }
            "http.method" => Some(Slot::Method),
            "http.path" => Some(Slot::Path),
            "http.host" => Some(Slot::Authority),
            "http.version" => Some(Slot::Protocol),
            "endpoint" => {
                has_endpoint = true;
                Some(Slot::UpstreamHost)
            }
            "src.addr" => Some(Slot::DownstreamRemoteAddress),
            "route" => Some(Slot::RouteName),
            "x-request-id" | "request.id" | "request_id" => Some(Slot::RequestId),
            "duration" => {
                duration = crate::ztunnel::parse_duration_ms(&value);
                rec.set(
                    Slot::Duration,
                    Cow::Owned(duration.map_or_else(|| "-".to_string(), |d| d.to_string())),
                );
                None
            }
            _ => None,
        };
        if key == "reason" {
            reason = true;
        }
        match slot {
            Some(s) if rec.get(s).is_none() => rec.set(s, Cow::Owned(value)),
            _ if key == "duration" => {}
            _ => rec.push_extra(Arc::from(key), Cow::Owned(value)),
        }
    }
    if !(has_status || has_endpoint) || rec.get(Slot::Duration).is_none() {
        return None;
    }
    // agentgateway leaves `reason` out when the upstream answered: the status was relayed.
    if has_status && !reason && rec.extra("error").is_none() {
        rec.set(Slot::ResponseCodeDetails, Cow::Borrowed("via_upstream"));
    }
    if let Some(t) = time {
        let start = match duration.and_then(|d| i64::try_from(d).ok()) {
            Some(d) => t
                .checked_sub_signed(chrono::Duration::milliseconds(d))
                .unwrap_or(t),
            None => t,
        };
        rec.set(
            Slot::StartTime,
            Cow::Owned(start.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
    }
    Some(rec)
}

fn is_level(w: &str) -> bool {
    matches!(w, "trace" | "debug" | "info" | "warn" | "error")
}

/// A double-quoted value, at most [`MAX_VALUE`] bytes kept.
fn quoted(s: &str) -> (String, &str) {
    crate::words::quoted(s, MAX_VALUE)
}

/// A value cut to [`MAX_VALUE`] bytes.
fn cap(v: &str) -> String {
    crate::words::cap(v, MAX_VALUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines, each with where it was published.
    // An llm-d workshop guide (agentgateway in front of an InferencePool): `kubectl logs` of the
    // inference gateway.
    const LLMD_WORKSHOP: &str = "2026-03-29T13:58:14.52476Z\tinfo\trequest gateway=llmd-workshop/llmd-inference-gateway listener=http route=llmd-workshop/llmd-inference-route endpoint=10.224.0.101:8000 src.addr=10.224.0.120:18308 http.method=POST http.host=20.66.113.50 http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=200 protocol=http inferencepool.selected_endpoint=10.224.0.101:8000 duration=10459ms";
    // agentgateway docs, "LLM consumption / observability": a rate-limited request.
    const DOCS_RATE_LIMITED: &str = "2025-12-12T21:40:18.687849Z\tinfo\trequest gateway=agentgateway listener=http route=openai endpoint=api.openai.com:443 src.addr=127.0.0.1:51794 http.method=POST http.host=localhost http.path=/openai http.version=HTTP/1.1 http.status=429 protocol=llm gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.model=gpt-3.5-turbo error=\"rate limit exceeded\" duration=206ms";
    // agentgateway docs, "Claude Code": gen_ai usage fields.
    const DOCS_GEN_AI: &str = "2025-10-16T20:10:17.919575Z\tinfo\trequest gateway=bind/3000 listener=listener0 route_rule=route0/default route=route0 endpoint=api.anthropic.com:443 src.addr=[::1]:59011 http.method=POST http.host=localhost http.path=/v1/messages?beta=true http.version=HTTP/1.1 http.status=200 gen_ai.operation.name=chat gen_ai.provider.name=anthropic gen_ai.request.model=claude-opus-4-6 gen_ai.response.model=claude-opus-4-6 gen_ai.usage.input_tokens=4734 gen_ai.usage.output_tokens=32 gen_ai.request.temperature=0 gen_ai.request.max_tokens=512 duration=1900ms";
    // agentgateway docs (kgateway integration): no timestamp (pasted), 404 from httpbin.
    const DOCS_NO_TS: &str = "info\trequest gateway=agentgateway-system/agentgateway-proxy listener=http route=httpbin/httpbin endpoint=10.244.0.4:8080 src.addr=127.0.0.1:46886 http.method=GET http.host=www.example.com http.path=/status/404 http.version=HTTP/1.1 http.status=404 protocol=http duration=0ms http.statusString=\"404\"";

    #[test]
    fn table() {
        // (line, status, method, path, upstream, duration, start, details, extras)
        type Row<'a> = (
            &'a str,
            Option<u16>,
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<u64>,
            Option<&'a str>,
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
        );
        let rows: &[Row<'_>] = &[
            (
                LLMD_WORKSHOP,
                Some(200),
                "POST",
                "/v1/chat/completions",
                Some("10.224.0.101:8000"),
                Some(10459),
                Some("2026-03-29T13:58:04.065Z"),
                Some("via_upstream"),
                &[
                    ("inferencepool.selected_endpoint", "10.224.0.101:8000"),
                    ("gateway", "llmd-workshop/llmd-inference-gateway"),
                ],
            ),
            (
                DOCS_RATE_LIMITED,
                Some(429),
                "POST",
                "/openai",
                Some("api.openai.com:443"),
                Some(206),
                Some("2025-12-12T21:40:18.481Z"),
                None,
                &[
                    ("error", "rate limit exceeded"),
                    ("gen_ai.request.model", "gpt-3.5-turbo"),
                ],
            ),
            (
                DOCS_GEN_AI,
                Some(200),
                "POST",
                "/v1/messages?beta=true",
                Some("api.anthropic.com:443"),
                Some(1900),
                Some("2025-10-16T20:10:16.019Z"),
                Some("via_upstream"),
                &[
                    ("gen_ai.usage.input_tokens", "4734"),
                    ("gen_ai.usage.output_tokens", "32"),
                    ("route_rule", "route0/default"),
                ],
            ),
            (
                DOCS_NO_TS,
                Some(404),
                "GET",
                "/status/404",
                Some("10.244.0.4:8080"),
                Some(0),
                None,
                Some("via_upstream"),
                &[("http.statusString", "404")],
            ),
        ];
        for (line, status, method, path, up, dur, start, details, extras) in rows {
            let r = parse(line).unwrap_or_else(|| panic!("not read: {line}"));
            assert_eq!(r.format(), FORMAT_NAME);
            assert_eq!(r.status(), *status, "{line}");
            assert_eq!(r.method(), Some(*method));
            assert_eq!(r.path(), Some(*path));
            assert_eq!(r.value(Slot::UpstreamHost), *up);
            assert_eq!(r.duration_ms(), *dur);
            assert_eq!(
                r.start_time()
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                    .as_deref(),
                *start
            );
            assert_eq!(r.value(Slot::ResponseCodeDetails), *details, "{line}");
            for (k, v) in *extras {
                assert_eq!(r.extra(k), Some(*v), "{k} in {line}");
            }
        }
    }

    #[test]
    fn spaces_as_pasted_and_escapes() {
        let pasted = LLMD_WORKSHOP.replace('\t', "      ");
        let r = parse(&pasted).unwrap();
        assert_eq!(r.status(), Some(200));
        let r = parse(
            "info request endpoint=10.0.0.9:8000 http.status=503 error=\"upstream call failed: \\\"connect\\\" refused\" reason=UpstreamFailure duration=3ms",
        )
        .unwrap();
        assert_eq!(
            r.extra("error"),
            Some("upstream call failed: \"connect\" refused")
        );
        assert_eq!(r.extra("reason"), Some("UpstreamFailure"));
        assert_eq!(r.value(Slot::ResponseCodeDetails), None);
    }

    #[test]
    fn not_agentgateway() {
        for line in [
            "",
            "request",
            "2025-12-12T21:40:18.687849Z\tinfo\trequest",
            // ztunnel's access lines have another target.
            "2024-05-01T10:00:00.000Z\tinfo\taccess\tconnection complete\tsrc.addr=10.0.0.1:1 dst.addr=10.0.0.2:15008 duration=\"2ms\"",
            // istio-agent.
            "2024-05-01T10:00:00.000Z\tinfo\txdsproxy\tconnected to upstream XDS server",
            // No duration.
            "info\trequest http.status=200 endpoint=1.2.3.4:80",
            // A status that is not a number.
            "info\trequest http.status=abc endpoint=1.2.3.4:80 duration=1ms",
            "[2024-05-01T10:00:00.000Z] \"GET / HTTP/1.1\" 200 - via_upstream - \"-\" 0 0 1 1",
            "not-a-time info request http.status=200 duration=1ms",
            "info request =x ==y \"\" http.status=200 duration=1ms",
        ] {
            let r = parse(line);
            if line.starts_with("info request =x") {
                assert_eq!(r.and_then(|r| r.status()), Some(200));
            } else {
                assert!(r.is_none(), "{line:?}");
            }
        }
    }

    #[test]
    fn bounded_and_never_panics() {
        let long = format!(
            "info request http.status=200 duration=1ms error=\"{}",
            "é".repeat(10_000)
        );
        let r = parse(&long).unwrap();
        assert!(r.extra("error").unwrap().len() <= MAX_VALUE);
        let many: String = (0..500).map(|i| format!(" k{i}=v")).collect();
        let r = parse(&format!("info request http.status=200 duration=1ms{many}")).unwrap();
        assert!(r.extras().count() <= MAX_FIELDS);
        for cut in 0..LLMD_WORKSHOP.len() {
            if LLMD_WORKSHOP.is_char_boundary(cut) {
                let _ = parse(&LLMD_WORKSHOP[..cut]);
                let _ = parse(&LLMD_WORKSHOP[cut..]);
            }
        }
        let _ = parse("info request duration=99999999999999999999999ms http.status=1");
        let _ = parse("9999-12-31T23:59:59Z info request duration=1ms http.status=1");
        let _ = parse("0000-01-01T00:00:00Z info request duration=100000000000ms http.status=1");
    }
}
