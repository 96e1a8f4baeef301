//! Gateway API and inference gateways: Envoy Gateway's default JSON access log and its
//! `httproute/<ns>/<name>/rule/<i>` clusters, periodic access-log lines (`%ACCESS_LOG_TYPE%`),
//! AI gateways' `gen_ai.*` fields, the endpoint picker's own log as a hop (picked ≠ served,
//! its 429/503), `failure_mode_allow` from a config dump, and agentgateway's request lines.

use std::path::{Path, PathBuf};

use meshtrace_parsers::{FormatSpec, LineOutcome, LineParser, Slot};
use serde_json::Value;

use crate::common;

const GW_POD: &str = "inference-gateway-istio-7c9d8f6b5-qx2lm";

/// Envoy Gateway's default JSON format (testdata/peer/envoy-gateway) as Envoy writes it: every
/// key of the reference, `null` for unset values.
fn eg_line(status: u16, flags: &str, details: &str, upstream: Option<&str>, extra: &str) -> String {
    let up = upstream.map_or("null".to_string(), |u| format!("\"{u}\""));
    format!(
        r#"{{"start_time":"2026-03-23T09:14:02.118Z","method":"POST","x-envoy-origin-path":"/v1/completions","protocol":"HTTP/1.1","response_code":{status},"response_flags":"{flags}","response_code_details":"{details}","connection_termination_details":null,"upstream_transport_failure_reason":null,"bytes_received":112,"bytes_sent":19,"duration":3,"x-envoy-upstream-service-time":null,"x-forwarded-for":"10.244.0.1","user-agent":"curl/8.5.0","x-request-id":"7e1d4c8a-0b2f-4c3d-9e8f-102030405060",":authority":"qwen.example.com","upstream_host":{up},"upstream_cluster":"httproute/default/qwen-route/rule/0","upstream_local_address":"10.244.0.21:41234","downstream_local_address":"10.244.0.21:10080","downstream_remote_address":"10.244.0.1:51234","requested_server_name":null,"route_name":"httproute/default/qwen-route/rule/0/match/0/qwen_example_com"{extra}}}"#
    )
}

/// A copy of the inference example bundle (Gateway pod, InferencePool `qwen-pool`, HTTPRoute
/// `qwen-route`, EPP Service) whose gateway log is `gateway_log`, plus other files.
fn bundle(name: &str, gateway_log: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/inference-epp-unreachable");
    common::copy_dir(&src, &dir);
    std::fs::write(
        dir.join(format!("logs/default/{GW_POD}/istio-proxy.log")),
        gateway_log,
    )
    .unwrap();
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    (tmp, dir)
}

fn run_json(args: &[&str]) -> (i32, Value, String) {
    let out = common::meshtrace().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}\n{stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn trace(start: &str, dir: &Path) -> Value {
    run_json(&[
        "trace",
        start,
        "--bundle",
        dir.to_str().unwrap(),
        "-o",
        "json",
    ])
    .1
}

fn notes(v: &Value) -> Vec<String> {
    v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

fn citation<'a>(v: &'a Value, object: &str) -> Option<&'a str> {
    v["citations"]
        .as_array()?
        .iter()
        .find(|c| c["object"] == object)
        .and_then(|c| c["why"].as_str())
}

/// Every key of Envoy Gateway's default format is read into a typed field, per line, with no
/// format given; nothing is left over as an unknown extra.
#[test]
fn envoy_gateway_default_json_every_field_mapped() {
    let reference = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/peer/envoy-gateway/default-access-log-json-format.json"),
    )
    .unwrap();
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&reference)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys.len(), 24);
    let line = eg_line(
        503,
        "UH",
        "no_healthy_upstream",
        Some("10.244.1.17:8000"),
        "",
    );
    let mut p = LineParser::new(&FormatSpec::Auto);
    let LineOutcome::Record(r) = p.parse(&line) else {
        panic!("not a record: {line}")
    };
    assert_eq!(r.format(), "envoy-gateway-json");
    assert_eq!(
        r.extras().count(),
        0,
        "{:?}",
        r.extras().collect::<Vec<_>>()
    );
    assert_eq!(r.slots().count(), 24);
    assert_eq!(r.path(), Some("/v1/completions"));
    assert_eq!(r.authority(), Some("qwen.example.com"));
    assert_eq!(r.status(), Some(503));
    let g = r
        .upstream_cluster()
        .and_then(|c| c.gateway_route())
        .unwrap();
    assert_eq!(g.to_string(), "HTTPRoute default/qwen-route rule 0");
    // Mixed with an Istio TEXT line in one input: each line is detected on its own.
    let istio = "[2026-03-23T09:14:02.118Z] \"GET / HTTP/1.1\" 200 - via_upstream - \"-\" 0 5 1 1 \"-\" \"curl\" \"a\" \"h\" \"10.0.0.1:80\" outbound|80||h 10.0.0.2:1 10.0.0.3:80 10.0.0.4:2 - default";
    assert!(matches!(p.parse(istio), LineOutcome::Record(_)));
    let LineOutcome::Record(again) = p.parse(&line) else {
        panic!()
    };
    assert_eq!(again.value(Slot::UpstreamHost), Some("10.244.1.17:8000"));
}

/// A trace that finds only Envoy Gateway's line: the HTTPRoute rule its cluster names is cited
/// from the bundle (what the rule sends to, its timeout), and the reader is told that Envoy
/// Gateway made up a new x-request-id at the edge.
#[test]
fn envoy_gateway_trace_cites_the_route_rule_and_the_edge_request_id() {
    let line = eg_line(503, "UH", "no_healthy_upstream", None, "");
    let (_t, dir) = bundle("eg-503", &format!("{line}\n"), &[]);
    let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
    assert_eq!(v["status"], 503);
    assert_eq!(v["cause"], "no_healthy_upstream");
    let why = citation(&v, "HTTPRoute/default/qwen-route").expect("HTTPRoute cited");
    assert!(why.contains("rule 0"), "{why}");
    assert!(why.contains("InferencePool qwen-pool"), "{why}");
    assert!(why.contains("timeouts.request: 60s"), "{why}");
    let n = notes(&v);
    assert!(
        n.iter().any(
            |n| n.contains("Envoy Gateway generates a new x-request-id at the edge")
                && n.contains("10.244.0.21:41234")
        ),
        "{n:?}"
    );
}

/// A route rule that is not in the bundle is still named, and said to be missing.
#[test]
fn route_rule_not_in_the_evidence_is_named() {
    let line = eg_line(503, "UH", "no_healthy_upstream", None, "").replace(
        "httproute/default/qwen-route/rule/0",
        "grpcroute/llm/other/rule/2",
    );
    let (_t, dir) = bundle("eg-missing-route", &format!("{line}\n"), &[]);
    let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
    let why = citation(&v, "GRPCRoute/llm/other").expect("GRPCRoute named");
    assert!(
        why.contains("rule 2") && why.contains("not in the evidence"),
        "{why}"
    );
}

/// Periodic lines (`DownstreamPeriodic`) of a long streaming response are progress, not
/// requests: `failures` counts the request once (its `DownstreamEnd` line), a request with
/// only periodic lines so far is not counted, and `trace` keeps the end line as the hop and
/// shows the periodic ones as progress.
#[test]
fn periodic_lines_are_progress_not_requests() {
    let periodic = |ms: u64, bytes: u64| {
        eg_line(
            200,
            "-",
            "via_upstream",
            Some("10.244.1.17:8000"),
            r#","access_log_type":"DownstreamPeriodic""#,
        )
        .replace("\"duration\":3", &format!("\"duration\":{ms}"))
        .replace("\"bytes_sent\":19", &format!("\"bytes_sent\":{bytes}"))
        .replace("\"response_code\":200", "\"response_code\":0")
    };
    let end = eg_line(
        504,
        "UT",
        "response_timeout",
        Some("10.244.1.17:8000"),
        r#","access_log_type":"DownstreamEnd""#,
    )
    .replace("\"duration\":3", "\"duration\":60001");
    let running = periodic(30000, 10).replace(
        "7e1d4c8a-0b2f-4c3d-9e8f-102030405060",
        "11111111-2222-3333-4444-555555555555",
    );
    let log = format!(
        "{}\n{}\n{end}\n{running}\n",
        periodic(20000, 1200),
        periodic(40000, 2400)
    );
    let (_t, dir) = bundle("eg-periodic", &log, &[]);
    let (_, f, err) = run_json(&["failures", "--bundle", dir.to_str().unwrap(), "-o", "json"]);
    assert_eq!(f["failed"], 1, "{f}\n{err}");
    let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
    assert_eq!(v["hops"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["status"], 504);
    assert_eq!(v["hops"][0]["duration_ms"], 60001);
    let n = notes(&v);
    let progress = n
        .iter()
        .find(|n| n.starts_with("progress: 2 line(s)"))
        .expect("progress note");
    assert!(
        progress.contains("DownstreamPeriodic after 20000 ms, 1200 bytes sent")
            && progress.contains("after 40000 ms, 2400 bytes sent"),
        "{progress}"
    );
}

/// Envoy AI Gateway / agentgateway `gen_ai.*` keys travel with the hop (JSON) and are shown in
/// the notes.
#[test]
fn gen_ai_fields_are_carried_in_the_trace() {
    let line = eg_line(
        200,
        "-",
        "via_upstream",
        Some("10.244.1.17:8000"),
        r#","gen_ai.request.model":"qwen2.5-7b","gen_ai.usage.input_tokens":68,"gen_ai.usage.output_tokens":298"#,
    );
    let (_t, dir) = bundle("eg-genai", &format!("{line}\n"), &[]);
    let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
    assert_eq!(v["hops"][0]["gen_ai"]["gen_ai.request.model"], "qwen2.5-7b");
    assert_eq!(v["hops"][0]["gen_ai"]["gen_ai.usage.output_tokens"], "298");
    assert!(
        notes(&v)
            .iter()
            .any(|n| n.contains("gen_ai.usage.input_tokens=68")),
        "{v}"
    );
}

const EPP_POD_LOG: &str = "logs/default/qwen-pool-epp-6d5b9c7f4-abcde/epp.log";

/// The endpoint picker's line joins the trace by x-request-id as its own hop; when it picked
/// one pod and the gateway served another, the trace says so.
#[test]
fn epp_hop_and_picked_endpoint_differs_from_served() {
    let gw = eg_line(200, "-", "via_upstream", Some("10.244.1.99:8000"), "");
    let epp = r#"{"level":"info","ts":"2026-03-23T09:14:02.119Z","caller":"requestcontrol/director.go:212","msg":"Request handled","x-request-id":"7e1d4c8a-0b2f-4c3d-9e8f-102030405060","model":"qwen","targetModel":"qwen","endpoint":{"NamespacedName":{"Namespace":"default","Name":"qwen-vllm-0"},"Address":"10.244.1.17"}}"#;
    let (_t, dir) = bundle(
        "epp-picked",
        &format!("{gw}\n"),
        &[(EPP_POD_LOG, &format!("{epp}\n"))],
    );
    let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
    let hops = v["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2, "{v}");
    assert_eq!(hops[1]["role"], "endpoint-picker");
    assert_eq!(hops[1]["index"], 2);
    assert_eq!(hops[1]["upstream_host"], "10.244.1.17");
    assert_eq!(hops[1]["evidence"]["line"], 1);
    assert_eq!(v["cause"], "ok");
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|n| n.starts_with("picked endpoint ≠ served endpoint")
                && n.contains("10.244.1.17")
                && n.contains("10.244.1.99:8000")),
        "{n:?}"
    );
    // The same pick as served: no such note.
    let gw = eg_line(200, "-", "via_upstream", Some("10.244.1.17:8000"), "");
    let (_t2, dir) = bundle(
        "epp-same",
        &format!("{gw}\n"),
        &[(EPP_POD_LOG, &format!("{epp}\n"))],
    );
    let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
    assert!(
        !notes(&v).iter().any(|n| n.contains("picked endpoint")),
        "{v}"
    );
}

/// The picker's own refusals are their own verdicts, at the picker's hop, with the
/// InferencePool cited: 429 (pool saturated, request shed) and 503 (no ready endpoint).
#[test]
fn epp_429_and_503_are_their_own_verdicts() {
    for (status, code, msg, cause) in [
        (
            429,
            "InferencePoolResourceExhausted",
            "system saturated, non-critical request dropped",
            "rate_limited",
        ),
        (
            503,
            "ServiceUnavailable",
            "failed to find candidate pods for serving the request",
            "no_healthy_upstream",
        ),
    ] {
        let gw = eg_line(status, "-", "ext_proc_immediate_response", None, "");
        let epp = format!(
            r#"{{"level":"error","ts":"2026-03-23T09:14:02.119Z","msg":"Failed to process request","x-request-id":"7e1d4c8a-0b2f-4c3d-9e8f-102030405060","error":"inference gateway: {code} - {msg}"}}"#
        );
        let (_t, dir) = bundle(
            "epp-refusal",
            &format!("{gw}\n"),
            &[(EPP_POD_LOG, &format!("{epp}\n"))],
        );
        let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
        assert_eq!(v["cause"], cause, "{v}");
        assert_eq!(v["origin_hop"], 2);
        assert_eq!(v["hops"][1]["role"], "endpoint-picker");
        assert_eq!(v["hops"][1]["status"], status);
        let summary = v["summary"].as_str().unwrap();
        assert!(
            summary.starts_with(
                "The endpoint picker of InferencePool default/qwen-pool refused the request"
            ) && summary.contains(code),
            "{summary}"
        );
        assert!(
            citation(&v, "InferencePool/default/qwen-pool").is_some(),
            "{v}"
        );
    }
}

const DUMP: &str = r#"{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","dynamic_listeners":[{"name":"0.0.0.0_80","active_state":{"listener":{"name":"0.0.0.0_80","address":{"socket_address":{"address":"0.0.0.0","port_value":80}},"filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","stat_prefix":"http.80","rds":{"route_config_name":"http.80"},"http_filters":[{"name":"envoy.filters.http.ext_proc","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor","grpc_service":{"envoy_grpc":{"cluster_name":"outbound|9002||qwen-pool-epp.default.svc.cluster.local"}},"failure_mode_allow":FMA,"message_timeout":"10s"}},{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}}}]}]}"#;

/// `failure_mode_allow: true` on the gateway's ext_proc filter is noticed as degradation; the
/// ext_proc verdict cites the filter's gRPC cluster from the dump.
#[test]
fn failure_mode_allow_and_the_ext_proc_cluster_from_the_dump() {
    let gw = "[2026-03-23T09:14:02.118Z] \"POST /v1/completions HTTP/1.1\" 500 - ext_proc_error_gRPC_error_14 - \"-\" 112 0 3 - \"-\" \"curl/8.5.0\" \"5b0c8f3e-7d1a-4e2b-9c6f-1a2b3c4d5e6f\" \"10.244.0.21\" \"-\" - - 10.244.0.21:80 10.244.0.1:51234 - -\n";
    let dump_path = format!("config_dump/default/{GW_POD}.json");
    let (_t, dir) = bundle(
        "fma-false",
        gw,
        &[(&dump_path, &DUMP.replace("FMA", "false"))],
    );
    let v = trace("5b0c8f3e-7d1a-4e2b-9c6f-1a2b3c4d5e6f", &dir);
    assert_eq!(v["cause"], "upstream_connect_failure");
    let why = citation(
        &v,
        &format!("Cluster/default/{GW_POD}:outbound|9002||qwen-pool-epp.default.svc.cluster.local"),
    )
    .expect("ext_proc cluster cited");
    assert!(why.contains("fail closed"), "{why}");
    assert!(!notes(&v).iter().any(|n| n.starts_with("degraded")), "{v}");

    let ok = eg_line(200, "-", "via_upstream", Some("10.244.1.17:8000"), "");
    let (_t2, dir) = bundle(
        "fma-true",
        &format!("{ok}\n"),
        &[(&dump_path, &DUMP.replace("FMA", "true"))],
    );
    let v = trace("7e1d4c8a-0b2f-4c3d-9e8f-102030405060", &dir);
    let n = notes(&v);
    assert!(
        n.iter()
            .any(|n| n.starts_with("degraded: the ext_proc filter")
                && n.contains("failure_mode_allow: true")
                && n.contains("qwen-pool-epp")),
        "{n:?}"
    );
}

/// agentgateway's request lines are read with no format given: trace by the client address,
/// its `gen_ai.*` fields shown, and its own `inferencepool.selected_endpoint` compared with the
/// endpoint it dialled.
#[test]
fn agentgateway_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("agentgateway.log");
    // agentgateway docs (LLM rate limiting), as `kubectl logs` prints it.
    let limited = "2025-12-12T21:40:18.687849Z\tinfo\trequest gateway=agentgateway listener=http route=openai endpoint=api.openai.com:443 src.addr=127.0.0.1:51794 http.method=POST http.host=localhost http.path=/openai http.version=HTTP/1.1 http.status=429 protocol=llm gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.model=gpt-3.5-turbo error=\"rate limit exceeded\" duration=206ms";
    // An llm-d guide's line with the picker's choice changed from the dialled endpoint.
    let differs = "2026-03-29T13:58:14.52476Z\tinfo\trequest gateway=llmd-workshop/llmd-inference-gateway listener=http route=llmd-workshop/llmd-inference-route endpoint=10.224.0.102:8000 src.addr=10.224.0.120:18308 http.method=POST http.host=20.66.113.50 http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=200 protocol=http inferencepool.selected_endpoint=10.224.0.101:8000 duration=10459ms";
    std::fs::write(&f, format!("{limited}\n{differs}\n")).unwrap();
    let file = f.to_str().unwrap();
    let (_, v, err) = run_json(&["trace", "127.0.0.1:51794", file, "-o", "json"]);
    assert_eq!(v["status"], 429, "{v}\n{err}");
    assert_eq!(
        v["hops"][0]["gen_ai"]["gen_ai.request.model"],
        "gpt-3.5-turbo"
    );
    assert_eq!(v["hops"][0]["duration_ms"], 206);
    let (_, v, _) = run_json(&["trace", "10.224.0.120:18308", file, "-o", "json"]);
    assert_eq!(v["status"], 200);
    assert!(
        notes(&v)
            .iter()
            .any(|n| n.starts_with("picked endpoint ≠ served endpoint")
                && n.contains("inferencepool.selected_endpoint")),
        "{v}"
    );
    let (_, f, _) = run_json(&["failures", file, "-o", "json"]);
    assert_eq!(f["failed"], 1, "{f}");
}
