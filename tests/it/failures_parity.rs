//! `failures` and `trace` agree: for every example bundle (`testdata/bundles/`) and every lab
//! bundle (`testdata/lab/`), each group's example — its request id, or the client's `ip:port`
//! of a connection failure — gets from `failures -o json` the verdict `trace -o json` gives it:
//! the same cause, status, origin hop, summary, fix, objects cited and readings.

use crate::common;
use common::run_in_repo as run;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Every bundle folder (one with a manifest) under `dir`, sorted.
fn bundles(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meshtrace-bundle.json").is_file())
        .collect();
    out.sort();
    out
}

/// The parts of a trace document that make its verdict (not the notes, which say how the
/// evidence was searched, nor the query as typed).
fn verdict(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(o) = t.as_object_mut() {
        o.remove("notes");
        o.remove("query");
    }
    t
}

/// Compare the groups of one bundle with `trace`; returns how many groups were compared.
fn check_bundle(bundle: &Path) -> usize {
    let b = bundle.to_str().unwrap();
    let (code, out, err) = run(&["failures", "--bundle", b, "-o", "json"]);
    // Nothing failed, or no access log to read (a bundle of application logs only).
    if code == 0 || (code == 2 && err.contains("no access-log line")) {
        return 0;
    }
    assert_eq!(code, 1, "{b}: {err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{b}: {e}: {out}"));
    let mut compared = 0;
    for g in doc["groups"].as_array().unwrap() {
        // ztunnel's connection lines (ambient) are read by the ambient path, not traced by id.
        if g["origin_role"] == "ztunnel" {
            continue;
        }
        let example = &g["example"];
        assert!(
            example.is_object(),
            "{b}: group without a traced example: {g:#}"
        );
        let query = example["query"].as_str().unwrap();
        let (code, out, err) = run(&["trace", query, "--bundle", b, "-o", "json"]);
        assert!(code == 0 || code == 1, "{b}: trace {query}: {err}");
        let t: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{b} {query}: {e}: {out}"));
        let (e, t_) = (verdict(example), verdict(&t));
        for (k, v) in t_.as_object().unwrap() {
            assert_eq!(e.get(k), Some(v), "{b}: trace {query}: {k}");
        }
        assert_eq!(e, t_, "{b}: trace {query}");
        // The group's own words are the example's.
        assert_eq!(g["cause"], t["cause"], "{b}: trace {query}");
        assert_eq!(g["status"], t["status"], "{b}: trace {query}");
        assert_eq!(g["summary"], t["summary"], "{b}: trace {query}");
        assert_eq!(g["fix"], t["fix"], "{b}: trace {query}");
        let origin = &t["hops"][t["origin_hop"].as_u64().unwrap() as usize - 1]["evidence"];
        assert_eq!(
            g["example_evidence"].as_str().unwrap(),
            format!(
                "{}:{}",
                origin["file"].as_str().unwrap(),
                origin["line"].as_u64().unwrap()
            ),
            "{b}: trace {query}"
        );
        // A request's example is its first request id.
        if g["kind"] == "request" {
            assert_eq!(g["example_request_ids"][0], query, "{b}");
        }
        compared += 1;
    }
    compared
}

#[test]
fn every_example_bundle_gets_the_verdict_trace_gives() {
    let all = bundles("testdata/bundles");
    assert!(all.len() >= 10, "{all:?}");
    let compared: usize = all.iter().map(|b| check_bundle(b)).sum();
    assert!(compared >= 10, "only {compared} groups compared");
}

#[test]
fn every_lab_bundle_gets_the_verdict_trace_gives() {
    let all = bundles("testdata/lab");
    assert!(all.len() >= 15, "{all:?}");
    let mut with_failures = 0;
    for b in &all {
        if check_bundle(b) > 0 {
            with_failures += 1;
        }
    }
    // Every lab scenario but the format oracle is a failure.
    assert!(with_failures >= 15, "{with_failures} of {}", all.len());
}

/// The case: plaintext from a client without a sidecar into a gateway listener that
/// accepts only mTLS. The group gets trace's gateway fix and cites the Gateway, not the
/// generic PeerAuthentication PERMISSIVE / DestinationRule DISABLE advice.
#[test]
fn a_connection_failure_at_a_gateway_gets_the_gateway_fix() {
    let b = "testdata/lab/plaintext-client-to-8081";
    let (code, out, err) = run(&["failures", "--bundle", b, "-o", "json"]);
    assert_eq!(code, 1, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let g = &doc["groups"][0];
    assert_eq!(g["kind"], "connection", "{g:#}");
    assert_eq!(g["example"]["query"], "127.0.0.50:47050");
    let fix = g["fix"].as_str().unwrap();
    assert!(fix.contains("speaks plaintext to the"), "{fix}");
    assert!(!fix.contains("PERMISSIVE"), "{fix}");
    assert!(
        g["example"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o.as_str().unwrap().starts_with("Gateway/")),
        "{g:#}"
    );
}
