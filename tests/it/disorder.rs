//! Logs as Envoy writes them: lines in end-time order stamped with start time, several proxies per file; counts stay exact.
//!
//! The logs come from the benchmark's own generator (`scripts/genlog/src/gen.rs`, included as a
//! module: standard library only), which counts exactly what it wrote.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::meshtrace;

#[allow(dead_code, clippy::all)]
#[path = "../../scripts/genlog/src/gen.rs"]
mod genlog;

use genlog::{Envoy, PROXIES, Truth};

/// Each proxy's log as Envoy writes it, and what was written.
fn envoy_logs(size: u64, fail_rate: f64, json: bool, seed: u64) -> (Vec<Vec<u8>>, Truth) {
    let mut logs = vec![Vec::new(); PROXIES.len()];
    let opts = Envoy {
        seed,
        size,
        json,
        fail_rate,
        trace_id: None,
    };
    let truth = opts
        .run(&mut |p, bytes| {
            logs[p].extend_from_slice(bytes);
            Ok(())
        })
        .unwrap();
    (logs, truth)
}

/// `failures -o json` on `args`: (requests, failed, failed per cause, notes).
fn failures(args: &[&str]) -> (u64, u64, BTreeMap<String, u64>, Vec<String>) {
    failures_with_stdin(args, None)
}

/// [`failures`] with standard input read from `stdin`.
fn failures_with_stdin(
    args: &[&str],
    stdin: Option<&Path>,
) -> (u64, u64, BTreeMap<String, u64>, Vec<String>) {
    let mut cmd = meshtrace();
    cmd.arg("failures").args(args).args(["-o", "json"]);
    if let Some(f) = stdin {
        cmd.stdin(std::fs::File::open(f).unwrap());
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut causes = BTreeMap::new();
    for g in doc["groups"].as_array().unwrap() {
        *causes
            .entry(g["cause"].as_str().unwrap().to_string())
            .or_default() += g["count"].as_u64().unwrap();
    }
    let notes = doc["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    (
        doc["requests"].as_u64().unwrap(),
        doc["failed"].as_u64().unwrap(),
        causes,
        notes,
    )
}

fn truth_causes(t: &Truth) -> BTreeMap<String, u64> {
    t.causes.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Several proxies' logs one after another in one file (a pasted ticket, fewer records than
/// one settling round): each request is counted once, with the cause its innermost hop shows,
/// although its lines are minutes apart in the file.
#[test]
fn several_proxies_in_one_file_count_each_request_once() {
    for json in [false, true] {
        let (logs, truth) = envoy_logs(1 << 20, 20.0, json, 11);
        assert!(truth.failed > 40, "{truth:?}");
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("pasted.log");
        std::fs::write(&f, logs.concat()).unwrap();
        let (requests, failed, causes, notes) = failures(&[f.to_str().unwrap()]);
        assert_eq!(
            (requests, failed),
            (truth.requests, truth.failed),
            "json {json}: {notes:?}"
        );
        assert_eq!(causes, truth_causes(&truth), "json {json}");
        assert!(
            !notes.iter().any(|n| n.contains("counted once per part")),
            "{notes:?}"
        );
    }
}

/// One log per proxy in a bundle, as Envoy writes them (a line when the request ends, stamped
/// with its start; one-second worker flushes; streams and slow errors ending up to ten minutes
/// after they start), over several settling rounds: exact counts.
#[test]
fn one_log_per_proxy_counts_exactly_across_settling_rounds() {
    let (logs, truth) = envoy_logs(6 << 20, 6.5, false, 5);
    assert!(
        truth.max_start_disorder_ms > 60_000,
        "long requests make the start times go back: {truth:?}"
    );
    let lines: u64 = truth.lines.iter().sum();
    assert!(lines > 3 * (1 << 12), "several rounds of 4 096 records");
    let tmp = tempfile::tempdir().unwrap();
    for ((ns, pod), log) in PROXIES.iter().zip(&logs) {
        let dir = tmp.path().join("logs").join(ns).join(pod);
        std::fs::create_dir_all(&dir).unwrap();
        assert!((log.len() as u64) < 8 << 20, "every record is kept");
        std::fs::write(dir.join("istio-proxy.log"), log).unwrap();
    }
    let (requests, failed, causes, notes) = failures(&["--bundle", tmp.path().to_str().unwrap()]);
    assert_eq!(
        (requests, failed),
        (truth.requests, truth.failed),
        "{notes:?}"
    );
    assert_eq!(causes, truth_causes(&truth));
}

/// Five proxies' logs one after another in one file of a few MiB, many settling rounds: the
/// file is read as its five time-ordered runs merged like separate logs, so each request is
/// counted once with the cause its innermost hop shows, exactly as written (before, each
/// proxy's part of a request settled apart and counted as a request of its own).
#[test]
fn several_proxies_in_one_file_count_exactly_across_settling_rounds() {
    for (json, rate, seed) in [(false, 6.5, 3), (true, 20.0, 8)] {
        let (logs, truth) = envoy_logs(if json { 7 << 20 } else { 6 << 20 }, rate, json, seed);
        let lines: u64 = truth.lines.iter().sum();
        assert!(
            lines > 2 * (1 << 12),
            "several rounds of 4 096 records: {lines}"
        );
        assert!(truth.failed > 200, "{truth:?}");
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("all-proxies.log");
        std::fs::write(&f, logs.concat()).unwrap();
        assert!(
            std::fs::metadata(&f).unwrap().len() < 8 << 20,
            "every record is kept"
        );
        let (requests, failed, causes, notes) = failures(&[f.to_str().unwrap()]);
        assert_eq!(
            (requests, failed),
            (truth.requests, truth.failed),
            "json {json}: {notes:?}"
        );
        assert_eq!(causes, truth_causes(&truth), "json {json}");
        assert!(
            !notes.iter().any(|n| n.contains("counted once per part")),
            "{notes:?}"
        );
    }
}

/// The same over a large file (only failed records kept, successes counted): the failed ones
/// and their causes are exact; the line numbers of each run are the file's (evidence points at
/// the right line).
#[test]
fn several_proxies_in_one_large_file_count_failures_exactly() {
    let (logs, truth) = envoy_logs(16 << 20, 20.0, false, 21);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("all-proxies.log");
    let all = logs.concat();
    std::fs::write(&f, &all).unwrap();
    assert!(all.len() > 8 << 20, "read keeping failed records only");
    let (_, failed, causes, notes) = failures(&[f.to_str().unwrap()]);
    assert_eq!(failed, truth.failed, "{notes:?}");
    assert_eq!(causes, truth_causes(&truth));
    // Every group's evidence `file:line` is the line of its first example request (the line
    // numbers of every run are the file's).
    let out = meshtrace()
        .args(["failures", f.to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = String::from_utf8(all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for g in doc["groups"].as_array().unwrap() {
        let ev = g["example_evidence"].as_str().unwrap();
        let (file, n) = ev.rsplit_once(':').unwrap();
        assert_eq!(file, f.to_str().unwrap());
        let line = lines[n.parse::<usize>().unwrap() - 1];
        if let Some(id) = g["example_request_ids"][0].as_str() {
            assert!(line.contains(id), "{ev} is not a line of {id}: {line}");
            checked += 1;
        }
    }
    assert!(checked >= 5, "{doc}");
}

/// Standard input cannot be read again, so it is read as one run: when it goes back in time
/// past a settling round, parts of requests were counted before; the report says so, names the
/// line, and says how to get exact counts.
#[test]
fn standard_input_going_back_in_time_past_a_round_is_reported() {
    let (logs, truth) = envoy_logs(16 << 20, 20.0, false, 3);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("all-proxies.log");
    std::fs::write(&f, logs.concat()).unwrap();
    let (_, failed, _, notes) = failures_with_stdin(&["-"], Some(&f));
    assert!(
        failed > truth.failed,
        "{failed} counted, {} written",
        truth.failed
    );
    let note = notes
        .iter()
        .find(|n| n.contains("counted once per part"))
        .unwrap_or_else(|| panic!("no note on the lines going back in time: {notes:?}"));
    assert!(
        note.starts_with("<stdin>:") && note.contains("own file"),
        "{note}"
    );
}
