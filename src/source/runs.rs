//! Cutting one log into its time-ordered runs, so that a file holding several proxies' logs one
//! after another (a pasted ticket, `cat *.log > all.log`) is merged like separate logs.
//!
//! Envoy writes a line when a request ends, so one proxy's log is in end-time order give or
//! take its workers' one-second flushes. A file whose end times jump back by more than
//! [`RUN_SLACK_MS`] starts a new run there. The runs are found before reading, from the end
//! times of lines sampled every [`SAMPLE_EVERY`] bytes (positioned reads, no full pass): where a
//! sample goes back in time, every line since the previous sample is looked at to find where
//! exactly. Each run is then read by its own reader from its own offset, with exact line
//! numbers (the newlines before it are counted on every core). Only inputs readable at any
//! offset are cut (files, bundle members); standard input and gzip streams are read as one run.
//!
//! Limit: a run short enough to fall between two samples, with the samples on either side in
//! order, is not seen; its lines then arrive late and the report says so.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshtrace_analysis::settle::end_ms;
use meshtrace_parsers::detect::{FormatSpec, LineOutcome, LineParser};
use meshtrace_parsers::envelope::strip_envelope;
use meshtrace_parsers::memchr::{memchr, memchr_iter};

/// How far back (by end time) a line may go and still continue the run before it. Envoy flushes
/// each worker's buffer about once a second, so one proxy's lines are out of order by about a
/// second; three seconds keeps each run, and so the merge of the runs, well inside the 5–15 s
/// the settler waits before it counts a request.
pub const RUN_SLACK_MS: i64 = 3_000;
/// Distance between sampled lines (at least; at most [`MAX_SAMPLES`] samples per input).
pub const SAMPLE_EVERY: u64 = 64 << 10;
/// Samples per input (each parses one line: 4 096 of them take 30–70 ms on a loaded machine),
/// unless that puts them more than [`MAX_SAMPLE_STEP`] apart.
const MAX_SAMPLES: u64 = 1 << 12;
/// Distance between sampled lines at most (from 4 GiB of log on): what is read at once to look
/// at every line between two samples stays this small.
const MAX_SAMPLE_STEP: u64 = 1 << 20;
/// Bytes read at each sample point to find a whole line.
const PROBE: usize = 8 << 10;
/// Lines tried at a sample point before giving up on it (not access-log lines).
const PROBE_LINES: usize = 16;
/// Runs per input at most: each is read by a thread of its own. A file cut more often than
/// this is read as this many runs, the last one to the end; its later jumps back in time are
/// reported like those of standard input.
pub const MAX_RUNS: usize = 16;
/// Bytes per read when counting newlines (small enough to stay in the CPU cache: 64 KiB counted
/// twice as fast as 1 MiB).
const COUNT_CHUNK: usize = 1 << 16;

/// A log whose bytes can be read at any offset: a file, a member spooled to a temporary file,
/// or archive bytes in memory.
#[derive(Clone)]
pub enum Positioned {
    /// Bytes of a file from `start`.
    File {
        /// The file, shared by the readers of its runs (positioned reads, no shared cursor).
        file: Arc<File>,
        /// Where the log starts in the file.
        start: u64,
        /// Its length when opened.
        len: u64,
        /// Stop at `len` (a member of a shared temporary file); else read to the end of the
        /// file, as it is then (a log still being written).
        bounded: bool,
    },
    /// Bytes in memory.
    Memory(Arc<Vec<u8>>),
}

impl std::fmt::Debug for Positioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Positioned({} bytes)", self.len())
    }
}

impl Positioned {
    /// A whole file, read to its end.
    pub fn file(file: File) -> io::Result<Positioned> {
        let len = file.metadata()?.len();
        Ok(Positioned::File {
            file: Arc::new(file),
            start: 0,
            len,
            bounded: false,
        })
    }

    /// A regular file at `path`, to read at any offset; `None` for a named pipe, a device or a
    /// file that cannot be opened (it is then read as it comes, and its opener names the error).
    pub fn regular_file(path: &std::path::Path) -> Option<Positioned> {
        std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .and_then(|_| File::open(path).and_then(Positioned::file).ok())
    }

    /// Length in bytes (when opened).
    pub fn len(&self) -> u64 {
        match self {
            Positioned::File { len, .. } => *len,
            Positioned::Memory(b) => b.len() as u64,
        }
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Read at `offset` (from the log's start) until `buf` is full or the log ends.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self {
            Positioned::Memory(b) => {
                let from = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let n = buf.len().min(b.len() - from);
                buf[..n].copy_from_slice(&b[from..from + n]);
                Ok(n)
            }
            Positioned::File {
                file,
                start,
                len,
                bounded,
            } => {
                let want = if *bounded {
                    let left = len.saturating_sub(offset);
                    buf.len().min(usize::try_from(left).unwrap_or(usize::MAX))
                } else {
                    buf.len()
                };
                file_read_at(file, &mut buf[..want], start.saturating_add(offset))
            }
        }
    }

    /// Whether it starts with the gzip magic bytes (a stream: read as one run).
    pub fn is_gzip(&self) -> bool {
        let mut magic = [0u8; 2];
        self.read_at(&mut magic, 0).is_ok_and(|n| n == 2) && magic == [0x1f, 0x8b]
    }

    /// A reader of bytes `from..to` (`None`: to the end).
    pub fn reader(&self, from: u64, to: Option<u64>) -> RangeReader {
        RangeReader {
            src: self.clone(),
            pos: from,
            end: to,
        }
    }
}

fn file_read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        #[cfg(unix)]
        let got = std::os::unix::fs::FileExt::read_at(file, &mut buf[n..], offset + n as u64);
        #[cfg(windows)]
        let got = std::os::windows::fs::FileExt::seek_read(file, &mut buf[n..], offset + n as u64);
        match got {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads part of a [`Positioned`] log in order.
pub struct RangeReader {
    src: Positioned,
    pos: u64,
    end: Option<u64>,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = match self.end {
            Some(end) => {
                let left = end.saturating_sub(self.pos);
                buf.len().min(usize::try_from(left).unwrap_or(usize::MAX))
            }
            None => buf.len(),
        };
        if want == 0 {
            return Ok(0);
        }
        let n = self.src.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One time-ordered run of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Offset of its first byte (the start of a line).
    pub start: u64,
    /// Offset after its last byte; `None` for the last run (to the end of the log).
    pub end: Option<u64>,
    /// Lines before it (its first line is numbered this plus one).
    pub lines_before: u64,
}

/// The time-ordered runs of `src` in `spec` (one run when the end times never go back by more
/// than [`RUN_SLACK_MS`], or when no line has a time), at most `max_runs`.
pub fn find_runs(src: &Positioned, spec: &FormatSpec, max_runs: usize) -> io::Result<Vec<Run>> {
    let starts = run_starts(src, spec, max_runs.max(1))?;
    let lines = newlines_before(src, &starts)?;
    Ok(starts
        .iter()
        .zip(&lines)
        .enumerate()
        .map(|(i, (&start, &lines_before))| Run {
            start,
            end: starts.get(i + 1).copied(),
            lines_before,
        })
        .collect())
}

/// Offsets where runs start (the first is 0).
fn run_starts(src: &Positioned, spec: &FormatSpec, max_runs: usize) -> io::Result<Vec<u64>> {
    let len = src.len();
    let mut parser = LineParser::new(spec);
    let step = SAMPLE_EVERY
        .max(len.div_ceil(MAX_SAMPLES))
        .min(MAX_SAMPLE_STEP);
    let mut buf = vec![0u8; PROBE];
    let mut starts = vec![0u64];
    // The latest end of the current run so far, and where the previous sample's line starts.
    let mut run_max = i64::MIN;
    let mut prev = 0u64;
    let mut o = 0u64;
    while o < len && starts.len() < max_runs {
        if let Some((at, end)) = sample(src, o, &mut buf, &mut parser)? {
            if run_max != i64::MIN && end < run_max.saturating_sub(RUN_SLACK_MS) {
                run_max = look_closer(src, prev, at, run_max, &mut parser, &mut starts)?;
            } else {
                run_max = run_max.max(end);
            }
            prev = at;
        }
        o += step;
    }
    starts.truncate(max_runs);
    Ok(starts)
}

/// End time of a record line (`None`: not a record, or no time).
fn line_end(line: &[u8], parser: &mut LineParser) -> Option<i64> {
    let text = String::from_utf8_lossy(line);
    let (env, payload) = strip_envelope(&text);
    let outcome = parser.parse(&payload);
    // A bare leading %START_TIME% read as a `kubectl logs --timestamps` prefix is put back.
    let again = meshtrace_parsers::assemble::reread_with_prefix(
        parser,
        env.kind,
        env.time.as_deref(),
        &payload,
        &outcome,
    );
    match (again, outcome) {
        (Some(r), _) | (None, LineOutcome::Record(r)) => {
            Some(end_ms(&r)).filter(|&e| e != i64::MIN)
        }
        _ => None,
    }
}

/// The first record line starting after `o` (at `o` when it is 0): its offset and end time.
fn sample(
    src: &Positioned,
    o: u64,
    buf: &mut [u8],
    parser: &mut LineParser,
) -> io::Result<Option<(u64, i64)>> {
    let n = src.read_at(buf, o)?;
    let data = &buf[..n];
    let at_end = n < buf.len();
    let mut s = if o == 0 {
        0
    } else {
        match memchr(b'\n', data) {
            Some(i) => i + 1,
            None => return Ok(None),
        }
    };
    for _ in 0..PROBE_LINES {
        if s >= data.len() {
            break;
        }
        let e = match memchr(b'\n', &data[s..]) {
            Some(i) => s + i,
            None if at_end => data.len(),
            None => break,
        };
        if let Some(end) = line_end(&data[s..e], parser) {
            return Ok(Some((o + s as u64, end)));
        }
        s = e + 1;
    }
    Ok(None)
}

/// Every line from the one starting at `from` to the one starting at `to` (a sample that went
/// back in time), continuing a run whose latest end is `run_max`: the start of each line that
/// goes back more than [`RUN_SLACK_MS`] is a run start. Returns the latest end of the run then.
fn look_closer(
    src: &Positioned,
    from: u64,
    to: u64,
    mut run_max: i64,
    parser: &mut LineParser,
    starts: &mut Vec<u64>,
) -> io::Result<i64> {
    // The last line (at `to`) is whole within PROBE bytes: `sample` found it so.
    let want = usize::try_from(to - from)
        .unwrap_or(usize::MAX)
        .saturating_add(PROBE);
    let mut data = vec![0u8; want];
    let n = src.read_at(&mut data, from)?;
    data.truncate(n);
    let mut s = 0usize;
    while s < data.len() && from + s as u64 <= to {
        let e = memchr(b'\n', &data[s..]).map_or(data.len(), |i| s + i);
        if let Some(end) = line_end(&data[s..e], parser) {
            let at = from + s as u64;
            if end < run_max.saturating_sub(RUN_SLACK_MS) && starts.last().is_some_and(|&l| at > l)
            {
                starts.push(at);
                run_max = end;
            } else {
                run_max = run_max.max(end);
            }
        }
        s = e + 1;
    }
    Ok(run_max)
}

/// Lines before each of `starts` (sorted): newlines counted on every core.
fn newlines_before(src: &Positioned, starts: &[u64]) -> io::Result<Vec<u64>> {
    let Some(&last) = starts.last().filter(|&&l| l > 0) else {
        return Ok(vec![0; starts.len()]);
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Pieces: between run starts, and cut evenly so that every core has work.
    let mut cuts: Vec<u64> = (0..=threads as u64)
        .map(|i| last / threads as u64 * i)
        .collect();
    cuts.extend_from_slice(starts);
    cuts.push(last);
    cuts.sort_unstable();
    cuts.dedup();
    let pieces: Vec<(u64, u64)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
    let counts: Vec<AtomicUsize> = pieces.iter().map(|_| AtomicUsize::new(0)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|sc| -> io::Result<()> {
        let workers: Vec<_> = (0..threads.min(pieces.len()))
            .map(|_| {
                sc.spawn(|| -> io::Result<()> {
                    let mut buf = vec![0u8; COUNT_CHUNK];
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(a, b)) = pieces.get(k) else {
                            return Ok(());
                        };
                        let mut at = a;
                        let mut count = 0usize;
                        while at < b {
                            let want = usize::try_from(b - at).unwrap_or(usize::MAX).min(buf.len());
                            let n = src.read_at(&mut buf[..want], at)?;
                            if n == 0 {
                                break;
                            }
                            count += memchr_iter(b'\n', &buf[..n]).count();
                            at += n as u64;
                        }
                        counts[k].store(count, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .unwrap_or_else(|_| Err(io::Error::other("counting lines stopped")))?;
        }
        Ok(())
    })?;
    let mut out = Vec::with_capacity(starts.len());
    let mut total = 0u64;
    let mut k = 0;
    for &s in starts {
        while k < pieces.len() && pieces[k].0 < s {
            total += counts[k].load(Ordering::Relaxed) as u64;
            k += 1;
        }
        out.push(total);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text line of the default Envoy format that started at `ms` after 10:00 and took `d` ms.
    fn line(ms: u64, d: u64) -> String {
        let s = ms / 1000;
        format!(
            "[2024-06-03T10:{:02}:{:02}.{:03}Z] \"GET /v1/models HTTP/1.1\" 200 - via_upstream - \"-\" 0 12 {d} {d} \"-\" \"curl\" \"id-{ms}\" \"model.example.com\" \"10.0.0.1:8080\" outbound|80||model.example.com 10.0.0.2:40000 10.0.0.2:80 10.0.0.3:50000 - default\n",
            s / 60,
            s % 60,
            ms % 1000
        )
    }

    /// One proxy's log: a line per 50 ms from `from_ms`, each ending in order.
    fn log(from_ms: u64, lines: u64) -> String {
        (0..lines).map(|i| line(from_ms + i * 50, 5)).collect()
    }

    fn runs_of(text: &str) -> Vec<Run> {
        let src = Positioned::Memory(Arc::new(text.as_bytes().to_vec()));
        find_runs(&src, &FormatSpec::Auto, MAX_RUNS).unwrap()
    }

    #[test]
    fn one_ordered_log_is_one_run() {
        let text = log(0, 4000);
        assert!(text.len() as u64 > 8 * SAMPLE_EVERY);
        assert_eq!(
            runs_of(&text),
            vec![Run {
                start: 0,
                end: None,
                lines_before: 0
            }]
        );
    }

    #[test]
    fn logs_one_after_another_are_cut_at_their_first_line_with_exact_line_numbers() {
        let parts = [log(0, 3000), log(20, 2500), log(60_000, 10), log(0, 2000)];
        let text = parts.concat();
        let runs = runs_of(&text);
        let mut start = 0u64;
        let mut lines = 0u64;
        let mut want = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            want.push(Run {
                start,
                end: (i + 1 < parts.len()).then(|| start + p.len() as u64),
                lines_before: lines,
            });
            start += p.len() as u64;
            lines += p.lines().count() as u64;
        }
        // The 10-line log falls between two samples; the next sample goes back and the lines
        // since the previous sample are looked at one by one.
        assert_eq!(runs, want);
    }

    #[test]
    fn a_second_of_disorder_is_not_a_new_run() {
        // Two workers flushing a second apart: ends go back by up to a second.
        let mut text = String::new();
        for i in 0..3000u64 {
            let t = i * 50;
            let jitter = if (t / 1000) % 2 == 0 { 900 } else { 0 };
            text.push_str(&line(t.saturating_sub(jitter), 5));
        }
        assert_eq!(runs_of(&text).len(), 1);
    }

    #[test]
    fn runs_past_the_cap_are_read_as_the_last_one() {
        let parts: Vec<String> = (0..MAX_RUNS + 3).map(|_| log(0, 1500)).collect();
        let runs = runs_of(&parts.concat());
        assert_eq!(runs.len(), MAX_RUNS);
        assert_eq!(runs.last().unwrap().end, None);
    }

    #[test]
    fn a_range_reader_reads_its_range_only() {
        let src = Positioned::Memory(Arc::new(b"0123456789".to_vec()));
        let mut out = String::new();
        src.reader(3, Some(7)).read_to_string(&mut out).unwrap();
        assert_eq!(out, "3456");
        out.clear();
        src.reader(8, None).read_to_string(&mut out).unwrap();
        assert_eq!(out, "89");
    }
}
