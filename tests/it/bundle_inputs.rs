//! Bundles in every container: folder, .tar.gz, istioctl bug-report layout; damaged inputs still
//! give a verdict from what is readable and say what was skipped.

use crate::common;

use std::io::Write;
use std::path::Path;

const RBAC_LINE: &str = r#"[2024-04-25T20:21:43.725Z] "POST /v1/models/bert-emotion-model:predict HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "10.244.0.6" "curl/8.4.0" "211ebf7c-1bc2-4008-aa50-9730fa6300dc" "bert-model.default.example.com" "-" outbound|80||knative-local-gateway.istio-system.svc.cluster.local - 10.244.0.9:8080 10.244.0.6:44576 - -"#;

const PODS: &str = r#"{"apiVersion":"v1","kind":"List","items":[
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"istio-ingressgateway-5c7d8b7f9-x2k4p","namespace":"istio-system","labels":{"app":"istio-ingressgateway","istio":"ingressgateway"}},"spec":{"containers":[{"name":"istio-proxy","image":"istio/proxyv2"}]},"status":{"phase":"Running","podIP":"10.244.0.9"}},
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"client","namespace":"default","labels":{"app":"client"}},"spec":{"containers":[{"name":"curl","image":"curl"}]},"status":{"phase":"Running","podIP":"10.244.0.6"}}
]}"#;

const POLICY: &str = r#"apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: allow-with-header
  namespace: istio-system
spec:
  selector:
    matchLabels:
      app: istio-ingressgateway
  action: ALLOW
  rules:
  - to:
    - operation:
        paths: ["/v1/models/bert-emotion-model:predict"]
    when:
    - key: request.headers[X-Test]
      values: ["istio-is-cool"]
---
this is: [not valid yaml
"#;

/// The policy as `kubectl get --all-namespaces <every CRD> -o yaml` prints it (istioctl
/// bug-report's `cluster/crs`).
const CRS: &str = r#"apiVersion: v1
items:
- apiVersion: security.istio.io/v1beta1
  kind: AuthorizationPolicy
  metadata:
    name: allow-with-header
    namespace: istio-system
  spec:
    selector:
      matchLabels:
        app: istio-ingressgateway
    action: ALLOW
    rules:
    - to:
      - operation:
          paths: ["/v1/models/bert-emotion-model:predict"]
      when:
      - key: request.headers[X-Test]
        values: ["istio-is-cool"]
kind: List
metadata:
  resourceVersion: ""
"#;

fn files(prefix: &str, bug_report: bool) -> Vec<(String, Vec<u8>)> {
    let log = format!("2024-04-25T20:21:43.7Z\tinfo\tEnvoy proxy is ready\n{RBAC_LINE}\n");
    if bug_report {
        vec![
            (
                format!(
                    "{prefix}proxies/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log"
                ),
                log.into_bytes(),
            ),
            // As istioctl writes them: one `kubectl get -A … -o yaml` List each, no extension.
            (
                format!("{prefix}cluster/k8s-resources"),
                PODS.as_bytes().to_vec(),
            ),
            (format!("{prefix}cluster/crs"), CRS.as_bytes().to_vec()),
        ]
    } else {
        vec![
            (
                format!(
                    "{prefix}logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log"
                ),
                log.into_bytes(),
            ),
            (format!("{prefix}pods.json"), PODS.as_bytes().to_vec()),
            (
                format!("{prefix}resources/policies.yaml"),
                POLICY.as_bytes().to_vec(),
            ),
            (
                format!("{prefix}meshtrace-bundle.json"),
                br#"{"version":1,"future_key":true,"log_formats":{"default":"auto"}}"#.to_vec(),
            ),
        ]
    }
}

fn write_dir(root: &Path, fs: &[(String, Vec<u8>)]) {
    for (p, data) in fs {
        let full = root.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    }
}

fn write_targz(path: &Path, fs: &[(String, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (p, data) in fs {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, p, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn trace(bundle: &Path) -> (i32, serde_json::Value, String) {
    let out = common::meshtrace()
        .args(["trace", "211ebf7c-1bc2-4008-aa50-9730fa6300dc", "--bundle"])
        .arg(bundle)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn assert_rbac_verdict(v: &serde_json::Value) {
    assert_eq!(v["schema"], "meshtrace.trace/v1");
    assert_eq!(v["cause"], "rbac_denied");
    assert_eq!(v["status"], 403);
    assert_eq!(v["hops"][0]["role"], "ingress-gateway");
    assert_eq!(v["hops"][0]["pod"], "istio-ingressgateway-5c7d8b7f9-x2k4p");
    assert_eq!(
        v["objects"],
        serde_json::json!(["AuthorizationPolicy/istio-system/allow-with-header"])
    );
    let why = v["citations"][0]["why"].as_str().unwrap();
    assert!(
        why.contains("request.headers[X-Test] in [istio-is-cool]"),
        "{why}"
    );
}

#[test]
fn folder_bundle() {
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &files("", false));
    let (code, v, err) = trace(d.path());
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
    // The broken second YAML document is reported, not fatal.
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("policies.yaml: YAML document 2 unreadable"),
        "{notes}"
    );
}

#[test]
fn targz_bundle_and_bug_report_archive() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("bundle.tar.gz");
    write_targz(&a, &files("", false));
    let (code, v, err) = trace(&a);
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
    let b = d.path().join("bug-report.tar.gz");
    write_targz(&b, &files("bug-report/", true));
    let (code, v, err) = trace(&b);
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
    // The extracted bug-report folder works too.
    write_dir(&d.path().join("extracted"), &files("bug-report/", true));
    let (_, v, _) = trace(&d.path().join("extracted"));
    assert_rbac_verdict(&v);
}

#[test]
fn corrupt_archive_still_gives_a_verdict_from_what_was_read() {
    let d = tempfile::tempdir().unwrap();
    // Log first, so it survives the cut; the pods and policies are lost with the tail.
    let fs = files("", false);
    let a = d.path().join("bundle.tar");
    {
        let f = std::fs::File::create(&a).unwrap();
        let mut b = tar::Builder::new(f);
        for (p, data) in &fs {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, data.as_slice()).unwrap();
        }
        b.finish().unwrap();
    }
    let bytes = std::fs::read(&a).unwrap();
    std::fs::write(&a, &bytes[..1800]).unwrap();
    let (code, v, err) = trace(&a);
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["cause"], "rbac_denied");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("truncated") || notes.contains("corrupt"),
        "{notes}"
    );
}

#[test]
fn archive_members_escaping_the_bundle_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("evil.tar");
    {
        let f = std::fs::File::create(&a).unwrap();
        let mut b = tar::Builder::new(f);
        let log = format!("{RBAC_LINE}\n");
        for name in ["../../outside.log", "logs/istio-system/gw/istio-proxy.log"] {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(log.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, log.as_bytes()).unwrap();
        }
        b.finish().unwrap();
    }
    let (code, v, err) = trace(&a);
    assert_eq!(code, 1, "{err}");
    assert!(
        v["notes"]
            .to_string()
            .contains("refused member ../../outside.log"),
        "{}",
        v["notes"]
    );
    assert!(!d.path().parent().unwrap().join("outside.log").exists());
}

#[test]
fn empty_or_missing_bundle_is_one_clear_sentence() {
    let d = tempfile::tempdir().unwrap();
    let (code, _, err) = trace(d.path());
    assert_eq!(code, 2);
    assert!(err.contains("holds no logs, pods or resources"), "{err}");
    let (code, _, err) = trace(&d.path().join("nope"));
    assert_eq!(code, 2);
    assert!(err.contains("cannot open bundle"), "{err}");
}

#[test]
fn unknown_request_id_says_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    write_dir(d.path(), &files("", false));
    let out = common::meshtrace()
        .args(["trace", "211ebf7c-0000", "--bundle"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("211ebf7c-0000 not found in 1 access-log record(s) of 1 log(s)"),
        "{err}"
    );
    assert!(err.contains("similar request ids: 211ebf7c-1bc2"), "{err}");
}

#[test]
fn mesh_wide_istio_mutual_towards_a_pod_without_sidecar() {
    // Seed 000, last section: a sidecar calls a non-mesh Service in its own namespace and the
    // default DestinationRule (`*.cluster.local`, ISTIO_MUTUAL) makes it speak mTLS to a
    // plaintext pod.
    let pods = r#"{"apiVersion":"v1","kind":"List","items":[
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"test-predictor-00001-deployment-bfc57c85b-ns2vj","namespace":"aiproject","labels":{"serving.kserve.io/inferenceservice":"test","component":"predictor"}},"spec":{"containers":[{"name":"kserve-container","image":"m"},{"name":"queue-proxy","image":"q"},{"name":"istio-proxy","image":"p"}]},"status":{"phase":"Running","podIP":"10.133.2.13"}},
 {"apiVersion":"v1","kind":"Pod","metadata":{"name":"no-mesh-service-6c9f7d8b5-k2p4x","namespace":"aiproject","labels":{"app":"no-mesh-service"}},"spec":{"containers":[{"name":"server","image":"s"}]},"status":{"phase":"Running","podIP":"10.133.2.40"}}
]}"#;
    let dr = "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata:\n  name: default\n  namespace: istio-system\nspec:\n  host: '*.cluster.local'\n  trafficPolicy:\n    tls:\n      mode: ISTIO_MUTUAL\n";
    let line = r#"[2024-06-03T09:20:00.100Z] "GET /data HTTP/1.1" 503 UF,URX upstream_reset_before_response_started{connection_failure,TLS_error:_268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER} - "TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end" 0 190 3 - "-" "python-requests/2.31.0" "5d1c6f0e-8a2b-4c3d-9e4f-0a1b2c3d4e5f" "no-mesh-service.aiproject.svc.cluster.local:8000" "10.133.2.40:8000" outbound|8000||no-mesh-service.aiproject.svc.cluster.local - 172.31.80.12:8000 10.133.2.13:51234 - default"#;
    let d = tempfile::tempdir().unwrap();
    write_dir(
        d.path(),
        &[
            ("pods.json".into(), pods.as_bytes().to_vec()),
            ("resources/dr.yaml".into(), dr.as_bytes().to_vec()),
            (
                "logs/aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj/istio-proxy.log"
                    .into(),
                format!("{line}\n").into_bytes(),
            ),
        ],
    );
    let out = common::meshtrace()
        .args(["trace", "5d1c6f0e-8a2b-4c3d-9e4f-0a1b2c3d4e5f", "--bundle"])
        .arg(d.path())
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cause"], "missing_sidecar");
    assert_eq!(v["hops"][0]["role"], "predictor");
    assert_eq!(v["hops"][0]["direction"], "outbound");
    let objects = v["objects"].to_string();
    assert!(
        objects.contains("DestinationRule/istio-system/default"),
        "{objects}"
    );
    assert!(
        objects.contains("Pod/aiproject/no-mesh-service-6c9f7d8b5-k2p4x"),
        "{objects}"
    );
    assert!(v["evidence"].to_string().contains("WRONG_VERSION_NUMBER"));
}

/// A `.zip` of `fs` as a ticket attachment usually is (deflated members, folders implied).
fn zip_bytes(fs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (p, data) in fs {
        w.start_file(p.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn zip_bundle_and_bug_report_are_read_whatever_their_name() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("bundle.zip");
    std::fs::write(&a, zip_bytes(&files("", false))).unwrap();
    let (code, v, err) = trace(&a);
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
    // A bug report zipped again by the person who sent it, and renamed: told by its bytes.
    let b = d.path().join("bug-report-ticket-4411.tar.gz");
    std::fs::write(&b, zip_bytes(&files("bug-report/", true))).unwrap();
    let (code, v, err) = trace(&b);
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
    // And a gzip'd tar with no extension at all.
    let c = d.path().join("attachment");
    write_targz(&c, &files("", false));
    let (code, v, err) = trace(&c);
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
}

#[test]
fn cut_zip_without_its_central_directory_is_read_from_its_local_headers() {
    let d = tempfile::tempdir().unwrap();
    let bytes = zip_bytes(&files("", false));
    // The central directory starts at the first `PK\x01\x02`; cut there (a partial download).
    let cd = bytes
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("central directory");
    let a = d.path().join("bundle.zip");
    std::fs::write(&a, &bytes[..cd]).unwrap();
    let (code, v, err) = trace(&a);
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
    let notes = v["notes"].to_string();
    assert!(notes.contains("no readable central directory"), "{notes}");
    // Cut inside the last member too: what came before is still used, and the damage is said.
    std::fs::write(&a, &bytes[..cd - 40]).unwrap();
    let (_, v, err) = trace(&a);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("damaged after") || err.contains("damaged after"),
        "{notes} {err}"
    );
}

#[test]
fn zip_members_escaping_the_bundle_or_lying_about_their_size_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let log = format!("{RBAC_LINE}\n").into_bytes();
    let mut fs = files("", false);
    fs.push(("../../outside.log".to_string(), log.clone()));
    let a = d.path().join("evil.zip");
    std::fs::write(&a, zip_bytes(&fs)).unwrap();
    let (code, v, err) = trace(&a);
    assert_eq!(code, 1, "{err}");
    assert!(
        v["notes"]
            .to_string()
            .contains("refused member ../../outside.log"),
        "{}",
        v["notes"]
    );
    // A member whose headers declare 10 bytes but whose data inflates to far more (the shape
    // of a zip bomb): only the declared bytes are read, and the lie is reported; the rest of
    // the bundle is still used.
    let bomb = "logs/istio-system/other/istio-proxy.log";
    let mut fs = files("", false);
    fs.push((bomb.to_string(), log.repeat(200)));
    let mut bytes = zip_bytes(&fs);
    let name_at: Vec<usize> = bytes
        .windows(bomb.len())
        .enumerate()
        .filter(|(_, w)| *w == bomb.as_bytes())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(name_at.len(), 2, "local header and central directory");
    // The uncompressed size: 8 bytes before the name's length field in the local header
    // (offset 22 of 30), 22 bytes before the name in the central directory (offset 24 of 46).
    for (start, at) in [(name_at[0] - 30, 22), (name_at[1] - 46, 24)] {
        bytes[start + at..start + at + 4].copy_from_slice(&10u32.to_le_bytes());
    }
    let b = d.path().join("bomb.zip");
    std::fs::write(&b, &bytes).unwrap();
    let (code, v, err) = trace(&b);
    assert_eq!(code, 1, "{err}");
    assert_rbac_verdict(&v);
    let all = v["notes"].to_string();
    assert!(
        all.contains("only the 10 bytes its header declares are read"),
        "{all}"
    );
}
