//! Reading an evidence bundle (folder, `.tar.gz`, or an `istioctl bug-report` archive).
//!
//! The format is documented in `docs/bundle.md`. Nothing in a bundle aborts reading: every part
//! that cannot be used is recorded in [`Bundle::problems`] and the rest is kept.

use meshtrace_analysis::model::Object;
use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

/// Bytes of a log: a file on disk, an archive member held in memory, or a large archive member
/// copied to a temporary file.
#[derive(Clone)]
pub enum LogSource {
    /// A file.
    File(PathBuf),
    /// An archive member.
    Memory(Arc<Vec<u8>>),
    /// A large archive log member copied to an anonymous temporary file while the archive was
    /// read (see [`SPOOL_MIN`]). The file has no name on disk (on Windows: deleted on close), so
    /// the operating system removes it when the last clone of this source is dropped or the
    /// process ends, however it ends.
    Spooled {
        /// The temporary file; readers use positional reads, so clones read independently.
        file: Arc<fs::File>,
        /// Its length in bytes.
        len: u64,
    },
}

/// Names the kind and size, never the bytes (a member can be hundreds of MiB).
impl std::fmt::Debug for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogSource::File(p) => f.debug_tuple("File").field(p).finish(),
            LogSource::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
            LogSource::Spooled { len, .. } => write!(f, "Spooled({len} bytes)"),
        }
    }
}

impl LogSource {
    /// Size in bytes, when known.
    pub fn size(&self) -> Option<u64> {
        match self {
            LogSource::File(p) => fs::metadata(p).ok().map(|m| m.len()),
            LogSource::Memory(b) => Some(b.len() as u64),
            LogSource::Spooled { len, .. } => Some(*len),
        }
    }

    /// Open for reading.
    pub fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            LogSource::File(p) => Ok(Box::new(fs::File::open(p)?)),
            LogSource::Memory(b) => Ok(Box::new(Cursor::new(Shared(b.clone())))),
            LogSource::Spooled { file, len } => Ok(Box::new(SpooledReader {
                file: file.clone(),
                pos: 0,
                len: *len,
            })),
        }
    }
}

/// Shared archive bytes readable through a `Cursor` without copying.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads a spooled temporary file from the start with positional reads (no shared cursor).
struct SpooledReader {
    file: Arc<fs::File>,
    pos: u64,
    len: u64,
}

impl Read for SpooledReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = read_at(&self.file, &mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_at(file: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[cfg(not(any(unix, windows)))]
fn read_at(_: &fs::File, _: &mut [u8], _: u64) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "positional reads are not available on this platform",
    ))
}

/// One container log in the bundle.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// Namespace from the path.
    pub namespace: String,
    /// Pod name from the path.
    pub pod: String,
    /// Container name from the file name.
    pub container: String,
    /// The previous container's log (`<container>.previous.log`, or `.previous.log.gz`).
    pub previous: bool,
    /// Path inside the bundle, for messages and evidence references.
    pub path: String,
    /// Where to read it.
    pub source: LogSource,
}

/// An Envoy config dump in the bundle.
#[derive(Debug, Clone)]
pub struct ConfigDumpFile {
    /// Namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Path inside the bundle.
    pub path: String,
    /// Where to read it.
    pub source: LogSource,
}

/// The optional manifest `meshtrace-bundle.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Manifest {
    /// Format version.
    pub version: Option<u32>,
    /// When collected (RFC 3339).
    pub collected_at: Option<String>,
    /// What collected it.
    pub collector: Option<String>,
    /// Which cluster.
    pub cluster: Option<String>,
    /// `<ns>/<pod>/<container>` or `default` → `--log-format` value.
    pub log_formats: std::collections::BTreeMap<String, String>,
    /// Free text.
    pub notes: Option<String>,
}

/// Everything read from a bundle.
#[derive(Debug, Default)]
pub struct Bundle {
    /// What was opened, for messages.
    pub root: String,
    /// The manifest, if present and readable.
    pub manifest: Option<Manifest>,
    /// Every object (Pods included).
    pub objects: Vec<Object>,
    /// Container logs.
    pub logs: Vec<LogFile>,
    /// Config dumps.
    pub config_dumps: Vec<ConfigDumpFile>,
    /// Parts that could not be used: `path: why`.
    pub problems: Vec<String>,
}

/// Error opening a bundle at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not found / not readable.
    #[error("cannot open bundle {path}: {source}")]
    Open {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Nothing usable inside.
    #[error(
        "{path} holds no logs, pods or resources in the bundle layout (see docs/bundle.md): expected logs/<namespace>/<pod>/<container>.log, pods.json or resources/"
    )]
    Empty {
        /// Path.
        path: String,
    },
}

impl Bundle {
    /// Open a bundle folder or archive (`.tar.gz`, `.tgz`, `.tar`).
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        let meta = fs::metadata(path).map_err(|source| BundleError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let mut b = Bundle {
            root: path.display().to_string(),
            ..Bundle::default()
        };
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, path, &mut files, &mut b.problems, 0);
            files.sort();
            for rel in files {
                let full = path.join(&rel);
                b.add_file(&rel, FileData::Path(full));
            }
        } else {
            let f = fs::File::open(path).map_err(|source| BundleError::Open {
                path: path.display().to_string(),
                source,
            })?;
            let name = path.to_string_lossy().to_ascii_lowercase();
            let reader: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
                Box::new(flate2::read::GzDecoder::new(f))
            } else {
                Box::new(f)
            };
            b.read_archive(reader);
        }
        if b.objects.is_empty() && b.logs.is_empty() {
            return Err(BundleError::Empty { path: b.root });
        }
        Ok(b)
    }

    fn read_archive(&mut self, reader: Box<dyn Read>) {
        let mut ar = tar::Archive::new(reader);
        let entries = match ar.entries() {
            Ok(e) => e,
            Err(e) => {
                self.problems
                    .push(format!("{}: not a readable tar archive: {e}", self.root));
                return;
            }
        };
        let mut spool = Spool::default();
        // Members whose header and data were read in full, of every kind (folders and ignored
        // members too), so the count matches what `tar -t` lists before the damage.
        let mut complete = 0usize;
        for entry in entries {
            let why = match entry {
                Ok(mut entry) => match self.read_member(&mut entry, &mut spool) {
                    Ok(()) => {
                        complete += 1;
                        continue;
                    }
                    Err(why) => why,
                },
                Err(e) => e.to_string(),
            };
            self.problems.push(format!(
                "{}: archive is corrupt or truncated after {complete} complete member(s): {why}; using what was read",
                self.root
            ));
            return;
        }
    }

    /// Read one archive member through to its end. `Err` says why its data is incomplete (the
    /// archive ends or is damaged inside it); what was read of a member the bundle uses is kept.
    fn read_member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        spool: &mut Spool,
    ) -> Result<(), String> {
        let size = entry.size();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(rel) = self.usable_member(entry, size) else {
            return match drain(entry) {
                Ok(n) if n >= size => Ok(()),
                Ok(n) => Err(format!("member {name} is cut after {n} of {size} bytes")),
                Err(e) => Err(format!("member {name}: {e}")),
            };
        };
        let big_log = size > SPOOL_MIN && is_log_path(&parts_of(&rel));
        let (data, got, err) = match big_log
            .then(|| spool.file(&self.root, &mut self.problems))
            .flatten()
        {
            Some(file) => spool_member(entry, file, &name, &mut self.problems),
            None => read_in_memory(entry, Vec::with_capacity(size.min(SPOOL_MIN) as usize)),
        };
        if let Some(data) = data {
            self.add_file(&rel, data);
        }
        match err {
            Some(e) => Err(format!(
                "member {name}: {e} after {got} of {size} bytes (those are kept)"
            )),
            None if got < size => Err(format!(
                "member {name} is cut after {got} of {size} bytes (those are kept)"
            )),
            None => Ok(()),
        }
    }

    /// The path of a member the bundle reads; `None` (with the reason in `problems` when there is
    /// one) for folders, links, refused paths, members outside the layout and oversized members.
    fn usable_member<R: Read>(&mut self, entry: &tar::Entry<'_, R>, size: u64) -> Option<PathBuf> {
        if !entry.header().entry_type().is_file() {
            return None;
        }
        let rel = match entry.path() {
            Ok(p) => p.into_owned(),
            Err(e) => {
                self.problems
                    .push(format!("{}: member with unreadable name: {e}", self.root));
                return None;
            }
        };
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            self.problems.push(format!(
                "{}: refused member {} (absolute or `..` path)",
                self.root,
                rel.display()
            ));
            return None;
        }
        // Never keep what the bundle does not use (a stray core dump in a bug report: its bytes
        // are only read past), and read at most MAX_MEMBER bytes of one member.
        if !is_layout_path(&rel) {
            self.problems.push(format!(
                "{}: ignored (not part of the bundle layout)",
                rel.display()
            ));
            return None;
        }
        if size > MAX_MEMBER {
            self.problems.push(format!(
                "{}: {} bytes is too large to read from an archive (limit {} bytes); extract the archive and pass the folder",
                rel.display(),
                size,
                MAX_MEMBER
            ));
            return None;
        }
        Some(rel)
    }

    fn add_file(&mut self, rel: &Path, data: FileData) {
        let parts = parts_of(rel);
        let shown = parts.join("/");
        let lower = shown.to_ascii_lowercase();
        let file = parts.last().cloned().unwrap_or_default();
        let is_data =
            lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json");
        // istioctl bug-report layout: …/proxies/<ns>/<pod>/<file>, …/cluster/…
        if let Some(i) = bug_report_proxy(&parts) {
            let (ns, pod) = (parts[i + 1].clone(), parts[i + 2].clone());
            if file.contains("config_dump") {
                self.config_dumps.push(ConfigDumpFile {
                    namespace: ns,
                    pod,
                    path: shown,
                    source: data.source(),
                });
            } else if let Some((container, previous)) = container_of(&file) {
                self.push_log(ns, pod, container, previous, shown, data);
            } else {
                self.problems
                    .push(format!("{shown}: ignored (not a log or config dump)"));
            }
            return;
        }
        match parts.first().map(String::as_str) {
            Some("meshtrace-bundle.json") if parts.len() == 1 => match data.text() {
                Ok(t) => match serde_json::from_str::<Manifest>(&t) {
                    Ok(m) => self.manifest = Some(m),
                    Err(e) => self
                        .problems
                        .push(format!("{shown}: manifest ignored: {e}")),
                },
                Err(e) => self.problems.push(format!("{shown}: {e}")),
            },
            Some("pods.json") if parts.len() == 1 => self.read_objects(&shown, data),
            Some("resources") if is_data => self.read_objects(&shown, data),
            Some("logs") if parts.len() == 4 && container_of(&file).is_some() => {
                let (container, previous) = container_of(&file).unwrap_or_default();
                self.push_log(
                    parts[1].clone(),
                    parts[2].clone(),
                    container,
                    previous,
                    shown,
                    data,
                )
            }
            Some("config_dump") if parts.len() == 3 && lower.ends_with(".json") => {
                self.config_dumps.push(ConfigDumpFile {
                    namespace: parts[1].clone(),
                    pod: file.trim_end_matches(".json").to_string(),
                    path: shown,
                    source: data.source(),
                })
            }
            _ if parts.iter().any(|p| p == "cluster") && is_data => self.read_objects(&shown, data),
            _ if file.to_ascii_lowercase().starts_with("readme") => {}
            _ => self
                .problems
                .push(format!("{shown}: ignored (not part of the bundle layout)")),
        }
    }

    fn push_log(
        &mut self,
        namespace: String,
        pod: String,
        container: String,
        previous: bool,
        path: String,
        data: FileData,
    ) {
        self.logs.push(LogFile {
            namespace,
            pod,
            container,
            previous,
            path,
            source: data.source(),
        });
    }

    fn read_objects(&mut self, shown: &str, data: FileData) {
        let text = match data.text() {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(format!("{shown}: {e}"));
                return;
            }
        };
        let mut values = Vec::new();
        if shown.to_ascii_lowercase().ends_with(".json") {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => values.push((v, shown.to_string())),
                Err(e) => {
                    let recovered = recover_list_items(&text);
                    self.problems.push(format!(
                        "{shown}: invalid JSON ({e}); recovered {} complete object(s) before the damage",
                        recovered.len()
                    ));
                    values.extend(recovered.into_iter().map(|v| (v, shown.to_string())));
                }
            }
        } else {
            for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
                match Value::deserialize(doc) {
                    Ok(Value::Null) => {}
                    Ok(v) => values.push((v, format!("{shown}#{}", i + 1))),
                    Err(e) => {
                        self.problems
                            .push(format!("{shown}: YAML document {} unreadable: {e}", i + 1));
                        break;
                    }
                }
            }
        }
        for (v, src) in values {
            self.push_value(v, &src);
        }
    }

    fn push_value(&mut self, v: Value, src: &str) {
        match v {
            Value::Array(items) => {
                for it in items {
                    self.push_value(it, src);
                }
            }
            Value::Object(ref m)
                if m.get("items").is_some_and(Value::is_array)
                    && m.get("metadata").and_then(|x| x.get("name")).is_none() =>
            {
                if let Some(Value::Array(items)) = m.get("items").cloned() {
                    for it in items {
                        self.push_value(it, src);
                    }
                }
            }
            other => match Object::from_value(other, src.to_string()) {
                Some(o) => self.objects.push(o),
                None => self.problems.push(format!(
                    "{src}: a document without kind or metadata.name was ignored"
                )),
            },
        }
    }

    /// Objects of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    /// The `--log-format` value the manifest gives for a container (or its default).
    pub fn log_format_for(&self, l: &LogFile) -> Option<&str> {
        let m = self.manifest.as_ref()?;
        let key = format!("{}/{}/{}", l.namespace, l.pod, l.container);
        m.log_formats
            .get(&key)
            .or_else(|| m.log_formats.get("default"))
            .map(String::as_str)
    }
}

/// Largest archive member read (into memory, or copied to a temporary file for a large log).
const MAX_MEMBER: u64 = 1 << 30;

/// Archive log members larger than this are copied to a temporary file while the archive is read
/// ([`LogSource::Spooled`]) instead of being held in memory; smaller members, config dumps and
/// objects (parsed whole anyway) stay in memory.
pub const SPOOL_MIN: u64 = 8 << 20;

/// Chunk size for copying an archive member to a temporary file (or skipping one).
const CHUNK: usize = 256 << 10;

/// The parts of a relative path inside a bundle (`.` dropped).
fn parts_of(rel: &Path) -> Vec<String> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// In the `istioctl bug-report` layout (`…/proxies/<ns>/<pod>/<file>`), the index of `proxies`.
fn bug_report_proxy(parts: &[String]) -> Option<usize> {
    parts
        .iter()
        .position(|p| p == "proxies")
        .filter(|i| parts.len() == i + 4)
}

/// Container name and whether it is the previous container, from a log file name:
/// `<container>.log`, `<container>.previous.log`, or either with `.gz` (gzip logs are
/// decompressed as they are read). Suffixes match ignoring case.
fn container_of(file: &str) -> Option<(String, bool)> {
    let lower = file.to_ascii_lowercase();
    let suffix = [".log", ".log.gz"]
        .into_iter()
        .find(|s| lower.ends_with(s))?;
    let stem = file.get(..file.len() - suffix.len())?;
    match lower.get(..stem.len())?.strip_suffix(".previous") {
        Some(c) => Some((stem.get(..c.len())?.to_string(), true)),
        None => Some((stem.to_string(), false)),
    }
}

/// Is this path a container log (bundle or bug-report layout)?
fn is_log_path(parts: &[String]) -> bool {
    let file = parts.last().map(String::as_str).unwrap_or_default();
    match bug_report_proxy(parts) {
        Some(_) => !file.contains("config_dump") && container_of(file).is_some(),
        None => {
            parts.len() == 4
                && parts.first().is_some_and(|p| p == "logs")
                && container_of(file).is_some()
        }
    }
}

/// Creates the temporary files that large archive log members are copied to.
#[derive(Default)]
struct Spool {
    /// Creating one failed (said once in `problems`): the rest stay in memory.
    unavailable: bool,
}

impl Spool {
    /// A new anonymous temporary file, or `None` (the reason said once) to hold it in memory.
    fn file(&mut self, root: &str, problems: &mut Vec<String>) -> Option<fs::File> {
        if self.unavailable || !cfg!(any(unix, windows)) {
            return None;
        }
        match tempfile::tempfile() {
            Ok(f) => Some(f),
            Err(e) => {
                self.unavailable = true;
                problems.push(format!(
                    "{root}: cannot create a temporary file in {} ({e}), so archive logs over {} MiB are held in memory",
                    std::env::temp_dir().display(),
                    SPOOL_MIN >> 20
                ));
                None
            }
        }
    }
}

/// What was read of one member: its data (if usable), the bytes read, and the read error if any.
type MemberRead = (Option<FileData>, u64, Option<io::Error>);

/// Copy a member to `file` in chunks. If writing fails (disk full), what was written is read back
/// and the member is finished in memory.
fn spool_member(
    entry: &mut impl Read,
    mut file: fs::File,
    name: &str,
    problems: &mut Vec<String>,
) -> MemberRead {
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (Some(FileData::spooled(file, written)), written, Some(e)),
        };
        if let Err(e) = file.write_all(&buf[..n]) {
            problems.push(format!(
                "{name}: cannot write to a temporary file ({e}); held in memory instead"
            ));
            let mut data = Vec::new();
            let back = SpooledReader {
                file: Arc::new(file),
                pos: 0,
                len: written,
            }
            .read_to_end(&mut data);
            if let Err(e) = back {
                problems.push(format!(
                    "{name}: cannot read the temporary file back ({e}); not used"
                ));
                let rest = drain(entry);
                let got = written + n as u64 + rest.as_ref().map_or(0, |k| *k);
                return (None, got, rest.err());
            }
            data.extend_from_slice(&buf[..n]);
            return read_in_memory(entry, data);
        }
        written += n as u64;
    }
    (Some(FileData::spooled(file, written)), written, None)
}

/// Read the rest of a member into memory after `data` (at most [`MAX_MEMBER`] bytes).
fn read_in_memory(entry: &mut impl Read, mut data: Vec<u8>) -> MemberRead {
    let limit = MAX_MEMBER.saturating_sub(data.len() as u64);
    let res = entry.take(limit).read_to_end(&mut data);
    let got = data.len() as u64;
    (Some(FileData::Bytes(Arc::new(data))), got, res.err())
}

/// Read a member to its end without keeping it; the number of bytes read.
fn drain(entry: &mut impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match entry.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Is this path (inside a bundle or bug-report archive) one the bundle reader uses?
fn is_layout_path(rel: &Path) -> bool {
    let parts = parts_of(rel);
    let lower = parts.join("/").to_ascii_lowercase();
    let file = parts
        .last()
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_default();
    let is_data = lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json");
    if bug_report_proxy(&parts).is_some() {
        return file.contains("config_dump") || container_of(&file).is_some();
    }
    match parts.first().map(String::as_str) {
        Some("meshtrace-bundle.json") | Some("pods.json") => parts.len() == 1,
        Some("resources") => is_data,
        Some("logs") => is_log_path(&parts),
        Some("config_dump") => parts.len() == 3 && lower.ends_with(".json"),
        _ => parts.iter().any(|p| p == "cluster") && is_data,
    }
}

enum FileData {
    Path(PathBuf),
    Bytes(Arc<Vec<u8>>),
    Spooled(Arc<fs::File>, u64),
}

impl FileData {
    fn text(&self) -> Result<String, String> {
        match self {
            FileData::Path(p) => fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| format!("unreadable: {e}")),
            FileData::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            FileData::Spooled(file, len) => {
                let mut b = Vec::new();
                let mut r = SpooledReader {
                    file: file.clone(),
                    pos: 0,
                    len: *len,
                };
                r.read_to_end(&mut b)
                    .map(|_| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| format!("unreadable: {e}"))
            }
        }
    }

    fn spooled(file: fs::File, len: u64) -> FileData {
        FileData::Spooled(Arc::new(file), len)
    }

    fn source(self) -> LogSource {
        match self {
            FileData::Path(p) => LogSource::File(p),
            FileData::Bytes(b) => LogSource::Memory(b),
            FileData::Spooled(file, len) => LogSource::Spooled { file, len },
        }
    }
}

/// Walk a folder without following symlinks; relative paths of regular files.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<String>, depth: usize) {
    if depth > 16 {
        problems.push(format!(
            "{}: folders nested too deep, not read",
            dir.display()
        ));
        return;
    }
    let rd = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("{}: unreadable folder: {e}", dir.display()));
            return;
        }
    };
    for entry in rd.flatten() {
        let p = entry.path();
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
        if meta.file_type().is_symlink() {
            problems.push(format!("{}: symlink not followed", rel.display()));
        } else if meta.is_dir() {
            walk(root, &p, out, problems, depth + 1);
        } else if meta.is_file() {
            out.push(rel);
        }
    }
}

/// From damaged JSON such as a truncated `kubectl get pods -o json`, recover the complete objects
/// of the first array (the List's `items`, or a top-level array).
pub fn recover_list_items(text: &str) -> Vec<Value> {
    let b = text.as_bytes();
    let start = match text.find("\"items\"") {
        Some(i) => text[i..].find('[').map(|j| i + j),
        None => text.find('['),
    };
    let Some(mut i) = start.map(|s| s + 1) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t' | b',') {
            i += 1;
        }
        if i >= b.len() || b[i] != b'{' {
            return out;
        }
        let obj_start = i;
        let mut depth = 0usize;
        let mut in_str = false;
        let mut esc = false;
        let mut end = None;
        while i < b.len() {
            let c = b[i];
            if in_str {
                if esc {
                    esc = false;
                } else if c == b'\\' {
                    esc = true;
                } else if c == b'"' {
                    in_str = false;
                }
            } else if c == b'"' {
                in_str = true;
            } else if c == b'{' || c == b'[' {
                depth += 1;
            } else if c == b'}' || c == b']' {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    end = Some(i + 1);
                    i += 1;
                    break;
                }
            }
            i += 1;
        }
        let Some(end) = end else { return out };
        match serde_json::from_str::<Value>(&text[obj_start..end]) {
            Ok(v) => out.push(v),
            Err(_) => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_complete_items_of_a_truncated_list() {
        let t = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"a","x":"}"}},{"kind":"Pod","metadata":{"name":"b"}},{"kind":"Pod","metad"#;
        let v = recover_list_items(t);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["metadata"]["name"], "b");
        assert!(recover_list_items("garbage").is_empty());
        assert!(recover_list_items("[").is_empty());
    }
}
