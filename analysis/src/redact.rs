//! Keeping secrets out of every output: the one masking policy (secret headers and keys by
//! name, secret query parameters, JWTs, `Bearer`/`Basic` credentials), always applied, and
//! `--redact` replacing IP addresses (v4 and v6), pod names, hostnames and FQDNs with stable
//! tokens (the same value always gets the same token within one output). Pure.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

/// The text shown instead of a secret value (the name before it is kept).
pub const MASK: &str = "<redacted>";

/// Words that make a header or key name one whose value is a secret.
pub const SECRET_WORDS: [&str; 16] = [
    "authorization",
    "cookie",
    "api-key",
    "api_key",
    "apikey",
    "token",
    "password",
    "passwd",
    "secret",
    "x-auth",
    "credential",
    "private-key",
    "private_key",
    "session-id",
    "session_id",
    "sessionid",
];

/// Is this header / key name one whose value must never be shown? (`Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Set-Cookie`, `X-API-Key`, `X-Auth-Token`, `*-token`,
/// `*-secret`, `X-Amz-Security-Token`, `password`, …; `credentialName` and `secretName` are
/// references, not secrets.)
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    // References to secrets (`credentialName`, `secretName`, `tokenRef`) are names, not values.
    if n.ends_with("name") || n.ends_with("ref") || n.ends_with("names") || n.ends_with("refs") {
        return false;
    }
    // Token counts of AI gateways (`gen_ai.usage.input_tokens`, `llm.response.tokens`,
    // `max_tokens`) are numbers of model tokens, not credentials.
    if TOKEN_COUNT_SUFFIXES.iter().any(|s| n.ends_with(s)) {
        return false;
    }
    SECRET_WORDS.iter().any(|w| n.contains(w))
}

/// Endings of key names that count model tokens (OpenTelemetry GenAI conventions, agentgateway).
const TOKEN_COUNT_SUFFIXES: [&str; 8] = [
    "input_tokens",
    "output_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "max_tokens",
    "request.tokens",
    "response.tokens",
];

/// Query parameters (and `;` path parameters) whose values are secrets: tokens, keys,
/// passwords, session ids and signatures.
pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&n.as_str())
        || SECRET_PARAM_SUFFIXES.iter().any(|s| n.ends_with(s))
        || is_secret_name(&n)
}

/// Query parameter names whose values are secrets, exactly.
pub const SECRET_PARAMS: [&str; 14] = [
    "key",
    "sig",
    "signature",
    "session",
    "sid",
    "jsessionid",
    "phpsessid",
    "pwd",
    "pass",
    "auth",
    "code",
    "x-amz-credential",
    "x-amz-signature",
    "x-goog-signature",
];

/// Endings of query parameter names whose values are secrets.
pub const SECRET_PARAM_SUFFIXES: [&str; 6] =
    ["token", "secret", "signature", "session", "_key", "-key"];

/// Mask every secret in a piece of text, whatever its format (a log line, a table, JSON, YAML,
/// Markdown): values after a secret header or key name (`Authorization: …`, `"x-api-key": "…"`,
/// `password=…`), secret query parameters (`?api_key=…`, `&access_token=…`, `;jsessionid=…`),
/// JWT-shaped values (`eyJ….….…`) anywhere, and `Bearer …` / `Basic …` credentials. The names
/// stay; each value becomes [`MASK`]. Idempotent.
pub fn mask_text(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    jwt_spans(b, &mut spans);
    scheme_spans(b, &mut spans);
    pair_spans(b, &mut spans);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in spans {
        if s < at {
            // Overlaps the value just masked (a JWT that is also a `token=` value).
            at = at.max(e);
            continue;
        }
        out.push_str(&text[at..s]);
        out.push_str(MASK);
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// JWTs: three base64url segments, the first starting `eyJ` (`{"` encoded).
fn jwt_spans(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    let mut i = 0;
    while i + 3 <= b.len() {
        if &b[i..i + 3] != b"eyJ" || (i > 0 && is_b64url(b[i - 1])) {
            i += 1;
            continue;
        }
        let seg = |from: usize| from + b[from..].iter().take_while(|c| is_b64url(**c)).count();
        let e1 = seg(i);
        if e1 - i < 8 || b.get(e1) != Some(&b'.') {
            i = e1.max(i + 1);
            continue;
        }
        let e2 = seg(e1 + 1);
        if e2 == e1 + 1 || b.get(e2) != Some(&b'.') {
            i = e2;
            continue;
        }
        let e3 = seg(e2 + 1);
        spans.push((i, e3));
        i = e3;
    }
}

fn is_token68(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// `Bearer <token>` and `Basic <credentials>` (case-insensitive scheme, token of 8 or more
/// characters, so prose such as "Bearer token" is left alone).
fn scheme_spans(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    for (i, &c) in b.iter().enumerate() {
        if !(c == b'b' || c == b'B') || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            continue;
        }
        let rest = &b[i..];
        let len = if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"bearer") {
            6
        } else if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"basic") {
            5
        } else {
            continue;
        };
        let mut s = i + len;
        let spaces = b[s..].iter().take_while(|c| **c == b' ').count();
        if spaces == 0 {
            continue;
        }
        s += spaces;
        let e = s + b[s..].iter().take_while(|c| is_token68(**c)).count();
        if e - s >= 8
            && b[s..e]
                .iter()
                .any(|c| c.is_ascii_digit() || !c.is_ascii_lowercase())
        {
            spans.push((s, e));
        }
    }
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// `name: value`, `"name": "value"`, `name=value` with a secret name; `?name=value` with a
/// secret query parameter.
fn pair_spans(b: &[u8], spans: &mut Vec<(usize, usize)>) {
    for (j, &sep) in b.iter().enumerate() {
        if sep != b':' && sep != b'=' {
            continue;
        }
        // The name before the separator: a quoted string, or a run of name characters.
        let mut k = j;
        if sep == b':' {
            while k > 0 && b[k - 1] == b' ' && j - k < 4 {
                k -= 1;
            }
        }
        let (name_start, name_end, quoted) = if k > 0 && (b[k - 1] == b'"' || b[k - 1] == b'\'') {
            let q = b[k - 1];
            let end = k - 1;
            let lo = end.saturating_sub(128);
            match b[lo..end].iter().rposition(|c| *c == q || *c == b'\n') {
                Some(p) if b[lo + p] == q => (lo + p + 1, end, true),
                _ => continue,
            }
        } else {
            let start = k - b[..k]
                .iter()
                .rev()
                .take_while(|c| is_name_char(**c))
                .count();
            (start, k, false)
        };
        if name_start == name_end {
            continue;
        }
        let Ok(name) = std::str::from_utf8(&b[name_start..name_end]) else {
            continue;
        };
        let before = if quoted {
            name_start.checked_sub(1).and_then(|p| p.checked_sub(1))
        } else {
            name_start.checked_sub(1)
        }
        .map(|p| b[p]);
        let secret = if sep == b'=' {
            is_secret_name(name)
                || (!quoted
                    && is_secret_param(name)
                    && matches!(
                        before,
                        None | Some(b'?' | b'&' | b';' | b' ' | b'"' | b'\'')
                    ))
        } else {
            // `https://`, `::`: not a name and its value. A name right after a `/` ends a path
            // (`Service/ns/authorino-authorization: …`, an object reference), not a header or
            // key name.
            !matches!(b.get(j + 1), Some(b'/' | b':'))
                && (quoted || before != Some(b'/'))
                && is_secret_name(name)
        };
        if !secret {
            continue;
        }
        let mut s = j + 1;
        while s < b.len() && b[s] == b' ' {
            s += 1;
        }
        let (vs, ve) = match b.get(s) {
            Some(&q @ (b'"' | b'\'')) => {
                let mut e = s + 1;
                while e < b.len() && b[e] != q && b[e] != b'\n' {
                    e += if b[e] == b'\\' { 2 } else { 1 };
                }
                (s + 1, e.min(b.len()))
            }
            _ => {
                let stop: &[u8] = if sep == b':' {
                    b"\n\r\\\"',}])|`<>"
                } else {
                    b"\n\r\t\\ \"'&;,}])|`<>#"
                };
                let e = s + b[s..].iter().take_while(|c| !stop.contains(c)).count();
                // Trailing spaces of a `name: value` belong to the layout.
                let e = e - b[s..e].iter().rev().take_while(|c| **c == b' ').count();
                (s, e)
            }
        };
        let v = &b[vs..ve];
        if v.is_empty() || v == b"-" || v == MASK.as_bytes() {
            continue;
        }
        // An unquoted `Name: value` in prose ("send Authorization: Bearer …") names a header
        // without carrying a credential: mask only when a credential-like word follows.
        let quoted_value = vs > 0 && matches!(b[vs - 1], b'"' | b'\'');
        if sep == b':'
            && !quoted_value
            && !v.split(|c| *c == b' ' || *c == b';').any(credential_word)
        {
            continue;
        }
        spans.push((vs, ve));
    }
}

/// A word that can be a credential: four or more token characters, not an auth scheme name.
fn credential_word(w: &[u8]) -> bool {
    w.len() >= 4
        && w.iter().all(|c| is_token68(*c))
        && !["bearer", "basic", "digest", "negotiate"]
            .iter()
            .any(|s| w.eq_ignore_ascii_case(s.as_bytes()))
}

/// Mask secret values in a JSON/YAML value in place: map keys that name secrets,
/// `{name: <secret header>, value: …}` pairs (header lists in EnvoyFilters, VirtualServices and
/// Envoy routes), and every string through [`mask_text`].
pub fn mask_value(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let header_pair = ["name", "key", "header"].iter().any(|k| {
                m.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(is_secret_name)
            });
            for (k, val) in m.iter_mut() {
                if (is_secret_name(k) && !val.is_object() && !val.is_array() && !val.is_null())
                    || (header_pair
                        && matches!(k.as_str(), "value" | "exact" | "values" | "prefix"))
                {
                    *val = Value::String(MASK.into());
                } else {
                    mask_value(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_value),
        Value::String(s) => {
            if let Cow::Owned(m) = mask_text(s) {
                *s = m;
            }
        }
        _ => {}
    }
}

/// Consistent replacement of identifying strings by tokens (`--redact`): IPv4 and IPv6
/// addresses (ports and brackets kept around the token), hostnames and FQDNs found in any text,
/// and names learnt from the evidence (pods, services, hosts).
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    map: BTreeMap<String, String>,
    counters: BTreeMap<&'static str, usize>,
    /// Learnt names that are not hostname-shaped (pod names, single-label hosts), longest first.
    words: Vec<String>,
}

impl Redactor {
    /// Token for `s` of the given kind (`ip`, `pod`, `host`), assigned on first sight.
    pub fn token(&mut self, kind: &'static str, s: &str) -> String {
        if let Some(t) = self.map.get(s) {
            return t.clone();
        }
        let n = self.counters.entry(kind).or_default();
        *n += 1;
        let t = format!("{kind}-{n}");
        self.map.insert(s.to_string(), t.clone());
        t
    }

    /// Register names (pods, hosts) to be replaced wherever they appear.
    pub fn learn(&mut self, kind: &'static str, names: impl IntoIterator<Item = String>) {
        for n in names {
            if n.len() >= 3 && n != "-" {
                self.token(kind, &n);
                if !self.words.contains(&n) {
                    self.words.push(n);
                }
            }
        }
        self.words
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    }

    /// Replace every IP address, hostname, FQDN and learnt name in `text`.
    pub fn apply(&mut self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < b.len() {
            let boundary =
                i == 0 || !(is_name_char(b[i - 1]) || b[i - 1] == b'.' || b[i - 1] == b':');
            if boundary && (b[i].is_ascii_hexdigit() || b[i] == b':') {
                let run = b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_hexdigit() || **c == b':' || **c == b'.')
                    .count();
                let cand = text[i..i + run].trim_end_matches('.');
                let end = i + cand.len();
                let after_ok = end >= b.len() || !is_name_char(b[end]);
                if after_ok && looks_like_ipv6(cand) {
                    let t = self.token("ip", cand);
                    out.push_str(&t);
                    i = end;
                    continue;
                }
            }
            if is_name_char(b[i]) || b[i] == b'.' {
                let run = b[i..]
                    .iter()
                    .take_while(|c| is_name_char(**c) || **c == b'.')
                    .count();
                let word = text[i..i + run].trim_end_matches(['.', '-']);
                let word = if word.is_empty() {
                    &text[i..i + run]
                } else {
                    word
                };
                self.word(word, &mut out);
                i += word.len();
                continue;
            }
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    /// One run of name characters and dots: an IPv4 address, a hostname, or text that may hold
    /// learnt names.
    fn word(&mut self, w: &str, out: &mut String) {
        if let Some(t) = self.map.get(w) {
            out.push_str(t);
        } else if looks_like_ipv4(w) {
            let t = self.token("ip", w);
            out.push_str(&t);
        } else if looks_like_hostname(w) {
            let t = self.token("host", w);
            out.push_str(&t);
        } else {
            out.push_str(&self.replace_words(w));
        }
    }

    /// Learnt names inside a run (`pod.log`, `name-with.suffix`), at label boundaries.
    fn replace_words(&self, w: &str) -> String {
        let mut s = w.to_string();
        for name in &self.words {
            let Some(tok) = self.map.get(name) else {
                continue;
            };
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(p) = rest.find(name.as_str()) {
                let before = rest[..p].bytes().last();
                let after = rest[p + name.len()..].bytes().next();
                let bounded = |c: Option<u8>| c.is_none_or(|c| !is_name_char(c));
                out.push_str(&rest[..p]);
                if bounded(before) && bounded(after) {
                    out.push_str(tok);
                } else {
                    out.push_str(name);
                }
                rest = &rest[p + name.len()..];
            }
            out.push_str(rest);
            s = out;
        }
        s
    }
}

/// `a.b.c.d` with each part 0..=255.
pub fn looks_like_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u16>().is_ok_and(|n| n <= 255))
}

/// An IPv6 address (`fd00::1`, `2001:db8:0:0:0:0:0:1`, `::ffff:10.0.0.1`): two or more colons,
/// a hex digit, and a valid address.
pub fn looks_like_ipv6(s: &str) -> bool {
    s.bytes().filter(|c| *c == b':').count() >= 2
        && s.bytes().any(|c| c.is_ascii_hexdigit())
        && s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Last labels that make a dotted word a file name, not a host.
const FILE_SUFFIXES: [&str; 22] = [
    "log", "gz", "tgz", "tar", "zip", "json", "jsonl", "yaml", "yml", "txt", "md", "rs", "py",
    "sh", "pem", "crt", "key", "csv", "html", "out", "err", "args",
];

/// Public domains and dotted identifiers that name software, not a customer's hosts: API
/// groups and label prefixes (`networking.istio.io`, `app.kubernetes.io`), Envoy type URLs and
/// filter names, meshtrace's own schema names.
const PUBLIC_SUFFIXES: [&str; 14] = [
    "istio.io",
    "kubernetes.io",
    "k8s.io",
    "knative.dev",
    "kserve.io",
    "kubeflow.org",
    "seldon.io",
    "envoyproxy.io",
    "openshift.io",
    "maistra.io",
    "googleapis.com",
    "github.com",
    "opendatahub.io",
    "cert-manager.io",
];
const PUBLIC_PREFIXES: [&str; 4] = ["meshtrace.", "envoy.", "istio.", "type."];

/// A hostname or FQDN: two or more DNS labels, the last starting with a letter, not a file name
/// or a well-known public software name.
pub fn looks_like_hostname(s: &str) -> bool {
    if s.len() > 253 || !s.contains('.') {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let Some(last) = labels.last() else {
        return false;
    };
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let lower = s.to_ascii_lowercase();
    labels.len() >= 2
        && labels.iter().all(label_ok)
        && last.len() >= 2
        && last.as_bytes()[0].is_ascii_alphabetic()
        && !FILE_SUFFIXES.contains(&last.to_ascii_lowercase().as_str())
        && !matches!(lower.as_str(), "cluster.local" | "svc.cluster.local")
        && !PUBLIC_SUFFIXES
            .iter()
            .any(|p| lower == *p || lower.ends_with(&format!(".{p}")))
        && !PUBLIC_PREFIXES.iter().any(|p| lower.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names() {
        for n in [
            "Authorization",
            "Proxy-Authorization",
            "cookie",
            "Set-Cookie",
            "x-api-key",
            "X-Auth-Token",
            "x-amz-security-token",
            "client-secret",
            "password",
            "apiKey",
            "x-session-id",
            "refresh_tokens",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "credentialName",
            "secretName",
            "x-request-id",
            "host",
            "tokenRef",
            "sessionAffinity",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.request.max_tokens",
            "llm.response.tokens",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn masks_values_but_not_structure_or_references() {
        let mut v = json!({"spec": {"tls": {"credentialName": "ingress-certs"}, "headers": {"request": {"set": {"Authorization": "Bearer abc", "x-api-key": "k1", "Host": "h"}}},
            "match": [{"name": "cookie", "exact": "session=1"}], "token": "t0",
            "uri": "/v1/models/m?api_key=k2&x=1"}});
        mask_value(&mut v);
        let s = v.to_string();
        for secret in ["Bearer abc", "k1", "session=1", "t0", "k2"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert!(s.contains("ingress-certs") && s.contains("\"Host\":\"h\"") && s.contains("&x=1"));
    }

    #[test]
    fn masks_text_in_every_shape() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl";
        let cases = [
            (
                "GET /v1/models/m:predict?api_key=abc123&n=1 HTTP/1.1".to_string(),
                "GET /v1/models/m:predict?api_key=<redacted>&n=1 HTTP/1.1".to_string(),
            ),
            (
                "/p?x=1&access_token=zzz;jsessionid=s1#frag".into(),
                "/p?x=1&access_token=<redacted>;jsessionid=<redacted>#frag".into(),
            ),
            (
                r#"{"authorization":"Basic dXNlcjpwYXNz","x-api-key": "k-9","ua":"curl"}"#.into(),
                r#"{"authorization":"<redacted>","x-api-key": "<redacted>","ua":"curl"}"#.into(),
            ),
            ("Cookie: a=1; bb=2".into(), "Cookie: <redacted>".into()),
            (
                "Send a token (Authorization: Bearer …) whose issuer".into(),
                "Send a token (Authorization: Bearer …) whose issuer".into(),
            ),
            (
                "  set-cookie: sid=9; Path=/\n  host: x".into(),
                "  set-cookie: <redacted>\n  host: x".into(),
            ),
            (format!("ua {jwt} end"), "ua <redacted> end".to_string()),
            (
                "auth Bearer abcdef123456 end; Bearer token missing".into(),
                "auth Bearer <redacted> end; Bearer token missing".into(),
            ),
            (
                "password=hunter2 user=bob".into(),
                "password=<redacted> user=bob".into(),
            ),
            (
                // An object reference ending in a secret word is a path, not a header name.
                "- Service/opendatahub-auth-provider/authorino-authorino-authorization: Service of the provider".into(),
                "- Service/opendatahub-auth-provider/authorino-authorino-authorization: Service of the provider".into(),
            ),
            (
                "proxy-authorization: s3cr3tvalue\nx-authorization: other".into(),
                "proxy-authorization: <redacted>\nx-authorization: <redacted>".into(),
            ),
            (
                r#"{"/authorization": "v1"} path/token=abc"#.into(),
                r#"{"/authorization": "<redacted>"} path/token=<redacted>"#.into(),
            ),
            (
                "see https://istio.io/x?y=1 at 10:00:00 secretName: certs key: app".into(),
                "see https://istio.io/x?y=1 at 10:00:00 secretName: certs key: app".into(),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(mask_text(&input), want, "{input}");
            // Idempotent.
            assert_eq!(mask_text(&want), want);
        }
    }

    #[test]
    fn redaction_is_consistent() {
        let mut r = Redactor::default();
        r.learn("pod", ["istio-ingressgateway-64694db8d5-zmcc7".to_string()]);
        r.learn(
            "host",
            ["test-predictor.aiproject.svc.cluster.local".to_string()],
        );
        let a = r.apply("10.135.0.43:8443 istio-ingressgateway-64694db8d5-zmcc7 → 10.135.0.44:8012; again 10.135.0.43 test-predictor.aiproject.svc.cluster.local v1.2.3 999.1.1.1");
        assert_eq!(
            a,
            "ip-1:8443 pod-1 → ip-2:8012; again ip-1 host-1 v1.2.3 999.1.1.1"
        );
        // Same input, same tokens.
        assert_eq!(r.apply("10.135.0.44"), "ip-2");
    }

    #[test]
    fn redacts_ipv6_hostnames_and_fqdns_anywhere() {
        let mut r = Redactor::default();
        let a = r.apply(
            "[fd00:10::5]:8080 → fd00:10::6 and ::ffff:10.1.2.3; GET /api/model.internal.example.com/x ua=curl (probe.corp.example) at 10:00:00.123 \
             outbound|80||knative-local-gateway.istio-system.svc.cluster.local logs/istio-proxy.log \
             networking.istio.io/v1 meshtrace.report/v1 e.g. fd00:10::5",
        );
        assert_eq!(
            a,
            "[ip-1]:8080 → ip-2 and ip-3; GET /api/host-1/x ua=curl (host-2) at 10:00:00.123 \
             outbound|80||host-3 logs/istio-proxy.log \
             networking.istio.io/v1 meshtrace.report/v1 e.g. ip-1"
        );
    }
}
