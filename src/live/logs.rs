//! Container logs streamed from `pods/{name}/log` straight into the bundle's files, a chunk at a
//! time (with `--until`, cut at the first later line): a log never sits in memory. A silence of
//! `--request-timeout`, the deadline, [`bounds::MAX_LOG_BYTES`] and the bundle's byte budget cut
//! a log; what was read is kept. Also drives the config dump.

use std::path::Path;
use std::time::Duration;

use http_body_util::BodyExt;
use kube::api::LogParams;
use tokio::io::AsyncWriteExt;

use super::bounds;
use super::error::CallError;
use super::kubeapi::{Kube, describe};
use super::progress::Progress;
use super::{Problems, Window, envoy, private, writer};

/// One pod's work.
#[derive(Debug, Clone)]
pub(crate) struct PodJob {
    pub namespace: String,
    pub pod: String,
    /// Container names and restart counts.
    pub containers: Vec<(String, i64)>,
    pub config_dump: bool,
}

/// A problem met while collecting a pod.
pub(crate) enum PodProblem {
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        ns: String,
        what: String,
    },
    /// Cut by a bound; what was kept.
    Cut(CallError, String),
    Other(String),
}

impl PodProblem {
    pub(crate) fn record(self, p: &mut Problems) {
        match self {
            PodProblem::Forbidden {
                verb,
                resource,
                ns,
                what,
            } => p.forbidden(verb, resource, Some(&ns), what),
            PodProblem::Cut(e, kept) => p.cut(&e, &kept),
            PodProblem::Other(s) => p.other(s),
        }
    }
}

/// What one pod gave.
#[derive(Default)]
pub(crate) struct Outcome {
    pub logs: usize,
    pub config_dumps: usize,
    pub bytes: u64,
    pub notes: Vec<String>,
    pub problems: Vec<PodProblem>,
}

/// Fetch a pod's logs (and previous logs after a restart) and its config dump.
pub(crate) async fn collect_pod(
    kube: &Kube,
    job: &PodJob,
    window: &Window,
    dump_timeout: Duration,
    dir: &Path,
    progress: &Progress,
) -> Outcome {
    let mut out = Outcome::default();
    let who = format!("{}/{}", job.namespace, job.pod);
    for (container, restarts) in &job.containers {
        let passes: &[bool] = if *restarts > 0 {
            &[false, true]
        } else {
            &[false]
        };
        for &previous in passes {
            let path = match writer::log_path(dir, &job.namespace, &job.pod, container, previous) {
                Ok(p) => p,
                Err(e) => {
                    out.problems.push(PodProblem::Other(e));
                    continue;
                }
            };
            let res = stream_log(
                kube,
                &job.namespace,
                &job.pod,
                container,
                previous,
                window,
                &path,
                progress,
            )
            .await;
            let log = format!(
                "the {container} log{} of pod {who}",
                if previous {
                    " of the previous container"
                } else {
                    ""
                }
            );
            match res {
                Ok(0) => {}
                Ok(n) => {
                    out.logs += 1;
                    out.bytes += n;
                }
                Err(LogError::Call(CallError::Forbidden(_))) => {
                    out.problems.push(PodProblem::Forbidden {
                        verb: "get",
                        resource: "pods/log",
                        ns: job.namespace.clone(),
                        what: format!("the logs of pod {} were not collected", job.pod),
                    });
                    // The same answer for every container of this pod.
                    return out;
                }
                Err(LogError::Call(CallError::NotFound(_))) => {
                    out.problems.push(PodProblem::Other(format!(
                        "pod {who} disappeared during collection (404): its {container} log{} was not collected",
                        if previous { " of the previous container" } else { "" }
                    )));
                    return out;
                }
                Err(LogError::Call(e @ (CallError::TimedOut(_) | CallError::TooLarge { .. }))) => {
                    out.problems.push(PodProblem::Cut(
                        e,
                        format!("{log} was not collected; what was collected until then is kept"),
                    ))
                }
                Err(LogError::Call(e)) if previous => out
                    .notes
                    .push(format!("{who}: no previous {container} log ({e})")),
                Err(LogError::Call(e)) => out.problems.push(PodProblem::Other(format!(
                    "{who}: {container} log not collected: {e}"
                ))),
                Err(LogError::Cut { bytes, error }) => {
                    out.logs += 1;
                    out.bytes += bytes;
                    out.problems.push(PodProblem::Other(format!(
                        "{who}: {container} log cut after {bytes} bytes: {error} (the part read is in the bundle)"
                    )));
                }
                Err(LogError::Bound { bytes, error }) => {
                    out.logs += usize::from(bytes > 0);
                    out.bytes += bytes;
                    out.problems.push(PodProblem::Cut(
                        error,
                        format!("the {} read of {log} are kept", bounds::bytes(bytes)),
                    ));
                }
                Err(LogError::Full { bytes, bundle }) => {
                    out.logs += usize::from(bytes > 0);
                    out.bytes += bytes;
                    out.problems.push(PodProblem::Other(if bundle {
                        format!(
                            "the logs and config dumps reached {} in all, so {log} was cut after {} (what was read is kept); narrow with --since, -n or --pod",
                            bounds::bytes(bounds::MAX_BUNDLE_BYTES),
                            bounds::bytes(bytes)
                        )
                    } else {
                        format!(
                            "{log} reached {} and was cut there (the first {} are kept); narrow with --since or --since-time",
                            bounds::bytes(bounds::MAX_LOG_BYTES),
                            bounds::bytes(bytes)
                        )
                    }));
                }
                Err(LogError::Write {
                    bytes: 0,
                    error,
                    fix,
                }) => out.problems.push(PodProblem::Other(format!(
                    "{log}: {error}{}",
                    fix.map(|f| format!("; {f}")).unwrap_or_default()
                ))),
                Err(LogError::Write { bytes, error, fix }) => {
                    out.logs += 1;
                    out.bytes += bytes;
                    out.problems.push(PodProblem::Other(format!(
                        "{log} past its first {}: {error}; the part written is in the bundle{}",
                        bounds::bytes(bytes),
                        fix.map(|f| format!("; {f}")).unwrap_or_default()
                    )));
                }
            }
        }
    }
    if job.config_dump {
        match envoy::config_dump(kube, &job.namespace, &job.pod, dir, dump_timeout, progress).await
        {
            Ok(n) => {
                out.config_dumps += 1;
                out.bytes += n;
            }
            Err(mut ps) => out.problems.append(&mut ps),
        }
    }
    out
}

pub(crate) enum LogError {
    /// The request failed: nothing was written.
    Call(CallError),
    /// The stream broke after `bytes`.
    Cut { bytes: u64, error: String },
    /// A time bound cut the stream after `bytes`.
    Bound { bytes: u64, error: CallError },
    /// The log reached [`bounds::MAX_LOG_BYTES`] (or, `bundle`, the bundle's budget).
    Full { bytes: u64, bundle: bool },
    /// The file could not be written past `bytes`: the file and the reason, and what to do
    /// when the disk is full.
    Write {
        bytes: u64,
        error: String,
        fix: Option<&'static str>,
    },
}

fn params(container: &str, previous: bool, window: &Window) -> LogParams {
    LogParams {
        container: Some(container.to_string()),
        previous,
        since_seconds: match (window.since, window.since_time) {
            (Some(d), None) => Some(d.as_secs().max(1) as i64),
            _ => None,
        },
        since_time: window.since_time,
        timestamps: window.until.is_some(),
        ..LogParams::default()
    }
}

/// Stream one log into `path`, within the bounds. Returns the bytes written.
#[allow(clippy::too_many_arguments)]
async fn stream_log(
    kube: &Kube,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
    window: &Window,
    path: &Path,
    progress: &Progress,
) -> Result<u64, LogError> {
    let lp = params(container, previous, window);
    let req = kube::core::Request::new(format!("/api/v1/namespaces/{ns}/pods"))
        .logs(pod, &lp)
        .map_err(|e| LogError::Call(CallError::Other(e.to_string())))?;
    let call = describe(&req);
    let _turn = kube.permit(&call).await.map_err(LogError::Call)?;
    let mut body = kube.send(req, &call).await.map_err(LogError::Call)?;
    // The file is created at the first byte: a container that logged nothing leaves no file.
    let mut sink = Sink {
        path,
        file: None,
        written: 0,
    };
    let mut until = window.until.map(UntilFilter::new);
    loop {
        let frame = match kube.clock.read(&call, body.frame()).await {
            Err(t) => {
                return Err(sink
                    .end(|bytes| LogError::Bound {
                        bytes,
                        error: CallError::TimedOut(t),
                    })
                    .await);
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let error = e.to_string();
                return Err(sink.end(|bytes| LogError::Cut { bytes, error }).await);
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let (keep, done) = match until.as_mut() {
            None => (data.to_vec(), false),
            Some(f) => f.push(&data),
        };
        sink.write(kube, &keep).await?;
        progress.add_bytes(keep.len() as u64);
        if done {
            break;
        }
    }
    if let Some(f) = until.as_mut() {
        let rest = f.finish();
        sink.write(kube, &rest).await?;
    }
    sink.finish().await
}

/// `--until`: lines come as `<RFC 3339 time> <line>`; keep each line without its time, stop at
/// the first later line. Only the start of a line (up to its first space, at most 40 bytes) is
/// held.
struct UntilFilter {
    until: jiff::Timestamp,
    /// The start of the current line, until its time is known.
    head: Vec<u8>,
    /// Inside a line whose time is known.
    in_body: bool,
    done: bool,
}

impl UntilFilter {
    fn new(until: jiff::Timestamp) -> UntilFilter {
        UntilFilter {
            until,
            head: Vec::with_capacity(48),
            in_body: false,
            done: false,
        }
    }

    /// Decide on the held line start: `false` when the line is past `until`.
    fn settle(&mut self, out: &mut Vec<u8>) -> bool {
        let (ts, rest) = split_timestamp(&self.head);
        if ts.is_some_and(|t| t > self.until) {
            self.done = true;
            self.head.clear();
            return false;
        }
        out.extend_from_slice(rest);
        self.head.clear();
        self.in_body = true;
        true
    }

    /// The bytes to keep of `data`, and whether the stream can be closed.
    fn push(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() && !self.done {
            if self.in_body {
                match memchr_nl(&data[i..]) {
                    Some(j) => {
                        out.extend_from_slice(&data[i..=i + j]);
                        i += j + 1;
                        self.in_body = false;
                    }
                    None => {
                        out.extend_from_slice(&data[i..]);
                        i = data.len();
                    }
                }
                continue;
            }
            let b = data[i];
            self.head.push(b);
            i += 1;
            if b == b'\n' {
                if self.settle(&mut out) {
                    self.in_body = false;
                }
            } else if b == b' ' || self.head.len() >= 40 {
                self.settle(&mut out);
            }
        }
        (out, self.done)
    }

    /// What is held when the stream ends.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.done && !self.head.is_empty() {
            self.settle(&mut out);
        }
        out
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

/// A log file opened on first write (0600, in 0700 folders), at most
/// [`bounds::MAX_LOG_BYTES`], drawing on the bundle's byte budget.
struct Sink<'a> {
    path: &'a Path,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    written: u64,
}

impl Sink<'_> {
    fn err(&self, e: std::io::Error) -> LogError {
        LogError::Write {
            bytes: self.written,
            error: format!("{}: {e}", self.path.display()),
            fix: super::writer::full_disk_fix(&e),
        }
    }

    async fn write(&mut self, kube: &Kube, data: &[u8]) -> Result<(), LogError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let f = private::create_file(self.path).map_err(|e| self.err(e))?;
            self.file = Some(tokio::io::BufWriter::new(tokio::fs::File::from_std(f)));
        }
        let room = bounds::MAX_LOG_BYTES.saturating_sub(self.written);
        let want = (data.len() as u64).min(room);
        let granted = kube.disk.take(want);
        let n = granted as usize;
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.write_all(&data[..n]).await
        {
            return Err(self.err(e));
        }
        self.written += granted;
        if n < data.len() {
            self.flush().await?;
            return Err(LogError::Full {
                bytes: self.written,
                bundle: granted < want,
            });
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), LogError> {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush().await
        {
            return Err(self.err(e));
        }
        Ok(())
    }

    /// Keep what was written; the error built from its size.
    async fn end(mut self, error: impl FnOnce(u64) -> LogError) -> LogError {
        if let Err(w) = self.flush().await {
            return w;
        }
        error(self.written)
    }

    async fn finish(mut self) -> Result<u64, LogError> {
        self.flush().await?;
        Ok(self.written)
    }
}

/// Split `kubectl logs --timestamps`' prefix off a line.
fn split_timestamp(line: &[u8]) -> (Option<jiff::Timestamp>, &[u8]) {
    let Some(sp) = line.iter().take(40).position(|b| *b == b' ') else {
        return (None, line);
    };
    match std::str::from_utf8(&line[..sp])
        .ok()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    {
        Some(t) => (Some(t), &line[sp + 1..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_prefix_is_split_or_kept() {
        let (t, rest) =
            split_timestamp(b"2024-06-03T09:12:31.402123456Z [2024-06-03T09:12:31.402Z] \"GET\"\n");
        assert!(t.is_some());
        assert_eq!(rest, b"[2024-06-03T09:12:31.402Z] \"GET\"\n");
        let (t, rest) = split_timestamp(b"no time here\n");
        assert!(t.is_none());
        assert_eq!(rest, b"no time here\n");
    }

    #[test]
    fn until_filter_streams_lines_in_any_chunking() {
        let until: jiff::Timestamp = "2024-06-03T09:12:32Z".parse().unwrap();
        let text = b"2024-06-03T09:12:31.1Z a b c\n2024-06-03T09:12:31.9Z no-space-line\nbare\n2024-06-03T09:12:33Z late\n2024-06-03T09:12:31Z after\n";
        for chunk in [1usize, 2, 7, 4096] {
            let mut f = UntilFilter::new(until);
            let mut out = Vec::new();
            let mut done = false;
            for c in text.chunks(chunk) {
                let (k, d) = f.push(c);
                out.extend(k);
                if d {
                    done = true;
                    break;
                }
            }
            out.extend(f.finish());
            assert!(done, "chunk {chunk}");
            assert_eq!(
                String::from_utf8_lossy(&out),
                "a b c\nno-space-line\nbare\n",
                "chunk {chunk}"
            );
        }
        // A line without a newline is passed through without being held.
        let mut f = UntilFilter::new(until);
        let (k, _) = f.push(&[b'x'; 100_000]);
        assert_eq!(k.len() + f.head.len(), 100_000);
        assert!(f.head.len() <= 40);
    }

    #[test]
    fn since_time_wins_over_since() {
        let w = Window {
            since: Some(Duration::from_secs(900)),
            since_time: Some(
                "2024-06-03T09:00:00Z"
                    .parse()
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            ),
            until: None,
        };
        let p = params("istio-proxy", false, &w);
        assert!(p.since_seconds.is_none());
        assert!(p.since_time.is_some());
        assert!(!p.timestamps);
    }
}
