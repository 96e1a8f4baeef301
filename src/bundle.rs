//! Reading an evidence bundle (folder, `.tar.gz`, or an `istioctl bug-report` archive).
//!
//! The format is documented in `docs/bundle.md`. Nothing in a bundle aborts reading: every part
//! that cannot be used is recorded in [`Bundle::problems`] and the rest is kept.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

/// A Kubernetes object of any kind, as read from the bundle.
#[derive(Debug, Clone)]
pub struct Object {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// Where it was read (`resources/x.yaml#2`).
    pub source: String,
    /// The whole object.
    pub value: Value,
}

impl Object {
    /// An object from its JSON, if it has a kind and a name.
    pub fn from_value(value: Value, source: String) -> Option<Object> {
        let kind = value.get("kind")?.as_str()?.to_string();
        let name = value.pointer("/metadata/name")?.as_str()?.to_string();
        Some(Object {
            api_version: value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            kind,
            namespace: value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name,
            source,
            value,
        })
    }

    /// `kind/namespace/name` (or `kind/name` for cluster-scoped objects).
    pub fn reference(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// `spec`, or null.
    pub fn spec(&self) -> &Value {
        self.value.get("spec").unwrap_or(&Value::Null)
    }

    /// A string label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }

    /// A string annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/annotations")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }
}

/// Bytes of a log: a file on disk or an archive member held in memory.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// A file.
    File(PathBuf),
    /// An archive member.
    Memory(Arc<Vec<u8>>),
}

impl LogSource {
    /// Size in bytes, when known.
    pub fn size(&self) -> Option<u64> {
        match self {
            LogSource::File(p) => fs::metadata(p).ok().map(|m| m.len()),
            LogSource::Memory(b) => Some(b.len() as u64),
        }
    }

    /// Open for reading.
    pub fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            LogSource::File(p) => Ok(Box::new(fs::File::open(p)?)),
            LogSource::Memory(b) => Ok(Box::new(Cursor::new(Shared(b.clone())))),
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

/// One container log in the bundle.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// Namespace from the path.
    pub namespace: String,
    /// Pod name from the path.
    pub pod: String,
    /// Container name from the file name.
    pub container: String,
    /// The previous container's log (`<container>.previous.log`).
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
        let mut members = 0usize;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.problems.push(format!("{}: archive is corrupt or truncated after {members} member(s): {e}; using what was read", self.root));
                    return;
                }
            };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let rel = match entry.path() {
                Ok(p) => p.into_owned(),
                Err(e) => {
                    self.problems
                        .push(format!("{}: member with unreadable name: {e}", self.root));
                    continue;
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
                continue;
            }
            // Never read what the bundle does not use (a stray core dump in a bug report), and
            // hold at most MAX_MEMBER bytes of one member in memory.
            if !is_layout_path(&rel) {
                self.problems.push(format!(
                    "{}: ignored (not part of the bundle layout)",
                    rel.display()
                ));
                continue;
            }
            let size = entry.header().size().unwrap_or(0);
            if size > MAX_MEMBER {
                self.problems.push(format!(
                    "{}: {} bytes is too large to read from an archive (limit {} bytes); extract the archive and pass the folder",
                    rel.display(),
                    size,
                    MAX_MEMBER
                ));
                continue;
            }
            let mut data = Vec::new();
            if let Err(e) = (&mut entry).take(MAX_MEMBER).read_to_end(&mut data) {
                self.problems.push(format!(
                    "{}: member {} is truncated: {e}; using the {} bytes read",
                    self.root,
                    rel.display(),
                    data.len()
                ));
                self.add_file(&rel, FileData::Bytes(Arc::new(data)));
                return;
            }
            members += 1;
            self.add_file(&rel, FileData::Bytes(Arc::new(data)));
        }
    }

    fn add_file(&mut self, rel: &Path, data: FileData) {
        let parts: Vec<String> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let shown = parts.join("/");
        let lower = shown.to_ascii_lowercase();
        let file = parts.last().cloned().unwrap_or_default();
        let is_data =
            lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json");
        // istioctl bug-report layout: …/proxies/<ns>/<pod>/<file>, …/cluster/…
        if let Some(i) = parts.iter().position(|p| p == "proxies")
            && parts.len() == i + 4
        {
            let (ns, pod) = (parts[i + 1].clone(), parts[i + 2].clone());
            if file.contains("config_dump") {
                self.config_dumps.push(ConfigDumpFile {
                    namespace: ns,
                    pod,
                    path: shown,
                    source: data.source(),
                });
            } else if lower.ends_with(".log") {
                self.push_log(ns, pod, &file, shown, data);
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
            Some("logs") if parts.len() == 4 && lower.ends_with(".log") => {
                self.push_log(parts[1].clone(), parts[2].clone(), &file, shown, data)
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
        file: &str,
        path: String,
        data: FileData,
    ) {
        let stem = file.strip_suffix(".log").unwrap_or(file);
        let (container, previous) = match stem.strip_suffix(".previous") {
            Some(c) => (c.to_string(), true),
            None => (stem.to_string(), false),
        };
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

/// Largest archive member read into memory.
const MAX_MEMBER: u64 = 1 << 30;

/// Is this path (inside a bundle or bug-report archive) one the bundle reader uses?
fn is_layout_path(rel: &Path) -> bool {
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let lower = parts.join("/").to_ascii_lowercase();
    let file = parts
        .last()
        .map(|f| f.to_ascii_lowercase())
        .unwrap_or_default();
    let is_data = lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json");
    if let Some(i) = parts.iter().position(|p| p == "proxies")
        && parts.len() == i + 4
    {
        return file.contains("config_dump") || lower.ends_with(".log");
    }
    match parts.first().map(String::as_str) {
        Some("meshtrace-bundle.json") | Some("pods.json") => parts.len() == 1,
        Some("resources") => is_data,
        Some("logs") => parts.len() == 4 && lower.ends_with(".log"),
        Some("config_dump") => parts.len() == 3 && lower.ends_with(".json"),
        _ => parts.iter().any(|p| p == "cluster") && is_data,
    }
}

enum FileData {
    Path(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

impl FileData {
    fn text(&self) -> Result<String, String> {
        match self {
            FileData::Path(p) => fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| format!("unreadable: {e}")),
            FileData::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        }
    }

    fn source(self) -> LogSource {
        match self {
            FileData::Path(p) => LogSource::File(p),
            FileData::Bytes(b) => LogSource::Memory(b),
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
