//! Writing the bundle in the layout of `docs/bundle.md`: `pods.json`, `resources/<ns>/…`,
//! `logs/<ns>/<pod>/<container>[.previous].log`, `config_dump/<ns>/<pod>.json`, the manifest,
//! and the optional `.tar.gz`. Every folder is created 0700 and every file 0600 (`private`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::discover::{group, kind, namespace};
use super::error::LiveError;
use super::private;

/// A path component from the API server: never empty, `.`/`..`, or with a separator.
fn component(s: &str) -> Result<&str, String> {
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        Err(format!("refused to write a file named {s:?}"))
    } else {
        Ok(s)
    }
}

/// `logs/<ns>/<pod>/<container>.log` (or `.previous.log`).
pub(crate) fn log_path(
    dir: &Path,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<PathBuf, String> {
    Ok(dir
        .join("logs")
        .join(component(ns)?)
        .join(component(pod)?)
        .join(format!(
            "{}{}",
            component(container)?,
            if previous { ".previous.log" } else { ".log" }
        )))
}

/// `config_dump/<ns>/<pod>.json`.
pub(crate) fn dump_path(dir: &Path, ns: &str, pod: &str) -> Result<PathBuf, String> {
    Ok(dir
        .join("config_dump")
        .join(component(ns)?)
        .join(format!("{}.json", component(pod)?)))
}

/// What to do when a bundle file could not be written because the disk holding the bundle is
/// full (or a quota or a file-size limit is reached); `None` for any other cause.
pub(crate) fn full_disk_fix(e: &std::io::Error) -> Option<&'static str> {
    crate::source::limits::out_of_room(e).then_some(
        "the disk holding the bundle is full: free space there, or write the bundle to another folder (`collect -o` or `--archive`; TMPDIR for a temporary bundle: that of the other live commands, or of `collect --archive` until it is archived)",
    )
}

/// A bundle file that could not be written: the file, the reason and, for a full disk, what
/// to do ([`full_disk_fix`]).
pub(crate) fn write_failure(path: &Path, e: &std::io::Error) -> String {
    match full_disk_fix(e) {
        Some(fix) => format!("{}: {e}; {fix}", path.display()),
        None => format!("{}: {e}", path.display()),
    }
}

pub(crate) fn write_json(path: &Path, v: &Value) -> Result<(), LiveError> {
    let f = private::create_file(path).map_err(|e| LiveError::io(path, e))?;
    let mut w = std::io::BufWriter::new(f);
    serde_json::to_writer_pretty(&mut w, v)
        .map_err(|e| LiveError::io(path, std::io::Error::other(e)))?;
    w.write_all(b"\n").map_err(|e| LiveError::io(path, e))?;
    w.flush().map_err(|e| LiveError::io(path, e))
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// `pods.json`: every pod listed, as a v1 List.
pub(crate) fn write_pods(dir: &Path, pods: &[Value]) -> Result<(), LiveError> {
    write_json(&dir.join("pods.json"), &list(pods.to_vec()))
}

/// `resources/<ns>/<plural>[.<group>].json` (cluster-scoped objects under `resources/_cluster/`).
/// Returns how many objects were written.
pub(crate) fn write_objects(dir: &Path, objects: &mut Vec<Value>) -> Result<usize, LiveError> {
    let mut files: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let n = objects.len();
    for o in objects.drain(..) {
        let ns = match namespace(&o) {
            "" => "_cluster".to_string(),
            ns => match component(ns) {
                Ok(ns) => ns.to_string(),
                Err(_) => continue,
            },
        };
        let k = kind(&o).to_ascii_lowercase();
        let file = match group(&o) {
            "" => format!("{k}.json"),
            g => format!("{k}.{g}.json"),
        };
        files.entry((ns, file)).or_default().push(o);
    }
    for ((ns, file), items) in files {
        write_json(&dir.join("resources").join(ns).join(file), &list(items))?;
    }
    Ok(n)
}

/// Pack a bundle folder into a `.tar.gz` whose members are the bundle's relative paths.
pub fn write_archive(dir: &Path, archive: &Path) -> Result<(), LiveError> {
    let f = private::create_file(archive).map_err(|e| LiveError::io(archive, e))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    let mut files = Vec::new();
    walk(dir, dir, &mut files).map_err(|e| LiveError::io(dir, e))?;
    files.sort();
    for rel in files {
        // A full disk is the archive's (the file is read from the bundle folder).
        tar.append_path_with_name(dir.join(&rel), &rel)
            .map_err(|e| match full_disk_fix(&e) {
                Some(_) => LiveError::io(archive, e),
                None => LiveError::io(dir.join(&rel), e),
            })?;
    }
    let gz = tar.into_inner().map_err(|e| LiveError::io(archive, e))?;
    let mut f = gz.finish().map_err(|e| LiveError::io(archive, e))?;
    f.flush().map_err(|e| LiveError::io(archive, e))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        let p = e.path();
        if t.is_dir() {
            walk(root, &p, out)?;
        } else if t.is_file()
            && let Ok(rel) = p.strip_prefix(root)
        {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        let d = Path::new("/b");
        assert!(log_path(d, "..", "p", "c", false).is_err());
        assert!(log_path(d, "ns", "a/b", "c", false).is_err());
        assert!(dump_path(d, "ns", "").is_err());
        assert_eq!(
            log_path(d, "ns", "p", "istio-proxy", true).ok(),
            Some(PathBuf::from("/b/logs/ns/p/istio-proxy.previous.log"))
        );
    }
}
