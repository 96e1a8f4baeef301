//! Parsing YAML and JSON resource documents within a memory budget, with YAML aliases expanded.
//!
//! A YAML alias repeats its anchor wherever it appears, so a 5 MB anchor aliased 2000 times is a
//! 10 GB document in a 5 MB file. The parser's own limit counts repeated events, not bytes, so
//! documents are built here through a [`Budget`] that charges every value as it is made (an
//! estimate of its size in memory) and stops the document as soon as the budget is spent.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Bytes a document may still take once parsed; set by [`Budget::new`], spent as values are made.
#[derive(Debug)]
pub struct Budget {
    left: u64,
    exceeded: bool,
}

/// Charged for every value (its slot in the parent).
const NODE: u64 = std::mem::size_of::<Value>() as u64;
/// Charged for every key of an object, besides the key's bytes (the key and the index entry).
const ENTRY: u64 = std::mem::size_of::<String>() as u64 + 16;

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Budget {
        Budget {
            left: limit,
            exceeded: false,
        }
    }

    /// What is left.
    pub fn left(&self) -> u64 {
        self.left
    }

    fn charge<E: de::Error>(&mut self, bytes: u64) -> Result<(), E> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.exceeded = true;
                self.left = 0;
                Err(E::custom("the document is over its size limit"))
            }
        }
    }
}

/// Why a document was not read.
#[derive(Debug)]
pub enum DocError {
    /// It would take more than its budget.
    TooLarge,
    /// It is not valid YAML/JSON (the parser's sentence).
    Invalid(String),
}

/// Parse one JSON document within `budget`.
pub fn json(text: &str, budget: &mut Budget) -> Result<Value, DocError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Seed(budget)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    finish(v, budget)
}

/// Parse the YAML documents of `text`, calling `each` with each document's 1-based number and
/// its result. `each` returns the budget for the next document. A document over its budget is
/// skipped and the next one read; reading stops at the first syntax error (the parser cannot
/// resume after one).
pub fn yaml(
    text: &str,
    mut budget: Budget,
    mut each: impl FnMut(usize, Result<Value, DocError>, &Budget) -> Option<Budget>,
) {
    if flow_deeper_than(text.as_bytes(), MAX_FLOW_DEPTH) {
        each(
            1,
            Err(DocError::Invalid(format!(
                "flow collections (`[`, `{{`) nested deeper than {MAX_FLOW_DEPTH} levels"
            ))),
            &budget,
        );
        return;
    }
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let v = Seed(&mut budget).deserialize(doc);
        let r = finish(v, &budget);
        let stop = matches!(r, Err(DocError::Invalid(_)));
        match each(i + 1, r, &budget) {
            Some(b) if !stop => budget = b,
            _ => return,
        }
    }
}

/// The deepest nesting of YAML flow collections read. The YAML parser refuses more than 128
/// levels anyway, but only after scanning them in time that grows with the square of the depth
/// (100 000 nested `[` take minutes): deeper text is refused before it is parsed.
pub const MAX_FLOW_DEPTH: usize = 128;

/// Do the flow collections of `b` (`[`…`]`, `{`…`}` outside quoted scalars and comments) nest
/// deeper than `limit`? One pass; a bracket inside a block scalar counts too, which can only
/// refuse text that holds more than `limit` unclosed brackets.
fn flow_deeper_than(b: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        // A quote or a comment starts a token only at the start of a line or after a
        // separator; elsewhere (`it's`, `a#b`) it is part of a plain scalar.
        let at_start =
            i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n' | b'\r' | b'[' | b'{' | b',');
        match c {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if at_start => {
                i += b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .unwrap_or(b.len() - i);
                continue;
            }
            b'"' if at_start => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' if at_start => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Bytes a YAML text embedded in an object (a ConfigMap's `mesh` or `config.yaml`) may take
/// once parsed.
pub const EMBEDDED_LIMIT: u64 = 16 << 20;

/// The first YAML document of a text embedded in an object, within [`EMBEDDED_LIMIT`]: `None`
/// when it is not YAML or would be larger (an alias bomb in a ConfigMap stays a few bytes).
pub fn embedded_yaml(text: &str) -> Option<Value> {
    let mut first = None;
    yaml(text, Budget::new(EMBEDDED_LIMIT), |_, r, _| {
        first = r.ok();
        None
    });
    first
}

fn finish<E: fmt::Display>(v: Result<Value, E>, budget: &Budget) -> Result<Value, DocError> {
    v.map_err(|e| match budget.exceeded {
        true => DocError::TooLarge,
        false => DocError::Invalid(e.to_string()),
    })
}

/// Builds a [`Value`] charging the budget for each part before it is made.
struct Seed<'b>(&'b mut Budget);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.charge(NODE)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.charge(NODE)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.charge(NODE)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.charge(NODE)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.charge(NODE + v.len() as u64)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.charge(NODE + v.len() as u64)?;
        Ok(Value::String(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.0.charge(NODE)?;
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.visit_none()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.charge(NODE)?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed(&mut *self.0))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.charge(NODE)?;
        let mut m = Map::new();
        while let Some(k) = map.next_key_seed(Key(&mut *self.0))? {
            let v = map.next_value_seed(Seed(&mut *self.0))?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// An object key, charged before it is copied.
struct Key<'b>(&'b mut Budget);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_string(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.0.charge(ENTRY + v.len() as u64)?;
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.0.charge(ENTRY + v.len() as u64)?;
        Ok(v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn aliases_are_charged_at_their_expanded_size() {
        let anchor = "x".repeat(10_000);
        let mut text = format!("a: &big {anchor}\nb:\n");
        for _ in 0..100 {
            text.push_str("  - *big\n");
        }
        text.push_str("---\nkind: Pod\n");
        let mut seen = Vec::new();
        yaml(&text, Budget::new(500_000), |i, r, _| {
            seen.push((i, r.is_ok(), matches!(r, Err(DocError::TooLarge))));
            Some(Budget::new(500_000))
        });
        assert_eq!(seen, vec![(1, false, true), (2, true, false)]);
        // With room for it, the first document is charged for every copy of the anchor.
        let mut left = 0;
        yaml(&text, Budget::new(2_000_000), |i, r, b| {
            if i == 1 {
                assert!(r.is_ok());
                left = b.left();
            }
            Some(Budget::new(2_000_000))
        });
        assert!(left < 2_000_000 - 101 * 10_000, "{left}");
    }

    /// A YAML alias bomb: eleven levels of ten aliases each (10^12 nodes in 600 bytes), the
    /// last one under `key`.
    pub(crate) fn alias_bomb(key: &str) -> String {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12u8 {
            let (n, p) = ((b'a' + i) as char, (b'a' + i - 1) as char);
            bomb.push_str(&format!(
                "{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            ));
        }
        bomb.push_str(&format!("{key}: *l\n"));
        bomb
    }

    /// An alias bomb and deep nesting are refused quickly.
    #[test]
    fn embedded_yaml_refuses_bombs() {
        let bomb = alias_bomb("extensionProviders");
        let deep = format!("k: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        for text in [bomb, deep] {
            let t = std::time::Instant::now();
            assert_eq!(embedded_yaml(&text), None);
            assert!(t.elapsed() < std::time::Duration::from_secs(5));
        }
        assert_eq!(
            embedded_yaml("a: 1\n---\nb: 2\n"),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(embedded_yaml("a: [unclosed"), None);
    }

    #[test]
    fn flow_depth_outside_quotes_and_comments() {
        let deep = |n: usize| format!("k: {}{}", "[".repeat(n), "]".repeat(n));
        assert!(!flow_deeper_than(deep(128).as_bytes(), 128));
        assert!(flow_deeper_than(deep(129).as_bytes(), 128));
        // Balanced collections one after another do not add up.
        assert!(!flow_deeper_than(deep(100).repeat(50).as_bytes(), 128));
        let many = "[".repeat(500);
        for quiet in [
            format!("k: \"{many}\"\n"),
            format!("k: '{many}'\n"),
            format!("k: 'it''s {many}'\n"),
            format!("k: \"a \\\" {many}\"\n"),
            format!("# {many}\nk: 1\n"),
            format!("k: v # {many}\n"),
        ] {
            assert!(!flow_deeper_than(quiet.as_bytes(), 128), "{quiet}");
        }
        // An apostrophe inside a plain scalar starts no quoted one.
        assert!(flow_deeper_than(format!("k: it's {many}").as_bytes(), 128));
        let mut seen = Vec::new();
        yaml(&deep(129), Budget::new(1 << 20), |i, r, _| {
            seen.push((i, matches!(r, Err(DocError::Invalid(_)))));
            None
        });
        assert_eq!(seen, vec![(1, true)]);
    }

    #[test]
    fn json_values_match_serde_json() {
        let text = r#"{"kind":"Pod","n":[1,-2,2.5,true,null,"s"],"m":{"a":{}}}"#;
        let v = json(text, &mut Budget::new(1 << 20)).unwrap();
        assert_eq!(v, serde_json::from_str::<Value>(text).unwrap());
        assert!(matches!(
            json(text, &mut Budget::new(100)),
            Err(DocError::TooLarge)
        ));
        assert!(matches!(
            json("{\"a\":", &mut Budget::new(1 << 20)),
            Err(DocError::Invalid(_))
        ));
    }
}
