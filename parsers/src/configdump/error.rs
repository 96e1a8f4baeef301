//! Errors reading a config dump, with the JSON path where reading stopped.

use thiserror::Error;

/// Why a config dump could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DumpError {
    /// The text is not well-formed JSON.
    #[error("malformed JSON at {path} (line {line}, column {column}): {message}")]
    Syntax {
        /// JSON path of the innermost value being read, e.g. `$.configs[2].dynamic_listeners[0]`.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON reader expected.
        message: String,
    },
    /// Well-formed JSON whose shape is not a config dump at `path`.
    #[error("not an Envoy config dump at {path}: {expected}")]
    Shape {
        /// JSON path.
        path: String,
        /// What was expected there.
        expected: String,
    },
}

enum Frame {
    Obj { key: Option<String>, want_key: bool },
    Arr(usize),
}

/// The JSON path of the value being read at byte `offset` of `text` (`$` at the top).
pub fn json_path_at(text: &str, offset: usize) -> String {
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    if bytes[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let s = text.get(start..j.min(bytes.len())).unwrap_or("");
                if let Some(Frame::Obj { key, want_key }) = stack.last_mut()
                    && *want_key
                {
                    *key = Some(s.to_string());
                    *want_key = false;
                }
                i = j + 1;
                continue;
            }
            b'{' => stack.push(Frame::Obj {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Arr(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Arr(n)) => *n += 1,
                Some(Frame::Obj { key, want_key }) => {
                    *key = None;
                    *want_key = true;
                }
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut out = String::from("$");
    for f in &stack {
        match f {
            Frame::Arr(n) => out.push_str(&format!("[{n}]")),
            Frame::Obj { key: Some(k), .. } => {
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.push('.');
                    out.push_str(k);
                } else {
                    out.push_str(&format!("[{k:?}]"));
                }
            }
            Frame::Obj { key: None, .. } => {}
        }
    }
    out
}

/// Byte offset of a 1-based line and column.
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (n, l) in text.split_inclusive('\n').enumerate() {
        if n + 1 == line {
            return off + column.saturating_sub(1).min(l.len());
        }
        off += l.len();
    }
    text.len()
}

/// A syntax error from serde_json, located.
pub(crate) fn syntax(text: &str, e: &serde_json::Error) -> DumpError {
    let (line, column) = (e.line(), e.column());
    let msg = e.to_string();
    let message = match msg.rfind(" at line ") {
        Some(k) => msg[..k].to_string(),
        None => msg,
    };
    DumpError::Syntax {
        path: json_path_at(text, offset_of(text, line, column)),
        line,
        column,
        message,
    }
}
