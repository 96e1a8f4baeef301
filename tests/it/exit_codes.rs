//! Honest exit codes and clear errors for unusable input and arguments, in every command.
//!
//! The contract (README, "Exit codes"): 0 nothing failed, 1 failures found (or the request
//! failed), 2 bad arguments or unusable evidence — never 0 on input meshtrace could not read,
//! and never a panic (101).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{copy_dir, meshtrace};

const RBAC_BUNDLE: &str = "testdata/bundles/kind-rbac-403";
const GATEWAY_LOG: &str = "testdata/bundles/kind-rbac-403/logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log";
const PREDICTOR_LOG: &str = "testdata/bundles/kind-rbac-403/logs/default/bert-model-predictor-00001-deployment-7d8c9b5f4-lq8zt/istio-proxy.log";

fn run(args: &[&str]) -> Output {
    meshtrace().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2 with one `meshtrace: error:` naming `what` on stderr, and nothing on stdout.
fn assert_unusable(o: &Output, what: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("meshtrace: error:"), "{err}");
    for w in what {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn failures_on_a_missing_file_is_an_error_naming_it() {
    let o = run(&["failures", "no-such-file.log"]);
    assert_unusable(&o, &["no-such-file.log", "No such file or directory"]);
    assert!(o.stdout.is_empty());
}

#[test]
fn failures_on_a_folder_says_to_pass_its_files_or_use_bundle() {
    let d = temp();
    let name = d.path().to_str().unwrap();
    let o = run(&["failures", name]);
    assert_unusable(&o, &["is a folder", "--bundle"]);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

/// An archive named as a log file (a ticket's attachment) is not read as lines of bytes: the
/// error says to pass it with `--bundle`, whatever its name.
#[test]
fn an_archive_passed_as_a_log_file_is_sent_to_bundle() {
    let d = temp();
    let log = "[2024-06-03T09:00:00.069Z] \"GET / HTTP/1.1\" 503 UH no_healthy_upstream - \"-\" 0 19 0 - \"-\" \"curl\" \"id\" \"h\" \"-\" outbound|80||h.ns.svc.cluster.local - 10.0.0.1:80 10.0.0.2:1234 - default\n";
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(log.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "logs/ns/p/istio-proxy.log", log.as_bytes())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let gz = gzip(&tar);
    for (name, bytes, kind) in [
        ("ticket.log", &tar, "is a tar archive"),
        ("attachment", &gz, "is a gzip-compressed tar archive"),
    ] {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let o = run(&["failures", p.to_str().unwrap()]);
        assert_unusable(&o, &[kind, "--bundle"]);
    }
    // A gzip-compressed log is still a log.
    let p = d.path().join("istio-proxy.log.gz");
    std::fs::write(&p, gzip(log.as_bytes())).unwrap();
    let o = run(&["failures", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn failures_on_an_empty_file_is_unusable_evidence() {
    let d = temp();
    let f = write(d.path(), "empty.log", "");
    let o = run(&["failures", f.to_str().unwrap()]);
    assert_unusable(&o, &["no access-log line in", "empty.log"]);
}

#[test]
fn failures_on_garbage_is_unusable_and_says_why() {
    let d = temp();
    let f = write(
        d.path(),
        "app.log",
        "Starting server on :8080\nGET / handled in 3ms\npanic: oh no\n",
    );
    let o = run(&["failures", f.to_str().unwrap()]);
    assert_unusable(&o, &["no access-log line in", "app.log", "--log-format"]);
    // The reader's remarks come along: how many lines were not access logs, each on a line of
    // its own under the error (not joined to it by a visible `\n`).
    let err = stderr(&o);
    assert!(err.contains("\n  note: 3 malformed line(s)"), "{err}");
    assert!(!err.contains("\\n"), "{err}");
}

/// A line break in a file's name stays escaped in the error: evidence cannot start a line of
/// its own under `meshtrace: error:` (only the message's own notes do).
#[test]
fn a_line_break_in_a_file_name_stays_on_the_errors_line() {
    let d = temp();
    let f = write(
        d.path(),
        "app\n  note: fake.log",
        "Starting server on :8080\n",
    );
    let o = run(&["failures", f.to_str().unwrap()]);
    let err = stderr(&o);
    assert_unusable(&o, &["no access-log line in", "app\\n  note: fake.log"]);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[1].starts_with("  note: 1 malformed"), "{err}");
}

/// Blank lines are skipped before the parser (`Assembler::drops_blank`) without changing what
/// is read: line numbers still count them, a line wrapped onto the next is still joined, one
/// blank line between the two pieces is gone over (a page's line wrapped around an empty
/// line), and two end the wait (the head is kept as a cut record, the rest is malformed), as
/// when every line went through the assembler.
#[test]
fn blank_lines_are_skipped_without_changing_what_is_read() {
    let head = r#"[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl""#;
    let rest = r#" "id" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default"#;
    let d = temp();
    let read = |name: &str, text: String| {
        let f = write(d.path(), name, &text);
        let o = run(&["explain", f.to_str().unwrap(), "-o", "json"]);
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let records: Vec<(u64, u64, bool)> = doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let lines = r["physical_lines"].as_u64().unwrap_or(1);
                (r["line"].as_u64().unwrap(), lines, r["missing"].is_array())
            })
            .collect();
        let skipped: Vec<u64> = crate::common::line_numbers(&doc["skipped"]);
        (records, skipped)
    };
    let joined = read("joined.log", format!("\n \t\r\n{head}\n{rest}\n\n"));
    assert_eq!(joined, (vec![(3, 2, false)], vec![]));
    let over = read("over.log", format!("\n \t\r\n{head}\n\n{rest}\n\n"));
    assert_eq!(over, (vec![(3, 3, false)], vec![]));
    let parted = read("parted.log", format!("\n \t\r\n{head}\n\n \n{rest}\n\n"));
    assert_eq!(parted, (vec![(3, 1, true)], vec![6]));
}

#[test]
fn failures_with_a_bad_status_filter_is_an_argument_error() {
    for bad in ["abc", "4x", "600", "4xx,", "40"] {
        let o = run(&["failures", "--status", bad, GATEWAY_LOG]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "--status {bad}: {err}");
        assert!(err.contains("is not a status"), "--status {bad}: {err}");
    }
    // Good ones still work, case-insensitively: the 403 is found.
    let o = run(&["failures", "--status", "4XX,503", GATEWAY_LOG]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("403"));
}

#[test]
fn an_unknown_format_operator_is_an_error_with_the_closest_name() {
    let o = run(&[
        "failures",
        "--log-format",
        "[%START_TIME%] %RESPONSE_COD% %DURATION%",
        GATEWAY_LOG,
    ]);
    assert_unusable(&o, &["%RESPONSE_COD%", "did you mean %RESPONSE_CODE%?"]);
    let o = run(&[
        "explain",
        "--log-format",
        "%NOPE% %RESPONSE_CODE%",
        GATEWAY_LOG,
    ]);
    assert_unusable(&o, &["%NOPE% is not an Envoy access-log command operator"]);
    // In a JSON mapping too.
    let o = run(&[
        "failures",
        "--log-format",
        r#"{"code":"%RESPONSE_CODE%","fl":"%RESPONSE_FLAG%"}"#,
        GATEWAY_LOG,
    ]);
    assert_unusable(&o, &["%RESPONSE_FLAG%", "did you mean %RESPONSE_FLAGS%?"]);
}

#[test]
fn an_unknown_operator_in_a_bundle_manifest_is_reported_and_the_403_still_found() {
    let d = temp();
    let b = d.path().join("bundle");
    copy_dir(Path::new(RBAC_BUNDLE), &b);
    let manifest = b.join("meshtrace-bundle.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["log_formats"]["default"] = serde_json::json!("[%START_TIME%] %NOPE% %RESPONSE_CODE%");
    std::fs::write(&manifest, m.to_string()).unwrap();
    let o = run(&["failures", "--bundle", b.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    // Not "0 failed", exit 0: the format is refused by name and the lines read as Istio's.
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(out.contains("403"), "{out}");
    assert!(out.contains("%NOPE%"), "{out}");
}

#[test]
fn doctor_without_a_single_pod_is_not_a_clean_bill_of_health() {
    let d = temp();
    let b = d.path().join("bundle");
    copy_dir(Path::new(RBAC_BUNDLE), &b);
    std::fs::remove_file(b.join("pods.json")).unwrap();
    let o = run(&["doctor", "--bundle", b.to_str().unwrap()]);
    assert_unusable(&o, &["no Pod could be read from"]);
}

#[test]
fn report_failures_takes_every_positional_argument_as_a_file() {
    // Two files: the first is not mistaken for a request id.
    let o = run(&["report", "--failures", GATEWAY_LOG, PREDICTOR_LOG]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(out.contains("403"), "{out}");
    // One file: read offline, not a silent live collection (the tests have no kubeconfig).
    let o = run(&["report", "--failures", GATEWAY_LOG]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("kubeconfig"), "{}", stderr(&o));
    // A missing one is named.
    let o = run(&["report", "--failures", GATEWAY_LOG, "missing.log"]);
    assert_unusable(&o, &["missing.log"]);
}

#[test]
fn trace_of_a_non_ascii_id_that_is_not_there_is_an_error_not_a_crash() {
    for id in ["aééé", "é", "日本語のid", "a\u{301}bc"] {
        let o = run(&["trace", id, GATEWAY_LOG]);
        assert_unusable(&o, &["not found in"]);
    }
}

#[test]
fn trace_with_hops_in_files_sharing_half_a_character_prints() {
    // `café` and `cafè` share the first byte of their last character: the common folder of
    // the evidence must be cut at a `/`, never inside a character.
    let d = temp();
    let a = d.path().join("café");
    let b = d.path().join("cafè");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(GATEWAY_LOG, a.join("gateway.log")).unwrap();
    std::fs::copy(PREDICTOR_LOG, b.join("predictor.log")).unwrap();
    let gw = a.join("gateway.log");
    let pr = b.join("predictor.log");
    // A request that reached the predictor: both files hold a hop.
    let text = std::fs::read_to_string(&pr).unwrap();
    let id = text
        .split('"')
        .find(|f| f.len() == 36 && f.matches('-').count() == 4)
        .unwrap()
        .to_string();
    for cmd in [&["trace"][..], &["report"][..]] {
        let o = meshtrace()
            .args(cmd)
            .arg(&id)
            .arg(&gw)
            .arg(&pr)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{cmd:?}: {}",
            stderr(&o)
        );
        assert!(out.contains("predictor.log"), "{out}");
    }
}

#[test]
fn the_readme_documents_every_exit_code() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let table = readme
        .split("## Exit codes")
        .nth(1)
        .expect("README has an \"## Exit codes\" section");
    for code in ["| 0 ", "| 1 ", "| 2 "] {
        assert!(
            table.contains(code),
            "README exit-code table lacks {code:?}"
        );
    }
}

#[test]
fn proxy_config_refuses_a_config_dump_over_its_limit_by_name() {
    let d = temp();
    let f = d.path().join("huge-dump.json");
    // Sparse: 33 MiB of zeros costs nothing on disk.
    std::fs::File::create(&f)
        .unwrap()
        .set_len(33 << 20)
        .unwrap();
    let o = run(&["proxy-config", "all", f.to_str().unwrap()]);
    assert_unusable(&o, &["huge-dump.json", "larger than 32 MiB"]);
}

#[test]
fn a_missing_bundle_is_named_with_its_reason_once() {
    for cmd in ["doctor", "failures", "proxy-config"] {
        let mut args = vec![cmd];
        if cmd == "proxy-config" {
            args.push("all");
        }
        args.extend(["--bundle", "/nonexistent-bundle"]);
        let o = run(&args);
        assert_unusable(&o, &["cannot open bundle /nonexistent-bundle"]);
        let err = stderr(&o);
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    }
}
