//! Knative readings of a verdict:
//!
//! - `networking.knative.dev/visibility: cluster-local` (on an InferenceService, a Knative
//!   Service or Route): Knative then publishes the host only on the cluster-local gateway
//!   (`knative-local-gateway`), so an external request for it gets `404 NR` at the ingress
//!   gateway — linked here to the label, with the fix;
//! - `K-Original-Host`: the header in which Knative keeps the Host a route rewrote (Knative
//!   networking's `OriginalHostKey`, set by net-istio when an ingress rule rewrites the host,
//!   e.g. a DomainMapping); when a log format records it, each hop says which Host the client
//!   asked for;
//! - queue-proxy vs the model container: a revision pod's sidecar inbound hop (port 8012 or
//!   8112) forwards to queue-proxy, which forwards to the user container. A `502` relayed there is
//!   queue-proxy's own reply (its reverse proxy could not reach the user port, e.g. connection
//!   refused on 8080), told apart from the model's own errors with the pod's container status.

use serde_json::Value;

use crate::causes::Cause;
use crate::model::{Cited, Object};
use crate::reading::{Reading, Site, host_only, pod_object, pod_of};
use crate::topology::PodInfo;

/// The label that keeps a Knative route off the external gateway.
pub const VISIBILITY_LABEL: &str = "networking.knative.dev/visibility";

/// Knative's header for the Host before a route rewrote it.
pub const ORIGINAL_HOST_HEADER: &str = "K-Original-Host";

/// The readings of this module for one trace.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    let mut r = Reading::default();
    let mut any = false;
    if let Some(x) = cluster_local(site) {
        r = x;
        any = true;
    }
    if let Some(x) = queue_proxy(site) {
        r.summary_extra = x.summary_extra;
        r.fix = r.fix.or(x.fix);
        r.cited.extend(x.cited);
        any = true;
    }
    let notes = original_host_notes(site);
    if !notes.is_empty() {
        r.notes.extend(notes);
        any = true;
    }
    any.then_some(r)
}

/// The `K-Original-Host` a line logged, when its format records that header (a TEXT format's
/// `%REQ(K-ORIGINAL-HOST)%`, a JSON key such as `k_original_host`).
pub fn original_host(r: &meshtrace_parsers::record::RawRecord<'_>) -> Option<String> {
    r.extras()
        .find(|(k, v)| {
            let k = k.to_ascii_lowercase().replace('_', "-");
            k.contains("k-original-host") && !v.is_empty() && *v != "-"
        })
        .map(|(_, v)| v.to_string())
}

/// One note per hop that logged `K-Original-Host`, tying the rewritten Host to the asked one.
fn original_host_notes(site: &Site<'_>) -> Vec<String> {
    site.hops()
        .enumerate()
        .filter_map(|(i, l)| {
            let orig = original_host(&l.record)?;
            Some(format!(
                "hop {}: {ORIGINAL_HOST_HEADER} `{orig}` — the client asked for `{orig}`; a Knative route rewrote Host to `{}` on the way",
                i + 1,
                l.record.authority().unwrap_or("-")
            ))
        })
        .collect()
}

/// Does an external host belong to the Knative service `name` in `ns` under a domain template
/// (`{{.Name}}.{{.Namespace}}.{{.Domain}}`, Knative's default, or `{{.Name}}-{{.Namespace}}…`)?
fn host_of(host: &str, name: &str, ns: &str) -> bool {
    host.starts_with(&format!("{name}.{ns}."))
        || host.starts_with(&format!("{name}-{ns}."))
        || host.starts_with(&format!("{name}-{ns}-"))
}

/// The Knative service names an object's routes are published under.
fn published_names(o: &Object) -> Vec<String> {
    if o.kind == "InferenceService" {
        ["predictor", "transformer", "explainer"]
            .iter()
            .map(|c| format!("{}-{c}", o.name))
            .chain([o.name.clone()])
            .collect()
    } else {
        vec![o.name.clone()]
    }
}

/// An external `404 NR` for a host whose model is labelled cluster-local.
fn cluster_local(site: &Site<'_>) -> Option<Reading> {
    if site.cause != Cause::RouteNotFound {
        return None;
    }
    let origin = site.origin();
    let host = host_only(site.hops().next()?.record.authority()?).to_string();
    if host.ends_with(".svc.cluster.local") || host.ends_with(".svc") {
        return None;
    }
    let obj = site.ev.objects.iter().find(|o| {
        matches!(o.kind.as_str(), "InferenceService" | "Service" | "Route")
            && (o.api_version.starts_with("serving.kserve.io")
                || o.api_version.starts_with("serving.knative.dev"))
            && o.label(VISIBILITY_LABEL) == Some("cluster-local")
            && published_names(o)
                .iter()
                .any(|n| host_of(&host, n, o.namespace.as_deref().unwrap_or("")))
    })?;
    let ns = obj.namespace.as_deref().unwrap_or("");
    let local_url = obj
        .str_at("/status/url")
        .or_else(|| obj.str_at("/status/address/url"))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let n = published_names(obj)[0].clone();
            format!("http://{n}.{ns}.svc.cluster.local")
        });
    let gw = pod_of(&site.ev.topology, origin)
        .map(PodInfo::reference)
        .unwrap_or_else(|| "the ingress gateway".into());
    let kind = if obj.kind == "InferenceService" {
        "inferenceservice"
    } else if obj.kind == "Route" {
        "route.serving.knative.dev"
    } else {
        "ksvc"
    };
    Some(Reading {
        summary_extra: Some(format!(
            "Host `{host}` belongs to {} `{ns}/{}`, labelled `{VISIBILITY_LABEL}: cluster-local`: Knative publishes its routes only on the cluster-local gateway (knative-local-gateway), so the external gateway {gw} has no route for it — the 404 is the label doing its job.",
            obj.kind, obj.name
        )),
        fix: Some(format!(
            "To reach it from outside, remove the label: `kubectl label {kind} {} -n {ns} {VISIBILITY_LABEL}-` (Knative then publishes the external host again). To keep it private, call it from inside the cluster at its cluster-local URL {local_url}.",
            obj.name
        )),
        cited: vec![Cited {
            object: obj.reference(),
            why: format!(
                "labelled `{VISIBILITY_LABEL}: cluster-local`: its host is published only on the cluster-local gateway, not on the external one that answered 404"
            ),
        }],
        ..Reading::default()
    })
}

/// The state of one container of a pod object, in words, when it is not simply running ready.
fn container_trouble(pod: &Value, container: &str) -> Option<String> {
    let st = pod
        .pointer("/status/containerStatuses")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?;
    let ready = st.get("ready").and_then(Value::as_bool).unwrap_or(true);
    let restarts = st.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
    let last = st.pointer("/lastState/terminated");
    let waiting = st.pointer("/state/waiting/reason").and_then(Value::as_str);
    if ready && restarts == 0 && waiting.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    if !ready {
        parts.push("not ready".to_string());
    }
    if let Some(w) = waiting {
        parts.push(format!("waiting: {w}"));
    }
    if restarts > 0 {
        parts.push(format!("restartCount {restarts}"));
    }
    if let Some(t) = last {
        parts.push(format!(
            "last terminated: {} (exit {}) at {}",
            t.get("reason").and_then(Value::as_str).unwrap_or("-"),
            t.get("exitCode").and_then(Value::as_i64).unwrap_or(-1),
            t.get("finishedAt").and_then(Value::as_str).unwrap_or("-")
        ));
    }
    Some(parts.join(", "))
}

/// A `502`/`503` relayed by a revision pod's sidecar inbound from queue-proxy: queue-proxy's own
/// reply or the model's.
fn queue_proxy(site: &Site<'_>) -> Option<Reading> {
    let origin = site.origin();
    let r = &origin.record;
    let status = r.status()?;
    if !matches!(status, 502 | 503) || site.cause != Cause::AppError {
        return None;
    }
    let pod = pod_of(&site.ev.topology, origin)?;
    if !pod.containers.iter().any(|c| c == "queue-proxy") {
        return None;
    }
    let user = pod
        .containers
        .iter()
        .find(|c| {
            !matches!(
                c.as_str(),
                "queue-proxy" | "istio-proxy" | "istio-init" | "storage-initializer"
            )
        })?
        .clone();
    let obj = pod_object(site.ev, pod)?;
    let trouble = container_trouble(&obj.value, &user);
    let (extra, fix) = match (&trouble, status) {
        (Some(t), _) => (
            format!(
                "The {status} came from queue-proxy, not from the model: queue-proxy answers by itself when it cannot reach the user container `{user}` on its port (connection refused while the container is down or not ready) — and `{user}` of {} is {t}.",
                pod.reference()
            ),
            format!(
                "Fix the model container `{user}` of {} (its logs: `kubectl logs -n {} {} -c {user} --previous`; its probes, memory and start-up time); queue-proxy only reported that it could not reach it. queue-proxy's own log (`-c queue-proxy`) shows the refused connection.",
                pod.reference(),
                pod.namespace,
                pod.name
            ),
        ),
        (None, 502) => (
            format!(
                "A 502 relayed from queue-proxy is queue-proxy's own reply when its proxy to `{user}` failed (the model answers its own errors with its own status); `{user}` of {} shows as running and ready in the bundle, so look at queue-proxy's log for the refused or reset connection.",
                pod.reference()
            ),
            format!(
                "Read queue-proxy's log (`kubectl logs -n {} {} -c queue-proxy`) for `error reverse proxying request`, then the model container `{user}`'s log around the same time.",
                pod.namespace, pod.name
            ),
        ),
        _ => return None,
    };
    Some(Reading {
        summary_extra: Some(extra),
        fix: Some(fix),
        cited: vec![Cited {
            object: format!("Pod/{}/{}", pod.namespace, pod.name),
            why: format!(
                "containers {}: queue-proxy in front of the model container `{user}`{}",
                pod.containers.join(", "),
                trouble.map(|t| format!(" ({t})")).unwrap_or_default()
            ),
        }],
        ..Reading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_under_domain_templates() {
        assert!(host_of(
            "pd-predictor.vision-ai.example.com",
            "pd-predictor",
            "vision-ai"
        ));
        assert!(host_of(
            "pd-predictor-vision-ai.example.com",
            "pd-predictor",
            "vision-ai"
        ));
        assert!(host_of(
            "pd-predictor-vision-ai-lambda.example.com",
            "pd-predictor",
            "vision-ai"
        ));
        assert!(!host_of(
            "other-predictor-vision-ai.example.com",
            "pd-predictor",
            "vision-ai"
        ));
    }

    #[test]
    fn original_host_from_text_and_json_keys() {
        use std::borrow::Cow;
        use std::sync::Arc;
        for key in ["REQ(K-ORIGINAL-HOST)", "k_original_host", "K-Original-Host"] {
            let mut r = meshtrace_parsers::record::RawRecord::new(Arc::from("test"));
            r.push_extra(Arc::from(key), Cow::Borrowed("models.example.com"));
            assert_eq!(
                original_host(&r).as_deref(),
                Some("models.example.com"),
                "{key}"
            );
        }
        let mut r = meshtrace_parsers::record::RawRecord::new(Arc::from("test"));
        r.push_extra(Arc::from("REQ(K-ORIGINAL-HOST)"), Cow::Borrowed("-"));
        assert_eq!(original_host(&r), None, "unset");
    }
}
