//! A client that went away: when the first proxy logged the client's disconnect (`DC`,
//! `downstream_remote_disconnect`) and a proxy further in still answered, the request did not
//! fail in the mesh; the client stopped waiting. Pure.
//!
//! Envoy logs a request when it ends: the proxy the client left logs status 0 with `DC`; the
//! hops between may log resets (`DR`, `DC`) as the cancellation travels in; an application that
//! does not cancel its own call lets the inner hops finish and log their real status later, with
//! a longer duration.

use crate::causes::Cause;
use crate::reading::{Reading, Site, pod_of};

/// What the inner hops add to a downstream-disconnect verdict.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    if site.cause != Cause::DownstreamDisconnect {
        return None;
    }
    let waited = site.origin().record.duration_ms()?;
    // The innermost hop after the origin that answered with a status, and took longer than the
    // client waited.
    let (pos, line, status, took) = site
        .hops()
        .enumerate()
        .skip(site.origin_pos + 1)
        .filter_map(|(i, l)| {
            let status = l.record.status().filter(|s| (100..600).contains(s))?;
            let took = l.record.duration_ms()?;
            Some((i, l, status, took))
        })
        .filter(|(.., took)| *took > waited)
        .last()?;
    let who = pod_of(&site.ev.topology, line)
        .map(|p| format!("the {} {}", p.role.name(), p.reference()))
        .or_else(|| {
            line.record
                .downstream_local()
                .map(|a| format!("the proxy handling {a}"))
        })
        .unwrap_or_else(|| "a proxy further in".to_string());
    let outcome = if status < 400 {
        "the request itself succeeded"
    } else {
        "it ended with this status, which the client never saw"
    };
    Some(Reading {
        summary_extra: Some(format!(
            "The client stopped waiting after {waited} ms; hop {} ({who}) answered {status} after {took} ms, about {} ms later: {outcome}.",
            pos + 1,
            took.saturating_sub(waited)
        )),
        fix: Some(format!(
            "The client waited {waited} ms, less than this request takes ({took} ms at hop {}): raise the client's timeout (and any gateway or load balancer idle timeout in front of the mesh), or make the model answer faster (smaller inputs, more replicas, a warm pod). The proxies did not fail.",
            pos + 1
        )),
        ..Reading::default()
    })
}
