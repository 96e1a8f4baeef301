//! Envelopes and prefixes around log lines: `kubectl logs --timestamps`, CRI and docker json-file.

use std::borrow::Cow;

use crate::json::{JsonValue, scan_object};

/// What wrapped the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// The line is the payload.
    None,
    /// `<RFC 3339 timestamp> ` prefix written by `kubectl logs --timestamps`.
    KubectlTimestamp,
    /// CRI log format `<timestamp> <stream> <F|P> <payload>` (the files under /var/log/pods).
    Cri,
    /// docker json-file `{"log": "...", "stream": "...", "time": "..."}`.
    DockerJson,
}

impl EnvelopeKind {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            EnvelopeKind::None => "none",
            EnvelopeKind::KubectlTimestamp => "kubectl-timestamps",
            EnvelopeKind::Cri => "cri",
            EnvelopeKind::DockerJson => "docker-json",
        }
    }
}

/// The envelope of one physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Which envelope.
    pub kind: EnvelopeKind,
    /// The container runtime's timestamp, as written.
    pub time: Option<Cow<'a, str>>,
    /// `stdout` / `stderr` when known.
    pub stream: Option<Cow<'a, str>>,
    /// The runtime split the line; the payload continues in the next line of the same stream.
    pub partial: bool,
}

impl Envelope<'_> {
    const NONE: Envelope<'static> = Envelope {
        kind: EnvelopeKind::None,
        time: None,
        stream: None,
        partial: false,
    };
}

/// Length of an RFC 3339 timestamp at the start of `s` (`2025-01-30T12:10:13.682034460Z`,
/// `…+02:00`), or 0.
pub fn rfc3339_prefix_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.len() < 20 || !crate::format::looks_like_timestamp(s) || b[10] != b'T' || b[16] != b':' {
        return 0;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    match b.get(i) {
        Some(b'Z') => i + 1,
        Some(b'+') | Some(b'-') if b.len() >= i + 6 && b[i + 3] == b':' => i + 6,
        _ => 0,
    }
}

/// Remove the envelope of one physical line. Never fails: an unrecognised line is its own payload.
pub fn strip_envelope(line: &str) -> (Envelope<'_>, Cow<'_, str>) {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if (line.starts_with("{\"log\":")
        || (line.starts_with('{') && memchr::memmem::find(line.as_bytes(), b"\"log\":").is_some()))
        && let Some(r) = docker_json(line)
    {
        return r;
    }
    let n = rfc3339_prefix_len(line);
    if n > 0 && line.as_bytes().get(n) == Some(&b' ') {
        let time = &line[..n];
        let rest = &line[n + 1..];
        for stream in ["stdout ", "stderr "] {
            if let Some(r) = rest.strip_prefix(stream) {
                let (partial, payload) = if let Some(p) = r.strip_prefix("F ") {
                    (false, p)
                } else if let Some(p) = r.strip_prefix("P ") {
                    (true, p)
                } else if r == "F" || r == "P" {
                    (r == "P", "")
                } else {
                    continue;
                };
                return (
                    Envelope {
                        kind: EnvelopeKind::Cri,
                        time: Some(Cow::Borrowed(time)),
                        stream: Some(Cow::Borrowed(stream.trim_end())),
                        partial,
                    },
                    Cow::Borrowed(payload),
                );
            }
        }
        return (
            Envelope {
                kind: EnvelopeKind::KubectlTimestamp,
                time: Some(Cow::Borrowed(time)),
                stream: None,
                partial: false,
            },
            Cow::Borrowed(rest),
        );
    }
    (Envelope::NONE, Cow::Borrowed(line))
}

fn docker_json(line: &str) -> Option<(Envelope<'_>, Cow<'_, str>)> {
    let mut log = None;
    let mut time = None;
    let mut stream = None;
    let mut other = false;
    scan_object(line, |k, v| match (&*k, v) {
        ("log", JsonValue::Str(s)) => log = Some(s),
        ("time", JsonValue::Str(s)) => time = Some(s),
        ("stream", JsonValue::Str(s)) => stream = Some(s),
        ("attrs", _) => {}
        _ => other = true,
    })
    .ok()?;
    if other {
        return None;
    }
    let log = log?;
    let (payload, partial) = match log {
        // Borrowed means the value had no escapes, so no trailing "\n": the runtime split it.
        Cow::Borrowed(s) => (Cow::Borrowed(s), true),
        Cow::Owned(mut s) => {
            let complete = s.ends_with('\n');
            if complete {
                s.pop();
                if s.ends_with('\r') {
                    s.pop();
                }
            }
            (Cow::Owned(s), !complete)
        }
    };
    Some((
        Envelope {
            kind: EnvelopeKind::DockerJson,
            time,
            stream,
            partial,
        },
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_prefix() {
        let (e, p) = strip_envelope(
            "2025-01-30T12:10:13.682034460Z [2025-01-30T12:10:13.279Z] \"GET / HTTP/1.1\"",
        );
        assert_eq!(e.kind, EnvelopeKind::KubectlTimestamp);
        assert_eq!(e.time.as_deref(), Some("2025-01-30T12:10:13.682034460Z"));
        assert!(p.starts_with("[2025"));
    }

    #[test]
    fn tab_after_timestamp_is_not_an_envelope() {
        let l = "2024-04-12T10:17:44.080629Z\tinfo\taccess\tconnection complete";
        let (e, p) = strip_envelope(l);
        assert_eq!(e.kind, EnvelopeKind::None);
        assert_eq!(p, l);
    }

    #[test]
    fn cri_full_and_partial() {
        let (e, p) = strip_envelope("2024-04-25T20:21:43.725123456Z stdout F [x] y\n");
        assert_eq!(
            (e.kind, e.partial, e.stream.as_deref()),
            (EnvelopeKind::Cri, false, Some("stdout"))
        );
        assert_eq!(p, "[x] y");
        let (e, p) = strip_envelope("2024-04-25T20:21:43.725123456+00:00 stderr P abc");
        assert!(e.partial);
        assert_eq!(p, "abc");
    }

    #[test]
    fn docker_json_file() {
        let (e, p) = strip_envelope(
            r#"{"log":"[2024-04-25T20:21:43.725Z] \"GET / HTTP/1.1\" 200\n","stream":"stdout","time":"2024-04-25T20:21:43.7Z"}"#,
        );
        assert_eq!(e.kind, EnvelopeKind::DockerJson);
        assert!(!e.partial);
        assert_eq!(p, "[2024-04-25T20:21:43.725Z] \"GET / HTTP/1.1\" 200");
        let (e, _) = strip_envelope(r#"{"log":"abc","stream":"stdout","time":"t"}"#);
        assert!(e.partial);
        // An access log in JSON with a "log" key among others is not an envelope.
        let (e, _) = strip_envelope(r#"{"log":"x","response_code":200}"#);
        assert_eq!(e.kind, EnvelopeKind::None);
    }
}
