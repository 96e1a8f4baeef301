//! `meshtrace describe pod|isvc NAME`: what `istioctl x describe pod` reports — Services and
//! ports, effective mTLS per port, DestinationRule TLS, AuthorizationPolicies, the Gateways and
//! VirtualServices that reach the pod, and the conflicts between them — from a bundle or live.

use std::io::Write;

use anyhow::{Result, bail};

use meshtrace_analysis::describe::{Inputs, MeshSettings, describe_isvc, describe_pod, find_pod};

use crate::commands::{EXIT_NOTHING, EXIT_OK};
use crate::report::OutputFormat;

/// What to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A pod (`NAME`, `NS/NAME`, or a unique name prefix).
    #[value(alias = "po")]
    Pod,
    /// A KServe InferenceService: its Knative objects, then each of its pods.
    #[value(alias = "inferenceservice")]
    Isvc,
}

/// Arguments of `describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// What to describe.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Evidence bundle: a folder or .tar.gz written by `meshtrace collect`, an istioctl
    /// bug-report or an OpenShift must-gather.
    #[arg(long, value_name = "DIR|FILE")]
    pub bundle: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Without --bundle, the objects are collected live from the cluster; `-n` is the
    /// namespace of the pod or InferenceService.
    #[command(flatten)]
    pub live: crate::commands::collect::LiveArgs,
}

/// Run `describe`. Exit 0, or 1 when an error-level conflict was found.
pub fn run(a: DescribeArgs) -> Result<i32> {
    let (_live, bundle) =
        crate::commands::collect::bundle_or_live(a.bundle.as_deref(), false, &a.live)?;
    let ev = crate::source::load::load(bundle.as_deref(), &[], None)?;
    if !ev.problems.is_empty() && !matches!(a.output, OutputFormat::Json | OutputFormat::Yaml) {
        crate::report::warn(format!(
            "{} part{} of the evidence could not be used (first: {}); `-o json` lists them all",
            ev.problems.len(),
            if ev.problems.len() == 1 { "" } else { "s" },
            ev.problems[0]
        ));
    }
    // A must-gather holds some objects twice (a namespace's list and the object's own file):
    // the first copy read is kept.
    let mut seen = std::collections::HashSet::new();
    let objects: Vec<_> = ev
        .objects
        .iter()
        .filter(|o| seen.insert(o.reference()))
        .cloned()
        .collect();
    let inputs = Inputs {
        objects: &objects,
        topology: &ev.topology,
        dumps: &ev.config_dumps,
        mesh: MeshSettings::from_objects(&ev.objects),
    };
    let ns = a.live.namespace.first().map(String::as_str);
    let mut out = crate::report::stdout();
    let errors = match a.kind {
        Kind::Pod => {
            let pod = match find_pod(&objects, ns, &a.name) {
                Ok(p) => p,
                Err(e) => bail!("{e}"),
            };
            let d = describe_pod(&inputs, pod);
            crate::report::describe::write_pod(&mut out, &d, &ev.problems, a.output)?;
            d.conflicts.iter().any(is_error)
        }
        Kind::Isvc => {
            let d = match describe_isvc(&inputs, ns, &a.name) {
                Ok(d) => d,
                Err(e) => bail!("{e}"),
            };
            crate::report::describe::write_isvc(&mut out, &d, &ev.problems, a.output)?;
            d.pods.iter().flat_map(|p| &p.conflicts).any(is_error)
        }
    };
    out.flush()?;
    Ok(if errors { EXIT_NOTHING } else { EXIT_OK })
}

fn is_error(c: &meshtrace_analysis::describe::Conflict) -> bool {
    c.severity == meshtrace_analysis::describe::Severity::Error
}
