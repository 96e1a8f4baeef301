//! The mesh's access-log format for the manifest's `log_formats` of a live collection: the pure
//! reading of MeshConfig, SMCP and Telemetry objects is [`crate::source::meshformats`] (shared
//! with bundles read offline); this picks the pods collected.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::discover::{PodKey, name, namespace};
use crate::source::meshformats;

/// `log_formats` for the manifest: `default` and `<ns>/<pod>/istio-proxy` keys for the pods in
/// `selected` whose format differs (revision ConfigMaps, Telemetry resources).
pub fn log_formats(
    objects: &[Value],
    pods: &[Value],
    selected: &BTreeSet<PodKey>,
    notes: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let objects: Vec<&Value> = objects.iter().collect();
    let pods: Vec<&Value> = pods
        .iter()
        .filter(|p| selected.contains(&(namespace(p).to_string(), name(p).to_string())))
        .collect();
    meshformats::log_formats(&objects, &pods, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_selected_pods_get_keys() {
        let objects = vec![
            json!({"apiVersion":"telemetry.istio.io/v1","kind":"Telemetry","metadata":{"name":"t","namespace":"models"},
              "spec":{"accessLogging":[{"providers":[{"name":"custom"}]}]}}),
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"istio","namespace":"istio-system"},
              "data":{"mesh":"extensionProviders:\n- name: custom\n  envoyFileAccessLog:\n    logFormat:\n      text: \"%START_TIME% %RESPONSE_CODE%\\n\"\n"}}),
        ];
        let pods = vec![
            json!({"metadata":{"name":"p","namespace":"models"}}),
            json!({"metadata":{"name":"q","namespace":"models"}}),
        ];
        let sel = BTreeSet::from([("models".to_string(), "p".to_string())]);
        let mut notes = Vec::new();
        let f = log_formats(&objects, &pods, &sel, &mut notes);
        assert!(f.contains_key("models/p/istio-proxy"));
        assert!(!f.contains_key("models/q/istio-proxy"));
    }
}
