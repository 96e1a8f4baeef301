//! The bounds of live collection: how long one API call may take (`--request-timeout`), how long
//! the whole collection may take (`--deadline`), and how many bytes a response, a list, a log, a
//! config dump and the whole bundle may hold. Documented in `docs/live.md` and `docs/limits.md`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `--request-timeout` by default: one API call (or one silence in a stream) longer than this is
/// given up.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `--deadline` by default: the whole collection.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

/// Largest body of one API response read into memory: a discovery document or one page of a list
/// (500 items are asked per page).
pub const MAX_RESPONSE_BYTES: u64 = 32 << 20;

/// Largest total of all the pages of one list (one kind, cluster-wide or in one namespace).
pub const MAX_LIST_BYTES: u64 = 64 << 20;

/// Largest log of one container written to the bundle.
pub const MAX_LOG_BYTES: u64 = 1 << 30;

/// Largest Envoy config dump written (the bundle reader reads none larger).
pub const MAX_DUMP_BYTES: u64 = 32 << 20;

/// Largest total of logs and config dumps written by one collection.
pub const MAX_BUNDLE_BYTES: u64 = 4 << 30;

/// Largest error body read (a `Status` object is a few hundred bytes).
pub const MAX_ERROR_BYTES: u64 = 64 << 10;

/// Lines asked for per page of a log-store query (Loki's default `max_entries_limit_per_query`).
pub const LOKI_PAGE_LINES: usize = 5000;

/// Pages read per log-store query at most; the query is then reported as cut.
pub const LOKI_MAX_PAGES: usize = 200;

/// Largest body of one log-store answer (one page) read into memory.
pub const LOKI_MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Largest total of the lines kept from the log store in one run (all queries together).
pub const LOKI_MAX_BYTES: u64 = 512 << 20;

/// Rounds of a trace's search in the log store (each round searches the ids and connection
/// addresses the previous round found).
pub const LOKI_TRACE_ROUNDS: usize = 6;

/// Search strings (request ids, connection addresses) a trace asks the log store for at most.
pub const LOKI_TRACE_NEEDLES: usize = 48;

/// Log-store queries in flight at once.
pub const LOKI_CONCURRENCY: usize = 4;

/// The time range read from the log store when neither `--since` nor `--since-time` is given.
pub const LOKI_DEFAULT_LOOKBACK: Duration = Duration::from_secs(24 * 3600);

/// Which bound cut a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `--request-timeout`.
    Request(Duration),
    /// `--deadline`.
    Deadline(Duration),
}

/// A call (or a stream's silence) that went past its time.
#[derive(Debug, Clone)]
pub struct TimedOut {
    /// `GET /api/v1/namespaces/x/pods/y/log?…`.
    pub call: String,
    /// Which bound.
    pub bound: Bound,
    /// `true`: the answer had started and then stopped (no bytes for the request timeout).
    pub silent: bool,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.bound {
            Bound::Request(d) if self.silent => write!(
                f,
                "the API server sent nothing for {} on `{}`",
                human(d),
                self.call
            ),
            Bound::Request(d) => write!(
                f,
                "the API server did not answer `{}` within {}",
                self.call,
                human(d)
            ),
            Bound::Deadline(d) => write!(
                f,
                "the collection deadline ({}) passed during `{}`",
                human(d),
                self.call
            ),
        }
    }
}

impl TimedOut {
    /// What to do about it.
    pub fn advice(&self) -> &'static str {
        match self.bound {
            Bound::Request(_) => "raise --request-timeout or check the API server",
            Bound::Deadline(_) => "raise --deadline, or narrow with -n, --pod or --since",
        }
    }
}

/// `30s`, `2m`, `1m30s`, `1.5s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// The time bounds of one collection.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// `None`: no per-call timeout (`--request-timeout 0`).
    request: Option<Duration>,
    /// `None`: no deadline (`--deadline 0`).
    deadline: Option<(Instant, Duration)>,
}

impl Clock {
    pub(crate) fn new(request: Option<Duration>, deadline: Option<Duration>) -> Clock {
        Clock {
            request: request.filter(|d| !d.is_zero()),
            deadline: deadline
                .filter(|d| !d.is_zero())
                .map(|d| (Instant::now() + d, d)),
        }
    }

    /// How long one wait may last, starting now, with `limit` (the per-call timeout or what is
    /// left of it) and the deadline, and which bound that is.
    fn budget(&self, limit: Option<Duration>) -> Option<(Duration, Bound)> {
        let left = self
            .deadline
            .map(|(at, d)| (at.saturating_duration_since(Instant::now()), d));
        match (limit, left) {
            (None, None) => None,
            (Some(l), None) => Some((l, Bound::Request(self.request.unwrap_or(l)))),
            (None, Some((left, d))) => Some((left, Bound::Deadline(d))),
            (Some(l), Some((left, d))) if left < l => Some((left, Bound::Deadline(d))),
            (Some(l), Some(_)) => Some((l, Bound::Request(self.request.unwrap_or(l)))),
        }
    }

    /// Run `fut` within `limit` (default: the per-call timeout) and the deadline.
    pub(crate) async fn within<F: Future>(
        &self,
        call: &str,
        limit: Option<Duration>,
        silent: bool,
        fut: F,
    ) -> Result<F::Output, TimedOut> {
        match self.budget(limit) {
            None => Ok(fut.await),
            Some((d, bound)) => tokio::time::timeout(d, fut).await.map_err(|_| TimedOut {
                call: call.to_string(),
                bound,
                silent,
            }),
        }
    }

    /// Run `fut` within the per-call timeout and the deadline.
    pub(crate) async fn call<F: Future>(&self, call: &str, fut: F) -> Result<F::Output, TimedOut> {
        self.within(call, self.request, false, fut).await
    }

    /// Run `fut` within the deadline only (waiting for a turn, a whole stream).
    pub(crate) async fn until_deadline<F: Future>(
        &self,
        call: &str,
        fut: F,
    ) -> Result<F::Output, TimedOut> {
        self.within(call, None, false, fut).await
    }

    /// Run one read of a stream: no bytes for the per-call timeout is a silence.
    pub(crate) async fn read<F: Future>(&self, call: &str, fut: F) -> Result<F::Output, TimedOut> {
        self.within(call, self.request, true, fut).await
    }
}

/// Bytes left for logs and config dumps on disk, shared by every pod.
#[derive(Debug, Clone)]
pub(crate) struct DiskBudget {
    left: Arc<AtomicU64>,
}

impl DiskBudget {
    pub(crate) fn new(bytes: u64) -> DiskBudget {
        DiskBudget {
            left: Arc::new(AtomicU64::new(bytes)),
        }
    }

    /// Take up to `n` bytes; returns how many were granted (less than `n` once it runs out).
    pub(crate) fn take(&self, n: u64) -> u64 {
        let mut cur = self.left.load(Ordering::Relaxed);
        loop {
            let grant = cur.min(n);
            match self.left.compare_exchange_weak(
                cur,
                cur - grant,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return grant,
                Err(now) => cur = now,
            }
        }
    }
}

/// `32 MiB`, `1 GiB`.
pub fn bytes(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// `--otlp-timeout` by default: connecting to an OTLP/HTTP receiver, sending a trace and reading
/// its answer, in all.
pub const OTLP_DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer of an OTLP/HTTP receiver read (a partial-success document or an error text).
pub const OTLP_MAX_RESPONSE_BYTES: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_plainly() {
        assert_eq!(human(Duration::from_secs(30)), "30s");
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(bytes(32 << 20), "32 MiB");
        assert_eq!(bytes(1 << 30), "1 GiB");
        assert_eq!(bytes(17), "17 bytes");
    }

    #[test]
    fn the_nearer_bound_wins() {
        let c = Clock::new(Some(Duration::from_secs(30)), Some(Duration::from_secs(5)));
        let (d, b) = c.budget(c.request).unwrap();
        assert!(d <= Duration::from_secs(5));
        assert_eq!(b, Bound::Deadline(Duration::from_secs(5)));
        let c = Clock::new(Some(Duration::from_secs(1)), Some(Duration::from_secs(60)));
        assert_eq!(
            c.budget(c.request).map(|x| x.1),
            Some(Bound::Request(Duration::from_secs(1)))
        );
        let c = Clock::new(Some(Duration::ZERO), Some(Duration::ZERO));
        assert!(c.budget(c.request).is_none());
    }

    #[test]
    fn disk_budget_runs_out() {
        let b = DiskBudget::new(10);
        assert_eq!(b.take(4), 4);
        assert_eq!(b.take(10), 6);
        assert_eq!(b.take(1), 0);
    }

    #[test]
    fn timeouts_are_one_sentence() {
        let t = TimedOut {
            call: "GET /api/v1/namespaces/a/pods/p/log?container=istio-proxy".into(),
            bound: Bound::Request(Duration::from_secs(30)),
            silent: true,
        };
        assert_eq!(
            t.to_string(),
            "the API server sent nothing for 30s on `GET /api/v1/namespaces/a/pods/p/log?container=istio-proxy`"
        );
    }
}
