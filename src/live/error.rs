//! Typed errors of live collection, and the one-sentence wording of a forbidden answer, a
//! timeout and an answer too large.

use std::path::PathBuf;

use super::bounds::{self, TimedOut};

/// A failure that stops a live collection (anything else becomes a `problem` and collection goes on).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No usable kubeconfig / in-cluster configuration.
    #[error("cannot load the Kubernetes configuration{}: {message}", context.as_deref().map(|c| format!(" (context {c})")).unwrap_or_default())]
    Config {
        /// The `--context` asked for.
        context: Option<String>,
        /// What went wrong.
        message: String,
    },
    /// The API server did not answer.
    #[error("cannot reach the Kubernetes API server at {url} ({cluster}): {message}")]
    Unreachable {
        /// The server URL.
        url: String,
        /// Context / cluster description.
        cluster: String,
        /// What went wrong.
        message: String,
    },
    /// The API server refused the credentials.
    #[error("the Kubernetes API server at {url} refused the credentials of {cluster}: {message}")]
    Unauthorized {
        /// The server URL.
        url: String,
        /// Context / cluster description.
        cluster: String,
        /// The server's message.
        message: String,
    },
    /// Nothing could be listed at all (no pods visible).
    #[error("{0}")]
    Nothing(String),
    /// Writing the bundle failed.
    #[error("cannot write {}", super::writer::write_failure(path, source))]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl LiveError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LiveError {
        LiveError::Io {
            path: path.into(),
            source,
        }
    }
}

/// One sentence for a 403: which verb on which resource in which namespace is missing, and what
/// was therefore not collected.
pub fn forbidden_sentence(
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
    consequence: &str,
) -> String {
    let scope = match namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "cluster-wide".to_string(),
    };
    // Config dumps need an opt-in role; everything else is in the read-only set.
    let roles = match resource {
        "pods/portforward" => {
            "deploy/rbac/config-dump.yaml grants it (opt-in), or use --no-config-dump"
        }
        "pods/exec" => {
            "deploy/rbac/config-dump-exec.yaml grants it (opt-in, only where port-forward is not allowed), or use --no-config-dump"
        }
        _ => "docs/rbac.yaml lists the permissions meshtrace needs",
    };
    format!(
        "forbidden: you may not {verb} {resource} {scope} (403 from the API server), so {consequence}; {roles}"
    )
}

/// What an API call answered, reduced to what collection decides on.
#[derive(Debug)]
pub(crate) enum CallError {
    /// 403.
    Forbidden(String),
    /// 404 (object or API gone).
    NotFound(String),
    /// No answer (or no bytes) in time.
    TimedOut(TimedOut),
    /// The answer was larger than meshtrace reads.
    TooLarge {
        /// `GET /api/v1/pods?limit=500`.
        call: String,
        /// The bound, in bytes.
        cap: u64,
    },
    /// Any other answer or transport failure.
    Other(String),
}

impl CallError {
    pub(crate) fn from_kube(e: kube::Error) -> CallError {
        match e {
            kube::Error::Api(s) if s.code == 403 => CallError::Forbidden(s.message),
            kube::Error::Api(s) if s.code == 404 => CallError::NotFound(s.message),
            kube::Error::Api(s) => CallError::Other(format!(
                "{} ({} {})",
                if s.message.is_empty() {
                    "no message"
                } else {
                    s.message.as_str()
                },
                s.code,
                s.reason
            )),
            other => CallError::Other(other.to_string()),
        }
    }

    /// A non-2xx answer: its `Status` body (already cut to a few KiB) when it has one.
    pub(crate) fn from_answer(code: u16, body: &[u8]) -> CallError {
        let status: Option<kube::core::Status> = serde_json::from_slice(body).ok();
        let message = match &status {
            Some(s) if !s.message.is_empty() => s.message.clone(),
            _ => {
                let t = String::from_utf8_lossy(body);
                let t = t.trim();
                if t.is_empty() {
                    "no message".to_string()
                } else {
                    t.chars().take(300).collect()
                }
            }
        };
        match code {
            403 => CallError::Forbidden(message),
            404 => CallError::NotFound(message),
            _ => CallError::Other(format!(
                "{message} ({code}{})",
                status
                    .map(|s| format!(" {}", s.reason))
                    .filter(|r| r.trim() != "")
                    .unwrap_or_default()
            )),
        }
    }
}

/// One sentence for a call cut by a bound: what, what was kept, what to do.
pub(crate) fn cut_sentence(e: &CallError, kept: &str) -> String {
    match e {
        CallError::TimedOut(t) => format!("{t}; {kept}; {}", t.advice()),
        CallError::TooLarge { call, cap } => format!(
            "the answer to `{call}` is larger than {} and was not read further; {kept}; narrow with -n, --pod or -l",
            bounds::bytes(*cap)
        ),
        other => format!("{other}; {kept}"),
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Forbidden(m) => write!(f, "forbidden: {m}"),
            CallError::NotFound(m) => write!(f, "not found: {m}"),
            CallError::TimedOut(t) => write!(f, "{t}"),
            CallError::TooLarge { call, cap } => write!(
                f,
                "the answer to `{call}` is larger than {}",
                bounds::bytes(*cap)
            ),
            CallError::Other(m) => f.write_str(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_is_one_sentence_naming_verb_resource_namespace() {
        let s = forbidden_sentence(
            "get",
            "pods/log",
            Some("aiproject"),
            "the logs of 2 pod(s) there were not collected",
        );
        assert!(s.contains("get pods/log in namespace aiproject"));
        assert_eq!(s.matches(". ").count(), 0);
        let c = forbidden_sentence("list", "pods", None, "x");
        assert!(c.contains("list pods cluster-wide"));
        assert!(c.ends_with("docs/rbac.yaml lists the permissions meshtrace needs"));
        let e = forbidden_sentence("create", "pods/exec", Some("a"), "x");
        assert!(e.contains("deploy/rbac/config-dump-exec.yaml grants it"));
    }
}
