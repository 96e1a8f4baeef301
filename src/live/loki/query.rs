//! Pure pieces of the log-store source, tested without a server: which label convention a Loki
//! speaks, the stream selector and LogQL line filters, the `query_range` and `labels` request
//! paths, the query_range JSON answer, the ViaQ envelope, and the one sentence for each error
//! answer. No I/O here.

use std::collections::BTreeMap;

use serde_json::Value;

/// The stream labels naming a container's namespace, pod and container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// OpenShift Logging (ViaQ data model, LokiStack): `kubernetes_namespace_name`,
    /// `kubernetes_pod_name`, `kubernetes_container_name`.
    ViaQ,
    /// OpenShift Logging's OpenTelemetry data model: `k8s_namespace_name`, `k8s_pod_name`,
    /// `k8s_container_name`.
    Otel,
    /// Grafana Loki with Promtail / Alloy / the Loki Helm chart: `namespace`, `pod`, `container`.
    Plain,
}

impl Convention {
    /// (namespace, pod, container) label names.
    pub fn labels(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Convention::ViaQ => (
                "kubernetes_namespace_name",
                "kubernetes_pod_name",
                "kubernetes_container_name",
            ),
            Convention::Otel => ("k8s_namespace_name", "k8s_pod_name", "k8s_container_name"),
            Convention::Plain => ("namespace", "pod", "container"),
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Convention::ViaQ => "OpenShift Logging (ViaQ) labels",
            Convention::Otel => "OpenShift Logging (OpenTelemetry) labels",
            Convention::Plain => "Loki labels namespace/pod/container",
        }
    }

    /// The convention a URL implies before asking the server: a LokiStack tenant URL
    /// (`…/api/logs/v1/<tenant>`) is OpenShift Logging, ViaQ by default.
    pub fn from_url(url: &str) -> Option<Convention> {
        lokistack_tenant(url).map(|_| Convention::ViaQ)
    }

    /// The convention from the label names `/loki/api/v1/labels` returned (`None`: none known).
    pub fn from_labels(names: &[String]) -> Option<Convention> {
        let has = |n: &str| names.iter().any(|x| x == n);
        if has("kubernetes_namespace_name") || has("kubernetes_pod_name") {
            Some(Convention::ViaQ)
        } else if has("k8s_namespace_name") || has("k8s_pod_name") {
            Some(Convention::Otel)
        } else if has("namespace") || has("pod") || has("container") {
            Some(Convention::Plain)
        } else {
            None
        }
    }
}

/// The tenant of a LokiStack gateway URL (`https://gw/api/logs/v1/application` → `application`).
pub fn lokistack_tenant(url: &str) -> Option<&str> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &path[path.find('/')?..];
    let i = path.find("/api/logs/v1/")?;
    let tenant = path[i + "/api/logs/v1/".len()..].trim_end_matches('/');
    let tenant = tenant.split('/').next().unwrap_or("");
    (!tenant.is_empty()).then_some(tenant)
}

/// A LogQL string literal: backticks when the text has none (raw, nothing escaped), else double
/// quotes with `\` and `"` escaped.
pub fn literal(s: &str) -> String {
    if !s.contains('`') {
        return format!("`{s}`");
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A regular expression matching exactly one of `values` (RE2 syntax, as Loki uses).
fn alternatives(values: &[String]) -> String {
    values
        .iter()
        .map(|v| regex::escape(v))
        .collect::<Vec<_>>()
        .join("|")
}

/// The stream selector of the proxies: namespaces (empty: every namespace) and containers
/// (empty: every container). Loki wants at least one matcher that cannot match the empty
/// string, so "every namespace" is `=~".+"`.
pub fn selector(conv: Convention, namespaces: &[String], containers: &[String]) -> String {
    let (ns, _, c) = conv.labels();
    let matcher = |label: &str, values: &[String]| -> Option<String> {
        match values {
            [] => None,
            [one] => Some(format!("{label}={}", quoted(one))),
            many => Some(format!("{label}=~{}", quoted(&alternatives(many)))),
        }
    };
    let mut parts: Vec<String> = Vec::new();
    parts.extend(matcher(ns, namespaces));
    parts.extend(matcher(c, containers));
    if parts.is_empty() {
        parts.push(format!("{ns}=~\".+\""));
    }
    format!("{{{}}}", parts.join(", "))
}

/// A label value in double quotes (label matchers take no backticks in every Loki version).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The regular expression that keeps access-log lines and drops the proxies' own log (pilot-agent,
/// Envoy's `[warning]` lines): every HTTP line of Istio's and Envoy's text formats holds its
/// protocol (`HTTP/1.1`, `HTTP/2`), every TCP line `"- - -"` (method, path and protocol unset),
/// JSON formats a `response_code` key, ztunnel's lines `dst.addr=`. Matched on the raw stored
/// line, so also inside a ViaQ envelope where quotes are escaped.
pub const ACCESS_LOG_FILTER: &str = r"HTTP/|response_code|- - -|dst\.addr";

/// The regular expression that keeps the Knative activator's and queue-proxy's lines about a
/// request they could not proxy (`error reverse proxying request`, the older `error proxying
/// request`) or find a pod for (`Throttler try error`): they name the revision, not the request,
/// so a trace asks for them over the request's time range.
pub const KNATIVE_ERRORS: &str =
    r"error reverse proxying request|error proxying request|Throttler try error";

/// The containers that write [`KNATIVE_ERRORS`] lines.
pub const KNATIVE_CONTAINERS: [&str; 2] = ["activator", "queue-proxy"];

/// A whole LogQL query: `selector` then line filters.
pub fn logql(selector: &str, filter: &LineFilter) -> String {
    match filter {
        LineFilter::None => selector.to_string(),
        LineFilter::Contains(s) => format!("{selector} |= {}", literal(s)),
        LineFilter::AccessLogs => format!("{selector} |~ {}", literal(ACCESS_LOG_FILTER)),
        LineFilter::KnativeErrors => format!("{selector} |~ {}", literal(KNATIVE_ERRORS)),
    }
}

/// What a query keeps of the selected streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFilter {
    /// Everything (a custom `--log-format` the access-log filter may not know).
    None,
    /// Lines holding this text (`|= "…"`): a request id or a connection address.
    Contains(String),
    /// Access-log lines only ([`ACCESS_LOG_FILTER`]).
    AccessLogs,
    /// The Knative proxies' lines about failed requests ([`KNATIVE_ERRORS`]).
    KnativeErrors,
}

/// Percent-encode a query-string value (RFC 3986 unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The path and query of one `query_range` page, relative to the Loki URL (a LokiStack tenant
/// URL keeps its `/api/logs/v1/<tenant>` prefix). Times are Unix nanoseconds; `end` is
/// exclusive, as Loki reads it.
pub fn query_range_path(query: &str, start_ns: i128, end_ns: i128, limit: usize) -> String {
    format!(
        "/loki/api/v1/query_range?query={}&start={start_ns}&end={end_ns}&limit={limit}&direction=forward",
        encode(query)
    )
}

/// The path and query of the label-names call over a time range.
pub fn labels_path(start_ns: i128, end_ns: i128) -> String {
    format!("/loki/api/v1/labels?start={start_ns}&end={end_ns}")
}

/// One log line of a query answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The stream's labels, sorted (the stream's identity).
    pub stream: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub ts: i128,
    /// The stored line.
    pub line: String,
}

/// A query_range or labels answer that is not what Loki sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not JSON.
    #[error(
        "the answer is not JSON ({0}); check that the URL is Loki's (or the LokiStack gateway's tenant URL)"
    )]
    NotJson(String),
    /// `"status":"error"` (or anything but `success`).
    #[error("Loki answered with an error: {0}")]
    Error(String),
    /// A metric answer (`matrix`, `vector`) instead of log streams.
    #[error(
        "Loki answered with {0} rather than log streams; --loki-selector must be a stream selector such as {{namespace=\"x\"}}, not a metric query"
    )]
    NotStreams(String),
    /// Wrong shape.
    #[error("the answer does not have Loki's query_range shape: {0}")]
    Shape(String),
}

/// Parse a `query_range` answer: `{"status":"success","data":{"resultType":"streams","result":
/// [{"stream":{…},"values":[["<ns>","<line>"],…]}]}}`. Entries are returned in time order.
pub fn parse_streams(body: &[u8]) -> Result<Vec<Entry>, AnswerError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    check_status(&v)?;
    let data = v
        .get("data")
        .ok_or_else(|| AnswerError::Shape("no `data`".into()))?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("streams") => {}
        Some(other) => return Err(AnswerError::NotStreams(other.to_string())),
        None => return Err(AnswerError::Shape("no `data.resultType`".into())),
    }
    let result = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| AnswerError::Shape("no `data.result` list".into()))?;
    let mut out = Vec::new();
    for s in result {
        let stream: BTreeMap<String, String> = s
            .get("stream")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let values = s
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| AnswerError::Shape("a stream without `values`".into()))?;
        for pair in values {
            let (ts, line) = match pair.as_array().map(Vec::as_slice) {
                Some([ts, line, ..]) => (ts, line),
                _ => {
                    return Err(AnswerError::Shape(
                        "a value that is not [time, line]".into(),
                    ));
                }
            };
            let ts: i128 = match ts {
                Value::String(s) => s.parse().ok(),
                Value::Number(n) => n.as_i64().map(i128::from),
                _ => None,
            }
            .ok_or_else(|| AnswerError::Shape(format!("a time that is not nanoseconds: {ts}")))?;
            let line = line
                .as_str()
                .ok_or_else(|| AnswerError::Shape("a line that is not a string".into()))?;
            out.push(Entry {
                stream: stream.clone(),
                ts,
                line: line.to_string(),
            });
        }
    }
    out.sort_by_key(|e| e.ts);
    Ok(out)
}

/// Parse a `labels` answer: `{"status":"success","data":["namespace",…]}`.
pub fn parse_labels(body: &[u8]) -> Result<Vec<String>, AnswerError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    check_status(&v)?;
    Ok(v.get("data")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

fn check_status(v: &Value) -> Result<(), AnswerError> {
    match v.get("status").and_then(Value::as_str) {
        Some("success") => Ok(()),
        Some(_) => Err(AnswerError::Error(
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string(),
        )),
        None => Err(AnswerError::Shape("no `status`".into())),
    }
}

/// A line attributed to its container, its envelope removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributed {
    /// Namespace (`None`: unknown).
    pub namespace: Option<String>,
    /// Pod.
    pub pod: Option<String>,
    /// Container.
    pub container: Option<String>,
    /// The container's own line.
    pub text: String,
}

/// Unwrap a stored line: a ViaQ (OpenShift Logging) record is a JSON object whose `message` is
/// the container's line and whose `kubernetes` object names the pod; any other line (plain
/// Loki: the container's line itself, including an Envoy JSON access log) is kept as it is.
/// The namespace, pod and container come from the envelope, else from the stream's labels.
pub fn attribute(entry: &Entry, conv: Convention) -> Attributed {
    let (ln, lp, lc) = conv.labels();
    let label = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| entry.stream.get(*n).filter(|v| !v.is_empty()).cloned())
    };
    let mut out = Attributed {
        namespace: label(&[ln, "kubernetes_namespace_name", "namespace"]),
        pod: label(&[lp, "kubernetes_pod_name", "pod"]),
        container: label(&[lc, "kubernetes_container_name", "container"]),
        text: entry.line.clone(),
    };
    let t = entry.line.trim_start();
    if !t.starts_with('{') {
        return out;
    }
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(t) else {
        return out;
    };
    let Some(message) = m.get("message").and_then(Value::as_str) else {
        return out;
    };
    let k8s = m.get("kubernetes").and_then(Value::as_object);
    let is_envelope = k8s.is_some()
        || m.contains_key("@timestamp")
        || m.contains_key("log_type")
        || m.contains_key("openshift");
    if !is_envelope {
        return out;
    }
    if let Some(k) = k8s {
        let get = |n: &str| k.get(n).and_then(Value::as_str).map(str::to_string);
        out.namespace = get("namespace_name").or(out.namespace);
        out.pod = get("pod_name").or(out.pod);
        out.container = get("container_name").or(out.container);
    }
    out.text = message.trim_end_matches(['\n', '\r']).to_string();
    out
}

/// The one sentence for an error answer of Loki (`body`: the plain-text or JSON error, already
/// cut to a bounded size). `url` is the Loki URL as given (no token is ever part of it).
pub fn status_sentence(status: u16, body: &str, url: &str) -> String {
    let msg = error_text(body);
    let quoted = if msg.is_empty() {
        String::new()
    } else {
        format!(": {msg}")
    };
    match status {
        400 => format!(
            "Loki at {url} refused the query{quoted}; check --loki-selector (a stream selector such as {{namespace=\"x\", container=\"istio-proxy\"}})"
        ),
        401 => format!(
            "Loki at {url} refused the token (401{quoted}); give a valid token with --loki-token-file FILE (on OpenShift: `oc whoami -t > FILE`), or log in again so the kubeconfig's token is fresh"
        ),
        403 => format!(
            "Loki at {url} refused access for this token (403{quoted}); on OpenShift Logging the user needs read access to the tenant's logs (e.g. the cluster-logging-application-view role on the namespaces, or cluster-logging-infrastructure-view for the infrastructure tenant)"
        ),
        404 => format!(
            "nothing answers at {url} (404); check the URL: a Loki base URL such as http://loki:3100, or a LokiStack tenant URL such as https://<gateway>/api/logs/v1/application"
        ),
        429 => format!(
            "Loki at {url} is rate-limiting the queries (429{quoted}); narrow the time range with --since/--since-time/--until or -n, and try again later"
        ),
        s if s >= 500 => format!(
            "Loki at {url} failed to answer ({s}{quoted}); narrow the time range with --since/--until or try again later"
        ),
        s => format!("Loki at {url} answered {s}{quoted}"),
    }
}

/// The message of an error body: Loki's plain text (`parse error at line 1, col 5: …`), or the
/// `error`/`message` field of a JSON body; one line, at most 300 characters.
pub fn error_text(body: &str) -> String {
    let t = body.trim();
    let from_json = serde_json::from_str::<Value>(t).ok().and_then(|v| {
        ["error", "message"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
    });
    let text = from_json.unwrap_or_else(|| t.to_string());
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = one.chars().take(300).collect();
    if cut.len() < one.len() {
        cut.push('…');
    }
    cut
}

/// Unix nanoseconds of a timestamp.
pub fn nanos(t: jiff::Timestamp) -> i128 {
    t.as_nanosecond()
}

/// Redact an `Authorization` header or token value for display: never shown.
pub fn shown_headers(org_id: Option<&str>, has_token: bool) -> String {
    let mut parts = Vec::new();
    if has_token {
        parts.push("Authorization: Bearer <token hidden>".to_string());
    }
    if let Some(o) = org_id {
        parts.push(format!("X-Scope-OrgID: {o}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lokistack_urls_name_their_tenant() {
        assert_eq!(
            lokistack_tenant("https://gw.apps.example.com/api/logs/v1/application"),
            Some("application")
        );
        assert_eq!(
            lokistack_tenant("https://gw/api/logs/v1/infrastructure/"),
            Some("infrastructure")
        );
        assert_eq!(lokistack_tenant("http://loki:3100"), None);
        assert_eq!(lokistack_tenant("http://loki:3100/api/logs/v1/"), None);
        assert_eq!(
            Convention::from_url("https://gw/api/logs/v1/application"),
            Some(Convention::ViaQ)
        );
    }

    #[test]
    fn conventions_from_label_names() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Convention::from_labels(&l(&["kubernetes_pod_name", "log_type"])),
            Some(Convention::ViaQ)
        );
        assert_eq!(
            Convention::from_labels(&l(&["k8s_namespace_name"])),
            Some(Convention::Otel)
        );
        assert_eq!(
            Convention::from_labels(&l(&["app", "namespace", "pod"])),
            Some(Convention::Plain)
        );
        assert_eq!(Convention::from_labels(&l(&["job", "filename"])), None);
    }

    #[test]
    fn selectors_for_each_convention() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            selector(Convention::ViaQ, &v(&["kserve-test"]), &v(&["istio-proxy"])),
            r#"{kubernetes_namespace_name="kserve-test", kubernetes_container_name="istio-proxy"}"#
        );
        assert_eq!(
            selector(
                Convention::Plain,
                &v(&["a", "istio-system"]),
                &v(&["istio-proxy"])
            ),
            r#"{namespace=~"a|istio\\-system", container="istio-proxy"}"#
        );
        assert_eq!(
            selector(Convention::Plain, &[], &[]),
            r#"{namespace=~".+"}"#
        );
    }

    #[test]
    fn line_filters_quote_what_they_search() {
        assert_eq!(
            logql("{pod=\"x\"}", &LineFilter::Contains("211ebf7c-1bc2".into())),
            "{pod=\"x\"} |= `211ebf7c-1bc2`"
        );
        assert_eq!(literal("a`b\"c\\"), "\"a`b\\\"c\\\\\"");
        assert!(logql("{a=\"b\"}", &LineFilter::AccessLogs).contains("|~ `HTTP/|"));
        let re = regex::Regex::new(ACCESS_LOG_FILTER).unwrap();
        assert!(re.is_match(r#"[2024-04-25T20:21:43.114Z] "POST /v1 HTTP/1.1" 403 - rbac"#));
        assert!(re.is_match(r#"{"message":"[t] \"- - -\" 0 UF ..."}"#));
        assert!(re.is_match(r#"{"response_code":"503"}"#));
        assert!(!re.is_match("2024-04-25T20:11:19.880056Z\tinfo\txdsproxy\tconnected"));
    }

    #[test]
    fn query_range_paths_encode_the_query() {
        let p = query_range_path("{a=\"b\"} |= `x y`", 1, 2, 5000);
        assert_eq!(
            p,
            "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D%20%7C%3D%20%60x%20y%60&start=1&end=2&limit=5000&direction=forward"
        );
        assert_eq!(labels_path(1, 2), "/loki/api/v1/labels?start=1&end=2");
    }

    #[test]
    fn streams_answers_parse_in_time_order() {
        let body = br#"{"status":"success","data":{"resultType":"streams","result":[
            {"stream":{"pod":"b","namespace":"n"},"values":[["1714076503114000000","late"]]},
            {"stream":{"pod":"a","namespace":"n"},"values":[["1714076502114000000","early"],["1714076502114000001","x"]]}
        ],"stats":{}}}"#;
        let e = parse_streams(body).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].line, "early");
        assert_eq!(e[0].ts, 1_714_076_502_114_000_000);
        assert_eq!(e[0].stream.get("pod").map(String::as_str), Some("a"));
        assert_eq!(e[2].line, "late");
    }

    #[test]
    fn wrong_answers_are_named() {
        assert!(matches!(
            parse_streams(b"<html>"),
            Err(AnswerError::NotJson(_))
        ));
        assert!(matches!(
            parse_streams(br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#),
            Err(AnswerError::NotStreams(m)) if m == "matrix"
        ));
        assert!(matches!(
            parse_streams(br#"{"status":"error","error":"boom"}"#),
            Err(AnswerError::Error(m)) if m == "boom"
        ));
        assert!(matches!(
            parse_streams(br#"{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[[1]]}]}}"#),
            Err(AnswerError::Shape(_))
        ));
        assert_eq!(
            parse_labels(br#"{"status":"success","data":["namespace","pod"]}"#).unwrap(),
            vec!["namespace".to_string(), "pod".to_string()]
        );
    }

    #[test]
    fn viaq_envelopes_are_unwrapped_and_others_kept() {
        let mut stream = BTreeMap::new();
        stream.insert("kubernetes_namespace_name".to_string(), "ns1".to_string());
        let viaq = Entry {
            stream: stream.clone(),
            ts: 1,
            line: r#"{"@timestamp":"2024-04-25T20:21:43.114Z","message":"[2024] \"GET / HTTP/1.1\" 403\n","kubernetes":{"namespace_name":"istio-system","pod_name":"gw-1","container_name":"istio-proxy"},"log_type":"application"}"#.into(),
        };
        let a = attribute(&viaq, Convention::ViaQ);
        assert_eq!(a.text, r#"[2024] "GET / HTTP/1.1" 403"#);
        assert_eq!(a.namespace.as_deref(), Some("istio-system"));
        assert_eq!(a.pod.as_deref(), Some("gw-1"));
        assert_eq!(a.container.as_deref(), Some("istio-proxy"));
        // An Envoy JSON access log stored as it is: not an envelope.
        let json = Entry {
            stream: [
                ("namespace".to_string(), "d".to_string()),
                ("pod".to_string(), "p".to_string()),
                ("container".to_string(), "istio-proxy".to_string()),
            ]
            .into_iter()
            .collect(),
            ts: 1,
            line: r#"{"message":"x","response_code":403}"#.into(),
        };
        let a = attribute(&json, Convention::Plain);
        assert_eq!(a.text, json.line);
        assert_eq!(a.pod.as_deref(), Some("p"));
        assert_eq!(a.namespace.as_deref(), Some("d"));
    }

    #[test]
    fn error_answers_are_one_sentence() {
        let s = status_sentence(
            400,
            "parse error at line 1, col 10: syntax error: unexpected IDENTIFIER\n",
            "http://loki:3100",
        );
        assert!(s.starts_with("Loki at http://loki:3100 refused the query: parse error at line 1, col 10: syntax error: unexpected IDENTIFIER; check --loki-selector"), "{s}");
        assert!(status_sentence(401, "", "u").contains("refused the token"));
        assert!(status_sentence(404, "404 page not found", "u").contains("check the URL"));
        assert!(status_sentence(429, "", "u").contains("rate-limiting"));
        assert!(status_sentence(503, "", "u").contains("failed to answer (503)"));
        assert_eq!(error_text(&"x".repeat(400)).chars().count(), 301);
        assert_eq!(error_text(r#"{"error":"too many"}"#), "too many");
    }

    #[test]
    fn the_token_is_never_shown() {
        assert_eq!(
            shown_headers(Some("t1"), true),
            "Authorization: Bearer <token hidden>, X-Scope-OrgID: t1"
        );
    }
}
