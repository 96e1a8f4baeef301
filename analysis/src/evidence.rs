//! Everything an analysis needs, together: the parsed logs, the Kubernetes objects, who is who,
//! the config dumps, and what could not be used.

use crate::model::{LogSet, Object, PodDump};
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
