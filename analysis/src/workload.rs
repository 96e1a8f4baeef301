//! The workload behind a failed hop: when the pod a proxy could not reach, or that closed the
//! connection, has a container that was killed or crashed (`lastState.terminated` in its
//! status), say which container, why (`OOMKilled`, exit code 137) and when, next to the
//! verdict. Pure.
//!
//! Kubernetes documents the reason `OOMKilled` for a container the kernel killed for exceeding
//! its memory limit ("Assign Memory Resources to Containers and Pods"); the sockets of a killed
//! process are closed by the kernel, so each request it held ends at its sidecar as a reset
//! (`UC`, `upstream_reset_before_response_started{connection_termination}`), and while it
//! restarts the sidecar's connections are refused (`UF`) or the pod is not ready (`UH`).

use crate::causes::Cause;
use crate::reading::{Reading, Site, pod_object, pod_of, upstream_pod};
use crate::topology::{PodInfo, PodRole, Termination};

/// A termination this close to the failed request (seconds) is called "at the time of" it.
const NEAR_SECONDS: i64 = 120;

/// What the terminations of the failing hop's workload add to the verdict.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    if !matches!(
        site.cause,
        Cause::UpstreamReset | Cause::UpstreamConnectFailure | Cause::NoHealthyUpstream
    ) {
        return None;
    }
    let pod = workload(site)?;
    if pod.role == PodRole::SeldonPredictor && pod.seldon.is_some() {
        // The Seldon Core reading says the same with the SeldonDeployment's own fields.
        return None;
    }
    let t = pod
        .terminations
        .iter()
        .filter(|t| t.container != "istio-proxy")
        .max_by_key(|t| (t.oom_killed(), t.finished_at.clone()))?;
    let (when, near) = when(site, t);
    let what = match site.cause {
        Cause::UpstreamReset => {
            "a request a container holds when it is killed or crashes is reset this way"
        }
        Cause::UpstreamConnectFailure => {
            "while a container restarts, connections to its port are refused"
        }
        _ => "while a container restarts, its pod is not ready and has no healthy endpoint",
    };
    let mut r = Reading {
        summary_extra: Some(format!(
            "Container `{}` of {} last ended {}{when} and restarted {} time(s): {what}.",
            t.container,
            pod.reference(),
            t.describe(),
            t.restarts
        )),
        ..Reading::default()
    };
    let previous = format!(
        "`kubectl logs --previous -n {} {} -c {}`",
        pod.namespace, pod.name, t.container
    );
    if !near {
        // Another event than this failure, most likely: context, not the fix.
        return Some(r);
    }
    r.fix = Some(if t.oom_killed() {
        let now = memory_limit(site, pod, &t.container)
            .map(|l| format!(", now {l},"))
            .unwrap_or_default();
        let limit = if pod.isvc.is_some() {
            "`resources.limits.memory` of this component in the InferenceService (`spec.predictor.model.resources` for a predictor)"
        } else {
            "the container's `resources.limits.memory`"
        };
        format!(
            "Give `{}` more memory: raise {limit}{now} above what the model needs for its largest request, or send smaller requests and batches. {previous} shows what it was doing when it was killed.",
            t.container
        )
    } else {
        format!(
            "Find out why `{}` exited ({}): {previous} shows its last output; fix the crash (model loading, a bad request, a failing health check) before looking at the proxies, which only relayed it.",
            t.container,
            t.describe()
        )
    });
    Some(r)
}

/// The memory limit of a container, from the pod object (`resources.limits.memory`).
fn memory_limit(site: &Site<'_>, pod: &PodInfo, container: &str) -> Option<String> {
    pod_object(site.ev, pod)?
        .value
        .pointer("/spec/containers")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(serde_json::Value::as_str) == Some(container))?
        .pointer("/resources/limits/memory")
        .and_then(serde_json::Value::as_str)
        .filter(|l| l.len() <= 32)
        .map(str::to_string)
}

/// The pod whose container the failed hop depended on: the one at the upstream address, or the
/// origin's own pod when its cluster is an inbound one (the application beside the sidecar).
fn workload<'a>(site: &Site<'a>) -> Option<&'a PodInfo> {
    let topo = &site.ev.topology;
    let origin = site.origin();
    upstream_pod(topo, origin).or_else(|| {
        let inbound = origin
            .record
            .upstream_cluster()
            .is_some_and(|c| c.is_inbound());
        inbound.then(|| pod_of(topo, origin)).flatten()
    })
}

/// When the termination happened and how near the request: (` at 2026-…Z (3 h before this
/// request)`, near). Near also when either time is unknown: nothing says it is another event.
fn when(site: &Site<'_>, t: &Termination) -> (String, bool) {
    let Some(at) = t.finished_at.as_deref() else {
        return (String::new(), true);
    };
    let ended = meshtrace_parsers::record::parse_rfc3339(at);
    let started = site.origin().record.start_time();
    let (gap, near) = match (ended, started) {
        (Some(e), Some(s)) => {
            let secs = (e - s).num_seconds();
            if secs.abs() <= NEAR_SECONDS {
                (" (at the time of this request)".to_string(), true)
            } else {
                let side = if secs < 0 { "before" } else { "after" };
                (
                    format!(" ({} {side} this request)", span(secs.unsigned_abs())),
                    false,
                )
            }
        }
        _ => (String::new(), true),
    };
    (format!(" at {at}{gap}"), near)
}

/// `5 min`, `3 h`, `2 d`.
fn span(secs: u64) -> String {
    match secs {
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3_600),
        s => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_descriptions() {
        assert_eq!(span(59), "0 min");
        assert_eq!(span(300), "5 min");
        assert_eq!(span(3_600), "1 h");
        assert_eq!(span(172_799), "47 h");
        assert_eq!(span(172_800), "2 d");
        let mut t = Termination {
            container: "kserve-container".into(),
            restarts: 2,
            reason: Some("OOMKilled".into()),
            exit_code: 137,
            finished_at: None,
        };
        assert!(t.oom_killed());
        assert_eq!(t.describe(), "OOMKilled (exit code 137)");
        t.reason = None;
        assert!(!t.oom_killed());
        assert_eq!(t.describe(), "exit code 137");
        t.reason = Some("x".repeat(500));
        assert_eq!(t.describe(), format!("{} (exit code 137)", "x".repeat(64)));
    }
}
