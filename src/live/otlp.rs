//! `trace --otlp-endpoint URL`: post an OTLP/JSON `ExportTraceServiceRequest` to an OTLP/HTTP
//! receiver (Jaeger, Tempo, an OpenTelemetry collector), as the OTLP specification's OTLP/HTTP
//! transport says: `POST <base>/v1/traces` (or the URL itself when it already ends in
//! `/v1/traces`), `Content-Type: application/json`. Plain HTTP; the whole exchange is bounded by
//! a timeout and the answer read is capped ([`bounds::OTLP_MAX_RESPONSE_BYTES`]).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::bounds;

/// Why a trace could not be posted: each is one sentence for the user.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The URL cannot be used.
    #[error(
        "--otlp-endpoint {url:?} {why}; give the receiver's OTLP/HTTP address, e.g. http://localhost:4318 or http://tempo.monitoring:4318/v1/traces"
    )]
    BadUrl {
        /// As given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Nothing answered.
    #[error(
        "cannot reach the OTLP receiver at {url}: {why}; check the address and that the receiver listens for OTLP/HTTP (port 4318 by default; `kubectl port-forward` to it if it runs in the cluster)"
    )]
    Unreachable {
        /// Where it was posted.
        url: String,
        /// The connection error.
        why: String,
    },
    /// No answer in time.
    #[error(
        "the OTLP receiver at {url} did not answer within {secs} s; check that it is an OTLP/HTTP receiver, or allow longer with --otlp-timeout"
    )]
    TimedOut {
        /// Where it was posted.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// A 4xx.
    #[error(
        "the OTLP receiver at {url} refused the trace with HTTP {status}{text}; check that the URL is its OTLP/HTTP traces endpoint (…/v1/traces) and that it accepts JSON"
    )]
    Refused {
        /// Where it was posted.
        url: String,
        /// Status line.
        status: String,
        /// `: <what it said>` (capped), or empty.
        text: String,
    },
    /// A 5xx (or another non-success status).
    #[error(
        "the OTLP receiver at {url} failed with HTTP {status}{text}; try again, or check the receiver's own logs"
    )]
    Failed {
        /// Where it was posted.
        url: String,
        /// Status line.
        status: String,
        /// `: <what it said>` (capped), or empty.
        text: String,
    },
    /// The local runtime could not start.
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
}

/// What the receiver said when it accepted the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The URL posted to.
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// A partial success: spans the receiver rejected and why (OTLP's `partialSuccess`).
    pub rejected: Option<(u64, String)>,
}

/// The URL a trace is posted to: `<endpoint>/v1/traces`, or the endpoint itself when it already
/// ends in `/v1/traces`. Returns (authority, path, full URL).
pub fn traces_url(endpoint: &str) -> Result<(String, u16, String, String), OtlpError> {
    let bad = |why| OtlpError::BadUrl {
        url: endpoint.to_string(),
        why,
    };
    let uri: http::Uri = endpoint.trim().parse().map_err(|_| bad("is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "uses https, which meshtrace does not send to (plain OTLP/HTTP only): post to a collector's or a port-forward's http:// address",
            ));
        }
        _ => return Err(bad("does not start with http://")),
    }
    let host = uri.host().ok_or_else(|| bad("has no host"))?.to_string();
    if uri.query().is_some() {
        return Err(bad("has a query string, which OTLP/HTTP does not use"));
    }
    let port = uri.port_u16().unwrap_or(80);
    let base = uri.path().trim_end_matches('/');
    let path = if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    };
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_else(|| host.clone());
    let url = format!("http://{authority}{path}");
    Ok((host, port, path, url))
}

/// Post `body` (OTLP/JSON) to the receiver at `endpoint`, within `timeout` in all.
pub fn post(endpoint: &str, body: Vec<u8>, timeout: Duration) -> Result<Posted, OtlpError> {
    let (host, port, path, url) = traces_url(endpoint)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OtlpError::Runtime)?;
    let timeout = timeout.max(Duration::from_millis(100));
    rt.block_on(async {
        match tokio::time::timeout(timeout, send(&host, port, &path, &url, body)).await {
            Ok(r) => r,
            Err(_) => Err(OtlpError::TimedOut {
                url: url.clone(),
                secs: timeout.as_secs().max(1),
            }),
        }
    })
}

async fn send(
    host: &str,
    port: u16,
    path: &str,
    url: &str,
    body: Vec<u8>,
) -> Result<Posted, OtlpError> {
    let unreachable = |why: String| OtlpError::Unreachable {
        url: url.to_string(),
        why,
    };
    let addr_host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((addr_host, port))
        .await
        .map_err(|e| unreachable(io_reason(&e)))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let host_header = if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let len = body.len();
    let req = http::Request::post(path)
        .header(http::header::HOST, host_header)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, len)
        .header(
            http::header::USER_AGENT,
            concat!("meshtrace/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| unreachable(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(format!("the connection closed: {e}")))?;
    let status = resp.status();
    // Read at most the cap of the answer.
    let mut text: Vec<u8> = Vec::new();
    let mut body = resp.into_body();
    while text.len() < bounds::OTLP_MAX_RESPONSE_BYTES {
        match body.frame().await {
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    let room = bounds::OTLP_MAX_RESPONSE_BYTES - text.len();
                    text.extend_from_slice(&d[..d.len().min(room)]);
                }
            }
            _ => break,
        }
    }
    driver.abort();
    let said = excerpt(&text);
    let status_line = format!(
        "{}{}",
        status.as_u16(),
        status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default()
    );
    if status.is_success() {
        return Ok(Posted {
            url: url.to_string(),
            status: status.as_u16(),
            rejected: partial_success(&text),
        });
    }
    let text = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    if status.is_client_error() {
        Err(OtlpError::Refused {
            url: url.to_string(),
            status: status_line,
            text,
        })
    } else {
        Err(OtlpError::Failed {
            url: url.to_string(),
            status: status_line,
            text,
        })
    }
}

/// OTLP's `partialSuccess` in a JSON answer: rejected spans and the receiver's message.
fn partial_success(body: &[u8]) -> Option<(u64, String)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        partial_success: Option<Partial>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Partial {
        #[serde(default)]
        rejected_spans: Option<Count>,
        #[serde(default)]
        error_message: Option<String>,
    }
    /// An int64: a decimal string in OTLP/JSON, a number from lenient receivers.
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(u64),
        Text(String),
    }
    let a: Answer = serde_json::from_slice(body).ok()?;
    let p = a.partial_success?;
    let n = match p.rejected_spans {
        Some(Count::Number(n)) => n,
        Some(Count::Text(t)) => t.trim().parse().unwrap_or(0),
        None => 0,
    };
    let msg = p.error_message.unwrap_or_default();
    (n > 0 || !msg.is_empty()).then(|| (n, excerpt(msg.as_bytes())))
}

/// The start of what a receiver said, on one line (at most 200 characters).
fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one.chars().take(200).collect();
    if one.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// An I/O error's reason without Rust's `(os error N)` suffix.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (h, p, path, url) = traces_url("http://localhost:4318").unwrap();
        assert_eq!(
            (h.as_str(), p, path.as_str(), url.as_str()),
            (
                "localhost",
                4318,
                "/v1/traces",
                "http://localhost:4318/v1/traces"
            )
        );
        let (_, p, path, _) = traces_url("http://tempo:4318/v1/traces").unwrap();
        assert_eq!((p, path.as_str()), (4318, "/v1/traces"));
        let (_, p, path, _) = traces_url("http://gw/otlp/").unwrap();
        assert_eq!((p, path.as_str()), (80, "/otlp/v1/traces"));
        assert!(traces_url("https://tempo:4318").is_err());
        assert!(traces_url("tempo:4318").is_err());
        assert!(traces_url("http://tempo:4318/?x=1").is_err());
    }

    #[test]
    fn partial() {
        assert_eq!(
            partial_success(br#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad"}}"#),
            Some((2, "bad".to_string()))
        );
        assert_eq!(
            partial_success(br#"{"partialSuccess":{"rejectedSpans":2}}"#),
            Some((2, String::new()))
        );
        assert_eq!(partial_success(b"{}"), None);
        assert_eq!(partial_success(br#"{"partialSuccess":{}}"#), None);
    }
}
