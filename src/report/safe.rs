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
use std::io::{self, Seek as _, Write};

pub use super::blocks::PlainBudget;
use super::blocks::{SpoolReader, SpoolWriter};

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
    /// The verdicts on the quoted names of the lines scanned so far.
    keys: KeyVerdicts,
    /// The first write error of kind `BrokenPipe`: every later write fails the same way.
    closed: bool,
}

impl<W: Write> Sanitizer<W> {
    /// Sanitise what is written to `inner`.
    pub fn new(inner: W) -> Self {
        Sanitizer {
            inner,
            pending: Vec::new(),
            keys: KeyVerdicts::default(),
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
            let (len, untouched) = scan_line(&data[at..], &mut self.keys);
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

    /// Write `bytes`, which the caller knows [`scan_line`] finds nothing to change in, as
    /// they are (`compact::to_vec_checked` says so of a document's element): the unfinished
    /// line held is ended through the sanitiser by their first newline (it is that line's
    /// end), the rest goes straight out. In a debug build, the claim is checked.
    pub fn write_clean(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut rest = bytes;
        if !self.pending.is_empty() {
            match meshtrace_parsers::memchr::memchr(b'\n', rest) {
                Some(p) => {
                    self.write_all(&rest[..=p])?;
                    rest = &rest[p + 1..];
                }
                None => return self.write_all(rest),
            }
        }
        #[cfg(debug_assertions)]
        {
            let mut keys = KeyVerdicts::default();
            let mut at = 0;
            while at < rest.len() {
                let (len, untouched) = scan_line(&rest[at..], &mut keys);
                assert!(
                    untouched,
                    "claimed clean, changed by the sanitiser: {:?}",
                    String::from_utf8_lossy(&rest[at..at + len])
                );
                at += len;
            }
        }
        self.put(rest)
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

/// A temporary file whose every byte is written through a [`Sanitizer`]: a reader thread
/// sanitises what it spools, so the copy to standard output needs no second pass. The file
/// holds the sanitised bytes as they are while the run's [`PlainBudget`] lasts, in compressed
/// blocks after that ([`super::blocks`]).
/// [`SanitizingSpool::finish`] gives the [`SanitizedFile`] that [`super::Stdout`] copies as it
/// is; nothing else makes one.
pub struct SanitizingSpool {
    /// A second handle on the file (same offset), to read it back from the start.
    file: std::fs::File,
    writer: Sanitizer<SpoolWriter>,
}

impl SanitizingSpool {
    /// A new anonymous temporary file, sanitised as it is written, kept as it is while
    /// `budget` lasts.
    pub fn new(budget: PlainBudget) -> io::Result<Self> {
        let file = tempfile::tempfile()?;
        let writer = Sanitizer::new(SpoolWriter::new(&file, budget)?);
        Ok(SanitizingSpool { file, writer })
    }

    /// Everything written, sanitised and rewound, ready to be copied to standard output.
    pub fn finish(mut self) -> io::Result<SanitizedFile> {
        self.writer.flush()?;
        let SanitizingSpool { mut file, writer } = self;
        let (plain, len) = writer.get_ref().lengths();
        drop(writer);
        file.seek(io::SeekFrom::Start(0))?;
        Ok(SanitizedFile {
            reader: SpoolReader::new(file, plain)?,
            len,
        })
    }

    /// [`Sanitizer::write_clean`]: bytes the sanitiser would leave as they are.
    pub fn write_clean(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_clean(bytes)
    }
}

impl Write for SanitizingSpool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// A file that went through a [`Sanitizer`] as it was written ([`SanitizingSpool::finish`] is
/// the only way to get one): [`super::Stdout::copy_sanitized`] copies it to standard output
/// without scanning it again.
pub struct SanitizedFile {
    reader: SpoolReader,
    /// Bytes left to read.
    len: u64,
}

impl SanitizedFile {
    /// Nothing left to copy?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Leave out the first byte when it is the ASCII `byte` (the `,` before a document's first
    /// array element); removing one ASCII byte from the start keeps the rest sanitised.
    pub fn skip_ascii(&mut self, byte: u8) -> io::Result<()> {
        debug_assert!(byte.is_ascii());
        if self.len == 0 || !byte.is_ascii() {
            return Ok(());
        }
        if self.reader.skip_if(byte)? {
            self.len -= 1;
        }
        Ok(())
    }

    /// Everything read: an error if the file gave fewer bytes than were written to it.
    fn check_end(&self) -> io::Result<()> {
        match self.len {
            0 => Ok(()),
            n => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a temporary file of this run is damaged ({n} bytes missing at its end)"),
            )),
        }
    }
}

impl io::Read for SanitizedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check_end()?;
        }
        self.len = self.len.saturating_sub(n as u64);
        Ok(n)
    }
}

impl<W: Write + std::os::fd::AsFd> Sanitizer<W> {
    /// Write what is pending (sanitised), then `file` as it is: it went through a sanitiser
    /// already. Keeps the order of everything written. Returns the bytes copied.
    pub(super) fn copy_sanitized(&mut self, file: &mut SanitizedFile) -> io::Result<u64> {
        self.flush()?;
        let r = file.reader.copy_to(&mut self.inner).and_then(|n| {
            file.len = file.len.saturating_sub(n);
            file.check_end().map(|()| n)
        });
        if let Err(e) = &r
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.closed = true;
            super::note_closed_pipe();
        }
        r
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

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `x` equal to `c`, as their high bits. Never misses one; a byte above a match
/// may be flagged too (the borrow), so only the lowest flag is sure.
#[inline]
fn bytes_equal(x: u64, c: u8) -> u64 {
    let v = x ^ (ONES * u64::from(c));
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// The bytes of `x` (8 bytes of a line) that are not [`PLAIN`] in [`CLASS`], as their high
/// bits (tab is flagged too, and a byte above a flagged one may be: the caller looks at the
/// lowest flagged byte with [`CLASS`]). Never misses one that matters: zero means 8 plain
/// bytes, or `b`/`B` that do not start `Bearer`/`Basic` — `next` is the 8 bytes from the
/// second byte of `x` on, and a `b` is flagged only before an `e` or an `a` (`b` is a common
/// letter: stopping at each one cost more than the rest of the scan).
#[inline]
fn not_plain(x: u64, next: u64) -> u64 {
    // Below 0x20 (ASCII bytes only: `!x` clears the others), and from 0x80.
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    let folded = next | (ONES * 0x20);
    let scheme = bytes_equal(x | (ONES * 0x20), b'b')
        & (bytes_equal(folded, b'e') | bytes_equal(folded, b'a'));
    control
        | (x & HIGHS)
        | bytes_equal(x, 0x7f)
        | bytes_equal(x, b'J')
        | scheme
        | bytes_equal(x, b':')
        | bytes_equal(x, b'=')
}

/// The first byte of `b` from `i` that may not be [`PLAIN`] (or the last few bytes, fewer than
/// a word), skipping 8 bytes at a time.
#[inline]
fn skip_plain(b: &[u8], mut i: usize) -> usize {
    while let Some(word) = b.get(i..i + 8) {
        let mut x = [0u8; 8];
        x.copy_from_slice(word);
        let x = u64::from_le_bytes(x);
        // The byte after the word (none at the end: a `b` there starts no word).
        let after = u64::from(b.get(i + 8).copied().unwrap_or(0));
        let flagged = not_plain(x, (x >> 8) | (after << 56));
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

/// The length of the first line of `b` (through its newline, or all of `b`) and whether the
/// sanitiser would leave it exactly as it is: valid UTF-8, no unsafe character but tabs and
/// the newline, and nothing [`crate::redact::mask_text`] could mask — no `eyJ`, no
/// `Bearer `/`Basic ` word, no `name:`/`name=` whose name is a secret name or parameter.
/// Errs on the side of "changed" (those lines take the full path), never the other way.
/// Plain bytes are skipped 8 at a time ([`not_plain`]); the others are looked at one by one,
/// the names before separators with the verdicts in `keys` (see [`KeyVerdicts`]).
fn scan_line(b: &[u8], keys: &mut KeyVerdicts) -> (usize, bool) {
    let mut i = 0;
    let mut separators = 0;
    while i < b.len() {
        i = skip_plain(b, i);
        let Some(&c) = b.get(i) else { break };
        match CLASS[c as usize] {
            PLAIN => {}
            NEWLINE => {
                i += 1;
                break;
            }
            // A character outside ASCII: read whole; it must be valid and safe.
            ODD if c >= 0x80 => match safe_char_len(&b[i..]) {
                Some(len) => {
                    i += len;
                    continue;
                }
                None => return (line_len(b, i), false),
            },
            // A control character (not tab or newline) or DEL.
            ODD => return (line_len(b, i), false),
            SEP => {
                if keys.secret_name_before(b, i, separators) {
                    return (line_len(b, i), false);
                }
                separators += 1;
            }
            class if secret_at(b, i, class) => return (line_len(b, i), false),
            _ => {}
        }
        i += 1;
    }
    (i, true)
}

/// Would [`scan_line`] find nothing to change in a JSON string whose bytes between the quotes
/// are `b` (as written, needing no JSON escape), wherever the string sits in a line? The same
/// tests on the string's own bytes, since the bytes around it are the quotes: a quote is not a
/// name character, not `ey`, not a word character before `Bearer`/`Basic`, and not the space
/// a scheme needs after it. A `:` or `=` whose name the line's scan would look for at or
/// before the opening quote (a quoted name) is not looked into: `false`.
pub(super) fn json_string_untouched(b: &[u8]) -> bool {
    if !any_not_plain(b) {
        return true;
    }
    let mut i = 0;
    while i < b.len() {
        i = skip_plain(b, i);
        let Some(&c) = b.get(i) else { break };
        match CLASS[c as usize] {
            PLAIN => {}
            ODD if c >= 0x80 => match safe_char_len(&b[i..]) {
                Some(len) => {
                    i += len;
                    continue;
                }
                None => return false,
            },
            NEWLINE | ODD => return false,
            SEP => {
                let mut k = i;
                if c == b':' {
                    while k > 0 && b[k - 1] == b' ' && i - k < 4 {
                        k -= 1;
                    }
                }
                if k == 0 || matches!(b[k - 1], b'"' | b'\'' | b'\\') || secret_name_before(b, i) {
                    return false;
                }
            }
            class if secret_at(b, i, class) => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

/// Does `b` (a whole string: nothing after it) hold a byte [`not_plain`] flags? A word at a
/// time, the last few bytes as the word that ends `b`, a string shorter than a word padded
/// with spaces (plain, and not the `e`/`a` a `b` is flagged before).
#[inline]
fn any_not_plain(b: &[u8]) -> bool {
    any_flagged::<false>(b)
}

/// Is `b` (a whole string) plain: no byte that needs a JSON escape (`"`, `\`, below 0x20) and
/// none [`not_plain`] flags? Then the JSON writer copies it as it is, the sanitiser leaves it
/// as it is ([`json_string_untouched`]) and [`mask`] finds nothing in it (it looks only at the
/// bytes `not_plain` flags). One pass a word at a time.
#[inline]
pub(super) fn plain_json_string(b: &[u8]) -> bool {
    !any_flagged::<true>(b)
}

/// [`any_not_plain`], also flagging `"` and `\` with `ESCAPES` (control bytes it flags
/// anyway).
#[inline]
fn any_flagged<const ESCAPES: bool>(b: &[u8]) -> bool {
    const SPACES: u64 = ONES * 0x20;
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or([b' '; 8]));
    let flags = |x: u64, after: u8| {
        let f = not_plain(x, (x >> 8) | (u64::from(after) << 56));
        if ESCAPES {
            f | bytes_equal(x, b'"') | bytes_equal(x, b'\\')
        } else {
            f
        }
    };
    if b.len() < 8 {
        let mut x = SPACES;
        for (k, &c) in b.iter().enumerate() {
            x = (x & !(0xff << (8 * k))) | (u64::from(c) << (8 * k));
        }
        return flags(x, b' ') != 0;
    }
    let mut i = 0;
    while i + 8 <= b.len() {
        let after = b.get(i + 8).copied().unwrap_or(b' ');
        if flags(word(&b[i..i + 8]), after) != 0 {
            return true;
        }
        i += 8;
    }
    i < b.len() && flags(word(&b[b.len() - 8..]), b' ') != 0
}

/// [`json_string_untouched`] for the keys of a document's elements, which are also the quoted
/// names the line's scan takes before the `:` after them (so they must not be secret names),
/// with the verdicts remembered by the key's place in its element: elements repeat the same
/// keys in the same order, so a key is usually checked by comparing it with the one before.
///
/// String values' verdicts are remembered too ([`KeyChecks::value_plain`]), by their bytes:
/// the elements of a document repeat many of them (a record's method, protocol, authority,
/// cluster and user agent; a request's hop labels, summary, fix and evidence), though not
/// always at the same place (a request has as many hop labels as hops).
#[derive(Default)]
pub struct KeyChecks {
    /// Per place: the key's length (0: nothing remembered), its bytes and the verdict.
    places: Vec<(u8, [u8; KEY_BYTES], bool)>,
    /// The place of the next key.
    next: usize,
    /// [`VALUE_SLOTS`] string values and their verdicts, each in the slot a hash of its bytes
    /// chooses ([`value_slot`]).
    values: Vec<(Vec<u8>, bool)>,
    /// Per place of a key of this program's own (`&'static`): where its bytes are, how many,
    /// and the verdict (static bytes never change, so the same address is the same key).
    statics: Vec<(usize, usize, bool)>,
    /// The place of the next static key.
    next_static: usize,
    /// Static keys' verdicts by their address alone ([`STATIC_SLOTS`] of them, each in the
    /// slot a hash of its address chooses): a key met at another place than last time (an
    /// element whose optional entries shift the ones after them) is found here before it is
    /// checked again.
    by_address: Vec<(usize, usize, bool)>,
    /// Values written whole, remembered by what they were written from
    /// ([`super::compact::Object::memo`]).
    pub(super) memos: Vec<super::compact::Memo>,
}

/// How many static keys' verdicts [`KeyChecks`] remembers by their address.
const STATIC_SLOTS: usize = 256;

/// Values shorter than this are checked each time (as fast as a comparison). Eight: a
/// document repeats many short words (`via_upstream`, `outbound`, the format name), and
/// [`value_slot`] reads whole words.
const VALUE_MIN: usize = 8;
/// Values longer than this are checked each time (rarely the same twice).
const VALUE_MAX: usize = 512;
/// How many string values [`KeyChecks`] remembers.
const VALUE_SLOTS: usize = 256;

/// The slot of [`KeyChecks::values`] for a value of [`VALUE_MIN`] bytes or more: a hash of
/// its bytes, a word at a time (far cheaper than checking them; the bytes are compared in
/// full before a remembered verdict is used).
fn value_slot(b: &[u8]) -> usize {
    bytes_hash(b) as usize % VALUE_SLOTS
}

/// A hash of every byte of `b`, a word at a time, for the slots of remembered values.
pub(super) fn bytes_hash(b: &[u8]) -> u64 {
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
    if b.len() < 8 {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        return finish_hash(u64::from_le_bytes(w) ^ ((b.len() as u64) << 59));
    }
    // Every word (values of a document often differ in one byte of their middle:
    // `10.0.0.7:8081` in a hop label), the last one ending with the value.
    let mut z = b.len() as u64;
    let mut words = b.chunks_exact(8);
    for w in words.by_ref() {
        z = (z ^ word(w))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(23);
    }
    if !words.remainder().is_empty() {
        z = (z ^ word(&b[b.len() - 8..])).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    finish_hash(z)
}

/// SplitMix64's finaliser: the top bits of one multiplication alone put a log's path, a hop
/// label and a cluster name in one slot.
fn finish_hash(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl KeyChecks {
    /// A new element starts: its first key is at place 0.
    pub(super) fn restart(&mut self) {
        self.next = 0;
        self.next_static = 0;
    }

    /// The places of the next key and of the next static key.
    pub(super) fn places(&self) -> (usize, usize) {
        (self.next, self.next_static)
    }

    /// Move the places on past the keys of a value that was not written again (its bytes and
    /// verdict came from [`super::compact::Object::memo`]), so the keys after it keep their
    /// places.
    pub(super) fn skip(&mut self, (keys, statics): (usize, usize)) {
        self.next += keys;
        self.next_static += statics;
    }

    /// [`KeyChecks::untouched`] for a key of this program's own: remembered by its place and
    /// its address, so usually two comparisons.
    #[inline(always)]
    pub(super) fn static_untouched(&mut self, k: &'static str) -> bool {
        let place = self.next_static;
        self.next_static += 1;
        match self.statics.get(place) {
            Some(&(at, len, verdict)) if (at, len) == (k.as_ptr() as usize, k.len()) => verdict,
            _ => self.static_checked(place, k),
        }
    }

    /// [`KeyChecks::static_untouched`] for a key not remembered at its place: checked, and
    /// remembered there.
    #[cold]
    #[inline(never)]
    fn static_checked(&mut self, place: usize, k: &'static str) -> bool {
        let key = (k.as_ptr() as usize, k.len());
        if self.by_address.is_empty() {
            self.by_address.resize(STATIC_SLOTS, (0, 0, false));
        }
        let slot = (key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) % STATIC_SLOTS;
        let verdict = match self.by_address[slot] {
            (at, len, verdict) if (at, len) == key => verdict,
            _ => {
                let verdict = key_untouched(k.as_bytes());
                self.by_address[slot] = (key.0, key.1, verdict);
                verdict
            }
        };
        if place < KEY_PLACES {
            if self.statics.len() <= place {
                self.statics.resize(place + 1, (0, 0, false));
            }
            self.statics[place] = (k.as_ptr() as usize, k.len(), verdict);
        }
        verdict
    }

    /// Is the string value `b` written without a JSON escape and left as it is by the
    /// sanitiser ([`json_string_untouched`])? The verdict on a value seen before is reused
    /// when its slot still holds the same bytes (both tests look at nothing but the bytes).
    pub(super) fn value_plain(&mut self, b: &[u8]) -> bool {
        let plain = written_untouched;
        if b.len() < VALUE_MIN || b.len() > VALUE_MAX {
            return plain(b);
        }
        if self.values.is_empty() {
            self.values.resize_with(VALUE_SLOTS, || (Vec::new(), false));
        }
        let slot = &mut self.values[value_slot(b)];
        if slot.0 == b {
            return slot.1;
        }
        let verdict = plain(b);
        slot.0.clear();
        slot.0.extend_from_slice(b);
        slot.1 = verdict;
        verdict
    }

    /// Would the sanitiser leave the key `b` of a JSON object (and the name it makes for the
    /// `:` after it) as it is, the key written without a JSON escape?
    pub(super) fn untouched(&mut self, b: &[u8]) -> bool {
        let place = self.next;
        self.next += 1;
        if place >= KEY_PLACES || b.is_empty() || b.len() > KEY_BYTES {
            return key_untouched(b);
        }
        if self.places.len() <= place {
            self.places.resize(place + 1, (0, [0; KEY_BYTES], false));
        }
        let slot = &mut self.places[place];
        if usize::from(slot.0) == b.len() && slot.1[..b.len()] == *b {
            return slot.2;
        }
        let verdict = key_untouched(b);
        slot.0 = b.len() as u8;
        slot.1[..b.len()].copy_from_slice(b);
        slot.2 = verdict;
        verdict
    }
}

/// A key written as it is (no JSON escape) that [`json_string_untouched`] passes and that is
/// not a secret name (the name the line's scan takes for the `:` after a key).
fn key_untouched(b: &[u8]) -> bool {
    written_untouched(b) && !(b.len() >= 3 && holds_secret_part(b) && known_secret_name(b))
}

/// A string the JSON writer copies as it is (no escape) and [`json_string_untouched`] passes.
fn written_untouched(b: &[u8]) -> bool {
    !super::compact::needs_escape(b) && json_string_untouched(b)
}

/// The length of the UTF-8 character at the start of `b` (starting with a byte from 0x80)
/// when it is valid and not [`is_unsafe`].
#[inline]
fn safe_char_len(b: &[u8]) -> Option<usize> {
    utf8_char(b).and_then(|(ch, len)| (!is_unsafe(ch)).then_some(len))
}

/// The UTF-8 character at the start of `b` (starting with a byte from 0x80) and its length;
/// `None` when the bytes there are not one.
#[inline]
fn utf8_char(b: &[u8]) -> Option<(char, usize)> {
    let len = match b[0] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(b.get(..len)?).ok()?;
    s.chars().next().map(|c| (c, len))
}

/// The longest quoted name [`KeyVerdicts`] remembers.
const KEY_BYTES: usize = 40;
/// How many separators of a line [`KeyVerdicts`] remembers a name for.
const KEY_PLACES: usize = 64;

/// [`secret_name_before`]'s verdicts on quoted names (the keys of a JSON document), by the
/// place of their separator in the line: the lines of a document repeat the same keys in the
/// same order (`"authority":` is the 20th key of every record), so a name is usually checked by
/// comparing its bytes with the last one seen at its place. The verdict depends on the name's
/// bytes only; a name that differs is checked in full and replaces the one remembered.
struct KeyVerdicts {
    /// Per place: the name's length (0: nothing remembered), its bytes and the verdict.
    places: Vec<(u8, [u8; KEY_BYTES], bool)>,
}

impl Default for KeyVerdicts {
    fn default() -> Self {
        KeyVerdicts {
            places: vec![(0, [0; KEY_BYTES], false); KEY_PLACES],
        }
    }
}

impl KeyVerdicts {
    /// [`secret_name_before`] of the separator `b[j]`, the `place`-th separator of its line.
    fn secret_name_before(&mut self, b: &[u8], j: usize, place: usize) -> bool {
        let mut k = j;
        if b[j] == b':' {
            while k > 0 && b[k - 1] == b' ' && j - k < 4 {
                k -= 1;
            }
        }
        let Some(slot) = self.places.get_mut(place) else {
            return secret_name_before(b, j);
        };
        if k == 0 || (b[k - 1] != b'"' && b[k - 1] != b'\'') {
            return secret_name_before(b, j);
        }
        // A quoted name: the bytes between the quote before `k` and the one before that.
        let (q, end) = (b[k - 1], k - 1);
        let len = usize::from(slot.0);
        if len > 0 && len < end && b[end - len - 1] == q && b[end - len..end] == slot.1[..len] {
            return slot.2;
        }
        let secret = secret_name_before(b, j);
        // Remember it when the name is what the full check took: a quote before it, nearer
        // than 128 bytes, and no quote or newline inside (it is then found the same way).
        let lo = end.saturating_sub(128);
        if let Some(p) = b[lo..end].iter().rposition(|c| *c == q || *c == b'\n')
            && b[lo + p] == q
        {
            let name = &b[lo + p + 1..end];
            if !name.is_empty() && name.len() <= KEY_BYTES {
                slot.0 = name.len() as u8;
                slot.1[..name.len()].copy_from_slice(name);
                slot.2 = secret;
            }
        }
        secret
    }
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
    let mut i = 0;
    while i < b.len() {
        i = skip_plain(b, i);
        let Some(&c) = b.get(i) else { break };
        let class = CLASS[c as usize];
        if matches!(class, JAY | BEE | SEP) && secret_at(b, i, class) {
            return crate::redact::mask_text(s);
        }
        i += 1;
    }
    Cow::Borrowed(s)
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
    use std::io::Read as _;

    /// A small deterministic generator (xorshift64) for the randomised tests.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

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
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let mut untouched = 0;
        // Remembered across lines, as the writer does.
        let mut keys = KeyVerdicts::default();
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
            let (len, same) = scan_line(&line, &mut keys);
            assert_eq!(len, first, "{:?}", String::from_utf8_lossy(&line));
            assert_eq!((len, same), scan_line_bytewise(&line));
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

    /// [`scan_line`] one byte at a time, as it was before it skipped plain bytes 8 at a time.
    fn scan_line_bytewise(b: &[u8]) -> (usize, bool) {
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

    /// Skipping 8 bytes at a time misses no byte that matters, wherever it sits in a word:
    /// every byte value at every position of lines of plain bytes, and random lines of the
    /// bytes around the classes' edges.
    #[test]
    fn the_word_at_a_time_scan_sees_every_byte_that_matters() {
        for v in 0..=255u8 {
            for at in 0..24 {
                let mut line = b"acdefghiklmnopqrstuvwxyz0123456789-_./ ACDEFGHIKLM".to_vec();
                line[at] = v;
                for start in 0..3 {
                    assert_eq!(
                        scan_line(&line[start..], &mut KeyVerdicts::default()),
                        scan_line_bytewise(&line[start..]),
                        "byte {v:#x} at {at}"
                    );
                }
            }
        }
        // A scheme word at every place, across a word's edge and at the line's end: the
        // `b` is looked at only before an `e` or an `a`.
        for word in [&b"Bearer "[..], b"basic ", b"BASIC ", b"bEARER ", b"bearer"] {
            for at in 0..30 {
                for start in 0..3 {
                    let mut line = b"acdefghiklmnopqrstuvwxyz0123456789-_./ ACDEFGHIKLM".to_vec();
                    line.splice(at..at, word.iter().copied());
                    let line = &line[start..];
                    assert_eq!(
                        scan_line(line, &mut KeyVerdicts::default()),
                        scan_line_bytewise(line),
                        "{:?}",
                        String::from_utf8_lossy(line)
                    );
                    let end = &line[..at + word.len() - start.min(at)];
                    assert_eq!(
                        scan_line(end, &mut KeyVerdicts::default()),
                        scan_line_bytewise(end),
                        "{:?}",
                        String::from_utf8_lossy(end)
                    );
                }
            }
        }
        let edges: &[u8] =
            b"\x00\x08\t\n\x0b\x1f \x21\x2f9:;<=>@AIJKaBbcCyz{~\x7f\x80\xbf\xc2\xe2\xff\"'ey";
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut keys = KeyVerdicts::default();
        for _ in 0..50_000 {
            let len = (next() % 40) as usize;
            let line: Vec<u8> = (0..len)
                .map(|_| edges[(next() % edges.len() as u64) as usize])
                .collect();
            assert_eq!(
                scan_line(&line, &mut keys),
                scan_line_bytewise(&line),
                "{line:?}"
            );
            let lossy = String::from_utf8_lossy(&line);
            assert_eq!(mask(&lossy), crate::redact::mask_text(&lossy));
        }
    }

    /// A name remembered at its place decides only when the same name, quoted, is there again.
    #[test]
    fn remembered_key_verdicts_follow_the_name_at_each_place() {
        let lines: [&[u8]; 14] = [
            b"{\"authority\":\"a\",\"path\":\"/\"}\n",
            b"{\"authority\":\"a\",\"token\":\"abc\"}\n",
            b"{\"authority\":\"a\",\"path\":\"/\"}\n",
            b"{\"x\"token\":\"a\",\"path\":\"/\"}\n",
            b"{'token':\"a\",\"path\":\"/\"}\n",
            b"{\"authority\":\"a\",\"mytoken\" :\"abc\"}\n",
            b"{\"authority\":\"a\",\"token\"    :\"abc\"}\n",
            b"{\"authority\":\"a\",\"path\":\"/\",\"auth\":\"b\"}\n",
            b"{\"authority\":\"a\",\"path\":\"/\",\"author\":\"b\"}\n",
            b"{\"authority\":\"a\",\"path\":\"/\",\"author\":\"b\"}\n",
            b"{\"authority\":\"a\",\"path\":\"/\",\"\nauthor\":\"b\"}\n",
            b"{authority\":\"a\",\"path\":\"/\"}\n",
            b"{\"path\":\"/\",\"authority\":\"a\"}\n",
            b"{\"path\":\"/\",\"password\"=\"a\"}\n",
        ];
        let mut keys = KeyVerdicts::default();
        for _ in 0..2 {
            for line in lines {
                assert_eq!(
                    scan_line(line, &mut keys),
                    scan_line_bytewise(line),
                    "{:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    /// A string or key said untouched is untouched in any line of a document that holds it,
    /// whatever sits around it; and the check is not "never": plain values pass.
    #[test]
    fn a_plain_json_string_needs_no_escape_no_mask_and_is_untouched() {
        let edges: &[u8] = b"\x00\x1f\"\\\x7f\xc2\x85aAbBeEJ y:=-_'./09tok";
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut plain = 0;
        for _ in 0..60_000 {
            let len = (next() % 20) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| edges[(next() % edges.len() as u64) as usize])
                .collect();
            if plain_json_string(&bytes) {
                plain += 1;
                assert!(!super::super::compact::needs_escape(&bytes), "{bytes:?}");
                assert!(json_string_untouched(&bytes), "{bytes:?}");
                let s = std::str::from_utf8(&bytes).unwrap();
                assert!(matches!(mask(s), Cow::Borrowed(_)), "{s:?}");
                assert_eq!(crate::redact::mask_text(s), s, "{s:?}");
            }
        }
        assert!(plain > 1_000, "{plain}");
        for s in [
            "POST",
            "/v2/models/test/infer",
            "HTTP/2",
            "curl/8.6.0",
            "",
            "x",
        ] {
            assert!(plain_json_string(s.as_bytes()), "{s}");
        }
        for s in [
            "a\"b",
            "a\\b",
            "a\nb",
            "a\tb",
            "10.0.0.1:80",
            "Bearer x",
            "x\u{202e}",
            "k=v",
        ] {
            assert!(!plain_json_string(s.as_bytes()), "{s:?}");
        }
    }

    #[test]
    fn static_keys_are_remembered_by_address_and_checked_once() {
        static TOKEN: &str = "token";
        let mut checks = KeyChecks::default();
        for keys in [["method", "path"], ["path", "method"], ["method", TOKEN]] {
            checks.restart();
            for k in keys {
                assert_eq!(
                    checks.static_untouched(k),
                    key_untouched(k.as_bytes()),
                    "{k}"
                );
            }
        }
        checks.restart();
        assert!(checks.static_untouched("method"));
        assert!(!checks.static_untouched(TOKEN));
    }

    /// Keys met at ever other places (elements whose optional entries shift the keys after
    /// them) get their own verdicts, from the place, the address or a check.
    #[test]
    fn static_keys_met_at_other_places_keep_their_own_verdicts() {
        static KEYS: [&str; 12] = [
            "line",
            "token",
            "input",
            "authorization",
            "format",
            "password",
            "fields",
            "api_key",
            "start_time",
            "cookie",
            "method",
            "x-auth-token",
        ];
        // And copies of a secret name and of a plain one at hundreds of addresses, so that
        // some share a slot of the verdicts remembered by address.
        let copies: Vec<&'static str> = (0..400)
            .map(|i| -> &'static str {
                Box::leak(
                    if i % 2 == 0 { "token" } else { "method" }
                        .to_owned()
                        .into_boxed_str(),
                )
            })
            .collect();
        let mut checks = KeyChecks::default();
        for round in 0..4 {
            checks.restart();
            for i in 0..copies.len() {
                let k = copies[(i + round) % copies.len()];
                assert_eq!(
                    checks.static_untouched(k),
                    k == "method",
                    "{k} at place {i}"
                );
            }
        }
        for shift in 0..60 {
            checks.restart();
            for i in 0..KEYS.len() {
                let k = KEYS[(i * 5 + shift) % KEYS.len()];
                assert_eq!(
                    checks.static_untouched(k),
                    key_untouched(k.as_bytes()),
                    "{k} at place {i}"
                );
            }
        }
    }

    #[test]
    fn remembered_value_verdicts_are_the_verdicts() {
        let plain = written_untouched;
        let values: [&[u8]; 8] = [
            b"the proxy handling 10.135.0.43:8081 -> outbound|80||a.svc",
            b"the proxy handling 10.135.0.43:8081 -> outbound|80||a.svd",
            b"the proxy handling 10.135.0.43:8081 -> outbound|80||a\"svc",
            b"Authorization: Bearer abcdefghijklmnop",
            b"Authorization: Bearer abcdefghijklmnoq",
            b"55f053ed-7217-46a7-a211-e20229fc1eaa",
            b"short",
            b"x\xe2\x80\xaey-long-enough-to-be-remembered",
        ];
        let mut checks = KeyChecks::default();
        let mut next = xorshift(0x1234_5678_9abc_def1);
        let mut same = 0;
        for _ in 0..2_000 {
            checks.restart();
            for _ in 0..(next() % 6) {
                let v = values[(next() % values.len() as u64) as usize];
                same += usize::from(checks.values.iter().any(|(b, _)| b == v));
                assert_eq!(
                    checks.value_plain(v),
                    plain(v),
                    "{:?}",
                    String::from_utf8_lossy(v)
                );
            }
        }
        assert!(same > 1_000, "{same}");
        assert!(!checks.value_plain(b"a\"bcdefghijklmnopqrstuvwxyz"));
        // A long value (not remembered), many times.
        checks.restart();
        let long = vec![b'a'; VALUE_MAX + 1];
        for _ in 0..VALUE_SLOTS + 2 {
            assert!(checks.value_plain(&long));
        }
        // Values that share a slot keep their own verdicts.
        let a: &[u8] = b"outbound|80||svc.local";
        let b = (0..10_000u32)
            .map(|i| format!("outbound|80\"|{i}.local").into_bytes())
            .find(|b| value_slot(b) == value_slot(a))
            .expect("a value in the same slot");
        let b = &b[..];
        for _ in 0..3 {
            assert!(checks.value_plain(a));
            assert!(!checks.value_plain(b));
        }
    }

    /// The strings a document repeats spread over the slots of the values' verdicts: a log's
    /// path, hop labels, cluster names, summaries (a weaker hash put the first three of these in
    /// one slot, and they pushed each other out on every request).
    #[test]
    fn repeated_values_spread_over_the_slots() {
        let mut values: Vec<String> = vec![
            "/tmp/b/e-text-10.log".into(),
            "the proxy handling 10.135.0.43:8443 → outbound|80||knative-local-gateway.istio-system.svc.cluster.local".into(),
            "outbound|80||test-predictor-00001.aiproject.svc.cluster.local".into(),
        ];
        for i in 0..60 {
            values.push(format!("/var/log/pods/ns_pod-{i}/istio-proxy/0.log"));
            values.push(format!(
                "the proxy handling 10.135.0.{i}:8081 → outbound|80||svc-{i}.ns.svc.cluster.local"
            ));
            values.push(format!(
                "outbound|{}||model-{i}.ns.svc.cluster.local",
                8000 + i
            ));
        }
        let slots: std::collections::HashSet<usize> =
            values.iter().map(|v| value_slot(v.as_bytes())).collect();
        assert_eq!(
            values[..3]
                .iter()
                .map(|v| value_slot(v.as_bytes()))
                .collect::<std::collections::HashSet<_>>()
                .len(),
            3
        );
        // 183 values in 256 slots: about 130 distinct slots when spread at random.
        assert!(slots.len() > 110, "{} slots", slots.len());
    }

    #[test]
    fn a_json_string_said_untouched_is_untouched_in_its_line() {
        let edges: &[u8] = b"\x7f\xc2\x85\xe2\x80\xaeaAbBeEJ y:=-_'./0123456789tokenauthpwd";
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let mut untouched = 0;
        let contexts: [(&str, &str); 3] = [
            ("    {\"line\":1,\"s\":\"", "\",\"n\":null},\n"),
            ("{\"", "\":1}\n"),
            ("{\"a\":[\"x\",\"", "\"]}"),
        ];
        for round in 0..60_000 {
            let len = (next() % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| edges[(next() % edges.len() as u64) as usize])
                .collect();
            let Ok(s) = std::str::from_utf8(&bytes) else {
                continue;
            };
            let (before, after) = contexts[round % contexts.len()];
            let key = round % contexts.len() == 1;
            let said = if key {
                key_untouched(s.as_bytes())
            } else {
                json_string_untouched(s.as_bytes())
            };
            // The claim is only made of strings that need no JSON escape.
            if !said || s.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\') {
                continue;
            }
            untouched += 1;
            let line = format!("{before}{s}{after}");
            let (_, same) = scan_line(line.as_bytes(), &mut KeyVerdicts::default());
            assert!(same, "{line:?}");
            assert_eq!(reference(line.as_bytes()), line, "{line:?}");
        }
        assert!(untouched > 5_000, "{untouched}");
        for plain in [
            "10.135.0.43:8081",
            "2024-06-03T09:00:00.069Z",
            "outbound|80||a.b.svc",
        ] {
            assert!(json_string_untouched(plain.as_bytes()), "{plain}");
        }
        for changed in [
            "Bearer abc",
            "eyJhbGciOi",
            "/p?token=abc",
            "x\u{202e}y",
            "a\x7fb",
            "'x':1",
            " :x",
        ] {
            assert!(!json_string_untouched(changed.as_bytes()), "{changed:?}");
        }
        assert!(!key_untouched(b"authorization"));
        assert!(key_untouched(b"authority"));
        // Remembered by place: the same verdicts, whatever came at that place before.
        let mut checks = KeyChecks::default();
        for keys in [
            ["authority", "token"],
            ["token", "authority"],
            ["authority", "path"],
        ] {
            checks.restart();
            for k in keys {
                assert_eq!(
                    checks.untouched(k.as_bytes()),
                    key_untouched(k.as_bytes()),
                    "{k}"
                );
            }
        }
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

    #[test]
    fn a_spool_copies_what_a_sanitiser_writes_whether_kept_as_written_or_compressed() {
        // Lines with things to mask and escape, and lines the writer found clean.
        let dirty = "{\"path\":\"/p?token=abc\",\"ua\":\"\u{1b}[2J\"}\n";
        let clean = ",\n    {\"line\":1,\"input\":\"a.log\",\"duration\":12}";
        let mut want = Vec::new();
        {
            let mut w = Sanitizer::new(&mut want);
            for i in 0..3_000 {
                if i % 7 == 0 {
                    w.write_all(dirty.as_bytes()).unwrap();
                } else {
                    w.write_all(clean.as_bytes()).unwrap();
                }
            }
        }
        assert!(String::from_utf8_lossy(&want).contains("token=<redacted>"));
        for budget in [0, 50_000, u64::MAX] {
            let mut spool = SanitizingSpool::new(PlainBudget::new(budget)).unwrap();
            for i in 0..3_000 {
                if i % 7 == 0 {
                    spool.write_all(dirty.as_bytes()).unwrap();
                } else {
                    spool.write_clean(clean.as_bytes()).unwrap();
                }
            }
            let file = spool.finish().unwrap();
            assert!(!file.is_empty());
            let (tx, reader) = super::super::kernel_copy::drained_pipe();
            let mut out = Sanitizer::new(tx);
            let mut file = file;
            let n = out.copy_sanitized(&mut file).unwrap();
            drop(out);
            let got = reader.join().unwrap();
            assert_eq!(n, want.len() as u64, "budget {budget}");
            assert!(
                got == want,
                "budget {budget}: other bytes than the sanitiser's"
            );
            // Read back instead of copied, after its first byte left out.
            let mut spool = SanitizingSpool::new(PlainBudget::new(budget)).unwrap();
            spool.write_clean(clean.as_bytes()).unwrap();
            spool.write_all(dirty.as_bytes()).unwrap();
            let mut file = spool.finish().unwrap();
            file.skip_ascii(b',').unwrap();
            let mut back = String::new();
            file.read_to_string(&mut back).unwrap();
            assert_eq!(
                back,
                "\n    {\"line\":1,\"input\":\"a.log\",\"duration\":12}{\"path\":\"/p?token=<redacted>\",\"ua\":\"\\x1b[2J\"}\n",
                "budget {budget}"
            );
        }
    }
}
