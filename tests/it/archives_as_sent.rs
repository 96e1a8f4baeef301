//! Support archives as sent: istioctl bug-report and must-gather layouts, bundle-defined access-log formats.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

const RBAC_ID: &str = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bundles")
        .join(name)
}

struct Run {
    code: i32,
    json: serde_json::Value,
    stderr: String,
}

fn run(args: &[&str], bundle: &Path) -> Run {
    let out = common::meshtrace()
        .args(args)
        .arg("--bundle")
        .arg(bundle)
        .args(["-o", "json"])
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        json: serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn trace(bundle: &Path) -> Run {
    run(&["trace", RBAC_ID], bundle)
}

/// The parts of a trace that must not depend on how the evidence was laid out.
fn verdict(v: &serde_json::Value) -> serde_json::Value {
    let hops: Vec<serde_json::Value> = v["hops"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|h| serde_json::json!([h["role"], h["namespace"], h["pod"], h["status"]]))
        .collect();
    serde_json::json!({
        "cause": v["cause"],
        "status": v["status"],
        "objects": v["objects"],
        "hops": hops,
        "citations": v["citations"],
    })
}

fn notes(v: &serde_json::Value) -> Vec<String> {
    v["notes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn has_note(v: &serde_json::Value, needle: &str) -> bool {
    notes(v).iter().any(|n| n.contains(needle))
}

/// A `.tar.gz` of `dir`'s files (paths relative to `dir`, sorted; `first` members go first).
fn targz(dir: &Path, out: &Path, first: &[&str]) {
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort_by_key(|p| {
        let s = p.to_string_lossy().to_string();
        (
            first
                .iter()
                .position(|f| s.contains(f))
                .unwrap_or(first.len()),
            s,
        )
    });
    let f = std::fs::File::create(out).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for rel in files {
        let data = std::fs::read(dir.join(&rel)).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, &rel, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if !p.ends_with("README.md") {
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

#[test]
fn bug_report_folder_and_archive_give_the_verdict_of_the_bundle() {
    let reference = trace(&example("kind-rbac-403"));
    assert_eq!(reference.code, 1, "{}", reference.stderr);
    assert_eq!(reference.json["cause"], "rbac_denied");

    let folder = trace(&example("bugreport-rbac-403"));
    assert_eq!(folder.code, 1, "{}", folder.stderr);
    assert_eq!(verdict(&folder.json), verdict(&reference.json));
    assert_eq!(
        folder.json["objects"],
        serde_json::json!(["AuthorizationPolicy/istio-system/allow-with-header"])
    );
    // What the bug-report holds and meshtrace does not read is listed, with the reason.
    for (file, why) in [
        ("bug-report/cluster/secrets", "Secrets are never read"),
        ("bug-report/cluster/events", "kubectl text output"),
        (
            "istio-ingressgateway-5c7d8b7f9-x2k4p/clusters",
            "Envoy's /clusters text output",
        ),
        ("discovery.log", "istiod's own log"),
        ("bug-report/versions", "istioctl's record of versions"),
    ] {
        assert!(
            has_note(&folder.json, &format!("{file} is not read: {why}")),
            "{file}: {:?}",
            notes(&folder.json)
        );
    }
    // The cluster objects and proxy logs are read, not listed.
    for read in ["k8s-resources", "cluster/crs", "istio-proxy.log"] {
        assert!(
            !has_note(&folder.json, read),
            "{read}: {:?}",
            notes(&folder.json)
        );
    }

    // The archive as istioctl writes it: bug-report.tar.gz holding bug-report/….
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("bug-report.tar.gz");
    targz(&example("bugreport-rbac-403"), &a, &[]);
    let archive = trace(&a);
    assert_eq!(archive.code, 1, "{}", archive.stderr);
    assert_eq!(verdict(&archive.json), verdict(&reference.json));
}

#[test]
fn must_gather_folder_and_archive_give_the_verdict_of_the_bundle() {
    let reference = trace(&example("kind-rbac-403"));
    let folder = trace(&example("must-gather-ossm-403"));
    assert_eq!(folder.code, 1, "{}", folder.stderr);
    assert_eq!(verdict(&folder.json), verdict(&reference.json));
    for (file, why) in [
        ("core/secrets.yaml", "Secrets are never read"),
        ("proxy_stats", "Envoy stats"),
        (
            "customresourcedefinitions/authorizationpolicies.security.istio.io.yaml",
            "CustomResourceDefinitions describe kinds, not objects",
        ),
        (
            "controlplane/synchronization",
            "not objects, a log or a config dump",
        ),
        ("/timestamp", "must-gather's own records"),
    ] {
        assert!(
            has_note(&folder.json, &format!("{file} is not read: {why}")),
            "{file}: {:?}",
            notes(&folder.json)
        );
    }
    // Pods listed twice (core/pods.yaml and pods/<pod>/<pod>.yaml) are one pod; the logs'
    // `kubectl logs --timestamps` prefixes are envelopes, the records' own times are kept.
    assert!(!has_note(&folder.json, "not among the bundle's Pods"));
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("must-gather.tar.gz");
    targz(&example("must-gather-ossm-403"), &a, &[]);
    let archive = trace(&a);
    assert_eq!(archive.code, 1, "{}", archive.stderr);
    assert_eq!(verdict(&archive.json), verdict(&reference.json));
}

#[test]
fn failures_count_the_same_requests_in_every_layout() {
    let counts = |name: &str| {
        let r = run(&["failures"], &example(name));
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        (
            r.json["requests"].clone(),
            r.json["failed"].clone(),
            r.json["groups"][0]["cause"].clone(),
            r.json["groups"][0]["first_seen"].clone(),
        )
    };
    let reference = counts("kind-rbac-403");
    assert_eq!(reference.1, 1);
    assert_eq!(counts("bugreport-rbac-403"), reference);
    assert_eq!(counts("must-gather-ossm-403"), reference);
}

#[test]
fn a_truncated_bug_report_archive_says_so_once_and_uses_what_was_read() {
    let d = tempfile::tempdir().unwrap();
    let whole = d.path().join("whole.tar.gz");
    // The objects and the gateway's log first, as a cut download keeps the head of the file.
    targz(
        &example("bugreport-rbac-403"),
        &whole,
        &[
            "cluster/crs",
            "cluster/k8s-resources",
            "istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log",
        ],
    );
    // Decompress, cut the tar inside the fourth member, compress again: a truncated archive.
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&whole).unwrap()),
        &mut tar_bytes,
    )
    .unwrap();
    let mut ar = tar::Archive::new(tar_bytes.as_slice());
    let fourth = ar
        .entries()
        .unwrap()
        .nth(3)
        .unwrap()
        .unwrap()
        .raw_file_position();
    let cut = d.path().join("bug-report.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&cut).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&tar_bytes[..fourth as usize + 10]).unwrap();
    gz.finish().unwrap();

    let r = trace(&cut);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.json["cause"], "rbac_denied");
    assert_eq!(
        r.json["objects"],
        serde_json::json!(["AuthorizationPolicy/istio-system/allow-with-header"])
    );
    let damaged: Vec<String> = notes(&r.json)
        .into_iter()
        .filter(|n| n.contains("corrupt or truncated"))
        .collect();
    assert_eq!(damaged.len(), 1, "{:?}", notes(&r.json));
    assert!(
        damaged[0].contains("after 3 complete member(s)")
            && damaged[0].contains("using what was read"),
        "{}",
        damaged[0]
    );
}

/// A bundle folder archived under its own name (`tar czf b.tgz kind-rbac-403/`, what most
/// people type) is read as the folder is; when that archive is cut before any log, the error
/// says the archive is truncated, not only that nothing was found.
#[test]
fn a_bundle_archived_in_its_folder_reads_as_the_folder() {
    let d = tempfile::tempdir().unwrap();
    let wrapped = d.path().join("wrap");
    common::copy_dir(&example("kind-rbac-403"), &wrapped.join("kind-rbac-403"));
    let archive = d.path().join("ticket.tar.gz");
    targz(&wrapped, &archive, &["pods.json"]);
    let folder = trace(&example("kind-rbac-403"));
    let r = trace(&archive);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(verdict(&r.json), verdict(&folder.json));

    // The same archive cut inside its first member: nothing usable, and the error says why.
    let bytes = std::fs::read(&archive).unwrap();
    let cut = d.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 10]).unwrap();
    let r = trace(&cut);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("holds no logs"), "{}", r.stderr);
    assert!(
        r.stderr.contains("\n  note: ") && r.stderr.contains("corrupt or truncated"),
        "{}",
        r.stderr
    );
}

// ---- access-log formats defined by the bundle's own objects ----

/// A custom TEXT format starting with a bare `%START_TIME% ` (no brackets).
const SHORT: &str = "%START_TIME% %REQ(X-REQUEST-ID)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %DURATION% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%\n";

/// `s` as a YAML double-quoted scalar (a JSON string is one).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Lines of pod `a-1` (10.244.0.30) in [`SHORT`]: two failures, one success.
const A_LOG: &str = r#"2024-04-25T20:30:02.200Z a-fail-1 503 UF upstream_reset_before_response_started{connection_failure} "POST /v1/models/m:predict HTTP/1.1" 2 outbound|80||m.models.svc.cluster.local 10.244.0.31:8080 10.244.0.30:8080 10.244.0.9:40000
2024-04-25T20:30:03.000Z a-fail-2 403 - rbac_access_denied_matched_policy[none] "POST /v1/models/m:predict HTTP/1.1" 0 - - 10.244.0.30:8080 10.244.0.9:40002
2024-04-25T20:30:04.500Z a-ok-1 200 - via_upstream "POST /v1/models/m:predict HTTP/1.1" 31 outbound|80||m.models.svc.cluster.local 10.244.0.31:8080 10.244.0.30:8080 10.244.0.9:40004
"#;

/// Lines of pod `b-1` (10.244.0.31) in Istio's default format: one failure, one success.
const B_LOG: &str = r#"[2024-04-25T20:30:01.100Z] "POST /v1/models/m:predict HTTP/1.1" 504 UT response_timeout - "-" 51 24 15001 - "-" "curl/8.4.0" "b-fail-1" "m.models.svc.cluster.local" "10.244.0.31:8080" inbound|8080|| 127.0.0.6:41234 10.244.0.31:8080 10.244.0.9:51234 outbound_.80_._.m.models.svc.cluster.local default
[2024-04-25T20:30:05.100Z] "POST /v1/models/m:predict HTTP/1.1" 200 - via_upstream - "-" 51 303 40 39 "-" "curl/8.4.0" "b-ok-1" "m.models.svc.cluster.local" "10.244.0.31:8080" inbound|8080|| 127.0.0.6:41236 10.244.0.31:8080 10.244.0.9:51236 outbound_.80_._.m.models.svc.cluster.local default
"#;

fn pod(name: &str, app: &str, ip: &str) -> String {
    format!(
        "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: {name}\n    namespace: models\n    labels:\n      app: {app}\n  spec:\n    containers:\n    - name: {app}\n      image: example/{app}\n    - name: istio-proxy\n      image: docker.io/istio/proxyv2:1.20.3\n  status:\n    phase: Running\n    podIP: {ip}\n"
    )
}

/// An istioctl bug-report folder: `cluster/k8s-resources` with the pods and the `istio`
/// ConfigMap's `mesh`, `cluster/crs` with `crs`, and the two proxies' logs.
fn bug_report(dir: &Path, mesh: &str, crs: &str, b_log: bool) {
    let root = dir.join("bug-report");
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": mesh}});
    let cm = format!("- {cm}\n");
    let k8s = format!(
        "apiVersion: v1\nitems:\n{}{}{cm}kind: List\nmetadata:\n  resourceVersion: \"\"\n",
        pod("a-1", "a", "10.244.0.30"),
        pod("b-1", "b", "10.244.0.31")
    );
    let files = [
        ("cluster/k8s-resources", k8s),
        (
            "cluster/crs",
            // (`items: []` when there are none, as kubectl writes an empty List.)
            format!(
                "apiVersion: v1\nitems:{}\n{crs}kind: List\nmetadata:\n  resourceVersion: \"\"\n",
                if crs.is_empty() { " []" } else { "" }
            ),
        ),
        ("proxies/models/a-1/istio-proxy.log", A_LOG.to_string()),
    ];
    for (p, text) in files {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    if b_log {
        std::fs::create_dir_all(root.join("proxies/models/b-1")).unwrap();
        std::fs::write(root.join("proxies/models/b-1/istio-proxy.log"), B_LOG).unwrap();
    }
}

fn failures(bundle: &Path) -> (i64, i64, serde_json::Value) {
    let r = run(&["failures"], bundle);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
    (
        r.json["requests"].as_i64().unwrap_or(-1),
        r.json["failed"].as_i64().unwrap_or(-1),
        r.json.clone(),
    )
}

#[test]
fn the_bundles_mesh_config_format_reads_its_lines() {
    let d = tempfile::tempdir().unwrap();
    let with = d.path().join("with");
    let mesh = format!(
        "accessLogFile: /dev/stdout\naccessLogEncoding: TEXT\naccessLogFormat: {}\n",
        quoted(SHORT)
    );
    bug_report(&with, &mesh, "", false);
    let (requests, failed, v) = failures(&with);
    assert_eq!((requests, failed), (3, 2), "{v}");
    assert!(
        has_note(&v, "access-log format from ConfigMap istio-system/istio"),
        "{:?}",
        notes(&v)
    );
    // The bare leading %START_TIME% is the record's time (it is not taken for a
    // `kubectl logs --timestamps` prefix and dropped).
    let seen: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["first_seen"].as_str())
        .collect();
    assert_eq!(seen.len(), 2, "{v}");
    assert!(seen.contains(&"2024-04-25T20:30:02.200Z"), "{seen:?}");
    assert!(
        seen.contains(&"2024-04-25T20:30:03Z") || seen.contains(&"2024-04-25T20:30:03.000Z"),
        "{seen:?}"
    );

    // The same lines without the format in the bundle: nothing reads them.
    let without = d.path().join("without");
    bug_report(&without, "accessLogFile: /dev/stdout\n", "", false);
    let r = run(&["failures"], &without);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no access-log line"), "{}", r.stderr);
}

#[test]
fn a_telemetry_selecting_one_workload_gives_its_format_to_that_workload_only() {
    let d = tempfile::tempdir().unwrap();
    let b = d.path().join("b");
    let mesh = format!(
        "accessLogFile: /dev/stdout\nextensionProviders:\n- name: short\n  envoyFileAccessLog:\n    path: /dev/stdout\n    logFormat:\n      text: {}\n",
        quoted(SHORT)
    );
    let telemetry = "- apiVersion: telemetry.istio.io/v1\n  kind: Telemetry\n  metadata:\n    name: only-a\n    namespace: models\n  spec:\n    selector:\n      matchLabels:\n        app: a\n    accessLogging:\n    - providers:\n      - name: short\n";
    bug_report(&b, &mesh, telemetry, true);
    let (requests, failed, v) = failures(&b);
    // a-1's two failures read with the provider's format, b-1's one with the default format.
    assert_eq!((requests, failed), (5, 3), "{v}");
    let causes: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["cause"].as_str())
        .collect();
    assert_eq!(causes.len(), 3, "{v}");
    assert!(
        has_note(
            &v,
            "Telemetry models/only-a (provider short) for the 1 pod(s) it selects"
        ),
        "{:?}",
        notes(&v)
    );
}
