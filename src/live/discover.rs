//! Which pods lie on the serving path: a pure function of the listed objects (no names are
//! hard-coded; roles come from labels, Gateway selectors and the custom resources).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// `(namespace, name)` of a pod.
pub type PodKey = (String, String);

/// Where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-A`: every namespace.
    All,
    /// `-n` (or the context's namespace).
    Namespaces(Vec<String>),
}

impl Target {
    /// Is `ns` in scope?
    pub fn contains(&self, ns: &str) -> bool {
        match self {
            Target::All => true,
            Target::Namespaces(v) => v.iter().any(|n| n == ns),
        }
    }
}

/// The pods chosen for logs, and what was found on the way (one sentence each).
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Pods whose logs to fetch.
    pub pods: BTreeSet<PodKey>,
    /// What discovery found or did not find.
    pub notes: Vec<String>,
}

pub(crate) fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

pub(crate) fn namespace(v: &Value) -> &str {
    str_at(v, "/metadata/namespace").unwrap_or("")
}

pub(crate) fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or("")
}

pub(crate) fn kind(v: &Value) -> &str {
    str_at(v, "/kind").unwrap_or("")
}

pub(crate) fn group(v: &Value) -> &str {
    let av = str_at(v, "/apiVersion").unwrap_or("");
    match av.split_once('/') {
        Some((g, _)) => g,
        None => "",
    }
}

pub(crate) fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn key(v: &Value) -> PodKey {
    (namespace(v).to_string(), name(v).to_string())
}

/// Does the pod carry every `k=v` of `sel` (an empty selector selects nothing)?
pub(crate) fn matches(pod: &Value, sel: &BTreeMap<String, String>) -> bool {
    !sel.is_empty() && sel.iter().all(|(k, v)| label(pod, k) == Some(v.as_str()))
}

fn is(v: &Value, group: &str, kind: &str) -> bool {
    self::group(v) == group && self::kind(v) == kind
}

fn names(pods: &[&Value]) -> String {
    let mut v: Vec<String> = pods
        .iter()
        .map(|p| format!("{}/{}", namespace(p), name(p)))
        .collect();
    v.sort();
    v.dedup();
    v.join(", ")
}

/// Choose the pods. `chosen`, when given (`--pod`, `-l`), replaces "every pod of the target
/// namespaces"; the gateways, activator and model pods of the path are added either way.
/// `missing` lists the APIs that are not installed (e.g. "KServe (serving.kserve.io)").
pub fn select(
    pods: &[Value],
    objects: &[Value],
    target: &Target,
    chosen: Option<&BTreeSet<PodKey>>,
) -> Selection {
    let mut sel = Selection::default();
    let in_scope = |v: &Value| target.contains(namespace(v));

    // Pods the user pointed at, or every pod of the namespaces asked for.
    match chosen {
        Some(c) => sel.pods.extend(c.iter().cloned()),
        None => sel
            .pods
            .extend(pods.iter().filter(|p| in_scope(p)).map(key)),
    }

    // Model servers: InferenceServices, Knative Services, SeldonDeployments.
    let mut knative_in_play = false;
    let owners: [(&str, &str, &str, &str); 3] = [
        (
            "serving.kserve.io",
            "InferenceService",
            "serving.kserve.io/inferenceservice",
            "InferenceService",
        ),
        (
            "serving.knative.dev",
            "Service",
            "serving.knative.dev/service",
            "Knative Service",
        ),
        (
            "machinelearning.seldon.io",
            "SeldonDeployment",
            "seldon-deployment-id",
            "SeldonDeployment",
        ),
    ];
    for (g, k, lbl, what) in owners {
        for o in objects.iter().filter(|o| is(o, g, k) && in_scope(o)) {
            let ns = namespace(o);
            let n = name(o);
            let mine: Vec<&Value> = pods
                .iter()
                .filter(|p| namespace(p) == ns && label(p, lbl) == Some(n))
                .collect();
            if g == "serving.knative.dev"
                || (g == "serving.kserve.io"
                    && o.pointer("/metadata/annotations/serving.kserve.io~1deploymentMode")
                        .and_then(Value::as_str)
                        != Some("RawDeployment"))
            {
                knative_in_play = true;
            }
            if mine.is_empty() {
                sel.notes.push(format!(
                    "{what} {ns}/{n} has no pods now (scaled to zero, or not ready)"
                ));
            } else {
                let mut by_component: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
                for p in &mine {
                    let c = label(p, "component")
                        .or_else(|| label(p, "version"))
                        .unwrap_or("pod");
                    by_component.entry(c).or_default().push(p);
                }
                let parts: Vec<String> = by_component
                    .iter()
                    .map(|(c, ps)| format!("{c}: {}", names(ps)))
                    .collect();
                sel.notes
                    .push(format!("{what} {ns}/{n} → {}", parts.join("; ")));
                sel.pods.extend(mine.iter().map(|p| key(p)));
            }
        }
    }
    if objects
        .iter()
        .any(|o| is(o, "serving.knative.dev", "Revision") && in_scope(o))
    {
        knative_in_play = true;
    }

    // Gateways: the Gateway objects that the VirtualServices in scope use, through their selector.
    let mut gw_refs: BTreeSet<(String, String)> = BTreeSet::new();
    for vs in objects
        .iter()
        .filter(|o| is(o, "networking.istio.io", "VirtualService") && in_scope(o))
    {
        let ns = namespace(vs);
        let mut refs: Vec<&str> = Vec::new();
        if let Some(a) = vs.pointer("/spec/gateways").and_then(Value::as_array) {
            refs.extend(a.iter().filter_map(Value::as_str));
        }
        if let Some(http) = vs.pointer("/spec/http").and_then(Value::as_array) {
            for route in http {
                if let Some(ms) = route.get("match").and_then(Value::as_array) {
                    for m in ms {
                        if let Some(a) = m.get("gateways").and_then(Value::as_array) {
                            refs.extend(a.iter().filter_map(Value::as_str));
                        }
                    }
                }
            }
        }
        for r in refs {
            if r == "mesh" {
                continue;
            }
            let (gns, gname) = match r.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (ns.to_string(), r.to_string()),
            };
            gw_refs.insert((gns, gname));
        }
    }
    let mut gateway_pods: Vec<&Value> = Vec::new();
    for (gns, gname) in &gw_refs {
        let Some(gw) = objects.iter().find(|o| {
            is(o, "networking.istio.io", "Gateway") && namespace(o) == gns && name(o) == gname
        }) else {
            sel.notes.push(format!(
                "Gateway {gns}/{gname} is used by a VirtualService but was not found"
            ));
            continue;
        };
        let selector: BTreeMap<String, String> = gw
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let found: Vec<&Value> = pods.iter().filter(|p| matches(p, &selector)).collect();
        let sel_text: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if found.is_empty() {
            sel.notes.push(format!(
                "Gateway {gns}/{gname} selects {} but no pod carries those labels",
                sel_text.join(",")
            ));
        } else {
            sel.notes.push(format!(
                "Gateway {gns}/{gname} ({}) → {}",
                sel_text.join(","),
                names(&found)
            ));
        }
        gateway_pods.extend(found);
    }
    if gateway_pods.is_empty() {
        for (k, v) in [("istio", "ingressgateway"), ("knative", "ingressgateway")] {
            let s = BTreeMap::from([(k.to_string(), v.to_string())]);
            let found: Vec<&Value> = pods.iter().filter(|p| matches(p, &s)).collect();
            if !found.is_empty() {
                sel.notes.push(format!(
                    "no Gateway selector matched; pods labelled {k}={v}: {}",
                    names(&found)
                ));
                gateway_pods.extend(found);
            }
        }
        if gateway_pods.is_empty() {
            sel.notes.push(
                "no ingress gateway pod found (no Gateway selector matched, no pod labelled istio=ingressgateway or knative=ingressgateway)".into(),
            );
        }
    }
    sel.pods.extend(gateway_pods.iter().map(|p| key(p)));

    // The Knative activator, wherever it runs.
    if knative_in_play {
        let act: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                label(p, "app") == Some("activator") || label(p, "role") == Some("activator")
            })
            .collect();
        if act.is_empty() {
            sel.notes
                .push("Knative is in use but no activator pod (app=activator or role=activator) was found".into());
        } else {
            sel.notes
                .push(format!("Knative activator → {}", names(&act)));
            sel.pods.extend(act.iter().map(|p| key(p)));
        }
    }
    sel
}

/// Namespaces the objects point to: the `ns/name` Gateways of VirtualServices
/// (`spec.gateways`, `spec.http[].match[].gateways`) and the namespace of cluster-local hosts
/// (`name.ns.svc…`) in `spec.hosts`, `spec.host` and `spec.http[].route[].destination.host`.
pub fn referenced_namespaces(objects: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let host_ns = |h: &str| -> Option<String> {
        let parts: Vec<&str> = h.split('.').collect();
        match parts.as_slice() {
            [_, ns, "svc", ..] => Some(ns.to_string()),
            _ => None,
        }
    };
    for o in objects {
        let mut strs: Vec<&str> = Vec::new();
        if let Some(a) = o.pointer("/spec/gateways").and_then(Value::as_array) {
            strs.extend(a.iter().filter_map(Value::as_str));
        }
        if let Some(http) = o.pointer("/spec/http").and_then(Value::as_array) {
            for route in http {
                for m in route
                    .get("match")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(a) = m.get("gateways").and_then(Value::as_array) {
                        strs.extend(a.iter().filter_map(Value::as_str));
                    }
                }
                for d in route
                    .get("route")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(h) = d.pointer("/destination/host").and_then(Value::as_str) {
                        out.extend(host_ns(h));
                    }
                }
            }
        }
        for g in strs {
            if let Some((ns, _)) = g.split_once('/') {
                out.insert(ns.to_string());
            }
        }
        if let Some(a) = o.pointer("/spec/hosts").and_then(Value::as_array) {
            out.extend(a.iter().filter_map(Value::as_str).filter_map(host_ns));
        }
        if let Some(h) = o.pointer("/spec/host").and_then(Value::as_str) {
            out.extend(host_ns(h));
        }
    }
    out.retain(|n| !n.is_empty() && n != "*" && n != ".");
    out
}

/// The containers of a pod (regular and init, e.g. a native `istio-proxy` sidecar) with their
/// restart counts.
pub fn containers(pod: &Value) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let restarts = |n: &str| -> i64 {
        ["/status/containerStatuses", "/status/initContainerStatuses"]
            .iter()
            .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
            .flatten()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(n))
            .and_then(|s| s.get("restartCount"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    for p in ["/spec/containers", "/spec/initContainers"] {
        if let Some(a) = pod.pointer(p).and_then(Value::as_array) {
            for c in a {
                if let Some(n) = c.get("name").and_then(Value::as_str) {
                    out.push((n.to_string(), restarts(n)));
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

    fn pod(ns: &str, n: &str, labels: Value) -> Value {
        json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":n,"namespace":ns,"labels":labels},
               "spec":{"containers":[{"name":"istio-proxy"}]}})
    }

    #[test]
    fn gateway_from_virtualservice_selector_and_activator() {
        let pods = vec![
            pod("gw-ns", "gw-1", json!({"app":"custom-gw"})),
            pod("other", "gw-2", json!({"istio":"ingressgateway"})),
            pod("ks", "act-1", json!({"app":"activator"})),
            pod(
                "m",
                "pred-1",
                json!({"serving.kserve.io/inferenceservice":"iris","component":"predictor"}),
            ),
            pod("elsewhere", "x", json!({})),
        ];
        let objects = vec![
            json!({"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"v","namespace":"m"},
                   "spec":{"gateways":["gws/g","mesh"]}}),
            json!({"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"g","namespace":"gws"},
                   "spec":{"selector":{"app":"custom-gw"}}}),
            json!({"apiVersion":"serving.kserve.io/v1beta1","kind":"InferenceService","metadata":{"name":"iris","namespace":"m"}}),
        ];
        let s = select(&pods, &objects, &Target::Namespaces(vec!["m".into()]), None);
        let got: Vec<String> = s.pods.iter().map(|(a, b)| format!("{a}/{b}")).collect();
        assert_eq!(got, ["gw-ns/gw-1", "ks/act-1", "m/pred-1"]);
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("Gateway gws/g (app=custom-gw) → gw-ns/gw-1"))
        );
    }

    #[test]
    fn label_fallback_and_missing_gateway() {
        let pods = vec![pod("a", "g", json!({"knative":"ingressgateway"}))];
        let objects = vec![
            json!({"apiVersion":"networking.istio.io/v1","kind":"VirtualService",
            "metadata":{"name":"v","namespace":"m"},"spec":{"gateways":["nope"]}}),
        ];
        let s = select(&pods, &objects, &Target::Namespaces(vec!["m".into()]), None);
        assert!(s.pods.contains(&("a".into(), "g".into())));
        assert!(s.notes.iter().any(|n| n.contains("Gateway m/nope")));
    }

    #[test]
    fn namespaces_the_objects_point_to() {
        let objects = vec![
            json!({"kind":"VirtualService","metadata":{"namespace":"m"},"spec":{
                "gateways":["knative-serving/knative-ingress-gateway","mesh","local"],
                "hosts":["a.models.svc.cluster.local","example.com"],
                "http":[{"match":[{"gateways":["gw-ns/g"]}],
                         "route":[{"destination":{"host":"b.backends.svc.cluster.local"}}]}]}}),
            json!({"kind":"DestinationRule","spec":{"host":"c.other.svc.cluster.local"}}),
        ];
        let got: Vec<String> = referenced_namespaces(&objects).into_iter().collect();
        assert_eq!(
            got,
            ["backends", "gw-ns", "knative-serving", "models", "other"]
        );
    }

    #[test]
    fn containers_with_restarts() {
        let p = json!({"spec":{"containers":[{"name":"a"}],"initContainers":[{"name":"istio-proxy"}]},
            "status":{"initContainerStatuses":[{"name":"istio-proxy","restartCount":2}]}});
        assert_eq!(
            containers(&p),
            vec![("a".into(), 0), ("istio-proxy".into(), 2)]
        );
        assert!(containers(&json!({"spec":{"containers":"bad"}})).is_empty());
    }
}
