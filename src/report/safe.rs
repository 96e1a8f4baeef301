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
/// writes the rest. Lines that need no change (checked in one pass over their bytes, see
/// [`scan_line`]) are copied as they are, many at a time.
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

    /// Write already safe bytes to the underlying writer.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let r = self.inner.write_all(bytes);
        if let Err(e) = &r
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed = true;
            super::note_closed_pipe();
        }
        r
    }

    /// Sanitise and write `data`: whole lines, the last one possibly without its newline.
    fn process(&mut self, data: &[u8]) -> io::Result<()> {
        let mut clean_from = 0;
        let mut at = 0;
        while at < data.len() {
            let (len, untouched) = scan_line(&data[at..]);
            let end = at + len;
            if super::style::has_marker(&data[at..end]) {
                // Colour: the text around our style markers is sanitised as below, then each
                // marker becomes its escape sequence (evidence cannot forge one).
                self.put(&data[clean_from..at])?;
                let line = String::from_utf8_lossy(&data[at..end]);
                let styled = super::style::render_line(&line, |s, out| {
                    out.push_str(&text(&crate::redact::mask_text(s)));
                });
                self.put(styled.as_bytes())?;
                clean_from = end;
            } else if !untouched {
                self.put(&data[clean_from..at])?;
                let line = String::from_utf8_lossy(&data[at..end]);
                let masked = crate::redact::mask_text(&line);
                let safe = text(&masked);
                self.put(safe.as_bytes())?;
                clean_from = end;
            }
            at = end;
        }
        self.put(&data[clean_from..])
    }

    /// Sanitise and write `pending[..end]`.
    fn emit(&mut self, end: usize) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        let r = self.process(&pending[..end]);
        pending.drain(..end);
        self.pending = pending;
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
        let mut rest = buf;
        if !self.pending.is_empty() {
            // Finish the unfinished line first.
            match rest.iter().position(|b| *b == b'\n') {
                Some(p) => {
                    self.pending.extend_from_slice(&rest[..=p]);
                    rest = &rest[p + 1..];
                    self.emit(self.pending.len())?;
                }
                None => {
                    self.pending.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        // Whole lines straight from `buf`; only the unfinished end is kept.
        if let Some(nl) = rest.iter().rposition(|b| *b == b'\n') {
            self.process(&rest[..=nl])?;
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
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

/// Byte classes for [`scan_line`].
const PLAIN: u8 = 0;
const NEWLINE: u8 = 1;
/// A control byte (not tab or newline), DEL, or any byte of a non-ASCII character.
const ODD: u8 = 2;
/// `J`: the end of `eyJ`, how every JWT starts.
const JAY: u8 = 3;
/// `b`/`B`: the start of `Bearer`/`Basic`.
const BEE: u8 = 4;
/// `:` and `=`: a separator after a name.
const SEP: u8 = 5;

const CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'\n' => NEWLINE,
            b'\t' => PLAIN,
            0..=0x1f | 0x7f..=0xff => ODD,
            b'J' => JAY,
            b'b' | b'B' => BEE,
            b':' | b'=' => SEP,
            _ => PLAIN,
        };
        i += 1;
    }
    t
};

/// The length of the first line of `b` (through its newline, or all of `b`) and whether the
/// sanitiser would leave it exactly as it is: valid UTF-8, no unsafe character but tabs and
/// the newline, and nothing [`crate::redact::mask_text`] could mask — no `eyJ`, no
/// `Bearer `/`Basic ` word, no `name:`/`name=` whose name is a secret name or parameter.
/// Errs on the side of "changed" (those lines take the full path), never the other way.
fn scan_line(b: &[u8]) -> (usize, bool) {
    let mut odd = false;
    let mut i = 0;
    while i < b.len() {
        match CLASS[b[i] as usize] {
            PLAIN => {}
            NEWLINE => {
                i += 1;
                break;
            }
            ODD => odd = true,
            class if secret_at(b, i, class) => return (line_len(b, i), false),
            _ => {}
        }
        i += 1;
    }
    let line = &b[..i];
    let untouched = !odd
        || std::str::from_utf8(line)
            .is_ok_and(|s| !s.chars().any(|c| is_unsafe(c) && c != '\n' && c != '\t'));
    (i, untouched)
}

/// Could a secret that [`crate::redact::mask_text`] masks start or end around `b[i]` (of
/// [`CLASS`] `class`)? `eyJ`, `Bearer `/`Basic `, or a secret name before a separator.
fn secret_at(b: &[u8], i: usize, class: u8) -> bool {
    match class {
        JAY => i >= 2 && &b[i - 2..i] == b"ey",
        BEE => scheme_at(b, i),
        SEP => secret_name_before(b, i),
        _ => false,
    }
}

/// [`crate::redact::mask_text`], with a shortcut for the usual value that holds nothing it
/// could mask (no JWT start, no auth scheme, no secret name before a `:` or `=`): that one is
/// returned as it is without the full search.
pub fn mask(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if b.iter().enumerate().any(|(i, c)| {
        matches!(CLASS[*c as usize], JAY | BEE | SEP) && secret_at(b, i, CLASS[*c as usize])
    }) {
        crate::redact::mask_text(s)
    } else {
        Cow::Borrowed(s)
    }
}

/// The length of the line of `b` that holds `from`, through its newline.
fn line_len(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |p| from + p + 1)
}

/// `Bearer ` or `Basic ` (any case) starting at `i`, not inside a word.
fn scheme_at(b: &[u8], i: usize) -> bool {
    if i > 0 && b[i - 1].is_ascii_alphanumeric() {
        return false;
    }
    let rest = &b[i..];
    let word = |w: &[u8]| {
        rest.len() > w.len() && rest[..w.len()].eq_ignore_ascii_case(w) && rest[w.len()] == b' '
    };
    word(b"bearer") || word(b"basic")
}

/// Is the name before the separator at `j` (as [`crate::redact::mask_text`] finds it: a
/// quoted string or a run of name characters, after up to four spaces before a `:`) a secret
/// header, key or query parameter name?
fn secret_name_before(b: &[u8], j: usize) -> bool {
    let mut k = j;
    if b[j] == b':' {
        while k > 0 && b[k - 1] == b' ' && j - k < 4 {
            k -= 1;
        }
    }
    let name = if k > 0 && (b[k - 1] == b'"' || b[k - 1] == b'\'') {
        let q = b[k - 1];
        let end = k - 1;
        let lo = end.saturating_sub(128);
        match b[lo..end].iter().rposition(|c| *c == q || *c == b'\n') {
            Some(p) if b[lo + p] == q => &b[lo + p + 1..end],
            _ => return false,
        }
    } else {
        let is_name = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
        let n = b[..k].iter().rev().take_while(|c| is_name(c)).count();
        &b[k - n..k]
    };
    if name.len() < 3 || !holds_secret_part(name) {
        return false;
    }
    known_secret_name(name)
}

/// Does `name` hold, in any case, one of the parts every secret header, key or query parameter
/// name of [`crate::redact`] holds (`key`, `sig`, `sess`, `sid`, `pwd`, `pass`, `auth`, `code`,
/// `token`, `secret`, `cookie`, `cred`)? One pass over its letter pairs, no allocation.
fn holds_secret_part(name: &[u8]) -> bool {
    const PARTS: [&[u8]; 12] = [
        b"key", b"sig", b"sess", b"sid", b"pwd", b"pass", b"auth", b"code", b"token", b"secret",
        b"cookie", b"cred",
    ];
    name.windows(2).enumerate().any(|(i, w)| {
        matches!(
            [w[0] | 0x20, w[1] | 0x20],
            [b'k', b'e']
                | [b's', b'i' | b'e']
                | [b'p', b'w' | b'a']
                | [b'a', b'u']
                | [b'c', b'o' | b'r']
                | [b't', b'o']
        ) && PARTS
            .iter()
            .any(|p| name.len() >= i + p.len() && name[i..i + p.len()].eq_ignore_ascii_case(p))
    })
}

/// [`crate::redact::is_secret_name`] or [`crate::redact::is_secret_param`], remembered for the
/// last names asked (a document repeats its keys: `"authority":` on every record).
fn known_secret_name(name: &[u8]) -> bool {
    const SLOTS: usize = 64;
    type Seen = Vec<Option<(Box<[u8]>, bool)>>;
    thread_local! {
        static SEEN: std::cell::RefCell<Seen> = std::cell::RefCell::new(vec![None; SLOTS]);
    }
    let hash = name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let slot = (hash % SLOTS as u64) as usize;
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some((n, secret)) = &seen[slot]
            && **n == *name
        {
            return *secret;
        }
        let secret = std::str::from_utf8(name)
            .is_ok_and(|n| crate::redact::is_secret_name(n) || crate::redact::is_secret_param(n));
        seen[slot] = Some((name.into(), secret));
        secret
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut copies a line untouched unless a name in it holds one of its parts: every
    /// word of the masking policy must hold one, or a new secret word would pass unmasked.
    #[test]
    fn every_secret_word_of_the_policy_sends_a_line_to_the_full_path() {
        use crate::redact::{SECRET_PARAM_SUFFIXES, SECRET_PARAMS, SECRET_WORDS};
        for w in SECRET_WORDS
            .iter()
            .chain(SECRET_PARAMS.iter())
            .chain(SECRET_PARAM_SUFFIXES.iter())
        {
            let name = format!("x{w}");
            assert!(
                holds_secret_part(name.as_bytes()),
                "{w:?} is a secret word of analysis/src/redact.rs but holds none of the parts the sanitiser's shortcut looks for (holds_secret_part)"
            );
        }
    }

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

    /// The full path, line by line: what the writer must produce whatever shortcut it takes.
    fn reference(input: &[u8]) -> String {
        let mut out = String::new();
        for line in input.split_inclusive(|b| *b == b'\n') {
            let s = String::from_utf8_lossy(line);
            out.push_str(&text(&crate::redact::mask_text(&s)));
        }
        out
    }

    #[test]
    fn lines_copied_untouched_are_exactly_those_the_full_path_keeps() {
        let pieces: [&[u8]; 40] = [
            b"\"authority\":\"a:80\"",
            b"\"response_code_details\":\"via_upstream\"",
            b"\"x-api-key\": \"abc123456\"",
            b"authorization: Bearer abcdefgh1234",
            b"Authorization:",
            b"bearer ",
            b" Basic dXNlcjpwYXNz",
            b"basic",
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            b"eyJ",
            b"?access_token=zzz",
            b"&code=1234",
            b";jsessionid=AB12",
            b" password=hunter2 ",
            b"credentialName: x",
            b"'secret' : 'v'",
            b"\"token\":",
            b"   ",
            b"key",
            b"=",
            b":",
            b"\"",
            b"'",
            b"-",
            b"\t",
            b"\n",
            b"\r",
            b"\x1b[2J",
            b"\x7f",
            "\u{202e}".as_bytes(),
            "\u{85}".as_bytes(),
            "\u{2066}".as_bytes(),
            "→ ünï".as_bytes(),
            b"\xe2\x80",
            b"\xff",
            b"10.0.0.1:8080",
            b"2024-06-03T09:00:00.007Z",
            b"{\"line\":3,",
            b"/v1/models/x:predict",
            b"session",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut untouched = 0;
        for _ in 0..20_000 {
            let mut line = Vec::new();
            for _ in 0..(next() % 8) {
                line.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let first = line
                .iter()
                .position(|b| *b == b'\n')
                .map_or(line.len(), |p| p + 1);
            let lossy = String::from_utf8_lossy(&line);
            assert_eq!(mask(&lossy), crate::redact::mask_text(&lossy));
            let (len, same) = scan_line(&line);
            assert_eq!(len, first, "{:?}", String::from_utf8_lossy(&line));
            if same {
                untouched += 1;
                assert_eq!(
                    reference(&line[..len]).as_bytes(),
                    &line[..len],
                    "{:?}",
                    String::from_utf8_lossy(&line)
                );
            }
            // Whatever the chunking, the writer gives the full path's output.
            let mut out = Vec::new();
            {
                let mut w = Sanitizer::new(&mut out);
                let cut = (next() as usize) % (line.len() + 1);
                w.write_all(&line[..cut]).unwrap();
                w.write_all(&line[cut..]).unwrap();
            }
            assert_eq!(String::from_utf8(out).unwrap(), reference(&line));
        }
        // Both paths are exercised.
        assert!(untouched > 1000 && untouched < 19_000, "{untouched}");
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
