//! The mesh's access-log formats, read from its objects: MeshConfig (the `istio` ConfigMap and
//! the revision ConfigMaps `istio-<rev>`, key `mesh`: `accessLogFormat`, `accessLogEncoding`,
//! `extensionProviders[].envoyFileAccessLog.logFormat`), an OpenShift Service Mesh 2
//! ServiceMeshControlPlane (`spec.proxy.accessLogging.file`) and Telemetry resources
//! (`accessLogging[].providers[].name` choosing an extension provider: mesh-wide in the root
//! namespace, namespace-wide, or for the workloads `selector.matchLabels` selects). Pure: used by
//! live collection (the manifest's `log_formats`) and by bundles read offline alike.

use std::collections::BTreeMap;

use meshtrace_parsers::detect::FormatSpec;
use serde_json::Value;

/// The container whose access log the mesh's formats describe.
pub const PROXY: &str = "istio-proxy";

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn namespace(v: &Value) -> &str {
    str_at(v, "/metadata/namespace").unwrap_or("")
}

fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or("")
}

fn kind(v: &Value) -> &str {
    str_at(v, "/kind").unwrap_or("")
}

fn group(v: &Value) -> &str {
    let av = str_at(v, "/apiVersion").unwrap_or("");
    av.split_once('/').map_or("", |(g, _)| g)
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// Does the pod carry every `k=v` of `sel` (an empty selector selects nothing)?
fn matches(pod: &Value, sel: &BTreeMap<String, String>) -> bool {
    !sel.is_empty() && sel.iter().all(|(k, v)| label(pod, k) == Some(v.as_str()))
}

/// The `log_formats` key of a pod's proxy: `<namespace>/<pod>/istio-proxy`.
pub fn proxy_key(pod: &Value) -> String {
    format!("{}/{}/{PROXY}", namespace(pod), name(pod))
}

/// A format as a `--log-format` value, from a MeshConfig-like `format` + `encoding`.
fn format_value(format: Option<&str>, encoding: Option<&str>) -> Option<String> {
    let f = format.map(str::trim).filter(|f| !f.is_empty());
    let json = encoding.is_some_and(|e| e.eq_ignore_ascii_case("JSON"));
    match (f, json) {
        (Some(f), _) => Some(f.to_string()),
        (None, true) => Some("json".to_string()),
        (None, false) => None,
    }
}

/// An extension provider's log format (`envoyFileAccessLog.logFormat.text` or `.labels`).
fn provider_format(p: &Value) -> Option<String> {
    let lf = p.pointer("/envoyFileAccessLog/logFormat")?;
    if let Some(t) = lf.get("text").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    if let Some(l) = lf.get("labels").and_then(Value::as_object) {
        return serde_json::to_string(l).ok();
    }
    None
}

fn mesh_of(cm: &Value) -> Option<Value> {
    let text = str_at(cm, "/data/mesh")?;
    meshtrace_analysis::document::embedded_yaml(text)
}

fn accept(value: String, whence: &str, notes: &mut Vec<String>) -> Option<String> {
    match FormatSpec::parse(&value) {
        Ok(_) => Some(value),
        Err(e) => {
            notes.push(format!(
                "{whence}: access-log format not usable ({e}); lines are auto-detected"
            ));
            None
        }
    }
}

/// `log_formats` in the manifest's shape: `default` (MeshConfig, SMCP or a root-namespace
/// Telemetry; `auto` when none says) and `<ns>/<pod>/istio-proxy` keys for the pods of `pods`
/// whose format differs (revision ConfigMaps by `istio.io/rev`, namespace and selector
/// Telemetry resources; a narrower scope wins). `notes` says where each format came from and
/// which could not be used.
pub fn log_formats(
    objects: &[&Value],
    pods: &[&Value],
    notes: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([("default".to_string(), "auto".to_string())]);
    let mut providers: BTreeMap<String, String> = BTreeMap::new();
    let mut root_ns: Option<String> = None;
    let cms: Vec<&Value> = objects
        .iter()
        .copied()
        .filter(|o| group(o).is_empty() && kind(o) == "ConfigMap")
        .filter(|o| name(o) == "istio" || name(o).starts_with("istio-"))
        .collect();
    for cm in &cms {
        let Some(mesh) = mesh_of(cm) else { continue };
        let whence = format!("ConfigMap {}/{}", namespace(cm), name(cm));
        if let Some(ps) = mesh.get("extensionProviders").and_then(Value::as_array) {
            for p in ps {
                if let (Some(n), Some(f)) =
                    (p.get("name").and_then(Value::as_str), provider_format(p))
                {
                    providers.insert(n.to_string(), f);
                }
            }
        }
        if name(cm) == "istio" {
            root_ns = mesh
                .get("rootNamespace")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| Some(namespace(cm).to_string()));
        }
        let Some(f) = format_value(
            mesh.get("accessLogFormat").and_then(Value::as_str),
            mesh.get("accessLogEncoding").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(f) = accept(f, &whence, notes) else {
            continue;
        };
        if name(cm) == "istio" {
            notes.push(format!(
                "access-log format from {whence} (MeshConfig accessLogFormat)"
            ));
            out.insert("default".into(), f);
        } else if let Some(rev) = name(cm).strip_prefix("istio-") {
            for p in pods
                .iter()
                .filter(|p| label(p, "istio.io/rev") == Some(rev))
            {
                out.insert(proxy_key(p), f.clone());
            }
        }
    }
    // OpenShift Service Mesh 2.x.
    for smcp in objects
        .iter()
        .filter(|o| group(o) == "maistra.io" && kind(o) == "ServiceMeshControlPlane")
    {
        let f = format_value(
            str_at(smcp, "/spec/proxy/accessLogging/file/format"),
            str_at(smcp, "/spec/proxy/accessLogging/file/encoding"),
        );
        let whence = format!("ServiceMeshControlPlane {}/{}", namespace(smcp), name(smcp));
        if let Some(f) = f.and_then(|f| accept(f, &whence, notes))
            && out.get("default").map(String::as_str) == Some("auto")
        {
            notes.push(format!("access-log format from {whence}"));
            out.insert("default".into(), f);
        }
    }
    // Telemetry: mesh-wide (root namespace), namespace-wide, or by selector.
    let root = root_ns.unwrap_or_else(|| "istio-system".to_string());
    let mut tels: Vec<&Value> = objects
        .iter()
        .copied()
        .filter(|o| group(o) == "telemetry.istio.io" && kind(o) == "Telemetry")
        .collect();
    // Narrower scopes win: apply root first, then namespace, then selector.
    let rank = |t: &Value| -> u8 {
        if t.pointer("/spec/selector/matchLabels").is_some() {
            2
        } else if namespace(t) == root {
            0
        } else {
            1
        }
    };
    tels.sort_by_key(|t| rank(t));
    for t in tels {
        let Some(logging) = t.pointer("/spec/accessLogging").and_then(Value::as_array) else {
            continue;
        };
        let Some(pname) = logging
            .iter()
            .filter_map(|l| l.get("providers").and_then(Value::as_array))
            .flatten()
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .find(|n| providers.contains_key(*n))
        else {
            continue;
        };
        let whence = format!("Telemetry {}/{} (provider {pname})", namespace(t), name(t));
        let Some(f) = accept(providers[pname].clone(), &whence, notes) else {
            continue;
        };
        match rank(t) {
            0 => {
                notes.push(format!("access-log format from {whence}"));
                out.insert("default".into(), f);
            }
            1 => {
                for p in pods.iter().filter(|p| namespace(p) == namespace(t)) {
                    out.insert(proxy_key(p), f.clone());
                }
            }
            _ => {
                let sel: BTreeMap<String, String> = t
                    .pointer("/spec/selector/matchLabels")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut chosen = 0usize;
                for p in pods
                    .iter()
                    .filter(|p| namespace(p) == namespace(t) && matches(p, &sel))
                {
                    out.insert(proxy_key(p), f.clone());
                    chosen += 1;
                }
                if chosen > 0 {
                    notes.push(format!(
                        "access-log format from {whence} for the {chosen} pod(s) it selects"
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meshconfig_format_and_telemetry_provider() {
        let objects = [
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"istio","namespace":"istio-system"},
              "data":{"mesh":"accessLogFile: /dev/stdout\naccessLogEncoding: JSON\nextensionProviders:\n- name: custom\n  envoyFileAccessLog:\n    path: /dev/stdout\n    logFormat:\n      text: \"%START_TIME% %RESPONSE_CODE%\\n\"\n"}}),
            json!({"apiVersion":"telemetry.istio.io/v1","kind":"Telemetry","metadata":{"name":"t","namespace":"models"},
              "spec":{"accessLogging":[{"providers":[{"name":"custom"}]}]}}),
        ];
        let pods = [json!({"metadata":{"name":"p","namespace":"models"}})];
        let mut notes = Vec::new();
        let f = log_formats(
            &objects.iter().collect::<Vec<_>>(),
            &pods.iter().collect::<Vec<_>>(),
            &mut notes,
        );
        assert_eq!(f["default"], "json");
        assert_eq!(f["models/p/istio-proxy"], "%START_TIME% %RESPONSE_CODE%\n");
    }

    #[test]
    fn a_selector_telemetry_applies_to_the_pods_it_selects_only() {
        let objects = [
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"istio","namespace":"istio-system"},
              "data":{"mesh":"extensionProviders:\n- name: short\n  envoyFileAccessLog:\n    path: /dev/stdout\n    logFormat:\n      text: \"%START_TIME% %RESPONSE_CODE% %REQ(X-REQUEST-ID)%\\n\"\n"}}),
            json!({"apiVersion":"telemetry.istio.io/v1","kind":"Telemetry","metadata":{"name":"t","namespace":"models"},
              "spec":{"selector":{"matchLabels":{"app":"a"}},"accessLogging":[{"providers":[{"name":"short"}]}]}}),
        ];
        let pods = [
            json!({"metadata":{"name":"a-1","namespace":"models","labels":{"app":"a"}}}),
            json!({"metadata":{"name":"b-1","namespace":"models","labels":{"app":"b"}}}),
            json!({"metadata":{"name":"a-2","namespace":"other","labels":{"app":"a"}}}),
        ];
        let mut notes = Vec::new();
        let f = log_formats(
            &objects.iter().collect::<Vec<_>>(),
            &pods.iter().collect::<Vec<_>>(),
            &mut notes,
        );
        assert_eq!(f["default"], "auto");
        assert!(f.contains_key("models/a-1/istio-proxy"));
        assert!(!f.contains_key("models/b-1/istio-proxy"));
        assert!(!f.contains_key("other/a-2/istio-proxy"));
        assert!(
            notes.iter().any(|n| n.contains("Telemetry models/t")),
            "{notes:?}"
        );
    }

    #[test]
    fn smcp_and_bad_formats() {
        let objects = [
            json!({"apiVersion":"maistra.io/v2","kind":"ServiceMeshControlPlane","metadata":{"name":"basic","namespace":"istio-system"},
              "spec":{"proxy":{"accessLogging":{"file":{"name":"/dev/stdout","format":"%START_TIME% %RESPONSE_CODE%\n"}}}}}),
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"istio-canary","namespace":"istio-system"},
              "data":{"mesh":"accessLogFormat: \"%NOT_AN_OPERATOR% x\"\n"}}),
        ];
        let mut notes = Vec::new();
        let f = log_formats(&objects.iter().collect::<Vec<_>>(), &[], &mut notes);
        assert_eq!(f["default"], "%START_TIME% %RESPONSE_CODE%");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("istio-canary") && n.contains("not usable"))
        );
    }

    #[test]
    fn no_mesh_config_is_auto() {
        let mut notes = Vec::new();
        let f = log_formats(&[], &[], &mut notes);
        assert_eq!(f.len(), 1);
        assert_eq!(f["default"], "auto");
    }
}
