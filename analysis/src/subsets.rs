//! A route to a cluster the proxy does not have (`NC`, `cluster_not_found`): the VirtualService
//! whose destination names a subset that no DestinationRule defines, or a host that is no
//! Service. Pure.
//!
//! Istio builds one outbound cluster per Service port and one per DestinationRule subset
//! (`outbound|<port>|<subset>|<host>`). A VirtualService route whose destination names a subset
//! that no DestinationRule for its host defines points at a cluster that is never built, and
//! Envoy's router answers 503 with `NC` / `cluster_not_found` (Envoy's router filter
//! documentation; Istio's traffic management best practices: define a subset in a
//! DestinationRule before a VirtualService routes to it).

use serde_json::Value;

use crate::causes::Cause;
use crate::model::{Cited, Object};
use crate::objects::dr_host_matches;
use crate::reading::{Reading, Site, pod_of};
use crate::topology::PodRole;

/// Routes and destinations read from one VirtualService at most (it is untrusted input).
const MAX_ROUTES: usize = 256;
const MAX_DESTINATIONS: usize = 64;

/// A destination of a VirtualService route that Istio builds no cluster for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dangling {
    /// `VirtualService/<ns>/<name>`.
    pub virtual_service: String,
    /// The destination's host as written.
    pub host: String,
    /// The destination's host as a name in the cluster (`name.ns.svc.cluster.local`).
    pub fqdn: String,
    /// What is missing.
    pub missing: Missing,
    /// The VirtualService applies to sidecars (`gateways` empty or naming `mesh`).
    pub for_mesh: bool,
    /// It applies to at least one gateway (a `gateways` entry other than `mesh`).
    pub for_gateways: bool,
}

/// What a [`Dangling`] destination lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The subset.
    Subset {
        /// The subset the route names.
        subset: String,
        /// The DestinationRules for the host: reference, the subsets each defines.
        rules: Vec<(String, Vec<String>)>,
    },
    /// The Service: the host names none in the bundle (and the bundle holds Services of its
    /// namespace).
    Service,
}

/// A host as the proxy names it: short names resolved in `ns` (`svc` → `svc.ns.svc.cluster.local`,
/// `svc.other` → `svc.other.svc.cluster.local`, `svc.other.svc` → `….cluster.local`), a port
/// dropped, lower case; addresses and other names as written.
pub fn fqdn(host: &str, ns: &str) -> String {
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    match host.matches('.').count() {
        0 if !ns.is_empty() => format!("{host}.{ns}.svc.cluster.local"),
        1 => format!("{host}.svc.cluster.local"),
        2 if host.ends_with(".svc") => format!("{host}.cluster.local"),
        _ => host,
    }
}

/// Does a VirtualService host (`hosts` entry, in namespace `ns`) cover the request's Host?
pub fn covers(vs_host: &str, ns: &str, authority: &str) -> bool {
    if vs_host == "*" {
        return true;
    }
    let want = fqdn(authority, ns);
    match vs_host.strip_prefix('*') {
        Some(suffix) => want.ends_with(&suffix.to_ascii_lowercase()),
        None => fqdn(vs_host, ns) == want,
    }
}

/// The destinations of a VirtualService's HTTP routes (and mirrors): (host, subset).
fn destinations(vs: &Object) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let routes = vs.value.pointer("/spec/http").and_then(Value::as_array);
    for r in routes.into_iter().flatten().take(MAX_ROUTES) {
        let routed = r
            .get("route")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let dests = routed
            .filter_map(|d| d.get("destination"))
            .chain(r.get("mirror"));
        for d in dests {
            if out.len() >= MAX_DESTINATIONS {
                return out;
            }
            let Some(host) = d.get("host").and_then(Value::as_str) else {
                continue;
            };
            let subset = d
                .get("subset")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            let e = (host.to_string(), subset.map(str::to_string));
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    out
}

/// The subsets a DestinationRule defines.
fn subsets_of(dr: &Object) -> Vec<String> {
    dr.value
        .pointer("/spec/subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_DESTINATIONS)
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The VirtualServices whose `hosts` cover Host `authority` ([`covers`], each host resolved in
/// its VirtualService's namespace).
pub fn covering<'a>(objects: &'a [Object], authority: &'a str) -> impl Iterator<Item = &'a Object> {
    objects.iter().filter(move |vs| {
        let ns = vs.namespace.as_deref().unwrap_or("");
        vs.kind == "VirtualService"
            && vs
                .strings_at("/spec/hosts")
                .iter()
                .any(|h| covers(h, ns, authority))
    })
}

/// Every destination of the VirtualServices covering Host `authority` that Istio builds no
/// cluster for.
pub fn dangling(objects: &[Object], authority: &str) -> Vec<Dangling> {
    let of = |kind: &'static str| objects.iter().filter(move |o| o.kind == kind);
    let mut out = Vec::new();
    for vs in covering(objects, authority) {
        let ns = vs.namespace.as_deref().unwrap_or("");
        let gateways = vs.strings_at("/spec/gateways");
        let for_mesh = gateways.is_empty() || gateways.iter().any(|g| g == "mesh");
        let for_gateways = gateways.iter().any(|g| g != "mesh");
        for (host, subset) in destinations(vs) {
            let fq = fqdn(&host, ns);
            let missing = match subset {
                Some(subset) => {
                    let rules: Vec<(String, Vec<String>)> = of("DestinationRule")
                        .filter(|dr| {
                            dr_host_matches(
                                dr.str_at("/spec/host").unwrap_or(""),
                                dr.namespace.as_deref().unwrap_or(""),
                                &fq,
                            )
                        })
                        .map(|dr| (dr, subsets_of(dr)))
                        // A mesh-wide rule (`*.local`) that defines no subset is not the
                        // host's; the host's own rules first.
                        .filter(|(dr, names)| {
                            !names.is_empty()
                                || !dr.str_at("/spec/host").unwrap_or("").starts_with('*')
                        })
                        .map(|(dr, names)| (dr.reference(), names))
                        .collect();
                    if rules.iter().any(|(_, s)| s.contains(&subset)) {
                        continue;
                    }
                    Missing::Subset { subset, rules }
                }
                None => {
                    let Some((name, svc_ns)) = fq
                        .strip_suffix(".svc.cluster.local")
                        .and_then(|s| s.split_once('.'))
                    else {
                        continue;
                    };
                    let in_ns = |o: &&Object| o.namespace.as_deref() == Some(svc_ns);
                    let known = of("Service").filter(in_ns).count() > 0;
                    if !known || of("Service").filter(in_ns).any(|s| s.name == name) {
                        continue;
                    }
                    Missing::Service
                }
            };
            out.push(Dangling {
                virtual_service: vs.reference(),
                host,
                fqdn: fq,
                missing,
                for_mesh,
                for_gateways,
            });
        }
    }
    out
}

/// What the dangling destinations add to a `cluster_not_found` verdict.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    if site.cause != Cause::ClusterNotFound {
        return None;
    }
    let authority = site.origin().record.authority()?;
    let mut found = dangling(&site.ev.objects, authority);
    // A gateway uses the VirtualServices bound to it, a sidecar those bound to `mesh`: when the
    // topology says which proxy refused, only those count (all of them when none is bound so).
    let at_gateway =
        pod_of(&site.ev.topology, site.origin()).map(|p| p.role == PodRole::IngressGateway);
    if let Some(g) = at_gateway
        && found
            .iter()
            .any(|d| if g { d.for_gateways } else { d.for_mesh })
    {
        found.retain(|d| if g { d.for_gateways } else { d.for_mesh });
    }
    let first = found.first()?;
    let mut cited = Vec::new();
    for d in &found {
        let why = match &d.missing {
            Missing::Subset { subset, rules } if rules.is_empty() => format!(
                "routes Host `{authority}` to subset `{subset}` of `{}`, and no DestinationRule in the bundle is for that host: Istio builds no cluster `…|{subset}|{}`",
                d.host, d.fqdn
            ),
            Missing::Subset { subset, .. } => format!(
                "routes Host `{authority}` to subset `{subset}` of `{}`, which no DestinationRule for that host defines: Istio builds no cluster `…|{subset}|{}`",
                d.host, d.fqdn
            ),
            Missing::Service => format!(
                "routes Host `{authority}` to `{}`, which is no Service in the bundle",
                d.host
            ),
        };
        cited.push(Cited {
            object: d.virtual_service.clone(),
            why,
        });
        if let Missing::Subset { subset, rules } = &d.missing {
            for (dr, names) in rules {
                cited.push(Cited {
                    object: dr.clone(),
                    why: if names.is_empty() {
                        format!("is for `{}` and defines no subsets", d.fqdn)
                    } else {
                        format!(
                            "is for `{}` and defines subsets [{}], not `{subset}`",
                            d.fqdn,
                            names.join(", ")
                        )
                    },
                });
            }
        }
    }
    let (summary, fix) = match &first.missing {
        Missing::Subset { subset, rules } => {
            let defined: Vec<&str> = rules
                .iter()
                .flat_map(|(_, s)| s.iter().map(String::as_str))
                .collect();
            let add = match rules.first() {
                Some((dr, _)) => format!(
                    "Add subset `{subset}` to {dr} (with the labels of the pods it should select)"
                ),
                None => format!(
                    "Create a DestinationRule for `{}` that defines subset `{subset}` (with the labels of the pods it should select)",
                    first.fqdn
                ),
            };
            let instead = if defined.is_empty() {
                format!(
                    "or remove the subset from the route of {}",
                    first.virtual_service
                )
            } else {
                format!(
                    "or make {} route to a subset that is defined ({})",
                    first.virtual_service,
                    defined.join(", ")
                )
            };
            (
                format!(
                    "{} routes this Host to subset `{subset}` of `{}`, which no DestinationRule defines, so the proxy has no cluster for it.",
                    first.virtual_service, first.host
                ),
                format!(
                    "{add}, {instead}. Apply a DestinationRule's new subset before the VirtualService that routes to it (Istio: traffic management best practices); `istioctl proxy-config cluster <pod> --fqdn {}` lists the clusters the proxy has.",
                    first.fqdn
                ),
            )
        }
        Missing::Service => (
            format!(
                "{} routes this Host to `{}`, which is no Service in the bundle, so the proxy has no cluster for it.",
                first.virtual_service, first.host
            ),
            format!(
                "Point the route of {} at an existing Service (`kubectl get svc -n {}`), or create the Service it names.",
                first.virtual_service,
                first
                    .fqdn
                    .strip_suffix(".svc.cluster.local")
                    .and_then(|s| s.split_once('.'))
                    .map_or("<namespace>", |(_, ns)| ns)
            ),
        ),
    };
    Some(Reading {
        summary_extra: Some(summary),
        fix: Some(fix),
        cited,
        ..Reading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        crate::model::Object::from_value(v, "resources/test.yaml".into()).unwrap()
    }

    fn vs(routes: Value) -> Object {
        obj(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "bookinfo"},
            "spec": {"hosts": ["reviews"], "http": routes}
        }))
    }

    fn dr(subsets: &[&str]) -> Object {
        let s: Vec<Value> = subsets
            .iter()
            .map(|n| json!({"name": n, "labels": {"version": n}}))
            .collect();
        obj(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "reviews", "namespace": "bookinfo"},
            "spec": {"host": "reviews.bookinfo.svc.cluster.local", "subsets": s}
        }))
    }

    fn svc(name: &str, ns: &str) -> Object {
        obj(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}}
        }))
    }

    #[test]
    fn names_as_the_proxy_does() {
        for (host, ns, want) in [
            ("reviews", "bookinfo", "reviews.bookinfo.svc.cluster.local"),
            (
                "reviews:9080",
                "bookinfo",
                "reviews.bookinfo.svc.cluster.local",
            ),
            (
                "reviews.other",
                "bookinfo",
                "reviews.other.svc.cluster.local",
            ),
            (
                "reviews.other.svc",
                "bookinfo",
                "reviews.other.svc.cluster.local",
            ),
            (
                "Reviews.Bookinfo.svc.cluster.local.",
                "x",
                "reviews.bookinfo.svc.cluster.local",
            ),
            ("api.example.com", "bookinfo", "api.example.com"),
            ("[::1]:80", "bookinfo", "[::1]"),
        ] {
            assert_eq!(fqdn(host, ns), want, "{host} in {ns}");
        }
        assert!(covers("*.example.com", "x", "api.example.com:443"));
        assert!(!covers("*.example.com", "x", "api.example.org"));
        assert!(covers(
            "reviews",
            "bookinfo",
            "reviews.bookinfo.svc.cluster.local:9080"
        ));
        assert!(!covers(
            "reviews",
            "other",
            "reviews.bookinfo.svc.cluster.local"
        ));
    }

    #[test]
    fn a_subset_no_destination_rule_defines_is_dangling() {
        let objects = vec![
            vs(json!([{"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                {"destination": {"host": "reviews", "subset": "v3"}, "weight": 10}
            ]}])),
            dr(&["v1", "v2"]),
            svc("reviews", "bookinfo"),
            // The mesh-wide mTLS rule covers the host but is not where its subsets live.
            obj(json!({
                "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": "default", "namespace": "istio-system"},
                "spec": {"host": "*.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
            })),
        ];
        let d = dangling(&objects, "reviews:9080");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].virtual_service, "VirtualService/bookinfo/reviews");
        assert!(
            d[0].for_mesh && !d[0].for_gateways,
            "no `gateways`: sidecars only"
        );
        assert_eq!(
            d[0].missing,
            Missing::Subset {
                subset: "v3".into(),
                rules: vec![(
                    "DestinationRule/bookinfo/reviews".into(),
                    vec!["v1".into(), "v2".into()]
                )],
            }
        );
        // Defined: nothing dangles.
        let objects = vec![objects[0].clone(), dr(&["v1", "v3"]), objects[2].clone()];
        assert!(dangling(&objects, "reviews:9080").is_empty());
        // Another Host: not this VirtualService's.
        assert!(dangling(&objects, "ratings:9080").is_empty());
    }

    #[test]
    fn a_subset_without_any_rule_and_a_missing_service() {
        let objects = vec![
            vs(json!([
                {"match": [{"uri": {"prefix": "/v2"}}], "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                {"route": [{"destination": {"host": "reviews-canary"}}], "mirror": {"host": "reviews"}}
            ])),
            svc("reviews", "bookinfo"),
        ];
        let d = dangling(&objects, "reviews");
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(
            d[0].missing,
            Missing::Subset {
                subset: "v2".into(),
                rules: vec![]
            }
        );
        assert_eq!(d[1].host, "reviews-canary");
        assert_eq!(d[1].missing, Missing::Service);
        // Bound to a gateway (and the mesh).
        let mut bound = objects[0].clone();
        bound.value["spec"]["gateways"] = json!(["istio-system/public", "mesh"]);
        let d = dangling(&[bound], "reviews");
        assert!(d[0].for_mesh && d[0].for_gateways, "{d:?}");
        // Without any Service of the namespace in the bundle, nothing is said about Services.
        let objects = vec![objects[0].clone()];
        let d = dangling(&objects, "reviews");
        assert_eq!(d.len(), 1, "{d:?}");
    }

    #[test]
    fn hostile_virtual_services_are_read_within_bounds() {
        let routes: Vec<Value> = (0..10_000)
            .map(|i| json!({"route": [{"destination": {"host": format!("h{i}"), "subset": "x"}}]}))
            .collect();
        let objects = vec![vs(Value::Array(routes))];
        let d = dangling(&objects, "reviews");
        assert_eq!(d.len(), MAX_DESTINATIONS);
        let odd = vs(json!([{"route": "x"}, {"route": [{"destination": 5}]}, 7]));
        assert!(dangling(&[odd], "reviews").is_empty());
    }
}
