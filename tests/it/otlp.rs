//! Export of a rebuilt trace as OTLP/JSON, checked against the OpenTelemetry protobuf schema and posted to a fake receiver.
//!
//! Every example bundle and every lab bundle (real Envoy) is exported with `trace -o otlp`: one
//! span per hop, parent links forming one tree from the first hop, times from the log, the
//! failing hop alone in error. The documents are parsed by the official schema (PyPI
//! `opentelemetry-proto`, `google.protobuf.json_format`, strict: an unknown field fails); the test
//! is skipped with a printed reason only when that package is absent and `MESHTRACE_OTLP_SCHEMA`
//! is not set (`.ci/run` sets it, so CI enforces it). `--otlp-endpoint` is posted to a fake
//! OTLP/HTTP receiver on 127.0.0.1.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::common;

/// Example bundles and the request each traces.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "rhoai-400-app-error",
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
    ),
    ("kind-rbac-403", "211ebf7c-1bc2-4008-aa50-9730fa6300dc"),
    ("kind-429-ratelimit", "9f0c7f3e-5b1a-4c2d-8e6f-2a4b6c8d0e1f"),
    ("odh-out-of-mesh-client", "10.134.1.22:48216"),
    (
        "activator-503-scale-from-zero",
        "6a0d3c2e-41f7-4b8a-9e15-7c3b2d1f0a94",
    ),
    (
        "seldon-canary-mesh-gateway",
        "c2f7e8a1-9b3d-4e6f-8a2c-5d7e9f1b3c4a",
    ),
    (
        "agora-city-ingress-404",
        "0b7e4f19-3c2a-4d8e-b6f1-9a5c3e7d2b80",
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// (bundle folder, start) of every example and lab scenario.
fn cases() -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = EXAMPLES
        .iter()
        .map(|(b, s)| (root().join("testdata/bundles").join(b), s.to_string()))
        .collect();
    let lab = root().join("testdata/lab");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lab)
        .expect("testdata/lab")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expect.json").is_file())
        .collect();
    dirs.sort();
    for d in dirs {
        let e: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("expect.json")).unwrap()).unwrap();
        if let Some(id) = e["request_id"].as_str() {
            out.push((d, id.to_string()));
        }
    }
    assert!(out.len() >= 15, "example and lab bundles: {}", out.len());
    out
}

fn run(args: &[&str]) -> Output {
    common::meshtrace()
        .args(args)
        .output()
        .expect("run meshtrace")
}

fn trace(bundle: &Path, start: &str, output: &str) -> (Output, Value) {
    let o = run(&[
        "trace",
        start,
        "--bundle",
        bundle.to_str().unwrap(),
        "-o",
        output,
    ]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: -o {output} is not JSON ({e}): {}\n{}",
            bundle.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o, v)
}

fn attr<'a>(attrs: &'a Value, key: &str) -> Option<&'a Value> {
    attrs
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn nanos(v: &Value) -> i128 {
    v.as_str()
        .expect("nanoseconds are a decimal string")
        .parse()
        .expect("nanoseconds parse")
}

fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Every span with its resource's attributes.
fn spans(doc: &Value) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for rs in doc["resourceSpans"].as_array().expect("resourceSpans") {
        for ss in rs["scopeSpans"].as_array().expect("scopeSpans") {
            assert_eq!(ss["scope"]["name"], "meshtrace");
            for s in ss["spans"].as_array().expect("spans") {
                out.push((s.clone(), rs["resource"]["attributes"].clone()));
            }
        }
    }
    out
}

/// The checks of one export against the same request's `-o json` trace.
fn check_export(what: &str, doc: &Value, t: &Value) {
    let hops = t["hops"].as_array().expect("hops");
    let spans = spans(doc);
    assert_eq!(spans.len(), hops.len(), "{what}: one span per hop");
    let trace_id = spans[0].0["traceId"].as_str().unwrap().to_string();
    assert!(is_hex(&trace_id, 32), "{what}: trace id {trace_id}");
    assert_ne!(trace_id, "0".repeat(32));
    let mut by_id: HashMap<String, (Value, Value)> = HashMap::new();
    let mut by_hop: HashMap<u64, String> = HashMap::new();
    for (s, res) in &spans {
        assert_eq!(s["traceId"], trace_id.as_str(), "{what}: one trace");
        let id = s["spanId"].as_str().unwrap().to_string();
        assert!(is_hex(&id, 16), "{what}: span id {id}");
        let hop: u64 = attr(&s["attributes"], "meshtrace.hop").unwrap()["intValue"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            by_hop.insert(hop, id.clone()).is_none(),
            "{what}: hop {hop} twice"
        );
        assert!(
            by_id.insert(id, (s.clone(), res.clone())).is_none(),
            "{what}: span ids unique"
        );
    }
    let origin = t["origin_hop"].as_u64().unwrap();
    let succeeded = t["succeeded"].as_bool().unwrap();
    for h in hops {
        let idx = h["index"].as_u64().unwrap();
        let (s, res) = &by_id[&by_hop[&idx]];
        // Resource: the proxy.
        if let Some(pod) = h["pod"].as_str() {
            assert_eq!(attr(res, "k8s.pod.name").unwrap()["stringValue"], pod);
            let svc = attr(res, "service.name").unwrap()["stringValue"]
                .as_str()
                .unwrap();
            assert!(
                !svc.is_empty() && pod.starts_with(svc),
                "{what}: {svc} of {pod}"
            );
        }
        if let Some(ns) = h["namespace"].as_str() {
            assert_eq!(attr(res, "k8s.namespace.name").unwrap()["stringValue"], ns);
        }
        // Kind.
        let kind = if h["direction"] == "outbound" { 3 } else { 2 };
        assert_eq!(s["kind"], kind, "{what}: hop {idx} kind");
        // Status attribute.
        if let Some(st) = h["status"].as_u64() {
            assert_eq!(
                attr(&s["attributes"], "http.response.status_code").unwrap()["intValue"],
                st.to_string().as_str()
            );
        }
        // Times: start from the log, end = start + duration.
        let (start, end) = (nanos(&s["startTimeUnixNano"]), nanos(&s["endTimeUnixNano"]));
        assert!(end >= start, "{what}: hop {idx} ends before it starts");
        if let (Some(st), Some(d)) = (h["start"].as_str(), h["duration_ms"].as_u64()) {
            let want = chrono::DateTime::parse_from_rfc3339(st)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap() as i128;
            assert_eq!(start, want, "{what}: hop {idx} start");
            assert_eq!(
                end - start,
                i128::from(d) * 1_000_000,
                "{what}: hop {idx} duration"
            );
        }
        // Status: the failing hop alone is in error, with the cause.
        if !succeeded && idx == origin {
            assert_eq!(s["status"]["code"], 2, "{what}: origin hop {idx} in error");
            let msg = s["status"]["message"].as_str().unwrap();
            assert!(msg.contains(t["cause"].as_str().unwrap()), "{what}: {msg}");
            assert_eq!(
                attr(&s["attributes"], "meshtrace.cause").unwrap()["stringValue"],
                t["cause"]
            );
        } else {
            assert_eq!(s["status"]["code"], 0, "{what}: hop {idx} is not in error");
        }
        // Parent: an earlier hop, which started no later (1 ms of log rounding).
        match s.get("parentSpanId") {
            None => assert_eq!(idx, 1, "{what}: only the first hop is a root"),
            Some(p) => {
                let (ps, _) = by_id
                    .get(p.as_str().unwrap())
                    .unwrap_or_else(|| panic!("{what}: hop {idx}'s parent is not in the trace"));
                let pidx: u64 = attr(&ps["attributes"], "meshtrace.hop").unwrap()["intValue"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(pidx < idx, "{what}: hop {idx}'s parent is hop {pidx}");
                assert!(
                    nanos(&ps["startTimeUnixNano"]) <= start + 1_000_000,
                    "{what}: hop {idx} starts before its caller hop {pidx}"
                );
            }
        }
    }
    // The links form one tree from the first hop: following parents always reaches it.
    let first = &by_hop[&1];
    for id in by_id.keys() {
        let mut cur = id.clone();
        let mut seen = HashSet::new();
        while let Some(p) = by_id[&cur].0.get("parentSpanId") {
            assert!(seen.insert(cur.clone()), "{what}: parent cycle");
            cur = p.as_str().unwrap().to_string();
        }
        assert_eq!(
            &cur, first,
            "{what}: the chain of {id} does not reach the first hop"
        );
    }
}

#[test]
fn every_bundle_exports_one_span_per_hop_in_one_tree() {
    let mut docs = Vec::new();
    for (bundle, start) in cases() {
        let what = format!("{} {start}", bundle.display());
        let (o, doc) = trace(&bundle, &start, "otlp");
        let (oj, t) = trace(&bundle, &start, "json");
        assert_eq!(o.status.code(), oj.status.code(), "{what}: exit code");
        check_export(&what, &doc, &t);
        // Re-exports match: the ids are stable.
        let (_, again) = trace(&bundle, &start, "otlp");
        assert_eq!(doc, again, "{what}: a second export differs");
        docs.push((what, doc));
    }
    // Different requests, different traces.
    let ids: HashSet<String> = docs
        .iter()
        .map(|(_, d)| spans(d)[0].0["traceId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), docs.len(), "one trace id per request");
    schema_check(&docs);
}

#[test]
fn retries_hang_under_the_attempt_that_sent_them() {
    let bundle = root().join("testdata/lab/model-503-retries");
    let (_, doc) = trace(&bundle, "580800c0-6ff0-40a5-882a-800f0764fec0", "otlp");
    let (_, t) = trace(&bundle, "580800c0-6ff0-40a5-882a-800f0764fec0", "json");
    let spans = spans(&doc);
    let id_of: HashMap<u64, &Value> = spans
        .iter()
        .map(|(s, _)| {
            let hop: u64 = attr(&s["attributes"], "meshtrace.hop").unwrap()["intValue"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            (hop, s)
        })
        .collect();
    // Each activator attempt's parent is the local-gateway attempt that sent it: same x-request-id.
    let hops = t["hops"].as_array().unwrap();
    let mut checked = 0;
    for h in hops
        .iter()
        .filter(|h| h["role"] == "activator" && h["direction"] == "inbound")
    {
        let s = id_of[&h["index"].as_u64().unwrap()];
        let parent = spans
            .iter()
            .find(|(p, _)| p["spanId"] == s["parentSpanId"])
            .map(|(p, _)| p)
            .unwrap();
        let ph = &hops[attr(&parent["attributes"], "meshtrace.hop").unwrap()["intValue"]
            .as_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
            - 1];
        assert_eq!(ph["role"], "local-gateway");
        assert_eq!(ph["request_id"], h["request_id"], "hop {}", h["index"]);
        checked += 1;
    }
    assert_eq!(checked, 9, "nine activator attempts");
}

#[test]
fn a_logged_traceparent_is_the_trace_id() {
    // A custom format that logs the W3C traceparent header: the exported trace keeps its id, so
    // the spans join the application's own spans in the tracing UI.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gw.log");
    let fmt = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %DURATION% \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% \"%REQ(TRACEPARENT)%\"";
    std::fs::write(
        &log,
        "[2026-06-03T09:10:00.123Z] \"POST /v1/models/m:predict HTTP/1.1\" 503 UF upstream_reset_before_response_started{connection_failure} 12 \"1b4f0c6e-0d0e-4c55-9d0b-6f1c2b3a4d5e\" \"m.example.com\" \"10.0.0.7:8012\" outbound|80||m.ns.svc.cluster.local 10.0.0.5:8443 10.0.0.1:51234 \"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"\n",
    )
    .unwrap();
    let o = run(&[
        "trace",
        "1b4f0c6e-0d0e-4c55-9d0b-6f1c2b3a4d5e",
        log.to_str().unwrap(),
        "--log-format",
        fmt,
        "-o",
        "otlp",
    ]);
    let doc: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let s = &spans(&doc)[0].0;
    assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        attr(&s["attributes"], "http.request.method").unwrap()["stringValue"],
        "POST"
    );
    assert_eq!(
        attr(&s["attributes"], "url.path").unwrap()["stringValue"],
        "/v1/models/m:predict"
    );
    assert_eq!(s["status"]["code"], 2);
}

/// A Python interpreter with the official OpenTelemetry schema, or why there is none.
fn schema_python() -> Result<String, String> {
    let enforced = std::env::var("MESHTRACE_OTLP_SCHEMA")
        .ok()
        .filter(|v| !v.is_empty());
    let mut tried = Vec::new();
    let mut candidates: Vec<String> = Vec::new();
    if let Some(v) = &enforced
        && v != "1"
    {
        candidates.push(v.clone());
    }
    candidates.push(root().join(".lab/venv/bin/python3").display().to_string());
    candidates.push("python3".into());
    for py in candidates {
        let ok = std::process::Command::new(&py)
            .args([
                "-c",
                "import opentelemetry.proto.collector.trace.v1.trace_service_pb2, google.protobuf.json_format",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(py);
        }
        tried.push(py);
    }
    let why = format!(
        "no Python with the PyPI packages opentelemetry-proto and protobuf (tried {})",
        tried.join(", ")
    );
    match enforced {
        Some(_) => panic!("MESHTRACE_OTLP_SCHEMA is set but {why}"),
        None => Err(why),
    }
}

/// The official schema: OTLP/JSON differs from protobuf's JSON mapping only in its hex ids
/// (opentelemetry-proto's `docs/specification.md`), so ids are turned to base64 and checked for
/// length, and the rest goes through `json_format.Parse`, which refuses unknown fields, wrong
/// types and unknown enum values.
const SCHEMA_SCRIPT: &str = r#"
import base64, json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
docs = json.load(sys.stdin)
for name, doc in docs:
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    msg = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(doc), msg)
    n = 0
    for rs in msg.resource_spans:
        assert any(a.key == "service.name" for a in rs.resource.attributes), name
        for ss in rs.scope_spans:
            for s in ss.spans:
                n += 1
                assert len(s.trace_id) == 16 and len(s.span_id) == 8, name
                assert s.parent_span_id == b"" or len(s.parent_span_id) == 8, name
                assert s.kind in (s.SPAN_KIND_SERVER, s.SPAN_KIND_CLIENT), name
                assert s.end_time_unix_nano >= s.start_time_unix_nano > 0, name
    print(name, n)
"#;

fn schema_check(docs: &[(String, Value)]) {
    let py = match schema_python() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("otlp: schema check skipped: {why}; set MESHTRACE_OTLP_SCHEMA to enforce it");
            return;
        }
    };
    let mut child = std::process::Command::new(&py)
        .args(["-c", SCHEMA_SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    let input = serde_json::to_vec(docs).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the OpenTelemetry schema refused an export: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let checked = String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(checked, docs.len(), "every export parsed by the schema");
}

#[test]
fn the_schema_refuses_what_is_not_otlp() {
    // The schema check is real: a misspelt field, a base64-sized id and a string enum fail.
    let Ok(py) = schema_python() else {
        eprintln!("otlp: schema check skipped: no opentelemetry-proto");
        return;
    };
    let bundle = root().join("testdata/bundles/kind-rbac-403");
    let (_, doc) = trace(&bundle, "211ebf7c-1bc2-4008-aa50-9730fa6300dc", "otlp");
    let text = serde_json::to_string(&doc).unwrap();
    for (bad, why) in [
        (
            text.replacen("\"startTimeUnixNano\"", "\"startTimeUnixNanos\"", 1),
            "unknown field",
        ),
        (
            text.replacen("\"kind\":2", "\"kind\":\"SERVER\"", 1),
            "bad enum",
        ),
        (
            text.replacen("\"intValue\":\"", "\"intValue\":\"x", 1),
            "bad int64",
        ),
    ] {
        assert_ne!(bad, text, "{why}: the document changed");
        let docs = vec![(
            why.to_string(),
            serde_json::from_str::<Value>(&bad).unwrap(),
        )];
        let mut child = std::process::Command::new(&py)
            .args(["-c", SCHEMA_SCRIPT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&serde_json::to_vec(&docs).unwrap())
            .unwrap();
        assert!(!child.wait().unwrap().success(), "{why}: accepted");
    }
}

/// What the fake receiver got.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A fake OTLP/HTTP receiver on 127.0.0.1: answers every request with `status` and `body`
/// (`status` 0: accepts and never answers).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(status: u16, answer: &'static str) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().take(8) {
                let Ok(mut c) = conn else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut first = String::new();
                if r.read_line(&mut first).is_err() {
                    continue;
                }
                let mut headers = HashMap::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let mut parts = first.split_whitespace();
                g.lock().unwrap().push(Received {
                    method: parts.next().unwrap_or("").into(),
                    path: parts.next().unwrap_or("").into(),
                    headers,
                    body,
                });
                if status == 0 {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    continue;
                }
                let _ = write!(
                    c,
                    "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Receiver { url, got }
    }
}

const RHOAI: &str = "testdata/bundles/rhoai-400-app-error";
const RHOAI_ID: &str = "4791d0d3-e742-4eac-8c56-4c87eb22f1a9";

fn post(endpoint: &str, extra: &[&str]) -> Output {
    let bundle = root().join(RHOAI);
    let mut args = vec![
        "trace",
        RHOAI_ID,
        "--bundle",
        bundle.to_str().unwrap(),
        "--otlp-endpoint",
        endpoint,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn the_trace_is_posted_to_the_receiver() {
    let (_, want) = trace(&root().join(RHOAI), RHOAI_ID, "otlp");
    for (suffix, path) in [
        ("", "/v1/traces"),
        ("/", "/v1/traces"),
        ("/v1/traces", "/v1/traces"),
        ("/otlp", "/otlp/v1/traces"),
    ] {
        let r = Receiver::start(200, "{}");
        let o = post(&format!("{}{suffix}", r.url), &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        // The table is printed as usual and the exit code is the verdict's.
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("Verdict: 400 app_error at hop 5"));
        assert!(err.contains("sent 5 span(s) of trace"), "{err}");
        let got = r.got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].method, "POST");
        assert_eq!(got[0].path, path, "endpoint {}{suffix}", r.url);
        assert_eq!(got[0].headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(body, want, "the body is the -o otlp document");
    }
}

#[test]
fn receiver_errors_are_one_sentence_each() {
    let one_error = |o: &Output| -> String {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
        errors[0].to_string()
    };
    let r = Receiver::start(400, "unsupported content type\n");
    let e = one_error(&post(&r.url, &[]));
    assert!(
        e.contains("refused the trace with HTTP 400") && e.contains("unsupported content type"),
        "{e}"
    );
    let r = Receiver::start(503, "");
    let e = one_error(&post(&r.url, &[]));
    assert!(e.contains("failed with HTTP 503"), "{e}");
    // Nothing listens: bind a port, then free it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = one_error(&post(&format!("http://127.0.0.1:{port}"), &[]));
    assert!(e.contains("cannot reach the OTLP receiver"), "{e}");
    // Accepts and never answers.
    let r = Receiver::start(0, "");
    let t0 = std::time::Instant::now();
    let e = one_error(&post(&r.url, &["--otlp-timeout", "1s"]));
    assert!(e.contains("did not answer within 1 s"), "{e}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(4));
    // Not an http:// URL.
    let e = one_error(&post("tempo:4318", &[]));
    assert!(e.contains("--otlp-endpoint"), "{e}");
}

#[test]
fn a_partial_success_is_reported() {
    let r = Receiver::start(
        200,
        r#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"span too old"}}"#,
    );
    let o = post(&r.url, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("rejected 2 span(s): span too old"), "{err}");
}
