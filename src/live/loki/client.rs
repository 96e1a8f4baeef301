//! The HTTP client of the log-store source: kube-rs's client (hyper + rustls, already the
//! project's) pointed at the Loki URL instead of the API server, so TLS, a CA bundle in PEM and
//! a base path (`/api/logs/v1/<tenant>`) are handled as for the cluster. The bearer token goes
//! in a header marked sensitive and is never part of anything shown. Every call is bounded in
//! time (`--request-timeout`, `--deadline`) and bytes ([`LOKI_MAX_RESPONSE_BYTES`]).

use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use kube::config::{Cluster, Context, KubeConfigOptions, Kubeconfig, NamedCluster, NamedContext};
use secrecy::ExposeSecret;

use super::super::bounds::{self, Clock, LOKI_MAX_RESPONSE_BYTES, MAX_ERROR_BYTES};
use super::query;

/// Where the token and the CA come from.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// `--loki-token-file`.
    pub token_file: Option<PathBuf>,
    /// `--loki-ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--loki-org-id`.
    pub org_id: Option<String>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
}

/// A failure of one call, as one sentence.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// An HTTP error answer (already a sentence).
    #[error("{sentence}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The sentence.
        sentence: String,
    },
    /// TLS verification failed.
    #[error("{0}")]
    Tls(String),
    /// Could not connect.
    #[error("{0}")]
    Unreachable(String),
    /// Timed out.
    #[error("{0}")]
    TimedOut(String),
    /// The answer was not Loki's.
    #[error("{0}")]
    Answer(String),
    /// The answer was larger than the bound.
    #[error("{0}")]
    TooLarge(String),
}

impl CallError {
    /// Stops every later query to this Loki (nothing more can be expected from it).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            CallError::Tls(_)
                | CallError::Unreachable(_)
                | CallError::Status {
                    status: 401 | 403 | 404,
                    ..
                }
        )
    }
}

/// One Loki: its client and how it is shown.
pub struct Loki {
    client: kube::Client,
    /// The URL as given, for messages (it holds no secret).
    pub url: String,
    /// Where the token came from (`--loki-token-file`, the kubeconfig), for `-v`.
    pub token_from: Option<&'static str>,
    /// The CA used, for messages.
    pub ca_from: &'static str,
    /// `X-Scope-OrgID`.
    pub org_id: Option<String>,
    clock: Clock,
}

/// The kubeconfig's bearer token and CA (when there is a kubeconfig).
async fn from_kubeconfig(auth: &Auth) -> Option<kube::Config> {
    let kopts = KubeConfigOptions {
        context: auth.context.clone(),
        cluster: None,
        user: None,
    };
    match &auth.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).ok()?;
            kube::Config::from_custom_kubeconfig(kc, &kopts).await.ok()
        }
        None if auth.context.is_some() => kube::Config::from_kubeconfig(&kopts).await.ok(),
        None => kube::Config::infer().await.ok(),
    }
}

/// Read a small secret file (a token), bounded.
fn read_token(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let mut s = String::new();
    let f = std::fs::File::open(path)
        .map_err(|e| format!("cannot read --loki-token-file {}: {e}", path.display()))?;
    f.take(64 << 10)
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read --loki-token-file {}: {e}", path.display()))?;
    let t = s.trim().to_string();
    if t.is_empty() {
        return Err(format!(
            "--loki-token-file {} is empty; write the token in it (on OpenShift: `oc whoami -t`)",
            path.display()
        ));
    }
    Ok(t)
}

/// The DER certificates of a PEM CA file, read by kube-rs as a kubeconfig's
/// `certificate-authority` would be.
async fn ca_from_file(url: &str, path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let kc = Kubeconfig {
        clusters: vec![NamedCluster {
            name: "loki".into(),
            cluster: Some(Cluster {
                server: Some(url.to_string()),
                certificate_authority: Some(path.display().to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        contexts: vec![NamedContext {
            name: "loki".into(),
            context: Some(Context {
                cluster: "loki".into(),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some("loki".into()),
        ..Kubeconfig::default()
    };
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("cannot read --loki-ca-file {}: {e}", path.display()))?;
    match cfg.root_cert {
        Some(c) if !c.is_empty() => Ok(c),
        _ => Err(format!(
            "--loki-ca-file {} holds no PEM certificate",
            path.display()
        )),
    }
}

/// How to reach one Loki; `system_roots`: use the system's trust store even when the kubeconfig
/// has a CA (tried first: a LokiStack gateway's route is usually signed by the ingress CA, not
/// the API server's).
pub struct Plan {
    url: String,
    uri: http::Uri,
    token: Option<(String, &'static str)>,
    ca_file: Option<Vec<Vec<u8>>>,
    cluster_ca: Option<Vec<Vec<u8>>>,
    org_id: Option<String>,
}

impl Plan {
    /// Read the credentials for `url`. The kubeconfig's token is only sent over HTTPS.
    pub async fn new(url: &str, auth: &Auth) -> Result<Plan, String> {
        let trimmed = url.trim_end_matches('/');
        let uri: http::Uri = trimmed.parse().map_err(|e| {
            format!("--loki {url:?} is not a URL ({e}); give e.g. http://loki:3100 or https://<gateway>/api/logs/v1/application")
        })?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => {
                return Err(format!(
                    "--loki {url:?} must start with http:// or https://"
                ));
            }
        }
        if uri.query().is_some() {
            return Err(format!(
                "--loki {url:?} must not hold a query string: give the base URL only"
            ));
        }
        let https = uri.scheme_str() == Some("https");
        let kcfg = from_kubeconfig(auth).await;
        let token = match &auth.token_file {
            Some(p) => Some((read_token(p)?, "--loki-token-file")),
            None if https => kcfg.as_ref().and_then(|c| {
                let t = c
                    .auth_info
                    .token
                    .as_ref()
                    .map(|t| t.expose_secret().to_string())
                    .or_else(|| {
                        c.auth_info
                            .token_file
                            .as_ref()
                            .and_then(|f| read_token(Path::new(f)).ok())
                    })?;
                Some((t, "the kubeconfig"))
            }),
            None => None,
        };
        let ca_file = match &auth.ca_file {
            Some(p) => Some(ca_from_file(trimmed, p).await?),
            None => None,
        };
        Ok(Plan {
            url: trimmed.to_string(),
            uri,
            token,
            ca_file,
            cluster_ca: kcfg.and_then(|c| c.root_cert),
            org_id: auth.org_id.clone(),
        })
    }

    /// Whether a second try with the cluster's CA is possible.
    pub fn has_cluster_ca(&self) -> bool {
        self.ca_file.is_none() && self.cluster_ca.is_some()
    }

    /// A client: the `--loki-ca-file`, else (first) the system trust store, else the cluster CA.
    pub(crate) fn client(
        &self,
        cluster_ca: bool,
        connect_timeout: std::time::Duration,
        clock: Clock,
    ) -> Result<Loki, String> {
        let mut cfg = kube::Config::new(self.uri.clone());
        cfg.connect_timeout = Some(connect_timeout);
        cfg.read_timeout = None;
        cfg.default_retry = false;
        cfg.default_namespace = String::new();
        let ca_from = if let Some(c) = &self.ca_file {
            cfg.root_cert = Some(c.clone());
            "--loki-ca-file"
        } else if cluster_ca && let Some(c) = &self.cluster_ca {
            cfg.root_cert = Some(c.clone());
            "the kubeconfig's cluster CA"
        } else {
            "the system's trusted CAs"
        };
        if let Some((t, _)) = &self.token {
            let mut v = http::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                "the Loki token holds characters a header cannot carry; check the token file"
                    .to_string()
            })?;
            v.set_sensitive(true);
            cfg.headers.push((http::header::AUTHORIZATION, v));
        }
        if let Some(o) = &self.org_id {
            let v = http::HeaderValue::from_str(o)
                .map_err(|_| format!("--loki-org-id {o:?} cannot be sent as a header"))?;
            cfg.headers
                .push((http::HeaderName::from_static("x-scope-orgid"), v));
        }
        let client = kube::Client::try_from(cfg)
            .map_err(|e| format!("cannot set up the client for Loki at {}: {e}", self.url))?;
        Ok(Loki {
            client,
            url: self.url.clone(),
            token_from: self.token.as_ref().map(|(_, f)| *f),
            ca_from,
            org_id: self.org_id.clone(),
            clock,
        })
    }
}

/// Every message of an error and its causes, joined.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    let mut n = 0;
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
        n += 1;
        if n > 8 {
            break;
        }
    }
    parts.join(": ")
}

impl Loki {
    /// `GET <url><path_and_query>`; the body of a 2xx answer, or the error as a sentence.
    pub async fn get(&self, path_and_query: &str) -> Result<Vec<u8>, CallError> {
        let shown = format!("GET {}{}", self.url, short_path(path_and_query));
        let req = http::Request::get(path_and_query)
            .header(http::header::ACCEPT, "application/json")
            .body(kube::client::Body::empty())
            .map_err(|e| CallError::Answer(format!("cannot build the request {shown}: {e}")))?;
        let res = self
            .clock
            .call(&shown, self.client.send(req))
            .await
            .map_err(|t| CallError::TimedOut(timeout_sentence(&t, &self.url)))?;
        let res = res.map_err(|e| self.transport(&e))?;
        let status = res.status().as_u16();
        let limit = if (200..300).contains(&status) {
            LOKI_MAX_RESPONSE_BYTES
        } else {
            MAX_ERROR_BYTES
        };
        let mut body = res.into_body();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let frame = self
                .clock
                .read(&shown, body.frame())
                .await
                .map_err(|t| CallError::TimedOut(timeout_sentence(&t, &self.url)))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| self.transport(&e))?;
            if let Some(d) = frame.data_ref() {
                if buf.len() as u64 + d.len() as u64 > limit {
                    if !(200..300).contains(&status) {
                        break;
                    }
                    return Err(CallError::TooLarge(format!(
                        "one answer of Loki at {} was larger than {}; it was not read (narrow the time range with --since/--until, or the query with -n)",
                        self.url,
                        bounds::bytes(limit)
                    )));
                }
                buf.extend_from_slice(d);
            }
        }
        if (200..300).contains(&status) {
            Ok(buf)
        } else {
            let text = String::from_utf8_lossy(&buf);
            Err(CallError::Status {
                status,
                sentence: query::status_sentence(status, &text, &self.url),
            })
        }
    }

    fn transport(&self, e: &kube::Error) -> CallError {
        let msg = chain(e);
        let lower = msg.to_ascii_lowercase();
        if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
            || lower.contains("unknownissuer")
            || lower.contains("corrupt message")
            || lower.contains("fatal alert")
        {
            CallError::Tls(format!(
                "the TLS connection to Loki at {} failed ({msg}); give the CA that signed Loki's certificate with --loki-ca-file (on OpenShift the router's CA: `oc get cm default-ingress-cert -n openshift-config-managed -o jsonpath='{{.data.ca-bundle\\.crt}}' > ca.crt`)",
                self.url
            ))
        } else {
            CallError::Unreachable(format!(
                "cannot reach Loki at {} ({msg}); check the URL and that this machine can reach it (e.g. `oc port-forward` or the gateway's route)",
                self.url
            ))
        }
    }
}

fn timeout_sentence(t: &bounds::TimedOut, url: &str) -> String {
    match t.bound {
        bounds::Bound::Request(d) => format!(
            "Loki at {url} did not answer within {} (--request-timeout); raise --request-timeout or narrow the time range with --since/--until",
            bounds::human(d)
        ),
        bounds::Bound::Deadline(d) => format!(
            "the deadline ({}) passed while reading Loki at {url}; raise --deadline or narrow the time range",
            bounds::human(d)
        ),
    }
}

/// A request path for messages: the query decoded so it reads as LogQL.
pub fn short_path(p: &str) -> String {
    let Some((path, q)) = p.split_once('?') else {
        return p.to_string();
    };
    let mut out = Vec::new();
    for kv in q.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        out.push(format!("{k}={}", decode(v)));
    }
    format!("{path}?{}", out.join("&"))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(h) = std::str::from_utf8(&b[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shown_decoded() {
        let p = query::query_range_path("{a=\"b\"} |= `x`", 1, 2, 10);
        assert_eq!(
            short_path(&p),
            "/loki/api/v1/query_range?query={a=\"b\"} |= `x`&start=1&end=2&limit=10&direction=forward"
        );
        assert_eq!(decode("%7"), "%7");
    }

    #[tokio::test]
    async fn the_kubeconfig_token_is_not_sent_over_plain_http() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("kc");
        std::fs::write(
            &kc,
            "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://api:6443'}}]\nusers: [{name: u, user: {token: sha256~secret}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
        )
        .unwrap();
        let auth = Auth {
            kubeconfig: Some(kc),
            ..Auth::default()
        };
        let p = Plan::new("http://loki:3100", &auth).await.unwrap();
        assert!(p.token.is_none());
        let p = Plan::new("https://gw/api/logs/v1/application", &auth)
            .await
            .unwrap();
        assert_eq!(p.token.as_ref().map(|t| t.1), Some("the kubeconfig"));
        assert!(Plan::new("loki:3100", &auth).await.is_err());
        assert!(Plan::new("http://loki:3100?x=1", &auth).await.is_err());
    }
}
