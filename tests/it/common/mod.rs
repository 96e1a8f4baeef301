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
