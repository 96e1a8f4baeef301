//! `meshtrace describe pod|isvc`: istioctl's `x describe` statements on istioctl's own fixtures,
//! and the effective mTLS per port, policies, Gateways and VirtualServices on the example
//! bundles.
//!
//! The istioctl cases reproduce `istioctl/pkg/describe/describe_test.go` (istio/istio,
//! Apache-2.0): `TestDescribe`'s productpage objects with the config dump
//! `testdata/describe/http_config.json` (vendored in `testdata/peer/istio`, see its SOURCES.md),
//! and `TestGetIstioVirtualServicePathForSvcFromRoute` on `http_config.json` and
//! `tls_config.json`. Indentation follows the current `describe.go` (`printLevel1` = 3 spaces,
//! where the older test text had 2 before `WARNING POD DOES NOT MATCH ANY SUBSETS`).

use std::path::Path;

use crate::common;

use meshtrace_analysis::describe::{dr_from_dump, vs_from_dump};
use meshtrace_parsers::configdump::ConfigDump;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FIXTURES: &str = "testdata/peer/istio/istioctl/pkg/describe/testdata/describe";

fn describe(args: &[&str]) -> (i32, String, String) {
    let out = common::meshtrace()
        .arg("describe")
        .args(args)
        .current_dir(Path::new(ROOT))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    let (code, out, err) = describe(&a);
    assert!(code == 0 || code == 1, "{args:?}: exit {code}: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["schema"], "meshtrace.describe/v1");
    v
}

/// The lines of `want` appear in `out` one after the other.
fn has_block(out: &str, want: &str) {
    let lines: Vec<&str> = out.lines().collect();
    let want: Vec<&str> = want.lines().collect();
    assert!(
        lines.windows(want.len()).any(|w| w == want.as_slice()),
        "missing block:\n{}\n--- in ---\n{out}",
        want.join("\n")
    );
}

fn dump(name: &str) -> ConfigDump {
    let text = std::fs::read_to_string(Path::new(ROOT).join(FIXTURES).join(name)).unwrap();
    ConfigDump::parse(&text).unwrap()
}

// --- istioctl's own fixtures ---------------------------------------------------------------

#[test]
fn virtual_service_from_route_metadata_like_istioctl() {
    // TestGetIstioVirtualServicePathForSvcFromRoute: both dumps name
    // /apis/networking.istio.io/v1alpha3/namespaces/default/virtual-service/bookinfo.
    for f in ["http_config.json", "tls_config.json"] {
        assert_eq!(
            vs_from_dump(&dump(f), "productpage", "default", 9080),
            Some(("default".to_string(), "bookinfo".to_string())),
            "{f}"
        );
        // Another Service or port is not attributed to it.
        assert_eq!(
            vs_from_dump(&dump(f), "reviews", "default", 9080),
            None,
            "{f}"
        );
    }
}

#[test]
fn destination_rule_from_cluster_metadata_like_istioctl() {
    // getIstioDestinationRulePathForSvc: outbound|9080|v1|productpage.default.svc.cluster.local
    // carries destination-rule/productpage (any subset matches the filter).
    let d = dump("http_config.json");
    assert_eq!(
        dr_from_dump(&d, "productpage.default.svc.cluster.local", 9080),
        Some(("default".to_string(), "productpage".to_string()))
    );
    assert_eq!(
        dr_from_dump(&d, "productpage.default.svc.cluster.local", 80),
        None
    );
}

/// `TestDescribe`'s Kubernetes and Istio objects as a bundle, with the productpage pod's
/// config dump, and `dr_traffic_policy` as the DestinationRule's `trafficPolicy`.
fn istioctl_bundle(dr_traffic_policy: Option<serde_json::Value>) -> tempfile::TempDir {
    istioctl_bundle_with(dr_traffic_policy, Vec::new())
}

/// The same bundle with `extra` objects (PeerAuthentications, a MeshConfig…).
fn istioctl_bundle_with(
    dr_traffic_policy: Option<serde_json::Value>,
    extra: Vec<serde_json::Value>,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("resources/default")).unwrap();
    std::fs::create_dir_all(root.join("config_dump/default")).unwrap();
    std::fs::write(
        root.join("meshtrace-bundle.json"),
        r#"{"version": 1, "collector": "test"}"#,
    )
    .unwrap();
    let running = serde_json::json!({"phase": "Running",
        "containerStatuses": [{"name": "istio-proxy", "ready": true}]});
    let pods = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "productpage-v1-1234567890", "namespace": "default",
                      "labels": {"app": "productpage"}},
         "spec": {"containers": [
            {"name": "productpage", "ports": [{"name": "http", "containerPort": 9080}]},
            {"name": "istio-proxy"}]},
         "status": running},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "ingress", "namespace": "default",
                      "labels": {"istio": "ingressgateway"}},
         "spec": {"containers": [{"name": "istio-proxy"}]},
         "status": running}
    ]});
    std::fs::write(root.join("pods.json"), pods.to_string()).unwrap();
    let mut dr = serde_json::json!({"apiVersion": "networking.istio.io/v1alpha3",
        "kind": "DestinationRule", "metadata": {"name": "productpage", "namespace": "default"},
        "spec": {"host": "productpage", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}});
    if let Some(tp) = dr_traffic_policy {
        dr["spec"]["trafficPolicy"] = tp;
    }
    let objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "productpage", "namespace": "default"},
         "spec": {"selector": {"app": "productpage"},
                  "ports": [{"name": "http", "port": 9080, "targetPort": 9080, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "ingress", "namespace": "default", "labels": {"istio": "ingressgateway"}},
         "spec": {"selector": {"istio": "ingressgateway"},
                  "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}]}},
        {"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
         "metadata": {"name": "bookinfo", "namespace": "default"},
         "spec": {"hosts": ["productpage"], "gateways": ["fake-gw"],
                  "http": [{"match": [{"uri": {"prefix": "/prefix"}}],
                            "route": [
                                {"destination": {"host": "productpage"}, "weight": 30},
                                {"destination": {"host": "productpage2"}, "weight": 20},
                                {"destination": {"host": "productpage3"}, "weight": 50}]}]}},
        dr
    ]});
    let mut objects = objects;
    objects["items"].as_array_mut().unwrap().extend(extra);
    std::fs::write(
        root.join("resources/default/objects.json"),
        objects.to_string(),
    )
    .unwrap();
    std::fs::copy(
        Path::new(ROOT).join(FIXTURES).join("http_config.json"),
        root.join("config_dump/default/productpage-v1-1234567890.json"),
    )
    .unwrap();
    dir
}

#[test]
fn istioctl_describe_vs_route_to_multiple_hosts() {
    // TestDescribe "case 9, vs route to multiple hosts" (no traffic policy).
    let b = istioctl_bundle(None);
    let bundle = b.path().to_str().unwrap();
    let (code, out, err) = describe(&[
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ]);
    assert!(code == 0 || code == 1, "{err}");
    has_block(
        &out,
        "Pod: productpage-v1-1234567890\n   Pod Revision: \n   Pod Ports: 9080 (productpage)",
    );
    has_block(
        &out,
        r#"Service: productpage
   Port: http 9080/HTTP targets pod port 9080
DestinationRule: productpage for "productpage"
   WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets v1)
   Matching subsets: 
      (Non-matching subsets v1)
   No Traffic Policy
VirtualService: bookinfo
   Route to host "productpage" with weight 30%
   Route to host "productpage2" with weight 20%
   Route to host "productpage3" with weight 50%
   Match: /prefix*"#,
    );
    // The DestinationRule came from the proxy's own cluster metadata, as istioctl reads it.
    let v = json(&[
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ]);
    let port = &v["pod"]["services"][0]["ports"][0];
    assert_eq!(port["destination_rule"]["from_config_dump"], true);
    // The VirtualService names a Gateway that does not exist: said, not hidden.
    assert!(
        out.contains("Bound to Gateway default/fake-gw (not in the evidence)"),
        "{out}"
    );
}

#[test]
fn istioctl_describe_with_traffic_policy() {
    // TestDescribe "have traffic policy": TLS mode, short policies and port-level settings.
    let b = istioctl_bundle(Some(serde_json::json!({
        "loadBalancer": {"simple": "LEAST_REQUEST"},
        "connectionPool": {"tcp": {"maxConnections": 10}},
        "outlierDetection": {"minHealthPercent": 10},
        "tls": {"mode": "ISTIO_MUTUAL"},
        "portLevelSettings": [{
            "port": {"number": 8080},
            "loadBalancer": {"simple": "LEAST_REQUEST"},
            "tls": {"mode": "DISABLE"},
            "connectionPool": {"tcp": {"maxConnections": 10}},
            "outlierDetection": {"minHealthPercent": 10}}]
    })));
    let bundle = b.path().to_str().unwrap();
    let (_, out, err) = describe(&[
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ]);
    has_block(
        &out,
        r#"DestinationRule: productpage for "productpage"
   WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets v1)
   Matching subsets: 
      (Non-matching subsets v1)
   Traffic Policy TLS Mode: ISTIO_MUTUAL
   Policies: load balancer/connection pool/outlier detection
   Port Level Settings:
    8080:
      TLS Mode: DISABLE
      Policies: load balancer/connection pool/outlier detection
VirtualService: bookinfo
   Route to host "productpage" with weight 30%
   Route to host "productpage2" with weight 20%
   Route to host "productpage3" with weight 50%
   Match: /prefix*"#,
    );
    // Port 9080 is not 8080: clients use the top-level ISTIO_MUTUAL.
    assert!(
        out.contains("mTLS: pod port 9080 is PERMISSIVE; clients send tls mode ISTIO_MUTUAL"),
        "{out}{err}"
    );
}

// --- the example bundles --------------------------------------------------------------------

fn pod_json(bundle: &str, ns: &str, pod: &str) -> serde_json::Value {
    json(&[
        "pod",
        pod,
        "-n",
        ns,
        "--bundle",
        &format!("testdata/bundles/{bundle}"),
    ])["pod"]
        .clone()
}

fn port_modes(p: &serde_json::Value) -> Vec<(u64, String)> {
    p["port_mtls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["port"].as_u64().unwrap(),
                x["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn odh_mesh_wide_strict_and_activator_port_level_permissive() {
    // istio-system/default PeerAuthentication STRICT (the root namespace) applies to every
    // workload; the activator's workload policy makes 8012 PERMISSIVE and inherits the rest.
    let act = pod_json("odh-out-of-mesh-client", "knative-serving", "activator");
    let pa = &act["peer_authentication"];
    assert_eq!(pa["mode"], "STRICT");
    assert_eq!(pa["per_port"]["8012"], "PERMISSIVE");
    assert_eq!(
        pa["applied"],
        serde_json::json!([
            "default.istio-system",
            "activator-kubelet-probes.knative-serving"
        ])
    );
    assert!(
        port_modes(&act).contains(&(8012, "PERMISSIVE".into())),
        "{act}"
    );

    let pred = pod_json("odh-out-of-mesh-client", "aiproject", "test-predictor");
    assert_eq!(pred["peer_authentication"]["mode"], "STRICT");
    assert!(
        pred["peer_authentication"]["per_port"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    // The mesh-wide `*.cluster.local` ISTIO_MUTUAL DestinationRule is what clients use.
    let svc_ports: Vec<&serde_json::Value> = pred["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["ports"].as_array().unwrap())
        .collect();
    assert!(!svc_ports.is_empty(), "{pred}");
    assert!(
        svc_ports.iter().all(|p| p["client_tls"] == "ISTIO_MUTUAL"
            && p["destination_rule"]["name"] == "default"
            && p["destination_rule"]["namespace"] == "istio-system"),
        "{pred}"
    );
}

#[test]
fn odh_isvc_lists_knative_objects_routes_and_pods() {
    let v = json(&[
        "isvc",
        "test",
        "-n",
        "aiproject",
        "--bundle",
        "testdata/bundles/odh-out-of-mesh-client",
    ]);
    let i = &v["isvc"];
    assert_eq!(i["found"], true);
    let kinds: Vec<String> = i["knative"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            format!(
                "{}/{}",
                k["kind"].as_str().unwrap(),
                k["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        kinds
            .iter()
            .any(|k| k.starts_with("Revision/test-predictor-")),
        "{kinds:?}"
    );
    // Its own VirtualService, bound to both Knative gateways.
    let entry = &i["entry_virtual_services"][0];
    assert_eq!(entry["name"], "test");
    let gws: Vec<&str> = entry["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["gateway"].as_str().unwrap())
        .collect();
    assert_eq!(
        gws,
        [
            "knative-serving/knative-local-gateway",
            "knative-serving/knative-ingress-gateway"
        ]
    );
    let pods: Vec<&str> = i["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        pods.iter().all(|p| p.starts_with("test-predictor-")) && !pods.is_empty(),
        "{pods:?}"
    );
}

#[test]
fn kind_rbac_policy_in_force_on_the_gateway_with_its_rule() {
    let gw = pod_json("kind-rbac-403", "istio-system", "istio-ingressgateway");
    let a = &gw["authorization_policies"][0];
    assert_eq!(a["name"], "allow-with-header");
    assert_eq!(a["action"], "ALLOW");
    assert_eq!(a["scope"], "selector app=istio-ingressgateway");
    let rule = a["rules"][0].as_str().unwrap();
    assert!(
        rule.contains("/v1/models/bert-emotion-model:predict")
            && rule.contains("request.headers[X-Test]"),
        "{rule}"
    );
    // The predictor is in another namespace: that policy is not in force there.
    let (_, out, _) = describe(&[
        "pod",
        "bert-model-predictor",
        "-n",
        "default",
        "--bundle",
        "testdata/bundles/kind-rbac-403",
    ]);
    assert!(
        out.contains("No AuthorizationPolicy applies; every request is allowed."),
        "{out}"
    );
}

fn strict(ns: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default", "namespace": ns}, "spec": {"mtls": {"mode": "STRICT"}}})
}

fn conflicts(v: &serde_json::Value) -> Vec<(String, String)> {
    v["pod"]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["severity"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn strict_server_and_disable_client_is_an_error() {
    // Mesh-wide STRICT; the DestinationRule turns TLS off for every port: clients send
    // plaintext to a sidecar that only accepts mTLS.
    let b = istioctl_bundle_with(
        Some(serde_json::json!({"tls": {"mode": "DISABLE"}})),
        vec![strict("istio-system")],
    );
    let bundle = b.path().to_str().unwrap();
    let args = [
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ];
    let (code, out, _) = describe(&args);
    assert_eq!(code, 1, "an error-level conflict exits 1: {out}");
    let c = conflicts(&json(&args));
    assert!(
        c.iter().any(|(s, m)| s == "error"
            && m.contains("STRICT mTLS on the pod but DestinationRule productpage.default sets tls mode DISABLE for productpage.default:9080")),
        "{c:?}"
    );
    // Port-level DISABLE in the workload's PeerAuthentication lifts it for that port only.
    let b = istioctl_bundle_with(
        Some(serde_json::json!({"tls": {"mode": "DISABLE"}})),
        vec![
            strict("istio-system"),
            serde_json::json!({"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                "metadata": {"name": "pp", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "productpage"}},
                         "portLevelMtls": {"9080": {"mode": "DISABLE"}}}}),
        ],
    );
    let bundle = b.path().to_str().unwrap();
    let v = json(&[
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ]);
    assert_eq!(v["pod"]["services"][0]["ports"][0]["mtls"], "DISABLE");
    assert!(
        conflicts(&v).iter().all(|(s, _)| s != "error"),
        "{:?}",
        conflicts(&v)
    );
}

#[test]
fn dr_without_tls_to_strict_pod_depends_on_auto_mtls() {
    let tp = serde_json::json!({"connectionPool": {"tcp": {"maxConnections": 10}}});
    // Auto mTLS on (the default): worth knowing, not an error.
    let b = istioctl_bundle_with(Some(tp.clone()), vec![strict("default")]);
    let bundle = b.path().to_str().unwrap();
    let c = conflicts(&json(&[
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ]));
    assert!(
        c.iter()
            .any(|(s, m)| s == "info" && m.contains("without tls settings")),
        "{c:?}"
    );
    // MeshConfig turns auto mTLS off: clients send plaintext, STRICT refuses it.
    let mesh = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system"},
        "data": {"mesh": "enableAutoMtls: false\nrootNamespace: istio-system\n"}});
    let b = istioctl_bundle_with(Some(tp), vec![strict("default"), mesh]);
    let bundle = b.path().to_str().unwrap();
    let c = conflicts(&json(&[
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ]));
    assert!(
        c.iter()
            .any(|(s, m)| s == "error" && m.contains("enableAutoMtls: false")),
        "{c:?}"
    );
}

#[test]
fn route_to_undefined_subset_is_an_error() {
    // istioctl: "Route to UNKNOWN subset v9; check DestinationRule productpage".
    let b = istioctl_bundle_with(
        None,
        vec![
            serde_json::json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "pp-v9", "namespace": "default"},
            "spec": {"hosts": ["productpage"],
                     "http": [{"route": [{"destination": {"host": "productpage", "subset": "v9"}}]}]}}),
        ],
    );
    let bundle = b.path().to_str().unwrap();
    let args = [
        "pod",
        "productpage-v1-1234567890",
        "-n",
        "default",
        "--bundle",
        bundle,
    ];
    let (_, out, _) = describe(&args);
    has_block(
        &out,
        "VirtualService: pp-v9\n   WARNING: No destinations match pod subsets (checked 1 HTTP routes)\n      Warning: Route to UNKNOWN subset v9; check DestinationRule productpage",
    );
    let c = conflicts(&json(&args));
    assert!(
        c.iter()
            .any(|(s, m)| s == "error" && m.contains("Route to UNKNOWN subset v9")),
        "{c:?}"
    );
}

#[test]
fn seldon_canary_split_reaches_each_pod() {
    let main = pod_json(
        "seldon-canary-mesh-gateway",
        "seldon",
        "iris-main-0-classifier",
    );
    let vs: Vec<&serde_json::Value> = main["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["ports"].as_array().unwrap())
        .flat_map(|p| p["virtual_services"].as_array().unwrap())
        .collect();
    let iris = vs
        .iter()
        .find(|v| v["name"] == "iris-http")
        .expect("iris-http reaches the main pod");
    let facts: Vec<&str> = iris["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        facts.contains(&"Route to host \"iris-main\" subset \"main\" with weight 75%"),
        "{facts:?}"
    );
    assert!(facts.contains(&"Match: /seldon/seldon/iris/*"), "{facts:?}");
    assert_eq!(
        iris["gateways"][0]["gateway"],
        "istio-system/seldon-gateway"
    );
    assert_eq!(iris["gateways"][0]["found"], true);
    // The canary half of the split goes to the other Service.
    assert!(
        facts.contains(
            &"Route to host \"iris-canary\" subset \"canary\" with weight 25% (another Service)"
        ),
        "{facts:?}"
    );
    // No PeerAuthentication in this bundle: PERMISSIVE, so the DestinationRule without tls
    // settings conflicts with nothing.
    assert_eq!(main["peer_authentication"]["mode"], "PERMISSIVE");
    assert_eq!(main["peer_authentication"]["decided_by"], "default");
    assert!(
        main["conflicts"].as_array().unwrap().is_empty(),
        "{}",
        main["conflicts"]
    );
}

#[test]
fn must_gather_layout_is_read_too() {
    let v = pod_json(
        "must-gather-ossm-403",
        "istio-system",
        "istio-ingressgateway",
    );
    assert_eq!(v["authorization_policies"][0]["name"], "allow-with-header");
}

#[test]
fn unknown_pod_is_a_clear_error() {
    let (code, _, err) = describe(&["pod", "nope", "--bundle", "testdata/bundles/kind-rbac-403"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no pod \"nope\"") && err.contains("istio-system/istio-ingressgateway"),
        "{err}"
    );
    let (code, _, err) = describe(&["isvc", "nope", "--bundle", "testdata/bundles/kind-rbac-403"]);
    assert_eq!(code, 2);
    assert!(err.contains("default/bert-model"), "{err}");
}

#[test]
fn yaml_is_the_json_document() {
    let args = [
        "pod",
        "activator",
        "--bundle",
        "testdata/bundles/odh-out-of-mesh-client",
    ];
    let j = json(&args);
    let mut a = args.to_vec();
    a.extend(["-o", "yaml"]);
    let (code, out, err) = describe(&a);
    assert_eq!(code, 0, "{err}");
    let y: serde_json::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(y, j);
}
