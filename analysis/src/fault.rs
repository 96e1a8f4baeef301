//! Fault injection (`FI`/`DI`, `fault_filter_abort`): the VirtualService whose `fault` block
//! aborted or delayed the request. Pure.
//!
//! Istio turns a VirtualService HTTP route's `fault.abort` / `fault.delay` into Envoy's HTTP
//! fault filter on that route: the request is answered with the abort's status (flag `FI`,
//! details `fault_filter_abort`) or held for the delay (flag `DI`) before it is routed (Istio's
//! fault injection task; Envoy's fault filter documentation). It is a test tool: a `fault`
//! block left in place fails real requests.

use serde_json::Value;

use crate::causes::Cause;
use crate::model::{Cited, Object};
use crate::reading::{Reading, Site};
use crate::subsets::covering;

/// Routes read from one VirtualService at most (it is untrusted input).
const MAX_ROUTES: usize = 256;

/// A route's `fault` in words: `abort with 503 for 100 % of requests`, `delay of 5s for 10 %`.
fn describe_fault(fault: &Value) -> Option<String> {
    let percent = |v: &Value| {
        v.pointer("/percentage/value")
            .and_then(Value::as_f64)
            .map_or("every request (no percentage set)".to_string(), |p| {
                format!("{p} % of requests")
            })
    };
    let mut parts = Vec::new();
    if let Some(a) = fault.get("abort") {
        let status = a
            .get("httpStatus")
            .and_then(Value::as_u64)
            .map(|s| format!("status {s}"))
            .or_else(|| {
                a.get("grpcStatus")
                    .and_then(Value::as_str)
                    .map(|s| format!("gRPC status {s}"))
            })
            .unwrap_or_else(|| "an error".to_string());
        parts.push(format!("abort with {status} for {}", percent(a)));
    }
    if let Some(d) = fault.get("delay") {
        let by = d
            .get("fixedDelay")
            .and_then(Value::as_str)
            .unwrap_or("a delay");
        parts.push(format!("delay of {by} for {}", percent(d)));
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// What a route matches, in words (header names only: their values may be secrets).
fn describe_match(route: &Value) -> String {
    let mut conds = Vec::new();
    for m in route
        .get("match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_ROUTES)
    {
        if let Some(h) = m.get("headers").and_then(Value::as_object) {
            let names: Vec<&str> = h.keys().map(String::as_str).take(16).collect();
            if !names.is_empty() {
                conds.push(format!("header(s) {}", names.join(", ")));
            }
        }
        if let Some(u) = m.get("uri").and_then(Value::as_object)
            && let Some((how, v)) = u.iter().next()
            && let Some(v) = v.as_str()
        {
            conds.push(format!("uri {how} `{v}`"));
        }
    }
    if conds.is_empty() {
        "every request to its hosts".to_string()
    } else {
        format!("requests with {}", conds.join(" or "))
    }
}

/// The VirtualServices covering Host `authority` with a `fault` on a route: (reference, what it
/// injects, what it matches).
pub fn faults(objects: &[Object], authority: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for vs in covering(objects, authority) {
        let routes = vs.value.pointer("/spec/http").and_then(Value::as_array);
        for r in routes.into_iter().flatten().take(MAX_ROUTES) {
            if let Some(what) = r.get("fault").and_then(describe_fault) {
                out.push((vs.reference(), what, describe_match(r)));
            }
        }
    }
    out
}

/// What the VirtualService behind an injected fault adds to the verdict.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    if site.cause != Cause::FaultInjected {
        return None;
    }
    let authority = site.origin().record.authority()?;
    let found = faults(&site.ev.objects, authority);
    let (vs, what, matched) = found.first()?;
    let aborted = site
        .origin()
        .record
        .details()
        .is_some_and(|d| d.base == "fault_filter_abort");
    let not_called = if aborted {
        "; the model was not called"
    } else {
        ""
    };
    Some(Reading {
        summary_extra: Some(format!(
            "{vs} injects a fault on this Host: {what}, for {matched}."
        )),
        fix: Some(format!(
            "Remove the `fault` block from {vs} when the test it was written for is over (or narrow its `match` and lower its percentage){not_called}. `kubectl edit virtualservice {} -n {}`.",
            vs.rsplit('/').next().unwrap_or(""),
            vs.split('/').nth(1).unwrap_or("")
        )),
        cited: found
            .iter()
            .map(|(vs, what, matched)| Cited {
                object: vs.clone(),
                why: format!("covers Host `{authority}`: {what}, for {matched}"),
            })
            .collect(),
        ..Reading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vs(http: Value) -> Object {
        Object::from_value(
            json!({
                "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "ratings", "namespace": "bookinfo"},
                "spec": {"hosts": ["ratings"], "http": http}
            }),
            "resources/test.yaml".into(),
        )
        .unwrap()
    }

    #[test]
    fn faults_in_words() {
        let objects = vec![vs(json!([
            {"match": [{"headers": {"end-user": {"exact": "secret-user"}}}],
             "fault": {"delay": {"fixedDelay": "7s", "percentage": {"value": 100.0}}},
             "route": [{"destination": {"host": "ratings", "subset": "v1"}}]},
            {"fault": {"abort": {"httpStatus": 500}}, "route": [{"destination": {"host": "ratings"}}]},
            {"route": [{"destination": {"host": "ratings"}}]}
        ]))];
        let f = faults(&objects, "ratings:9080");
        assert_eq!(
            f,
            vec![
                (
                    "VirtualService/bookinfo/ratings".to_string(),
                    "delay of 7s for 100 % of requests".to_string(),
                    "requests with header(s) end-user".to_string()
                ),
                (
                    "VirtualService/bookinfo/ratings".to_string(),
                    "abort with status 500 for every request (no percentage set)".to_string(),
                    "every request to its hosts".to_string()
                ),
            ]
        );
        // A header's value is never repeated (it may be a secret).
        assert!(!format!("{f:?}").contains("secret-user"));
        assert!(faults(&objects, "reviews:9080").is_empty());
    }
}
