//! `meshtrace collect` against the fake API server loaded with each example bundle: the
//! collected bundle holds the same objects and the same logs as the source; config dumps come
//! through the WebSocket port-forward, or through exec when the port-forward is refused; the
//! `.tar.gz` form reads back the same.

use crate::common;
use common::copy_dir;

use crate::fake_apiserver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use fake_apiserver::{FakeApiServer, FakeConfig};
use meshtrace::source::bundle::Bundle;

fn bundles() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("bundles")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        // Bundles in meshtrace's layout only: the bug-report and must-gather ones re-lay
        // kind-rbac-403's evidence as those tools write it, which `collect` never does.
        .filter(|p| p.join("logs").is_dir())
        .collect();
    v.sort();
    v
}

fn meshtrace(args: &[&str]) -> Output {
    common::meshtrace()
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent-meshtrace-test")
        .output()
        .expect("run meshtrace")
}

fn collect(fake: &FakeApiServer, extra: &[&str], out: &Path) -> Output {
    let mut args = vec![
        "collect",
        "--kubeconfig",
        fake.kubeconfig().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = meshtrace(&args);
    assert!(
        o.status.success(),
        "collect failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `apiVersion|Kind/ns/name` → object; the first copy wins, as in the bundle reader.
fn objects(b: &Bundle) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    for o in &b.objects {
        m.entry(format!("{}|{}", o.api_version, o.reference()))
            .or_insert_with(|| o.value.clone());
    }
    m
}

fn logs(b: &Bundle) -> BTreeMap<String, Vec<u8>> {
    b.logs
        .iter()
        .map(|l| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut l.source.open().expect("open log"), &mut bytes)
                .expect("read log");
            (
                format!("{}/{}/{}/{}", l.namespace, l.pod, l.container, l.previous),
                bytes,
            )
        })
        .collect()
}

/// ConfigMaps meshtrace does not read (it takes only the MeshConfig `istio*` and Knative
/// `config-*` ones from the control-plane and activator namespaces).
fn not_collected(key: &str) -> bool {
    key.starts_with("v1|ConfigMap/")
        && !key.contains("/istio")
        && !key.contains("/config-")
        && !key.contains("/ratelimit-config")
}

#[test]
fn collect_reproduces_every_example_bundle() {
    for src in bundles() {
        let name = src.file_name().unwrap().to_string_lossy().to_string();
        let fake = FakeApiServer::start(&src, FakeConfig::default());
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("bundle");
        collect(&fake, &["-A", "--all-containers"], &out);
        let a = Bundle::open(&src).expect("source");
        let b = Bundle::open(&out).expect("collected bundle opens");
        assert!(b.problems.is_empty(), "{name}: {:?}", b.problems);
        let (oa, ob) = (objects(&a), objects(&b));
        for (k, v) in &oa {
            if not_collected(k) {
                assert!(!ob.contains_key(k), "{name}: {k} should not be collected");
                continue;
            }
            assert_eq!(ob.get(k), Some(v), "{name}: object {k}");
        }
        for k in ob.keys() {
            assert!(oa.contains_key(k), "{name}: unexpected object {k}");
        }
        // Logs of pods the API server does not know (broken-bundle lost one from pods.json)
        // cannot be asked for.
        let pods: Vec<String> = oa
            .keys()
            .filter_map(|k| k.strip_prefix("v1|Pod/"))
            .map(str::to_string)
            .collect();
        let mut la = logs(&a);
        la.retain(|k, _| pods.iter().any(|p| k.starts_with(&format!("{p}/"))));
        let lb = logs(&b);
        assert_eq!(
            la.keys().collect::<Vec<_>>(),
            lb.keys().collect::<Vec<_>>(),
            "{name}: log files"
        );
        for (k, v) in &la {
            assert!(lb.get(k) == Some(v), "{name}: log {k} differs");
        }
        let m = b.manifest.expect("manifest");
        assert_eq!(m.version, Some(1));
        assert_eq!(
            m.log_formats.get("default").map(String::as_str),
            Some("auto")
        );
        assert!(m.cluster.unwrap_or_default().contains("context fake-ctx"));
    }
}

#[test]
fn archive_reads_back_like_the_folder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/kind-rbac-403");
    let fake = FakeApiServer::start(&src, FakeConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("b.tar.gz");
    let o = meshtrace(&[
        "collect",
        "--kubeconfig",
        fake.kubeconfig().to_str().unwrap(),
        "-A",
        "--no-config-dump",
        "--archive",
        archive.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b = Bundle::open(&archive).expect("archive opens");
    let a = Bundle::open(&src).unwrap();
    assert!(logs(&a) == logs(&b), "logs differ");
    assert_eq!(objects(&a).len(), objects(&b).len());
    assert!(
        !fake.requests().iter().any(|r| r.contains("/portforward")),
        "--no-config-dump must not port-forward"
    );
}

/// A copy of a bundle with config dumps for the gateway (served by a fake Envoy admin).
fn with_dump(src: &Path, dst: &Path, ns: &str, pod: &str) -> String {
    copy_dir(src, dst);
    let dump = format!(
        "{{\"configs\":[{{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\"bootstrap\":{{\"node\":{{\"id\":\"router~10.0.0.1~{pod}.{ns}~{ns}.svc.cluster.local\"}}}}}}]}}"
    );
    let p = dst.join("config_dump").join(ns);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join(format!("{pod}.json")), &dump).unwrap();
    dump
}

#[test]
fn config_dump_through_port_forward_and_exec_fallback() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/kind-rbac-403");
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("src");
    let (ns, pod) = ("istio-system", "istio-ingressgateway-5c7d8b7f9-x2k4p");
    let dump = with_dump(&src, &copy, ns, pod);
    for refused in [false, true] {
        let fake = FakeApiServer::start(
            &copy,
            FakeConfig {
                portforward_refused: refused,
                ..FakeConfig::default()
            },
        );
        let out = tmp.path().join(format!("out-{refused}"));
        let o = collect(&fake, &["-n", "default"], &out);
        let got =
            std::fs::read_to_string(out.join("config_dump").join(ns).join(format!("{pod}.json")))
                .expect("config dump written");
        assert_eq!(got, dump);
        let reqs = fake.requests();
        assert!(
            reqs.iter()
                .any(|r| r.contains(&format!("/pods/{pod}/portforward?"))
                    && r.contains("ports=15000"))
        );
        assert_eq!(
            reqs.iter()
                .any(|r| r.contains(&format!("/pods/{pod}/exec?"))),
            refused,
            "exec only when the port-forward fails"
        );
        // The predictor has no admin: both ways fail and that is one problem, not an error.
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(
                "bert-model-predictor-00001-deployment-7d8c9b5f4-lq8zt: no Envoy config dump"
            ),
            "{err}"
        );
        let b = Bundle::open(&out).unwrap();
        assert_eq!(b.config_dumps.len(), 1);
    }
}

#[test]
fn api_calls_run_concurrently() {
    let src = tempfile::tempdir().unwrap();
    fake_apiserver::synthetic_bundle(src.path(), 30, 20);
    let fake = FakeApiServer::start(
        src.path(),
        FakeConfig {
            latency: std::time::Duration::from_millis(100),
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    collect(
        &fake,
        &["-n", "bench", "--no-config-dump"],
        &tmp.path().join("b"),
    );
    let took = t.elapsed();
    // One call at a time: 30 logs alone take 3 s.
    assert!(took < std::time::Duration::from_millis(2500), "{took:?}");
    assert_eq!(Bundle::open(&tmp.path().join("b")).unwrap().logs.len(), 30);
}

#[test]
fn ambient_namespace_brings_the_ztunnels_of_its_nodes() {
    // Only `-n default` is asked for; its Namespace is labelled ambient, so the ztunnel pods
    // (istio-system, app=ztunnel) on the nodes of default's pods are collected too.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/ambient-l4-deny");
    let fake = FakeApiServer::start(&src, FakeConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let o = collect(&fake, &["-n", "default"], &out);
    let err = String::from_utf8_lossy(&o.stderr);
    let b = Bundle::open(&out).expect("collected bundle opens");
    let got: Vec<String> = logs(&b).into_keys().collect();
    for z in ["ztunnel-4bx7k", "ztunnel-9qkzm"] {
        assert!(
            got.iter()
                .any(|k| k.starts_with(&format!("istio-system/{z}/istio-proxy/"))),
            "{z} not collected: {got:?}\n{err}"
        );
    }
    // And the collected bundle traces the denied connection as the source did.
    let t = meshtrace(&["failures", "--bundle", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(
        text.contains("rbac_denied") || text.contains("denied"),
        "{text}"
    );
}

#[test]
fn an_openshift_route_brings_the_router_access_log_and_role_containers() {
    // KServe Standard mode behind the OpenShift router: `-n aiproject` holds a Route admitted by
    // the `default` IngressController, whose router pod (openshift-ingress) logs access to its
    // `logs` sidecar. Without `--container`, that log is collected besides the proxies' (the
    // router's own `router` container is not); with `-c istio-proxy`, only what was asked.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/kserve-standard-router-504"),
        &src,
    );
    let router = "router-default-6d5c8b7f9-x2k4p";
    let pods_path = src.join("pods.json");
    let mut pods: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pods_path).unwrap()).unwrap();
    pods["items"].as_array_mut().unwrap().push(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": router, "namespace": "openshift-ingress",
            "labels": {"ingresscontroller.operator.openshift.io/deployment-ingresscontroller": "default"}},
        "spec": {"nodeName": "worker-0", "containers": [{"name": "router"}, {"name": "logs"}]},
        "status": {"phase": "Running", "podIP": "10.128.2.9"}
    }));
    std::fs::write(&pods_path, serde_json::to_vec_pretty(&pods).unwrap()).unwrap();
    std::fs::write(
        src.join("resources/aiproject/granite-route.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "apiVersion": "v1", "kind": "List", "items": [{
                "apiVersion": "route.openshift.io/v1", "kind": "Route",
                "metadata": {"name": "granite", "namespace": "aiproject"},
                "spec": {"host": "granite-aiproject.apps.example.com",
                    "to": {"kind": "Service", "name": "granite-predictor"}},
                "status": {"ingress": [{"routerName": "default", "host": "granite-aiproject.apps.example.com"}]}
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    let logs_dir = src.join("logs/openshift-ingress").join(router);
    std::fs::create_dir_all(&logs_dir).unwrap();
    let access = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/explain/openshift-router.log"),
    )
    .unwrap();
    std::fs::write(logs_dir.join("logs.log"), &access).unwrap();
    std::fs::write(
        logs_dir.join("router.log"),
        "I1203 10:00:00.000000       1 router.go:669] router \"msg\"=\"router reloaded\"\n",
    )
    .unwrap();

    let fake = FakeApiServer::start(&src, FakeConfig::default());
    let out = tmp.path().join("bundle");
    let o = collect(&fake, &["-n", "aiproject"], &out);
    let err = String::from_utf8_lossy(&o.stderr);
    let b = Bundle::open(&out).expect("collected bundle opens");
    let got: Vec<String> = logs(&b).into_keys().collect();
    let router_logs: Vec<&String> = got
        .iter()
        .filter(|k| k.starts_with(&format!("openshift-ingress/{router}/")))
        .collect();
    assert!(
        router_logs.iter().any(|k| k.contains("/logs/")),
        "router access log not collected: {got:?}\n{err}"
    );
    assert!(
        !router_logs.iter().any(|k| k.contains("/router/")),
        "{got:?}"
    );
    // The collected bundle lists the router's failures.
    let f = meshtrace(&["failures", "--bundle", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&f.stdout);
    assert!(
        text.contains("upstream_timeout") && text.contains("OpenShift router"),
        "{text}"
    );

    // Containers named: only those.
    let out2 = tmp.path().join("bundle2");
    collect(&fake, &["-n", "aiproject", "-c", "istio-proxy"], &out2);
    let b2 = Bundle::open(&out2).expect("collected bundle opens");
    assert!(
        !logs(&b2)
            .keys()
            .any(|k| k.starts_with("openshift-ingress/")),
        "{:?}",
        logs(&b2).keys().collect::<Vec<_>>()
    );
}
