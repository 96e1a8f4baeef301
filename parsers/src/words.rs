//! Small text helpers shared by the `key=value` line readers (ztunnel, agentgateway, the
//! endpoint picker, curl transcripts): the next word, a double-quoted value, a value cut to a
//! size at a character boundary. Each reader passes its own size limit.

/// The next whitespace-separated word and what follows it.
pub(crate) fn token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// A double-quoted value (opening quote already consumed) and what follows its closing quote,
/// with `\n`, `\t`, `\"` and `\\` unescaped and at most `max` bytes kept; an unterminated value
/// runs to the end of the line.
pub(crate) fn quoted(s: &str, max: usize) -> (String, &str) {
    let mut out = String::new();
    let push = |out: &mut String, ch: char| {
        if out.len() + ch.len_utf8() <= max {
            out.push(ch);
        }
    };
    let mut chars = s.char_indices();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, 'n')) => push(&mut out, '\n'),
                Some((_, 't')) => push(&mut out, '\t'),
                Some((_, e)) => push(&mut out, e),
                None => break,
            },
            _ => push(&mut out, ch),
        }
    }
    (out, "")
}

/// `v` cut to at most `max` bytes at a character boundary.
pub(crate) fn cap(v: &str, max: usize) -> String {
    if v.len() <= max {
        return v.to_string();
    }
    let mut end = max;
    while end > 0 && !v.is_char_boundary(end) {
        end -= 1;
    }
    v.get(..end).unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_quotes_and_caps() {
        assert_eq!(token("  a=1 b=2"), ("a=1", " b=2"));
        assert_eq!(token("last"), ("last", ""));
        assert_eq!(
            quoted(r#"a \"b\" c" rest"#, 100),
            ("a \"b\" c".to_string(), " rest")
        );
        assert_eq!(quoted(r#"x\ny"#, 100), ("x\ny".to_string(), ""));
        // Escapes count against the limit too.
        assert_eq!(quoted(r#"\"\"\"\"" tail"#, 2).0, "\"\"");
        assert_eq!(cap("héllo", 2), "h");
        assert_eq!(cap("héllo", 3), "hé");
        assert_eq!(cap("abc", 0), "");
    }
}
