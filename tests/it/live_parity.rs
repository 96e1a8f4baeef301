//! Live parity: explain and proxy-config live, live trace citing the same configuration as offline.
//!
//! Against the fake API server loaded with example and lab bundles (real Envoy config dumps):
//! live `trace` fetches the config dumps of the proxies on the request's path (only those) and
//! gives the verdict an offline trace of the full bundle gives, citations included; without the
//! opt-in port-forward role it says so in one sentence and gives the verdict without them.
//! `proxy-config <pod>` fetched live prints what it prints from the same dump file, and
//! `explain --live` what `explain` prints on the same log files.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common;
use crate::fake_apiserver::rbac::Rbac;
use crate::fake_apiserver::{FakeApiServer, FakeConfig};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    common::meshtrace()
        .args(args)
        .env("HOME", "/nonexistent-meshtrace-test")
        .output()
        .expect("run meshtrace")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output, what: &str) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

/// The verdict of `trace -o json`: everything but where each line was read.
fn verdict(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(hops) = v.get_mut("hops").and_then(Value::as_array_mut) {
        for h in hops {
            h.as_object_mut().map(|m| m.remove("evidence"));
        }
    }
    for k in ["notes", "query"] {
        v.as_object_mut().map(|m| m.remove(k));
    }
    v
}

fn rbac(opt_in: &[&str]) -> Rbac {
    let mut text = std::fs::read_to_string(root().join("docs/rbac.yaml")).unwrap();
    for f in opt_in {
        text.push_str("\n---\n");
        text.push_str(
            &std::fs::read_to_string(root().join(format!("deploy/rbac/{f}.yaml"))).unwrap(),
        );
    }
    Rbac::from_yaml(&text, |_| true)
}

/// (bundle, request, namespace of the model).
fn trace_cases() -> Vec<(PathBuf, String, &'static str)> {
    let mut v = vec![(
        root().join("testdata/bundles/rhoai-400-app-error"),
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9".to_string(),
        "aiproject",
    )];
    for lab in [
        "no-route-8443",
        "plaintext-sidecar-to-strict",
        "mtls-to-no-sidecar",
        "rbac-deny-named",
    ] {
        let dir = root().join("testdata/lab").join(lab);
        let e: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap())
                .unwrap();
        v.push((
            dir,
            e["request_id"].as_str().unwrap().to_string(),
            "aiproject",
        ));
    }
    v
}

#[test]
fn live_trace_cites_the_configuration_an_offline_trace_cites() {
    let mut dump_citations = 0;
    for (bundle, id, ns) in trace_cases() {
        let what = bundle.display().to_string();
        let offline = run(&[
            "trace",
            &id,
            "--bundle",
            bundle.to_str().unwrap(),
            "-o",
            "json",
        ]);
        let fake = FakeApiServer::start(&bundle, FakeConfig::default());
        let kc = fake.kubeconfig().to_str().unwrap();
        let live = run(&["trace", &id, "--kubeconfig", kc, "-n", ns, "-o", "json"]);
        assert_eq!(
            offline.status.code(),
            live.status.code(),
            "{what}: {}",
            stderr(&live)
        );
        let (a, b) = (json(&offline, &what), json(&live, &what));
        assert_eq!(verdict(&a), verdict(&b), "{what}\n{}", stderr(&live));
        // Citations from config dumps (listeners, routes, clusters) are among them somewhere.
        dump_citations += a["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| {
                let o = o.as_str().unwrap();
                o.starts_with("Listener/")
                    || o.starts_with("RouteConfiguration/")
                    || o.starts_with("Cluster/")
            })
            .count();
        // Only the proxies on the path were port-forwarded, each once.
        let path_pods: Vec<String> = a["hops"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["pod"].as_str().map(str::to_string))
            .collect();
        let pf: Vec<String> = fake
            .requests()
            .into_iter()
            .filter(|r| r.contains("/portforward"))
            .collect();
        assert!(!pf.is_empty(), "{what}: no config dump fetched");
        for r in &pf {
            assert!(
                path_pods.iter().any(|p| r.contains(&format!("/pods/{p}/"))),
                "{what}: port-forward to a pod off the path: {r}"
            );
        }
        let mut distinct = pf.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            pf.len(),
            "{what}: a dump fetched twice: {pf:?}"
        );
    }
    assert!(
        dump_citations >= 3,
        "the cases cite config dumps: {dump_citations}"
    );
}

#[test]
fn without_the_port_forward_role_one_sentence_and_the_verdict_without_dump_citations() {
    let lab = root().join("testdata/lab/no-route-8443");
    let e: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.join("expect.json")).unwrap()).unwrap();
    let id = e["request_id"].as_str().unwrap();
    // Offline, the same bundle without its config dumps.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("b");
    common::copy_dir(&lab, &copy);
    std::fs::remove_dir_all(copy.join("config_dump")).unwrap();
    let offline = run(&[
        "trace",
        id,
        "--bundle",
        copy.to_str().unwrap(),
        "-o",
        "json",
    ]);

    let fake = FakeApiServer::start(
        &lab,
        FakeConfig {
            rbac: Some(rbac(&[])),
            ..FakeConfig::default()
        },
    );
    let kc = fake.kubeconfig().to_str().unwrap();
    let live = run(&[
        "trace",
        id,
        "--kubeconfig",
        kc,
        "-n",
        "aiproject",
        "-o",
        "json",
    ]);
    let err = stderr(&live);
    assert_eq!(live.status.code(), Some(1), "{err}");
    let forbidden: Vec<&str> = err.lines().filter(|l| l.contains("forbidden")).collect();
    assert_eq!(forbidden.len(), 1, "{err}");
    assert!(
        forbidden[0].contains("pods/portforward")
            && forbidden[0].contains("deploy/rbac/config-dump.yaml"),
        "{err}"
    );
    let v = json(&live, "read-only");
    assert_eq!(verdict(&json(&offline, "offline")), verdict(&v));
    assert!(
        !v["objects"].to_string().contains("RouteConfiguration/"),
        "{}",
        v["objects"]
    );
    // With --no-config-dump nothing is tried and nothing is said.
    let quiet = run(&[
        "trace",
        id,
        "--kubeconfig",
        kc,
        "-n",
        "aiproject",
        "-o",
        "json",
        "--no-config-dump",
    ]);
    assert!(!stderr(&quiet).contains("forbidden"), "{}", stderr(&quiet));
    assert_eq!(verdict(&json(&quiet, "quiet")), verdict(&v));
}

#[test]
fn proxy_config_live_prints_what_the_dump_file_gives() {
    let bundle = root().join("testdata/bundles/rhoai-400-app-error");
    let fake = FakeApiServer::start(&bundle, FakeConfig::default());
    let kc = fake.kubeconfig().to_str().unwrap();
    let dumps = [
        ("istio-system", "istio-ingressgateway-64694db8d5-zmcc7"),
        ("knative-serving", "activator-5b7c9f8d6-h2xqp"),
        (
            "aiproject",
            "test-predictor-00001-deployment-bfc57c85b-ns2vj",
        ),
    ];
    for (ns, pod) in dumps {
        let file = bundle.join(format!("config_dump/{ns}/{pod}.json"));
        let file = file.to_str().unwrap();
        for kind in ["routes", "clusters", "listeners", "endpoints", "all"] {
            for out in ["table", "json"] {
                let offline = run(&[
                    "proxy-config",
                    kind,
                    file,
                    "-o",
                    out,
                    "--now",
                    "2024-06-03T09:14:02Z",
                ]);
                let live = run(&[
                    "proxy-config",
                    kind,
                    pod,
                    "-n",
                    ns,
                    "--kubeconfig",
                    kc,
                    "-o",
                    out,
                    "--now",
                    "2024-06-03T09:14:02Z",
                ]);
                assert_eq!(offline.status.code(), Some(0), "{}", stderr(&offline));
                assert_eq!(
                    live.status.code(),
                    Some(0),
                    "{pod} {kind}: {}",
                    stderr(&live)
                );
                if out == "json" {
                    assert_eq!(
                        json(&offline, file)["config"],
                        json(&live, pod)["config"],
                        "{pod} {kind} -o json"
                    );
                } else {
                    assert_eq!(
                        String::from_utf8_lossy(&offline.stdout),
                        String::from_utf8_lossy(&live.stdout),
                        "{pod} {kind}"
                    );
                }
            }
        }
    }
    // NS/POD and a unique prefix name the same pod.
    let file = bundle.join("config_dump/istio-system/istio-ingressgateway-64694db8d5-zmcc7.json");
    let want = run(&["proxy-config", "routes", file.to_str().unwrap()]).stdout;
    for target in [
        "istio-system/istio-ingressgateway-64694db8d5-zmcc7",
        "istio-system/istio-ingressgateway",
    ] {
        let o = run(&["proxy-config", "routes", target, "--kubeconfig", kc]);
        assert_eq!(o.stdout, want, "{target}: {}", stderr(&o));
    }
    // A pod that does not exist: one sentence, exit 2.
    let o = run(&[
        "proxy-config",
        "routes",
        "nothing-here",
        "-n",
        "aiproject",
        "--kubeconfig",
        kc,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("no pod nothing-here in namespace aiproject"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );
}

#[test]
fn proxy_config_live_needs_the_port_forward_role() {
    let bundle = root().join("testdata/bundles/rhoai-400-app-error");
    let fake = FakeApiServer::start(
        &bundle,
        FakeConfig {
            rbac: Some(rbac(&[])),
            ..FakeConfig::default()
        },
    );
    let kc = fake.kubeconfig().to_str().unwrap();
    let o = run(&[
        "proxy-config",
        "routes",
        "istio-ingressgateway-64694db8d5-zmcc7",
        "-n",
        "istio-system",
        "--kubeconfig",
        kc,
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(o.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("pods/portforward") && err.contains("deploy/rbac/config-dump.yaml"),
        "{err}"
    );
    // With the opt-in role it works.
    let fake = FakeApiServer::start(
        &bundle,
        FakeConfig {
            rbac: Some(rbac(&["config-dump"])),
            ..FakeConfig::default()
        },
    );
    let o = run(&[
        "proxy-config",
        "routes",
        "istio-ingressgateway-64694db8d5-zmcc7",
        "-n",
        "istio-system",
        "--kubeconfig",
        fake.kubeconfig().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Input names of `explain -o json` (also inside summaries), the bundle's `logs/` folder cut
/// off: `ns/pod/container.log`, as live explain names them.
fn normalize_inputs(v: &mut Value, prefix: &str) {
    match v {
        Value::String(s) => *s = s.replace(prefix, ""),
        Value::Array(a) => a.iter_mut().for_each(|x| normalize_inputs(x, prefix)),
        Value::Object(m) => m.values_mut().for_each(|x| normalize_inputs(x, prefix)),
        _ => {}
    }
}

#[test]
fn explain_live_equals_explain_on_the_same_lines() {
    for (bundle, ns) in [
        ("rhoai-400-app-error", "aiproject"),
        ("kind-rbac-403", "default"),
        ("activator-503-scale-from-zero", "kserve-test"),
    ] {
        let src = root().join("testdata/bundles").join(bundle);
        let fake = FakeApiServer::start(&src, FakeConfig::default());
        let kc = fake.kubeconfig().to_str().unwrap();
        let live = run(&[
            "explain",
            "--live",
            "--kubeconfig",
            kc,
            "-n",
            ns,
            "-o",
            "json",
        ]);
        assert_eq!(live.status.code(), Some(0), "{bundle}: {}", stderr(&live));
        let lv = json(&live, bundle);
        // The logs it read, as ns/pod/container.log: the same files of the bundle, in order.
        let mut names: Vec<String> = Vec::new();
        for r in lv["records"]
            .as_array()
            .unwrap()
            .iter()
            .chain(lv["skipped"].as_array().unwrap())
        {
            let n = r["input"].as_str().unwrap().to_string();
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names.sort();
        assert!(names.len() >= 2, "{bundle}: {names:?}");
        let files: Vec<String> = names
            .iter()
            .map(|n| src.join("logs").join(n).display().to_string())
            .collect();
        let mut args: Vec<&str> = vec!["explain"];
        args.extend(files.iter().map(String::as_str));
        args.extend(["-o", "json"]);
        // The bundle's manifest gives the gateway's format; the same lines are auto-detected.
        let offline = run(&args);
        assert_eq!(offline.status.code(), Some(0), "{}", stderr(&offline));
        let mut ov = json(&offline, bundle);
        normalize_inputs(&mut ov, &format!("{}/", src.join("logs").display()));
        let mut lv = lv;
        normalize_inputs(&mut lv, &format!("{}/", src.join("logs").display()));
        // Formats can be named differently (the mesh's format vs. the detected built-in of the
        // same text): the fields read must be the same.
        for v in [&mut ov, &mut lv] {
            for r in v["records"].as_array_mut().unwrap() {
                r.as_object_mut().map(|m| m.remove("format"));
            }
        }
        assert_eq!(ov["requests"], lv["requests"], "{bundle}: requests");
        assert_eq!(ov["records"], lv["records"], "{bundle}: records");
        assert_eq!(ov["skipped"], lv["skipped"], "{bundle}: skipped");
        // The table too names each request's status and cause the same way.
        let t = run(&["explain", "--kubeconfig", kc, "-n", ns]);
        assert_eq!(
            t.status.code(),
            Some(0),
            "{bundle}: -n implies --live: {}",
            stderr(&t)
        );
    }
}
