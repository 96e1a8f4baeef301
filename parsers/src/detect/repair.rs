//! Putting back what copying lost from a text access-log line, so it can be read.
//!
//! Damages seen in lines pasted into tickets and issue threads:
//! - **Markdown code marks**: `` `[…] "GET / HTTP/1.1" 503 …` `` or ```` ```[…] ```` — the
//!   backticks that make a line code in an issue or a chat stuck to it; they are taken off.
//! - **Typographic quotes**: a word processor or a chat turned some `"` into `“` or `”` (the
//!   quotes of a line are all `"` in Envoy's formats); they are put back as `"`.
//! - **A viewer's prefix**: a log store or console export put its own words before the line
//!   (`INFO 2024-03-25T08:56:41.89Z [resource.labels.containerName: istio-proxy] [2024-…] "…`);
//!   the line is read from its `[<time>] ` on.
//! - **Doubled spaces between fields**: a reflowed paste left two spaces where Envoy writes one
//!   (`HTTP/1.1"  503`); outside quoted values a run of spaces becomes one.
//! - **Doubled quotes**: a line exported from a log UI as a CSV cell arrives as
//!   `"[…] ""GET /x HTTP/1.1"" 503 …"` (RFC 4180 doubles the quotes inside a quoted cell);
//!   the cell's own quotes are removed and `""` becomes `"`.
//! - **Lost space before the protocol**: `"GET /status/200HTTP/1.1" 503` — a wrapped or
//!   reflowed paste joined the path and the protocol; the space is put back before the
//!   `HTTP/1.0`, `HTTP/1.1`, `HTTP/2` or `HTTP/3` that ends the quoted request line.
//!
//! - **Markdown a paste added inside the line** ([`markdown_residue`]): `**…**` around a field
//!   (a poster's bold: istio/istio#53162, envoyproxy/envoy#23058) and `[X](http://X/)` where an
//!   editor turned an address into a link (higress-group/higress#2881). Such a line usually
//!   still reads, with the marks inside its values, so this repair is also tried on a record
//!   whose key values start with `*` or `[` (see `LineParser::parse`).
//!
//! Repairs run only on a line no format read as it was (or one read with Markdown in its
//! values), and the record says what was repaired, so nothing is guessed silently.

/// Protocols Envoy writes for `%PROTOCOL%` in a request line.
const PROTOCOLS: &[&str] = &["HTTP/1.1\"", "HTTP/1.0\"", "HTTP/2\"", "HTTP/3\""];

/// One repair: the line repaired, or `None` when it has nothing to repair.
type Repair = fn(&str) -> Option<String>;

/// Each repair, in the order they are tried (each on what the ones before left), and what it
/// says it did. CSV quotes come off before a viewer's prefix is looked for, as the prefix
/// search would otherwise cut the cell's opening quote.
const REPAIRS: &[(Repair, &str)] = &[
    (
        without_code_marks,
        "the Markdown backticks around it taken off",
    ),
    (
        undouble_quotes,
        "its CSV-doubled quotes undone (`\"\"` → `\"`)",
    ),
    (
        after_viewer_prefix,
        "the text before its `[time]` (a log viewer's prefix) set aside",
    ),
    (straight_quotes, "typographic quotes (`“` `”`) read as `\"`"),
    (single_spaces, "doubled spaces between fields read as one"),
    (
        space_before_protocol,
        "the space between path and protocol put back",
    ),
    (markdown_residue, MARKDOWN_RESIDUE),
];

/// What [`markdown_residue`] says it did.
pub(super) const MARKDOWN_RESIDUE: &str = "the Markdown a paste added inside it taken off (`**` around a field, `[X](http://X/)` links, a table's `\\|`)";

/// `**upstream_reset…{…}**` → `upstream_reset…{…}` (bold marks around a run of non-blank
/// characters) and `[10.0.0.1:80](http://10.0.0.1:80/)` → `10.0.0.1:80` (a link whose text is its
/// own address, with or without the scheme's `//`, a trailing `/`). Anything else is left.
pub(super) fn markdown_residue(line: &str) -> Option<String> {
    let unbold = without_bold(line);
    let unlinked = without_autolinks(unbold.as_deref().unwrap_or(line)).or(unbold);
    // A line pasted into a Markdown table cell has its `|` escaped (`outbound\|80\|\|host`).
    let current = unlinked.as_deref().unwrap_or(line);
    if current.contains("\\|") {
        return Some(current.replace("\\|", "|"));
    }
    unlinked
}

/// `**X**` → `X`, X non-empty, without blanks or `*`.
fn without_bold(line: &str) -> Option<String> {
    if !line.contains("**") {
        return None;
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    let mut changed = false;
    while let Some(open) = rest.find("**") {
        let after = &rest[open + 2..];
        let inner_len = after
            .find(|c: char| c == '*' || c.is_whitespace())
            .unwrap_or(after.len());
        if inner_len > 0 && after[inner_len..].starts_with("**") {
            out.push_str(&rest[..open]);
            out.push_str(&after[..inner_len]);
            rest = &after[inner_len + 2..];
            changed = true;
        } else {
            out.push_str(&rest[..open + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `[X](http://X/)` or `[X](https://X)` → `X`.
fn without_autolinks(line: &str) -> Option<String> {
    if !line.contains("](http") {
        return None;
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    let mut changed = false;
    while let Some(mid) = rest.find("](http") {
        let head = &rest[..mid];
        let Some(open) = head.rfind('[') else {
            out.push_str(&rest[..mid + 2]);
            rest = &rest[mid + 2..];
            continue;
        };
        let text = &head[open + 1..];
        let link = &rest[mid + 2..];
        let Some(close) = link.find(')') else {
            break;
        };
        let url = &link[..close];
        let target = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url);
        let target = target.strip_suffix('/').unwrap_or(target);
        if !text.is_empty() && target == text {
            out.push_str(&head[..open]);
            out.push_str(text);
            changed = true;
        } else {
            out.push_str(&rest[..mid + 2 + close + 1]);
        }
        rest = &link[close + 1..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// The repaired line and a sentence saying what was repaired, or `None` when no damage is
/// found.
pub(super) fn repair(line: &str) -> Option<(String, String)> {
    let mut text: Option<String> = None;
    let mut what: Vec<&str> = Vec::new();
    for (fix, said) in REPAIRS {
        if let Some(t) = fix(text.as_deref().unwrap_or(line)) {
            text = Some(t);
            what.push(said);
        }
    }
    let text = text?;
    Some((
        text,
        format!(
            "line repaired before reading: {} (the line as copied could not be read)",
            what.join(" and ")
        ),
    ))
}

/// `` `[…] 503 …` `` or ```` ```[…] 503 …``` ```` → `[…] 503 …`: one to three backticks before the
/// line (and any after it).
fn without_code_marks(line: &str) -> Option<String> {
    let t = line.trim();
    let body = t.trim_start_matches('`');
    let opened = t.len() - body.len();
    if !(1..=3).contains(&opened) {
        return None;
    }
    let body = body.trim_end_matches('`').trim();
    (!body.is_empty()).then(|| body.to_string())
}

/// How far into a line a viewer's prefix may reach.
const MAX_PREFIX: usize = 256;

/// `<prefix> [2024-03-25T08:56:41.328Z] "…` → `[2024-03-25T08:56:41.328Z] "…`: the first `[`
/// (after the line's start, within [`MAX_PREFIX`] bytes) that opens a date and time closed by
/// `] ` — the way Envoy's text formats begin.
fn after_viewer_prefix(line: &str) -> Option<String> {
    let b = line.as_bytes();
    if b.first() == Some(&b'[') {
        return None;
    }
    let reach = b.len().min(MAX_PREFIX);
    (1..reach)
        .filter(|&i| b[i] == b'[')
        .find(|&i| {
            let t = &b[i + 1..];
            let close = t.iter().take(40).position(|c| *c == b']');
            t.len() > 11
                && t[..4].iter().all(u8::is_ascii_digit)
                && t[4] == b'-'
                && t[10] == b'T'
                && close.is_some_and(|c| t.get(c + 1) == Some(&b' '))
        })
        .map(|i| line[i..].to_string())
}

/// `“` (U+201C), `”` (U+201D) and `„` (U+201E) → `"`.
fn straight_quotes(line: &str) -> Option<String> {
    const CURLY: [char; 3] = ['\u{201c}', '\u{201d}', '\u{201e}'];
    line.contains(CURLY).then(|| line.replace(CURLY, "\""))
}

/// Runs of spaces outside double-quoted values → one space (the line's ends trimmed).
fn single_spaces(line: &str) -> Option<String> {
    let line = line.trim();
    if !line.contains("  ") {
        return None;
    }
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    let mut last_space = false;
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == ' ' && !quoted {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
    }
    (out != line).then_some(out)
}

/// `"[…] ""GET / HTTP/1.1"" 503 …"` → `[…] "GET / HTTP/1.1" 503 …`: a quoted CSV cell, possibly
/// after other cells (`2024-05-01,"[…] ""GET …"`), or the doubled quotes alone.
fn undouble_quotes(line: &str) -> Option<String> {
    if !line.contains("\"\"") {
        return None;
    }
    let trimmed = line.trim_end();
    // The cell holding the access log: from the quote that opens it to the quote that closes
    // the line; a line without cell quotes is taken whole.
    let body = match trimmed.strip_suffix('"') {
        Some(inner) => {
            let open = if inner.starts_with('"') {
                Some(0)
            } else {
                inner.find(",\"").map(|i| i + 1)
            };
            match open {
                Some(i) => &inner[i + 1..],
                None => trimmed,
            }
        }
        None => trimmed,
    };
    let fixed = body.replace("\"\"", "\"");
    (fixed != line && fixed.contains('"')).then_some(fixed)
}

/// `"GET /status/200HTTP/1.1" 503` → `"GET /status/200 HTTP/1.1" 503`: only inside the first
/// quoted request line, only when its method and path are there.
fn space_before_protocol(line: &str) -> Option<String> {
    let open = line.find('"')?;
    let close = open + 1 + line[open + 1..].find('"')?;
    let request = &line[open + 1..=close];
    for p in PROTOCOLS {
        if let Some(at) = request.find(p) {
            let before = &request[..at];
            // `METHOD /path` glued to the protocol: one space in what precedes, no space at its end.
            if at > 0
                && !before.ends_with(' ')
                && before.split(' ').count() == 2
                && before.split(' ').nth(1).is_some_and(|p| p.starts_with('/'))
            {
                let cut = open + 1 + at;
                return Some(format!("{} {}", &line[..cut], &line[cut..]));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs() {
        let rows: &[(&str, Option<&str>)] = &[
            (
                r#"[2024-05-01T10:00:00.000Z] "GET /status/200HTTP/1.1" 503 UC"#,
                Some(r#"[2024-05-01T10:00:00.000Z] "GET /status/200 HTTP/1.1" 503 UC"#),
            ),
            (
                r#""[2024-05-01T10:00:00.000Z] ""GET /x HTTP/1.1"" 503 UC ""-"""#,
                Some(r#"[2024-05-01T10:00:00.000Z] "GET /x HTTP/1.1" 503 UC "-""#),
            ),
            (
                r#"2024-05-01T10:00:00Z,gw-1,"[2024-05-01T10:00:00.000Z] ""GET /x HTTP/1.1"" 503""#,
                Some(r#"[2024-05-01T10:00:00.000Z] "GET /x HTTP/1.1" 503"#),
            ),
            (
                r#""[2024-05-01T10:00:00.000Z] ""GET /xHTTP/2"" 503""#,
                Some(r#"[2024-05-01T10:00:00.000Z] "GET /x HTTP/2" 503"#),
            ),
            // Lines as pasted in public threads: in Markdown code (istio/istio#40944,
            // #51267), with typographic quotes and a doubled space (istio/istio#26369).
            (
                r#"```[2022-09-30T11:31:37.335Z] "GET /headers HTTP/1.1" 403 -"#,
                Some(r#"[2022-09-30T11:31:37.335Z] "GET /headers HTTP/1.1" 403 -"#),
            ),
            (
                r#"`[2024-05-28T18:42:53.929Z] "- - -" 0 UF,URX - -`"#,
                Some(r#"[2024-05-28T18:42:53.929Z] "- - -" 0 UF,URX - -"#),
            ),
            (
                "[2020-07-27T18:10:57.252Z] \"GET /p HTTP/1.1\"  503 UH \"-\" \u{201c}xxx-1.5.0\u{201d} \"a  b\"",
                Some(
                    r#"[2020-07-27T18:10:57.252Z] "GET /p HTTP/1.1" 503 UH "-" "xxx-1.5.0" "a  b""#,
                ),
            ),
            // A console export's own level, time and labels before the line (istio/istio#50075).
            (
                r#"INFO 2024-03-25T08:56:41.897522475Z [resource.labels.containerName: istio-proxy] [2024-03-25T08:56:41.328Z] "- - -" 0 UH"#,
                Some(r#"[2024-03-25T08:56:41.328Z] "- - -" 0 UH"#),
            ),
            // Markdown a paste added (istio/istio#53162; higress-group/higress#2881).
            (
                r#"[2024-09-16T15:01:44.563Z] "POST /x HTTP/2" 200 URX,UF **upstream_reset_before_response_started{remote_connection_failure}** - "-" 1 0 37 - "-" "-" "id" "h" "10.66.2.21:50051" **outbound|50051||a.b.svc.cluster.local** - -"#,
                Some(
                    r#"[2024-09-16T15:01:44.563Z] "POST /x HTTP/2" 200 URX,UF upstream_reset_before_response_started{remote_connection_failure} - "-" 1 0 37 - "-" "-" "id" "h" "10.66.2.21:50051" outbound|50051||a.b.svc.cluster.local - -"#,
                ),
            ),
            (
                r#"{"authority":"[10.245.192.64:32280](http://10.245.192.64:32280/)","user_agent":"Java/[11.0.14.1](http://11.0.14.1/)","x":"[a](https://b/)"}"#,
                Some(
                    r#"{"authority":"10.245.192.64:32280","user_agent":"Java/11.0.14.1","x":"[a](https://b/)"}"#,
                ),
            ),
            // In a Markdown table cell (istio/ztunnel#1662).
            (
                r#"[2025-11-02T23:09:49.230Z] "GET /e/ HTTP/2" 503 UC - "-" 0 95 0 - "-" "-" "id" "h" "envoy://connect_originate/10.199.174.112:80" outbound\|80\|\|http-echo.ns.svc.cluster.local - -"#,
                Some(
                    r#"[2025-11-02T23:09:49.230Z] "GET /e/ HTTP/2" 503 UC - "-" 0 95 0 - "-" "-" "id" "h" "envoy://connect_originate/10.199.174.112:80" outbound|80||http-echo.ns.svc.cluster.local - -"#,
                ),
            ),
            // Nothing to repair.
            (r#"[t] "GET /a**b HTTP/1.1" 503 "** x**" "**""#, None),
            (r#"[t] "GET /[a](http://b) HTTP/1.1" 503 "](http""#, None),
            (r#"x [2024-03-25 08:56:41] "- - -" 0 UH"#, None),
            ("````", None),
            ("````[t] \"GET /x HTTP/1.1\" 503", None),
            (r#"[2024-05-01T10:00:00.000Z] "GET /x HTTP/1.1" 503"#, None),
            (r#"[2024-05-01T10:00:00.000Z] "- - HTTP/1.1" 400"#, None),
            (r#"[t] "GET /a b HTTP/1.1" 503"#, None),
            ("\"\"", None),
            ("", None),
        ];
        for (line, want) in rows {
            assert_eq!(repair(line).map(|(t, _)| t).as_deref(), *want, "{line}");
        }
        let (_, what) = repair(r#""[t] ""GET /xHTTP/1.1"" 503""#).unwrap();
        assert!(what.contains("quotes") && what.contains("space"), "{what}");
    }
}
