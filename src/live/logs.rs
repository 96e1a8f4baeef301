//! Container logs streamed from `pods/{name}/log` straight into the bundle's files, a chunk (or,
//! with `--until`, a line) at a time: a log never sits in memory. Also drives the config dump.

use std::path::Path;
use std::time::Duration;

use futures::{AsyncBufReadExt, AsyncReadExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::io::AsyncWriteExt;

use super::error::CallError;
use super::kubeapi::Kube;
use super::progress::Progress;
use super::{Problems, Window, envoy, writer};

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
    let api: Api<Pod> = Api::namespaced(kube.client.clone(), &job.namespace);
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
            let res = {
                let _p = kube.permits.acquire().await;
                stream_log(&api, &job.pod, container, previous, window, &path, progress).await
            };
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
                Err(LogError::Write(e)) => out.problems.push(PodProblem::Other(e)),
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
    /// The file could not be written.
    Write(String),
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

/// Stream one log into `path`. Returns the bytes written.
async fn stream_log(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    previous: bool,
    window: &Window,
    path: &Path,
    progress: &Progress,
) -> Result<u64, LogError> {
    let lp = params(container, previous, window);
    let reader = api
        .log_stream(pod, &lp)
        .await
        .map_err(|e| LogError::Call(CallError::from_kube(e)))?;
    let mut reader = Box::pin(reader);
    // The file is created at the first byte: a container that logged nothing leaves no file.
    let mut sink = Sink {
        path,
        file: None,
        written: 0,
    };
    match window.until {
        None => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => return Err(sink.cut(e).await),
                };
                sink.write(&buf[..n]).await?;
                progress.add_bytes(n as u64);
            }
        }
        Some(until) => {
            // Lines come as `<RFC 3339 time> <line>`: keep the line, stop after `until`.
            let mut line = Vec::with_capacity(4096);
            loop {
                line.clear();
                let n = match reader.read_until(b'\n', &mut line).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => return Err(sink.cut(e).await),
                };
                let (ts, rest) = split_timestamp(&line[..n]);
                if ts.is_some_and(|t| t > until) {
                    break;
                }
                sink.write(rest).await?;
                progress.add_bytes(rest.len() as u64);
            }
        }
    }
    sink.finish().await
}

/// A log file opened on first write.
struct Sink<'a> {
    path: &'a Path,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    written: u64,
}

impl Sink<'_> {
    fn err(&self, e: std::io::Error) -> LogError {
        LogError::Write(format!("{}: {e}", self.path.display()))
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), LogError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            if let Some(parent) = self.path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| LogError::Write(format!("{}: {e}", parent.display())))?;
            }
            let f = tokio::fs::File::create(self.path)
                .await
                .map_err(|e| self.err(e))?;
            self.file = Some(tokio::io::BufWriter::new(f));
        }
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.write_all(data).await
        {
            return Err(self.err(e));
        }
        self.written += data.len() as u64;
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

    async fn cut(mut self, e: std::io::Error) -> LogError {
        if let Err(w) = self.flush().await {
            return w;
        }
        LogError::Cut {
            bytes: self.written,
            error: e.to_string(),
        }
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
