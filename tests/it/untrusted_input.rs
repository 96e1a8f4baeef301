//! Untrusted input: bounded memory, time and disk on hostile bundles, archives and logs.
//!
//! Each test builds its hostile input at run time in a temporary folder (a few MB at most: the
//! bombs are gzip streams of zeros, the huge files are sparse), runs the real binary under a
//! deadline and a peak-memory limit, and checks the one-sentence note and the partial result.
//! The limits are listed in `docs/limits.md`. Peak memory is printed (`--nocapture` shows it).

use crate::common;
use crate::robustness::{Run, gzip_bomb, run_limited, tar_member};

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

const RBAC_ID: &str = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
const GW_LOG: &str = "logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log";
const GW_DUMP: &str = "config_dump/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p.json";
/// The documented memory budget (`docs/limits.md`).
const PEAK_KIB: u64 = 256 * 1024;
const DEADLINE: Duration = Duration::from_secs(120);

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles/kind-rbac-403")
}

/// The RBAC example bundle copied to `<d>/bundle`.
fn bundle_copy(d: &Path) -> PathBuf {
    let b = d.join("bundle");
    common::copy_dir(&example(), &b);
    b
}

/// The example bundle's files as tar members (no end-of-archive blocks, so more can follow).
fn example_tar() -> Vec<u8> {
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
    let mut files = Vec::new();
    walk(&example(), &example(), &mut files);
    files.sort();
    files
        .iter()
        .flat_map(|(name, data)| tar_member(name, data))
        .collect()
}

/// An old-style tar header for a regular file `name` of `size` bytes.
fn header(name: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `<d>/<name>`: the example bundle then a member `member` of `zeros` zero bytes, as a gzip
/// stream of a few hundred KB.
fn archive_with_zeros(d: &Path, name: &str, member: &str, zeros: u64) -> PathBuf {
    let mut head = example_tar();
    head.extend(header(member, zeros));
    let bomb = gzip_bomb(&head, zeros, &[0u8; 1024]);
    assert!(bomb.len() < 2 << 20, "archive is {} bytes", bomb.len());
    let a = d.join(name);
    std::fs::write(&a, bomb).unwrap();
    a
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Run meshtrace in `dir` within [`DEADLINE`] and [`PEAK_KIB`] (killed past either).
fn run(dir: &Path, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Run {
    let mut c = common::meshtrace();
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = run_limited(c, DEADLINE, PEAK_KIB);
    eprintln!(
        "peak RSS {} MiB: meshtrace {}",
        r.peak_kib / 1024,
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(
        r.code != -1 && r.peak_kib < PEAK_KIB,
        "exit {}; stderr: {}",
        r.code,
        r.stderr
    );
    r
}

fn trace(dir: &Path, bundle: &Path, env: &[(&str, &OsStr)]) -> Run {
    let args = ["trace", RBAC_ID, "--bundle"].map(OsStr::new);
    let rest = ["-o", "json"].map(OsStr::new);
    let all: Vec<&OsStr> = args
        .into_iter()
        .chain([bundle.as_os_str()])
        .chain(rest)
        .collect();
    run(dir, &all, env)
}

fn command(dir: &Path, cmd: &str, bundle: &Path) -> Run {
    run(
        dir,
        &[
            OsStr::new(cmd),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new("-o"),
            OsStr::new("json"),
        ],
        &[],
    )
}

/// The RBAC verdict of the example, from its one gateway hop (not a retry of itself).
fn assert_verdict(r: &Run) -> Value {
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let v = r.json();
    assert_eq!(v["cause"], "rbac_denied", "{v}");
    assert_eq!(v["hops"].as_array().unwrap().len(), 1, "{}", v["hops"]);
    v
}

/// The one note of `list` (a JSON array of sentences) that contains `needle`.
fn one_note<'v>(list: &'v Value, needle: &str) -> &'v str {
    let hits: Vec<&str> = list
        .as_array()
        .unwrap_or_else(|| panic!("no notes: {list}"))
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| n.contains(needle))
        .collect();
    assert_eq!(hits.len(), 1, "{needle:?} in {list:#}");
    assert!(!hits[0].contains('\n'), "{}", hits[0]);
    hits[0]
}

#[test]
fn yaml_alias_amplification_skips_that_document_and_reads_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle_copy(d.path());
    // The AuthorizationPolicy the verdict cites moves behind the bomb, in the same file.
    let policy = b.join("resources/istio-system/authorizationpolicy-allow-with-header.yaml");
    let policy_text = std::fs::read_to_string(&policy).unwrap();
    std::fs::remove_file(&policy).unwrap();
    // A 5 MB anchor aliased 2000 times: a 5 MB file that expands to 10 GB.
    let mut y = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\n");
    y.push_str("data:\n  big: &big ");
    y.push_str(&"x".repeat(5_000_000));
    y.push_str("\n  copies: [*big");
    y.push_str(&", *big".repeat(1999));
    y.push_str("]\n---\n");
    y.push_str(&policy_text);
    std::fs::write(b.join("resources/istio-system/bomb.yaml"), y).unwrap();

    let v = assert_verdict(&trace(d.path(), &b, &[]));
    assert_eq!(
        v["citations"][0]["object"], "AuthorizationPolicy/istio-system/allow-with-header",
        "the document after the bomb was read: {v}"
    );
    let note = one_note(
        &v["notes"],
        "resources/istio-system/bomb.yaml: YAML document 1 is over the 64 MiB limit for one resource document",
    );
    assert!(note.contains("aliases expanded"), "{note}");

    let doctor = command(d.path(), "doctor", &b);
    let v = doctor.json();
    assert_eq!(v["schema"], "meshtrace.doctor/v1");
    one_note(
        &v["skipped"],
        "bomb.yaml: YAML document 1 is over the 64 MiB limit",
    );
}

#[test]
fn a_config_dump_over_its_limit_is_not_read() {
    let d = tempfile::tempdir().unwrap();
    // In an archive: a 256 MiB member (a few hundred KB compressed) is refused by its size.
    let a = archive_with_zeros(d.path(), "dump.tar.gz", GW_DUMP, 256 << 20);
    let v = assert_verdict(&trace(d.path(), &a, &[]));
    one_note(
        &v["notes"],
        &format!("{GW_DUMP}: 256 MiB is over the 32 MiB limit for a config dump; not read"),
    );
    assert!(
        !v["notes"].to_string().contains("corrupt"),
        "{}",
        v["notes"]
    );

    // In a folder: a (sparse) 40 MiB file is refused by its size before reading.
    let b = bundle_copy(d.path());
    let dump = b.join(GW_DUMP);
    std::fs::create_dir_all(dump.parent().unwrap()).unwrap();
    std::fs::File::create(&dump)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    let v = assert_verdict(&trace(d.path(), &b, &[]));
    one_note(
        &v["notes"],
        &format!("{GW_DUMP}: 40 MiB is over the 32 MiB limit for a config dump; not read"),
    );
}

/// `n` bytes of log lines that are not access-log records.
fn padding(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        writeln!(out, "2024-04-25T20:21:43.7Z\tinfo\tpadding line {i:09}").unwrap();
        i += 1;
    }
    out
}

#[test]
fn an_archive_past_its_spool_limit_is_cut_with_one_sentence() {
    let d = tempfile::tempdir().unwrap();
    // Three 10 MiB logs (each copied to a temporary file) under a 16 MiB limit: the first is
    // copied whole, the second cut at 6 MiB, the third not read.
    let pad = padding(10 << 20);
    let mut tar = example_tar();
    for p in ["pad-a", "pad-b", "pad-c"] {
        tar.extend(tar_member(
            &format!("logs/default/{p}/istio-proxy.log"),
            &pad,
        ));
    }
    tar.extend([0u8; 1024]);
    let a = d.path().join("spool.tar.gz");
    std::fs::write(&a, gzip(&tar)).unwrap();

    let r = trace(
        d.path(),
        &a,
        &[("MESHTRACE_SPOOL_LIMIT_MIB", OsStr::new("16"))],
    );
    let v = assert_verdict(&r);
    let note = one_note(&v["notes"], "temporary files reached their limit");
    assert!(
        note.contains(&format!(
            "{}: the archive's temporary files reached their limit of 16 MiB while copying logs/default/pad-b/istio-proxy.log, so it is cut there",
            a.display()
        )),
        "{note}"
    );
    assert!(
        note.contains("extract the archive and pass the folder")
            && note.ends_with("(1 member(s) not read: logs/default/pad-c/istio-proxy.log)"),
        "{note}"
    );
    assert!(
        !v["notes"].to_string().contains("corrupt"),
        "{}",
        v["notes"]
    );
}

#[test]
fn with_an_unusable_temporary_folder_large_members_are_not_read_and_said_once() {
    let d = tempfile::tempdir().unwrap();
    let member = "logs/default/zeros/istio-proxy.log";
    let a = archive_with_zeros(d.path(), "big.tar.gz", member, 256 << 20);
    let missing = d.path().join("no-such-folder");
    let v = assert_verdict(&trace(d.path(), &a, &[("TMPDIR", missing.as_os_str())]));
    let note = one_note(&v["notes"], "cannot create a temporary file");
    assert!(
        note.contains(&format!(
            "{}: cannot create a temporary file in {}: ",
            a.display(),
            missing.display()
        )) && note.contains("; set TMPDIR to a writable folder")
            && note.ends_with(&format!("(1 member(s) not read: {member})")),
        "{note}"
    );
    // Never held in memory instead, so never "corrupt" for want of memory.
    assert!(
        !v["notes"].to_string().contains("corrupt"),
        "{}",
        v["notes"]
    );
}

#[test]
fn a_huge_resource_file_is_refused_by_its_size_before_reading() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle_copy(d.path());
    // 2 GiB, sparse: costs no disk, and would cost 2 GiB of memory if read whole.
    std::fs::File::create(b.join("resources/istio-system/huge.json"))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let v = assert_verdict(&trace(d.path(), &b, &[]));
    one_note(
        &v["notes"],
        "resources/istio-system/huge.json: 2048 MiB is over the 32 MiB limit for a resource file; not read",
    );
    let v = command(d.path(), "doctor", &b).json();
    one_note(
        &v["skipped"],
        "huge.json: 2048 MiB is over the 32 MiB limit",
    );

    // In an archive, the member's size says it before any byte is read.
    let a = archive_with_zeros(d.path(), "res.tar.gz", "resources/huge.yaml", 64 << 20);
    let v = assert_verdict(&trace(d.path(), &a, &[]));
    one_note(
        &v["notes"],
        "resources/huge.yaml: 64 MiB is over the 32 MiB limit for a resource file; not read",
    );
}

#[test]
fn a_gzip_log_of_zeros_in_a_bundle_is_read_within_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle_copy(d.path());
    let zeros = gzip_bomb(b"", 256 << 20, b"");
    let member = "logs/default/zeros/istio-proxy.log.gz";
    let path = b.join(member);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &zeros).unwrap();
    assert_verdict(&trace(d.path(), &b, &[]));
    let f = command(d.path(), "failures", &b);
    assert_eq!(f.code, 1, "{}", f.stderr);
    assert_eq!(f.json()["groups"][0]["cause"], "rbac_denied");
    let doctor = command(d.path(), "doctor", &b);
    assert_eq!(doctor.json()["schema"], "meshtrace.doctor/v1");

    // The same log as a member of an archive (held in memory compressed, read streaming).
    let mut tar = example_tar();
    tar.extend(tar_member(member, &zeros));
    tar.extend([0u8; 1024]);
    let a = d.path().join("zeros.tar");
    std::fs::write(&a, tar).unwrap();
    assert_verdict(&trace(d.path(), &a, &[]));
    let f = command(d.path(), "failures", &a);
    assert_eq!(f.json()["groups"][0]["cause"], "rbac_denied");
}

#[test]
fn a_log_stored_twice_is_read_once() {
    let d = tempfile::tempdir().unwrap();
    let gw = std::fs::read(example().join(GW_LOG)).unwrap();

    // The same member twice in an archive (appending to a tar adds a second copy).
    let mut tar = example_tar();
    tar.extend(tar_member(GW_LOG, &gw));
    tar.extend([0u8; 1024]);
    let a = d.path().join("twice.tar");
    std::fs::write(&a, tar).unwrap();
    let v = assert_verdict(&trace(d.path(), &a, &[]));
    one_note(
        &v["notes"],
        &format!("{GW_LOG} appears twice in {}; read once", a.display()),
    );

    // `x.log` beside `x.log.gz` in a folder: the uncompressed copy is read.
    let b = bundle_copy(d.path());
    std::fs::write(b.join(format!("{GW_LOG}.gz")), gzip(&gw)).unwrap();
    let v = assert_verdict(&trace(d.path(), &b, &[]));
    one_note(
        &v["notes"],
        &format!("{GW_LOG}.gz and {GW_LOG} hold the same log; read {GW_LOG} only"),
    );

    // The same in an archive with the compressed copy first: still the uncompressed one.
    let mut tar = tar_member(&format!("{GW_LOG}.gz"), &gzip(&gw));
    tar.extend(example_tar());
    tar.extend([0u8; 1024]);
    let a = d.path().join("both.tar");
    std::fs::write(&a, tar).unwrap();
    let v = assert_verdict(&trace(d.path(), &a, &[]));
    assert!(
        v["hops"][0]["evidence"]["file"]
            .as_str()
            .unwrap()
            .ends_with(".log"),
        "{}",
        v["hops"][0]
    );
    one_note(
        &v["notes"],
        &format!("{GW_LOG}.gz and {GW_LOG} hold the same log; read {GW_LOG} only"),
    );
}

/// YAML the parser would take minutes over: 200 000 nested flow sequences in a resource file
/// (its scan grows with the square of the depth), and an alias bomb in a mesh configuration's
/// own YAML (the `mesh` key of an `istio-*` ConfigMap, read for the access-log format). Both are
/// refused at once, with a note for the file; the verdict stands.
#[test]
fn deep_yaml_nesting_and_a_mesh_alias_bomb_are_refused_quickly() {
    let d = tempfile::tempdir().unwrap();
    let b = bundle_copy(d.path());
    let mut y = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  namespace: istio-system\ndata:\n  k: ",
    );
    y.push_str(&"[".repeat(200_000));
    y.push_str(&"]".repeat(200_000));
    std::fs::write(b.join("resources/istio-system/deep.yaml"), y).unwrap();
    let mut mesh = String::from("    a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12u8 {
        let (n, p) = ((b'a' + i) as char, (b'a' + i - 1) as char);
        mesh.push_str(&format!(
            "    {n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        ));
    }
    mesh.push_str("    accessLogFormat: *l\n");
    std::fs::write(
        b.join("resources/istio-system/istio-canary.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio-canary\n  namespace: istio-system\ndata:\n  mesh: |\n{mesh}"
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let v = assert_verdict(&trace(d.path(), &b, &[]));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    one_note(&v["notes"], "deep.yaml");
    assert!(
        v["notes"]
            .to_string()
            .contains("nested deeper than 128 levels"),
        "{}",
        v["notes"]
    );
}
