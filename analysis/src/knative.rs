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
//!   refused on 8080), told apart from the model's own errors with the pod's container status;
//! - the activator's and queue-proxy's own line about the failure (`error reverse proxying
//!   request`, read by `meshtrace_parsers::knative`): for the revision the request went to, at its
//!   time, what their proxy's connection met (refused, closed, timed out, canceled) and where;
//!   and, for `explain`, each such line on its own ([`explain_knative_lines`]).

use std::sync::Arc;

use serde::Serialize;
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
    let qp = queue_proxy(site);
    let told_502 = qp.is_some();
    if let Some(x) = qp {
        r.summary_extra = x.summary_extra;
        r.fix = r.fix.or(x.fix);
        r.cited.extend(x.cited);
        any = true;
    }
    if let Some(x) = proxy_error(site, told_502) {
        r.summary_extra = match (r.summary_extra.take(), x.summary_extra) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")),
            (a, b) => a.or(b),
        };
        r.fix = r.fix.or(x.fix);
        r.notes.extend(x.notes);
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

/// How far before a request's start and after its end a Knative proxy line is taken as about
/// it (ms): clocks of different pods, and a line logged once the proxy gave up.
const LINE_SLACK_BEFORE_MS: i64 = 1_000;
const LINE_SLACK_AFTER_MS: i64 = 2_000;

/// The Knative revisions (`namespace/name`) and services a trace's hops went to: upstream
/// clusters' hosts (`name.ns.svc.cluster.local`, a revision's `-private` Service) and the pods
/// that wrote the lines (a revision's pods are `<revision>-deployment-<hash>-<id>`).
fn revisions_of(site: &Site<'_>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |ns: &str, name: &str| {
        let name = name.strip_suffix("-private").unwrap_or(name);
        if !ns.is_empty() && !name.is_empty() && !out.iter().any(|(a, b)| a == ns && b == name) {
            out.push((ns.to_string(), name.to_string()));
        }
    };
    for l in site.hops() {
        // The upstream cluster's host, and an inbound hop's SNI (Istio's `outbound_.80_._.host`:
        // the Service the caller addressed).
        let hosts = [
            l.record
                .upstream_cluster()
                .and_then(|c| c.host().map(str::to_string)),
            l.record
                .sni()
                .and_then(meshtrace_parsers::cluster::parse_cluster_name)
                .and_then(|c| c.host().map(str::to_string)),
        ];
        for host in hosts.into_iter().flatten() {
            let mut parts = host.split('.');
            if let (Some(name), Some(ns), Some("svc")) = (parts.next(), parts.next(), parts.next())
            {
                add(ns, name);
            }
        }
        if let Some((ns, pod)) = l.pod.as_deref().and_then(|p| p.split_once('/'))
            && let Some((rev, _)) = pod.split_once("-deployment-")
        {
            add(ns, rev);
        }
    }
    out
}

/// Is revision `key` (`namespace/name`) one the trace went to: that revision, or a revision of
/// that Knative service (`<service>-00001`)?
fn same_revision(key: &str, went: &[(String, String)]) -> bool {
    let Some((ns, name)) = key.split_once('/') else {
        return false;
    };
    // A revision is its service's name and a five-digit generation.
    let service = crate::diagnose::is_knative_revision(name)
        .then(|| name.rsplit_once('-').map(|(base, _)| base))
        .flatten();
    went.iter()
        .any(|(n, r)| n == ns && (r == name || service == Some(r.as_str())))
}

/// What a Knative proxy's error means, in words, and what to do.
fn proxy_error_words(e: &meshtrace_parsers::knative::ProxyError) -> (String, String) {
    use meshtrace_parsers::knative::{Component, ErrorKind, Failure};
    if e.failure == Failure::Capacity {
        return capacity_words(e);
    }
    let at = e
        .target
        .as_deref()
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    let rev = e.revision.as_deref().unwrap_or("the revision");
    let (ns, name) = rev.split_once('/').unwrap_or(("<namespace>", rev));
    let meaning = match (e.kind, e.component) {
        (ErrorKind::Refused, Component::QueueProxy) => format!(
            "queue-proxy could not connect to the model container{at}: nothing listened there (the container was starting, had crashed or restarted, or listens on another port than the one the revision declares)"
        ),
        (ErrorKind::Refused, Component::Activator) => format!(
            "the activator could not connect to a pod of the revision{at}: its queue-proxy was not listening (the pod was starting or shutting down)"
        ),
        (ErrorKind::Closed, _) => format!(
            "the connection{at} closed before the response was complete: the container behind it crashed, was OOMKilled or restarted mid-request, or closed the connection itself"
        ),
        (ErrorKind::Timeout, _) => format!(
            "no answer came{at} in the time allowed: the model took longer than the revision's timeout"
        ),
        (ErrorKind::Canceled, _) => "the request was canceled while it was proxied: the client or a proxy in front of Knative gave up first".to_string(),
        (ErrorKind::Unreachable, _) => format!(
            "the address{at} could not be reached: the pod was gone or its address did not resolve"
        ),
        (ErrorKind::Other, _) => format!("its proxy failed{at}"),
    };
    let fix = match e.kind {
        ErrorKind::Refused | ErrorKind::Closed => format!(
            "Look at the model container of revision {rev}: `kubectl get pods -n {ns} -l serving.knative.dev/revision={name}` (restarts, OOMKilled in `lastState`), its logs with `--previous`, and whether its readiness probe passes only once the model is loaded and listening on the declared port."
        ),
        ErrorKind::Timeout => format!(
            "Make the model answer faster, or raise the revision's timeout (KServe: `spec.predictor.timeout`; Knative: `spec.template.spec.timeoutSeconds` of the Service of {rev})."
        ),
        ErrorKind::Canceled => "Raise the timeout of whoever gave up (the client, the gateway route's `timeout`) above the model's response time, or make the model faster.".to_string(),
        ErrorKind::Unreachable | ErrorKind::Other => format!(
            "Check the pods and endpoints of revision {rev}: `kubectl get pods,endpoints -n {ns} -l serving.knative.dev/revision={name}`."
        ),
    };
    (meaning, fix)
}

/// One Knative activator or queue-proxy error line as `explain` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct KnativeReport {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line.
    pub line: u64,
    /// `activator` or `queue-proxy`.
    pub component: &'static str,
    /// The message (`error reverse proxying request`, `Throttler try error`).
    pub message: &'static str,
    /// The time as written.
    pub time: Option<String>,
    /// The revision, `namespace/name`.
    pub revision: Option<String>,
    /// The pod that wrote it.
    pub pod: Option<String>,
    /// Go's error, as written (cut to a readable length).
    pub error: String,
    /// What the error says happened: `refused`, `closed`, `timeout`, `canceled`, `unreachable`,
    /// `other`.
    pub kind: &'static str,
    /// The address the error names.
    pub target: Option<String>,
    /// What it means.
    pub summary: String,
    /// What to do.
    pub fix: String,
}

/// Read every Knative activator or queue-proxy error line, in the order read.
pub fn explain_knative_lines(lines: &[crate::model::KnativeLine]) -> Vec<KnativeReport> {
    use meshtrace_parsers::knative::Component;
    lines
        .iter()
        .map(|k| {
            let e = &k.error;
            let (meaning, fix) = proxy_error_words(e);
            KnativeReport {
                input: k.input.clone(),
                line: k.line,
                component: match e.component {
                    Component::Activator => "activator",
                    Component::QueueProxy => "queue-proxy",
                },
                message: e.failure.message(),
                time: e.time.clone(),
                revision: e.revision.clone(),
                pod: e.pod.clone(),
                error: e.error.clone(),
                kind: e.kind.id(),
                target: e.target.clone(),
                summary: format!("{}.", capitalised(&meaning)),
                fix,
            }
        })
        .collect()
}

/// What the activator's `Throttler try error` means: the request waited in the activator for a
/// pod of the revision with room, and none took it (Knative's activator handler answers 503 for
/// a deadline or a full queue, 500 otherwise).
fn capacity_words(e: &meshtrace_parsers::knative::ProxyError) -> (String, String) {
    use meshtrace_parsers::knative::ErrorKind;
    let rev = e.revision.as_deref().unwrap_or("the revision");
    let (ns, name) = rev.split_once('/').unwrap_or(("<namespace>", rev));
    let pods = format!(
        "`kubectl get pods -n {ns} -l serving.knative.dev/revision={name}` (Pending, ImagePullBackOff, CrashLoopBackOff, not Ready), `kubectl describe pod` and the namespace's events, and the revision's conditions (`kubectl get revision {name} -n {ns} -o yaml`)"
    );
    let lower = e.error.to_ascii_lowercase();
    if lower.contains("queue full") || lower.contains("overload") {
        return (
            format!(
                "the activator's queue of requests waiting for revision {rev} was full: more requests arrived than its pods had room for while it scaled"
            ),
            format!(
                "Give revision {rev} room sooner: a higher `autoscaling.knative.dev/min-scale`, a larger `containerConcurrency` if the model can take it, or a lower request rate. Check its pods: {pods}."
            ),
        );
    }
    match e.kind {
        ErrorKind::Timeout => (
            format!(
                "the activator waited for a ready pod of revision {rev} and none took the request before its deadline: scaling from zero failed or was too slow (image pull, model download or load, a readiness probe that never passes, no node with room or GPUs)"
            ),
            format!(
                "Find why no pod of revision {rev} became ready: {pods}. If the model only loads slowly, keep a pod warm (`autoscaling.knative.dev/min-scale: \"1\"`) or raise the revision's timeout."
            ),
        ),
        ErrorKind::Canceled => (
            format!(
                "the request was canceled while it waited in the activator for a ready pod of revision {rev}: the client or a proxy in front gave up while the revision was scaling"
            ),
            format!(
                "Find why revision {rev} took so long to get a ready pod: {pods}; keep a pod warm (`autoscaling.knative.dev/min-scale: \"1\"`) or raise the client's and the gateway route's timeout above the cold start."
            ),
        ),
        _ => (
            format!("the activator could not get a pod of revision {rev} to take the request"),
            format!("Check the pods and endpoints of revision {rev}: {pods}."),
        ),
    }
}

/// The activator's or queue-proxy's own line about this request's failure: for a revision the
/// request went to, logged between its start and shortly after its end. `told_502`: the 502 is
/// already said to be queue-proxy's.
fn proxy_error(site: &Site<'_>, told_502: bool) -> Option<Reading> {
    let lines = &site.ev.logs.knative;
    if lines.is_empty() {
        return None;
    }
    let origin = site.origin();
    let status = origin.record.status()?;
    if (200..500).contains(&status) {
        return None;
    }
    let start = site
        .hops()
        .filter_map(|l| l.record.start_time())
        .map(|t| t.timestamp_millis())
        .min()?;
    let end = site
        .hops()
        .filter_map(|l| {
            Some(l.record.start_time()?.timestamp_millis() + l.record.duration_ms()? as i64)
        })
        .max()
        .unwrap_or(start);
    let went = revisions_of(site);
    let near = |t: i64| t >= start - LINE_SLACK_BEFORE_MS && t <= end + LINE_SLACK_AFTER_MS;
    let mut found: Vec<&crate::model::KnativeLine> = lines
        .iter()
        .filter(|k| {
            k.error.time_ms.is_some_and(near)
                && k.error
                    .revision
                    .as_deref()
                    .is_some_and(|r| same_revision(r, &went))
        })
        .collect();
    // The nearest to the request's end first; one line per component.
    found.sort_by_key(|k| (k.error.time_ms.unwrap_or(0) - end).abs());
    let mut seen = Vec::new();
    found.retain(|k| {
        let fresh = !seen.contains(&k.error.component);
        seen.push(k.error.component);
        fresh
    });
    // queue-proxy's line (nearer the model) before the activator's.
    found.sort_by_key(|k| k.error.component != meshtrace_parsers::knative::Component::QueueProxy);
    let first = found.first()?;
    let mut extra = Vec::new();
    let mut notes = Vec::new();
    for k in &found {
        let e = &k.error;
        let (meaning, _) = proxy_error_words(e);
        let who = match (e.component, e.pod.as_deref()) {
            (c, Some(p)) => format!("{} ({p})", c.name()),
            (c, None) => c.name().to_string(),
        };
        extra.push(format!(
            "{} logged `{}` for revision {} at {}: `{}` — {meaning}.",
            capitalised(&who),
            e.failure.message(),
            e.revision.as_deref().unwrap_or("-"),
            e.time.as_deref().unwrap_or("-"),
            e.error
        ));
        notes.push(format!(
            "{}:{}: {} line about this request's failure (revision {}, within {} s of the request)",
            k.input,
            k.line,
            e.component.name(),
            e.revision.as_deref().unwrap_or("-"),
            (LINE_SLACK_AFTER_MS / 1000)
        ));
    }
    let (_, fix) = proxy_error_words(&first.error);
    // Knative's error handler answers 502 Bad Gateway when its proxy fails: a 502 relayed from
    // there is the proxy's own answer, not the model's.
    if first.error.failure == meshtrace_parsers::knative::Failure::Capacity
        && matches!(status, 500 | 503)
    {
        extra.push(format!(
            "The activator answers {status} by itself when no pod of the revision takes the request, so this {status} is the activator's own answer, not the model's."
        ));
    } else if status == 502 && !told_502 {
        extra.push(format!(
            "Knative answers 502 by itself when its proxy fails, so this 502 is {}'s own answer, not the model's.",
            first.error.component.name()
        ));
    }
    Some(Reading {
        summary_extra: Some(extra.join(" ")),
        fix: Some(fix),
        notes,
        ..Reading::default()
    })
}

/// `s` with its first letter upper-case.
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
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
