//! `trace` on a large file holding several proxies' logs as Envoy writes them (a line when a
//! request ends, stamped with its start; streams lasting minutes; five proxies one after another):
//! the hops and their `file:line` are those the streaming reader finds in the same bytes gzipped,
//! and the
//! rounds after the first read only the windows whose records can have started in the request's
//! time range.
//!
//! The logs come from the benchmark's own generator (`scripts/genlog/src/gen.rs`, included as a
//! module: standard library only).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use meshtrace::source::scan::{BUCKET_MS, ScanIndex, WINDOW, scan_file};
use meshtrace_parsers::detect::FormatSpec;
use serde_json::Value;

use crate::common::meshtrace;

#[allow(dead_code, clippy::all)]
#[path = "../../scripts/genlog/src/gen.rs"]
mod genlog;

const ID: &str = "7e5f3c1a-0b9d-4c2e-9a6f-5d4b3c2a1f00";

/// Five proxies' logs one after another in one file (the generator's order reversed, so the
/// predictors come first), about `size` bytes, with the traced request near the middle.
fn five_proxies(size: u64, json: bool) -> tempfile::NamedTempFile {
    let mut logs = vec![Vec::new(); genlog::PROXIES.len()];
    genlog::Envoy {
        seed: 14,
        size,
        json,
        fail_rate: 6.5,
        trace_id: Some(ID.to_string()),
    }
    .run(&mut |p, bytes| {
        logs[p].extend_from_slice(bytes);
        Ok(())
    })
    .unwrap();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for l in logs.iter().rev() {
        f.write_all(l).unwrap();
    }
    f.flush().unwrap();
    f
}

/// (role, line, status) of every hop of `trace <ID> <path> -o json`.
fn hops(path: &std::path::Path) -> Vec<(String, u64, Value)> {
    let out = meshtrace()
        .args(["trace", ID, "-o", "json"])
        .arg(path)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["role"].as_str().unwrap().to_string(),
                h["evidence"]["line"].as_u64().unwrap(),
                h["status"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_request_in_five_concatenated_proxy_logs_has_the_hops_and_lines_of_a_full_read() {
    for json in [false, true] {
        // Past the 8 MiB under which files are read whole: the windowed search and its index.
        let f = five_proxies(10 << 20, json);
        let got = hops(f.path());
        // The same bytes gzip-compressed are read as one stream, line by line.
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("five.log.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(&std::fs::read(f.path()).unwrap()).unwrap();
        enc.finish().unwrap();
        let want = hops(&gz);
        assert_eq!(got, want, "json {json}");
        assert!(got.len() >= 3, "json {json}: {got:?}");
        // Every hop's line is a line of the file that belongs to the request.
        let text = std::fs::read_to_string(f.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let with_id = got
            .iter()
            .filter(|(_, n, _)| lines[*n as usize - 1].contains(ID))
            .count();
        assert!(with_id >= 1, "json {json}: {got:?}");
    }
}

/// The start time (Unix ms) of an Envoy-like line, text or JSON.
fn start_ms(line: &str) -> Option<i64> {
    let t = if let Some(rest) = line.strip_prefix('[') {
        rest.get(..24)?
    } else {
        let i = line.find("\"start_time\":\"")? + 14;
        line.get(i..i + 24)?
    };
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[test]
fn later_rounds_read_only_the_windows_that_can_hold_the_request() {
    for json in [false, true] {
        let f = five_proxies(10 << 20, json);
        let text = std::fs::read_to_string(f.path()).unwrap();
        let ix = ScanIndex::default();
        let spec = FormatSpec::Auto;
        let first = scan_file(f.path(), "f", &[ID.into()], None, &spec, &ix).unwrap();
        let total = ix.file("f").unwrap().windows();
        assert_eq!(first.windows_read, total);
        // Each line's start time and the windows it covers, read independently of the index.
        let mut at = 0usize;
        let mut info = Vec::new(); // (line number, start, first window, last window)
        for (i, l) in text.split_inclusive('\n').enumerate() {
            info.push((
                i as u64 + 1,
                start_ms(l),
                at / WINDOW,
                (at + l.len() - 1) / WINDOW,
            ));
            at += l.len();
        }
        let want: Vec<u64> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(ID))
            .map(|(i, _)| i as u64 + 1)
            .collect();
        assert_eq!(
            first.hits.iter().map(|h| h.line).collect::<Vec<_>>(),
            want,
            "json {json}"
        );
        // The request's time range as `trace` takes it: its start ± 30 s.
        let t = info[want[0] as usize - 1].1.unwrap();
        let (a, b) = (t - 30_000, t + 30_000);
        // An address on many lines, so that every window of the range has hits.
        let needles = vec![ID.to_string(), "10.133.2.14:8012".to_string()];
        let r = scan_file(f.path(), "f", &needles, Some((a, b)), &spec, &ix).unwrap();
        // Windows that must be read (a line started in the range) and that may be (their
        // lines' start times span part of the range).
        let mut need = BTreeSet::new();
        let mut span: BTreeMap<usize, (i64, i64)> = BTreeMap::new();
        for &(_, s, k0, k1) in &info {
            let Some(s) = s else { continue };
            for k in k0..=k1 {
                if (a..=b).contains(&s) {
                    need.insert(k);
                }
                let e = span.entry(k).or_insert((s, s));
                *e = (e.0.min(s), e.1.max(s));
            }
        }
        // (The index keeps start times in whole intervals of `BUCKET_MS`.)
        let (wa, wb) = (
            a.div_euclid(BUCKET_MS) * BUCKET_MS,
            b.div_euclid(BUCKET_MS) * BUCKET_MS + BUCKET_MS - 1,
        );
        let may: BTreeSet<usize> = span
            .iter()
            .filter(|(_, (lo, hi))| *lo <= wb && *hi >= wa)
            .map(|(k, _)| *k)
            .collect();
        let read: BTreeSet<usize> = r.windows.iter().copied().collect();
        assert_eq!(r.windows_read, read.len());
        assert!(
            need.is_subset(&read),
            "json {json}: read {read:?}, need {need:?}"
        );
        assert!(
            read.is_subset(&may),
            "json {json}: read {read:?}, may {may:?}"
        );
        // Not the whole file: 10 MiB holds a few minutes of each proxy, and most of a proxy's
        // part can hold requests lasting minutes that started in the range.
        assert!(read.len() < total, "json {json}: read {read:?} of {total}");
        // Every record of the range holding a needle is found, with its line number.
        let whole = scan_file(f.path(), "w", &needles, None, &spec, &ScanIndex::default()).unwrap();
        let in_range = |hits: &[meshtrace::source::scan::Hit]| -> Vec<u64> {
            hits.iter()
                .filter(|h| {
                    info[h.line as usize - 1]
                        .1
                        .is_some_and(|s| (a..=b).contains(&s))
                })
                .map(|h| h.line)
                .collect()
        };
        assert_eq!(in_range(&r.hits), in_range(&whole.hits), "json {json}");
        assert!(in_range(&r.hits).len() > 1, "json {json}");
        // The next round in the same range reads nothing again.
        let more = vec![
            ID.to_string(),
            "10.133.2.14:8012".to_string(),
            "10.133.2.15:8012".to_string(),
        ];
        let again = scan_file(f.path(), "f", &more, Some((a, b)), &spec, &ix).unwrap();
        assert_eq!(again.windows_read, 0, "json {json}");
    }
}
