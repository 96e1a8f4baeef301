//! Istio ambient: ztunnel connection lines, waypoints, and inference-gateway (ext_proc) failures.

use std::path::Path;

use serde_json::Value;

use crate::common;

fn trace_json(start: &str, bundle: &str) -> (i32, Value, String) {
    let out = common::meshtrace()
        .args(["trace", start, "--bundle", bundle, "-o", "json"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{start} in {bundle}: {e}\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn roles_dirs(v: &Value) -> Vec<(String, String)> {
    v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["role"].as_str().unwrap().to_string(),
                h["direction"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn objects(v: &Value) -> Vec<String> {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

/// An L4 DENY: the client's ztunnel sees `http status: 401`, the destination's names the
/// policy; the verdict is on the destination side and cites the policy from the bundle.
#[test]
fn l4_deny_names_the_destination_ztunnel_and_the_policy() {
    let (code, v, err) = trace_json("10.244.1.6:45208", "testdata/bundles/ambient-l4-deny");
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        roles_dirs(&v),
        [pair("ztunnel", "outbound"), pair("ztunnel", "inbound")]
    );
    assert_eq!(v["origin_hop"], 2);
    assert_eq!(v["cause"], "rbac_denied");
    assert_eq!(v["succeeded"], false);
    // The server line of the denied connection, not the earlier successful one.
    assert_eq!(v["hops"][1]["evidence"]["line"], 3);
    assert!(
        v["hops"][1]["pod"]
            .as_str()
            .unwrap()
            .starts_with("ztunnel-9qkzm")
    );
    assert!(
        objects(&v).contains(&"AuthorizationPolicy/default/productpage-deny-reviews".to_string())
    );
    let summary = v["summary"].as_str().unwrap();
    assert!(summary.contains("destination's ztunnel"), "{summary}");
    assert!(summary.contains("productpage-deny-reviews"), "{summary}");
    // The successful connection of the same pods is a success.
    let (code, v, _) = trace_json("10.244.1.6:45190", "testdata/bundles/ambient-l4-deny");
    assert_eq!(code, 0);
    assert_eq!(v["cause"], "ok");
    assert_eq!(v["hops"].as_array().unwrap().len(), 2);
}

/// A NetworkPolicy that drops 15008: only the client's ztunnel logs (after 10 s), the
/// verdict is on the client side and cites the NetworkPolicy missing the port.
#[test]
fn blocked_hbone_port_names_the_client_ztunnel_and_the_network_policy() {
    let (code, v, err) = trace_json("10.244.0.9:58592", "testdata/bundles/ambient-hbone-blocked");
    assert_eq!(code, 1, "{err}");
    assert_eq!(roles_dirs(&v), [pair("ztunnel", "outbound")]);
    assert_eq!(v["origin_hop"], 1);
    assert_eq!(v["cause"], "upstream_connect_failure");
    assert_eq!(v["hops"][0]["duration_ms"], 10002);
    assert!(objects(&v).contains(&"NetworkPolicy/default/echo-ingress".to_string()));
    assert!(v["fix"].as_str().unwrap().contains("15008"));
    let why = v["citations"][0]["why"].as_str().unwrap();
    assert!(why.contains("80") && why.contains("15008"), "{why}");
}

/// Through the waypoint (by request id): ztunnel → waypoint → ztunnel, joined by the
/// client's address, the Service VIP, `connect_originate` and time containment.
#[test]
fn waypoint_request_is_rebuilt_from_its_request_id() {
    let (code, v, err) = trace_json(
        "e615c813-c295-9960-b327-a30483a5a57d",
        "testdata/bundles/ambient-waypoint-bypass",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        roles_dirs(&v),
        [
            pair("ztunnel", "outbound"),
            pair("waypoint", "inbound"),
            pair("ztunnel", "inbound")
        ]
    );
    assert_eq!(v["status"], 200);
    assert_eq!(v["hops"][0]["listener"], "10.244.0.101:36754");
    assert_eq!(v["hops"][2]["upstream_host"], "10.244.0.114:9080");
    // The same path from the client's ip:port.
    let (_, by_addr, _) = trace_json(
        "10.244.0.101:36754",
        "testdata/bundles/ambient-waypoint-bypass",
    );
    assert_eq!(roles_dirs(&by_addr), roles_dirs(&v));
}

/// Straight to the pod IP although the namespace uses a waypoint: reported as a bypass, and
/// the destination's ztunnel (ALLOW only for the waypoint's identity) is the failing side.
#[test]
fn waypoint_bypass_is_its_own_finding() {
    let (code, v, err) = trace_json(
        "10.244.0.101:51906",
        "testdata/bundles/ambient-waypoint-bypass",
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        roles_dirs(&v),
        [pair("ztunnel", "outbound"), pair("ztunnel", "inbound")]
    );
    assert_eq!(v["origin_hop"], 2);
    assert_eq!(v["cause"], "rbac_denied");
    let summary = v["summary"].as_str().unwrap();
    assert!(summary.starts_with("Waypoint bypass"), "{summary}");
    assert!(summary.contains("bookinfo/waypoint"), "{summary}");
    let objs = objects(&v);
    for o in [
        "Namespace/bookinfo",
        "Gateway/bookinfo/waypoint",
        "AuthorizationPolicy/bookinfo/reviews-only-via-waypoint",
    ] {
        assert!(objs.contains(&o.to_string()), "{o} not in {objs:?}");
    }
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("waypoint_bypass"))
    );
}

/// ztunnel's `LOG_FORMAT=json` lines give the same trace as its text lines.
#[test]
fn json_ztunnel_lines_trace_like_text_ones() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/ambient-l4-deny");
    common::copy_dir(&src, dir.path());
    for log in [
        "logs/istio-system/ztunnel-4bx7k/istio-proxy.log",
        "logs/istio-system/ztunnel-9qkzm/istio-proxy.log",
    ] {
        let p = dir.path().join(log);
        let text = std::fs::read_to_string(&p).unwrap();
        let json: Vec<String> = text.lines().map(to_json).collect();
        std::fs::write(&p, json.join("\n") + "\n").unwrap();
    }
    let (code_t, text_v, _) = trace_json("10.244.1.6:45208", "testdata/bundles/ambient-l4-deny");
    let (code_j, json_v, err) = trace_json("10.244.1.6:45208", dir.path().to_str().unwrap());
    assert_eq!(code_j, code_t, "{err}");
    for k in ["cause", "origin_hop", "summary", "fix", "objects"] {
        assert_eq!(json_v[k], text_v[k], "{k}");
    }
    for (a, b) in json_v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .zip(text_v["hops"].as_array().unwrap())
    {
        for k in [
            "role",
            "direction",
            "listener",
            "details",
            "start",
            "duration_ms",
            "upstream_host",
        ] {
            assert_eq!(a[k], b[k], "{k}");
        }
    }
}

/// A ztunnel text line as ztunnel writes it with `LOG_FORMAT=json` (other lines unchanged).
fn to_json(line: &str) -> String {
    let cols: Vec<&str> = line.splitn(5, '\t').collect();
    if cols.len() < 5 || cols[2] != "access" {
        return line.to_string();
    }
    let mut m = serde_json::Map::new();
    m.insert("level".into(), cols[1].into());
    m.insert("time".into(), cols[0].into());
    m.insert("scope".into(), "access".into());
    m.insert("message".into(), cols[3].into());
    let mut rest = cols[4];
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 1..];
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap();
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        let v: Value = if key.starts_with("bytes_") {
            Value::from(val.parse::<u64>().unwrap())
        } else {
            Value::from(val)
        };
        m.insert(key, v);
        rest = next;
    }
    Value::Object(m).to_string()
}

/// An inference gateway's 500 `ext_proc_error_gRPC_error_14`: "the gateway could not reach the
/// endpoint picker", with the InferencePool, its HTTPRoute and the EPP Service cited.
#[test]
fn ext_proc_unavailable_names_the_endpoint_picker() {
    let (code, v, err) = trace_json(
        "5b0c8f3e-7d1a-4e2b-9c6f-1a2b3c4d5e6f",
        "testdata/bundles/inference-epp-unreachable",
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["status"], 500);
    assert_eq!(v["origin_hop"], 1);
    assert_eq!(v["cause"], "upstream_connect_failure");
    assert_eq!(v["hops"][0]["role"], "ingress-gateway");
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("The gateway could not reach the endpoint picker"),
        "{summary}"
    );
    assert!(summary.contains("UNAVAILABLE"), "{summary}");
    let objs = objects(&v);
    for o in [
        "InferencePool/default/qwen-pool",
        "HTTPRoute/default/qwen-route",
        "Service/default/qwen-pool-epp",
    ] {
        assert!(objs.contains(&o.to_string()), "{o} not in {objs:?}");
    }
    let epp = v["citations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == "Service/default/qwen-pool-epp")
        .unwrap();
    assert!(epp["why"].as_str().unwrap().contains("no running pod"));
    assert!(
        v["evidence"][0]
            .as_str()
            .unwrap()
            .contains("gRPC 14 UNAVAILABLE")
    );
}

fn failures_json(bundle: &str, extra: &[&str]) -> (i32, Value, String) {
    let out = common::meshtrace()
        .args(["failures", "--bundle", bundle, "-o", "json"])
        .args(extra)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("failures {bundle}: {e}\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

/// `failures` counts failed ztunnel connections (`error=`) grouped by cause; a connection
/// both ztunnels logged (client's `http status: 401`, destination's policy rejection) counts
/// once, with the destination's reading naming the DENY policy.
#[test]
fn failures_counts_ztunnel_connection_failures() {
    let (code, v, err) = failures_json("testdata/bundles/ambient-l4-deny", &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["failed"], 1, "{v}");
    let g = &v["groups"][0];
    assert_eq!(g["cause"], "rbac_denied");
    assert_eq!(g["kind"], "connection");
    assert_eq!(g["origin_role"], "ztunnel");
    assert_eq!(g["count"], 1);
    assert_eq!(g["target"], "productpage.default.svc.cluster.local");
    assert!(
        g["summary"]
            .as_str()
            .unwrap()
            .starts_with("The destination's ztunnel refused the connection"),
        "{g}"
    );
    assert!(
        g["fix"]
            .as_str()
            .unwrap()
            .contains("default/productpage-deny-reviews"),
        "{g}"
    );
    assert_eq!(
        g["clients"][0]["pod"],
        "default/reviews-v1-6584ddcf65-k78wz"
    );

    // The client-side-only failure (HBONE port blocked) is counted from the client's line.
    let (code, v, err) = failures_json("testdata/bundles/ambient-hbone-blocked", &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["groups"][0]["cause"], "upstream_connect_failure", "{v}");
    assert!(v["groups"][0]["fix"].as_str().unwrap().contains("15008"));

    // Filters apply: another cause, or an HTTP status, leaves the connections out.
    let (code, v, _) = failures_json(
        "testdata/bundles/ambient-l4-deny",
        &["--cause", "upstream_timeout"],
    );
    assert_eq!((code, v["failed"].clone()), (0, Value::from(0)), "{v}");
    let (_, v, _) = failures_json("testdata/bundles/ambient-l4-deny", &["--status", "5xx"]);
    assert_eq!(v["failed"], 0, "{v}");
    let (_, v, _) = failures_json("testdata/bundles/ambient-l4-deny", &["--status", "0"]);
    assert_eq!(v["failed"], 1, "{v}");
}

/// Regression: `report --failures` on a bundle holding only ztunnel logs stopped with "no
/// access-log line" while `failures` counted the failed connection; both count it now.
#[test]
fn failures_report_counts_ztunnel_connections_like_failures() {
    for b in ["ambient-l4-deny", "ambient-hbone-blocked"] {
        let bundle = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/bundles")
            .join(b);
        let out = common::meshtrace()
            .args(["report", "--failures", "--bundle"])
            .arg(&bundle)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() != Some(2), "{b}: {err}");
        assert!(text.contains("1 failed of 1"), "{b}: {text}");
    }
}

/// `meshtrace <command> <file> -o json` from the repository root.
fn json_of(command: &str, file: &str) -> Value {
    let out = common::meshtrace()
        .args([command, file, "-o", "json"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// ztunnel lines as users pasted them in public threads (`testdata/pasted/README.md`): behind a
/// pod name, a log store's time, a pane border, or with no time at all. Every access line is
/// read (none malformed) and each failure is taken for what its thread says it was.
#[test]
fn pasted_ztunnel_lines_are_read_whatever_came_before_them() {
    let doc = json_of("failures", "testdata/pasted/ztunnel-threads.log");
    assert_eq!(doc["notes"], serde_json::json!([]), "nothing malformed");
    let mut got: Vec<(u64, String, String)> = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let at = g["example_evidence"].as_str().unwrap();
            let line = at.rsplit(':').next().unwrap().parse().unwrap();
            let summary = g["summary"].as_str().unwrap().to_string();
            (line, g["cause"].as_str().unwrap().to_string(), summary)
        })
        .collect();
    got.sort();
    let want = [
        (1, "rbac_denied", "none of their rules matched"),
        (3, "upstream_connect_failure", "not in its workload state"),
        (
            4,
            "upstream_connect_failure",
            "Nothing accepted the connection",
        ),
        (5, "upstream_connect_failure", "not in its workload state"),
        (6, "upstream_connect_failure", "timed out"),
        (7, "upstream_connect_failure", "timed out"),
        (
            8,
            "upstream_connect_failure",
            "Nothing accepted the connection",
        ),
        (9, "rbac_denied", "none of their rules matched"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((line, cause, summary), (wl, wc, ws)) in got.iter().zip(want) {
        assert_eq!((*line, cause.as_str()), (wl, wc), "{summary}");
        assert!(summary.contains(ws), "line {line}: {summary}");
    }
    // `explain` names every line but the `state` warning (line 2) a ztunnel line, the two
    // healthy ones (10, 11) too.
    let doc = json_of("explain", "testdata/pasted/ztunnel-threads.log");
    let kinds: Vec<(u64, &str)> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["line"].as_u64().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    let want: Vec<(u64, &str)> = (1..=11)
        .map(|l| (l, if l == 2 { "istio-log" } else { "ztunnel" }))
        .collect();
    assert_eq!(kinds, want);
}

/// `meshtrace explain <args>` from the repository root: (exit code, stdout, stderr).
fn explain_run(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    common::run_in_repo(&all)
}

/// `explain` of a pasted ztunnel log explains its connections (it listed nothing and said "no
/// access-log record found … pass it with --log-format", exit 1): each failed one with the
/// reading `failures` and `trace` give, the healthy ones too, in the order of their lines.
#[test]
fn explain_lists_pasted_ztunnel_connections_with_their_verdicts() {
    let file = "testdata/pasted/ztunnel-threads.log";
    let (code, text, err) = explain_run(&[file]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("no access-log record"), "{err}");
    assert!(
        text.contains("10 ztunnel connection lines (Istio ambient) in 10 connections (8 failed)"),
        "{text}"
    );
    assert!(
        text.contains("Follow it: meshtrace trace 10.244.1.6:42020"),
        "{text}"
    );
    let doc = json_of("explain", file);
    let got: Vec<(u64, String, String)> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["origin_line"].as_u64().unwrap(),
                c["cause"].as_str().unwrap().to_string(),
                c["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (1, "rbac_denied", "none of their rules matched"),
        (3, "upstream_connect_failure", "not in its workload state"),
        (4, "upstream_connect_failure", "Nothing accepted"),
        (5, "upstream_connect_failure", "not in its workload state"),
        (6, "upstream_connect_failure", "timed out"),
        (7, "upstream_connect_failure", "timed out"),
        (8, "upstream_connect_failure", "Nothing accepted"),
        (9, "rbac_denied", "none of their rules matched"),
        (10, "ok", "84 bytes sent, 158 received, 118 ms"),
        (11, "ok", "ended without an error"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((line, cause, summary), (wl, wc, ws)) in got.iter().zip(want) {
        assert_eq!((*line, cause.as_str()), (wl, wc), "{summary}");
        assert!(summary.contains(ws), "line {line}: {summary}");
    }
    // The same reading as `failures` gives for the same line.
    let failures = json_of("failures", file);
    for g in failures["groups"].as_array().unwrap() {
        let line: u64 = g["example_evidence"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let c = doc["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["origin_line"] == line)
            .unwrap();
        assert_eq!(c["summary"], g["summary"], "line {line}");
        assert_eq!(c["fix"], g["fix"], "line {line}");
    }
}

/// Both ztunnels log a connection between two meshed pods; `explain` lists it once, with both
/// lines (the client's first) and the destination's reading, which names the policy — the
/// verdict `trace` gives for it.
#[test]
fn explain_joins_both_ztunnels_lines_of_one_connection() {
    let dir = "testdata/bundles/ambient-l4-deny/logs/istio-system";
    let client = format!("{dir}/ztunnel-4bx7k/istio-proxy.log");
    let server = format!("{dir}/ztunnel-9qkzm/istio-proxy.log");
    let out = common::meshtrace()
        .args(["explain", &client, &server, "-o", "json"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = doc["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2, "{conns:#?}");
    let denied = &conns[1];
    assert_eq!(denied["source"], "10.244.1.6:45208");
    assert_eq!(denied["cause"], "rbac_denied");
    let lines: Vec<(&str, &str)> = denied["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["input"].as_str().unwrap(),
                l["direction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [(client.as_str(), "outbound"), (server.as_str(), "inbound")]
    );
    assert_eq!(denied["origin_input"], server.as_str());
    let (_, trace, _) = trace_json("10.244.1.6:45208", "testdata/bundles/ambient-l4-deny");
    assert_eq!(denied["cause"], trace["cause"]);
    assert!(
        denied["summary"]
            .as_str()
            .unwrap()
            .contains("default/productpage-deny-reviews"),
        "{denied:#?}"
    );
    // The other connection succeeded: its two lines are one connection too.
    assert_eq!(conns[0]["cause"], "ok");
    assert_eq!(conns[0]["lines"].as_array().unwrap().len(), 2);
}

/// A ztunnel log of 8 MiB or more is streamed: `explain` lists its failed connections (at most
/// 4 096 per log), in text and JSON, and the lines it did not keep are said with them, not
/// counted as another kind of skipped line.
#[test]
fn explain_streams_a_large_ztunnel_log_and_lists_its_failed_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ztunnel.log");
    let mut log = String::new();
    let mut n = 0u32;
    while log.len() < 9 << 20 {
        n += 1;
        let (port, ms) = (10_000 + n % 50_000, n % 1000);
        if n.is_multiple_of(3) {
            log.push_str(&format!(
                "2025-01-01T00:00:00.{ms:03}Z\terror\taccess\tconnection complete\tsrc.addr=10.244.1.6:{port} src.workload=\"reviews-v1\" src.namespace=\"default\" src.identity=\"spiffe://cluster.local/ns/default/sa/reviews\" dst.addr=10.244.1.9:15008 dst.hbone_addr=10.244.1.9:9080 dst.service=\"productpage.default.svc.cluster.local\" dst.workload=\"productpage-v1\" dst.namespace=\"default\" dst.identity=\"spiffe://cluster.local/ns/default/sa/productpage\" direction=\"inbound\" bytes_sent=0 bytes_recv=0 duration=\"0ms\" error=\"connection closed due to policy rejection: explicitly denied by: default/deny-reviews\"\n"
            ));
        } else {
            log.push_str(&format!(
                "2025-01-01T00:00:00.{ms:03}Z\tinfo\taccess\tconnection complete\tsrc.addr=10.244.1.6:{port} src.workload=\"reviews-v1\" src.namespace=\"default\" src.identity=\"spiffe://cluster.local/ns/default/sa/reviews\" dst.addr=10.244.1.9:15008 dst.hbone_addr=10.244.1.9:9080 dst.service=\"productpage.default.svc.cluster.local\" dst.workload=\"productpage-v1\" dst.namespace=\"default\" dst.identity=\"spiffe://cluster.local/ns/default/sa/productpage\" direction=\"inbound\" bytes_sent=120 bytes_recv=900 duration=\"3ms\"\n"
            ));
        }
    }
    std::fs::write(&path, &log).unwrap();
    let p = path.to_str().unwrap();
    let failed = n / 3;
    let (code, text, err) = explain_run(&[p]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("no access-log record"), "{err}");
    let head = format!(
        "{n} ztunnel connection lines (Istio ambient); 4096 failed connections listed, {} more failed lines not listed (at most 4096 per log are kept)",
        failed - 4096
    );
    assert!(text.contains(&head), "{}", &text[..text.len().min(2000)]);
    assert!(
        text.contains(&format!("Skipped {n} lines: {n} ztunnel\n")),
        "{}",
        &text[text.len().saturating_sub(500)..]
    );
    let out = common::meshtrace()
        .args(["explain", p, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = doc["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 4096);
    assert!(conns.iter().all(|c| c["cause"] == "rbac_denied"));
    assert_eq!(doc["skipped"].as_array().unwrap().len(), n as usize);
}
