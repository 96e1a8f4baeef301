//! Tolerant accessors over `serde_json::Value`: proto-JSON keys in snake_case or camelCase,
//! wrapped scalars (`{"value": 3}`), 64-bit integers written as strings. Never panic.

use serde_json::Value;

/// `port_value` → `portValue`.
fn camel(key: &str) -> Option<String> {
    if !key.contains('_') {
        return None;
    }
    let mut out = String::with_capacity(key.len());
    let mut up = false;
    for c in key.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The member `key` (snake_case as in Envoy's admin output) or its camelCase spelling.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let o = v.as_object()?;
    if let Some(x) = o.get(key) {
        return Some(x);
    }
    camel(key).and_then(|k| o.get(&k))
}

/// Follow a chain of keys.
pub(crate) fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |acc, k| get(acc, k))
}

/// A string member.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

/// A string member, owned (`None` when absent or empty).
pub(crate) fn os(v: &Value, key: &str) -> Option<String> {
    s(v, key).filter(|x| !x.is_empty()).map(str::to_string)
}

/// An unsigned integer: a number, a string of digits, or a wrapper `{"value": n}`.
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(t) => t.trim().parse().ok(),
        Value::Object(_) => get(v, "value").and_then(as_u64),
        _ => None,
    }
}

/// An unsigned integer member.
pub(crate) fn u(v: &Value, key: &str) -> Option<u64> {
    get(v, key).and_then(as_u64)
}

/// A boolean member (plain or `{"value": true}`).
pub(crate) fn b(v: &Value, key: &str) -> Option<bool> {
    match get(v, key)? {
        Value::Bool(x) => Some(*x),
        o @ Value::Object(_) => get(o, "value").and_then(Value::as_bool),
        Value::String(t) => t.parse().ok(),
        _ => None,
    }
}

/// An array member (empty when absent or not an array).
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    get(v, key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An array of strings member.
pub(crate) fn strs(v: &Value, key: &str) -> Vec<String> {
    arr(v, key)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The config of an extension: `typed_config` (v3), else `config` (v2 Struct).
pub(crate) fn typed_config(v: &Value) -> Option<&Value> {
    get(v, "typed_config").or_else(|| get(v, "config"))
}

/// Short name of a type URL: `type.googleapis.com/envoy.x.v3.Foo` → `envoy.x.v3.Foo`.
pub(crate) fn type_name(v: &Value) -> Option<&str> {
    let t = v.get("@type")?.as_str()?;
    Some(t.rsplit('/').next().unwrap_or(t))
}

/// A proto-JSON duration `"1.5s"` in milliseconds.
pub fn duration_ms(text: &str) -> Option<u64> {
    let t = text.trim().strip_suffix('s')?;
    let f: f64 = t.parse().ok()?;
    (f.is_finite() && f >= 0.0).then(|| (f * 1000.0).round() as u64)
}
