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

/// Copy the rest of `file` (from its offset to its end) to `out`, whose buffered bytes are
/// flushed first. Into a pipe the pages move with `splice` (Linux); into anything else the
/// standard library's copy is used (`copy_file_range` between files, else reads and writes).
/// Returns the bytes copied.
pub fn file_to<W: Write + AsFd>(file: &mut File, out: &mut W) -> io::Result<u64> {
    out.flush()?;
    let mut copied = 0u64;
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        use rustix::pipe::{SpliceFlags, splice};
        loop {
            match splice(&*file, None, out.as_fd(), None, CHUNK, SpliceFlags::MOVE) {
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
    Ok(copied + io::copy(file, &mut to)?)
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
        let (mut rx, mut tx) = std::io::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).unwrap();
            got
        });
        let n = file_to(&mut src, &mut tx).unwrap();
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
        let n = file_to(&mut src, &mut dst).unwrap();
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
        let e = file_to(&mut src, &mut tx).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
