//! `meshtrace report`: Markdown/JSON post-incident reports on the seed bundles, secrets masked,
//! `--redact` consistent.

use crate::common;

use std::path::Path;

fn run(args: &[&str]) -> (i32, String, String) {
    common::run_in_repo(args)
}

const SEED000: [&str; 4] = [
    "report",
    "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
    "--bundle",
    "testdata/bundles/rhoai-400-app-error",
];
const SEED003: [&str; 4] = [
    "report",
    "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
    "--bundle",
    "testdata/bundles/kind-rbac-403",
];

#[test]
fn seed_reports_in_markdown() {
    for (name, args) in [("seed000", SEED000), ("seed003", SEED003)] {
        let (code, md, err) = run(&args);
        assert_eq!(code, 1, "{err}");
        for section in [
            "## Summary",
            "## Timeline (UTC)",
            "## Hops",
            "## Sequence",
            "```mermaid\nsequenceDiagram",
            "## Evidence",
            "## Fix",
            "## Reproduce",
        ] {
            assert!(md.contains(section), "{name}: no {section}");
        }
        assert!(
            md.contains(&format!("meshtrace trace {} --bundle {}", args[1], args[3])),
            "{name}: reproduce command"
        );
        insta::assert_snapshot!(name, md);
    }
    let (_, md, _) = run(&SEED003);
    assert!(md.contains("### `AuthorizationPolicy/istio-system/allow-with-header`"));
    assert!(
        md.contains("request.headers[X-Test]"),
        "the policy's rule is shown"
    );
}

#[test]
fn json_report() {
    let mut args = SEED000.to_vec();
    args.extend(["-o", "json"]);
    let (code, out, _) = run(&args);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "meshtrace.report/v1");
    assert_eq!(v["trace"]["cause"], "app_error");
    assert_eq!(v["evidence_lines"].as_array().unwrap().len(), 5);
    assert!(
        v["evidence_lines"][0]
            .as_str()
            .unwrap()
            .contains("4791d0d3")
    );
}

#[test]
fn redaction_replaces_ips_pods_and_hosts_consistently() {
    let mut args = SEED000.to_vec();
    args.push("--redact");
    let (_, md, _) = run(&args);
    for secret in [
        "10.135.0.43",
        "10.133.2.13",
        "istio-ingressgateway-64694db8d5-zmcc7",
        "test-predictor.aiproject.svc.cluster.local",
        "activator-5b7c9f8d6-h2xqp",
    ] {
        assert!(!md.contains(secret), "{secret} left in the redacted report");
    }
    // The gateway IP becomes one token, the same in the timeline, the hop table and the lines.
    let tokens: Vec<&str> = md
        .match_indices(":8443")
        .map(|(i, _)| md[..i].rsplit([' ', '"']).next().unwrap())
        .collect();
    assert!(tokens.len() >= 3, "{tokens:?}");
    assert!(
        tokens
            .iter()
            .all(|t| t.starts_with("ip-") && *t == tokens[0]),
        "{tokens:?}"
    );
    let (_, again, _) = run(&args);
    assert_eq!(md, again, "same input, same tokens");
}

#[test]
fn secret_header_values_never_appear() {
    // A custom format that logs the Authorization and x-api-key headers, and a VirtualService
    // that sets a header with a token.
    let d = tempfile::tempdir().unwrap();
    let fmt = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" auth=\"%REQ(AUTHORIZATION)%\" key=\"%REQ(X-API-KEY)%\" %DURATION%";
    let line = "[2024-05-01T10:00:00.000Z] \"POST /v1/models/m:predict HTTP/1.1\" 401 - jwt_authn_access_denied{Jwt_verification_fails} \"9a8b7c6d-0000-4000-8000-000000000001\" \"m.example.com\" auth=\"Bearer eyJhbGciOiJSUzI1NiJ9.c2VjcmV0\" key=\"sk-live-123456\" 2";
    std::fs::create_dir_all(d.path().join("logs/istio-system/gw/")).unwrap();
    std::fs::write(
        d.path().join("logs/istio-system/gw/istio-proxy.log"),
        format!("{line}\n"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("meshtrace-bundle.json"),
        serde_json::json!({"version": 1, "log_formats": {"default": fmt}}).to_string(),
    )
    .unwrap();
    let (code, md, err) = run(&[
        "report",
        "9a8b7c6d-0000-4000-8000-000000000001",
        "--bundle",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(md.contains("authn_failed"), "{md}");
    for secret in ["eyJhbGciOiJSUzI1NiJ9.c2VjcmV0", "sk-live-123456"] {
        assert!(!md.contains(secret), "{secret} leaked:\n{md}");
    }
    assert!(md.contains("auth=\"<redacted>\""), "{md}");
}

#[test]
fn failures_report() {
    let (code, md, _) = run(&[
        "report",
        "--failures",
        "--bundle",
        "testdata/bundles/seldon-canary-mesh-gateway",
    ]);
    assert_eq!(code, 1);
    assert!(md.starts_with("# Failures report"));
    assert!(md.contains("`upstream_reset`") && md.contains("`no_healthy_upstream`"));
    insta::assert_snapshot!(md);
}

#[test]
fn report_needs_a_request_or_failures() {
    let (code, _, err) = run(&["report", "--bundle", "testdata/bundles/kind-rbac-403"]);
    assert_eq!(code, 2);
    assert!(err.contains("required"), "{err}");
}

/// `report` reads a request as `trace` does: Istio ambient (ztunnel's lines) and, in KServe
/// Standard mode, the OpenShift router's line for the Route. Both answered "not found" before.
#[test]
fn report_reads_ambient_connections_and_the_routers_line() {
    let (code, out, err) = run(&[
        "report",
        "10.244.1.6:45208",
        "--bundle",
        "testdata/bundles/ambient-l4-deny",
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["trace"]["cause"], "rbac_denied");
    // The Standard bundle with the router's access log beside it.
    let d = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    common::copy_dir(
        &root.join("testdata/bundles/kserve-standard-router-504"),
        d.path(),
    );
    let logs = d
        .path()
        .join("logs/openshift-ingress/router-default-5d8c9f7b-x2k4p");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("logs.log"),
        "10.0.140.21:51874 [12/Mar/2025:09:41:22.104] fe_sni~ be_secure:aiproject:granite/pod:granite-predictor-7c4f8d9b6-q8w2n:granite-predictor:https:10.128.2.44:8443 0/0/1/-1/30001 504 194 - - sH-- 3/2/0/0/0 0/0 \"POST /v1/completions HTTP/1.1\"\n",
    )
    .unwrap();
    let bundle = d.path().to_str().unwrap();
    let (code, md, err) = run(&["report", "granite", "--bundle", bundle]);
    assert_eq!(code, 1, "{err}");
    common::assert_mentions(
        &md,
        &[
            "504 `upstream_timeout`",
            "HAProxy state sH--",
            "haproxy.router.openshift.io/timeout=",
        ],
    );
    let (code, out, err) = run(&["report", "--failures", "--bundle", bundle, "-o", "json"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["failures"]["groups"][0]["origin_role"],
        "OpenShift router"
    );
}
