//! The OpenShift router's access-log lines read: HAProxy's session state at disconnection, its
//! timers and status, and the Route and endpoint its backend and server name, made into a
//! verdict and a fix (HAProxy configuration manual, "Session state at disconnection" and
//! "Timing events"; the router's defaults from openshift/router's `haproxy-config.template`:
//! `timeout connect 5s`, `timeout server 30s` unless the Route sets
//! `haproxy.router.openshift.io/timeout`, `timeout http-request 10s`, `timeout client 30s`, and
//! a 503 "Application is not available" page when no server can take the request). Pure.

use std::sync::Arc;

use meshtrace_parsers::haproxy::RouterLine as Entry;
use serde::Serialize;

use crate::causes::Cause;
use crate::model::RouterLine;

/// One router line as `explain` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RouterReport {
    /// Input name.
    pub input: Arc<str>,
    /// 1-based line.
    pub line: u64,
    /// The status the router sent the client (HTTP lines; `None` for TCP lines).
    pub status: Option<u16>,
    /// Cause class.
    pub cause: Cause,
    /// The Route (`namespace/name`), when the backend names one.
    pub route: Option<String>,
    /// The endpoint the router picked (`pod (ip:port)`, or the server's name).
    pub endpoint: Option<String>,
    /// The request line (`POST /v1/completions HTTP/1.1`).
    pub request: Option<String>,
    /// HAProxy's session state at disconnection (`sH--`).
    pub termination: String,
    /// Plain-language summary.
    pub summary: String,
    /// Usual fix (empty when nothing failed).
    pub fix: String,
    /// What the line says, read.
    pub evidence: Vec<String>,
}

/// Read every router line, in the order read.
pub fn explain_router_lines(lines: &[RouterLine]) -> Vec<RouterReport> {
    lines.iter().map(report_of).collect()
}

/// The OpenShift router, by its names (a Route's backend, its default backend, its frontends).
fn is_openshift(e: &Entry) -> bool {
    e.route().is_some()
        || e.backend == "openshift_default"
        || matches!(
            e.frontend.trim_end_matches('~'),
            "public" | "public_ssl" | "fe_sni" | "fe_no_sni"
        )
}

/// Who ended the session (the state's first character; HAProxy manual).
fn ended_by(c: char) -> &'static str {
    match c {
        'C' => "the client aborted",
        'S' => "the server aborted or refused the connection",
        'P' => "the router (proxy) aborted it: a deny rule, a limit or a security check",
        'L' => "the router handled it locally (a redirect, a health check)",
        'R' => "a resource of the router ran out (memory, sockets, source ports)",
        'I' => "the router found an internal error",
        'D' => "the router killed it: the server was marked down",
        'U' => "the router killed it on a backup server: an active one came back",
        'K' => "an administrator killed it",
        'c' => "the client-side timeout struck",
        's' => "the server-side timeout struck",
        _ => "it ended normally",
    }
}

/// Where the session was (the state's second character).
fn phase(c: char) -> &'static str {
    match c {
        'R' => "while waiting for the client's complete request",
        'Q' => "while waiting in the queue for a connection slot",
        'C' => "while connecting to the server",
        'H' => "while waiting for the server's response headers",
        'D' => "while transferring data",
        'L' => "while sending the last data to the client",
        'T' => "while the request was tarpitted",
        _ => "after the data transfer",
    }
}

fn route_of(e: &Entry) -> Option<String> {
    e.route().map(|b| format!("{}/{}", b.namespace, b.route))
}

fn endpoint_of(e: &Entry) -> Option<String> {
    if e.no_server() {
        return None;
    }
    Some(match e.endpoint() {
        Some(p) => format!("pod {} ({})", p.pod, p.addr),
        None => e.server.clone(),
    })
}

/// `oc annotate` for the Route's timeout, or the annotation's name.
fn timeout_fix(e: &Entry) -> String {
    match e.route() {
        Some(b) => format!(
            "`oc annotate route {} -n {} haproxy.router.openshift.io/timeout=5m --overwrite` (a model that generates for minutes needs minutes)",
            b.route, b.namespace
        ),
        None => "the Route's `haproxy.router.openshift.io/timeout` annotation (a model that generates for minutes needs minutes)".into(),
    }
}

/// The verdict on one line.
fn report_of(l: &RouterLine) -> RouterReport {
    let e = &l.entry;
    let (c1, c2) = (e.ended_by(), e.phase());
    let status = e.status;
    let code = status.map_or_else(|| "-".to_string(), |s| s.to_string());
    let route = route_of(e);
    let endpoint = endpoint_of(e);
    let on_route = route
        .as_deref()
        .map(|r| format!(" on Route {r}"))
        .unwrap_or_default();
    let to = endpoint
        .clone()
        .unwrap_or_else(|| "the backend's server".into());
    let total = e
        .total_ms()
        .map(|t| format!(" after {t} ms"))
        .unwrap_or_default();
    // The OpenShift router by its names; else HAProxy in general.
    let openshift = is_openshift(e);
    let who = if openshift {
        "the OpenShift router"
    } else {
        "HAProxy"
    };
    let head = match status {
        Some(s) => format!("{s} from {who}"),
        None => format!("The TCP connection through {who}"),
    };
    let waited = e.total_ms().map(|t| format!(" {t} ms")).unwrap_or_default();
    let request = e
        .method_path()
        .map(|(m, p)| format!(" ({m} {p})"))
        .unwrap_or_default();
    let mut evidence = vec![format!(
        "session state `{}`: {}, {} (HAProxy manual: session state at disconnection)",
        e.termination,
        ended_by(c1),
        phase(c2)
    )];
    // The timers as written (a line built by hand may hold fewer: `-1` stands in).
    let timers = e
        .timers
        .iter()
        .map(i64::to_string)
        .chain(std::iter::repeat_n("-1".to_string(), 5))
        .take(if e.http { 5 } else { 3 })
        .collect::<Vec<_>>()
        .join("/");
    evidence.push(if e.http {
        format!(
            "timers TR/Tw/Tc/Tr/Ta = {timers} ms (request, queue, connect, response headers, total; -1: that step did not happen)"
        )
    } else {
        format!(
            "timers Tw/Tc/Tt = {timers} ms (queue, connect, total; -1: that step did not happen)"
        )
    });
    match e.route() {
        Some(b) => evidence.push(format!(
            "backend `{}`: Route {}/{}, TLS termination {}",
            e.backend,
            b.namespace,
            b.route,
            b.termination()
        )),
        None => evidence.push(format!("backend `{}`", e.backend)),
    }
    evidence.push(match e.endpoint() {
        Some(p) => format!(
            "server `{}`: pod {} of Service {} at {}",
            e.server, p.pod, p.service, p.addr
        ),
        None if e.no_server() => "server `<NOSRV>`: no server took the request".into(),
        None => format!("server `{}`", e.server),
    });
    let (cause, summary, fix): (Cause, String, String) = if e.no_server()
        && (e.backend == "openshift_default"
            || (openshift && e.route().is_none() && status == Some(503)))
    {
        (
            Cause::RouteNotFound,
            format!(
                "{head}{request}: no Route matched the request's host and path, so the router's default backend answered (\"Application is not available\")."
            ),
            "Check that a Route exists for this host (`oc get route -A | grep <host>`), that this router admitted it (its `status.ingress`), and that the client sends that host (Host header, SNI).".into(),
        )
    } else if e.no_server() && c1 != 'c' && c1 != 'C' && c2 != 'R' && e.route().is_none() {
        (
            Cause::NoHealthyUpstream,
            format!(
                "{head}{request}: its backend `{}` had no server to take the request (every server down or in maintenance, or none configured).",
                e.backend
            ),
            "Check the backend's servers and their health checks (HAProxy's stats page or `show servers state`).".into(),
        )
    } else if e.no_server() && c1 != 'c' && c1 != 'C' && c2 != 'R' {
        let (ns, name) = e
            .route()
            .map_or(("<namespace>", "<route>"), |b| (b.namespace, b.route));
        (
            Cause::NoHealthyUpstream,
            format!(
                "{head}{on_route}{request}: the Route's backend had no server to send it to — its Service has no ready endpoint — so the router answered itself (\"Application is not available\")."
            ),
            format!(
                "Check that the Service behind Route {ns}/{name} selects running, ready pods (`oc get endpoints -n {ns}`, `oc describe route {name} -n {ns}`); for an InferenceService in Standard mode, the predictor pod's readiness (the model may still be loading)."
            ),
        )
    } else {
        match (c1, c2) {
            ('s', 'H') => (
                Cause::UpstreamTimeout,
                format!(
                    "{head}{on_route}{request}: it waited{waited} for the response headers of {to} and gave up — its server timeout (`timeout server`: 30 s unless the Route sets `haproxy.router.openshift.io/timeout`) struck."
                ),
                format!(
                    "Raise the Route's timeout: {}; or make the model answer sooner (stream the response, fewer tokens).",
                    timeout_fix(e)
                ),
            ),
            ('s', 'D') => (
                Cause::UpstreamTimeout,
                format!(
                    "{head}{on_route}{request}: {to} stopped sending data for longer than the server timeout (30 s unless the Route sets `haproxy.router.openshift.io/timeout`) in the middle of the response{total}."
                ),
                format!(
                    "Raise the Route's timeout for long, slow responses: {}; check why the model stalls mid-response.",
                    timeout_fix(e)
                ),
            ),
            ('s', 'C') | ('S', 'C') => (
                Cause::UpstreamConnectFailure,
                format!(
                    "{head}{on_route}{request}: it could not connect to {to}: {}.",
                    if c1 == 's' {
                        "the connect timeout, 5 s, struck: nothing answered"
                    } else {
                        "the connection was refused or the address unreachable"
                    }
                ),
                "Check that the pod is running and listens on the Service's target port, and that a NetworkPolicy in its namespace admits the router (`policy-group.network.openshift.io/ingress: \"\"` on the router's namespace).".into(),
            ),
            ('S', 'H') => (
                Cause::UpstreamReset,
                format!(
                    "{head}{on_route}{request}: {to} closed the connection before sending complete response headers (it crashed, or, on a re-encrypt Route, refused the router's TLS)."
                ),
                "Look at the pod's logs and restarts at that time (`oc logs --previous`); for a re-encrypt Route, the Route's `destinationCACertificate` must trust the pod's serving certificate.".into(),
            ),
            ('S', 'D') => (
                Cause::UpstreamReset,
                format!(
                    "{head}{on_route}{request}: the connection to {to} broke in the middle of the response{total}."
                ),
                "Look at the pod's logs and restarts at that time (an OOM kill or a crash ends a response half-way).".into(),
            ),
            ('P', 'H') | ('P', 'D') => (
                Cause::ProtocolError,
                format!(
                    "{head}{on_route}{request}: it refused the response of {to} as invalid or unsafe HTTP."
                ),
                "Look at the response headers the model server sends (invalid header names or values, a bad chunked encoding).".into(),
            ),
            ('P', _) if status == Some(400) || status == Some(413) || status == Some(414) => (
                Cause::ProtocolError,
                format!(
                    "{head}{request}: it refused the client's request as invalid HTTP (syntax, size) before any pod saw it."
                ),
                "Look at what the client sends: header sizes (the router's `tune.bufsize`, 32 KiB), invalid characters, a body without its length.".into(),
            ),
            ('P', _) => (
                Cause::Unknown,
                format!(
                    "{head}{on_route}{request}: the router refused the request itself ({}).",
                    phase(c2)
                ),
                "Check the Route's annotations that restrict clients (`haproxy.router.openshift.io/ip_allowlist`, rate limits `haproxy.router.openshift.io/rate-limit-connections`) and the router's connection limits.".into(),
            ),
            ('c', 'R') | ('C', 'R') => (
                Cause::DownstreamDisconnect,
                format!(
                    "{head}: the client did not send a complete request{}.",
                    if c1 == 'c' {
                        " within the request timeout (`timeout http-request`, 10 s on the OpenShift router)"
                    } else {
                        ": it aborted first"
                    }
                ),
                "Nothing to fix on the serving side: a client opened a connection and sent no (complete) request — a health check, a scanner or an idle keep-alive.".into(),
            ),
            ('C', 'H') => (
                Cause::DownstreamDisconnect,
                format!(
                    "The client gave up{total}, while {who}{on_route} was still waiting for the response headers of {to}{request}: the client's own timeout is shorter than the model's answer."
                ),
                "Raise the client's timeout (curl --max-time, the SDK's timeout), or make the model answer sooner (stream the response).".into(),
            ),
            ('C', _) | ('c', _) => (
                Cause::DownstreamDisconnect,
                format!(
                    "The client went away{total} ({}, {}){on_route}{request}.",
                    ended_by(c1),
                    phase(c2)
                ),
                "Usually nothing to fix on the serving side; if clients time out, raise their timeout or make responses faster.".into(),
            ),
            ('s', 'Q') | (_, 'Q') | ('R', _) => (
                Cause::CircuitBreaker,
                format!(
                    "{head}{on_route}{request}: {} {} — the backend's connection limit was reached.",
                    ended_by(c1),
                    phase(c2)
                ),
                "Check the router's and the Route's connection limits (`maxconn`, `haproxy.router.openshift.io/pod-concurrent-connections`) and scale the pods.".into(),
            ),
            ('L', _) => (
                if status.is_some_and(|s| s >= 400) {
                    Cause::Unknown
                } else {
                    Cause::Ok
                },
                format!(
                    "{head} itself{request}: it handled the request locally (a redirect to HTTPS, a health check)."
                ),
                String::new(),
            ),
            ('-', _) => match status {
                Some(s) if s >= 400 => (
                    Cause::AppError,
                    format!(
                        "{s} from behind {who}{on_route}{request}: the router passed the request to {to} and relayed its answer{total} — the status comes from the pod (in KServe Standard mode its auth proxy, `kube-rbac-proxy` or `oauth-proxy`, answers 401/403 for a missing or refused token; else the model server)."
                    ),
                    if s == 401 || s == 403 {
                        "Send a token that may `get` the InferenceService (`Authorization: Bearer …`; `oc auth can-i get inferenceservices/<name> -n <namespace> --as <user>`), as the auth proxy checks with a SubjectAccessReview.".into()
                    } else {
                        "Look at the pod's logs at that time: the status is its own.".into()
                    },
                ),
                _ => (
                    Cause::Ok,
                    if e.http {
                        format!(
                            "{code} from behind {who}{on_route}{request}: the router passed the request to {to} and relayed its answer{total}."
                        )
                    } else {
                        format!(
                            "A TCP (TLS) connection through {who}'s `{}` to `{}` ended normally{total}.",
                            e.frontend, e.backend
                        )
                    },
                    String::new(),
                ),
            },
            _ => (
                Cause::Unknown,
                format!(
                    "{head}{on_route}{request}: {} {}.",
                    ended_by(c1),
                    phase(c2)
                ),
                "Look at the router's own log and events around that time (`oc logs -n openshift-ingress <router pod> -c router`).".into(),
            ),
        }
    };
    RouterReport {
        input: l.input.clone(),
        line: l.line,
        status,
        cause,
        route,
        endpoint,
        request: e.request.clone(),
        termination: e.termination.clone(),
        summary,
        fix,
        evidence,
    }
}

/// Add the failed router lines to a `failures` report: one group per cause, status, Route (or
/// backend) and session state, origin `OpenShift router` (or `HAProxy`), kind `request` (a
/// router line has no request id). Filters apply as to access-log records: start time (the
/// accept date), status and cause. `lines` holds at least the failed lines (a streamed input
/// keeps only those); `read` is how many router lines were read in all, each a request.
pub fn add_router_failures(
    report: &mut crate::failures::FailuresReport,
    lines: &[RouterLine],
    read: u64,
    f: &crate::failures::Filters,
) {
    // The lines that did not fail are requests too.
    let failed_lines = lines.iter().filter(|l| l.entry.failed()).count();
    report.requests += usize::try_from(read)
        .unwrap_or(usize::MAX)
        .saturating_sub(failed_lines);
    use crate::failures::{Client, FailureGroup};
    use std::collections::{BTreeMap, BTreeSet};
    type Acc = (
        usize,
        Option<i64>,
        Option<i64>,
        BTreeSet<Client>,
        (String, String, String, &'static str),
    );
    let mut groups: BTreeMap<(Cause, Option<u16>, String, String), Acc> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.entry.failed()) {
        let e = &l.entry;
        let start = e.time_ms;
        let in_window = match start.and_then(chrono::DateTime::from_timestamp_millis) {
            Some(t) => !(f.since.is_some_and(|s| t < s) || f.until.is_some_and(|u| t >= u)),
            None => f.since.is_none() && f.until.is_none(),
        };
        if !in_window
            || f.status
                .as_deref()
                .is_some_and(|s| !crate::failures::status_matches(s, e.status))
        {
            continue;
        }
        let r = report_of(l);
        if !r.cause.is_failure() || f.cause.is_some_and(|want| want != r.cause) {
            continue;
        }
        let target = r.route.clone().unwrap_or_else(|| e.backend.clone());
        let role = if is_openshift(e) {
            "OpenShift router"
        } else {
            "HAProxy"
        };
        let g = groups
            .entry((r.cause, r.status, target, r.termination.clone()))
            .or_insert_with(|| {
                (
                    0,
                    None,
                    None,
                    BTreeSet::new(),
                    (
                        r.summary.clone(),
                        r.fix.clone(),
                        format!("{}:{}", l.input, l.line),
                        role,
                    ),
                )
            });
        g.0 += 1;
        if let Some(t) = start {
            g.1 = Some(g.1.map_or(t, |x| x.min(t)));
            g.2 = Some(g.2.map_or(t, |x| x.max(t)));
        }
        if g.3.len() < 16 {
            let address = e
                .client
                .rsplit_once(':')
                .map_or(e.client.as_str(), |(ip, _)| ip)
                .to_string();
            g.3.insert(Client {
                address,
                pod: None,
                has_sidecar: None,
            });
        }
    }
    let fmt = |t: Option<i64>| {
        t.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    for ((cause, status, target, _), (count, first, last, clients, (summary, fix, at, role))) in
        groups
    {
        report.requests += count;
        report.failed += count;
        report.groups.push(FailureGroup {
            cause,
            status,
            origin_role: role.into(),
            kind: "request",
            target,
            count,
            first_seen: fmt(first),
            last_seen: fmt(last),
            example_request_ids: Vec::new(),
            clients: clients.into_iter().collect(),
            summary,
            fix,
            example_evidence: at,
            example: None,
        });
    }
    crate::failures::sort_groups(&mut report.groups);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(line: &str) -> RouterReport {
        let entry = meshtrace_parsers::haproxy::parse(line).unwrap();
        report_of(&RouterLine {
            input: Arc::from("router.log"),
            line: 1,
            pod: None,
            entry,
        })
    }

    const PREFIX: &str = "10.0.140.21:51874 [05/Nov/2024:10:20:01.498] fe_sni~ ";

    #[test]
    fn states_and_statuses_name_their_cause() {
        let rows = [
            // (rest of the line after the frontend, cause, words in the summary, in the fix)
            (
                r#"be_secure:aiproject:granite/pod:granite-p-1:granite:https:10.131.0.37:8443 0/0/1/-1/30001 504 194 - - sH-- 3/2/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
                Cause::UpstreamTimeout,
                "response headers of pod granite-p-1 (10.131.0.37:8443)",
                "oc annotate route granite -n aiproject haproxy.router.openshift.io/timeout=5m",
            ),
            (
                r#"be_secure:aiproject:granite/<NOSRV> 0/-1/-1/-1/0 503 3291 - - SC-- 1/1/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
                Cause::NoHealthyUpstream,
                "no ready endpoint",
                "oc get endpoints -n aiproject",
            ),
            (
                r#"openshift_default/<NOSRV> 0/-1/-1/-1/0 503 3291 - - SC-- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
                Cause::RouteNotFound,
                "no Route matched",
                "oc get route -A",
            ),
            (
                r#"be_http:ns:m/pod:m-1:m:http:10.128.2.9:8080 0/0/-1/-1/3001 503 220 - - SC-- 1/1/0/0/3 0/0 "GET / HTTP/1.1""#,
                Cause::UpstreamConnectFailure,
                "refused",
                "listens on the Service's target port",
            ),
            (
                r#"be_http:ns:m/pod:m-1:m:http:10.128.2.9:8080 0/0/0/-1/12 502 210 - - SH-- 1/1/0/0/0 0/0 "GET / HTTP/1.1""#,
                Cause::UpstreamReset,
                "before sending complete response headers",
                "oc logs --previous",
            ),
            (
                r#"be_http:ns:m/pod:m-1:m:http:10.128.2.9:8080 0/0/0/-1/20000 -1 0 - - CH-- 1/1/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
                Cause::DownstreamDisconnect,
                "The client gave up after 20000 ms",
                "client's timeout",
            ),
            (
                r#"be_secure:aiproject:granite/pod:granite-p-1:granite:https:10.131.0.37:8443 0/0/1/12/13 403 160 - - ---- 1/1/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
                Cause::AppError,
                "kube-rbac-proxy",
                "oc auth can-i get inferenceservices",
            ),
            (
                r#"be_secure:aiproject:granite/pod:granite-p-1:granite:https:10.131.0.37:8443 0/0/1/812/813 200 1024 - - ---- 1/1/0/0/0 0/0 "POST /v1/completions HTTP/1.1""#,
                Cause::Ok,
                "relayed its answer after 813 ms",
                "",
            ),
            (
                r#"fe_sni/<NOSRV> -1/-1/-1/-1/10001 408 0 - - cR-- 1/1/0/0/0 0/0 "<BADREQ>""#,
                Cause::DownstreamDisconnect,
                "timeout http-request",
                "Nothing to fix",
            ),
        ];
        for (rest, cause, words, fix) in rows {
            let r = read(&format!("{PREFIX}{rest}"));
            assert_eq!(r.cause, cause, "{rest}: {}", r.summary);
            assert!(r.summary.contains(words), "{rest}: {}", r.summary);
            assert!(r.fix.contains(fix), "{rest}: {}", r.fix);
            assert!(
                r.evidence[0].contains(&format!("`{}`", r.termination)),
                "{:?}",
                r.evidence
            );
        }
    }

    /// A line built by hand (the fields are public) with no timers is read, not a panic.
    #[test]
    fn a_line_without_timers_is_read() {
        let mut entry = meshtrace_parsers::haproxy::parse(&format!(
            "{PREFIX}be_http:ns:m/<NOSRV> 0/-1/-1/-1/0 503 1 - - SC-- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""
        ))
        .unwrap();
        entry.timers.clear();
        let r = report_of(&RouterLine {
            input: Arc::from("router.log"),
            line: 1,
            pod: None,
            entry,
        });
        assert_eq!(r.cause, Cause::NoHealthyUpstream);
        assert!(r.evidence[1].contains("-1/-1/-1/-1/-1"), "{:?}", r.evidence);
    }

    #[test]
    fn a_tcp_line_reads_as_a_connection() {
        let r = read(
            "Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 [06/Feb/2009:12:12:51.443] public_ssl be_sni/fe_sni 0/0/5007 212 -- 0/0/0/0/3 0/0",
        );
        assert_eq!(r.cause, Cause::Ok);
        assert_eq!(r.status, None);
        assert!(r.summary.contains("TCP (TLS) connection"), "{}", r.summary);
        assert!(
            r.evidence[1].contains("Tw/Tc/Tt = 0/0/5007"),
            "{:?}",
            r.evidence
        );
    }
}
