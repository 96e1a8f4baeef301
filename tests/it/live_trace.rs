//! `meshtrace trace` without `--bundle` collects from the cluster (here the fake API server
//! loaded with each example bundle) and gives the same answer as the offline trace of the bundle.

use crate::common;

use crate::fake_apiserver;

use std::path::Path;
use std::process::Output;

use fake_apiserver::{FakeApiServer, FakeConfig};
use serde_json::Value;

/// bundle, start, the model's namespace.
const CASES: &[(&str, &str, &str)] = &[
    (
        "rhoai-400-app-error",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "aiproject",
    ),
    (
        "kind-rbac-403",
        "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        "default",
    ),
    (
        "kind-429-ratelimit",
        "9f0c7f3e-5b1a-4c2d-8e6f-2a4b6c8d0e1f",
        "default",
    ),
    ("odh-out-of-mesh-client", "10.134.1.22:48216", "aiproject"),
    (
        "activator-503-scale-from-zero",
        "6a0d3c2e-41f7-4b8a-9e15-7c3b2d1f0a94",
        "kserve-test",
    ),
    (
        "seldon-canary-mesh-gateway",
        "c2f7e8a1-9b3d-4e6f-8a2c-5d7e9f1b3c4a",
        "seldon",
    ),
    (
        "agora-city-ingress-404",
        "0b7e4f19-3c2a-4d8e-b6f1-9a5c3e7d2b80",
        "kserve-test",
    ),
    (
        "broken-bundle",
        "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        "default",
    ),
];

fn meshtrace(args: &[&str]) -> Output {
    common::meshtrace()
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent-meshtrace-test")
        .output()
        .expect("run meshtrace")
}

/// Evidence paths name the bundle folder: keep what follows it.
fn normalize(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(i) = s.find("/logs/") {
                *s = format!("<bundle>{}", &s[i..]);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        Value::Object(m) => m.values_mut().for_each(normalize),
        _ => {}
    }
}

fn json(o: &Output, what: &str) -> Value {
    let mut v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    normalize(&mut v);
    v
}

/// The verdict: what a support engineer acts on.
fn verdict(v: &Value) -> Value {
    let keep = [
        "status",
        "succeeded",
        "origin_hop",
        "cause",
        "summary",
        "fix",
        "objects",
        "citations",
        "request_ids",
    ];
    let mut out = serde_json::Map::new();
    for k in keep {
        out.insert(k.into(), v.get(k).cloned().unwrap_or(Value::Null));
    }
    let hops: Vec<Value> = v
        .get("hops")
        .and_then(Value::as_array)
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let mut h = h.clone();
                    if let Value::Object(m) = &mut h {
                        m.remove("evidence");
                    }
                    h
                })
                .collect()
        })
        .unwrap_or_default();
    out.insert("hops".into(), Value::Array(hops));
    Value::Object(out)
}

#[test]
fn live_trace_equals_offline_trace_for_every_example_bundle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles");
    for (bundle, start, ns) in CASES {
        let src = root.join(bundle);
        let offline = meshtrace(&[
            "trace",
            start,
            "--bundle",
            src.to_str().unwrap(),
            "-o",
            "json",
        ]);
        let fake = FakeApiServer::start(&src, FakeConfig::default());
        let kc = fake.kubeconfig().to_str().unwrap();

        // Every container, every namespace: the whole JSON report is the same.
        let all = meshtrace(&[
            "trace",
            start,
            "--kubeconfig",
            kc,
            "-A",
            "--all-containers",
            "-o",
            "json",
        ]);
        assert_eq!(
            offline.status.code(),
            all.status.code(),
            "{bundle}: exit code (-A)"
        );
        let (mut a, mut b) = (json(&offline, bundle), json(&all, bundle));
        if *bundle == "broken-bundle" {
            // Offline notes report the damaged files; an API server serves whole objects.
            a.as_object_mut().map(|m| m.remove("notes"));
            b.as_object_mut().map(|m| m.remove("notes"));
        }
        assert_eq!(a, b, "{bundle}: -A --all-containers");

        // The everyday form: the model's namespace, the proxies' logs, the path discovered.
        let live = meshtrace(&["trace", start, "--kubeconfig", kc, "-n", ns, "-o", "json"]);
        assert_eq!(
            offline.status.code(),
            live.status.code(),
            "{bundle}: exit code (-n)"
        );
        assert_eq!(
            verdict(&json(&offline, bundle)),
            verdict(&json(&live, bundle)),
            "{bundle}: -n {ns}\n{}",
            String::from_utf8_lossy(&live.stderr)
        );
    }
}

#[test]
fn live_table_output_names_the_origin_hop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/rhoai-400-app-error");
    let fake = FakeApiServer::start(&src, FakeConfig::default());
    let o = meshtrace(&[
        "trace",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "--kubeconfig",
        fake.kubeconfig().to_str().unwrap(),
        "--context",
        "fake-ctx",
        "-n",
        "aiproject",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("Verdict: 400 app_error at hop 5"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Gateway knative-serving/knative-ingress-gateway"),
        "{err}"
    );
    assert!(
        err.contains("Knative activator → knative-serving/activator-5b7c9f8d6-h2xqp"),
        "{err}"
    );
    // Config dumps are fetched for the proxies on the request's path only, once the hops are
    // known: never for the client pod that is not on it.
    let pf: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("/portforward"))
        .collect();
    assert!(!pf.is_empty());
    assert!(!pf.iter().any(|r| r.contains("model-client")), "{pf:?}");
}
