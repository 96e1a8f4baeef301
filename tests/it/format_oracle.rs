//! The format oracle through the CLI: `meshtrace explain --log-format "$(cat text-format.txt)"
//! text.log -o json` reads every line Envoy wrote as a record (and the JSON log with its mapping).
//! Field-by-field equality with Envoy's values is checked in `parsers/tests/format_oracle.rs`;
//! see `testdata/lab/format-oracle/README.md`. With `MESHTRACE_ORACLE_DIR` set, that capture is
//! checked too.

use crate::common;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The request whose TEXT line is ambiguous by construction (see the README): reported, never
/// guessed.
const AMBIGUOUS_IN_TEXT: &[&str] = &["quote-space-quote-in-user-agent"];

fn dirs() -> Vec<PathBuf> {
    let mut d = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lab/format-oracle")];
    if let Some(extra) = std::env::var_os("MESHTRACE_ORACLE_DIR").filter(|v| !v.is_empty()) {
        // A relative path is from the repository root.
        d.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(extra));
    }
    d
}

fn explain(log: &Path, format: &str) -> Value {
    let out = common::meshtrace()
        .arg("explain")
        .arg("--log-format")
        .arg(format)
        .arg(log)
        .args(["-o", "json"])
        .output()
        .expect("run meshtrace");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{}: exit {code:?}\n{}",
        log.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("explain -o json prints JSON")
}

/// Lines of `json.log` (1-based) whose request is one of `names`.
fn lines_of(dir: &Path, names: &[&str]) -> Vec<u64> {
    let json = std::fs::read_to_string(dir.join("json.log")).unwrap();
    json.lines()
        .enumerate()
        .filter(|(_, l)| {
            let v: Value = serde_json::from_str(l).unwrap();
            v.as_object()
                .unwrap()
                .values()
                .any(|x| x.as_str().is_some_and(|s| names.contains(&s)))
        })
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

fn record_lines(doc: &Value) -> Vec<u64> {
    common::line_numbers(&doc["records"])
}

#[test]
fn explain_reads_every_text_line_envoy_wrote() {
    for dir in dirs() {
        let format = std::fs::read_to_string(dir.join("text-format.txt")).unwrap();
        let n = std::fs::read_to_string(dir.join("text.log"))
            .unwrap()
            .lines()
            .count() as u64;
        let doc = explain(&dir.join("text.log"), &format);
        let ambiguous = lines_of(&dir, AMBIGUOUS_IN_TEXT);
        let want: Vec<u64> = (1..=n).filter(|l| !ambiguous.contains(l)).collect();
        assert_eq!(record_lines(&doc), want, "{}", dir.display());
        let skipped = doc["skipped"].as_array().unwrap();
        let skipped_lines: Vec<u64> = skipped
            .iter()
            .map(|s| s["line"].as_u64().unwrap())
            .collect();
        assert_eq!(skipped_lines, ambiguous, "{}: {skipped:#?}", dir.display());
        for s in skipped {
            assert_eq!(s["kind"], "malformed", "{s}");
        }
        for r in doc["records"].as_array().unwrap() {
            assert_eq!(r["format"], "custom", "{r}");
            assert!(r.get("missing").is_none(), "{r}");
        }
    }
}

#[test]
fn explain_reads_every_json_line_with_its_mapping() {
    for dir in dirs() {
        let mapping = format!("@{}", dir.join("json-format.json").display());
        let n = std::fs::read_to_string(dir.join("json.log"))
            .unwrap()
            .lines()
            .count() as u64;
        let doc = explain(&dir.join("json.log"), &mapping);
        assert_eq!(
            record_lines(&doc),
            (1..=n).collect::<Vec<_>>(),
            "{}",
            dir.display()
        );
        assert_eq!(doc["skipped"].as_array().unwrap().len(), 0, "{doc:#}");
        for r in doc["records"].as_array().unwrap() {
            assert_eq!(r["format"], "custom-json", "{r}");
        }
    }
}
