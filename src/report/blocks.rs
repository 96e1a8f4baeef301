//! The temporary files of large documents (each reader thread's `records` and `skipped` of
//! `explain -o json|yaml`) written in LZ4 blocks and read back from them. The JSON of
//! access-log records repeats its keys and most of its values from one record to the next, so
//! a spool takes about a tenth of the disk and page cache it would take as it is: a 2 GiB text
//! log spooled 5.5 GB, past what the kernel keeps in memory before it makes the writer wait
//! for the disk (docs/performance.md), and more than many `/tmp`s hold.
//!
//! A spool keeps what it is given as it is while the spools of the run together hold less
//! than a [`PlainBudget`] (what the kernel keeps in memory before it starts writing to disk),
//! and compresses the rest: the part as it is is copied to standard output by the kernel
//! (`splice`), which costs less than compressing it (10 % of `explain -o json` on 512 MiB of
//! text logs, measured). A file is that part, then a sequence of blocks: the block's size
//! before compression (4 bytes, little endian, 1 to [`BLOCK`]; the top bit set when the block
//! is stored as it is), its size as stored (4 bytes), then the block (LZ4, or as it is).

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of a block before compression: LZ4 refers back at most 64 KiB, so larger blocks
/// compress hardly better, and this one stays in the core's cache while it is compressed.
pub(super) const BLOCK: usize = 64 << 10;

/// Compressed blocks gathered before one write to the file.
const WRITE_AT: usize = 64 << 10;

/// Decompressed blocks gathered before one write to the output.
const GATHER: usize = 256 << 10;

/// The flag of a block's first word that says it is stored as it is.
const STORED: u32 = 1 << 31;

/// Bytes of a block's header.
const HEADER: usize = 8;

/// The largest compressed block a file may hold (what LZ4 writes at worst for [`BLOCK`]).
fn max_stored() -> usize {
    lz4_flex::block::get_maximum_output_size(BLOCK)
}

/// Writes what it is given to `inner` in compressed blocks (see the module's text).
/// [`Write::flush`] ends the current block, so it is for the end of the file.
pub(super) struct BlockWriter<W: Write> {
    inner: W,
    /// The block being filled (empty until the first write: a spool that stays empty costs
    /// nothing).
    raw: Vec<u8>,
    /// Compressed blocks with their headers, not yet written to `inner`.
    out: Vec<u8>,
    /// Where one block is compressed, [`max_stored`] bytes.
    scratch: Vec<u8>,
    /// Bytes written, before compression.
    total: u64,
}

impl<W: Write> BlockWriter<W> {
    pub(super) fn new(inner: W) -> Self {
        BlockWriter {
            inner,
            raw: Vec::new(),
            out: Vec::new(),
            scratch: Vec::new(),
            total: 0,
        }
    }

    /// Bytes written so far, before compression: what reading the file back gives.
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Compress `block` (1 to [`BLOCK`] bytes) after the blocks waiting in `out`; write them
    /// once they are [`WRITE_AT`] bytes.
    fn push(&mut self, block: &[u8]) -> io::Result<()> {
        debug_assert!(!block.is_empty() && block.len() <= BLOCK);
        if self.scratch.is_empty() {
            self.scratch = vec![0; max_stored()];
        }
        let n = lz4_flex::block::compress_into(block, &mut self.scratch)
            .map_err(|e| io::Error::other(format!("cannot compress a spool block: {e}")))?;
        // Bytes that do not compress (LZ4 would store them a little larger) are stored as
        // they are.
        let (data, flag) = if n < block.len() {
            (&self.scratch[..n], 0)
        } else {
            (block, STORED)
        };
        let (Ok(raw_len), Ok(stored)) = (u32::try_from(block.len()), u32::try_from(data.len()))
        else {
            return Err(io::Error::other("a spool block is too large"));
        };
        self.out.extend_from_slice(&(raw_len | flag).to_le_bytes());
        self.out.extend_from_slice(&stored.to_le_bytes());
        self.out.extend_from_slice(data);
        self.total += block.len() as u64;
        if self.out.len() >= WRITE_AT {
            self.inner.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// The block being filled, compressed.
    fn push_raw(&mut self) -> io::Result<()> {
        if self.raw.is_empty() {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.raw);
        let r = self.push(&raw);
        self.raw = raw;
        self.raw.clear();
        r
    }
}

impl<W: Write> Write for BlockWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if !self.raw.is_empty() {
            let take = (BLOCK - self.raw.len()).min(rest.len());
            self.raw.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.raw.len() < BLOCK {
                return Ok(buf.len());
            }
            self.push_raw()?;
        }
        // Whole blocks straight from the caller's bytes, without a copy.
        while rest.len() >= BLOCK {
            self.push(&rest[..BLOCK])?;
            rest = &rest[BLOCK..];
        }
        if !rest.is_empty() {
            if self.raw.capacity() < BLOCK {
                self.raw.reserve_exact(BLOCK - self.raw.len());
            }
            self.raw.extend_from_slice(rest);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_raw()?;
        if !self.out.is_empty() {
            self.inner.write_all(&self.out)?;
            self.out.clear();
        }
        self.inner.flush()
    }
}

/// Reads back what a [`BlockWriter`] wrote: the bytes as they were given to it.
pub(super) struct BlockReader<R: Read> {
    inner: R,
    /// The current block, decompressed.
    raw: Vec<u8>,
    /// Bytes of `raw` already read.
    pos: usize,
    /// The current block as stored.
    stored: Vec<u8>,
}

impl<R: Read> BlockReader<R> {
    pub(super) fn new(inner: R) -> Self {
        BlockReader {
            inner,
            raw: Vec::new(),
            pos: 0,
            stored: Vec::new(),
        }
    }

    /// Read and decompress the next block; `false` at the end of the file.
    fn next_block(&mut self) -> io::Result<bool> {
        let damaged = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a temporary file of this run is damaged ({what})"),
            )
        };
        let mut header = [0u8; HEADER];
        let mut got = 0;
        while got < HEADER {
            match self.inner.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(damaged("it ends inside a block's header")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&header[i..i + 4]);
            u32::from_le_bytes(w) as usize
        };
        let as_is = word(0) & STORED as usize != 0;
        let (raw_len, stored) = (word(0) & !(STORED as usize), word(4));
        let in_range = raw_len > 0
            && raw_len <= BLOCK
            && if as_is {
                stored == raw_len
            } else {
                stored > 0 && stored <= max_stored()
            };
        if !in_range {
            return Err(damaged("a block's header is out of range"));
        }
        self.raw.resize(raw_len, 0);
        self.stored.resize(if as_is { 0 } else { stored }, 0);
        let into = if as_is {
            &mut self.raw
        } else {
            &mut self.stored
        };
        self.inner.read_exact(into).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                damaged("it ends inside a block")
            } else {
                e
            }
        })?;
        if !as_is {
            match lz4_flex::block::decompress_into(&self.stored, &mut self.raw) {
                Ok(n) if n == raw_len => {}
                _ => return Err(damaged("a block does not decompress to its size")),
            }
        }
        self.pos = 0;
        Ok(true)
    }
}

impl<R: Read> BufRead for BlockReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.raw.len() && !self.next_block()? {
            return Ok(&[]);
        }
        Ok(&self.raw[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.raw.len());
    }
}

impl<R: Read> Read for BlockReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// How many bytes the spools of one run keep as they are, together, before each compresses
/// the rest (shared by the spools, which take from it as they write).
#[derive(Clone, Debug)]
pub struct PlainBudget {
    left: Arc<AtomicU64>,
}

impl PlainBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> PlainBudget {
        PlainBudget {
            left: Arc::new(AtomicU64::new(bytes)),
        }
    }

    /// What the kernel of this machine keeps in memory as written before it starts writing it
    /// to disk in the background ([`background_dirty_bytes`]); 1 GiB where that is not known.
    pub fn for_this_machine() -> PlainBudget {
        PlainBudget::new(background_dirty_bytes().unwrap_or(1 << 30))
    }

    /// Take `n` bytes; `false` (and nothing taken) when fewer are left.
    fn take(&self, n: u64) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }
}

/// The written ("dirty") bytes at which Linux starts writing them to disk in the background:
/// `vm.dirty_background_bytes`, or `vm.dirty_background_ratio` percent of the memory available
/// (the kernel counts free and reclaimable pages, about `MemAvailable`). `None` off Linux or
/// when unreadable.
fn background_dirty_bytes() -> Option<u64> {
    let number = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let bytes = number("/proc/sys/vm/dirty_background_bytes")?;
    if bytes > 0 {
        return Some(bytes);
    }
    let ratio = number("/proc/sys/vm/dirty_background_ratio")?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024) / 100 * ratio.min(100))
}

/// A spool file being written: as it is while the [`PlainBudget`] lasts, then in compressed
/// blocks ([`BlockWriter`]) after that part.
pub(super) struct SpoolWriter {
    part: Part,
    /// Bytes written as they are.
    plain_len: u64,
    budget: PlainBudget,
}

/// The part of a spool being written.
enum Part {
    /// As it is, while the budget lasts.
    Plain(io::BufWriter<File>),
    /// After that, in blocks.
    Blocks(BlockWriter<File>),
}

impl SpoolWriter {
    /// Write to `file` (from its offset), taking from `budget` while it lasts.
    pub(super) fn new(file: &File, budget: PlainBudget) -> io::Result<SpoolWriter> {
        Ok(SpoolWriter {
            part: Part::Plain(io::BufWriter::with_capacity(1 << 16, file.try_clone()?)),
            plain_len: 0,
            budget,
        })
    }

    /// Bytes written as they are (the file's first part), and in all.
    pub(super) fn lengths(&self) -> (u64, u64) {
        let blocks = match &self.part {
            Part::Plain(_) => 0,
            Part::Blocks(b) => b.total(),
        };
        (self.plain_len, self.plain_len + blocks)
    }
}

impl Write for SpoolWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Part::Plain(plain) = &mut self.part {
            if self.budget.take(buf.len() as u64) {
                plain.write_all(buf)?;
                self.plain_len += buf.len() as u64;
                return Ok(buf.len());
            }
            // The budget is spent: the part as it is ends here, the blocks follow it (through
            // another handle on the same file and offset).
            plain.flush()?;
            self.part = Part::Blocks(BlockWriter::new(plain.get_ref().try_clone()?));
        }
        match &mut self.part {
            Part::Plain(p) => p.write(buf),
            Part::Blocks(b) => b.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.part {
            Part::Plain(p) => p.flush(),
            Part::Blocks(b) => b.flush(),
        }
    }
}

/// A spool file read back from its start: its part as it is, then its blocks.
pub(super) struct SpoolReader {
    file: File,
    /// Bytes of the part as it is not read yet.
    plain_left: u64,
    /// The blocks after it (read through another handle on the same file and offset).
    blocks: BlockReader<File>,
}

impl SpoolReader {
    /// `file`, rewound, whose first `plain_len` bytes are as written.
    pub(super) fn new(file: File, plain_len: u64) -> io::Result<SpoolReader> {
        Ok(SpoolReader {
            blocks: BlockReader::new(file.try_clone()?),
            file,
            plain_left: plain_len,
        })
    }

    /// Leave out the next byte when it is `byte`; whether it was.
    pub(super) fn skip_if(&mut self, byte: u8) -> io::Result<bool> {
        if self.plain_left > 0 {
            let mut first = [0u8];
            self.file.read_exact(&mut first)?;
            if first[0] == byte {
                self.plain_left -= 1;
                return Ok(true);
            }
            self.file.seek(io::SeekFrom::Current(-1))?;
            return Ok(false);
        }
        if self.blocks.fill_buf()?.first() == Some(&byte) {
            self.blocks.consume(1);
            return Ok(true);
        }
        Ok(false)
    }

    /// Copy the rest to `out` (flushed first): the part as it is by the kernel
    /// ([`super::kernel_copy::file_to`]), the blocks decompressed. Returns the bytes copied.
    pub(super) fn copy_to<W: Write + AsFd>(&mut self, out: &mut W) -> io::Result<u64> {
        let mut copied = super::kernel_copy::file_to(&mut self.file, self.plain_left, out)?;
        self.plain_left -= copied.min(self.plain_left);
        if self.plain_left > 0 {
            return Ok(copied);
        }
        // Blocks gathered into larger writes: a quarter of the pipe's buffer (see
        // `kernel_copy::widen_pipe`), so the reader at the other end wakes once per four blocks,
        // not once per block (1 MiB measured no faster, for 0.75 MiB more memory).
        // (Made at the first block: most spools end in their part as written.)
        let mut gathered: Vec<u8> = Vec::new();
        loop {
            let chunk = match self.blocks.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let n = chunk.len();
            if n == 0 || gathered.len() + n > GATHER {
                out.write_all(&gathered)?;
                copied += gathered.len() as u64;
                gathered.clear();
                if n == 0 {
                    return Ok(copied);
                }
            }
            if gathered.capacity() == 0 {
                gathered.reserve_exact(GATHER);
            }
            gathered.extend_from_slice(chunk);
            self.blocks.consume(n);
        }
    }
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.plain_left > 0 {
            let want = usize::try_from(self.plain_left).map_or(buf.len(), |n| n.min(buf.len()));
            let n = self.file.read(&mut buf[..want])?;
            // A file shorter than what was written to it: the blocks' reader says so.
            if n > 0 {
                self.plain_left -= n as u64;
                return Ok(n);
            }
            self.plain_left = 0;
        }
        self.blocks.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records-like text: repeats, with a counter so no two blocks are alike.
    fn json_like(n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0u64;
        while v.len() < n {
            v.extend_from_slice(
                format!(
                    ",\n    {{\"line\":{i},\"input\":\"a.log\",\"fields\":{{\"duration\":{},\"upstream_local_address\":\"10.0.{}.{}:{}\"}}}}",
                    i * 7 % 1000,
                    i % 250,
                    i * 13 % 250,
                    30000 + i * 31 % 30000
                )
                .as_bytes(),
            );
            i += 1;
        }
        v.truncate(n);
        v
    }

    /// Written in pieces of the given sizes, read back whole.
    fn round_trip(data: &[u8], pieces: &[usize]) -> (Vec<u8>, u64, usize) {
        let mut w = BlockWriter::new(Vec::new());
        let (mut at, mut k) = (0, 0);
        while at < data.len() {
            let n = pieces[k % pieces.len()].min(data.len() - at);
            w.write_all(&data[at..at + n]).unwrap();
            at += n;
            k += 1;
        }
        w.flush().unwrap();
        let total = w.total();
        let file = w.inner.clone();
        let mut back = Vec::new();
        BlockReader::new(&file[..]).read_to_end(&mut back).unwrap();
        (back, total, file.len())
    }

    #[test]
    fn what_is_written_in_any_pieces_reads_back_the_same() {
        let data = json_like(5 * BLOCK + 12_345);
        for pieces in [
            &[1usize][..],
            &[7, 1, 300],
            &[BLOCK - 1],
            &[BLOCK],
            &[BLOCK + 1, 3],
            &[3 * BLOCK + 17],
            &[100_000, 5],
        ] {
            let (back, total, stored) = round_trip(&data, pieces);
            assert!(
                back == data,
                "pieces {pieces:?}: the bytes read back differ"
            );
            assert_eq!(total, data.len() as u64, "pieces {pieces:?}");
            assert!(
                stored * 4 < data.len(),
                "pieces {pieces:?}: {stored} bytes stored for {}",
                data.len()
            );
        }
        // Nothing written: nothing stored, nothing read.
        assert_eq!(round_trip(&[], &[1]), (Vec::new(), 0, 0));
    }

    #[test]
    fn bytes_that_do_not_compress_still_read_back() {
        // A xorshift sequence: LZ4 stores it a little larger than it is.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..2 * BLOCK + 99)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (back, total, _) = round_trip(&data, &[4096]);
        assert!(back == data);
        assert_eq!(total, data.len() as u64);
    }

    #[test]
    fn a_damaged_or_cut_file_is_an_error_not_a_panic() {
        let data = json_like(3 * BLOCK);
        let mut w = BlockWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        w.flush().unwrap();
        let file = w.inner;
        let read = |bytes: &[u8]| {
            let mut back = Vec::new();
            BlockReader::new(bytes).read_to_end(&mut back).map(|_| back)
        };
        assert!(read(&file).is_ok());
        // Where blocks end: a file cut there reads as a shorter one (`SanitizedFile` knows the
        // length written and says so).
        let mut ends = Vec::new();
        let mut at = 0;
        while at < file.len() {
            at += HEADER + u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
            ends.push(at);
        }
        assert_eq!(ends.len(), 3);
        assert_eq!(read(&file[..ends[0]]).unwrap(), data[..BLOCK]);
        // Cut anywhere else: an error that says so.
        for cut in [
            1,
            5,
            HEADER,
            HEADER + 1,
            ends[0] + 3,
            file.len() / 2,
            file.len() - 1,
        ] {
            if ends.contains(&cut) {
                continue;
            }
            let e = read(&file[..cut]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
            assert!(e.to_string().contains("damaged"), "{e}");
        }
        // Headers out of range, and every byte of the first block's data flipped in turn:
        // an error or other bytes, never a panic.
        let mut bad = file.clone();
        bad[0..4].copy_from_slice(&((BLOCK + 1) as u32).to_le_bytes());
        assert!(read(&bad).is_err());
        let mut bad = file.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read(&bad).is_err());
        let mut bad = file.clone();
        bad[0..4].copy_from_slice(&0u32.to_le_bytes());
        assert!(read(&bad).is_err());
        let stored = u32::from_le_bytes(file[4..8].try_into().unwrap()) as usize;
        for i in HEADER..HEADER + stored.min(2000) {
            let mut bad = file.clone();
            bad[i] ^= 0x5a;
            let _ = read(&bad);
        }
    }

    /// `data` written by `spools.len()` spools sharing `budget`, each its own slice of
    /// `data` in turns of `piece` bytes; each spool read back (by `Read`), then copied again
    /// through a pipe (by `copy_to`). Returns each spool's part as written and stored size.
    fn spools_round_trip(data: &[u8], spools: usize, budget: u64, piece: usize) -> Vec<(u64, u64)> {
        let budget = PlainBudget::new(budget);
        let parts: Vec<&[u8]> = data.chunks(data.len().div_ceil(spools)).collect();
        let files: Vec<File> = parts
            .iter()
            .map(|_| tempfile::tempfile().unwrap())
            .collect();
        let mut writers: Vec<SpoolWriter> = files
            .iter()
            .map(|f| SpoolWriter::new(f, budget.clone()).unwrap())
            .collect();
        let mut at = 0;
        while at < parts[0].len() {
            for (w, part) in writers.iter_mut().zip(&parts) {
                if at < part.len() {
                    w.write_all(&part[at..(at + piece).min(part.len())])
                        .unwrap();
                }
            }
            at += piece;
        }
        let mut out = Vec::new();
        for ((mut w, mut file), part) in writers.into_iter().zip(files).zip(&parts) {
            w.flush().unwrap();
            let (plain, total) = w.lengths();
            assert_eq!(total, part.len() as u64);
            let stored = file.seek(io::SeekFrom::End(0)).unwrap();
            file.seek(io::SeekFrom::Start(0)).unwrap();
            let mut back = Vec::new();
            SpoolReader::new(file.try_clone().unwrap(), plain)
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(
                back == *part,
                "read back: other bytes (part as written: {plain})"
            );
            file.seek(io::SeekFrom::Start(0)).unwrap();
            let (mut tx, reader) = super::super::kernel_copy::drained_pipe();
            let mut r = SpoolReader::new(file, plain).unwrap();
            assert_eq!(r.copy_to(&mut tx).unwrap(), total);
            drop(tx);
            assert!(reader.join().unwrap() == *part, "copied: other bytes");
            out.push((plain, stored));
        }
        out
    }

    #[test]
    fn spools_keep_their_shared_budget_as_written_and_compress_the_rest() {
        let data = json_like(6 * BLOCK + 777);
        // No budget: every spool compressed from its first byte.
        for (plain, stored) in spools_round_trip(&data, 2, 0, 5_000) {
            assert_eq!(plain, 0);
            assert!(stored * 4 < data.len() as u64 / 2);
        }
        // A budget larger than everything: spools as written, byte for byte.
        for (plain, stored) in spools_round_trip(&data, 2, u64::MAX, 5_000) {
            assert_eq!(stored, plain);
            assert!(plain > 0);
        }
        // A budget for part of it, shared: the parts as written add up to at most the budget
        // and use most of it; the rest is compressed after them.
        let budget = 2 * BLOCK as u64 + 1;
        let spools = spools_round_trip(&data, 3, budget, 3_333);
        let plain: u64 = spools.iter().map(|(p, _)| p).sum();
        assert!(plain <= budget && plain + 3 * 3_333 > budget, "{spools:?}");
        for (p, stored) in &spools {
            assert!(stored > p, "{spools:?}");
        }
        // Pieces larger than a block, and a budget that ends inside one.
        spools_round_trip(&data, 1, 100_000, 3 * BLOCK + 5);
        // More blocks than one write of the copy gathers: copied whole, in order, with or
        // without a part as written before them.
        let more = json_like(2 * GATHER + 3 * BLOCK + 123);
        for budget in [0, BLOCK as u64 + 7] {
            spools_round_trip(&more, 1, budget, 40_000);
        }
    }

    #[test]
    fn the_first_byte_is_skipped_in_either_part() {
        for budget in [0, 10, u64::MAX] {
            let mut file = tempfile::tempfile().unwrap();
            let mut w = SpoolWriter::new(&file, PlainBudget::new(budget)).unwrap();
            w.write_all(b",\n    {\"a\":1}").unwrap();
            w.flush().unwrap();
            let (plain, _) = w.lengths();
            file.seek(io::SeekFrom::Start(0)).unwrap();
            let mut r = SpoolReader::new(file.try_clone().unwrap(), plain).unwrap();
            assert!(!r.skip_if(b'x').unwrap(), "budget {budget}");
            assert!(r.skip_if(b',').unwrap(), "budget {budget}");
            let mut rest = String::new();
            r.read_to_string(&mut rest).unwrap();
            assert_eq!(rest, "\n    {\"a\":1}", "budget {budget}");
        }
    }

    #[test]
    fn the_budget_is_taken_whole_or_not_at_all() {
        let b = PlainBudget::new(10);
        let shared = b.clone();
        assert!(b.take(4));
        assert!(!shared.take(7), "more than is left");
        assert!(shared.take(6));
        assert!(!b.take(1));
        assert!(b.take(0));
        // This machine's: what the kernel holds back, within the memory there is.
        #[cfg(target_os = "linux")]
        {
            let bytes = background_dirty_bytes().expect("Linux says when it writes back");
            let total_kib: u64 = std::fs::read_to_string("/proc/meminfo")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap();
            assert!(bytes > 0 && bytes <= total_kib * 1024, "{bytes}");
        }
    }
}
