//! A `curl -v` transcript pasted into a ticket: what the client saw — the final status line
//! (`< HTTP/1.1 403 Forbidden`, `< HTTP/2 504`), the response headers that tell which kind of
//! hop answered (`< server: istio-envoy`, `< x-request-id: …`), the request line and `Host`
//! (`> POST /v2/models/m/infer HTTP/1.1`, `> Host: …`), the connection (`* Connected to host
//! (ip) port 443`), the first lines of the body and curl's own error (`curl: (28) Operation
//! timed out …`).
//!
//! The line prefixes are curl's: `>` request headers sent, `<` response headers received, `*`
//! informational text; the body is printed unprefixed (curl's manual, `--verbose`). Lines may be
//! indented, end in `\r`, or carry a shell prompt before the command. Pure: no I/O; never
//! panics; every list is bounded ([`MAX_HEADERS`], [`MAX_BODY_LINES`], [`MAX_VALUE`]).

/// At most this many response headers of the final response are kept.
pub const MAX_HEADERS: usize = 64;
/// At most this many body lines are kept.
pub const MAX_BODY_LINES: usize = 16;
/// Longest header value or body line kept (longer ones are cut at a character boundary).
pub const MAX_VALUE: usize = 512;

/// What a `curl -v` transcript says the client saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The final response's status (informational `1xx` responses and earlier responses of a
    /// redirect chain are skipped).
    pub status: Option<u16>,
    /// Its HTTP version as written (`HTTP/1.1`, `HTTP/2`, `HTTP/1.0`).
    pub http_version: Option<String>,
    /// Its reason phrase (`Forbidden`; empty with HTTP/2).
    pub reason: Option<String>,
    /// The final response's headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Request method and path (`> POST /v1/models/m:predict HTTP/1.1`) of the last request.
    pub method: Option<String>,
    /// Request path.
    pub path: Option<String>,
    /// `> Host:` (HTTP/1) or `> :authority:` of the last request.
    pub host: Option<String>,
    /// `* Connected to <name> (<ip>) port <port>`: name.
    pub connected_host: Option<String>,
    /// … its IP.
    pub connected_ip: Option<String>,
    /// … its port.
    pub connected_port: Option<u16>,
    /// The first body lines of the final response (unprefixed lines after its headers).
    pub body: Vec<String>,
    /// curl's own error line, e.g. `(28) Operation timed out after 30001 milliseconds …`.
    pub curl_error: Option<String>,
    /// How many lines were read as part of the transcript (prefixed lines and curl errors).
    pub lines: usize,
}

impl Transcript {
    /// The value of response header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `server:` response header.
    pub fn server(&self) -> Option<&str> {
        self.header("server")
    }

    /// `x-request-id:` response header.
    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// The body lines joined by spaces (for matching known error pages).
    pub fn body_text(&self) -> String {
        self.body.join(" ")
    }
}

/// Cut `s` to at most [`MAX_VALUE`] bytes at a character boundary.
fn cap(s: &str) -> String {
    crate::words::cap(s, MAX_VALUE)
}

/// `HTTP/1.1 403 Forbidden` → (version, status, reason).
fn status_line(s: &str) -> Option<(&str, u16, &str)> {
    let s = s.trim();
    let (version, rest) = s.split_once(' ')?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let rest = rest.trim_start();
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = code.parse().ok()?;
    (100..=599)
        .contains(&status)
        .then_some((version, status, reason.trim()))
}

/// `Connected to host (1.2.3.4) port 443 (#0)` → (host, ip, port).
fn connected(s: &str) -> Option<(String, Option<String>, Option<u16>)> {
    let rest = s.strip_prefix("Connected to ")?;
    let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut ip = None;
    let mut rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix('(')
        && let Some((inner, after)) = r.split_once(')')
    {
        ip = Some(cap(inner));
        rest = after.trim_start();
    }
    let port = rest
        .strip_prefix("port ")
        .and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok());
    Some((cap(name), ip, port))
}

/// One physical line without its prompt, indentation and trailing `\r`.
fn clean(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n']).trim_start()
}

/// The rest of a line curl marked with `mark` (`< `, `> `, `* `, or the mark alone); a body
/// line such as `<html>` is not marked.
fn prefixed(line: &str, mark: char) -> Option<&str> {
    let rest = line.strip_prefix(mark)?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then(|| rest.trim_start())
}

/// Read a `curl -v` transcript. `None` when `text` holds no response status line (`< HTTP/…`)
/// and no curl error line: it is not a transcript.
pub fn parse(text: &str) -> Option<Transcript> {
    let mut t = Transcript::default();
    // Headers of the response being read; replaced at each new status line.
    let mut in_headers = false;
    let mut after_headers = false;
    let mut saw_status = false;
    for raw in text.split('\n') {
        let line = clean(raw);
        if let Some(rest) = prefixed(line, '<') {
            t.lines += 1;
            let rest = rest.trim_end();
            if let Some((version, status, reason)) = status_line(rest) {
                if (100..200).contains(&status) {
                    // An interim response (100 Continue): its headers are not the answer.
                    in_headers = false;
                    continue;
                }
                saw_status = true;
                t.status = Some(status);
                t.http_version = Some(cap(version));
                t.reason = Some(cap(reason));
                t.headers.clear();
                t.body.clear();
                in_headers = true;
                after_headers = false;
                continue;
            }
            if rest.is_empty() {
                if in_headers {
                    in_headers = false;
                    after_headers = true;
                }
                continue;
            }
            if in_headers
                && t.headers.len() < MAX_HEADERS
                && let Some((k, v)) = rest.split_once(':')
                && !k.is_empty()
                && !k.contains(' ')
            {
                t.headers.push((k.to_ascii_lowercase(), cap(v.trim())));
            }
            continue;
        }
        if let Some(rest) = prefixed(line, '>') {
            t.lines += 1;
            let rest = rest.trim_end();
            let lower = rest.to_ascii_lowercase();
            if lower.starts_with("host:") || lower.starts_with(":authority:") {
                let value = if lower.starts_with("host:") {
                    rest.get(5..)
                } else {
                    rest.get(11..)
                };
                t.host = value.map(|v| cap(v.trim()));
            } else if let Some((method, rest)) = rest.split_once(' ')
                && !method.is_empty()
                && method.bytes().all(|b| b.is_ascii_uppercase())
                && let Some((path, version)) = rest.rsplit_once(' ')
                && version.starts_with("HTTP/")
            {
                t.method = Some(cap(method));
                t.path = Some(cap(path));
            }
            continue;
        }
        if let Some(rest) = prefixed(line, '*') {
            t.lines += 1;
            let rest = rest.trim();
            if let Some((name, ip, port)) = connected(rest) {
                t.connected_host = Some(name);
                t.connected_ip = ip;
                t.connected_port = port;
            }
            continue;
        }
        if let Some(pos) = line.find("curl: (") {
            let rest = line.get(pos + 6..).unwrap_or("");
            if rest.len() > 2 && rest.as_bytes().get(1).is_some_and(u8::is_ascii_digit) {
                t.lines += 1;
                t.curl_error = Some(cap(rest.trim()));
                continue;
            }
        }
        // curl's progress meter and data markers (`{ [5 bytes data]`) are not the body.
        if line.starts_with("{ [") || line.starts_with("} [") {
            continue;
        }
        if after_headers && !line.is_empty() && t.body.len() < MAX_BODY_LINES {
            t.body.push(cap(line.trim_end()));
        }
    }
    (saw_status || t.curl_error.is_some()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kube-rbac-proxy refusing a token that may not `get` the InferenceService (Go's
    /// `http.Error`: `text/plain; charset=utf-8`, `x-content-type-options: nosniff`, no `server`).
    const RBAC_403: &str = "$ curl -v -H \"Authorization: Bearer $TOKEN\" https://sklearn-iris-demo.apps.example.com/v1/models/sklearn-iris:predict -d @in.json\n\
*   Trying 10.0.140.21:443...\n\
* Connected to sklearn-iris-demo.apps.example.com (10.0.140.21) port 443 (#0)\n\
> POST /v1/models/sklearn-iris:predict HTTP/1.1\r\n\
> Host: sklearn-iris-demo.apps.example.com\r\n\
> User-Agent: curl/7.76.1\r\n\
> Authorization: Bearer sha256~REDACTED\r\n\
>\r\n\
< HTTP/1.1 403 Forbidden\r\n\
< content-type: text/plain; charset=utf-8\r\n\
< x-content-type-options: nosniff\r\n\
< date: Thu, 03 Dec 2026 10:15:02 GMT\r\n\
< content-length: 123\r\n\
< set-cookie: 0f1e2d3c4b5a69788796a5b4c3d2e1f0=abc; path=/; HttpOnly; Secure; SameSite=None\r\n\
<\r\n\
Forbidden (user=system:serviceaccount:demo:default, verb=get, resource=inferenceservices, subresource=)\n\
* Connection #0 to host sklearn-iris-demo.apps.example.com left intact\n";

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            text: &'static str,
            status: Option<u16>,
            server: Option<&'static str>,
            host: Option<&'static str>,
            port: Option<u16>,
            body_has: Option<&'static str>,
            curl_error: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "kube-rbac-proxy 403, HTTP/1.1, CRLF, prompt line",
                text: RBAC_403,
                status: Some(403),
                server: None,
                host: Some("sklearn-iris-demo.apps.example.com"),
                port: Some(443),
                body_has: Some("Forbidden (user=system:serviceaccount:demo:default"),
                curl_error: None,
            },
            Case {
                name: "HTTP/2 through an Envoy, lower-case headers, empty reason",
                text: "* Connected to gw.example.com (192.0.2.7) port 443\n> GET /v1/models HTTP/2\n> :authority: gw.example.com\n< HTTP/2 503 \n< server: istio-envoy\n< x-request-id: 3f2a9c1e-0b7d-4e55-9a21-6c8e4b2d1f00\n< content-length: 19\n<\nno healthy upstream\n",
                status: Some(503),
                server: Some("istio-envoy"),
                host: Some("gw.example.com"),
                port: Some(443),
                body_has: Some("no healthy upstream"),
                curl_error: None,
            },
            Case {
                name: "OpenShift router 503 page (HTTP/1.0, no server header)",
                text: "> GET / HTTP/1.1\n> Host: nothing.apps.example.com\n>\n< HTTP/1.0 503 Service Unavailable\n< pragma: no-cache\n< cache-control: private, max-age=0, no-cache, no-store\n< connection: close\n< content-type: text/html\n<\n<html>\n  <body>\n    <h1>Application is not available</h1>\n",
                status: Some(503),
                server: None,
                host: Some("nothing.apps.example.com"),
                port: None,
                body_has: Some("Application is not available"),
                curl_error: None,
            },
            Case {
                name: "100 Continue then the real answer; indented paste",
                text: "   > POST /infer HTTP/1.1\n   > Expect: 100-continue\n   < HTTP/1.1 100 Continue\n   < HTTP/1.1 504 Gateway Time-out\n   < content-type: text/html\n   <\n   <html><body><h1>504 Gateway Time-out</h1>\n",
                status: Some(504),
                server: None,
                host: None,
                port: None,
                body_has: Some("504 Gateway Time-out"),
                curl_error: None,
            },
            Case {
                name: "redirect chain (-L): the last response counts",
                text: "< HTTP/1.1 302 Found\n< location: https://x/\n< server: envoy\n<\n< HTTP/1.1 401 Unauthorized\n< content-type: text/plain; charset=utf-8\n<\nUnauthorized\n",
                status: Some(401),
                server: None,
                host: None,
                port: None,
                body_has: Some("Unauthorized"),
                curl_error: None,
            },
            Case {
                name: "no response at all: curl's own error",
                text: "* Connected to m.example.com (10.0.0.1) port 443 (#0)\n> POST / HTTP/1.1\ncurl: (28) Operation timed out after 30001 milliseconds with 0 bytes received\n",
                status: None,
                server: None,
                host: None,
                port: Some(443),
                body_has: None,
                curl_error: Some(
                    "(28) Operation timed out after 30001 milliseconds with 0 bytes received",
                ),
            },
            Case {
                name: "new curl: Connected without (#0)",
                text: "* Connected to h (::1) port 8443\n< HTTP/1.1 200 OK\n",
                status: Some(200),
                server: None,
                host: None,
                port: Some(8443),
                body_has: None,
                curl_error: None,
            },
        ];
        for c in cases {
            let t = parse(c.text).unwrap_or_else(|| panic!("{}: not read", c.name));
            assert_eq!(t.status, c.status, "{}", c.name);
            assert_eq!(t.server(), c.server, "{}", c.name);
            assert_eq!(t.host.as_deref(), c.host, "{}", c.name);
            assert_eq!(t.connected_port, c.port, "{}", c.name);
            match c.body_has {
                Some(b) => assert!(t.body_text().contains(b), "{}: {:?}", c.name, t.body),
                None => assert!(t.body.is_empty(), "{}: {:?}", c.name, t.body),
            }
            assert_eq!(t.curl_error.as_deref(), c.curl_error, "{}", c.name);
        }
    }

    #[test]
    fn request_line_and_ids() {
        let t = parse(RBAC_403).unwrap();
        assert_eq!(t.method.as_deref(), Some("POST"));
        assert_eq!(t.path.as_deref(), Some("/v1/models/sklearn-iris:predict"));
        assert_eq!(t.connected_ip.as_deref(), Some("10.0.140.21"));
        assert_eq!(t.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(t.reason.as_deref(), Some("Forbidden"));
        assert_eq!(t.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(t.request_id(), None);
        let t = parse("< HTTP/2 200\n< x-request-id: abc\n").unwrap();
        assert_eq!(t.request_id(), Some("abc"));
    }

    #[test]
    fn not_a_transcript() {
        for s in [
            "",
            "hello\nworld",
            "[2026-12-03T10:15:02.123Z] \"GET / HTTP/1.1\" 403 - rbac_access_denied",
            "< HTTP/1.1 abc Bad",
            "< HTTP/1.1 999 Nope",
            "> GET / HTTP/1.1\n> Host: x\n",
            "curl: (x) no digits",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn bounded_and_never_panics() {
        let mut s = String::from("< HTTP/1.1 500 Internal Server Error\n");
        for i in 0..1000 {
            s.push_str(&format!("< h{i}: {}\n", "é".repeat(400)));
        }
        s.push_str("<\n");
        for _ in 0..1000 {
            s.push_str("body line\n");
        }
        let t = parse(&s).unwrap();
        assert_eq!(t.headers.len(), MAX_HEADERS);
        assert!(t.headers.iter().all(|(_, v)| v.len() <= MAX_VALUE));
        assert_eq!(t.body.len(), MAX_BODY_LINES);
        for s in [
            "<",
            ">",
            "*",
            "* Connected to",
            "* Connected to x (",
            "< HTTP/",
            "curl: (",
            "\u{0}< HTTP/1.1 200 \u{202e}",
        ] {
            let _ = parse(s);
        }
    }
}
