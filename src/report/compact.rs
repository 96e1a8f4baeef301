//! Compact JSON into a byte buffer, byte for byte what `serde_json::to_writer` writes, for the
//! elements of `explain -o json`: strings that need no escape (nearly all of an access log's
//! values) are checked eight bytes at a time and copied whole, where serde_json looks at each
//! byte in turn (a tenth of the time of `explain -o json` went there, see docs/performance.md).

use std::fmt;

use serde::ser::{self, Serialize};

use super::safe::KeyChecks;

/// Why a value could not be written (a map key that is not a string, a number, a bool or a
/// char, or an error of the value's own `Serialize`).
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

/// Append `v` as compact JSON to `out`. On an error, `out` may hold part of the value.
pub fn to_vec<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<(), Error> {
    with_buf(out, Audit::Off, &mut KeyChecks::default(), v).map(|_| ())
}

/// [`to_vec`], and whether the [`super::safe::Sanitizer`] would leave what was written as it
/// is, wherever it sits in a line: every key and string value needed no JSON escape and holds
/// nothing the sanitiser changes or masks ([`super::safe::json_string_untouched`]), and no key
/// is a secret name ([`KeyChecks`], which remembers its verdicts from one value to the next).
/// The rest of the JSON (numbers, `null`, punctuation, the `:` after a key) is plain to the
/// sanitiser. `false` may be said of a value the sanitiser would leave as it is, never the
/// other way.
pub fn to_vec_checked<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    keys: &mut KeyChecks,
    v: &T,
) -> Result<bool, Error> {
    keys.restart();
    with_buf(out, Audit::Clean, keys, v).map(|a| a == Audit::Clean)
}

/// [`to_vec_checked`] for an object written field by field by `f` (the hot shape of
/// `explain -o json`, a record: its keys are this program's own, and most values can be
/// written without the serde machinery). Byte for byte what serde_json writes for the same
/// entries; the same audit.
pub(super) fn object_checked(
    out: &mut Vec<u8>,
    keys: &mut KeyChecks,
    f: impl FnOnce(&mut Object<'_>) -> Result<(), Error>,
) -> Result<bool, Error> {
    keys.restart();
    let mut buf = Buf {
        bytes: std::mem::take(out),
        audit: Audit::Clean,
        keys: std::mem::take(keys),
    };
    let r = Object::write(&mut buf, f);
    *out = buf.bytes;
    *keys = buf.keys;
    r.map(|()| buf.audit == Audit::Clean)
}

/// An object being written by [`object_checked`].
pub(super) struct Object<'b> {
    out: &'b mut Buf,
    first: bool,
}

impl Object<'_> {
    /// `{`, the entries `f` writes, `}`.
    fn write(
        out: &mut Buf,
        f: impl FnOnce(&mut Object<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        out.push(b'{');
        f(&mut Object { out, first: true })?;
        out.push(b'}');
        Ok(())
    }

    /// The key of the next entry, one of this program's own: its verdict is remembered by its
    /// place and address ([`KeyChecks::static_untouched`]).
    #[inline(always)]
    pub(super) fn key(&mut self, k: &'static str) {
        let first = std::mem::replace(&mut self.first, false);
        if self.out.audit == Audit::Clean && !self.out.keys.static_untouched(k) {
            self.out.audit = Audit::Dirty;
        }
        if self.out.audit == Audit::Clean {
            // An untouched key needs no escape: `,"key":` at once.
            let out = &mut self.out.bytes;
            out.reserve(k.len() + 4);
            if !first {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            return;
        }
        if !first {
            self.out.push(b',');
        }
        write_str(self.out, k);
        self.out.push(b':');
    }

    /// A string value, checked as [`Writer`] checks it.
    pub(super) fn str(&mut self, v: &str) {
        write_str(self.out, v);
    }

    /// A string value when it is plain ([`super::safe::plain_json_string`]: no escape, nothing
    /// the sanitiser or the masking changes), copied; `false`, and nothing written, otherwise.
    pub(super) fn plain(&mut self, v: &str) -> bool {
        if !super::safe::plain_json_string(v.as_bytes()) {
            return false;
        }
        quoted(self.out, v.as_bytes());
        true
    }

    /// A string this program wrote in a shape its tests prove plain to the sanitiser and free
    /// of escapes (a time of [`super::json`]'s writer; an `ip:port` of digits, dots and a
    /// colon): copied without a check (a debug build checks it).
    pub(super) fn proven(&mut self, v: &str) {
        debug_assert!(
            !needs_escape(v.as_bytes()) && super::safe::json_string_untouched(v.as_bytes()),
            "{v:?}"
        );
        quoted(self.out, v.as_bytes());
    }

    /// A number, or `null`.
    pub(super) fn int<I: itoa::Integer>(&mut self, v: Option<I>) {
        match v {
            Some(v) => write_int(self.out, v),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    /// A whole number read from the text `raw` (by `parse`, as the standard library reads
    /// it): `raw` itself when it is written as that number would be (decimal digits, no sign,
    /// no leading zero, at most `max_digits` of them, so it fits the number's type); else the
    /// number `parse` gives, or `null`. Most logs' numbers are written so, and copying them
    /// spares reading and writing them again.
    #[inline]
    pub(super) fn int_as_written<I: itoa::Integer>(
        &mut self,
        raw: &str,
        max_digits: usize,
        parse: impl FnOnce() -> Option<I>,
    ) {
        if canonical_digits(raw.as_bytes(), max_digits) {
            self.out.extend_from_slice(raw.as_bytes());
        } else {
            self.int(parse());
        }
    }

    /// `null`.
    pub(super) fn null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    /// Any other value, through [`Writer`].
    pub(super) fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(Writer(self.out))
    }

    /// An array of numbers.
    pub(super) fn ints(&mut self, v: &[u64]) {
        self.out.push(b'[');
        for (i, n) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_int(self.out, *n);
        }
        self.out.push(b']');
    }

    /// [`Object::str_seq`] of a slice.
    pub(super) fn strs<S: AsRef<str>>(&mut self, v: &[S]) {
        self.str_seq(v.iter().map(AsRef::as_ref));
    }

    /// An array of strings, each checked as [`Object::str`] checks it.
    pub(super) fn str_seq<'s>(&mut self, v: impl IntoIterator<Item = &'s str>) {
        self.out.push(b'[');
        for (i, s) in v.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_str(self.out, s);
        }
        self.out.push(b']');
    }

    /// An array of objects, the entries of each written by `f`.
    pub(super) fn objects<T>(
        &mut self,
        items: &[T],
        mut f: impl FnMut(&mut Object<'_>, &T) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            Object::write(self.out, |o| f(o, item))?;
        }
        self.out.push(b']');
        Ok(())
    }

    /// The value `write` writes, when it depends on nothing but `from` (and `tag`, which names
    /// what `from` is): the bytes written and their audit are remembered by `tag` and `from`,
    /// and the next value with the same `tag` and `from` is copied from them. A record's
    /// cluster and details repeat from one record to the next, and writing
    /// them again (their parse, their keys, their checks) cost a tenth of a reader's time.
    pub(super) fn memo(
        &mut self,
        tag: u8,
        from: &[u8],
        write: impl FnOnce(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.out.audit == Audit::Off || from.len() > MEMO_FROM_MAX {
            return write(self);
        }
        let slot = (super::safe::bytes_hash(from) ^ u64::from(tag).wrapping_mul(MEMO_TAG_MIX))
            as usize
            % MEMO_SLOTS;
        if self.out.keys.memos.is_empty() {
            self.out.keys.memos.resize_with(MEMO_SLOTS, Memo::default);
        }
        let m = &mut self.out.keys.memos[slot];
        if m.tag == Some(tag) && m.from == from {
            #[cfg(test)]
            {
                m.hits += 1;
            }
            self.out.bytes.extend_from_slice(&m.bytes);
            let (clean, places) = (m.clean, m.places);
            if !clean {
                self.out.audit = Audit::Dirty;
            }
            self.out.keys.skip(places);
            return Ok(());
        }
        let (start, before, audit) = (self.out.len(), self.out.keys.places(), self.out.audit);
        self.out.audit = Audit::Clean;
        write(self)?;
        let clean = self.out.audit == Audit::Clean;
        if audit == Audit::Dirty {
            self.out.audit = Audit::Dirty;
        }
        let after = self.out.keys.places();
        let written = self.out.len() - start;
        if written <= MEMO_BYTES_MAX {
            let Buf { bytes, keys, .. } = &mut *self.out;
            let m = &mut keys.memos[slot];
            m.tag = Some(tag);
            m.from.clear();
            m.from.extend_from_slice(from);
            m.bytes.clear();
            m.bytes.extend_from_slice(&bytes[start..]);
            m.clean = clean;
            m.places = (after.0 - before.0, after.1 - before.1);
        }
        Ok(())
    }

    /// An object value whose entries `f` writes.
    pub(super) fn object(
        &mut self,
        f: impl FnOnce(&mut Object<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        Object::write(self.out, f)
    }
}

fn with_buf<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    audit: Audit,
    keys: &mut KeyChecks,
    v: &T,
) -> Result<Audit, Error> {
    let mut buf = Buf {
        bytes: std::mem::take(out),
        audit,
        keys: std::mem::take(keys),
    };
    let r = v.serialize(Writer(&mut buf));
    *out = buf.bytes;
    *keys = buf.keys;
    r.map(|()| buf.audit)
}

/// One value remembered by [`Object::memo`]: what it was written from, its bytes, whether
/// the element stays clean with them, and how many keys (other, static) they hold.
#[derive(Default)]
pub(super) struct Memo {
    tag: Option<u8>,
    from: Vec<u8>,
    bytes: Vec<u8>,
    clean: bool,
    places: (usize, usize),
    /// How many times it was copied (for the tests).
    #[cfg(test)]
    pub(super) hits: usize,
}

/// How many values [`Object::memo`] remembers.
const MEMO_SLOTS: usize = 64;
/// Values written from more bytes than this, or into more, are not remembered.
const MEMO_FROM_MAX: usize = 512;
const MEMO_BYTES_MAX: usize = 2048;
/// Spreads the tags of [`Object::memo`] over the slots (an odd constant, the golden ratio's).
const MEMO_TAG_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// What [`to_vec_checked`] found so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    /// Not asked for.
    Off,
    /// Everything written so far passes the sanitiser unchanged.
    Clean,
    /// Something written may not.
    Dirty,
}

/// The bytes being written and their audit.
struct Buf {
    bytes: Vec<u8>,
    audit: Audit,
    keys: KeyChecks,
}

impl std::ops::Deref for Buf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.bytes
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

/// How JSON escapes a byte inside a string: 0 for none, `u` for `\u00XX`, else the letter
/// after the backslash (the table of RFC 8259 §7 as serde_json applies it).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Does the word hold a byte below 0x20, a `"` or a `\`? Exact: a borrow that could flag a
/// byte wrongly only comes from a byte below one that matches.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (control | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) != 0
}

/// The index of the first byte of `b` from `i` on that needs an escape, or `b.len()`.
#[inline]
fn next_escape(b: &[u8], mut i: usize) -> usize {
    loop {
        while let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if word_needs_escape(w) {
                break;
            }
            i += 8;
        }
        // Within the word flagged (or the tail): byte by byte.
        let end = (i + 8).min(b.len());
        while i < end {
            if ESCAPE[b[i] as usize] != 0 {
                return i;
            }
            i += 1;
        }
        if i >= b.len() {
            return b.len();
        }
    }
}

/// Does `b` hold a byte that needs an escape? A word at a time; the last few bytes as the
/// word that ends the string (overlapping the one before), or, in a string shorter than a
/// word, put together byte by byte with spaces after them — never copied through memory,
/// whose reload stalled on most keys and values.
#[inline]
pub(super) fn needs_escape(b: &[u8]) -> bool {
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
    if b.len() < 8 {
        let mut w = ONES * u64::from(b' ');
        for (k, &c) in b.iter().enumerate() {
            w = (w & !(0xff << (8 * k))) | (u64::from(c) << (8 * k));
        }
        return word_needs_escape(w);
    }
    let mut words = b.chunks_exact(8);
    if words.any(|w| word_needs_escape(word(w))) {
        return true;
    }
    !words.remainder().is_empty() && word_needs_escape(word(&b[b.len() - 8..]))
}

/// Append `b`, a string that needs no escape, between quotes.
#[inline]
fn quoted(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() + 2);
    out.push(b'"');
    out.extend_from_slice(b);
    out.push(b'"');
}

/// Append `s` as a JSON string.
fn write_str(out: &mut Buf, s: &str) {
    let b = s.as_bytes();
    if out.audit == Audit::Clean {
        // Checked (or its verdict remembered by its place, see `KeyChecks::value_plain`): a
        // plain value is copied; any other makes the element not clean, and is written below.
        if out.keys.value_plain(b) {
            quoted(out, b);
            return;
        }
        out.audit = Audit::Dirty;
    }
    if !needs_escape(b) {
        quoted(out, b);
        return;
    }
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    loop {
        let i = next_escape(b, start);
        out.extend_from_slice(&b[start..i]);
        let Some(&c) = b.get(i) else { break };
        match ESCAPE[c as usize] {
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
            e => out.extend_from_slice(&[b'\\', e]),
        }
        start = i + 1;
    }
    out.push(b'"');
}

/// Append the key `s` of an object (before its `:`). While the element is clean, the key's
/// verdict comes first ([`KeyChecks`]: remembered by its place, so usually a comparison with
/// the key written there last time); a clean key needs no escape and is copied as it is.
fn write_key(out: &mut Buf, s: &str) {
    let b = s.as_bytes();
    if out.audit == Audit::Clean {
        if out.keys.untouched(b) {
            quoted(out, b);
            return;
        }
        out.audit = Audit::Dirty;
    }
    write_str(out, s);
}

/// Is `b` a whole number as it is written back (`itoa`): one to `max_digits` decimal digits,
/// the first not `0` unless it is the only one?
#[inline]
fn canonical_digits(b: &[u8], max_digits: usize) -> bool {
    match b {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && b.len() <= max_digits && b.iter().all(u8::is_ascii_digit),
    }
}

fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A float as serde_json writes it (its shortest form; `null` when not finite). Rare in the
/// document, so it is left to serde_json itself.
fn write_float<F: Serialize>(out: &mut Vec<u8>, v: F) -> Result<(), Error> {
    serde_json::to_writer(&mut *out, &v).map_err(|e| Error(e.to_string()))
}

/// The serializer: appends to the buffer.
struct Writer<'b>(&'b mut Buf);

/// An array or object being written.
pub struct Compound<'b> {
    out: &'b mut Buf,
    /// No element written yet.
    first: bool,
    /// The byte that closes it (`]` or `}`), unless it was closed at once (known empty).
    close: Option<u8>,
    /// It is the value of an enum variant: `{"variant":…}` has its `}` to close too.
    variant: bool,
}

impl Compound<'_> {
    fn comma(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.comma();
        v.serialize(Writer(self.out))
    }
    fn entry<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> Result<(), Error> {
        self.comma();
        write_key(self.out, key);
        self.out.push(b':');
        v.serialize(Writer(self.out))
    }
    fn close(self) -> Result<(), Error> {
        if let Some(c) = self.close {
            self.out.push(c);
        }
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl<'b> Writer<'b> {
    /// Open an array (`[`) or object (`{`), closed at once when it is known to be empty (as
    /// serde_json does).
    fn open(self, open: u8, len: Option<usize>, variant: bool) -> Compound<'b> {
        let close = if open == b'[' { b']' } else { b'}' };
        self.0.push(open);
        let empty = len == Some(0);
        if empty {
            self.0.push(close);
        }
        Compound {
            out: self.0,
            first: true,
            close: (!empty).then_some(close),
            variant,
        }
    }

    /// `{"variant":` before a variant's value.
    fn variant_key(&mut self, variant: &str) {
        self.0.push(b'{');
        write_key(self.0, variant);
        self.0.push(b':');
    }
}

impl<'b> ser::Serializer for Writer<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'b>;
    type SerializeTuple = Compound<'b>;
    type SerializeTupleStruct = Compound<'b>;
    type SerializeTupleVariant = Compound<'b>;
    type SerializeMap = Compound<'b>;
    type SerializeStruct = Compound<'b>;
    type SerializeStructVariant = Compound<'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        write_int(self.0, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        write_float(self.0, v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        write_float(self.0, v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.0, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let mut seq = self.open(b'[', Some(v.len()), false);
        for b in v {
            seq.comma();
            write_int(seq.out, *b);
        }
        seq.close()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Error> {
        self.serialize_str(v)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.variant_key(variant);
        v.serialize(Writer(&mut *self.0))?;
        self.0.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'b>, Error> {
        Ok(self.open(b'[', len, false))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'b>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'b>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'b>, Error> {
        self.variant_key(variant);
        Ok(self.open(b'[', Some(len), true))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'b>, Error> {
        Ok(self.open(b'{', len, false))
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'b>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'b>, Error> {
        self.variant_key(variant);
        Ok(self.open(b'{', Some(len), true))
    }
}

/// serde's four array-like traits, which differ only in their names: each element after a
/// `,` but the first.
macro_rules! array_like {
    ($($name:ident :: $method:ident),*) => {$(
        impl ser::$name for Compound<'_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
                self.element(v)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

array_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(KeyWriter(&mut *self.out))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.out.push(b':');
        v.serialize(Writer(&mut *self.out))
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// serde's two struct-like traits: each field as a `"key":value` entry.
macro_rules! struct_like {
    ($($name:ident),*) => {$(
        impl ser::$name for Compound<'_> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), Error> {
                self.entry(key, v)
            }
            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

/// A map key: JSON keys are strings, so numbers, bools and chars are written quoted (as
/// serde_json does); anything else is an error.
struct KeyWriter<'b>(&'b mut Buf);

fn key_must_be_a_string() -> Error {
    Error("key must be a string".into())
}

impl KeyWriter<'_> {
    fn quoted(self, f: impl FnOnce(&mut Buf) -> Result<(), Error>) -> Result<(), Error> {
        self.0.push(b'"');
        f(&mut *self.0)?;
        self.0.push(b'"');
        Ok(())
    }
    fn float<F: Serialize>(self, v: F, finite: bool) -> Result<(), Error> {
        if !finite {
            return Err(Error("float key must be finite (got NaN or +/-inf)".into()));
        }
        self.quoted(|out| write_float(out, v))
    }
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_i8(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_i16(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_i32(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_i64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_i128(v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_u8(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_u16(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_u32(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_u64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.quoted(|out| Writer(out).serialize_u128(v))
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.float(v, v.is_finite())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.float(v, v.is_finite())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        Writer(self.0).serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_key(self.0, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Error> {
        self.serialize_str(v)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    /// A document written, or the error message.
    type Written = Result<String, String>;

    /// What serde_json writes and what [`to_vec`] writes, for one value.
    fn both<T: Serialize + ?Sized>(v: &T) -> (Written, Written) {
        let theirs = serde_json::to_vec(v)
            .map(|b| String::from_utf8(b).unwrap())
            .map_err(|e| e.to_string());
        let mut out = Vec::new();
        let ours = to_vec(&mut out, v)
            .map(|()| String::from_utf8(out).unwrap())
            .map_err(|e| e.to_string());
        (theirs, ours)
    }

    fn same<T: Serialize + ?Sized>(v: &T) {
        let (theirs, ours) = both(v);
        assert_eq!(ours, theirs);
    }

    /// Every byte value at every place of a string, on both sides of a word's edge, is written
    /// as serde_json writes it: the word-at-a-time check misses nothing.
    #[test]
    fn every_character_at_every_place_is_escaped_as_serde_json_does() {
        let base = "abcdefghijklmnopqrstuvwxyz0123";
        for c in (0u32..0x800).chain([0x2028, 0x202e, 0xfeff, 0xfffd, 0x1f600]) {
            let Some(c) = char::from_u32(c) else { continue };
            for at in 0..20 {
                for start in 0..3 {
                    let mut s: String = base[start..].to_string();
                    s.insert(at.min(s.len()), c);
                    same(&s);
                }
            }
        }
    }

    /// The word-at-a-time check is exact: every byte value at every place of strings of every
    /// length up to three words, next to every other byte value at the neighbouring place.
    #[test]
    fn the_escape_check_is_exact() {
        for v in 0..=255u8 {
            for w in [b'a', 0x00, 0x1f, 0x20, 0x21, b'"', b'\\', 0x7f, 0x80, 0xff] {
                for len in 1..=24 {
                    for at in 0..len {
                        let mut b = vec![b'x'; len];
                        b[at] = v;
                        if at + 1 < len {
                            b[at + 1] = w;
                        }
                        let want = b.iter().any(|c| ESCAPE[*c as usize] != 0);
                        assert_eq!(needs_escape(&b), want, "{b:?}");
                    }
                }
            }
        }
    }

    /// Random strings of the bytes around the escapes' edges, in strings of every length.
    #[test]
    fn random_strings_are_written_as_serde_json_writes_them() {
        let edges = [
            '\0', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1f}', ' ', '!', '"', '#', '[',
            '\\', ']', '\u{7f}', '\u{80}', 'é', '€', '🙂', 'a', 'Z',
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let s: String = (0..len)
                .map(|_| edges[(next() % edges.len() as u64) as usize])
                .collect();
            same(&s);
        }
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u8);

    #[derive(Serialize)]
    struct Tuple(i8, &'static str);

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Plain,
        New(String),
        Pair(u8, bool),
        Empty(),
        Shape { w: f64, h: f32 },
        NoFields {},
    }

    type Inner = BTreeMap<&'static str, Option<Vec<u8>>>;

    #[derive(Serialize)]
    struct Everything {
        b: bool,
        i: (i8, i16, i32, i64, i128),
        u: (u8, u16, u32, u64, u128),
        f: Vec<f64>,
        c: char,
        opt: Option<String>,
        none: Option<u8>,
        unit: (),
        unit_struct: Unit,
        newtype: Newtype,
        tuple: Tuple,
        kinds: Vec<Kind>,
        empty: Vec<u8>,
        empty_map: BTreeMap<String, u8>,
        int_keys: BTreeMap<i64, &'static str>,
        bool_keys: BTreeMap<bool, u8>,
        char_keys: BTreeMap<char, u8>,
        nested: Vec<Vec<Inner>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        #[serde(with = "bytes")]
        raw: Vec<u8>,
        #[serde(flatten)]
        flat: BTreeMap<String, String>,
    }

    mod bytes {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn every_kind_of_value_is_written_as_serde_json_writes_it() {
        let v = Everything {
            b: true,
            i: (i8::MIN, -2, i32::MAX, i64::MIN, i128::MIN),
            u: (u8::MAX, 7, 0, u64::MAX, u128::MAX),
            f: vec![
                0.0,
                -0.0,
                1.0,
                0.1,
                1e300,
                -2.5e-300,
                f64::NAN,
                f64::INFINITY,
                f64::MIN_POSITIVE,
            ],
            c: '"',
            opt: Some("a\u{1}b".into()),
            none: None,
            unit: (),
            unit_struct: Unit,
            newtype: Newtype(3),
            tuple: Tuple(-1, "t"),
            kinds: vec![
                Kind::Plain,
                Kind::New("n\n".into()),
                Kind::Pair(1, false),
                Kind::Empty(),
                Kind::Shape { w: 1.5, h: 2.0 },
                Kind::NoFields {},
            ],
            empty: vec![],
            empty_map: BTreeMap::new(),
            int_keys: [(-1, "a"), (10, "b")].into_iter().collect(),
            bool_keys: [(true, 1), (false, 0)].into_iter().collect(),
            char_keys: [('\n', 1), ('x', 0)].into_iter().collect(),
            nested: vec![
                vec![],
                vec![[("k\\", Some(vec![1, 2])), ("z", None)].into()],
            ],
            skipped: None,
            raw: vec![0, 255, 10],
            flat: [("extra key".to_string(), "v\u{7f}".to_string())].into(),
        };
        same(&v);
        same(&Kind::Plain);
        same(&Kind::Shape { w: 0.5, h: 0.25 });
        same(&[0.0f32, 1.1, f32::NEG_INFINITY]);
        same(&BTreeMap::from([(1.5f64.to_bits(), 1)]));
    }

    #[test]
    fn checked_elements_write_keys_as_serde_json_does_and_say_clean_only_of_clean_ones() {
        // Elements repeating their keys (the verdicts are remembered by place), then keys that
        // need an escape or are secret names at a place a clean key held before.
        let clean = BTreeMap::from([("authority", "a"), ("path", "/p")]);
        let cases: [(BTreeMap<&str, &str>, bool); 6] = [
            (clean.clone(), true),
            (clean.clone(), true),
            (
                BTreeMap::from([("auth\"ority", "a"), ("path", "/p")]),
                false,
            ),
            (
                BTreeMap::from([("authority", "a"), ("pa\nth", "/p")]),
                false,
            ),
            (
                BTreeMap::from([("authorization", "a"), ("path", "/p")]),
                false,
            ),
            (clean, true),
        ];
        let mut keys = KeyChecks::default();
        for (v, clean) in cases {
            let mut out = Vec::new();
            let said = to_vec_checked(&mut out, &mut keys, &v).unwrap();
            assert_eq!(out, serde_json::to_vec(&v).unwrap(), "{v:?}");
            assert_eq!(said, clean, "{v:?}");
        }
    }

    #[test]
    fn keys_that_are_not_strings_fail_as_with_serde_json() {
        let (theirs, ours) = both(&BTreeMap::from([(vec![1u8], 1)]));
        assert!(theirs.is_err() && ours.is_err(), "{theirs:?} {ours:?}");
        assert_eq!(ours.unwrap_err(), "key must be a string");
        let (theirs, ours) = both(&BTreeMap::from([(None::<u8>, 1)]));
        assert!(theirs.is_err() && ours.is_err(), "{theirs:?} {ours:?}");
        same(&BTreeMap::from([(Some(1u8), 1)]));
    }
}
