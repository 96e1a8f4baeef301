//! The endpoint picker's (EPP, Gateway API Inference Extension) own log lines about one request:
//! the endpoint it picked, or why it refused the request.
//!
//! The EPP logs with controller-runtime's zap logger (JSON: `level`, `ts`, `logger`, `caller`,
//! `msg`) and adds the request's `x-request-id` to every line about it
//! (`pkg/epp/handlers/server.go`: `logger.WithValues(requtil.RequestIdHeaderKey, requestId)`).
//! Two lines matter: `"msg":"Request handled"` with `"endpoint"` (the pod it picked:
//! `pkg/epp/requestcontrol/director.go`), and `"msg":"Failed to process request"` with
//! `"error":"inference gateway: <Code> - <message>"`, whose code the EPP turns into the status
//! it answers (`BuildErrResponse`: `InferencePoolResourceExhausted` → 429,
//! `ServiceUnavailable` → 503, `Internal` → 500, `BadRequest` → 400, `BadConfiguration` → 404).
//! Pure, bounded, never panics.

use std::net::IpAddr;

use crate::json::{JsonValue, scan_object};

/// At most this many members are read from one line.
pub const MAX_FIELDS: usize = 64;

/// Values longer than this are cut (at a character boundary).
pub const MAX_VALUE: usize = 1024;

/// One EPP line about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// `ts` as written (RFC 3339, or zap's epoch seconds).
    pub time: Option<String>,
    /// `level`.
    pub level: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: String,
    /// `msg`.
    pub message: String,
    /// The picked endpoint's address (`10.0.0.5` or `10.0.0.5:8000`), when the line names one.
    pub endpoint: Option<String>,
    /// The picked pod's name, when the line names one.
    pub pod: Option<String>,
    /// `error`, cut to [`MAX_VALUE`].
    pub error: Option<String>,
    /// The error's code (`InferencePoolResourceExhausted`, `ServiceUnavailable`, …).
    pub code: Option<String>,
    /// `model` (what the client asked for).
    pub model: Option<String>,
    /// `targetModel` / `resolvedTargetModel` (what the EPP sent on).
    pub target_model: Option<String>,
}

impl Decision {
    /// The status the EPP answered the gateway with, from its error code; `None` when the line
    /// reports no refusal.
    pub fn status(&self) -> Option<u16> {
        status_of_code(self.code.as_deref()?)
    }

    /// The picked endpoint's IP.
    pub fn endpoint_ip(&self) -> Option<IpAddr> {
        ip_of(self.endpoint.as_deref()?)
    }
}

/// The status the EPP answers for an error code (its `BuildErrResponse`).
pub fn status_of_code(code: &str) -> Option<u16> {
    Some(match code {
        "InferencePoolResourceExhausted" => 429,
        "ServiceUnavailable" => 503,
        "Internal" | "ModelServerError" | "Unknown" => 500,
        "BadRequest" => 400,
        "BadConfiguration" => 404,
        _ => return None,
    })
}

/// The IP of `10.0.0.5`, `10.0.0.5:8000`, `[fd00::1]:8000`.
fn ip_of(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    None
}

/// A value cut to [`MAX_VALUE`] bytes.
fn cap(v: &str) -> String {
    crate::words::cap(v, MAX_VALUE)
}

/// `inference gateway: <Code> - <message>` → `<Code>`.
fn error_code(e: &str) -> Option<String> {
    let rest = e.split_once("inference gateway: ")?.1;
    let code = rest.split(" - ").next()?.trim();
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| code.to_string())
}

/// The address and pod name inside an `endpoint` value: a JSON object (`{"NamespacedName":
/// {"Namespace":…,"Name":…},"Address":"10.0.0.5",…}`), an `ip[:port]` string, or Go's
/// `%+v` text (`{NamespacedName:ns/name Address:10.0.0.5 …}`).
fn read_endpoint(v: JsonValue<'_>) -> (Option<String>, Option<String>) {
    match v {
        JsonValue::Raw(raw) => {
            let (mut addr, mut pod) = (None, None);
            let _ = scan_object(raw, |k, v| match (&*k, v) {
                ("Address" | "address", JsonValue::Str(s)) => addr = Some(cap(&s)),
                ("NamespacedName" | "namespacedName", JsonValue::Raw(nn)) => {
                    let _ = scan_object(nn, |k, v| {
                        if matches!(&*k, "Name" | "name")
                            && let JsonValue::Str(s) = v
                        {
                            pod = Some(cap(&s));
                        }
                    });
                }
                ("NamespacedName" | "namespacedName", JsonValue::Str(s)) => {
                    pod = Some(cap(s.rsplit('/').next().unwrap_or(&s)));
                }
                _ => {}
            });
            (addr, pod)
        }
        JsonValue::Str(s) => {
            let s = s.trim();
            if ip_of(s).is_some() {
                return (Some(cap(s)), None);
            }
            let word_after = |key: &str| {
                s.split_once(key).and_then(|(_, r)| {
                    r.split(|c: char| c.is_whitespace() || c == '}' || c == ',')
                        .next()
                        .filter(|w| !w.is_empty())
                        .map(cap)
                })
            };
            let addr = word_after("Address:").filter(|a| ip_of(a).is_some());
            let pod =
                word_after("NamespacedName:").map(|n| cap(n.rsplit('/').next().unwrap_or(&n)));
            (addr, pod)
        }
        _ => (None, None),
    }
}

/// Read one EPP JSON line. `None` unless it is a JSON object with `msg` and `x-request-id`
/// that names a picked endpoint or an `inference gateway:` error.
pub fn parse_json(line: &str) -> Option<Decision> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let mut d = Decision::default();
    let mut fields = 0;
    let mut has_id = false;
    scan_object(line, |k, v| {
        fields += 1;
        if fields > MAX_FIELDS {
            return;
        }
        match &*k {
            "x-request-id" | "requestID" | "request_id" => {
                if let JsonValue::Str(s) = v
                    && !s.is_empty()
                    && !has_id
                {
                    d.request_id = cap(&s);
                    has_id = true;
                }
            }
            "msg" => d.message = v.into_text().map(|t| cap(&t)).unwrap_or_default(),
            "ts" => d.time = v.into_text().map(|t| cap(&t)),
            "level" => d.level = v.into_text().map(|t| cap(&t)),
            "error" | "err" => d.error = v.into_text().map(|t| cap(&t)),
            "model" | "incomingModelName" if d.model.is_none() => {
                d.model = v.into_text().map(|t| cap(&t));
            }
            "targetModel" | "resolvedTargetModel" | "targetModelName"
                if d.target_model.is_none() =>
            {
                d.target_model = v.into_text().map(|t| cap(&t));
            }
            "endpoint" | "targetPod" | "targetEndpoint" if d.endpoint.is_none() => {
                let (a, p) = read_endpoint(v);
                d.endpoint = a;
                d.pod = d.pod.take().or(p);
            }
            _ => {}
        }
    })
    .ok()?;
    d.code = d.error.as_deref().and_then(error_code);
    (has_id && !d.message.is_empty() && (d.endpoint.is_some() || d.code.is_some())).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes from the EPP's source (kubernetes-sigs/gateway-api-inference-extension):
    // director.go `logger.V(logutil.DEFAULT).Info("Request handled", "model", …, "targetModel", …,
    // "endpoint", targetPod)` under server.go's `WithValues("x-request-id", …)`, written by
    // controller-runtime's zap JSON encoder; the error text is errutil.Error's
    // `inference gateway: <Code> - <Msg>` (as quoted in gateway-api-inference-extension#1697).
    const HANDLED: &str = r#"{"level":"info","ts":"2025-10-10T08:01:02.345Z","logger":"epp","caller":"requestcontrol/director.go:212","msg":"Request handled","x-request-id":"6f1c7c2e-31a4-4d7e-9e55-0b2f3c6a1d10","model":"Qwen/Qwen2-0.5B-Instruct","targetModel":"Qwen/Qwen2-0.5B-Instruct","endpoint":{"NamespacedName":{"Namespace":"default","Name":"vllm-qwen-7d9f8c-abcde"},"Address":"10.244.1.17","Labels":{"app":"vllm-qwen"}}}"#;
    const SATURATED: &str = r#"{"level":"error","ts":"2025-10-10T08:01:03.000Z","caller":"handlers/server.go:247","msg":"Failed to process request","x-request-id":"b1","error":"inference gateway: InferencePoolResourceExhausted - system saturated, non-critical request dropped","request":{"Request":{"RequestBody":{}}}}"#;
    const NO_PODS: &str = r#"{"level":"error","ts":"2025-10-10T08:01:04.000Z","msg":"Failed to process request","x-request-id":"c2","error":"inference gateway: ServiceUnavailable - failed to find candidate pods for serving the request"}"#;

    #[test]
    fn table() {
        // (line, request id, endpoint, pod, code, status)
        type Row<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Option<u16>,
        );
        let rows: &[Row<'_>] = &[
            (
                HANDLED,
                "6f1c7c2e-31a4-4d7e-9e55-0b2f3c6a1d10",
                Some("10.244.1.17"),
                Some("vllm-qwen-7d9f8c-abcde"),
                None,
                None,
            ),
            (
                SATURATED,
                "b1",
                None,
                None,
                Some("InferencePoolResourceExhausted"),
                Some(429),
            ),
            (
                NO_PODS,
                "c2",
                None,
                None,
                Some("ServiceUnavailable"),
                Some(503),
            ),
            (
                r#"{"msg":"Request handled","x-request-id":"d3","endpoint":"10.0.0.5:8000"}"#,
                "d3",
                Some("10.0.0.5:8000"),
                None,
                None,
                None,
            ),
            (
                r#"{"msg":"Request handled","x-request-id":"e4","endpoint":"{NamespacedName:llm/vllm-0 Address:10.0.0.6 Labels:map[]}"}"#,
                "e4",
                Some("10.0.0.6"),
                Some("vllm-0"),
                None,
                None,
            ),
        ];
        for (line, id, ep, pod, code, status) in rows {
            let d = parse_json(line).unwrap_or_else(|| panic!("not read: {line}"));
            assert_eq!(d.request_id, *id);
            assert_eq!(d.endpoint.as_deref(), *ep, "{line}");
            assert_eq!(d.pod.as_deref(), *pod, "{line}");
            assert_eq!(d.code.as_deref(), *code);
            assert_eq!(d.status(), *status);
        }
        assert_eq!(
            parse_json(HANDLED).unwrap().endpoint_ip(),
            Some("10.244.1.17".parse().unwrap())
        );
    }

    #[test]
    fn not_epp() {
        for line in [
            "",
            "{}",
            "not json",
            // No request id.
            r#"{"level":"info","msg":"Request handled","endpoint":"10.0.0.5:8000"}"#,
            // Neither an endpoint nor an EPP error.
            r#"{"level":"info","msg":"LLM request assembled","x-request-id":"a"}"#,
            r#"{"level":"error","msg":"x","x-request-id":"a","error":"context canceled"}"#,
            // An Istio JSON access log.
            r#"{"response_code":200,"request_id":"a","upstream_host":"10.0.0.5:8000"}"#,
            r#"{"msg":"Request handled","x-request-id":"a","endpoint":"not-an-address"}"#,
            r#"{"msg":"Request handled","x-request-id":"a","endpoint":{"Address":"#,
        ] {
            assert_eq!(parse_json(line), None, "{line}");
        }
    }

    #[test]
    fn bounded() {
        let long = format!(
            r#"{{"msg":"Failed to process request","x-request-id":"a","error":"inference gateway: ServiceUnavailable - {}"}}"#,
            "é".repeat(5000)
        );
        let d = parse_json(&long).unwrap();
        assert!(d.error.unwrap().len() <= MAX_VALUE);
        for cut in 0..HANDLED.len() {
            if HANDLED.is_char_boundary(cut) {
                let _ = parse_json(&HANDLED[..cut]);
            }
        }
    }
}
