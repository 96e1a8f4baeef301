//! The log-store source: trace/failures/explain/report/collect against a fake Loki / LokiStack.
//!
//! The fake serves the lines of the example bundles split into streams by pod (ViaQ-wrapped for
//! LokiStack); verdicts read through Loki must equal the offline ones on the same bundle, trace
//! must only ever ask for lines holding a search string, paging must lose and duplicate nothing,
//! and each error answer must give its one sentence.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::common::meshtrace;
use crate::fake_loki::{FakeLoki, Faults, Shape};

const TOKEN: &str = "sha256~Zm9vYmFyLXNlY3JldC10b2tlbg";

/// Most `query_range` calls a trace of the example bundles may make (measured: see the tests).
const MAX_TRACE_QUERIES: usize = 6;

fn bundle(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bundles")
        .join(name)
}

fn lokistack(name: &str) -> FakeLoki {
    FakeLoki::start(
        &bundle(name),
        Shape::LokiStack {
            tenant: "application".into(),
            token: TOKEN.into(),
        },
        Faults::default(),
    )
}

fn token_file(dir: &Path, token: &str) -> std::path::PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, format!("{token}\n")).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    meshtrace().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A trace's verdict without where its lines were read from.
fn verdict(o: &Output) -> Value {
    let mut v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    });
    if let Some(hops) = v.get_mut("hops").and_then(Value::as_array_mut) {
        for h in hops {
            if let Some(m) = h.as_object_mut() {
                m.remove("evidence");
            }
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("notes");
    }
    v
}

/// The same verdict, hops and citations; the Loki trace's evidence sentences are among the
/// offline ones.
fn same_verdict(loki: &Output, offline: &Output) {
    let (mut a, mut b) = (verdict(loki), verdict(offline));
    let (ea, eb) = (a["evidence"].take(), b["evidence"].take());
    assert_eq!(a, b, "{}", stderr(loki));
    for e in ea.as_array().unwrap() {
        assert!(eb.as_array().unwrap().contains(e), "{e}");
    }
}

/// Every query_range asked for lines holding a string (`|=`), or the Knative proxies' error
/// lines: never a whole stream.
fn assert_only_filtered(loki: &FakeLoki) {
    let qs = loki.queries();
    assert!(!qs.is_empty());
    for q in &qs {
        assert!(
            q.query.contains(" |= ")
                || q.query.ends_with(
                    " |~ `error reverse proxying request|error proxying request|Throttler try error`"
                ),
            "a trace asked for a whole stream: {}",
            q.query
        );
        assert_eq!(
            q.params.get("direction").map(String::as_str),
            Some("forward")
        );
        assert!(q.params.contains_key("limit") && q.params.contains_key("start"));
    }
}

#[test]
fn a_trace_reads_its_hops_from_lokistack_with_a_token_and_gives_the_offline_verdict() {
    let loki = lokistack("kind-rbac-403");
    let d = tempfile::tempdir().unwrap();
    let tf = token_file(d.path(), TOKEN);
    let id = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
    let b = bundle("kind-rbac-403");
    let offline = run(&["trace", id, "--bundle", b.to_str().unwrap(), "-o", "json"]);
    let o = run(&[
        "trace",
        id,
        "--loki",
        &loki.url,
        "--loki-token-file",
        tf.to_str().unwrap(),
        "--bundle",
        b.to_str().unwrap(),
        "--since-time",
        "2024-04-25T20:00:00Z",
        "--until",
        "2024-04-25T21:00:00Z",
        "-o",
        "json",
        "-v",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(verdict(&o), verdict(&offline));
    let v = verdict(&o);
    assert_eq!(v["cause"], "rbac_denied");
    assert_eq!(
        v["citations"][0]["object"],
        "AuthorizationPolicy/istio-system/allow-with-header"
    );
    assert_only_filtered(&loki);
    let n = loki.queries().len();
    assert!(n <= MAX_TRACE_QUERIES, "{n} queries");
    eprintln!("403 trace: {n} query_range calls");
    // The token was sent, and never shown (-v shows every query).
    let err = stderr(&o);
    assert!(
        loki.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(!err.contains(TOKEN), "{err}");
    assert!(err.contains("query_range?query={kubernetes_container_name=\"istio-proxy\"} |= `211ebf7c-1bc2-4008-aa50-9730fa6300dc`"), "{err}");
    assert!(err.contains("<token hidden>"), "{err}");
    assert!(err.contains("ViaQ"), "{err}");
}

#[test]
fn a_multi_hop_trace_widens_through_loki_as_offline() {
    // The activator bundle: gateway → activator → … with a 503; the trace follows the ids and
    // connection addresses round by round.
    let loki = FakeLoki::start(
        &bundle("activator-503-scale-from-zero"),
        Shape::Plain {
            org_id: Some("team-a".into()),
        },
        Faults::default(),
    );
    let id = "6a0d3c2e-41f7-4b8a-9e15-7c3b2d1f0a94";
    let b = bundle("activator-503-scale-from-zero");
    let offline = run(&["trace", id, "--bundle", b.to_str().unwrap(), "-o", "json"]);
    let o = run(&[
        "trace",
        id,
        "--loki",
        &loki.url,
        "--loki-org-id",
        "team-a",
        "--all-containers",
        "--bundle",
        b.to_str().unwrap(),
        "--since-time",
        "2024-06-05T09:00:00Z",
        "--until",
        "2024-06-05T11:00:00Z",
        "-o",
        "json",
    ]);
    // The same verdict; the evidence may lack what offline learns from lines of other requests
    // (the activator's lines to a revision's private Service), which a trace never downloads —
    // as offline on a log too large to read whole.
    same_verdict(&o, &offline);
    assert_only_filtered(&loki);
    let qs = loki.queries();
    assert!(qs.len() <= MAX_TRACE_QUERIES, "{} queries", qs.len());
    // Later rounds search what the first found, inside the request's time range.
    assert!(qs.iter().any(|q| !q.query.contains(id)), "never widened");
    eprintln!("activator trace: {} query_range calls", qs.len());
}

#[test]
fn a_trace_from_a_client_address_without_objects_infers_roles_from_the_lines() {
    let loki = FakeLoki::start(
        &bundle("odh-out-of-mesh-client"),
        Shape::Plain { org_id: None },
        Faults::default(),
    );
    let b = bundle("odh-out-of-mesh-client");
    let start = "10.134.1.22:48216";
    let offline = run(&[
        "trace",
        start,
        "--bundle",
        b.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let o = run(&[
        "trace",
        start,
        "--loki",
        &loki.url,
        "--since-time",
        "2020-01-01T00:00:00Z",
        "--until",
        "2030-01-01T00:00:00Z",
        "-o",
        "json",
    ]);
    // Without the pods, "the client has no sidecar" cannot be known: the hops, their order and
    // the origin are the same; the cause is read from the lines alone.
    let (a, b) = (verdict(&o), verdict(&offline));
    assert_eq!(a["status"], b["status"], "{}", stderr(&o));
    assert_eq!(a["origin_hop"], b["origin_hop"]);
    let hops = |v: &Value| {
        v["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["pod"].clone(), h["listener"].clone(), h["status"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(hops(&a), hops(&b));
    assert!(
        stderr(&o).contains("roles are inferred from the lines"),
        "{}",
        stderr(&o)
    );
    assert_only_filtered(&loki);
    // With the objects of the bundle: the offline verdict.
    let before = loki.queries().len();
    let o = run(&[
        "trace",
        start,
        "--loki",
        &loki.url,
        "--bundle",
        bundle("odh-out-of-mesh-client").to_str().unwrap(),
        "--since-time",
        "2020-01-01T00:00:00Z",
        "--until",
        "2030-01-01T00:00:00Z",
        "-o",
        "json",
    ]);
    same_verdict(&o, &offline);
    eprintln!(
        "address trace: {} query_range calls",
        loki.queries().len() - before
    );
}

#[test]
fn paging_across_page_boundaries_loses_and_duplicates_nothing() {
    // 12 001 lines, three per nanosecond: pages of 5000 end in the middle of a timestamp.
    let base: i128 = 1_714_075_200_000_000_000;
    let loki = FakeLoki::synthetic(12_001, 3, base);
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("b");
    let o = run(&[
        "collect",
        "--loki",
        &loki.url,
        "-o",
        out.to_str().unwrap(),
        "--since-time",
        "2024-04-25T20:00:00Z",
        "--until",
        "2024-04-25T21:00:00Z",
        // Generous: on a machine loaded by parallel builds a debug build's page of 5 000
        // lines can take longer than the default 30 s, and a timed-out page is (rightly) a
        // partial result rather than an error.
        "--request-timeout",
        "5m",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("logs/ns/gw-1/istio-proxy.log"))
        .unwrap_or_else(|e| panic!("{e}; collect said: {}", stderr(&o)));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12_001);
    let uniq: std::collections::BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(uniq.len(), 12_001);
    let qs = loki.queries();
    assert_eq!(qs.len(), 3, "pages: {}", qs.len());
    // Each page starts at the last time of the one before.
    assert_eq!(qs[1].params["start"], (base + 4999 / 3).to_string());
    // The manifest says where the logs came from.
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("meshtrace-bundle.json")).unwrap()).unwrap();
    assert!(m["collector"].as_str().unwrap().contains("Loki"));
    assert_eq!(m["collected_at"], "2024-04-25T21:00:00Z");
}

#[test]
fn collect_from_loki_writes_a_bundle_that_traces_to_the_same_verdict() {
    let loki = lokistack("kind-rbac-403");
    let d = tempfile::tempdir().unwrap();
    let tf = token_file(d.path(), TOKEN);
    let out = d.path().join("from-loki");
    let o = run(&[
        "collect",
        "--loki",
        &loki.url,
        "--loki-token-file",
        tf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--since-time",
        "2024-04-25T20:00:00Z",
        "--until",
        "2024-04-25T21:00:00Z",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same layout as live collect: logs/<ns>/<pod>/<container>.log, unwrapped from ViaQ.
    let gw = out.join("logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log");
    let text = std::fs::read_to_string(&gw).unwrap();
    assert!(text.starts_with("[2024-04-25T"), "{text}");
    assert!(!text.contains("\"kubernetes\""));
    // Only access-log lines were asked for.
    for q in loki.queries() {
        assert!(q.query.contains("|~ `HTTP/|response_code"), "{}", q.query);
    }
    assert!(!text.contains("xdsproxy"));
    // Objects from the original bundle's resources, logs from Loki: same verdict.
    let merged = d.path().join("merged");
    crate::common::copy_dir(&bundle("kind-rbac-403"), &merged);
    std::fs::remove_dir_all(merged.join("logs")).unwrap();
    crate::common::copy_dir(&out.join("logs"), &merged.join("logs"));
    let id = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
    let a = run(&[
        "trace",
        id,
        "--bundle",
        merged.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let b = run(&[
        "trace",
        id,
        "--bundle",
        bundle("kind-rbac-403").to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(verdict(&a), verdict(&b));
    // And the Loki bundle alone gives the same cause (roles from the lines).
    let c = run(&["trace", id, "--bundle", out.to_str().unwrap(), "-o", "json"]);
    assert_eq!(verdict(&c)["cause"], "rbac_denied", "{}", stderr(&c));
}

#[test]
fn failures_and_report_read_the_window_from_loki() {
    let loki = lokistack("kind-rbac-403");
    let d = tempfile::tempdir().unwrap();
    let tf = token_file(d.path(), TOKEN);
    let b = bundle("kind-rbac-403");
    let common = [
        "--loki",
        loki.url.as_str(),
        "--loki-token-file",
        tf.to_str().unwrap(),
        "--bundle",
        b.to_str().unwrap(),
        "--since-time",
        "2024-04-25T20:00:00Z",
        "--until",
        "2024-04-25T21:00:00Z",
    ];
    let mut args = vec!["failures", "-o", "json"];
    args.extend(common);
    let o = run(&args);
    let offline = run(&["failures", "--bundle", b.to_str().unwrap(), "-o", "json"]);
    assert_eq!(o.status.code(), offline.status.code(), "{}", stderr(&o));
    let (a, f): (Value, Value) = (
        serde_json::from_slice(&o.stdout).unwrap(),
        serde_json::from_slice(&offline.stdout).unwrap(),
    );
    let groups = |v: &Value| {
        let mut g = v["groups"].clone();
        for x in g.as_array_mut().unwrap() {
            x.as_object_mut().unwrap().remove("example_evidence");
            // The example's hops name the file they were read from: the log store's lines are
            // written to a folder of their own (other line numbers, no startup lines).
            if let Some(hops) = x.pointer_mut("/example/hops").and_then(Value::as_array_mut) {
                for h in hops {
                    h.as_object_mut().unwrap().remove("evidence");
                }
            }
        }
        g
    };
    assert_eq!(groups(&a), groups(&f));
    assert!(!groups(&a).as_array().unwrap().is_empty());
    let mut args = vec!["report", "--failures"];
    args.extend(common);
    let r = run(&args);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(String::from_utf8_lossy(&r.stdout).contains("rbac_denied"));
}

fn error_of(args: &[&str]) -> String {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    stderr(&o)
}

#[test]
fn each_error_answer_gives_its_sentence() {
    let loki = lokistack("kind-rbac-403");
    let d = tempfile::tempdir().unwrap();
    let bad = token_file(d.path(), "sha256~wrong");
    let id = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
    // 401: the token is refused; the token is not printed.
    let e = error_of(&[
        "trace",
        id,
        "--loki",
        &loki.url,
        "--loki-token-file",
        bad.to_str().unwrap(),
    ]);
    assert!(e.contains("refused the token (401: Unauthorized)"), "{e}");
    assert!(e.contains("--loki-token-file"), "{e}");
    assert!(!e.contains("sha256~wrong"), "{e}");
    // 404: a wrong tenant.
    let good = token_file(d.path(), TOKEN);
    let wrong = format!("{}/api/logs/v1/audit", loki.root());
    let e = error_of(&[
        "trace",
        id,
        "--loki",
        &wrong,
        "--loki-token-file",
        good.to_str().unwrap(),
    ]);
    assert!(e.contains("(404); check the URL"), "{e}");

    // 400: Loki's parse error quoted.
    let plain = FakeLoki::start(
        &bundle("kind-rbac-403"),
        Shape::Plain { org_id: None },
        Faults::default(),
    );
    let e = error_of(&[
        "failures",
        "--loki",
        &plain.url,
        "--loki-selector",
        "{namespace=istio-system}",
        "--since-time",
        "2024-04-25T20:00:00Z",
    ]);
    assert!(
        e.contains("refused the query: parse error at line 1"),
        "{e}"
    );
    assert!(e.contains("--loki-selector"), "{e}");

    // 401 from a multi-tenant Loki without X-Scope-OrgID.
    let mt = FakeLoki::start(
        &bundle("kind-rbac-403"),
        Shape::Plain {
            org_id: Some("t".into()),
        },
        Faults::default(),
    );
    let e = error_of(&["trace", id, "--loki", &mt.url]);
    assert!(e.contains("401: no org id"), "{e}");

    // 429 and 5xx on the queries.
    for (status, body, want) in [
        (429, "Too Many Requests", "rate-limiting"),
        (
            503,
            "upstream connect error",
            "failed to answer (503: upstream connect error)",
        ),
    ] {
        let f = FakeLoki::start(
            &bundle("kind-rbac-403"),
            Shape::Plain { org_id: None },
            Faults {
                query_status: Some((status, body.into())),
                ..Faults::default()
            },
        );
        let o = run(&[
            "trace",
            id,
            "--loki",
            &f.url,
            "--since-time",
            "2024-04-25T20:00:00Z",
        ]);
        let e = stderr(&o);
        assert!(e.contains(want), "{e}");
        assert_eq!(o.status.code(), Some(2), "{e}");
    }

    // A server that does not answer within --request-timeout.
    let slow = FakeLoki::start(
        &bundle("kind-rbac-403"),
        Shape::Plain { org_id: None },
        Faults {
            stall: Some(Duration::from_secs(20)),
            ..Faults::default()
        },
    );
    let t = std::time::Instant::now();
    let o = run(&[
        "trace",
        id,
        "--loki",
        &slow.url,
        "--request-timeout",
        "1s",
        "--since-time",
        "2024-04-25T20:00:00Z",
    ]);
    assert!(t.elapsed() < Duration::from_secs(15));
    assert!(
        stderr(&o).contains("did not answer within 1s (--request-timeout)"),
        "{}",
        stderr(&o)
    );

    // TLS to something that does not speak it.
    let e = error_of(&[
        "trace",
        id,
        "--loki",
        &plain.url.replace("http://", "https://"),
    ]);
    assert!(e.contains("TLS connection to Loki"), "{e}");
    assert!(e.contains("--loki-ca-file"), "{e}");

    // Nothing in the time range: said, with what to do.
    let o = run(&[
        "trace",
        id,
        "--loki",
        &plain.url,
        "--since-time",
        "2024-04-26T00:00:00Z",
        "--until",
        "2024-04-26T01:00:00Z",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("Loki returned no line between 2024-04-26T00:00:00Z and 2024-04-26T01:00:00Z: widen the time range"),
        "{}",
        stderr(&o)
    );

    // Nothing listening.
    let e = error_of(&["trace", id, "--loki", "http://127.0.0.1:1"]);
    assert!(e.contains("cannot reach Loki at http://127.0.0.1:1"), "{e}");
}

#[test]
fn a_partial_read_is_kept_when_one_loki_fails() {
    let good = FakeLoki::start(
        &bundle("kind-rbac-403"),
        Shape::Plain { org_id: None },
        Faults::default(),
    );
    let id = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
    let o = run(&[
        "trace",
        id,
        "--loki",
        "http://127.0.0.1:1",
        "--loki",
        &good.url,
        "--since-time",
        "2024-04-25T20:00:00Z",
        "--until",
        "2024-04-25T21:00:00Z",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(verdict(&o)["cause"], "rbac_denied");
    assert!(stderr(&o).contains("cannot reach Loki at http://127.0.0.1:1"));
}

#[test]
fn explain_reads_the_window_from_loki_as_it_reads_the_same_files() {
    let loki = lokistack("kind-rbac-403");
    let d = tempfile::tempdir().unwrap();
    let tf = token_file(d.path(), TOKEN);
    let o = run(&[
        "explain",
        "--loki",
        loki.url.as_str(),
        "--loki-token-file",
        tf.to_str().unwrap(),
        "--since-time",
        "2024-04-25T20:00:00Z",
        "--until",
        "2024-04-25T21:00:00Z",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lv: Value = serde_json::from_slice(&o.stdout).unwrap();
    let logs = bundle("kind-rbac-403").join("logs");
    let files: Vec<String> = [
        "istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log",
        "default/bert-model-predictor-00001-deployment-7d8c9b5f4-lq8zt/istio-proxy.log",
    ]
    .iter()
    .map(|f| logs.join(f).display().to_string())
    .collect();
    let offline = run(&["explain", &files[0], &files[1], "-o", "json"]);
    assert_eq!(offline.status.code(), Some(0), "{}", stderr(&offline));
    let ov: Value = serde_json::from_slice(&offline.stdout).unwrap();
    // The same requests with the same statuses and causes, whatever the inputs are called.
    // Each request's hops: which proxy log, what status, which hop (sorted: hop order in the
    // output follows line numbers).
    fn r_hops(v: &Value, r: &Value) -> Vec<String> {
        let id = &r["request_id"];
        let mut h: Vec<String> = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| &x["request_id"] == id)
            .flat_map(|x| x["hops"].as_array().unwrap().iter())
            .map(|h| {
                let input = h["input"].as_str().unwrap();
                let input = input.rsplit("logs/").next().unwrap();
                format!("{input} {} {}", h["status"], h["hop"])
            })
            .collect();
        h.sort();
        h
    }
    let summary = |v: &Value| {
        let mut s: Vec<String> = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                // Line numbers differ: Loki returns only the access-log lines (its line filter
                // drops the proxies' own log), so keep what each request is and what it says.
                let mut r = r.clone();
                if let Some(m) = r.as_object_mut() {
                    m.retain(|k, _| {
                        matches!(
                            k.as_str(),
                            "request_id" | "status" | "cause" | "summary" | "fix"
                        )
                    });
                }
                let hops = r_hops(v, &r);
                format!("{r} {hops:?}")
            })
            .collect();
        s.sort();
        s
    };
    assert!(!summary(&ov).is_empty());
    assert_eq!(summary(&lv), summary(&ov));
    // Read with the access-log line filter, over the window given.
    let qs = loki.queries();
    assert!(!qs.is_empty());
    assert!(
        qs.iter().all(|q| q.query.contains(" |~ ")),
        "{:?}",
        qs.iter().map(|q| &q.query).collect::<Vec<_>>()
    );
}
