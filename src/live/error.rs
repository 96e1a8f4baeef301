//! Typed errors of live collection, and the one-sentence wording of a forbidden answer.

use std::path::PathBuf;

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
    #[error("cannot write {path}: {source}")]
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
    format!(
        "forbidden: you may not {verb} {resource} {scope} (403 from the API server), so {consequence}; docs/rbac.yaml lists the permissions meshtrace needs"
    )
}

/// What an API call answered, reduced to what collection decides on.
#[derive(Debug)]
pub(crate) enum CallError {
    /// 403.
    Forbidden(String),
    /// 404 (object or API gone).
    NotFound(String),
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
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Forbidden(m) => write!(f, "forbidden: {m}"),
            CallError::NotFound(m) => write!(f, "not found: {m}"),
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
    }
}
