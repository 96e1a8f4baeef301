//! The format oracle: every field meshtrace extracts equals what a real Envoy wrote.
//!
//! `lab/oracle.py` makes Envoy write the same requests twice: a TEXT access log whose format uses
//! every command operator meshtrace knows (and some it does not), and a JSON access log with one
//! key per operator of that format. JSON is unambiguous, so it is the oracle for the TEXT line:
//! each operator's value parsed from the TEXT line must equal the JSON value of the same
//! operator. The JSON log parsed with the same `json_format` mapping must give the same values.
//!
//! Normalisation, and only this: Envoy's JSON writes numbers as numbers (compared as their
//! decimal text) and an unset value as `null`, where TEXT writes `-`.
//!
//! The committed capture is `testdata/lab/format-oracle/`; with `MESHTRACE_ORACLE_DIR` set the
//! same checks also run on that directory (CI regenerates it with real Envoy).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use meshtrace_parsers::assemble::{Assembler, Event};
use meshtrace_parsers::detect::{FormatSpec, LineParser};
use meshtrace_parsers::format::TextFormat;
use meshtrace_parsers::json::{JsonValue, scan_object};
use meshtrace_parsers::record::RawRecord;
use serde_json::Value;

/// Requests whose TEXT line no parser can read unambiguously: Envoy's TEXT format does not escape
/// quotes, and this User-Agent holds the literal that ends its field (`" "`), so another request
/// (a shorter User-Agent, a request id and an authority holding the rest) writes the very same
/// line. meshtrace must report such a line, or read every field right — never guess.
const AMBIGUOUS_IN_TEXT: &[&str] = &["quote-space-quote-in-user-agent"];

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/lab/format-oracle")
}

fn dirs() -> Vec<PathBuf> {
    let mut d = vec![committed()];
    if let Some(extra) = std::env::var_os("MESHTRACE_ORACLE_DIR").filter(|v| !v.is_empty()) {
        // A relative path is from the repository root (tests run in `parsers/`).
        d.push(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(extra),
        );
    }
    d
}

fn read(dir: &Path, name: &str) -> String {
    let p = dir.join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The capture of one oracle run.
struct Oracle {
    dir: PathBuf,
    text_format: String,
    /// `json_format` mapping in file order: key → value template.
    mapping: Vec<(String, String)>,
    mapping_src: String,
    text_lines: Vec<String>,
    /// Envoy's JSON lines, decoded.
    json_lines: Vec<BTreeMap<String, Value>>,
    json_src: String,
}

fn load(dir: &Path) -> Oracle {
    let text_format = read(dir, "text-format.txt");
    let mapping_src = read(dir, "json-format.json");
    let mut mapping = Vec::new();
    scan_object(mapping_src.trim(), |k, v| match v {
        JsonValue::Str(s) => mapping.push((k.into_owned(), s.into_owned())),
        other => panic!("json-format.json: {k}: not a string: {other:?}"),
    })
    .expect("json-format.json is a JSON object");
    let text = read(dir, "text.log");
    let json_src = read(dir, "json.log");
    let json_lines = json_src
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("json.log:{}: {e}", i + 1)))
        .collect();
    Oracle {
        dir: dir.to_path_buf(),
        text_format,
        mapping,
        mapping_src,
        text_lines: text.lines().map(str::to_string).collect(),
        json_lines,
        json_src,
    }
}

/// Envoy's JSON value as the TEXT log writes it: `null` → `-`, numbers as decimal text.
fn as_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => Some("-".into()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// Parse a log the way `--log-format` does: one `LineParser` for the spec behind an `Assembler`.
/// Returns one record per physical line, or the reason the line is not a record.
fn parse_all(spec: &FormatSpec, text: &str) -> Vec<Result<RawRecord<'static>, String>> {
    let mut asm = Assembler::new(LineParser::new(spec), true);
    let mut out: BTreeMap<u64, Result<RawRecord<'static>, String>> = BTreeMap::new();
    let mut sink = |e: Event<'_>| match e {
        Event::Record(l) => {
            let r = if l.lines != 1 {
                Err(format!("joined {} physical lines", l.lines))
            } else if !l.record.missing.is_empty() {
                Err(format!("fields missing: {:?}", l.record.missing))
            } else {
                Ok(l.record.into_owned())
            };
            out.insert(l.line, r);
        }
        Event::Skipped { line, kind } => {
            out.insert(line, Err(format!("skipped: {kind}")));
        }
        Event::Malformed { line, error, .. } => {
            out.insert(line, Err(format!("malformed: {error}")));
        }
    };
    for (i, l) in text.lines().enumerate() {
        asm.push(i as u64 + 1, l, &mut sink);
    }
    asm.finish(&mut sink);
    let n = text.lines().count() as u64;
    (1..=n)
        .map(|i| out.remove(&i).unwrap_or_else(|| Err("no event".into())))
        .collect()
}

/// What meshtrace extracted for one operator (`text` as written between the `%` signs): a value
/// kept under the operator's name, else the typed slot the operator maps to.
fn extracted<'r>(rec: &'r RawRecord<'_>, text: &str) -> Option<&'r str> {
    if let Some(v) = rec.extra(text) {
        return Some(v);
    }
    let f = TextFormat::compile("op", &format!("%{text}%")).ok()?;
    let slot = f.commands().first()?.slot?;
    rec.get(slot)
}

/// The Envoy operator of a JSON template value that is exactly one operator.
fn single_operator(template: &str) -> Option<String> {
    let f = TextFormat::compile("op", template).ok()?;
    (f.commands().len() == 1 && f.source() == format!("%{}%", f.commands()[0].text))
        .then(|| f.commands()[0].text.to_string())
}

/// The JSON line of each TEXT line: joined by x-request-id. Envoy writes both logs in the same
/// order, so a line without an id (or that meshtrace could not read) pairs with the JSON line at
/// the same position, and a request id must then agree.
fn join(o: &Oracle, parsed: &[Result<RawRecord<'static>, String>]) -> Vec<(usize, usize)> {
    let rid_key = o
        .mapping
        .iter()
        .find(|(_, t)| t == "%REQ(X-REQUEST-ID)%")
        .map(|(k, _)| k.clone())
        .expect("the JSON mapping has %REQ(X-REQUEST-ID)%");
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for (j, l) in o.json_lines.iter().enumerate() {
        if let Some(Value::String(id)) = l.get(&rid_key) {
            assert!(
                by_id.insert(id.clone(), j).is_none(),
                "{}: request id {id} twice in json.log",
                o.dir.display()
            );
        }
    }
    parsed
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = r.as_ref().ok().and_then(|r| r.request_id());
            let j = match id.and_then(|id| by_id.get(id)) {
                Some(j) => *j,
                None => i,
            };
            (i, j)
        })
        .collect()
}

/// Compare one record against Envoy's JSON line, operator by operator.
fn compare(
    what: &str,
    rec: &RawRecord<'_>,
    json: &BTreeMap<String, Value>,
    ops: &[(String, String)],
    problems: &mut Vec<String>,
) {
    for (key, op) in ops {
        let want = as_text(json.get(key));
        let got = extracted(rec, op);
        match (want.as_deref(), got) {
            (Some(w), Some(g)) if w == g => {}
            (Some(w), None) => problems.push(format!(
                "{what}: %{op}% not extracted (Envoy wrote {w:?} under {key:?})"
            )),
            (w, g) => problems.push(format!(
                "{what}: %{op}%: meshtrace {g:?}, Envoy {w:?} (key {key:?})"
            )),
        }
    }
    // Typed readings must not fail on a value Envoy wrote.
    if rec.value(meshtrace_parsers::Slot::StartTime).is_some() && rec.start_time().is_none() {
        problems.push(format!("{what}: start_time() unreadable"));
    }
    if let Err(e) = rec.flags_checked() {
        problems.push(format!("{what}: flags: {e:?}"));
    }
    if rec.value(meshtrace_parsers::Slot::ResponseCode).is_some() && rec.status().is_none() {
        problems.push(format!("{what}: status() unreadable"));
    }
}

fn check_text(o: &Oracle) -> Vec<String> {
    let spec = FormatSpec::parse(&o.text_format).expect("text-format.txt compiles");
    let FormatSpec::Text(f) = &spec else {
        panic!("text-format.txt is not a TEXT format")
    };
    // The operators of the TEXT format, each with the JSON key Envoy wrote it under.
    let key_of: BTreeMap<&str, &str> = o
        .mapping
        .iter()
        .map(|(k, t)| (t.as_str(), k.as_str()))
        .collect();
    let ops: Vec<(String, String)> = f
        .commands()
        .iter()
        .map(|c| {
            let t = format!("%{}%", c.text);
            let k = key_of
                .get(t.as_str())
                .unwrap_or_else(|| panic!("json-format.json has no key for {t}"));
            (k.to_string(), c.text.to_string())
        })
        .collect();
    let parsed = parse_all(&spec, &o.text_lines.join("\n"));
    let mut problems = Vec::new();
    for (i, j) in join(o, &parsed) {
        let what = format!("text.log:{}", i + 1);
        let ambiguous = AMBIGUOUS_IN_TEXT.contains(&case_of(o, j).as_str());
        match &parsed[i] {
            Ok(rec) => compare(&what, rec, &o.json_lines[j], &ops, &mut problems),
            Err(e) if !ambiguous => problems.push(format!("{what}: not a record: {e}")),
            Err(_) => {}
        }
    }
    problems
}

/// The oracle case of a JSON line (`%REQ(X-ORACLE-CASE)%`), `-` when Envoy had no headers.
fn case_of(o: &Oracle, j: usize) -> String {
    let key = o
        .mapping
        .iter()
        .find(|(_, t)| t == "%REQ(X-ORACLE-CASE)%")
        .map(|(k, _)| k.as_str())
        .expect("the JSON mapping has %REQ(X-ORACLE-CASE)%");
    as_text(o.json_lines[j].get(key)).unwrap_or_default()
}

fn check_json(o: &Oracle) -> Vec<String> {
    let spec = FormatSpec::parse(&o.mapping_src).expect("json-format.json is a usable mapping");
    assert!(matches!(spec, FormatSpec::Json(_)));
    let parsed = parse_all(&spec, &o.json_src);
    let mut problems = Vec::new();
    for (i, (rec, json)) in parsed.iter().zip(&o.json_lines).enumerate() {
        let what = format!("json.log:{}", i + 1);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{what}: not a record: {e}"));
                continue;
            }
        };
        // Single operators are looked up by operator; other templates are kept under their key.
        let ops: Vec<(String, String)> = o
            .mapping
            .iter()
            .map(|(k, t)| (k.clone(), single_operator(t).unwrap_or_else(|| k.clone())))
            .collect();
        compare(&what, rec, json, &ops, &mut problems);
    }
    problems
}

fn report(o: &Oracle, kind: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{}: {} fields differ from what Envoy wrote ({kind}):\n{}",
        o.dir.display(),
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn capture_is_complete() {
    for dir in dirs() {
        let o = load(&dir);
        assert!(o.text_lines.len() >= 30, "{}: too few lines", dir.display());
        assert_eq!(o.text_lines.len(), o.json_lines.len(), "{}", dir.display());
        // One JSON key per TEXT operator, and the TEXT format covers every slot meshtrace has.
        let f = TextFormat::compile("oracle", &o.text_format).unwrap();
        assert_eq!(
            f.commands().len() + 1,
            o.mapping.len(),
            "{}: one key per operator plus `summary`",
            dir.display()
        );
        let covered: Vec<_> = meshtrace_parsers::Slot::ALL
            .iter()
            .filter(|s| !f.commands().iter().any(|c| c.slot == Some(**s)))
            .collect();
        assert!(
            covered.is_empty(),
            "slots not in the oracle's format: {covered:?}"
        );
    }
}

#[test]
fn text_fields_equal_what_envoy_wrote() {
    for dir in dirs() {
        let o = load(&dir);
        report(&o, "TEXT", check_text(&o));
    }
}

#[test]
fn json_fields_equal_what_envoy_wrote() {
    for dir in dirs() {
        let o = load(&dir);
        report(&o, "JSON", check_json(&o));
    }
}
