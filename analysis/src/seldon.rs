//! Seldon Core v1 readings of a verdict. With `istio.enabled`, the operator generates one
//! VirtualService per SeldonDeployment: bound to `seldon-gateway` (or the gateway of the
//! `seldon.io/istio-gateway` annotation, `mesh` for in-mesh routing), matching the prefix
//! `/seldon/<namespace>/<name>/`, rewriting it to `/` and splitting traffic between the
//! predictors by their `traffic` weights (DestinationRule subsets per predictor). Read here:
//!
//! - which route and weight a request took (the gateway's upstream cluster names the subset);
//! - a predictor pod restarted or OOMKilled (`lastState.terminated.reason`, `restartCount`)
//!   around the failure, with a fix naming the SeldonDeployment, the predictor and the container;
//! - a client outside the mesh calling a `mesh`-bound SeldonDeployment: the VirtualService never
//!   applied (no canary split, no prefix rewrite), so the model saw the raw `/seldon/…` path.

use serde_json::Value;

use meshtrace_parsers::cluster::ClusterName;

use crate::model::{Cited, Object};
use crate::reading::{Reading, Site, pod_object, pod_of, upstream_pod};
use crate::topology::{PodInfo, PodRole};

/// The readings of this module for one trace.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    let mut r = Reading::default();
    let mut any = false;
    let mut extra = Vec::new();
    for (note, cited) in canary_routes(site) {
        r.notes.push(note);
        r.cited.push(cited);
        any = true;
    }
    if let Some(x) = restarted_predictor(site) {
        extra.extend(x.summary_extra);
        r.fix = x.fix;
        r.cited.extend(x.cited);
        any = true;
    }
    if let Some(x) = mesh_bypass(site) {
        extra.extend(x.summary_extra);
        r.fix = x.fix;
        r.cited.extend(x.cited);
        any = true;
    }
    if !extra.is_empty() {
        r.summary_extra = Some(extra.join(" "));
    }
    any.then_some(r)
}

/// The SeldonDeployment `ns/name`.
fn sdep<'a>(site: &Site<'a>, ns: &str, name: &str) -> Option<&'a Object> {
    site.ev.objects.iter().find(|o| {
        o.kind == "SeldonDeployment" && o.name == name && o.namespace.as_deref() == Some(ns)
    })
}

/// A VirtualService destination host (short or FQDN) naming the cluster host `fqdn`.
fn same_host(dest: &str, vs_ns: &str, fqdn: &str) -> bool {
    dest == fqdn
        || format!("{dest}.{vs_ns}.svc.cluster.local") == fqdn
        || format!("{dest}.svc.cluster.local") == fqdn
}

/// For every hop whose upstream cluster is a subset, the VirtualService route and weight that
/// chose it.
fn canary_routes(site: &Site<'_>) -> Vec<(String, Cited)> {
    let mut out = Vec::new();
    for (i, l) in site.hops().enumerate() {
        let Some(ClusterName::Istio { subset, host, .. }) = l.record.upstream_cluster() else {
            continue;
        };
        if subset.is_empty() {
            continue;
        }
        for vs in site
            .ev
            .objects
            .iter()
            .filter(|o| o.kind == "VirtualService")
        {
            let ns = vs.namespace.as_deref().unwrap_or("");
            let http = vs.spec().get("http").and_then(Value::as_array);
            for route in http.into_iter().flatten() {
                let dests: Vec<&Value> = route
                    .get("route")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let total: i64 = dests
                    .iter()
                    .map(|d| d.get("weight").and_then(Value::as_i64).unwrap_or(0))
                    .sum();
                let Some(chosen) = dests.iter().find(|d| {
                    d.pointer("/destination/subset").and_then(Value::as_str) == Some(subset)
                        && d.pointer("/destination/host")
                            .and_then(Value::as_str)
                            .is_some_and(|h| same_host(h, ns, host))
                }) else {
                    continue;
                };
                let weight = chosen.get("weight").and_then(Value::as_i64).unwrap_or(0);
                let prefix = route
                    .pointer("/match/0/uri/prefix")
                    .and_then(Value::as_str)
                    .unwrap_or("-");
                let split: Vec<String> = dests
                    .iter()
                    .map(|d| {
                        format!(
                            "{}{} {}",
                            d.pointer("/destination/host")
                                .and_then(Value::as_str)
                                .unwrap_or("-"),
                            d.pointer("/destination/subset")
                                .and_then(Value::as_str)
                                .map(|s| format!("/{s}"))
                                .unwrap_or_default(),
                            d.get("weight").and_then(Value::as_i64).unwrap_or(0)
                        )
                    })
                    .collect();
                let took = format!(
                    "route `prefix {prefix}` → subset `{subset}` of {host}, weight {weight} of {total} (split: {})",
                    split.join(", ")
                );
                out.push((
                    format!(
                        "hop {}: the request took {took} of VirtualService {}",
                        i + 1,
                        vs.reference().trim_start_matches("VirtualService/")
                    ),
                    Cited {
                        object: vs.reference(),
                        why: format!("this request took its {took}"),
                    },
                ));
                break;
            }
        }
    }
    out
}

/// The Seldon predictor pod behind the failure: the origin hop's pod, else its upstream's.
fn failing_predictor<'a>(site: &Site<'a>) -> Option<&'a PodInfo> {
    let topo = &site.ev.topology;
    let origin = site.origin();
    [pod_of(topo, origin), upstream_pod(topo, origin)]
        .into_iter()
        .flatten()
        .find(|p| p.role == PodRole::SeldonPredictor && p.seldon.is_some())
}

/// A predictor container that restarted (OOMKilled or otherwise) near the failure.
fn restarted_predictor(site: &Site<'_>) -> Option<Reading> {
    if !site.cause.is_failure() {
        return None;
    }
    let pod = failing_predictor(site)?;
    let obj = pod_object(site.ev, pod)?;
    let (container, reason, exit, finished, restarts) = obj
        .value
        .pointer("/status/containerStatuses")?
        .as_array()?
        .iter()
        .filter(|c| c.get("name").and_then(Value::as_str) != Some("istio-proxy"))
        .find_map(|c| {
            let t = c.pointer("/lastState/terminated")?;
            Some((
                c.get("name")?.as_str()?.to_string(),
                t.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("Error")
                    .to_string(),
                t.get("exitCode").and_then(Value::as_i64).unwrap_or(-1),
                t.get("finishedAt")
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_string(),
                c.get("restartCount").and_then(Value::as_i64).unwrap_or(0),
            ))
        })?;
    let dep = pod.seldon.clone().unwrap_or_default();
    let predictor = pod
        .labels
        .get("version")
        .or_else(|| pod.labels.get("seldon-app"))
        .cloned()
        .unwrap_or_else(|| "-".into());
    let sd = sdep(site, &pod.namespace, &dep);
    let limit = sd.and_then(|o| memory_limit(o, &predictor, &container));
    let traffic = sd
        .and_then(|o| predictor_of(o, &predictor))
        .and_then(|p| p.get("traffic"))
        .and_then(Value::as_i64);
    let oom = reason == "OOMKilled";
    let extra = format!(
        "Container `{container}` of Seldon predictor `{predictor}` ({}) was restarted (restartCount {restarts}; last terminated: {reason}, exit {exit}, at {finished}){}: the connection reset is the container dying under the request.",
        pod.reference(),
        if oom {
            format!(
                " — killed for exceeding its memory limit{}",
                limit
                    .as_deref()
                    .map(|l| format!(" {l}"))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        }
    );
    let fix = format!(
        "{} in SeldonDeployment {}/{dep} (predictor `{predictor}`: `spec.predictors[name={predictor}].componentSpecs[].spec.containers[name={container}].resources.limits.memory`{}), or fix the model version it serves; until then send no traffic to predictor `{predictor}` (its `traffic`{}: set it to 0 and the other predictor to 100). Check `kubectl logs -n {} {} -c {container} --previous`.",
        if oom {
            format!("Raise the memory limit of container `{container}`")
        } else {
            format!("Find why container `{container}` exits")
        },
        pod.namespace,
        limit
            .as_deref()
            .map(|l| format!(", now {l}"))
            .unwrap_or_default(),
        traffic.map(|t| format!(" is {t}")).unwrap_or_default(),
        pod.namespace,
        pod.name
    );
    let mut cited = vec![Cited {
        object: format!("Pod/{}/{}", pod.namespace, pod.name),
        why: format!(
            "container `{container}`: restartCount {restarts}, lastState.terminated.reason {reason} (exit {exit}) at {finished}"
        ),
    }];
    if let Some(o) = sd {
        cited.push(Cited {
            object: o.reference(),
            why: format!(
                "predictor `{predictor}`{}{} runs the pod that failed",
                traffic
                    .map(|t| format!(" (traffic {t})"))
                    .unwrap_or_default(),
                limit
                    .as_deref()
                    .map(|l| format!(", container `{container}` memory limit {l}"))
                    .unwrap_or_default()
            ),
        });
    }
    Some(Reading {
        summary_extra: Some(extra),
        fix: Some(fix),
        cited,
        ..Reading::default()
    })
}

/// The predictor called `name` of a SeldonDeployment.
fn predictor_of<'a>(sd: &'a Object, name: &str) -> Option<&'a Value> {
    sd.spec()
        .get("predictors")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

/// The memory limit of `container` in predictor `predictor`.
fn memory_limit(sd: &Object, predictor: &str, container: &str) -> Option<String> {
    predictor_of(sd, predictor)?
        .get("componentSpecs")?
        .as_array()?
        .iter()
        .filter_map(|c| c.pointer("/spec/containers").and_then(Value::as_array))
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))?
        .pointer("/resources/limits/memory")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A client outside the mesh calling a SeldonDeployment whose VirtualService is bound to
/// `mesh`: the request reached a predictor with the raw `/seldon/<ns>/<name>/` path.
fn mesh_bypass(site: &Site<'_>) -> Option<Reading> {
    let topo = &site.ev.topology;
    let origin = site.origin();
    let pod = pod_of(topo, origin).filter(|p| p.role == PodRole::SeldonPredictor)?;
    let path = origin.record.path()?;
    let rest = path.strip_prefix("/seldon/")?;
    let mut parts = rest.splitn(3, '/');
    let (ns, name) = (parts.next()?, parts.next()?);
    let client_ip = origin.record.downstream_remote().and_then(|a| a.ip())?;
    let client = topo.pod_by_ip(client_ip).filter(|c| !c.has_sidecar)?;
    let prefix = format!("/seldon/{ns}/{name}/");
    let vs = site.ev.objects.iter().find(|o| {
        o.kind == "VirtualService"
            && o.namespace.as_deref() == Some(ns)
            && o.spec()
                .get("http")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|h| {
                    h.pointer("/match/0/uri/prefix").and_then(Value::as_str)
                        == Some(prefix.as_str())
                })
    })?;
    let gateways = vs.strings_at("/spec/gateways");
    let mesh_bound = gateways.iter().any(|g| g == "mesh");
    let sd = sdep(site, ns, name);
    let extra = format!(
        "The caller {} has no istio-proxy sidecar, so VirtualService {} (gateways [{}], prefix `{prefix}`) never applied: Istio routing runs in the client's sidecar or a gateway. The request went by plain Kubernetes Service routing straight to {} — no canary split, no rewrite of `{prefix}` to `/` — and the model answered the raw path `{path}` itself.",
        client.reference(),
        vs.reference().trim_start_matches("VirtualService/"),
        gateways.join(", "),
        pod.reference()
    );
    let fix = format!(
        "Put the client in the mesh (label its namespace `istio-injection=enabled` or annotate the pod `sidecar.istio.io/inject: \"true\"` and restart it){}; or call the predictor's own Service without the `/seldon/…` prefix (no traffic split then).",
        if mesh_bound {
            " — a SeldonDeployment annotated `seldon.io/istio-gateway: mesh` is routed only for in-mesh clients (Seldon Core docs, \"Using the Istio Service Mesh\"); to serve clients outside the mesh, set `seldon.io/istio-gateway` to a gateway they can reach (default `istio-system/seldon-gateway`) and call it with the `/seldon/<namespace>/<name>/` path"
        } else {
            "; or call through the gateway the VirtualService is bound to, with the same path"
        }
    );
    let mut cited = vec![
        Cited {
            object: vs.reference(),
            why: format!(
                "bound to [{}]: its prefix `{prefix}`, rewrite and traffic split apply only to clients with a sidecar (or at that gateway)",
                gateways.join(", ")
            ),
        },
        Cited {
            object: format!("Pod/{}/{}", client.namespace, client.name),
            why: "the caller: no istio-proxy sidecar, so no VirtualService applies to its requests"
                .into(),
        },
    ];
    if let Some(o) = sd {
        cited.push(Cited {
            object: o.reference(),
            why: format!(
                "annotations `seldon.io/istio-gateway: {}`",
                o.str_at("/spec/annotations/seldon.io~1istio-gateway")
                    .or_else(|| o.annotation("seldon.io/istio-gateway"))
                    .unwrap_or("istio-system/seldon-gateway (default)")
            ),
        });
    }
    Some(Reading {
        summary_extra: Some(extra),
        fix: Some(fix),
        cited,
        ..Reading::default()
    })
}
