//! Shipping: static binary, container image definition, in-cluster manifests, must-gather mode, krew manifest.
//!
//! - `meshtrace gather` against the fake API server writes the layout `oc adm must-gather`
//!   copies back (`version`, `timestamp`, the bundle in `meshtrace/`), honours
//!   `MUST_GATHER_SINCE`, masks environment values, runs when started as `gather`, and the
//!   bundle reads back with the same failures as the evidence it came from.
//! - `deploy/`: every manifest (as written and as `kubectl kustomize` builds it, with and
//!   without the config-dump component) round-trips through the Kubernetes API types
//!   (k8s-openapi) without losing a field, and the Job meets Pod Security "restricted".
//! - `scripts/release.sh` packages kubectl-meshtrace with LICENSE and fills the krew manifest
//!   with the archive's SHA-256 (checked here with an independent SHA-256).
//! - The repository is self-contained: no file the tests, builds or CI use names a path outside
//!   the repository.

use crate::common;
use crate::fake_apiserver::{FakeApiServer, FakeConfig};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// must-gather

/// A copy of an example bundle whose model pod carries environment values (a storage key, as
/// KServe's storage-initializer gets from a Secret when written inline) and a `valueFrom`.
fn bundle_with_env(dst: &Path) {
    let src = root().join("testdata/bundles/rhoai-400-app-error");
    common::copy_dir(&src, dst);
    let p = dst.join("pods.json");
    let mut pods: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let items = pods
        .get_mut("items")
        .and_then(Value::as_array_mut)
        .expect("pods.json is a List");
    let pod = items
        .iter_mut()
        .find(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("test-predictor-"))
        })
        .expect("predictor pod");
    let c = pod
        .pointer_mut("/spec/containers/0")
        .and_then(Value::as_object_mut)
        .unwrap();
    c.insert(
        "env".into(),
        serde_json::json!([
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"},
            {"name": "STORAGE_CONFIG", "valueFrom": {"secretKeyRef": {"name": "storage-config", "key": "s3"}}}
        ]),
    );
    std::fs::write(&p, serde_json::to_string_pretty(&pods).unwrap()).unwrap();
}

fn failures_json(bundle: &Path) -> Value {
    let o = common::meshtrace()
        .args(["failures", "-o", "json", "--bundle"])
        .arg(bundle)
        .output()
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "failures on {}: {}",
        bundle.display(),
        text(&o)
    );
    let s = String::from_utf8(o.stdout)
        .unwrap()
        .replace(&bundle.display().to_string(), "<bundle>");
    serde_json::from_str(&s).unwrap()
}

#[test]
fn gather_writes_the_must_gather_layout_and_reads_back_as_a_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    bundle_with_env(&src);
    let fake = FakeApiServer::start(&src, FakeConfig::default());
    let dest = tmp.path().join("must-gather");
    let o = common::meshtrace()
        .args(["gather", "-n", "aiproject", "--kubeconfig"])
        .arg(fake.kubeconfig())
        .arg("--dest-dir")
        .arg(&dest)
        // `oc adm must-gather --since-time …`: before the example's logs, so they are all kept.
        .env("MUST_GATHER_SINCE_TIME", "2024-06-03T09:00:00Z")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // version: product, then version (the must-gather image contract).
    let version = std::fs::read_to_string(dest.join("version")).unwrap();
    let lines: Vec<&str> = version.lines().collect();
    assert_eq!(lines, ["meshtrace", env!("CARGO_PKG_VERSION")]);
    // timestamp: start and end, in order.
    let ts = std::fs::read_to_string(dest.join("timestamp")).unwrap();
    let times: Vec<jiff::Timestamp> = ts.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(times.len(), 2, "{ts}");
    assert!(times[0] <= times[1]);
    assert!(dest.join("README.txt").is_file());
    let bundle = dest.join("meshtrace");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(bundle.join("meshtrace-bundle.json")).unwrap(),
    )
    .unwrap();
    assert!(
        manifest["collector"]
            .as_str()
            .unwrap()
            .contains("must-gather"),
        "{manifest}"
    );
    // Nothing else at the top: what oc adm must-gather copies is exactly this.
    let mut top: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["README.txt", "meshtrace", "timestamp", "version"]);

    // MUST_GATHER_SINCE_TIME reached the log calls.
    let logs: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("/log?"))
        .collect();
    assert!(!logs.is_empty());
    for r in &logs {
        assert!(r.contains("sinceTime=2024-06-03T09%3A00%3A00Z"), "{r}");
    }

    // The inline secret is masked, the Secret reference kept.
    let pods = std::fs::read_to_string(bundle.join("pods.json")).unwrap();
    assert!(!pods.contains("wJalrXUtnFEMI"), "secret value gathered");
    assert!(pods.contains(meshtrace::commands::gather::MASKED));
    assert!(pods.contains("storage-config"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 environment value(s)"));

    // It reads back as a bundle, with the same failures as the evidence it came from.
    assert_eq!(failures_json(&bundle), failures_json(&src));
}

#[test]
fn started_as_gather_without_arguments_it_gathers_every_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("testdata/bundles/kind-rbac-403");
    let fake = FakeApiServer::start(&src, FakeConfig::default());
    let gather = tmp.path().join("gather");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_meshtrace"), &gather).unwrap();
    let dest = tmp.path().join("must-gather");
    // `oc adm must-gather` runs `/usr/bin/gather` with no arguments; the kubeconfig here
    // stands in for the pod's service account, the destination for /must-gather.
    let mut cmd = Command::new(&gather);
    cmd.env_clear()
        .env("KUBECONFIG", fake.kubeconfig())
        .env("HOME", "/nonexistent-meshtrace-test")
        .arg("--dest-dir")
        .arg(&dest)
        .arg("--no-config-dump")
        // `oc adm must-gather --since 90m` as oc passes it (a Go duration).
        .env("MUST_GATHER_SINCE", "1h30m0s");
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(dest.join("meshtrace/pods.json").is_file());
    let reqs = fake.requests();
    let logs: Vec<&String> = reqs.iter().filter(|r| r.contains("/log?")).collect();
    assert!(!logs.is_empty());
    for r in logs {
        assert!(r.contains("sinceSeconds=5400"), "{r}");
    }
    assert!(
        reqs.iter().any(|r| r.starts_with("GET /api/v1/pods?")),
        "not cluster-wide: {reqs:?}"
    );
    // A second run into the same volume refuses to mix two gatherings.
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exists and is not empty"),
        "{}",
        text(&o)
    );
}

#[test]
fn gather_names_a_bad_must_gather_since() {
    let tmp = tempfile::tempdir().unwrap();
    let o = common::meshtrace()
        .args(["gather", "-n", "x", "--dest-dir"])
        .arg(tmp.path())
        .env("MUST_GATHER_SINCE", "two hours")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("MUST_GATHER_SINCE") && err.contains("not a duration"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// deploy/

/// Every YAML document of a stream, as JSON values (documents that are only comments skipped).
fn documents(yaml: &str, what: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    let mut v = Vec::new();
    for d in serde_yaml_ng::Deserializer::from_str(yaml) {
        let doc = Value::deserialize(d).unwrap_or_else(|e| panic!("{what}: {e}"));
        if !doc.is_null() {
            v.push(doc);
        }
    }
    v
}

/// The first difference between what was written and what the typed object keeps: a field the
/// API does not have (misspelt, misplaced) is dropped by the typed round trip.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    None => return Some(format!("{p} is not a field of this kind")),
                    Some(vb) => {
                        if let Some(d) = first_difference(&p, va, vb) {
                            return Some(d);
                        }
                    }
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb)),
        _ if a == b => None,
        // Numbers written as strings where the API has an int-or-string, and the like.
        _ if a.to_string().trim_matches('"') == b.to_string().trim_matches('"') => None,
        _ => Some(format!("{path}: wrote {a}, the API type holds {b}")),
    }
}

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value, what: &str) {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{what}: not a valid object of its kind: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Some(d) = first_difference("", doc, &back) {
        panic!("{what}: {d}");
    }
}

/// Schema check of one object by its kind; a kind deploy/ should not hold fails.
fn check_schema(doc: &Value, what: &str) {
    use k8s_openapi::api::{batch::v1 as batch, core::v1 as core, rbac::v1 as rbac};
    let kind = doc["kind"].as_str().unwrap_or_default();
    let what = format!("{what} ({kind} {})", doc["metadata"]["name"]);
    match (doc["apiVersion"].as_str().unwrap_or_default(), kind) {
        ("v1", "Namespace") => roundtrip::<core::Namespace>(doc, &what),
        ("v1", "ServiceAccount") => roundtrip::<core::ServiceAccount>(doc, &what),
        ("v1", "PersistentVolumeClaim") => roundtrip::<core::PersistentVolumeClaim>(doc, &what),
        ("batch/v1", "Job") => roundtrip::<batch::Job>(doc, &what),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            roundtrip::<rbac::ClusterRole>(doc, &what)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            roundtrip::<rbac::ClusterRoleBinding>(doc, &what)
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            roundtrip::<rbac::RoleBinding>(doc, &what)
        }
        (v, k) => panic!("{what}: unexpected {v} {k} in deploy/"),
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml")
            && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        {
            out.push(p);
        }
    }
}

#[test]
fn every_manifest_in_deploy_is_a_valid_kubernetes_object() {
    let mut files = Vec::new();
    yaml_files(&root().join("deploy"), &mut files);
    assert!(files.len() >= 7, "{files:?}");
    let mut n = 0;
    for f in files {
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        for doc in documents(&std::fs::read_to_string(&f).unwrap(), &rel) {
            check_schema(&doc, &rel);
            n += 1;
        }
    }
    assert!(n >= 20, "{n} objects");
}

/// `kubectl kustomize <dir>` (kubectl is installed in CI: `.ci/run`).
fn kustomize(dir: &Path) -> Option<Vec<Value>> {
    let o = match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("MESHTRACE_REQUIRE_KUBECTL").is_none(),
                "kubectl is missing; .ci/run installs it (Debian package kubectl)"
            );
            return None;
        }
        Err(e) => panic!("kubectl: {e}"),
    };
    assert!(
        o.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        text(&o)
    );
    Some(documents(
        &String::from_utf8(o.stdout).unwrap(),
        "kustomize output",
    ))
}

/// A kustomize overlay outside deploy/ that adds the opt-in config-dump component, as a user
/// would write it.
fn config_dump_overlay(tmp: &Path) -> PathBuf {
    let dir = tmp.join("overlay");
    std::fs::create_dir_all(&dir).unwrap();
    let deploy = root().join("deploy");
    // kustomize takes relative paths only.
    let rel = pathdiff(&dir, &deploy);
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!("resources:\n- {rel}\ncomponents:\n- {rel}/config-dump\n"),
    )
    .unwrap();
    dir
}

/// `to` relative to `from` (both absolute).
fn pathdiff(from: &Path, to: &Path) -> String {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

fn by_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// What the Job must hold to run under Pod Security "restricted" with bounded resources.
fn check_job(job: &Value) {
    let spec = &job["spec"];
    assert!(spec["backoffLimit"].as_i64().is_some(), "backoffLimit");
    assert!(
        spec["ttlSecondsAfterFinished"].as_i64().is_some(),
        "ttlSecondsAfterFinished"
    );
    assert!(spec["activeDeadlineSeconds"].as_i64().is_some());
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "meshtrace");
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        spec["template"]["metadata"]["labels"]["sidecar.istio.io/inject"],
        "false"
    );
    let mut containers = pod["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    containers.extend(pod["containers"].as_array().cloned().unwrap());
    assert_eq!(containers.len(), 2);
    for c in &containers {
        let name = &c["name"];
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{name}"
        );
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        for k in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(c["resources"][k][r].is_string(), "{name}: {k}.{r}");
            }
        }
        // Writes go to volumes only (the root filesystem is read-only).
        let mounts: Vec<&str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        assert!(mounts.contains(&"/tmp"), "{name}: {mounts:?}");
    }
    // The collector writes into the volume the report reads.
    let collect = &containers[0]["args"];
    assert!(collect[0] == "collect", "{collect}");
    assert!(
        collect
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--output=/bundle/evidence")
    );
    assert!(
        containers[1]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--bundle=/bundle/evidence")
    );
}

/// Every binding names the Job's ServiceAccount and a ClusterRole the output defines; no role
/// grants more than reads, except `create` on pods/portforward in the config-dump component.
fn check_rbac(docs: &[Value], config_dump: bool) {
    let roles: Vec<&str> = by_kind(docs, "ClusterRole")
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles.contains(&"meshtrace-config-dump"), config_dump);
    let mut bindings = by_kind(docs, "RoleBinding");
    bindings.extend(by_kind(docs, "ClusterRoleBinding"));
    assert!(bindings.len() >= 6);
    for b in bindings {
        assert_eq!(
            b["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "meshtrace", "namespace": "meshtrace"}]),
            "{}",
            b["metadata"]["name"]
        );
        let role = b["roleRef"]["name"].as_str().unwrap();
        assert!(roles.contains(&role), "{role} is not defined");
    }
    for r in by_kind(docs, "ClusterRole") {
        for rule in r["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                let v = verb.as_str().unwrap();
                let portforward = rule["resources"] == serde_json::json!(["pods/portforward"]);
                assert!(
                    v == "get" || v == "list" || (portforward && v == "create"),
                    "{}: verb {v} on {}",
                    r["metadata"]["name"],
                    rule["resources"]
                );
            }
        }
    }
}

#[test]
fn kustomize_builds_the_job_with_read_only_rbac_and_the_opt_in_component() {
    let Some(base) = kustomize(&root().join("deploy")) else {
        return;
    };
    for d in &base {
        check_schema(d, "kubectl kustomize deploy/");
    }
    let jobs = by_kind(&base, "Job");
    assert_eq!(jobs.len(), 1);
    check_job(jobs[0]);
    let collect = &jobs[0]["spec"]["template"]["spec"]["initContainers"][0]["args"];
    assert!(
        collect
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--no-config-dump"),
        "without the opt-in role, collect must not ask for config dumps: {collect}"
    );
    assert!(
        jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/meshtrace:{}", env!("CARGO_PKG_VERSION")))
    );
    check_rbac(&base, false);
    // The read-only roles are the ones of deploy/rbac/read-only.yaml (one source).
    let source = documents(
        &std::fs::read_to_string(root().join("deploy/rbac/read-only.yaml")).unwrap(),
        "read-only.yaml",
    );
    for r in by_kind(&source, "ClusterRole") {
        assert!(base.contains(r), "{} differs", r["metadata"]["name"]);
    }
    assert_eq!(
        std::fs::read_to_string(root().join("docs/rbac.yaml")).unwrap(),
        std::fs::read_to_string(root().join("deploy/rbac/read-only.yaml")).unwrap()
    );

    let tmp = tempfile::tempdir().unwrap();
    let with = kustomize(&config_dump_overlay(tmp.path())).unwrap();
    for d in &with {
        check_schema(d, "deploy/ + config-dump component");
    }
    let jobs = by_kind(&with, "Job");
    check_job(jobs[0]);
    let collect = &jobs[0]["spec"]["template"]["spec"]["initContainers"][0]["args"];
    assert!(
        !collect
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--no-config-dump"),
        "{collect}"
    );
    check_rbac(&with, true);
    assert_eq!(with.len(), base.len() + 4);
}

// ---------------------------------------------------------------------------------------------
// krew

/// SHA-256 (FIPS 180-4), independent of the `sha256sum` the release script uses.
fn sha256(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_matches_the_standard_vectors() {
    assert_eq!(
        sha256(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256(&[b'a'; 1000]),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
}

#[test]
fn release_script_packages_kubectl_meshtrace_and_fills_the_krew_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dist");
    // The packaging does not depend on what the binary is: a small stand-in keeps the test
    // fast (the debug build is hundreds of MB). CI runs the script on the static release
    // binary and checks its checksums (`.ci/run`).
    let bin = tmp.path().join("built").join("kubectl-meshtrace");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let mut payload = b"#!/bin/sh\necho 'meshtrace stand-in'\n".to_vec();
    payload.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    std::fs::write(&bin, &payload).unwrap();
    let bin = bin.as_path();
    let o = Command::new("bash")
        .arg(root().join("scripts/release.sh"))
        .env("OUT", &out)
        .env("URL_BASE", "https://downloads.example.com/meshtrace/v0/")
        .env("HOMEPAGE", "https://example.com/meshtrace")
        .env("BIN_linux_amd64", bin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v = env!("CARGO_PKG_VERSION");
    let archive = out.join(format!("meshtrace_{v}_linux_amd64.tar.gz"));
    let bytes = std::fs::read(&archive).unwrap();

    // The archive: kubectl-meshtrace (executable, the binary given) and LICENSE, nothing else.
    let mut entries = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mode = e.header().mode().unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        entries.push((name, mode, data));
    }
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["LICENSE", "kubectl-meshtrace"]);
    assert_eq!(entries[1].1 & 0o111, 0o111);
    assert!(entries[1].2 == std::fs::read(bin).unwrap());
    assert!(entries[0].2 == std::fs::read(root().join("LICENSE")).unwrap());

    // The filled manifest: krew's Plugin, one platform (the only binary given), the archive's
    // SHA-256 and URI; no placeholder left.
    let text_m = std::fs::read_to_string(out.join("meshtrace.yaml")).unwrap();
    assert!(!text_m.contains("{{"), "{text_m}");
    let m = &documents(&text_m, "meshtrace.yaml")[0];
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(m["kind"], "Plugin");
    assert_eq!(m["metadata"]["name"], "meshtrace");
    assert_eq!(m["spec"]["version"], format!("v{v}"));
    assert_eq!(m["spec"]["homepage"], "https://example.com/meshtrace");
    let platforms = m["spec"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 1);
    let p = &platforms[0];
    assert_eq!(
        p["selector"]["matchLabels"],
        serde_json::json!({"os": "linux", "arch": "amd64"})
    );
    assert_eq!(p["bin"], "kubectl-meshtrace");
    assert_eq!(
        p["uri"],
        format!("https://downloads.example.com/meshtrace/v0/meshtrace_{v}_linux_amd64.tar.gz")
    );
    let sum = p["sha256"].as_str().unwrap();
    assert!(
        sum.len() == 64
            && sum
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{sum}"
    );
    assert_eq!(sum, sha256(&bytes));
    let side =
        std::fs::read_to_string(out.join(format!("meshtrace_{v}_linux_amd64.tar.gz.sha256")))
            .unwrap();
    assert_eq!(side, format!("{sum}  meshtrace_{v}_linux_amd64.tar.gz\n"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no binary for darwin/arm64"));

    // Reproducible: the same inputs give the same archive.
    let o = Command::new("bash")
        .arg(root().join("scripts/release.sh"))
        .env("OUT", tmp.path().join("again"))
        .env("URL_BASE", "https://downloads.example.com/meshtrace/v0")
        .env("HOMEPAGE", "https://example.com/meshtrace")
        .env("BIN_linux_amd64", bin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let again = std::fs::read(
        tmp.path()
            .join("again")
            .join(format!("meshtrace_{v}_linux_amd64.tar.gz")),
    )
    .unwrap();
    assert!(again == bytes, "the archive is not reproducible");
}

#[test]
fn the_krew_template_covers_linux_and_darwin_on_amd64_and_arm64() {
    let t = std::fs::read_to_string(root().join("plugins/meshtrace.yaml")).unwrap();
    let m = &documents(&t, "plugins/meshtrace.yaml")[0];
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    let mut seen: Vec<String> = m["spec"]["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let l = &p["selector"]["matchLabels"];
            assert_eq!(p["bin"], "kubectl-meshtrace");
            let key = format!(
                "{}_{}",
                l["os"].as_str().unwrap(),
                l["arch"].as_str().unwrap()
            );
            assert_eq!(p["sha256"], format!("{{{{SHA256_{key}}}}}"));
            assert!(
                p["uri"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("_{key}.tar.gz"))
            );
            key
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        ["darwin_amd64", "darwin_arm64", "linux_amd64", "linux_arm64"]
    );
}

// ---------------------------------------------------------------------------------------------
// Self-contained repository

/// Folders whose files the tests, builds and CI read or run.
const SCANNED: &[&str] = &[
    "tests", "parsers", "analysis", "src", "benches", "fuzz", "scripts", "lab", ".ci",
];

fn scan_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            // Build output and fuzzing's generated inputs are not sources.
            if !matches!(
                name.as_str(),
                "target" | "corpus" | "artifacts" | "__pycache__" | "node_modules"
            ) {
                scan_files(&p, out);
            }
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

/// The nearest folder holding a Cargo.toml (where cargo runs a crate's tests), else the root.
fn crate_dir(file: &Path, root: &Path) -> PathBuf {
    let mut d = file.parent();
    while let Some(x) = d {
        if x.join("Cargo.toml").is_file() || x == root {
            return x.to_path_buf();
        }
        d = x.parent();
    }
    root.to_path_buf()
}

/// Whether `../…` taken from `base` leaves `root`.
fn escapes(base: &Path, rel: &str, root: &Path) -> bool {
    let mut depth = base
        .strip_prefix(root)
        .map(|p| p.components().count() as i64)
        .unwrap_or(0);
    for part in rel.split('/') {
        match part {
            ".." => depth -= 1,
            "" | "." => {}
            _ => return false,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Every place in `text` that names a path outside the repository: a sibling checkout beside
/// the repository (the `shared` folder the tests once read), this machine's home or work folders, or a `../` chain that climbs out of the
/// repository from the file's folder, its crate's folder and the repository root alike.
fn escaping_paths(file: &Path, text: &str, root: &Path) -> Vec<String> {
    // Built from parts so that this file does not match itself.
    let abs = regex::Regex::new(&format!(
        r#"(^|[\s"'`=(:,\[])/({})/[A-Za-z0-9._-]"#,
        ["wo", "rk|ro", "ot|ho", "me|Us", "ers"].concat()
    ))
    .unwrap();
    let sibling = ["..", "/sha", "red"].concat();
    let up = regex::Regex::new(r"(?:^|[^A-Za-z0-9_.])((?:\.\./)+)").unwrap();
    let bases = [
        file.parent().unwrap().to_path_buf(),
        crate_dir(file, root),
        root.to_path_buf(),
    ];
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let why = if line.contains(&sibling) {
            Some(format!("names {sibling}"))
        } else if let Some(m) = abs.find(line) {
            Some(format!("absolute path {}", m.as_str().trim()))
        } else {
            up.captures_iter(line)
                .map(|c| c.get(1).unwrap().as_str())
                .find(|rel| bases.iter().all(|b| escapes(b, rel, root)))
                .map(|rel| format!("{rel} climbs out of the repository"))
        };
        if let Some(w) = why {
            found.push(format!(
                "{}:{}: {w}",
                file.strip_prefix(root).unwrap().display(),
                i + 1
            ));
        }
    }
    found
}

#[test]
fn nothing_reads_outside_the_repository() {
    let root = root();
    let mut files = Vec::new();
    for d in SCANNED {
        scan_files(&root.join(d), &mut files);
    }
    assert!(files.len() > 100, "{} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        // Text files only (fuzz seeds and archives are data).
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        if bytes.contains(&0) {
            continue;
        }
        found.extend(escaping_paths(f, &String::from_utf8_lossy(&bytes), &root));
    }
    assert!(
        found.is_empty(),
        "paths outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    let root = root();
    let f = root.join("tests/it/example.rs");
    let sib = ["..", "/sha", "red/peer/x.json"].concat();
    let home = ["/ro", "ot/.cargo/x"].concat();
    let work = ["/wo", "rk/main/testdata"].concat();
    let t = format!(
        "let a = \"{sib}\";\nok docs/root/configuration\nlet b = \"{home}\";\nlet c = Path::new(\"{work}\");\nlet d = \"{up3}peer\";\nlet e = \"../testdata\";\n",
        up3 = "../".repeat(3)
    );
    let found = escaping_paths(&f, &t, &root);
    let lines: Vec<&str> = found.iter().map(|s| s.split(':').nth(1).unwrap()).collect();
    assert_eq!(lines, ["1", "3", "4", "5"], "{found:?}");
    assert!(found[0].starts_with("tests/it/example.rs:1: names"));
    // parsers/src/detect/gate.rs includes testdata three folders up: inside the repository.
    let g = root.join("parsers/src/detect/gate.rs");
    let inside = format!("include_bytes!(\"{}testdata/x\")", "../".repeat(3));
    assert!(escaping_paths(&g, &inside, &root).is_empty());
    let outside = format!("include_bytes!(\"{}x\")", "../".repeat(4));
    assert_eq!(escaping_paths(&g, &outside, &root).len(), 1);
}
