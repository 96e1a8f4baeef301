//! Which files of a bundle folder or archive are read, and as what: meshtrace's own layout
//! (`docs/bundle.md`), an `istioctl bug-report` ([`bugreport`]) and an OpenShift
//! must-gather ([`mustgather`]). Pure: paths in, a [`Part`] or the reason a file is
//! not read out.

pub mod bugreport;
pub mod mustgather;

/// What a file of a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// `meshtrace-bundle.json`.
    Manifest,
    /// Kubernetes objects: one object, a `List` (`items`), several YAML documents or a JSON array.
    Resources,
    /// A container log.
    Log {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
        /// Container.
        container: String,
        /// The previous container's log.
        previous: bool,
    },
    /// An Envoy admin `/config_dump` of a pod's proxy.
    ConfigDump {
        /// Namespace.
        namespace: String,
        /// Pod.
        pod: String,
    },
    /// Not read, and not worth a note (a README beside the evidence).
    Quiet,
}

/// Why a file is not read: said once per file as `<path> is not read: <why>`.
pub type Ignored = &'static str;

/// The reason for a file no layout knows.
pub const OUTSIDE: Ignored =
    "not part of a meshtrace bundle, an istioctl bug-report or a must-gather";

/// What a file at `parts` (the path inside the bundle, folders first) holds, or why it is not
/// read. meshtrace's own layout is tried first (it is anchored at the bundle's top), then the
/// bug-report and must-gather layouts (found anywhere below the top, since archives of either
/// add one or two folders above them).
pub fn classify(parts: &[String]) -> Result<Part, Ignored> {
    if let Some(p) = own(parts) {
        return Ok(p);
    }
    // `meshtrace gather` (the must-gather image) writes a bundle in a `meshtrace/` folder:
    // `must-gather.local.<N>/<image>/meshtrace/…` once `oc adm must-gather` copied it back.
    if let Some(p) = (1..=MAX_NESTED_DEPTH.min(parts.len()))
        .filter(|&k| parts[k - 1] == "meshtrace")
        .find_map(|k| own(&parts[k..]))
    {
        return Ok(p);
    }
    if let Some(r) = bugreport::classify(parts) {
        return r;
    }
    if let Some(r) = mustgather::classify(parts) {
        return r;
    }
    // A bundle folder archived under its own name (`tar czf b.tgz my-bundle/`, a zip of the
    // folder): meshtrace's layout one or two folders down.
    if let Some(p) =
        (1..=MAX_WRAPPING_FOLDERS.min(parts.len().saturating_sub(1))).find_map(|k| own(&parts[k..]))
    {
        return Ok(p);
    }
    let file = parts
        .last()
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_default();
    if file.starts_with("readme") {
        return Ok(Part::Quiet);
    }
    Err(OUTSIDE)
}

/// How deep a meshtrace bundle in a `meshtrace/` folder may sit (the folder included).
const MAX_NESTED_DEPTH: usize = 3;

/// Folders of any name a bundle may sit in (an archive of the bundle's folder, or of its
/// parent).
const MAX_WRAPPING_FOLDERS: usize = 2;

/// Is this file name YAML or JSON by its extension?
pub fn is_data(file: &str) -> bool {
    let lower = file.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// meshtrace's own layout (`docs/bundle.md`).
fn own(parts: &[String]) -> Option<Part> {
    let file = parts.last()?;
    match (parts.first()?.as_str(), parts.len()) {
        ("meshtrace-bundle.json", 1) => Some(Part::Manifest),
        ("pods.json", 1) => Some(Part::Resources),
        ("resources", n) if n > 1 && is_data(file) => Some(Part::Resources),
        ("logs", 4) => {
            let (container, previous) = container_of(file)?;
            Some(Part::Log {
                namespace: parts[1].clone(),
                pod: parts[2].clone(),
                container,
                previous,
            })
        }
        ("config_dump", 3) if file.to_ascii_lowercase().ends_with(".json") => {
            Some(Part::ConfigDump {
                namespace: parts[1].clone(),
                pod: file.get(..file.len() - 5).unwrap_or(file).to_string(),
            })
        }
        _ => None,
    }
}

/// Container name and whether it is the previous container, from a log file name:
/// `<container>.log`, `<container>.previous.log`, or either with `.gz` (gzip logs are
/// decompressed as they are read). Suffixes match ignoring case.
pub fn container_of(file: &str) -> Option<(String, bool)> {
    let lower = file.to_ascii_lowercase();
    let suffix = [".log", ".log.gz"]
        .into_iter()
        .find(|s| lower.ends_with(s))?;
    let stem = file.get(..file.len() - suffix.len())?;
    if stem.is_empty() {
        return None;
    }
    match lower.get(..stem.len())?.strip_suffix(".previous") {
        Some(c) => Some((stem.get(..c.len())?.to_string(), true)),
        None => Some((stem.to_string(), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn own_layout() {
        assert_eq!(classify(&p("meshtrace-bundle.json")), Ok(Part::Manifest));
        assert_eq!(classify(&p("pods.json")), Ok(Part::Resources));
        assert_eq!(classify(&p("resources/a/b.yml")), Ok(Part::Resources));
        assert_eq!(
            classify(&p("logs/ns/pod/istio-proxy.previous.log.gz")),
            Ok(Part::Log {
                namespace: "ns".into(),
                pod: "pod".into(),
                container: "istio-proxy".into(),
                previous: true
            })
        );
        assert_eq!(
            classify(&p("config_dump/ns/pod.json")),
            Ok(Part::ConfigDump {
                namespace: "ns".into(),
                pod: "pod".into()
            })
        );
        assert_eq!(classify(&p("README.md")), Ok(Part::Quiet));
        // `meshtrace gather`'s bundle inside a must-gather.
        assert_eq!(
            classify(&p(
                "must-gather.local.1/quay-io-meshtrace-sha256-1/meshtrace/pods.json"
            )),
            Ok(Part::Resources)
        );
        assert_eq!(
            classify(&p(
                "must-gather.local.1/img/meshtrace/meshtrace-bundle.json"
            )),
            Ok(Part::Manifest)
        );
        assert_eq!(classify(&p("core")), Err(OUTSIDE));
        assert_eq!(classify(&p("logs/ns/pod/.log")), Err(OUTSIDE));
    }
}
