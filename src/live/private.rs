//! Private files for what the cluster gives (pods carry their environment values): folders are
//! created 0700 and files 0600; temporary bundles and unfinished archives are removed when they
//! are dropped (also while a panic unwinds) and on SIGINT/SIGTERM, before exiting with 130/143.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, RwLock};

/// Paths removed on SIGINT/SIGTERM.
static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Held (shared) while a folder or file is created; the signal handler takes it exclusively
/// before removing, so nothing is created again under a removed folder.
static CREATING: RwLock<()> = RwLock::new(());

static HANDLER: OnceLock<()> = OnceLock::new();

fn register(path: &Path) {
    install_handler();
    if let Ok(mut r) = REGISTRY.lock() {
        r.push(path.to_path_buf());
    }
}

fn unregister(path: &Path) {
    if let Ok(mut r) = REGISTRY.lock() {
        r.retain(|p| p != path);
    }
}

fn remove(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            // A file being written may reappear once; try again.
            for _ in 0..3 {
                if fs::remove_dir_all(path).is_ok() || !path.exists() {
                    break;
                }
            }
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// On SIGINT/SIGTERM: stop creating, remove every registered path, exit 128 + the signal.
fn install_handler() {
    HANDLER.get_or_init(|| {
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGINT, SIGTERM};
            if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
                let _ = std::thread::Builder::new()
                    .name("meshtrace-signals".into())
                    .spawn(move || {
                        if let Some(sig) = signals.forever().next() {
                            let _hold = CREATING.write();
                            let paths: Vec<PathBuf> =
                                REGISTRY.lock().map(|r| r.clone()).unwrap_or_default();
                            for p in paths.iter().rev() {
                                remove(p);
                            }
                            std::process::exit(128 + sig);
                        }
                    });
            }
        }
    });
}

/// A temporary folder (0700) removed when dropped and on SIGINT/SIGTERM.
#[derive(Debug)]
pub struct PrivateDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl PrivateDir {
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        unregister(&self.path);
        if let Some(d) = self.dir.take() {
            let _guard = CREATING.write();
            let _ = d.close();
        }
    }
}

/// A fresh private temporary folder `$TMPDIR/<prefix>XXXXXX`.
pub fn temp_dir(prefix: &str) -> io::Result<PrivateDir> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o700));
    }
    let dir = b.tempdir()?;
    let path = dir.path().to_path_buf();
    register(&path);
    Ok(PrivateDir {
        dir: Some(dir),
        path,
    })
}

/// A file being written (an archive): removed when dropped unfinished and on SIGINT/SIGTERM.
#[derive(Debug)]
pub struct Unfinished {
    path: PathBuf,
    done: bool,
}

impl Unfinished {
    /// Guard `path`.
    pub fn new(path: &Path) -> Unfinished {
        register(path);
        Unfinished {
            path: path.to_path_buf(),
            done: false,
        }
    }

    /// The file is complete: keep it.
    pub fn keep(mut self) {
        self.done = true;
        unregister(&self.path);
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.done {
            unregister(&self.path);
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `create_dir_all`, each folder created 0700.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let _guard = CREATING.read();
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// Create (or truncate) a file 0600, its folders 0700.
pub fn create_file(path: &Path) -> io::Result<fs::File> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all(parent)?;
    }
    let _guard = CREATING.read();
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn folders_0700_files_0600_and_removed_on_drop() {
        let d = temp_dir("meshtrace-unit-").unwrap();
        let p = d.path().to_path_buf();
        assert_eq!(mode(&p), 0o700);
        let f = p.join("a/b/c.json");
        drop(create_file(&f).unwrap());
        assert_eq!(mode(&p.join("a")), 0o700);
        assert_eq!(mode(&p.join("a/b")), 0o700);
        assert_eq!(mode(&f), 0o600);
        assert!(REGISTRY.lock().unwrap().contains(&p));
        drop(d);
        assert!(!p.exists());
        assert!(!REGISTRY.lock().unwrap().contains(&p));
    }

    #[test]
    fn unfinished_file_is_removed_unless_kept() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.tar.gz");
        drop(create_file(&a).unwrap());
        drop(Unfinished::new(&a));
        assert!(!a.exists());
        drop(create_file(&a).unwrap());
        Unfinished::new(&a).keep();
        assert!(a.exists());
    }
}
