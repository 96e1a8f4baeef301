//! Every error path of live collection against the fake API server: a 403 on logs in one
//! namespace, a namespace-only Role (403 on cluster-wide lists), a pod that disappears
//! mid-collection, missing CRDs, an unreachable API server, a bad kubeconfig; and the log
//! parameters on the wire (`sinceTime`, `sinceSeconds`, `previous`, `timestamps` with
//! `--until`, label selectors), a large log streamed to disk.

use crate::common;
use common::copy_dir;

use crate::fake_apiserver;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, FakeConfig, Forbid};
use meshtrace::source::bundle::Bundle;

fn bundle(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bundles")
        .join(name)
}

fn meshtrace(args: &[&str]) -> Output {
    common::meshtrace()
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent-meshtrace-test")
        .output()
        .expect("run meshtrace")
}

fn collect(fake: &FakeApiServer, extra: &[&str]) -> (Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    let mut args = vec![
        "collect",
        "--kubeconfig",
        fake.kubeconfig().to_str().unwrap(),
        "--no-config-dump",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (meshtrace(&args), tmp)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn log_keys(dir: &Path) -> Vec<String> {
    let b = Bundle::open(&dir.join("b")).expect("bundle");
    let mut v: Vec<String> = b
        .logs
        .iter()
        .map(|l| format!("{}/{}/{}", l.namespace, l.pod, l.container))
        .collect();
    v.sort();
    v
}

#[test]
fn forbidden_logs_in_one_namespace_is_one_sentence_and_collection_goes_on() {
    let fake = FakeApiServer::start(
        &bundle("rhoai-400-app-error"),
        FakeConfig {
            forbid: vec![Forbid {
                verb: "get",
                resource: "pods/log",
                namespace: Some("aiproject".into()),
            }],
            ..FakeConfig::default()
        },
    );
    let (o, tmp) = collect(&fake, &["-n", "aiproject"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("forbidden")).collect();
    assert_eq!(lines.len(), 1, "one sentence for the namespace: {err}");
    assert!(
        lines[0].contains("may not get pods/log in namespace aiproject"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("were not collected"), "{}", lines[0]);
    // The gateway and activator logs are still there (the activator's own log too: taken by
    // its role when no --container is given).
    assert_eq!(
        log_keys(tmp.path()),
        [
            "istio-system/istio-ingressgateway-64694db8d5-zmcc7/istio-proxy",
            "knative-serving/activator-5b7c9f8d6-h2xqp/activator",
            "knative-serving/activator-5b7c9f8d6-h2xqp/istio-proxy"
        ]
    );
    // The manifest keeps the sentence too.
    let m = std::fs::read_to_string(tmp.path().join("b/meshtrace-bundle.json")).unwrap();
    assert!(m.contains("may not get pods/log in namespace aiproject"));
}

#[test]
fn namespace_only_role_falls_back_to_namespaced_lists() {
    let fake = FakeApiServer::start(
        &bundle("rhoai-400-app-error"),
        FakeConfig {
            forbid: vec![Forbid {
                verb: "list",
                resource: "pods",
                namespace: Some(String::new()),
            }],
            ..FakeConfig::default()
        },
    );
    let o = meshtrace(&[
        "trace",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "--kubeconfig",
        fake.kubeconfig().to_str().unwrap(),
        "-n",
        "aiproject",
    ]);
    let err = stderr(&o);
    assert!(err.contains("may not list pods cluster-wide"), "{err}");
    assert!(err.contains("listed only in namespace(s)"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Verdict: 400 app_error at hop 5"),
        "{out}\n{err}"
    );
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/knative-serving/pods?")),
        "namespaced fallback list"
    );
}

#[test]
fn pod_that_disappears_mid_collection_is_reported() {
    let fake = FakeApiServer::start(
        &bundle("kind-rbac-403"),
        FakeConfig {
            vanish: vec![(
                "default".into(),
                "bert-model-predictor-00001-deployment-7d8c9b5f4-lq8zt".into(),
            )],
            ..FakeConfig::default()
        },
    );
    let (o, tmp) = collect(&fake, &["-n", "default"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "pod default/bert-model-predictor-00001-deployment-7d8c9b5f4-lq8zt disappeared during collection (404)"
        ),
        "{err}"
    );
    assert_eq!(
        log_keys(tmp.path()),
        ["istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy"]
    );
    // Still listed, so the topology knows it.
    let pods = std::fs::read_to_string(tmp.path().join("b/pods.json")).unwrap();
    assert!(pods.contains("bert-model-predictor-00001-deployment-7d8c9b5f4-lq8zt"));
}

#[test]
fn missing_crds_are_reported_not_fatal() {
    let fake = FakeApiServer::start(&bundle("seldon-canary-mesh-gateway"), FakeConfig::default());
    let (o, _tmp) = collect(&fake, &["-n", "seldon"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("not installed: "), "{err}");
    assert!(
        err.contains("KServe (serving.kserve.io: no InferenceService)"),
        "{err}"
    );
    assert!(
        err.contains("Knative Serving (serving.knative.dev"),
        "{err}"
    );
    assert!(err.contains("SeldonDeployment seldon/iris →"), "{err}");

    // Hide Istio's networking API too: still a bundle, with what could be found.
    let fake = FakeApiServer::start(
        &bundle("kind-rbac-403"),
        FakeConfig {
            absent_groups: vec!["networking.istio.io".into(), "serving.kserve.io".into()],
            ..FakeConfig::default()
        },
    );
    let (o, tmp) = collect(&fake, &["-n", "default"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("Istio (networking.istio.io: no Gateway/VirtualService"),
        "{err}"
    );
    assert!(
        err.contains("no Gateway selector matched; pods labelled istio=ingressgateway"),
        "label fallback: {err}"
    );
    assert!(log_keys(tmp.path()).len() >= 2);
}

#[test]
fn unreachable_api_server_is_a_clear_quick_error() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let kc = tmp.path().join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: prod\n  context:\n    cluster: gone\n    user: u\ncurrent-context: prod\n"
        ),
    )
    .unwrap();
    let start = Instant::now();
    let o = meshtrace(&[
        "trace",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    assert!(start.elapsed() < Duration::from_secs(5), "quick exit");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "cannot reach the Kubernetes API server at http://127.0.0.1:{port} (context prod)"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // No configuration at all.
    let o = meshtrace(&["collect", "-o", tmp.path().join("x").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot load the Kubernetes configuration"));

    // An unknown context.
    let o = meshtrace(&[
        "collect",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("(context nope)"), "{}", stderr(&o));
}

#[test]
fn log_window_and_selectors_on_the_wire() {
    let fake = FakeApiServer::start(&bundle("rhoai-400-app-error"), FakeConfig::default());
    let (o, tmp) = collect(
        &fake,
        &[
            "-n",
            "aiproject",
            "-l",
            "component=predictor",
            "--since-time",
            "2024-06-03T09:12:31Z",
            "--until",
            "2024-06-03T09:12:32Z",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/aiproject/pods?")
                && r.contains("labelSelector=component%3Dpredictor")),
        "{reqs:#?}"
    );
    let logs: Vec<&String> = reqs.iter().filter(|r| r.contains("/log?")).collect();
    assert!(!logs.is_empty());
    for r in &logs {
        assert!(r.contains("sinceTime=2024-06-03T09%3A12%3A31Z"), "{r}");
        assert!(r.contains("timestamps=true"), "{r}");
        // The proxies' logs, and the role containers taken without --container.
        assert!(
            ["istio-proxy", "queue-proxy", "activator"]
                .iter()
                .any(|c| r.contains(&format!("container={c}&"))),
            "{r}"
        );
    }
    // -l narrowed the namespace to the predictor: the client pod's log is not taken.
    let keys = log_keys(tmp.path());
    assert!(!keys.iter().any(|k| k.contains("model-client")), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.contains("test-predictor")),
        "{keys:?}"
    );
    // Every line kept is inside the window, without the timestamp prefix.
    let b = tmp.path().join("b/logs");
    for k in &keys {
        let text = std::fs::read_to_string(b.join(format!("{k}.log"))).unwrap();
        for line in text.lines() {
            assert!(!line.starts_with("2024-06-03T"), "prefix kept: {line}");
            if let Some(t) = line.strip_prefix('[') {
                assert!(
                    ("2024-06-03T09:12:31".."2024-06-03T09:12:32.001").contains(&t),
                    "{line}"
                );
            }
        }
    }

    let (o, _tmp) = collect(
        &fake,
        &[
            "-n",
            "aiproject",
            "--since",
            "15m",
            "--pod",
            "model-client-6d5f7b9c8-p2m4x",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("/pods/model-client-6d5f7b9c8-p2m4x/log?")
                && r.contains("sinceSeconds=900")),
    );
    let (o, _tmp) = collect(&fake, &["-n", "aiproject", "--pod", "nope"]);
    assert!(stderr(&o).contains("--pod nope: no pod nope in namespace aiproject"));
}

#[test]
fn previous_container_log_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_dir(&bundle("kind-rbac-403"), &src);
    // The gateway restarted once: its previous container's log is in the bundle.
    let pods_path = src.join("pods.json");
    let mut pods: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pods_path).unwrap()).unwrap();
    for p in pods["items"].as_array_mut().unwrap() {
        if p["metadata"]["name"] == "istio-ingressgateway-5c7d8b7f9-x2k4p" {
            p["status"]["containerStatuses"] =
                serde_json::json!([{"name": "istio-proxy", "restartCount": 1}]);
        }
    }
    std::fs::write(&pods_path, pods.to_string()).unwrap();
    let prev = "2024-04-25T20:00:00.000000Z\tinfo\tEnvoy proxy is NOT ready\n";
    std::fs::write(
        src.join("logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.previous.log"),
        prev,
    )
    .unwrap();
    let fake = FakeApiServer::start(&src, FakeConfig::default());
    let (o, out) = collect(&fake, &["-n", "default"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got =
        std::fs::read_to_string(out.path().join(
            "b/logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.previous.log",
        ))
        .unwrap();
    assert_eq!(got, prev);
    assert!(fake.requests().iter().any(|r| r.contains("previous=true")));
}

#[test]
fn large_log_is_streamed_to_disk() {
    let size: u64 = 48 * 1024 * 1024 + 17;
    let fake = fake_with_gateway_log(size);
    let (o, tmp) = collect(&fake, &["-n", "default"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = tmp.path().join("b").join(GATEWAY_LOG);
    assert_eq!(std::fs::metadata(p).unwrap().len(), size);
}

/// The gateway's log in the bundle (`kind-rbac-403`'s ingress gateway).
const GATEWAY_LOG: &str = "logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log";

/// The `kind-rbac-403` cluster, its ingress gateway's log `size` bytes of generated lines.
fn fake_with_gateway_log(size: u64) -> FakeApiServer {
    FakeApiServer::start(
        &bundle("kind-rbac-403"),
        FakeConfig {
            generated_logs: vec![(
                (
                    "istio-system".into(),
                    "istio-ingressgateway-5c7d8b7f9-x2k4p".into(),
                    "istio-proxy".into(),
                ),
                size,
            )],
            ..FakeConfig::default()
        },
    )
}

/// `(verb, group, resource)` of an API request path, or `None` for discovery.
fn rbac_of(request: &str) -> Option<(String, String, String)> {
    let path = request.split_whitespace().nth(1)?.split('?').next()?;
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest): (&str, &[&str]) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (g, rest),
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        r => r,
    };
    match rest {
        [] => None,
        [plural] => Some(("list".into(), group.into(), plural.to_string())),
        [plural, _name] => Some(("get".into(), group.into(), plural.to_string())),
        [plural, _name, sub] => {
            let verb = if *sub == "log" { "get" } else { "create" };
            Some((verb.into(), group.into(), format!("{plural}/{sub}")))
        }
        _ => None,
    }
}

#[test]
fn rbac_yaml_allows_every_call_meshtrace_makes() {
    // The read-only set and the opt-in roles (config dumps, -A) together.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("docs/rbac.yaml")).unwrap();
    for f in ["config-dump", "config-dump-exec", "all-namespaces"] {
        text.push_str("\n---\n");
        text.push_str(
            &std::fs::read_to_string(root.join(format!("deploy/rbac/{f}.yaml"))).unwrap(),
        );
    }
    let mut rules: Vec<(String, String, String)> = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
        for r in v["rules"].as_array().into_iter().flatten() {
            for g in r["apiGroups"].as_array().unwrap() {
                for res in r["resources"].as_array().unwrap() {
                    for verb in r["verbs"].as_array().unwrap() {
                        rules.push((
                            verb.as_str().unwrap().into(),
                            g.as_str().unwrap().into(),
                            res.as_str().unwrap().into(),
                        ));
                    }
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles");
    for b in [
        "rhoai-400-app-error",
        "seldon-canary-mesh-gateway",
        "agora-city-ingress-404",
    ] {
        let fake = FakeApiServer::start(&root.join(b), FakeConfig::default());
        let tmp = tempfile::tempdir().unwrap();
        let o = meshtrace(&[
            "collect",
            "--kubeconfig",
            fake.kubeconfig().to_str().unwrap(),
            "-A",
            "-o",
            tmp.path().join("b").to_str().unwrap(),
        ]);
        assert!(o.status.success());
        for r in fake.requests() {
            if let Some(need) = rbac_of(&r) {
                assert!(
                    rules.contains(&need),
                    "docs/rbac.yaml lacks {need:?} for {r}"
                );
            }
        }
    }
}

/// A disk that fills up while logs are streamed into the bundle (here: a file-size limit, see
/// `common::meshtrace_with_file_size_limit`): the log is cut, what was written stays in the
/// bundle and is analysed, and one sentence names the log, the file, the reason and the fix.
/// It said `<path>: File too large (os error 27)` after `not collected:`, as if nothing were
/// kept, with no word on what to do.
#[test]
fn a_full_disk_during_live_collection_is_one_clear_sentence() {
    let fake = fake_with_gateway_log(4 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    let kubeconfig = fake.kubeconfig();
    let kubeconfig = kubeconfig.to_str().unwrap();
    let collect = [
        "collect",
        "--kubeconfig",
        kubeconfig,
        "--no-config-dump",
        "-n",
        "default",
        "-o",
        out.to_str().unwrap(),
    ];
    let failures = ["failures", "--kubeconfig", kubeconfig, "-n", "default"];
    for args in [&collect[..], &failures[..]] {
        let o = common::meshtrace_with_file_size_limit(1024)
            .args(args)
            .env("TMPDIR", tmp.path())
            .env("HOME", "/nonexistent-meshtrace-test")
            .output()
            .unwrap();
        let err = stderr(&o);
        // Partial evidence is a result, as for a forbidden namespace.
        assert_eq!(o.status.code(), Some(0), "{}: {err}", args[0]);
        let full: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("the disk holding the bundle is full"))
            .collect();
        assert_eq!(full.len(), 1, "{}: {err}", args[0]);
        common::assert_mentions(
            full[0],
            &[
                "the istio-proxy log of pod istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p past its first ",
                "istio-proxy.log: File too large",
                "the part written is in the bundle",
                "free space there",
                "`collect -o` or `--archive`",
                "TMPDIR for a temporary bundle",
            ],
        );
    }
    let log = out.join(GATEWAY_LOG);
    let kept = std::fs::metadata(&log).unwrap().len();
    assert!(kept > 0 && kept < 4 << 20, "{kept} bytes kept");
    assert!(
        log_keys(tmp.path())
            .contains(&"istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy".to_string())
    );
    let manifest = std::fs::read_to_string(out.join("meshtrace-bundle.json")).unwrap();
    assert!(manifest.contains("the disk holding the bundle is full"));
}
