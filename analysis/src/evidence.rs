//! Everything an analysis needs, together: the parsed logs, the Kubernetes objects, who is who,
//! the config dumps, and what could not be used.

use crate::diagnose::Context;
use crate::model::{LogSet, Object, PodDump};
use crate::topology::PodRole;
use crate::topology::Topology;

/// Everything an analysis needs.
#[derive(Debug, Default)]
pub struct Evidence {
    /// Parsed log lines of every input.
    pub logs: LogSet,
    /// Kubernetes objects (from a bundle).
    pub objects: Vec<Object>,
    /// Who is who.
    pub topology: Topology,
    /// What could not be used, one sentence each.
    pub problems: Vec<String>,
    /// The bundle opened, if any.
    pub bundle: Option<String>,
    /// When the bundle was collected (its manifest's `collected_at`).
    pub collected_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// The bundle's Envoy config dumps that could be read.
    pub config_dumps: Vec<PodDump>,
}

impl Evidence {
    /// What is known about addresses, for diagnosis: what the lines say (a proxy forwarding to
    /// a revision's private Service is an activator) plus the topology's activator pods and pods
    /// without a sidecar. Every analysis builds its `Context` here.
    pub fn context(&self) -> Context {
        let mut ctx = Context::from_records(self.logs.records.iter().map(|l| &l.record));
        for p in &self.topology.pods {
            if p.role == PodRole::Activator {
                ctx.activators.extend(p.ips.iter().copied());
            }
            if !p.has_sidecar {
                ctx.without_sidecar.extend(p.ips.iter().copied());
            }
        }
        ctx.tls_listeners = crate::gatewaytls::tls_listeners(&self.topology);
        ctx
    }
}
