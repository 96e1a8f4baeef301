//! Reading a JSON access log given without `--log-format` by the names of its keys.
//!
//! A custom `json_format` names its keys freely (`resp_flags`, `req_path`, `status`,
//! `x_request_id`, `requestId`…). When neither Istio's nor Envoy Gateway's key set fits a line,
//! its keys are looked up in [`JSON_KEY_VOCABULARY`](crate::builtins::JSON_KEY_VOCABULARY)
//! after normalising them. The line counts as an access log only on enough evidence: a key with
//! a numeric response code, at least [`MIN_FIELDS`] distinct fields, and at least one field
//! only a proxy logs (flags, details, upstream host or cluster…), with the flags, when present,
//! valid Envoy flags. One key never decides. The mapping used travels with every record as a
//! note, so the user sees what was assumed.

use std::sync::Arc;

use super::{JsonFormat, JsonKey, JsonProbe, code_key_of, json_key};
use crate::builtins::JSON_KEY_VOCABULARY;
use crate::flags::parse_response_flags;
use crate::json::scan_object;
use crate::slot::Slot;

/// Fewest distinct fields (response code included) a line must carry to be read by key names.
pub(super) const MIN_FIELDS: usize = 4;

/// Longest key normalised; longer keys are never in the vocabulary.
const MAX_KEY_LEN: usize = 64;

/// Fields only a proxy's access log has: one must be among the keys read.
const PROXY_FIELDS: &[Slot] = &[
    Slot::ResponseFlags,
    Slot::ResponseCodeDetails,
    Slot::ConnectionTerminationDetails,
    Slot::UpstreamTransportFailureReason,
    Slot::UpstreamHost,
    Slot::UpstreamCluster,
    Slot::UpstreamServiceTime,
    Slot::UpstreamLocalAddress,
    Slot::RouteName,
];

/// Name of the format of records read this way.
pub const FORMAT_NAME: &str = "json-keys-by-name";

/// `requestId`, `Request-ID`, `@timestamp`, `resp.flags` → `request_id`, `request_id`,
/// `timestamp`, `resp_flags`.
pub(super) fn normalise(key: &str) -> Option<String> {
    if key.len() > MAX_KEY_LEN {
        return None;
    }
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    Some(out)
}

/// A JSON format inferred from one line's key names, or `None` when the keys do not say
/// enough (see the module documentation).
pub(super) fn infer(line: &str) -> Option<JsonFormat> {
    let mut keys: Vec<JsonKey> = Vec::new();
    let mut claimed = [false; Slot::COUNT];
    let mut mapping: Vec<String> = Vec::new();
    let mut unread: Vec<String> = Vec::new();
    let mut code_ok = false;
    let mut flags_ok = true;
    scan_object(line, |k, v| {
        let op = normalise(&k).and_then(|n| {
            JSON_KEY_VOCABULARY
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, op)| *op)
        });
        let Some(op) = op else {
            unread.push(k.into_owned());
            return;
        };
        let jk = json_key(&k, op, false);
        let Some(slot) = jk.slot.filter(|s| !claimed[*s as usize]) else {
            unread.push(k.into_owned());
            return;
        };
        let text = v.into_text();
        match slot {
            Slot::ResponseCode => {
                code_ok = text
                    .as_deref()
                    .and_then(|t| t.parse::<u16>().ok())
                    .is_some_and(|c| c < 1000);
            }
            Slot::ResponseFlags => {
                flags_ok = text
                    .as_deref()
                    .is_none_or(|t| t == "-" || t.is_empty() || parse_response_flags(t).is_ok());
            }
            _ => {}
        }
        claimed[slot as usize] = true;
        mapping.push(format!("{k} → %{op}%"));
        keys.push(jk);
    })
    .ok()?;
    let proxy_field = PROXY_FIELDS.iter().any(|s| claimed[*s as usize]);
    if !code_ok || !flags_ok || !proxy_field || keys.len() < MIN_FIELDS {
        return None;
    }
    let mut note = format!(
        "JSON keys read by their names (no --log-format given): {}",
        mapping.join(", ")
    );
    if !unread.is_empty() {
        note.push_str(&format!("; kept as text: {}", super::list_keys(&unread)));
    }
    note.push_str(
        ". If a key means something else, pass the json_format mapping: --log-format '{\"<key>\":\"%OPERATOR%\",...}'",
    );
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    Some(JsonFormat {
        name: Arc::from(FORMAT_NAME),
        probe: JsonProbe::of(&keys),
        code_key: code_key_of(&keys),
        keys,
        alt_name: None,
        note: Some(Arc::from(note)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_normalise() {
        for (k, want) in [
            ("requestId", "request_id"),
            ("x-request-id", "x_request_id"),
            ("@timestamp", "timestamp"),
            ("resp.flags", "resp_flags"),
            ("Duration_MS", "duration_ms"),
            ("upstreamServiceTime", "upstream_service_time"),
            ("HTTPStatus", "httpstatus"),
        ] {
            assert_eq!(normalise(k).as_deref(), Some(want), "{k}");
        }
        assert_eq!(normalise(&"k".repeat(65)), None);
    }

    #[test]
    fn enough_evidence_or_nothing() {
        // (line, read?) — never from one key; an app's own JSON request log (no proxy field) is
        // not read as a proxy's; invalid flags are not flags.
        let rows = [
            (
                r#"{"ts":"2024-05-01T10:00:00Z","status":503,"resp_flags":"UF,URX","req_path":"/v1/x","upstream":"10.0.0.9:8080","duration_ms":3}"#,
                true,
            ),
            (r#"{"status":503,"resp_flags":"UF"}"#, false),
            (
                r#"{"status":503,"method":"GET","path":"/x","duration_ms":3,"user_agent":"curl"}"#,
                false,
            ),
            (
                r#"{"status":"OK","resp_flags":"UF","req_path":"/x","upstream":"10.0.0.9:8080"}"#,
                false,
            ),
            (
                r#"{"status":503,"flags":"debug","req_path":"/x","upstream":"10.0.0.9:8080"}"#,
                false,
            ),
            (
                r#"{"level":"info","ts":1714557600.1,"msg":"starting","method":"GET","code":200}"#,
                false,
            ),
        ];
        for (line, read) in rows {
            assert_eq!(infer(line).is_some(), read, "{line}");
        }
    }
}
