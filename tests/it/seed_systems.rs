//! The systems meshtrace started from, end to end on their example bundles: Open Data Hub's
//! private endpoint (`kserve-local-gateway`, TLS SIMPLE on 8445, Istio's port translation,
//! `match.gateways`), Knative's cluster-local visibility, Seldon Core v1 (canary route and weight,
//! OOMKilled predictor, a client outside the mesh). Each test runs `trace` (and `failures`) and
//! holds the verdict's cause, origin hop, cited objects and fix text.

use crate::common;

use std::path::Path;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, String) {
    let out = common::meshtrace()
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("meshtrace runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn trace(bundle: &str, start: &str) -> Value {
    let dir = format!("testdata/bundles/{bundle}");
    let (code, out) = run(&["trace", start, "--bundle", &dir, "-o", "json"]);
    assert_eq!(code, 1, "a failed request exits 1: {out}");
    serde_json::from_str(&out).expect("trace -o json is JSON")
}

fn citation<'a>(t: &'a Value, object: &str) -> Option<&'a str> {
    t["citations"]
        .as_array()?
        .iter()
        .find(|c| c["object"] == object)
        .and_then(|c| c["why"].as_str())
}

fn text<'a>(t: &'a Value, key: &str) -> &'a str {
    t[key].as_str().unwrap_or("")
}

#[test]
fn odh_private_endpoint_plain_http_is_a_tls_error_not_a_missing_sidecar() {
    let t = trace("odh-private-endpoint-8445", "10.134.1.22:48216");
    assert_eq!(t["cause"], "tls_error", "{t:#}");
    assert_eq!(t["origin_hop"], 1);
    assert_eq!(t["hops"][0]["listener"], "10.135.0.43:8445");
    // The Gateway whose server port is the pod port 8445 after translation, never 8443's.
    let gw = citation(&t, "Gateway/istio-system/kserve-local-gateway")
        .expect("cites the private endpoint");
    assert!(gw.contains("tls.mode SIMPLE"), "{gw}");
    assert!(
        citation(&t, "Gateway/knative-serving/knative-ingress-gateway").is_none(),
        "{t:#}"
    );
    assert!(
        citation(&t, "Service/istio-system/kserve-local-gateway")
            .is_some_and(|w| w.contains("443 → targetPort 8445"))
    );
    let summary = text(&t, "summary");
    assert!(!summary.contains("accepts only mTLS"), "{summary}");
    assert!(
        summary.contains("not an mTLS or sidecar problem"),
        "{summary}"
    );
    let fix = text(&t, "fix");
    assert!(
        fix.contains("https://test.aiproject.svc.cluster.local"),
        "{fix}"
    );
    assert!(fix.contains("Secret istio-system/test-aiproject"), "{fix}");
    assert!(
        !fix.contains("private endpoint"),
        "the fix must not send the caller to the endpoint it called: {fix}"
    );
}

#[test]
fn odh_private_endpoint_404_names_the_unbound_route() {
    let t = trace(
        "odh-private-endpoint-8445",
        "5c1f7a2e-93d4-4b8a-a6e0-2f4d8c9b1e37",
    );
    assert_eq!(t["cause"], "route_not_found");
    assert_eq!(t["origin_hop"], 1);
    let summary = text(&t, "summary");
    assert!(
        summary.contains("the route is not bound to this gateway"),
        "{summary}"
    );
    assert!(!summary.contains("none matching Host"), "{summary}");
    let vs = citation(&t, "VirtualService/aiproject/test").expect("cites the VirtualService");
    assert!(vs.contains("match.gateways"), "{vs}");
    let gw = citation(&t, "Gateway/istio-system/kserve-local-gateway").expect("cites the Gateway");
    assert!(!gw.contains("none matching"), "{gw}");
    assert!(
        text(&t, "fix").contains("Bind the route to Gateway istio-system/kserve-local-gateway")
    );
}

#[test]
fn odh_private_endpoint_failures_agree_with_trace() {
    let (code, out) = run(&[
        "failures",
        "--bundle",
        "testdata/bundles/odh-private-endpoint-8445",
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"tls_error\""), "{out}");
    assert!(!out.contains("\"missing_sidecar\""), "{out}");
}

#[test]
fn knative_cluster_local_explains_the_external_404() {
    let t = trace(
        "knative-cluster-local-404",
        "7e2d9c41-5b8a-4f3e-9d21-6c0a8b4f2e19",
    );
    assert_eq!(t["cause"], "route_not_found");
    assert_eq!(t["origin_hop"], 1);
    assert_eq!(t["hops"][0]["role"], "ingress-gateway");
    let why = citation(&t, "InferenceService/vision-ai/person-detector")
        .expect("cites the labelled model");
    assert!(why.contains("cluster-local"), "{why}");
    assert!(text(&t, "summary").contains("networking.knative.dev/visibility: cluster-local"));
    let fix = text(&t, "fix");
    assert!(fix.contains("networking.knative.dev/visibility-"), "{fix}");
    assert!(
        fix.contains("http://person-detector.vision-ai.svc.cluster.local"),
        "{fix}"
    );
    // The same gateway's 404 for a host with no such label keeps the plain reading.
    let t = trace(
        "knative-cluster-local-404",
        "0b7e4f19-3c2a-4d8e-b6f1-9a5c3e7d2b80",
    );
    assert!(!text(&t, "summary").contains("cluster-local"), "{t:#}");
}

#[test]
fn seldon_canary_oomkilled_names_the_route_weight_and_seldon_objects() {
    let t = trace(
        "seldon-canary-mesh-gateway",
        "c2f7e8a1-9b3d-4e6f-8a2c-5d7e9f1b3c4a",
    );
    assert_eq!(t["cause"], "upstream_reset");
    assert_eq!(t["origin_hop"], 2);
    let vs = citation(&t, "VirtualService/seldon/iris-http").expect("cites the split");
    assert!(vs.contains("prefix /seldon/seldon/iris/"), "{vs}");
    assert!(
        vs.contains("subset `canary`") && vs.contains("weight 25 of 100"),
        "{vs}"
    );
    let pod =
        citation(&t, "Pod/seldon/iris-canary-0-classifier-5d6f7c8b9-zt9wh").expect("cites the pod");
    assert!(
        pod.contains("OOMKilled") && pod.contains("restartCount 1"),
        "{pod}"
    );
    assert!(
        citation(&t, "SeldonDeployment/seldon/iris")
            .is_some_and(|w| w.contains("predictor `canary`"))
    );
    let fix = text(&t, "fix");
    assert!(
        fix.contains("SeldonDeployment seldon/iris") && fix.contains("container `classifier`"),
        "{fix}"
    );
    assert!(fix.contains("256Mi"), "{fix}");
    for kserve in ["kserve-container", "InferenceService", "queue-proxy"] {
        assert!(
            !fix.contains(kserve),
            "a Seldon fix names no KServe object: {fix}"
        );
    }
}

#[test]
fn seldon_client_outside_the_mesh_bypasses_the_split() {
    let t = trace("seldon-mesh-bypass", "e4a1c9d2-7f3b-4a6e-8c05-1b2d3e4f5a67");
    assert_eq!(t["cause"], "app_error");
    assert_eq!(t["origin_hop"], 1);
    let summary = text(&t, "summary");
    assert!(summary.contains("has no istio-proxy sidecar"), "{summary}");
    assert!(summary.contains("no canary split"), "{summary}");
    assert!(
        citation(&t, "VirtualService/my-ns/canary-example-1-http")
            .is_some_and(|w| w.contains("[mesh]"))
    );
    assert!(citation(&t, "Pod/batch/scorer-5f7d8c9b6-x2k4p").is_some());
    let fix = text(&t, "fix");
    assert!(
        fix.contains("sidecar.istio.io/inject") && fix.contains("seldon.io/istio-gateway"),
        "{fix}"
    );
}

#[test]
fn queue_proxy_502_is_told_apart_from_the_model() {
    let t = trace(
        "kserve-queue-proxy-502",
        "b7d3e1f0-4c2a-4e8b-9a61-3f5c7d9e2b14",
    );
    assert_eq!(t["cause"], "app_error");
    assert_eq!(t["origin_hop"], 4);
    assert_eq!(t["status"], 502);
    let summary = text(&t, "summary");
    assert!(
        summary.contains("came from queue-proxy, not from the model"),
        "{summary}"
    );
    assert!(summary.contains("CrashLoopBackOff"), "{summary}");
    let fix = text(&t, "fix");
    assert!(fix.contains("-c kserve-container --previous"), "{fix}");
    assert!(
        citation(
            &t,
            "Pod/aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj"
        )
        .is_some_and(|w| w.contains("restartCount 4"))
    );
    // A model that answers its own 502 while running ready keeps the plain reading: the other
    // bundles' 4xx/5xx from the model are untouched.
    let t = trace(
        "rhoai-400-app-error",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
    );
    assert!(!text(&t, "summary").contains("queue-proxy"), "{t:#}");
}
