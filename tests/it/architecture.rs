//! The architecture invariants of `docs/ARCHITECTURE.md`, checked on the source tree so that a
//! change that breaks one fails the tests (the compiler enforces the rest: crate dependencies and
//! the lints in each crate's `lib.rs`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Code lines of a file (comments and the `#[cfg(test)]` module at the end left out).
fn code(p: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(p).unwrap();
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    body.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

/// Architecture invariant: only `src/report/` writes to standard output.
#[test]
fn only_report_writes_to_stdout() {
    let mut bad = Vec::new();
    for p in sources(&root().join("src")) {
        let r = rel(&p);
        if r.starts_with("src/report/") {
            continue;
        }
        for (n, l) in code(&p) {
            let stripped = l.replace("eprintln!(", "").replace("eprint!(", "");
            if stripped.contains("println!(")
                || stripped.contains("print!(")
                || l.contains("io::stdout()")
                || l.contains("std::io::stdout")
            {
                bad.push(format!("{r}:{n}: {}", l.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "stdout written outside src/report/:\n{}",
        bad.join("\n")
    );
}

/// Architecture invariant: diagnostics reach standard error only through `src/report/`
/// (`report::warn`, `report::error`, `report::stderr()`), which escapes control characters and
/// masks secrets — evidence (file names, ids, pod names) is quoted in them. The live progress
/// line prints only counts.
#[test]
fn only_report_writes_to_stderr() {
    let mut bad = Vec::new();
    for p in sources(&root().join("src")) {
        let r = rel(&p);
        if r.starts_with("src/report/") || r == "src/live/progress.rs" {
            continue;
        }
        for (n, l) in code(&p) {
            if l.contains("eprintln!(")
                || l.contains("eprint!(")
                || (l.contains("io::stderr()") && !l.contains("is_terminal()"))
            {
                bad.push(format!("{r}:{n}: {}", l.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "stderr written outside src/report/ (use crate::report::warn):\n{}",
        bad.join("\n")
    );
}

/// Architecture invariant: the analysis crate is pure — no files, network, threads, processes,
/// environment or clock; its dependencies carry no async runtime, Kubernetes client or CLI.
#[test]
fn analysis_is_pure() {
    let manifest = std::fs::read_to_string(root().join("analysis/Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for forbidden in ["tokio", "kube", "clap", "hyper", "reqwest", "tar", "flate2"] {
        assert!(
            !deps
                .lines()
                .any(|l| l.split('=').next().unwrap().trim() == forbidden),
            "analysis/Cargo.toml depends on {forbidden}"
        );
    }
    let mut bad = Vec::new();
    for p in sources(&root().join("analysis/src")) {
        for (n, l) in code(&p) {
            for needle in [
                "std::fs",
                "std::net::TcpStream",
                "std::thread",
                "std::process",
                "std::env",
                "SystemTime::now",
                "Utc::now",
                "Local::now",
            ] {
                if l.contains(needle) {
                    bad.push(format!("{}:{n}: {needle}", rel(&p)));
                }
            }
        }
    }
    assert!(bad.is_empty(), "impure analysis code:\n{}", bad.join("\n"));
}

/// Architecture invariant: `src/live/` is the only code that talks to Kubernetes and the only
/// async code.
#[test]
fn only_live_talks_to_kubernetes() {
    let mut bad = Vec::new();
    for dir in ["src", "analysis/src", "parsers/src"] {
        for p in sources(&root().join(dir)) {
            let r = rel(&p);
            if r.starts_with("src/live/") {
                continue;
            }
            for (n, l) in code(&p) {
                if l.contains("kube::") || l.contains("tokio::") || l.contains("async fn") {
                    bad.push(format!("{r}:{n}: {}", l.trim()));
                }
            }
        }
    }
    // `collect` owns the runtime that drives `live`.
    bad.retain(|b| !b.starts_with("src/commands/collect.rs"));
    assert!(
        bad.is_empty(),
        "Kubernetes or async outside src/live/:\n{}",
        bad.join("\n")
    );
}

/// Architecture invariant: every module starts with a `//!` line saying what it is for.
#[test]
fn every_module_says_what_it_is() {
    let mut bad = Vec::new();
    for dir in ["src", "analysis/src", "parsers/src"] {
        for p in sources(&root().join(dir)) {
            let text = std::fs::read_to_string(&p).unwrap();
            if !text.starts_with("//!") {
                bad.push(rel(&p));
            }
        }
    }
    assert!(bad.is_empty(), "modules without a //! line: {bad:?}");
}

/// Architecture invariant: the parsers crate does no I/O and depends on no other crate of the
/// workspace.
#[test]
fn parsers_are_the_bottom_layer() {
    let manifest = std::fs::read_to_string(root().join("parsers/Cargo.toml")).unwrap();
    assert!(!manifest.contains("meshtrace-analysis") && !manifest.contains("path = \"..\""));
    let mut bad = Vec::new();
    for p in sources(&root().join("parsers/src")) {
        for (n, l) in code(&p) {
            if l.contains("std::fs")
                || l.contains("std::net::TcpStream")
                || l.contains("std::thread")
            {
                bad.push(format!("{}:{n}", rel(&p)));
            }
        }
    }
    assert!(bad.is_empty(), "I/O in parsers: {bad:?}");
}

/// The modules a file of `dir` imports through `crate::…` (test modules left out).
fn imports(dir: &Path, file: &Path) -> std::collections::BTreeSet<String> {
    let body: String = code(file).into_iter().map(|(_, l)| l + "\n").collect();
    let me = module_of(dir, file);
    let mut out = std::collections::BTreeSet::new();
    for (i, _) in body.match_indices("crate::") {
        let rest = &body[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let target = if dir.join(&name).is_dir() {
            let sub: String = rest[name.len()..]
                .trim_start_matches("::")
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !sub.is_empty() && dir.join(&name).join(format!("{sub}.rs")).exists() {
                format!("{name}/{sub}")
            } else {
                name.clone()
            }
        } else {
            name.clone()
        };
        if !name.is_empty() && target != me && !me.starts_with(&format!("{target}/")) {
            out.insert(target);
        }
    }
    out
}

fn module_of(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap().with_extension("");
    let s = rel.display().to_string();
    s.strip_suffix("/mod").unwrap_or(&s).to_string()
}

/// Architecture invariant: no import circle between the modules of a crate (data flows one way).
#[test]
fn no_import_circles() {
    for dir in ["src", "analysis/src", "parsers/src"] {
        let dir = root().join(dir);
        let mut graph: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for f in sources(&dir) {
            let m = module_of(&dir, &f);
            if m == "lib" || m == "main" || m.starts_with("bin/") {
                continue;
            }
            graph.entry(m).or_default().extend(imports(&dir, &f));
        }
        // A parent module may name its children; that is not an import.
        for (m, deps) in graph.iter_mut() {
            deps.retain(|d| !d.starts_with(&format!("{m}/")));
        }
        let mut state: std::collections::BTreeMap<String, u8> = Default::default();
        fn visit(
            m: &str,
            g: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
            state: &mut std::collections::BTreeMap<String, u8>,
            path: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            state.insert(m.to_string(), 1);
            path.push(m.to_string());
            for d in g.get(m).into_iter().flatten() {
                match state.get(d.as_str()) {
                    Some(1) => {
                        let at = path.iter().position(|p| p == d).unwrap();
                        let mut c = path[at..].to_vec();
                        c.push(d.clone());
                        return Some(c);
                    }
                    Some(_) => {}
                    None => {
                        if let Some(c) = visit(d, g, state, path) {
                            return Some(c);
                        }
                    }
                }
            }
            path.pop();
            state.insert(m.to_string(), 2);
            None
        }
        let keys: Vec<String> = graph.keys().cloned().collect();
        for k in keys {
            if !state.contains_key(&k)
                && let Some(c) = visit(&k, &graph, &mut state, &mut Vec::new())
            {
                panic!("import circle in {}: {}", dir.display(), c.join(" → "));
            }
        }
    }
}
