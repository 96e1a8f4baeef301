//! JWT authentication (an Istio RequestAuthentication, Envoy's jwt_authn filter): which rules
//! the rejected token was checked against, and what the filter's reason means. Pure.
//!
//! Envoy's jwt_authn filter writes `jwt_authn_access_denied{<reason>}` as the response code
//! details, the reason being the JWT verification status with spaces as `_` (`Jwt is expired`,
//! `Jwt verification fails`, `Jwks remote fetch is failed`, …). Istio turns each
//! RequestAuthentication `jwtRules` entry into a provider (istiod fetches `jwksUri` and inlines
//! the keys); a request without a token passes, a request whose token fails is refused with 401
//! (Istio's RequestAuthentication reference).

use serde_json::Value;

use crate::causes::Cause;
use crate::model::{Cited, Object};
use crate::objects::applies_to;
use crate::reading::{Reading, Site, pod_of};

/// Rules read from one RequestAuthentication at most (it is untrusted input).
const MAX_RULES: usize = 32;

/// Why the filter refused the token, from the reason in the details' braces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `Jwt is expired`.
    Expired,
    /// `Jwt not yet valid`.
    NotYetValid,
    /// `Jwt is missing` (a rule that requires a token).
    Missing,
    /// `Jwt issuer is not configured`.
    UnknownIssuer,
    /// `Audiences in Jwt are not allowed`.
    Audience,
    /// `Jwks remote fetch is failed`, `Jwks is not fetched`…: the keys could not be had.
    KeysUnavailable,
    /// `Jwks doesn't have key to match kid or alg from Jwt`.
    NoMatchingKey,
    /// `Jwt verification fails`: the signature does not verify.
    BadSignature,
    /// Not a JWT at all (`Jwt is not in the form of Header.Payload.Signature…`, bad Base64 or
    /// JSON in a part).
    Malformed,
    /// Another reason, or none given.
    Other,
}

/// The reason in `jwt_authn_access_denied{…}`, read by its words (Envoy writes the status text
/// with `_` for spaces; versions differ in the exact words).
pub fn why(arg: &str) -> Why {
    let a = arg.replace('_', " ").to_ascii_lowercase();
    let has = |w: &str| a.contains(w);
    if has("expired") {
        Why::Expired
    } else if has("not yet valid") {
        Why::NotYetValid
    } else if has("missing") {
        Why::Missing
    } else if has("audience") {
        Why::Audience
    } else if has("issuer") {
        Why::UnknownIssuer
    } else if has("fetch") || has("jwks is not") {
        Why::KeysUnavailable
    } else if has("kid") || has("key to match") {
        Why::NoMatchingKey
    } else if has("verification fail") || has("signature") && !has("form") {
        Why::BadSignature
    } else if has("form") || has("base64") || has("json") || has("header") || has("payload") {
        Why::Malformed
    } else {
        Why::Other
    }
}

/// One `jwtRules` entry, in words: `issuer … (keys from …), audiences […]`.
fn describe(rule: &Value) -> Option<(String, String)> {
    let issuer = rule.get("issuer").and_then(Value::as_str)?;
    let keys = match (
        rule.get("jwksUri").and_then(Value::as_str),
        rule.get("jwks").is_some(),
    ) {
        (Some(uri), _) => format!("keys from `{uri}`"),
        (None, true) => "keys inline (`jwks`)".to_string(),
        (None, false) => "keys from the issuer's OpenID discovery document".to_string(),
    };
    let audiences: Vec<&str> = rule
        .get("audiences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .take(MAX_RULES)
        .collect();
    let aud = if audiences.is_empty() {
        "any audience".to_string()
    } else {
        format!("audiences [{}]", audiences.join(", "))
    };
    Some((
        issuer.to_string(),
        format!("issuer `{issuer}` ({keys}, {aud})"),
    ))
}

/// What the RequestAuthentications behind a jwt_authn refusal add to the verdict.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    if site.cause != Cause::AuthnFailed {
        return None;
    }
    let origin = &site.origin().record;
    let details = origin.details()?;
    if !details.base.starts_with("jwt_authn") {
        return None;
    }
    let reason = details.arg.unwrap_or("");
    let why = why(reason);
    let pod = pod_of(&site.ev.topology, site.origin());
    let policies: Vec<&Object> = pod
        .map(|pod| {
            site.ev
                .objects
                .iter()
                .filter(|o| {
                    o.kind == "RequestAuthentication"
                        && applies_to(o, "/spec/selector/matchLabels", pod)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut r = Reading::default();
    let mut issuers = Vec::new();
    for p in &policies {
        let rules: Vec<(String, String)> = p
            .value
            .pointer("/spec/jwtRules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(MAX_RULES)
            .filter_map(describe)
            .collect();
        if rules.is_empty() {
            continue;
        }
        r.cited.push(Cited {
            object: p.reference(),
            why: format!(
                "verifies tokens on this pod: {}",
                rules
                    .iter()
                    .map(|(_, d)| d.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
        issuers.extend(rules.into_iter().map(|(i, _)| i));
    }
    let against = match (policies.first(), issuers.as_slice()) {
        (Some(p), [one]) => format!(" ({}, issuer `{one}`)", p.reference()),
        (Some(p), _) => format!(" ({})", p.reference()),
        (None, _) => String::new(),
    };
    let issuers_list = if issuers.is_empty() {
        "the RequestAuthentication's issuers".to_string()
    } else {
        issuers
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (meaning, fix) = match why {
        Why::Expired => (
            "the token has expired (its `exp` is in the past)".to_string(),
            "Get a new token from the identity provider (clients must refresh tokens before `exp`); if tokens are fresh, check the clocks of the client's issuer and the node.".to_string(),
        ),
        Why::NotYetValid => (
            "the token is not valid yet (its `nbf` is in the future)".to_string(),
            "Check the clock of the node against the identity provider's (tokens used right after they are issued fail on a node whose clock is behind).".to_string(),
        ),
        Why::Missing => (
            "the request carried no token where a rule requires one".to_string(),
            "Send the token as `Authorization: Bearer <JWT>` (or where the rule's `fromHeaders`/`fromParams` says).".to_string(),
        ),
        Why::UnknownIssuer => (
            format!("the token's `iss` is none of {issuers_list}"),
            format!("Use a token from {issuers_list}, or add its issuer as a `jwtRules` entry of the RequestAuthentication."),
        ),
        Why::Audience => (
            "the token's `aud` is not among the rule's `audiences`".to_string(),
            "Request the token for an audience the rule lists (the client's `audience`/`resource` parameter), or add the token's audience to `audiences`.".to_string(),
        ),
        Why::KeysUnavailable => (
            "the proxy could not get the issuer's signing keys (JWKS)".to_string(),
            "Make the rule's `jwksUri` reachable from istiod (it fetches the keys; a ServiceEntry for an external identity provider under REGISTRY_ONLY), or give the keys inline with `jwks`; check istiod's log for the fetch error.".to_string(),
        ),
        Why::NoMatchingKey => (
            "no published key has the token's `kid`".to_string(),
            format!("The token was signed with a key {issuers_list} does not publish (now): a token of another realm or environment, or the keys were rotated and istiod still serves the old set; get a new token, and check that istiod has refreshed the JWKS."),
        ),
        Why::BadSignature => (
            "the token's signature does not verify against the issuer's published keys".to_string(),
            format!("The token was not signed by {issuers_list}: a token of another realm or environment with the same issuer name, a tampered token, or keys rotated since; get a token from the issuer the RequestAuthentication names."),
        ),
        Why::Malformed => (
            "the token is not a JWT (not three Base64url parts)".to_string(),
            "Send a JWT from the identity provider: an opaque token (an OpenShift `oc whoami -t` token, `sha256~…`, or an API key) cannot be verified by a RequestAuthentication; use the route that accepts it, or the provider's JWT.".to_string(),
        ),
        Why::Other => (
            format!("the token was refused (`{reason}`)"),
            format!("Send a valid token of {issuers_list}; Envoy's jwt_authn filter documentation lists the reasons."),
        ),
    };
    r.summary_extra = Some(format!(
        "Envoy's jwt_authn filter refused the token{against}: {meaning}."
    ));
    r.fix = Some(fix);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_as_envoy_writes_them() {
        for (arg, want) in [
            ("Jwt_is_expired", Why::Expired),
            ("Jwt_not_yet_valid", Why::NotYetValid),
            ("Jwt_is_missing", Why::Missing),
            ("Jwt_issuer_is_not_configured", Why::UnknownIssuer),
            ("Audiences_in_Jwt_are_not_allowed", Why::Audience),
            ("Jwks_remote_fetch_is_failed", Why::KeysUnavailable),
            (
                "Jwks_doesn't_have_key_to_match_kid_or_alg_from_Jwt",
                Why::NoMatchingKey,
            ),
            ("Jwt_verification_fails", Why::BadSignature),
            (
                "Jwt_is_not_in_the_form_of_Header.Payload.Signature_with_two_dots_and_3_sections",
                Why::Malformed,
            ),
            ("Jwt_header_is_an_invalid_Base64url_encoded", Why::Malformed),
            ("", Why::Other),
        ] {
            assert_eq!(why(arg), want, "{arg}");
        }
    }

    #[test]
    fn rules_in_words() {
        let rule = serde_json::json!({"issuer": "https://idp/realms/ai", "jwksUri": "https://idp/certs", "audiences": ["a", "b"]});
        assert_eq!(
            describe(&rule).unwrap().1,
            "issuer `https://idp/realms/ai` (keys from `https://idp/certs`, audiences [a, b])"
        );
        let rule = serde_json::json!({"issuer": "i", "jwks": "{}"});
        assert_eq!(
            describe(&rule).unwrap().1,
            "issuer `i` (keys inline (`jwks`), any audience)"
        );
        assert!(describe(&serde_json::json!({"jwksUri": "x"})).is_none());
    }
}
