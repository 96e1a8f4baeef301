//! Finding the lines of a large plain log file that contain given strings, the way `rg -F` does:
//! fixed windows read with positioned reads on every core and searched with `memmem`, plus an
//! index (newlines and first end time per window) so later rounds read only the windows of a
//! time range.
//!
//! Memory is one window per thread whatever the file size. Line numbers are exact: every window's
//! newlines are counted in the first (full) scan and kept in the [`ScanIndex`].

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};

use meshtrace_parsers::detect::{FormatSpec, LineOutcome, LineParser, MAX_LINE_LEN};
use meshtrace_parsers::memchr::{memchr, memchr_iter, memmem::Finder, memrchr};

/// Bytes per window.
pub const WINDOW: usize = 1 << 20;

/// How far out of order (by end time) lines of one file may be written, and still let a time
/// range skip windows: Envoy flushes each worker's access log separately.
const ORDER_SLACK_MS: i64 = 60_000;

/// What the first full scan of a file learnt, reused by later rounds.
#[derive(Debug)]
pub struct FileIndex {
    len: u64,
    /// Newlines in each window.
    newlines: Vec<u64>,
    /// End time (start + duration, Unix ms) of the first access-log record of each window.
    first_end: Vec<Option<i64>>,
    /// Whether end times grow along the file (give or take [`ORDER_SLACK_MS`]): only then can a
    /// time range skip windows.
    ordered: bool,
}

impl FileIndex {
    fn new(len: u64, newlines: Vec<u64>, first_end: Vec<Option<i64>>) -> FileIndex {
        let mut max = i64::MIN;
        let mut ordered = true;
        for &e in first_end.iter().flatten() {
            if e < max.saturating_sub(ORDER_SLACK_MS) {
                ordered = false;
            }
            max = max.max(e);
        }
        FileIndex {
            len,
            newlines,
            first_end,
            ordered,
        }
    }

    /// Windows that may hold lines written between `from` and `to` (Unix ms).
    fn windows_for(&self, from: i64, to: i64) -> Vec<usize> {
        let n = self.first_end.len();
        if !self.ordered {
            return (0..n).collect();
        }
        // Lines of window k were written after its first record ended (lo) and before the
        // first record of the next window with a known time ended (hi).
        let mut next_known = vec![None; n];
        let mut next = None;
        for k in (0..n).rev() {
            next_known[k] = next;
            if self.first_end[k].is_some() {
                next = self.first_end[k];
            }
        }
        let mut lo = None;
        (0..n)
            .filter(|&k| {
                if self.first_end[k].is_some() {
                    lo = self.first_end[k];
                }
                let lo_ok = lo.is_none_or(|l| l <= to.saturating_add(ORDER_SLACK_MS));
                let hi_ok = next_known[k].is_none_or(|h| h >= from.saturating_sub(ORDER_SLACK_MS));
                lo_ok && hi_ok
            })
            .collect()
    }

    /// Windows the index covers.
    pub fn windows(&self) -> usize {
        self.newlines.len()
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
    /// Windows read (out of [`FileIndex::windows`]).
    pub windows_read: usize,
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

struct WindowResult {
    k: usize,
    newlines: u64,
    first_end: Option<i64>,
    hits: Vec<WindowHit>,
}

/// Find the lines of `path` holding any of `needles`. With an index from an earlier scan of the
/// same file and a time range (`window`, Unix ms), only the windows written in that range are
/// read; otherwise the whole file is, and its index is stored in `index` under `name`.
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
    let overlap = needles.iter().map(|n| n.len() - 1).max().unwrap_or(0);
    let build_index = known.is_none();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(selected.len().max(1));
    let results: Vec<std::io::Result<Vec<WindowResult>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (selected, needles) = (&selected, &needles);
                sc.spawn(move || {
                    let finders: Vec<Finder<'_>> = needles.iter().map(Finder::new).collect();
                    let mut parser = build_index.then(|| LineParser::new(spec));
                    let mut buf = vec![0u8; WINDOW + overlap];
                    let mut out = Vec::new();
                    for &k in selected.iter().skip(t).step_by(threads) {
                        out.push(scan_window(
                            file,
                            len,
                            k,
                            &finders,
                            overlap,
                            &mut buf,
                            parser.as_mut(),
                        )?);
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
    let mut windows: Vec<WindowResult> = Vec::with_capacity(selected.len());
    for r in results {
        windows.extend(r?);
    }
    windows.sort_by_key(|w| w.k);
    let ix = match known {
        Some(ix) => ix,
        None => {
            let mut newlines = vec![0; nwin];
            let mut first_end = vec![None; nwin];
            for w in &windows {
                newlines[w.k] = w.newlines;
                first_end[w.k] = w.first_end;
            }
            let ix = FileIndex::new(len, newlines, first_end);
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
    for w in &mut windows {
        for h in w.hits.drain(..) {
            let line = before.get(w.k).copied().unwrap_or(0) + h.local + 1;
            hits.push(Hit {
                line,
                text: h.text,
                too_long: h.too_long,
            });
        }
    }
    // Line numbers are exact (a line too long to find its start may be hit from two windows).
    hits.sort_by_key(|h| h.line);
    hits.dedup_by_key(|h| h.line);
    Ok(ScanResult {
        hits,
        windows_read: windows.len(),
    })
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
    let mut chunk = vec![0u8; 64 << 10];
    while end > 0 && at - end <= MAX_LINE_LEN as u64 {
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

/// The line starting at `start`, up to [`MAX_LINE_LEN`] + 1 bytes, without its end of line.
fn line_from(file: &File, len: u64, start: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut at = start;
    while at < len && out.len() <= MAX_LINE_LEN {
        let got = read_at(file, &mut chunk, at)?;
        if got == 0 {
            break;
        }
        if let Some(i) = memchr(b'\n', &chunk[..got]) {
            out.extend_from_slice(&chunk[..i]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..got]);
        at += got as u64;
    }
    out.truncate(MAX_LINE_LEN + 1);
    Ok(out)
}

fn scan_window(
    file: &File,
    len: u64,
    k: usize,
    finders: &[Finder<'_>],
    overlap: usize,
    buf: &mut [u8],
    parser: Option<&mut LineParser>,
) -> std::io::Result<WindowResult> {
    let o = k as u64 * WINDOW as u64;
    let want = usize::try_from(len - o.min(len))
        .unwrap_or(usize::MAX)
        .min(WINDOW + overlap);
    let n = read_at(file, &mut buf[..want], o)?;
    let data = &buf[..n];
    let own = n.min(WINDOW);
    let newlines = memchr_iter(b'\n', &data[..own]).count() as u64;
    // Line starts (relative) of the needles' lines; None: the line began before this window.
    let mut starts: Vec<Option<usize>> = Vec::new();
    for f in finders {
        for pos in f.find_iter(data) {
            if pos >= own {
                break;
            }
            starts.push(memrchr(b'\n', &data[..pos]).map(|i| i + 1));
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let mut hits = Vec::with_capacity(starts.len());
    let mut counted = 0usize;
    let mut local = 0u64;
    for s in starts {
        match s {
            None if o == 0 => hits.push(line_in(data, 0, file, len, o, 0)?),
            None => {
                hits.push(match line_start_before(file, o)? {
                    Some(start) => WindowHit::new(0, line_from(file, len, start)?),
                    None => WindowHit {
                        local: 0,
                        text: Vec::new(),
                        too_long: true,
                    },
                });
            }
            Some(s) => {
                local += memchr_iter(b'\n', &data[counted..s]).count() as u64;
                counted = s;
                hits.push(line_in(data, s, file, len, o, local)?);
            }
        }
    }
    let first_end = match parser {
        Some(p) => first_end(data, own, o == 0, p),
        None => None,
    };
    Ok(WindowResult {
        k,
        newlines,
        first_end,
        hits,
    })
}

/// The line starting at relative offset `s` of a window read at `o`.
fn line_in(
    data: &[u8],
    s: usize,
    file: &File,
    len: u64,
    o: u64,
    local: u64,
) -> std::io::Result<WindowHit> {
    let text = match memchr(b'\n', &data[s..]) {
        Some(i) => data[s..s + i].to_vec(),
        None => line_from(file, len, o + s as u64)?,
    };
    Ok(WindowHit::new(local, text))
}

/// End time (Unix ms) of the first access-log record that starts in the window.
fn first_end(data: &[u8], own: usize, at_start: bool, parser: &mut LineParser) -> Option<i64> {
    let mut s = if at_start {
        0
    } else {
        memchr(b'\n', &data[..own])? + 1
    };
    for _ in 0..16 {
        if s >= own {
            return None;
        }
        let e = memchr(b'\n', &data[s..]).map_or(data.len(), |i| s + i);
        let text = String::from_utf8_lossy(&data[s..e]);
        let (_, payload) = meshtrace_parsers::envelope::strip_envelope(&text);
        if let LineOutcome::Record(r) = parser.parse(&payload)
            && let Some(t) = r.start_time()
        {
            let d = i64::try_from(r.duration_ms().unwrap_or(0)).unwrap_or(0);
            return Some(t.timestamp_millis().saturating_add(d));
        }
        s = e + 1;
    }
    None
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
        assert!(ix.file("x").unwrap().ordered);
    }

    #[test]
    fn a_time_range_reads_only_its_windows_and_keeps_line_numbers() {
        let (f, all) = write_log(12_000);
        let ix = ScanIndex::default();
        let first = scan_file(
            f.path(),
            "x",
            &["id-00000001".into()],
            None,
            &FormatSpec::Auto,
            &ix,
        )
        .unwrap();
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

    #[test]
    fn out_of_order_files_are_read_whole() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let (_, a) = write_log(12_000);
        let (_, b) = write_log(12_000);
        // Two copies: the second goes back in time.
        for l in a.iter().chain(&b) {
            f.write_all(l.as_bytes()).unwrap();
        }
        f.flush().unwrap();
        let ix = ScanIndex::default();
        scan_file(
            f.path(),
            "y",
            &["nothing".into()],
            None,
            &FormatSpec::Auto,
            &ix,
        )
        .unwrap();
        assert!(!ix.file("y").unwrap().ordered);
        let r = scan_file(
            f.path(),
            "y",
            &["id-00000005".into()],
            Some((0, 1)),
            &FormatSpec::Auto,
            &ix,
        )
        .unwrap();
        assert_eq!(r.windows_read, ix.file("y").unwrap().windows());
        let lines: Vec<u64> = r.hits.iter().map(|h| h.line).collect();
        assert_eq!(lines, vec![6, 12_006]);
    }
}
