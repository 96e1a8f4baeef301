//! Untrusted lines: every line reader bounded in line length and memory; junk rejected cheaply; stdin streamed.
//!
//! Each case runs the real binary on input built here, watching its peak resident memory
//! (VmHWM, polled) and killing it past a deadline, and asserts the message or partial result.

use crate::common;
use crate::robustness::{Run, watch_limited};

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Memory budget of every case (docs/limits.md).
const BUDGET_KIB: u64 = 256 * 1024;

const LIMIT: usize = 1 << 20;

/// Wait for `child`, polling its peak memory; kill it past `deadline` or the budget.
fn watch(child: Child, deadline: Duration) -> Run {
    watch_limited(child, deadline, BUDGET_KIB)
}

fn run(args: &[&str], deadline: Duration) -> Run {
    let child = common::meshtrace()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    watch(child, deadline)
}

/// Run with `feed` writing standard input (on its own thread, so nothing is held here).
fn run_fed(
    args: &[&str],
    deadline: Duration,
    feed: impl FnOnce(&mut dyn Write) + Send + 'static,
) -> Run {
    let mut child = common::meshtrace()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &mut stdin);
        feed(&mut w);
        let _ = w.flush();
    });
    let r = watch(child, deadline);
    let _ = feeder.join();
    r
}

/// One Istio access-log line; every 50th request a 503 `UF` so there is something to explain.
fn access_line(i: u64) -> String {
    let secs = i / 200;
    let t = format!(
        "2026-11-22T{:02}:{:02}:{:02}.{:03}Z",
        10 + secs / 3600 % 12,
        secs / 60 % 60,
        secs % 60,
        i % 1000
    );
    let (code, flags, details) = if i % 50 == 7 {
        (
            "503",
            "UF",
            "upstream_reset_before_response_started{connection_failure}",
        )
    } else {
        ("200", "-", "via_upstream")
    };
    format!(
        "[{t}] \"POST /v1/models/m:predict HTTP/1.1\" {code} {flags} {details} - \"-\" 10 20 3 2 \"-\" \"curl/8\" \"id-{i:010}\" \"m.example.com\" \"10.0.0.9:8080\" inbound|8080|| 127.0.0.6:41000 10.0.0.9:8080 10.0.0.1:5000 outbound_.80_._.m.svc.cluster.local default\n"
    )
}

/// Write access lines until `bytes` are written; returns the number of lines.
fn write_access(w: &mut dyn Write, bytes: u64) -> u64 {
    let (mut n, mut i) = (0u64, 0u64);
    while n < bytes {
        let l = access_line(i);
        if w.write_all(l.as_bytes()).is_err() {
            break;
        }
        n += l.len() as u64;
        i += 1;
    }
    i
}

fn zeros(w: &mut dyn Write, bytes: usize) {
    let block = vec![0u8; 1 << 16];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len());
        w.write_all(&block[..n]).unwrap();
        left -= n;
    }
}

fn text(r: &Run) -> String {
    String::from_utf8_lossy(&r.stdout).into_owned()
}

#[test]
fn a_file_without_newlines_is_one_skipped_line_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zeros.log");
    zeros(&mut std::fs::File::create(&p).unwrap(), 64 << 20);
    for json in [false, true] {
        let mut args = vec!["explain", p.to_str().unwrap()];
        if json {
            args.extend(["-o", "json"]);
        }
        let r = run(&args, Duration::from_secs(120));
        assert_eq!(r.code, 1, "no record: exit 1; stderr: {}", r.stderr);
        assert!(r.peak_kib < BUDGET_KIB, "peak {} KiB", r.peak_kib);
        let msg = format!("line longer than {LIMIT} bytes; skipped");
        if json {
            let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
            let skipped = v["skipped"].as_array().unwrap();
            assert_eq!(skipped.len(), 1, "{skipped:?}");
            assert_eq!(skipped[0]["line"], 1);
            assert!(skipped[0]["reason"].as_str().unwrap().contains(&msg));
        } else {
            let out = text(&r);
            assert!(out.contains(&format!("zeros.log:1: {msg}")), "{out}");
            assert!(out.contains("Skipped 1 line: 1 malformed"), "{out}");
        }
    }
}

#[test]
fn a_long_line_between_records_is_skipped_and_reading_goes_on() {
    // Small (read whole) and large (streamed, over 8 MiB) files, plain and gzip: the line after
    // the long one is still read, with its own line number.
    let dir = tempfile::tempdir().unwrap();
    for (name, long) in [("small.log", 3 << 20), ("large.log", 12 << 20)] {
        let p = dir.path().join(name);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        f.write_all(access_line(7).as_bytes()).unwrap();
        f.write_all(&vec![b'x'; long]).unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(access_line(57).as_bytes()).unwrap();
        drop(f);
        let gz = dir.path().join(format!("{name}.gz"));
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(&std::fs::read(&p).unwrap()).unwrap();
        e.finish().unwrap();
        for file in [&p, &gz] {
            let r = run(
                &["explain", "-o", "json", file.to_str().unwrap()],
                Duration::from_secs(120),
            );
            assert_eq!(r.code, 0, "{}", r.stderr);
            assert!(r.peak_kib < BUDGET_KIB, "peak {} KiB", r.peak_kib);
            let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
            let lines: Vec<u64> = common::line_numbers(&v["records"]);
            assert_eq!(lines, vec![1, 3], "{}", file.display());
            let skipped = v["skipped"].as_array().unwrap();
            assert_eq!(skipped.len(), 1);
            assert_eq!(skipped[0]["line"], 2);
            assert!(
                skipped[0]["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("line longer than {LIMIT} bytes; skipped"))
            );
        }
    }
}

#[test]
fn a_gzip_log_of_zeros_in_a_bundle_does_not_abort_trace_failures_or_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b");
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/rhoai-400-app-error"),
        &bundle,
    );
    let pod = bundle.join("logs/aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj");
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(pod.join("zeros.log.gz")).unwrap(),
        flate2::Compression::best(),
    );
    zeros(&mut e, 8 << 20);
    e.finish().unwrap();
    let b = bundle.to_str().unwrap();
    let id = "4791d0d3-e742-4eac-8c56-4c87eb22f1a9";
    let r = run(&["trace", id, "--bundle", b], Duration::from_secs(120));
    assert!(r.peak_kib < BUDGET_KIB, "peak {} KiB", r.peak_kib);
    assert!(
        text(&r).contains("4791d0d3") && r.code != 134 && r.code != -1,
        "exit {}: {}",
        r.code,
        r.stderr
    );
    for args in [
        vec!["failures", "--bundle", b],
        vec!["doctor", "--bundle", b],
    ] {
        let r = run(&args, Duration::from_secs(120));
        assert!(r.peak_kib < BUDGET_KIB, "{args:?}: peak {} KiB", r.peak_kib);
        assert!(
            r.code != 134 && r.code != -1 && !r.stdout.is_empty(),
            "{args:?}: exit {}: {}",
            r.code,
            r.stderr
        );
    }
}

#[test]
fn standard_input_is_streamed_with_flat_memory() {
    // 32 MB of records on standard input: held whole, as before, this took ~400 MB.
    for json in [false, true] {
        let mut args = vec!["explain"];
        if json {
            args.extend(["-o", "json"]);
        }
        let r = run_fed(&args, Duration::from_secs(600), |w| {
            write_access(w, 32 << 20);
        });
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.peak_kib < BUDGET_KIB,
            "json {json}: peak {} KiB",
            r.peak_kib
        );
        if json {
            let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
            let records = v["records"].as_array().unwrap();
            assert!(records.len() > 100_000, "{}", records.len());
            assert_eq!(records[0]["input"], "<stdin>");
            assert_eq!(records.last().unwrap()["line"], records.len() as u64);
            let failed = v["requests"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["status"] == 503)
                .count();
            assert_eq!(failed, (0..records.len()).filter(|i| i % 50 == 7).count());
        } else {
            let out = text(&r);
            assert!(
                out.contains("from <stdin>"),
                "{}",
                &out[out.len().saturating_sub(500)..]
            );
        }
    }
}

#[test]
fn a_closed_output_stops_explain_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.log");
    let lines = write_access(
        &mut std::io::BufWriter::new(std::fs::File::create(&p).unwrap()),
        100 << 20,
    );
    assert!(lines > 300_000);
    let mut child = common::meshtrace()
        .args(["explain", p.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read one line, then close the pipe.
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let closed = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if closed.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("explain still running 20 s after its output was closed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let after = closed.elapsed();
    // The whole file takes far longer; what is left is the next write failing and the exit.
    assert!(
        after < Duration::from_secs(2),
        "stopped {after:?} after the pipe closed"
    );
    let err = crate::common::stderr_of(&mut child);
    assert!(
        status.code().is_some(),
        "killed by a signal: {status:?}; {err}"
    );
}

#[test]
fn junk_just_under_the_streaming_threshold_is_counted_not_kept() {
    // ~4 million one-byte lines just under 8 MiB: each used to be kept (1.1 GB).
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.log");
    let n = ((8u64 << 20) - 4096) / 2;
    std::fs::write(&p, "a\n".repeat(n as usize)).unwrap();
    let r = run(&["explain", p.to_str().unwrap()], Duration::from_secs(300));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.peak_kib < BUDGET_KIB, "peak {} KiB", r.peak_kib);
    let out = text(&r);
    assert!(
        out.contains(&format!("Skipped {n} lines: {n} malformed")),
        "{out}"
    );
    assert!(
        out.contains("junk.log:1: not an access log in a known format"),
        "{out}"
    );
    assert!(
        out.contains(&format!("… and {} more malformed lines", n - 20)),
        "{out}"
    );
    assert!(
        r.stderr.contains(&format!(
            "({n} line(s) skipped: {n} malformed); if the proxy uses a custom format"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn junk_in_json_lists_every_skipped_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.log");
    let mut body = String::new();
    for i in 0..5000 {
        body.push_str(&format!("junk line {i}\n"));
        if i == 2500 {
            body.push_str(&access_line(7));
        }
    }
    std::fs::write(&p, body).unwrap();
    let r = run(
        &["explain", "-o", "json", p.to_str().unwrap()],
        Duration::from_secs(120),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let skipped: Vec<u64> = common::line_numbers(&v["skipped"]);
    let want: Vec<u64> = (1..=5001).filter(|&l| l != 2502).collect();
    assert_eq!(skipped, want);
    assert_eq!(v["records"][0]["line"], 2502);
}
