//! `meshtrace trace` on the example bundles of `testdata/bundles/`: the verdict each README
//! promises (origin hop, cause, cited objects), plus snapshots of table and JSON output.

use crate::common;
use common::run_in_repo as run;

use std::path::Path;

use serde_json::Value;

struct Case {
    bundle: &'static str,
    start: &'static str,
    exit: i32,
    hops: usize,
    origin: usize,
    cause: &'static str,
    roles: &'static [&'static str],
    objects: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        bundle: "rhoai-400-app-error",
        start: "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        exit: 1,
        hops: 5,
        origin: 5,
        cause: "app_error",
        roles: &[
            "ingress-gateway",
            "local-gateway",
            "activator",
            "activator",
            "predictor",
        ],
        objects: &["InferenceService/aiproject/test"],
    },
    Case {
        bundle: "rhoai-400-app-error",
        start: "f7beed8d-a4db-4aaa-9292-edbf3e186e29",
        exit: 1,
        hops: 5,
        origin: 5,
        cause: "app_error",
        roles: &[
            "ingress-gateway",
            "local-gateway",
            "activator",
            "activator",
            "predictor",
        ],
        objects: &["InferenceService/aiproject/test"],
    },
    Case {
        bundle: "kind-rbac-403",
        start: "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        exit: 1,
        hops: 1,
        origin: 1,
        cause: "rbac_denied",
        roles: &["ingress-gateway"],
        objects: &["AuthorizationPolicy/istio-system/allow-with-header"],
    },
    Case {
        bundle: "kind-429-ratelimit",
        start: "9f0c7f3e-5b1a-4c2d-8e6f-2a4b6c8d0e1f",
        exit: 1,
        hops: 1,
        origin: 1,
        cause: "rate_limited",
        roles: &["ingress-gateway"],
        objects: &[
            "EnvoyFilter/istio-system/filter-ratelimit",
            "EnvoyFilter/istio-system/filter-ratelimit-svc",
        ],
    },
    Case {
        bundle: "odh-out-of-mesh-client",
        start: "10.134.1.22:48216",
        exit: 1,
        hops: 1,
        origin: 1,
        cause: "missing_sidecar",
        roles: &["local-gateway"],
        objects: &[
            "Gateway/knative-serving/knative-local-gateway",
            "Pod/notebooks/analysis-wb-0",
        ],
    },
    Case {
        bundle: "activator-503-scale-from-zero",
        start: "6a0d3c2e-41f7-4b8a-9e15-7c3b2d1f0a94",
        exit: 1,
        hops: 2,
        origin: 2,
        cause: "activator_error",
        roles: &["local-gateway", "activator"],
        objects: &["Revision/kserve-test/sklearn-iris-predictor-00001"],
    },
    Case {
        bundle: "seldon-canary-mesh-gateway",
        start: "c2f7e8a1-9b3d-4e6f-8a2c-5d7e9f1b3c4a",
        exit: 1,
        hops: 2,
        origin: 2,
        cause: "upstream_reset",
        roles: &["ingress-gateway", "seldon-predictor"],
        objects: &["SeldonDeployment/seldon/iris"],
    },
    Case {
        bundle: "agora-city-ingress-404",
        start: "0b7e4f19-3c2a-4d8e-b6f1-9a5c3e7d2b80",
        exit: 1,
        hops: 2,
        origin: 2,
        cause: "route_not_found",
        roles: &["workload", "local-gateway"],
        objects: &["Gateway/knative-serving/knative-local-gateway"],
    },
    Case {
        bundle: "broken-bundle",
        start: "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        exit: 1,
        hops: 1,
        origin: 1,
        cause: "rbac_denied",
        roles: &["ingress-gateway"],
        objects: &["AuthorizationPolicy/istio-system/allow-with-header"],
    },
];

#[test]
fn example_bundles_give_the_promised_verdicts() {
    for c in CASES {
        let bundle = format!("testdata/bundles/{}", c.bundle);
        let (code, out, err) = run(&["trace", c.start, "--bundle", &bundle, "-o", "json"]);
        assert_eq!(code, c.exit, "{}: {err}", c.bundle);
        let v: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}\n{out}", c.bundle));
        assert_eq!(v["schema"], "meshtrace.trace/v1");
        assert_eq!(v["cause"], c.cause, "{}", c.bundle);
        assert_eq!(v["origin_hop"], c.origin, "{}", c.bundle);
        let hops = v["hops"].as_array().unwrap();
        assert_eq!(hops.len(), c.hops, "{}: {hops:#?}", c.bundle);
        let roles: Vec<&str> = hops.iter().map(|h| h["role"].as_str().unwrap()).collect();
        assert_eq!(roles, c.roles, "{}", c.bundle);
        for (i, h) in hops.iter().enumerate() {
            assert_eq!(h["index"], i + 1);
            assert!(h["evidence"]["file"].as_str().unwrap().starts_with(&bundle));
            assert!(h["evidence"]["line"].as_u64().unwrap() >= 1);
        }
        let objects: Vec<&str> = v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        for o in c.objects {
            assert!(
                objects.contains(o),
                "{}: {o} not cited in {objects:?}",
                c.bundle
            );
        }
        // Table output of the same trace, snapshotted.
        let (code_t, table, _) = run(&["trace", c.start, "--bundle", &bundle]);
        assert_eq!(code_t, c.exit);
        insta::assert_snapshot!(format!("{}@{}", c.bundle, c.start), table);
        insta::assert_json_snapshot!(format!("{}@{}.json", c.bundle, c.start), v);
    }
}

#[test]
fn concurrent_requests_on_the_shared_connection_are_not_merged() {
    // The rhoai bundle's gateway also relays other requests over the same 8443 → 8081
    // connection in the same second; only the traced request's hops may appear.
    let (_, out, _) = run(&[
        "trace",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "--bundle",
        "testdata/bundles/rhoai-400-app-error",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
            "f7beed8d-a4db-4aaa-9292-edbf3e186e29",
            "f7beed8d-a4db-4aaa-9292-edbf3e186e29",
            "f7beed8d-a4db-4aaa-9292-edbf3e186e29",
            "f7beed8d-a4db-4aaa-9292-edbf3e186e29"
        ]
    );
    let listeners: Vec<&str> = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["listener"].as_str().unwrap())
        .collect();
    assert_eq!(
        listeners,
        [
            "10.135.0.43:8443",
            "10.135.0.43:8081",
            "10.135.0.44:8012",
            "172.31.58.48:80",
            "10.133.2.13:8012"
        ]
    );
}

#[test]
fn broken_bundle_reports_every_damaged_part() {
    let (_, out, _) = run(&[
        "trace",
        "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        "--bundle",
        "testdata/bundles/broken-bundle",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let notes = v["notes"].to_string();
    for part in [
        "pods.json: invalid JSON",
        "virtualservices.yaml: YAML document 1 unreadable",
        "gateways.yaml#3",
        "sleep-7f9c8d6b5-q2w8e",
    ] {
        assert!(notes.contains(part), "{part} not reported in {notes}");
    }
}

#[test]
fn wide_output_shows_ids_and_upstreams() {
    let (code, out, _) = run(&[
        "trace",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "--bundle",
        "testdata/bundles/rhoai-400-app-error",
        "-o",
        "wide",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("f7beed8d-a4db-4aaa-9292-edbf3e186e29")
            && out.contains("test-predictor-00001-private"),
        "{out}"
    );
}

#[test]
fn plain_files_without_a_bundle() {
    let (code, out, _) = run(&[
        "trace",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "testdata/explain/seed000-pasted.log",
        "-o",
        "json",
    ]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["hops"].as_array().unwrap().len(), 5);
    assert_eq!(v["cause"], "app_error");
    let roles: Vec<&str> = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "ingress-gateway",
            "local-gateway",
            "activator",
            "activator",
            "predictor"
        ]
    );
}

/// Regression: `trace ID -` read standard input in its first round and found it empty in the
/// next ones ("not found in 0 access-log record(s)"); it now reads a copy each round. Checked on
/// a small paste and on a large log that goes through the needle search.
#[test]
fn standard_input_gives_the_same_trace_as_the_file() {
    use std::io::Write;
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/rhoai-400-app-error/logs");
    let id = "4791d0d3-e742-4eac-8c56-4c87eb22f1a9";
    // Every proxy's log of the bundle, one after another, as pasted into a ticket.
    let mut small = Vec::new();
    for p in [
        "istio-system/istio-ingressgateway-64694db8d5-zmcc7/istio-proxy.log",
        "knative-serving/activator-5b7c9f8d6-h2xqp/istio-proxy.log",
        "aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj/istio-proxy.log",
        "aiproject/model-client-6d5f7b9c8-p2m4x/istio-proxy.log",
    ] {
        small.extend(std::fs::read(root.join(p)).unwrap());
    }
    // Large: the same, buried in 12 MiB of another request's lines (same format).
    let text = String::from_utf8(small.clone()).unwrap();
    let other = text
        .lines()
        .find(|l| l.starts_with('[') && !l.contains(id))
        .expect("another request's line");
    let other_id = other.split('"').nth(9).unwrap();
    let filler = format!(
        "{}\n",
        other.replace(other_id, "00000000-0000-4000-8000-000000000000")
    );
    let mut large = Vec::new();
    while large.len() < 6 << 20 {
        large.extend_from_slice(filler.as_bytes());
    }
    large.extend_from_slice(&small);
    while large.len() < 12 << 20 {
        large.extend_from_slice(filler.as_bytes());
    }
    let d = tempfile::tempdir().unwrap();
    for (what, bytes) in [("small", &small), ("large", &large)] {
        let file = d.path().join(format!("{what}.log"));
        std::fs::write(&file, bytes).unwrap();
        let (code, from_file, err) = run(&["trace", id, file.to_str().unwrap(), "-o", "json"]);
        assert_eq!(code, 1, "{what}: {err}");
        let mut child = common::meshtrace()
            .args(["trace", id, "-", "-o", "json"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = bytes.clone();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&feed);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        let a: Value = serde_json::from_str(&from_file).unwrap();
        let b: Value = serde_json::from_slice(&out.stdout).unwrap();
        let hops = |v: &Value| v["hops"].as_array().map(Vec::len).unwrap_or(0);
        assert!(hops(&a) >= 4, "{what}: {a}");
        assert_eq!(hops(&a), hops(&b), "{what}: {b}");
        assert_eq!(a["cause"], b["cause"], "{what}");
    }
}

/// Regression: standard input that could not be copied to the temporary folder (full) was
/// reported as `reading standard input: …`, as if the input were at fault. The message now
/// names the folder and the fix. The folder is made too small by a file-size limit (its signal
/// ignored, so the write fails with EFBIG, as a full disk fails with ENOSPC).
#[test]
fn standard_input_that_cannot_be_copied_names_the_temporary_folder_and_the_fix() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = std::fs::read(root.join(
        "testdata/bundles/rhoai-400-app-error/logs/istio-system/istio-ingressgateway-64694db8d5-zmcc7/istio-proxy.log",
    ))
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.log");
    let mut big = Vec::new();
    while big.len() < 3 << 20 {
        big.extend_from_slice(&log);
    }
    std::fs::write(&input, &big).unwrap();
    let out = common::meshtrace_with_file_size_limit(1024)
        .args(["trace", "4791d0d3-e742-4eac-8c56-4c87eb22f1a9", "-"])
        .env("TMPDIR", d.path())
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    common::assert_mentions(
        &err,
        &[
            "cannot copy standard input to a temporary file in ",
            &d.path().display().to_string(),
            "set TMPDIR to a folder with more room",
            "pass the log as a file",
        ],
    );
    assert!(!err.contains("reading standard input"), "{err}");
}

/// Regression: a named pipe (`meshtrace trace ID <(kubectl logs …)`, a FIFO) was opened once to
/// check it and once per round: the data went to the first open and the next one waited
/// forever for a writer. `trace` and `failures` now read it once (bounded here at 120 s).
#[test]
fn named_pipes_are_read_once_and_never_hang() {
    use std::io::Write;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = std::fs::read(root.join(
        "testdata/bundles/rhoai-400-app-error/logs/istio-system/istio-ingressgateway-64694db8d5-zmcc7/istio-proxy.log",
    ))
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    for args in [
        &[
            "trace",
            "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
            "-o",
            "json",
        ][..],
        &["failures", "-o", "json"][..],
    ] {
        let fifo = d.path().join(format!("{}.log", args[0]));
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("mkfifo is not available");
            return;
        }
        let (f2, bytes) = (fifo.clone(), log.clone());
        let writer = std::thread::spawn(move || {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&f2) {
                let _ = f.write_all(&bytes);
            }
        });
        let mut child = common::meshtrace()
            .args(args)
            .arg(&fifo)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                // Unblock the writer if nothing ever opened the pipe.
                let _ = std::fs::File::open(&fifo);
                panic!("{} on a named pipe did not finish within 120 s", args[0]);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}: {err}", args[0]));
        if args[0] == "trace" {
            assert!(!v["hops"].as_array().unwrap().is_empty(), "{v}");
        } else {
            assert!(v["records_read"].as_u64().unwrap_or(0) > 0, "{v}");
        }
    }
}
