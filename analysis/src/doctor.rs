//! `doctor`: static checks of the serving path — misconfigurations visible before any request is
//! sent. Pure: Kubernetes objects and topology in, findings out. Every id is documented in
//! `docs/checks.md`.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::model::Object;
use crate::objects::{describe_rule, dr_host_matches};
use crate::topology::{PodInfo, PodRole, Topology, selects};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Requests will fail.
    Error,
    /// Some requests will fail, or a common trap.
    Warning,
    /// Worth knowing.
    Info,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable id (`MT001`…), documented in docs/checks.md.
    pub id: &'static str,
    /// Short name of the check.
    pub check: &'static str,
    /// Severity.
    pub severity: Severity,
    /// One sentence.
    pub title: String,
    /// Objects concerned, `kind/namespace/name`.
    pub objects: Vec<String>,
    /// What in the objects shows it.
    pub evidence: String,
    /// What to do.
    pub fix: String,
}

/// Every check: id, name, what it looks for (for `docs/checks.md` and `doctor --list`).
pub const CHECKS: &[(&str, &str, &str)] = &[
    (
        "MT001",
        "predictor-without-sidecar",
        "model-serving pods without an istio-proxy sidecar where mTLS is required",
    ),
    (
        "MT002",
        "callers-outside-mesh",
        "an ISTIO_MUTUAL gateway server (e.g. knative-local-gateway) and namespaces whose pods have no sidecar",
    ),
    (
        "MT003",
        "istio-mutual-to-plaintext",
        "a DestinationRule forcing ISTIO_MUTUAL towards a Service whose pods have no sidecar",
    ),
    (
        "MT004",
        "strict-vs-disable",
        "STRICT PeerAuthentication on workloads that a DestinationRule calls with tls DISABLE",
    ),
    (
        "MT005",
        "authz-policies",
        "AuthorizationPolicies selecting a gateway or model pod: ALLOW rules that need headers, DENY, CUSTOM",
    ),
    (
        "MT006",
        "cluster-local",
        "services labelled networking.knative.dev/visibility: cluster-local (not on the ingress gateway)",
    ),
    (
        "MT007",
        "vs-host-not-on-gateway",
        "VirtualService hosts that none of their Gateways' servers serve",
    ),
    (
        "MT008",
        "registry-only-package-hosts",
        "outboundTrafficPolicy REGISTRY_ONLY without ServiceEntries for the Python package hosts",
    ),
    (
        "MT009",
        "storage-initializer-cni",
        "storage-initializer under Istio CNI without serving.kserve.io/storage-initializer-uid: \"1337\"",
    ),
    (
        "MT010",
        "revision-not-ready",
        "Knative Revisions (KServe predictors) whose Ready condition is not True",
    ),
    (
        "MT011",
        "serving-pod-restarts",
        "model-serving pods whose containers restarted (crash, OOM)",
    ),
    (
        "MT012",
        "rate-limits",
        "EnvoyFilters that rate-limit gateways or model pods (429 beyond the limit)",
    ),
];

fn check_name(id: &str) -> &'static str {
    CHECKS.iter().find(|c| c.0 == id).map(|c| c.1).unwrap_or("")
}

fn finding(
    id: &'static str,
    severity: Severity,
    title: String,
    objects: Vec<String>,
    evidence: String,
    fix: &str,
) -> Finding {
    Finding {
        id,
        check: check_name(id),
        severity,
        title,
        objects,
        evidence,
        fix: fix.to_string(),
    }
}

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

fn labels(o: &Object, ptr: &str) -> std::collections::BTreeMap<String, String> {
    o.value
        .pointer(ptr)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

const SYSTEM_NAMESPACES: [&str; 6] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "istio-system",
    "knative-serving",
    "local-path-storage",
];

fn is_system(ns: &str) -> bool {
    SYSTEM_NAMESPACES.contains(&ns) || ns.starts_with("openshift") || ns.starts_with("istio-")
}

fn serving(p: &PodInfo) -> bool {
    matches!(
        p.role,
        PodRole::Predictor | PodRole::Transformer | PodRole::Explainer | PodRole::SeldonPredictor
    )
}

/// mTLS mode that applies to a pod: workload PeerAuthentication, else namespace, else mesh-wide.
fn mtls_mode<'o>(objects: &'o [Object], pod: &PodInfo) -> Option<(&'o Object, String)> {
    let pas: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind == "PeerAuthentication")
        .collect();
    let mode = |o: &Object| {
        o.value
            .pointer("/spec/mtls/mode")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let workload = pas.iter().find(|o| {
        o.namespace.as_deref() == Some(pod.namespace.as_str()) && {
            let sel = labels(o, "/spec/selector/matchLabels");
            !sel.is_empty() && selects(&sel, &pod.labels)
        }
    });
    let namespace = pas.iter().find(|o| {
        o.namespace.as_deref() == Some(pod.namespace.as_str())
            && labels(o, "/spec/selector/matchLabels").is_empty()
    });
    let mesh = pas.iter().find(|o| {
        o.namespace.as_deref() == Some("istio-system")
            && labels(o, "/spec/selector/matchLabels").is_empty()
    });
    [workload, namespace, mesh]
        .into_iter()
        .flatten()
        .find_map(|o| mode(o).map(|m| (*o, m)))
}

/// Scope of a doctor run.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this InferenceService (in `namespace`, or any).
    pub isvc: Option<String>,
}

impl Scope {
    fn pod(&self, p: &PodInfo) -> bool {
        self.namespace.as_ref().is_none_or(|ns| *ns == p.namespace)
            && self
                .isvc
                .as_ref()
                .is_none_or(|i| p.isvc.as_ref() == Some(i))
    }
    fn ns(&self, ns: Option<&str>) -> bool {
        self.namespace.as_deref().is_none_or(|n| Some(n) == ns)
    }
}

/// Run every check.
pub fn doctor(objects: &[Object], topo: &Topology, scope: &Scope) -> Vec<Finding> {
    let mut out = Vec::new();
    let of = |kind: &'static str| objects.iter().filter(move |o| o.kind == kind);

    // MT001: serving pods without sidecar.
    for p in topo
        .pods
        .iter()
        .filter(|p| serving(p) && !p.has_sidecar && scope.pod(p))
    {
        let mode = mtls_mode(objects, p);
        let strict = mode.as_ref().is_some_and(|(_, m)| m == "STRICT");
        out.push(finding(
            "MT001",
            if strict { Severity::Error } else { Severity::Warning },
            format!("{} {} runs without an istio-proxy sidecar", p.role.name(), p.reference()),
            [Some(format!("Pod/{}/{}", p.namespace, p.name)), mode.as_ref().map(|(o, _)| o.reference())].into_iter().flatten().collect(),
            format!(
                "containers [{}]; mTLS mode for it: {}",
                p.containers.join(", "),
                mode.as_ref().map(|(_, m)| m.as_str()).unwrap_or("not set (PERMISSIVE)")
            ),
            "Inject the sidecar (annotation sidecar.istio.io/inject: \"true\" on the InferenceService / namespace label istio-injection=enabled, then restart), or the gateways and callers that use mTLS towards it will fail.",
        ));
    }

    // MT002: ISTIO_MUTUAL gateway servers and namespaces whose pods have no sidecar.
    let outside: BTreeSet<String> = topo
        .pods
        .iter()
        .filter(|p| {
            !p.has_sidecar
                && p.role == PodRole::Workload
                && !is_system(&p.namespace)
                && scope.ns(Some(&p.namespace))
        })
        .map(|p| p.namespace.clone())
        .collect();
    for g in &topo.gateways {
        for s in g
            .servers
            .iter()
            .filter(|s| s.tls_mode.as_deref() == Some("ISTIO_MUTUAL"))
        {
            if outside.is_empty() {
                continue;
            }
            let pods: Vec<String> = topo
                .pods
                .iter()
                .filter(|p| {
                    !p.has_sidecar && p.role == PodRole::Workload && outside.contains(&p.namespace)
                })
                .map(|p| format!("Pod/{}/{}", p.namespace, p.name))
                .collect();
            let mut objs = vec![format!("Gateway/{}/{}", g.namespace, g.name)];
            objs.extend(pods.iter().take(5).cloned());
            out.push(finding(
                "MT002",
                Severity::Warning,
                format!(
                    "Gateway {}/{} accepts only mTLS on port {} ({}), but pods in [{}] have no sidecar: their calls to [{}] will be refused (filter_chain_not_found)",
                    g.namespace,
                    g.name,
                    s.port,
                    s.port_name,
                    outside.iter().cloned().collect::<Vec<_>>().join(", "),
                    s.hosts.join(", ")
                ),
                objs,
                format!("server port {} protocol {} tls.mode ISTIO_MUTUAL; {} pod(s) without istio-proxy outside system namespaces", s.port, s.protocol, pods.len()),
                "Give those callers a sidecar, or a plaintext entry point: a Gateway server on port 8080 protocol HTTP on the same gateway pods + an ExternalName Service + a VirtualService setting Host to the predictor (a `knative-http-gateway` Gateway on port 8080, as in Knative's net-istio), or OpenShift AI's private KServe endpoint.",
            ));
        }
    }

    // MT003: ISTIO_MUTUAL DestinationRules towards Services whose pods have no sidecar.
    for dr in of("DestinationRule").filter(|o| {
        o.value
            .pointer("/spec/trafficPolicy/tls/mode")
            .and_then(Value::as_str)
            == Some("ISTIO_MUTUAL")
    }) {
        let host = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
        let dr_ns = dr.namespace.as_deref().unwrap_or("");
        for svc in topo
            .services
            .iter()
            .filter(|s| scope.ns(Some(&s.namespace)) && dr_host_matches(host, dr_ns, &s.fqdn()))
        {
            let plain: Vec<&PodInfo> = topo
                .pods
                .iter()
                .filter(|p| {
                    p.namespace == svc.namespace
                        && selects(&svc.selector, &p.labels)
                        && !p.has_sidecar
                })
                .collect();
            if plain.is_empty() {
                continue;
            }
            let mut objs = vec![
                dr.reference(),
                format!("Service/{}/{}", svc.namespace, svc.name),
            ];
            objs.extend(
                plain
                    .iter()
                    .take(3)
                    .map(|p| format!("Pod/{}/{}", p.namespace, p.name)),
            );
            out.push(finding(
                "MT003",
                Severity::Error,
                format!("DestinationRule {} forces ISTIO_MUTUAL for {}, whose pods have no sidecar: callers with a sidecar get 503 (TLS WRONG_VERSION_NUMBER / connection reset)", dr.reference(), svc.fqdn()),
                objs,
                format!("host `{host}` covers {}; pods without istio-proxy: {}", svc.fqdn(), plain.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")),
                "Add a DestinationRule for that host with tls mode DISABLE (for example `host: non-mesh.<namespace>.svc.cluster.local` with `trafficPolicy.tls.mode: DISABLE`), or give the service's pods a sidecar.",
            ));
        }
    }

    // MT004: STRICT PeerAuthentication vs DISABLE DestinationRules.
    for dr in of("DestinationRule").filter(|o| {
        o.value
            .pointer("/spec/trafficPolicy/tls/mode")
            .and_then(Value::as_str)
            == Some("DISABLE")
    }) {
        let host = dr.spec().get("host").and_then(Value::as_str).unwrap_or("");
        let dr_ns = dr.namespace.as_deref().unwrap_or("");
        for svc in topo
            .services
            .iter()
            .filter(|s| scope.ns(Some(&s.namespace)) && dr_host_matches(host, dr_ns, &s.fqdn()))
        {
            let strict: Vec<(&PodInfo, &Object)> = topo
                .pods
                .iter()
                .filter(|p| {
                    p.namespace == svc.namespace
                        && selects(&svc.selector, &p.labels)
                        && p.has_sidecar
                })
                .filter_map(|p| {
                    mtls_mode(objects, p)
                        .filter(|(_, m)| m == "STRICT")
                        .map(|(o, _)| (p, o))
                })
                .collect();
            if let Some((p, pa)) = strict.first() {
                out.push(finding(
                    "MT004",
                    Severity::Error,
                    format!("DestinationRule {} sends plaintext to {}, but {} requires mTLS (STRICT): connections are refused", dr.reference(), svc.fqdn(), pa.reference()),
                    vec![dr.reference(), pa.reference(), format!("Pod/{}/{}", p.namespace, p.name)],
                    format!("tls.mode DISABLE for host `{host}`; PeerAuthentication mode STRICT applies to {}", p.reference()),
                    "Remove the DISABLE DestinationRule (Istio's auto mTLS picks the right mode), or set the port to PERMISSIVE.",
                ));
            }
        }
    }

    // MT005: AuthorizationPolicies on gateways and model pods.
    for ap in of("AuthorizationPolicy").filter(|o| {
        scope.ns(o.namespace.as_deref()) || o.namespace.as_deref() == Some("istio-system")
    }) {
        let sel = labels(ap, "/spec/selector/matchLabels");
        let ns = ap.namespace.as_deref().unwrap_or("");
        let targets: Vec<&PodInfo> = topo
            .pods
            .iter()
            .filter(|p| p.role == PodRole::IngressGateway || (serving(p) && scope.pod(p)))
            .filter(|p| {
                if sel.is_empty() {
                    p.namespace == ns || ns == "istio-system"
                } else {
                    (p.namespace == ns || ns == "istio-system") && selects(&sel, &p.labels)
                }
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let action = ap
            .spec()
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("ALLOW");
        let rules = ap
            .spec()
            .get("rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let who = targets
            .iter()
            .map(|p| p.reference())
            .collect::<Vec<_>>()
            .join(", ");
        let (severity, title, fix) = match action {
            "ALLOW" => {
                let needs_header = rules.iter().any(|r| {
                    r.get("when").and_then(Value::as_array).is_some_and(|w| {
                        w.iter().any(|c| {
                            c.get("key")
                                .and_then(Value::as_str)
                                .is_some_and(|k| k.starts_with("request.headers"))
                        })
                    })
                });
                if rules.is_empty() {
                    (
                        Severity::Error,
                        format!(
                            "ALLOW policy {} has no rules: it denies every request to {who}",
                            ap.reference()
                        ),
                        "Add rules, or delete the policy.",
                    )
                } else if needs_header {
                    (
                        Severity::Warning,
                        format!(
                            "ALLOW policy {} admits requests to {who} only when they carry certain headers: others get 403 rbac_access_denied_matched_policy[none]",
                            ap.reference()
                        ),
                        "Make sure every client sends the headers, or widen the rules.",
                    )
                } else {
                    (
                        Severity::Info,
                        format!(
                            "ALLOW policy {} restricts requests to {who}: anything else gets 403",
                            ap.reference()
                        ),
                        "Check that the model's clients and probes match one rule.",
                    )
                }
            }
            "DENY" => (
                Severity::Info,
                format!("DENY policy {} applies to {who}", ap.reference()),
                "Requests matching its rules get 403 rbac_access_denied_matched_policy[ns[..]-policy[..]-rule[..]].",
            ),
            "CUSTOM" => (
                Severity::Info,
                format!(
                    "CUSTOM (ext-authz) policy {} applies to {who} via provider {}",
                    ap.reference(),
                    ap.value
                        .pointer("/spec/provider/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ),
                "The external authorizer's decisions appear as UAEX / ext_authz_denied; check it is reachable.",
            ),
            _ => continue,
        };
        let mut objs = vec![ap.reference()];
        objs.extend(
            targets
                .iter()
                .take(3)
                .map(|p| format!("Pod/{}/{}", p.namespace, p.name)),
        );
        out.push(finding(
            "MT005",
            severity,
            title,
            objs,
            if rules.is_empty() {
                "no rules".into()
            } else {
                format!(
                    "rules require: {}",
                    rules
                        .iter()
                        .map(describe_rule)
                        .collect::<Vec<_>>()
                        .join("; or ")
                )
            },
            fix,
        ));
    }

    // MT006: cluster-local visibility.
    for o in objects.iter().filter(|o| {
        matches!(o.kind.as_str(), "InferenceService" | "Service")
            && o.api_version != "v1"
            && scope.ns(o.namespace.as_deref())
            && scope.isvc.as_ref().is_none_or(|i| *i == o.name)
    }) {
        if o.label("networking.knative.dev/visibility") == Some("cluster-local") {
            out.push(finding(
                "MT006",
                Severity::Info,
                format!("{} is cluster-local: it is not exposed on the ingress gateway, only through knative-local-gateway", o.reference()),
                vec![o.reference()],
                "label networking.knative.dev/visibility: cluster-local".into(),
                "Remove the label to expose it externally; from inside the cluster call <name>.<namespace>.svc.cluster.local (with a sidecar).",
            ));
        }
    }

    // MT007: VirtualService hosts that none of their Gateways serve. Istio applies a host only on
    // the gateways whose servers match it (Knative lists every host on both gateways), so only a
    // host matched by no gateway at all is unreachable.
    for vs in of("VirtualService").filter(|o| scope.ns(o.namespace.as_deref())) {
        let vs_ns = vs.namespace.as_deref().unwrap_or("");
        let gws = str_list(vs.spec().get("gateways"));
        if gws.is_empty() || gws.iter().any(|g| g == "mesh") {
            continue;
        }
        let mut served: Vec<String> = Vec::new();
        let mut found = Vec::new();
        for gw_ref in &gws {
            let (gns, gname) = gw_ref
                .split_once('/')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or((vs_ns.to_string(), gw_ref.clone()));
            if let Some(g) = topo
                .gateways
                .iter()
                .find(|g| g.namespace == gns && g.name == gname)
            {
                served.extend(g.servers.iter().flat_map(|s| {
                    s.hosts
                        .iter()
                        .map(|h| h.rsplit_once('/').map(|(_, h)| h).unwrap_or(h).to_string())
                }));
                found.push(format!("Gateway/{gns}/{gname}"));
            }
        }
        if found.is_empty() {
            continue;
        }
        let hosts = str_list(vs.spec().get("hosts"));
        let is_served = |h: &String| {
            let expanded = if h.contains('.') {
                h.clone()
            } else {
                format!("{h}.{vs_ns}.svc.cluster.local")
            };
            served.iter().any(|pat| {
                pat == "*"
                    || pat == h
                    || pat
                        .strip_prefix('*')
                        .is_some_and(|suf| h.ends_with(suf) || expanded.ends_with(suf))
            })
        };
        // Some hosts served: the others are only ignored on these gateways (Knative lists short
        // cluster-local forms for the mesh). None served: the VirtualService does nothing there.
        let any_served = hosts.iter().any(is_served);
        for h in hosts.iter().filter(|h| !is_served(h)) {
            {
                let mut objs = vec![vs.reference()];
                objs.extend(found.iter().cloned());
                out.push(finding(
                    "MT007",
                    if any_served { Severity::Info } else { Severity::Warning },
                    format!("VirtualService {} declares host {h}, which none of its Gateways serves: requests for it get 404 NR there", vs.reference()),
                    objs,
                    format!("gateway server hosts: [{}]", served.join(", ")),
                    "Add the host (or a wildcard covering it) to a Gateway server, or bind the VirtualService to the Gateway that serves it.",
                ));
            }
        }
    }

    // MT008: REGISTRY_ONLY without package hosts.
    let registry_only = of("ConfigMap").find(|o| {
        (o.name == "istio" || o.name.starts_with("istio-"))
            && o.value.to_string().contains("REGISTRY_ONLY")
    });
    if let Some(cm) = registry_only {
        let hosts: Vec<String> = of("ServiceEntry")
            .flat_map(|se| str_list(se.spec().get("hosts")))
            .collect();
        let missing: Vec<&str> = ["pypi.org", "files.pythonhosted.org"]
            .into_iter()
            .filter(|h| !hosts.iter().any(|x| x == h))
            .collect();
        let has_models = of("InferenceService").next().is_some();
        if has_models && !missing.is_empty() {
            out.push(finding(
                "MT008",
                Severity::Warning,
                format!("outboundTrafficPolicy is REGISTRY_ONLY and no ServiceEntry registers [{}]: model runtimes that install Python packages at start-up will fail (502 block_all / BlackHoleCluster)", missing.join(", ")),
                [cm.reference()].into_iter().chain(of("ServiceEntry").map(Object::reference)).collect(),
                format!("registered hosts: [{}]", hosts.join(", ")),
                "Add a ServiceEntry for pypi.org, files.pythonhosted.org (and any other package host the runtime needs) with `location: MESH_EXTERNAL`, `resolution: DNS` and port 443 TLS, so the model server can install its Python dependencies under REGISTRY_ONLY.",
            ));
        } else if has_models {
            out.push(finding(
                "MT008",
                Severity::Info,
                "outboundTrafficPolicy is REGISTRY_ONLY: only hosts registered by ServiceEntries are reachable from model pods".into(),
                vec![cm.reference()],
                format!("registered hosts: [{}]", hosts.join(", ")),
                "Register every external host a runtime or storage initializer needs.",
            ));
        }
    }

    // MT009: storage-initializer under Istio CNI.
    let cni = topo
        .pods
        .iter()
        .any(|p| p.containers.iter().any(|c| c == "istio-validation"));
    if cni {
        for isvc in of("InferenceService").filter(|o| {
            scope.ns(o.namespace.as_deref()) && scope.isvc.as_ref().is_none_or(|i| *i == o.name)
        }) {
            let uses_storage = isvc.value.to_string().contains("storageUri")
                || isvc
                    .value
                    .pointer("/spec/predictor/model/storage")
                    .is_some();
            if uses_storage
                && isvc.annotation("serving.kserve.io/storage-initializer-uid") != Some("1337")
            {
                let ns = isvc.namespace.as_deref().unwrap_or("");
                let running = topo.pods.iter().any(|p| {
                    p.namespace == ns
                        && p.isvc.as_deref() == Some(isvc.name.as_str())
                        && p.phase.as_deref() == Some("Running")
                });
                out.push(finding(
                    "MT009",
                    // Its pods run: the download worked here (e.g. a platform that exempts init
                    // containers); still worth knowing.
                    if running { Severity::Info } else { Severity::Warning },
                    format!("{} downloads its model with the storage-initializer under Istio CNI: the init container runs before Envoy is ready and cannot connect", isvc.reference()),
                    vec![isvc.reference()],
                    "pods run the istio-validation init container (Istio CNI); the InferenceService has no serving.kserve.io/storage-initializer-uid: \"1337\" annotation".into(),
                    "Annotate the InferenceService with serving.kserve.io/storage-initializer-uid: \"1337\" (KServe ≥ 0.11) so the init container's traffic bypasses the sidecar (KServe's documented setting for Istio CNI).",
                ));
            }
        }
    }

    // MT012: rate limits on gateways and model pods.
    for ef in of("EnvoyFilter") {
        let text = ef.spec().to_string();
        if !(text.contains("ratelimit") || text.contains("rate_limit")) {
            continue;
        }
        let sel = labels(ef, "/spec/workloadSelector/labels");
        let ns = ef.namespace.as_deref().unwrap_or("");
        let targets: Vec<&PodInfo> = topo
            .pods
            .iter()
            .filter(|p| {
                (p.namespace == ns || ns == "istio-system")
                    && (sel.is_empty() || selects(&sel, &p.labels))
            })
            .filter(|p| p.role == PodRole::IngressGateway || (serving(p) && scope.pod(p)))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let limits: Vec<String> = of("ConfigMap")
            .filter(|c| c.value.to_string().contains("requests_per_unit"))
            .map(Object::reference)
            .collect();
        let mut objs = vec![ef.reference()];
        objs.extend(limits.iter().cloned());
        out.push(finding(
            "MT012",
            Severity::Info,
            format!("EnvoyFilter {} rate-limits requests through {}: over the limit they get 429 (RL request_rate_limited)", ef.reference(), targets.iter().map(|p| p.reference()).collect::<Vec<_>>().join(", ")),
            objs,
            if limits.is_empty() { "rate limit filter or actions patched into the proxy".into() } else { format!("descriptors in {}", limits.join(", ")) },
            "Check the descriptors' limits against the expected traffic; with failure_mode_deny a rate limit service outage also rejects requests (RLSE).",
        ));
    }

    // MT010: Revisions not ready.
    for rev in of("Revision").filter(|o| scope.ns(o.namespace.as_deref())) {
        let cond = rev
            .value
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            });
        if let Some(c) = cond
            && c.get("status").and_then(Value::as_str) != Some("True")
        {
            out.push(finding(
                "MT010",
                Severity::Warning,
                format!("Revision {} is not Ready: the activator holds requests for it and answers 503 when it times out", rev.reference()),
                vec![rev.reference()],
                format!(
                    "Ready={} reason={} message={}",
                    c.get("status").and_then(Value::as_str).unwrap_or("?"),
                    c.get("reason").and_then(Value::as_str).unwrap_or("-"),
                    c.get("message").and_then(Value::as_str).unwrap_or("-")
                ),
                "Check why its pods do not start (kubectl describe pod, events: scheduling, image pull, resources, storage-initializer).",
            ));
        }
    }

    // MT011: serving pods that restarted.
    for p in topo
        .pods
        .iter()
        .filter(|p| serving(p) && p.restarts > 0 && scope.pod(p))
    {
        out.push(finding(
            "MT011",
            Severity::Warning,
            format!(
                "{} {} restarted {} time(s): requests in flight were reset (503 UC/UR)",
                p.role.name(),
                p.reference(),
                p.restarts
            ),
            vec![format!("Pod/{}/{}", p.namespace, p.name)],
            format!("restartCount total {}", p.restarts),
            "Read `kubectl logs --previous` and the last state (OOMKilled → raise memory limits).",
        ));
    }

    out.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.id.cmp(b.id))
            .then(a.title.cmp(&b.title))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        Object::from_value(v, "test".into()).expect("test objects have a kind and a name")
    }

    fn pod(
        ns: &str,
        name: &str,
        ip: &str,
        labels: Value,
        containers: &[&str],
        init: &[&str],
        phase: &str,
    ) -> Object {
        let cs: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "x"}))
            .collect();
        let ic: Vec<Value> = init
            .iter()
            .map(|c| json!({"name": c, "image": "x"}))
            .collect();
        obj(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
                   "spec": {"containers": cs, "initContainers": ic}, "status": {"phase": phase, "podIP": ip}}),
        )
    }

    fn ids(objects: &[Object]) -> Vec<(&'static str, Severity)> {
        let topo = Topology::from_objects(objects, &mut Vec::new());
        doctor(objects, &topo, &Scope::default())
            .into_iter()
            .map(|f| (f.id, f.severity))
            .collect()
    }

    #[test]
    fn mt001_predictor_without_sidecar_under_strict() {
        let o = vec![
            pod(
                "kserve-test",
                "iris-predictor-0",
                "10.0.0.17",
                json!({"serving.kserve.io/inferenceservice": "iris", "component": "predictor"}),
                &["kserve-container", "queue-proxy"],
                &[],
                "Running",
            ),
            obj(
                json!({"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication", "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}}),
            ),
        ];
        assert_eq!(ids(&o), vec![("MT001", Severity::Error)]);
    }

    #[test]
    fn mt003_and_mt004_destination_rules_against_the_pods() {
        // The default DR forces ISTIO_MUTUAL on a non-mesh service.
        let o = vec![
            pod(
                "aiproject",
                "no-mesh-0",
                "10.0.0.40",
                json!({"app": "no-mesh"}),
                &["server"],
                &[],
                "Running",
            ),
            obj(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "no-mesh", "namespace": "aiproject"}, "spec": {"clusterIP": "10.96.0.40", "selector": {"app": "no-mesh"}, "ports": [{"port": 8000}]}}),
            ),
            obj(
                json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule", "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"host": "*.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}}),
            ),
            pod(
                "aiproject",
                "strict-0",
                "10.0.0.41",
                json!({"app": "strict"}),
                &["server", "istio-proxy"],
                &[],
                "Running",
            ),
            obj(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "strict", "namespace": "aiproject"}, "spec": {"clusterIP": "10.96.0.41", "selector": {"app": "strict"}, "ports": [{"port": 80}]}}),
            ),
            obj(
                json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule", "metadata": {"name": "plain", "namespace": "aiproject"}, "spec": {"host": "strict", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}}),
            ),
            obj(
                json!({"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication", "metadata": {"name": "default", "namespace": "aiproject"}, "spec": {"mtls": {"mode": "STRICT"}}}),
            ),
        ];
        assert_eq!(
            ids(&o),
            vec![("MT003", Severity::Error), ("MT004", Severity::Error)]
        );
    }

    #[test]
    fn mt006_mt008_mt009_kserve_settings() {
        let o = vec![
            obj(
                json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "mnist", "namespace": "kserve-test", "labels": {"networking.knative.dev/visibility": "cluster-local"}},
                       "spec": {"predictor": {"model": {"storageUri": "s3://models/mnist"}}}}),
            ),
            pod(
                "kserve-test",
                "mnist-predictor-0",
                "10.0.0.20",
                json!({"serving.kserve.io/inferenceservice": "mnist", "component": "predictor"}),
                &["kserve-container", "istio-proxy"],
                &["istio-validation", "storage-initializer"],
                "Pending",
            ),
            obj(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}}),
            ),
        ];
        assert_eq!(
            ids(&o),
            vec![
                ("MT008", Severity::Warning),
                ("MT009", Severity::Warning),
                ("MT006", Severity::Info)
            ]
        );
    }

    #[test]
    fn every_check_is_documented() {
        let doc = include_str!("../../docs/checks.md");
        for (id, name, _) in CHECKS {
            assert!(
                doc.contains(&format!("## {id} `{name}`")),
                "docs/checks.md lacks {id} {name}"
            );
        }
    }
}
