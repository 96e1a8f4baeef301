//! `meshtrace route-check`: the "done when" cases on istioctl's describe dump, a dump
//! whose virtual hosts have real domains, and the hop-by-hop prediction of seed 000's path on
//! the `rhoai-400-app-error` example bundle.

use crate::common;

use serde_json::Value;

const PEER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/peer/istio/istioctl/pkg"
);
const BUNDLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/bundles/rhoai-400-app-error"
);

fn meshtrace(args: &[&str]) -> (i32, String, String) {
    let out = common::meshtrace()
        .args(args)
        .output()
        .expect("run meshtrace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    let (code, out, err) = meshtrace(&a);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

#[test]
fn bookinfo_productpage_ends_at_productpage_cluster_from_virtual_service_bookinfo() {
    let dump = format!("{PEER}/describe/testdata/describe/http_config.json");
    let (code, v) = json(&[
        "route-check",
        "--host",
        "bookinfo.example.com",
        "--path",
        "/productpage",
        &dump,
    ]);
    assert_eq!(code, 0, "{v:#}");
    let hop = &v["hops"][0];
    assert_eq!(hop["outcome"]["kind"], "cluster");
    assert_eq!(
        hop["outcome"]["name"],
        "outbound|9080||productpage.default.svc.cluster.local"
    );
    assert_eq!(hop["virtual_service"], "VirtualService default/bookinfo");
    assert_eq!(hop["route_config"], "http.8080");
}

#[test]
fn unmatched_path_lists_every_route_tried_and_why() {
    let dump = format!("{PEER}/describe/testdata/describe/http_config.json");
    let (code, v) = json(&[
        "route-check",
        "--host",
        "bookinfo.example.com",
        "--path",
        "/nothing",
        &dump,
    ]);
    assert_eq!(code, 1);
    let hop = &v["hops"][0];
    assert_eq!(hop["outcome"]["kind"], "no_route");
    let tried = hop["candidates"].as_array().unwrap();
    assert_eq!(tried.len(), 5, "{tried:#?}");
    for c in tried {
        let why = c["why"].as_str().unwrap();
        assert!(why.contains("\"/nothing\""), "{why}");
    }
    assert!(tried[0]["why"].as_str().unwrap().contains("/productpage"));
    let (_, text, _) = meshtrace(&[
        "route-check",
        "--host",
        "bookinfo.example.com",
        "--path",
        "/nothing",
        &dump,
    ]);
    assert!(text.contains("Tried (closest first):"), "{text}");
    assert!(text.contains("404 NR route_not_found"), "{text}");
}

#[test]
fn unknown_host_lists_why_each_virtual_host_did_not_match() {
    let dump = format!(
        "{PEER}/writer/envoy/configdump/testdata/routes/istio-gateway-http-route-prefix/configdump.json"
    );
    let (code, v) = json(&["route-check", "--host", "unknown.example.org", &dump]);
    assert_eq!(code, 1);
    let hop = &v["hops"][0];
    assert_eq!(hop["outcome"]["kind"], "no_virtual_host");
    let c = hop["candidates"].as_array().unwrap();
    assert_eq!(c[0]["name"], "httpbin.example.com:80");
    assert!(
        c[0]["why"]
            .as_str()
            .unwrap()
            .contains("httpbin.example.com"),
        "{c:#?}"
    );
    // The bundle's gateway: the SNI passes, no virtual host does; both are listed.
    let (code, v) = json(&[
        "route-check",
        "--host",
        "nope.apps.mycluster.example.com",
        "--port",
        "8443",
        "--bundle",
        BUNDLE,
    ]);
    assert_eq!(code, 1);
    let hop = &v["hops"][0];
    assert_eq!(hop["outcome"]["kind"], "no_virtual_host");
    let names: Vec<&str> = hop["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"test-aiproject.apps.mycluster.example.com:443"));
}

#[test]
fn seed000_bundle_predicts_the_five_hop_path() {
    let (code, v) = json(&[
        "route-check",
        "--host",
        "test-aiproject.apps.mycluster.example.com",
        "--port",
        "8443",
        "--bundle",
        BUNDLE,
    ]);
    assert_eq!(code, 0, "{v:#}");
    let hops = v["hops"].as_array().unwrap();
    let path: Vec<(String, u64)> = hops
        .iter()
        .map(|h| {
            (
                h["proxy"].as_str().unwrap().to_string(),
                h["request"]["port"].as_u64().unwrap(),
            )
        })
        .collect();
    let gw = "istio-system/istio-ingressgateway-64694db8d5-zmcc7".to_string();
    let act = "knative-serving/activator-5b7c9f8d6-h2xqp".to_string();
    let pred = "aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj".to_string();
    assert_eq!(
        path,
        [
            (gw.clone(), 8443),
            (gw, 8081),
            (act.clone(), 8012),
            (act, 80),
            (pred, 8012)
        ]
    );
    // Hop 1: SIMPLE TLS, VirtualService aiproject/test rewrites Host, → knative-local-gateway.
    assert_eq!(hops[0]["downstream_tls"], "SIMPLE");
    assert_eq!(hops[0]["virtual_service"], "VirtualService aiproject/test");
    assert_eq!(
        hops[0]["host_rewrite"],
        "test-predictor.aiproject.svc.cluster.local"
    );
    assert_eq!(
        hops[0]["outcome"]["name"],
        "outbound|80||knative-local-gateway.istio-system.svc.cluster.local"
    );
    // Hop 2: the same pod's ISTIO_MUTUAL 8081 listener, VirtualService test-predictor-ingress.
    assert_eq!(hops[1]["downstream_tls"], "ISTIO_MUTUAL");
    assert_eq!(
        hops[1]["request"]["host"],
        "test-predictor.aiproject.svc.cluster.local"
    );
    assert_eq!(
        hops[1]["virtual_service"],
        "VirtualService aiproject/test-predictor-ingress"
    );
    assert_eq!(
        hops[1]["outcome"]["name"],
        "outbound|80||test-predictor-00001.aiproject.svc.cluster.local"
    );
    // Hops 3-5: activator inbound, its outbound to the private Service, the predictor.
    assert_eq!(hops[2]["outcome"]["name"], "inbound|8012||");
    assert_eq!(hops[3]["request"]["host"], "172.31.58.48:80");
    assert_eq!(
        hops[3]["outcome"]["name"],
        "outbound|80||test-predictor-00001-private.aiproject.svc.cluster.local"
    );
    assert_eq!(hops[4]["outcome"]["name"], "inbound|8012||");
    assert!(
        v["end"].as_str().unwrap().contains("predictor"),
        "{}",
        v["end"]
    );
}

#[test]
fn seed000_prediction_text_snapshot() {
    let (code, out, err) = meshtrace(&[
        "route-check",
        "--host",
        "test-aiproject.apps.mycluster.example.com",
        "--port",
        "8443",
        "--bundle",
        BUNDLE,
    ]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("seed000_route_check", out);
}

#[test]
fn proxy_config_on_a_bundle_pod() {
    let (code, out, err) = meshtrace(&[
        "proxy-config",
        "listeners",
        "istio-ingressgateway",
        "--bundle",
        BUNDLE,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Route: https.8081.https.knative-local-gateway.knative-serving"),
        "{out}"
    );
    assert!(out.contains("SNI: *.apps.mycluster.example.com"), "{out}");
    let (code, out, _) = meshtrace(&[
        "proxy-config",
        "routes",
        "istio-system/istio-ingressgateway-64694db8d5-zmcc7",
        "--bundle",
        BUNDLE,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("test-predictor-ingress.aiproject"), "{out}");
    let (code, _, err) = meshtrace(&["proxy-config", "routes", "nosuchpod", "--bundle", BUNDLE]);
    assert_eq!(code, 2);
    assert!(err.contains("no config dump for pod"), "{err}");
}

#[test]
fn simulation_and_tables_never_panic_on_odd_values() {
    use meshtrace::proxyconfig as pc;
    use meshtrace::routesim::{Request, simulate};
    use meshtrace_parsers::configdump::ConfigDump;
    let text = std::fs::read_to_string(format!(
        "{BUNDLE}/config_dump/istio-system/istio-ingressgateway-64694db8d5-zmcc7.json"
    ))
    .unwrap();
    let bytes = text.as_bytes();
    let req = Request {
        host: "test-aiproject.apps.mycluster.example.com".into(),
        path: "/".into(),
        method: "GET".into(),
        port: Some(8443),
        ..Request::default()
    };
    for pos in (0..bytes.len()).step_by(197) {
        let mut m = bytes.to_vec();
        if m[pos].is_ascii_alphanumeric() {
            m[pos] = if m[pos].is_ascii_digit() { b'7' } else { b'x' };
        }
        let Ok(d) = ConfigDump::parse(&String::from_utf8_lossy(&m)) else {
            continue;
        };
        let f = pc::Filter::default();
        let _ = pc::listeners(&d, &f, true).render();
        let _ = pc::routes(&d, &f, true).render();
        let _ = pc::clusters(&d, &f, true).render();
        let _ = pc::endpoints(&d, &f, true).render();
        let _ = simulate(&d, "p", &req);
    }
}
