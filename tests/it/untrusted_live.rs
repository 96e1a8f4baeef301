//! Untrusted cluster: every API call and log stream bounded in time and bytes; temporary bundles private and removed.
//!
//! Against the fake API server: a server that stalls after `/version`, in the middle of a list or
//! in a log stream, the collection deadline, an endless list body (cut at its cap, in bounded
//! memory); a live `trace` or `collect --archive` interrupted by SIGINT/SIGTERM leaves nothing
//! behind, and what it writes is private (folders 0700, files 0600); every call meshtrace makes
//! is allowed by the read-only roles of `docs/rbac.yaml`, config dumps only by the opt-in roles of
//! `deploy/rbac/`, checked by a fake that enforces those roles.

use crate::common;
use crate::fake_apiserver;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fake_apiserver::rbac::Rbac;
use fake_apiserver::{Call, FakeApiServer, FakeConfig, Stall};

const ID: &str = "4791d0d3-e742-4eac-8c56-4c87eb22f1a9";
const VERDICT: &str = "Verdict: 400 app_error at hop 5";
const GATEWAY: &str = "istio-ingressgateway-64694db8d5-zmcc7";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rhoai() -> PathBuf {
    root().join("testdata/bundles/rhoai-400-app-error")
}

/// meshtrace against `fake`, with its own fresh `TMPDIR`.
fn command(fake: &FakeApiServer, tmpdir: &Path, args: &[&str]) -> Command {
    let mut c = common::meshtrace();
    c.args(args)
        .arg("--kubeconfig")
        .arg(fake.kubeconfig())
        .env_remove("KUBECONFIG")
        .env("HOME", "/nonexistent-meshtrace-test")
        .env("TMPDIR", tmpdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The peak memory of a running process (kB), from `/proc`.
fn peak_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run to the end within `limit` (the child is killed and the test fails past it); the output,
/// the time taken and the peak memory seen (kB).
fn run_bounded(mut c: Command, limit: Duration) -> (Output, Duration, u64) {
    let start = Instant::now();
    let mut child = c.spawn().expect("run meshtrace");
    let mut peak = 0;
    loop {
        if let Some(kb) = peak_kb(child.id()) {
            peak = peak.max(kb);
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().expect("output");
            panic!(
                "meshtrace still running after {limit:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    (child.wait_with_output().expect("output"), took, peak)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `meshtrace-*` entries left in a temporary folder.
fn leftovers(tmpdir: &Path) -> Vec<String> {
    std::fs::read_dir(tmpdir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("meshtrace-"))
                .collect()
        })
        .unwrap_or_default()
}

fn stall_gateway_log() -> Stall {
    Stall::Log {
        namespace: "istio-system".into(),
        pod: GATEWAY.into(),
    }
}

#[test]
fn api_server_that_stalls_after_version_is_one_sentence_in_bounded_time() {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            stall: vec![Stall::AfterVersion],
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let c = command(
        &fake,
        tmp.path(),
        &["trace", ID, "-n", "aiproject", "--request-timeout", "1s"],
    );
    let (o, took, _) = run_bounded(c, Duration::from_secs(30));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(
        err.contains("the API server did not answer `GET /api/v1/pods?limit=500` within 1s"),
        "{err}"
    );
    assert!(
        err.contains("raise --request-timeout or check the API server"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

#[test]
fn list_that_stalls_mid_body_is_named_and_the_rest_is_collected() {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            stall: vec![Stall::MidList("endpoints".into())],
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    let c = command(
        &fake,
        tmp.path(),
        &[
            "collect",
            "-n",
            "aiproject",
            "--no-config-dump",
            "--request-timeout",
            "1",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let (o, took, _) = run_bounded(c, Duration::from_secs(30));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    let sentence = "the API server did not answer `GET /api/v1/endpoints?limit=500` within 1s; the endpoints listed until then are kept; raise --request-timeout or check the API server";
    assert!(err.contains(sentence), "{err}");
    // Everything else is there: pods, the other objects, the logs.
    let b = meshtrace::source::bundle::Bundle::open(&out).unwrap();
    assert!(b.objects.iter().any(|o| o.kind == "VirtualService"));
    assert!(b.objects.iter().any(|o| o.kind == "Service"));
    // The 4 proxies' logs, and by role queue-proxy's and the activator's own.
    assert_eq!(
        b.logs.len(),
        6,
        "{:?}",
        b.logs.iter().map(|l| &l.pod).collect::<Vec<_>>()
    );
    let manifest = std::fs::read_to_string(out.join("meshtrace-bundle.json")).unwrap();
    assert!(manifest.contains("GET /api/v1/endpoints?limit=500"));
}

#[test]
fn stalled_log_stream_is_cut_and_what_was_read_is_analysed() {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            stall: vec![stall_gateway_log()],
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let c = command(
        &fake,
        tmp.path(),
        &["trace", ID, "-n", "aiproject", "--request-timeout", "1s"],
    );
    let (o, took, _) = run_bounded(c, Duration::from_secs(30));
    let err = stderr(&o);
    assert!(took < Duration::from_secs(15), "{took:?}");
    // The gateway's log was sent whole before the stream went silent: same verdict as offline.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(stdout(&o).contains(VERDICT), "{}\n{err}", stdout(&o));
    assert!(
        err.contains(&format!(
            "the API server sent nothing for 1s on `GET /api/v1/namespaces/istio-system/pods/{GATEWAY}/log?container=istio-proxy`"
        )),
        "{err}"
    );
    assert!(
        err.contains("read of the istio-proxy log of pod istio-system/"),
        "{err}"
    );
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn deadline_stops_collection_and_keeps_what_was_collected() {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            stall: vec![stall_gateway_log()],
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    // No per-call timeout: only the deadline ends the silent stream.
    let c = command(
        &fake,
        tmp.path(),
        &[
            "collect",
            "-n",
            "aiproject",
            "--no-config-dump",
            "--request-timeout",
            "0",
            "--deadline",
            "3s",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let (o, took, _) = run_bounded(c, Duration::from_secs(30));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(took < Duration::from_secs(12), "{took:?}");
    assert!(
        err.contains(
            "the collection deadline (3s) passed during `GET /api/v1/namespaces/istio-system/pods/"
        ),
        "{err}"
    );
    assert!(
        err.contains("raise --deadline, or narrow with -n, --pod or --since"),
        "{err}"
    );
    // Every log is there, the gateway's as far as it was sent.
    let b = meshtrace::source::bundle::Bundle::open(&out).unwrap();
    // The 4 proxies' logs, and by role queue-proxy's and the activator's own.
    assert_eq!(b.logs.len(), 6);
    assert!(b.logs.iter().any(|l| l.pod == GATEWAY));
    assert!(out.join("meshtrace-bundle.json").exists());
}

#[test]
fn endless_list_body_is_cut_at_its_cap_in_bounded_memory() {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            endless_list: Some("endpoints".into()),
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    let c = command(
        &fake,
        tmp.path(),
        &[
            "collect",
            "-n",
            "aiproject",
            "--no-config-dump",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let (o, took, peak) = run_bounded(c, Duration::from_secs(60));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("the answer to `GET /api/v1/endpoints?limit=500` is larger than 32 MiB and was not read further; the endpoints listed until then are kept; narrow with -n, --pod or -l"),
        "{err}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(peak < 128 * 1024, "peak memory {peak} kB");
    let b = meshtrace::source::bundle::Bundle::open(&out).unwrap();
    // The 4 proxies' logs, and by role queue-proxy's and the activator's own.
    assert_eq!(b.logs.len(), 6);
}

/// Folders and files under `dir` that others could read.
fn not_private(dir: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).unwrap().permissions().mode() & 0o777;
        if m != 0o700 {
            bad.push(format!("{} {m:o}", d.display()));
        }
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let m = e.metadata().unwrap().permissions().mode() & 0o777;
                if m != 0o600 {
                    bad.push(format!("{} {m:o}", e.path().display()));
                }
            }
        }
    }
    bad
}

/// Start a live run that will stall on the gateway's log, wait until its temporary bundle holds
/// `pods.json`, and return the child and that bundle.
fn start_stalled(fake: &FakeApiServer, tmpdir: &Path, args: &[&str]) -> (Child, PathBuf) {
    let mut child = command(fake, tmpdir, args).spawn().expect("spawn");
    let start = Instant::now();
    loop {
        let found = std::fs::read_dir(tmpdir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| {
                e.file_name().to_string_lossy().starts_with("meshtrace-")
                    && e.path().join("pods.json").exists()
            });
        if let Some(e) = found {
            // Let the other logs land.
            std::thread::sleep(Duration::from_millis(500));
            return (child, e.path());
        }
        if start.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("no temporary bundle appeared: {}", stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

fn wait_exit(mut child: Child, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("meshtrace did not exit within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

#[test]
fn interrupted_live_trace_leaves_no_temporary_bundle_and_it_was_private() {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            stall: vec![stall_gateway_log()],
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let (child, bundle) = start_stalled(
        &fake,
        tmp.path(),
        &["trace", ID, "-n", "aiproject", "--request-timeout", "0"],
    );
    // During the run: the bundle (pods with their environment values) is private.
    assert!(
        bundle
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("meshtrace-live-")
    );
    assert!(
        bundle.join("logs").exists(),
        "logs written before the signal"
    );
    assert_eq!(not_private(&bundle), Vec::<String>::new());
    signal(&child, "-INT");
    let (o, took) = wait_exit(child, Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

#[test]
fn terminated_collect_archive_leaves_no_temporary_bundle_nor_half_archive() {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            stall: vec![stall_gateway_log()],
            ..FakeConfig::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("bundle.tar.gz");
    let (child, bundle) = start_stalled(
        &fake,
        tmp.path(),
        &[
            "collect",
            "-n",
            "aiproject",
            "--no-config-dump",
            "--request-timeout",
            "0",
            "--archive",
            archive.to_str().unwrap(),
        ],
    );
    assert!(
        bundle
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("meshtrace-collect-")
    );
    assert_eq!(not_private(&bundle), Vec::<String>::new());
    signal(&child, "-TERM");
    let (o, _) = wait_exit(child, Duration::from_secs(5));
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
    assert!(!archive.exists());
}

#[test]
fn collected_bundle_and_archive_are_private() {
    let fake = FakeApiServer::start(&rhoai(), FakeConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    let (o, _, _) = run_bounded(
        command(
            &fake,
            tmp.path(),
            &["collect", "-n", "aiproject", "-o", out.to_str().unwrap()],
        ),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("config_dump").exists());
    assert_eq!(not_private(&out), Vec::<String>::new());
    let archive = tmp.path().join("b.tar.gz");
    let (o, _, _) = run_bounded(
        command(
            &fake,
            tmp.path(),
            &[
                "collect",
                "-n",
                "aiproject",
                "--archive",
                archive.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

/// `docs/rbac.yaml`, plus the opt-in files of `deploy/rbac/` named.
fn rbac_text(opt_in: &[&str]) -> String {
    let mut text = std::fs::read_to_string(root().join("docs/rbac.yaml")).unwrap();
    for f in opt_in {
        text.push_str("\n---\n");
        text.push_str(
            &std::fs::read_to_string(root().join(format!("deploy/rbac/{f}.yaml"))).unwrap(),
        );
    }
    text
}

fn call(verb: &str, resource: &str, sub: &str, ns: Option<&str>) -> Call {
    Call {
        verb: verb.into(),
        group: String::new(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.map(str::to_string),
    }
}

/// Run `args` against a fake enforcing `rbac`; every call it made must be allowed.
fn run_under(
    rbac: &Rbac,
    cfg: FakeConfig,
    args: &[&str],
) -> (Output, Vec<Call>, tempfile::TempDir) {
    let fake = FakeApiServer::start(
        &rhoai(),
        FakeConfig {
            rbac: Some(rbac.clone()),
            ..cfg
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for a in &mut args {
        if a == "OUT" {
            *a = tmp.path().join("b").display().to_string();
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (o, _, _) = run_bounded(command(&fake, tmp.path(), &refs), Duration::from_secs(60));
    (o, fake.calls(), tmp)
}

#[test]
fn read_only_roles_allow_every_call_of_a_live_trace_and_collect() {
    let read_only = Rbac::from_yaml(&rbac_text(&[]), |_| true);
    // Nothing in the read-only set runs anything in a pod or opens a port, in any namespace.
    for ns in [
        None,
        Some("aiproject"),
        Some("istio-system"),
        Some("knative-serving"),
    ] {
        for sub in ["exec", "portforward"] {
            for verb in ["create", "get"] {
                assert!(
                    !read_only.allows(&call(verb, "pods", sub, ns)),
                    "{verb} pods/{sub} {ns:?}"
                );
            }
        }
    }
    // Logs and ConfigMaps only in the namespaces bound.
    assert!(!read_only.allows(&call("get", "pods", "log", Some("kube-system"))));
    assert!(!read_only.allows(&call("get", "pods", "log", None)));
    assert!(!read_only.allows(&call("list", "configmaps", "", Some("aiproject"))));
    assert!(!read_only.allows(&call("list", "events", "", None)));

    let (o, calls, _t) = run_under(
        &read_only,
        FakeConfig::default(),
        &["trace", ID, "-n", "aiproject", "--no-config-dump"],
    );
    let err = stderr(&o);
    assert!(!err.contains("forbidden"), "{err}");
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(stdout(&o).contains(VERDICT), "{}", stdout(&o));
    let (o, calls2, _t2) = run_under(
        &read_only,
        FakeConfig::default(),
        &[
            "collect",
            "-n",
            "aiproject",
            "--no-config-dump",
            "-o",
            "OUT",
        ],
    );
    assert!(
        o.status.success() && !stderr(&o).contains("forbidden"),
        "{}",
        stderr(&o)
    );
    for c in calls.iter().chain(&calls2) {
        assert!(read_only.allows(c), "not allowed by docs/rbac.yaml: {c:?}");
    }
    // What was read: logs in three namespaces, MeshConfig and Knative ConfigMaps, events.
    let kinds: std::collections::BTreeSet<(String, Option<String>)> = calls
        .iter()
        .filter(|c| {
            matches!(
                c.rbac_resource().as_str(),
                "pods/log" | "configmaps" | "events"
            )
        })
        .map(|c| (c.rbac_resource(), c.namespace.clone()))
        .collect();
    for want in [
        ("pods/log", "aiproject"),
        ("pods/log", "istio-system"),
        ("pods/log", "knative-serving"),
        ("configmaps", "istio-system"),
        ("configmaps", "knative-serving"),
        ("events", "aiproject"),
    ] {
        assert!(
            kinds.contains(&(want.0.to_string(), Some(want.1.to_string()))),
            "{want:?} in {kinds:?}"
        );
    }
}

#[test]
fn config_dumps_are_allowed_by_the_opt_in_roles_only() {
    let read_only = Rbac::from_yaml(&rbac_text(&[]), |_| true);
    let with_dumps = Rbac::from_yaml(&rbac_text(&["config-dump"]), |_| true);
    let (o, calls, t) = run_under(
        &with_dumps,
        FakeConfig::default(),
        &["collect", "-n", "aiproject", "-o", "OUT"],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // The one pod whose proxy does not answer on 15000 (no dump in the example) falls back to
    // exec, which this set does not allow: the only 403.
    let forbidden: Vec<&str> = err.lines().filter(|l| l.contains("forbidden")).collect();
    assert_eq!(forbidden.len(), 1, "{err}");
    assert!(
        forbidden[0].contains("may not create pods/exec in namespace aiproject"),
        "{err}"
    );
    let b = meshtrace::source::bundle::Bundle::open(&t.path().join("b")).unwrap();
    assert_eq!(b.config_dumps.len(), 3, "{err}");
    let mut port_forwards = 0;
    for c in calls.iter().filter(|c| !read_only.allows(c)) {
        match c.rbac_resource().as_str() {
            "pods/portforward" => {
                assert_eq!(
                    with_dumps.role_for(c),
                    Some("meshtrace-config-dump"),
                    "{c:?}"
                );
                port_forwards += 1;
            }
            "pods/exec" => assert!(!with_dumps.allows(c), "{c:?}"),
            _ => panic!("a read-only call the read-only roles do not allow: {c:?}"),
        }
    }
    assert_eq!(port_forwards, 4, "one port-forward per proxy");

    // Where port-forward fails, exec — allowed only where its role is bound (the model's
    // namespace): elsewhere one sentence per namespace.
    let with_exec = Rbac::from_yaml(&rbac_text(&["config-dump", "config-dump-exec"]), |_| true);
    let (o, calls, t) = run_under(
        &with_exec,
        FakeConfig {
            portforward_refused: true,
            ..FakeConfig::default()
        },
        &["collect", "-n", "aiproject", "-o", "OUT"],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("forbidden: you may not create pods/exec in namespace istio-system"),
        "{err}"
    );
    assert!(!err.contains("pods/exec in namespace aiproject"), "{err}");
    let b = meshtrace::source::bundle::Bundle::open(&t.path().join("b")).unwrap();
    assert!(b.config_dumps.iter().all(|d| d.namespace == "aiproject"));
    assert!(!b.config_dumps.is_empty());
    assert!(
        calls.iter().any(|c| c.subresource == "exec"
            && with_exec.role_for(c) == Some("meshtrace-config-dump-exec"))
    );
}

#[test]
fn namespace_bindings_alone_still_trace_and_all_namespaces_is_read_only() {
    // Without the cluster-wide reader: one sentence per cluster-wide list, then namespace by
    // namespace, and the same verdict.
    let ns_only = Rbac::from_yaml(&rbac_text(&[]), |role| role != "meshtrace-cluster-reader");
    let (o, calls, _t) = run_under(
        &ns_only,
        FakeConfig::default(),
        &["trace", ID, "-n", "aiproject", "--no-config-dump"],
    );
    let err = stderr(&o);
    assert!(err.contains("may not list pods cluster-wide"), "{err}");
    assert!(stdout(&o).contains(VERDICT), "{}\n{err}", stdout(&o));
    for c in calls.iter().filter(|c| c.namespace.is_some()) {
        assert!(ns_only.allows(c), "{c:?}");
    }

    // -A with the all-namespaces binding: nothing forbidden, still no exec or port-forward.
    let all = Rbac::from_yaml(&rbac_text(&["all-namespaces"]), |_| true);
    let (o, calls, _t) = run_under(
        &all,
        FakeConfig::default(),
        &["collect", "-A", "--no-config-dump", "-o", "OUT"],
    );
    assert!(
        o.status.success() && !stderr(&o).contains("forbidden"),
        "{}",
        stderr(&o)
    );
    assert!(calls.iter().all(|c| all.allows(c)));
    assert!(!all.allows(&call("create", "pods", "exec", Some("aiproject"))));
}
