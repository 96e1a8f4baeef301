//! Platform readings of a trace's verdict: what Istio gateways, Knative and Seldon Core add to
//! a verdict once the bundle's objects are known ([`crate::gatewaybind`], [`crate::knative`],
//! [`crate::seldon`]), the terminations of the workload behind the failed hop
//! ([`crate::workload`]) and the external authorizer behind a CUSTOM policy ([`crate::extauthz`]), the inner hops that
//! still answered a client that went away ([`crate::gaveup`]), the VirtualService route to a cluster Istio never built ([`crate::subsets`]), the RequestAuthentication behind a refused token ([`crate::jwt`]), the VirtualService fault that aborted or delayed it ([`crate::fault`]). Each reading may restate the summary and fix, cite objects (replacing an
//! earlier citation of the same object) and add notes; `trace` applies them in order.

use crate::model::Cited;
use crate::reading::Site;

/// Apply every reading to the verdict's summary, fix, citations and notes.
pub fn apply(
    site: &Site<'_>,
    summary: &mut String,
    fix: &mut String,
    citations: &mut Vec<Cited>,
    notes: &mut Vec<String>,
) {
    let readings = [
        crate::gatewaybind::reading(site),
        crate::knative::reading(site),
        crate::seldon::reading(site),
        crate::workload::reading(site),
        crate::extauthz::reading(site),
        crate::gaveup::reading(site),
        crate::subsets::reading(site),
        crate::jwt::reading(site),
        crate::fault::reading(site),
    ];
    for r in readings.into_iter().flatten() {
        if let Some(s) = r.summary {
            *summary = s;
        }
        if let Some(s) = r.summary_extra {
            summary.push(' ');
            summary.push_str(&s);
        }
        if let Some(f) = r.fix {
            *fix = f;
        }
        // A reading's citation of an object replaces every earlier one of that object.
        citations.retain(|x| !r.cited.iter().any(|c| c.object == x.object));
        citations.extend(r.cited);
        notes.extend(r.notes);
    }
}
