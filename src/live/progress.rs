//! Progress on stderr while collecting (pods done / total, bytes), only when stderr is a terminal.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Shared counters; prints at most every 100 ms.
pub(crate) struct Progress {
    enabled: bool,
    total: usize,
    done: AtomicUsize,
    bytes: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    pub(crate) fn new(enabled: bool, total: usize) -> Progress {
        Progress {
            enabled,
            total,
            done: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.show(false);
    }

    pub(crate) fn pod_done(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.show(true);
    }

    pub(crate) fn finish(&self) {
        if self.enabled {
            self.show(true);
            eprintln!();
        }
    }

    fn show(&self, force: bool) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        if !force && last.is_some_and(|l| now.duration_since(l) < Duration::from_millis(100)) {
            return;
        }
        *last = Some(now);
        let b = self.bytes.load(Ordering::Relaxed) as f64;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rcollecting: {}/{} pods, {:.1} MiB",
            self.done.load(Ordering::Relaxed),
            self.total,
            b / (1024.0 * 1024.0)
        );
        let _ = err.flush();
    }
}
