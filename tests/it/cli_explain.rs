//! CLI snapshots: `meshtrace explain` on every scenario in `testdata/explain/` (table and JSON),
//! plus the command-line contract (exit codes, stdin, errors).

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run meshtrace from the repository root; returns (exit code, stdout, stderr).
fn meshtrace(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = common::meshtrace();
    cmd.args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn meshtrace");
    {
        let mut si = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            si.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Extra arguments for a scenario: `<name>.args` beside the log, one line.
fn scenario_args(log: &Path) -> Vec<String> {
    let args = log.with_extension("args");
    match std::fs::read_to_string(&args) {
        Ok(s) => s.split_whitespace().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn explain_scenarios() {
    insta::glob!("../../testdata/explain", "*.log", |path| {
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let extra = scenario_args(path);
        let mut args: Vec<&str> = vec!["explain", &rel];
        args.extend(extra.iter().map(String::as_str));
        let (code, stdout, stderr) = meshtrace(&args, None);
        assert!(code == 0 || code == 1, "{rel}: exit {code}\n{stderr}");
        insta::assert_snapshot!("table", format!("exit: {code}\nstderr: {stderr}\n{stdout}"));
        args.extend(["-o", "json"]);
        let (code_j, stdout_j, _) = meshtrace(&args, None);
        assert_eq!(code, code_j);
        let v: serde_json::Value =
            serde_json::from_str(&stdout_j).unwrap_or_else(|e| panic!("{rel}: invalid JSON: {e}"));
        assert_eq!(v["schema"], "meshtrace.explain/v1");
        insta::assert_json_snapshot!("json", v);
    });
}

#[test]
fn seed000_groups_into_two_app_errors() {
    let (code, out, _) = meshtrace(
        &[
            "explain",
            "testdata/explain/seed000-pasted.log",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reqs = v["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2);
    for r in reqs {
        assert_eq!(r["status"], 400);
        assert_eq!(r["cause"], "app_error");
    }
    assert_eq!(
        reqs[1]["origin_line"], 13,
        "the model pod's inbound hop produced the 400"
    );
    assert_eq!(reqs[1]["lines"], serde_json::json!([4, 7, 10, 13]));
    assert_eq!(v["records"].as_array().unwrap().len(), 5);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 0);
}

#[test]
fn reads_stdin_and_dash() {
    let log = std::fs::read_to_string(root().join("testdata/explain/seed003-rbac.log")).unwrap();
    for args in [vec!["explain"], vec!["explain", "-"]] {
        let (code, out, _) = meshtrace(&args, Some(&log));
        assert_eq!(code, 0);
        assert!(
            out.contains("rbac_denied") && out.contains("<stdin>"),
            "{out}"
        );
    }
}

#[test]
fn missing_file_is_a_message_and_other_inputs_are_still_analysed() {
    let (code, out, err) = meshtrace(
        &[
            "explain",
            "no/such.log",
            "testdata/explain/seed003-rbac.log",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("cannot open no/such.log"), "{err}");
    assert!(out.contains("rbac_denied"), "{out}");
    let (code, _, err) = meshtrace(&["explain", "no/such.log"], None);
    assert_eq!(code, 2);
    assert!(err.contains("no input could be read"), "{err}");
}

#[test]
fn input_without_access_logs_exits_1_and_says_why() {
    let (code, _, err) = meshtrace(
        &["explain", "-"],
        Some("2020-06-29T23:37:27.335928Z\tinfo\tsds ready\nhello\n"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("no access-log record found"), "{err}");
}

#[test]
fn bad_log_format_is_a_clear_error() {
    let (code, _, err) = meshtrace(&["explain", "--log-format", "nginx", "-"], Some(""));
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown log format") && err.contains("istio-1.23"),
        "{err}"
    );
    let (code, _, err) = meshtrace(
        &["explain", "--log-format", "%BYTES_SENT%%DURATION%", "-"],
        Some(""),
    );
    assert_eq!(code, 2);
    assert!(err.contains("no text between them"), "{err}");
}

#[test]
fn forced_format_reports_lines_of_another_format_as_malformed() {
    let (code, out, _) = meshtrace(
        &[
            "explain",
            "--log-format",
            "istio-1.8",
            "testdata/explain/seed003-rbac.log",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("1 malformed") && out.contains("seed003-rbac.log:1: column"),
        "{out}"
    );
}

#[test]
fn formats_lists_every_builtin() {
    let (code, out, _) = meshtrace(&["formats"], None);
    assert_eq!(code, 0);
    for n in [
        "istio-1.23",
        "istio-1.9",
        "istio-1.8",
        "istio-1.3",
        "istio-1.1",
        "envoy",
        "istio-json",
        "envoy-gateway-json",
    ] {
        assert!(out.contains(n), "{n}");
    }
}

/// A large input (over 8 MiB: streamed, each reader thread sanitising the records it spools,
/// the spools then copied to standard output as they are) still has every secret masked and
/// every unsafe character escaped in its `records`: in a field of one record, and in the
/// input's name, which every record carries and nothing but the sanitiser escapes or masks.
#[test]
fn large_input_records_are_masked_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("logs\u{202e}");
    std::fs::create_dir(&sub).unwrap();
    let log = sub.join("access_token=s3cr3tname.log");
    let mut text = String::with_capacity(9 << 20);
    let mut n = 0u64;
    while text.len() < 9 << 20 {
        let agent = if n == 12_345 {
            "curl/8.6.0 \u{202e}evil\u{85} Bearer abcdefgh12345678"
        } else {
            "curl/8.6.0"
        };
        let path = if n == 12_346 {
            "/v2/models/test/infer?password=hunter2"
        } else {
            "/v2/models/test/infer"
        };
        let (s, ms) = (n / 1000, n % 1000);
        text.push_str(&format!(
            "[2024-06-03T09:{:02}:{:02}.{ms:03}Z] \"POST {path} HTTP/2\" 200 - via_upstream - \"-\" 658 2295 117 117 \"10.134.2.121\" \"{agent}\" \"{n:08x}-7217-46a7-a211-e20229fc1eaa\" \"test-predictor.aiproject.svc.cluster.local\" \"10.135.0.44:8012\" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 10.135.0.43:37306 10.135.0.43:8081 10.134.2.121:35294 outbound_.80_._.test.svc.cluster.local -\n",
            s / 60,
            s % 60
        ));
        n += 1;
    }
    std::fs::write(&log, &text).unwrap();
    let out = common::meshtrace()
        .args(["explain", "-o", "json"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc = String::from_utf8(out.stdout).unwrap();
    let records = &doc[doc.find("\"records\": [").expect("records")..];
    for raw in [
        "\u{202e}",
        "\u{85}",
        "s3cr3tname",
        "abcdefgh12345678",
        "hunter2",
    ] {
        assert!(!doc.contains(raw), "{raw:?} reached the output");
    }
    assert!(records.contains("logs\\u202e/access_token=<redacted>"));
    assert!(records.contains("\\u202eevil\\u0085"), "the user agent");
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["records"].as_array().map(Vec::len), Some(n as usize));
}

/// One proxy's connections to two destinations from the same local port at once (Linux hands
/// out one ephemeral port for several destinations): a long TCP connection to a feature store
/// and an HTTP connection to the local gateway. The TCP connection does not continue into the
/// HTTP request: it is a request of its own that succeeded, and one request failed.
#[test]
fn a_local_port_shared_by_connections_to_two_destinations_does_not_join_them() {
    let log = [
        r#"[2024-06-03T09:09:09.355Z] "POST /v2/models/test/infer HTTP/2" 503 - via_upstream - "-" 2312 168 32 32 "10.134.2.169" "curl/8.6.0" "b4403270-8274-4571-85f1-bb462ce17ad4" "test-predictor.aiproject.svc.cluster.local" "10.135.0.43:8081" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.135.0.43:52485 10.135.0.43:8443 10.134.2.169:42287 test-aiproject.apps.mycluster.example.com -"#,
        r#"[2024-06-03T09:09:09.357Z] "POST /v2/models/test/infer HTTP/2" 503 - via_upstream - "-" 2312 168 28 27 "10.134.2.169,10.135.0.43" "curl/8.6.0" "b4403270-8274-4571-85f1-bb462ce17ad4" "test-predictor.aiproject.svc.cluster.local" "10.135.0.44:8012" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 10.135.0.43:44757 10.135.0.43:8081 10.135.0.43:52485 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#,
        r#"[2024-06-03T09:08:24.404Z] "- - -" 0 - - - "-" 6274031 8468288 94307 - "-" "-" "-" "-" "10.133.3.7:9000" outbound|9000||feature-store.aiproject.svc.cluster.local 10.135.0.43:52485 10.135.0.43:31400 10.134.2.239:42599 - -"#,
    ]
    .join("\n");
    let (code, out, err) = meshtrace(&["explain", "-o", "json"], Some(&log));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reqs = v["requests"].as_array().unwrap();
    let tcp = reqs
        .iter()
        .find(|r| r["lines"] == serde_json::json!([3]))
        .unwrap_or_else(|| panic!("no request of line 3: {out}"));
    assert_eq!(tcp["cause"], "ok", "{tcp}");
    assert_eq!(tcp["hops"].as_array().unwrap().len(), 1, "{tcp}");
    let failed: Vec<_> = reqs
        .iter()
        .filter(|r| r["cause"] != "ok" && r.get("part_of").is_none())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["lines"], serde_json::json!([1, 2]));
    assert!(reqs.iter().all(|r| r.get("part_of").is_none()), "{out}");
}

/// HAProxy lines as posted publicly (`testdata/pasted/README.md`): each is read as a router
/// line (none malformed) and taken for what its thread shows.
#[test]
fn haproxy_lines_from_public_threads_are_read() {
    let (code, out, err) = meshtrace(
        &[
            "explain",
            "testdata/pasted/haproxy-threads.log",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: Vec<(u64, Option<u64>, String)> = v["router"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["status"].as_u64(),
                r["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, Option<u64>, String)> = [
        (1, Some(200), "ok"),
        (2, Some(408), "downstream_disconnect"),
        (3, Some(408), "downstream_disconnect"),
        (4, None, "ok"),
        (5, None, "no_healthy_upstream"),
        (6, None, "ok"),
    ]
    .into_iter()
    .map(|(l, s, c)| (l, s, c.to_string()))
    .collect();
    assert_eq!(got, want);
    let skipped = v["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().all(|s| s["kind"] == "haproxy"),
        "{skipped:#?}"
    );
    // Not the OpenShift router: the words say HAProxy, not a Route.
    let r5 = &v["router"][4];
    assert!(
        r5["summary"]
            .as_str()
            .unwrap()
            .contains("The TCP connection through HAProxy: its backend `900` had no server"),
        "{r5:#?}"
    );
}

/// Lines that are all other logs (Envoy's own, Knative's) mean the access logs are missing, not
/// that their format is custom: the message says what the lines were and what to give.
#[test]
fn other_logs_only_say_what_they_are_and_what_to_give() {
    let (code, _, err) = meshtrace(
        &["explain", "-"],
        Some(concat!(
            "[2024-04-25 20:21:43.725][15][warning][config] gRPC config stream closed\n",
            r#"{"severity":"INFO","timestamp":"2024-01-01T00:00:00Z","logger":"activator","message":"Updating Revision Throttler with: clusterIP = <nil>, trackers = 0, backends = 0","knative.dev/key":"ns/rev-00001"}"#,
            "\n"
        )),
    );
    assert_eq!(code, 1);
    common::assert_mentions(
        &err,
        &[
            "(2 line(s) skipped: 1 envoy-log, 1 json-log)",
            "these are other logs, not access logs",
            "meshConfig.accessLogFile",
        ],
    );
    assert!(!err.contains("--log-format"), "{err}");
}

#[test]
fn knative_lines_from_public_threads_are_explained() {
    // The activator's own lines, as posted (testdata/pasted/README.md): each is listed with what
    // its error means and a fix naming the revision; exit 0 (something was explained).
    let (code, out, err) = meshtrace(
        &[
            "explain",
            "testdata/pasted/knative-threads.log",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let k = doc["knative"].as_array().expect("a knative array");
    let got: Vec<(u64, &str, &str, &str)> = k
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["message"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["revision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                "error reverse proxying request",
                "closed",
                "default/dummy-workflow-00001"
            ),
            (
                2,
                "error reverse proxying request",
                "closed",
                "event-example/wathola-forwarder-d96jq"
            ),
            (
                3,
                "error reverse proxying request",
                "timeout",
                "cega-1/ceperftesthttp-fpnwm-1"
            ),
            (4, "Throttler try error", "canceled", "team-demo/test-6n7cn"),
        ]
    );
    assert_eq!(k[1]["target"], "10.131.0.14:8012");
    assert!(
        k[3]["summary"]
            .as_str()
            .unwrap()
            .contains("waited in the activator for a ready pod"),
        "{}",
        k[3]
    );
    assert!(
        k[3]["fix"]
            .as_str()
            .unwrap()
            .contains("serving.knative.dev/revision=test-6n7cn"),
        "{}",
        k[3]
    );
    // The text lists them too.
    let (code, out, _) = meshtrace(&["explain", "testdata/pasted/knative-threads.log"], None);
    assert_eq!(code, 0);
    common::assert_mentions(
        &out,
        &[
            "4 Knative proxy error lines (activator, queue-proxy)",
            "Knative line 4 · activator · team-demo/test-6n7cn · canceled",
        ],
    );
}

/// A log of 8 MiB or more is streamed: its Knative error lines are listed after the requests, in
/// text and JSON (at most 4 096 per log).
#[test]
fn knative_lines_of_a_large_log_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activator.log");
    let knative = r#"{"severity":"ERROR","timestamp":"2024-06-05T10:15:13.2Z","logger":"activator","caller":"handler/handler.go:114","message":"Throttler try error","error":"context deadline exceeded","knative.dev/key":"kserve-test/iris-predictor-00001"}"#;
    let info = r#"{"severity":"INFO","timestamp":"2024-06-05T10:15:13.1Z","logger":"activator","caller":"net/throttler.go:532","message":"Updating Revision Throttler with: clusterIP = <nil>, trackers = 0, backends = 0","knative.dev/key":"kserve-test/iris-predictor-00001"}"#;
    let mut log = String::new();
    let mut errors = 0u32;
    let mut n = 0u32;
    while log.len() < 9 << 20 {
        n += 1;
        if n.is_multiple_of(100) {
            errors += 1;
            log.push_str(knative);
        } else {
            log.push_str(info);
        }
        log.push('\n');
    }
    std::fs::write(&path, &log).unwrap();
    let p = path.to_str().unwrap();
    let (code, text, err) = meshtrace(&["explain", p], None);
    assert_eq!(code, 0, "{err}");
    let kept = errors.min(4096);
    let head = if errors > 4096 {
        format!(
            "{errors} Knative proxy error lines (activator, queue-proxy); {} not listed (at most 4096 per log are kept)",
            errors - 4096
        )
    } else {
        format!("{errors} Knative proxy error lines (activator, queue-proxy)\n")
    };
    assert!(text.contains(&head), "{}", &text[..text.len().min(2000)]);
    assert!(text.contains(&format!("Knative line {kept} · activator")));
    let (code, out, _) = meshtrace(&["explain", p, "-o", "json"], None);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let k = doc["knative"].as_array().expect("a knative array");
    assert_eq!(k.len(), kept as usize);
    assert!(k.iter().all(|e| e["kind"] == "timeout"));
}

/// An endpoint picker's lines (Gateway API Inference Extension; shaped as its
/// `requestcontrol/director.go` and `handlers/server.go` log them): the endpoint picked for each
/// request, or the refusal and what it means; large inputs list the refusals only.
#[test]
fn endpoint_picker_lines_are_explained() {
    const HANDLED: &str = r#"{"level":"info","ts":"2025-10-10T08:01:02.345Z","logger":"epp","caller":"requestcontrol/director.go:212","msg":"Request handled","x-request-id":"6f1c7c2e-31a4-4d7e-9e55-0b2f3c6a1d10","model":"Qwen/Qwen2-0.5B-Instruct","targetModel":"Qwen/Qwen2-0.5B-Instruct","endpoint":{"NamespacedName":{"Namespace":"default","Name":"vllm-qwen-7d9f8c-abcde"},"Address":"10.244.1.17","Labels":{"app":"vllm-qwen"}}}"#;
    const SATURATED: &str = r#"{"level":"error","ts":"2025-10-10T08:01:03.000Z","caller":"handlers/server.go:247","msg":"Failed to process request","x-request-id":"b1","error":"inference gateway: InferencePoolResourceExhausted - system saturated, non-critical request dropped"}"#;
    const NO_PODS: &str = r#"{"level":"error","ts":"2025-10-10T08:01:04.000Z","msg":"Failed to process request","x-request-id":"c2","error":"inference gateway: ServiceUnavailable - failed to find candidate pods for serving the request"}"#;
    let input = format!("{HANDLED}\n{SATURATED}\n{NO_PODS}\n");
    let (code, out, err) = meshtrace(&["explain", "-", "-o", "json"], Some(&input));
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let e = doc["epp"].as_array().expect("an epp array");
    let got: Vec<(&str, Option<u64>, &str)> = e
        .iter()
        .map(|x| {
            (
                x["request_id"].as_str().unwrap(),
                x["status"].as_u64(),
                x["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("6f1c7c2e-31a4-4d7e-9e55-0b2f3c6a1d10", None, "ok"),
            ("b1", Some(429), "rate_limited"),
            ("c2", Some(503), "no_healthy_upstream"),
        ]
    );
    assert_eq!(e[0]["pod"], "vllm-qwen-7d9f8c-abcde");
    assert!(
        e[2]["fix"]
            .as_str()
            .unwrap()
            .contains("InferencePool selects")
    );
    let (code, out, _) = meshtrace(&["explain", "-"], Some(&input));
    assert_eq!(code, 0);
    common::assert_mentions(
        &out,
        &[
            "3 endpoint picker lines (Gateway API Inference Extension) (2 refused)",
            "Picker line 2 · b1 · 429 · rate_limited",
            "follow it: meshtrace trace c2",
        ],
    );

    // 8 MiB or more: streamed, the refusals listed, the requests handled only counted.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("epp.log");
    let (mut log, mut n, mut refused) = (String::new(), 0u32, 0u32);
    while log.len() < 9 << 20 {
        n += 1;
        if n.is_multiple_of(50) {
            refused += 1;
            log.push_str(NO_PODS);
        } else {
            log.push_str(HANDLED);
        }
        log.push('\n');
    }
    std::fs::write(&path, &log).unwrap();
    let p = path.to_str().unwrap();
    let (code, text, err) = meshtrace(&["explain", p], None);
    assert_eq!(code, 0, "{err}");
    let head = format!(
        "{n} endpoint picker lines (Gateway API Inference Extension); {refused} refusals listed\n"
    );
    assert!(text.contains(&head), "{}", &text[..text.len().min(1500)]);
    let (code, out, _) = meshtrace(&["explain", p, "-o", "json"], None);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let e = doc["epp"].as_array().expect("an epp array");
    assert_eq!(e.len(), refused as usize);
    assert!(e.iter().all(|x| x["status"] == 503));
}
