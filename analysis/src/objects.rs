//! The configuration objects behind a verdict: which AuthorizationPolicy, Gateway server,
//! DestinationRule, EnvoyFilter, VirtualService, InferenceService or Revision explains it. Pure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use meshtrace_parsers::cluster::ClusterName;
use meshtrace_parsers::details::RbacPolicy;
use meshtrace_parsers::record::RawRecord;

use crate::causes::Cause;
use crate::model::Object;
use crate::topology::{PodInfo, Topology, selects};

/// A configuration object cited as evidence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cited {
    /// `kind/namespace/name`.
    pub object: String,
    /// Why it matters for this request.
    pub why: String,
}

/// Namespaces where mesh-wide Istio policy lives.
const ROOT_NAMESPACES: [&str; 1] = ["istio-system"];

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn match_labels(o: &Object, ptr: &str) -> Option<BTreeMap<String, String>> {
    let m = o.value.pointer(ptr)?.as_object()?;
    Some(
        m.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect(),
    )
}

/// Does a policy with a `selector.matchLabels` (or `workloadSelector.labels`) apply to `pod`?
/// No selector: every workload of its namespace, or of the mesh when in the root namespace.
pub(crate) fn applies_to(o: &Object, selector_ptr: &str, pod: &PodInfo) -> bool {
    let ns = o.namespace.as_deref().unwrap_or("");
    match match_labels(o, selector_ptr) {
        Some(sel) if !sel.is_empty() => {
            (ns == pod.namespace || ROOT_NAMESPACES.contains(&ns)) && selects(&sel, &pod.labels)
        }
        _ => ns == pod.namespace || ROOT_NAMESPACES.contains(&ns),
    }
}

/// What an AuthorizationPolicy rule requires, in words.
pub fn describe_rule(rule: &Value) -> String {
    let mut parts = Vec::new();
    for from in rule
        .get("from")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = from.get("source").unwrap_or(&Value::Null);
        for (k, label) in [
            ("principals", "principal"),
            ("namespaces", "source namespace"),
            ("ipBlocks", "source IP"),
            ("requestPrincipals", "JWT principal"),
        ] {
            let v = str_list(s.get(k));
            if !v.is_empty() {
                parts.push(format!("{label} in [{}]", v.join(", ")));
            }
        }
    }
    for to in rule
        .get("to")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let op = to.get("operation").unwrap_or(&Value::Null);
        for (k, label) in [
            ("hosts", "host"),
            ("ports", "port"),
            ("methods", "method"),
            ("paths", "path"),
            ("notPaths", "path not"),
        ] {
            let v = str_list(op.get(k));
            if !v.is_empty() {
                parts.push(format!("{label} in [{}]", v.join(", ")));
            }
        }
    }
    for w in rule
        .get("when")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = w.get("key").and_then(Value::as_str).unwrap_or("?");
        let vals = str_list(w.get("values"));
        let not = str_list(w.get("notValues"));
        if !vals.is_empty() {
            parts.push(format!("{key} in [{}]", vals.join(", ")));
        }
        if !not.is_empty() {
            parts.push(format!("{key} not in [{}]", not.join(", ")));
        }
    }
    if parts.is_empty() {
        "anything".into()
    } else {
        parts.join(" and ")
    }
}

/// Does a DestinationRule host cover `fqdn` (from namespace `dr_ns`)?
pub fn dr_host_matches(dr_host: &str, dr_ns: &str, fqdn: &str) -> bool {
    if let Some(suffix) = dr_host.strip_prefix('*') {
        return fqdn.ends_with(suffix);
    }
    if dr_host == fqdn {
        return true;
    }
    // Short names resolve in the DestinationRule's namespace.
    !dr_host.contains('.') && format!("{dr_host}.{dr_ns}.svc.cluster.local") == fqdn
        || dr_host.matches('.').count() == 1 && format!("{dr_host}.svc.cluster.local") == fqdn
}

/// Cite the objects that explain `cause` at the origin hop.
pub fn cite(
    objects: &[Object],
    topo: &Topology,
    origin: &RawRecord<'_>,
    origin_pod: Option<&PodInfo>,
    caller: Option<&RawRecord<'_>>,
    cause: Cause,
) -> Vec<Cited> {
    let mut out = Vec::new();
    let of = |kind: &'static str| objects.iter().filter(move |o| o.kind == kind);
    match cause {
        Cause::RbacDenied => match origin.details().and_then(|d| d.rbac_policy) {
            Some(RbacPolicy::Policy {
                namespace,
                name,
                rule,
            }) => {
                if let Some(p) = of("AuthorizationPolicy")
                    .find(|o| o.name == name && o.namespace.as_deref() == Some(namespace))
                {
                    let r = rule.and_then(|n| {
                        p.spec()
                            .get("rules")
                            .and_then(Value::as_array)
                            .and_then(|a| a.get(n as usize))
                    });
                    out.push(Cited {
                        object: p.reference(),
                        why: format!(
                            "its {} rule{} matched this request{}",
                            p.spec()
                                .get("action")
                                .and_then(Value::as_str)
                                .unwrap_or("ALLOW"),
                            rule.map(|n| format!(" {n}")).unwrap_or_default(),
                            r.map(|r| format!(": {}", describe_rule(r)))
                                .unwrap_or_default()
                        ),
                    });
                } else {
                    out.push(Cited {
                        object: format!("AuthorizationPolicy/{namespace}/{name}"),
                        why: "named by the RBAC details (not in the bundle)".into(),
                    });
                }
            }
            _ => {
                if let Some(pod) = origin_pod {
                    for p in of("AuthorizationPolicy")
                        .filter(|o| applies_to(o, "/spec/selector/matchLabels", pod))
                    {
                        let action = p
                            .spec()
                            .get("action")
                            .and_then(Value::as_str)
                            .unwrap_or("ALLOW");
                        if action != "ALLOW" {
                            continue;
                        }
                        let rules: Vec<String> = p
                            .spec()
                            .get("rules")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().map(describe_rule).collect())
                            .unwrap_or_default();
                        out.push(Cited {
                                object: p.reference(),
                                why: format!(
                                    "ALLOW policy selecting {}; the request matched none of its rules, which require: {}",
                                    pod.reference(),
                                    if rules.is_empty() { "nothing (no rules: allows nothing)".into() } else { rules.join("; or ") }
                                ),
                            });
                    }
                }
            }
        },
        Cause::PlaintextToMtls | Cause::MissingSidecar | Cause::MtlsMismatch => {
            if let (Some(pod), Some(port)) =
                (origin_pod, origin.downstream_local().and_then(|a| a.port()))
            {
                for (g, s) in topo.gateway_servers(pod, port) {
                    out.push(Cited {
                        object: format!("Gateway/{}/{}", g.namespace, g.name),
                        why: format!(
                            "server port {} ({}) for hosts [{}] with TLS mode {} on listener {port} of {}",
                            s.port,
                            s.protocol,
                            s.hosts.join(", "),
                            s.tls_mode.as_deref().unwrap_or("none"),
                            pod.reference()
                        ),
                    });
                }
            }
            if let Some(client) = origin
                .downstream_remote()
                .and_then(|a| a.ip())
                .and_then(|ip| topo.pod_by_ip(ip))
                && !client.has_sidecar
                && cause != Cause::MtlsMismatch
            {
                out.push(Cited {
                    object: format!("Pod/{}/{}", client.namespace, client.name),
                    why: "the calling pod has no istio-proxy sidecar, so it cannot speak mTLS"
                        .into(),
                });
            }
            if let Some(dest) = origin
                .upstream_host()
                .and_then(|a| a.ip())
                .and_then(|ip| topo.pod_by_ip(ip))
                && !dest.has_sidecar
            {
                out.push(Cited {
                    object: format!("Pod/{}/{}", dest.namespace, dest.name),
                    why:
                        "the destination pod has no istio-proxy sidecar, so it does not speak mTLS"
                            .into(),
                });
            }
            if let Some(ClusterName::Istio { host, .. }) = origin.upstream_cluster()
                && !host.is_empty()
            {
                for dr in of("DestinationRule") {
                    let h = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
                    let mode = dr
                        .value
                        .pointer("/spec/trafficPolicy/tls/mode")
                        .and_then(Value::as_str);
                    if mode == Some("ISTIO_MUTUAL")
                        && dr_host_matches(h, dr.namespace.as_deref().unwrap_or(""), host)
                    {
                        out.push(Cited {
                            object: dr.reference(),
                            why: format!(
                                "host `{h}` covers {host} and forces tls mode ISTIO_MUTUAL"
                            ),
                        });
                    }
                }
            }
            // The caller's side of a refused connection: the DestinationRule that set the TLS
            // mode its proxy used towards this destination.
            if crate::diagnose::refused_connection(origin)
                && let Some(ClusterName::Istio { host, .. }) =
                    caller.and_then(|c| c.upstream_cluster())
                && !host.is_empty()
            {
                // Only the most specific DestinationRule for a host applies (an exact host
                // beats a wildcard, a longer wildcard a shorter one).
                let specificity = |h: &str| match h.strip_prefix('*') {
                    Some(suffix) => suffix.len(),
                    None => usize::MAX,
                };
                let best = of("DestinationRule")
                    .filter(|dr| {
                        let h = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
                        dr_host_matches(h, dr.namespace.as_deref().unwrap_or(""), host)
                    })
                    .max_by_key(|dr| {
                        specificity(dr.spec().get("host").and_then(Value::as_str).unwrap_or(""))
                    });
                if let Some(dr) = best {
                    let h = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
                    let mode = dr
                        .value
                        .pointer("/spec/trafficPolicy/tls/mode")
                        .and_then(Value::as_str);
                    let why = match mode {
                        Some(m @ ("DISABLE" | "SIMPLE" | "MUTUAL")) => format!(
                            "host `{h}` covers {host} and sets tls mode {m}: the calling proxy does not send Istio mTLS to it"
                        ),
                        Some(m) => format!("host `{h}` covers {host} (tls mode {m})"),
                        None => format!(
                            "host `{h}` covers {host} and sets no tls mode (a trafficPolicy without tls turns auto mTLS off on older Istio; portLevelSettings may override it)"
                        ),
                    };
                    out.push(Cited {
                        object: dr.reference(),
                        why,
                    });
                }
            }
            if let Some(pod) = origin_pod
                && (origin.upstream_cluster().is_some_and(|c| c.is_inbound())
                    || (crate::diagnose::refused_connection(origin)
                        && pod.has_sidecar
                        && pod.role != crate::topology::PodRole::IngressGateway))
            {
                for pa in of("PeerAuthentication")
                    .filter(|o| applies_to(o, "/spec/selector/matchLabels", pod))
                {
                    if let Some(mode) = pa.value.pointer("/spec/mtls/mode").and_then(Value::as_str)
                    {
                        out.push(Cited {
                            object: pa.reference(),
                            why: format!("mTLS mode {mode} for {}", pod.reference()),
                        });
                    }
                }
            }
        }
        Cause::RateLimited => {
            if let Some(pod) = origin_pod {
                for ef in of("EnvoyFilter")
                    .filter(|o| applies_to(o, "/spec/workloadSelector/labels", pod))
                {
                    let text = ef.spec().to_string();
                    if text.contains("ratelimit")
                        || text.contains("rate_limit")
                        || text.contains("local_ratelimit")
                    {
                        out.push(Cited {
                            object: ef.reference(),
                            why: format!("configures rate limiting on {}", pod.reference()),
                        });
                    }
                }
            }
        }
        Cause::RouteNotFound => {
            let authority = origin.authority().unwrap_or("-");
            if let (Some(pod), Some(port)) =
                (origin_pod, origin.downstream_local().and_then(|a| a.port()))
            {
                for (g, s) in topo.gateway_servers(pod, port) {
                    let gref = g.reference();
                    let vs_hosts: Vec<String> = of("VirtualService")
                        .filter(|vs| {
                            let vsns = vs.namespace.as_deref().unwrap_or("");
                            str_list(vs.spec().get("gateways"))
                                .iter()
                                .any(|gw| *gw == gref || (*gw == g.name && vsns == g.namespace))
                        })
                        .flat_map(|vs| str_list(vs.spec().get("hosts")))
                        .collect();
                    out.push(Cited {
                        object: format!("Gateway/{}/{}", g.namespace, g.name),
                        why: format!(
                            "serves listener {port} (server port {}, hosts [{}]); VirtualServices bound to it declare hosts [{}], none matching Host `{authority}`",
                            s.port,
                            s.hosts.join(", "),
                            vs_hosts.join(", ")
                        ),
                    });
                }
            }
        }
        Cause::AppError
        | Cause::UpstreamReset
        | Cause::UpstreamConnectFailure
        | Cause::UpstreamTimeout => {
            let pod = if cause == Cause::AppError {
                origin_pod
            } else {
                origin
                    .upstream_host()
                    .and_then(|a| a.ip())
                    .and_then(|ip| topo.pod_by_ip(ip))
                    .or(origin_pod)
            };
            if let Some(pod) = pod {
                if let Some(isvc) = &pod.isvc
                    && let Some(o) = of("InferenceService").find(|o| {
                        &o.name == isvc && o.namespace.as_deref() == Some(pod.namespace.as_str())
                    })
                {
                    out.push(Cited {
                        object: o.reference(),
                        why: format!("serves the model behind {}", pod.reference()),
                    });
                }
                if let Some(sd) = &pod.seldon
                    && let Some(o) = of("SeldonDeployment").find(|o| {
                        &o.name == sd && o.namespace.as_deref() == Some(pod.namespace.as_str())
                    })
                {
                    out.push(Cited {
                        object: o.reference(),
                        why: format!("serves the model behind {}", pod.reference()),
                    });
                }
                if let Some(rev) = &pod.revision
                    && let Some(o) = of("Revision").find(|o| {
                        &o.name == rev && o.namespace.as_deref() == Some(pod.namespace.as_str())
                    })
                {
                    out.push(Cited {
                        object: o.reference(),
                        why: format!("the Knative revision running {}", pod.reference()),
                    });
                }
                if pod.restarts > 0 {
                    out.push(Cited {
                        object: format!("Pod/{}/{}", pod.namespace, pod.name),
                        why: format!(
                            "its containers restarted {} time(s): check `kubectl logs --previous`",
                            pod.restarts
                        ),
                    });
                }
            }
        }
        Cause::ActivatorError | Cause::NoHealthyUpstream => {
            // The revision the request was for: from the SNI/authority/cluster host.
            let hosts = [
                origin.sni().map(str::to_string),
                origin.authority().map(str::to_string),
                origin
                    .upstream_cluster()
                    .and_then(|c| c.host().map(str::to_string)),
            ];
            for rev in of("Revision") {
                let ns = rev.namespace.as_deref().unwrap_or("");
                let needle = format!("{}.{}", rev.name, ns);
                if hosts.iter().flatten().any(|h| h.contains(&needle)) {
                    let ready = rev
                        .value
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|c| {
                            c.iter()
                                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                        })
                        .map(|c| {
                            format!(
                                "Ready={} {}",
                                c.get("status").and_then(Value::as_str).unwrap_or("?"),
                                c.get("reason").and_then(Value::as_str).unwrap_or("")
                            )
                        })
                        .unwrap_or_else(|| "no Ready condition".into());
                    let pods: Vec<String> = topo
                        .pods
                        .iter()
                        .filter(|p| p.revision.as_deref() == Some(rev.name.as_str()))
                        .map(|p| format!("{} {}", p.name, p.phase.as_deref().unwrap_or("?")))
                        .collect();
                    out.push(Cited {
                        object: rev.reference(),
                        why: format!(
                            "the revision this request was for: {ready}; pods: {}",
                            if pods.is_empty() {
                                "none".into()
                            } else {
                                pods.join(", ")
                            }
                        ),
                    });
                }
            }
        }
        Cause::EgressBlocked => {
            for cm in of("ConfigMap").filter(|o| o.name == "istio" || o.name.starts_with("istio-"))
            {
                let text = cm.value.to_string();
                if text.contains("REGISTRY_ONLY") {
                    out.push(Cited {
                        object: cm.reference(),
                        why: "MeshConfig outboundTrafficPolicy is REGISTRY_ONLY".into(),
                    });
                }
            }
            let host = origin.authority().unwrap_or("-");
            let ses: Vec<&Object> = of("ServiceEntry").collect();
            let covered = ses
                .iter()
                .any(|se| str_list(se.spec().get("hosts")).iter().any(|h| h == host));
            for se in ses {
                out.push(Cited {
                    object: se.reference(),
                    why: format!(
                        "registers [{}]{}",
                        str_list(se.spec().get("hosts")).join(", "),
                        if covered {
                            ""
                        } else {
                            &" — not the requested host"
                        }
                    ),
                });
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_rule_hosts() {
        assert!(dr_host_matches(
            "*.cluster.local",
            "istio-system",
            "a.b.svc.cluster.local"
        ));
        assert!(dr_host_matches(
            "non-mesh",
            "aiproject",
            "non-mesh.aiproject.svc.cluster.local"
        ));
        assert!(!dr_host_matches(
            "non-mesh",
            "other",
            "non-mesh.aiproject.svc.cluster.local"
        ));
        assert!(dr_host_matches("svc.ns", "x", "svc.ns.svc.cluster.local"));
        assert!(!dr_host_matches(
            "*.example.com",
            "x",
            "a.b.svc.cluster.local"
        ));
    }

    #[test]
    fn rule_descriptions() {
        let r: Value = serde_json::json!({"to":[{"operation":{"paths":["/v1/models/bert-emotion-model:predict"]}}],"when":[{"key":"request.headers[X-Test]","values":["istio-is-cool"]}]});
        assert_eq!(
            describe_rule(&r),
            "path in [/v1/models/bert-emotion-model:predict] and request.headers[X-Test] in [istio-is-cool]"
        );
        assert_eq!(describe_rule(&serde_json::json!({})), "anything");
    }
}
