//! Untrusted output: no control character, Markdown break-out, shell injection or secret reaches what meshtrace prints.
//!
//! Every test builds hostile evidence at test time (request ids, Host, path, user agent,
//! config-dump and object names carrying terminal escapes, bidirectional overrides, newlines,
//! Markdown and shell syntax, secrets) and runs the real binary on it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{copy_dir, meshtrace, read_head_then_close};

/// ESC ] 0 ; … BEL sets the terminal's title; ESC [ 2 J clears the screen; ESC ] 8 makes a link.
const ESC: &str = "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil.example/\x07";
const SECRETS: [&str; 7] = [
    "SEKRETKEY1",
    "SEKRETBEARER123",
    "SEKRETCOOKIE",
    "SEKRETAPIKEY",
    "SEKRETPROXY99",
    "SEKRETSETCOOKIE",
    "SEKRETXAUTH",
];
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRUtSRVRKV1QifQ.c2lnbmF0dXJlLXNla3JldA";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A character that must never reach the terminal raw (what the sanitiser escapes).
fn unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn assert_clean(what: &str, out: &str) {
    if let Some((i, c)) = out.char_indices().find(|(_, c)| unsafe_char(*c)) {
        let from = out[..i].char_indices().rev().nth(40).map_or(0, |(j, _)| j);
        panic!(
            "{what}: raw U+{:04X} reaches the output near {:?}",
            c as u32,
            &out[from..(i + 8).min(out.len())]
        );
    }
}

fn assert_no_secrets(what: &str, out: &str) {
    for s in SECRETS.iter().chain([&JWT]) {
        assert!(!out.contains(s), "{what}: secret {s} printed:\n{out}");
    }
}

/// Run meshtrace: (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let o = meshtrace().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// The hostile request, as one line of Istio's JSON access log.
fn hostile_record(id: &str) -> Value {
    json!({
        "start_time": "2024-04-25T20:21:43.725Z",
        "method": "POST",
        "path": format!("/v1/models/m:predict?api_key=SEKRETKEY1&x=1&token={JWT}\n# Injected heading\n<script>alert(1)</script>\n```\n$(touch /tmp/pwned)"),
        "protocol": "HTTP/1.1",
        "response_code": 403,
        "response_flags": "-",
        "response_code_details": "rbac_access_denied_matched_policy[none]",
        "bytes_received": 0,
        "bytes_sent": 19,
        "duration": 3,
        "x_forwarded_for": "10.244.0.6",
        "user_agent": format!("curl\r```\n{ESC}\u{202e}lanigiro\u{9b}31m"),
        "request_id": id,
        "authority": format!("model.corp.example.com{ESC}<b>bold</b>"),
        "upstream_host": null,
        "upstream_cluster": "outbound|80||knative-local-gateway.istio-system.svc.cluster.local",
        "downstream_local_address": "[fd00:10::5]:8080",
        "downstream_remote_address": "[fd00:10::6]:44576",
        "authorization": "Bearer SEKRETBEARER123",
        "cookie": "session=SEKRETCOOKIE",
        "x-api-key": "SEKRETAPIKEY",
        "proxy-authorization": "Basic SEKRETPROXY99",
        "set-cookie": "sid=SEKRETSETCOOKIE; Path=/",
        "x-auth-token": "SEKRETXAUTH",
    })
}

/// The request id: a terminal escape, a bidi override and shell syntax.
fn hostile_id() -> String {
    format!("id-{ESC}\u{202e}'$(touch /tmp/pwned)`id`;")
}

/// A folder with the hostile log (file name with a space and a quote, as a user may save it).
fn hostile_log() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ticket 42's.log");
    std::fs::write(&p, format!("{}\n", hostile_record(&hostile_id()))).unwrap();
    let p = p.to_str().unwrap().to_string();
    (dir, p)
}

#[test]
fn no_terminal_escape_reaches_any_text_output_of_explain_trace_failures_and_report() {
    let (_d, log) = hostile_log();
    let id = hostile_id();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("explain", vec!["explain", &log]),
        ("explain -o json", vec!["explain", "-o", "json", &log]),
        ("trace", vec!["trace", &id, &log]),
        ("trace -o wide", vec!["trace", "-o", "wide", &id, &log]),
        ("trace -o json", vec!["trace", "-o", "json", &id, &log]),
        ("failures", vec!["failures", &log]),
        ("failures -o json", vec!["failures", "-o", "json", &log]),
        ("report", vec!["report", &id, &log]),
        ("report -o json", vec!["report", "-o", "json", &id, &log]),
        ("report --failures", vec!["report", "--failures", &log]),
    ];
    for (what, args) in cases {
        let (code, out, err) = run(&args);
        let want = if what.starts_with("explain") { 0 } else { 1 };
        assert_eq!(code, want, "{what}: exit {code}\n{err}");
        assert_clean(what, &out);
        assert_clean(what, &err);
        assert_no_secrets(what, &out);
        // The escapes are shown, not dropped: a reader sees what the client sent.
        assert!(
            out.contains("\\x1b]0;pwned\\x07") || out.contains("\\u001b]0;pwned\\u0007"),
            "{what}: the escape is not shown:\n{out}"
        );
        if what.ends_with("json") {
            // JSON stays valid and carries the values exactly.
            let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(v.to_string().contains("\\u001b]0;pwned"), "{what}");
        }
    }
    // A single-line field keeps its line: the injected text never starts a line of its own.
    let (_, out, _) = run(&["explain", &log]);
    assert!(
        !out.lines()
            .any(|l| l.starts_with("# Injected") || l.starts_with("<script>")),
        "{out}"
    );
    assert!(out.contains("\\n# Injected heading\\n"), "{out}");
}

#[test]
fn report_markdown_cannot_be_broken_out_of() {
    let (_d, log) = hostile_log();
    let (code, md, err) = run(&["report", &hostile_id(), &log]);
    assert_eq!(code, 1, "{err}");
    assert_clean("report", &md);
    assert!(md.contains("&lt;script&gt;"), "{md}");
    // Every fenced block closes with its own fence and holds no line that would close it
    // early; the evidence block keeps the hostile user agent inside it.
    let mut open: Option<String> = None;
    let mut evidence_block = String::new();
    for l in md.lines() {
        match &open {
            None => {
                // Outside blocks: no injected heading or HTML (the path's newlines are shown
                // as \n on one line).
                assert!(!l.starts_with("# Injected"), "heading injected: {l}");
                assert!(
                    !l.contains("<script>") && !l.contains("<b>"),
                    "raw HTML: {l}"
                );
                let ticks = l.chars().take_while(|c| *c == '`').count();
                if ticks >= 3 {
                    open = Some("`".repeat(ticks));
                }
            }
            Some(f) => {
                if l.trim_end() == f {
                    open = None;
                } else {
                    assert!(!l.starts_with(f.as_str()), "a line inside a {f} block: {l}");
                    evidence_block.push_str(l);
                    evidence_block.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "a fence is left open:\n{md}");
    // The raw JSON line, with its ``` and <script>, is inside the evidence block.
    assert!(
        evidence_block.contains("\"user_agent\":\"curl\\r```\\n\\u001b]0;pwned"),
        "the user agent is not inside a block:\n{md}"
    );
    // The Summary is one paragraph.
    let summary = md.split("## Summary\n\n").nth(1).unwrap();
    let para = summary.split("\n\n").next().unwrap();
    assert!(!para.contains('\n'), "summary spans lines: {para}");
}

/// Run a printed command line through the shell with `meshtrace` replaced by a program that
/// prints its arguments, one per line: the words the shell would pass.
fn shell_words(command: &str) -> Vec<String> {
    let rest = command
        .strip_prefix("meshtrace ")
        .unwrap_or_else(|| panic!("not a meshtrace command: {command}"));
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\n' {rest}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "sh failed on {command}");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_bare_carriage_return_in_a_text_log_line_stays_inside_the_evidence_block() {
    let line = std::fs::read_to_string(root().join("testdata/explain/seed003-rbac.log")).unwrap();
    let line = line
        .trim_end()
        .replace("curl/8.4.0", &format!("curl\r```\r# Injected\r{ESC}"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("text.log");
    std::fs::write(&log, format!("{line}\n")).unwrap();
    let (code, md, err) = run(&[
        "report",
        "211ebf7c-1bc2-4008-aa50-9730fa6300dc",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_clean("report", &md);
    assert!(
        md.contains("\"curl\\r```\\r# Injected\\r\\x1b]0;pwned"),
        "{md}"
    );
    // The evidence block's fence is longer than the ``` inside it.
    let block = md
        .split("Access-log lines, client first:\n\n")
        .nth(1)
        .unwrap();
    assert!(block.starts_with("````text\n"), "{block}");
    assert!(!md.lines().any(|l| l.starts_with("# Injected")), "{md}");
}

#[test]
fn commands_printed_for_copy_paste_are_shell_quoted() {
    // Printable hostile characters only, so the shell must give back the exact words.
    let dir = tempfile::tempdir().unwrap();
    let id = "-x'$(touch pwned)`id`;rm -rf ~ \"a\"";
    let log = dir.path().join("my log's $HOME.log");
    let mut rec = hostile_record(id);
    rec["user_agent"] = json!("curl");
    std::fs::write(&log, format!("{rec}\n")).unwrap();
    let log = log.to_str().unwrap();

    let (_, md, err) = run(&["report", "--", id, log]);
    let reproduce = md
        .split("## Reproduce\n\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Reproduce section:\n{md}\n{err}"))
        .lines()
        .nth(1)
        .unwrap();
    assert_eq!(
        shell_words(reproduce),
        ["trace", "--", id, log],
        "{reproduce}"
    );

    let (_, text, _) = run(&["failures", log]);
    let trace_one = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Trace one: "))
        .unwrap_or_else(|| panic!("no Trace one line:\n{text}"));
    assert_eq!(shell_words(trace_one), ["trace", "--", id]);

    let (_, md, _) = run(&["report", "--failures", log]);
    let example = md
        .split("Trace an example:\n\n")
        .nth(1)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap();
    assert_eq!(shell_words(example), ["trace", "--", id]);
    assert!(!dir.path().join("pwned").exists());
}

#[test]
fn secrets_are_masked_in_every_output_and_format() {
    let (_d, log) = hostile_log();
    let id = hostile_id();
    for args in [
        vec!["explain", "-o", "json", &log],
        vec!["explain", &log],
        vec!["trace", "-o", "json", &id, &log],
        vec!["failures", "-o", "json", &log],
        vec!["report", &id, &log],
        vec!["report", "-o", "json", &id, &log],
    ] {
        let (_, out, _) = run(&args);
        assert_no_secrets(&args.join(" "), &out);
        assert!(
            out.contains("<redacted>") || out.contains("&lt;redacted&gt;"),
            "{out}"
        );
    }
    // The names stay, the values go.
    let (_, out, _) = run(&["explain", "-o", "json", &log]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let extra = &v["records"][0]["fields"]["extra"];
    for h in [
        "authorization",
        "cookie",
        "x-api-key",
        "proxy-authorization",
        "set-cookie",
        "x-auth-token",
    ] {
        assert_eq!(extra[h], "<redacted>", "{h}: {extra}");
    }
    let path = v["records"][0]["fields"]["path"].as_str().unwrap();
    assert!(
        path.starts_with("/v1/models/m:predict?api_key=<redacted>&x=1&token=<redacted>\n"),
        "{path}"
    );
}

#[test]
fn route_check_masks_secret_headers_and_escapes_the_host() {
    let bundle = root().join("testdata/bundles/rhoai-400-app-error");
    let host = format!("test-aiproject.apps.mycluster.example.com{ESC}");
    let (_, out, err) = run(&[
        "route-check",
        "--host",
        &host,
        "--port",
        "8443",
        "--header",
        "Authorization: Bearer SEKRETBEARER123",
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_clean("route-check", &out);
    assert_clean("route-check stderr", &err);
    assert_no_secrets("route-check", &out);
    assert!(out.contains("\\x1b]0;pwned"), "{out}\n{err}");
}

/// A copy of an example bundle whose JSON files have `name` replaced by `hostile` (as JSON text).
fn bundle_with(example: &str, name: &str, hostile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("testdata/bundles").join(example), dir.path());
    fn walk(p: &Path, name: &str, hostile: &str) {
        for e in std::fs::read_dir(p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, name, hostile);
            } else if let Ok(t) = std::fs::read_to_string(&p) {
                let escaped = if p.extension().is_some_and(|x| x == "json") {
                    serde_json::to_string(hostile)
                        .unwrap()
                        .trim_matches('"')
                        .to_string()
                } else {
                    // YAML: a double-quoted scalar with escapes.
                    hostile.to_string()
                };
                if t.contains(name) {
                    std::fs::write(&p, t.replace(name, &escaped)).unwrap();
                }
            }
        }
    }
    walk(dir.path(), name, hostile);
    dir
}

#[test]
fn proxy_config_escapes_names_from_the_config_dump() {
    let name = "test-aiproject.apps.mycluster.example.com";
    let dir = bundle_with("rhoai-400-app-error", name, &format!("{name}{ESC}\u{202e}"));
    for out_fmt in ["table", "json", "yaml"] {
        let (code, out, err) = run(&[
            "proxy-config",
            "routes",
            "istio-ingressgateway",
            "--bundle",
            dir.path().to_str().unwrap(),
            "-o",
            out_fmt,
        ]);
        assert_eq!(code, 0, "{err}");
        assert_clean(&format!("proxy-config -o {out_fmt}"), &out);
        assert!(out.contains("pwned"), "{out}");
        if out_fmt == "json" {
            serde_json::from_str::<Value>(&out).unwrap();
        }
    }
}

#[test]
fn doctor_escapes_object_names() {
    let dir = bundle_with(
        "kind-rbac-403",
        "name: allow-with-header",
        "name: \"allow-with-header\\e]0;pwned\\a\\u202e\"",
    );
    let (_, out, err) = run(&["doctor", "--bundle", dir.path().to_str().unwrap()]);
    assert_clean("doctor", &out);
    assert_clean("doctor stderr", &err);
    assert!(
        out.contains("allow-with-header\\x1b]0;pwned\\x07\\u202e"),
        "{out}\n{err}"
    );
}

#[test]
fn errors_on_stderr_are_escaped() {
    // A missing file whose name carries an escape: the error quotes it.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(format!("gone{ESC}.log"));
    for cmd in ["trace", "report"] {
        let (code, out, err) = run(&[cmd, "some-id", missing.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert_clean(cmd, &out);
        assert_clean(cmd, &err);
        assert!(err.starts_with("meshtrace: error: "), "{err}");
        assert!(err.contains("gone\\x1b]0;pwned"), "{err}");
    }
    // A request id that is not found is quoted back.
    let (_d, log) = hostile_log();
    let (code, _, err) = run(&["trace", &format!("nope{ESC}"), &log]);
    assert_eq!(code, 2, "{err}");
    assert_clean("trace not found", &err);

    // Usage errors quote the argument.
    let (code, _, err) = run(&["trace", "x", "-o", &format!("bad{ESC}")]);
    assert_eq!(code, 2);
    assert_clean("usage error", &err);
    assert!(err.contains("invalid value 'bad"), "{err}");
}

#[test]
fn redact_covers_ipv6_hostnames_and_fqdns_consistently() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let mut rec = hostile_record("r-1");
    rec["path"] = json!("/v1/models/m.models.corp.example.com:predict?host=api.corp.example.net");
    rec["user_agent"] = json!("probe (agent.corp.example.org)");
    rec["authority"] = json!("model.corp.example.com");
    std::fs::write(&log, format!("{rec}\n")).unwrap();
    let log = log.to_str().unwrap();
    for args in [
        vec!["report", "--redact", "r-1", log],
        vec!["report", "--redact", "-o", "json", "r-1", log],
        vec!["report", "--redact", "--failures", log],
    ] {
        let (_, out, err) = run(&args);
        for ident in [
            "fd00:10::5",
            "fd00:10::6",
            "10.244.0.6",
            "model.corp.example.com",
            "m.models.corp.example.com",
            "api.corp.example.net",
            "agent.corp.example.org",
            "knative-local-gateway.istio-system.svc.cluster.local",
        ] {
            assert!(
                !out.contains(ident),
                "{}: {ident} left:\n{out}\n{err}",
                args.join(" ")
            );
        }
        assert!(out.contains("ip-1") && out.contains("host-1"), "{out}");
    }
    // The same address gets the same token everywhere in one report: the listener of the
    // hop table is the address of the summary.
    let (_, out, _) = run(&["report", "--redact", "-o", "json", "r-1", log]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let listener = v["trace"]["hops"][0]["listener"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(listener.starts_with("[ip-"), "{listener}");
    assert!(
        v["trace"]["summary"].as_str().unwrap().contains(&listener),
        "{out}"
    );
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    // Enough output to fill the pipe many times over.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let line = std::fs::read_to_string(root().join("testdata/explain/seed003-rbac.log")).unwrap();
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&line.trim_end().replace("211ebf7c", &format!("{i:08x}")));
        text.push('\n');
    }
    std::fs::write(&log, text).unwrap();
    for format in ["table", "json"] {
        read_head_then_close(&["explain", "-o", format, log.to_str().unwrap()], 100);
    }
}

#[test]
fn only_the_report_layer_opens_standard_output() {
    // Structural guarantee of the sanitiser: every byte on stdout passes `report::stdout()`'s
    // writer, so nothing else may open the handle (`print!` is checked by architecture::).
    let mut bad = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for (n, l) in text.lines().enumerate() {
                    let code = l.split("//").next().unwrap();
                    if code.contains("io::stdout()") {
                        bad.push(format!("{}:{}: {}", p.display(), n + 1, l.trim()));
                    }
                }
            }
        }
    }
    bad.retain(|b| !b.contains("src/report/mod.rs"));
    assert!(
        bad.is_empty(),
        "output opened outside src/report/:\n{}",
        bad.join("\n")
    );
}

/// The OpenShift router's lines (HAProxy) carry the client's request line as sent: terminal
/// escapes, bidi controls and secrets in it are escaped or masked in every output of `explain`,
/// `failures` and `report`, as in an access-log record.
#[test]
fn router_lines_from_haproxy_are_escaped_and_masked_everywhere() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("router.log");
    let line = format!(
        "10.0.0.1:1234 [12/Mar/2025:09:41:22.104] fe_sni~ be_secure:ns:granite/pod:p-1:s:https:10.1.1.1:8443 0/0/1/-1/30001 504 194 - - sH-- 3/2/0/0/0 0/0 \"POST /v1/x?token={}&q={ESC}\u{202e}evil HTTP/1.1\"\n",
        SECRETS[0]
    );
    std::fs::write(&path, line).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["explain", p],
        vec!["explain", p, "-o", "json"],
        vec!["explain", p, "-o", "yaml"],
        vec!["failures", p],
        vec!["failures", p, "-o", "json"],
        vec!["report", "--failures", p],
    ] {
        let (code, out, err) = run(&args);
        assert!(code == 0 || code == 1, "{args:?}: {err}");
        assert!(
            out.contains("upstream_timeout"),
            "{args:?}: the line was not read:\n{out}"
        );
        assert_clean(&format!("{args:?}"), &out);
        assert_no_secrets(&format!("{args:?}"), &out);
    }
}

/// The Knative proxies' error lines (Go's error text, the revision) and an endpoint picker's
/// (request id, model, error) are listed by `explain` as logged: terminal escapes, bidi controls
/// and secrets in them are escaped or masked in its text, JSON and YAML.
#[test]
fn knative_and_endpoint_picker_lines_are_escaped_and_masked_everywhere() {
    let knative = serde_json::json!({
        "severity": "ERROR",
        "timestamp": "2024-06-05T10:15:13.2Z",
        "logger": "activator",
        "message": "error reverse proxying request",
        "knative.dev/key": format!("ns/rev-00001{ESC}"),
        "knative.dev/pod": "activator-1\u{202e}evil",
        "error": format!("dial tcp 10.0.0.1:8012: Authorization: Bearer {} {ESC}", SECRETS[0]),
    });
    let epp = serde_json::json!({
        "level": "error",
        "ts": "2025-10-10T08:01:04.000Z",
        "msg": "Failed to process request",
        "x-request-id": format!("id-1{ESC}"),
        "model": "m\u{202e}evil",
        "error": format!("inference gateway: ServiceUnavailable - token={} {ESC}", SECRETS[3]),
    });
    let d = tempfile::tempdir().unwrap();
    for (name, line, read_as) in [
        ("activator.log", knative, "activator"),
        ("epp.log", epp, "no_healthy_upstream"),
    ] {
        let path = d.path().join(name);
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let p = path.to_str().unwrap();
        for args in [
            vec!["explain", p],
            vec!["explain", p, "-o", "json"],
            vec!["explain", p, "-o", "yaml"],
        ] {
            let (code, out, err) = run(&args);
            assert_eq!(code, 0, "{args:?}: {err}");
            assert!(out.contains(read_as), "{args:?}: not read:\n{out}");
            assert_clean(&format!("{args:?}"), &out);
            assert_no_secrets(&format!("{args:?}"), &out);
        }
    }
}
