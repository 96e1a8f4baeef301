//! Reading log inputs (files or stdin) line by line into parsed records, skips and errors.
//!
//! Inputs are streamed with a reused buffer; invalid UTF-8 is replaced, never fatal. A file that
//! cannot be opened is an error naming it; everything else becomes a record, a skipped line or
//! a malformed line with its file and line number.

use meshtrace_analysis::model::{
    ConnLine, EppLine, KnativeLine, LineSink, LogLine, LogSet, RouterLine, SkippedLine, is_failed,
};
use meshtrace_parsers::detect::NotAccessLog;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use meshtrace_parsers::assemble::{Assembler, Event};
use meshtrace_parsers::detect::{FormatSpec, LineOutcome, LineParser};

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl InputSource {
    /// The name used in messages and output (`-` reads stdin, shown as `<stdin>`).
    pub fn name(&self) -> String {
        match self {
            InputSource::Stdin => "<stdin>".into(),
            InputSource::File(p) => p.display().to_string(),
        }
    }

    /// From a command-line argument.
    pub fn from_arg(a: &str) -> InputSource {
        if a == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(PathBuf::from(a))
        }
    }
}

/// Which lines of an input to keep.
#[derive(Debug, Clone, Default)]
pub enum LineFilter {
    /// Every line.
    #[default]
    All,
    /// Parse every line but keep only records that did not succeed (status none, 0 or ≥ 400, or
    /// response flags set); successful ones are only counted (`LogSet::ok_records`).
    Failed,
    /// Parse only lines that contain one of these strings (substring search over large chunks,
    /// like `rg -F`); other lines are not parsed and not reported.
    Needles(NeedleFilter),
}

/// The lines `LineFilter::Needles` keeps.
#[derive(Debug, Clone, Default)]
pub struct NeedleFilter {
    /// Strings to look for.
    pub needles: Vec<String>,
    /// Keep only records that started inside this window (a connection address recurs on every
    /// request of a keep-alive connection); on an indexed file, read only its windows.
    pub window: Option<TimeWindow>,
    /// What earlier rounds learnt about each file (newlines and times per window).
    pub index: Arc<crate::source::scan::ScanIndex>,
}

impl NeedleFilter {
    /// Look for `needles` anywhere.
    pub fn new(needles: Vec<String>) -> NeedleFilter {
        NeedleFilter {
            needles,
            ..NeedleFilter::default()
        }
    }
}

/// Start and end (inclusive) of a time window.
pub type TimeWindow = (
    chrono::DateTime<chrono::FixedOffset>,
    chrono::DateTime<chrono::FixedOffset>,
);

/// Inputs smaller than this are always read whole and in order, so that wrapped, pasted lines
/// still join; filters apply to larger ones (real logs).
pub const STREAM_MIN_BYTES: u64 = 8 << 20;

/// Error reading an input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading failed part-way.
    #[error("error reading {path} after line {line}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Last line read.
        line: u64,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Read one input into `set`.
pub fn read_input(
    source: &InputSource,
    spec: &FormatSpec,
    set: &mut LogSet,
) -> Result<(), InputError> {
    read_input_filtered(source, spec, set, &LineFilter::All)
}

/// Read one input into `set`, keeping what `filter` asks for.
pub fn read_input_filtered(
    source: &InputSource,
    spec: &FormatSpec,
    set: &mut LogSet,
    filter: &LineFilter,
) -> Result<(), InputError> {
    let name = source.name();
    set.inputs.push(name.clone());
    match source {
        InputSource::Stdin => read_pod_log_filtered(
            std::io::stdin().lock(),
            &name,
            None,
            spec,
            set,
            filter,
            None,
        ),
        InputSource::File(p) => read_log_file(p, &name, None, spec, set, filter),
    }
}

/// Parse the lines of an open plain file that hold `nf`'s needles (see `crate::source::scan`); the
/// handle is only read with positioned reads.
pub fn read_needles_open(
    file: &std::fs::File,
    len: u64,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    set: &mut LogSet,
    nf: &NeedleFilter,
) -> Result<(), InputError> {
    set.filtered_inputs += 1;
    let window = nf
        .window
        .map(|(a, b)| (a.timestamp_millis(), b.timestamp_millis()));
    let found =
        crate::source::scan::scan_open(file, len, name, &nf.needles, window, spec, &nf.index)
            .map_err(|source| InputError::Read {
                path: name.to_string(),
                line: 0,
                source,
            })?;
    if found.more {
        let note = format!(
            "{name}: the strings searched for are on more than {} lines (an x-request-id that many requests reuse, or a connection that carried that many), so only the first {} of them were read; trace one request by its client's ip:port, or give a log of a shorter time",
            crate::source::scan::HITS_MAX_LINES,
            found.hits.len()
        );
        if !set.notes.contains(&note) {
            set.notes.push(note);
        }
    }
    let input: Arc<str> = Arc::from(name);
    let mut parser = LineParser::new(spec);
    let index = nf.index.file(name);
    // Regions read around lines that read as no record, at most this many per file and round
    // (a log of one-line records with many damaged lines must not be read again for each).
    let mut regions_left = MAX_REGIONS;
    // The last line of the last record read over several lines: later hits inside it are its own.
    let mut joined_to = 0u64;
    for h in found.hits {
        if h.line <= joined_to {
            continue;
        }
        if h.too_long {
            set.skipped.push(too_long(&input, h.line, &h.text));
            continue;
        }
        let text = String::from_utf8_lossy(&h.text);
        let scanned = push_scanned(
            &mut parser,
            &text,
            h.line,
            &input,
            pod.as_ref(),
            nf.window,
            set,
        );
        // A line that reads as no record may be one piece of a record written over several
        // lines (JSON pretty-printed, a hard-wrapped line): read it with its neighbours.
        if scanned != Scanned::Other
            && regions_left > 0
            && let Some(idx) = index.as_deref()
        {
            regions_left -= 1;
            let whole =
                record_around(file, idx, h.line, &input, pod.as_ref(), spec).map_err(|source| {
                    InputError::Read {
                        path: name.to_string(),
                        line: h.line,
                        source,
                    }
                })?;
            if let Some(mut rec) = whole {
                rec.input = input.clone();
                match scanned {
                    Scanned::Malformed => drop(set.skipped.pop()),
                    _ => drop(set.records.pop()),
                }
                // Earlier hits that were pieces of this record, read on their own.
                while set
                    .records
                    .last()
                    .is_some_and(|r| Arc::ptr_eq(&r.input, &input) && r.line >= rec.line)
                {
                    set.records.pop();
                }
                while set
                    .skipped
                    .last()
                    .is_some_and(|r| Arc::ptr_eq(&r.input, &input) && r.line >= rec.line)
                {
                    set.skipped.pop();
                }
                joined_to = rec.line + u64::from(rec.lines).saturating_sub(1);
                let outside = nf
                    .window
                    .is_some_and(|(a, b)| rec.record.start_time().is_some_and(|t| t < a || t > b));
                if !outside {
                    set.records.push(rec);
                }
            }
        }
    }
    Ok(())
}

/// The record written over several lines that holds line `line` of an indexed file, read as the
/// whole file would be read (the same joining of pieces), from a region around the line that
/// grows from 8 KiB to 1 MiB on each side until the record fits in it.
fn record_around(
    file: &std::fs::File,
    idx: &crate::source::scan::FileIndex,
    line: u64,
    input: &Arc<str>,
    pod: Option<&Arc<str>>,
    spec: &FormatSpec,
) -> std::io::Result<Option<LogLine>> {
    let mut side = 8u64 << 10;
    loop {
        let Some(region) = crate::source::scan::region_around(file, idx, line, side, side)? else {
            return Ok(None);
        };
        // The region's last line is cut when the file goes on after it.
        let whole_lines = region.first_line
            + meshtrace_parsers::memchr::memchr_iter(b'\n', &region.text).count() as u64;
        let last_whole = if region.cut_after {
            whole_lines.saturating_sub(1)
        } else {
            whole_lines
        };
        let mut part = LogSet::default();
        // Reading from memory cannot fail; a region with no record covering the line is no answer.
        let _ = read_lines(
            &region.text[..],
            input,
            pod.cloned(),
            spec,
            &mut part,
            false,
            region.first_line - 1,
            None,
        );
        // A wider region helps only where records are written over several lines: some are
        // around, or none is whole yet (one longer than the region).
        let worth_growing = part.records.is_empty() || part.records.iter().any(|r| r.lines > 1);
        let found = part.records.into_iter().find(|r| {
            let end = r.line + u64::from(r.lines).saturating_sub(1);
            r.line <= line && line <= end && r.lines > 1 && end <= last_whole
        });
        if found.is_some()
            || !worth_growing
            || !(region.cut_before || region.cut_after)
            || side >= MAX_JOIN_SIDE
        {
            return Ok(found);
        }
        side = (side * 8).min(MAX_JOIN_SIDE);
    }
}

/// The farthest [`record_around`] looks on each side of a line (the assembler joins at most
/// 1 MiB).
const MAX_JOIN_SIDE: u64 = 1 << 20;

/// The most regions [`read_needles_open`] reads around lines of one file in one round.
const MAX_REGIONS: usize = 1_024;

/// Read a log file with a filter, the fastest way for its size and kind: large plain files are
/// searched window by window on every core (needles) or parsed in two halves (failures);
/// small, compressed and other files stream through [`read_pod_log_filtered`].
pub fn read_log_file(
    p: &Path,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    set: &mut LogSet,
    filter: &LineFilter,
) -> Result<(), InputError> {
    let size = std::fs::metadata(p).ok().map(|m| m.len());
    let plain = || !is_gzip_file(p);
    match filter {
        LineFilter::Failed if size.is_some_and(|s| s >= 2 * STREAM_MIN_BYTES) && plain() => {
            read_file_in_two(p, name, pod, spec, set)
        }
        LineFilter::Needles(nf) if size.is_some_and(|s| s >= STREAM_MIN_BYTES) && plain() => {
            let file = open(p)?;
            read_needles_open(&file, size.unwrap_or(0), name, pod, spec, set, nf)
        }
        _ => read_pod_log_filtered(open(p)?, name, pod, spec, set, filter, size),
    }
}

fn is_gzip_file(p: &Path) -> bool {
    let mut magic = [0u8; 2];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

fn open(p: &Path) -> Result<std::fs::File, InputError> {
    std::fs::File::open(p).map_err(|source| InputError::Open {
        path: p.display().to_string(),
        source,
    })
}

/// Read lines from any reader into `set`, attributing them to `name`.
pub fn read_from(
    reader: impl Read,
    name: &str,
    spec: &FormatSpec,
    set: &mut LogSet,
) -> Result<(), InputError> {
    read_pod_log(reader, name, None, spec, set)
}

/// Read a pod's log: like [`read_from`], recording which pod wrote the lines.
pub fn read_pod_log(
    reader: impl Read,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    set: &mut LogSet,
) -> Result<(), InputError> {
    read_pod_log_filtered(reader, name, pod, spec, set, &LineFilter::All, None)
}

/// Read a log with a filter. `size` (when known) decides whether the filter applies: inputs
/// under [`STREAM_MIN_BYTES`] are read whole. Gzip-compressed input is decompressed as it streams.
pub fn read_pod_log_filtered(
    reader: impl Read,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    set: &mut LogSet,
    filter: &LineFilter,
    size: Option<u64>,
) -> Result<(), InputError> {
    let (reader, gz) = decompressing(reader);
    // Compressed input is large for its size on disk.
    let big = size.is_none_or(|s| s >= STREAM_MIN_BYTES) || gz;
    let filter = if big { filter } else { &LineFilter::All };
    match filter {
        LineFilter::Needles(nf) => {
            set.filtered_inputs += 1;
            scan_needles(
                reader,
                name,
                pod.as_ref(),
                spec,
                set,
                &nf.needles,
                nf.window,
            )
            .map(|_| ())
        }
        LineFilter::Failed => {
            set.filtered_inputs += 1;
            read_lines(reader, name, pod, spec, set, true, 0, None).map(|_| ())
        }
        LineFilter::All => read_lines(reader, name, pod, spec, set, false, 0, None).map(|_| ()),
    }
}

/// What kind of archive `file` is (`"tar"`, `"gzip-compressed tar"`, `"zip"`), told by its
/// first bytes; `None` for anything else (a log, compressed or not) or when it cannot be read.
/// A log file's reader would take an archive's bytes for lines.
pub fn archive_kind(file: impl Read) -> Option<&'static str> {
    let mut head = Vec::with_capacity(512);
    let (mut reader, gz) = decompressing(file);
    reader.by_ref().take(512).read_to_end(&mut head).ok()?;
    if !gz && (head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")) {
        return Some("zip");
    }
    // A tar header's magic, `ustar` at byte 257 (POSIX and GNU alike).
    let tar = head.get(257..262) == Some(b"ustar".as_slice());
    match (tar, gz) {
        (true, true) => Some("gzip-compressed tar"),
        (true, false) => Some("tar"),
        _ => None,
    }
}

/// The reader, decompressed as it streams when it starts with the gzip magic; and whether it did.
fn decompressing<'r>(reader: impl Read + 'r) -> (Box<dyn Read + 'r>, bool) {
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    let gz = buffered
        .fill_buf()
        .map(|b| b.starts_with(&[0x1f, 0x8b]))
        .unwrap_or(false);
    if gz {
        (
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            true,
        )
    } else {
        (Box::new(buffered), false)
    }
}

/// Read one input for a streaming analysis: every record with `keep_all` or when the input is
/// under [`STREAM_MIN_BYTES`]; else (large or compressed) only failed records, successes counted.
/// Reading stops early once `stop` is set (whoever takes the lines has stopped listening).
#[allow(clippy::too_many_arguments)]
pub fn read_streamed(
    reader: impl Read,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    size: Option<u64>,
    keep_all: bool,
    sink: &mut dyn LineSink,
    stop: Option<&AtomicBool>,
) -> Result<(), InputError> {
    read_streamed_from(reader, name, pod, spec, size, keep_all, sink, stop, 0)
}

/// [`read_streamed`] of a part of an input that starts after line `lines_before` (a
/// time-ordered run, see `crate::source::runs`); `size` is the whole input's.
#[allow(clippy::too_many_arguments)]
pub fn read_streamed_from(
    reader: impl Read,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    size: Option<u64>,
    keep_all: bool,
    sink: &mut dyn LineSink,
    stop: Option<&AtomicBool>,
    lines_before: u64,
) -> Result<(), InputError> {
    let (reader, gz) = decompressing(reader);
    let big = size.is_none_or(|s| s >= STREAM_MIN_BYTES) || gz;
    read_lines(
        reader,
        name,
        pod,
        spec,
        sink,
        big && !keep_all,
        lines_before,
        stop,
    )
    .map(|_| ())
}

/// Line-by-line reading through the assembler; returns the number of physical lines read.
/// The input is read in chunks and cut into lines by a [`LineSplitter`], so a line longer than
/// [`MAX_LINE_BYTES`] is reported malformed and skipped without being held. With `failed_only`,
/// a line the parser certifies as a plain success without parsing it
/// ([`Assembler::is_plain_success`]) is only counted: most lines of a healthy log never reach
/// the parser. Reading stops early once `stop` is set (the output was closed).
#[allow(clippy::too_many_arguments)]
fn read_lines(
    mut reader: impl Read,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    set: &mut dyn LineSink,
    failed_only: bool,
    first_line: u64,
    stop: Option<&AtomicBool>,
) -> Result<u64, InputError> {
    let mut h = LineHandler {
        input: Arc::from(name),
        pod,
        set,
        failed_only,
        ok: 0,
    };
    let mut asm = Assembler::new(LineParser::new(spec), true);
    // Successes certified by the cheap test (not parsed).
    let mut fast = 0u64;
    let mut split = LineSplitter::new(MAX_LINE_BYTES, first_line);
    let mut chunk = vec![0u8; CHUNK];
    let mut result = Ok(());
    loop {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let n = match read_full(&mut reader, &mut chunk) {
            Ok(n) => n,
            Err(source) => {
                result = Err(InputError::Read {
                    path: name.to_string(),
                    line: split.line(),
                    source,
                });
                0
            }
        };
        if n == 0 {
            break;
        }
        split.push(&chunk[..n], &mut |piece| match piece {
            Piece::Line { number, text } => {
                if asm.drops_blank(text) {
                    return;
                }
                if failed_only {
                    let bare = text.strip_suffix(b"\r").unwrap_or(text);
                    if asm.is_plain_success(bare) {
                        fast += 1;
                        return;
                    }
                }
                let text = line_text(text);
                asm.push(number, &text, &mut |e| h.event(e));
            }
            Piece::TooLong { number, head, .. } => {
                // Nothing pending can continue across it.
                asm.push(number, "", &mut |e| h.event(e));
                h.set.skipped(too_long(&h.input, number, head));
            }
        });
    }
    split.finish(&mut |piece| match piece {
        Piece::Line { number, text } => {
            let text = line_text(text);
            asm.push(number, &text, &mut |e| h.event(e));
        }
        Piece::TooLong { number, head, .. } => {
            asm.push(number, "", &mut |e| h.event(e));
            h.set.skipped(too_long(&h.input, number, head));
        }
    });
    asm.finish(&mut |e| h.event(e));
    h.set.ok_records(h.ok + fast);
    result.map(|()| split.line() - first_line)
}

/// Where the assembler's events of one input go.
struct LineHandler<'s> {
    input: Arc<str>,
    pod: Option<Arc<str>>,
    set: &'s mut dyn LineSink,
    /// Keep failed records only; count the others in `ok`.
    failed_only: bool,
    ok: u64,
}

impl LineHandler<'_> {
    fn event(&mut self, e: Event<'_>) {
        if self.failed_only
            && let Event::Record(l) = &e
            && !is_failed(&l.record)
        {
            self.ok += 1;
            return;
        }
        collect(e, &self.input, self.pod.as_ref(), self.set)
    }
}

/// A line's text: borrowed when it is valid UTF-8 (nearly always; checked a word at a time),
/// else with U+FFFD for each invalid sequence.
fn line_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The malformed-line entry of a line longer than [`MAX_LINE_BYTES`] that starts with `head`.
pub fn too_long(input: &Arc<str>, line: u64, head: &[u8]) -> SkippedLine {
    let head = String::from_utf8_lossy(head);
    let mut text: String = head.chars().take(200).collect();
    text.push('…');
    SkippedLine {
        input: input.clone(),
        line,
        kind: "malformed".into(),
        reason: format!(
            "line longer than {MAX_LINE_BYTES} bytes; skipped (no access-log record is that long)"
        ),
        text: Some(text),
    }
}

pub use crate::source::limits::{MAX_LINE_BYTES, TOO_LONG_HEAD};

/// What [`LineSplitter`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// One line of at most the splitter's maximum, without its newline (a `\r` before the
    /// newline is kept).
    Line {
        /// 1-based line number.
        number: u64,
        /// Its bytes.
        text: &'a [u8],
    },
    /// A line longer than the maximum: its bytes were dropped as they came.
    TooLong {
        /// 1-based line number.
        number: u64,
        /// Its length in bytes, without its newline.
        len: u64,
        /// Its first bytes (at most [`TOO_LONG_HEAD`]), to show what it was.
        head: &'a [u8],
    },
}

/// The one place bytes become lines: fed chunks of any size, it hands out each line once it is
/// complete, numbered from 1 (plus `first_line`). It holds at most `max` bytes of a line that
/// spans chunks; a longer line is reported as [`Piece::TooLong`] once its newline (or the end
/// of input) arrives, and its bytes are never kept. Every reader of log lines (files, standard
/// input, gzip streams, bundle and pod logs, the needle search of streams, the merge of many
/// logs) goes through it.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// The start of a line that continues in the next chunk (at most `max` bytes).
    carry: Vec<u8>,
    /// Length so far of a line being skipped because it is longer than `max`.
    skipping: Option<u64>,
    /// The first bytes of the line being skipped.
    head: Vec<u8>,
    /// Number of the last line handed out.
    line: u64,
}

impl LineSplitter {
    /// A splitter for lines of at most `max` bytes; the first line is numbered `first_line + 1`.
    pub fn new(max: usize, first_line: u64) -> LineSplitter {
        LineSplitter {
            max,
            carry: Vec::new(),
            skipping: None,
            head: Vec::new(),
            line: first_line,
        }
    }

    /// Number of the last line handed out.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Bytes held for a line that continues in the next chunk (never more than the maximum).
    pub fn held(&self) -> usize {
        self.carry.len()
    }

    /// Feed the next chunk; complete lines go to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut dyn FnMut(Piece<'_>)) {
        use meshtrace_parsers::memchr::memchr;
        let mut rest = chunk;
        if let Some(len) = self.skipping {
            let end = memchr(b'\n', rest);
            let part = &rest[..end.unwrap_or(rest.len())];
            let more = TOO_LONG_HEAD
                .saturating_sub(self.head.len())
                .min(part.len());
            self.head.extend_from_slice(&part[..more]);
            match end {
                None => {
                    self.skipping = Some(len.saturating_add(rest.len() as u64));
                    return;
                }
                Some(i) => {
                    self.skipping = None;
                    self.line += 1;
                    out(Piece::TooLong {
                        number: self.line,
                        len: len.saturating_add(i as u64),
                        head: &self.head,
                    });
                    self.head.clear();
                    rest = &rest[i + 1..];
                }
            }
        } else if !self.carry.is_empty() {
            match memchr(b'\n', rest) {
                None => {
                    self.hold(rest);
                    return;
                }
                Some(i) => {
                    let len = self.carry.len() + i;
                    self.line += 1;
                    if len > self.max {
                        self.carry.truncate(TOO_LONG_HEAD);
                        let more = TOO_LONG_HEAD.saturating_sub(self.carry.len()).min(i);
                        self.carry.extend_from_slice(&rest[..more]);
                        out(Piece::TooLong {
                            number: self.line,
                            len: len as u64,
                            head: &self.carry,
                        });
                    } else {
                        self.carry.extend_from_slice(&rest[..i]);
                        out(Piece::Line {
                            number: self.line,
                            text: &self.carry,
                        });
                    }
                    self.carry.clear();
                    rest = &rest[i + 1..];
                }
            }
        }
        let mut s = 0;
        while let Some(i) = memchr(b'\n', &rest[s..]) {
            self.line += 1;
            out(if i > self.max {
                Piece::TooLong {
                    number: self.line,
                    len: i as u64,
                    head: &rest[s..s + i.min(TOO_LONG_HEAD)],
                }
            } else {
                Piece::Line {
                    number: self.line,
                    text: &rest[s..s + i],
                }
            });
            s += i + 1;
        }
        self.hold(&rest[s..]);
    }

    /// Keep the start of a line that continues in the next chunk, or start skipping it.
    fn hold(&mut self, part: &[u8]) {
        let len = self.carry.len() + part.len();
        if len > self.max {
            self.head.clear();
            self.head
                .extend_from_slice(&self.carry[..self.carry.len().min(TOO_LONG_HEAD)]);
            let more = TOO_LONG_HEAD
                .saturating_sub(self.head.len())
                .min(part.len());
            self.head.extend_from_slice(&part[..more]);
            self.carry = Vec::new();
            self.skipping = Some(len as u64);
        } else {
            self.carry.extend_from_slice(part);
        }
    }

    /// End of input: hand out a last line without newline.
    pub fn finish(&mut self, out: &mut dyn FnMut(Piece<'_>)) {
        if let Some(len) = self.skipping.take() {
            self.line += 1;
            out(Piece::TooLong {
                number: self.line,
                len,
                head: &self.head,
            });
            self.head.clear();
        } else if !self.carry.is_empty() {
            self.line += 1;
            out(Piece::Line {
                number: self.line,
                text: &self.carry,
            });
            self.carry.clear();
        }
    }
}

/// Split a large file at a line boundary and parse both halves on two threads (failures only).
fn read_file_in_two(
    p: &Path,
    name: &str,
    pod: Option<Arc<str>>,
    spec: &FormatSpec,
    set: &mut LogSet,
) -> Result<(), InputError> {
    use std::io::{Seek, SeekFrom};
    set.filtered_inputs += 1;
    let err = |source| InputError::Read {
        path: name.to_string(),
        line: 0,
        source,
    };
    let len = std::fs::metadata(p).map_err(err)?.len();
    // Find the first line start at or after the middle.
    let mut f = open(p)?;
    f.seek(SeekFrom::Start(len / 2)).map_err(err)?;
    // The first newline at or after the middle, looked for without holding the line (it may be
    // longer than any line meshtrace reads).
    let mut mid = len;
    let mut at = len / 2;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = read_full(&mut f, &mut chunk).map_err(err)?;
        if n == 0 {
            break;
        }
        if let Some(i) = meshtrace_parsers::memchr::memchr(b'\n', &chunk[..n]) {
            mid = at + i as u64 + 1;
            break;
        }
        at += n as u64;
    }
    // A record written over several lines (JSON pretty-printed, a wrapped line) must not be
    // cut in two: the second half starts at the first line after the middle that begins one.
    let mid = record_start_from(&open(p)?, mid, len, spec).map_err(err)?;
    let (first, second) = std::thread::scope(|sc| {
        let a = sc.spawn(|| -> Result<(LogSet, u64), InputError> {
            let mut part = LogSet::default();
            let n = read_lines(
                open(p)?.take(mid),
                name,
                pod.clone(),
                spec,
                &mut part,
                true,
                0,
                None,
            )?;
            Ok((part, n))
        });
        let b = sc.spawn(|| -> Result<LogSet, InputError> {
            let mut f = open(p)?;
            f.seek(SeekFrom::Start(mid)).map_err(err)?;
            let mut part = LogSet::default();
            read_lines(f, name, pod.clone(), spec, &mut part, true, 0, None)?;
            Ok(part)
        });
        (a.join(), b.join())
    });
    let (mut a, lines_a) =
        first.map_err(|_| err(std::io::Error::other("parser thread panicked")))??;
    let mut b = second.map_err(|_| err(std::io::Error::other("parser thread panicked")))??;
    // The second half's line numbers continue the first's.
    for r in &mut b.records {
        r.line += lines_a;
    }
    for s in &mut b.skipped {
        s.line += lines_a;
    }
    set.records.append(&mut a.records);
    set.records.append(&mut b.records);
    set.skipped.append(&mut a.skipped);
    set.skipped.append(&mut b.skipped);
    set.ok_records += a.ok_records + b.ok_records;
    Ok(())
}

/// The start of the first line at or after `from` (a line start) that begins a record — one the
/// parser reads on its own, whole or cut short, or a JSON object's opening brace — looked for
/// over at most 1 MiB; `from` itself when none is found there.
fn record_start_from(
    file: &std::fs::File,
    from: u64,
    len: u64,
    spec: &FormatSpec,
) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    const LOOK: u64 = 1 << 20;
    let mut f = file;
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.take(LOOK.min(len.saturating_sub(from)))
        .read_to_end(&mut buf)?;
    let mut parser = LineParser::new(spec);
    let mut at = 0usize;
    // Only whole lines: the last one may run past what was read.
    while let Some(n) = meshtrace_parsers::memchr::memchr(b'\n', &buf[at..]) {
        let text = String::from_utf8_lossy(&buf[at..at + n]);
        let (_, payload) = meshtrace_parsers::envelope::strip_envelope(&text);
        let begins = payload.trim_start().starts_with('{')
            || matches!(
                parser.parse(&payload),
                LineOutcome::Record(_) | LineOutcome::Truncated { .. }
            );
        if begins {
            return Ok(from + at as u64);
        }
        at += n + 1;
    }
    Ok(from)
}

/// Bytes read at a time: small enough to stay in the CPU cache between the copy out of the page
/// cache and the scan (64 KiB measured 15–25 % faster than 1 MiB for `failures`).
const CHUNK: usize = 1 << 16;

/// Parse only the lines containing one of `needles` (substring search, the way `rg -F` works),
/// as the [`LineSplitter`] hands them out; other lines are not parsed and not reported, except
/// a line longer than [`MAX_LINE_BYTES`], which is reported malformed whatever it holds.
fn scan_needles(
    mut reader: impl Read,
    name: &str,
    pod: Option<&Arc<str>>,
    spec: &FormatSpec,
    set: &mut LogSet,
    needles: &[String],
    window: Option<TimeWindow>,
) -> Result<u64, InputError> {
    use meshtrace_parsers::memchr::memmem::Finder;
    let input: Arc<str> = Arc::from(name);
    let finders: Vec<Finder<'_>> = needles
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| Finder::new(n.as_bytes()))
        .collect();
    let mut parser = LineParser::new(spec);
    let mut split = LineSplitter::new(MAX_LINE_BYTES, 0);
    let mut chunk = vec![0u8; CHUNK];
    let mut on = |piece: Piece<'_>| match piece {
        Piece::Line { number, text } => {
            if finders.iter().any(|f| f.find(text).is_some()) {
                let text = line_text(text);
                push_scanned(&mut parser, &text, number, &input, pod, window, set);
            }
        }
        Piece::TooLong { number, head, .. } => set.skipped.push(too_long(&input, number, head)),
    };
    loop {
        let n = read_full(&mut reader, &mut chunk).map_err(|source| InputError::Read {
            path: name.to_string(),
            line: split.line(),
            source,
        })?;
        if n == 0 {
            break;
        }
        split.push(&chunk[..n], &mut on);
    }
    split.finish(&mut on);
    Ok(split.line())
}

/// Parse one line found by a needle search and keep it (records outside `window` are dropped).
fn push_scanned(
    parser: &mut LineParser,
    text: &str,
    line: u64,
    input: &Arc<str>,
    pod: Option<&Arc<str>>,
    window: Option<TimeWindow>,
    set: &mut LogSet,
) -> Scanned {
    let (envelope, payload) = meshtrace_parsers::envelope::strip_envelope(text);
    let mut kind = envelope.kind;
    let mut outcome = parser.parse(&payload);
    // A bare leading %START_TIME% read as a `kubectl logs --timestamps` prefix is put back.
    if let Some(r) = meshtrace_parsers::assemble::reread_with_prefix(
        parser,
        envelope.kind,
        envelope.time.as_deref(),
        &payload,
        &outcome,
    ) {
        outcome = LineOutcome::Record(r);
        kind = meshtrace_parsers::envelope::EnvelopeKind::None;
    }
    let cut = matches!(outcome, LineOutcome::Truncated { .. });
    match outcome {
        LineOutcome::Record(rec) | LineOutcome::Truncated { record: rec, .. }
            if window.is_some_and(|(a, b)| rec.start_time().is_some_and(|t| t < a || t > b)) => {}
        LineOutcome::Record(rec) | LineOutcome::Truncated { record: rec, .. } => {
            set.records.push(LogLine {
                input: input.clone(),
                line,
                lines: 1,
                envelope: kind.name(),
                pod: pod.cloned(),
                record: rec.into_owned(),
            });
            if cut {
                return Scanned::CutRecord;
            }
        }
        LineOutcome::Malformed(error) => {
            set.skipped.push(SkippedLine {
                input: input.clone(),
                line,
                kind: "malformed".into(),
                reason: error.to_string(),
                text: Some(payload.chars().take(200).collect()),
            });
            return Scanned::Malformed;
        }
        LineOutcome::NotAccessLog(NotAccessLog::Ztunnel(c)) if c.src_addr.is_some() => {
            set.connections.push(ConnLine {
                input: input.clone(),
                line,
                pod: pod.cloned(),
                conn: *c,
            })
        }
        LineOutcome::NotAccessLog(NotAccessLog::Epp(d)) => set.epp.push(EppLine {
            input: input.clone(),
            line,
            pod: pod.cloned(),
            decision: *d,
        }),
        LineOutcome::NotAccessLog(NotAccessLog::Knative(e)) => set.knative.push(KnativeLine {
            input: input.clone(),
            line,
            pod: pod.cloned(),
            error: *e,
        }),
        LineOutcome::NotAccessLog(NotAccessLog::Router(e)) => set.router.push(RouterLine {
            input: input.clone(),
            line,
            pod: pod.cloned(),
            entry: *e,
        }),
        LineOutcome::NotAccessLog(_) | LineOutcome::Blank => {}
    }
    Scanned::Other
}

/// What [`push_scanned`] made of a line that may be one piece of a record written over several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scanned {
    /// A skipped line was pushed for it (malformed).
    Malformed,
    /// A record cut short was pushed for it.
    CutRecord,
    /// Anything else (a whole record, or nothing to join).
    Other,
}

/// Bytes of evidence read so far by [`read_full`] (the offline progress line shows them).
static BYTES_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes of evidence read so far, every input together.
pub fn bytes_read() -> u64 {
    BYTES_READ.load(Ordering::Relaxed)
}

/// Fill `buf` as far as the reader allows; returns the bytes read (0 only at end of input).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                BYTES_READ.fetch_add(k as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn collect(e: Event<'_>, input: &Arc<str>, pod: Option<&Arc<str>>, set: &mut dyn LineSink) {
    match e {
        Event::Record(l) => set.record(LogLine {
            input: input.clone(),
            line: l.line,
            lines: l.lines,
            envelope: l.envelope.name(),
            pod: pod.cloned(),
            record: l.record.into_owned(),
        }),
        Event::Skipped { line, kind } => {
            let skipped = SkippedLine {
                input: input.clone(),
                line,
                kind: kind.kind().to_string(),
                reason: kind.to_string(),
                text: None,
            };
            match kind {
                NotAccessLog::Ztunnel(c) if c.src_addr.is_some() || c.dst_addr.is_some() => set
                    .connection(
                        ConnLine {
                            input: input.clone(),
                            line,
                            pod: pod.cloned(),
                            conn: *c,
                        },
                        skipped,
                    ),
                NotAccessLog::Epp(d) => set.epp(
                    EppLine {
                        input: input.clone(),
                        line,
                        pod: pod.cloned(),
                        decision: *d,
                    },
                    skipped,
                ),
                NotAccessLog::Knative(e) => set.knative(
                    KnativeLine {
                        input: input.clone(),
                        line,
                        pod: pod.cloned(),
                        error: *e,
                    },
                    skipped,
                ),
                NotAccessLog::Router(e) => set.router(
                    RouterLine {
                        input: input.clone(),
                        line,
                        pod: pod.cloned(),
                        entry: *e,
                    },
                    skipped,
                ),
                _ => set.skipped(skipped),
            }
        }
        Event::Malformed { line, text, error } => {
            let mut t: String = text.chars().take(200).collect();
            if t.len() < text.len() {
                t.push('…');
            }
            set.skipped(SkippedLine {
                input: input.clone(),
                line,
                kind: "malformed".into(),
                reason: error.to_string(),
                text: Some(t),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split `input` in chunks of `size` with lines of at most `max` bytes.
    fn split(input: &[u8], size: usize, max: usize) -> Vec<String> {
        let mut s = LineSplitter::new(max, 0);
        let mut out = Vec::new();
        let mut on = |p: Piece<'_>| {
            out.push(match p {
                Piece::Line { number, text } => {
                    format!("{number}:{}", String::from_utf8_lossy(text))
                }
                Piece::TooLong { number, len, head } => {
                    format!("{number}:long {len} {}", String::from_utf8_lossy(head))
                }
            })
        };
        for c in input.chunks(size) {
            s.push(c, &mut on);
            assert!(s.held() <= max);
        }
        s.finish(&mut on);
        out
    }

    #[test]
    fn lines_are_the_same_whatever_the_chunks() {
        let input = b"ab\n\ncdefgh\nij\r\nklmnopqrstuvwxyz\nlast";
        let want = vec![
            "1:ab",
            "2:",
            "3:cdefgh",
            "4:ij\r",
            "5:long 16 klmnopqrstuvwxyz",
            "6:last",
        ];
        for size in 1..=input.len() {
            assert_eq!(split(input, size, 8), want, "chunks of {size}");
        }
    }

    #[test]
    fn a_long_line_keeps_only_its_head() {
        let mut input = vec![b'x'; 3000];
        input.extend_from_slice(b"\nok");
        for size in [1, 7, 1000, 5000] {
            let got = split(&input, size, 100);
            assert_eq!(got.len(), 2);
            assert_eq!(got[0], format!("1:long 3000 {}", "x".repeat(TOO_LONG_HEAD)));
            assert_eq!(got[1], "2:ok");
        }
    }
}
