//! Physical lines in, logical records out: envelopes, CRI partial lines and pasted wrapped lines.
//!
//! [`Assembler`] is fed one physical line at a time (a streaming push API: the caller does the
//! reading) and emits [`Event`]s. A complete line is parsed in place with no copy. A line that
//! ends before its format does is held back; if the next line is not a record of its own (it is
//! indented, or does not parse), the two are joined — with nothing or one space between them,
//! whichever parses further — the way a line wrapped in a ticket or a Markdown document is
//! re-joined. A held line that nothing continues is emitted with its missing fields listed.
//! A JSON object left open at the end of its line (a record pretty-printed by `jq`, or a long
//! line hard-wrapped by a terminal or a ticket) is held until its braces close, and its pieces
//! joined: between two JSON tokens nothing is needed, and inside a string the line break was not
//! the writer's (JSON strings cannot hold one).

use std::borrow::Cow;

use crate::detect::{LineOutcome, LineParser, Malformed, NotAccessLog};
use crate::envelope::{EnvelopeKind, strip_envelope};
use crate::record::RawRecord;

/// Maximum physical lines joined into one record.
const MAX_JOIN: u32 = 16;
/// Maximum bytes held for a record being joined.
const MAX_PENDING: usize = 1 << 20;
/// Maximum physical lines joined into one JSON record (Istio's record pretty-printed takes
/// about 30, one per key).
const MAX_JSON_JOIN: u32 = 256;

/// One access-log record with where it came from.
#[derive(Debug)]
pub struct Located<'a> {
    /// 1-based number of the record's first physical line.
    pub line: u64,
    /// Physical lines it spans (1 unless re-joined).
    pub lines: u32,
    /// Envelope of its first physical line.
    pub envelope: EnvelopeKind,
    /// The runtime timestamp from the envelope, if any.
    pub envelope_time: Option<Cow<'a, str>>,
    /// The record.
    pub record: RawRecord<'a>,
}

/// What the assembler found.
// Records stay inline (no Box) so the per-line hot path does not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event<'a> {
    /// An access-log record.
    Record(Located<'a>),
    /// A line that is not an access log.
    Skipped {
        /// 1-based line number.
        line: u64,
        /// What it is.
        kind: NotAccessLog,
    },
    /// A line that should have been an access log but is not in any known format.
    Malformed {
        /// 1-based line number.
        line: u64,
        /// The text (payload after the envelope).
        text: Cow<'a, str>,
        /// Why.
        error: Malformed,
    },
}

struct Pending {
    text: String,
    line: u64,
    lines: u32,
    fields: usize,
    envelope: EnvelopeKind,
    envelope_time: Option<String>,
    /// A JSON object still open: where the scan of `text` stands.
    json: Option<JsonScan>,
    /// A blank line came after the last piece (one is let through: a page's line wrapped
    /// around an empty line).
    blank: bool,
}

/// Where a scan of JSON text stands at the end of what it was fed: how many objects and
/// arrays are open, and whether it stopped inside a string (after a `\\`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct JsonScan {
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl JsonScan {
    /// Feed `bytes`; returns the offset just past the `}` or `]` that closed the outermost
    /// object, if it closed.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth = self.depth.saturating_add(1),
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The scan of a line that opens a JSON object and leaves it open, if `payload` is one.
    fn left_open(payload: &str) -> Option<JsonScan> {
        let text = payload.trim_start();
        if !text.starts_with('{') || text.len() >= MAX_PENDING {
            return None;
        }
        let mut scan = JsonScan::default();
        match scan.feed(text.as_bytes()) {
            None if scan.depth > 0 => Some(scan),
            _ => None,
        }
    }
}

/// Streaming record assembler for one input.
pub struct Assembler {
    parser: LineParser,
    pending: Option<Pending>,
    cri_partial: Option<(u64, String, Option<String>)>,
    join_wrapped: bool,
}

impl Assembler {
    /// New assembler using `parser`. `join_wrapped` enables re-joining wrapped lines.
    pub fn new(parser: LineParser, join_wrapped: bool) -> Assembler {
        Assembler {
            parser,
            pending: None,
            cri_partial: None,
            join_wrapped,
        }
    }

    /// Is this physical line certainly a successful request that needs no parsing: nothing is
    /// pending (no wrapped line or partial runtime line to join), it has no envelope and the
    /// parser's cheap test certifies it ([`LineParser::is_plain_success`])?
    pub fn is_plain_success(&self, raw: &[u8]) -> bool {
        self.pending.is_none() && self.cri_partial.is_none() && self.parser.is_plain_success(raw)
    }

    /// Is `raw` a blank line (spaces, tabs, a `\r`) that [`Assembler::push`] would drop
    /// without a trace? It is, unless a wrapped or partial line is pending (one blank line may
    /// sit inside a wrapped line; a second one ends it). A reader can then skip the line without handing it over: a log of blank lines is read
    /// as fast as it is split.
    pub fn drops_blank(&self, raw: &[u8]) -> bool {
        self.pending.is_none()
            && self.cri_partial.is_none()
            && raw
                .iter()
                .all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c'))
    }

    /// Feed one physical line (with or without its newline).
    pub fn push<'a>(&mut self, lineno: u64, raw: &'a str, out: &mut dyn FnMut(Event<'_>)) {
        let (env, payload) = strip_envelope(raw);
        // CRI / docker partial lines: collect until the final piece.
        if env.partial {
            let entry = self.cri_partial.get_or_insert_with(|| {
                (
                    lineno,
                    String::new(),
                    env.time.as_ref().map(|t| t.to_string()),
                )
            });
            if entry.1.len() < MAX_PENDING {
                entry.1.push_str(&payload);
            }
            return;
        }
        if let Some((first, mut buf, time)) = self.cri_partial.take() {
            buf.push_str(&payload);
            self.push_payload(first, env.kind, time.map(Cow::Owned), Cow::Owned(buf), out);
            return;
        }
        self.push_payload(lineno, env.kind, env.time, payload, out);
    }

    fn push_payload<'a>(
        &mut self,
        lineno: u64,
        envelope: EnvelopeKind,
        envelope_time: Option<Cow<'a, str>>,
        payload: Cow<'a, str>,
        out: &mut dyn FnMut(Event<'_>),
    ) {
        if let Some(p) = self.pending.take() {
            let taken = match p.json {
                Some(scan) => self.continue_json(p, scan, &payload, out),
                None => self.continue_wrapped(p, &payload, out),
            };
            if taken == Taken::Yes {
                return;
            }
        }
        self.read_alone(lineno, envelope, envelope_time, payload, out);
    }

    /// The line after a held line that was cut: joined to it when it continues it (and held
    /// again while the join still lacks fields); else the held line is emitted as it is and
    /// the line is left to be read on its own.
    fn continue_wrapped(
        &mut self,
        p: Pending,
        payload: &str,
        out: &mut dyn FnMut(Event<'_>),
    ) -> Taken {
        // One blank line may sit inside a wrapped line (a page's paragraph break); a second
        // one, or a line that is a record of its own, ends the wait.
        if payload.trim().is_empty() {
            if p.blank {
                self.flush(p, out);
                return Taken::No;
            }
            self.pending = Some(Pending { blank: true, ..p });
            return Taken::Yes;
        }
        let continuation = payload.starts_with([' ', '\t']) || !self.starts_record(payload);
        if !continuation {
            self.flush(p, out);
            return Taken::No;
        }
        // The blank line the join goes over is one of the record's physical lines.
        let p = Pending {
            lines: p.lines + u32::from(p.blank),
            blank: false,
            ..p
        };
        match self.try_join(&p, payload) {
            Joined::Complete(text) => {
                let lines = p.lines + 1;
                self.emit_held(Pending { text, ..p }, lines, out);
                Taken::Yes
            }
            Joined::Progress(text, fields)
                if p.lines + 1 < MAX_JOIN && text.len() < MAX_PENDING =>
            {
                self.pending = Some(Pending {
                    text,
                    lines: p.lines + 1,
                    fields,
                    ..p
                });
                Taken::Yes
            }
            Joined::Progress(..) | Joined::NoProgress => {
                self.flush(p, out);
                Taken::No
            }
        }
    }

    /// The line after a JSON object left open: its next piece, unless it begins a record of
    /// its own or is blank (then the object is emitted for what it is, and the line is left
    /// to be read on its own). The pieces are joined with nothing between them: indentation
    /// outside a string is dropped, and inside one the line break was a wrap. Once the object
    /// closes, it is read as one line; a `,` or `]` after it (an array of records) is left out.
    fn continue_json(
        &mut self,
        mut p: Pending,
        mut scan: JsonScan,
        payload: &str,
        out: &mut dyn FnMut(Event<'_>),
    ) -> Taken {
        if payload.trim().is_empty() || self.starts_record(payload) {
            self.flush(p, out);
            return Taken::No;
        }
        let piece = if scan.in_string {
            payload
        } else {
            payload.trim_start()
        };
        let at = p.text.len();
        p.text.push_str(piece);
        p.lines += 1;
        match scan.feed(&p.text.as_bytes()[at..]) {
            Some(end) => {
                p.text.truncate(at + end);
                self.flush(p, out);
            }
            None if p.lines < MAX_JSON_JOIN && p.text.len() < MAX_PENDING => {
                p.json = Some(scan);
                self.pending = Some(p);
            }
            None => self.flush(p, out),
        }
        Taken::Yes
    }

    /// A line read on its own (nothing held before it, or what was held is done).
    fn read_alone<'a>(
        &mut self,
        lineno: u64,
        envelope: EnvelopeKind,
        envelope_time: Option<Cow<'a, str>>,
        payload: Cow<'a, str>,
        out: &mut dyn FnMut(Event<'_>),
    ) {
        let outcome = self.parser.parse(&payload);
        if let Some(record) = reread_with_prefix(
            &mut self.parser,
            envelope,
            envelope_time.as_deref(),
            &payload,
            &outcome,
        ) {
            out(Event::Record(Located {
                line: lineno,
                lines: 1,
                envelope: EnvelopeKind::None,
                envelope_time: None,
                record,
            }));
            return;
        }
        match outcome {
            LineOutcome::Record(rec) => out(Event::Record(Located {
                line: lineno,
                lines: 1,
                envelope,
                envelope_time,
                record: rec,
            })),
            LineOutcome::Truncated { fields, .. } if self.join_wrapped => {
                self.pending = Some(Pending {
                    text: payload.into_owned(),
                    line: lineno,
                    lines: 1,
                    fields,
                    envelope,
                    envelope_time: envelope_time.map(Cow::into_owned),
                    json: None,
                    blank: false,
                });
            }
            LineOutcome::Truncated { record, .. } => out(Event::Record(Located {
                line: lineno,
                lines: 1,
                envelope,
                envelope_time,
                record,
            })),
            LineOutcome::NotAccessLog(kind) => out(Event::Skipped { line: lineno, kind }),
            LineOutcome::Malformed(error) => match JsonScan::left_open(&payload) {
                Some(scan) if self.join_wrapped => {
                    self.pending = Some(Pending {
                        text: payload.trim_start().to_owned(),
                        line: lineno,
                        lines: 1,
                        fields: 0,
                        envelope,
                        envelope_time: envelope_time.map(Cow::into_owned),
                        json: Some(scan),
                        blank: false,
                    });
                }
                _ => out(Event::Malformed {
                    line: lineno,
                    text: payload,
                    error,
                }),
            },
            LineOutcome::Blank => {}
        }
    }

    /// Does this payload begin a record of its own (so it cannot be a continuation)?
    fn starts_record(&self, payload: &str) -> bool {
        let mut p = self.parser.clone();
        match p.parse(payload) {
            LineOutcome::Record(_)
            | LineOutcome::Truncated { .. }
            | LineOutcome::NotAccessLog(_) => true,
            LineOutcome::Malformed(_) | LineOutcome::Blank => false,
        }
    }

    fn try_join(&self, p: &Pending, next: &str) -> Joined {
        let cont = next.trim_start();
        let mut best = Joined::NoProgress;
        let mut best_fields = p.fields;
        for sep in ["", " "] {
            let mut text = String::with_capacity(p.text.len() + sep.len() + cont.len());
            text.push_str(&p.text);
            text.push_str(sep);
            text.push_str(cont);
            let mut parser = self.parser.clone();
            match parser.parse(&text) {
                LineOutcome::Record(_) => return Joined::Complete(text),
                LineOutcome::Truncated { fields, .. } if fields > best_fields => {
                    best_fields = fields;
                    best = Joined::Progress(text, fields);
                }
                _ => {}
            }
        }
        best
    }

    /// Emit what a held line reads as now (joined, closed or given up on).
    fn flush(&mut self, p: Pending, out: &mut dyn FnMut(Event<'_>)) {
        let lines = p.lines;
        self.emit_held(p, lines, out);
    }

    /// Emit what the held text `p` reads as, spanning `lines` physical lines. A whole record
    /// keeps the parser's state from reading it (the format that matched, a JSON key mapping
    /// learnt), as a line read on its own does.
    fn emit_held(&mut self, p: Pending, lines: u32, out: &mut dyn FnMut(Event<'_>)) {
        let mut parser = self.parser.clone();
        let outcome = parser.parse(&p.text);
        if matches!(outcome, LineOutcome::Record(_)) {
            self.parser = parser;
        }
        match outcome {
            LineOutcome::Record(record) | LineOutcome::Truncated { record, .. } => {
                out(Event::Record(Located {
                    line: p.line,
                    lines,
                    envelope: p.envelope,
                    envelope_time: p.envelope_time.map(Cow::Owned),
                    record,
                }))
            }
            LineOutcome::Malformed(error) => out(Event::Malformed {
                line: p.line,
                text: Cow::Borrowed(&p.text),
                error,
            }),
            LineOutcome::NotAccessLog(kind) => out(Event::Skipped { line: p.line, kind }),
            LineOutcome::Blank => {}
        }
    }

    /// End of input: emit anything held back.
    pub fn finish(&mut self, out: &mut dyn FnMut(Event<'_>)) {
        if let Some((line, buf, time)) = self.cri_partial.take() {
            self.push_payload(
                line,
                EnvelopeKind::Cri,
                time.map(Cow::Owned),
                Cow::Owned(buf),
                out,
            );
        }
        if let Some(p) = self.pending.take() {
            self.flush(p, out);
        }
    }
}

/// A `kubectl logs --timestamps` prefix cannot be told from a record's own leading bare
/// `%START_TIME% ` (Envoy writes RFC 3339 times too), so such a line is first read without it.
/// When that reading lacks the START_TIME (the rest was read as a line cut at its start), the
/// whole line is read again with the prefix as its first field; that reading is returned when
/// it has its START_TIME.
pub fn reread_with_prefix(
    parser: &mut LineParser,
    envelope: EnvelopeKind,
    time: Option<&str>,
    payload: &str,
    outcome: &LineOutcome<'_>,
) -> Option<RawRecord<'static>> {
    let (EnvelopeKind::KubectlTimestamp, Some(time)) = (envelope, time) else {
        return None;
    };
    let record = match outcome {
        LineOutcome::Record(r) | LineOutcome::Truncated { record: r, .. } => r,
        _ => return None,
    };
    let lost = |r: &RawRecord<'_>| r.missing.iter().any(|m| &**m == "START_TIME");
    if !lost(record) {
        return None;
    }
    let whole = format!("{time} {payload}");
    match parser.parse(&whole) {
        LineOutcome::Record(r) | LineOutcome::Truncated { record: r, .. } if !lost(&r) => {
            Some(r.into_owned())
        }
        _ => None,
    }
}

/// Did the line after a held one go into it?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    Yes,
    No,
}

enum Joined {
    Complete(String),
    Progress(String, usize),
    NoProgress,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Slot;

    /// Every event of `input` read line by line, a record described by `record`, a skipped
    /// line as `N skip <kind>`, a malformed one as `N bad <why>`.
    pub(super) fn events(input: &str, record: impl Fn(&Located<'_>) -> String) -> Vec<String> {
        let mut a = Assembler::new(LineParser::auto(), true);
        let mut out = Vec::new();
        let mut sink = |e: Event<'_>| {
            out.push(match e {
                Event::Record(l) => record(&l),
                Event::Skipped { line, kind } => format!("{line} skip {}", kind.kind()),
                Event::Malformed { line, error, .. } => format!("{line} bad {error}"),
            })
        };
        for (i, l) in input.lines().enumerate() {
            a.push(i as u64 + 1, l, &mut sink);
        }
        a.finish(&mut sink);
        out
    }

    fn run(input: &str) -> Vec<String> {
        events(input, |l| {
            format!(
                "{}+{} {} {} missing={}",
                l.line,
                l.lines,
                l.record.format(),
                l.record.get(Slot::UpstreamCluster).unwrap_or("?"),
                l.record.missing.len()
            )
        })
    }

    /// A format starting with a bare `%START_TIME% ` keeps its time, whether or not the log
    /// also carries a `kubectl logs --timestamps` prefix.
    #[test]
    fn bare_start_time_is_not_taken_for_a_kubectl_prefix() {
        let spec = crate::detect::FormatSpec::parse(
            "%START_TIME% %RESPONSE_CODE% %RESPONSE_FLAGS% \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%\" %REQ(X-REQUEST-ID)%\n",
        )
        .unwrap();
        let table = [
            // (line, start time, status, envelope)
            (
                "2024-04-25T20:21:43.725Z 403 - \"POST /x\" id-1",
                "2024-04-25T20:21:43.725Z",
                "403",
                "none",
            ),
            (
                "2024-04-25T20:21:44.001Z 503 UF \"GET /\" id-2",
                "2024-04-25T20:21:44.001Z",
                "503",
                "none",
            ),
            // A real --timestamps prefix before the record's own time: the prefix is the envelope.
            (
                "2024-04-25T20:21:45.000000123Z 2024-04-25T20:21:44.999Z 200 - \"GET /\" id-3",
                "2024-04-25T20:21:44.999Z",
                "200",
                "kubectl-timestamps",
            ),
        ];
        for (line, time, status, env) in table {
            let mut a = Assembler::new(LineParser::new(&spec), true);
            let mut got = Vec::new();
            a.push(1, line, &mut |e| {
                if let Event::Record(l) = e {
                    got.push((
                        l.record.get(Slot::StartTime).map(str::to_string),
                        l.record.get(Slot::ResponseCode).map(str::to_string),
                        l.envelope.name(),
                        l.record.missing.len(),
                    ));
                }
            });
            a.finish(&mut |_| {});
            assert_eq!(
                got,
                vec![(Some(time.to_string()), Some(status.to_string()), env, 0)],
                "{line}"
            );
        }
    }

    #[test]
    fn joins_wrapped_lines_without_or_with_space() {
        let input = "GET / HTTP/2\" 400 - via_upstream - \"-\" 0 32 26 24 \"10.134.0.2\" \"\n    curl/8.6.0\" \"4791d0d3\" \"h\" \"10.135.0.43:8081\" outbound|80\n    ||knative-local-gateway.istio-system.svc.cluster.local 10.135.0.43:39352 10.135.0.43:8443 10.134.0.2:56558 sni -\n";
        assert_eq!(
            run(input),
            vec![
                "1+3 istio-1.23 outbound|80||knative-local-gateway.istio-system.svc.cluster.local missing=1"
            ]
        );
    }

    /// A line wrapped around an empty line, as a documentation page printed it (a Tetrate
    /// Service Bridge troubleshooting page): joined over the blank line; two blank lines end
    /// the wait.
    #[test]
    fn one_blank_line_inside_a_wrapped_line_is_gone_over() {
        let head = "[2022-09-13T11:17:13.471Z] \"GET /test HTTP/1.1\" 502 UPE upstream_reset_before_response_started{protocol_error} - \"-\" 0 87 1";
        let tail = " - \"-\" \"curl/7.83.1\" \"fbcd5bff\" \"transfer:8080\" \"10.0.2.7:8080\" inbound|8080|| 127.0.0.6:53799 10.0.2.7:8080 10.0.0.21:59960 outbound_.8080_._.transfer.test.svc.cluster.local default";
        assert_eq!(
            run(&format!("{head}\n\n{tail}\n")),
            vec!["1+3 istio-1.23 inbound|8080|| missing=0"]
        );
        let apart = run(&format!("{head}\n\n\n{tail}\n"));
        assert!(
            apart[0].starts_with("1+1 istio-1.23 ? missing="),
            "{apart:?}"
        );
        assert_eq!(apart.len(), 2, "{apart:?}");
    }

    #[test]
    fn truncated_last_line_is_kept_with_missing_fields() {
        let input = "[2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 418 - via_upstream - \"-\" 0 135 4 4 \"-\" \"curl\"\n[2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 418 - via_upstream - \"-\" 0 135 4 4 \"-\" \"curl\" \"id\" \"httpbin:8000\" \"10.44.1.27:80\" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default\n";
        let out = run(input);
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with("1+1 istio-1.23 ? missing=9"), "{out:?}");
        assert!(
            out[1].starts_with("2+1 istio-1.23 outbound|8000"),
            "{out:?}"
        );
    }

    /// A blank line is dropped unseen only when nothing waits for a continuation: after the
    /// first piece of a wrapped line or of a CRI partial line it goes to `push` (which ends
    /// the wait), so what the assembler makes of the log is the same with the skip.
    #[test]
    fn blank_lines_are_dropped_unseen_only_when_nothing_waits() {
        let mut a = Assembler::new(LineParser::auto(), true);
        assert!(a.drops_blank(b""));
        assert!(a.drops_blank(b" \t\r"));
        assert!(!a.drops_blank(b" x"));
        let head = "[2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 418 - via_upstream - \"-\" 0 135 4 4 \"-\" \"curl\"";
        a.push(1, head, &mut |_| {});
        assert!(!a.drops_blank(b""), "a wrapped line waits");
        let mut b = Assembler::new(LineParser::auto(), true);
        b.push(
            1,
            "2024-04-25T20:21:43.7Z stdout P [2020-11-25T21:26:18.409Z] \"GET /",
            &mut |_| {},
        );
        assert!(!b.drops_blank(b""), "a partial line waits");
    }

    #[test]
    fn cri_partial_lines_are_joined() {
        let input = "2024-04-25T20:21:43.7Z stdout P [2020-11-25T21:26:18.409Z] \"GET /status/418 HTTP/1.1\" 418 - via_upstream - \"-\" 0 135 4 4 \"-\" \"curl\" \"id\" \"httpbin:8000\"\n2024-04-25T20:21:43.7Z stdout F  \"10.44.1.27:80\" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default\n";
        assert_eq!(
            run(input),
            vec!["1+1 istio-1.23 outbound|8000||httpbin.foo.svc.cluster.local missing=0"]
        );
    }
}

#[cfg(test)]
mod json_join_tests {
    use super::*;
    use crate::format::Slot;

    /// Istio's JSON record (its default key set), one line.
    const RECORD: &str = r#"{"authority":"x.default.svc.cluster.local","bytes_received":0,"bytes_sent":91,"downstream_local_address":"10.0.0.9:80","downstream_remote_address":"10.0.0.1:5555","duration":3,"method":"GET","path":"/v1/models/m:predict","protocol":"HTTP/1.1","request_id":"5a1d-0001","requested_server_name":null,"response_code":503,"response_code_details":"upstream_reset_before_response_started{connection_failure}","response_flags":"UF","route_name":"default","start_time":"2022-09-10T14:27:14.956Z","upstream_cluster":"outbound|80||x.default.svc.cluster.local","upstream_host":"10.0.0.5:8080","upstream_local_address":"-","upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":"curl/8.6.0","x_forwarded_for":null}"#;

    /// `record` as `jq .` prints it: one key per line, two spaces of indentation.
    fn pretty(record: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(record).unwrap();
        serde_json::to_string_pretty(&v).unwrap()
    }

    /// (first line, physical lines, status, request id) of each record; `bad N` for a
    /// malformed line N, `skip N` for a line that is no access log.
    fn read(input: &str) -> Vec<String> {
        super::tests::events(input, |l| {
            format!(
                "{}+{} {} {}",
                l.line,
                l.lines,
                l.record.get(Slot::ResponseCode).unwrap_or("?"),
                l.record.get(Slot::RequestId).unwrap_or("?"),
            )
        })
        .into_iter()
        .map(|e| match e.split_once(' ') {
            Some((n, rest)) if rest.starts_with("bad ") => format!("bad {n}"),
            Some((n, rest)) if rest.starts_with("skip ") => format!("skip {n}"),
            _ => e,
        })
        .collect()
    }

    #[test]
    fn a_pretty_printed_record_is_one_record() {
        let p = pretty(RECORD);
        let n = p.lines().count();
        assert!(n > 20, "{p}");
        let input = format!(
            "{RECORD}\n{p}\n{}\n",
            RECORD.replace("5a1d-0001", "5a1d-0003")
        );
        assert_eq!(
            read(&input),
            [
                "1+1 503 5a1d-0001".to_string(),
                format!("2+{n} 503 5a1d-0001"),
                format!("{} 503 5a1d-0003", format_args!("{}+1", n + 2)),
            ]
        );
        // Indented as a whole (a Markdown list, a quoted block of a ticket), with `\r\n`.
        let indented: String = p.lines().map(|l| format!("    {l}\r\n")).collect();
        assert_eq!(read(&indented), [format!("1+{n} 503 5a1d-0001")]);
    }

    #[test]
    fn a_hard_wrapped_record_is_joined_without_the_breaks() {
        // Cut every 37 bytes: inside keys, string values, numbers and `null`.
        let cut: Vec<&str> = RECORD
            .as_bytes()
            .chunks(37)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let input = cut.join("\n");
        let got = read(&input);
        assert_eq!(got, [format!("1+{} 503 5a1d-0001", cut.len())]);
        // The values are whole again.
        let mut a = Assembler::new(LineParser::auto(), true);
        let mut cluster = None;
        for (i, l) in cut.iter().enumerate() {
            a.push(i as u64 + 1, l, &mut |e| {
                if let Event::Record(l) = e {
                    cluster = l.record.get(Slot::UpstreamCluster).map(str::to_string);
                }
            });
        }
        assert_eq!(
            cluster.as_deref(),
            Some("outbound|80||x.default.svc.cluster.local")
        );
    }

    #[test]
    fn an_object_left_open_does_not_swallow_the_records_after_it() {
        // Cut for good (the rest of the line lost), then whole records.
        let head = &RECORD[..200];
        let input = format!("{head}\n{RECORD}\n{RECORD}\n");
        assert_eq!(
            read(&input),
            ["bad 1", "2+1 503 5a1d-0001", "3+1 503 5a1d-0001"]
        );
        // A blank line ends the wait too.
        let input = format!("{head}\n\n{RECORD}\n");
        assert_eq!(read(&input), ["bad 1", "3+1 503 5a1d-0001"]);
        // Opened and never closed: at most MAX_JSON_JOIN lines are held, then the rest is read
        // line by line; nothing is held at the end.
        let mut input = String::from("{\"response_code\": 503,\n");
        for _ in 0..1000 {
            input.push_str("  \"k\": [1,\n");
        }
        let got = read(&input);
        let held = MAX_JSON_JOIN as usize;
        assert_eq!(got[..2], ["bad 1".to_string(), format!("bad {}", held + 1)]);
        assert_eq!(got.len(), 1 + 1001 - held);
    }

    #[test]
    fn an_array_of_pretty_records_is_read_record_by_record() {
        // `jq -s .` or a JSON export of a log store: `[`, records separated by `,`, `]`.
        let p = pretty(RECORD);
        let n = p.lines().count();
        let input = format!(
            "[\n{},\n{}\n]\n",
            indent(&p),
            indent(&p.replace("0001", "0002"))
        );
        let got = read(&input);
        let records: Vec<&String> = got.iter().filter(|g| g.contains('+')).collect();
        assert_eq!(
            records,
            [
                &format!("2+{n} 503 5a1d-0001"),
                &format!("{}+{n} 503 5a1d-0002", n + 2)
            ],
            "{got:?}"
        );
    }

    fn indent(s: &str) -> String {
        s.lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
            .trim_end()
            .to_string()
    }
}
