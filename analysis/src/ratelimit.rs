//! Rate limits behind a 429 or an `RLSE`: which kind answered, the EnvoyFilter that configures
//! it, the descriptors this request produced and the limit that applies. Pure.
//!
//! Envoy has three distinct answers (Envoy docs: HTTP rate limit filter, local rate limit
//! filter, access-log response flags):
//! - **local rate limit** — the proxy's own token bucket (`envoy.filters.http.local_ratelimit`)
//!   is empty: 429, flag `RL`, details `local_rate_limited`, header `x-local-rate-limit` if
//!   configured;
//! - **global rate limit** — the rate limit service answered OVER_LIMIT for the descriptors
//!   built from the route's `rate_limits` actions: 429, flag `RL`, details
//!   `request_rate_limited`;
//! - **rate limit service error** — the service could not be asked (unreachable, timeout, gRPC
//!   error) and `failure_mode_deny: true`: 500, flag `RLSE`, details `rate_limiter_error`. With
//!   `failure_mode_deny: false` (the default) the request passes and nothing is logged.

use serde_json::Value;

use meshtrace_parsers::flags::ResponseFlag as F;
use meshtrace_parsers::record::RawRecord;

use crate::model::Cited;
use crate::model::Object;

/// Most `rate_limits` entries, actions and descriptors read from one object.
const MAX_ITEMS: usize = 64;

/// Deepest descriptor tree walked in a ratelimit configuration.
const MAX_DEPTH: usize = 8;

/// Which rate limit answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The proxy's local token bucket.
    Local,
    /// The global rate limit service said OVER_LIMIT.
    Global,
    /// RL without details: local or global, the format cannot say.
    EitherLimit,
    /// The rate limit service failed and `failure_mode_deny` rejected the request.
    ServiceError,
}

impl Kind {
    /// The kind a record shows, if it is a rate-limit answer at all.
    pub fn of(r: &RawRecord<'_>) -> Option<Kind> {
        let base = r.details().map(|d| d.base).unwrap_or("");
        let flags = r.flags();
        let local_header = r
            .extras()
            .any(|(k, v)| k.eq_ignore_ascii_case("RESP(X-LOCAL-RATE-LIMIT)") && v == "true");
        if base == "rate_limiter_error" || flags.contains(F::RateLimitServiceError) {
            return Some(Kind::ServiceError);
        }
        if base == "local_rate_limited" || local_header {
            return Some(Kind::Local);
        }
        if base == "request_rate_limited" {
            return Some(Kind::Global);
        }
        flags.contains(F::RateLimited).then_some(Kind::EitherLimit)
    }

    /// What happened, in words.
    pub fn summary(self) -> &'static str {
        match self {
            Kind::Local => {
                "the local rate limit filter (envoy.filters.http.local_ratelimit) of this proxy had no token left in its bucket: a per-proxy limit, counted by each replica separately"
            }
            Kind::Global => {
                "the global rate limit service answered OVER_LIMIT for the descriptors this request produced (envoy.filters.http.ratelimit, the route's rate_limits actions): a limit shared by every replica"
            }
            Kind::EitherLimit => {
                "a rate limit rejected the request (flag RL); without %RESPONSE_CODE_DETAILS% the line cannot say whether the local token bucket (`local_rate_limited`) or the global service (`request_rate_limited`) did"
            }
            Kind::ServiceError => {
                "the proxy could not get an answer from the rate limit service (unreachable, timed out or a gRPC error) and the filter's failure_mode_deny: true rejected the request — this is not a limit being reached (Envoy answers 500 here, not 429)"
            }
        }
    }

    /// What to do.
    pub fn fix(self) -> &'static str {
        match self {
            Kind::Local => {
                "Raise the token bucket of the local_ratelimit filter (max_tokens, tokens_per_fill, fill_interval in the EnvoyFilter that inserts the filter), scope it to the routes that need it (per-route typed_per_filter_config or descriptors), or slow the client; remember each proxy replica has its own bucket."
            }
            Kind::Global => {
                "Raise requests_per_unit of the descriptor that matched in the rate limit service's configuration (its ConfigMap's config.yaml, cited with the configuration when the evidence has it), make the rate_limits actions produce a narrower descriptor for this caller, or slow the client."
            }
            Kind::EitherLimit => {
                "Add %RESPONSE_CODE_DETAILS% to the access-log format to tell the local and the global limit apart; then raise the local token bucket or the service's descriptor limit."
            }
            Kind::ServiceError => {
                "Make the rate limit service answer: its pods and logs, the rate_limit_service cluster name in the EnvoyFilter (it must exist in the proxy: `istioctl proxy-config cluster <pod>`), the filter's timeout; or set failure_mode_deny: false so requests pass (unlimited) while the service is down."
            }
        }
    }
}

/// A `name: envoy.filters.http.(local_)ratelimit` filter's config, wherever an EnvoyFilter
/// patch puts it (`typed_config`, or a `TypedStruct`'s `value`).
fn filter_config(v: &Value) -> Option<(&str, &Value)> {
    let name = v.get("name").and_then(Value::as_str)?;
    if !matches!(
        name,
        "envoy.filters.http.ratelimit" | "envoy.filters.http.local_ratelimit"
    ) {
        return None;
    }
    let tc = v.get("typed_config")?;
    Some((name, tc.get("value").unwrap_or(tc)))
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "?".into(),
    }
}

/// The request's value for a `request_headers` action.
fn header_value(r: &RawRecord<'_>, header: &str) -> Option<String> {
    let h = header.to_ascii_lowercase();
    match h.as_str() {
        ":path" => r.path().map(|p| p.to_string()),
        ":method" => r.method().map(str::to_string),
        ":authority" | "host" => r.authority().map(str::to_string),
        "user-agent" => r.user_agent().map(str::to_string),
        "x-request-id" => r.request_id().map(str::to_string),
        _ => r.extras().find_map(|(k, v)| {
            let name = k.strip_prefix("REQ(")?.strip_suffix(')')?;
            (name.eq_ignore_ascii_case(&h) && v != "-").then(|| v.to_string())
        }),
    }
}

/// One descriptor entry: (key, value), or why the action produced none from the evidence.
type Entry = Result<(String, String), String>;

/// The descriptor entries one `actions` list produces for this request.
fn descriptor(actions: &[Value], r: &RawRecord<'_>) -> Vec<Entry> {
    actions
        .iter()
        .take(MAX_ITEMS)
        .map(|a| {
            if let Some(h) = a.get("request_headers") {
                let name = s(h, "header_name").unwrap_or("?");
                let key = s(h, "descriptor_key").unwrap_or(name).to_string();
                return header_value(r, name)
                    .map(|v| (key.clone(), v))
                    .ok_or(format!("{key} from header {name} (not in the log format)"));
            }
            if let Some(g) = a.get("generic_key") {
                let key = s(g, "descriptor_key").unwrap_or("generic_key").to_string();
                return Ok((key, text(g.get("descriptor_value"))));
            }
            if a.get("remote_address").is_some() {
                return r
                    .downstream_remote()
                    .and_then(|x| x.ip())
                    .map(|ip| ("remote_address".to_string(), ip.to_string()))
                    .ok_or_else(|| "remote_address (not in the log format)".to_string());
            }
            if a.get("destination_cluster").is_some() {
                return r
                    .upstream_cluster()
                    .map(|c| ("destination_cluster".to_string(), c.to_string()))
                    .ok_or_else(|| "destination_cluster (not in the log format)".to_string());
            }
            if let Some(m) = a.get("header_value_match") {
                let key = s(m, "descriptor_key").unwrap_or("header_match").to_string();
                return Err(format!(
                    "{key}={} if its header matchers match (not evaluated)",
                    text(m.get("descriptor_value"))
                ));
            }
            Err("an action meshtrace does not evaluate".into())
        })
        .collect()
}

/// The limit the service's descriptor tree sets for a list of entries: the node the whole
/// list leads to (exact value first, then the key alone), with its `rate_limit`.
fn limit_for(descriptors: &Value, entries: &[(String, String)]) -> Option<String> {
    let mut level = descriptors.as_array()?;
    let mut limit = None;
    for (depth, (k, v)) in entries.iter().enumerate() {
        if depth >= MAX_DEPTH {
            return None;
        }
        let node = level
            .iter()
            .take(MAX_ITEMS)
            .find(|d| s(d, "key") == Some(k) && s(d, "value") == Some(v))
            .or_else(|| {
                level
                    .iter()
                    .take(MAX_ITEMS)
                    .find(|d| s(d, "key") == Some(k) && d.get("value").is_none())
            })?;
        limit = node.get("rate_limit").map(|rl| {
            if rl.get("unlimited").and_then(Value::as_bool) == Some(true) {
                "unlimited".to_string()
            } else {
                format!(
                    "{} per {}",
                    text(rl.get("requests_per_unit")),
                    text(rl.get("unit")).to_ascii_lowercase()
                )
            }
        });
        level = match node.get("descriptors").and_then(Value::as_array) {
            Some(l) => l,
            None if depth + 1 < entries.len() => return None,
            None => level,
        };
    }
    limit
}

/// The rate-limit service configurations in ConfigMaps: (ConfigMap, parsed config).
fn service_configs(objects: &[Object]) -> Vec<(&Object, Value)> {
    let mut out = Vec::new();
    for cm in objects.iter().filter(|o| o.kind == "ConfigMap") {
        let Some(data) = cm.value.get("data").and_then(Value::as_object) else {
            continue;
        };
        for v in data.values().filter_map(Value::as_str).take(MAX_ITEMS) {
            if !(v.contains("domain") && v.contains("descriptors")) {
                continue;
            }
            if let Some(parsed) = crate::document::embedded_yaml(v)
                && parsed.get("domain").is_some()
            {
                out.push((cm, parsed));
            }
        }
    }
    out
}

/// The EnvoyFilters that configure rate limiting on a pod (`applies` says which apply), and
/// what they mean for this request: the filter and its settings, the `rate_limits` descriptors
/// this request produced and the limit the service's ConfigMap sets for them.
pub fn cite(objects: &[Object], filters: &[&Object], r: &RawRecord<'_>, pod: &str) -> Vec<Cited> {
    let kind = Kind::of(r);
    let mut out = Vec::new();
    let mut domains: Vec<String> = Vec::new();
    let mut entry_lists: Vec<Vec<Entry>> = Vec::new();
    for ef in filters {
        let mut notes: Vec<String> = Vec::new();
        for p in ef
            .spec()
            .get("configPatches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(MAX_ITEMS)
        {
            let value = p.get("patch").and_then(|x| x.get("value"));
            if let Some((name, cfg)) = value.and_then(filter_config) {
                if name.ends_with("local_ratelimit") {
                    let tb = cfg.get("token_bucket").unwrap_or(&Value::Null);
                    notes.push(format!(
                        "local rate limit on {pod}: token bucket of {} tokens, {} added every {}",
                        text(tb.get("max_tokens")),
                        text(tb.get("tokens_per_fill").or(tb.get("max_tokens"))),
                        text(tb.get("fill_interval"))
                    ));
                } else {
                    let domain = text(cfg.get("domain"));
                    let deny = cfg
                        .get("failure_mode_deny")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let cluster = cfg
                        .pointer("/rate_limit_service/grpc_service/envoy_grpc/cluster_name")
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    notes.push(format!(
                        "global rate limit on {pod}: domain {domain}, service cluster {cluster}, failure_mode_deny {deny}{}",
                        if deny {
                            " (a service error rejects requests with 500 RLSE)"
                        } else {
                            " (a service error lets requests through, unlimited)"
                        }
                    ));
                    domains.push(domain);
                }
            }
            if let Some(rls) = value
                .and_then(|v| v.get("rate_limits"))
                .and_then(Value::as_array)
            {
                for rl in rls.iter().take(MAX_ITEMS) {
                    let actions: Vec<Value> = rl
                        .get("actions")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let entries = descriptor(&actions, r);
                    let shown: Vec<String> = entries
                        .iter()
                        .map(|e| match e {
                            Ok((k, v)) => format!("{k}={v:?}"),
                            Err(why) => why.clone(),
                        })
                        .collect();
                    notes.push(format!(
                        "rate_limits actions give this request the descriptor [{}]",
                        shown.join(", ")
                    ));
                    entry_lists.push(entries);
                }
            }
        }
        if !notes.is_empty() {
            out.push(Cited {
                object: ef.reference(),
                why: notes.join("; "),
            });
        }
    }
    if kind == Some(Kind::Local) {
        return out;
    }
    for (cm, cfg) in service_configs(objects) {
        let domain = text(cfg.get("domain"));
        if !domains.is_empty() && !domains.contains(&domain) {
            continue;
        }
        let mut found = Vec::new();
        for entries in &entry_lists {
            let Some(full) = entries
                .iter()
                .map(|e| e.as_ref().ok().cloned())
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let shown: Vec<String> = full.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            found.push(
                match cfg.get("descriptors").and_then(|d| limit_for(d, &full)) {
                    Some(l) => format!("[{}] → {l}", shown.join(", ")),
                    None => format!("[{}] → no limit in this configuration", shown.join(", ")),
                },
            );
        }
        out.push(Cited {
            object: cm.reference(),
            why: if found.is_empty() {
                format!("rate limit service configuration for domain {domain}")
            } else {
                format!(
                    "rate limit service configuration, domain {domain}: {}",
                    found.join("; ")
                )
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrace_parsers::detect::{LineOutcome, LineParser};
    use serde_json::json;

    fn rec(l: &str) -> RawRecord<'static> {
        match LineParser::auto().parse(l) {
            LineOutcome::Record(r) => r.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    fn line(code: &str, flags: &str, details: &str) -> String {
        format!(
            "[2024-04-25T20:21:43.725Z] \"POST /v1/models/bert-emotion-model:predict HTTP/1.1\" {code} {flags} {details} - \"-\" 0 0 0 - \"10.244.0.6\" \"curl/8.4.0\" \"211ebf7c-1bc2-4008-aa50-9730fa6300dc\" \"bert-model.default.example.com\" \"-\" outbound|80||knative-local-gateway.istio-system.svc.cluster.local - 127.0.0.1:8080 127.0.0.1:44576 - -"
        )
    }

    #[test]
    fn three_kinds_from_flags_and_details() {
        let rows = [
            ("429", "RL", "local_rate_limited", Some(Kind::Local)),
            ("429", "RL", "request_rate_limited", Some(Kind::Global)),
            ("429", "RL", "-", Some(Kind::EitherLimit)),
            (
                "500",
                "RLSE",
                "rate_limiter_error",
                Some(Kind::ServiceError),
            ),
            ("500", "-", "rate_limiter_error", Some(Kind::ServiceError)),
            ("503", "UH", "no_healthy_upstream", None),
        ];
        for (code, flags, details, want) in rows {
            assert_eq!(
                Kind::of(&rec(&line(code, flags, details))),
                want,
                "{code} {flags}"
            );
        }
        assert!(
            Kind::ServiceError
                .summary()
                .contains("not a limit being reached")
        );
        assert!(
            Kind::ServiceError
                .fix()
                .contains("failure_mode_deny: false")
        );
        assert!(Kind::Local.fix().contains("token bucket"));
        assert!(Kind::Global.fix().contains("requests_per_unit"));
    }

    fn object(kind: &str, ns: &str, name: &str, v: Value) -> Object {
        let mut v = v;
        v["kind"] = json!(kind);
        v["apiVersion"] = json!("v1");
        v["metadata"] = json!({"name": name, "namespace": ns});
        Object::from_value(v, format!("{name}.yaml")).unwrap()
    }

    #[test]
    fn descriptors_and_the_limit_that_applies() {
        // The kind-429-ratelimit example's shape (Istio's rate-limit task).
        let filter = object(
            "EnvoyFilter",
            "istio-system",
            "filter-ratelimit",
            json!({"spec": {"configPatches": [
                {"applyTo": "HTTP_FILTER", "patch": {"operation": "INSERT_BEFORE", "value": {
                    "name": "envoy.filters.http.ratelimit",
                    "typed_config": {"domain": "ratelimit", "failure_mode_deny": true,
                        "rate_limit_service": {"grpc_service": {"envoy_grpc": {"cluster_name": "outbound|8081||ratelimit.default.svc.cluster.local"}}}}}}},
                {"applyTo": "VIRTUAL_HOST", "patch": {"operation": "MERGE", "value": {"rate_limits": [
                    {"actions": [{"request_headers": {"header_name": ":path", "descriptor_key": "path"}},
                                 {"request_headers": {"header_name": "x-api-key", "descriptor_key": "x-api-key"}}]},
                    {"actions": [{"request_headers": {"header_name": ":path", "descriptor_key": "path"}}]}
                ]}}}
            ]}}),
        );
        let cm = object(
            "ConfigMap",
            "default",
            "ratelimit-config",
            json!({"data": {"config.yaml": "domain: ratelimit\ndescriptors:\n  - key: \"path\"\n    value: \"/v1/models/bert-emotion-model:predict\"\n    rate_limit:\n      unit: minute\n      requests_per_unit: 2\n    descriptors:\n    - key: \"x-api-key\"\n      rate_limit:\n        unit: minute\n        requests_per_unit: 5\n  - key: \"path\"\n    rate_limit:\n      unit: minute\n      requests_per_unit: 10\n"}}),
        );
        let objects = vec![filter.clone(), cm];
        let r = rec(&line("429", "RL", "request_rate_limited"));
        let c = cite(&objects, &[&filter], &r, "istio-system/gw");
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(
            c[0].why.contains("domain ratelimit") && c[0].why.contains("failure_mode_deny true"),
            "{}",
            c[0].why
        );
        assert!(
            c[0].why
                .contains("x-api-key from header x-api-key (not in the log format)"),
            "{}",
            c[0].why
        );
        assert!(
            c[1].why
                .contains("[path=\"/v1/models/bert-emotion-model:predict\"] → 2 per minute"),
            "{}",
            c[1].why
        );
        // Another path falls to the key-only descriptor.
        let tree = serde_yaml_ng::from_str::<Value>("descriptors:\n- key: path\n  value: /a\n  rate_limit: {unit: second, requests_per_unit: 1}\n- key: path\n  rate_limit: {unit: MINUTE, requests_per_unit: 10}\n").unwrap();
        let d = &tree["descriptors"];
        assert_eq!(
            limit_for(d, &[("path".into(), "/b".into())]).as_deref(),
            Some("10 per minute")
        );
        assert_eq!(
            limit_for(d, &[("path".into(), "/a".into())]).as_deref(),
            Some("1 per second")
        );
        assert_eq!(limit_for(d, &[("user".into(), "x".into())]), None);
    }

    #[test]
    fn local_token_bucket_in_a_typed_struct() {
        let filter = object(
            "EnvoyFilter",
            "aiproject",
            "predictor-local-ratelimit",
            json!({"spec": {"configPatches": [{"applyTo": "HTTP_FILTER", "patch": {"value": {
                "name": "envoy.filters.http.local_ratelimit",
                "typed_config": {"@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                    "value": {"token_bucket": {"max_tokens": 4, "tokens_per_fill": 4, "fill_interval": "60s"}}}}}}]}}),
        );
        let r = rec(&line("429", "RL", "local_rate_limited"));
        let c = cite(std::slice::from_ref(&filter), &[&filter], &r, "aiproject/p");
        assert_eq!(c.len(), 1);
        assert!(
            c[0].why
                .contains("token bucket of 4 tokens, 4 added every 60s"),
            "{}",
            c[0].why
        );
    }
}
