//! The configuration objects behind a verdict: which AuthorizationPolicy, Gateway server,
//! DestinationRule, EnvoyFilter, VirtualService, InferenceService or Revision explains it. Pure.

use serde_json::Value;

use meshtrace_parsers::cluster::ClusterName;
use meshtrace_parsers::details::RbacPolicy;
use meshtrace_parsers::record::RawRecord;

use crate::causes::Cause;
use crate::model::{Object, strings};
use crate::topology::{PodInfo, Topology, selects};

pub use crate::model::Cited;

/// Namespaces where mesh-wide Istio policy lives.
const ROOT_NAMESPACES: [&str; 1] = ["istio-system"];

/// Does a policy with a `selector.matchLabels` (or `workloadSelector.labels`) apply to `pod`?
/// No selector: every workload of its namespace, or of the mesh when in the root namespace.
pub(crate) fn applies_to(o: &Object, selector_ptr: &str, pod: &PodInfo) -> bool {
    let ns = o.namespace.as_deref().unwrap_or("");
    let in_reach = ns == pod.namespace || ROOT_NAMESPACES.contains(&ns);
    let sel = o.string_map(selector_ptr);
    if sel.is_empty() {
        in_reach
    } else {
        in_reach && selects(&sel, &pod.labels)
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
            let v = strings(s.get(k));
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
            let v = strings(op.get(k));
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
        let vals = strings(w.get("values"));
        let not = strings(w.get("notValues"));
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

/// What the citations of one request read.
struct Site<'a, 'r> {
    objects: &'a [Object],
    topo: &'a Topology,
    origin: &'a RawRecord<'r>,
    origin_pod: Option<&'a PodInfo>,
    caller: Option<&'a RawRecord<'r>>,
}

impl<'a> Site<'a, '_> {
    /// The objects of one kind.
    fn of(&self, kind: &'static str) -> impl Iterator<Item = &'a Object> + use<'a> {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    /// The object of `kind` called `name` in `namespace`.
    fn named(&self, kind: &'static str, namespace: &str, name: &str) -> Option<&'a Object> {
        self.of(kind)
            .find(|o| o.name == name && o.namespace.as_deref() == Some(namespace))
    }

    /// The pod with this IP, if the address has one and the topology knows it.
    fn pod_at(&self, ip: Option<std::net::IpAddr>) -> Option<&'a PodInfo> {
        ip.and_then(|ip| self.topo.pod_by_ip(ip))
    }
}

/// `Pod/namespace/name`.
fn pod_object(pod: &PodInfo) -> String {
    format!("Pod/{}/{}", pod.namespace, pod.name)
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
    let site = Site {
        objects,
        topo,
        origin,
        origin_pod,
        caller,
    };
    match cause {
        Cause::RbacDenied => cite_rbac(&site),
        Cause::PlaintextToMtls | Cause::MissingSidecar | Cause::MtlsMismatch => {
            cite_mtls(&site, cause)
        }
        Cause::RateLimited | Cause::RateLimitServiceError => cite_rate_limit(&site),
        Cause::RouteNotFound => cite_route_not_found(&site),
        Cause::AppError
        | Cause::UpstreamReset
        | Cause::UpstreamConnectFailure
        | Cause::UpstreamTimeout => cite_model(&site, cause),
        Cause::ActivatorError | Cause::NoHealthyUpstream => cite_revision(&site),
        Cause::EgressBlocked => cite_egress(&site),
        Cause::CircuitBreaker => cite_connection_pool(&site),
        _ => Vec::new(),
    }
}

/// The connectionPool settings Istio turns into circuit-breaker thresholds, in order.
const POOL_FIELDS: [(&str, &str); 6] = [
    ("/tcp/maxConnections", "tcp.maxConnections"),
    (
        "/http/http1MaxPendingRequests",
        "http.http1MaxPendingRequests",
    ),
    ("/http/http2MaxRequests", "http.http2MaxRequests"),
    (
        "/http/maxRequestsPerConnection",
        "http.maxRequestsPerConnection",
    ),
    ("/http/maxRetries", "http.maxRetries"),
    ("/http/maxConcurrentStreams", "http.maxConcurrentStreams"),
];

/// `CircuitBreaker`: the DestinationRules whose `connectionPool` (for the whole host, or for
/// the subset the cluster names) set the limits the proxy enforced on the overflowing cluster.
fn cite_connection_pool(site: &Site<'_, '_>) -> Vec<Cited> {
    let Some(ClusterName::Istio { host, subset, .. }) = site.origin.upstream_cluster() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dr in site.of("DestinationRule") {
        let h = dr.str_at("/spec/host").unwrap_or("");
        if !dr_host_matches(h, dr.namespace.as_deref().unwrap_or(""), host) {
            continue;
        }
        let mut pools = vec![(
            String::new(),
            dr.value.pointer("/spec/trafficPolicy/connectionPool"),
        )];
        if !subset.is_empty() {
            let named = dr
                .spec()
                .get("subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|x| x.get("name").and_then(Value::as_str) == Some(subset));
            if let Some(x) = named {
                pools.push((
                    format!(" (subset `{subset}`)"),
                    x.pointer("/trafficPolicy/connectionPool"),
                ));
            }
        }
        let set: Vec<String> = pools
            .iter()
            .filter_map(|(label, pool)| {
                let pool = (*pool)?;
                let fields: Vec<String> = POOL_FIELDS
                    .iter()
                    .filter_map(|(ptr, name)| {
                        let v = pool.pointer(ptr)?;
                        Some(format!(
                            "{name} {}",
                            v.as_u64().map_or("?".into(), |n| n.to_string())
                        ))
                    })
                    .collect();
                (!fields.is_empty()).then(|| format!("{}{label}", fields.join(", ")))
            })
            .collect();
        if set.is_empty() {
            continue;
        }
        out.push(Cited {
            object: dr.reference(),
            why: format!(
                "host `{h}` covers {host}: connectionPool {} — the limits the proxy's circuit breakers enforced",
                set.join("; ")
            ),
        });
    }
    out
}

/// `RbacDenied`: the policy the RBAC details name, else the ALLOW policies the request matched
/// none of.
fn cite_rbac(site: &Site<'_, '_>) -> Vec<Cited> {
    match site.origin.details().and_then(|d| d.rbac_policy) {
        Some(RbacPolicy::Policy {
            namespace,
            name,
            rule,
        }) => vec![cite_named_policy(site, namespace, name, rule)],
        _ => site
            .origin_pod
            .map(|pod| unmatched_allow_policies(site, pod))
            .unwrap_or_default(),
    }
}

/// The AuthorizationPolicy an RBAC denial names, with the rule that matched.
fn cite_named_policy(site: &Site<'_, '_>, namespace: &str, name: &str, rule: Option<u32>) -> Cited {
    let Some(p) = site.named("AuthorizationPolicy", namespace, name) else {
        return Cited {
            object: format!("AuthorizationPolicy/{namespace}/{name}"),
            why: "named by the RBAC details (not in the bundle)".into(),
        };
    };
    let r = rule.and_then(|n| {
        p.spec()
            .get("rules")
            .and_then(Value::as_array)
            .and_then(|a| a.get(n as usize))
    });
    Cited {
        object: p.reference(),
        why: format!(
            "its {} rule{} matched this request{}",
            p.str_at("/spec/action").unwrap_or("ALLOW"),
            rule.map(|n| format!(" {n}")).unwrap_or_default(),
            r.map(|r| format!(": {}", describe_rule(r)))
                .unwrap_or_default()
        ),
    }
}

/// The ALLOW policies selecting `pod`, whose rules the denied request matched none of.
fn unmatched_allow_policies(site: &Site<'_, '_>, pod: &PodInfo) -> Vec<Cited> {
    let mut out = Vec::new();
    for p in site
        .of("AuthorizationPolicy")
        .filter(|o| applies_to(o, "/spec/selector/matchLabels", pod))
    {
        if p.str_at("/spec/action").unwrap_or("ALLOW") != "ALLOW" {
            continue;
        }
        let rules: Vec<String> = p
            .spec()
            .get("rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(describe_rule).collect())
            .unwrap_or_default();
        // What this request failed, rule by rule (see `crate::authz`).
        let source_ns = site
            .pod_at(site.origin.downstream_remote().and_then(|a| a.ip()))
            .filter(|c| c.has_sidecar)
            .map(|c| c.namespace.as_str());
        let facts = crate::authz::RequestFacts::of(site.origin, source_ns);
        let failed = crate::authz::why_no_rule_matched(p.spec(), &facts);
        out.push(Cited {
            object: p.reference(),
            why: format!(
                "ALLOW policy selecting {}; the request matched none of its rules, which require: {}. This request: {}",
                pod.reference(),
                if rules.is_empty() { "nothing (no rules: allows nothing)".into() } else { rules.join("; or ") },
                failed.join("; ")
            ),
        });
    }
    out
}

/// `PlaintextToMtls`, `MissingSidecar`, `MtlsMismatch`: the gateway servers and their TLS
/// modes, pods without sidecar on either side, the DestinationRules setting the TLS mode and the
/// PeerAuthentications requiring mTLS.
fn cite_mtls(site: &Site<'_, '_>, cause: Cause) -> Vec<Cited> {
    let origin = site.origin;
    let mut out = gateway_tls_servers(site);
    if let Some(client) = site.pod_at(origin.downstream_remote().and_then(|a| a.ip()))
        && !client.has_sidecar
        && cause != Cause::MtlsMismatch
    {
        out.push(Cited {
            object: pod_object(client),
            why: "the calling pod has no istio-proxy sidecar, so it cannot speak mTLS".into(),
        });
    }
    if let Some(dest) = site.pod_at(origin.upstream_host().and_then(|a| a.ip()))
        && !dest.has_sidecar
    {
        out.push(Cited {
            object: pod_object(dest),
            why: "the destination pod has no istio-proxy sidecar, so it does not speak mTLS".into(),
        });
    }
    if let Some(ClusterName::Istio { host, .. }) = origin.upstream_cluster()
        && !host.is_empty()
    {
        out.extend(istio_mutual_rules(site, host));
    }
    out.extend(caller_destination_rule(site));
    out.extend(peer_authentications(site));
    out
}

/// The Gateway servers behind the origin hop's listener, with their TLS modes.
fn gateway_tls_servers(site: &Site<'_, '_>) -> Vec<Cited> {
    let (Some(pod), Some(port)) = (
        site.origin_pod,
        site.origin.downstream_local().and_then(|a| a.port()),
    ) else {
        return Vec::new();
    };
    site.topo
        .gateway_servers(pod, port)
        .into_iter()
        .map(|(g, s)| Cited {
            object: format!("Gateway/{}/{}", g.namespace, g.name),
            why: format!(
                "server port {} ({}) for hosts [{}] with TLS mode {} on listener {port} of {}",
                s.port,
                s.protocol,
                s.hosts.join(", "),
                s.tls_mode.as_deref().unwrap_or("none"),
                pod.reference()
            ),
        })
        .collect()
}

/// The DestinationRules covering `host` that force ISTIO_MUTUAL.
fn istio_mutual_rules(site: &Site<'_, '_>, host: &str) -> Vec<Cited> {
    let mut out = Vec::new();
    for dr in site.of("DestinationRule") {
        let h = dr.str_at("/spec/host").unwrap_or("");
        let mode = dr.str_at("/spec/trafficPolicy/tls/mode");
        if mode == Some("ISTIO_MUTUAL")
            && dr_host_matches(h, dr.namespace.as_deref().unwrap_or(""), host)
        {
            out.push(Cited {
                object: dr.reference(),
                why: format!("host `{h}` covers {host} and forces tls mode ISTIO_MUTUAL"),
            });
        }
    }
    out
}

/// The caller's side of a refused connection: the DestinationRule that set the TLS mode its
/// proxy used towards this destination.
fn caller_destination_rule(site: &Site<'_, '_>) -> Option<Cited> {
    if !crate::reply::refused_connection(site.origin) {
        return None;
    }
    let Some(ClusterName::Istio { host, .. }) = site.caller.and_then(|c| c.upstream_cluster())
    else {
        return None;
    };
    if host.is_empty() {
        return None;
    }
    // Only the most specific DestinationRule for a host applies (an exact host beats a
    // wildcard, a longer wildcard a shorter one).
    let specificity = |h: &str| match h.strip_prefix('*') {
        Some(suffix) => suffix.len(),
        None => usize::MAX,
    };
    let dr = site
        .of("DestinationRule")
        .filter(|dr| {
            let h = dr.str_at("/spec/host").unwrap_or("");
            dr_host_matches(h, dr.namespace.as_deref().unwrap_or(""), host)
        })
        .max_by_key(|dr| specificity(dr.str_at("/spec/host").unwrap_or("")))?;
    let h = dr.str_at("/spec/host").unwrap_or("");
    let why = match dr.str_at("/spec/trafficPolicy/tls/mode") {
        Some(m @ ("DISABLE" | "SIMPLE" | "MUTUAL")) => format!(
            "host `{h}` covers {host} and sets tls mode {m}: the calling proxy does not send Istio mTLS to it"
        ),
        Some(m) => format!("host `{h}` covers {host} (tls mode {m})"),
        None => format!(
            "host `{h}` covers {host} and sets no tls mode (a trafficPolicy without tls turns auto mTLS off on older Istio; portLevelSettings may override it)"
        ),
    };
    Some(Cited {
        object: dr.reference(),
        why,
    })
}

/// The PeerAuthentications setting the mTLS mode of the origin pod, when it is the inbound side
/// (or refused the connection behind its sidecar).
fn peer_authentications(site: &Site<'_, '_>) -> Vec<Cited> {
    let origin = site.origin;
    let Some(pod) = site.origin_pod else {
        return Vec::new();
    };
    let inbound_side = origin.upstream_cluster().is_some_and(|c| c.is_inbound())
        || (crate::reply::refused_connection(origin)
            && pod.has_sidecar
            && pod.role != crate::topology::PodRole::IngressGateway);
    if !inbound_side {
        return Vec::new();
    }
    site.of("PeerAuthentication")
        .filter(|o| applies_to(o, "/spec/selector/matchLabels", pod))
        .filter_map(|pa| {
            pa.str_at("/spec/mtls/mode").map(|mode| Cited {
                object: pa.reference(),
                why: format!("mTLS mode {mode} for {}", pod.reference()),
            })
        })
        .collect()
}

/// `RateLimited`: the EnvoyFilters configuring rate limiting on the origin pod.
fn cite_rate_limit(site: &Site<'_, '_>) -> Vec<Cited> {
    let Some(pod) = site.origin_pod else {
        return Vec::new();
    };
    let filters: Vec<&Object> = site
        .of("EnvoyFilter")
        .filter(|o| applies_to(o, "/spec/workloadSelector/labels", pod))
        .filter(|ef| {
            let text = ef.spec().to_string();
            text.contains("ratelimit")
                || text.contains("rate_limit")
                || text.contains("local_ratelimit")
        })
        .collect();
    // The filter, its settings, this request's descriptors and the limit (see `crate::ratelimit`).
    let mut out = crate::ratelimit::cite(site.objects, &filters, site.origin, &pod.reference());
    for ef in filters {
        if !out.iter().any(|c| c.object == ef.reference()) {
            out.push(Cited {
                object: ef.reference(),
                why: format!("configures rate limiting on {}", pod.reference()),
            });
        }
    }
    out
}

/// `RouteNotFound`: the Gateway serving the listener, and the hosts its VirtualServices declare.
fn cite_route_not_found(site: &Site<'_, '_>) -> Vec<Cited> {
    let authority = site.origin.authority().unwrap_or("-");
    let (Some(pod), Some(port)) = (
        site.origin_pod,
        site.origin.downstream_local().and_then(|a| a.port()),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (g, s) in site.topo.gateway_servers(pod, port) {
        let gref = g.reference();
        let vs_hosts: Vec<String> = site
            .of("VirtualService")
            .filter(|vs| {
                let vsns = vs.namespace.as_deref().unwrap_or("");
                vs.strings_at("/spec/gateways")
                    .iter()
                    .any(|gw| *gw == gref || (*gw == g.name && vsns == g.namespace))
            })
            .flat_map(|vs| vs.strings_at("/spec/hosts"))
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
    out
}

/// `AppError` and upstream failures: the InferenceService, SeldonDeployment and Revision behind
/// the failing pod (the origin pod for an application error, else the upstream's), and its
/// restarts.
fn cite_model(site: &Site<'_, '_>, cause: Cause) -> Vec<Cited> {
    let pod = if cause == Cause::AppError {
        site.origin_pod
    } else {
        site.pod_at(site.origin.upstream_host().and_then(|a| a.ip()))
            .or(site.origin_pod)
    };
    let Some(pod) = pod else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let owners = [
        ("InferenceService", &pod.isvc, "serves the model behind"),
        ("SeldonDeployment", &pod.seldon, "serves the model behind"),
        ("Revision", &pod.revision, "the Knative revision running"),
    ];
    for (kind, name, role) in owners {
        if let Some(name) = name
            && let Some(o) = site.named(kind, &pod.namespace, name)
        {
            out.push(Cited {
                object: o.reference(),
                why: format!("{role} {}", pod.reference()),
            });
        }
    }
    if pod.restarts > 0 {
        let ended: Vec<String> = pod
            .terminations
            .iter()
            .filter(|t| t.restarts > 0)
            .map(|t| {
                format!(
                    "`{}` restarted {} time(s), last ended {}",
                    t.container,
                    t.restarts,
                    t.describe()
                )
            })
            .collect();
        let why = if ended.is_empty() {
            format!(
                "its containers restarted {} time(s): check `kubectl logs --previous`",
                pod.restarts
            )
        } else {
            format!(
                "{}: check `kubectl logs --previous -c <container>`",
                ended.join("; ")
            )
        };
        out.push(Cited {
            object: pod_object(pod),
            why,
        });
    }
    out
}

/// `ActivatorError`, `NoHealthyUpstream`: the revision the request was for (from the
/// SNI/authority/cluster host), its Ready condition and its pods.
fn cite_revision(site: &Site<'_, '_>) -> Vec<Cited> {
    let origin = site.origin;
    let hosts = [
        origin.sni().map(str::to_string),
        origin.authority().map(str::to_string),
        origin
            .upstream_cluster()
            .and_then(|c| c.host().map(str::to_string)),
    ];
    let mut out = Vec::new();
    for rev in site.of("Revision") {
        let ns = rev.namespace.as_deref().unwrap_or("");
        let needle = format!("{}.{}", rev.name, ns);
        if !hosts.iter().flatten().any(|h| h.contains(&needle)) {
            continue;
        }
        let ready = rev
            .condition("Ready")
            .map(|c| {
                format!(
                    "Ready={} {}",
                    c.get("status").and_then(Value::as_str).unwrap_or("?"),
                    c.get("reason").and_then(Value::as_str).unwrap_or("")
                )
            })
            .unwrap_or_else(|| "no Ready condition".into());
        let pods: Vec<String> = site
            .topo
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
    out
}

/// `EgressBlocked`: the MeshConfig setting REGISTRY_ONLY and the ServiceEntries registered.
fn cite_egress(site: &Site<'_, '_>) -> Vec<Cited> {
    let mut out: Vec<Cited> = site
        .of("ConfigMap")
        .filter(|o| o.name == "istio" || o.name.starts_with("istio-"))
        .filter(|cm| cm.value.to_string().contains("REGISTRY_ONLY"))
        .map(|cm| Cited {
            object: cm.reference(),
            why: "MeshConfig outboundTrafficPolicy is REGISTRY_ONLY".into(),
        })
        .collect();
    let host = site.origin.authority().unwrap_or("-");
    let ses: Vec<&Object> = site.of("ServiceEntry").collect();
    let covered = ses
        .iter()
        .any(|se| se.strings_at("/spec/hosts").iter().any(|h| h == host));
    for se in ses {
        out.push(Cited {
            object: se.reference(),
            why: format!(
                "registers [{}]{}",
                se.strings_at("/spec/hosts").join(", "),
                if covered {
                    ""
                } else {
                    &" — not the requested host"
                }
            ),
        });
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

    /// The host's pool and the named subset's pool are both cited; a DestinationRule for
    /// another host, or one without a pool, is not.
    #[test]
    fn connection_pools_of_the_overflowing_cluster() {
        use meshtrace_parsers::{LineOutcome, LineParser};
        let line = r#"[2026-12-06T05:53:42.255Z] "POST /v2/models/m/infer HTTP/1.1" 503 UO upstream_reset_before_response_started{overflow} - "-" 0 81 0 - "-" "curl" "id-1" "m.ns" "-" outbound|80|v2|m.ns.svc.cluster.local - 10.0.0.1:80 10.0.0.2:4000 - default"#;
        let LineOutcome::Record(r) = LineParser::auto().parse(line) else {
            panic!("not a record")
        };
        let dr = |name: &str, host: &str, mut spec: Value| {
            spec["host"] = host.into();
            Object::from_value(
                serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                    "metadata": {"name": name, "namespace": "ns"}, "spec": spec}),
                "t".into(),
            )
            .unwrap()
        };
        let objects = vec![
            dr(
                "pool",
                "m",
                serde_json::json!({"trafficPolicy": {"connectionPool": {"http": {"http2MaxRequests": 10, "maxRetries": 2}}},
                    "subsets": [{"name": "v1", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 7}}}},
                                {"name": "v2", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 3}}}}]}),
            ),
            dr(
                "tls-only",
                "m",
                serde_json::json!({"trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
            ),
            dr(
                "other",
                "x",
                serde_json::json!({"trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 1}}}}),
            ),
        ];
        let topo = Topology::default();
        let got = cite(&objects, &topo, &r, None, None, Cause::CircuitBreaker);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].object, "DestinationRule/ns/pool");
        assert!(
            got[0].why.contains(
                "connectionPool http.http2MaxRequests 10, http.maxRetries 2; tcp.maxConnections 3 (subset `v2`)"
            ),
            "{}",
            got[0].why
        );
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
