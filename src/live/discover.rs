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
    openshift_routers(pods, objects, &in_scope, &mut sel);
    ambient(pods, objects, &mut sel);
    sel
}

/// The label OpenShift's ingress operator puts on its router pods, valued with the name of
/// their IngressController (`default`).
const ROUTER_LABEL: &str = "ingresscontroller.operator.openshift.io/deployment-ingresscontroller";

/// Is this pod an OpenShift router (HAProxy, in `openshift-ingress`)?
pub fn is_openshift_router(pod: &Value) -> bool {
    label(pod, ROUTER_LABEL).is_some()
}

/// OpenShift routes in scope: the router pods that serve them (the IngressController a Route's
/// `status.ingress[].routerName` names; every router when no Route says). Their access log is
/// what the path has in front of a KServe Standard-mode model.
fn openshift_routers(
    pods: &[Value],
    objects: &[Value],
    in_scope: &dyn Fn(&Value) -> bool,
    sel: &mut Selection,
) {
    let routes: Vec<&Value> = objects
        .iter()
        .filter(|o| is(o, "route.openshift.io", "Route") && in_scope(o))
        .collect();
    if routes.is_empty() {
        return;
    }
    let named: BTreeSet<&str> = routes
        .iter()
        .filter_map(|r| r.pointer("/status/ingress").and_then(Value::as_array))
        .flatten()
        .filter_map(|i| i.get("routerName").and_then(Value::as_str))
        .collect();
    let routers: Vec<&Value> = pods
        .iter()
        .filter(|p| label(p, ROUTER_LABEL).is_some_and(|c| named.is_empty() || named.contains(c)))
        .collect();
    if routers.is_empty() {
        sel.notes.push(format!(
            "{} OpenShift Route(s) in scope but no router pod ({ROUTER_LABEL}) was found: the router's access log is not collected",
            routes.len()
        ));
        return;
    }
    sel.notes
        .push(format!("OpenShift router → {}", names(&routers)));
    sel.pods.extend(routers.iter().map(|p| key(p)));
}

/// Containers whose logs are evidence by the pod's role, taken besides the proxies' unless
/// `--container` says otherwise: the OpenShift router's access-log sidecar (`logs`, present when
/// the IngressController logs access to a container), the Knative activator's own log
/// (`activator`: why it could not reach a revision) and Knative's `queue-proxy` (in front of
/// every model container of a revision).
pub fn is_role_container(pod: &Value, container: &str) -> bool {
    match container {
        "logs" => is_openshift_router(pod),
        "activator" => {
            label(pod, "app") == Some("activator") || label(pod, "role") == Some("activator")
        }
        "queue-proxy" => true,
        _ => false,
    }
}

/// Is this pod a ztunnel (the node proxy of Istio ambient: the `ztunnel` DaemonSet's pods are
/// labelled `app=ztunnel`)? Its admin port serves ztunnel's own config, not Envoy's.
pub fn is_ztunnel(pod: &Value) -> bool {
    label(pod, "app") == Some("ztunnel")
}

/// Istio ambient: the selected pods that are enrolled (`istio.io/dataplane-mode=ambient` on
/// the pod or its Namespace, and not `none` on the pod) carry no sidecar, so their traffic is
/// logged by the ztunnel of their node (one line per connection) and by the waypoint that
/// serves them (`istio.io/use-waypoint` on the pod or its Namespace; the waypoint's pods carry
/// `gateway.networking.k8s.io/gateway-name=<waypoint>`). Adds those ztunnel and waypoint pods.
fn ambient(pods: &[Value], objects: &[Value], sel: &mut Selection) {
    let ns_labels = |ns: &str, key: &str| -> Option<String> {
        objects
            .iter()
            .find(|o| is(o, "", "Namespace") && name(o) == ns)
            .and_then(|o| label(o, key))
            .map(str::to_string)
    };
    let pod_of = |k: &PodKey| pods.iter().find(|p| namespace(p) == k.0 && name(p) == k.1);
    let mut nodes: BTreeSet<String> = BTreeSet::new();
    let mut waypoints: BTreeSet<(String, String)> = BTreeSet::new();
    let mut enrolled = 0usize;
    for k in &sel.pods {
        let Some(p) = pod_of(k) else { continue };
        if is_ztunnel(p) {
            continue;
        }
        let mode = label(p, "istio.io/dataplane-mode")
            .map(str::to_string)
            .or_else(|| ns_labels(&k.0, "istio.io/dataplane-mode"));
        if mode.as_deref() != Some("ambient") {
            continue;
        }
        enrolled += 1;
        if let Some(n) = str_at(p, "/spec/nodeName") {
            nodes.insert(n.to_string());
        }
        let wp = label(p, "istio.io/use-waypoint")
            .map(|w| (w.to_string(), label(p, "istio.io/use-waypoint-namespace")))
            .or_else(|| ns_labels(&k.0, "istio.io/use-waypoint").map(|w| (w, None::<&str>)));
        if let Some((w, wns)) = wp
            && w != "none"
        {
            let wns = wns
                .map(str::to_string)
                .or_else(|| ns_labels(&k.0, "istio.io/use-waypoint-namespace"))
                .unwrap_or_else(|| k.0.clone());
            waypoints.insert((wns, w));
        }
    }
    if enrolled == 0 {
        return;
    }
    let mut added: Vec<&Value> = Vec::new();
    for (wns, w) in &waypoints {
        let found: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                namespace(p) == wns
                    && label(p, "gateway.networking.k8s.io/gateway-name") == Some(w.as_str())
            })
            .collect();
        if found.is_empty() {
            sel.notes.push(format!(
                "ambient: waypoint {wns}/{w} is used but no pod labelled gateway.networking.k8s.io/gateway-name={w} runs in {wns}"
            ));
        } else {
            sel.notes
                .push(format!("ambient: waypoint {wns}/{w} → {}", names(&found)));
            for p in &found {
                if let Some(n) = str_at(p, "/spec/nodeName") {
                    nodes.insert(n.to_string());
                }
            }
            added.extend(found);
        }
    }
    let zt: Vec<&Value> = pods
        .iter()
        .filter(|p| is_ztunnel(p))
        .filter(|p| str_at(p, "/spec/nodeName").is_some_and(|n| nodes.contains(n)))
        .collect();
    if zt.is_empty() {
        sel.notes.push(format!(
            "ambient: {enrolled} selected pod(s) are enrolled in ambient mode but no ztunnel pod (app=ztunnel) was found on their node(s) {}: their connections are not logged by any pod read",
            nodes.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    } else {
        sel.notes.push(format!(
            "ambient: ztunnel on node(s) {} → {}",
            nodes.iter().cloned().collect::<Vec<_>>().join(", "),
            names(&zt)
        ));
    }
    added.extend(zt);
    sel.pods.extend(added.iter().map(|p| key(p)));
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
    fn ambient_pods_bring_their_nodes_ztunnels_and_their_waypoint() {
        let mut app = pod("shop", "reviews-1", json!({"app": "reviews"}));
        app["spec"] = json!({"nodeName": "node-a", "containers": [{"name": "reviews"}]});
        let mut other = pod(
            "shop",
            "ratings-1",
            json!({"app": "ratings", "istio.io/dataplane-mode": "none"}),
        );
        other["spec"] = json!({"nodeName": "node-c"});
        let mut wp = pod(
            "shop",
            "waypoint-5d8",
            json!({"gateway.networking.k8s.io/gateway-name": "waypoint"}),
        );
        wp["spec"] = json!({"nodeName": "node-b"});
        let mut zt_a = pod("istio-system", "ztunnel-aaaa", json!({"app": "ztunnel"}));
        zt_a["spec"] = json!({"nodeName": "node-a"});
        let mut zt_b = pod("istio-system", "ztunnel-bbbb", json!({"app": "ztunnel"}));
        zt_b["spec"] = json!({"nodeName": "node-b"});
        let mut zt_c = pod("istio-system", "ztunnel-cccc", json!({"app": "ztunnel"}));
        zt_c["spec"] = json!({"nodeName": "node-c"});
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop",
            "labels": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}}});
        let pods = vec![app, other, wp, zt_a, zt_b, zt_c];
        let sel = select(&pods, &[ns], &Target::Namespaces(vec!["shop".into()]), None);
        let has = |n: &str| sel.pods.iter().any(|(_, p)| p == n);
        // The enrolled pod's node and the waypoint's node; not the opted-out pod's node.
        assert!(
            has("ztunnel-aaaa") && has("ztunnel-bbbb") && !has("ztunnel-cccc"),
            "{sel:?}"
        );
        assert!(has("waypoint-5d8"));
        assert!(
            sel.notes
                .iter()
                .any(|n| n.contains("waypoint shop/waypoint → shop/waypoint-5d8")),
            "{:?}",
            sel.notes
        );
    }

    #[test]
    fn ambient_without_a_ztunnel_says_so_and_sidecar_namespaces_add_nothing() {
        let mut app = pod(
            "shop",
            "reviews-1",
            json!({"istio.io/dataplane-mode": "ambient"}),
        );
        app["spec"] = json!({"nodeName": "node-a"});
        let sel = select(
            &[app.clone()],
            &[],
            &Target::Namespaces(vec!["shop".into()]),
            None,
        );
        assert!(
            sel.notes
                .iter()
                .any(|n| n.contains("no ztunnel pod (app=ztunnel)") && n.contains("node-a")),
            "{:?}",
            sel.notes
        );
        // Not enrolled: no ambient note at all.
        let mut plain = app;
        plain["metadata"]["labels"] = json!({});
        let sel = select(
            &[plain],
            &[],
            &Target::Namespaces(vec!["shop".into()]),
            None,
        );
        assert!(
            !sel.notes.iter().any(|n| n.starts_with("ambient:")),
            "{:?}",
            sel.notes
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
