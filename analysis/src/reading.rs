//! What a platform reading of a verdict sees ([`Site`]) and adds ([`Reading`]): shared by the
//! Istio gateway, Knative and Seldon Core readings; the `refine` module applies them.

use crate::causes::Cause;
use crate::evidence::Evidence;
use crate::model::{Cited, LogLine, Object};

/// What one request's trace knows when the readings run.
pub struct Site<'a> {
    /// The evidence (objects, topology).
    pub ev: &'a Evidence,
    /// The lines the trace read.
    pub lines: &'a [LogLine],
    /// The request's hops, client first (indexes into `lines`).
    pub order: &'a [usize],
    /// Position of the origin hop in `order`.
    pub origin_pos: usize,
    /// The verdict's cause so far.
    pub cause: Cause,
}

impl<'a> Site<'a> {
    /// The origin hop's line.
    pub fn origin(&self) -> &'a LogLine {
        &self.lines[self.order[self.origin_pos]]
    }

    /// The hops' lines, client first.
    pub fn hops(&self) -> impl Iterator<Item = &'a LogLine> + '_ {
        self.order.iter().map(|&i| &self.lines[i])
    }
}

/// What a reading adds to the verdict.
#[derive(Debug, Default)]
pub struct Reading {
    /// A more exact summary.
    pub summary: Option<String>,
    /// A sentence appended to the summary.
    pub summary_extra: Option<String>,
    /// A more exact fix.
    pub fix: Option<String>,
    /// Objects to cite (earlier citations of the same objects are dropped).
    pub cited: Vec<Cited>,
    /// Remarks.
    pub notes: Vec<String>,
}

/// The pod that wrote a line: from the log's path, else from its listener address.
pub fn pod_of<'t>(
    topo: &'t crate::topology::Topology,
    l: &LogLine,
) -> Option<&'t crate::topology::PodInfo> {
    l.pod
        .as_deref()
        .and_then(|p| p.split_once('/'))
        .and_then(|(ns, name)| topo.pod(ns, name))
        .or_else(|| {
            l.record
                .downstream_local()
                .and_then(|a| a.ip())
                .and_then(|ip| topo.pod_by_ip(ip))
        })
}

/// The pod at the upstream host a line logged, when the topology knows its address.
pub fn upstream_pod<'t>(
    topo: &'t crate::topology::Topology,
    l: &LogLine,
) -> Option<&'t crate::topology::PodInfo> {
    l.record
        .upstream_host()
        .and_then(|a| a.ip())
        .and_then(|ip| topo.pod_by_ip(ip))
}

/// The Pod object of the evidence behind a pod of the topology (its spec and raw status).
pub fn pod_object<'e>(ev: &'e Evidence, pod: &crate::topology::PodInfo) -> Option<&'e Object> {
    ev.objects.iter().find(|o| {
        o.kind == "Pod" && o.name == pod.name && o.namespace.as_deref() == Some(&pod.namespace)
    })
}

/// A Host header without its port.
pub fn host_only(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((h, p))
            if !h.contains(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) =>
        {
            h
        }
        _ => authority,
    }
}
