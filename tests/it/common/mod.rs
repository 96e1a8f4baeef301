//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The `meshtrace` binary, run with an environment that cannot leak into a test: no
/// kubeconfig (a test never reaches a real cluster by accident), no terminal width or colour
/// settings, no `MESHTRACE_*` variables. Tests that need a cluster set `KUBECONFIG` themselves.
pub fn meshtrace() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meshtrace"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("MESHTRACE_") {
            c.env_remove(&k);
        }
    }
    c.env_remove("COLUMNS")
        .env_remove("LINES")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env(
            "KUBECONFIG",
            "/nonexistent/meshtrace-tests-use-no-kubeconfig",
        );
    c
}

/// Run meshtrace from the repository root: (exit code, stdout, stderr).
pub fn run_in_repo(args: &[&str]) -> (i32, String, String) {
    let out = meshtrace()
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`meshtrace`] (same environment) under a file-size limit of `blocks` (the shell's
/// `ulimit -f`) with `SIGXFSZ` ignored: a write past it fails with `EFBIG`, as a write to a full
/// disk fails with `ENOSPC`. Arguments go after, as to [`meshtrace`].
pub fn meshtrace_with_file_size_limit(blocks: u32) -> Command {
    let m = meshtrace();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""
        ))
        .arg(m.get_program());
    for (k, v) in m.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// Assert that `text` (a message) holds every one of `parts`.
pub fn assert_mentions(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
}

/// Run `meshtrace args`, read the first `n` bytes of its output and close the pipe, like
/// `meshtrace … | head -c n`: the bytes read, the exit code and standard error. The command must
/// end quietly (exit 0, no error, no panic): a reader that stops early is not a failure.
pub fn read_head_then_close(args: &[&str], n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut child = meshtrace()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = vec![0u8; n];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    drop(child.stdout.take());
    let err = stderr_of(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{args:?}: {err}");
    assert!(
        !err.contains("error") && !err.contains("Broken pipe") && !err.contains("panicked"),
        "{args:?}: {err}"
    );
    head
}

/// All of a piped child's standard error, read to its end.
pub fn stderr_of(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("standard error piped")
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// Copy a folder tree (an example bundle) to `to`; symlinks are not expected.
pub fn copy_dir(from: &Path, to: &Path) {
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

/// The `line` of each element of a streamed document's `records` or `skipped` list.
pub fn line_numbers(list: &serde_json::Value) -> Vec<u64> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["line"].as_u64().expect("a line number"))
        .collect()
}
