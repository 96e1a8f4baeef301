//! Evaluating Istio AuthorizationPolicy rules against what an access-log line shows of a
//! request, to name the condition a denied request failed. Pure.
//!
//! Istio's semantics (AuthorizationPolicy reference, istio.io): a policy's rules are ORed; within
//! a rule `from`, `to` and `when` are ANDed; the entries of `from` (sources) and of `to`
//! (operations) are ORed; within one source or operation every field given is ANDed, and the
//! values of one field are ORed; `notX` fields match when none of their values does. Strings
//! match exactly, by prefix (`abc*`), by suffix (`*abc`) or by presence (`*`); hosts
//! case-insensitively. Paths also take the `{*}` (one segment) and `{**}` (any rest) templates.
//!
//! The log shows the method, path, Host, the listener's port, the client address and any
//! header the format logs; it never shows the peer's mTLS principal unless the format has
//! `%DOWNSTREAM_PEER_URI_SAN%`, nor a JWT's principal or claims. A condition on something the
//! line does not carry is reported as "not in the log format: cannot tell", never guessed.

use std::net::IpAddr;

use serde_json::Value;

use meshtrace_parsers::record::RawRecord;

use crate::model::strings;

/// Longest list of values read from one policy field (a policy is untrusted input).
const MAX_VALUES: usize = 256;

/// Most rules read from one policy.
const MAX_RULES: usize = 64;

/// What the evidence shows of a request, as AuthorizationPolicy conditions see it.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    /// `:method`.
    pub method: Option<String>,
    /// Path without the query string.
    pub path: Option<String>,
    /// `:authority` / Host.
    pub host: Option<String>,
    /// The port the proxy received the request on (the destination port of the rule).
    pub port: Option<u16>,
    /// The peer's mTLS principal (`cluster.local/ns/x/sa/y`), when logged.
    pub principal: Option<String>,
    /// The source namespace, when known (from the principal, or the calling pod).
    pub namespace: Option<(String, &'static str)>,
    /// The address of the direct peer (`ipBlocks`), when the log shows it.
    pub peer_ip: Option<IpAddr>,
    /// The original client address (`remoteIpBlocks`).
    pub remote_ip: Option<IpAddr>,
    /// Request headers the format logs: (lower-case name, value).
    pub headers: Vec<(String, String)>,
}

impl RequestFacts {
    /// The facts one access-log line carries. `source_namespace` is the namespace of the calling
    /// pod when the topology knows it and it runs a sidecar (its mTLS identity lives there).
    pub fn of(r: &RawRecord<'_>, source_namespace: Option<&str>) -> RequestFacts {
        let path = r
            .path()
            .map(|p| p.split(['?', '#']).next().unwrap_or(p).to_string());
        let remote = r.downstream_remote();
        let remote_ip = remote.as_ref().and_then(|a| a.ip());
        // A sidecar that trusted an X-Forwarded-For logs its last entry with port 0: not the
        // physical peer. A direct peer address, when logged, says.
        let direct = r
            .extra("DOWNSTREAM_DIRECT_REMOTE_ADDRESS")
            .and_then(meshtrace_parsers::address::parse_address)
            .and_then(|a| a.ip());
        let peer_ip = direct.or_else(|| {
            remote
                .as_ref()
                .filter(|a| a.port().is_some_and(|p| p != 0))
                .and_then(|a| a.ip())
        });
        let principal = r
            .extra("DOWNSTREAM_PEER_URI_SAN")
            .filter(|v| !v.is_empty() && *v != "-")
            .map(|v| v.trim_start_matches("spiffe://").to_string());
        let namespace = principal
            .as_deref()
            .and_then(|p| {
                let mut it = p.split('/');
                while let Some(part) = it.next() {
                    if part == "ns" {
                        return it
                            .next()
                            .map(|n| (n.to_string(), "from the peer certificate"));
                    }
                }
                None
            })
            .or_else(|| source_namespace.map(|n| (n.to_string(), "the calling pod's namespace")));
        let headers = r
            .extras()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("REQ(")?.strip_suffix(')')?;
                let name = name.split('?').next().unwrap_or(name);
                (!name.starts_with(':') && v != "-")
                    .then(|| (name.to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        RequestFacts {
            method: r.method().map(str::to_string),
            path,
            host: r.authority().map(str::to_string),
            port: r.downstream_local().and_then(|a| a.port()),
            principal,
            namespace,
            peer_ip,
            remote_ip,
            headers,
        }
    }
}

/// The outcome of checking one condition, one rule or one policy against the facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The request satisfies it.
    Match,
    /// The request does not: which condition, in words.
    Fail(String),
    /// The log does not show what it needs.
    CannotTell(String),
}

impl Check {
    /// AND: the first failure, else the first unknown, else a match.
    fn and(checks: impl IntoIterator<Item = Check>) -> Check {
        let mut unknown = None;
        for c in checks {
            match c {
                Check::Fail(_) => return c,
                Check::CannotTell(_) if unknown.is_none() => unknown = Some(c),
                _ => {}
            }
        }
        unknown.unwrap_or(Check::Match)
    }

    /// OR over alternatives: a match, else the first unknown, else the first failure.
    fn or(checks: impl IntoIterator<Item = Check>) -> Option<Check> {
        let mut unknown = None;
        let mut fail = None;
        for c in checks {
            match c {
                Check::Match => return Some(Check::Match),
                Check::CannotTell(_) if unknown.is_none() => unknown = Some(c),
                Check::Fail(_) if fail.is_none() => fail = Some(c),
                _ => {}
            }
        }
        unknown.or(fail)
    }
}

/// Istio's string match: exact, `prefix*`, `*suffix`, `*`.
fn string_matches(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    if p == "*" {
        return true;
    }
    if let Some(prefix) = p.strip_suffix('*') {
        return v.starts_with(prefix);
    }
    if let Some(suffix) = p.strip_prefix('*') {
        return v.ends_with(suffix);
    }
    p == v
}

/// A path pattern: Istio's string match, or a `{*}`/`{**}` template.
fn path_matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('{') {
        return string_matches(pattern, path, false);
    }
    let pat: Vec<&str> = pattern.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    for (i, p) in pat.iter().enumerate() {
        match *p {
            "{**}" => return segs.len() > i && i + 1 == pat.len(),
            "{*}" => {
                if segs.get(i).is_none_or(|s| s.is_empty()) {
                    return false;
                }
            }
            lit => {
                if segs.get(i) != Some(&lit) {
                    return false;
                }
            }
        }
    }
    segs.len() == pat.len()
}

/// A host pattern against a Host header, with or without its port.
fn host_matches(pattern: &str, host: &str) -> bool {
    let bare = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    string_matches(pattern, host, true) || string_matches(pattern, bare, true)
}

/// `ipBlocks` entry (`10.0.0.0/8` or an address) against an address.
fn ip_in_block(block: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match block.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (block, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

fn list(v: &[String]) -> String {
    let shown: Vec<String> = v.iter().take(8).map(|s| format!("{s:?}")).collect();
    let more = if v.len() > 8 {
        format!(", … {} more", v.len() - 8)
    } else {
        String::new()
    };
    format!("[{}{more}]", shown.join(", "))
}

/// One field (`field` and its `notField`) of a source or operation against a fact.
fn field(
    obj: &Value,
    name: &str,
    at: &str,
    fact: Option<&str>,
    missing: &str,
    matches: impl Fn(&str, &str) -> bool,
) -> Check {
    let mut checks = Vec::new();
    let not_name = format!("not{}{}", name[..1].to_ascii_uppercase(), &name[1..]);
    for (key, negated) in [(name, false), (not_name.as_str(), true)] {
        let mut vals = strings(obj.get(key));
        if vals.is_empty() {
            continue;
        }
        vals.truncate(MAX_VALUES);
        let Some(value) = fact else {
            checks.push(Check::CannotTell(format!(
                "{at}.{key} {}: {missing} is not in the log format: cannot tell",
                list(&vals)
            )));
            continue;
        };
        let hit = vals.iter().any(|p| matches(p, value));
        checks.push(match (hit, negated) {
            (true, false) | (false, true) => Check::Match,
            (false, false) => Check::Fail(format!(
                "{at}.{key} {} does not match {value:?}",
                list(&vals)
            )),
            (true, true) => Check::Fail(format!("{at}.{key} {} matches {value:?}", list(&vals))),
        });
    }
    Check::and(checks)
}

fn check_source(s: &Value, f: &RequestFacts) -> Check {
    let ns = f.namespace.as_ref().map(|(n, _)| n.as_str());
    let peer = f.peer_ip.map(|i| i.to_string());
    let remote = f.remote_ip.map(|i| i.to_string());
    Check::and([
        field(
            s,
            "principals",
            "from.source",
            f.principal.as_deref(),
            "the peer's mTLS principal (%DOWNSTREAM_PEER_URI_SAN%)",
            |p, v| string_matches(p, v, false),
        ),
        field(
            s,
            "namespaces",
            "from.source",
            ns,
            "the source namespace (the peer certificate, or a known calling pod)",
            |p, v| string_matches(p, v, false),
        ),
        field(
            s,
            "ipBlocks",
            "from.source",
            peer.as_deref(),
            "the direct peer's address (%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%)",
            |b, v| v.parse().is_ok_and(|ip| ip_in_block(b, ip)),
        ),
        field(
            s,
            "remoteIpBlocks",
            "from.source",
            remote.as_deref(),
            "the client address (%DOWNSTREAM_REMOTE_ADDRESS%)",
            |b, v| v.parse().is_ok_and(|ip| ip_in_block(b, ip)),
        ),
        field(
            s,
            "requestPrincipals",
            "from.source",
            None,
            "the JWT principal (iss/sub)",
            |_, _| false,
        ),
    ])
}

fn check_operation(o: &Value, f: &RequestFacts) -> Check {
    let port = f.port.map(|p| p.to_string());
    Check::and([
        field(
            o,
            "hosts",
            "to.operation",
            f.host.as_deref(),
            "the Host (%REQ(:AUTHORITY)%)",
            host_matches,
        ),
        field(
            o,
            "ports",
            "to.operation",
            port.as_deref(),
            "the listener port (%DOWNSTREAM_LOCAL_ADDRESS%)",
            |p, v| p == v,
        ),
        field(
            o,
            "methods",
            "to.operation",
            f.method.as_deref(),
            "the method",
            |p, v| string_matches(p, v, false),
        ),
        field(
            o,
            "paths",
            "to.operation",
            f.path.as_deref(),
            "the path",
            path_matches,
        ),
    ])
}

/// A `when` condition.
fn check_condition(c: &Value, f: &RequestFacts) -> Check {
    let key = c.get("key").and_then(Value::as_str).unwrap_or("");
    let header = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
        .map(str::to_ascii_lowercase);
    let (fact, missing): (Option<String>, String) = if let Some(h) = &header {
        (
            f.headers
                .iter()
                .find(|(n, _)| n == h)
                .map(|(_, v)| v.clone()),
            format!("header {h} (%REQ({h})%)"),
        )
    } else {
        match key {
            "source.ip" => (
                f.peer_ip.map(|i| i.to_string()),
                "the direct peer's address".into(),
            ),
            "remote.ip" => (
                f.remote_ip.map(|i| i.to_string()),
                "the client address".into(),
            ),
            "source.namespace" => (
                f.namespace.as_ref().map(|(n, _)| n.clone()),
                "the source namespace".into(),
            ),
            "source.principal" => (f.principal.clone(), "the peer's mTLS principal".into()),
            "destination.port" => (f.port.map(|p| p.to_string()), "the listener port".into()),
            _ => (None, format!("`{key}`")),
        }
    };
    let is_ip = matches!(key, "source.ip" | "remote.ip" | "destination.ip");
    let at = format!("when[{key}]");
    let mut obj = serde_json::Map::new();
    for k in ["values", "notValues"] {
        if let Some(v) = c.get(k) {
            obj.insert(k.to_string(), v.clone());
        }
    }
    field(
        &Value::Object(obj),
        "values",
        &at,
        fact.as_deref(),
        &missing,
        |p, v| {
            if is_ip {
                v.parse().is_ok_and(|ip| ip_in_block(p, ip))
            } else {
                string_matches(p, v, false)
            }
        },
    )
}

/// One rule: `from` (sources ORed) AND `to` (operations ORed) AND every `when`.
pub fn check_rule(rule: &Value, f: &RequestFacts) -> Check {
    let arr = |k: &str| -> Vec<Value> {
        rule.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().take(MAX_VALUES).cloned().collect())
            .unwrap_or_default()
    };
    let from = Check::or(
        arr("from")
            .iter()
            .map(|s| check_source(s.get("source").unwrap_or(&Value::Null), f)),
    );
    let to = Check::or(
        arr("to")
            .iter()
            .map(|o| check_operation(o.get("operation").unwrap_or(&Value::Null), f)),
    );
    let when = arr("when")
        .iter()
        .map(|c| check_condition(c, f))
        .collect::<Vec<_>>();
    Check::and(from.into_iter().chain(to).chain(when))
}

/// For each rule of an ALLOW policy the request matched none of, the first condition it
/// failed (or the one the log cannot show), as `rule N: …` lines. An ALLOW policy without rules
/// allows nothing.
pub fn why_no_rule_matched(spec: &Value, f: &RequestFacts) -> Vec<String> {
    let Some(rules) = spec.get("rules").and_then(Value::as_array) else {
        return vec!["it has no rules, so it allows nothing".into()];
    };
    if rules.is_empty() {
        return vec!["it has no rules, so it allows nothing".into()];
    }
    rules
        .iter()
        .take(MAX_RULES)
        .enumerate()
        .map(|(i, r)| match check_rule(r, f) {
            Check::Fail(why) => format!("rule {i}: {why}"),
            Check::CannotTell(why) => format!("rule {i}: {why}"),
            Check::Match => format!(
                "rule {i}: every condition the log shows matches; the denial then rests on what it does not show (the principal, a JWT) or on a path Envoy normalised"
            ),
        })
        .collect()
}

/// The fix for a DENY policy that matched: narrow or remove it (an ALLOW rule cannot win over a
/// DENY).
pub fn deny_fix(namespace: &str, name: &str, rule: Option<u32>) -> String {
    format!(
        "AuthorizationPolicy {namespace}/{name} is a DENY policy and its rule{} matched this request. A DENY is evaluated before any ALLOW, so adding an ALLOW rule cannot admit the request: narrow that rule so this caller, path or header no longer matches (e.g. a `notPaths`/`notPrincipals` exception, or tighter `paths`/`hosts`), or remove it if it is no longer wanted — `kubectl edit authorizationpolicy -n {namespace} {name}`.",
        rule.map(|n| format!(" {n}")).unwrap_or_default()
    )
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

    /// Seed 003's denied request: POST /v1/models/bert-emotion-model:predict at the gateway's
    /// :8080 from 127.0.0.1 (port-forward), Host bert-model.default.example.com.
    const SEED003: &str = r#"[2024-04-25T20:21:43.725Z] "POST /v1/models/bert-emotion-model:predict HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "10.244.0.6" "curl/8.4.0" "211ebf7c-1bc2-4008-aa50-9730fa6300dc" "bert-model.default.example.com" "-" outbound|80||knative-local-gateway.istio-system.svc.cluster.local - 127.0.0.1:8080 127.0.0.1:44576 - -"#;

    #[test]
    fn first_failed_condition_per_rule() {
        let f = RequestFacts::of(&rec(SEED003), None);
        assert_eq!(
            f.path.as_deref(),
            Some("/v1/models/bert-emotion-model:predict")
        );
        assert_eq!(f.port, Some(8080));
        let rows: Vec<(Value, Check)> = vec![
            (
                json!({"to":[{"operation":{"paths":["/v2/*"]}}]}),
                Check::Fail(
                    "to.operation.paths [\"/v2/*\"] does not match \"/v1/models/bert-emotion-model:predict\"".into(),
                ),
            ),
            (
                json!({"to":[{"operation":{"methods":["GET"],"paths":["/v1/*"]}}]}),
                Check::Fail("to.operation.methods [\"GET\"] does not match \"POST\"".into()),
            ),
            // Operations OR: the second one matches.
            (
                json!({"to":[{"operation":{"methods":["GET"]}},{"operation":{"paths":["*:predict"]}}]}),
                Check::Match,
            ),
            (
                json!({"to":[{"operation":{"notPaths":["/v1/models/*"]}}]}),
                Check::Fail(
                    "to.operation.notPaths [\"/v1/models/*\"] matches \"/v1/models/bert-emotion-model:predict\"".into(),
                ),
            ),
            (
                json!({"to":[{"operation":{"hosts":["*.example.com"],"ports":["8443"]}}]}),
                Check::Fail("to.operation.ports [\"8443\"] does not match \"8080\"".into()),
            ),
            (
                json!({"to":[{"operation":{"paths":["/v1/models/{*}"]}}]}),
                Check::Match,
            ),
            // A failing condition is named before one the log cannot show.
            (
                json!({"from":[{"source":{"principals":["cluster.local/ns/a/sa/b"]}}],"to":[{"operation":{"methods":["GET"]}}]}),
                Check::Fail("to.operation.methods [\"GET\"] does not match \"POST\"".into()),
            ),
            (
                json!({"from":[{"source":{"principals":["cluster.local/ns/a/sa/b"]}}]}),
                Check::CannotTell(
                    "from.source.principals [\"cluster.local/ns/a/sa/b\"]: the peer's mTLS principal (%DOWNSTREAM_PEER_URI_SAN%) is not in the log format: cannot tell".into(),
                ),
            ),
            (
                json!({"from":[{"source":{"remoteIpBlocks":["10.0.0.0/8"]}}]}),
                Check::Fail(
                    "from.source.remoteIpBlocks [\"10.0.0.0/8\"] does not match \"127.0.0.1\"".into(),
                ),
            ),
            (
                json!({"when":[{"key":"request.headers[x-api-key]","values":["*"]}]}),
                Check::CannotTell(
                    "when[request.headers[x-api-key]].values [\"*\"]: header x-api-key (%REQ(x-api-key)%) is not in the log format: cannot tell".into(),
                ),
            ),
        ];
        for (rule, want) in rows {
            assert_eq!(check_rule(&rule, &f), want, "{rule}");
        }
    }

    #[test]
    fn headers_logged_and_namespaces_known_are_checked() {
        let mut f = RequestFacts::of(&rec(SEED003), Some("team-a"));
        f.headers.push(("x-tenant".into(), "blue".into()));
        let rule = json!({"when":[{"key":"request.headers[X-Tenant]","values":["green"]}]});
        assert_eq!(
            check_rule(&rule, &f),
            Check::Fail(
                "when[request.headers[X-Tenant]].values [\"green\"] does not match \"blue\"".into()
            )
        );
        let rule = json!({"from":[{"source":{"namespaces":["team-b"]}}]});
        assert!(matches!(check_rule(&rule, &f), Check::Fail(w) if w.contains("\"team-a\"")));
        let lines = why_no_rule_matched(
            &json!({"rules":[rule, {"to":[{"operation":{"methods":["POST"]}}]}]}),
            &f,
        );
        assert!(
            lines[0].starts_with("rule 0: from.source.namespaces"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("every condition the log shows matches"),
            "{lines:?}"
        );
        assert_eq!(
            why_no_rule_matched(&json!({}), &f),
            ["it has no rules, so it allows nothing"]
        );
    }

    #[test]
    fn matching_primitives() {
        assert!(string_matches("/v1/*", "/v1/models", false));
        assert!(string_matches("*.example.com", "A.Example.com", true));
        assert!(!string_matches("/v1", "/v1/models", false));
        assert!(host_matches(
            "bert-model.default.example.com",
            "bert-model.default.example.com:80"
        ));
        assert!(path_matches("/v1/{**}", "/v1/models/m:predict"));
        assert!(!path_matches("/v1/{*}", "/v1/models/m"));
        assert!(ip_in_block("10.244.0.0/16", "10.244.3.21".parse().unwrap()));
        assert!(!ip_in_block(
            "10.244.0.0/16",
            "10.245.3.21".parse().unwrap()
        ));
        assert!(ip_in_block("127.0.0.1", "127.0.0.1".parse().unwrap()));
        assert!(!ip_in_block("garbage", "127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn deny_fix_never_says_add_a_rule() {
        let fix = deny_fix("ns", "deny-admin", Some(0));
        assert!(fix.contains("narrow") && fix.contains("remove"), "{fix}");
        assert!(
            fix.contains("ns/deny-admin") && fix.contains("rule 0"),
            "{fix}"
        );
        assert!(!fix.to_lowercase().contains("add a rule"), "{fix}");
    }
}
