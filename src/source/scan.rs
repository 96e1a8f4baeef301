//! Finding the lines of a large plain log file that contain given strings, the way `rg -F` does:
//! fixed windows read with positioned reads on every core and searched for all the strings at
//! once, plus an index (newlines and the range of record start times per window) so that later
//! rounds read only the windows that can hold a time range, however the file is interleaved.
//!
//! Memory is one window per thread whatever the file size. Line numbers are exact: every window's
//! newlines are counted in the first (full) scan and kept in the [`ScanIndex`].

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use meshtrace_parsers::detect::{FormatSpec, LineOutcome, LineParser, MAX_LINE_LEN};
use meshtrace_parsers::memchr::{memchr, memchr_iter, memmem::Finder, memrchr};

/// Bytes per window.
pub const WINDOW: usize = 1 << 20;

/// Lines holding a needle one scan keeps, and their bytes. A request's id is on a few dozen
/// lines and a connection's address on a few thousand in the time it ran; a file where an id
/// is on every line (a load generator sending a fixed one) made `trace` hold the whole file,
/// parsed (700 MB for 180 MB of log). Past either bound, the first lines in the file are kept.
pub const HITS_MAX_LINES: usize = 16_384;
/// See [`HITS_MAX_LINES`].
pub const HITS_MAX_BYTES: usize = 16 << 20;

/// Lines of one window whose start time the cheap reading cannot take (other time formats,
/// other envelopes, non-access-log lines) and the full parser reads instead; past this many the
/// window is marked as holding any time (always read).
const SLOW_LINES: usize = 32;

/// The start times (Unix ms) of the records whose lines a window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starts {
    /// No access-log record.
    Empty,
    /// Every record started between these two times (inclusive).
    Range(i64, i64),
    /// A record's start time is not known: the window may hold any time.
    Unknown,
}

impl Starts {
    fn add(self, t: i64) -> Starts {
        self.union(Starts::Range(t, t))
    }

    fn union(self, o: Starts) -> Starts {
        match (self, o) {
            (Starts::Unknown, _) | (_, Starts::Unknown) => Starts::Unknown,
            (Starts::Empty, x) | (x, Starts::Empty) => x,
            (Starts::Range(a, b), Starts::Range(c, d)) => Starts::Range(a.min(c), b.max(d)),
        }
    }

    /// Can a record of these start inside `[from, to]`?
    fn overlaps(self, from: i64, to: i64) -> bool {
        match self {
            Starts::Empty => false,
            Starts::Range(a, b) => a <= to && b >= from,
            Starts::Unknown => true,
        }
    }
}

/// The start times of one window's records in whole [`BUCKET_MS`] intervals, compactly (a few
/// bytes each: the index of a file of any size stays small): bucket numbers (Unix ms divided by
/// [`BUCKET_MS`]) from `base`, first and last of each run of buckets, inclusive.
#[derive(Debug)]
struct Intervals {
    base: i64,
    spans: Box<[(u16, u16)]>,
}

impl Intervals {
    /// `None` when the intervals span more than `u16` buckets (7 days).
    fn new(ms: &[(i64, i64)]) -> Option<Intervals> {
        let bucket = |t: i64| t.div_euclid(BUCKET_MS);
        let base = ms.iter().map(|&(a, _)| bucket(a)).min().unwrap_or(0);
        let off = |t: i64| u16::try_from(bucket(t) - base).ok();
        let spans = ms
            .iter()
            .map(|&(a, b)| Some((off(a)?, off(b.max(a))?)))
            .collect::<Option<Box<[_]>>>()?;
        Some(Intervals { base, spans })
    }

    /// Does one of them overlap `[from, to]` (Unix ms)?
    fn overlaps(&self, from: i64, to: i64) -> bool {
        let (f, t) = (
            from.div_euclid(BUCKET_MS) - self.base,
            to.div_euclid(BUCKET_MS) - self.base,
        );
        self.spans
            .iter()
            .any(|&(a, b)| i64::from(a) <= t && i64::from(b) >= f)
    }
}

/// What the first full scan of a file learnt, reused by later rounds.
#[derive(Debug)]
pub struct FileIndex {
    len: u64,
    /// Newlines in each window.
    newlines: Vec<u64>,
    /// Start times of the records a hit in each window can belong to: those of the lines that
    /// start in it and of the line that runs into it from before.
    starts: Vec<Starts>,
    /// The same start times more finely, where known: the [`BUCKET_MS`] intervals they fall in
    /// (a window of a log as Envoy writes it holds the records that *ended* in a minute or two,
    /// some of which started long before: its `starts` range spans them all, these do not).
    fine: Vec<Option<Intervals>>,
    /// The lines of the last time range read (see [`RangeCache`]).
    cache: Mutex<Option<Arc<RangeCache>>>,
}

/// Every line of a file that may hold a record started in a time range (lines whose start
/// time the cheap reading cannot take included), kept from the first round that read that range:
/// the next rounds, which look for more needles in the same range, search these lines instead of
/// reading the windows again.
#[derive(Debug)]
struct RangeCache {
    from: i64,
    to: i64,
    /// The lines, each followed by a newline.
    text: Vec<u8>,
    /// Per line: its number and where it starts in `text`.
    lines: Vec<(u64, usize)>,
}

/// The most bytes of lines a [`RangeCache`] keeps; a range holding more is read from the file in
/// every round.
const CACHE_MAX: usize = 8 << 20;

impl RangeCache {
    fn hits(&self, needles: &Needles<'_>) -> Vec<Hit> {
        let mut found = Vec::new();
        needles.find(&self.text, self.text.len(), &mut found);
        let mut idx: Vec<usize> = found
            .into_iter()
            .map(|p| {
                self.lines
                    .partition_point(|&(_, s)| s <= p)
                    .saturating_sub(1)
            })
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| {
                let (line, s) = self.lines[i];
                let e = self.lines.get(i + 1).map_or(self.text.len(), |&(_, e)| e) - 1;
                Hit {
                    line,
                    text: self.text[s..e].to_vec(),
                    too_long: false,
                }
            })
            .collect()
    }
}

/// How the last line starting in a window ends.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// At the window's end or before: nothing runs into the next window.
    Ends,
    /// In a later window; its record's start times.
    Runs(Starts),
    /// No line starts in the window (one line covers it): whatever ran into it runs on.
    Carry,
}

impl FileIndex {
    fn new(
        len: u64,
        newlines: Vec<u64>,
        own: &[Starts],
        own_fine: Vec<Option<Vec<(i64, i64)>>>,
        tails: &[Tail],
    ) -> FileIndex {
        let mut starts = Vec::with_capacity(own.len());
        let mut fine = Vec::with_capacity(own.len());
        let mut incoming = Starts::Empty;
        for ((&o, f), &t) in own.iter().zip(own_fine).zip(tails) {
            starts.push(o.union(incoming));
            fine.push(match (f, incoming) {
                (_, Starts::Unknown) | (None, _) => None,
                (Some(f), Starts::Empty) => Intervals::new(&f),
                (Some(mut f), Starts::Range(a, b)) => {
                    f.push((a, b));
                    Intervals::new(&f)
                }
            });
            incoming = match t {
                Tail::Ends => Starts::Empty,
                Tail::Runs(s) => s,
                Tail::Carry => incoming,
            };
        }
        FileIndex {
            len,
            newlines,
            starts,
            fine,
            cache: Mutex::new(None),
        }
    }

    /// Windows that may hold records started between `from` and `to` (Unix ms).
    fn windows_for(&self, from: i64, to: i64) -> Vec<usize> {
        (0..self.starts.len())
            .filter(|&k| match self.fine.get(k) {
                Some(Some(f)) => f.overlaps(from, to),
                _ => self.starts[k].overlaps(from, to),
            })
            .collect()
    }

    /// Windows the index covers.
    pub fn windows(&self) -> usize {
        self.newlines.len()
    }

    /// The start times of the records a hit in window `k` can belong to.
    pub fn starts(&self, k: usize) -> Option<Starts> {
        self.starts.get(k).copied()
    }
}

/// Indexes of the files scanned so far, shared by the rounds of one analysis.
#[derive(Debug, Default)]
pub struct ScanIndex {
    files: Mutex<HashMap<String, Arc<FileIndex>>>,
}

impl ScanIndex {
    fn get(&self, name: &str, len: u64) -> Option<Arc<FileIndex>> {
        let files = self.files.lock().ok()?;
        files.get(name).filter(|i| i.len == len).cloned()
    }

    fn put(&self, name: &str, index: FileIndex) {
        if let Ok(mut files) = self.files.lock() {
            files.insert(name.to_string(), Arc::new(index));
        }
    }

    /// The index of a file, if it was scanned whole before.
    pub fn file(&self, name: &str) -> Option<Arc<FileIndex>> {
        self.files.lock().ok()?.get(name).cloned()
    }
}

/// A line that holds a needle.
#[derive(Debug, Clone)]
pub struct Hit {
    /// 1-based line number.
    pub line: u64,
    /// The line without its end of line; only its start when it is longer than
    /// [`MAX_LINE_LEN`] (`too_long`).
    pub text: Vec<u8>,
    /// The line is longer than [`MAX_LINE_LEN`]: it was not kept (and is reported malformed).
    pub too_long: bool,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Lines holding a needle, in file order.
    pub hits: Vec<Hit>,
    /// More lines hold a needle than a scan keeps ([`HITS_MAX_LINES`], [`HITS_MAX_BYTES`]):
    /// `hits` are the first ones in the file.
    pub more: bool,
    /// Windows read (out of [`FileIndex::windows`]).
    pub windows_read: usize,
    /// Which windows, in file order (none when the lines of the range were kept from an
    /// earlier round).
    pub windows: Vec<usize>,
}

struct WindowHit {
    /// Newlines between the window start and the line start (0 when the line began earlier).
    local: u64,
    /// The line, or only its start when it is longer than [`MAX_LINE_LEN`] (`too_long`).
    text: Vec<u8>,
    too_long: bool,
}

impl WindowHit {
    /// A hit on `text` as read by [`line_from`] (at most one byte over the limit).
    fn new(local: u64, mut text: Vec<u8>) -> WindowHit {
        let too_long = text.len() > MAX_LINE_LEN;
        if too_long {
            text.truncate(crate::source::limits::TOO_LONG_HEAD);
        }
        WindowHit {
            local,
            text,
            too_long,
        }
    }
}

struct WindowIndex {
    newlines: u64,
    own: Starts,
    own_fine: Option<Vec<(i64, i64)>>,
    tail: Tail,
}

/// All the needles of a round, searched in one pass.
enum Needles<'n> {
    /// Nothing to find.
    None,
    /// One needle: `memmem`.
    One(Finder<'n>),
    /// Several: one packed (SIMD) search for an anchor of each needle — the `:port` end of an
    /// address, whose first bytes are much rarer than an address's `10.` — and the whole needle
    /// compared around each candidate.
    Packed {
        searcher: aho_corasick::packed::Searcher,
        /// Per anchor: the needles that hold it and where.
        anchors: Vec<Vec<(&'n [u8], usize)>>,
    },
    /// Several, when the packed searcher is not available: one `memmem` each.
    Each(Vec<Finder<'n>>),
}

impl<'n> Needles<'n> {
    fn new(needles: &[&'n [u8]]) -> Needles<'n> {
        match needles {
            [] => return Needles::None,
            [one] => return Needles::One(Finder::new(*one)),
            _ => {}
        }
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut anchors: Vec<Vec<(&[u8], usize)>> = Vec::new();
        for &n in needles {
            let at = anchor_at(n);
            let a = &n[at..];
            match patterns.iter().position(|p| *p == a) {
                Some(i) => anchors[i].push((n, at)),
                None => {
                    patterns.push(a);
                    anchors.push(vec![(n, at)]);
                }
            }
        }
        match aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(&patterns)
            .build()
        {
            Some(searcher) => Needles::Packed { searcher, anchors },
            None => Needles::Each(needles.iter().map(|n| Finder::new(*n)).collect()),
        }
    }

    /// Start offsets in `data` of the needles that start before `own`, in no particular order;
    /// after a match the rest of its line may be skipped (one offset per line is enough).
    fn find(&self, data: &[u8], own: usize, out: &mut Vec<usize>) {
        match self {
            Needles::None => {}
            Needles::One(f) => out.extend(f.find_iter(data).take_while(|&p| p < own)),
            Needles::Each(fs) => {
                for f in fs {
                    out.extend(f.find_iter(data).take_while(|&p| p < own));
                }
            }
            Needles::Packed { searcher, anchors } => {
                // A needle starting before `own` has its anchor before `own + last`.
                let last = anchors
                    .iter()
                    .flatten()
                    .map(|&(_, off)| off)
                    .max()
                    .unwrap_or(0);
                let mut at = 0;
                while at < data.len() {
                    let Some(m) = searcher.find_in(data, aho_corasick::Span::from(at..data.len()))
                    else {
                        break;
                    };
                    if m.start() >= own + last {
                        break;
                    }
                    let found = anchors[m.pattern().as_usize()]
                        .iter()
                        .filter_map(|&(n, off)| {
                            let s = m.start().checked_sub(off)?;
                            (data.get(s..s + n.len()) == Some(n)).then_some(s)
                        })
                        .min()
                        .filter(|&s| s < own);
                    match found {
                        Some(s) => {
                            out.push(s);
                            // The line is a hit: go on at the next one.
                            at = memchr(b'\n', &data[m.end()..])
                                .map_or(data.len(), |i| m.end() + i + 1);
                        }
                        None => at = m.start() + 1,
                    }
                }
            }
        }
    }
}

/// Where a needle's anchor starts: at the last `:` of an address (`:port`, at least three digits
/// after it), else the whole needle.
fn anchor_at(n: &[u8]) -> usize {
    match memrchr(b':', n) {
        Some(i) if n.len() - i >= 4 => i,
        _ => 0,
    }
}

/// Find the lines of `path` holding any of `needles`. With an index from an earlier scan of the
/// same file and a time range (`window`, Unix ms), only the windows that can hold records started
/// in that range are read; otherwise the whole file is, and its index is stored in `index` under
/// `name`.
pub fn scan_file(
    path: &Path,
    name: &str,
    needles: &[String],
    window: Option<(i64, i64)>,
    spec: &FormatSpec,
    index: &ScanIndex,
) -> std::io::Result<ScanResult> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    scan_open(&file, len, name, needles, window, spec, index)
}

/// [`scan_file`] on an open file of `len` bytes (read with positioned reads only, so the same
/// handle may be shared).
pub fn scan_open(
    file: &File,
    len: u64,
    name: &str,
    needles: &[String],
    window: Option<(i64, i64)>,
    spec: &FormatSpec,
    index: &ScanIndex,
) -> std::io::Result<ScanResult> {
    let bounds = (HITS_MAX_LINES, HITS_MAX_BYTES);
    scan_bounded(file, len, name, (needles, window), spec, index, bounds)
}

/// [`scan_open`] keeping at most `max_lines` hits of at most `max_bytes`.
fn scan_bounded(
    file: &File,
    len: u64,
    name: &str,
    (needles, window): (&[String], Option<(i64, i64)>),
    spec: &FormatSpec,
    index: &ScanIndex,
    (max_lines, max_bytes): (usize, usize),
) -> std::io::Result<ScanResult> {
    let nwin = usize::try_from(len.div_ceil(WINDOW as u64)).unwrap_or(usize::MAX);
    let known = index.get(name, len);
    let selected: Vec<usize> = match (&known, window) {
        (Some(ix), Some((a, b))) => ix.windows_for(a, b),
        _ => (0..nwin).collect(),
    };
    let needles: Vec<&[u8]> = needles
        .iter()
        .map(|n| n.as_bytes())
        .filter(|n| !n.is_empty())
        .collect();
    if let (Some(ix), Some((a, b))) = (&known, window)
        && let Some(r) = ranged(file, len, ix, (a, b), &selected, &needles, spec)?
    {
        return Ok(r);
    }
    let build_index = known.is_none();
    let segments = segments(&selected);
    let max_needle = needles.iter().map(|n| n.len()).max().unwrap_or(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(segments.len().max(1));
    // Segments are handed out in file order to whichever thread is free (the other builds on a
    // loaded machine do not leave one thread with half the file).
    let next = AtomicUsize::new(0);
    // Lines and bytes of the hits kept so far, all threads together; past the bounds, hits are
    // dropped as they are found and gathered again below, in file order.
    let (kept_lines, kept_bytes) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let results: Vec<std::io::Result<Vec<SegmentResult>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (segments, needles, next) = (&segments, &needles, &next);
                let (kept_lines, kept_bytes) = (&kept_lines, &kept_bytes);
                sc.spawn(move || {
                    let search = Needles::new(needles);
                    let mut timer = build_index.then(|| Timer::new(spec));
                    let mut buf = Vec::new();
                    let mut out = Vec::new();
                    while let Some(&seg) = segments.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let mut r = scan_segment(
                            file,
                            len,
                            seg,
                            &search,
                            max_needle,
                            timer.as_mut(),
                            &mut buf,
                        )?;
                        let bytes: usize = r.hits.iter().map(|h| h.text.len()).sum();
                        let lines = kept_lines.fetch_add(r.hits.len(), Ordering::Relaxed);
                        let held = kept_bytes.fetch_add(bytes, Ordering::Relaxed);
                        if lines + r.hits.len() > max_lines || held + bytes > max_bytes {
                            r.hits = Vec::new();
                        }
                        out.push(r);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("scan thread panicked")))
            })
            .collect()
    });
    let mut segs: Vec<SegmentResult> = Vec::with_capacity(segments.len());
    for r in results {
        segs.extend(r?);
    }
    segs.sort_by_key(|s| s.k0);
    let ix = match known {
        Some(ix) => ix,
        None => {
            let mut newlines = vec![0; nwin];
            let mut own = vec![Starts::Unknown; nwin];
            let mut own_fine = vec![None; nwin];
            let mut tails = vec![Tail::Ends; nwin];
            for s in &mut segs {
                for (j, w) in s.index.iter_mut().flatten().enumerate() {
                    if let (Some(n), Some(o), Some(f), Some(t)) = (
                        newlines.get_mut(s.k0 + j),
                        own.get_mut(s.k0 + j),
                        own_fine.get_mut(s.k0 + j),
                        tails.get_mut(s.k0 + j),
                    ) {
                        (*n, *o, *f, *t) = (w.newlines, w.own, w.own_fine.take(), w.tail);
                    }
                }
            }
            let ix = FileIndex::new(len, newlines, &own, own_fine, &tails);
            index.put(name, ix);
            index
                .get(name, len)
                .ok_or_else(|| std::io::Error::other("scan index lost"))?
        }
    };
    // Newlines before each window.
    let mut before = Vec::with_capacity(nwin);
    let mut acc = 0u64;
    for &n in &ix.newlines {
        before.push(acc);
        acc += n;
    }
    let mut hits: Vec<Hit> = Vec::new();
    for s in &mut segs {
        for h in s.hits.drain(..) {
            let line = before.get(s.k0).copied().unwrap_or(0) + h.local + 1;
            hits.push(Hit {
                line,
                text: h.text,
                too_long: h.too_long,
            });
        }
    }
    // Line numbers are exact; a line crossing a segment's end is searched from both segments.
    hits.sort_by_key(|h| h.line);
    hits.dedup_by_key(|h| h.line);
    let windows: Vec<usize> = segs.iter().flat_map(|s| s.k0..s.k1).collect();
    let more = kept_lines.into_inner() > max_lines || kept_bytes.into_inner() > max_bytes;
    if more {
        // Which hits the threads kept depends on which finished first: the first ones in the
        // file instead, read again one segment after another up to the bounds.
        let search = (&Needles::new(&needles), max_needle);
        hits = first_hits(
            file,
            len,
            &segments,
            search,
            &before,
            (max_lines, max_bytes),
        )?;
    }
    Ok(ScanResult {
        hits,
        more,
        windows_read: windows.len(),
        windows,
    })
}

/// The first lines of `segments` (in file order) holding one of the needles of `search` (the
/// longest `max_needle` bytes), up to `max_lines` of `max_bytes`, numbered with `before`
/// (newlines before each window).
fn first_hits(
    file: &File,
    len: u64,
    segments: &[(usize, usize)],
    (search, max_needle): (&Needles<'_>, usize),
    before: &[u64],
    (max_lines, max_bytes): (usize, usize),
) -> std::io::Result<Vec<Hit>> {
    let mut buf = Vec::new();
    let (mut hits, mut bytes) = (Vec::<Hit>::new(), 0usize);
    for &seg in segments {
        let r = scan_segment(file, len, seg, search, max_needle, None, &mut buf)?;
        for h in r.hits {
            let line = before.get(seg.0).copied().unwrap_or(0) + h.local + 1;
            // A line crossing the segment's end was kept with the segment before.
            if hits.last().is_some_and(|l| l.line >= line) {
                continue;
            }
            if hits.len() >= max_lines || bytes + h.text.len() > max_bytes {
                return Ok(hits);
            }
            bytes += h.text.len();
            hits.push(Hit {
                line,
                text: h.text,
                too_long: h.too_long,
            });
        }
    }
    Ok(hits)
}

/// Bytes per read: small enough that the copy out of the page cache and the searches that
/// follow stay in the core's own cache (measured on the 512 MiB Envoy-like log, 2 threads:
/// 64–128 KiB reads 0.17 s, 1 MiB reads 0.5–0.7 s for the same copy, newline count and search).
const CHUNK: usize = 64 << 10;

/// Most windows in one segment (the unit of work handed to a thread).
const SEGMENT: usize = 8;

/// Runs of consecutive windows, cut into segments of at most [`SEGMENT`] windows.
fn segments(selected: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &k in selected {
        match out.last_mut() {
            Some((k0, k1)) if *k1 == k && *k1 - *k0 < SEGMENT => *k1 = k + 1,
            _ => out.push((k, k + 1)),
        }
    }
    out
}

/// What one segment's scan found.
struct SegmentResult {
    k0: usize,
    k1: usize,
    /// Per window of the segment, what indexing learnt (first scan only).
    index: Option<Vec<WindowIndex>>,
    /// `local`: newlines between the window `k0`'s start and the line.
    hits: Vec<WindowHit>,
}

/// A line longer than [`MAX_LINE_LEN`] being skipped.
struct Long {
    /// Where it starts, when known (not when it began more than [`MAX_LINE_LEN`] before the
    /// segment).
    start: Option<u64>,
    /// Newlines between the segment's start and it.
    local: u64,
    /// Its first bytes.
    head: Vec<u8>,
    /// A needle was found in it (it is reported once).
    hit: bool,
}

impl Long {
    fn search(&mut self, part: &[u8], search: &Needles<'_>, hits: &mut Vec<WindowHit>) {
        if self.hit {
            return;
        }
        let mut found = Vec::new();
        search.find(part, part.len(), &mut found);
        if !found.is_empty() {
            self.hit = true;
            hits.push(WindowHit {
                local: self.local,
                text: std::mem::take(&mut self.head),
                too_long: true,
            });
        }
    }
}

/// Search windows `k0..k1`, with the line running into the first one and the line running out
/// of the last one, for `search`, reading [`CHUNK`] bytes at a time; with a `timer` (the first,
/// full scan) also count every window's newlines and note its records' start times.
fn scan_segment(
    file: &File,
    len: u64,
    (k0, k1): (usize, usize),
    search: &Needles<'_>,
    max_needle: usize,
    mut timer: Option<&mut Timer>,
    buf: &mut Vec<u8>,
) -> std::io::Result<SegmentResult> {
    let win = WINDOW as u64;
    let lo = k0 as u64 * win;
    let hi = (k1 as u64 * win).min(len);
    let nw = k1 - k0;
    let mut newlines = vec![0u64; nw];
    let mut spans: Vec<Span> = (0..nw).map(|_| Span::new()).collect();
    let mut tails = vec![Tail::Carry; nw];
    let mut hits = Vec::new();
    // Byte offset of `buf[0]`; the next line starts at `buf[pos]`, `lines` newlines after the
    // segment's first line.
    let (mut base, mut long) = match lo {
        0 => (0, None),
        _ => match line_start_before(file, lo)? {
            Some(s) => (s, None),
            None => (
                lo,
                Some(Long {
                    start: None,
                    local: 0,
                    head: Vec::new(),
                    hit: false,
                }),
            ),
        },
    };
    let (mut filled, mut pos, mut lines) = (0usize, 0usize, 0u64);
    // Bytes kept from a long line for a needle that crosses two reads.
    let keep = max_needle.saturating_sub(1);
    let mut found = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut json = JsonCursor::default();
    // Which window of the segment holds byte `at` (at ≥ lo).
    let wk = |at: u64| usize::try_from(at / win).unwrap_or(usize::MAX) - k0;
    'read: loop {
        if pos > 0 {
            buf.copy_within(pos..filled, 0);
            base += pos as u64;
            filled -= pos;
            pos = 0;
        }
        if long.is_none() && base >= hi {
            break;
        }
        if buf.len() < filled + CHUNK {
            buf.resize(filled + CHUNK, 0);
        }
        let at = base + filled as u64;
        let want = usize::try_from(len.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(CHUNK);
        let n = read_at(file, &mut buf[filled..filled + want], at)?;
        filled += n;
        let eof = n < want || base + filled as u64 >= len;
        if let Some(l) = &mut long {
            let nl = memchr(b'\n', &buf[..filled]);
            l.search(&buf[..nl.unwrap_or(filled)], search, &mut hits);
            let end = match nl {
                Some(i) => base + i as u64,
                None if eof => len,
                None => {
                    pos = filled - keep.min(filled);
                    continue;
                }
            };
            if nl.is_some() && end < hi {
                newlines[wk(end)] += 1;
            }
            if let Some(s) = l.start.filter(|&s| s >= lo) {
                let last = if nl.is_some() {
                    end
                } else {
                    end.saturating_sub(1)
                };
                tails[wk(s)] = if last / win == s / win {
                    Tail::Ends
                } else {
                    Tail::Runs(Starts::Unknown)
                };
            }
            long = None;
            lines += 1;
            match nl {
                Some(i) => pos = i + 1,
                None => break,
            }
            continue;
        }
        let end = match memrchr(b'\n', &buf[pos..filled]) {
            Some(i) => pos + i + 1,
            None if eof => filled,
            None if filled - pos > MAX_LINE_LEN => {
                // Too long to keep: note it, search it as it goes by, count its newline.
                let s = base + pos as u64;
                if timer.is_some() && s >= lo {
                    spans[wk(s)].add(&LineTime::Unknown);
                }
                let mut l = Long {
                    start: Some(s),
                    local: lines,
                    head: buf[pos..pos + crate::source::limits::TOO_LONG_HEAD].to_vec(),
                    hit: false,
                };
                l.search(&buf[pos..filled], search, &mut hits);
                long = Some(l);
                pos = filled - keep;
                continue;
            }
            None => continue,
        };
        let data = &buf[..end];
        found.clear();
        starts.clear();
        search.find(&data[pos..], end - pos, &mut found);
        starts.extend(
            found
                .iter()
                .map(|&p| memrchr(b'\n', &data[pos..pos + p]).map_or(pos, |i| pos + i + 1))
                .filter(|&s| base + (s as u64) < hi),
        );
        starts.sort_unstable();
        starts.dedup();
        match timer.as_deref_mut() {
            Some(t) => {
                json.next_chunk();
                let mut next_hit = starts.iter().copied().peekable();
                let mut s = pos;
                while s < end {
                    let abs = base + s as u64;
                    if abs >= hi {
                        break 'read;
                    }
                    if abs >= lo {
                        // The lines that start here and end in the same window: counted and
                        // timed without the checks the general step below makes for each line.
                        let k = wk(abs);
                        let wend = usize::try_from((k0 + k + 1) as u64 * win - base)
                            .map_or(end, |w| w.min(end));
                        let span = &mut spans[k];
                        let (mut n, mut at) = (0u64, s);
                        while let Some(i) = memchr(b'\n', &data[at..wend]) {
                            if next_hit.peek() == Some(&at) {
                                break;
                            }
                            // As the general step: a window that may hold any time is not
                            // timed further.
                            if span.other != Starts::Unknown {
                                let lt = t.line(data, at, at + i, &mut json, span);
                                span.add(&lt);
                            }
                            n += 1;
                            at += i + 1;
                        }
                        if n > 0 {
                            newlines[k] += n;
                            tails[k] = Tail::Ends;
                            lines += n;
                            s = at;
                            continue;
                        }
                    }
                    let (e, nl) = match memchr(b'\n', &data[s..]) {
                        Some(i) => (s + i, true),
                        None => (end, false),
                    };
                    if next_hit.next_if_eq(&s).is_some() {
                        hits.push(WindowHit::new(lines, data[s..e].to_vec()));
                    }
                    let abs_e = base + e as u64;
                    if nl && abs_e < hi {
                        newlines[wk(abs_e)] += 1;
                    }
                    if abs >= lo {
                        let k = wk(abs);
                        let last = if nl { abs_e } else { abs_e.saturating_sub(1) };
                        let runs = last / win != abs / win;
                        if runs || spans[k].other != Starts::Unknown {
                            let lt = t.line(data, s, e, &mut json, &mut spans[k]);
                            spans[k].add(&lt);
                            tails[k] = if runs {
                                let mut one = Span::new();
                                one.add(&lt);
                                Tail::Runs(one.starts())
                            } else {
                                Tail::Ends
                            };
                        } else {
                            tails[k] = Tail::Ends;
                        }
                    }
                    lines += u64::from(nl);
                    s = e + 1;
                }
            }
            None => {
                let mut counted = pos;
                for &s in &starts {
                    lines += memchr_iter(b'\n', &data[counted..s]).count() as u64;
                    counted = s;
                    let e = memchr(b'\n', &data[s..]).map_or(end, |i| s + i);
                    hits.push(WindowHit::new(lines, data[s..e].to_vec()));
                }
                lines += memchr_iter(b'\n', &data[counted..end]).count() as u64;
            }
        }
        pos = end;
        if eof && pos >= filled {
            break;
        }
    }
    let index = timer.is_some().then(|| {
        (0..nw)
            .map(|j| WindowIndex {
                newlines: newlines[j],
                own: spans[j].starts(),
                own_fine: spans[j].fine(),
                tail: tails[j],
            })
            .collect()
    });
    Ok(SegmentResult {
        k0,
        k1,
        index,
        hits,
    })
}

/// A later round on an indexed file: the lines of the time range `[a, b]`, kept from an earlier
/// round or read now from the `selected` windows (and kept), searched for the needles. `None`
/// when the range holds too many bytes to keep (or a line too long): then the windows are
/// searched directly.
fn ranged(
    file: &File,
    len: u64,
    ix: &FileIndex,
    (a, b): (i64, i64),
    selected: &[usize],
    needles: &[&[u8]],
    spec: &FormatSpec,
) -> std::io::Result<Option<ScanResult>> {
    let kept = ix
        .cache
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|c| c.from <= a && c.to >= b);
    let (cache, windows) = match kept {
        Some(c) => (c, Vec::new()),
        None => match read_range(file, len, ix, (a, b), selected, spec)? {
            Some(c) => {
                let c = Arc::new(c);
                if let Ok(mut slot) = ix.cache.lock() {
                    *slot = Some(c.clone());
                }
                (c, selected.to_vec())
            }
            None => return Ok(None),
        },
    };
    Ok(Some(ScanResult {
        hits: cache.hits(&Needles::new(needles)),
        // The range's lines are bounded by `CACHE_MAX`, its hits with them.
        more: false,
        windows_read: windows.len(),
        windows,
    }))
}

/// Read the lines of the `selected` windows that may hold a record started in `[a, b]`.
fn read_range(
    file: &File,
    len: u64,
    ix: &FileIndex,
    (a, b): (i64, i64),
    selected: &[usize],
    spec: &FormatSpec,
) -> std::io::Result<Option<RangeCache>> {
    let total = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(selected.len().max(1));
    let results: Vec<std::io::Result<Option<Vec<KeptWindow>>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let total = &total;
                sc.spawn(move || {
                    let timer = Timer::new(spec);
                    let mut buf = Vec::new();
                    let mut out = Vec::new();
                    for (i, &k) in selected.iter().enumerate().skip(t).step_by(threads) {
                        let prev_read = i > 0 && selected[i - 1] + 1 == k;
                        let trust = ix.starts(k) != Some(Starts::Unknown);
                        let Some(w) =
                            keep_window(file, len, k, prev_read, trust, &mut buf, &timer, (a, b))?
                        else {
                            return Ok(None);
                        };
                        let bytes = w.text.len();
                        if total.fetch_add(bytes, Ordering::Relaxed) + bytes > CACHE_MAX {
                            return Ok(None);
                        }
                        out.push(w);
                    }
                    Ok(Some(out))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("scan thread panicked")))
            })
            .collect()
    });
    let mut windows = Vec::new();
    for r in results {
        match r? {
            Some(w) => windows.extend(w),
            None => return Ok(None),
        }
    }
    windows.sort_by_key(|w| w.k);
    let mut before = 0u64;
    let mut next = 0usize;
    let mut cache = RangeCache {
        from: a,
        to: b,
        text: Vec::with_capacity(total.load(Ordering::Relaxed)),
        lines: Vec::new(),
    };
    for w in windows {
        before += ix.newlines[next.min(w.k)..w.k].iter().sum::<u64>();
        next = w.k;
        let at = cache.text.len();
        for (local, off) in w.lines {
            cache.lines.push((before + local + 1, at + off));
        }
        cache.text.extend_from_slice(&w.text);
    }
    Ok(Some(cache))
}

/// The lines of one window that may hold a record started in a time range.
struct KeptWindow {
    k: usize,
    /// The lines kept, each with its newline, one after another: one buffer per window, not
    /// one per line (thousands of small allocations made a reader thread's heap grow a page
    /// at a time, one system call each).
    text: Vec<u8>,
    /// (newlines between the window start and the line start, where the line starts in `text`)
    lines: Vec<(u64, usize)>,
}

/// Read window `k` and keep its lines whose start time is in `[a, b]` or not known cheaply;
/// with the line that runs into it from before unless the previous window is read too
/// (`prev_read`). `None` when a line is longer than [`MAX_LINE_LEN`].
#[allow(clippy::too_many_arguments)]
fn keep_window(
    file: &File,
    len: u64,
    k: usize,
    prev_read: bool,
    trust: bool,
    buf: &mut Vec<u8>,
    timer: &Timer,
    (a, b): (i64, i64),
) -> std::io::Result<Option<KeptWindow>> {
    let o = k as u64 * WINDOW as u64;
    let hi = (o + WINDOW as u64).min(len);
    let mut lines = Vec::new();
    let mut text = Vec::new();
    // Where the index could not check the cheap reading against the parser, every line is kept.
    let keep = |key: Option<Key>| !trust || key.and_then(key_ms).is_none_or(|t| a <= t && t <= b);
    // Byte offset of `buf[0]`; the next line starts at `buf[pos]`, `local` newlines after `o`
    // (the line running in from before is number 0). Unless it is kept, the line running in
    // is skipped (`skip`): it belongs to the previous window, which is read too.
    let (mut base, mut skip) = match o {
        0 => (0, false),
        _ if prev_read => (o, true),
        _ => match line_start_before(file, o)? {
            Some(s) => (s, false),
            None => return Ok(None),
        },
    };
    let (mut filled, mut pos, mut local) = (0usize, 0usize, 0u64);
    let mut json = JsonCursor::default();
    loop {
        if pos > 0 {
            buf.copy_within(pos..filled, 0);
            base += pos as u64;
            filled -= pos;
            pos = 0;
        }
        if !skip && base >= hi {
            break;
        }
        if buf.len() < filled + CHUNK {
            buf.resize(filled + CHUNK, 0);
        }
        let at = base + filled as u64;
        let want = usize::try_from(len.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(CHUNK);
        let n = read_at(file, &mut buf[filled..filled + want], at)?;
        filled += n;
        let eof = n < want || base + filled as u64 >= len;
        if skip {
            match memchr(b'\n', &buf[..filled]) {
                Some(i) if base + (i as u64) < hi => {
                    skip = false;
                    local = 1;
                    pos = i + 1;
                }
                // The whole window is inside one line.
                Some(_) => break,
                None if eof || base + filled as u64 >= hi => break,
                None => pos = filled,
            }
            continue;
        }
        let end = match memrchr(b'\n', &buf[pos..filled]) {
            Some(i) => pos + i + 1,
            None if eof => filled,
            None if filled - pos > MAX_LINE_LEN => return Ok(None),
            None => continue,
        };
        let data = &buf[..end];
        json.next_chunk();
        let mut s = pos;
        while s < end && base + (s as u64) < hi {
            let e = memchr(b'\n', &data[s..]).map_or(end, |i| s + i);
            if e - s > MAX_LINE_LEN {
                return Ok(None);
            }
            if keep(timer.cheap(data, s, e, &mut json)) {
                lines.push((local, text.len()));
                text.extend_from_slice(&data[s..e]);
                text.push(b'\n');
            }
            local += 1;
            s = e + 1;
        }
        pos = s.min(end);
        if base + (pos as u64) >= hi || (eof && pos >= filled) {
            break;
        }
    }
    Ok(Some(KeptWindow { k, text, lines }))
}

/// Does the file start with the gzip magic bytes (so it cannot be searched as text)?
pub fn is_gzip(file: &File) -> bool {
    let mut magic = [0u8; 2];
    read_at(file, &mut magic, 0).is_ok_and(|n| n == 2) && magic == [0x1f, 0x8b]
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let mut n = 0;
        while n < buf.len() {
            match file.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

/// Start offset of the line that holds byte `at`, searching backwards from `at` (exclusive)
/// for at most [`MAX_LINE_LEN`] bytes; `None` when the line starts further back (it is then
/// longer than any line read).
fn line_start_before(file: &File, at: u64) -> std::io::Result<Option<u64>> {
    let mut end = at;
    // Lines are short: the first read is small (each segment and each window read alone start
    // with this read, which is a copy like the others).
    let mut chunk = vec![0u8; 4 << 10];
    while end > 0 && at - end <= MAX_LINE_LEN as u64 {
        if end < at {
            chunk.resize(64 << 10, 0);
        }
        let from = end.saturating_sub(chunk.len() as u64);
        let n = (end - from) as usize;
        let got = read_at(file, &mut chunk[..n], from)?;
        if let Some(i) = memrchr(b'\n', &chunk[..got]) {
            return Ok(Some(from + i as u64 + 1));
        }
        end = from;
    }
    Ok((end == 0).then_some(0))
}

/// The bytes around line `line` (1-based) of a file the first scan indexed: whole lines from at
/// most `back` bytes before that line's start to about `fwd` bytes after it, with the number of
/// the region's first line. Used to read a record written over several lines (JSON pretty-printed
/// or hard-wrapped) whose one line held a needle. `None` when the index does not reach the line.
pub fn region_around(
    file: &File,
    idx: &FileIndex,
    line: u64,
    back: u64,
    fwd: u64,
) -> std::io::Result<Option<Region>> {
    // The line starts after the file's (line - 1)th newline: find the window holding it.
    let before = line.saturating_sub(1);
    let start = if before == 0 {
        0
    } else {
        let mut seen = 0u64;
        let mut at = None;
        for (k, &n) in idx.newlines.iter().enumerate() {
            if seen + n >= before {
                at = Some((k, before - seen));
                break;
            }
            seen += n;
        }
        let Some((k, nth)) = at else {
            return Ok(None);
        };
        let from = k as u64 * WINDOW as u64;
        let mut buf = vec![0u8; WINDOW];
        let got = read_at(file, &mut buf, from)?;
        let Some(i) = memchr_iter(b'\n', &buf[..got]).nth((nth - 1) as usize) else {
            return Ok(None);
        };
        from + i as u64 + 1
    };
    let from = start.saturating_sub(back);
    let to = (start + fwd).min(idx.len);
    let mut text = vec![0u8; (to - from) as usize];
    let got = read_at(file, &mut text, from)?;
    text.truncate(got);
    let lead = (start - from) as usize;
    // Whole lines only: the region starts after the first newline before the hit's line.
    let skip = if from == 0 {
        0
    } else {
        match memchr(b'\n', &text[..lead]) {
            Some(i) => i + 1,
            None => lead,
        }
    };
    let lines_before = memchr_iter(b'\n', &text[skip..lead]).count() as u64;
    text.drain(..skip);
    Ok(Some(Region {
        first_line: line - lines_before,
        cut_before: from > 0,
        cut_after: from + (got as u64) < idx.len,
        text,
    }))
}

/// Whole lines of a file around a line (see [`region_around`]).
#[derive(Debug)]
pub struct Region {
    /// 1-based number of the first line in `text`.
    pub first_line: u64,
    /// Lines before the region were left out.
    pub cut_before: bool,
    /// Lines after the region were left out (the last line in `text` may be cut).
    pub cut_after: bool,
    /// The lines.
    pub text: Vec<u8>,
}

/// Reads the start time of every line of a window while its newlines are counted: cheaply from
/// the bytes for Envoy's own time format (`[2024-06-03T09:00:00.069Z]` at the start of a text
/// line, `"start_time":"…"` in a JSON one, also inside a CRI or Docker envelope), compared as
/// bytes without converting each one; with the full parser for the few other lines.
struct Timer {
    parser: LineParser,
    json_key: Finder<'static>,
}

/// Envoy's `%START_TIME%`: `YYYY-MM-DDTHH:MM:SS.mmmZ`, as three big-endian words that order
/// like the times they spell.
type Key = [u64; 3];

const KEY_LEN: usize = 24;
const JSON_KEY: &[u8] = b"\"start_time\":\"";

/// One line's start time.
enum LineTime {
    Key(Key),
    Ms(i64),
    /// Not an access-log record.
    NoRecord,
    /// A record whose start time is unknown.
    Unknown,
}

/// How finely a window's start times are kept besides their range (see [`FileIndex`]): ten
/// seconds, the tens digit of a key's seconds.
pub const BUCKET_MS: i64 = 10_000;

/// The most [`BUCKET_MS`] intervals kept per window; a window whose records started in more
/// is known by its range only.
const MAX_BUCKETS: usize = 64;

/// The key of the first millisecond of `k`'s [`BUCKET_MS`] interval: the seconds' units and
/// the milliseconds zeroed (`…:M0.000Z`).
fn bucket(k: Key) -> Key {
    const TAIL: u64 = u64::from_be_bytes([0, 0, b'0', b'.', b'0', b'0', b'0', b'Z']);
    [k[0], k[1], (k[2] & 0xffff_0000_0000_0000) | TAIL]
}

/// The start times seen in one window.
struct Span {
    /// The least and greatest key seen; `lo > hi` while none is.
    lo: Key,
    hi: Key,
    /// The [`bucket`] of the last key added ([`NO_KEY`] before the first): most lines are in
    /// the same interval as the line before, and are then known without looking further.
    last: Key,
    /// The [`bucket`]s of the keys seen, sorted; `None` past [`MAX_BUCKETS`].
    buckets: Option<Vec<Key>>,
    other: Starts,
    slow: usize,
    /// One line read cheaply was also parsed, and both agree.
    checked: bool,
}

/// Not a key: greater than every key (a key's bytes are ASCII).
const NO_KEY: Key = [u64::MAX; 3];

impl Span {
    fn new() -> Span {
        Span {
            lo: NO_KEY,
            hi: [0; 3],
            last: NO_KEY,
            buckets: Some(Vec::new()),
            other: Starts::Empty,
            slow: 0,
            checked: false,
        }
    }

    #[inline(always)]
    fn add(&mut self, t: &LineTime) {
        match *t {
            LineTime::Key(k) => self.add_key(k),
            LineTime::Ms(t) => self.other = self.other.add(t),
            LineTime::NoRecord => {}
            LineTime::Unknown => self.other = Starts::Unknown,
        }
    }

    #[inline(always)]
    fn add_key(&mut self, k: Key) {
        // Word by word (the key's words are in registers; one wide compare of the array
        // stalled on reading back the words just stored, a third of this function's time).
        let b = bucket(k);
        let same = b[0] == self.last[0] && b[1] == self.last[1] && b[2] == self.last[2];
        if k < self.lo {
            self.lo = k;
        }
        if k > self.hi {
            self.hi = k;
        }
        if same {
            return;
        }
        self.last = b;
        if let Some(bs) = &mut self.buckets
            && let Err(i) = bs.binary_search(&b)
        {
            if bs.len() < MAX_BUCKETS {
                bs.insert(i, b);
            } else {
                self.buckets = None;
            }
        }
    }

    fn starts(&self) -> Starts {
        let keys = match (self.lo <= self.hi).then_some((self.lo, self.hi)) {
            Some((l, h)) => match (key_ms(l), key_ms(h)) {
                (Some(a), Some(b)) => Starts::Range(a, b),
                _ => Starts::Unknown,
            },
            None => Starts::Empty,
        };
        keys.union(self.other)
    }

    /// The start times as intervals: one per [`BUCKET_MS`] bucket of the keys (neighbours
    /// merged), and the range of the others; `None` when only [`Span::starts`] is known.
    fn fine(&self) -> Option<Vec<(i64, i64)>> {
        let mut out: Vec<(i64, i64)> = Vec::new();
        for &k in self.buckets.as_ref()? {
            let a = key_ms(k)?;
            match out.last_mut() {
                Some(last) if last.1 + 1 >= a => last.1 = a + BUCKET_MS - 1,
                _ => out.push((a, a + BUCKET_MS - 1)),
            }
        }
        match self.other {
            Starts::Empty => {}
            Starts::Range(a, b) => out.push((a, b)),
            Starts::Unknown => return None,
        }
        Some(out)
    }
}

impl Timer {
    fn new(spec: &FormatSpec) -> Timer {
        Timer {
            parser: LineParser::new(spec),
            json_key: Finder::new(JSON_KEY).into_owned(),
        }
    }

    /// The start time of the line `data[s..e]`.
    #[inline(always)]
    fn line(
        &mut self,
        data: &[u8],
        s: usize,
        e: usize,
        json: &mut JsonCursor,
        span: &mut Span,
    ) -> LineTime {
        if let Some(k) = self.cheap(data, s, e, json) {
            if span.checked {
                return LineTime::Key(k);
            }
            // Once per window: the full parser must read the same time from this line (a
            // custom format could put another time first).
            if span.slow >= SLOW_LINES {
                return LineTime::Unknown;
            }
            span.slow += 1;
            return match self.slow(&data[s..e]) {
                LineTime::Ms(t) if Some(t) == key_ms(k) => {
                    span.checked = true;
                    LineTime::Key(k)
                }
                LineTime::NoRecord => LineTime::Key(k),
                _ => LineTime::Unknown,
            };
        }
        if span.slow >= SLOW_LINES {
            return LineTime::Unknown;
        }
        span.slow += 1;
        self.slow(&data[s..e])
    }

    /// The start time read from the bytes, for Envoy's default time format.
    #[inline(always)]
    fn cheap(&self, data: &[u8], s: usize, e: usize, json: &mut JsonCursor) -> Option<Key> {
        let line = &data[s..e];
        match *line.first()? {
            b'[' => bracketed(line),
            b'{' if line.starts_with(b"{\"log\":\"[") => bracketed(&line[8..]),
            b'{' => {
                let p = json.next(&self.json_key, data, s, e)?;
                if p >= e {
                    return None;
                }
                let t = p + JSON_KEY.len();
                let k = ts_key(data.get(t..t + KEY_LEN)?)?;
                (data.get(t + KEY_LEN) == Some(&b'"')).then_some(k)
            }
            b'0'..=b'9' => {
                // CRI: `<time> stdout F <line>`.
                let sp = memchr(b' ', &line[..line.len().min(40)])?;
                let rest = &line[sp + 1..];
                let rest = rest
                    .strip_prefix(b"stdout ")
                    .or_else(|| rest.strip_prefix(b"stderr "))?;
                let rest = rest
                    .strip_prefix(b"F ")
                    .or_else(|| rest.strip_prefix(b"P "))?;
                if rest.first() == Some(&b'[') {
                    bracketed(rest)
                } else if rest.first() == Some(&b'{') {
                    let off = e - rest.len();
                    let p = json.next(&self.json_key, data, off, e)?;
                    if p >= e {
                        return None;
                    }
                    let t = p + JSON_KEY.len();
                    let k = ts_key(data.get(t..t + KEY_LEN)?)?;
                    (data.get(t + KEY_LEN) == Some(&b'"')).then_some(k)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// The start time as the full parser reads it.
    fn slow(&mut self, line: &[u8]) -> LineTime {
        let text = String::from_utf8_lossy(line);
        let (_, payload) = meshtrace_parsers::envelope::strip_envelope(&text);
        match self.parser.parse(&payload) {
            LineOutcome::Record(r) | LineOutcome::Truncated { record: r, .. } => {
                match r.start_time() {
                    Some(t) => LineTime::Ms(t.timestamp_millis()),
                    None => LineTime::Unknown,
                }
            }
            LineOutcome::Malformed(_) | LineOutcome::NotAccessLog(_) | LineOutcome::Blank => {
                LineTime::NoRecord
            }
        }
    }
}

/// The next JSON start-time key of a window, searched lazily from a line start.
///
/// Lines of one log put the key at about the same place (Envoy writes the same keys in the
/// same order; only the values before it change length), so it is first looked for within
/// [`JSON_SLACK`] bytes of where the previous line had it, and only then in the whole line: most
/// lines are not searched from their start (on the Envoy-like JSON log that search cost as much
/// as counting the newlines).
#[derive(Default)]
struct JsonCursor {
    /// (searched from, found at)
    last: Option<(usize, Option<usize>)>,
    /// Where the key was in the previous line, from its start.
    hint: Option<usize>,
}

/// How far from the previous line's place the key is looked for first.
const JSON_SLACK: usize = 64;

impl JsonCursor {
    /// A new chunk of lines (offsets into another buffer); the place of the key is kept.
    fn next_chunk(&mut self) {
        self.last = None;
    }

    /// The key in the line `data[from..e]`, if any (`None` or a place at or past `e` otherwise).
    fn next(&mut self, f: &Finder<'_>, data: &[u8], from: usize, e: usize) -> Option<usize> {
        match self.last {
            Some((a, None)) if a <= from => return None,
            Some((a, Some(p))) if a <= from && p >= from => return Some(p),
            _ => {}
        }
        if let Some(h) = self.hint {
            let lo = from + h.saturating_sub(JSON_SLACK);
            let hi = (from + h + JSON_SLACK + JSON_KEY.len()).min(e);
            if let Some(i) = data.get(lo..hi).and_then(|w| f.find(w)) {
                self.hint = Some(lo + i - from);
                return Some(lo + i);
            }
        }
        let p = f.find(&data[from..]).map(|i| from + i);
        self.last = Some((from, p));
        if let Some(p) = p.filter(|&p| p < e) {
            self.hint = Some(p - from);
        }
        p
    }
}

/// `[YYYY-MM-DDTHH:MM:SS.mmmZ]` at the start of `line`.
#[inline(always)]
fn bracketed(line: &[u8]) -> Option<Key> {
    (line.get(KEY_LEN + 1) == Some(&b']'))
        .then(|| ts_key(&line[1..=KEY_LEN]))
        .flatten()
}

/// The key of `YYYY-MM-DDTHH:MM:SS.mmmZ` (checked: digits and separators in place).
#[inline(always)]
fn ts_key(t: &[u8]) -> Option<Key> {
    // Per 8-byte word: 0xff where a digit must be; the separators expected elsewhere.
    const DIGITS: [u64; 3] = [
        u64::from_be_bytes([0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0]),
        u64::from_be_bytes([0xff, 0xff, 0, 0xff, 0xff, 0, 0xff, 0xff]),
        u64::from_be_bytes([0, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0]),
    ];
    const SEPS: [u64; 3] = [
        u64::from_be_bytes([0, 0, 0, 0, b'-', 0, 0, b'-']),
        u64::from_be_bytes([0, 0, b'T', 0, 0, b':', 0, 0]),
        u64::from_be_bytes([b':', 0, 0, b'.', 0, 0, 0, b'Z']),
    ];
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let t: &[u8; KEY_LEN] = t.try_into().ok()?;
    let mut key = [0u64; 3];
    for i in 0..3 {
        let w = u64::from_be_bytes(t[i * 8..i * 8 + 8].try_into().ok()?);
        let d = w & DIGITS[i];
        // Digits are 0x30..=0x39: high nibble 3, and still 3 after adding 6.
        if w & !DIGITS[i] != SEPS[i]
            || d & HIGH != THREES & DIGITS[i]
            || (d + (SIXES & DIGITS[i])) & HIGH != THREES & DIGITS[i]
        {
            return None;
        }
        key[i] = w;
    }
    Some(key)
}

/// Unix ms of a key.
fn key_ms(k: Key) -> Option<i64> {
    let mut b = [0u8; KEY_LEN];
    for (i, w) in k.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_be_bytes());
    }
    let num = |r: std::ops::Range<usize>| -> i64 {
        b[r].iter()
            .fold(0i64, |a, &c| a * 10 + i64::from(c.wrapping_sub(b'0')))
    };
    let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, s, ms) = (num(11..13), num(14..16), num(17..19), num(20..23));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(t: &str, id: &str, pad: usize) -> String {
        format!(
            "[{t}] \"GET /v1/models/m:predict HTTP/1.1\" 200 - via_upstream - \"-\" 10 20 3 2 \"-\" \"curl/8 {}\" \"{id}\" \"m.example.com\" \"10.0.0.9:8080\" inbound|8080|| 127.0.0.6:41000 10.0.0.9:8080 10.0.0.1:5000 outbound_.80_._.m.svc.cluster.local default\n",
            "x".repeat(pad)
        )
    }

    fn write_log(lines: usize) -> (tempfile::NamedTempFile, Vec<String>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut all = Vec::new();
        for i in 0..lines {
            let secs = i / 100;
            let t = format!("2026-11-22T10:{:02}:{:02}.000Z", secs / 60 % 60, secs % 60);
            let l = line(&t, &format!("id-{i:08}"), i % 700);
            f.write_all(l.as_bytes()).unwrap();
            all.push(l);
        }
        f.flush().unwrap();
        (f, all)
    }

    /// A log of `lines` lines (see [`write_log`]) as `x`, after a first round looking for the
    /// id of its second line (which indexes it whole).
    fn first_round(lines: usize) -> (tempfile::NamedTempFile, Vec<String>, ScanIndex, ScanResult) {
        let (f, all) = write_log(lines);
        let ix = ScanIndex::default();
        let needles = ["id-00000001".to_string()];
        let first = scan_file(f.path(), "x", &needles, None, &FormatSpec::Auto, &ix).unwrap();
        (f, all, ix, first)
    }

    /// A needle on every line of a 20 MiB log (an id a load generator sends on every request):
    /// the scan keeps the first lines in the file up to its bound, the same ones on every run,
    /// and says there were more.
    #[test]
    fn a_needle_on_too_many_lines_keeps_the_first_ones() {
        let (f, all) = write_log(40_000);
        assert!(all.iter().map(String::len).sum::<usize>() > 16 * WINDOW);
        let needles = ["curl/8".to_string()];
        for _ in 0..3 {
            let ix = ScanIndex::default();
            let r = scan_file(f.path(), "x", &needles, None, &FormatSpec::Auto, &ix).unwrap();
            assert!(r.more);
            let bytes: usize = r.hits.iter().map(|h| h.text.len()).sum();
            assert!(
                r.hits.len() == HITS_MAX_LINES || bytes + all[r.hits.len()].len() > HITS_MAX_BYTES,
                "{} lines, {bytes} bytes",
                r.hits.len()
            );
            for (k, h) in r.hits.iter().enumerate() {
                assert_eq!(h.line, k as u64 + 1);
                assert_eq!(h.text, all[k].trim_end().as_bytes());
            }
            // The file is indexed whole all the same: line numbers of later rounds stay exact.
            assert_eq!(
                ix.file("x").map(|i| i.windows()),
                Some(all.iter().map(String::len).sum::<usize>().div_ceil(WINDOW))
            );
        }
        // Under the bound, nothing more to say.
        let ix = ScanIndex::default();
        let r = scan_file(
            f.path(),
            "x",
            &["id-00000007".to_string()],
            None,
            &FormatSpec::Auto,
            &ix,
        )
        .unwrap();
        assert!(!r.more);
        assert_eq!(r.hits.len(), 1);
    }

    #[test]
    fn finds_lines_across_window_edges_with_exact_line_numbers() {
        let (f, all) = write_log(12_000); // ~7 MiB: several windows
        let ix = ScanIndex::default();
        // A needle for every 997th line, including lines that straddle window edges.
        let mut needles: Vec<String> = (0..all.len())
            .step_by(997)
            .map(|i| format!("id-{i:08}"))
            .collect();
        let mut offset = 0usize;
        for (i, l) in all.iter().enumerate() {
            let next = offset + l.len();
            if offset / WINDOW != (next - 1) / WINDOW {
                needles.push(format!("id-{i:08}"));
            }
            offset = next;
        }
        let r = scan_file(f.path(), "x", &needles, None, &FormatSpec::Auto, &ix).unwrap();
        let mut want: Vec<u64> = all
            .iter()
            .enumerate()
            .filter(|(_, l)| needles.iter().any(|n| l.contains(n.as_str())))
            .map(|(i, _)| i as u64 + 1)
            .collect();
        want.sort();
        let got: Vec<u64> = r.hits.iter().map(|h| h.line).collect();
        assert_eq!(got, want);
        for h in &r.hits {
            assert_eq!(
                h.text,
                all[h.line as usize - 1].trim_end().as_bytes(),
                "line {}",
                h.line
            );
        }
        // Every window holds records of a few seconds.
        let fi = ix.file("x").unwrap();
        for k in 0..fi.windows() {
            match fi.starts(k).unwrap() {
                Starts::Range(a, b) => assert!(b - a < 20_000, "window {k}: {a}..{b}"),
                other => panic!("window {k}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_region_around_a_line_holds_whole_lines_numbered_as_in_the_file() {
        let (f, all, ix, _) = first_round(12_000); // ~7 MiB: several windows
        let fi = ix.file("x").unwrap();
        let file = File::open(f.path()).unwrap();
        // The first and last lines, lines on both sides of each window edge, and others.
        let mut lines: Vec<u64> = vec![1, 2, all.len() as u64];
        let mut offset = 0usize;
        for (i, l) in all.iter().enumerate() {
            let next = offset + l.len();
            if offset / WINDOW != next / WINDOW {
                lines.extend([i as u64, i as u64 + 1, i as u64 + 2]);
            }
            offset = next;
        }
        lines.extend((1..all.len() as u64).step_by(1_733));
        for &line in &lines {
            for (back, fwd) in [(0, 1), (100, 100), (5_000, 700), (3 << 20, 3 << 20)] {
                let r = region_around(&file, &fi, line, back, fwd).unwrap().unwrap();
                let text = String::from_utf8(r.text.clone()).unwrap();
                let got: Vec<&str> = text.split_inclusive('\n').collect();
                let k = (line - r.first_line) as usize;
                let want = &all[line as usize - 1];
                if fwd < want.len() as u64 {
                    // Only the line's start: the region says the file goes on.
                    assert!(want.starts_with(got[k]) && r.cut_after, "line {line}");
                } else {
                    assert_eq!(got[k], want, "line {line} ({back}, {fwd})");
                }
                // Whole lines from the first one on, each where the file has it.
                for (j, g) in got.iter().enumerate().take(got.len() - 1) {
                    assert_eq!(*g, all[r.first_line as usize - 1 + j], "line {line}");
                }
                assert_eq!(r.cut_before, r.first_line > 1, "line {line}");
                assert_eq!(
                    r.cut_after,
                    !text.ends_with(all.last().unwrap().as_str()),
                    "line {line}"
                );
            }
        }
        assert!(
            region_around(&file, &fi, all.len() as u64 + 2, 10, 10)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_time_range_reads_only_its_windows_and_keeps_line_numbers() {
        let (f, all, ix, first) = first_round(12_000);
        let total = ix.file("x").unwrap().windows();
        assert_eq!(first.windows_read, total);
        // Line 11 001 starts at 10:01:50; a 2-second range needs one or two windows.
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:01:50Z")
            .unwrap()
            .timestamp_millis();
        let r = scan_file(
            f.path(),
            "x",
            &["id-00011000".into()],
            Some((t - 1000, t + 1000)),
            &FormatSpec::Auto,
            &ix,
        )
        .unwrap();
        assert!(r.windows_read < total, "{} of {total}", r.windows_read);
        assert_eq!(r.hits.len(), 1);
        assert_eq!(r.hits[0].line, 11_001);
        assert_eq!(r.hits[0].text, all[11_000].trim_end().as_bytes());
    }

    fn stamp(ms: i64) -> String {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    /// One proxy's log as Envoy writes it: a line when a request ends (every `step` ms), stamped
    /// with its start; one request in 40 ran for `long` ms.
    fn proxy(p: usize, from: i64, n: usize, step: i64, long: i64) -> Vec<(i64, String)> {
        (0..n)
            .map(|i| {
                let end = from + i as i64 * step;
                let start = end - if i % 40 == 7 { long } else { 3 };
                (
                    start,
                    line(&stamp(start), &format!("p{p}-{i:06}"), (i * 37) % 700),
                )
            })
            .collect()
    }

    fn write(lines: &[(i64, String)]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for (_, l) in lines {
            f.write_all(l.as_bytes()).unwrap();
        }
        f.flush().unwrap();
        f
    }

    /// Line numbers of the hits that started in `[a, b]` (what the reader keeps).
    fn kept(hits: &[Hit], lines: &[(i64, String)], (a, b): (i64, i64)) -> Vec<u64> {
        hits.iter()
            .filter(|h| (a..=b).contains(&lines[h.line as usize - 1].0))
            .map(|h| {
                assert_eq!(h.text, lines[h.line as usize - 1].1.trim_end().as_bytes());
                h.line
            })
            .collect()
    }

    /// Windows holding a line (or the end of one) that started in `[a, b]`: they must be read.
    fn needed(lines: &[(i64, String)], (a, b): (i64, i64)) -> Vec<usize> {
        let mut at = 0usize;
        let mut out = std::collections::BTreeSet::new();
        for (t, l) in lines {
            if (a..=b).contains(t) {
                out.extend(at / WINDOW..=(at + l.len() - 1) / WINDOW);
            }
            at += l.len();
        }
        out.into_iter().collect()
    }

    /// `[a, b]` widened to whole [`BUCKET_MS`] intervals: the index tells no finer.
    fn buckets_of((a, b): (i64, i64)) -> (i64, i64) {
        (
            a.div_euclid(BUCKET_MS) * BUCKET_MS,
            b.div_euclid(BUCKET_MS) * BUCKET_MS + BUCKET_MS - 1,
        )
    }

    /// Windows whose lines' start times span `[a, b]` or part of it: they may be read.
    fn possible(lines: &[(i64, String)], (a, b): (i64, i64)) -> Vec<usize> {
        let mut span: std::collections::BTreeMap<usize, (i64, i64)> = Default::default();
        let mut at = 0usize;
        for (t, l) in lines {
            for k in at / WINDOW..=(at + l.len() - 1) / WINDOW {
                let e = span.entry(k).or_insert((*t, *t));
                *e = (e.0.min(*t), e.1.max(*t));
            }
            at += l.len();
        }
        span.into_iter()
            .filter(|(_, (lo, hi))| *lo <= b && *hi >= a)
            .map(|(k, _)| k)
            .collect()
    }

    fn subset(a: &[usize], b: &[usize]) -> bool {
        a.iter().all(|k| b.contains(k))
    }

    /// A ranged scan against a whole-file scan of the same needles: the same records of the
    /// range, from fewer windows.
    fn check_range(
        f: &tempfile::NamedTempFile,
        lines: &[(i64, String)],
        needles: &[String],
        range: (i64, i64),
        ix: &ScanIndex,
    ) -> Vec<usize> {
        // Every line of the file holding a needle, however many.
        let file = File::open(f.path()).unwrap();
        let len = file.metadata().unwrap().len();
        let whole = scan_bounded(
            &file,
            len,
            "w",
            (needles, None),
            &FormatSpec::Auto,
            &ScanIndex::default(),
            (usize::MAX, usize::MAX),
        )
        .unwrap();
        let r = scan_file(f.path(), "f", needles, Some(range), &FormatSpec::Auto, ix).unwrap();
        assert_eq!(kept(&r.hits, lines, range), kept(&whole.hits, lines, range));
        assert!(!kept(&whole.hits, lines, range).is_empty());
        assert_eq!(r.windows_read, r.windows.len());
        if !r.windows.is_empty() {
            let (need, may) = (needed(lines, range), possible(lines, buckets_of(range)));
            assert!(
                subset(&need, &r.windows),
                "read {:?}, need {need:?}",
                r.windows
            );
            assert!(
                subset(&r.windows, &may),
                "read {:?}, may {may:?}",
                r.windows
            );
        }
        r.windows
    }

    /// Three proxies' logs one after another, each 20 minutes of requests, one in 40 lasting
    /// `long` ms (every window's end times go back 20 minutes from the previous one's), scanned
    /// whole for `p1-010000`.
    #[allow(clippy::type_complexity)]
    fn three_proxies(
        long: i64,
    ) -> (
        tempfile::NamedTempFile,
        Vec<(i64, String)>,
        ScanIndex,
        ScanResult,
    ) {
        let t0 = 1_717_405_200_000;
        let mut lines = Vec::new();
        for p in 0..3 {
            lines.extend(proxy(p, t0, 20_000, 60, long));
        }
        let f = write(&lines);
        let ix = ScanIndex::default();
        let first = scan_file(
            f.path(),
            "f",
            &["p1-010000".into()],
            None,
            &FormatSpec::Auto,
            &ix,
        )
        .unwrap();
        (f, lines, ix, first)
    }

    #[test]
    fn interleaved_proxies_read_only_the_windows_of_the_range() {
        // Some requests a minute long.
        let (f, lines, ix, first) = three_proxies(60_000);
        let total = ix.file("f").unwrap().windows();
        assert_eq!(first.windows_read, total);
        assert_eq!(first.hits.len(), 1);
        // The request ran at +10 min; the reader keeps what started within 30 s of it.
        let t = lines[20_000 + 10_000].0;
        let range = (t - 30_000, t + 30_000);
        // An address on every line: every record of the range must be found.
        let every = vec!["p1-010000".to_string(), "10.0.0.1:5000".to_string()];
        let read = check_range(&f, &lines, &every, range, &ix);
        // Each proxy's range and the minute after it, not the file.
        assert!(read.len() * 2 < total, "read {read:?} of {total}");
        // The next round, same range, more needles: no window read again, same answers.
        let more = vec![
            "p1-010000".to_string(),
            "p0-010001".into(),
            "p2-009990".into(),
            "10.0.0.9:8080".into(),
        ];
        assert_eq!(
            check_range(&f, &lines, &more, range, &ix),
            Vec::<usize>::new()
        );
        // A wider range reads the windows again.
        let wide = (t - 200_000, t + 30_000);
        assert!(check_range(&f, &lines, &every, wide, &ix).len() > read.len());
    }

    #[test]
    fn intervals_are_whole_buckets_and_refuse_what_they_cannot_hold() {
        let t = 1_717_405_200_000; // a multiple of BUCKET_MS
        let iv = Intervals::new(&[(t + 12_000, t + 15_000), (t + 95_000, t + 95_000)]).unwrap();
        for (from, to, want) in [
            (t + 10_000, t + 10_000, true), // same bucket as 12 s
            (t + 19_999, t + 20_000, true),
            (t + 20_000, t + 89_999, false),
            (t + 90_000, t + 90_000, true), // 95 s's bucket
            (t + 100_000, t + 200_000, false),
            (t - 50_000, t + 9_999, false),
            (t - 50_000, t + 300_000, true),
        ] {
            assert_eq!(iv.overlaps(from, to), want, "{from}..{to}");
        }
        // More than 65 535 buckets apart (7.6 days): not kept this way.
        assert!(Intervals::new(&[(t, t), (t + 8 * 86_400_000, t + 8 * 86_400_000)]).is_none());
        assert!(Intervals::new(&[(t, t + 86_400_000)]).is_some());
    }

    #[test]
    fn long_requests_started_long_before_do_not_make_a_window_read_for_every_range() {
        // One request in 40 ran ten minutes: every window's start times span ten minutes, but
        // a minute's range needs only the windows holding a record started in it.
        let (f, lines, ix, _) = three_proxies(600_000);
        let t = lines[20_000 + 15_000].0;
        let range = (t - 30_000, t + 30_000);
        let read = check_range(&f, &lines, &["10.0.0.1:5000".into()], range, &ix);
        // What a whole ten-second interval of starts brings in at most, and what the ranges
        // alone would have read.
        let by_bucket = needed(&lines, buckets_of(range));
        let by_range = possible(&lines, range);
        assert!(
            subset(&read, &by_bucket),
            "read {read:?}, may {by_bucket:?}"
        );
        assert!(
            read.len() * 2 < by_range.len(),
            "read {read:?} of {by_range:?}"
        );
    }

    #[test]
    fn a_file_whose_first_window_is_far_behind_still_reads_only_the_range() {
        // Two hours of an older log first (about a window and a half), then the current one.
        let t0 = 1_717_405_200_000;
        let mut lines = proxy(0, t0 - 7_200_000, 2_500, 200, 5_000);
        lines.extend(proxy(1, t0, 12_000, 100, 5_000));
        let f = write(&lines);
        let ix = ScanIndex::default();
        scan_file(
            f.path(),
            "f",
            &["none".into()],
            None,
            &FormatSpec::Auto,
            &ix,
        )
        .unwrap();
        let total = ix.file("f").unwrap().windows();
        let t = lines[2_500 + 6_000].0;
        let range = (t - 30_000, t + 30_000);
        let read = check_range(&f, &lines, &["10.0.0.1:5000".into()], range, &ix);
        assert!(read.len() <= 3, "read {read:?} of {total}");
        // The old part alone.
        let old = (lines[1_000].0 - 1_000, lines[1_000].0 + 1_000);
        let read = check_range(&f, &lines, &["10.0.0.1:5000".into()], old, &ix);
        assert!(
            !read.is_empty() && read.len() <= 2,
            "read {read:?} of {total}"
        );
    }

    #[test]
    fn lines_whose_time_is_not_read_cheaply_keep_their_window() {
        // Every tenth line wrapped by the container runtime (read cheaply too), every `odd`th
        // with another time format (read by the parser; past 32 in a window, the window is
        // read for any range).
        let t0 = 1_717_405_200_000;
        for odd in [97, 13] {
            let mut lines = proxy(0, t0, 12_000, 100, 2_000);
            for (i, (t, l)) in lines.iter_mut().enumerate() {
                if i % odd == 0 {
                    *l = l.replacen(&stamp(*t), &stamp(*t).replace('Z', "+00:00"), 1);
                } else if i % 10 == 0 {
                    *l = format!("{} stdout F {l}", stamp(*t + 5));
                }
            }
            let f = write(&lines);
            let ix = ScanIndex::default();
            scan_file(
                f.path(),
                "f",
                &["none".into()],
                None,
                &FormatSpec::Auto,
                &ix,
            )
            .unwrap();
            let total = ix.file("f").unwrap().windows();
            let t = lines[6_000].0;
            let range = (t - 1_000, t + 1_000);
            let needles = ["10.0.0.1:5000".to_string()];
            if odd == 97 {
                assert_eq!(check_range(&f, &lines, &needles, range, &ix).len(), 1);
            } else {
                let r = scan_file(f.path(), "f", &needles, Some(range), &FormatSpec::Auto, &ix)
                    .unwrap();
                // Every full window holds more than 32 such lines (the last one may not).
                assert!(r.windows_read >= total - 1, "{} of {total}", r.windows_read);
                let whole =
                    scan_file(f.path(), "w", &needles, None, &FormatSpec::Auto, &ix).unwrap();
                assert_eq!(
                    kept(&r.hits, &lines, range),
                    kept(&whole.hits, &lines, range)
                );
            }
        }
    }

    #[test]
    fn one_pass_finds_what_each_needle_alone_finds() {
        // Addresses sharing bytes, a port twice, an id; lines cut anywhere by `own`.
        let needles: Vec<&[u8]> = vec![
            b"10.135.0.43:32802",
            b"10.134.1.2:32802",
            b"127.0.0.6:57895",
            b"9e2a891b-333c-432d-bf06-11bfe7e5adea",
            b"10.1.2.3:",
        ];
        let mut data = Vec::new();
        for i in 0..400 {
            let n = needles[i % needles.len()];
            let near = b"10.135.0.43:3280 10.134.1.2:3280210.135.0.4:32802 127.0.0.6:5789";
            data.extend_from_slice(&near[..(i * 7) % near.len()]);
            if i % 3 == 0 {
                data.extend_from_slice(n);
            }
            data.extend_from_slice(if i % 5 == 0 { b"\n" } else { b" " });
        }
        let search = Needles::new(&needles);
        assert!(matches!(search, Needles::Packed { .. }));
        let line_of = |p: usize, d: &[u8]| memrchr(b'\n', &d[..p]).map_or(0, |i| i + 1);
        for own in (0..data.len()).step_by(97).chain([data.len()]) {
            let mut want: Vec<usize> = needles
                .iter()
                .flat_map(|n| Finder::new(n).find_iter(&data).collect::<Vec<_>>())
                .filter(|&p| p < own)
                .map(|p| line_of(p, &data))
                .collect();
            want.sort_unstable();
            want.dedup();
            let mut found = Vec::new();
            search.find(&data, own, &mut found);
            let mut got: Vec<usize> = found.into_iter().map(|p| line_of(p, &data)).collect();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got, want, "own {own}");
        }
    }

    #[test]
    fn a_line_too_long_across_reads_and_segments_is_reported_once_with_exact_numbers() {
        // Lines up to just before the end of the first segment, then a line longer than any
        // kept line running into the second segment with a needle on each side of the
        // segment's edge, then ordinary lines again.
        let seg_end = SEGMENT * WINDOW;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let (mut at, mut n) = (0usize, 0u64);
        while at < seg_end - 300_000 {
            let l = line("2026-11-22T10:00:00.000Z", &format!("id-{n:08}"), 50);
            f.write_all(l.as_bytes()).unwrap();
            at += l.len();
            n += 1;
        }
        let long_line = n + 1;
        let mut long = line("2026-11-22T10:00:01.000Z", "long", 0).into_bytes();
        long.pop();
        long.resize(seg_end - at - 10, b'x');
        long.extend_from_slice(b"NEEDLE-A NEEDLE-B");
        long.resize(long.len() + MAX_LINE_LEN, b'y');
        long.push(b'\n');
        f.write_all(&long).unwrap();
        n += 1;
        for i in 0..20_000u64 {
            let l = line("2026-11-22T10:00:02.000Z", &format!("after-{i:06}"), 50);
            f.write_all(l.as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let ix = ScanIndex::default();
        let needles = [
            "NEEDLE-A".to_string(),
            "NEEDLE-B".into(),
            "after-012345".into(),
            "id-00000007".into(),
        ];
        let r = scan_file(f.path(), "x", &needles, None, &FormatSpec::Auto, &ix).unwrap();
        let got: Vec<(u64, bool)> = r.hits.iter().map(|h| (h.line, h.too_long)).collect();
        assert_eq!(
            got,
            vec![(8, false), (long_line, true), (n + 12_346, false)]
        );
        assert!(r.hits[1].text.starts_with(b"[2026-11-22T10:00:01.000Z]"));
        assert!(r.hits[2].text.ends_with(b"default"));
        // Every newline counted once.
        let fi = ix.file("x").unwrap();
        assert_eq!(fi.newlines.iter().sum::<u64>(), n + 20_000);
        // The windows inside the long line hold its start time (any time: it was not read).
        let k = (seg_end + 10) / WINDOW;
        assert_eq!(fi.starts(k), Some(Starts::Unknown));
    }

    #[test]
    fn the_json_key_near_the_previous_lines_place_is_the_one_a_whole_search_finds() {
        // Values before the key of every length (the key moves by up to 400 bytes from one line
        // to the next, or by a few), lines without the key, CRI-wrapped lines.
        let timer = Timer::new(&FormatSpec::Auto);
        let (mut data, mut lines) = (Vec::new(), Vec::new());
        for i in 0..500usize {
            let pad = "p".repeat(if i % 50 < 25 { i % 9 } else { (i * 37) % 400 });
            let t = format!("2026-11-22T10:{:02}:{:02}.{:03}Z", i / 60 % 60, i % 60, i);
            let l = match i % 7 {
                0 => format!("{{\"path\":\"/{pad}\",\"response_code\":200}}"),
                1 => format!(
                    "2026-11-22T10:00:00.000000000Z stdout F {{\"a\":\"{pad}\",\"start_time\":\"{t}\"}}"
                ),
                2 => format!("{{\"start_time\":\"{t}\",\"path\":\"/{pad}\"}}"),
                _ => format!("{{\"authority\":\"{pad}\",\"start_time\":\"{t}\",\"x\":1}}"),
            };
            lines.push((data.len(), data.len() + l.len(), i % 7 != 0));
            data.extend_from_slice(l.as_bytes());
            data.push(b'\n');
        }
        let mut json = JsonCursor::default();
        for &(s, e, has) in &lines {
            let want = timer.cheap(&data, s, e, &mut JsonCursor::default());
            assert_eq!(want.is_some(), has);
            assert_eq!(timer.cheap(&data, s, e, &mut json), want, "line at {s}");
        }
    }

    #[test]
    fn cheap_times_are_the_parsers() {
        for t in [
            "2024-06-03T09:00:00.069Z",
            "1999-12-31T23:59:59.999Z",
            "2000-02-29T12:00:00.000Z",
            "2026-11-22T10:01:50.500Z",
        ] {
            let want = chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .timestamp_millis();
            assert_eq!(ts_key(t.as_bytes()).and_then(key_ms), Some(want), "{t}");
        }
        for bad in [
            "2024-06-03T09:00:00.069+", // not UTC
            "2024-06-03 09:00:00.069Z",
            "2024-06-03T09:0a:00.069Z",
            "2024-06-03T09:00:00,069Z",
            "2024-13-03T09:00:00.069Z",
        ] {
            assert_eq!(ts_key(bad.as_bytes()).and_then(key_ms), None, "{bad}");
        }
        // Keys order like times.
        let k = |t: &str| ts_key(t.as_bytes()).unwrap();
        assert!(k("2024-06-03T09:00:00.069Z") < k("2024-06-03T09:00:00.070Z"));
        assert!(k("2024-06-03T09:59:59.999Z") < k("2024-06-03T10:00:00.000Z"));
    }
}
