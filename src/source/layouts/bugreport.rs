//! The `istioctl bug-report` layout, as istio's `tools/bug-report` writes it (`archive.go`,
//! `bugreport.go`, `content.go`): `bug-report/cluster/{k8s-resources,crs}` (each one
//! `kubectl get --all-namespaces … -o yaml` List, no file extension), per proxy
//! `bug-report/proxies/<namespace>/<pod>/{istio-proxy.log,config_dump,clusters,…}`, istiod's
//! `bug-report/istio/<namespace>/<pod>/…`, `analyze/`, `operator/`, `versions`. Pure.

use super::{Ignored, Part, container_of, is_data};

/// How deep below the bundle's top the bug-report's folders may start: the archive holds
/// `bug-report/…`, and an extracted copy may sit in one more folder.
const MAX_ANCHOR_DEPTH: usize = 2;

/// What a bug-report file holds or why it is not read; `None` if the path is not in the
/// bug-report layout.
pub fn classify(parts: &[String]) -> Option<Result<Part, Ignored>> {
    let i = parts.iter().take(MAX_ANCHOR_DEPTH + 1).position(|p| {
        matches!(
            p.as_str(),
            "proxies" | "cluster" | "istio" | "analyze" | "operator" | "ztunnel"
        )
    });
    let Some(i) = i else {
        // `bug-report/versions`: the CLI's and the control plane's versions.
        return (parts.len() == 2 && parts[0] == "bug-report" && parts[1] == "versions")
            .then_some(Err("istioctl's record of versions"));
    };
    let rest = &parts[i + 1..];
    let file = parts.last().map(String::as_str).unwrap_or("");
    Some(match parts[i].as_str() {
        "proxies" => proxy_file(rest),
        "cluster" if rest.len() == 1 => cluster_file(file),
        "cluster" => Err("not a file istioctl bug-report writes under cluster/"),
        "istio" => Err("istiod's own log and debug output, not access logs"),
        "ztunnel" => Err("ztunnel's log, not an Envoy access log"),
        "operator" => Err("the Istio operator's log, not an access log"),
        _ => Err("istioctl analyze output (`meshtrace doctor` runs its own checks)"),
    })
}

/// `proxies/<namespace>/<pod>/<file>`.
fn proxy_file(rest: &[String]) -> Result<Part, Ignored> {
    let [ns, pod, file] = rest else {
        return Err("core dumps and Envoy stats");
    };
    let lower = file.to_ascii_lowercase();
    if lower == "config_dump" || lower.contains("config_dump") {
        return Ok(Part::ConfigDump {
            namespace: ns.clone(),
            pod: pod.clone(),
        });
    }
    if let Some((container, previous)) = container_of(file) {
        return Ok(Part::Log {
            namespace: ns.clone(),
            pod: pod.clone(),
            container,
            previous,
        });
    }
    Err(match lower.as_str() {
        "clusters" => "Envoy's /clusters text output (endpoint health); the config dump is read",
        "listeners" | "certs" | "memory" | "server_info" | "runtime" | "netstat" => {
            "Envoy admin or netstat output; the config dump is read"
        }
        _ => "not a log or config dump",
    })
}

/// `cluster/<file>`.
fn cluster_file(file: &str) -> Result<Part, Ignored> {
    match file {
        "k8s-resources" | "crs" => Ok(Part::Resources),
        "secrets" => Err("Secrets are never read"),
        "events" | "nodes" | "describe-pods" | "cluster-context" | "kubectl-version" => {
            Err("kubectl text output, not objects")
        }
        f if is_data(f) => Ok(Part::Resources),
        _ => Err("not a file istioctl bug-report writes under cluster/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::layouts::classify as all;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn real_paths() {
        assert_eq!(
            all(&p("bug-report/cluster/k8s-resources")),
            Ok(Part::Resources)
        );
        assert_eq!(all(&p("bug-report/cluster/crs")), Ok(Part::Resources));
        assert!(all(&p("bug-report/cluster/secrets")).is_err());
        assert!(all(&p("bug-report/cluster/events")).is_err());
        assert_eq!(
            all(&p("bug-report/proxies/default/web-1/istio-proxy.log")),
            Ok(Part::Log {
                namespace: "default".into(),
                pod: "web-1".into(),
                container: "istio-proxy".into(),
                previous: false
            })
        );
        assert_eq!(
            all(&p("bug-report/proxies/default/web-1/config_dump")),
            Ok(Part::ConfigDump {
                namespace: "default".into(),
                pod: "web-1".into()
            })
        );
        for ignored in [
            "bug-report/proxies/default/web-1/clusters",
            "bug-report/proxies/default/web-1/stats/prometheus",
            "bug-report/proxies/default/web-1/cores/0.core",
            "bug-report/istio/istio-system/istiod-1/discovery.log",
            "bug-report/analyze/all-namespaces",
            "bug-report/versions",
        ] {
            assert!(all(&p(ignored)).is_err(), "{ignored}");
        }
        // Anchored near the top only.
        assert_eq!(
            all(&p("a/b/c/proxies/ns/pod/istio-proxy.log")),
            Err(crate::source::layouts::OUTSIDE)
        );
    }
}
