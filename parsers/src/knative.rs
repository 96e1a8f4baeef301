//! Knative Serving's own lines about a request it could not proxy: the activator's and
//! queue-proxy's `error reverse proxying request`.
//!
//! Both proxy with Go's `httputil.ReverseProxy` and log its error through `knative.dev/pkg`'s
//! `network.ErrorHandler` (zap JSON: `severity`/`level`, `timestamp`/`ts`, `logger` =
//! `activator` or `queueproxy`, `message`/`msg` = `error reverse proxying request; sockstat: …`,
//! `knative.dev/key` = the revision's `namespace/name`, `knative.dev/pod`, `error`), then
//! answer the client `502 Bad Gateway`. The `error` is Go's network error: `dial tcp
//! 127.0.0.1:8080: connect: connection refused` (queue-proxy to the user container), `read tcp
//! A->B: read: connection reset by peer`, `EOF`, `context deadline exceeded`, `context
//! canceled`. Pure, bounded, never panics.

use crate::json::{JsonValue, scan_object};

/// At most this many members are read from one line.
const MAX_FIELDS: usize = 64;

/// Values longer than this are cut (at a character boundary).
const MAX_VALUE: usize = 512;

/// Which Knative proxy wrote the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The activator (`knative-serving/activator-…`), between the gateway and a revision's pods.
    Activator,
    /// The revision pod's queue-proxy container, in front of the user container.
    QueueProxy,
}

impl Component {
    /// How a sentence names it.
    pub fn name(self) -> &'static str {
        match self {
            Component::Activator => "the Knative activator",
            Component::QueueProxy => "queue-proxy",
        }
    }
}

/// What went wrong, from Go's network error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `connect: connection refused`: nothing listened on the port.
    Refused,
    /// `connection reset by peer`, `EOF`, `broken pipe`: the connection closed mid-request.
    Closed,
    /// `context deadline exceeded`, `i/o timeout`, `timeout awaiting response headers`.
    Timeout,
    /// `context canceled`: whoever sent the request went away first.
    Canceled,
    /// `no route to host`, `network is unreachable`, `no such host`.
    Unreachable,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Stable identifier (snake_case), for JSON.
    pub fn id(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Other => "other",
        }
    }

    /// Classify Go's error text.
    pub fn of(error: &str) -> ErrorKind {
        let e = error.to_ascii_lowercase();
        if e.contains("connection refused") {
            ErrorKind::Refused
        } else if e.contains("context canceled") {
            ErrorKind::Canceled
        } else if e.contains("deadline exceeded")
            || e.contains("i/o timeout")
            || e.contains("timeout awaiting")
            || e.contains("timed out")
        {
            ErrorKind::Timeout
        } else if e.contains("connection reset")
            || e.contains("broken pipe")
            || e == "eof"
            || e.ends_with(": eof")
            || e.contains("unexpected eof")
            || e.contains("server closed")
        {
            ErrorKind::Closed
        } else if e.contains("no route to host")
            || e.contains("network is unreachable")
            || e.contains("no such host")
        {
            ErrorKind::Unreachable
        } else {
            ErrorKind::Other
        }
    }
}

/// What the line says failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `error reverse proxying request`: the request was sent on and the connection failed.
    Proxying,
    /// The activator's `Throttler try error`: no pod of the revision took the request in time
    /// (the activator answers 503 for a deadline or a full queue, 500 otherwise).
    Capacity,
}

impl Failure {
    /// The message as the line has it.
    pub fn message(self) -> &'static str {
        match self {
            Failure::Proxying => "error reverse proxying request",
            Failure::Capacity => "Throttler try error",
        }
    }
}

/// One activator or queue-proxy line about a request it could not proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// Who wrote it.
    pub component: Component,
    /// What failed: proxying, or waiting for a pod with capacity.
    pub failure: Failure,
    /// `timestamp` / `ts` as written.
    pub time: Option<String>,
    /// The same time in Unix milliseconds, when it reads (RFC 3339, or zap's epoch seconds).
    pub time_ms: Option<i64>,
    /// `knative.dev/key`: the revision, `namespace/name`.
    pub revision: Option<String>,
    /// `knative.dev/pod`: the pod that wrote the line.
    pub pod: Option<String>,
    /// `error`, cut to a readable length.
    pub error: String,
    /// What the error says happened.
    pub kind: ErrorKind,
    /// The address it could not reach or lost (`127.0.0.1:8080`, `10.131.0.14:8012`), when the
    /// error names one.
    pub target: Option<String>,
}

/// The address in Go's network error: after `dial tcp ` / `dial tcp4 ` (`dial tcp
/// 127.0.0.1:8080: connect: …`), or after `->` (`read tcp 10.0.0.1:5->10.0.0.2:8012: …`).
fn target_of(error: &str) -> Option<String> {
    let after = if let Some((_, r)) = error.split_once("->") {
        r
    } else {
        let (_, r) = error.split_once("dial tcp")?;
        r.trim_start_matches(['4', '6']).trim_start()
    };
    let addr = after.split([' ', ',']).next()?.trim_end_matches(':');
    let ok = !addr.is_empty()
        && addr.len() <= 64
        && addr.contains(':')
        && addr
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'[' | b']' | b'-'));
    ok.then(|| addr.to_string())
}

/// A value cut to [`MAX_VALUE`] bytes.
fn cap(v: &str) -> String {
    crate::words::cap(v, MAX_VALUE)
}

/// Unix milliseconds of a zap time: RFC 3339, or epoch seconds with a fraction.
fn time_ms(t: &str) -> Option<i64> {
    if let Some(d) = crate::record::parse_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    let secs: f64 = t.parse().ok()?;
    (secs.is_finite() && secs > 0.0 && secs < 1e11).then(|| (secs * 1000.0).round() as i64)
}

/// Read one Knative activator or queue-proxy JSON line. `None` unless it is a zap JSON object
/// from the `activator` or `queueproxy` logger whose message is `error reverse proxying
/// request` (or the older `error proxying request`) with an `error`.
pub fn parse_json(line: &str) -> Option<ProxyError> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let (mut logger, mut controller, mut message) = (None, None, None);
    let (mut time, mut revision, mut pod, mut error) = (None, None, None, None);
    let mut fields = 0;
    scan_object(line, |k, v| {
        fields += 1;
        if fields > MAX_FIELDS {
            return;
        }
        let text = |v: JsonValue<'_>| v.into_text().map(|t| cap(&t));
        match &*k {
            "logger" => logger = text(v),
            "knative.dev/controller" => controller = text(v),
            "message" | "msg" => message = text(v),
            "timestamp" | "ts" => time = text(v),
            "knative.dev/pod" => pod = text(v),
            "error" => error = text(v),
            "knative.dev/key" => {
                revision = match v {
                    JsonValue::Str(s) => Some(cap(&s)),
                    // Older activators nested it: `{"knative.dev/key":"ns/name"}`.
                    other => other.into_text().and_then(|raw| {
                        let mut inner = None;
                        scan_object(&raw, |k, v| {
                            if k == "knative.dev/key" {
                                inner = v.into_text().map(|t| cap(&t));
                            }
                        })
                        .ok()?;
                        inner
                    }),
                };
            }
            _ => {}
        }
    })
    .ok()?;
    let component = match logger.as_deref().or(controller.as_deref())? {
        "activator" => Component::Activator,
        "queueproxy" | "queue-proxy" | "queue" => Component::QueueProxy,
        _ => return None,
    };
    let message = message?;
    let failure = if message.starts_with("error reverse proxying request")
        || message.starts_with("error proxying request")
    {
        Failure::Proxying
    } else if component == Component::Activator && message.starts_with("Throttler try error") {
        Failure::Capacity
    } else {
        return None;
    };
    let error = error.filter(|e| !e.is_empty())?;
    Some(ProxyError {
        component,
        failure,
        time_ms: time.as_deref().and_then(time_ms),
        time,
        revision: revision.filter(|r| r.contains('/') && r != "/"),
        pod,
        kind: ErrorKind::of(&error),
        target: target_of(&error),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as posted: knative/serving#14370 (activator, Knative 1.x, `severity`/`message`),
    // knative/eventing#2357 (activator, 2020, `level`/`msg`, the pod's address in the error),
    // knative/serving#9888 (the nested `knative.dev/key` of 0.18).
    const EOF_1X: &str = r#"{"severity":"ERROR","timestamp":"2023-09-12T04:10:28.963720601Z","logger":"activator","caller":"network/error_handler.go:33","message":"error reverse proxying request; sockstat: sockets: used 21\nTCP: inuse 9 orphan 0 tw 22 alloc 908 mem 80\n","commit":"9402a71-dirty","knative.dev/controller":"activator","knative.dev/pod":"activator-54cdf744fb-4hdcf","knative.dev/key":"default/dummy-workflow-00001","error":"EOF","stacktrace":"knative.dev/pkg/network.ErrorHandler.func1"}"#;
    const RESET_2020: &str = r#"{"level":"error","ts":"2020-01-03T14:42:08.615Z","logger":"activator","caller":"network/error_handler.go:31","msg":"error reverse proxying request; sockstat: sockets: used 2178\nTCP: inuse 1145 orphan 41 tw 494 alloc 3535 mem 2947\n","knative.dev/controller":"activator","knative.dev/pod":"activator-947bd7448-9mxxv","knative.dev/key":"event-example/wathola-forwarder-d96jq","error":"read tcp 10.128.4.9:56414->10.131.0.14:8012: read: connection reset by peer","stacktrace":"knative.dev/serving/pkg/network.ErrorHandler.func1"}"#;
    const QP_REFUSED: &str = r#"{"severity":"ERROR","timestamp":"2024-05-02T10:00:01.5Z","logger":"queueproxy","caller":"network/error_handler.go:33","message":"error reverse proxying request; sockstat: sockets: used 8\n","commit":"41769de","knative.dev/key":"aiproject/test-predictor-00001","knative.dev/pod":"test-predictor-00001-deployment-5d9f7c8b6-x7k2p","error":"dial tcp 127.0.0.1:8080: connect: connection refused","stacktrace":"knative.dev/pkg/network.ErrorHandler.func1"}"#;
    // knative/serving#7974 (0.14; the stack trace cut after its first frame).
    const THROTTLER_2020: &str = r#"{"level":"error","ts":"2020-05-18T11:07:12.146Z","logger":"activator","caller":"handler/handler.go:91","msg":"Throttler try error","commit":"f87352b","knative.dev/controller":"activator","knative.dev/pod":"activator-8cb6d456-kn6nw","knative.dev/key":"team-demo/test-6n7cn","error":"context canceled","stacktrace":"knative.dev/serving/pkg/activator/handler.(*activationHandler).ServeHTTP"}"#;
    const NESTED_KEY: &str = r#"{"level":"error","ts":1603261679.814,"logger":"activator","msg":"error reverse proxying request","knative.dev/controller":"activator","knative.dev/key":{"knative.dev/key":"cega-1/ceperftesthttp-fpnwm-1"},"error":"context deadline exceeded"}"#;

    #[test]
    fn the_activator_waiting_for_capacity_is_read() {
        let e = parse_json(THROTTLER_2020).expect("read");
        assert_eq!(e.failure, Failure::Capacity);
        assert_eq!(e.component, Component::Activator);
        assert_eq!(e.revision.as_deref(), Some("team-demo/test-6n7cn"));
        assert_eq!(e.kind, ErrorKind::Canceled);
        // Only the activator writes it; the same message from another logger is not read.
        let qp = THROTTLER_2020.replace(r#""logger":"activator""#, r#""logger":"queueproxy""#);
        assert_eq!(parse_json(&qp), None);
    }

    #[test]
    fn table() {
        // (line, component, revision, pod, kind, target, time_ms)
        type Row<'a> = (
            &'a str,
            Component,
            Option<&'a str>,
            Option<&'a str>,
            ErrorKind,
            Option<&'a str>,
            Option<i64>,
        );
        let rows: &[Row<'_>] = &[
            (
                EOF_1X,
                Component::Activator,
                Some("default/dummy-workflow-00001"),
                Some("activator-54cdf744fb-4hdcf"),
                ErrorKind::Closed,
                None,
                Some(1_694_491_828_963),
            ),
            (
                RESET_2020,
                Component::Activator,
                Some("event-example/wathola-forwarder-d96jq"),
                Some("activator-947bd7448-9mxxv"),
                ErrorKind::Closed,
                Some("10.131.0.14:8012"),
                Some(1_578_062_528_615),
            ),
            (
                QP_REFUSED,
                Component::QueueProxy,
                Some("aiproject/test-predictor-00001"),
                Some("test-predictor-00001-deployment-5d9f7c8b6-x7k2p"),
                ErrorKind::Refused,
                Some("127.0.0.1:8080"),
                Some(1_714_644_001_500),
            ),
            (
                NESTED_KEY,
                Component::Activator,
                Some("cega-1/ceperftesthttp-fpnwm-1"),
                None,
                ErrorKind::Timeout,
                None,
                Some(1_603_261_679_814),
            ),
        ];
        for &(line, component, revision, pod, kind, target, ms) in rows {
            let e = parse_json(line).unwrap_or_else(|| panic!("not read: {line}"));
            assert_eq!(e.failure, Failure::Proxying, "{line}");
            assert_eq!(e.component, component, "{line}");
            assert_eq!(e.revision.as_deref(), revision, "{line}");
            assert_eq!(e.pod.as_deref(), pod, "{line}");
            assert_eq!(e.kind, kind, "{line}");
            assert_eq!(e.target.as_deref(), target, "{line}");
            assert_eq!(e.time_ms, ms, "{line}");
        }
    }

    #[test]
    fn the_line_reader_hands_them_over_as_knative_lines() {
        use crate::detect::{FormatSpec, LineOutcome, LineParser, NotAccessLog};
        for line in [EOF_1X, RESET_2020, QP_REFUSED, NESTED_KEY] {
            let mut p = LineParser::new(&FormatSpec::Auto);
            match p.parse(line) {
                LineOutcome::NotAccessLog(NotAccessLog::Knative(e)) => {
                    assert_eq!(Some(*e), parse_json(line));
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_lines_are_not_proxy_errors() {
        for line in [
            // Another message of the same logger.
            r#"{"severity":"INFO","timestamp":"2023-09-12T04:10:28Z","logger":"activator","message":"Starting the knative activator"}"#,
            // Another logger.
            r#"{"level":"error","ts":"2023-09-12T04:10:28Z","logger":"controller","msg":"error reverse proxying request","error":"EOF"}"#,
            // No error.
            r#"{"level":"error","ts":"2023-09-12T04:10:28Z","logger":"activator","msg":"error reverse proxying request"}"#,
            // Not an object, not JSON, cut.
            r#"["activator"]"#,
            "error reverse proxying request",
            r#"{"logger":"activator","msg":"error reverse proxying request","error":"EO"#,
            "",
        ] {
            assert_eq!(parse_json(line), None, "{line}");
        }
    }

    #[test]
    fn error_kinds_and_targets() {
        for (e, kind, target) in [
            (
                "dial tcp 10.0.0.5:8012: connect: connection refused",
                ErrorKind::Refused,
                Some("10.0.0.5:8012"),
            ),
            (
                "dial tcp4 127.0.0.1:8080: connect: connection refused",
                ErrorKind::Refused,
                Some("127.0.0.1:8080"),
            ),
            (
                "dial tcp [fd00::5]:8012: i/o timeout",
                ErrorKind::Timeout,
                Some("[fd00::5]:8012"),
            ),
            ("context canceled", ErrorKind::Canceled, None),
            (
                "net/http: timeout awaiting response headers",
                ErrorKind::Timeout,
                None,
            ),
            (
                "dial tcp: lookup x.svc: no such host",
                ErrorKind::Unreachable,
                None,
            ),
            (
                "write tcp 10.0.0.1:4->10.0.0.2:8012: write: broken pipe",
                ErrorKind::Closed,
                Some("10.0.0.2:8012"),
            ),
            ("something else", ErrorKind::Other, None),
        ] {
            assert_eq!(ErrorKind::of(e), kind, "{e}");
            assert_eq!(target_of(e).as_deref(), target, "{e}");
        }
    }
}
