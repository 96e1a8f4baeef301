//! Deeper verdicts: the failing RBAC condition, 429 kinds, ready-to-apply fixes, classification of real lines from issue threads.

use std::path::Path;

use serde_json::Value;

use crate::common::meshtrace;

/// `meshtrace explain <file> -o json` from the repository root.
fn explain_json(file: &str) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = meshtrace()
        .current_dir(root)
        .args(["explain", file, "-o", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// (request id, status, cause) of every request.
fn verdicts(doc: &Value) -> Vec<(String, u64, String)> {
    doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["request_id"].as_str().unwrap_or("-").to_string(),
                r["status"].as_u64().unwrap_or(0),
                r["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn request<'a>(doc: &'a Value, id_prefix: &str) -> &'a Value {
    doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["request_id"]
                .as_str()
                .is_some_and(|i| i.starts_with(id_prefix))
        })
        .unwrap_or_else(|| panic!("no request {id_prefix}"))
}

/// The request whose origin is `line`.
fn from_line(doc: &Value, line: u64) -> &Value {
    doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["origin_line"] == line)
        .unwrap_or_else(|| panic!("no request from line {line}"))
}

/// Each `(origin line, status, cause)` is what the request from that line was given.
fn assert_causes(doc: &Value, want: &[(u64, u64, &str)]) {
    for &(line, status, cause) in want {
        let r = from_line(doc, line);
        assert_eq!(
            (r["status"].as_u64().unwrap(), r["cause"].as_str().unwrap()),
            (status, cause),
            "line {line}: {}",
            text_of(r)
        );
    }
}

fn text_of(r: &Value) -> String {
    format!("{} {} {}", r["summary"], r["fix"], r["evidence"])
}

#[test]
fn retries_exhausted_on_the_apps_own_status_are_the_apps_error() {
    let doc = explain_json("testdata/explain/retries-exhausted-thread.log");
    let v = verdicts(&doc);
    let want = [
        ("dcb3b100", 503, "app_error"),
        ("5c3e2a1f", 502, "app_error"),
        ("8a1b2c3d", 503, "upstream_connect_failure"),
    ];
    assert_eq!(v.len(), want.len(), "{v:?}");
    for ((id, status, cause), (wid, ws, wc)) in v.iter().zip(want) {
        assert!(id.starts_with(wid) && *status == ws && cause == wc, "{v:?}");
    }
    let t = text_of(request(&doc, "dcb3b100"));
    assert!(t.contains("retries were used up (URX)"), "{t}");
    assert!(!text_of(request(&doc, "8a1b2c3d")).contains("retries were used up"));
}

#[test]
fn a_local_reply_in_envoys_default_format_is_not_the_apps_error() {
    let doc = explain_json("testdata/explain/local-reply-default-format-thread.log");
    let v = verdicts(&doc);
    let causes: Vec<&str> = v.iter().map(|(_, _, c)| c.as_str()).collect();
    assert_eq!(causes, ["authn_failed", "app_error", "unknown"], "{v:?}");
    for id in ["0b7e1c1a", "9f8e7d6c"] {
        let t = text_of(request(&doc, id));
        assert!(t.contains("not by the application"), "{t}");
        assert!(t.contains("%RESPONSE_CODE_DETAILS%"), "{t}");
    }
    assert!(text_of(request(&doc, "0b7e1c1a")).contains("jwt_authn"));
    assert!(text_of(request(&doc, "9f8e7d6c")).contains("RBAC"));
    assert!(!text_of(request(&doc, "6d2f8e4b")).contains("not by the application"));
}

#[test]
fn damaged_pasted_lines_are_repaired_and_say_so() {
    let doc = explain_json("testdata/explain/pasted-damaged-thread.log");
    let v = verdicts(&doc);
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v.iter().all(|(_, s, c)| *s == 503 && c == "upstream_reset"),
        "{v:?}"
    );
    let records = doc["records"].as_array().unwrap();
    let notes: Vec<String> = records.iter().map(|r| r["read_as"].to_string()).collect();
    assert!(
        notes[0].contains("space between path and protocol"),
        "{notes:?}"
    );
    assert!(notes[1].contains("CSV-doubled quotes"), "{notes:?}");
    for r in records {
        assert_eq!(r["fields"]["path"], "/v1/status");
        assert_eq!(r["fields"]["protocol"], "HTTP/1.1");
    }
    assert!(
        doc["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["kind"] != "malformed")
    );
}

#[test]
fn json_with_custom_key_names_is_read_by_them_and_the_mapping_shown() {
    let doc = explain_json("testdata/explain/json-custom-keys-thread.log");
    let v = verdicts(&doc);
    let causes: Vec<(u64, &str)> = v.iter().map(|(_, s, c)| (*s, c.as_str())).collect();
    assert_eq!(
        causes,
        [
            (200, "ok"),
            (503, "no_healthy_upstream"),
            (503, "app_error")
        ],
        "{v:?}"
    );
    let t = text_of(request(&doc, "7e6d5c4b"));
    assert!(t.contains("status → %RESPONSE_CODE%"), "{t}");
    assert!(t.contains("upstream → %UPSTREAM_HOST%"), "{t}");
    assert!(t.contains("kept as text"), "{t}");
    let t = text_of(request(&doc, "c1d2e3f4"));
    assert!(t.contains("resp_flags → %RESPONSE_FLAGS%"), "{t}");
    let records = doc["records"].as_array().unwrap();
    assert!(records.iter().all(|r| r["format"] == "json-keys-by-name"));
    // The zap line stays a skipped JSON log, not a request.
    assert!(
        doc["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "json-log")
    );
}

/// Envoy lines as pasted in public threads (`testdata/pasted/README.md`): behind Markdown code
/// marks or a console's prefix, with typographic quotes, doubled spaces, CSV-doubled quotes, cut
/// at either end. All but a bare tail are read, the damaged ones with a note saying what was
/// repaired, and each line whose thread states its cause gets that cause.
#[test]
fn lines_pasted_in_threads_are_read_and_named() {
    let doc = explain_json("testdata/pasted/envoy-threads.log");
    let skipped: Vec<u64> = crate::common::line_numbers(&doc["skipped"]);
    assert_eq!(skipped, [15], "only the tail of a cut line is unread");
    let repaired: Vec<u64> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["read_as"].to_string().contains("repaired"))
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(repaired, [5, 12, 21, 27, 28, 32, 33, 34, 44, 45, 46, 55]);
    let by_line = |line: u64| from_line(&doc, line);
    let stated = [
        (3, 401, "ext_authz_denied"),
        (5, 403, "rbac_denied"),
        (8, 404, "route_not_found"),
        (11, 503, "upstream_reset"),
        (12, 0, "downstream_disconnect"),
        (13, 502, "app_error"),
        (16, 0, "downstream_disconnect"),
        (19, 500, "rate_limit_service_error"),
        (23, 400, "protocol_error"),
        (28, 503, "no_healthy_upstream"),
        (29, 503, "upstream_connect_failure"),
        (32, 0, "upstream_connect_failure"),
        (33, 503, "upstream_connect_failure"),
        (34, 0, "no_healthy_upstream"),
        (35, 426, "protocol_error"),
        (36, 200, "protocol_error"),
        (37, 502, "protocol_error"),
        (38, 0, "plaintext_to_mtls"),
        (39, 503, "upstream_reset"),
        (40, 0, "egress_blocked"),
        (41, 503, "cluster_not_found"),
        (42, 503, "circuit_breaker"),
        (43, 504, "upstream_timeout"),
        (44, 200, "upstream_connect_failure"),
        (46, 200, "upstream_connect_failure"),
        (47, 200, "upstream_connect_failure"),
        (48, 501, "protocol_error"),
        (49, 502, "protocol_error"),
        (52, 0, "protocol_error"),
        (53, 0, "protocol_error"),
        (54, 403, "rbac_denied"),
        (55, 503, "upstream_reset"),
        (56, 503, "ext_authz_denied"),
        (57, 500, "rate_limit_service_error"),
        (58, 200, "route_not_found"),
        (59, 302, "ext_authz_denied"),
        (60, 404, "route_not_found"),
    ];
    assert_causes(&doc, &stated);
    // The rate limit service failed: said so, not taken for a 429.
    assert!(text_of(by_line(19)).contains("rate limit service"));
    // HTTP/1.0 refused by the proxy: named, with the nginx setting the thread's fix was.
    let old = text_of(by_line(35));
    assert!(
        old.contains("not by the application") && old.contains("HTTP/1.0"),
        "{old}"
    );
    assert!(old.contains("proxy_http_version 1.1"), "{old}");
    // A 200 whose body was cut: the status is the upstream's, not the proxy's.
    let cut = by_line(36)["summary"].as_str().unwrap_or_default();
    assert!(
        cut.starts_with("200 came from the upstream (10.127.2.36:9002)"),
        "{cut}"
    );
    assert!(!cut.contains("200 was generated"), "{cut}");
    // No filter chain on a gateway's HTTPS port without SNI: both readings, the gateway's first.
    let fcnf = text_of(by_line(38));
    assert!(fcnf.contains("TLS client without a server name"), "{fcnf}");
    assert!(fcnf.contains("--resolve"), "{fcnf}");
    // The poster's Markdown bold taken off the cluster and the details it marked.
    let bold = by_line(44)["summary"].as_str().unwrap_or_default();
    assert!(
        bold.contains("→ outbound|50051||frost-core-service.frostbite.svc.cluster.local:"),
        "{bold}"
    );
    // gRPC calls failed by the proxy are logged 200: said to be failures, with the grpc-status.
    for line in [44, 46, 47] {
        let grpc = by_line(line)["summary"].as_str().unwrap_or_default();
        assert!(grpc.contains("14 UNAVAILABLE"), "{line}: {grpc}");
    }
    let nr = by_line(58)["summary"].as_str().unwrap_or_default();
    assert!(nr.contains("12 UNIMPLEMENTED"), "{nr}");
    // An authorizer's redirect to sign in is said to be one, not a failure of the proxy.
    let signin = by_line(59)["summary"].as_str().unwrap_or_default();
    assert!(
        signin.contains("redirect") && signin.contains("sign in"),
        "{signin}"
    );
    // A line wrapped around an empty line is read whole, over the blank line.
    let wrapped = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["line"] == 49)
        .unwrap();
    assert_eq!(wrapped["physical_lines"], 3);
    assert!(wrapped.get("missing").is_none(), "{wrapped}");
    // Headers over the limit, named with the setting a TSB page lowered on purpose.
    assert!(text_of(by_line(52)).contains("max_request_headers_kb"));
    // A fragment cut right after its details keeps them: the RBAC denial, not the app's 403.
    assert!(text_of(by_line(54)).contains("AuthorizationPolicy"));
    // A Markdown table's escaped pipes read as the cluster's own.
    let cell = by_line(55)["summary"].as_str().unwrap_or_default();
    assert!(
        cell.contains("→ outbound|80||http-echo.http-echo-istio.svc.cluster.local:"),
        "{cell}"
    );
    // The gateway and the sidecar of issue 39758 are one request, decided at the sidecar.
    assert_eq!(from_line(&doc, 46)["lines"], serde_json::json!([45, 46]));
}

/// JSON lines from public threads (`testdata/pasted/README.md`): causes where the line carries
/// them, and where the format cannot tell (no flags, details or upstream host) an `unknown`
/// that says so instead of blaming the application; a 500 direct response names the Gateway
/// API rule behind it.
#[test]
fn json_lines_from_threads_say_what_their_format_cannot_tell() {
    let doc = explain_json("testdata/pasted/envoy-json-threads.log");
    assert_eq!(doc["skipped"], serde_json::json!([]));
    let by_line = |line: u64| from_line(&doc, line);
    assert_causes(
        &doc,
        &[
            (1, 503, "ext_authz_denied"),
            (2, 503, "upstream_connect_failure"),
            (3, 0, "upstream_connect_failure"),
            (6, 200, "ok"),
            (7, 500, "direct_response"),
            (9, 503, "unknown"),
            (10, 503, "circuit_breaker"),
            (40, 504, "upstream_timeout"),
            (70, 0, "ok"),
            (74, 0, "plaintext_to_mtls"),
            (76, 200, "upstream_reset"),
            (77, 403, "protocol_error"),
            (78, 503, "no_healthy_upstream"),
        ],
    );
    // Records pretty-printed or hard-wrapped over several lines are read whole.
    let spans: Vec<(u64, u64)> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r["line"].as_u64()?, r["physical_lines"].as_u64()?)))
        .collect();
    assert_eq!(spans, [(10, 30), (40, 30), (70, 4), (74, 2)]);
    assert!(text_of(by_line(77)).contains("upgrade_configs"));
    // Its listener's port logged in a key of its own: still a gateway's HTTPS port.
    assert!(text_of(by_line(74)).contains("TLS client without a server name"));
    // Addresses a paste turned into Markdown links read as the addresses.
    let linked = by_line(78)["summary"].as_str().unwrap_or_default();
    assert!(
        linked.starts_with("503 was generated by the proxy handling 10.245.219.173:8001 →"),
        "{linked}"
    );
    assert!(text_of(by_line(76)).contains("after the response had started"));
    let gloo = text_of(by_line(9));
    assert!(gloo.contains("cannot tell the proxy's own 503"), "{gloo}");
    assert!(!gloo.contains("relayed"), "{gloo}");
    assert!(text_of(by_line(7)).contains("ResolvedRefs"));
}

#[test]
fn what_a_terminal_printed_besides_a_pasted_log_is_not_malformed() {
    // A `kubectl logs` session pasted whole: the prompt and command, kubectl's notices on
    // standard error (`Defaulted container %q out of: %s`, `Found %d pods, using %s`), the
    // records, an error of the next command, `tail`'s header of the next file.
    let session = concat!(
        "user@bastion:~/triage$ kubectl logs -n istio-system deploy/istio-ingressgateway --tail=2\n",
        "Defaulted container \"istio-proxy\" out of: istio-proxy, istio-init (init)\n",
        "Found 2 pods, using pod/istio-ingressgateway-7d9f8c6b5-x2x9k\n",
        "[2024-06-03T09:00:00.069Z] \"POST /v2/models/test/infer HTTP/2\" 503 UF upstream_reset_before_response_started{connection_failure} - \"-\" 658 91 3 - \"10.134.2.121\" \"curl/8.6.0\" \"55f053ed-7217-46a7-a211-e20229fc1eaa\" \"test-predictor.aiproject.svc.cluster.local\" \"10.135.0.43:8081\" outbound|80||knative-local-gateway.istio-system.svc.cluster.local - 10.135.0.43:8443 10.134.2.121:35294 test-aiproject.apps.mycluster.example.com -\n",
        "[2024-06-03T09:00:01.069Z] \"GET /v2/models/test HTTP/2\" 200 - via_upstream - \"-\" 0 91 3 2 \"10.134.2.121\" \"curl/8.6.0\" \"6a1f0d2e-3b4c-4d5e-8f60-718293a4b5c6\" \"test-predictor.aiproject.svc.cluster.local\" \"10.135.0.43:8081\" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.135.0.43:37306 10.135.0.43:8443 10.134.2.121:35294 test-aiproject.apps.mycluster.example.com -\n",
        "[root@bastion ~]# oc logs -n aiproject test-predictor-00001-deployment-5d9f7c8b6-x7k2p\n",
        "error: a container name must be specified for pod test-predictor-00001-deployment-5d9f7c8b6-x7k2p, choose one of: [kserve-container queue-proxy istio-proxy]\n",
        "==> /var/log/containers/activator.log <==\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.log");
    std::fs::write(&path, session).unwrap();
    let doc = explain_json(path.to_str().unwrap());
    assert_eq!(
        verdicts(&doc),
        vec![
            (
                "55f053ed-7217-46a7-a211-e20229fc1eaa".to_string(),
                503,
                "upstream_connect_failure".to_string()
            ),
            (
                "6a1f0d2e-3b4c-4d5e-8f60-718293a4b5c6".to_string(),
                200,
                "ok".to_string()
            )
        ]
    );
    let skipped: Vec<(u64, &str)> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["line"].as_u64().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        skipped,
        [1, 2, 3, 6, 7, 8].map(|l| (l, "terminal")).to_vec(),
        "{doc}"
    );
}

/// `meshtrace trace <id> <files…> -o json`.
fn trace_json(id: &str, files: &[&Path]) -> Value {
    let mut args = vec!["trace".to_string(), id.to_string()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    args.extend(["-o".to_string(), "json".to_string()]);
    let out = meshtrace().args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn knatives_own_line_about_a_failed_proxy_names_what_it_met() {
    // The gateway and the local gateway relay a 502 from the activator (10.135.0.44:8012). The
    // activator's zap line (the shape of knative/serving#14370) for that revision at that time
    // says why: its connection to the revision's pod was refused. A line for another revision,
    // and one of the same revision minutes later, are about other requests.
    let id = "55f053ed-7217-46a7-a211-e20229fc1eaa";
    let gateways = concat!(
        "[2024-06-03T09:00:00.069Z] \"POST /v2/models/test/infer HTTP/2\" 502 - via_upstream - \"-\" 658 4 40 40 \"10.134.2.121\" \"curl/8.6.0\" \"55f053ed-7217-46a7-a211-e20229fc1eaa\" \"test-predictor.aiproject.svc.cluster.local\" \"10.135.0.43:8081\" outbound|80||knative-local-gateway.istio-system.svc.cluster.local 10.135.0.43:37306 10.135.0.43:8443 10.134.2.121:35294 test-aiproject.apps.mycluster.example.com -\n",
        "[2024-06-03T09:00:00.071Z] \"POST /v2/models/test/infer HTTP/2\" 502 - via_upstream - \"-\" 658 4 37 37 \"10.134.2.121,10.135.0.43\" \"curl/8.6.0\" \"55f053ed-7217-46a7-a211-e20229fc1eaa\" \"test-predictor.aiproject.svc.cluster.local\" \"10.135.0.44:8012\" outbound|80||test-predictor-00001.aiproject.svc.cluster.local 10.135.0.43:39802 10.135.0.43:8081 10.135.0.43:37306 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -\n",
    );
    let activator = concat!(
        r#"{"severity":"INFO","timestamp":"2024-06-03T08:59:59.000Z","logger":"activator","caller":"activator/main.go:180","message":"Starting the knative activator","knative.dev/controller":"activator","knative.dev/pod":"activator-6f9c8d7b5-m4n8p"}"#,
        "\n",
        r#"{"severity":"ERROR","timestamp":"2024-06-03T09:00:00.105Z","logger":"activator","caller":"network/error_handler.go:33","message":"error reverse proxying request; sockstat: sockets: used 21\nTCP: inuse 9 orphan 0 tw 22 alloc 908 mem 80\n","knative.dev/controller":"activator","knative.dev/pod":"activator-6f9c8d7b5-m4n8p","knative.dev/key":"aiproject/test-predictor-00001","error":"dial tcp 10.135.0.60:8012: connect: connection refused","stacktrace":"knative.dev/pkg/network.ErrorHandler.func1"}"#,
        "\n",
        r#"{"severity":"ERROR","timestamp":"2024-06-03T09:00:00.106Z","logger":"activator","message":"error reverse proxying request; sockstat: sockets: used 21\n","knative.dev/controller":"activator","knative.dev/key":"other/fraud-model-00003","error":"EOF"}"#,
        "\n",
        r#"{"severity":"ERROR","timestamp":"2024-06-03T09:05:00.000Z","logger":"activator","message":"error reverse proxying request; sockstat: sockets: used 21\n","knative.dev/controller":"activator","knative.dev/key":"aiproject/test-predictor-00001","error":"context canceled"}"#,
        "\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (gw, act) = (
        dir.path().join("gateways.log"),
        dir.path().join("activator.log"),
    );
    std::fs::write(&gw, gateways).unwrap();
    std::fs::write(&act, activator).unwrap();

    let alone = trace_json(id, &[&gw]);
    assert_eq!(alone["cause"], "app_error", "{alone}");

    let doc = trace_json(id, &[&gw, &act]);
    // The cause is the one `failures` gives; the words say whose 502 it is.
    assert_eq!(doc["cause"], "app_error", "{doc}");
    let summary = doc["summary"].as_str().unwrap();
    assert!(
        !alone["summary"].as_str().unwrap().contains("activator"),
        "{alone}"
    );
    for want in [
        "this 502 is the Knative activator's own answer, not the model's",
        "revision aiproject/test-predictor-00001",
        "dial tcp 10.135.0.60:8012: connect: connection refused",
        "could not connect to a pod of the revision",
    ] {
        assert!(summary.contains(want), "{want}: {summary}");
    }
    for other in ["context canceled", "fraud-model", "`EOF`"] {
        assert!(!summary.contains(other), "{other}: {summary}");
    }
    assert!(
        doc["fix"]
            .as_str()
            .unwrap()
            .contains("-l serving.knative.dev/revision=test-predictor-00001"),
        "{doc}"
    );
    let notes = doc["notes"].to_string();
    assert!(notes.contains("activator.log:2"), "{notes}");
    assert!(
        !notes.contains("activator.log:3") && !notes.contains("activator.log:4"),
        "{notes}"
    );
}

#[test]
fn queue_proxys_refused_connection_to_the_model_is_named_with_the_revision_pods_502() {
    // The revision pod's sidecar relays queue-proxy's 502; queue-proxy's line (its own error
    // handler, as the activator's) says the model container refused the connection on 8080.
    let id = "8c0f1e2d-3a4b-4c5d-9e6f-7a8b9c0d1e2f";
    let sidecar = "[2024-06-03T09:00:00.080Z] \"POST /v2/models/test/infer HTTP/1.1\" 502 - via_upstream - \"-\" 658 4 2 2 \"10.134.2.121,10.135.0.43\" \"curl/8.6.0\" \"8c0f1e2d-3a4b-4c5d-9e6f-7a8b9c0d1e2f\" \"test-predictor.aiproject.svc.cluster.local\" \"10.135.0.60:8012\" inbound|8012|| 127.0.0.6:41000 10.135.0.60:8012 10.135.0.44:52000 outbound_.80_._.test-predictor-00001-private.aiproject.svc.cluster.local default\n";
    let queue = concat!(
        r#"{"severity":"ERROR","timestamp":"2024-06-03T09:00:00.081Z","logger":"queueproxy","caller":"network/error_handler.go:33","message":"error reverse proxying request; sockstat: sockets: used 8\n","commit":"41769de","knative.dev/key":"aiproject/test-predictor-00001","knative.dev/pod":"test-predictor-00001-deployment-5d9f7c8b6-x7k2p","error":"dial tcp 127.0.0.1:8080: connect: connection refused"}"#,
        "\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let (sc, qp) = (
        dir.path().join("istio-proxy.log"),
        dir.path().join("queue-proxy.log"),
    );
    std::fs::write(&sc, sidecar).unwrap();
    std::fs::write(&qp, queue).unwrap();
    let alone = trace_json(id, &[&sc]);
    assert!(
        !alone["summary"].as_str().unwrap().contains("queue-proxy"),
        "{alone}"
    );
    let doc = trace_json(id, &[&sc, &qp]);
    // The cause is the one `failures` gives; the words say whose 502 it is.
    assert_eq!(doc["cause"], alone["cause"], "{doc}");
    let summary = doc["summary"].as_str().unwrap();
    assert!(
        summary.contains("this 502 is queue-proxy's own answer, not the model's"),
        "{summary}"
    );
    assert!(
        summary.contains("queue-proxy could not connect to the model container at 127.0.0.1:8080"),
        "{summary}"
    );
    assert!(
        summary.contains("test-predictor-00001-deployment-5d9f7c8b6-x7k2p"),
        "{summary}"
    );
    assert!(
        doc["notes"].to_string().contains("queue-proxy.log:1"),
        "{doc}"
    );
}
