//! Post-incident reports: a trace or a failures triage rendered as Markdown (with a timeline,
//! hop table, latency waterfall, Mermaid sequence diagram, evidence lines, configuration
//! excerpts, fix and reproduction) or as JSON. Pure: takes the evidence and lines already read.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::safe;
use crate::failures::FailuresReport;
use crate::redact::{MASK, Redactor, is_secret_name, mask_text, mask_value};
use crate::trace::TraceReport;
use meshtrace_analysis::evidence::Evidence;

/// JSON schema identifier of `report -o json`.
pub const SCHEMA: &str = "meshtrace.report/v1";

/// The raw text of each hop's evidence line(s), in hop order (`None` when not readable).
pub type EvidenceLines = Vec<Option<String>>;

/// How the analysis can be reproduced: a `meshtrace trace` command line, every argument
/// shell-quoted (request ids are chosen by clients, bundle and file names by whoever sent them).
pub fn reproduce_command(query: &str, ev: &Evidence, inputs: &[String]) -> String {
    let options: Vec<(&str, &str)> = ev
        .bundle
        .as_deref()
        .map(|b| ("--bundle", b))
        .into_iter()
        .collect();
    let mut positional = vec![query];
    positional.extend(inputs.iter().map(String::as_str));
    safe::command(&["meshtrace", "trace"], &options, &positional)
}

/// Inline Markdown from evidence: secrets masked, kept on one line (control characters,
/// newlines and bidirectional overrides shown escaped), Markdown punctuation backslash-escaped
/// and HTML (`<`, `>`, `&`) written as entities, so a value can neither format nor inject
/// anything (headings, lists, links, tables, code, raw HTML).
pub fn inline(s: &str) -> String {
    let masked = mask_text(s);
    escape_md(&safe::line(&masked), true)
}

/// A sentence meshtrace wrote around evidence (summary, fix, readings, notes): as [`inline`],
/// except that its balanced code spans (`` `via_upstream` ``) stay code spans, each re-delimited
/// by [`code`] so evidence inside cannot close it early. An unbalanced backtick is escaped.
pub fn prose(s: &str) -> String {
    let masked = mask_text(s);
    let one = safe::line(&masked);
    let mut out = String::with_capacity(one.len() + 8);
    let mut rest: &str = &one;
    while let Some(i) = rest.find('`') {
        let n = rest[i..].bytes().take_while(|b| *b == b'`').count();
        let after = &rest[i + n..];
        match closing_run(after, n) {
            Some(j) => {
                out.push_str(&escape_md(&rest[..i], out.is_empty()));
                out.push_str(&code_span(&after[..j]));
                rest = &after[j + n..];
            }
            None => {
                out.push_str(&escape_md(&rest[..i + n], out.is_empty()));
                rest = after;
            }
        }
    }
    out.push_str(&escape_md(rest, out.is_empty()));
    out
}

/// Where a run of exactly `n` backticks starts in `s`.
fn closing_run(s: &str, n: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'`' {
            let run = b[i..].iter().take_while(|c| **c == b'`').count();
            if run == n {
                return Some(i);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

/// Backslash-escape Markdown punctuation and write HTML as entities in one line of text;
/// `at_start`: the text begins a Markdown line (block syntax is escaped too).
fn escape_md(one: &str, at_start: bool) -> String {
    let chars: Vec<char> = one.chars().collect();
    let mut out = String::with_capacity(one.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        // `_` only emphasises at a word boundary (GitHub ignores it inside words).
        let boundary = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_none_or(|n| !n.is_alphanumeric())
        };
        let first = at_start && i == 0;
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '_' if boundary(i.checked_sub(1)) || boundary(Some(i + 1)) => out.push_str("\\_"),
            // Block syntax at the start of a line: heading, list item, rule, setext underline.
            '#' if first => out.push_str("\\#"),
            '-' | '+' | '=' if first && matches!(chars.get(1), Some(n) if *n == ' ' || *n == c) => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// An inline code span from evidence: secrets masked, one line, delimited by a backtick run
/// longer than any inside it (padded with spaces when it starts or ends with a backtick).
pub fn code(s: &str) -> String {
    let masked = mask_text(s);
    code_span(&safe::line(&masked))
}

/// A code span around text already on one line.
fn code_span(one: &str) -> String {
    let n = longest_run(one, '`') + 1;
    let ticks = "`".repeat(n);
    let pad = if one.starts_with('`') || one.ends_with('`') || one.is_empty() {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{one}{pad}{ticks}")
}

/// A code span inside a table row: as [`code`], with `|` escaped (GitHub splits cells on it
/// even inside code).
pub fn code_cell(s: &str) -> String {
    code(s).replace('|', "\\|")
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for ch in s.chars() {
        if ch == c {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// A fenced code block: `content`'s lines kept, secrets masked, every other control character
/// (a bare CR included) shown escaped, and a backtick fence longer than any backtick run inside,
/// so no line of the content can close it. Ends with a newline.
pub fn fence(info: &str, content: &str) -> String {
    let masked = mask_text(content);
    let body = safe::text(&masked);
    let body = body.trim_end_matches('\n');
    let ticks = "`".repeat((longest_run(body, '`') + 1).max(3));
    format!("{ticks}{info}\n{body}\n{ticks}\n")
}

/// Mask secret header values in an access-log line: values of operators such as
/// `%REQ(AUTHORIZATION)%` that the record carries as named fields.
pub fn mask_line(line: &str, secrets: &[String]) -> String {
    let mut out = line.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s.as_str(), MASK);
    }
    out
}

/// Secret values carried by a record's extra fields (custom formats logging headers).
pub fn record_secrets(r: &meshtrace_parsers::RawRecord<'_>) -> Vec<String> {
    r.extras()
        .filter(|(k, v)| is_secret_name(k) && *v != "-" && !v.is_empty())
        .map(|(_, v)| v.to_string())
        .collect()
}

/// A YAML excerpt of a cited object: apiVersion, kind, metadata name/namespace/labels and spec,
/// secret values masked. `None` for Secrets (never printed) and objects not in the evidence.
pub fn object_excerpt(ev: &Evidence, reference: &str) -> Option<String> {
    let o = ev.objects.iter().find(|o| o.reference() == reference)?;
    if o.kind == "Secret" {
        return None;
    }
    let mut meta = serde_json::Map::new();
    meta.insert("name".into(), json!(o.name));
    if let Some(ns) = &o.namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    if let Some(l) = o.value.pointer("/metadata/labels") {
        meta.insert("labels".into(), l.clone());
    }
    if let Some(a) = o
        .value
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        // Only annotations that matter for serving; never last-applied-configuration.
        let keep: serde_json::Map<String, Value> = a
            .iter()
            .filter(|(k, _)| {
                !k.contains("last-applied")
                    && (k.contains("istio")
                        || k.contains("kserve")
                        || k.contains("knative")
                        || k.contains("seldon"))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !keep.is_empty() {
            meta.insert("annotations".into(), Value::Object(keep));
        }
    }
    let mut v = json!({"apiVersion": o.api_version, "kind": o.kind, "metadata": meta});
    if let Some(spec) = o.value.get("spec") {
        v["spec"] = spec.clone();
    } else if let Some(data) = o.value.get("data") {
        v["data"] = data.clone();
    }
    if o.kind == "Pod" {
        // A pod's spec is long: its containers' names and images, and its status, say enough.
        let containers: Vec<Value> = o
            .value
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| json!({"name": c.get("name"), "image": c.get("image")}))
                    .collect()
            })
            .unwrap_or_default();
        v["spec"] = json!({"containers": containers});
        if let Some(st) = o.value.get("status") {
            v["status"] = json!({"phase": st.get("phase"), "podIP": st.get("podIP"),
                "containerStatuses": st.get("containerStatuses").and_then(Value::as_array).map(|a| a.iter().map(|c| json!({"name": c.get("name"), "restartCount": c.get("restartCount"), "lastState": c.get("lastState")})).collect::<Vec<_>>())});
        }
    }
    mask_value(&mut v);
    serde_yaml_ng::to_string(&v).ok()
}

/// Characters Mermaid would misread in a label (statement separators, entity codes, HTML,
/// comments and directives), replaced by spaces; control characters escaped.
fn mermaid_text(s: &str) -> String {
    let plain: String = s
        .chars()
        .map(|c| {
            if matches!(
                c,
                ';' | '#' | '\n' | '\r' | '<' | '>' | '%' | '`' | '"' | '{' | '}'
            ) {
                ' '
            } else {
                c
            }
        })
        .collect();
    safe::line(plain.trim()).into_owned()
}

/// The Mermaid `sequenceDiagram` of a trace: one participant per proxy (hops of the same pod
/// share it), the request going in, the status coming back.
pub fn mermaid(t: &TraceReport) -> String {
    let mut s = String::from("sequenceDiagram\n    autonumber\n");
    let _ = writeln!(s, "    participant C as client");
    let mut parts: Vec<(String, String)> = Vec::new(); // (key, id)
    let mut hop_part: Vec<String> = Vec::new();
    for h in &t.hops {
        let key = match (&h.namespace, &h.pod) {
            (Some(ns), Some(p)) => format!("{ns}/{p}"),
            _ => format!("{} {}", h.role, h.listener.as_deref().unwrap_or("?")),
        };
        let id = match parts.iter().find(|(k, _)| *k == key) {
            Some((_, id)) => id.clone(),
            None => {
                let id = format!("P{}", parts.len() + 1);
                let label = match (&h.namespace, &h.pod) {
                    (Some(ns), Some(p)) => format!("{} {ns}/{p}", h.role),
                    _ => key.clone(),
                };
                let _ = writeln!(s, "    participant {id} as {}", mermaid_text(&label));
                parts.push((key, id.clone()));
                id
            }
        };
        hop_part.push(id);
    }
    let app = t.cause == crate::causes::Cause::AppError;
    if app {
        let _ = writeln!(s, "    participant A as application");
    }
    let mut prev = "C".to_string();
    for (h, p) in t.hops.iter().zip(&hop_part) {
        let label = format!("{} {}", h.direction, h.listener.as_deref().unwrap_or("-"));
        let _ = writeln!(s, "    {prev}->>{p}: {}", mermaid_text(&label));
        prev = p.clone();
    }
    let status = |x: Option<u16>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    if app {
        let _ = writeln!(s, "    {prev}->>A: request");
        let _ = writeln!(s, "    A-->>{prev}: {}", status(t.status));
    }
    if let Some(origin) = t.hops.get(t.origin_hop.saturating_sub(1)) {
        let p = &hop_part[t.origin_hop - 1];
        let _ = writeln!(
            s,
            "    Note over {p}: {} {}",
            status(origin.status),
            mermaid_text(t.cause.id())
        );
    }
    for i in (0..t.hops.len()).rev() {
        let from = &hop_part[i];
        let to = if i == 0 {
            "C"
        } else {
            hop_part[i - 1].as_str()
        };
        let h = &t.hops[i];
        let mut what = status(h.status);
        if !h.flags.is_empty() {
            what.push(' ');
            what.push_str(&h.flags.join(","));
        }
        let _ = writeln!(s, "    {from}-->>{to}: {}", mermaid_text(&what));
    }
    s
}

/// `_Generated by meshtrace V from bundle `B` collected T._`
fn generated_by(ev: &Evidence, version: &str) -> String {
    format!(
        "_Generated by meshtrace {version} from {}{}._",
        ev.bundle
            .as_deref()
            .map(|b| format!("bundle {}", code(b)))
            .unwrap_or_else(|| "log files".into()),
        ev.collected_at
            .map(|c| format!(" collected {}", c.to_rfc3339()))
            .unwrap_or_default()
    )
}

/// Markdown post-incident report of one request.
pub fn request_markdown(
    t: &TraceReport,
    ev: &Evidence,
    lines: &EvidenceLines,
    reproduce: &str,
    version: &str,
) -> String {
    let mut m = String::new();
    let status = t
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into());
    let _ = writeln!(
        m,
        "# Incident report: request {} — {} `{}`\n",
        inline(&t.query),
        status,
        t.cause.id()
    );
    let _ = writeln!(m, "{}\n", generated_by(ev, version));
    let _ = writeln!(m, "## Summary\n\n{}\n", prose(&t.summary));
    let origin = t.hops.get(t.origin_hop.saturating_sub(1));
    let _ = writeln!(
        m,
        "- **Verdict:** `{}` — {}\n- **Origin:** hop {} of {}{}\n- **Request ids:** {}\n",
        t.cause.id(),
        t.cause.title(),
        t.origin_hop,
        t.hops.len(),
        origin
            .map(|h| format!(
                ", {} {} ({} {})",
                inline(&h.role),
                inline(h.pod.as_deref().unwrap_or("-")),
                inline(&h.direction),
                inline(h.listener.as_deref().unwrap_or("-"))
            ))
            .unwrap_or_default(),
        t.request_ids
            .iter()
            .map(|i| code(i))
            .collect::<Vec<_>>()
            .join(" → ")
    );

    // Timeline: each hop's start, then each hop's end (response), by time.
    let starts: Vec<Option<chrono::DateTime<chrono::FixedOffset>>> = t
        .hops
        .iter()
        .map(|h| {
            h.start
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        })
        .collect();
    if let Some(t0) = starts.iter().flatten().min().copied() {
        let mut events: Vec<(chrono::DateTime<chrono::FixedOffset>, usize, String)> = Vec::new();
        for (i, (h, s)) in t.hops.iter().zip(&starts).enumerate() {
            let Some(s) = s else { continue };
            events.push((
                *s,
                i * 2,
                format!(
                    "hop {} {} receives the request on {}",
                    h.index,
                    inline(&h.role),
                    inline(h.listener.as_deref().unwrap_or("-"))
                ),
            ));
            // A damaged line's duration may end past the last date a clock holds: no end then.
            let end = h.duration_ms.and_then(|d| {
                s.checked_add_signed(chrono::Duration::try_milliseconds(i64::try_from(d).ok()?)?)
            });
            if let Some(end) = end {
                let mut what = format!(
                    "hop {} {} answers {}",
                    h.index,
                    inline(&h.role),
                    h.status
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                if let Some(det) = &h.details {
                    what.push_str(&format!(" ({})", code_cell(det)));
                }
                events.push((end, 10_000 - i * 2, what));
            }
        }
        events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let _ = writeln!(
            m,
            "## Timeline (UTC)\n\n| time | offset | event |\n|---|---:|---|"
        );
        for (when, _, what) in events {
            let utc = when.with_timezone(&chrono::Utc);
            let _ = writeln!(
                m,
                "| {} | +{} ms | {} |",
                utc.format("%Y-%m-%d %H:%M:%S%.3f"),
                (when - t0).num_milliseconds(),
                what
            );
        }
        m.push('\n');
    }

    let _ = writeln!(
        m,
        "## Hops\n\n| # | role | pod | direction | listener | request id | status | flags | details | ms | self ms | evidence |\n|---:|---|---|---|---|---|---:|---|---|---:|---:|---|"
    );
    for h in &t.hops {
        let pod = match (&h.namespace, &h.pod) {
            (Some(ns), Some(p)) => format!("{ns}/{p}"),
            _ => "-".into(),
        };
        let mark = if h.index == t.origin_hop { " ◀" } else { "" };
        let _ = writeln!(
            m,
            "| {}{mark} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}:{} |",
            h.index,
            inline(&h.role),
            inline(&pod),
            inline(&h.direction),
            inline(h.listener.as_deref().unwrap_or("-")),
            h.request_id
                .as_deref()
                .map(code_cell)
                .unwrap_or_else(|| "-".into()),
            h.status
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            if h.flags.is_empty() {
                "-".into()
            } else {
                inline(&h.flags.join(","))
            },
            h.details
                .as_deref()
                .map(code_cell)
                .unwrap_or_else(|| "-".into()),
            h.duration_ms
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            h.self_time_ms
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            inline(&h.evidence.file),
            h.evidence.line
        );
    }
    m.push('\n');

    // Latency waterfall as text bars (renders everywhere).
    let t0 = starts.iter().flatten().min().copied();
    let spans: Vec<(usize, i64, i64)> = t
        .hops
        .iter()
        .zip(&starts)
        .filter_map(|(h, s)| {
            let d = i64::try_from(h.duration_ms?).ok()?;
            let off = match (s, t0) {
                (Some(s), Some(t0)) => (*s - t0).num_milliseconds().max(0),
                _ => 0,
            };
            Some((h.index, off, d))
        })
        .collect();
    let total = spans
        .iter()
        .map(|(_, o, d)| o.saturating_add(*d))
        .max()
        .unwrap_or(0);
    if total > 0 {
        let mut bars = String::new();
        for (idx, off, d) in &spans {
            let cols = 40i64;
            // A hop that starts at the very end (0 ms at the last instant) still gets one column.
            let a = super::columns(*off, total, cols).min(cols - 1);
            let len = super::columns(*d, total, cols).clamp(1, cols - a);
            let role = safe::Line(&t.hops[idx - 1].role);
            let _ = writeln!(
                bars,
                "{idx:>2} {role:<16} |{}{}{}| {d} ms",
                " ".repeat(a as usize),
                "█".repeat(len as usize),
                " ".repeat((cols - a - len).max(0) as usize)
            );
        }
        let _ = writeln!(m, "## Latency waterfall\n\n{}", fence("text", &bars));
    }

    let _ = writeln!(m, "## Sequence\n\n{}", fence("mermaid", &mermaid(t)));

    let _ = writeln!(m, "## Evidence\n");
    if !t.evidence.is_empty() {
        for e in &t.evidence {
            let _ = writeln!(m, "- {}", prose(e));
        }
        m.push('\n');
    }
    let mut block = String::new();
    for (h, l) in t.hops.iter().zip(lines) {
        let _ = writeln!(
            block,
            "# hop {} — {}:{}",
            h.index,
            safe::Line(&h.evidence.file),
            h.evidence.line
        );
        match l {
            Some(text) => {
                let _ = writeln!(block, "{}", text.trim_end());
            }
            None => {
                let _ = writeln!(block, "(line not readable here: it is inside an archive)");
            }
        }
    }
    let _ = writeln!(
        m,
        "Access-log lines, client first:\n\n{}",
        fence("text", &block)
    );

    if !t.citations.is_empty() {
        let _ = writeln!(m, "## Configuration involved\n");
        for c in &t.citations {
            let _ = writeln!(m, "### {}\n\n{}\n", code(&c.object), prose(&c.why));
            if let Some(y) = object_excerpt(ev, &c.object) {
                let _ = writeln!(m, "{}", fence("yaml", &y));
            }
        }
    }
    if !t.succeeded {
        let _ = writeln!(m, "## Fix\n\n{}\n", prose(&t.fix));
        if let Some(f) = &t.fix_apply {
            let _ = writeln!(
                m,
                "To apply (`kubectl apply -f -`): {}\n\n{}",
                prose(&f.summary),
                fence("yaml", &f.yaml)
            );
        }
    }
    if !t.notes.is_empty() {
        let _ = writeln!(m, "## Notes\n");
        for n in &t.notes {
            let _ = writeln!(m, "- {}", prose(n));
        }
        m.push('\n');
    }
    let _ = write!(m, "## Reproduce\n\n{}", fence("sh", reproduce));
    m
}

/// Markdown report of a failures triage.
pub fn failures_markdown(r: &FailuresReport, ev: &Evidence, version: &str) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Failures report — {}\n",
        if r.successful_records == 0 {
            format!(
                "{} failed of {} request{}",
                r.failed,
                r.requests,
                if r.requests == 1 { "" } else { "s" }
            )
        } else {
            crate::report::failures_headline(r)
        }
    );
    let _ = writeln!(m, "{}\n", generated_by(ev, version));
    let _ = writeln!(
        m,
        "| # | count | status | cause | origin | target | first seen (UTC) | last seen (UTC) |\n|---:|---:|---:|---|---|---|---|---|"
    );
    for (i, g) in r.groups.iter().enumerate() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | `{}` | {} | {} | {} | {} |",
            i + 1,
            g.count,
            g.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            g.cause.id(),
            inline(&g.origin_role),
            inline(&g.target),
            inline(g.first_seen.as_deref().unwrap_or("-")),
            inline(g.last_seen.as_deref().unwrap_or("-"))
        );
    }
    m.push('\n');
    for (i, g) in r.groups.iter().enumerate() {
        let _ = writeln!(
            m,
            "## {}. {} × {} `{}` at {}\n",
            i + 1,
            g.count,
            g.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            g.cause.id(),
            inline(&g.origin_place())
        );
        let _ = writeln!(m, "{}\n", prose(&g.summary));
        if !g.clients.is_empty() {
            let _ = writeln!(m, "Clients:\n");
            for c in &g.clients {
                let _ = writeln!(
                    m,
                    "- {} {}",
                    inline(&c.address),
                    match (&c.pod, c.has_sidecar) {
                        (Some(p), Some(false)) => format!("({}, no sidecar)", inline(p)),
                        (Some(p), _) => format!("({})", inline(p)),
                        _ => String::new(),
                    }
                );
            }
            m.push('\n');
        }
        let _ = writeln!(m, "**Fix:** {}\n", prose(&g.fix));
        let _ = writeln!(m, "Evidence: {}", code(&g.example_evidence));
        if !g.example_request_ids.is_empty() {
            let commands: Vec<String> = g
                .example_request_ids
                .iter()
                .map(|id| reproduce_command(id, ev, &[]))
                .collect();
            let _ = write!(
                m,
                "\nTrace an example:\n\n{}",
                fence("sh", &commands.join("\n"))
            );
        }
        m.push('\n');
    }
    if !r.notes.is_empty() {
        let _ = writeln!(m, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(m, "- {}", prose(n));
        }
    }
    m
}

/// Learn every identifying name a trace report mentions (pods, hosts) for `--redact`.
pub fn learn_names(red: &mut Redactor, ev: &Evidence, hosts: impl IntoIterator<Item = String>) {
    red.learn("pod", ev.topology.pods.iter().map(|p| p.name.clone()));
    red.learn("host", hosts);
    red.learn("host", ev.topology.services.iter().map(|s| s.fqdn()));
}
