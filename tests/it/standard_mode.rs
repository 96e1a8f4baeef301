//! KServe Standard (RawDeployment) mode and hops that write no access log: `trace
//! --client-status` and `explain` with a pasted `curl -v` transcript on the
//! `kserve-standard-*` bundles name the hop in between (kube-rbac-proxy, the OpenShift router)
//! and what to check there; Envoy-served hops keep their own verdicts.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::common;

const RBAC: &str = "testdata/bundles/kserve-standard-rbac-proxy-403";
const ROUTER: &str = "testdata/bundles/kserve-standard-router-504";

fn run(args: &[&str]) -> (i32, String, String) {
    common::run_in_repo(args)
}

fn trace_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let (code, out, err) = run(&all);
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}\n{err}"));
    (code, v)
}

fn origin(v: &Value) -> &Value {
    let i = v["origin_hop"].as_u64().unwrap() as usize;
    &v["hops"][i - 1]
}

fn objects(v: &Value) -> Vec<&str> {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect()
}

#[test]
fn trace_403_names_kube_rbac_proxy_and_the_access_review() {
    let (code, v) = trace_json(&["granite", "--bundle", RBAC, "--client-status", "403"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["cause"], "ext_authz_denied");
    assert_eq!(v["status"], 403);
    // The expected path, client first, none of it logged: router → kube-rbac-proxy → model.
    let roles: Vec<&str> = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["openshift-router", "kube-rbac-proxy", "model-server"]
    );
    assert!(
        v["hops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["direction"] == "not logged")
    );
    let h = origin(&v);
    assert_eq!(h["role"], "kube-rbac-proxy");
    assert_eq!(h["pod"], "granite-predictor-6b8d9c7f5-x2k9p");
    assert_eq!(h["listener"], "10.131.0.37:8443");
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.contains("The client saw 403 but no proxy we can read logged it")
            && summary.contains(
                "kube-rbac-proxy on 8443 in pod aiproject/granite-predictor-6b8d9c7f5-x2k9p"
            ),
        "{summary}"
    );
    let fix = v["fix"].as_str().unwrap();
    assert!(
        fix.contains("oc auth can-i get inferenceservices.serving.kserve.io/granite -n aiproject")
            && fix.contains("ConfigMap/aiproject/granite-kube-rbac-proxy-sar-config")
            && fix.contains("-c kube-rbac-proxy"),
        "{fix}"
    );
    let objs = objects(&v);
    for o in [
        "InferenceService/aiproject/granite",
        "Pod/aiproject/granite-predictor-6b8d9c7f5-x2k9p",
        "ConfigMap/aiproject/granite-kube-rbac-proxy-sar-config",
    ] {
        assert!(objs.contains(&o), "{o} not in {objs:?}");
    }
}

#[test]
fn trace_504_names_the_router_and_its_timeout() {
    // START may be the Route's host.
    let (code, v) = trace_json(&[
        "granite-aiproject.apps.rhoai.example.com",
        "--bundle",
        ROUTER,
        "--client-status",
        "504",
    ]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["cause"], "upstream_timeout");
    assert_eq!(v["origin_hop"], 1);
    let h = origin(&v);
    assert_eq!(h["role"], "openshift-router");
    assert_eq!(h["listener"], "granite-aiproject.apps.rhoai.example.com");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("the OpenShift router for Route/aiproject/granite")
    );
    let fix = v["fix"].as_str().unwrap();
    assert!(
        fix.contains("`haproxy.router.openshift.io/timeout` is `30s`")
            && fix.contains("--upstream-timeout=600s")
            && fix.contains("oc annotate route -n aiproject granite"),
        "{fix}"
    );
    assert!(objects(&v).contains(&"Route/aiproject/granite"));
    let route = v["citations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == "Route/aiproject/granite")
        .unwrap();
    assert!(
        route["why"]
            .as_str()
            .unwrap()
            .contains("TLS reencrypt, insecureEdgeTerminationPolicy Redirect; target port https"),
        "{route}"
    );
}

#[test]
fn without_client_status_a_standard_bundle_is_still_not_found() {
    let (code, _, err) = run(&["trace", "granite", "--bundle", RBAC]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_status_the_envoy_logged_keeps_its_verdict() {
    let bundle = "testdata/bundles/kind-rbac-403";
    let id = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
    let (_, plain) = trace_json(&[id, "--bundle", bundle]);
    let (_, same) = trace_json(&[id, "--bundle", bundle, "--client-status", "403"]);
    assert_eq!(same["cause"], "rbac_denied");
    assert_eq!(same, plain);
    // The client saw something else than the outermost logged hop: the hop in front of it.
    let (code, v) = trace_json(&[id, "--bundle", bundle, "--client-status", "504"]);
    assert_eq!(code, 1);
    assert_eq!(v["hops"][0]["direction"], "not logged");
    assert_eq!(v["origin_hop"], 1);
    assert_eq!(
        v["hops"].as_array().unwrap().len(),
        plain["hops"].as_array().unwrap().len() + 1
    );
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("logged this request with 403 at hop 1"),
        "{}",
        v["summary"]
    );
}

#[test]
fn explain_reads_a_pasted_curl_transcript() {
    let t = "testdata/curl/kserve-standard-rbac-proxy-403.txt".to_string();
    let (code, out, err) = run(&["explain", &t]);
    assert_eq!(code, 0, "{out}\n{err}");
    for want in [
        "The client saw 403 but no proxy we can read logged it",
        "kube-rbac-proxy (the authenticating sidecar of KServe Standard mode, on 8443)",
        "body: Forbidden (user=system:serviceaccount:aiproject:pipeline-runner-dspa",
        "no `server` response header: not an Envoy",
        "oc auth can-i get inferenceservices.serving.kserve.io",
        "Verdict: 403 ext_authz_denied at hop 1",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    // The bearer token of the transcript is never printed.
    assert!(
        !out.contains("eyJhbGciOiJSUzI1NiIsImtpZCI6IlJFREFDVEVEIn0"),
        "{out}"
    );

    let t = "testdata/curl/kserve-standard-router-504.txt".to_string();
    let (code, out, err) = run(&["explain", &t]);
    assert_eq!(code, 0, "{out}\n{err}");
    for want in [
        "the OpenShift router (HAProxy's 504 page)",
        "Verdict: 504 upstream_timeout",
        "haproxy.router.openshift.io/timeout",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
}

#[test]
fn explain_reads_a_transcript_from_stdin_and_the_envoy_server_header() {
    let transcript = "* Connected to gw.example.com (192.0.2.7) port 443\n> GET /v1/models HTTP/2\n> :authority: gw.example.com\n< HTTP/2 503 \n< server: istio-envoy\n< x-request-id: 0c2d4f6a-8b1e-4c3d-9e5f-7a6b5c4d3e2f\n<\nno healthy upstream\n";
    let mut child = common::meshtrace()
        .args(["explain", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(transcript.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("an Envoy proxy (`server: istio-envoy`)")
            && stdout.contains("collect the istio-proxy logs"),
        "{stdout}"
    );
}

#[test]
fn explain_client_status_against_the_lines_given() {
    // A line with the client's status explains it: nothing is added.
    let (code, out, _) = run(&[
        "explain",
        "testdata/explain/seed003-rbac.log",
        "--client-status",
        "403",
    ]);
    assert_eq!(code, 0);
    assert!(!out.contains("not logged"), "{out}");
    // No line has 504: the hop in between wrote none.
    let (code, out, _) = run(&[
        "explain",
        "testdata/explain/seed003-rbac.log",
        "--client-status",
        "504",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("The client saw 504 but no proxy we can read logged it")
            && out.contains("not logged"),
        "{out}"
    );
    // --client-status overrides a transcript's status.
    let t = "testdata/curl/kserve-standard-rbac-proxy-403.txt".to_string();
    let (_, out, _) = run(&["explain", &t, "--client-status", "401"]);
    assert!(out.contains("Verdict: 401"), "{out}");
    // Out of range is a usage error.
    let (code, _, err) = run(&["explain", &t, "--client-status", "99"]);
    assert_eq!(code, 2, "{err}");
}

/// A copy of a Standard-mode bundle with the OpenShift router's access log (its `logs` sidecar
/// container) holding `lines`.
fn with_router_log(bundle: &str, lines: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(bundle);
    common::copy_dir(&root, d.path());
    let dir = d
        .path()
        .join("logs/openshift-ingress/router-default-5d8c9f7b-x2k4p");
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = "2025-03-12T09:41:52.118204+00:00 router-default-5d8c9f7b-x2k4p router-default-5d8c9f7b-x2k4p haproxy[412]: ";
    let text: String = lines.iter().map(|l| format!("{prefix}{l}\n")).collect();
    std::fs::write(dir.join("logs.log"), text).unwrap();
    d
}

/// With the router's access log in the bundle, `trace <isvc>` needs no `--client-status`: the
/// Route's last failed line gives the status, the router hop is that line, and its reading
/// (HAProxy's `sH--`: the server timeout) is the verdict, with the Route's timeout as the fix.
#[test]
fn the_routers_own_line_is_the_router_hop_and_its_verdict() {
    let d = with_router_log(
        ROUTER,
        &[
            r#"10.0.140.21:51860 [12/Mar/2025:09:41:09.210] fe_sni~ be_secure:aiproject:granite/pod:granite-predictor-7c4f8d9b6-q8w2n:granite-predictor:https:10.128.2.44:8443 0/0/1/790/792 200 1024 - - ---- 2/1/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
            r#"10.0.140.21:51874 [12/Mar/2025:09:41:22.104] fe_sni~ be_secure:aiproject:granite/pod:granite-predictor-7c4f8d9b6-q8w2n:granite-predictor:https:10.128.2.44:8443 0/0/1/-1/30001 504 194 - - sH-- 3/2/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
            r#"10.0.140.21:51890 [12/Mar/2025:09:43:00.000] fe_sni~ be_secure:other:granite/<NOSRV> 0/-1/-1/-1/0 503 3291 - - SC-- 1/1/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
        ],
    );
    let bundle = d.path().to_str().unwrap();
    let (code, v) = trace_json(&["granite", "--bundle", bundle]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["status"], 504);
    assert_eq!(v["cause"], "upstream_timeout");
    let o = origin(&v);
    assert_eq!(o["role"], "openshift-router");
    assert_eq!(o["direction"], "inbound");
    assert_eq!(o["duration_ms"], 30001);
    assert!(
        o["evidence"]["file"]
            .as_str()
            .unwrap()
            .ends_with("logs.log"),
        "{o:#}"
    );
    assert_eq!(
        o["evidence"]["line"], 2,
        "the 504 line, not the 200 nor another Route's"
    );
    assert!(
        v["fix"].as_str().unwrap().contains(
            "oc annotate route granite -n aiproject haproxy.router.openshift.io/timeout="
        ),
        "{v:#}"
    );
    assert!(objects(&v).contains(&"Route/aiproject/granite"), "{v:#}");
    // `--client-status` picks the line with that status.
    let (_, v) = trace_json(&["granite", "--bundle", bundle, "--client-status", "504"]);
    assert_eq!(origin(&v)["evidence"]["line"], 2);
    // Without the router's line the verdict stands as before, from the client's status alone.
    let (_, plain) = trace_json(&["granite", "--bundle", ROUTER, "--client-status", "504"]);
    assert_eq!(plain["hops"][0]["direction"], "not logged");
}

/// A 403 the router relayed (`----`) stays the auth proxy's verdict; the router's line says the
/// answer came from behind it.
#[test]
fn a_status_the_router_relayed_stays_the_pods() {
    let d = with_router_log(
        RBAC,
        &[
            r#"10.0.140.21:51874 [12/Mar/2025:09:41:22.104] fe_sni~ be_secure:aiproject:granite/pod:granite-predictor-6f9d7c8b5-k2xqz:granite-predictor:https:10.131.0.37:8443 0/0/1/3/4 403 160 - - ---- 3/2/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
        ],
    );
    let bundle = d.path().to_str().unwrap();
    let (_, with_line) = trace_json(&["granite", "--bundle", bundle]);
    let (_, without) = trace_json(&["granite", "--bundle", RBAC, "--client-status", "403"]);
    assert_eq!(with_line["cause"], without["cause"]);
    assert_eq!(origin(&with_line)["role"], origin(&without)["role"]);
    assert_eq!(with_line["hops"][0]["status"], 403);
    let notes = with_line["notes"].to_string();
    assert!(notes.contains("relayed this status from pod"), "{notes}");
}
