//! Output safety: the one sanitiser every text meshtrace prints goes through. Evidence (request
//! ids, hosts, paths, user agents, file and pod names) is untrusted: control characters and
//! bidirectional overrides are shown escaped (`\x1b`, `\r`, `\u202e`) instead of reaching the
//! terminal, secrets are masked by [`crate::redact::mask_text`], and commands printed for
//! copy-paste are shell-quoted.
//!
//! Two levels: [`line`] / [`Line`] escape one single-line field (newlines and tabs too), and
//! [`Sanitizer`] — the writer behind [`super::stdout`] and [`super::stderr`] — escapes whatever
//! still reaches it except the newlines and tabs of the layout, so a printer that forgets a
//! field can break a line but never a terminal. Escapes of characters outside C0 use the
//! `\uXXXX` form, which JSON and YAML read back as the same character, so the writer needs no
//! knowledge of the document it carries.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

/// A character that must never reach a terminal or a document raw: C0 and C1 controls, DEL,
/// bidirectional embeddings, overrides, isolates and marks, and the Unicode line and paragraph
/// separators.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Append the visible form of an unsafe character.
fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0}'..='\u{1f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        _ => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
    }
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.find(|c: char| is_unsafe(c) && !keep(c)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if is_unsafe(c) && !keep(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One single-line field: every unsafe character escaped, newlines and tabs included.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// Text whose own newlines and tabs are layout (a document, a multi-line message): every other
/// unsafe character escaped.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

/// A single-line field for `write!`/`format!`: `Line(&r.request_id)` prints [`line`] of it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a>(pub &'a str);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Padding and alignment (`{:<10}`) apply to the escaped form.
        f.pad(&line(self.0))
    }
}

/// One argument quoted for a POSIX shell: plain words (letters, digits, `-_./:@%+=,`) bare,
/// anything else in single quotes with `'\''` for an embedded quote. Unsafe characters are then
/// escaped by the writer, so such an argument is shown, not reproduced byte for byte.
pub fn shell_quote(s: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

/// A command line for copy-paste: `program`, the positional arguments, then the options, each
/// shell-quoted. When a positional argument starts with `-` (a request id chosen by a client
/// could otherwise be read as an option) the options come first and `--` ends them.
pub fn command(program: &[&str], options: &[(&str, &str)], positional: &[&str]) -> String {
    let mut words: Vec<Cow<'_, str>> = program.iter().map(|w| shell_quote(w)).collect();
    let opts = options
        .iter()
        .flat_map(|(flag, value)| [shell_quote(flag), shell_quote(value)]);
    let pos = positional.iter().map(|p| shell_quote(p));
    if positional.iter().any(|p| p.starts_with('-')) {
        words.extend(opts);
        words.push(Cow::Borrowed("--"));
        words.extend(pos);
    } else {
        words.extend(pos);
        words.extend(opts);
    }
    words.join(" ")
}

/// The most a [`Sanitizer`] holds while waiting for the end of a line; a longer line is
/// processed in pieces of this size (a secret straddling two pieces may then stay unmasked).
pub const MAX_PENDING: usize = 1 << 20;

/// A writer that sanitises everything written through it, line by line: secrets masked
/// ([`crate::redact::mask_text`]) and unsafe characters escaped, newlines and tabs kept. Holds
/// at most [`MAX_PENDING`] bytes of an unfinished line; [`Sanitizer::flush`] (and dropping it)
/// writes the rest.
pub struct Sanitizer<W: Write> {
    inner: W,
    pending: Vec<u8>,
    /// The first write error of kind `BrokenPipe`: every later write fails the same way.
    closed: bool,
}

impl<W: Write> Sanitizer<W> {
    /// Sanitise what is written to `inner`.
    pub fn new(inner: W) -> Self {
        Sanitizer {
            inner,
            pending: Vec::new(),
            closed: false,
        }
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Sanitise and write `pending[..end]`.
    fn emit(&mut self, end: usize) -> io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..end).collect();
        let s = String::from_utf8_lossy(&chunk);
        let masked = crate::redact::mask_text(&s);
        let safe = text(&masked);
        let r = self.inner.write_all(safe.as_bytes());
        if let Err(e) = &r
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed = true;
            super::note_closed_pipe();
        }
        r
    }

    /// Where a too-long unfinished line can be cut: a UTF-8 character boundary at or before
    /// [`MAX_PENDING`].
    fn cut(&self) -> usize {
        let mut end = MAX_PENDING.min(self.pending.len());
        while end > 0 && end < self.pending.len() && (self.pending[end] & 0xC0) == 0x80 {
            end -= 1;
        }
        if end == 0 { self.pending.len() } else { end }
    }
}

impl<W: Write> Write for Sanitizer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.pending.extend_from_slice(buf);
        if let Some(nl) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.emit(nl + 1)?;
        }
        while self.pending.len() > MAX_PENDING {
            let end = self.cut();
            self.emit(end)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !self.pending.is_empty() {
            self.emit(self.pending.len())?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Sanitizer<W> {
    fn drop(&mut self) {
        // Errors here have nowhere to go; a closed pipe was already recorded.
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_escape_every_control_and_bidi_character() {
        assert_eq!(
            line("a\x1b]0;x\x07b\r\nc\td\u{202e}e\u{9b}f\u{2066}\x7f"),
            "a\\x1b]0;x\\x07b\\r\\nc\\td\\u202ee\\u009bf\\u2066\\u007f"
        );
        assert!(matches!(line("plain — ünïcode"), Cow::Borrowed(_)));
        assert_eq!(text("a\nb\tc\x1bd"), "a\nb\tc\\x1bd");
        assert_eq!(format!("[{:<6}]", Line("a\nb")), "[a\\nb  ]");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("4791d0d3-e742"), "4791d0d3-e742");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("x;rm -rf ~"), "'x;rm -rf ~'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(id)`id`"), "'$(id)`id`'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            command(
                &["meshtrace", "trace"],
                &[("--bundle", "my dir")],
                &["-x", "f.log"]
            ),
            "meshtrace trace --bundle 'my dir' -- -x f.log"
        );
    }

    #[test]
    fn the_writer_escapes_masks_and_keeps_layout() {
        let mut out = Vec::new();
        {
            let mut w = Sanitizer::new(&mut out);
            write!(w, "id \x1b[2J").unwrap();
            writeln!(w, "\tpath /p?token=abc").unwrap();
            // A character split across writes is put back together.
            let bidi = "\u{202e}".as_bytes();
            w.write_all(&bidi[..1]).unwrap();
            w.write_all(&bidi[1..]).unwrap();
            write!(w, "{{\"s\":\"\u{85}\"}}").unwrap();
        }
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "id \\x1b[2J\tpath /p?token=<redacted>\n\\u202e{\"s\":\"\\u0085\"}"
        );
        // The escapes the writer uses for JSON-carried characters are JSON escapes.
        let v: serde_json::Value = serde_json::from_str(&s[s.find('{').unwrap()..]).unwrap();
        assert_eq!(v["s"], "\u{85}");
    }

    #[test]
    fn a_long_line_is_bounded() {
        let mut out = Vec::new();
        let mut w = Sanitizer::new(&mut out);
        let chunk = "é".repeat(1000);
        for _ in 0..1500 {
            w.write_all(chunk.as_bytes()).unwrap();
            assert!(w.pending.len() <= MAX_PENDING + chunk.len());
        }
        drop(w);
        assert_eq!(String::from_utf8(out).unwrap().chars().count(), 1_500_000);
    }
}
