//! The OpenShift must-gather layout, as `oc adm inspect` writes it (openshift/oc
//! `pkg/cli/admin/inspect`: `util.go` names the folders, `pod.go` the logs) under
//! `must-gather.local.<N>/<image>/`, with the OpenShift Service Mesh gather scripts' Envoy config
//! dumps (maistra/istio-must-gather `gather_istio.sh` for OSSM 2: `envoyConfiguration`;
//! openshift-service-mesh/istio-must-gather for OSSM 3: `config_dump_proxy.json`). Pure.
//!
//! - `namespaces/<ns>/<ns>.yaml`: the Namespace;
//! - `namespaces/<ns>/<group>/<resource>.yaml`: a List of every object of a kind (`core` is the
//!   core group: `core/pods.yaml`, `core/services.yaml`, `core/configmaps.yaml`);
//! - `namespaces/<ns>/<group>/<resource>/<name>.yaml`: one object;
//! - `namespaces/<ns>/pods/<pod>/<pod>.yaml`: the Pod;
//! - `namespaces/<ns>/pods/<pod>/<container>/<container>/logs/{current,previous}.log`: the
//!   container's log with `kubectl logs --timestamps` prefixes;
//! - `namespaces/<ns>/pods/<pod>/{envoyConfiguration,config_dump_proxy.json}`: the proxy's
//!   `/config_dump`;
//! - `cluster-scoped-resources/<group>/<resource>[/<name>].yaml`: cluster-scoped objects.

use super::{Ignored, Part, is_data};

/// How deep below the bundle's top `namespaces/` or `cluster-scoped-resources/` may start:
/// `must-gather.local.<N>/<image>/namespaces/…` in an archive of the whole folder, one more
/// folder above it at most.
const MAX_ANCHOR_DEPTH: usize = 3;

/// What a must-gather file holds or why it is not read; `None` if the path is not in the
/// must-gather layout.
pub fn classify(parts: &[String]) -> Option<Result<Part, Ignored>> {
    let i = parts
        .iter()
        .take(MAX_ANCHOR_DEPTH + 1)
        .position(|p| p == "namespaces" || p == "cluster-scoped-resources");
    let Some(i) = i else {
        let file = parts.last()?.as_str();
        return (parts.len() <= MAX_ANCHOR_DEPTH
            && matches!(
                file,
                "timestamp"
                    | "event-filter.html"
                    | "version"
                    | "must-gather.logs"
                    | "gather-debug.log"
            ))
        .then_some(Err("must-gather's own records"));
    };
    let rest = &parts[i + 1..];
    Some(if parts[i] == "namespaces" {
        namespaced(rest)
    } else {
        cluster_scoped(rest)
    })
}

const SECRETS: Ignored = "Secrets are never read";

/// `namespaces/<ns>/…`.
fn namespaced(rest: &[String]) -> Result<Part, Ignored> {
    let file = rest.last().map(String::as_str).unwrap_or("");
    match rest {
        [_, f] if is_data(f) => Ok(Part::Resources),
        [ns, pods, pod, rest @ ..] if pods == "pods" => pod_file(ns, pod, rest),
        [_, _, _] | [_, _, _, _] if file == "debug-syncz.json" => {
            Err("istiod's synchronization status")
        }
        [_, _, res] | [_, _, res, _] if res.eq_ignore_ascii_case("secrets.yaml") => Err(SECRETS),
        [_, _, res, _] if res == "secrets" => Err(SECRETS),
        [_, _, _] | [_, _, _, _] if is_data(file) => Ok(Part::Resources),
        _ => Err("not objects, a log or a config dump"),
    }
}

/// `namespaces/<ns>/pods/<pod>/…`.
fn pod_file(ns: &str, pod: &str, rest: &[String]) -> Result<Part, Ignored> {
    match rest {
        [f] if f.strip_suffix(".yaml") == Some(pod) => Ok(Part::Resources),
        [f] if f == "envoyConfiguration" || f == "config_dump_proxy.json" => Ok(Part::ConfigDump {
            namespace: ns.to_string(),
            pod: pod.to_string(),
        }),
        [f] if f == "config_dump_istiod.json" || f == "pilotConfiguration" => {
            Err("istiod's view of the proxy's configuration; the proxy's own config dump is read")
        }
        [f] if f == "proxy_stats" => Err("Envoy stats"),
        [c, c2, logs, f] if c == c2 && logs == "logs" => {
            let previous = match f.as_str() {
                "current.log" | "current.insecure.log" => false,
                "previous.log" | "previous.insecure.log" => true,
                _ => return Err("not a container log"),
            };
            Ok(Part::Log {
                namespace: ns.to_string(),
                pod: pod.to_string(),
                container: c.clone(),
                previous,
            })
        }
        _ => Err("container health, metrics or profiling output"),
    }
}

/// `cluster-scoped-resources/<group>/<resource>.yaml` or `…/<resource>/<name>.yaml`.
fn cluster_scoped(rest: &[String]) -> Result<Part, Ignored> {
    let file = rest.last().map(String::as_str).unwrap_or("");
    match rest {
        [g, ..] if g == "apiextensions.k8s.io" => {
            Err("CustomResourceDefinitions describe kinds, not objects")
        }
        [_, _] | [_, _, _] if is_data(file) => Ok(Part::Resources),
        _ => Err("not objects"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::layouts::classify as all;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    const TOP: &str =
        "must-gather.local.5526120966283337337/quay-io-maistra-istio-must-gather-sha256-1f2e";

    #[test]
    fn real_paths() {
        let r = |s: &str| all(&p(&format!("{TOP}/{s}")));
        for read in [
            "namespaces/models/models.yaml",
            "namespaces/models/core/pods.yaml",
            "namespaces/models/core/services.yaml",
            "namespaces/models/core/services/web.yaml",
            "namespaces/models/networking.istio.io/virtualservices/web.yaml",
            "namespaces/istio-system/security.istio.io/authorizationpolicies.yaml",
            "namespaces/models/serving.kserve.io/inferenceservices/bert.yaml",
            "namespaces/models/pods/web-1/web-1.yaml",
            "cluster-scoped-resources/core/nodes/n1.yaml",
        ] {
            assert_eq!(r(read), Ok(Part::Resources), "{read}");
        }
        assert_eq!(
            r("namespaces/models/pods/web-1/istio-proxy/istio-proxy/logs/previous.log"),
            Ok(Part::Log {
                namespace: "models".into(),
                pod: "web-1".into(),
                container: "istio-proxy".into(),
                previous: true
            })
        );
        let dump = Ok(Part::ConfigDump {
            namespace: "models".into(),
            pod: "web-1".into(),
        });
        assert_eq!(r("namespaces/models/pods/web-1/envoyConfiguration"), dump);
        assert_eq!(
            r("namespaces/models/pods/web-1/config_dump_proxy.json"),
            dump
        );
        for ignored in [
            "namespaces/models/core/secrets.yaml",
            "namespaces/models/core/secrets/tls.yaml",
            "namespaces/models/pods/web-1/config_dump_istiod.json",
            "namespaces/models/pods/web-1/pilotConfiguration",
            "namespaces/models/pods/web-1/istio-proxy/istio-proxy/metrics.json",
            "namespaces/istio-system/basic/debug-syncz.json",
            "cluster-scoped-resources/apiextensions.k8s.io/customresourcedefinitions/x.yaml",
            "timestamp",
            "event-filter.html",
        ] {
            assert!(r(ignored).is_err(), "{ignored}");
        }
    }
}
