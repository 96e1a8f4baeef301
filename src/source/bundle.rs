//! Reading an evidence bundle (folder, `.tar.gz`, `.tgz` or `.tar`): meshtrace's own layout, an
//! `istioctl bug-report` or an OpenShift must-gather (which file is what: [`crate::source::layouts`]).
//!
//! The format is documented in `docs/bundle.md`. Nothing in a bundle aborts reading: every part
//! that cannot be used is recorded in [`Bundle::problems`] and the rest is kept. Every read is
//! bounded by the limits of [`crate::source::limits`] (documented in `docs/limits.md`).

use meshtrace_analysis::model::Object;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Cursor, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::source::layouts::{self, Part};
use crate::source::limits::{
    MAX_ARCHIVE_MEMBER_BYTES, MAX_ARCHIVE_MEMORY_BYTES, MAX_CONFIG_DUMP_BYTES, MAX_DOCUMENT_BYTES,
    MAX_MANIFEST_BYTES, MAX_OBJECTS_BYTES, MAX_RESOURCE_FILE_BYTES, MAX_SPOOL_BYTES,
    SPOOL_LIMIT_ENV,
};
use meshtrace_analysis::document::{self, Budget, DocError};

/// Bytes of a log: a file on disk, an archive member held in memory, or a large archive member
/// copied to a temporary file.
#[derive(Clone)]
pub enum LogSource {
    /// A file.
    File(PathBuf),
    /// An archive member.
    Memory(Arc<Vec<u8>>),
    /// An archive member copied to an anonymous temporary file while the archive was read: a
    /// log over [`SPOOL_MIN`] (a file of its own, `start` 0), or any member once the archive's
    /// members in memory reach their limit (a part of a file shared by those). The file has no
    /// name on disk (on Windows: deleted on close), so the operating system removes it when the
    /// last clone of this source is dropped or the process ends, however it ends.
    Spooled {
        /// The temporary file; readers use positional reads, so clones read independently.
        file: Arc<fs::File>,
        /// Where the member starts in the file.
        start: u64,
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
            LogSource::Spooled { file, start, len } => Ok(Box::new(SpooledReader {
                file: file.clone(),
                start: *start,
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

/// Reads a member spooled to a temporary file from its start, with positional reads (no shared
/// cursor).
struct SpooledReader {
    file: Arc<fs::File>,
    start: u64,
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
        let n = read_at(&self.file, &mut buf[..want], self.start + self.pos)?;
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
    /// What reading has counted so far (limits, duplicates).
    state: ReadState,
}

/// What reading a bundle keeps track of while it reads.
#[derive(Debug, Default)]
struct ReadState {
    /// Estimated bytes of the objects read so far (see [`MAX_OBJECTS_BYTES`]).
    objects_bytes: u64,
    /// The objects reached [`MAX_OBJECTS_BYTES`] (said once).
    objects_full: bool,
    /// Archive member paths read so far, and those already reported as repeated.
    members: HashSet<String>,
    repeated: HashSet<String>,
    /// Index in `logs` of each container log (namespace, pod, container, previous).
    logs: HashMap<(String, String, String, bool), usize>,
}

/// Error opening a bundle at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not found / not readable.
    #[error("cannot open bundle {path}")]
    Open {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Nothing usable inside.
    #[error(
        "{path} holds no logs, pods or resources in the bundle layout, nor in an istioctl bug-report's or a must-gather's (see docs/bundle.md): expected logs/<namespace>/<pod>/<container>.log, pods.json or resources/; proxies/ and cluster/ (bug-report); namespaces/<namespace>/… (must-gather){}",
        reading_problems(problems)
    )]
    Empty {
        /// Path.
        path: String,
        /// What went wrong while reading it (a truncated archive says so here).
        problems: Vec<String>,
    },
}

/// The first problems met while reading a bundle that turned out empty, for its error: a
/// truncated or unreadable archive is why, more often than a wrong layout.
fn reading_problems(problems: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut out = String::new();
    for p in problems.iter().take(SHOWN) {
        super::push_note(&mut out, p);
    }
    if problems.len() > SHOWN {
        super::push_note(&mut out, &format!("and {} more", problems.len() - SHOWN));
    }
    out
}

impl Bundle {
    /// Open a bundle folder or archive (`.tar.gz`, `.tgz`, `.tar`, `.zip`; told apart by their
    /// first bytes).
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
            // What the archive is comes from its first bytes, not its name (a ticket
            // attachment is often renamed): zip's local header or end record, gzip's magic,
            // else tar.
            let mut magic = [0u8; 4];
            let n = read_at(&f, &mut magic, 0).unwrap_or(0);
            let magic = &magic[..n];
            let name = path.to_string_lossy().to_ascii_lowercase();
            if magic.starts_with(b"PK\x03\x04") || magic.starts_with(b"PK\x05\x06") {
                b.read_zip(f);
            } else {
                let gz = magic.starts_with(&[0x1f, 0x8b])
                    || (n < 2 && (name.ends_with(".gz") || name.ends_with(".tgz")));
                let reader: Box<dyn Read> = if gz {
                    Box::new(flate2::read::GzDecoder::new(f))
                } else {
                    Box::new(f)
                };
                b.read_archive(reader);
            }
        }
        if b.objects.is_empty() && b.logs.is_empty() {
            return Err(BundleError::Empty {
                path: b.root,
                problems: b.problems,
            });
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
        let mut store = MemberStore::new();
        // Members whose header and data were read in full, of every kind (folders and ignored
        // members too), so the count matches what `tar -t` lists before the damage.
        let mut complete = 0usize;
        for entry in entries {
            let why = match entry {
                Ok(mut entry) => match self.read_member(&mut entry, &mut store) {
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
            break;
        }
        self.problems.extend(store.summary(&self.root));
    }

    /// Read a zip archive (what a ticket attachment often is). Its central directory, at the
    /// end, lists the members; when it is missing or damaged (a cut download), the members are
    /// read one after another from their local headers until the damage, and a problem says so.
    /// Members the bundle does not use are never decompressed, and no member is read past the
    /// size its header declares (a member holding more is reported, not followed).
    fn read_zip(&mut self, file: fs::File) {
        let mut store = MemberStore::new();
        let mut complete = 0usize;
        match zip::ZipArchive::new(&file) {
            Ok(mut ar) => {
                for i in 0..ar.len() {
                    let why = match ar.by_index(i) {
                        Ok(mut entry) => match self.read_zip_member(&mut entry, &mut store) {
                            Ok(()) => continue,
                            Err(why) => why,
                        },
                        Err(e) => e.to_string(),
                    };
                    self.problems.push(format!(
                        "{}: zip member {} of {} cannot be read: {why}; the others are read",
                        self.root,
                        i + 1,
                        ar.len()
                    ));
                }
            }
            Err(e) => {
                // Looking for the central directory moved the file's position: start over.
                let mut f = &file;
                if let Err(se) = io::Seek::seek(&mut f, io::SeekFrom::Start(0)) {
                    self.problems.push(format!(
                        "{}: not a readable zip archive ({e}; {se})",
                        self.root
                    ));
                    return;
                }
                let mut r = io::BufReader::new(f);
                let why = loop {
                    match zip::read::read_zipfile_from_stream(&mut r) {
                        Ok(Some(mut entry)) => match self.read_zip_member(&mut entry, &mut store) {
                            Ok(()) => complete += 1,
                            Err(why) => break Some(why),
                        },
                        Ok(None) => break None,
                        Err(e) => break Some(e.to_string()),
                    }
                };
                self.problems.push(match why {
                    Some(why) => format!(
                        "{}: zip archive has no readable central directory ({e}) and is damaged after {complete} complete member(s): {why}; using what was read (re-create the archive, or send the folder as .tar.gz)",
                        self.root
                    ),
                    None => format!(
                        "{}: zip archive has no readable central directory ({e}); its {complete} member(s) were read from their local headers",
                        self.root
                    ),
                });
            }
        }
        self.problems.extend(store.summary(&self.root));
    }

    /// One zip member: like [`Bundle::read_member`], reading at most the declared size (plus
    /// one byte, to notice a member that holds more than it says).
    fn read_zip_member<R: Read>(
        &mut self,
        entry: &mut zip::read::ZipFile<'_, R>,
        store: &mut MemberStore,
    ) -> Result<(), String> {
        let size = entry.size();
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let is_file = entry.is_file() && !entry.is_symlink();
        let rel = match entry.name() {
            Ok(n) => Ok(PathBuf::from(n.as_ref())),
            Err(e) => Err(e.to_string()),
        };
        let Some((rel, place)) = self.usable_member(is_file, rel, size) else {
            return Ok(());
        };
        let mut limited = (&mut *entry).take(size.saturating_add(1));
        let (data, got, err) = store.read(&mut limited, place, size, &name);
        let kept = data.is_some();
        if let Some(data) = data {
            self.add_file(&rel, data);
        }
        // One more byte: the end of the member (where its checksum is checked), or the sign
        // that it holds more than it declares.
        let mut over = [0u8; 1];
        let tail = match (got >= size && err.is_none()).then(|| entry.read(&mut over)) {
            None | Some(Ok(0)) => None,
            Some(Ok(_)) => Some("it holds more than it declares".to_string()),
            Some(Err(e)) => Some(e.to_string()),
        };
        let kept = if kept { " (those are kept)" } else { "" };
        match err {
            Some(e) => Err(format!(
                "member {name}: {e} after {got} of {size} bytes{kept}"
            )),
            None if tail.is_some() || got > size => Err(format!(
                "member {name}: {}; only the {size} bytes its header declares are read{kept}",
                tail.as_deref().unwrap_or("it holds more than it declares")
            )),
            None if got < size => Err(format!(
                "member {name} is cut after {got} of {size} bytes{kept}"
            )),
            None => Ok(()),
        }
    }

    /// Read one archive member through to its end. `Err` says why its data is incomplete (the
    /// archive ends or is damaged inside it); what was read of a member the bundle uses is kept.
    fn read_member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        store: &mut MemberStore,
    ) -> Result<(), String> {
        let size = entry.size();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let is_file = entry.header().entry_type().is_file();
        let rel = match is_file {
            true => entry
                .path()
                .map(|p| p.into_owned())
                .map_err(|e| e.to_string()),
            false => Err(String::new()),
        };
        let (kept, got, err) = match self.usable_member(is_file, rel, size) {
            None => {
                let (got, err) = drain(entry);
                (false, got, err)
            }
            Some((rel, place)) => {
                let (data, got, err) = store.read(entry, place, size, &name);
                let kept = data.is_some();
                if let Some(data) = data {
                    self.add_file(&rel, data);
                }
                (kept, got, err)
            }
        };
        let kept = if kept { " (those are kept)" } else { "" };
        match err {
            Some(e) => Err(format!(
                "member {name}: {e} after {got} of {size} bytes{kept}"
            )),
            None if got < size => Err(format!(
                "member {name} is cut after {got} of {size} bytes{kept}"
            )),
            None => Ok(()),
        }
    }

    /// The path of a member the bundle reads and where its bytes go; `None` (with the reason in
    /// `problems` when there is one) for folders, links, refused paths, members outside the
    /// layout, repeated members and members over their limit.
    fn usable_member(
        &mut self,
        is_file: bool,
        rel: Result<PathBuf, String>,
        size: u64,
    ) -> Option<(PathBuf, Place)> {
        if !is_file {
            return None;
        }
        let rel = match rel {
            Ok(p) => p,
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
        // are only read past).
        let parts = parts_of(&rel);
        let shown = parts.join("/");
        let kind = match layouts::classify(&parts) {
            Ok(Part::Quiet) => return None,
            Ok(part) => Kind::of(&part),
            Err(why) => {
                self.problems.push(format!("{shown} is not read: {why}"));
                return None;
            }
        };
        // A member stored twice (appending to a tar adds a second copy): the first is read.
        if !self.state.members.insert(shown.clone()) {
            if self.state.repeated.insert(shown.clone()) {
                self.problems
                    .push(format!("{shown} appears twice in {}; read once", self.root));
            }
            return None;
        }
        let (limit, what) = kind.limit();
        if size > limit {
            let how = match kind {
                Kind::Log => "; extract the archive and pass the folder",
                _ => "",
            };
            self.problems
                .push(over_limit(&shown, size, limit, what) + how);
            return None;
        }
        let place = match kind {
            Kind::Manifest | Kind::Resource => Place::Transient,
            Kind::Log if size > SPOOL_MIN => Place::OwnFile,
            Kind::Log | Kind::ConfigDump => Place::Kept,
        };
        Some((rel, place))
    }

    fn add_file(&mut self, rel: &Path, data: FileData) {
        let parts = parts_of(rel);
        let shown = parts.join("/");
        match layouts::classify(&parts) {
            Ok(Part::Manifest) => match data.text(&shown, MAX_MANIFEST_BYTES, "the manifest") {
                Ok(t) => match serde_json::from_str::<Manifest>(&t) {
                    Ok(m) => self.manifest = Some(m),
                    Err(e) => self
                        .problems
                        .push(format!("{shown}: manifest ignored: {e}")),
                },
                Err(e) => self.problems.push(e),
            },
            Ok(Part::Resources) => self.read_objects(&shown, data),
            Ok(Part::Log {
                namespace,
                pod,
                container,
                previous,
            }) => self.push_log(namespace, pod, container, previous, shown, data),
            Ok(Part::ConfigDump { namespace, pod }) => self.config_dumps.push(ConfigDumpFile {
                namespace,
                pod,
                path: shown,
                source: data.source(),
            }),
            Ok(Part::Quiet) => {}
            Err(why) => self.problems.push(format!("{shown} is not read: {why}")),
        }
    }

    /// Add a container log; a second copy of the same log (`x.log` beside `x.log.gz`, or the
    /// same log in both layouts) is reported and not read: the uncompressed copy is preferred,
    /// else the first one read.
    fn push_log(
        &mut self,
        namespace: String,
        pod: String,
        container: String,
        previous: bool,
        path: String,
        data: FileData,
    ) {
        let key = (namespace.clone(), pod.clone(), container.clone(), previous);
        if let Some(&i) = self.state.logs.get(&key) {
            let gz = |p: &str| p.to_ascii_lowercase().ends_with(".gz");
            let old = &mut self.logs[i];
            let (kept, dropped) = if gz(&old.path) && !gz(&path) {
                let dropped = std::mem::replace(&mut old.path, path);
                old.source = data.source();
                (old.path.clone(), dropped)
            } else {
                (old.path.clone(), path)
            };
            self.problems.push(format!(
                "{dropped} and {kept} hold the same log; read {kept} only"
            ));
            return;
        }
        self.state.logs.insert(key, self.logs.len());
        self.logs.push(LogFile {
            namespace,
            pod,
            container,
            previous,
            path,
            source: data.source(),
        });
    }

    /// Read the objects of a resource file, each document within [`MAX_DOCUMENT_BYTES`] and all
    /// of them within [`MAX_OBJECTS_BYTES`] (estimated in memory, YAML aliases expanded).
    fn read_objects(&mut self, shown: &str, data: FileData) {
        if self.state.objects_full {
            return;
        }
        let text = match data.text(shown, MAX_RESOURCE_FILE_BYTES, "a resource file") {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(e);
                return;
            }
        };
        let mut values = Vec::new();
        if shown.to_ascii_lowercase().ends_with(".json") {
            let mut budget = self.document_budget();
            match document::json(&text, &mut budget) {
                Ok(v) => {
                    self.spend(&budget);
                    values.push((v, shown.to_string()));
                }
                Err(DocError::TooLarge) => self.too_large(shown, None),
                Err(DocError::Invalid(e)) => {
                    let recovered = recover_list_items(&text, &mut budget);
                    self.spend(&budget);
                    self.problems.push(format!(
                        "{shown}: invalid JSON ({e}); recovered {} complete object(s) before the damage",
                        recovered.len()
                    ));
                    values.extend(recovered.into_iter().map(|v| (v, shown.to_string())));
                }
            }
        } else {
            let first = self.document_budget();
            document::yaml(&text, first, |i, r, budget| {
                match r {
                    Ok(Value::Null) => self.spend(budget),
                    Ok(v) => {
                        self.spend(budget);
                        values.push((v, format!("{shown}#{i}")));
                    }
                    Err(DocError::TooLarge) => self.too_large(shown, Some(i)),
                    Err(DocError::Invalid(e)) => self
                        .problems
                        .push(format!("{shown}: YAML document {i} unreadable: {e}")),
                }
                (!self.state.objects_full).then(|| self.document_budget())
            });
        }
        for (v, src) in values {
            self.push_value(v, &src);
        }
    }

    /// The budget of the next resource document: its own limit, or what is left of the bundle's.
    fn document_budget(&self) -> Budget {
        Budget::new(
            MAX_DOCUMENT_BYTES.min(MAX_OBJECTS_BYTES.saturating_sub(self.state.objects_bytes)),
        )
    }

    /// Count what a document took against the bundle's objects.
    fn spend(&mut self, budget: &Budget) {
        let limit = self.document_budget();
        self.state.objects_bytes += limit.left().saturating_sub(budget.left());
    }

    /// Report a document over its budget: over its own limit, or past the bundle's (said once;
    /// later resource documents are not read).
    fn too_large(&mut self, shown: &str, doc: Option<usize>) {
        let what = match doc {
            Some(i) => format!("{shown}: YAML document {i}"),
            None => shown.to_string(),
        };
        if MAX_OBJECTS_BYTES.saturating_sub(self.state.objects_bytes) < MAX_DOCUMENT_BYTES {
            self.state.objects_full = true;
            self.problems.push(format!(
                "{what}: the bundle's resources reached the {} limit for all resource documents (counted in memory); it and later resource files are not read",
                size_text(MAX_OBJECTS_BYTES)
            ));
        } else {
            self.problems.push(format!(
                "{what} is over the {} limit for one resource document (counted in memory, YAML aliases expanded); skipped",
                size_text(MAX_DOCUMENT_BYTES)
            ));
        }
    }

    fn push_value(&mut self, v: Value, src: &str) {
        match v {
            Value::Array(items) => {
                for it in items {
                    self.push_value(it, src);
                }
            }
            Value::Object(mut m)
                if m.get("items").is_some_and(Value::is_array)
                    && m.get("metadata").and_then(|x| x.get("name")).is_none() =>
            {
                if let Some(Value::Array(items)) = m.shift_remove("items") {
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
}

/// Archive log members larger than this are copied to a temporary file of their own while the
/// archive is read ([`LogSource::Spooled`]) instead of being held in memory (see
/// [`crate::source::limits::SPOOL_MIN_BYTES`]).
pub const SPOOL_MIN: u64 = crate::source::limits::SPOOL_MIN_BYTES;

/// Chunk size for copying an archive member to a temporary file (or skipping one).
const CHUNK: usize = 256 << 10;

/// A size for messages: whole MiB when it is one, else MiB with a decimal, else bytes.
fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{bytes} bytes")
    }
}

/// The sentence for a part over its limit: `path: <size> is over the <limit> limit for <what>;
/// not read`.
pub fn over_limit(path: &str, size: u64, limit: u64, what: &str) -> String {
    format!(
        "{path}: {} is over the {} limit for {what}; not read",
        size_text(size),
        size_text(limit)
    )
}

/// What a path in the bundle layout holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Resource,
    Log,
    ConfigDump,
}

impl Kind {
    /// The kind of a part the bundle reads.
    fn of(part: &Part) -> Kind {
        match part {
            Part::Manifest => Kind::Manifest,
            Part::Resources | Part::Quiet => Kind::Resource,
            Part::Log { .. } => Kind::Log,
            Part::ConfigDump { .. } => Kind::ConfigDump,
        }
    }

    /// The largest member of this kind read, and what it is called in messages.
    fn limit(self) -> (u64, &'static str) {
        match self {
            Kind::Manifest => (MAX_MANIFEST_BYTES, "the manifest"),
            Kind::Resource => (MAX_RESOURCE_FILE_BYTES, "a resource file"),
            Kind::Log => (MAX_ARCHIVE_MEMBER_BYTES, "a log in an archive"),
            Kind::ConfigDump => (MAX_CONFIG_DUMP_BYTES, "a config dump"),
        }
    }
}

/// Where an archive member's bytes go while the archive is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Read into memory, parsed at once and dropped (manifest, resources).
    Transient,
    /// Kept for later reading: in memory when at most [`SPOOL_MIN`] and while the archive's
    /// members in memory stay under [`MAX_ARCHIVE_MEMORY_BYTES`], else in the shared temporary
    /// file.
    Kept,
    /// A large log: a temporary file of its own (searched in place).
    OwnFile,
}

/// The parts of a relative path inside a bundle (`.` dropped).
fn parts_of(rel: &Path) -> Vec<String> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// What was read of one member: its data (if usable), the bytes read, and the read error if any.
type MemberRead = (Option<FileData>, u64, Option<io::Error>);

/// Where an archive's members are kept while it is read: memory up to
/// [`MAX_ARCHIVE_MEMORY_BYTES`], then temporary files up to the spool limit. Never falls back to
/// memory: a member that needs a temporary file and cannot have one is not read, and the reason
/// is said once for the archive.
struct MemberStore {
    /// Bytes of kept members held in memory.
    in_memory: u64,
    /// The shared temporary file for members past the memory limit, and its length.
    shared: Option<(Arc<fs::File>, u64)>,
    /// Bytes written to temporary files, and the most allowed.
    spooled: u64,
    spool_limit: u64,
    /// Why no more members can be copied to a temporary file (one sentence, without the
    /// archive's name), once that happened.
    failure: Option<String>,
    /// Members not read because of `failure`.
    skipped: Vec<String>,
}

impl MemberStore {
    fn new() -> MemberStore {
        let spool_limit =
            crate::source::limits::mib_from_env(SPOOL_LIMIT_ENV).unwrap_or(MAX_SPOOL_BYTES);
        MemberStore {
            in_memory: 0,
            shared: None,
            spooled: 0,
            spool_limit,
            failure: None,
            skipped: Vec::new(),
        }
    }

    /// Read a member of `size` bytes into its place.
    fn read(&mut self, entry: &mut impl Read, place: Place, size: u64, name: &str) -> MemberRead {
        match place {
            Place::Transient => read_in_memory(entry, size),
            Place::Kept
                if size <= SPOOL_MIN && self.in_memory + size <= MAX_ARCHIVE_MEMORY_BYTES =>
            {
                let read = read_in_memory(entry, size);
                self.in_memory += read.1;
                read
            }
            Place::Kept | Place::OwnFile => match self.spool_file(place == Place::OwnFile) {
                Some((file, start)) => self.spool(entry, file, start, name),
                None => {
                    self.skipped.push(name.to_string());
                    let (got, err) = drain(entry);
                    (None, got, err)
                }
            },
        }
    }

    /// The file to copy the next member to and where it starts in it; `None` once copying is
    /// impossible (the reason is in `failure`).
    fn spool_file(&mut self, own: bool) -> Option<(Arc<fs::File>, u64)> {
        if self.failure.is_some() {
            return None;
        }
        if !cfg!(any(unix, windows)) {
            self.failure = Some(
                "this platform cannot read temporary files in place, so large archive members are not read; extract the archive and pass the folder".to_string(),
            );
            return None;
        }
        if !own && let Some((file, len)) = &self.shared {
            return Some((file.clone(), *len));
        }
        match tempfile::tempfile() {
            Ok(f) => {
                let f = Arc::new(f);
                if !own {
                    self.shared = Some((f.clone(), 0));
                }
                Some((f, 0))
            }
            Err(e) => {
                self.failure = Some(format!(
                    "cannot create a temporary file in {}: {e}; set TMPDIR to a writable folder",
                    std::env::temp_dir().display()
                ));
                None
            }
        }
    }

    /// Copy a member to `file` from `start`, in chunks, within the spool limit. What was copied
    /// is used even when the copy stops early (the limit, a full disk); the rest of the member
    /// is read past.
    fn spool(
        &mut self,
        entry: &mut impl Read,
        file: Arc<fs::File>,
        start: u64,
        name: &str,
    ) -> MemberRead {
        let mut buf = vec![0u8; CHUNK];
        let mut read = 0u64;
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.end_spool(&file, start, written);
                    return (Some(FileData::Spooled(file, start, written)), read, Some(e));
                }
            };
            read += n as u64;
            let room = self.spool_limit.saturating_sub(self.spooled);
            let take = n.min(usize::try_from(room).unwrap_or(usize::MAX));
            match write_at(&file, &buf[..take], start + written) {
                Ok(()) => {
                    written += take as u64;
                    self.spooled += take as u64;
                    if take < n {
                        self.failure = Some(format!(
                            "the archive's temporary files reached their limit of {} while copying {name}, so it is cut there and later logs and config dumps are not read; extract the archive and pass the folder, or raise {SPOOL_LIMIT_ENV}",
                            size_text(self.spool_limit)
                        ));
                    }
                }
                Err(e) => {
                    self.failure = Some(format!(
                        "cannot write to a temporary file in {} ({e}), so {name} is cut after {} and later logs and config dumps are not read; free space there or set TMPDIR to another folder",
                        std::env::temp_dir().display(),
                        size_text(written)
                    ));
                }
            }
            if self.failure.is_some() {
                let (rest, err) = drain(entry);
                self.end_spool(&file, start, written);
                return (
                    Some(FileData::Spooled(file, start, written)),
                    read + rest,
                    err,
                );
            }
        }
        self.end_spool(&file, start, written);
        (Some(FileData::Spooled(file, start, written)), read, None)
    }

    /// Record the end of a member copied to the shared file.
    fn end_spool(&mut self, file: &Arc<fs::File>, start: u64, len: u64) {
        if let Some((shared, end)) = &mut self.shared
            && Arc::ptr_eq(shared, file)
        {
            *end = start + len;
        }
    }

    /// The one sentence about members that could not be copied, if any.
    fn summary(&self, root: &str) -> Option<String> {
        let why = self.failure.as_ref()?;
        let n = self.skipped.len();
        let not_read = match n {
            0 => String::new(),
            _ => {
                let mut names = self.skipped.iter().take(3).cloned().collect::<Vec<_>>();
                if n > 3 {
                    names.push(format!("and {} more", n - 3));
                }
                format!(" ({n} member(s) not read: {})", names.join(", "))
            }
        };
        Some(format!("{root}: {why}{not_read}"))
    }
}

#[cfg(unix)]
fn write_at(file: &fs::File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &fs::File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(not(any(unix, windows)))]
fn write_at(_: &fs::File, _: &[u8], _: u64) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "positional writes are not available on this platform",
    ))
}

/// Read a member of `size` bytes (already checked against its limit) into memory.
fn read_in_memory(entry: &mut impl Read, size: u64) -> MemberRead {
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(CHUNK * 4));
    let res = entry.take(size).read_to_end(&mut data);
    let got = data.len() as u64;
    (Some(FileData::Bytes(Arc::new(data))), got, res.err())
}

/// Read a member to its end without keeping it: the bytes read, and the error that stopped it.
fn drain(entry: &mut impl Read) -> (u64, Option<io::Error>) {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match entry.read(&mut buf) {
            Ok(0) => return (total, None),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (total, Some(e)),
        }
    }
}

enum FileData {
    Path(PathBuf),
    Bytes(Arc<Vec<u8>>),
    /// A member copied to a temporary file: the file, where it starts and its length.
    Spooled(Arc<fs::File>, u64, u64),
}

impl FileData {
    /// The text of a manifest or resource file of at most `limit` bytes (checked on its size
    /// first, then while reading in case the file grows); over it, the sentence to report.
    fn text(&self, shown: &str, limit: u64, what: &str) -> Result<String, String> {
        let source = self.to_source();
        if let Some(size) = source.size().filter(|s| *s > limit) {
            return Err(over_limit(shown, size, limit, what));
        }
        let mut b = Vec::new();
        source
            .open()
            .and_then(|r| Read::take(r, limit + 1).read_to_end(&mut b))
            .map_err(|e| format!("{shown}: unreadable: {e}"))?;
        if b.len() as u64 > limit {
            return Err(over_limit(shown, b.len() as u64, limit, what));
        }
        Ok(match String::from_utf8(b) {
            Ok(t) => t,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn to_source(&self) -> LogSource {
        match self {
            FileData::Path(p) => LogSource::File(p.clone()),
            FileData::Bytes(b) => LogSource::Memory(b.clone()),
            FileData::Spooled(file, start, len) => LogSource::Spooled {
                file: file.clone(),
                start: *start,
                len: *len,
            },
        }
    }

    fn source(self) -> LogSource {
        match self {
            FileData::Path(p) => LogSource::File(p),
            FileData::Bytes(b) => LogSource::Memory(b),
            FileData::Spooled(file, start, len) => LogSource::Spooled { file, start, len },
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
/// Each object is parsed within `budget`; recovery stops when it is spent.
pub fn recover_list_items(text: &str, budget: &mut Budget) -> Vec<Value> {
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
        match document::json(&text[obj_start..end], budget) {
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
        let budget = || Budget::new(1 << 20);
        let v = recover_list_items(t, &mut budget());
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["metadata"]["name"], "b");
        assert!(recover_list_items("garbage", &mut budget()).is_empty());
        assert!(recover_list_items("[", &mut budget()).is_empty());
        // Recovery stops once the budget is spent: room for the first object only.
        let mut one = budget();
        document::json(
            r#"{"kind":"Pod","metadata":{"name":"a","x":"}"}}"#,
            &mut one,
        )
        .unwrap();
        let cost = budget().left() - one.left();
        assert_eq!(recover_list_items(t, &mut Budget::new(cost + 8)).len(), 1);
    }
}
