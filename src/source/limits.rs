//! Every byte and size limit of the source layer, in one place. What happens over each limit is
//! documented in `docs/limits.md`; keep both in step.

/// Largest `meshtrace-bundle.json` manifest read; a larger one is ignored with a note.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Largest resource file (`pods.json`, `resources/…`, a bug report's `cluster/…`) read, checked
/// on its size before reading and enforced while reading; a larger one is skipped with a note.
pub const MAX_RESOURCE_FILE_BYTES: u64 = 32 << 20;

/// Largest YAML/JSON resource document once parsed, counted as an estimate of the memory it
/// takes (keys, values and per-node overhead) with YAML aliases expanded: a small file whose
/// aliases repeat a large anchor is counted at its expanded size. A larger document is skipped
/// with a note; the file's other documents are still read.
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

/// Largest total of all the resource documents of one bundle, counted like
/// [`MAX_DOCUMENT_BYTES`]; documents past it are skipped with one note.
pub const MAX_OBJECTS_BYTES: u64 = 128 << 20;

/// Largest Envoy config dump read (its decompressed size in an archive); a larger one is not
/// read, with a note naming it.
pub const MAX_CONFIG_DUMP_BYTES: u64 = 32 << 20;

/// Largest single archive log member read (copied to a temporary file); a larger one is refused
/// with a note (extract the archive and pass the folder).
pub const MAX_ARCHIVE_MEMBER_BYTES: u64 = 1 << 30;

/// Archive log members larger than this are copied to a temporary file of their own while the
/// archive is read, instead of being held in memory.
pub const SPOOL_MIN_BYTES: u64 = 8 << 20;

/// Largest total of the archive members (logs and config dumps) held in memory; once reached,
/// further members are copied to a shared temporary file instead.
pub const MAX_ARCHIVE_MEMORY_BYTES: u64 = 32 << 20;

/// Largest total copied to temporary files for one archive, by default; once reached, the member
/// being copied is cut there (what was copied is used) and later logs and config dumps are not
/// read. [`SPOOL_LIMIT_ENV`] overrides it.
pub const MAX_SPOOL_BYTES: u64 = 4 << 30;

/// Environment variable that overrides [`MAX_SPOOL_BYTES`], in MiB.
pub const SPOOL_LIMIT_ENV: &str = "MESHTRACE_SPOOL_LIMIT_MIB";

/// Environment variable that sets how much of `explain -o json|yaml`'s temporary files (the
/// records and skipped lines of large inputs) is kept as written, in MiB, before the rest is
/// compressed (`0` compresses them all, for a small `$TMPDIR`); by default, what the kernel keeps
/// in memory before writing to disk (`report::safe::PlainBudget::for_this_machine`).
pub const PLAIN_SPOOL_ENV: &str = "MESHTRACE_EXPLAIN_PLAIN_SPOOL_MIB";

/// The figure in MiB that the environment variable `name` sets, in bytes; `None` when it is
/// unset or not a whole number ([`SPOOL_LIMIT_ENV`], [`PLAIN_SPOOL_ENV`]).
pub fn mib_from_env(name: &str) -> Option<u64> {
    let mib: u64 = std::env::var(name).ok()?.trim().parse().ok()?;
    Some(mib.saturating_mul(1 << 20))
}

/// Longest log line read, in bytes without its end of line, by every reader of log lines
/// (`crate::source::input::LineSplitter`): a longer line is reported malformed with its file
/// and line ("line longer than … bytes; skipped") and reading goes on at the next line, without
/// the line ever being held. Real Envoy access-log lines, even with long headers, stay well
/// under 64 KiB; this is also the parser's own limit.
pub const MAX_LINE_BYTES: usize = meshtrace_parsers::detect::MAX_LINE_LEN;

/// Bytes kept of a line longer than [`MAX_LINE_BYTES`], to show what it was.
pub const TOO_LONG_HEAD: usize = 256;

/// Largest standard input `trace ID -` copies to a temporary file (its rounds read the inputs
/// more than once); past it the command stops with a message asking for a file.
pub const MAX_STDIN_COPY_BYTES: u64 = 4 << 30;

/// Whether a failed write ran out of room: a full disk, a quota, a file-size limit. Such a
/// failure is told apart from others so the message can say to free space or write elsewhere.
pub fn out_of_room(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    )
}
