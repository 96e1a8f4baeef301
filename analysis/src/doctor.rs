//! `doctor`: static checks of the serving path — misconfigurations visible before any request is
//! sent. Pure: Kubernetes objects and topology in, findings out. Every id is documented in
//! `docs/checks.md`.
//!
//! Each check is one function over a `CheckContext`; `TABLE` lists them with their id, name
//! and description, and [`doctor`] runs them all.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::model::Object;
use crate::objects::{applies_to, describe_rule, dr_host_matches};
use crate::topology::{PodInfo, PodRole, ServiceInfo, Topology, selects};

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

/// What every check reads.
struct CheckContext<'a> {
    objects: &'a [Object],
    topo: &'a Topology,
    scope: &'a Scope,
}

impl<'a> CheckContext<'a> {
    /// The objects of one kind.
    fn of(&self, kind: &'static str) -> impl Iterator<Item = &'a Object> + use<'a> {
        self.objects.iter().filter(move |o| o.kind == kind)
    }
}

/// One check: its stable id, short name, what it looks for, and the function running it.
struct Check {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    run: fn(&CheckContext<'_>) -> Vec<Finding>,
}

/// Every check, in id order.
const TABLE: [Check; 12] = [
    Check {
        id: "MT001",
        name: "predictor-without-sidecar",
        description: "model-serving pods without an istio-proxy sidecar where mTLS is required",
        run: mt001_predictor_without_sidecar,
    },
    Check {
        id: "MT002",
        name: "callers-outside-mesh",
        description: "an ISTIO_MUTUAL gateway server (e.g. knative-local-gateway) and namespaces whose pods have no sidecar",
        run: mt002_callers_outside_mesh,
    },
    Check {
        id: "MT003",
        name: "istio-mutual-to-plaintext",
        description: "a DestinationRule forcing ISTIO_MUTUAL towards a Service whose pods have no sidecar",
        run: mt003_istio_mutual_to_plaintext,
    },
    Check {
        id: "MT004",
        name: "strict-vs-disable",
        description: "STRICT PeerAuthentication on workloads that a DestinationRule calls with tls DISABLE",
        run: mt004_strict_vs_disable,
    },
    Check {
        id: "MT005",
        name: "authz-policies",
        description: "AuthorizationPolicies selecting a gateway or model pod: ALLOW rules that need headers, DENY, CUSTOM",
        run: mt005_authz_policies,
    },
    Check {
        id: "MT006",
        name: "cluster-local",
        description: "services labelled networking.knative.dev/visibility: cluster-local (not on the ingress gateway)",
        run: mt006_cluster_local,
    },
    Check {
        id: "MT007",
        name: "vs-host-not-on-gateway",
        description: "VirtualService hosts that none of their Gateways' servers serve",
        run: mt007_vs_host_not_on_gateway,
    },
    Check {
        id: "MT008",
        name: "registry-only-package-hosts",
        description: "outboundTrafficPolicy REGISTRY_ONLY without ServiceEntries for the Python package hosts",
        run: mt008_registry_only_package_hosts,
    },
    Check {
        id: "MT009",
        name: "storage-initializer-cni",
        description: "storage-initializer under Istio CNI without serving.kserve.io/storage-initializer-uid: \"1337\"",
        run: mt009_storage_initializer_cni,
    },
    Check {
        id: "MT010",
        name: "revision-not-ready",
        description: "Knative Revisions (KServe predictors) whose Ready condition is not True",
        run: mt010_revision_not_ready,
    },
    Check {
        id: "MT011",
        name: "serving-pod-restarts",
        description: "model-serving pods whose containers restarted (crash, OOM)",
        run: mt011_serving_pod_restarts,
    },
    Check {
        id: "MT012",
        name: "rate-limits",
        description: "EnvoyFilters that rate-limit gateways or model pods (429 beyond the limit)",
        run: mt012_rate_limits,
    },
];

/// [`CHECKS`], read off [`TABLE`].
const CHECK_LIST: [(&str, &str, &str); TABLE.len()] = {
    let mut list = [("", "", ""); TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        list[i] = (TABLE[i].id, TABLE[i].name, TABLE[i].description);
        i += 1;
    }
    list
};

/// Every check: id, name, what it looks for (for `docs/checks.md` and `doctor --list`).
pub const CHECKS: &[(&str, &str, &str)] = &CHECK_LIST;

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

fn pod_ref(p: &PodInfo) -> String {
    format!("Pod/{}/{}", p.namespace, p.name)
}

/// mTLS mode that applies to a pod: workload PeerAuthentication, else namespace, else mesh-wide.
fn mtls_mode<'o>(objects: &'o [Object], pod: &PodInfo) -> Option<(&'o Object, String)> {
    let pas: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind == "PeerAuthentication")
        .collect();
    let mode = |o: &Object| o.str_at("/spec/mtls/mode").map(str::to_string);
    let workload = pas.iter().find(|o| {
        o.namespace.as_deref() == Some(pod.namespace.as_str()) && {
            let sel = o.string_map("/spec/selector/matchLabels");
            !sel.is_empty() && selects(&sel, &pod.labels)
        }
    });
    let namespace = pas.iter().find(|o| {
        o.namespace.as_deref() == Some(pod.namespace.as_str())
            && o.string_map("/spec/selector/matchLabels").is_empty()
    });
    let mesh = pas.iter().find(|o| {
        o.namespace.as_deref() == Some("istio-system")
            && o.string_map("/spec/selector/matchLabels").is_empty()
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
    let ctx = CheckContext {
        objects,
        topo,
        scope,
    };
    let mut out: Vec<Finding> = TABLE.iter().flat_map(|c| (c.run)(&ctx)).collect();
    out.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.id.cmp(b.id))
            .then(a.title.cmp(&b.title))
    });
    out
}

/// MT001: serving pods without sidecar.
fn mt001_predictor_without_sidecar(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in ctx
        .topo
        .pods
        .iter()
        .filter(|p| serving(p) && !p.has_sidecar && ctx.scope.pod(p))
    {
        let mode = mtls_mode(ctx.objects, p);
        let strict = mode.as_ref().is_some_and(|(_, m)| m == "STRICT");
        // KServe Standard (RawDeployment) mode runs without the mesh by design (an auth proxy
        // sidecar, not istio-proxy): only a STRICT mTLS mode makes that a problem.
        if p.is_kserve_standard() && !strict {
            continue;
        }
        out.push(finding(
            "MT001",
            if strict { Severity::Error } else { Severity::Warning },
            format!("{} {} runs without an istio-proxy sidecar", p.role.name(), p.reference()),
            [Some(pod_ref(p)), mode.as_ref().map(|(o, _)| o.reference())].into_iter().flatten().collect(),
            format!(
                "containers [{}]; mTLS mode for it: {}",
                p.containers.join(", "),
                mode.as_ref().map(|(_, m)| m.as_str()).unwrap_or("not set (PERMISSIVE)")
            ),
            "Inject the sidecar (annotation sidecar.istio.io/inject: \"true\" on the InferenceService / namespace label istio-injection=enabled, then restart), or the gateways and callers that use mTLS towards it will fail.",
        ));
    }
    out
}

/// MT002: ISTIO_MUTUAL gateway servers and namespaces whose pods have no sidecar.
fn mt002_callers_outside_mesh(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let topo = ctx.topo;
    let outside: BTreeSet<String> = topo
        .pods
        .iter()
        .filter(|p| {
            !p.has_sidecar
                && p.role == PodRole::Workload
                && !is_system(&p.namespace)
                && ctx.scope.ns(Some(&p.namespace))
        })
        .map(|p| p.namespace.clone())
        .collect();
    let mut out = Vec::new();
    if outside.is_empty() {
        return out;
    }
    let pods: Vec<String> = topo
        .pods
        .iter()
        .filter(|p| !p.has_sidecar && p.role == PodRole::Workload && outside.contains(&p.namespace))
        .map(pod_ref)
        .collect();
    for g in &topo.gateways {
        for s in g
            .servers
            .iter()
            .filter(|s| s.tls_mode.as_deref() == Some("ISTIO_MUTUAL"))
        {
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
    out
}

/// DestinationRules with this `trafficPolicy.tls.mode`, each with its host and every in-scope
/// Service the host covers.
fn drs_with_tls_mode<'a>(
    ctx: &CheckContext<'a>,
    mode: &str,
) -> Vec<(&'a Object, &'a str, &'a ServiceInfo)> {
    let mut out = Vec::new();
    for dr in ctx
        .of("DestinationRule")
        .filter(|o| o.str_at("/spec/trafficPolicy/tls/mode") == Some(mode))
    {
        let host = dr.str_at("/spec/host").unwrap_or("");
        let dr_ns = dr.namespace.as_deref().unwrap_or("");
        out.extend(
            ctx.topo
                .services
                .iter()
                .filter(|s| {
                    ctx.scope.ns(Some(&s.namespace)) && dr_host_matches(host, dr_ns, &s.fqdn())
                })
                .map(|svc| (dr, host, svc)),
        );
    }
    out
}

/// The pods a Service selects.
fn service_pods<'a>(
    topo: &'a Topology,
    svc: &'a ServiceInfo,
) -> impl Iterator<Item = &'a PodInfo> + use<'a> {
    topo.pods
        .iter()
        .filter(move |p| p.namespace == svc.namespace && selects(&svc.selector, &p.labels))
}

/// MT003: ISTIO_MUTUAL DestinationRules towards Services whose pods have no sidecar.
fn mt003_istio_mutual_to_plaintext(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (dr, host, svc) in drs_with_tls_mode(ctx, "ISTIO_MUTUAL") {
        let plain: Vec<&PodInfo> = service_pods(ctx.topo, svc)
            .filter(|p| !p.has_sidecar)
            .collect();
        if plain.is_empty() {
            continue;
        }
        let mut objs = vec![
            dr.reference(),
            format!("Service/{}/{}", svc.namespace, svc.name),
        ];
        objs.extend(plain.iter().take(3).map(|p| pod_ref(p)));
        out.push(finding(
            "MT003",
            Severity::Error,
            format!("DestinationRule {} forces ISTIO_MUTUAL for {}, whose pods have no sidecar: callers with a sidecar get 503 (TLS WRONG_VERSION_NUMBER / connection reset)", dr.reference(), svc.fqdn()),
            objs,
            format!("host `{host}` covers {}; pods without istio-proxy: {}", svc.fqdn(), plain.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")),
            "Add a DestinationRule for that host with tls mode DISABLE (for example `host: non-mesh.<namespace>.svc.cluster.local` with `trafficPolicy.tls.mode: DISABLE`), or give the service's pods a sidecar.",
        ));
    }
    out
}

/// MT004: STRICT PeerAuthentication vs DISABLE DestinationRules.
fn mt004_strict_vs_disable(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (dr, host, svc) in drs_with_tls_mode(ctx, "DISABLE") {
        let strict = service_pods(ctx.topo, svc)
            .filter(|p| p.has_sidecar)
            .find_map(|p| {
                mtls_mode(ctx.objects, p)
                    .filter(|(_, m)| m == "STRICT")
                    .map(|(o, _)| (p, o))
            });
        if let Some((p, pa)) = strict {
            out.push(finding(
                "MT004",
                Severity::Error,
                format!("DestinationRule {} sends plaintext to {}, but {} requires mTLS (STRICT): connections are refused", dr.reference(), svc.fqdn(), pa.reference()),
                vec![dr.reference(), pa.reference(), pod_ref(p)],
                format!("tls.mode DISABLE for host `{host}`; PeerAuthentication mode STRICT applies to {}", p.reference()),
                "Remove the DISABLE DestinationRule (Istio's auto mTLS picks the right mode), or set the port to PERMISSIVE.",
            ));
        }
    }
    out
}

/// Gateway pods and in-scope model pods that a policy with a selector at `selector_ptr`
/// applies to.
fn guarded_pods<'a>(
    ctx: &CheckContext<'a>,
    policy: &Object,
    selector_ptr: &str,
) -> Vec<&'a PodInfo> {
    ctx.topo
        .pods
        .iter()
        .filter(|p| p.role == PodRole::IngressGateway || (serving(p) && ctx.scope.pod(p)))
        .filter(|p| applies_to(policy, selector_ptr, p))
        .collect()
}

/// MT005: AuthorizationPolicies on gateways and model pods.
fn mt005_authz_policies(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for ap in ctx.of("AuthorizationPolicy").filter(|o| {
        ctx.scope.ns(o.namespace.as_deref()) || o.namespace.as_deref() == Some("istio-system")
    }) {
        let targets = guarded_pods(ctx, ap, "/spec/selector/matchLabels");
        if targets.is_empty() {
            continue;
        }
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
        let Some((severity, title, fix)) = authz_verdict(ap, &rules, &who) else {
            continue;
        };
        let mut objs = vec![ap.reference()];
        objs.extend(targets.iter().take(3).map(|p| pod_ref(p)));
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
    out
}

/// What an AuthorizationPolicy means for the pods `who` it applies to: severity, title, fix.
/// None for an action doctor does not judge.
fn authz_verdict(
    ap: &Object,
    rules: &[Value],
    who: &str,
) -> Option<(Severity, String, &'static str)> {
    let verdict = match ap.str_at("/spec/action").unwrap_or("ALLOW") {
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
                ap.str_at("/spec/provider/name").unwrap_or("?")
            ),
            "The external authorizer's decisions appear as UAEX / ext_authz_denied; check it is reachable.",
        ),
        _ => return None,
    };
    Some(verdict)
}

/// MT006: cluster-local visibility.
fn mt006_cluster_local(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let scope = ctx.scope;
    ctx.objects
        .iter()
        .filter(|o| {
            matches!(o.kind.as_str(), "InferenceService" | "Service")
                && o.api_version != "v1"
                && scope.ns(o.namespace.as_deref())
                && scope.isvc.as_ref().is_none_or(|i| *i == o.name)
        })
        .filter(|o| o.label("networking.knative.dev/visibility") == Some("cluster-local"))
        .map(|o| finding(
            "MT006",
            Severity::Info,
            format!("{} is cluster-local: it is not exposed on the ingress gateway, only through knative-local-gateway", o.reference()),
            vec![o.reference()],
            "label networking.knative.dev/visibility: cluster-local".into(),
            "Remove the label to expose it externally; from inside the cluster call <name>.<namespace>.svc.cluster.local (with a sidecar).",
        ))
        .collect()
}

/// MT007: VirtualService hosts that none of their Gateways serve. Istio applies a host only on
/// the gateways whose servers match it (Knative lists every host on both gateways), so only a
/// host matched by no gateway at all is unreachable.
fn mt007_vs_host_not_on_gateway(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for vs in ctx
        .of("VirtualService")
        .filter(|o| ctx.scope.ns(o.namespace.as_deref()))
    {
        let vs_ns = vs.namespace.as_deref().unwrap_or("");
        let gws = vs.strings_at("/spec/gateways");
        if gws.is_empty() || gws.iter().any(|g| g == "mesh") {
            continue;
        }
        let (served, found) = gateway_hosts(ctx.topo, vs_ns, &gws);
        if found.is_empty() {
            continue;
        }
        let hosts = vs.strings_at("/spec/hosts");
        let is_served = |h: &String| host_served(h, vs_ns, &served);
        // Some hosts served: the others are only ignored on these gateways (Knative lists short
        // cluster-local forms for the mesh). None served: the VirtualService does nothing there.
        let any_served = hosts.iter().any(is_served);
        for h in hosts.iter().filter(|h| !is_served(h)) {
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
    out
}

/// The server hosts (without their `namespace/` prefix) of the Gateways a VirtualService in
/// `vs_ns` binds to, and the Gateways found (`Gateway/ns/name`).
fn gateway_hosts(topo: &Topology, vs_ns: &str, gws: &[String]) -> (Vec<String>, Vec<String>) {
    let mut served: Vec<String> = Vec::new();
    let mut found = Vec::new();
    for gw_ref in gws {
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
    (served, found)
}

/// Does a server host pattern of `served` match VirtualService host `h` (short names expand in
/// the VirtualService's namespace `vs_ns`)?
fn host_served(h: &str, vs_ns: &str, served: &[String]) -> bool {
    let expanded = if h.contains('.') {
        h.to_string()
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
}

/// MT008: REGISTRY_ONLY without package hosts.
fn mt008_registry_only_package_hosts(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let registry_only = ctx.of("ConfigMap").find(|o| {
        (o.name == "istio" || o.name.starts_with("istio-"))
            && o.value.to_string().contains("REGISTRY_ONLY")
    });
    let Some(cm) = registry_only else {
        return Vec::new();
    };
    let hosts: Vec<String> = ctx
        .of("ServiceEntry")
        .flat_map(|se| se.strings_at("/spec/hosts"))
        .collect();
    let missing: Vec<&str> = ["pypi.org", "files.pythonhosted.org"]
        .into_iter()
        .filter(|h| !hosts.iter().any(|x| x == h))
        .collect();
    let has_models = ctx.of("InferenceService").next().is_some();
    if has_models && !missing.is_empty() {
        vec![finding(
            "MT008",
            Severity::Warning,
            format!(
                "outboundTrafficPolicy is REGISTRY_ONLY and no ServiceEntry registers [{}]: model runtimes that install Python packages at start-up will fail (502 block_all / BlackHoleCluster)",
                missing.join(", ")
            ),
            [cm.reference()]
                .into_iter()
                .chain(ctx.of("ServiceEntry").map(Object::reference))
                .collect(),
            format!("registered hosts: [{}]", hosts.join(", ")),
            "Add a ServiceEntry for pypi.org, files.pythonhosted.org (and any other package host the runtime needs) with `location: MESH_EXTERNAL`, `resolution: DNS` and port 443 TLS, so the model server can install its Python dependencies under REGISTRY_ONLY.",
        )]
    } else if has_models {
        vec![finding(
            "MT008",
            Severity::Info,
            "outboundTrafficPolicy is REGISTRY_ONLY: only hosts registered by ServiceEntries are reachable from model pods".into(),
            vec![cm.reference()],
            format!("registered hosts: [{}]", hosts.join(", ")),
            "Register every external host a runtime or storage initializer needs.",
        )]
    } else {
        Vec::new()
    }
}

/// MT009: storage-initializer under Istio CNI.
fn mt009_storage_initializer_cni(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let (topo, scope) = (ctx.topo, ctx.scope);
    let cni = topo
        .pods
        .iter()
        .any(|p| p.containers.iter().any(|c| c == "istio-validation"));
    if !cni {
        return Vec::new();
    }
    let mut out = Vec::new();
    for isvc in ctx.of("InferenceService").filter(|o| {
        scope.ns(o.namespace.as_deref()) && scope.isvc.as_ref().is_none_or(|i| *i == o.name)
    }) {
        let uses_storage = isvc.value.to_string().contains("storageUri")
            || isvc
                .value
                .pointer("/spec/predictor/model/storage")
                .is_some();
        if !uses_storage
            || isvc.annotation("serving.kserve.io/storage-initializer-uid") == Some("1337")
        {
            continue;
        }
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
    out
}

/// MT010: Revisions not ready.
fn mt010_revision_not_ready(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for rev in ctx
        .of("Revision")
        .filter(|o| ctx.scope.ns(o.namespace.as_deref()))
    {
        if let Some(c) = rev.condition("Ready")
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
    out
}

/// MT011: serving pods that restarted.
fn mt011_serving_pod_restarts(ctx: &CheckContext<'_>) -> Vec<Finding> {
    ctx.topo
        .pods
        .iter()
        .filter(|p| serving(p) && p.restarts > 0 && ctx.scope.pod(p))
        .map(|p| {
            finding(
                "MT011",
                Severity::Warning,
                format!(
                    "{} {} restarted {} time(s): requests in flight were reset (503 UC/UR)",
                    p.role.name(),
                    p.reference(),
                    p.restarts
                ),
                vec![pod_ref(p)],
                format!("restartCount total {}", p.restarts),
                "Read `kubectl logs --previous` and the last state (OOMKilled → raise memory limits).",
            )
        })
        .collect()
}

/// MT012: rate limits on gateways and model pods.
fn mt012_rate_limits(ctx: &CheckContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for ef in ctx.of("EnvoyFilter") {
        let text = ef.spec().to_string();
        if !(text.contains("ratelimit") || text.contains("rate_limit")) {
            continue;
        }
        let targets = guarded_pods(ctx, ef, "/spec/workloadSelector/labels");
        if targets.is_empty() {
            continue;
        }
        let limits: Vec<String> = ctx
            .of("ConfigMap")
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
    fn mt001_skips_kserve_standard_pods_unless_strict() {
        // Standard (RawDeployment) mode: no revision, no queue-proxy, an auth proxy sidecar.
        let standard = pod(
            "aiproject",
            "granite-predictor-6b8d9c7f5-x2k9p",
            "10.0.0.18",
            json!({"serving.kserve.io/inferenceservice": "granite", "component": "predictor"}),
            &["kserve-container", "kube-rbac-proxy"],
            &[],
            "Running",
        );
        assert!(
            ids(std::slice::from_ref(&standard))
                .iter()
                .all(|(id, _)| *id != "MT001")
        );
        let strict = obj(
            json!({"apiVersion": "security.istio.io/v1beta1", "kind": "PeerAuthentication", "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}}),
        );
        assert_eq!(ids(&[standard, strict]), vec![("MT001", Severity::Error)]);
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
