//! Post-incident reports: a trace or a failures triage rendered as Markdown (with a timeline,
//! hop table, latency waterfall, Mermaid sequence diagram, evidence lines, configuration
//! excerpts, fix and reproduction) or as JSON. Pure: takes the evidence and lines already read.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::failures::FailuresReport;
use crate::redact::{MASK, Redactor, is_secret_name, mask_value};
use crate::trace::TraceReport;
use meshtrace_analysis::evidence::Evidence;

/// JSON schema identifier of `report -o json`.
pub const SCHEMA: &str = "meshtrace.report/v1";

/// The raw text of each hop's evidence line(s), in hop order (`None` when not readable).
pub type EvidenceLines = Vec<Option<String>>;

/// How the analysis can be reproduced.
pub fn reproduce_command(query: &str, ev: &Evidence, inputs: &[String]) -> String {
    let mut cmd = format!("meshtrace trace {query}");
    if let Some(b) = &ev.bundle {
        cmd.push_str(&format!(" --bundle {b}"));
    }
    for i in inputs {
        cmd.push(' ');
        cmd.push_str(i);
    }
    cmd
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

/// Words Mermaid would misread in a label.
fn mermaid_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, ';' | '#' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
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

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `_Generated by meshtrace V from bundle `B` collected T._`
fn generated_by(ev: &Evidence, version: &str) -> String {
    format!(
        "_Generated by meshtrace {version} from {}{}._",
        ev.bundle
            .as_deref()
            .map(|b| format!("bundle `{b}`"))
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
        t.query,
        status,
        t.cause.id()
    );
    let _ = writeln!(m, "{}\n", generated_by(ev, version));
    let _ = writeln!(m, "## Summary\n\n{}\n", t.summary);
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
                h.role,
                h.pod.as_deref().unwrap_or("-"),
                h.direction,
                h.listener.as_deref().unwrap_or("-")
            ))
            .unwrap_or_default(),
        t.request_ids
            .iter()
            .map(|i| format!("`{i}`"))
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
                    h.role,
                    h.listener.as_deref().unwrap_or("-")
                ),
            ));
            if let Some(d) = h.duration_ms {
                let end = *s + chrono::Duration::milliseconds(i64::try_from(d).unwrap_or(0));
                let mut what = format!(
                    "hop {} {} answers {}",
                    h.index,
                    h.role,
                    h.status
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into())
                );
                if let Some(det) = &h.details {
                    what.push_str(&format!(" (`{det}`)"));
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
                md_cell(&what)
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
            h.role,
            md_cell(&pod),
            h.direction,
            h.listener.as_deref().unwrap_or("-"),
            h.request_id
                .as_deref()
                .map(|i| format!("`{i}`"))
                .unwrap_or_else(|| "-".into()),
            h.status
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            if h.flags.is_empty() {
                "-".into()
            } else {
                h.flags.join(",")
            },
            h.details
                .as_deref()
                .map(|d| format!("`{}`", md_cell(d)))
                .unwrap_or_else(|| "-".into()),
            h.duration_ms
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            h.self_time_ms
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into()),
            md_cell(&h.evidence.file),
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
    let total = spans.iter().map(|(_, o, d)| o + d).max().unwrap_or(0);
    if total > 0 {
        let _ = writeln!(m, "## Latency waterfall\n\n```text");
        for (idx, off, d) in &spans {
            let cols = 40i64;
            // A hop that starts at the very end (0 ms at the last instant) still gets one column.
            let a = (off * cols / total).min(cols - 1);
            let len = (d * cols / total).clamp(1, cols - a);
            let role = &t.hops[idx - 1].role;
            let _ = writeln!(
                m,
                "{idx:>2} {role:<16} |{}{}{}| {d} ms",
                " ".repeat(a as usize),
                "█".repeat(len as usize),
                " ".repeat((cols - a - len).max(0) as usize)
            );
        }
        let _ = writeln!(m, "```\n");
    }

    let _ = writeln!(m, "## Sequence\n\n```mermaid\n{}```\n", mermaid(t));

    let _ = writeln!(m, "## Evidence\n");
    if !t.evidence.is_empty() {
        for e in &t.evidence {
            let _ = writeln!(m, "- {}", md_cell(e));
        }
        m.push('\n');
    }
    let _ = writeln!(m, "Access-log lines, client first:\n\n```text");
    for (h, l) in t.hops.iter().zip(lines) {
        let _ = writeln!(
            m,
            "# hop {} — {}:{}",
            h.index, h.evidence.file, h.evidence.line
        );
        match l {
            Some(text) => {
                let _ = writeln!(m, "{}", text.trim_end());
            }
            None => {
                let _ = writeln!(m, "(line not readable here: it is inside an archive)");
            }
        }
    }
    let _ = writeln!(m, "```\n");

    if !t.citations.is_empty() {
        let _ = writeln!(m, "## Configuration involved\n");
        for c in &t.citations {
            let _ = writeln!(m, "### `{}`\n\n{}\n", c.object, c.why);
            if let Some(y) = object_excerpt(ev, &c.object) {
                let _ = writeln!(m, "```yaml\n{}```\n", y);
            }
        }
    }
    if !t.succeeded {
        let _ = writeln!(m, "## Fix\n\n{}\n", t.fix);
    }
    if !t.notes.is_empty() {
        let _ = writeln!(m, "## Notes\n");
        for n in &t.notes {
            let _ = writeln!(m, "- {}", md_cell(n));
        }
        m.push('\n');
    }
    let _ = writeln!(m, "## Reproduce\n\n```sh\n{reproduce}\n```");
    m
}

/// Markdown report of a failures triage.
pub fn failures_markdown(r: &FailuresReport, ev: &Evidence, version: &str) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Failures report — {} failed of {} requests\n",
        r.failed, r.requests
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
            g.origin_role,
            md_cell(&g.target),
            g.first_seen.as_deref().unwrap_or("-"),
            g.last_seen.as_deref().unwrap_or("-")
        );
    }
    m.push('\n');
    for (i, g) in r.groups.iter().enumerate() {
        let _ = writeln!(
            m,
            "## {}. {} × {} `{}` at the {}\n",
            i + 1,
            g.count,
            g.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            g.cause.id(),
            g.origin_role
        );
        let _ = writeln!(m, "{}\n", g.summary);
        if !g.clients.is_empty() {
            let _ = writeln!(m, "Clients:\n");
            for c in &g.clients {
                let _ = writeln!(
                    m,
                    "- {} {}",
                    c.address,
                    match (&c.pod, c.has_sidecar) {
                        (Some(p), Some(false)) => format!("({p}, no sidecar)"),
                        (Some(p), _) => format!("({p})"),
                        _ => String::new(),
                    }
                );
            }
            m.push('\n');
        }
        let _ = writeln!(m, "**Fix:** {}\n", g.fix);
        let _ = writeln!(m, "Evidence: `{}`", g.example_evidence);
        if !g.example_request_ids.is_empty() {
            let _ = writeln!(m, "\nTrace an example:\n\n```sh");
            for id in &g.example_request_ids {
                let _ = writeln!(m, "{}", reproduce_command(id, ev, &[]));
            }
            let _ = writeln!(m, "```");
        }
        m.push('\n');
    }
    if !r.notes.is_empty() {
        let _ = writeln!(m, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(m, "- {}", md_cell(n));
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
