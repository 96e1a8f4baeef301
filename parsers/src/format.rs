//! Envoy access-log format strings: compile `%OPERATOR%` templates into matchers and match text lines.
//!
//! A format string such as Istio's default is a sequence of literal text and command operators.
//! [`TextFormat::compile`] turns it into [`Segment`]s; [`TextFormat::match_line`] walks a line
//! left to right, giving each operator the text up to the next literal. Each well-known operator
//! has a [`Slot`] in the record and a cheap syntactic check, so a line of another format fails
//! fast instead of being mis-parsed. Operators meshtrace has no slot for are kept as named text
//! fields; a name that is not an Envoy operator at all is an error (Envoy would refuse it too).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use memchr::memmem;

use crate::record::RawRecord;

pub use crate::slot::Slot;

/// One command operator of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Operator name, e.g. `REQ` or `START_TIME`.
    pub name: String,
    /// Argument inside the parentheses, e.g. `X-REQUEST-ID` or a strftime format.
    pub arg: Option<String>,
    /// `:N` truncation length.
    pub max_len: Option<usize>,
    /// The typed slot this operator fills, if meshtrace knows it.
    pub slot: Option<Slot>,
    /// The operator as written between the `%` signs (canonical key for unknown operators).
    pub text: Arc<str>,
    /// Shared copy of a `START_TIME(fmt)` argument, cheap to attach to each record.
    pub time_fmt: Option<Arc<str>>,
}

impl Command {
    /// `START_TIME(fmt)` with a non-default format.
    pub fn time_format(&self) -> Option<&Arc<str>> {
        self.time_fmt.as_ref()
    }
}

/// A piece of a compiled format.
#[derive(Debug, Clone)]
pub enum Segment {
    /// Literal text that must appear verbatim.
    Literal(String),
    /// An operator; index into [`TextFormat::commands`].
    Field(usize),
}

/// A compiled TEXT access-log format.
#[derive(Debug, Clone)]
pub struct TextFormat {
    name: Arc<str>,
    source: String,
    segments: Vec<Segment>,
    commands: Vec<Command>,
    /// Per segment: for a field, whether it sits between double quotes.
    quoted: Vec<bool>,
    finders: Vec<Option<memmem::Finder<'static>>>,
    /// How many operators map to typed slots.
    slot_count: usize,
    /// Cheap "certainly a success" test, when the format allows one.
    probe: Option<SuccessProbe>,
}

/// A cheap test that a line of one TEXT format is a successful request (status 1xx–3xx, no
/// response flags), without parsing it: the format's leading literal, then the literal just
/// before `%RESPONSE_CODE%`, then three digits, one space, `-`, and the next few literals of
/// the format in order (so a line of another format with the same start is not certified).
/// Lines it does not certify must be parsed; it never certifies a failure.
#[derive(Debug, Clone)]
pub struct SuccessProbe {
    lead: Vec<u8>,
    anchor: memmem::Finder<'static>,
    /// Double quotes in the literals before the anchor: the line must have exactly these
    /// before it (a quote inside an earlier field could move the parser's split).
    quotes_before: usize,
    /// The literals after `%RESPONSE_FLAGS%`, with one field between each two.
    tail: Vec<Vec<u8>>,
}

/// Does `hay` start with `lit`? A format's literals are a few bytes: compared here byte by
/// byte, as `starts_with` hands them to `memcmp` (a call that costs more than the comparison;
/// 47 a line on the Envoy default format).
#[inline]
fn begins_with(hay: &[u8], lit: &[u8]) -> bool {
    match hay.get(..lit.len()) {
        Some(h) if lit.len() <= 8 => h.iter().zip(lit).all(|(a, b)| a == b),
        Some(h) => h == lit,
        None => false,
    }
}

/// First position of a short literal (no searcher set-up: called per line).
fn find_short(hay: &[u8], lit: &[u8]) -> Option<usize> {
    let (&first, _) = lit.split_first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if begins_with(&hay[at..], lit) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

impl SuccessProbe {
    fn of(segments: &[Segment], commands: &[Command]) -> Option<SuccessProbe> {
        let slot_at = |i: usize| match segments.get(i) {
            Some(Segment::Field(c)) => commands.get(*c).and_then(|c| c.slot),
            _ => None,
        };
        let lit_at = |i: usize| match segments.get(i) {
            Some(Segment::Literal(l)) => Some(l.as_str()),
            _ => None,
        };
        let code = (0..segments.len()).find(|&i| slot_at(i) == Some(Slot::ResponseCode))?;
        let anchor = lit_at(code.checked_sub(1)?)?;
        let lead = lit_at(0)?;
        // The anchor must be the first place it occurs: not inside an earlier literal.
        let earlier = segments[..code - 1]
            .iter()
            .any(|s| matches!(s, Segment::Literal(l) if l.contains(anchor)));
        let code_cmd = match segments.get(code) {
            Some(Segment::Field(c)) => commands.get(*c)?,
            _ => return None,
        };
        if earlier
            || anchor.is_empty()
            || lead.is_empty()
            || code_cmd.max_len.is_some()
            || lit_at(code + 1) != Some(" ")
            || slot_at(code + 2) != Some(Slot::ResponseFlags)
        {
            return None;
        }
        let after_flags = *lit_at(code + 3)?.as_bytes().first()?;
        if after_flags == b'-' || after_flags.is_ascii_alphanumeric() {
            return None;
        }
        // Up to three more literals, stopping after the first that opens a quote.
        let mut tail = Vec::new();
        let mut i = code + 3;
        while let Some(l) = lit_at(i) {
            tail.push(l.as_bytes().to_vec());
            if tail.len() == 4 || l.contains('"') {
                break;
            }
            i += 2;
        }
        let quotes_before = segments[..code - 1]
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.bytes().filter(|&b| b == b'"').count(),
                Segment::Field(_) => 0,
            })
            .sum();
        Some(SuccessProbe {
            lead: lead.as_bytes().to_vec(),
            anchor: memmem::Finder::new(anchor.as_bytes()).into_owned(),
            quotes_before,
            tail,
        })
    }

    /// Is `line` certainly a successful request in this format?
    pub fn is_success(&self, line: &[u8]) -> bool {
        let Some(body) = line.strip_prefix(self.lead.as_slice()) else {
            return false;
        };
        let Some(p) = self.anchor.find(body) else {
            return false;
        };
        // No field before the status may hold a quote: then the parser's split puts the status
        // exactly here (any later anchor would have this one's quote before it).
        let quotes = memchr::memchr_iter(b'"', &line[..self.lead.len() + p]).count();
        if quotes != self.quotes_before {
            return false;
        }
        let r = &body[p + self.anchor.needle().len()..];
        if !(r.len() > 6
            && matches!(r[0], b'1'..=b'3')
            && r[1].is_ascii_digit()
            && r[2].is_ascii_digit()
            && r[3] == b' '
            && r[4] == b'-')
        {
            return false;
        }
        // The flags are exactly `-`, then each literal in turn with a non-empty field between.
        let mut rest = &r[5..];
        for (k, lit) in self.tail.iter().enumerate() {
            if k > 0 {
                match find_short(rest, lit) {
                    Some(0) | None => return false,
                    Some(at) => rest = &rest[at..],
                }
            }
            match rest.strip_prefix(lit.as_slice()) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        true
    }
}

/// Error compiling a format string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format has no command operator at all.
    #[error("format string has no %OPERATOR%: {0:?}")]
    NoOperators(String),
    /// Two operators follow each other with no literal text between them.
    #[error(
        "operators %{0}% and %{1}% have no text between them, so their values cannot be told apart"
    )]
    AdjacentOperators(String, String),
    /// An operator Envoy does not have: Envoy would refuse the format, so it is misspelt.
    #[error("{}", unknown_operator_message(.0, .1))]
    UnknownOperator(String, Option<&'static str>),
}

fn unknown_operator_message(op: &str, closest: &Option<&'static str>) -> String {
    let mut m = format!("%{op}% is not an Envoy access-log command operator");
    if let Some(c) = closest {
        m.push_str(&format!(" (did you mean %{c}%?)"));
    }
    m.push_str(
        "; Envoy refuses such a format, so check the spelling against the command operators \
         in Envoy's access-log documentation",
    );
    m
}

/// Why a line did not match a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// 0-based byte column in the line where matching failed.
    pub column: usize,
    /// What was expected there.
    pub expected: String,
    /// How many fields matched before the failure.
    pub fields_matched: usize,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: expected {}", self.column + 1, self.expected)
    }
}

/// The result of matching one line against a format.
// Records stay inline (no Box) so the per-line hot path does not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum MatchOutcome<'a> {
    /// Every segment matched and the line was consumed.
    Full(RawRecord<'a>),
    /// The line ended before the format did; the record holds what was there.
    Truncated {
        /// Fields that were present.
        record: RawRecord<'a>,
        /// Number of fields matched.
        fields_matched: usize,
        /// Index of the first segment that was not (fully) matched.
        stopped_at: usize,
    },
    /// The line is not in this format.
    Mismatch(Mismatch),
}

impl TextFormat {
    /// Compile an Envoy format string. A trailing newline (Envoy formats end in `\n`) is ignored.
    pub fn compile(name: &str, source: &str) -> Result<TextFormat, FormatError> {
        let src = source.strip_suffix('\n').unwrap_or(source);
        let src = src.strip_suffix('\r').unwrap_or(src);
        let mut segments = Vec::new();
        let mut commands: Vec<Command> = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        while let Some(p) = rest.find('%') {
            lit.push_str(&rest[..p]);
            let after = &rest[p + 1..];
            match parse_command(after) {
                Some((cmd, _)) if !crate::operators::is_known(&cmd.name) => {
                    return Err(FormatError::UnknownOperator(
                        cmd.name.clone(),
                        crate::operators::closest(&cmd.name),
                    ));
                }
                Some((cmd, used)) => {
                    if !lit.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut lit)));
                    } else if let Some(Segment::Field(prev)) = segments.last() {
                        return Err(FormatError::AdjacentOperators(
                            commands[*prev].text.to_string(),
                            cmd.text.to_string(),
                        ));
                    }
                    segments.push(Segment::Field(commands.len()));
                    commands.push(cmd);
                    rest = &after[used..];
                }
                None => {
                    // `%%` or a stray percent: literal text.
                    if let Some(stripped) = after.strip_prefix('%') {
                        lit.push('%');
                        rest = stripped;
                    } else {
                        lit.push('%');
                        rest = after;
                    }
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            segments.push(Segment::Literal(lit));
        }
        if commands.is_empty() {
            return Err(FormatError::NoOperators(source.to_string()));
        }
        let mut quoted = vec![false; segments.len()];
        let mut finders = Vec::with_capacity(segments.len());
        for (i, seg) in segments.iter().enumerate() {
            match seg {
                Segment::Literal(l) => {
                    finders.push(Some(memmem::Finder::new(l.as_bytes()).into_owned()));
                }
                Segment::Field(_) => {
                    let before = i
                        .checked_sub(1)
                        .and_then(|j| segments.get(j))
                        .is_some_and(|s| matches!(s, Segment::Literal(l) if l.ends_with('"')));
                    let after = segments
                        .get(i + 1)
                        .is_some_and(|s| matches!(s, Segment::Literal(l) if l.starts_with('"')));
                    quoted[i] = before && after;
                    finders.push(None);
                }
            }
        }
        // One operator per slot: when several operators fill the same slot (`%UPSTREAM_CLUSTER%`
        // and `%UPSTREAM_CLUSTER_RAW%`, `%START_TIME%` and `%START_TIME(%s)%`, `%REQ(USER-AGENT)%`
        // and `%REQ(USER-AGENT):10%`), the first one in the format fills it and the later ones
        // are kept as named text fields, so no value overwrites another.
        let mut claimed = [false; Slot::COUNT];
        for c in &mut commands {
            if let Some(slot) = c.slot {
                if claimed[slot as usize] {
                    c.slot = None;
                    c.time_fmt = None;
                } else {
                    claimed[slot as usize] = true;
                }
            }
        }
        let slot_count = commands.iter().filter(|c| c.slot.is_some()).count();
        let probe = SuccessProbe::of(&segments, &commands);
        Ok(TextFormat {
            name: Arc::from(name),
            source: src.to_string(),
            segments,
            commands,
            quoted,
            finders,
            slot_count,
            probe,
        })
    }

    /// The cheap success test of this format, if it has one (see [`SuccessProbe`]).
    pub fn success_probe(&self) -> Option<&SuccessProbe> {
        self.probe.as_ref()
    }

    /// The format's name (`istio-1.23`, `custom`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Shared handle on the name, cheap to clone into records.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The format string it was compiled from (without the trailing newline).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The operators, in order of appearance.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// How many operators map to typed slots.
    pub fn typed_field_count(&self) -> usize {
        self.slot_count
    }

    /// Match a whole line from the first segment.
    pub fn match_line<'a>(&self, line: &'a str) -> MatchOutcome<'a> {
        self.match_from(line, 0, 0)
    }

    /// Match a line that starts in the middle of the format: at segment `seg`, and, if that
    /// segment is a literal, `lit_offset` bytes into it. Used for pasted lines whose beginning
    /// was cut off.
    pub fn match_from<'a>(&self, line: &'a str, seg: usize, lit_offset: usize) -> MatchOutcome<'a> {
        let mut rec = RawRecord::new(self.name.clone());
        let bytes = line.as_bytes();
        let mut pos = 0usize;
        let mut fields = 0usize;
        let mut i = seg;
        let mut first = true;
        while i < self.segments.len() {
            match &self.segments[i] {
                Segment::Literal(l) => {
                    let l = if first {
                        l.get(lit_offset..).unwrap_or("")
                    } else {
                        l.as_str()
                    };
                    let rest = &bytes[pos..];
                    if begins_with(rest, l.as_bytes()) {
                        pos += l.len();
                    } else if rest.is_empty() || l.as_bytes().starts_with(rest) {
                        return MatchOutcome::Truncated {
                            record: rec,
                            fields_matched: fields,
                            stopped_at: i,
                        };
                    } else {
                        return MatchOutcome::Mismatch(Mismatch {
                            column: pos,
                            expected: show_literal(l),
                            fields_matched: fields,
                        });
                    }
                }
                Segment::Field(ci) => {
                    let cmd = &self.commands[*ci];
                    let rest = &line[pos..];
                    let (value, complete) = match self.segments.get(i + 1) {
                        None => (trim_line_end(rest), true),
                        Some(Segment::Literal(next)) => {
                            // The format's last literal ends the line, so the field before it
                            // runs to there: its value may hold that literal itself (a quote in
                            // the last quoted field). Any other literal ends the field at its
                            // first occurrence.
                            let at_end = if self.segments.get(i + 2).is_none() {
                                let t = rest.trim_end();
                                if t.ends_with(next.as_str()) {
                                    Some(t.len() - next.len())
                                } else if rest.ends_with(next.as_str()) {
                                    Some(rest.len() - next.len())
                                } else {
                                    None
                                }
                            } else {
                                None
                            };
                            let found = at_end.or_else(|| {
                                self.finders[i + 1]
                                    .as_ref()
                                    .and_then(|f| find_literal(rest.as_bytes(), f))
                            });
                            match found {
                                Some(idx) => match rest.get(..idx) {
                                    Some(v) => (v, true),
                                    None => (rest, false),
                                },
                                None => {
                                    // The line ended inside this field — but only if what is left
                                    // could be the start of one value: no closing quote inside a
                                    // quoted field, a single token in an unquoted one. Otherwise
                                    // the line is in another format.
                                    let could_be_cut = |v: &str| {
                                        if self.quoted[i] {
                                            !v.contains('"')
                                        } else {
                                            !v.contains([' ', '"'])
                                        }
                                    };
                                    // Cut inside the literal itself: the value is complete.
                                    let partial = (1..next.len())
                                        .rev()
                                        .filter(|k| next.is_char_boundary(*k))
                                        .find(|k| {
                                            rest.ends_with(&next[..*k])
                                                && could_be_cut(&rest[..rest.len() - k])
                                        });
                                    if let Some(k) = partial {
                                        let value = &rest[..rest.len() - k];
                                        let ok = match cmd.slot {
                                            Some(Slot::StartTime)
                                                if cmd.time_format().is_none() =>
                                            {
                                                looks_like_timestamp(value)
                                            }
                                            Some(slot) => slot.accepts(value),
                                            None => true,
                                        };
                                        if ok {
                                            match cmd.slot {
                                                Some(slot) => rec.set(slot, Cow::Borrowed(value)),
                                                None => rec.push_extra(
                                                    cmd.text.clone(),
                                                    Cow::Borrowed(value),
                                                ),
                                            }
                                            return MatchOutcome::Truncated {
                                                record: rec,
                                                fields_matched: fields + 1,
                                                stopped_at: i + 1,
                                            };
                                        }
                                    }
                                    // Cut right after a details value that is whole by
                                    // its shape (a pasted line often ends there): kept.
                                    let whole = rest.trim_end();
                                    if cmd.slot == Some(Slot::ResponseCodeDetails)
                                        && could_be_cut(whole)
                                        && crate::details::looks_whole(whole)
                                    {
                                        rec.set(Slot::ResponseCodeDetails, Cow::Borrowed(whole));
                                        return MatchOutcome::Truncated {
                                            record: rec,
                                            fields_matched: fields + 1,
                                            stopped_at: i + 1,
                                        };
                                    }
                                    if !could_be_cut(rest) {
                                        return MatchOutcome::Mismatch(Mismatch {
                                            column: pos,
                                            expected: format!(
                                                "%{}% followed by {}",
                                                cmd.text,
                                                show_literal(next)
                                            ),
                                            fields_matched: fields,
                                        });
                                    }
                                    (rest, false)
                                }
                            }
                        }
                        Some(Segment::Field(_)) => (rest, false),
                    };
                    if !complete {
                        // The value may itself be cut: keep it only if it is the format's last
                        // field. Otherwise it is reported missing, never half-filled.
                        return MatchOutcome::Truncated {
                            record: rec,
                            fields_matched: fields,
                            stopped_at: i,
                        };
                    }
                    if let Some(slot) = cmd.slot {
                        let ok = if cmd.time_format().is_some() {
                            !value.is_empty()
                        } else if slot == Slot::StartTime {
                            looks_like_timestamp(value)
                        } else {
                            // A quote in an unquoted field means the line is in another
                            // format — except in the path, where Envoy writes quotes as sent.
                            (self.quoted[i]
                                || slot == Slot::Path
                                || crate::swar::find_byte(b'"', value.as_bytes()).is_none())
                                && slot.accepts(value)
                        };
                        if !ok {
                            return MatchOutcome::Mismatch(Mismatch {
                                column: pos,
                                expected: format!("%{}% ({})", cmd.text, slot.expectation()),
                                fields_matched: fields,
                            });
                        }
                        rec.set(slot, Cow::Borrowed(value));
                    } else {
                        if !self.quoted[i]
                            && memchr::memchr(b'"', value.as_bytes()).is_some()
                            && self.segments.get(i + 1).is_some()
                        {
                            return MatchOutcome::Mismatch(Mismatch {
                                column: pos,
                                expected: format!("%{}% (an unquoted value)", cmd.text),
                                fields_matched: fields,
                            });
                        }
                        rec.push_extra(cmd.text.clone(), Cow::Borrowed(value));
                    }
                    if let Some(tf) = cmd.time_format() {
                        rec.set_time_format(tf.clone());
                    }
                    fields += 1;
                    pos += value.len();
                    if self.segments.get(i + 1).is_none() {
                        pos = bytes.len();
                    }
                }
            }
            first = false;
            i += 1;
        }
        if pos < bytes.len() && !line[pos..].trim().is_empty() {
            return MatchOutcome::Mismatch(Mismatch {
                column: pos,
                expected: "end of line".to_string(),
                fields_matched: fields,
            });
        }
        MatchOutcome::Full(rec)
    }

    /// Slots that come after segment `seg` (used to list fields missing from a cut line).
    pub fn slots_from(&self, seg: usize) -> Vec<Arc<str>> {
        self.segments
            .iter()
            .skip(seg)
            .filter_map(|s| match s {
                Segment::Field(ci) => Some(self.commands[*ci].text.clone()),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    /// Operators before segment `seg` (fields missing from a line whose start was cut).
    pub fn slots_before(&self, seg: usize) -> Vec<Arc<str>> {
        self.segments
            .iter()
            .take(seg)
            .filter_map(|s| match s {
                Segment::Field(ci) => Some(self.commands[*ci].text.clone()),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    /// Points where a pasted line may start when its beginning was cut: `(segment, literal
    /// offset)` pairs within the first `max_fields` operators, latest-first is not required.
    pub fn resume_points(&self, max_fields: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut fields = 0;
        for (i, seg) in self.segments.iter().enumerate().skip(1) {
            match seg {
                Segment::Literal(l) => {
                    // A cut line starts at most a few bytes before the next field: try only the
                    // last MAX_LITERAL_SUFFIX bytes of a literal, so a long literal in a custom
                    // format cannot make every unmatched line cost O(len²).
                    let from = l.len().saturating_sub(MAX_LITERAL_SUFFIX);
                    for (off, _) in l.char_indices().filter(|(o, _)| *o >= from) {
                        out.push((i, off));
                    }
                }
                Segment::Field(_) => {
                    out.push((i, 0));
                    fields += 1;
                    if fields >= max_fields {
                        break;
                    }
                }
            }
        }
        out
    }
}

/// Longest literal suffix a cut line may start with (see [`TextFormat::resume_points`]).
const MAX_LITERAL_SUFFIX: usize = 8;

/// A literal for messages: long ones are shortened.
fn show_literal(l: &str) -> String {
    if l.len() <= 40 {
        format!("{l:?}")
    } else {
        let cut: String = l.chars().take(32).collect();
        format!("{cut:?}…")
    }
}

fn trim_line_end(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

/// `YYYY-MM-DDTHH:MM:SS…` (Envoy's default START_TIME), checked by shape only.
pub(crate) fn looks_like_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 19
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
}

/// Parse `NAME`, `NAME(ARG)` or `NAME(ARG):N` followed by `%`. Returns the command and the
/// number of bytes consumed (including the closing `%`).
/// The grammar of one command operator after its opening `%`:
/// `NAME` `("(" ARG ")")?` `(":" MAX_LEN)?` `"%"`, where NAME is `[A-Z0-9_]+` and ARG runs to the
/// first `)`. Returns the operator's name, argument and length limit, and the bytes consumed
/// before the closing `%`.
fn command_grammar(s: &str) -> nom::IResult<&str, (&str, Option<&str>, Option<&str>), ()> {
    use nom::Parser;
    use nom::bytes::complete::{tag, take_until, take_while1};
    use nom::character::complete::{char, digit1};
    use nom::combinator::opt;
    use nom::sequence::{delimited, preceded, terminated};
    terminated(
        (
            take_while1(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            opt(delimited(char('('), take_until(")"), char(')'))),
            opt(preceded(char(':'), digit1)),
        ),
        tag("%"),
    )
    .parse(s)
}

fn parse_command(s: &str) -> Option<(Command, usize)> {
    let (rest, (name, arg, max_len)) = command_grammar(s).ok()?;
    // Up to (not including) the closing `%`.
    let i = s.len() - rest.len() - 1;
    let arg = arg.map(str::to_string);
    let max_len = max_len.and_then(|n| n.parse().ok());
    let text: Arc<str> = Arc::from(&s[..i]);
    let slot = Slot::from_operator(name, arg.as_deref());
    let time_fmt = match (&slot, &arg) {
        (Some(Slot::StartTime), Some(a)) => Some(Arc::from(a.as_str())),
        _ => None,
    };
    Some((
        Command {
            name: name.to_string(),
            arg,
            max_len,
            slot,
            text,
            time_fmt,
        },
        i + 1,
    ))
}

/// The first place of the literal `finder` looks for in `hay`. A value between two literals of
/// a format is short, so the literal's first byte is looked for (a word at a time) and the rest
/// compared, a few times, before the general search takes over (its set-up costs more than
/// the whole value on most fields).
fn find_literal(hay: &[u8], finder: &memmem::Finder<'_>) -> Option<usize> {
    let lit = finder.needle();
    let Some(&first) = lit.first() else {
        return Some(0);
    };
    let mut at = 0;
    for _ in 0..4 {
        let i = at + crate::swar::find_byte(first, hay.get(at..)?)?;
        if begins_with(&hay[i..], lit) {
            return Some(i);
        }
        at = i + 1;
    }
    finder.find(hay.get(at..)?).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find_literal` finds what `memmem` finds: the first place, or none; with many decoys
    /// (the literal's first byte, its first bytes cut short) before, after and instead of it.
    #[test]
    fn find_literal_finds_the_first_place_memmem_finds() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for lit in ["\"", "\" ", "\" \"", "] \"", " ", "\"\n", "abc", "x"] {
            let finder = memmem::Finder::new(lit.as_bytes());
            let pool: Vec<u8> = format!("{lit}ab -\"]").into_bytes();
            for _ in 0..4000 {
                let len = next(40) as usize;
                let hay: Vec<u8> = (0..len)
                    .map(|_| pool[next(pool.len() as u64) as usize])
                    .collect();
                assert_eq!(
                    find_literal(&hay, &finder),
                    finder.find(&hay),
                    "{lit:?} in {:?}",
                    String::from_utf8_lossy(&hay)
                );
            }
        }
        let empty = memmem::Finder::new(b"");
        assert_eq!(find_literal(b"abc", &empty), Some(0));
    }

    #[test]
    fn compiles_operators_with_args_and_lengths() {
        let f = TextFormat::compile(
            "t",
            "[%START_TIME(%Y/%m/%dT%H:%M:%S%z %s)%] %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):100% %HOSTNAME% 100%% %DYNAMIC_METADATA(istio.mixer:status)%\n",
        )
        .unwrap();
        let c = f.commands();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].name, "START_TIME");
        assert_eq!(c[0].arg.as_deref(), Some("%Y/%m/%dT%H:%M:%S%z %s"));
        assert_eq!(c[1].slot, Some(Slot::Path));
        assert_eq!(c[1].max_len, Some(100));
        assert_eq!(c[2].slot, None);
        assert_eq!(&*c[2].text, "HOSTNAME");
        assert_eq!(c[3].slot, Some(Slot::MixerStatus));
        assert!(matches!(&f.segments()[6], Segment::Literal(l) if l == " 100% "));
    }

    #[test]
    fn rejects_formats_without_operators_or_with_adjacent_ones() {
        assert!(matches!(
            TextFormat::compile("x", "hello"),
            Err(FormatError::NoOperators(_))
        ));
        assert!(matches!(
            TextFormat::compile("x", "%BYTES_SENT%%BYTES_RECEIVED%"),
            Err(FormatError::AdjacentOperators(..))
        ));
    }

    #[test]
    fn stray_percent_is_literal() {
        let f = TextFormat::compile("x", "50% %RESPONSE_CODE% %").unwrap();
        match f.match_line("50% 200 %") {
            MatchOutcome::Full(r) => assert_eq!(r.get(Slot::ResponseCode), Some("200")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_operators_are_named_text_fields() {
        let f = TextFormat::compile(
            "x",
            "%RESPONSE_CODE% %UPSTREAM_REQUEST_ATTEMPT_COUNT% \"%REQ(X-B3-TRACEID)%\"",
        )
        .unwrap();
        match f.match_line("503 3 \"abc def\"") {
            MatchOutcome::Full(r) => {
                assert_eq!(r.extra("UPSTREAM_REQUEST_ATTEMPT_COUNT"), Some("3"));
                assert_eq!(r.extra("REQ(X-B3-TRACEID)"), Some("abc def"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn operators_envoy_does_not_have_are_errors_naming_them() {
        let e = TextFormat::compile("x", "%RESPONSE_COD% %DURATION%").unwrap_err();
        assert_eq!(
            e,
            FormatError::UnknownOperator("RESPONSE_COD".into(), Some("RESPONSE_CODE"))
        );
        let m = e.to_string();
        assert!(
            m.contains("%RESPONSE_COD%") && m.contains("did you mean %RESPONSE_CODE%?"),
            "{m}"
        );
        let e = TextFormat::compile("x", "[%START_TIME%] %NOPE%").unwrap_err();
        assert_eq!(e, FormatError::UnknownOperator("NOPE".into(), None));
        // Inside an argument `%` is not an operator (`START_TIME(%s)`), and `%%` is a percent.
        assert!(TextFormat::compile("x", "%START_TIME(%s.%3f)% 100%% %RESPONSE_CODE%").is_ok());
    }

    #[test]
    fn mismatch_names_column_and_field() {
        let f = TextFormat::compile("x", "%RESPONSE_CODE% %BYTES_SENT%").unwrap();
        match f.match_line("200 abc") {
            MatchOutcome::Mismatch(m) => {
                assert_eq!(m.column, 4);
                assert!(m.expected.contains("BYTES_SENT"), "{}", m.expected);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cut_inside_a_literal_keeps_the_complete_value() {
        // Regression: a pasted line wrapped right after `"10.134.0.2,10.135.0.43" ` (the
        // OpenShift AI example).
        let f = TextFormat::compile(
            "x",
            "%RESPONSE_CODE% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" %ROUTE_NAME%",
        )
        .unwrap();
        match f.match_line("400 \"10.134.0.2,10.135.0.43\" ") {
            MatchOutcome::Truncated {
                record,
                fields_matched,
                ..
            } => {
                assert_eq!(fields_matched, 2);
                assert_eq!(
                    record.get(Slot::XForwardedFor),
                    Some("10.134.0.2,10.135.0.43")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_of_another_format_is_a_mismatch_not_a_cut_line() {
        // Regression: lines of a custom format were taken as cut istio-1.23 lines and lost
        // their request ids. A delimiter that never comes, with more words after, is a mismatch.
        let f = TextFormat::compile(
            "x",
            "%RESPONSE_CODE% %RESPONSE_FLAGS% \"%REQ(X-REQUEST-ID)%\" %ROUTE_NAME%",
        )
        .unwrap();
        assert!(matches!(
            f.match_line("200 - rid=abc trace=def"),
            MatchOutcome::Mismatch(_)
        ));
        assert!(matches!(
            f.match_line("200 - \"abc def"),
            MatchOutcome::Truncated {
                fields_matched: 2,
                ..
            }
        ));
    }

    #[test]
    fn resume_points_stay_few_for_long_literals() {
        // Regression (fuzz/regressions/format_compiler-quadratic-resume): a 16000-byte literal
        // made every unmatched line try 16000 start offsets.
        let fmt = format!(
            "%RESPONSE_CODE% {} %BYTES_SENT% %DURATION%",
            "x".repeat(16000)
        );
        let f = TextFormat::compile("x", &fmt).unwrap();
        assert!(
            f.resume_points(3).len() <= 3 * (MAX_LITERAL_SUFFIX + 1),
            "{}",
            f.resume_points(3).len()
        );
        let mut p = crate::detect::LineParser::new(&crate::detect::FormatSpec::Text(
            std::sync::Arc::new(f),
        ));
        let line = format!("zzz {}", "y".repeat(16000));
        match p.parse(&line) {
            crate::detect::LineOutcome::Malformed(m) => {
                assert!(m.expected.len() < 200, "{}", m.expected)
            }
            other => panic!("{other:?}"),
        }
    }

    /// A field's value as meshtrace keeps it: through its slot, or under the operator's name.
    fn field<'r>(f: &TextFormat, r: &'r RawRecord<'_>, op: &str) -> Option<&'r str> {
        let c = f.commands().iter().find(|c| &*c.text == op)?;
        match c.slot {
            Some(slot) => r.get(slot),
            None => r.extra(op),
        }
    }

    #[test]
    fn fields_as_envoy_wrote_them() {
        // (format, line, operator → value). Rows found by the format oracle against Envoy 1.40
        // (`testdata/lab/format-oracle`): each was mis-read before.
        #[allow(clippy::type_complexity)]
        let rows: &[(&str, &str, &[(&str, &str)])] = &[
            // Several operators of one slot: the first fills it, the later ones are kept by
            // name (the later one used to overwrite the earlier).
            (
                "[%START_TIME%] %RESPONSE_CODE% epoch=%START_TIME(%s)%",
                "[2026-12-03T09:45:48.638Z] 200 epoch=1796291148",
                &[
                    ("START_TIME", "2026-12-03T09:45:48.638Z"),
                    ("START_TIME(%s)", "1796291148"),
                ],
            ),
            (
                "%RESPONSE_CODE% %UPSTREAM_CLUSTER_RAW% cluster=%UPSTREAM_CLUSTER%",
                "200 upstream cluster=upstream_alt_stat",
                &[
                    ("UPSTREAM_CLUSTER_RAW", "upstream"),
                    ("UPSTREAM_CLUSTER", "upstream_alt_stat"),
                ],
            ),
            (
                "%RESPONSE_CODE% \"%REQ(USER-AGENT)%\" ua10=\"%REQ(USER-AGENT):10%\" x",
                "200 \"oracle-client/1.0\" ua10=\"oracle-cli\" x",
                &[
                    ("REQ(USER-AGENT)", "oracle-client/1.0"),
                    ("REQ(USER-AGENT):10", "oracle-cli"),
                ],
            ),
            (
                "%RESPONSE_CODE% %RESPONSE_FLAGS% flags_long=%RESPONSE_FLAGS_LONG%",
                "503 URX,UF flags_long=UpstreamRetryLimitExceeded,UpstreamConnectionFailure",
                &[
                    ("RESPONSE_FLAGS", "URX,UF"),
                    (
                        "RESPONSE_FLAGS_LONG",
                        "UpstreamRetryLimitExceeded,UpstreamConnectionFailure",
                    ),
                ],
            ),
            (
                "%RESPONSE_CODE% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% path=\"%REQ(:PATH)%\" rid=%REQ(x-request-id)% %REQ(X-REQUEST-ID)%",
                "200 /rewrite/200?from=rewrite path=\"/status/200?from=rewrite\" rid=a b",
                &[
                    (
                        "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)",
                        "/rewrite/200?from=rewrite",
                    ),
                    ("REQ(:PATH)", "/status/200?from=rewrite"),
                    ("REQ(x-request-id)", "a"),
                    ("REQ(X-REQUEST-ID)", "b"),
                ],
            ),
            // The format's last literal ends the line: the last quoted field may hold a quote
            // (`%REQ(USER-AGENT):10%` of `curl/8.5 "quoted" agent`); was "expected end of line".
            (
                "%RESPONSE_CODE% ua10=\"%REQ(USER-AGENT):10%\"",
                "200 ua10=\"curl/8.5 \"\"",
                &[("REQ(USER-AGENT):10", "curl/8.5 \"")],
            ),
            (
                "%RESPONSE_CODE% \"%REQ(X-TENANT)%\"",
                "200 \"a\" \"b\"  ",
                &[("REQ(X-TENANT)", "a\" \"b")],
            ),
            // Envoy writes a quote in the path as sent; the path field of the request line took
            // it for a line of another format.
            (
                "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% \"%REQ(USER-AGENT)%\"",
                "[2026-12-03T09:45:54.490Z] \"GET /status/200/\"quoted\"/x?y=\"z\" HTTP/1.1\" 200 \"ua\"",
                &[
                    (
                        "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)",
                        "/status/200/\"quoted\"/x?y=\"z\"",
                    ),
                    ("PROTOCOL", "HTTP/1.1"),
                    ("REQ(USER-AGENT)", "ua"),
                ],
            ),
        ];
        for (fmt, line, want) in rows {
            let f = TextFormat::compile("t", fmt).unwrap();
            let r = match f.match_line(line) {
                MatchOutcome::Full(r) => r,
                other => panic!("{fmt}\n{line}\n{other:?}"),
            };
            for (op, v) in *want {
                assert_eq!(field(&f, &r, op), Some(*v), "{fmt}: %{op}%");
            }
            // Every field is kept exactly once: as a slot or as a named field.
            let kept = r.slots().count() + r.extras().count();
            assert_eq!(kept, f.commands().len(), "{fmt}");
        }
    }

    #[test]
    fn the_first_operator_of_a_slot_sets_its_time_format() {
        let f =
            TextFormat::compile("t", "%START_TIME(%s)% %RESPONSE_CODE% [%START_TIME%]").unwrap();
        let r = match f.match_line("1714557600 200 [2024-05-01T10:00:00.000Z]") {
            MatchOutcome::Full(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(r.start_time().unwrap().timestamp(), 1_714_557_600);
        assert_eq!(r.extra("START_TIME"), Some("2024-05-01T10:00:00.000Z"));
        assert_eq!(f.typed_field_count(), 2);
    }

    #[test]
    fn truncated_line_keeps_only_complete_fields() {
        let f = TextFormat::compile(
            "x",
            "%RESPONSE_CODE% %BYTES_SENT% %UPSTREAM_CLUSTER% %ROUTE_NAME%",
        )
        .unwrap();
        match f.match_line("200 12 outbound|80") {
            MatchOutcome::Truncated {
                record,
                fields_matched,
                ..
            } => {
                assert_eq!(fields_matched, 2);
                assert_eq!(record.get(Slot::UpstreamCluster), None);
            }
            other => panic!("{other:?}"),
        }
    }
}
