//! `-o yaml` and `-o wide` on every command with `-o json`: the YAML parses back to exactly the
//! JSON document (same field names and values) on the example bundles and explain scenarios,
//! in memory and streamed; hostile evidence stays escaped; `-o wide` shows what the table cuts.

use crate::common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = common::meshtrace()
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run meshtrace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("output is UTF-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `args` with `-o json` and with `-o yaml`: both documents, which must be the same value, and
/// the same exit code.
fn json_and_yaml(args: &[&str]) -> (i32, Value) {
    let with = |fmt: &str| {
        let mut a = args.to_vec();
        a.extend(["-o", fmt]);
        run(&a)
    };
    let (jc, json, jerr) = with("json");
    let (yc, yaml, yerr) = with("yaml");
    assert_eq!(jc, yc, "{args:?}: exit codes differ\n{jerr}\n{yerr}");
    if json.is_empty() {
        // No document (unusable evidence): the same error either way.
        assert_eq!(
            (yaml.as_str(), yerr.as_str()),
            ("", jerr.as_str()),
            "{args:?}"
        );
        return (jc, Value::Null);
    }
    let j: Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{args:?} -o json: {e}\n{jerr}"));
    let y: Value = serde_yaml_ng::from_str(&yaml)
        .unwrap_or_else(|e| panic!("{args:?} -o yaml does not parse: {e}\n{yaml}\n{yerr}"));
    if j != y {
        let cut = |s: &str| s.chars().take(4000).collect::<String>();
        panic!(
            "{args:?}: the YAML document is not the JSON one\n--- json\n{}\n--- yaml\n{}",
            cut(&json),
            cut(&yaml)
        );
    }
    assert_no_raw_controls(&format!("{args:?} -o yaml"), &yaml);
    (jc, j)
}

/// Nothing but newlines among the control and bidirectional characters of a document.
fn assert_no_raw_controls(what: &str, out: &str) {
    let bad = out.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    assert!(bad.is_none(), "{what}: raw {bad:?} in the output");
}

/// The example bundles that hold access logs.
fn bundles() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("testdata/bundles"))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            (e.file_type().unwrap().is_dir() && e.path().join("logs").is_dir())
                .then(|| format!("testdata/bundles/{}", e.file_name().to_string_lossy()))
        })
        .collect();
    v.sort();
    assert!(v.len() >= 10, "{v:?}");
    v
}

#[test]
fn failures_trace_and_report_yaml_equal_json_on_every_example_bundle() {
    let mut traced = 0;
    for b in bundles() {
        let (_, failures) = json_and_yaml(&["failures", "--bundle", &b]);
        if failures.is_null() {
            // Evidence `failures` cannot use: the same error with either format (checked).
            continue;
        }
        assert_eq!(failures["schema"], "meshtrace.failures/v1", "{b}");
        json_and_yaml(&["report", "--failures", "--bundle", &b]);
        let Some(id) = failures["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|g| g["example_request_ids"][0].as_str())
        else {
            continue;
        };
        let (code, t) = json_and_yaml(&["trace", id, "--bundle", &b]);
        assert_eq!(code, 1, "{b}: {id} failed");
        assert_eq!(t["schema"], "meshtrace.trace/v1", "{b}");
        json_and_yaml(&["report", id, "--bundle", &b]);
        traced += 1;
    }
    assert!(traced >= 8, "{traced} bundles traced");
}

#[test]
fn doctor_route_check_and_proxy_config_yaml_equal_json() {
    for b in bundles() {
        json_and_yaml(&["doctor", "--bundle", &b]);
    }
    let b = "testdata/bundles/rhoai-400-app-error";
    let (code, rc) = json_and_yaml(&[
        "route-check",
        "--host",
        "test-aiproject.apps.mycluster.example.com",
        "--port",
        "8443",
        "--bundle",
        b,
    ]);
    assert_eq!(code, 0);
    assert_eq!(rc["schema"], "meshtrace.route-check/v1");
    for kind in ["routes", "clusters", "listeners", "all"] {
        let (_, pc) = json_and_yaml(&["proxy-config", kind, "istio-ingressgateway", "--bundle", b]);
        assert_eq!(pc["schema"], "meshtrace.proxy-config/v1");
    }
}

/// The `testdata/explain` scenarios with the arguments their `.args` file adds.
fn explain_scenarios() -> Vec<Vec<String>> {
    let dir = repo().join("testdata/explain");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.iter()
        .map(|p| {
            let mut a = vec![
                "explain".to_string(),
                format!(
                    "testdata/explain/{}",
                    p.file_name().unwrap().to_string_lossy()
                ),
            ];
            if let Ok(extra) = std::fs::read_to_string(p.with_extension("args")) {
                a.extend(extra.split_whitespace().map(str::to_string));
            }
            a
        })
        .collect()
}

#[test]
fn explain_yaml_equals_json_on_every_scenario() {
    let scenarios = explain_scenarios();
    assert!(scenarios.len() >= 20);
    for a in &scenarios {
        let args: Vec<&str> = a.iter().map(String::as_str).collect();
        let (_, doc) = json_and_yaml(&args);
        assert_eq!(doc["schema"], "meshtrace.explain/v1", "{a:?}");
    }
}

/// A log past the streaming threshold: failed and successful requests with unique ids, one
/// path holding an escape sequence and a bidirectional override, a line of Envoy's own log and
/// a malformed line.
fn large_log() -> String {
    let mut s = String::with_capacity(9 << 20);
    let mut i = 0u64;
    while s.len() < (8 << 20) + (256 << 10) {
        let ms = i * 7;
        let (m, sec, milli) = (ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let (status, flags, details) = match i % 5 {
            0 => (
                503,
                "UF",
                "upstream_reset_before_response_started{connection_failure}",
            ),
            1 => (403, "-", "rbac_access_denied_matched_policy[none]"),
            _ => (200, "-", "via_upstream"),
        };
        let path = if i == 4242 {
            "/v2/models/x\u{1b}]0;pwned\u{7}\u{202e}/infer"
        } else {
            "/v2/models/m/infer"
        };
        s.push_str(&format!(
            "[2024-06-03T10:{m:02}:{sec:02}.{milli:03}Z] \"POST {path} HTTP/1.1\" {status} {flags} {details} - \"-\" 164 212 12 11 \"10.200.0.{a}\" \"python-requests/2.31.0\" \"00000000-0000-4000-8000-{i:012}\" \"m-predictor.team.svc.cluster.local\" \"10.201.0.7:8012\" outbound|80||m-predictor-00001.team.svc.cluster.local 10.202.0.{a}:{p} 172.31.9.9:80 10.203.0.{a}:{p} - -\n",
            a = i % 250 + 1,
            p = 20_000 + i % 40_000,
        ));
        i += 1;
        if i == 100 {
            s.push_str("2024-06-03T10:00:00.700000Z\tinfo\tEnvoy proxy is ready\n");
            s.push_str("[2024-06-03T10:00:00.701Z] \"GET / HTTP/1.1\" 2x0 garbage\n");
        }
    }
    s
}

/// Streamed `-o json` writes the records its writer found clean past the sanitiser and the
/// others through it (`-o yaml` sends all through it): records with secrets, escapes and
/// invisible characters between clean ones come out masked and escaped, the same in both
/// documents, and the clean records around them intact.
#[test]
fn streamed_records_with_secrets_between_clean_ones_are_masked_and_escaped() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlLXZhbHVl";
    let mut log = large_log();
    let hostile = [
        "/v2/models/m/infer?access_token=s3cr3t-t0ken-value&x=1".to_string(),
        format!("/v2/models/m/infer?jwt={jwt}"),
        "/v2/models/m/infer\u{85}next\u{2066}".to_string(),
        "/v2/models/m/infer?password=hunter2-p4ss".to_string(),
    ];
    for (k, path) in hostile
        .iter()
        .chain(["/v2/models/after/infer".to_string()].iter())
        .enumerate()
    {
        log.push_str(&format!(
            "[2024-06-03T11:30:0{k}.000Z] \"POST {path} HTTP/1.1\" 200 - via_upstream - \"-\" 164 212 12 11 \"10.200.0.9\" \"Bearer b34rer-t0ken-value\" \"10000000-0000-4000-8000-00000000000{k}\" \"m-predictor.team.svc.cluster.local\" \"10.201.0.7:8012\" outbound|80||m-predictor-00001.team.svc.cluster.local 10.202.0.9:4000{k} 172.31.9.9:80 10.203.0.9:4100{k} - -\n"
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.log");
    std::fs::write(&path, &log).unwrap();
    let (code, doc) = json_and_yaml(&["explain", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let (_, raw, _) = run(&["explain", path.to_str().unwrap(), "-o", "json"]);
    for secret in [
        "s3cr3t-t0ken-value",
        "hunter2-p4ss",
        "b34rer-t0ken-value",
        jwt,
    ] {
        assert!(!raw.contains(secret), "{secret} printed");
    }
    for invisible in ['\u{85}', '\u{2066}', '\u{1b}', '\u{202e}'] {
        assert!(!raw.contains(invisible), "{invisible:?} printed raw");
    }
    let records = doc["records"].as_array().unwrap();
    let after = records
        .iter()
        .find(|r| r["fields"]["request_id"] == "10000000-0000-4000-8000-000000000004")
        .expect("the record after the hostile ones");
    assert_eq!(after["fields"]["path"], "/v2/models/after/infer");
    let escaped = records
        .iter()
        .find(|r| r["fields"]["request_id"] == "10000000-0000-4000-8000-000000000002")
        .expect("the record with invisible characters");
    assert_eq!(
        escaped["fields"]["path"],
        "/v2/models/m/infer\u{85}next\u{2066}"
    );
    // The clean records are the bulk, and whole.
    assert!(records.len() > 20_000, "{}", records.len());
    assert!(
        records
            .iter()
            .filter(|r| r["fields"]["path"] == "/v2/models/m/infer")
            .count()
            > 20_000
    );
}

#[test]
fn a_streamed_document_is_the_same_whether_its_spools_are_kept_as_written_or_compressed() {
    // `MESHTRACE_EXPLAIN_PLAIN_SPOOL_MIB`: 0 compresses every spool, 1 keeps the first MiB of
    // them as written (cut inside a spool), the default keeps these whole. JSON and YAML, into a
    // pipe and into a file (the part as written is copied by `splice` or a file copy, the
    // compressed rest is decompressed): the same bytes every time.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.log");
    std::fs::write(&path, large_log()).unwrap();
    for format in ["json", "yaml"] {
        let args = ["explain", path.to_str().unwrap(), "-o", format];
        let (code, want, _) = run(&args);
        assert_eq!(code, 0);
        assert!(want.len() > 16 << 20, "{format}: the spools exceed 1 MiB");
        for mib in ["0", "1"] {
            let out = common::meshtrace()
                .args(args)
                .env("MESHTRACE_EXPLAIN_PLAIN_SPOOL_MIB", mib)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{format}, {mib} MiB");
            assert!(
                out.stdout == want.as_bytes(),
                "{format}, {mib} MiB as written: the piped document differs"
            );
            let to_file = tmp.path().join(format!("out-{mib}.{format}"));
            let status = common::meshtrace()
                .args(args)
                .env("MESHTRACE_EXPLAIN_PLAIN_SPOOL_MIB", mib)
                .stdout(std::fs::File::create(&to_file).unwrap())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(status.code(), Some(0));
            assert!(
                std::fs::read(&to_file).unwrap() == want.as_bytes(),
                "{format}, {mib} MiB as written: the document in a file differs"
            );
        }
    }
}

#[test]
fn a_streamed_document_whose_spools_cannot_be_written_keeps_its_requests_and_says_how_to_fix_it() {
    // A temporary folder out of room (here: a file-size limit of 1–2 MiB, with the signal it
    // raises ignored, so writes fail with EFBIG as they fail with ENOSPC on a full disk): every
    // request is still written, as in a full run, then one sentence names the folder and the fix;
    // exit code 2. A folder that does not exist: the same sentence with the other fix.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.log");
    std::fs::write(&path, large_log()).unwrap();
    let args = ["explain", path.to_str().unwrap(), "-o", "json"];
    let (code, full, _) = run(&args);
    assert_eq!(code, 0);
    let requests = |doc: &str| doc.find("\"records\"").map(|i| doc[..i].to_string());
    let want = requests(&full).expect("a records key");
    assert!(want.matches("\"request_id\"").count() > 1_000);
    let out = common::meshtrace_with_file_size_limit(2048)
        .args(args)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        requests(&stdout).as_deref() == Some(want.as_str()),
        "the requests differ from a full run's ({} bytes against {}): {stderr}",
        stdout.len(),
        want.len()
    );
    let folder = tmp.path().display().to_string();
    common::assert_mentions(
        &stderr,
        &[
            "cannot write the records and skipped lines of the document to a temporary file in ",
            &folder,
            "the requests above are complete",
            "set TMPDIR to a folder with more room",
            "MESHTRACE_EXPLAIN_PLAIN_SPOOL_MIB=0",
        ],
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let missing = tmp.path().join("no such folder");
    let out = common::meshtrace()
        .args(args)
        .env("TMPDIR", &missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    common::assert_mentions(
        &stderr,
        &[
            &missing.display().to_string(),
            "an input was not read",
            "set TMPDIR to a writable folder",
        ],
    );
}

#[test]
fn a_streamed_document_is_the_same_into_a_file_and_a_pipe_and_stops_quietly_when_the_pipe_closes() {
    // The records' spools are copied to standard output by the kernel (`splice` into a pipe, a
    // file copy into a file; a spool's compressed part decompressed): both must give the same
    // bytes, after the requests written before.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.log");
    std::fs::write(&path, large_log()).unwrap();
    let args = ["explain", path.to_str().unwrap(), "-o", "json"];
    let (code, piped, _) = run(&args);
    assert_eq!(code, 0);
    let to_file = tmp.path().join("out.json");
    let status = common::meshtrace()
        .args(args)
        .stdout(std::fs::File::create(&to_file).unwrap())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let in_file = std::fs::read_to_string(&to_file).unwrap();
    assert!(
        in_file == piped,
        "the document written to a file differs from the piped one"
    );
    let doc: Value = serde_json::from_str(&piped).expect("one JSON document");
    assert!(doc["records"].as_array().unwrap().len() > 20_000);

    // A reader that stops inside the records: the command ends quietly, like `| head`.
    let records_at = piped.find("\"records\": [").expect("a records array");
    let head = common::read_head_then_close(&args, records_at + (256 << 10));
    assert!(head[..] == piped.as_bytes()[..head.len()]);
}

#[test]
fn streamed_explain_yaml_equals_streamed_json_and_the_in_memory_document() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.log");
    std::fs::write(&path, large_log()).unwrap();
    let (code, streamed) = json_and_yaml(&["explain", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(streamed["skipped"].as_array().unwrap().len(), 2);
    let records = streamed["records"].as_array().unwrap();
    assert!(records.len() > 20_000, "{}", records.len());
    // Records stay in input order: the one reading writes them as each reader parses them.
    let lines: Vec<u64> = records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]));
    assert!(
        records
            .iter()
            .any(|r| r["fields"]["path"] == "/v2/models/x\u{1b}]0;pwned\u{7}\u{202e}/infer"),
        "the hostile path is kept as data"
    );
    // Standard input under the threshold is read whole: the same records and skipped lines.
    let head: String = {
        let log = std::fs::read_to_string(&path).unwrap();
        log.lines().take(3000).map(|l| format!("{l}\n")).collect()
    };
    let small = tmp.path().join("small.log");
    std::fs::write(&small, &head).unwrap();
    let (_, whole) = json_and_yaml(&["explain", small.to_str().unwrap()]);
    let without_input = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().remove("input");
                r
            })
            .collect()
    };
    let whole_records = whole["records"].as_array().unwrap();
    assert_eq!(whole_records.len(), 2998);
    assert!(without_input(whole_records) == without_input(&records[..2998]));
    assert!(
        without_input(whole["skipped"].as_array().unwrap())
            == without_input(streamed["skipped"].as_array().unwrap())
    );
}

#[test]
fn wide_shows_what_the_table_cuts() {
    // route-check: the text lists the ten closest routes tried, wide every one. istioctl's
    // bookinfo dump with twelve more routes in each virtual host.
    let dump =
        repo().join("testdata/peer/istio/istioctl/pkg/describe/testdata/describe/http_config.json");
    let mut d: Value = serde_json::from_str(&std::fs::read_to_string(dump).unwrap()).unwrap();
    fn more_routes(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "routes"
                        && let Some(r) = x.as_array_mut()
                        && let Some(first) = r.first().cloned()
                    {
                        for i in 0..12 {
                            let mut c = first.clone();
                            c["match"] = serde_json::json!({ "prefix": format!("/extra-{i}") });
                            r.push(c);
                        }
                    } else {
                        more_routes(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(more_routes),
            _ => {}
        }
    }
    more_routes(&mut d);
    let tmp = tempfile::tempdir().unwrap();
    let many = tmp.path().join("many-routes.json");
    std::fs::write(&many, d.to_string()).unwrap();
    let args = [
        "route-check",
        "--host",
        "bookinfo.example.com",
        "--path",
        "/nothing",
        many.to_str().unwrap(),
    ];
    let (code, doc) = json_and_yaml(&args);
    assert_eq!(code, 1);
    let tried = doc["hops"][0]["candidates"].as_array().unwrap().len();
    assert_eq!(tried, 17, "{doc:#}");
    let listed = |fmt: &str| {
        let mut a = args.to_vec();
        a.extend(["-o", fmt]);
        let (_, out, _) = run(&a);
        let n = out.lines().filter(|l| l.starts_with("    - ")).count();
        (n, out)
    };
    let (n, table) = listed("table");
    assert_eq!(n, 10, "{table}");
    assert!(
        table.contains("… and 7 more (-o wide lists them all)"),
        "{table}"
    );
    let (n, wide) = listed("wide");
    assert_eq!(n, 17, "{wide}");
    assert!(!wide.contains("more (-o wide"), "{wide}");

    // proxy-config tables never cut a value: wide is the table.
    let b = "testdata/bundles/rhoai-400-app-error";
    let pc = |fmt: &str| {
        run(&[
            "proxy-config",
            "routes",
            "istio-ingressgateway",
            "--bundle",
            b,
            "-o",
            fmt,
        ])
        .1
    };
    assert_eq!(pc("wide"), pc("table"));

    // trace: wide adds the request id, upstream, cluster and start columns, each value whole
    // on one line even in a narrow terminal.
    let id = "4791d0d3-e742-4eac-8c56-4c87eb22f1a9";
    let narrow = |fmt: &str| {
        let out = common::meshtrace()
            .args(["trace", id, "--bundle", b, "-o", fmt])
            .env("COLUMNS", "80")
            .current_dir(repo())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let (table, wide) = (narrow("table"), narrow("wide"));
    assert!(!table.contains("self ms"), "{table}");
    assert!(
        wide.lines()
            .any(|l| l.contains("self ms") && l.contains("cluster")),
        "{wide}"
    );
    // Hop 1's row holds its listener and its request id whole, on one line.
    assert!(
        wide.lines()
            .any(|l| l.contains("10.135.0.43:8443") && l.contains(id)),
        "{wide}"
    );
}
