//! CLI polish: completions, man page, colour, help examples, tables that never split a token.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::meshtrace;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    meshtrace().current_dir(root()).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The visible subcommands, read from `meshtrace --help`.
fn subcommands() -> Vec<String> {
    let help = stdout(&run(&["--help"]));
    let section = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    // A command's line starts with two spaces; its description's continuation lines with more.
    let names: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| *w != "help")
        .map(str::to_string)
        .collect();
    for expected in ["explain", "trace", "failures", "completions", "man"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    names
}

/// The long options a command's `--help` lists.
fn long_options(sub: Option<&str>) -> BTreeSet<String> {
    let mut args: Vec<&str> = sub.into_iter().collect();
    args.push("--help");
    let help = stdout(&run(&args));
    let re = regex::Regex::new(r"(?m)^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)").unwrap();
    re.captures_iter(&help).map(|c| c[1].to_string()).collect()
}

#[test]
fn bash_completion_loads_and_completes_subcommands_and_options() {
    let bin = env!("CARGO_BIN_EXE_meshtrace");
    let script = format!(
        r#"source <("{bin}" completions bash) || exit 9
complete -p meshtrace || exit 8
COMP_WORDS=(meshtrace tr); COMP_CWORD=1; COMP_LINE="meshtrace tr"; COMP_POINT=${{#COMP_LINE}}
_meshtrace meshtrace tr meshtrace
echo "sub: ${{COMPREPLY[*]}}"
COMP_WORDS=(meshtrace ""); COMP_CWORD=1; COMP_LINE="meshtrace "; COMP_POINT=${{#COMP_LINE}}
_meshtrace meshtrace "" meshtrace
echo "all: ${{COMPREPLY[*]}}"
COMP_WORDS=(meshtrace failures --bu); COMP_CWORD=2; COMP_LINE="meshtrace failures --bu"; COMP_POINT=${{#COMP_LINE}}
_meshtrace meshtrace --bu failures
echo "opt: ${{COMPREPLY[*]}}"
"#
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("complete -F _meshtrace") || out.contains("-F _meshtrace meshtrace"),
        "{out}"
    );
    let line = |p: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(line("sub: "), ["trace"], "{out}");
    let all = line("all: ");
    for s in subcommands() {
        assert!(all.contains(&s), "{s} not completed: {all:?}");
    }
    assert_eq!(line("opt: "), ["--bundle"], "{out}");
}

#[test]
fn zsh_fish_powershell_and_elvish_scripts_name_every_subcommand() {
    let subs = subcommands();
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let s = stdout(&o);
        assert!(s.len() > 1000, "{shell}: {s}");
        assert!(!s.contains('\u{1b}'), "{shell}");
        for sub in &subs {
            assert!(s.contains(sub.as_str()), "{shell} lacks {sub}");
        }
    }
    // The script is exactly what clap_complete wrote: the sanitiser changed nothing in it.
    let o = run(&["completions", "zsh"]);
    assert!(!stdout(&o).contains("\\x"), "nothing escaped");
    let bad = run(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `\-\-name`: how roff writes an option.
fn roff(opt: &str) -> String {
    opt.replace('-', "\\-")
}

#[test]
fn man_pages_cover_every_command_and_option_and_render() {
    let main = stdout(&run(&["man"]));
    assert!(
        main.starts_with(".ie") || main.contains(".TH meshtrace 1"),
        "{main}"
    );
    for sub in subcommands() {
        assert!(main.contains(&roff(&sub)), "meshtrace.1 lacks {sub}");
    }
    for opt in long_options(None) {
        assert!(main.contains(&roff(&opt)), "meshtrace.1 lacks {opt}");
    }
    for sub in subcommands() {
        let page = run(&["man", &sub]);
        assert!(page.status.success(), "man {sub}");
        let page = stdout(&page);
        assert!(page.contains(&format!(".TH meshtrace-{sub} 1")), "{page}");
        for opt in long_options(Some(&sub)) {
            assert!(page.contains(&roff(&opt)), "meshtrace-{sub}.1 lacks {opt}");
        }
        assert!(
            page.contains("Examples:"),
            "meshtrace-{sub}.1 has no examples"
        );
    }
    // All pages at once.
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(o.status.success());
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), subcommands().len() + 1, "{files:?}");
    assert!(files.contains(&"meshtrace-trace.1".to_string()));
    // An unknown page: one sentence naming the pages there are.
    let bad = run(&["man", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("trace"));

    // The pages render with groff without a warning (CI installs groff-base).
    let groff = Command::new("groff").arg("--version").output();
    if groff.is_err() {
        // CI sets MESHTRACE_REQUIRE_GROFF (and installs groff-base): there it must run.
        assert!(
            std::env::var_os("MESHTRACE_REQUIRE_GROFF").is_none(),
            "groff is required (apt-get install groff-base)"
        );
        eprintln!("groff is not installed: rendering not checked");
        return;
    }
    for f in &files {
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.path().join(f))
            .output()
            .unwrap();
        assert!(o.status.success(), "{f}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.trim().is_empty(), "groff warns on {f}: {err}");
    }
    let o = Command::new("groff")
        .args(["-man", "-Tutf8"])
        .arg(dir.path().join("meshtrace-trace.1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("bundle"), "{text}");
}

#[test]
fn every_help_has_examples_and_no_pointer_to_a_doc_that_does_not_ship() {
    let bundle_re = regex::Regex::new(r"testdata/bundles/[a-z0-9-]+").unwrap();
    for sub in subcommands() {
        let o = run(&[&sub, "--help"]);
        let help = stdout(&o);
        let examples: Vec<&str> = help
            .split("Examples:")
            .nth(1)
            .unwrap_or_else(|| panic!("{sub} --help has no examples:\n{help}"))
            .lines()
            .filter(|l| l.trim_start().starts_with("meshtrace ") || l.contains("| meshtrace"))
            .collect();
        assert!(
            (2..=4).contains(&examples.len()) || sub == "formats" || sub == "completions",
            "{sub}: {examples:?}"
        );
        // Each example names this command.
        assert!(
            examples
                .iter()
                .all(|e| e.contains(&format!("meshtrace {sub}"))
                    || e.contains("meshtrace explain")
                    || e.contains("meshtrace man")),
            "{sub}: {examples:?}"
        );
        // Bundles named in examples exist.
        for b in bundle_re.find_iter(&help) {
            assert!(root().join(b.as_str()).is_dir(), "{sub}: {}", b.as_str());
        }
        // `see docs/x.md` sends a user of the binary nowhere: a doc named in help says where it
        // is (meshtrace's source repository).
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for (i, _) in flat.match_indices("docs/") {
            let after = &flat[i..flat.len().min(i + 80)];
            assert!(after.contains("source repository"), "{sub}: {after}");
        }
        assert!(!help.contains("see docs/"), "{sub}:\n{help}");
    }
}

#[test]
fn the_examples_in_help_run() {
    // The bundle examples of trace, failures and doctor give their documented exit codes.
    for (args, code) in [
        (
            vec![
                "trace",
                "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
                "--bundle",
                "testdata/bundles/rhoai-400-app-error",
            ],
            1,
        ),
        (
            vec![
                "trace",
                "10.134.1.22:48216",
                "--bundle",
                "testdata/bundles/odh-out-of-mesh-client",
                "-o",
                "wide",
            ],
            1,
        ),
        (
            vec![
                "failures",
                "--bundle",
                "testdata/bundles/agora-city-ingress-404",
            ],
            1,
        ),
        (
            vec![
                "route-check",
                "--host",
                "test-aiproject.apps.mycluster.example.com",
                "--port",
                "8443",
                "--bundle",
                "testdata/bundles/rhoai-400-app-error",
            ],
            0,
        ),
        (
            vec![
                "proxy-config",
                "routes",
                "istio-ingressgateway",
                "--bundle",
                "testdata/bundles/rhoai-400-app-error",
            ],
            0,
        ),
        (vec!["formats"], 0),
    ] {
        let o = run(&args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

const TRACE: [&str; 4] = [
    "trace",
    "4791d0d3-e742-4eac-8c56-4c87eb22f1a9",
    "--bundle",
    "testdata/bundles/rhoai-400-app-error",
];

fn with_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = meshtrace();
    c.current_dir(root()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    stdout(&c.output().unwrap())
}

#[test]
fn color_always_paints_the_verdict_and_statuses_and_nothing_else_does() {
    let mut args = vec!["--color", "always"];
    args.extend(TRACE);
    let out = with_env(&args, &[]);
    assert!(
        out.contains("\u{1b}[1m\u{1b}[31mVerdict: 400 app_error at hop 5\u{1b}[0m"),
        "{out}"
    );
    // 4xx statuses in yellow, headers bold.
    assert!(out.contains("\u{1b}[33m400\u{1b}[0m"), "{out}");
    assert!(out.contains("\u{1b}[1mstatus\u{1b}[0m"), "{out}");
    // Colour never changes the layout: without the escape codes it is the plain output.
    let plain = with_env(&TRACE, &[]);
    let stripped = regex::Regex::new("\u{1b}\\[[0-9;]*m")
        .unwrap()
        .replace_all(&out, "");
    assert_eq!(stripped, plain);

    // A pipe (auto), NO_COLOR with auto, --color never: no escape code at all.
    assert!(!plain.contains('\u{1b}'));
    let mut auto = vec!["--color", "auto"];
    auto.extend(TRACE);
    assert!(!with_env(&auto, &[("NO_COLOR", "1")]).contains('\u{1b}'));
    let mut never = vec!["--color", "never"];
    never.extend(TRACE);
    assert!(!with_env(&never, &[("CLICOLOR_FORCE", "1")]).contains('\u{1b}'));
    // CLICOLOR_FORCE forces colour into a pipe; NO_COLOR wins over it; an empty NO_COLOR is
    // not set.
    assert!(with_env(&TRACE, &[("CLICOLOR_FORCE", "1")]).contains("\u{1b}[1m\u{1b}[31mVerdict"));
    assert!(!with_env(&TRACE, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\u{1b}'));
    assert!(with_env(&TRACE, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]).contains('\u{1b}'));
    // `--color always` wins over NO_COLOR (an explicit flag beats the environment).
    assert!(with_env(&args, &[("NO_COLOR", "1")]).contains('\u{1b}'));
    // JSON is never coloured.
    let mut json = args.clone();
    json.extend(["-o", "json"]);
    let j = with_env(&json, &[]);
    assert!(!j.contains('\u{1b}'));
    serde_json::from_str::<serde_json::Value>(&j).unwrap();
    // A success is green.
    let ok = with_env(
        &[
            "--color",
            "always",
            "trace",
            "1deb1cea-93fb-45f8-9ceb-95fb42665aef",
            "--bundle",
            "testdata/bundles/broken-bundle",
        ],
        &[],
    );
    assert!(ok.contains("\u{1b}[32mVerdict: 200"), "{ok}");
    assert!(ok.contains("\u{1b}[32m200\u{1b}[0m"), "{ok}");
}

#[test]
fn escape_sequences_in_evidence_stay_escaped_with_color_always() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("evil.log");
    let line = "[2024-06-06T10:31:15.208Z] \"GET /v1/models/x HTTP/1.1\" 503 UF upstream_reset_before_response_started{connection_failure} - \"-\" 0 91 1 - \"-\" \"curl\u{1b}]0;pwned\u{7}\" \"id\u{1b}[31mEVIL\" \"x.example.com\" \"10.0.0.9:8080\" outbound|80||x.svc.cluster.local - 10.0.0.5:80 10.0.0.7:40000 - default\n";
    std::fs::write(&log, line).unwrap();
    let o = run(&["--color", "always", "explain", log.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("id\\x1b[31mEVIL"), "{out}");
    assert!(out.contains('\u{1b}'), "our colour is there: {out}");
    // Remove the sequences meshtrace itself writes: no escape character is left.
    let ours = regex::Regex::new("\u{1b}\\[(?:0|1|31|32|33)m").unwrap();
    let rest = ours.replace_all(&out, "");
    assert!(
        !rest.contains('\u{1b}') && !rest.contains('\u{7}'),
        "{rest:?}"
    );
    // The evidence's own `ESC[31m` never reaches the output raw, even though it is one of
    // the sequences meshtrace writes.
    assert!(!out.contains("id\u{1b}[31m"), "{out:?}");
}

/// IPs, `ip:port`s and pod names a bundle's evidence holds.
fn evidence_tokens(bundle: &Path) -> BTreeSet<String> {
    let mut tokens = BTreeSet::new();
    let ip = regex::Regex::new(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b").unwrap();
    let mut stack = vec![bundle.join("logs")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                tokens.extend(ip.find_iter(&text).map(|m| m.as_str().to_string()));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(bundle.join("pods.json"))
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
    {
        for p in v["items"].as_array().into_iter().flatten() {
            if let Some(n) = p["metadata"]["name"].as_str() {
                tokens.insert(n.to_string());
            }
        }
    }
    tokens
}

/// The table of a human output: the boxed table, or the records printed instead.
fn table_part(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out.lines().collect();
    if let Some(s) = lines.iter().position(|l| l.starts_with('┌')) {
        let e = lines.iter().position(|l| l.starts_with('└')).unwrap();
        return lines[s..=e].to_vec();
    }
    let Some(s) = lines.iter().position(|l| l.starts_with("── ")) else {
        return Vec::new();
    };
    let mut e = s;
    while e + 1 < lines.len() {
        let n = lines[e + 1];
        if n.is_empty() || n.starts_with("── ") || n.starts_with("  ") {
            e += 1;
        } else {
            break;
        }
    }
    lines[s..=e].to_vec()
}

/// Every evidence token the wide table shows is in the narrow one whole or cut with `…`, and
/// no word of the narrow table is a piece of a token split across lines.
fn check_no_split(what: &str, narrow: &str, wide: &str, tokens: &BTreeSet<String>) -> usize {
    let n = table_part(narrow);
    let w = table_part(wide);
    assert!(!n.is_empty(), "{what}: no table in\n{narrow}");
    for l in &n {
        assert!(
            unicode_width(l) <= 80,
            "{what}: line wider than 80 columns: {l}"
        );
    }
    let words: Vec<&str> = n
        .iter()
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || "│┆".contains(c)))
        .filter(|w| !w.is_empty())
        .collect();
    let wide_text = w.join("\n");
    let mut checked = 0;
    for t in tokens {
        if !wide_text.contains(t.as_str()) {
            continue;
        }
        checked += 1;
        let whole = words.iter().any(|w| w.contains(t.as_str()));
        let cut = words.iter().any(|w| {
            w.strip_suffix('…')
                .and_then(|p| p.rsplit(['/', '|', ',']).next())
                .is_some_and(|p| !p.is_empty() && t.starts_with(p))
        });
        assert!(
            whole || cut,
            "{what}: {t} neither whole nor cut with …:\n{}",
            n.join("\n")
        );
        for word in &words {
            let piece = word.rsplit(['/', '|', ',']).next().unwrap_or(word);
            assert!(
                piece.is_empty()
                    || piece.ends_with('…')
                    || !(t.starts_with(piece) && piece.len() < t.len() && piece.len() > 3)
                    || tokens.contains(piece)
                    || words.iter().any(|x| x.contains(t.as_str())),
                "{what}: {t} split, {piece:?} on a line of its own:\n{}",
                n.join("\n")
            );
        }
    }
    checked
}

fn unicode_width(s: &str) -> usize {
    s.chars().count()
}

#[test]
fn tables_at_80_columns_never_split_an_ip_or_a_pod_name() {
    let bundles = root().join("testdata/bundles");
    let start = regex::Regex::new(r"meshtrace trace (\S+) --bundle testdata/bundles/").unwrap();
    let mut checked = 0;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&bundles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for b in dirs {
        let name = b.file_name().unwrap().to_string_lossy().into_owned();
        let bundle = format!("testdata/bundles/{name}");
        let tokens = evidence_tokens(&b);
        let readme = std::fs::read_to_string(b.join("README.md")).unwrap_or_default();
        let mut runs: Vec<Vec<String>> = vec![
            vec!["failures".into(), "--bundle".into(), bundle.clone()],
            vec!["doctor".into(), "--bundle".into(), bundle.clone()],
        ];
        if let Some(c) = start.captures(&readme) {
            runs.push(vec![
                "trace".into(),
                c[1].to_string(),
                "--bundle".into(),
                bundle.clone(),
            ]);
        }
        for args in runs {
            let mut narrow = meshtrace();
            narrow.current_dir(root()).args(&args).env("COLUMNS", "80");
            let narrow = stdout(&narrow.output().unwrap());
            if table_part(&narrow).is_empty() {
                continue; // nothing failed, no finding
            }
            // The same table on a screen wide enough for every value on one line.
            let mut full = meshtrace();
            full.current_dir(root()).args(&args).env("COLUMNS", "2000");
            let full = stdout(&full.output().unwrap());
            assert!(table_part(&full)[0].starts_with('┌'), "{full}");
            checked += check_no_split(&format!("{args:?}"), &narrow, &full, &tokens);
            // -o wide: every value whole, whatever the width.
            let mut wide = meshtrace();
            wide.current_dir(root())
                .args(&args)
                .args(["-o", "wide"])
                .env("COLUMNS", "80");
            let wide = stdout(&wide.output().unwrap());
            let wide_table = table_part(&wide).join("\n");
            assert!(!wide_table.contains('…'), "{args:?}:\n{wide}");
            for t in &tokens {
                if table_part(&full).join("\n").contains(t.as_str()) {
                    assert!(
                        wide_table.contains(t.as_str()),
                        "{args:?}: -o wide lacks {t}"
                    );
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} tokens checked");
}

#[test]
fn explain_table_at_80_columns_and_wide() {
    let log = "testdata/explain/seed000-pasted.log";
    let mut c = meshtrace();
    c.current_dir(root())
        .args(["explain", log])
        .env("COLUMNS", "80");
    let narrow = stdout(&c.output().unwrap());
    let mut c = meshtrace();
    c.current_dir(root())
        .args(["explain", log, "-o", "wide"])
        .env("COLUMNS", "80");
    let wide = stdout(&c.output().unwrap());
    assert!(table_part(&wide)[0].starts_with('┌'), "{wide}");
    let text = std::fs::read_to_string(root().join(log)).unwrap();
    let ids: BTreeSet<String> =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
            .unwrap()
            .find_iter(&text)
            .map(|m| m.as_str().to_string())
            .collect();
    assert!(check_no_split("explain", &narrow, &wide, &ids) > 0);
}

#[test]
fn quiet_is_accepted_everywhere_and_no_progress_goes_to_a_pipe() {
    // A read that takes 1.5 s (a FIFO written slowly): stderr is a pipe, so no progress line.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.log");
    let ok = Command::new("mkfifo").arg(&fifo).status();
    if !ok.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo is not available");
        return;
    }
    let line = std::fs::read_to_string(root().join("testdata/explain/seed003-rbac.log")).unwrap();
    let f2 = fifo.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&f2).unwrap();
        f.write_all(line.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
    });
    // Bounded: a FIFO opened twice (a regression once) waits forever for a second writer.
    let mut child = meshtrace()
        .current_dir(root())
        .args(["explain", fifo.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("explain on a FIFO did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("reading the evidence"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("rbac_denied"), "{}", stdout(&o));
    let q = run(&["-q", "formats"]);
    assert!(q.status.success());
    let q = run(&["trace", "--quiet", TRACE[1], TRACE[2], TRACE[3]]);
    assert_eq!(q.status.code(), Some(1));
}

/// Under a terminal (`script` gives the command a pseudo-terminal), a read that takes more
/// than a second shows the progress line on stderr, cleared before the output; `--quiet`
/// hides it.
#[test]
fn progress_shows_on_a_terminal_for_a_slow_read_and_quiet_hides_it() {
    let have = |p: &str| Command::new(p).arg("--version").output().is_ok();
    if !have("script") || !have("mkfifo") {
        eprintln!("script or mkfifo not available");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_meshtrace");
    let log = root().join("testdata/explain/seed003-rbac.log");
    let runs = |quiet: &str| {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("slow.log");
        // One writer opens the FIFO, writes the log and holds it open 2.5 s more, so the read
        // is slow and its end comes only then. (Two writers, one writing the log and one holding
        // the FIFO open, raced: when the first was done before the second had opened it, the
        // read ended at once and the second waited forever for a reader.) Every step is bounded.
        let cmd = format!(
            "mkfifo {f}; timeout 120 sh -c 'exec 3>\"$0\"; cat \"$1\" >&3; sleep 2.5' {f} {log} & timeout 120 {bin} {quiet} --color never explain {f}; wait",
            f = fifo.display(),
            log = log.display(),
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("NO_COLOR")
            .env("TERM", "dumb")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = runs("");
    assert!(shown.contains("reading the evidence: "), "{shown:?}");
    // Cleared before the output: the line is overwritten with spaces, then the table.
    let p = shown.find("reading the evidence").unwrap();
    let t = shown.find("rbac_denied").unwrap();
    assert!(p < t);
    assert!(shown[p..t].contains('\r'));
    let quiet = runs("-q");
    assert!(!quiet.contains("reading the evidence"), "{quiet:?}");
    assert!(quiet.contains("rbac_denied"));
}
