//! Keeping secrets out of reports: masking secret values always, and `--redact` replacing IPs,
//! pod names and hostnames with stable tokens (the same input always gets the same token). Pure.

use std::collections::BTreeMap;

use serde_json::Value;

/// Header or key names whose values are secrets.
const SECRET_WORDS: [&str; 9] = [
    "authorization",
    "cookie",
    "api-key",
    "api_key",
    "apikey",
    "token",
    "password",
    "secret",
    "x-auth",
];

/// Is this header / key name one whose value must never be shown?
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    // References to secrets (`credentialName`, `secretName`) are names, not secret values.
    if n.ends_with("name") || n.ends_with("ref") {
        return false;
    }
    SECRET_WORDS.iter().any(|w| n.contains(w))
}

/// The mask shown instead of a secret value.
pub const MASK: &str = "****";

/// Mask secret values in a JSON/YAML value in place: map keys that name secrets, and
/// `{name: <secret header>, value: …}` pairs (header lists in EnvoyFilters and VirtualServices).
pub fn mask_value(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let header_pair = m
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_secret_name)
                || m.get("key")
                    .and_then(Value::as_str)
                    .is_some_and(is_secret_name);
            for (k, val) in m.iter_mut() {
                if (is_secret_name(k) && !val.is_object() && !val.is_array())
                    || (header_pair && (k == "value" || k == "exact" || k == "values"))
                {
                    *val = Value::String(MASK.into());
                } else {
                    mask_value(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_value),
        _ => {}
    }
}

/// Consistent replacement of identifying strings by tokens.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    map: BTreeMap<String, String>,
    counters: BTreeMap<&'static str, usize>,
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
            }
        }
    }

    /// Replace every learnt name (longest first, so `a.b.svc` goes before `a`) and every IPv4
    /// address in `text`.
    pub fn apply(&mut self, text: &str) -> String {
        let mut names: Vec<(String, String)> = self
            .map
            .iter()
            .filter(|(k, _)| !looks_like_ipv4(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        let mut out = text.to_string();
        for (name, tok) in names {
            out = out.replace(&name, &tok);
        }
        self.replace_ipv4(&out)
    }

    fn replace_ipv4(&mut self, text: &str) -> String {
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < b.len() {
            let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
            if boundary && b[i].is_ascii_digit() {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                    j += 1;
                }
                let cand = text[i..j].trim_end_matches('.');
                let end = i + cand.len();
                let after_ok = end >= b.len() || !b[end].is_ascii_alphanumeric();
                if after_ok && looks_like_ipv4(cand) {
                    let t = self.token("ip", cand);
                    out.push_str(&t);
                    i = end;
                    continue;
                }
                out.push_str(&text[i..j]);
                i = j;
                continue;
            }
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names() {
        for n in [
            "Authorization",
            "cookie",
            "x-api-key",
            "X-Auth-Token",
            "password",
            "apiKey",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "credentialName",
            "secretName",
            "x-request-id",
            "host",
            "tokenRef",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn masks_values_but_not_structure_or_references() {
        let mut v = json!({"spec": {"tls": {"credentialName": "ingress-certs"}, "headers": {"request": {"set": {"Authorization": "Bearer abc", "x-api-key": "k1", "Host": "h"}}},
            "match": [{"name": "cookie", "exact": "session=1"}], "token": "t0"}});
        mask_value(&mut v);
        let s = v.to_string();
        for secret in ["Bearer abc", "k1", "session=1", "t0"] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
        assert!(s.contains("ingress-certs") && s.contains("\"Host\":\"h\""));
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
}
