//! Copying a finished spool file to standard output inside the kernel (`splice` into a pipe,
//! `copy_file_range` into a file), so a large document's records are not read into this
//! process and written out again.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;

/// The most moved by one `splice` call.
const CHUNK: usize = 1 << 20;

/// Give the pipe `out` is (when it is one) a buffer of [`CHUNK`] bytes instead of the usual
/// 64 KiB, so a large document goes through in a sixteenth of the wake-ups of its reader and
/// writer (`explain -o json` on a 64 MiB log: ~8 % of the time). Anything else, or a size the
/// system does not allow (`/proc/sys/fs/pipe-max-size`), is left as it is. Returns the pipe's
/// size when it is one.
pub fn widen_pipe<F: AsFd>(out: F) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size};
        let size = fcntl_getpipe_size(&out).ok()?;
        if size >= CHUNK {
            return Some(size);
        }
        Some(fcntl_setpipe_size(&out, CHUNK).unwrap_or(size))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = out;
        None
    }
}

/// Copy at most `limit` bytes of `file` from its offset (fewer at its end) to `out`, whose
/// buffered bytes are flushed first, leaving the file's offset after them. Into a pipe the
/// pages move with `splice` (Linux); into anything else the standard library's copy is used
/// (`copy_file_range` between files, else reads and writes). Returns the bytes copied.
pub fn file_to<W: Write + AsFd>(file: &mut File, limit: u64, out: &mut W) -> io::Result<u64> {
    out.flush()?;
    let mut copied = 0u64;
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        use rustix::pipe::{SpliceFlags, splice};
        loop {
            let want = usize::try_from(limit - copied).map_or(CHUNK, |n| n.min(CHUNK));
            if want == 0 {
                return Ok(copied);
            }
            match splice(&*file, None, out.as_fd(), None, want, SpliceFlags::MOVE) {
                Ok(0) => return Ok(copied),
                Ok(n) => copied += n as u64,
                Err(Errno::INTR) => {}
                // Not a pipe (a file, a terminal), or splice unavailable: the copy below, but
                // only before anything was moved (after that, an error is the output's own).
                Err(Errno::INVAL | Errno::NOSYS | Errno::PERM | Errno::OPNOTSUPP)
                    if copied == 0 =>
                {
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut to = File::from(out.as_fd().try_clone_to_owned()?);
    Ok(copied + io::copy(&mut io::Read::take(&*file, limit - copied), &mut to)?)
}

/// A pipe whose reading end a thread drains into a `Vec` (tests): write into the writer,
/// drop it, and join the thread for what went through.
#[cfg(test)]
pub(super) fn drained_pipe() -> (io::PipeWriter, std::thread::JoinHandle<Vec<u8>>) {
    let (mut rx, tx) = io::pipe().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        io::Read::read_to_end(&mut rx, &mut got).unwrap();
        got
    });
    (tx, reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    fn spool(bytes: &[u8], skip: u64) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.seek(SeekFrom::Start(skip)).unwrap();
        f
    }

    fn payload() -> Vec<u8> {
        // Larger than one splice call and than a pipe's buffer; every byte position distinct
        // enough that a lost or repeated chunk shows.
        (0..(CHUNK * 2 + 12_345)).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn copies_the_rest_of_a_file_into_a_pipe_from_its_offset() {
        let data = payload();
        let mut src = spool(&data, 7);
        let (mut tx, reader) = drained_pipe();
        let n = file_to(&mut src, u64::MAX, &mut tx).unwrap();
        drop(tx);
        let got = reader.join().unwrap();
        assert_eq!(n, (data.len() - 7) as u64);
        assert!(
            got == data[7..],
            "the pipe got other bytes than the file's rest"
        );
    }

    #[test]
    fn copies_into_a_file_after_what_it_holds() {
        let data = payload();
        let mut src = spool(&data, 1);
        let mut dst = tempfile::tempfile().unwrap();
        dst.write_all(b"head,").unwrap();
        let n = file_to(&mut src, u64::MAX, &mut dst).unwrap();
        assert_eq!(n, (data.len() - 1) as u64);
        dst.seek(SeekFrom::Start(0)).unwrap();
        let mut got = Vec::new();
        dst.read_to_end(&mut got).unwrap();
        assert_eq!(&got[..5], b"head,");
        assert!(
            got[5..] == data[1..],
            "the file got other bytes than the spool's rest"
        );
    }

    #[test]
    fn copies_at_most_its_limit_and_leaves_the_offset_after_what_it_copied() {
        let data = payload();
        // Into a pipe (splice), more than one call's worth and less than the rest.
        let limit = (CHUNK + 4_321) as u64;
        let mut src = spool(&data, 3);
        let (mut tx, reader) = drained_pipe();
        assert_eq!(file_to(&mut src, limit, &mut tx).unwrap(), limit);
        drop(tx);
        let got = reader.join().unwrap();
        assert!(
            got == data[3..3 + limit as usize],
            "the pipe got other bytes"
        );
        let mut rest = Vec::new();
        src.read_to_end(&mut rest).unwrap();
        assert!(
            rest == data[3 + limit as usize..],
            "the file's offset is elsewhere"
        );
        // Into a file (the standard library's copy).
        let mut src = spool(&data, 0);
        let mut dst = tempfile::tempfile().unwrap();
        assert_eq!(file_to(&mut src, 10, &mut dst).unwrap(), 10);
        assert_eq!(src.stream_position().unwrap(), 10);
        dst.seek(SeekFrom::Start(0)).unwrap();
        let mut got = Vec::new();
        dst.read_to_end(&mut got).unwrap();
        assert_eq!(got, data[..10]);
        // A limit of nothing copies nothing.
        assert_eq!(file_to(&mut src, 0, &mut dst).unwrap(), 0);
    }

    #[test]
    fn a_pipe_is_widened_and_a_file_left_alone() {
        let (rx, tx) = std::io::pipe().unwrap();
        let size = widen_pipe(&tx);
        #[cfg(target_os = "linux")]
        {
            // 1 MiB unless the system caps pipes lower (then the default 64 KiB stays).
            let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            let want = if max >= CHUNK { CHUNK } else { 65_536 };
            assert_eq!(size, Some(want));
            assert_eq!(rustix::pipe::fcntl_getpipe_size(&rx).ok(), Some(want));
            assert_eq!(
                widen_pipe(&rx),
                Some(want),
                "the same pipe, from its other end"
            );
        }
        let file = tempfile::tempfile().unwrap();
        assert_eq!(widen_pipe(&file), None);
    }

    #[test]
    fn a_closed_pipe_is_a_broken_pipe_error() {
        let mut src = spool(&payload(), 0);
        let (rx, mut tx) = std::io::pipe().unwrap();
        drop(rx);
        let e = file_to(&mut src, u64::MAX, &mut tx).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
