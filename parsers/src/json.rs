//! A small, allocation-free scanner for flat JSON objects (one access-log record per line).
//!
//! Access logs in JSON are flat objects whose values are strings, numbers or null. The scanner
//! walks the object once and hands each key and value to a callback; strings without escapes are
//! borrowed, escaped ones are decoded into an owned string. Nested objects and arrays are kept as
//! raw text. Errors carry the byte column.

use std::borrow::Cow;
use std::fmt;

/// A JSON value as found in an access-log object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonValue<'a> {
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// A number, as written.
    Num(&'a str),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A nested object or array, as raw JSON text.
    Raw(&'a str),
}

impl<'a> JsonValue<'a> {
    /// The value as text: strings and numbers as they are, booleans as `true`/`false`, nested
    /// values as raw JSON; `None` for null.
    pub fn into_text(self) -> Option<Cow<'a, str>> {
        match self {
            JsonValue::Str(s) => Some(s),
            JsonValue::Num(n) => Some(Cow::Borrowed(n)),
            JsonValue::Bool(true) => Some(Cow::Borrowed("true")),
            JsonValue::Bool(false) => Some(Cow::Borrowed("false")),
            JsonValue::Null => None,
            JsonValue::Raw(r) => Some(Cow::Borrowed(r)),
        }
    }
}

/// Why a line is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// 0-based byte column.
    pub column: usize,
    /// What was expected there.
    pub expected: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: expected {}", self.column + 1, self.expected)
    }
}

impl std::error::Error for JsonError {}

/// Maximum nesting depth of skipped nested values (deeper input is rejected, not recursed).
const MAX_DEPTH: usize = 128;

/// Scan a flat JSON object, calling `f(key, value)` for each member in order.
pub fn scan_object<'a>(
    s: &'a str,
    mut f: impl FnMut(Cow<'a, str>, JsonValue<'a>),
) -> Result<(), JsonError> {
    let b = s.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(JsonError {
            column: i,
            expected: "`{`",
        });
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return finish(b, i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(JsonError {
                column: i,
                expected: "a string key",
            });
        }
        let (key, next) = parse_string(s, i)?;
        i = skip_ws(b, next);
        if b.get(i) != Some(&b':') {
            return Err(JsonError {
                column: i,
                expected: "`:`",
            });
        }
        i = skip_ws(b, i + 1);
        let (val, next) = parse_value(s, i)?;
        f(key, val);
        i = skip_ws(b, next);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return finish(b, i + 1),
            _ => {
                return Err(JsonError {
                    column: i,
                    expected: "`,` or `}`",
                });
            }
        }
    }
}

fn finish(b: &[u8], i: usize) -> Result<(), JsonError> {
    let j = skip_ws(b, i);
    if j == b.len() {
        Ok(())
    } else {
        Err(JsonError {
            column: j,
            expected: "end of line after `}`",
        })
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

fn parse_value(s: &str, i: usize) -> Result<(JsonValue<'_>, usize), JsonError> {
    let b = s.as_bytes();
    match b.get(i) {
        Some(b'"') => {
            let (v, n) = parse_string(s, i)?;
            Ok((JsonValue::Str(v), n))
        }
        Some(b'n') if b[i..].starts_with(b"null") => Ok((JsonValue::Null, i + 4)),
        Some(b't') if b[i..].starts_with(b"true") => Ok((JsonValue::Bool(true), i + 4)),
        Some(b'f') if b[i..].starts_with(b"false") => Ok((JsonValue::Bool(false), i + 5)),
        Some(c) if *c == b'-' || c.is_ascii_digit() => {
            let mut j = i + 1;
            while j < b.len() && matches!(b[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                j += 1;
            }
            Ok((JsonValue::Num(&s[i..j]), j))
        }
        Some(b'{') | Some(b'[') => {
            let end = skip_nested(b, i)?;
            Ok((JsonValue::Raw(&s[i..end]), end))
        }
        _ => Err(JsonError {
            column: i,
            expected: "a JSON value",
        }),
    }
}

/// Skip a nested object/array starting at `i`; returns the index after it.
fn skip_nested(b: &[u8], mut i: usize) -> Result<usize, JsonError> {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(JsonError {
                        column: i,
                        expected: "less deeply nested JSON",
                    });
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            b'"' => {
                i = string_end(b, i)?;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Err(JsonError {
        column: b.len(),
        expected: "the end of a nested value",
    })
}

/// Index after the closing quote of the string starting at `i`.
fn string_end(b: &[u8], i: usize) -> Result<usize, JsonError> {
    string_end_escaped(b, i).map(|(end, _)| end)
}

/// [`string_end`], and whether the string holds an escape (a `\`).
fn string_end_escaped(b: &[u8], i: usize) -> Result<(usize, bool), JsonError> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match memchr::memchr2(b'"', b'\\', &b[j.min(b.len())..]) {
            None => {
                return Err(JsonError {
                    column: b.len(),
                    expected: "a closing `\"`",
                });
            }
            Some(k) => {
                let at = j + k;
                if b[at] == b'"' {
                    return Ok((at + 1, escaped));
                }
                escaped = true;
                j = at + 2;
                if j > b.len() {
                    return Err(JsonError {
                        column: b.len(),
                        expected: "an escape sequence",
                    });
                }
            }
        }
    }
}

/// Parse the string starting at `i` (which is a quote). Returns the value and the index after it.
pub fn parse_string(s: &str, i: usize) -> Result<(Cow<'_, str>, usize), JsonError> {
    let b = s.as_bytes();
    let start = i + 1;
    let (end, escaped) = string_end_escaped(b, i)?;
    let inner = &s[start..end - 1];
    if !escaped {
        return Ok((Cow::Borrowed(inner), end));
    }
    let mut out = String::with_capacity(inner.len());
    let ib = inner.as_bytes();
    let mut k = 0;
    while k < ib.len() {
        match memchr::memchr(b'\\', &ib[k..]) {
            None => {
                out.push_str(&inner[k..]);
                break;
            }
            Some(p) => {
                out.push_str(&inner[k..k + p]);
                k += p + 1;
                let col = start + k;
                match ib.get(k) {
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    Some(b'r') => out.push('\r'),
                    Some(b'b') => out.push('\u{8}'),
                    Some(b'f') => out.push('\u{c}'),
                    Some(b'/') => out.push('/'),
                    Some(b'\\') => out.push('\\'),
                    Some(b'"') => out.push('"'),
                    Some(b'u') => {
                        let hi = hex4(ib, k + 1).ok_or(JsonError {
                            column: col,
                            expected: "four hex digits",
                        })?;
                        k += 4;
                        let c = if (0xD800..0xDC00).contains(&hi)
                            && ib.get(k + 1) == Some(&b'\\')
                            && ib.get(k + 2) == Some(&b'u')
                        {
                            match hex4(ib, k + 3) {
                                Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                    k += 6;
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                }
                                _ => None,
                            }
                        } else {
                            char::from_u32(hi)
                        };
                        out.push(c.unwrap_or('\u{FFFD}'));
                    }
                    _ => {
                        return Err(JsonError {
                            column: col,
                            expected: "a valid escape sequence",
                        });
                    }
                }
                k += 1;
            }
        }
    }
    Ok((Cow::Owned(out), end))
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let h = b.get(at..at + 4)?;
    let mut n = 0u32;
    for c in h {
        n = n * 16 + (*c as char).to_digit(16)?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(s: &str) -> Result<Vec<(String, JsonValue<'_>)>, JsonError> {
        let mut v = Vec::new();
        scan_object(s, |k, val| v.push((k.into_owned(), val)))?;
        Ok(v)
    }

    #[test]
    fn flat_object_values() {
        let v = collect(
            r#"{"a":"x","b":12,"c":null,"d":true,"e":{"n":[1,"}"]},"f":"q\"\u00e9\ud83d\ude00"}"#,
        )
        .unwrap();
        assert_eq!(v[0], ("a".into(), JsonValue::Str(Cow::Borrowed("x"))));
        assert_eq!(v[1].1, JsonValue::Num("12"));
        assert_eq!(v[2].1, JsonValue::Null);
        assert_eq!(v[3].1, JsonValue::Bool(true));
        assert_eq!(v[4].1, JsonValue::Raw(r#"{"n":[1,"}"]}"#));
        assert_eq!(v[5].1, JsonValue::Str(Cow::Owned("q\"é😀".into())));
    }

    #[test]
    fn strings_end_and_unescape_as_serde_json_reads_them() {
        // Escapes and quotes at the start, near it and far after it.
        let mut bodies = vec![
            String::new(),
            "x".repeat(15),
            "x".repeat(16),
            "x".repeat(17),
        ];
        for at in [0, 1, 14, 15, 16, 17, 40] {
            for esc in ["\\\"", "\\\\", "\\n", "\\u00e9", "é"] {
                let mut b = "y".repeat(at);
                b.push_str(esc);
                b.push_str(&"z".repeat(at % 7));
                bodies.push(b);
            }
        }
        for body in &bodies {
            let text = format!("\"{body}\",1");
            let want: String = serde_json::from_str(&format!("\"{body}\"")).unwrap();
            let (got, end) = parse_string(&text, 0).unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(&text[end..], ",1", "{text}");
            assert_eq!(
                matches!(got, Cow::Borrowed(_)),
                !body.contains('\\'),
                "{text}"
            );
            // Cut anywhere inside: an error, never a panic.
            for cut in 1..text.len() - 2 {
                if let Some(t) = text.get(..cut) {
                    assert!(parse_string(t, 0).is_err(), "{t}");
                }
            }
        }
    }

    #[test]
    fn errors_have_columns() {
        assert_eq!(collect("").unwrap_err().column, 0);
        assert_eq!(collect(r#"{"a" 1}"#).unwrap_err().expected, "`:`");
        assert_eq!(collect(r#"{"a":1"#).unwrap_err().expected, "`,` or `}`");
        assert!(collect(r#"{"a":"\x"}"#).is_err());
        assert!(collect(r#"{"a":"abc"#).is_err());
        assert!(collect(r#"{"a":1} x"#).is_err());
        assert!(collect(&format!("{{\"a\":{}}}", "[".repeat(1000))).is_err());
        assert!(collect(r#"{"a":"\"#).is_err());
        assert!(collect(r#"{"a":"\u12"}"#).is_err());
    }
}
