//! YAML for machines (`-o yaml`): the same document as `-o json`, made from the same
//! `Serialize` types (so the same field names and values), written in block style with every
//! string that is not a plain word double-quoted and escaped.
//!
//! A string is written plain only when no YAML reader can take it for anything else (it starts
//! with a letter, holds only letters, digits and `._/-@`, and is not a word YAML 1.1 reads as a
//! boolean or null); every other string is a double-quoted scalar with JSON's escapes (valid in
//! YAML) plus `\uXXXX` for DEL, C1 controls, bidirectional overrides and line or paragraph
//! separators, so a value from the evidence can neither change the document's structure nor
//! reach a terminal as a control sequence, and it parses back to exactly the JSON value.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

/// `v` as a YAML document (ends with a newline).
pub fn to_string<T: Serialize + ?Sized>(v: &T) -> io::Result<String> {
    let v = serde_json::to_value(v).map_err(io::Error::other)?;
    Ok(value_to_string(&v))
}

/// A JSON value as a YAML document (ends with a newline).
pub fn value_to_string(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0, false),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            scalar(&mut out, other);
            out.push('\n');
        }
    }
    out
}

/// Write `v` as a YAML document.
pub fn write<T: Serialize + ?Sized>(out: &mut dyn Write, v: &T) -> io::Result<()> {
    out.write_all(to_string(v)?.as_bytes())
}

/// One element of a top-level block sequence (`- …` at column 0), ending with a newline: how a
/// document whose arrays are written element by element (`explain`) writes each element.
pub fn seq_item<T: Serialize + ?Sized>(v: &T) -> io::Result<String> {
    let v = serde_json::to_value(v).map_err(io::Error::other)?;
    let mut out = String::new();
    seq(&mut out, std::slice::from_ref(&v), 0);
    Ok(out)
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A non-empty mapping at `ind`; `inline`: its first key goes on the current line (after `- `).
fn map(out: &mut String, m: &serde_json::Map<String, Value>, ind: usize, inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, ind);
        }
        string(out, k);
        out.push(':');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                map(out, m, ind + 2, false);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                seq(out, a, ind);
            }
            other => {
                out.push(' ');
                scalar(out, other);
                out.push('\n');
            }
        }
    }
}

/// A non-empty sequence at `ind`.
fn seq(out: &mut String, a: &[Value], ind: usize) {
    for v in a {
        indent(out, ind);
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                map(out, m, ind + 2, true);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                seq(out, a, ind + 2);
            }
            other => {
                out.push(' ');
                scalar(out, other);
                out.push('\n');
            }
        }
    }
}

/// A scalar, or an empty collection in flow style.
fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// Words YAML 1.1 readers take for booleans or null when plain.
const RESERVED: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
];

/// Can `s` be written as a plain scalar and still read back as this string by any reader?
fn plain(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-' | b'@'))
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// A string: plain when [`plain`], else double-quoted with every unsafe character escaped.
fn string(out: &mut String, s: &str) {
    if plain(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Characters never written raw: controls (C0, DEL, C1), bidirectional formatting, line and
/// paragraph separators, the byte-order mark.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) {
        let y = value_to_string(v);
        let back: Value = serde_yaml_ng::from_str(&y).unwrap_or_else(|e| panic!("{e}\n{y}"));
        assert_eq!(&back, v, "{y}");
    }

    #[test]
    fn documents_parse_back_to_the_same_value() {
        round_trip(&json!({
            "schema": "meshtrace.explain/v1",
            "requests": [{"request_id": "4791d0d3-e742", "status": 400, "lines": [1, 2],
                          "hops": [{"input": "a.log", "line": 3}], "evidence": [], "fix": {}}],
            "nested": [[1, [2]], [], {}],
            "odd": ["yes", "No", "null", "~", "1:20", "0x1f", "-", "- a", "a: b", "#c", "&x", "*y",
                    "!t", "%p", "@", "", " lead", "trail ", "a\nb", "q\"uote", "back\\slash",
                    "10.0.0.1:8443", "1e3", ".inf", "[x]", "{y}", "|", ">", "'s'", "ü", "a,b"],
            "n": null, "b": true, "f": 1.5, "neg": -3,
        }));
    }

    #[test]
    fn evidence_cannot_reach_a_terminal_or_break_the_structure() {
        let hostile = "x\u{1b}]0;pwned\u{7}\u{202e}\u{85}\u{7f}\u{2028}\nkey: value";
        let y = value_to_string(&json!({ "path": hostile, hostile: 1 }));
        assert!(
            !y.chars().any(|c| c != '\n' && needs_escape(c)),
            "raw control or bidi character in {y:?}"
        );
        assert_eq!(y.lines().count(), 2, "{y}");
        assert!(y.contains(r#""x\u001b]0;pwned\u0007\u202e\u0085\u007f\u2028\nkey: value""#));
        round_trip(&json!({ "path": hostile, hostile: 1 }));
    }

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(
            value_to_string(&json!({"schema": "meshtrace.trace/v1", "cause": "app_error"})),
            "schema: meshtrace.trace/v1\ncause: app_error\n"
        );
        assert_eq!(
            seq_item(&json!({"a": 1, "b": [2]})).unwrap(),
            "- a: 1\n  b:\n  - 2\n"
        );
    }
}
