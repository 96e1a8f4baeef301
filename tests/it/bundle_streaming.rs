//! Bundle archives and logs read as streams: gzip-compressed container logs (`.log.gz`) in a
//! folder or archive, the exact count of complete members before a damaged archive, and large log
//! members copied to a temporary file instead of being held in memory.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

use meshtrace::source::bundle::{Bundle, LogSource};
use serde_json::Value;

const APP_ERROR_ID: &str = "4791d0d3-e742-4eac-8c56-4c87eb22f1a9";
const RBAC_ID: &str = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
const GW_LOG: &str = "logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log";
/// A successful request of the kind-rbac-403 gateway log; its request id is replaced per line.
const OK_ID: &str = "e6a843f1-2d37-41c0-9672-cea8238a03c6";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/bundles")
        .join(name)
}

/// Relative paths and contents of every file under `root`, sorted.
fn files_of(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// The files with every `.log` gzip-compressed into `.log.gz`.
fn gzip_logs(files: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|(p, d)| match p.ends_with(".log") {
            true => (format!("{p}.gz"), gzip(d)),
            false => (p.clone(), d.clone()),
        })
        .collect()
}

fn write_dir(root: &Path, files: &[(String, Vec<u8>)]) {
    for (p, d) in files {
        let full = root.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, d).unwrap();
    }
}

/// The raw header of a regular file (short path).
fn header(path: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

fn append<W: Write>(b: &mut tar::Builder<W>, files: &[(String, Vec<u8>)]) {
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, p, d.as_slice()).unwrap();
    }
}

/// A complete tar archive of `files`.
fn tar_bytes(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, files);
    b.into_inner().unwrap()
}

fn meshtrace(args: &[&str], bundle: &Path, env: &[(&str, &Path)]) -> (i32, Value, String) {
    let mut cmd = common::meshtrace();
    cmd.args(args)
        .arg("--bundle")
        .arg(bundle)
        .args(["-o", "json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

/// `trace` JSON with the bundle's own path and the `.gz` of log names taken out, so that runs on
/// differently stored copies of one bundle compare equal. The notes are left out: a compressed
/// log is always read through the line filter, whose count of skipped lines is a note.
fn trace_normalised(start: &str, bundle: &Path) -> (i32, String) {
    let (code, mut v, _) = meshtrace(&["trace", start], bundle, &[]);
    let notes = v["notes"].take().to_string();
    assert!(!notes.contains("skipped:"), "{notes}");
    let root = bundle.display().to_string();
    let text = serde_json::to_string_pretty(&v)
        .unwrap()
        .replace(&root, "<bundle>")
        .replace(".log.gz", ".log");
    (code, text)
}

#[test]
fn gzip_compressed_logs_in_a_bundle_give_the_same_verdict() {
    let d = tempfile::tempdir().unwrap();
    // The README is left out: an archive reports it as ignored, a folder does not.
    let mut plain = files_of(&example("rhoai-400-app-error"));
    plain.retain(|(p, _)| p != "README.md");
    let gz = gzip_logs(&plain);
    assert!(gz.iter().filter(|(p, _)| p.ends_with(".log.gz")).count() >= 5);
    let plain_dir = d.path().join("plain");
    write_dir(&plain_dir, &plain);
    let gz_dir = d.path().join("gz");
    write_dir(&gz_dir, &gz);
    let gz_archive = d.path().join("gz.tar.gz");
    std::fs::write(&gz_archive, gzip(&tar_bytes(&gz))).unwrap();

    let (code, want) = trace_normalised(APP_ERROR_ID, &plain_dir);
    assert_eq!(code, 1, "{want}");
    let v: Value = serde_json::from_str(&want).unwrap();
    assert_eq!(v["cause"], "app_error");
    assert_eq!(v["origin_hop"], 5);
    for bundle in [&gz_dir, &gz_archive] {
        let (code, got) = trace_normalised(APP_ERROR_ID, bundle);
        assert_eq!(code, 1, "{}: {got}", bundle.display());
        assert_eq!(got, want, "{}", bundle.display());
    }
    // The evidence names the compressed file.
    let (_, v, _) = meshtrace(&["trace", APP_ERROR_ID], &gz_dir, &[]);
    let file = v["hops"][0]["evidence"]["file"].as_str().unwrap();
    assert!(file.ends_with("istio-proxy.log.gz"), "{file}");
}

#[test]
fn gzip_log_names_give_container_and_previous_in_both_layouts() {
    let d = tempfile::tempdir().unwrap();
    let log = gzip(b"not an access log\n");
    let files: Vec<(String, Vec<u8>)> = [
        "logs/ns/pod-a/istio-proxy.log.gz",
        "logs/ns/pod-a/istio-proxy.previous.log.gz",
        "logs/ns/pod-a/Queue-Proxy.LOG.GZ",
        "bug-report/proxies/ns/pod-b/istio-proxy.log.gz",
        "bug-report/proxies/ns/pod-b/discovery.previous.log.gz",
    ]
    .iter()
    .map(|p| (p.to_string(), log.clone()))
    .collect();
    let folder = d.path().join("bundle");
    write_dir(&folder, &files);
    let archive = d.path().join("bundle.tar.gz");
    std::fs::write(&archive, gzip(&tar_bytes(&files))).unwrap();
    for path in [&folder, &archive] {
        let b = Bundle::open(path).unwrap();
        let mut got: Vec<(String, String, bool)> = b
            .logs
            .iter()
            .map(|l| (l.pod.clone(), l.container.clone(), l.previous))
            .collect();
        got.sort();
        let want = [
            ("pod-a", "Queue-Proxy", false),
            ("pod-a", "istio-proxy", false),
            ("pod-a", "istio-proxy", true),
            ("pod-b", "discovery", true),
            ("pod-b", "istio-proxy", false),
        ]
        .map(|(p, c, prev)| (p.to_string(), c.to_string(), prev));
        assert_eq!(got, want, "{}: {:?}", path.display(), b.problems);
        assert!(
            !b.problems.iter().any(|p| p.contains("ignored")),
            "{:?}",
            b.problems
        );
    }
}

/// The members of the damaged archives below: four complete ones (a folder, an ignored README,
/// the Pods, one log), then a log of 5000 bytes.
fn members_before_damage() -> (Vec<u8>, usize, Vec<u8>) {
    let log = std::fs::read(example("kind-rbac-403").join(GW_LOG)).unwrap();
    let pods = std::fs::read(example("kind-rbac-403").join("pods.json")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_path("logs/").unwrap();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o755);
    dir.set_cksum();
    b.append(&dir, std::io::empty()).unwrap();
    let files = [
        ("README.md".to_string(), b"notes".to_vec()),
        ("pods.json".to_string(), pods),
        (GW_LOG.to_string(), log),
    ];
    append(&mut b, &files);
    let mut head = b.into_inner().unwrap();
    head.truncate(head.len() - 1024); // the end-of-archive blocks
    let mut last = header("logs/default/cut/istio-proxy.log", 5000)
        .as_bytes()
        .to_vec();
    last.extend(std::iter::repeat_n(b'x', 5000));
    last.resize(last.len().div_ceil(512) * 512, 0);
    last.extend_from_slice(&[0; 1024]);
    (head, 4, last)
}

fn damage_of(b: &Bundle) -> &str {
    b.problems
        .iter()
        .find(|p| p.contains("archive is corrupt or truncated"))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no damage reported: {:?}", b.problems))
}

#[test]
fn a_damaged_archive_reports_how_many_complete_members_it_read() {
    let d = tempfile::tempdir().unwrap();
    let (head, complete, last) = members_before_damage();
    let expect = format!("after {complete} complete member(s)");

    // Cut inside the fifth member's data: as a plain tar and as a well-formed gzip of that tar.
    let mut cut = head.clone();
    cut.extend_from_slice(&last[..512 + 1000]);
    let tar = d.path().join("cut.tar");
    std::fs::write(&tar, &cut).unwrap();
    let tgz = d.path().join("cut.tar.gz");
    std::fs::write(&tgz, gzip(&cut)).unwrap();
    for a in [&tar, &tgz] {
        let b = Bundle::open(a).unwrap();
        let damage = damage_of(&b);
        assert!(damage.contains(&expect), "{}: {damage}", a.display());
        assert!(
            damage.contains("logs/default/cut/istio-proxy.log is cut after 1000 of 5000 bytes"),
            "{damage}"
        );
        // The complete members and the part of the cut one are used.
        assert_eq!(b.logs.len(), 2, "{:?}", b.problems);
        assert_eq!(b.logs[1].source.size(), Some(1000));
        assert!(b.of_kind("Pod").count() > 0);
    }

    // Cut inside the fifth member's header.
    let mut cut = head.clone();
    cut.extend_from_slice(&last[..200]);
    let a = d.path().join("header.tar");
    std::fs::write(&a, &cut).unwrap();
    let b = Bundle::open(&a).unwrap();
    assert!(damage_of(&b).contains(&expect), "{}", damage_of(&b));
    assert_eq!(b.logs.len(), 1);

    // The gzip stream itself cut inside the fifth member (flushed after the fourth, so the four
    // complete members decompress whole).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&head).unwrap();
    gz.flush().unwrap();
    let at = gz.get_ref().len();
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut rest = header("logs/default/cut/istio-proxy.log", 5000)
        .as_bytes()
        .to_vec();
    rest.extend_from_slice(&noise);
    gz.write_all(&rest).unwrap();
    gz.flush().unwrap();
    let whole = gz.finish().unwrap();
    let a = d.path().join("gzip-cut.tar.gz");
    std::fs::write(&a, &whole[..at + (whole.len() - at) / 2]).unwrap();
    let b = Bundle::open(&a).unwrap();
    assert!(damage_of(&b).contains(&expect), "{}", damage_of(&b));

    // Only files: three complete members, the fourth cut.
    let pods = std::fs::read(example("kind-rbac-403").join("pods.json")).unwrap();
    let files: Vec<(String, Vec<u8>)> = vec![
        ("pods.json".into(), pods),
        ("logs/a/b/istio-proxy.log".into(), b"x\n".to_vec()),
        (
            "resources/r.yaml".into(),
            b"kind: Namespace\nmetadata: {name: a}\n".to_vec(),
        ),
        ("logs/a/c/istio-proxy.log".into(), vec![b'y'; 3000]),
    ];
    let all = tar_bytes(&files);
    let a = d.path().join("three.tar.gz");
    std::fs::write(&a, gzip(&all[..all.len() - 2048 - 1024])).unwrap();
    let b = Bundle::open(&a).unwrap();
    assert!(
        damage_of(&b).contains("after 3 complete member(s)"),
        "{}",
        damage_of(&b)
    );
}

/// The kind-rbac-403 bundle with `pad` bytes of successful gateway requests (each its own request
/// id) before the gateway log's own lines, as one `.tar.gz`. Returns the gateway log.
fn padded_rbac_archive(path: &Path, pad: usize) -> Vec<u8> {
    let files = files_of(&example("kind-rbac-403"));
    let original = &files.iter().find(|(p, _)| p == GW_LOG).unwrap().1;
    let template = String::from_utf8_lossy(original)
        .lines()
        .find(|l| l.contains(OK_ID) && l.contains("127.0.0.1:8080"))
        .unwrap()
        .to_string();
    let mut log = Vec::with_capacity(pad + original.len() + template.len());
    let mut i = 0u64;
    while log.len() < pad {
        let id = format!("{:08x}-0000-4000-8000-{:012x}", i >> 16, i);
        log.extend_from_slice(template.replace(OK_ID, &id).as_bytes());
        log.push(b'\n');
        i += 1;
    }
    log.extend_from_slice(original);
    let files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(p, d)| {
            if p == GW_LOG {
                (p, log.clone())
            } else {
                (p, d)
            }
        })
        .collect();
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    append(&mut b, &files);
    b.into_inner().unwrap().finish().unwrap();
    log
}

fn assert_one_rbac_failure(code: i32, v: &Value, stderr: &str) {
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(v["failed"], 1, "{v}");
    let g = &v["groups"][0];
    assert_eq!(g["cause"], "rbac_denied");
    assert_eq!(g["origin_role"], "ingress-gateway");
    assert_eq!(g["count"], 1);
    assert_eq!(g["example_request_ids"][0], RBAC_ID);
}

#[test]
fn a_large_log_member_is_read_from_a_temporary_file() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("large.tar.gz");
    let log = padded_rbac_archive(&a, 40 << 20);
    assert!(log.len() as u64 > meshtrace::source::bundle::SPOOL_MIN);

    let b = Bundle::open(&a).unwrap();
    for l in &b.logs {
        let in_memory = matches!(l.source, LogSource::Memory(_));
        assert_eq!(in_memory, l.path != GW_LOG, "{}: {:?}", l.path, l.source);
    }
    let gw = b.logs.iter().find(|l| l.path == GW_LOG).unwrap();
    assert!(matches!(gw.source, LogSource::Spooled { .. }));
    assert_eq!(gw.source.size(), Some(log.len() as u64));
    // Two readers at once read the same bytes (no shared cursor).
    let mut r1 = gw.source.open().unwrap();
    let mut r2 = gw.source.open().unwrap();
    let mut head = vec![0u8; 4096];
    std::io::Read::read_exact(&mut r1, &mut head).unwrap();
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut r2, &mut all).unwrap();
    assert!(all == log, "spooled copy differs from the member");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut r1, &mut rest).unwrap();
    assert!(head == log[..4096] && rest == log[4096..]);
    drop(b);

    let (code, v, stderr) = meshtrace(&["failures"], &a, &[]);
    assert_one_rbac_failure(code, &v, &stderr);
    // The failed line comes after the ~90 000 padding lines: the whole member was read.
    let at = v["groups"][0]["example_evidence"].as_str().unwrap();
    let line: u64 = at.rsplit(':').next().unwrap().parse().unwrap();
    assert!(at.contains(GW_LOG) && line > 80_000, "{at}");
}

#[test]
fn without_a_usable_temporary_folder_large_logs_are_not_read_and_said_once() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("large.tar.gz");
    padded_rbac_archive(
        &a,
        (meshtrace::source::bundle::SPOOL_MIN + (1 << 20)) as usize,
    );
    let missing = d.path().join("no-such-folder");
    let (_, v, stderr) = meshtrace(&["failures"], &a, &[("TMPDIR", &missing)]);
    // Never held in memory instead: the large gateway log is not read, and that is said.
    assert_eq!(v["failed"], 0, "{stderr}");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "cannot create a temporary file in {}: ",
            missing.display()
        )) && notes.contains(&format!("(1 member(s) not read: {GW_LOG})")),
        "{notes}"
    );
    assert_eq!(notes.matches("cannot create a temporary file").count(), 1);
}
