//! Hostile and odd inputs through the binary: a 100 MB line, NUL bytes and invalid UTF-8, CRLF
//! endings, a log that is no access log, empty bundles, tar bombs, path traversal, symlink loops,
//! gzip-compressed logs. Each case asserts the documented behaviour (exit code, message naming
//! the input, the rest still analysed); every run is killed after a deadline so a hang fails fast.

use crate::common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const RBAC_ID: &str = "211ebf7c-1bc2-4008-aa50-9730fa6300dc";
const RBAC_LINE: &str = r#"[2024-04-25T20:21:43.725Z] "POST /v1/models/bert-emotion-model:predict HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "10.244.0.6" "curl/8.4.0" "211ebf7c-1bc2-4008-aa50-9730fa6300dc" "bert-model.default.example.com" "-" outbound|80||knative-local-gateway.istio-system.svc.cluster.local - 10.244.0.9:8080 10.244.0.6:44576 - -"#;
const CONNECT_ID: &str = "5d1e859f-2e45-46fe-b624-fe17e9cca4db";
const CONNECT_LINE: &str = r#"[2024-05-01T17:12:40.233Z] "POST /v1/models/sklearn-iris:predict HTTP/2" 503 UF,URX upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111} - "delayed connect error: 111" 59 168 27 - "10.244.3.21" "curl/8.5.0" "5d1e859f-2e45-46fe-b624-fe17e9cca4db" "sklearn-iris-predictor.kserve-test.svc.cluster.local" "10.244.2.17:8012" outbound|80||sklearn-iris-predictor-00001.kserve-test.svc.cluster.local - 10.244.0.9:8081 10.244.3.21:47214 outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local -"#;
const GW_LOG: &str = "logs/istio-system/istio-ingressgateway-5c7d8b7f9-x2k4p/istio-proxy.log";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
    /// Peak resident set (VmHWM) seen while polling, in KiB (0 when /proc is unavailable).
    pub(crate) peak_kib: u64,
}

impl Run {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}); exit {}; stderr: {}",
                self.code, self.stderr
            )
        })
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Run meshtrace in `dir` with `args`; kill it after `deadline` or once its peak RSS passes
/// `rss_limit_kib` (then the exit code is -1 and the reason is in `stderr`).
pub(crate) fn meshtrace_limited<S: AsRef<OsStr>>(
    dir: &Path,
    args: &[S],
    deadline: Duration,
    rss_limit_kib: u64,
) -> Run {
    let mut c = common::meshtrace();
    c.args(args).current_dir(dir);
    run_limited(c, deadline, rss_limit_kib)
}

/// Run `cmd` (no standard input) like [`meshtrace_limited`].
pub(crate) fn run_limited(mut cmd: Command, deadline: Duration, rss_limit_kib: u64) -> Run {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meshtrace");
    watch_limited(child, deadline, rss_limit_kib)
}

/// Wait for a spawned `child` (stdout and stderr piped), polling its peak memory; kill it past
/// `deadline` or once its peak RSS passes `rss_limit_kib`, as [`meshtrace_limited`] does.
pub(crate) fn watch_limited(mut child: Child, deadline: Duration, rss_limit_kib: u64) -> Run {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let mut peak = 0;
    let mut killed = None;
    let status = loop {
        peak = peak.max(vm_hwm_kib(child.id()));
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > deadline {
            killed = Some(format!("killed: still running after {deadline:?}"));
        } else if peak > rss_limit_kib {
            killed = Some(format!(
                "killed: peak RSS {} MiB passed the {} MiB limit after {:?}",
                peak / 1024,
                rss_limit_kib / 1024,
                start.elapsed()
            ));
        }
        if killed.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = out_t.join().unwrap();
    let mut stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    if let Some(k) = killed {
        stderr.push_str(&k);
    }
    Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout,
        stderr,
        peak_kib: peak,
    }
}

fn meshtrace<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Run {
    meshtrace_limited(dir, args, Duration::from_secs(60), u64::MAX)
}

fn request<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["request_id"] == id)
        .unwrap_or_else(|| panic!("request {id} not in {}", doc["requests"]))
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

pub(crate) fn tar_member(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut v = h.as_bytes().to_vec();
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

fn gw_log() -> Vec<u8> {
    format!("2024-04-25T20:21:43.7Z\tinfo\tEnvoy proxy is ready\n{RBAC_LINE}\n").into_bytes()
}

fn trace_rbac(dir: &Path, bundle: &Path) -> Run {
    meshtrace(
        dir,
        &[
            OsStr::new("trace"),
            OsStr::new(RBAC_ID),
            OsStr::new("--bundle"),
            bundle.as_os_str(),
            OsStr::new("-o"),
            OsStr::new("json"),
        ],
    )
}

fn assert_rbac_verdict(r: &Run) -> Value {
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    let v = r.json();
    assert_eq!(v["cause"], "rbac_denied", "{v}");
    assert_eq!(v["status"], 403);
    v
}

#[test]
fn a_100_mb_single_line_is_skipped_and_the_rest_analysed() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("huge.log");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&f).unwrap());
        writeln!(w, "{RBAC_LINE}").unwrap();
        // The start of an access-log line whose path never ends: 100 MB without a newline.
        w.write_all(br#"[2024-05-01T17:12:40.233Z] "GET /"#)
            .unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..100 {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"\n").unwrap();
        writeln!(w, "{CONNECT_LINE}").unwrap();
    }
    let r = meshtrace(d.path(), &["explain", "huge.log", "-o", "json"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(
        r.stdout.len() < 1 << 20,
        "the output echoes the huge line: {} bytes",
        r.stdout.len()
    );
    let v = r.json();
    assert_eq!(request(&v, RBAC_ID)["cause"], "rbac_denied");
    assert_eq!(request(&v, CONNECT_ID)["cause"], "upstream_connect_failure");
    // Nothing lost: line 2 is a skipped (malformed) line, cut to a readable length.
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["line"], 2);
    assert_eq!(skipped[0]["kind"], "malformed");
    assert!(skipped[0]["text"].as_str().unwrap().chars().count() <= 201);
    assert_eq!(v["records"].as_array().unwrap().len(), 2);
}

#[test]
fn nul_bytes_and_invalid_utf8_are_replaced_never_fatal() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    // Line 1: NUL inside the user agent of a real line.
    log.extend_from_slice(RBAC_LINE.replace("curl/8.4.0", "curl/8.4.0\0").as_bytes());
    log.push(b'\n');
    // Line 2: binary garbage.
    log.extend_from_slice(b"\xff\xfe\x00\x00\x01garbage\x80\x81\xc3\x28\n");
    // Line 3: invalid UTF-8 in the path of a real line.
    log.extend_from_slice(
        CONNECT_LINE
            .replace(":predict", ":predict\u{1}")
            .as_bytes()
            .iter()
            .map(|&b| if b == 1 { 0xff } else { b })
            .collect::<Vec<u8>>()
            .as_slice(),
    );
    log.push(b'\n');
    // Line 4: 4096 NUL bytes.
    log.extend_from_slice(&[0u8; 4096]);
    log.push(b'\n');
    write(&d.path().join("bin.log"), &log);
    let r = meshtrace(d.path(), &["explain", "bin.log", "-o", "json"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let v = r.json();
    assert_eq!(request(&v, RBAC_ID)["cause"], "rbac_denied");
    assert_eq!(request(&v, CONNECT_ID)["cause"], "upstream_connect_failure");
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["fields"]["user_agent"], "curl/8.4.0\u{0}");
    assert_eq!(
        records[1]["fields"]["path"],
        "/v1/models/sklearn-iris:predict\u{fffd}"
    );
    let skipped: Vec<u64> = common::line_numbers(&v["skipped"]);
    assert_eq!(skipped, [2, 4], "{}", v["skipped"]);
}

#[test]
fn crlf_line_endings_read_like_lf() {
    let d = tempfile::tempdir().unwrap();
    for name in [
        "seed003-rbac.log",
        "upstream-connect-failure.log",
        "rate-limited.log",
        "no-healthy-upstream.log",
        "seed000-pasted.log",
    ] {
        let lf = std::fs::read(repo().join("testdata/explain").join(name)).unwrap();
        let mut crlf = Vec::with_capacity(lf.len() + lf.len() / 50);
        for &b in &lf {
            if b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        write(&d.path().join("lf").join(name), &lf);
        write(&d.path().join("crlf").join(name), &crlf);
        let a = meshtrace(d.path(), &["explain", &format!("lf/{name}"), "-o", "json"]);
        let b = meshtrace(
            d.path(),
            &["explain", &format!("crlf/{name}"), "-o", "json"],
        );
        assert_eq!(a.code, b.code, "{name}: {}", b.stderr);
        let norm = |r: &Run| {
            String::from_utf8_lossy(&r.stdout)
                .replace("crlf/", "")
                .replace("lf/", "")
        };
        assert_eq!(norm(&a), norm(&b), "{name}: CRLF changes the analysis");
    }
}

#[test]
fn a_log_that_is_not_an_access_log() {
    let ztunnel = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/peer/kiali/tests/data/logs/ztunnel.log");
    let ztunnel = ztunnel.to_str().unwrap();
    let lines = std::fs::read_to_string(ztunnel)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let d = tempfile::tempdir().unwrap();
    // No access-log record, but ztunnel connections (Istio ambient): `explain` lists them, and
    // counts them as skipped lines of kind `ztunnel`.
    let r = meshtrace(d.path(), &["explain", ztunnel]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains(&format!(
            "{lines} ztunnel connection lines (Istio ambient) in "
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("Skipped {lines} lines: {lines} ztunnel")),
        "{out}"
    );
    assert!(!r.stderr.contains("no access-log record"), "{}", r.stderr);
    // A log with neither: exit 1 and the reason.
    write(
        &d.path().join("agent.log"),
        b"2020-06-29T23:37:27.335928Z\tinfo\tsds ready\n",
    );
    let r = meshtrace(d.path(), &["explain", "agent.log"]);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(
            "no access-log record found in agent.log (1 line(s) skipped: 1 istio-log); these are other logs, not access logs"
        ),
        "{}",
        r.stderr
    );
    let r = meshtrace(d.path(), &["trace", RBAC_ID, ztunnel]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{RBAC_ID} not found in 0 access-log record(s) of 1 log(s)"
        )),
        "{}",
        r.stderr
    );
    // With a real log beside it, the real log is analysed and the ztunnel lines counted.
    write(&d.path().join("rbac.log"), RBAC_LINE.as_bytes());
    let r = meshtrace(d.path(), &["explain", ztunnel, "rbac.log", "-o", "json"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let v = r.json();
    assert_eq!(request(&v, RBAC_ID)["cause"], "rbac_denied");
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), lines);
    assert!(skipped.iter().all(|s| s["input"] == ztunnel));
    let connections = v["connections"].as_array().unwrap();
    let joined: usize = connections
        .iter()
        .map(|c| c["lines"].as_array().unwrap().len())
        .sum();
    assert_eq!(joined, lines, "every ztunnel line is in one connection");
}

#[test]
fn empty_bundle_folder_and_empty_logs() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for cmd in [
        &["failures", "--bundle", "empty"][..],
        &["trace", RBAC_ID, "--bundle", "empty"],
    ] {
        let r = meshtrace(d.path(), cmd);
        assert_eq!(r.code, 2, "{cmd:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("empty holds no logs, pods or resources in the bundle layout"),
            "{cmd:?}: {}",
            r.stderr
        );
    }
    // A bundle whose only log is empty: opened, nothing found, said so.
    write(&d.path().join("b").join(GW_LOG), b"");
    let r = meshtrace(d.path(), &["trace", RBAC_ID, "--bundle", "b"]);
    assert_eq!(r.code, 2, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{RBAC_ID} not found in 0 access-log record(s) of 1 log(s)"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn archive_member_claiming_a_huge_size_is_a_truncated_member() {
    let d = tempfile::tempdir().unwrap();
    let mut ar = tar_member(GW_LOG, &gw_log());
    // A member whose header claims 64 GiB, followed by only 1 KiB and the end of the file.
    let mut h = tar::Header::new_old();
    let name = "logs/default/bomb/istio-proxy.log";
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(64 << 30);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    ar.extend_from_slice(h.as_bytes());
    ar.extend_from_slice(&[b'x'; 1024]);
    let a = d.path().join("claims.tar");
    write(&a, &ar);
    let r = trace_rbac(d.path(), &a);
    let v = assert_rbac_verdict(&r);
    assert!(
        v["notes"]
            .to_string()
            .contains("claims.tar: archive is corrupt or truncated"),
        "{}",
        v["notes"]
    );
    assert!(r.peak_kib < 256 * 1024, "peak RSS {} KiB", r.peak_kib);
}

/// A gzip stream of `tar` whose data decompresses to `zeros` bytes after `head`, written as
/// repeated full-flush blocks so that building it costs nothing (the CRC is left wrong: the
/// bytes are consumed long before a reader can check it).
pub(crate) fn gzip_bomb(head: &[u8], zeros: u64, tail: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    fn deflate(c: &mut Compress, input: &[u8], flush: FlushCompress) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() / 2 + 1024);
        let mut consumed = 0;
        loop {
            out.reserve(64 * 1024);
            let before_in = c.total_in();
            c.compress_vec(&input[consumed..], &mut out, flush).unwrap();
            consumed += (c.total_in() - before_in) as usize;
            if consumed == input.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }
    let mut c = Compress::new(Compression::best(), false);
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend(deflate(&mut c, head, FlushCompress::Full));
    let chunk = vec![0u8; 1 << 20];
    let block = deflate(&mut c, &chunk, FlushCompress::Full);
    for _ in 0..zeros / chunk.len() as u64 {
        gz.extend_from_slice(&block);
    }
    gz.extend(deflate(&mut c, tail, FlushCompress::Finish));
    gz.extend_from_slice(&[0; 4]); // CRC32 (wrong on purpose)
    gz.extend_from_slice(&((head.len() as u64 + zeros + tail.len() as u64) as u32).to_le_bytes());
    gz
}

#[test]
fn tar_gz_bomb_does_not_exhaust_memory() {
    let d = tempfile::tempdir().unwrap();
    // A good log, then a stray 1 GiB file (a core dump in a bug report) that gzip shrinks to
    // ~1 MB: it is not part of the bundle layout and must cost neither memory nor a crash.
    let mut head = tar_member(GW_LOG, &gw_log());
    let size: u64 = 1 << 30;
    let mut h = tar::Header::new_old();
    let name = "extra/core.dump";
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    head.extend_from_slice(h.as_bytes());
    let bomb = gzip_bomb(&head, size, &[0u8; 1024]);
    assert!(bomb.len() < 8 << 20, "bomb is {} bytes", bomb.len());
    let a = d.path().join("bomb.tar.gz");
    write(&a, &bomb);
    let r = meshtrace_limited(
        d.path(),
        &[
            OsStr::new("trace"),
            OsStr::new(RBAC_ID),
            OsStr::new("--bundle"),
            a.as_os_str(),
            OsStr::new("-o"),
            OsStr::new("json"),
        ],
        Duration::from_secs(120),
        256 * 1024,
    );
    let v = assert_rbac_verdict(&r);
    assert!(
        v["notes"]
            .to_string()
            .contains("extra/core.dump is not read"),
        "{}",
        v["notes"]
    );
}

#[test]
fn archive_members_outside_the_bundle_are_refused_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("cwd");
    std::fs::create_dir(&work).unwrap();
    let outside = d.path().join("outside");
    let abs = format!("{}/abs.log", outside.display());
    assert!(abs.len() < 100, "temp path too long for an old tar header");
    let log = gw_log();
    let mut ar = Vec::new();
    for name in [
        "../x.log",
        "../../outside/y.log",
        abs.as_str(),
        "logs/../../z.log",
        "/etc/cron.d/meshtrace",
    ] {
        ar.extend(tar_member(name, &log));
    }
    // A symlink member pointing outside, then a member written "through" it.
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..4].copy_from_slice(b"logs");
    h.set_link_name(outside.to_str().unwrap()).unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_cksum();
    ar.extend_from_slice(h.as_bytes());
    ar.extend(tar_member(GW_LOG, &log));
    ar.extend_from_slice(&[0; 1024]);
    let a = d.path().join("evil.tar");
    write(&a, &ar);
    let r = trace_rbac(&work, &a);
    let v = assert_rbac_verdict(&r);
    let notes = v["notes"].to_string();
    for name in [
        "../x.log",
        "../../outside/y.log",
        abs.as_str(),
        "logs/../../z.log",
        "/etc/cron.d/meshtrace",
    ] {
        assert!(
            notes.contains(&format!("refused member {name} ")),
            "{name}: {notes}"
        );
    }
    assert!(!outside.exists());
    assert!(!d.path().join("x.log").exists());
    assert!(!d.path().join("z.log").exists());
    assert!(!Path::new("/etc/cron.d/meshtrace").exists());
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

#[test]
fn symlink_loops_in_a_bundle_folder_are_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let b = d.path().join("bundle");
    write(&b.join(GW_LOG), &gw_log());
    let links: [(&str, PathBuf); 3] = [
        ("logs/default/loop", PathBuf::from("..")),
        ("self", PathBuf::from("self")),
        ("logs/istio-system/up", b.clone()),
    ];
    std::fs::create_dir_all(b.join("logs/default")).unwrap();
    for (l, target) in &links {
        std::os::unix::fs::symlink(target, b.join(l)).unwrap();
    }
    let r = trace_rbac(d.path(), Path::new("bundle"));
    let v = assert_rbac_verdict(&r);
    let notes = v["notes"].to_string();
    for (l, _) in &links {
        assert!(
            notes.contains(&format!("{l}: symlink not followed")),
            "{l}: {notes}"
        );
    }
}

#[test]
fn gzip_compressed_log_is_read() {
    let d = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{RBAC_LINE}\n{CONNECT_LINE}\n").as_bytes())
        .unwrap();
    write(&d.path().join("proxy.log.gz"), &gz.finish().unwrap());
    let r = meshtrace(d.path(), &["explain", "proxy.log.gz", "-o", "json"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let v = r.json();
    assert_eq!(request(&v, RBAC_ID)["cause"], "rbac_denied");
    assert_eq!(request(&v, CONNECT_ID)["cause"], "upstream_connect_failure");
    let r = meshtrace(d.path(), &["trace", RBAC_ID, "proxy.log.gz"]);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
}
