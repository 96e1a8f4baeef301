//! Progress on stderr, only when stderr is a terminal: while collecting (pods done / total,
//! bytes), and while evidence is read offline (see [`reading`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
        if enabled {
            // Collection shows its own line: the offline reading line (if any) gives way.
            clear(true);
        }
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

// The progress line on standard error while evidence is read offline: shown only when the
// read takes more than a second, standard error is a terminal and `--quiet` was not given;
// counts only (bytes read, seconds), never evidence. One ticker thread per read, stopped and
// joined when the read's guard is dropped; the line is cleared before anything else is
// written (the first byte of the command's output ends it for good, a warning only clears
// it until the next tick).

/// How long a read runs before the line appears.
const DELAY: Duration = Duration::from_secs(1);
/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);

static QUIET: AtomicBool = AtomicBool::new(false);
/// Is a ticker running (a cheap test before taking its lock)?
static ACTIVE: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

/// `--quiet`: no progress line.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

#[derive(Default)]
struct State {
    /// The read ended or output began: the ticker exits.
    stopped: bool,
    /// Width of the line now on screen (0: none).
    shown: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    /// Clear the line on screen, if any (the caller holds the state).
    fn clear(state: &mut State) {
        if state.shown > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(state.shown));
            let _ = err.flush();
            state.shown = 0;
        }
    }
}

/// The guard of one offline read: the line (if it ever appeared) disappears when it drops.
pub struct Reading {
    shared: Option<Arc<Shared>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Start watching a read: a ticker that waits [`DELAY`] before drawing anything. Nothing at all
/// when `--quiet` was given or standard error is not a terminal.
pub fn reading() -> Reading {
    use std::io::IsTerminal;
    if QUIET.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        return Reading {
            shared: None,
            thread: None,
        };
    }
    start(|line| {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}");
        let _ = err.flush();
    })
}

/// Start a ticker that draws with `draw` (a test draws into memory).
fn start(draw: impl Fn(&str) + Send + 'static) -> Reading {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
    });
    if let Ok(mut c) = CURRENT.lock() {
        *c = Some(shared.clone());
    }
    ACTIVE.store(true, Ordering::Relaxed);
    let from = crate::source::input::bytes_read();
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || tick(&s, from, &draw))
        .ok();
    Reading {
        shared: Some(shared),
        thread,
    }
}

fn tick(s: &Shared, from: u64, draw: &dyn Fn(&str)) {
    let began = Instant::now();
    let Ok(mut st) = s.state.lock() else {
        return;
    };
    let mut wait = DELAY;
    loop {
        st = match s.wake.wait_timeout(st, wait) {
            Ok((g, _)) => g,
            Err(_) => return,
        };
        if st.stopped {
            return;
        }
        if began.elapsed() < DELAY {
            // Woken early (spurious): wait for the rest of the delay.
            wait = DELAY - began.elapsed();
            continue;
        }
        wait = TICK;
        let mib =
            crate::source::input::bytes_read().saturating_sub(from) as f64 / (1024.0 * 1024.0);
        let line = format!(
            "reading the evidence: {mib:.1} MiB, {} s (--quiet hides this)",
            began.elapsed().as_secs()
        );
        let width = line.chars().count();
        draw(&format!(
            "{line}{}",
            " ".repeat(st.shown.saturating_sub(width))
        ));
        st.shown = width.max(st.shown);
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            if let Ok(mut st) = s.state.lock() {
                st.stopped = true;
                Shared::clear(&mut st);
            }
            s.wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        ACTIVE.store(false, Ordering::Relaxed);
        if let Ok(mut c) = CURRENT.lock() {
            *c = None;
        }
    }
}

/// Clear the progress line before other text reaches the terminal; `end`: for good (the
/// command's output has begun).
pub fn clear(end: bool) {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let Some(s) = CURRENT.lock().ok().and_then(|c| c.clone()) else {
        return;
    };
    if let Ok(mut st) = s.state.lock() {
        Shared::clear(&mut st);
        if end {
            st.stopped = true;
        }
    }
    s.wake.notify_all();
    if end {
        ACTIVE.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_read_draws_nothing_and_a_long_one_stops_with_its_guard() {
        let drawn = Arc::new(Mutex::new(Vec::<String>::new()));
        let d = drawn.clone();
        let g = start(move |l| d.lock().unwrap().push(l.to_string()));
        std::thread::sleep(Duration::from_millis(300));
        drop(g);
        assert!(drawn.lock().unwrap().is_empty());

        let d = drawn.clone();
        let g = start(move |l| d.lock().unwrap().push(l.to_string()));
        std::thread::sleep(Duration::from_millis(1500));
        let t = Instant::now();
        drop(g);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "the ticker stops at once"
        );
        let lines = drawn.lock().unwrap().clone();
        assert!(!lines.is_empty());
        assert!(lines[0].starts_with("reading the evidence: "), "{lines:?}");
        let n = lines.len();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            drawn.lock().unwrap().len(),
            n,
            "nothing drawn after the guard dropped"
        );
    }
}
