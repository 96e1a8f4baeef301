//! Large logs take the streaming paths (needle scan with a per-window index for `trace`,
//! failures-only parsing on two threads for `failures`): on an example bundle whose logs are
//! padded past the streaming threshold with realistic traffic, the verdicts, hops and line
//! numbers must be those of the small bundle read whole.

use crate::common;
use common::copy_dir;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn logs_of(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            logs_of(&p, out);
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
}

/// Successful requests of another model, one per 10 ms from `from` (`HH:MM` on the bundle's day),
/// on their own addresses: nothing the traced request or a failure could be confused with.
fn traffic(from_minute: u32, n: usize) -> (String, usize) {
    let mut s = String::with_capacity(n * 420);
    for i in 0..n {
        let ms = from_minute as usize * 60_000 + i * 10;
        let (h, m, sec, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        s.push_str(&format!(
            "[2024-06-03T{h:02}:{m:02}:{sec:02}.{milli:03}Z] \"POST /v2/models/other/infer HTTP/1.1\" 200 - via_upstream - \"-\" 164 212 {d} {u} \"10.200.{a}.{b}\" \"python-requests/2.31.0\" \"00000000-0000-4000-8000-{i:012}\" \"other-predictor.team.svc.cluster.local\" \"10.201.0.7:8012\" outbound|80||other-predictor-00001.team.svc.cluster.local 10.202.{a}.{b}:{p} 172.31.9.9:80 10.203.{a}.{b}:{p} - -\n",
            d = 20 + i % 30,
            u = 19 + i % 30,
            a = i / 250 % 250,
            b = i % 250 + 1,
            p = 20_000 + i % 40_000,
        ));
    }
    (s, n)
}

/// Copy `bundle` and pad each log with ~9 MiB of earlier and ~1 MiB of later traffic.
/// Returns the copy and the number of lines put in front of each log.
fn padded(bundle: &str, dir: &Path) -> (PathBuf, usize) {
    let to = dir.join(bundle);
    copy_dir(&repo().join("testdata/bundles").join(bundle), &to);
    let (before, lines) = traffic(7 * 60, 22_000); // 07:00, before anything in the bundle
    let (after, _) = traffic(11 * 60, 2_500); // 11:00, after it
    let mut logs = Vec::new();
    logs_of(&to.join("logs"), &mut logs);
    assert!(!logs.is_empty());
    for l in logs {
        let body = std::fs::read(&l).unwrap();
        let mut all = before.clone().into_bytes();
        all.extend_from_slice(&body);
        if !body.ends_with(b"\n") {
            all.push(b'\n');
        }
        all.extend_from_slice(after.as_bytes());
        assert!(
            all.len() > 8 << 20,
            "{} is only {} bytes",
            l.display(),
            all.len()
        );
        std::fs::write(&l, all).unwrap();
    }
    (to, lines)
}

fn run_json(args: &[&str]) -> Value {
    let out = common::meshtrace().args(args).output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `meshtrace explain <file> -o json` (exit 0): the document and what was said on stderr.
fn explain_json(path: &Path) -> (Value, String) {
    let out = common::meshtrace()
        .args(["explain", path.to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc = serde_json::from_slice(&out.stdout).unwrap();
    (doc, String::from_utf8(out.stderr).unwrap())
}

/// `meshtrace trace <id> --bundle <bundle> -o json`.
fn trace_json(id: &str, bundle: &Path) -> Value {
    run_json(&[
        "trace",
        id,
        "--bundle",
        bundle.to_str().unwrap(),
        "-o",
        "json",
    ])
}

/// (role, file name, line, status) of every hop.
fn hops(doc: &Value, shift: u64) -> Vec<(String, String, u64, Value)> {
    doc["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let file = h["evidence"]["file"].as_str().unwrap();
            let tail = file.rsplit('/').take(3).collect::<Vec<_>>().join("/");
            (
                h["role"].as_str().unwrap().to_string(),
                tail,
                h["evidence"]["line"].as_u64().unwrap() - shift,
                h["status"].clone(),
            )
        })
        .collect()
}

#[test]
fn trace_on_large_logs_finds_the_same_hops_and_lines_as_on_small_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (big, shift) = padded("rhoai-400-app-error", tmp.path());
    let small = repo().join("testdata/bundles/rhoai-400-app-error");
    // The seed 000 request: the id changes at the gateway, so later rounds follow a new id and
    // connection addresses inside the request's time range.
    for id in [
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "f7beed8d-a4db-4aaa-9292-edbf3e186e29",
    ] {
        let want = trace_json(id, &small);
        let got = trace_json(id, &big);
        assert_eq!(got["cause"], want["cause"], "{id}");
        assert_eq!(got["origin_hop"], want["origin_hop"], "{id}");
        assert_eq!(got["request_ids"], want["request_ids"], "{id}");
        assert_eq!(hops(&got, shift as u64), hops(&want, 0), "{id}");
        assert_eq!(got["hops"].as_array().unwrap().len(), 5, "{id}");
    }
}

#[test]
fn failures_on_large_logs_match_the_small_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (big, _) = padded("kind-rbac-403", tmp.path());
    let small = repo().join("testdata/bundles/kind-rbac-403");
    let want = run_json(&[
        "failures",
        "--bundle",
        small.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let got = run_json(&["failures", "--bundle", big.to_str().unwrap(), "-o", "json"]);
    assert!(!want["groups"].as_array().unwrap().is_empty());
    assert_eq!(got["failed"], want["failed"]);
    let key = |g: &Value| {
        (
            g["cause"].to_string(),
            g["status"].to_string(),
            g["origin_role"].to_string(),
            g["target"].to_string(),
            g["count"].to_string(),
            g["example_request_ids"].to_string(),
        )
    };
    let w: Vec<_> = want["groups"].as_array().unwrap().iter().map(key).collect();
    let g: Vec<_> = got["groups"].as_array().unwrap().iter().map(key).collect();
    assert_eq!(g, w);
}

/// The seed 000 request (5 lines, x-request-id changed at the gateway) as a template: start
/// offset and duration (ms) of each hop, and its line, where `{T}` is the start, `{D}`/`{U}`
/// the duration and upstream time, `{A}`/`{B}` the outer and inner ids and `{P}` the gateway's
/// connection port.
const SEED_000: &[(u64, u64, &str)] = &[
    (
        11,
        4,
        r#"[{T}] "GET / HTTP/1.1" 400 - via_upstream - "-" 0 32 {D} {U} "10.134.0.2,10.135.0.43, 127.0.0.6" "curl/8.6.0" "{B}" "172.31.58.48:80" "10.133.2.13:8012" inbound|8012|| 127.0.0.6:45919 10.133.2.13:8012 127.0.0.6:0 outbound_.80_._.test-predictor-00001-private.aiproject.svc.cluster.local default"#,
    ),
    (
        6,
        12,
        r#"[{T}] "GET / HTTP/1.1" 400 - via_upstream - "-" 0 32 {D} {U} "10.134.0.2,10.135.0.43, 127.0.0.6" "curl/8.6.0" "{B}" "172.31.58.48:80" "10.133.2.13:8012" outbound|80||test-predictor-00001-private.aiproject.svc.cluster.local 10.135.0.44:50332 172.31.58.48:80 127.0.0.6:0 - default"#,
    ),
    (
        5,
        13,
        r#"[{T}] "GET / HTTP/1.1" 400 - via_upstream - "-" 0 32 {D} {U} "10.134.0.2,10.135.0.43" "curl/8.6.0" "{B}" "test-predictor.aiproject.svc.cluster.local" "10.135.0.44:8012" inbound|8012|| 127.0.0.6:40375 10.135.0.44:8012 10.135.0.43:0 outbound_.80_._.test-predictor-00001.aiproject.svc.cluster.local default"#,
    ),
    (
        2,
        20,
        r#"[{T}] "GET / HTTP/2" 400 - via_upstream - "-" 0 32 {D} {U} "10.134.0.2,10.135.0.43" "curl/8.6.0" "{B}" "test-predictor.aiproject.svc.cluster.local" "10.135.0.44:8012" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 10.135.0.43:45990 10.135.0.43:8081 10.135.0.43:{P} outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#,
    ),
    (
        0,
        26,
        r#"[{T}] "GET / HTTP/2" 400 - via_upstream - "-" 0 32 {D} {U} "10.134.0.2" "curl/8.6.0" "{A}" "test-predictor.aiproject.svc.cluster.local" "10.135.0.43:8081" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.135.0.43:{P} 10.135.0.43:8443 10.134.0.2:56558 test-aiproject.apps.mycluster.example.com -"#,
    ),
];

/// 6 000 requests, one every 50 ms (five minutes: several settling rounds), ~12 MB: the
/// streaming path. Each changes its id at the gateway, so its lines form two groups that must
/// be joined in whichever round they are settled. Requests take up to 2 s and overlap, and
/// lines are written as their hops end, so one request's lines are spread among others.
fn overlapping_requests(n: u64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2024-06-03T09:00:00Z").unwrap();
    let mut lines: Vec<(i64, String)> = Vec::new();
    for i in 0..n {
        let scale = 1 + i % 77;
        for (offset, duration, line) in SEED_000 {
            let start = (i * 50 + offset * scale) as i64;
            let t = base + chrono::Duration::milliseconds(start);
            let text = line
                .replace(
                    "{T}",
                    &t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                )
                .replace("{D}", &(duration * scale).to_string())
                .replace("{U}", &(duration * scale - 1).to_string())
                .replace("{A}", &format!("aaaaaaaa-0000-4000-8000-{i:012}"))
                .replace("{B}", &format!("bbbbbbbb-0000-4000-8000-{i:012}"))
                .replace("{P}", &(10_000 + i % 50_000).to_string());
            lines.push((start + (duration * scale) as i64, text));
        }
    }
    lines.sort_by_key(|(end, _)| *end);
    let mut log = String::new();
    for (_, l) in &lines {
        log.push_str(l);
        log.push('\n');
    }
    assert!(log.len() > 8 << 20, "{} bytes", log.len());
    log
}

#[test]
fn streamed_failures_count_each_request_once_across_settling_rounds() {
    let n = 6_000u64;
    let log = overlapping_requests(n);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("gateway-and-activator.log");
    std::fs::write(&path, &log).unwrap();
    let got = run_json(&["failures", path.to_str().unwrap(), "-o", "json"]);
    assert_eq!(got["requests"], n, "{got:#}");
    assert_eq!(got["failed"], n);
    let groups = got["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{got:#}");
    assert_eq!(groups[0]["cause"], "app_error");
    assert_eq!(groups[0]["origin_role"], "predictor");
    assert_eq!(groups[0]["count"], n);
    assert_eq!(
        groups[0]["example_request_ids"],
        serde_json::json!([
            "aaaaaaaa-0000-4000-8000-000000000000",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "aaaaaaaa-0000-4000-8000-000000000002"
        ])
    );
    assert_eq!(groups[0]["first_seen"], "2024-06-03T09:00:00.000Z");
    assert_eq!(groups[0]["last_seen"], "2024-06-03T09:04:59.950Z");
}

/// The lines of `n` requests at one proxy (`listener`, e.g. `172.31.9.9:80`), one request per
/// 10 ms from 07:00; `inner` hops start 2 ms later and end 4 ms sooner (nested in the outer
/// hop's time).
fn hop_lines(n: usize, listener: &str, inner: bool) -> String {
    let mut s = String::with_capacity(n * 420);
    for i in 0..n {
        let ms = 7 * 3_600_000 + i * 10 + if inner { 2 } else { 0 };
        let (h, m, sec, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        s.push_str(&format!(
            "[2024-06-03T{h:02}:{m:02}:{sec:02}.{milli:03}Z] \"POST /v2/models/other/infer HTTP/1.1\" 200 - via_upstream - \"-\" 164 212 {d} {d} \"10.200.{a}.{b}\" \"python-requests/2.31.0\" \"00000000-0000-4000-8000-{i:012}\" \"other-predictor.team.svc.cluster.local\" \"10.201.0.7:8012\" outbound|80||other-predictor-00001.team.svc.cluster.local 10.202.{a}.{b}:{p} {listener} 10.203.{a}.{b}:{p} - -\n",
            d = if inner { 20 } else { 26 },
            a = i / 250 % 250,
            b = i % 250 + 1,
            p = 20_000 + i % 40_000,
        ));
    }
    s
}

/// Two proxies' logs one after another in one large file, each request with a line in both:
/// a file is cut into its time-ordered runs and merged, so each request is listed once with
/// both lines; standard input cannot be cut, so there the late lines are said instead of
/// listing parts of requests silently.
#[test]
fn explain_joins_proxies_logs_one_after_another_in_one_file() {
    let n = 22_000;
    let log = format!(
        "{}{}",
        hop_lines(n, "172.31.9.9:80", false),
        hop_lines(n, "10.201.0.7:8012", true)
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("two-proxies.log");
    std::fs::write(&path, &log).unwrap();
    let (doc, err) = explain_json(&path);
    let requests = doc["requests"].as_array().unwrap();
    assert_eq!(requests.len(), n);
    assert!(
        requests
            .iter()
            .all(|r| r["lines"].as_array().unwrap().len() == 2)
    );
    // Line numbers of the second part count the first part's lines (the inner hop ended
    // first, so it is read first).
    assert_eq!(requests[0]["lines"], serde_json::json!([n + 1, 1]));
    assert_eq!(doc["records"].as_array().unwrap().len(), 2 * n);
    assert_eq!(doc["records"][n]["line"], n + 1);
    assert!(!err.contains("ended up to"), "{err}");

    let out = common::meshtrace()
        .args(["explain", "-o", "json"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("<stdin>:{} and", n + 1)) && err.contains("ended up to"),
        "{err}"
    );
    assert!(
        err.contains("give each proxy's log as its own file"),
        "{err}"
    );
}

/// Ten requests a millisecond (a busy gateway): even the last 5 s of the log hold far more
/// than a settling round keeps, so rounds keep only the newest records and say so. Every
/// request is a single line, so each is still listed and counted exactly once.
#[test]
fn a_crowded_log_is_settled_in_bounded_rounds_and_says_so() {
    let n = 24_000;
    let mut log = String::with_capacity(n * 420);
    for i in 0..n {
        let ms = 9 * 3_600_000 + i / 10;
        let (h, m, sec, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        log.push_str(&format!(
            "[2024-06-03T{h:02}:{m:02}:{sec:02}.{milli:03}Z] \"POST /v2/models/other/infer HTTP/1.1\" {code} - via_upstream - \"-\" 164 212 0 0 \"10.200.{a}.{b}\" \"python-requests/2.31.0\" \"00000000-0000-4000-8000-{i:012}\" \"other-predictor.team.svc.cluster.local\" \"10.201.0.7:8012\" outbound|80||other-predictor-00001.team.svc.cluster.local 10.202.{a}.{b}:{p} 172.31.9.9:80 10.203.{a}.{b}:{p} - -\n",
            code = if i % 8 == 0 { 500 } else { 200 },
            a = i / 250 % 250,
            b = i % 250 + 1,
            p = 20_000 + i % 40_000,
        ));
    }
    assert!(log.len() > 8 << 20, "below the streaming threshold");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("busy.log");
    std::fs::write(&path, &log).unwrap();
    let (doc, err) = explain_json(&path);
    assert_eq!(doc["requests"].as_array().unwrap().len(), n);
    assert!(
        err.contains("settling round(s) kept only the newest records"),
        "{err}"
    );
    let out = common::meshtrace()
        .args(["failures", path.to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counted: u64 = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, n as u64 / 8);
}

#[test]
fn streamed_explain_gives_the_document_of_the_in_memory_one() {
    // A large file is explained as requests complete; standard input is read whole. Both must
    // give the same requests (in another order), records and skipped lines.
    let mut log = overlapping_requests(6_000);
    log.push_str("2024-06-03T09:06:00.000000Z\tinfo\tEnvoy proxy is ready\n");
    log.push_str("[2024-06-03T09:06:01.000Z] \"GET / HTTP/1.1\" 2x0 garbage\n");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.log");
    std::fs::write(&path, &log).unwrap();
    let streamed = run_json(&["explain", path.to_str().unwrap(), "-o", "json"]);
    let whole = {
        let out = common::meshtrace()
            .args(["explain", "-o", "json"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout)
            .unwrap()
            .replace("<stdin>", path.to_str().unwrap());
        serde_json::from_str::<Value>(&text).unwrap()
    };
    assert_eq!(streamed["schema"], whole["schema"]);
    let sorted = |doc: &Value| {
        let mut v: Vec<String> = doc["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        v.sort();
        v
    };
    let (a, b) = (sorted(&streamed), sorted(&whole));
    assert_eq!(a.len(), 12_000); // two ids per request
    assert!(a == b, "requests differ");
    assert_eq!(streamed["records"], whole["records"]);
    assert_eq!(streamed["skipped"], whole["skipped"]);
    assert_eq!(streamed["skipped"].as_array().unwrap().len(), 2);

    // The text form: a block per request as it completes, the totals at the end.
    let out = common::meshtrace()
        .args(["explain", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("\nRequest ").count(), 12_000);
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    assert_eq!(
        tail[2],
        format!(
            "30000 access-log records in 12000 requests (12000 failed) from {}",
            path.display()
        )
    );
    assert_eq!(tail[1], "Skipped 2 lines: 1 istio-log, 1 malformed");
    assert!(tail[0].contains("big.log:30002:"), "{}", tail[0]);
}

#[test]
fn trace_in_a_tar_gz_with_large_logs_searches_the_spooled_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (big, shift) = padded("rhoai-400-app-error", tmp.path());
    let archive = tmp.path().join("bundle.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all(".", &big).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let small = repo().join("testdata/bundles/rhoai-400-app-error");
    let id = "4791d0d3-e742-4eac-8c56-4c87eb22f1a9";
    let want = trace_json(id, &small);
    let got = trace_json(id, &archive);
    assert_eq!(got["cause"], want["cause"]);
    assert_eq!(got["request_ids"], want["request_ids"]);
    assert_eq!(hops(&got, shift as u64), hops(&want, 0));
}

/// One Istio JSON access-log record (the keys of Istio's default JSON format).
#[allow(clippy::too_many_arguments)]
fn json_record(
    start: &str,
    id: &str,
    status: u16,
    flags: &str,
    details: &str,
    upstream_host: &str,
    cluster: &str,
    upstream_local: &str,
    listener: &str,
    client: &str,
) -> Value {
    serde_json::json!({
        "start_time": start,
        "method": "POST",
        "path": "/v2/models/test/infer",
        "protocol": "HTTP/1.1",
        "response_code": status,
        "response_flags": flags,
        "response_code_details": details,
        "connection_termination_details": null,
        "upstream_transport_failure_reason": null,
        "bytes_received": 164,
        "bytes_sent": 95,
        "duration": 12,
        "upstream_service_time": null,
        "x_forwarded_for": "10.128.2.15",
        "user_agent": "curl/8.6.0",
        "request_id": id,
        "authority": "test-predictor.aiproject.svc.cluster.local",
        "upstream_host": upstream_host,
        "upstream_cluster": cluster,
        "upstream_local_address": upstream_local,
        "downstream_local_address": listener,
        "downstream_remote_address": client,
        "requested_server_name": null,
        "route_name": "default"
    })
}

/// Successful requests of another model in Istio's JSON format, one per 10 ms from `from_s`
/// (seconds of the day), on their own addresses.
fn json_traffic(from_s: u64, n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let ms = from_s * 1000 + i * 10;
            json_record(
                &format!(
                    "2024-06-03T{:02}:{:02}:{:02}.{:03}Z",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000
                ),
                &format!("00000000-0000-4000-8000-{i:012}"),
                if i % 50 == 7 { 503 } else { 200 },
                if i % 50 == 7 { "UF" } else { "-" },
                if i % 50 == 7 {
                    "upstream_reset_before_response_started{connection_failure}"
                } else {
                    "via_upstream"
                },
                "10.201.0.7:8012",
                "outbound|80||other-predictor-00001.team.svc.cluster.local",
                &format!(
                    "10.202.{}.{}:{}",
                    i / 250 % 250,
                    i % 250 + 1,
                    20_000 + i % 40_000
                ),
                "172.31.9.9:80",
                &format!(
                    "10.203.{}.{}:{}",
                    i / 250 % 250,
                    i % 250 + 1,
                    20_000 + i % 40_000
                ),
            )
        })
        .collect()
}

#[test]
fn trace_on_a_large_pretty_printed_json_log_reads_each_record_whole() {
    // `jq .` over a JSON access log writes each record over many lines; past the streaming
    // threshold `trace` searches the file for the id and must read the record around the one
    // line that holds it (and, in later rounds, around the lines holding connection addresses).
    let id = "5d0c2d1e-2f43-4bd6-9d67-0c8d3a0f7e21";
    let hops = [
        json_record(
            "2024-06-03T09:00:00.100Z",
            id,
            503,
            "-",
            "via_upstream",
            "10.135.0.43:8081",
            "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
            "10.135.0.43:40100",
            "10.135.0.43:8443",
            "10.128.2.15:51000",
        ),
        json_record(
            "2024-06-03T09:00:00.102Z",
            id,
            503,
            "UF",
            "upstream_reset_before_response_started{connection_failure}",
            "10.135.0.44:8012",
            "outbound|80||test-predictor-00001.aiproject.svc.cluster.local",
            "10.135.0.43:40200",
            "10.135.0.43:8081",
            "10.135.0.43:40100",
        ),
    ];
    let before = json_traffic(7 * 3600, 12_000);
    let after = json_traffic(11 * 3600, 600);
    let tmp = tempfile::tempdir().unwrap();
    let (mut flat, mut pretty) = (String::new(), String::new());
    let mut starts = Vec::new();
    for (k, r) in before.iter().chain(&hops).chain(&after).enumerate() {
        flat.push_str(&serde_json::to_string(r).unwrap());
        flat.push('\n');
        if (before.len()..before.len() + hops.len()).contains(&k) {
            starts.push(pretty.matches('\n').count() as u64 + 1);
        }
        pretty.push_str(&serde_json::to_string_pretty(r).unwrap());
        pretty.push('\n');
    }
    assert!(pretty.len() > 8 << 20, "only {} bytes", pretty.len());
    // The small log holds the hops and a little traffic: read whole.
    let small: String = flat
        .lines()
        .skip(before.len() - 20)
        .take(40)
        .collect::<Vec<_>>()
        .join("\n");
    let (flat_path, pretty_path) = (tmp.path().join("flat.log"), tmp.path().join("pretty.log"));
    std::fs::write(&flat_path, small + "\n").unwrap();
    std::fs::write(&pretty_path, &pretty).unwrap();
    let trace = |p: &Path| run_json(&["trace", id, p.to_str().unwrap(), "-o", "json"]);
    let want = trace(&flat_path);
    let got = trace(&pretty_path);
    assert_eq!(want["cause"], "upstream_connect_failure", "{want}");
    for k in ["cause", "status", "origin_hop", "request_ids"] {
        assert_eq!(got[k], want[k], "{k}: {got}");
    }
    let status_and_line = |doc: &Value| -> Vec<(Value, u64)> {
        doc["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["status"].clone(), h["evidence"]["line"].as_u64().unwrap()))
            .collect()
    };
    // Each hop is cited at the first line of its record.
    let got_hops = status_and_line(&got);
    assert_eq!(got_hops.len(), 2, "{got}");
    assert_eq!(
        got_hops.iter().map(|h| h.1).collect::<Vec<_>>(),
        starts,
        "{got}"
    );
    assert_eq!(
        got_hops.iter().map(|h| h.0.clone()).collect::<Vec<_>>(),
        status_and_line(&want)
            .iter()
            .map(|h| h.0.clone())
            .collect::<Vec<_>>()
    );
}

/// `failures -o json` of `args`, with `stdin` written to it.
fn failures_counts(args: &[&str], stdin: Option<&[u8]>) -> (u64, u64) {
    use std::io::Write;
    let mut cmd = common::meshtrace();
    cmd.args(["failures", "-o", "json"]).args(args);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        doc["records_read"].as_u64().unwrap(),
        doc["failed"].as_u64().unwrap(),
    )
}

#[test]
fn failures_since_reads_a_large_log_once_whole_however_it_is_split() {
    // `--since 2h` with no collection time counts back from the newest record: the logs are read
    // whole first. From standard input, a streaming reader started before that took its first
    // bytes; from a file of 16 MiB or more, read in two halves, the record written over the
    // middle line was lost.
    let records = json_traffic(7 * 3600, 26_000);
    let failed = records.iter().filter(|r| r["response_code"] == 503).count() as u64;
    let mut pretty = String::new();
    for r in &records {
        pretty.push_str(&serde_json::to_string_pretty(r).unwrap());
        pretty.push('\n');
    }
    assert!(pretty.len() > 16 << 20, "only {} bytes", pretty.len());
    // The first line after the middle is inside a record, not at its start.
    let mid = pretty.len() / 2 + pretty[pretty.len() / 2..].find('\n').unwrap() + 1;
    assert!(!pretty[mid..].starts_with('{'));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pretty.log");
    std::fs::write(&path, &pretty).unwrap();
    let want = (records.len() as u64, failed);
    assert_eq!(
        failures_counts(&["--since", "2h", path.to_str().unwrap()], None),
        want
    );
    // Whether the streaming reader took bytes first was a race between threads (lost in one
    // run out of several): five runs.
    let some = &records[..3_000];
    let flat: String = some
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let want = (
        some.len() as u64,
        some.iter().filter(|r| r["response_code"] == 503).count() as u64,
    );
    for _ in 0..5 {
        assert_eq!(
            failures_counts(&["--since", "2h", "-"], Some(flat.as_bytes())),
            want
        );
    }
}

/// A load generator's requests through a gateway and a sidecar, every one with the same
/// x-request-id, `ms` apart; every eighth answered 503 by the model.
fn fixed_id_traffic(n: u64, ms: u64) -> String {
    let t = |ms: u64| {
        format!(
            "2024-05-01T{:02}:{:02}:{:02}.{:03}Z",
            10 + ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut out = String::new();
    for k in 0..n {
        let (at, status) = (k * ms, if k % 8 == 5 { 503 } else { 200 });
        let (client, hop) = (20_000 + k % 30_000, 50_000 + k % 15_000);
        out.push_str(&format!(
            "[{}] \"POST /v1/models/a:predict HTTP/1.1\" {status} - via_upstream - \"-\" 10 32 30 29 \"10.1.0.2\" \"load\" \"fixed-id\" \"a.example.com\" \"10.0.0.44:8012\" outbound|80||a-predictor.ns.svc.cluster.local 10.0.0.9:{hop} 10.0.0.9:8443 10.1.0.2:{client} a.example.com -\n",
            t(at)
        ));
        out.push_str(&format!(
            "[{}] \"POST /v1/models/a:predict HTTP/1.1\" {status} - via_upstream - \"-\" 10 32 25 25 \"10.1.0.2,10.0.0.9\" \"load\" \"fixed-id\" \"a.example.com\" \"127.0.0.1:8080\" inbound|8012|| 127.0.0.6:{client} 10.0.0.44:8012 10.0.0.9:{hop} outbound_.80_._.a-predictor.ns.svc.cluster.local default\n",
            t(at + 2)
        ));
    }
    out
}

/// Streamed, the requests that reuse an id are counted one by one (they were one request);
/// `trace` of the id keeps a bounded number of its lines (it held the whole file, parsed) and
/// says so.
#[test]
fn a_large_log_of_one_reused_id_is_counted_by_request_and_traced_in_bounded_memory() {
    let text = fixed_id_traffic(40_000, 100);
    assert!(text.len() > 16 << 20, "only {} bytes", text.len());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("load.log");
    std::fs::write(&path, &text).unwrap();
    let p = path.to_str().unwrap();
    assert_eq!(failures_counts(&[p], None), (80_000, 5_000));
    let doc = run_json(&["trace", "fixed-id", p, "-o", "json"]);
    let notes = doc["notes"].to_string();
    assert!(notes.contains("many requests reuse it"), "{notes}");
    assert!(
        notes.contains("the strings searched for are on more than 16384 lines"),
        "{notes}"
    );
    let hops = doc["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2, "{doc}");
    assert!(hops.iter().all(|h| h["status"] == 503), "{doc}");
}
