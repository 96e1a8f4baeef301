//! Large logs take the streaming paths (needle scan with a per-window index for `trace`,
//! failures-only parsing on two threads for `failures`): on an example bundle whose logs are
//! padded past the streaming threshold with realistic traffic, the verdicts, hops and line
//! numbers must be those of the small bundle read whole.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn logs_of(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            logs_of(&p, out);
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
}

/// Successful requests of another model, one per 10 ms from `from` (`HH:MM` on the bundle's day),
/// on their own addresses: nothing the traced request or a failure could be confused with.
fn traffic(from_minute: u32, n: usize) -> (String, usize) {
    let mut s = String::with_capacity(n * 420);
    for i in 0..n {
        let ms = from_minute as usize * 60_000 + i * 10;
        let (h, m, sec, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        s.push_str(&format!(
            "[2024-06-03T{h:02}:{m:02}:{sec:02}.{milli:03}Z] \"POST /v2/models/other/infer HTTP/1.1\" 200 - via_upstream - \"-\" 164 212 {d} {u} \"10.200.{a}.{b}\" \"python-requests/2.31.0\" \"00000000-0000-4000-8000-{i:012}\" \"other-predictor.team.svc.cluster.local\" \"10.201.0.7:8012\" outbound|80||other-predictor-00001.team.svc.cluster.local 10.202.{a}.{b}:{p} 172.31.9.9:80 10.203.{a}.{b}:{p} - -\n",
            d = 20 + i % 30,
            u = 19 + i % 30,
            a = i / 250 % 250,
            b = i % 250 + 1,
            p = 20_000 + i % 40_000,
        ));
    }
    (s, n)
}

/// Copy `bundle` and pad each log with ~9 MiB of earlier and ~1 MiB of later traffic.
/// Returns the copy and the number of lines put in front of each log.
fn padded(bundle: &str, dir: &Path) -> (PathBuf, usize) {
    let to = dir.join(bundle);
    copy_dir(&repo().join("testdata/bundles").join(bundle), &to);
    let (before, lines) = traffic(7 * 60, 22_000); // 07:00, before anything in the bundle
    let (after, _) = traffic(11 * 60, 2_500); // 11:00, after it
    let mut logs = Vec::new();
    logs_of(&to.join("logs"), &mut logs);
    assert!(!logs.is_empty());
    for l in logs {
        let body = std::fs::read(&l).unwrap();
        let mut all = before.clone().into_bytes();
        all.extend_from_slice(&body);
        if !body.ends_with(b"\n") {
            all.push(b'\n');
        }
        all.extend_from_slice(after.as_bytes());
        assert!(
            all.len() > 8 << 20,
            "{} is only {} bytes",
            l.display(),
            all.len()
        );
        std::fs::write(&l, all).unwrap();
    }
    (to, lines)
}

fn run_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (role, file name, line, status) of every hop.
fn hops(doc: &Value, shift: u64) -> Vec<(String, String, u64, Value)> {
    doc["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let file = h["evidence"]["file"].as_str().unwrap();
            let tail = file.rsplit('/').take(3).collect::<Vec<_>>().join("/");
            (
                h["role"].as_str().unwrap().to_string(),
                tail,
                h["evidence"]["line"].as_u64().unwrap() - shift,
                h["status"].clone(),
            )
        })
        .collect()
}

#[test]
fn trace_on_large_logs_finds_the_same_hops_and_lines_as_on_small_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (big, shift) = padded("rhoai-400-app-error", tmp.path());
    let small = repo().join("testdata/bundles/rhoai-400-app-error");
    // The seed 000 request: the id changes at the gateway, so later rounds follow a new id and
    // connection addresses inside the request's time range.
    for id in [
        "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
        "f7beed8d-a4db-4aaa-9292-edbf3e186e29",
    ] {
        let want = run_json(&[
            "trace",
            id,
            "--bundle",
            small.to_str().unwrap(),
            "-o",
            "json",
        ]);
        let got = run_json(&["trace", id, "--bundle", big.to_str().unwrap(), "-o", "json"]);
        assert_eq!(got["cause"], want["cause"], "{id}");
        assert_eq!(got["origin_hop"], want["origin_hop"], "{id}");
        assert_eq!(got["request_ids"], want["request_ids"], "{id}");
        assert_eq!(hops(&got, shift as u64), hops(&want, 0), "{id}");
        assert_eq!(got["hops"].as_array().unwrap().len(), 5, "{id}");
    }
}

#[test]
fn failures_on_large_logs_match_the_small_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (big, _) = padded("kind-rbac-403", tmp.path());
    let small = repo().join("testdata/bundles/kind-rbac-403");
    let want = run_json(&[
        "failures",
        "--bundle",
        small.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let got = run_json(&["failures", "--bundle", big.to_str().unwrap(), "-o", "json"]);
    assert!(!want["groups"].as_array().unwrap().is_empty());
    assert_eq!(got["failed"], want["failed"]);
    let key = |g: &Value| {
        (
            g["cause"].to_string(),
            g["status"].to_string(),
            g["origin_role"].to_string(),
            g["target"].to_string(),
            g["count"].to_string(),
            g["example_request_ids"].to_string(),
        )
    };
    let w: Vec<_> = want["groups"].as_array().unwrap().iter().map(key).collect();
    let g: Vec<_> = got["groups"].as_array().unwrap().iter().map(key).collect();
    assert_eq!(g, w);
}
