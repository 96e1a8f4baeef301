//! A fake Loki / LokiStack gateway speaking the real query_range JSON wire format.
//!
//! Fed from an evidence bundle: every `logs/<ns>/<pod>/<container>.log` becomes one stream, each
//! line stamped with its own time (an access log's `[START_TIME]`, a proxy log's leading RFC 3339
//! time; otherwise the previous line's time). Two shapes:
//! - **LokiStack** (OpenShift Logging 6): answers only under `/api/logs/v1/<tenant>/loki/api/v1/…`,
//!   requires `Authorization: Bearer <token>` (401 otherwise, 404 for another tenant), streams
//!   labelled `kubernetes_namespace_name`/`kubernetes_pod_name`/`kubernetes_container_name`/
//!   `log_type`, and each line wrapped in a ViaQ JSON record (`message`, `kubernetes.{namespace_name,
//!   pod_name,container_name}`, `@timestamp`, `log_type`, `level`).
//! - **Plain** Loki: `/loki/api/v1/…`, labels `namespace`/`pod`/`container`/`job`, lines as they
//!   are, an optional `X-Scope-OrgID` check (401 `no org id` as Loki answers).
//!
//! `query_range` implements what meshtrace sends: a stream selector (`=`, `!=`, `=~`, `!~`),
//! line filters (`|=`, `!=`, `|~`, `!~` with backtick or double-quoted strings), `start`/`end`
//! in nanoseconds (end exclusive), `limit`, `direction`; a selector with no non-empty matcher or
//! anything else unparsable is a 400 with Loki's plain-text `parse error …`. Every request is
//! recorded (path and decoded query) so tests can count and inspect them.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which Loki to pretend to be.
#[derive(Debug, Clone)]
pub enum Shape {
    /// The LokiStack gateway of OpenShift Logging: tenant and bearer token required.
    LokiStack {
        /// `application`.
        tenant: String,
        /// The only token accepted.
        token: String,
    },
    /// Grafana Loki; `org_id`: the `X-Scope-OrgID` required (multi-tenant mode).
    Plain {
        /// Required tenant header.
        org_id: Option<String>,
    },
}

/// How the fake misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every `query_range` answers this status and plain-text body.
    pub query_status: Option<(u16, String)>,
    /// `query_range` sends nothing for this long.
    pub stall: Option<Duration>,
    /// Loki's `max_entries_limit_per_query`: a larger `limit` is a 400, as Loki answers.
    pub max_limit: Option<usize>,
}

/// One stored line.
#[derive(Debug, Clone)]
struct Line {
    labels: BTreeMap<String, String>,
    ts: i128,
    line: String,
}

struct Inner {
    shape: Shape,
    faults: Faults,
    lines: Vec<Line>,
    requests: Mutex<Vec<Recorded>>,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The path (`/api/logs/v1/application/loki/api/v1/query_range`).
    pub path: String,
    /// The decoded `query` parameter (empty for other calls).
    pub query: String,
    /// Every decoded parameter.
    pub params: HashMap<String, String>,
    /// Lines returned.
    pub returned: usize,
    /// The `Authorization` header as sent (to check it was sent, never printed by meshtrace).
    pub authorization: Option<String>,
}

/// A running fake Loki.
pub struct FakeLoki {
    /// `http://127.0.0.1:PORT` (plus `/api/logs/v1/<tenant>` for LokiStack).
    pub url: String,
    state: Arc<Inner>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for FakeLoki {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// `[2024-04-25T20:19:02.116Z] "…` or `2024-04-25T20:11:19.880056Z\tinfo…` → Unix nanoseconds;
/// a zap JSON line (Knative's) by its `timestamp` or `ts` (the time the line was written, as a
/// collector reading the container's CRI log would stamp it).
fn line_time(line: &str) -> Option<i128> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let ts = v.get("timestamp").or_else(|| v.get("ts"))?.as_str()?;
        return Some(ts.parse::<jiff::Timestamp>().ok()?.as_nanosecond());
    }
    let t = line.strip_prefix('[').unwrap_or(line);
    let end = t.find([']', ' ', '\t'])?;
    let ts: jiff::Timestamp = t[..end].parse().ok()?;
    Some(ts.as_nanosecond())
}

impl FakeLoki {
    /// Serve the logs of `bundle` in `shape`.
    pub fn start(bundle: &Path, shape: Shape, faults: Faults) -> FakeLoki {
        let b = meshtrace::source::bundle::Bundle::open(bundle).expect("bundle opens");
        let mut lines = Vec::new();
        for l in &b.logs {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut l.source.open().expect("log"), &mut text)
                .expect("log text");
            let mut last: i128 = 0;
            for raw in text.lines() {
                if raw.trim().is_empty() {
                    continue;
                }
                let ts = line_time(raw).unwrap_or(last);
                last = ts;
                let (labels, stored) = match &shape {
                    Shape::LokiStack { .. } => {
                        let labels = BTreeMap::from([
                            ("kubernetes_namespace_name".to_string(), l.namespace.clone()),
                            ("kubernetes_pod_name".to_string(), l.pod.clone()),
                            ("kubernetes_container_name".to_string(), l.container.clone()),
                            ("log_type".to_string(), "application".to_string()),
                        ]);
                        let at = jiff::Timestamp::from_nanosecond(ts)
                            .map(|t| t.to_string())
                            .unwrap_or_default();
                        let rec = json!({
                            "@timestamp": at,
                            "hostname": "worker-0",
                            "kubernetes": {
                                "container_name": l.container,
                                "namespace_name": l.namespace,
                                "pod_name": l.pod,
                                "labels": {"app": "x"},
                            },
                            "level": "default",
                            "log_type": "application",
                            "message": raw,
                            "openshift": {"cluster_id": "c1", "sequence": 1},
                        });
                        (labels, rec.to_string())
                    }
                    Shape::Plain { .. } => (
                        BTreeMap::from([
                            ("namespace".to_string(), l.namespace.clone()),
                            ("pod".to_string(), l.pod.clone()),
                            ("container".to_string(), l.container.clone()),
                            (
                                "job".to_string(),
                                format!("{}/{}", l.namespace, l.container),
                            ),
                        ]),
                        raw.to_string(),
                    ),
                };
                lines.push(Line {
                    labels,
                    ts,
                    line: stored,
                });
            }
        }
        Self::serve(shape, faults, lines)
    }

    /// Serve `n` lines of one stream, `per_ts` of them sharing each nanosecond (for paging).
    pub fn synthetic(n: usize, per_ts: usize, base_ns: i128) -> FakeLoki {
        let labels = BTreeMap::from([
            ("namespace".to_string(), "ns".to_string()),
            ("pod".to_string(), "gw-1".to_string()),
            ("container".to_string(), "istio-proxy".to_string()),
        ]);
        let lines = (0..n)
            .map(|i| Line {
                labels: labels.clone(),
                ts: base_ns + (i / per_ts.max(1)) as i128,
                line: format!(
                    "[2024-04-25T20:00:00.000Z] \"GET /p{i} HTTP/1.1\" 200 - via_upstream - \"-\" 0 2 1 1 \"-\" \"curl\" \"id-{i}\" \"h\" \"10.0.0.2:80\" outbound|80||h 10.0.0.1:4{i:04} 10.0.0.2:80 10.0.0.1:5{i:04} - default"
                ),
            })
            .collect();
        Self::serve(Shape::Plain { org_id: None }, Faults::default(), lines)
    }

    fn serve(shape: Shape, faults: Faults, lines: Vec<Line>) -> FakeLoki {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let state = Arc::new(Inner {
            shape: shape.clone(),
            faults,
            lines,
            requests: Mutex::new(Vec::new()),
        });
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = match &shape {
            Shape::LokiStack { tenant, .. } => format!("http://{addr}/api/logs/v1/{tenant}"),
            Shape::Plain { .. } => format!("http://{addr}"),
        };
        FakeLoki {
            url,
            state,
            rt: Some(rt),
        }
    }

    /// The server's root (no tenant path).
    pub fn root(&self) -> String {
        match self.url.find("/api/logs/v1/") {
            Some(i) => self.url[..i].to_string(),
            None => self.url.clone(),
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The `query_range` requests so far.
    pub fn queries(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/query_range"))
            .collect()
    }
}

/// Loki's plain-text error answer.
fn text(status: u16, body: impl Into<String>) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn handle(
    State(st): State<Arc<Inner>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let path = req.uri().path().to_string();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut rec = Recorded {
        path: path.clone(),
        query: params.get("query").cloned().unwrap_or_default(),
        params: params.clone(),
        returned: 0,
        authorization: authorization.clone(),
    };
    let api = match &st.shape {
        Shape::LokiStack { tenant, token } => {
            let Some(rest) = path.strip_prefix("/api/logs/v1/") else {
                return record(&st, rec, text(404, "404 page not found\n"));
            };
            let (t, api) = rest.split_once('/').unwrap_or((rest, ""));
            if t != tenant {
                return record(&st, rec, text(404, "404 page not found\n"));
            }
            if authorization.as_deref() != Some(&format!("Bearer {token}")) {
                return record(&st, rec, text(401, "Unauthorized\n"));
            }
            format!("/{api}")
        }
        Shape::Plain { org_id } => {
            if let Some(o) = org_id
                && headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()) != Some(o.as_str())
            {
                return record(&st, rec, text(401, "no org id\n"));
            }
            path.clone()
        }
    };
    match api.as_str() {
        "/loki/api/v1/labels" => {
            let mut names: Vec<String> = st
                .lines
                .iter()
                .flat_map(|l| l.labels.keys().cloned())
                .collect();
            names.sort();
            names.dedup();
            let body = json!({"status": "success", "data": names});
            record(&st, rec, axum::Json(body).into_response())
        }
        "/loki/api/v1/query_range" => {
            if let Some(d) = st.faults.stall {
                tokio::time::sleep(d).await;
            }
            if let Some((s, b)) = &st.faults.query_status {
                return record(&st, rec, text(*s, b.clone()));
            }
            match query_range(&st, &params) {
                Ok((body, n)) => {
                    rec.returned = n;
                    record(&st, rec, axum::Json(body).into_response())
                }
                Err(msg) => record(&st, rec, text(400, msg)),
            }
        }
        _ => record(&st, rec, text(404, "404 page not found\n")),
    }
}

fn record(st: &Inner, rec: Recorded, res: Response) -> Response {
    if let Ok(mut r) = st.requests.lock() {
        r.push(rec);
    }
    res
}

/// A parsed LogQL log query: matchers and line filters.
struct LogQuery {
    matchers: Vec<(String, String, String)>,
    filters: Vec<(String, String)>,
}

fn parse_error(col: usize, what: &str) -> String {
    format!("parse error at line 1, col {col}: syntax error: unexpected {what}")
}

/// A string literal at `s[i..]` (backticks, or double quotes with escapes): (value, next index).
fn literal(s: &str, i: usize) -> Result<(String, usize), String> {
    let b = s.as_bytes();
    match b.get(i) {
        Some(b'`') => {
            let end = s[i + 1..]
                .find('`')
                .ok_or_else(|| parse_error(i + 1, "end of input"))?;
            Ok((s[i + 1..i + 1 + end].to_string(), i + end + 2))
        }
        Some(b'"') => {
            let mut out = String::new();
            let mut j = i + 1;
            let chars: Vec<(usize, char)> = s[j..].char_indices().collect();
            let mut k = 0;
            while k < chars.len() {
                let (off, c) = chars[k];
                match c {
                    '\\' => {
                        let n = chars.get(k + 1).map(|x| x.1).unwrap_or('\\');
                        out.push(match n {
                            'n' => '\n',
                            't' => '\t',
                            c => c,
                        });
                        k += 2;
                    }
                    '"' => {
                        j += off + 1;
                        return Ok((out, j));
                    }
                    c => {
                        out.push(c);
                        k += 1;
                    }
                }
            }
            Err(parse_error(i + 1, "end of input"))
        }
        _ => Err(parse_error(i + 1, "IDENTIFIER, expecting STRING")),
    }
}

fn parse_query(q: &str) -> Result<LogQuery, String> {
    let s = q.trim();
    if !s.starts_with('{') {
        return Err(parse_error(1, "IDENTIFIER"));
    }
    let close = s
        .find('}')
        .ok_or_else(|| parse_error(s.len(), "end of input"))?;
    let mut matchers = Vec::new();
    let inner = &s[1..close];
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() {
            return Err(parse_error(2, "character"));
        }
        let after = rest[name_end..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .iter()
            .find(|o| after.starts_with(**o))
            .ok_or_else(|| {
                parse_error(2 + name_end, "IDENTIFIER, expecting = or != or =~ or !~")
            })?;
        let after = after[op.len()..].trim_start();
        let (v, n) = literal(after, 0)?;
        matchers.push((name.to_string(), op.to_string(), v));
        rest = after[n..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    if matchers.is_empty() {
        return Err(parse_error(2, "}"));
    }
    let nonempty = matchers.iter().any(|(_, op, v)| match op.as_str() {
        "=" => !v.is_empty(),
        "=~" => regex::Regex::new(&format!("^(?:{v})$")).is_ok_and(|r| !r.is_match("")),
        _ => false,
    });
    if !nonempty {
        return Err("parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will".into());
    }
    let mut filters = Vec::new();
    let mut rest = s[close + 1..].trim_start();
    while !rest.is_empty() {
        let op = ["|=", "|~", "!=", "!~"]
            .iter()
            .find(|o| rest.starts_with(**o))
            .ok_or_else(|| parse_error(s.len() - rest.len() + 1, "IDENTIFIER"))?;
        let after = rest[2..].trim_start();
        let (v, n) = literal(after, 0)?;
        if op.ends_with('~') && regex::Regex::new(&v).is_err() {
            return Err(format!("parse error : invalid regex {v}"));
        }
        filters.push((op.to_string(), v));
        rest = after[n..].trim_start();
    }
    Ok(LogQuery { matchers, filters })
}

fn matches(q: &LogQuery, l: &Line) -> bool {
    let label_ok = q.matchers.iter().all(|(name, op, v)| {
        let have = l.labels.get(name).map(String::as_str).unwrap_or("");
        match op.as_str() {
            "=" => have == v,
            "!=" => have != v,
            "=~" => regex::Regex::new(&format!("^(?:{v})$")).is_ok_and(|r| r.is_match(have)),
            "!~" => regex::Regex::new(&format!("^(?:{v})$")).is_ok_and(|r| !r.is_match(have)),
            _ => false,
        }
    });
    label_ok
        && q.filters.iter().all(|(op, v)| match op.as_str() {
            "|=" => l.line.contains(v.as_str()),
            "!=" => !l.line.contains(v.as_str()),
            "|~" => regex::Regex::new(v).is_ok_and(|r| r.is_match(&l.line)),
            "!~" => regex::Regex::new(v).is_ok_and(|r| !r.is_match(&l.line)),
            _ => false,
        })
}

fn query_range(st: &Inner, p: &HashMap<String, String>) -> Result<(Value, usize), String> {
    let q = parse_query(p.get("query").map(String::as_str).unwrap_or(""))?;
    let num = |k: &str| -> Result<Option<i128>, String> {
        p.get(k)
            .map(|v| {
                v.parse::<i128>().map_err(|_| {
                    format!("invalid parameter {k:?}: cannot parse {v:?} to a valid timestamp")
                })
            })
            .transpose()
    };
    let start = num("start")?.unwrap_or(0);
    let end = num("end")?.unwrap_or(i128::MAX);
    let limit: usize = p
        .get("limit")
        .map(|v| v.parse().map_err(|_| format!("invalid limit {v:?}")))
        .transpose()?
        .unwrap_or(100);
    if let Some(m) = st.faults.max_limit
        && limit > m
    {
        return Err(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {m})"
        ));
    }
    let forward = p.get("direction").map(String::as_str) == Some("forward");
    let mut hits: Vec<&Line> = st
        .lines
        .iter()
        .filter(|l| l.ts >= start && l.ts < end && matches(&q, l))
        .collect();
    hits.sort_by_key(|l| l.ts);
    if !forward {
        hits.reverse();
    }
    hits.truncate(limit);
    let n = hits.len();
    let mut streams: BTreeMap<&BTreeMap<String, String>, Vec<Value>> = BTreeMap::new();
    for l in hits {
        streams
            .entry(&l.labels)
            .or_default()
            .push(json!([l.ts.to_string(), l.line]));
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(labels, values)| json!({"stream": labels, "values": values}))
        .collect();
    Ok((
        json!({
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": result,
                "stats": {"summary": {"totalEntriesReturned": n}},
            }
        }),
        n,
    ))
}
