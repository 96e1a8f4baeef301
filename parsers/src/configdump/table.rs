//! `istioctl proxy-config …` text output pasted by users: summary lines (`Istio Version: …`)
//! and column tables, cut by the header's column positions (tabwriter alignment), falling back
//! to runs of two or more spaces when a row is not aligned.

use serde::Serialize;

/// Column names made of two words.
const TWO_WORD: [&str; 13] = [
    "VHOST NAME",
    "VIRTUAL SERVICE",
    "SERVICE FQDN",
    "DESTINATION RULE",
    "RESOURCE NAME",
    "VALID CERT",
    "SERIAL NUMBER",
    "NOT AFTER",
    "NOT BEFORE",
    "TRUST DOMAIN",
    "OUTLIER CHECK",
    "VIRTUAL HOSTS",
    "ECDS NAME",
];

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TextTable {
    /// Column names as printed.
    pub columns: Vec<String>,
    /// Rows, one cell per column (empty string for an empty cell).
    pub rows: Vec<Vec<String>>,
}

impl TextTable {
    /// Index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The cell `name` of `row`.
    pub fn cell<'a>(&self, row: &'a [String], name: &str) -> Option<&'a str> {
        self.column(name)
            .and_then(|i| row.get(i))
            .map(String::as_str)
    }
}

/// Everything recognised in a pasted text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TextReport {
    /// `Key: value` lines outside tables (`Istio Version: 1.21.0`).
    pub summary: Vec<(String, String)>,
    /// `NOTE: …` lines.
    pub notes: Vec<String>,
    /// Tables in order.
    pub tables: Vec<TextTable>,
}

fn header_columns(line: &str) -> Option<Vec<(usize, String)>> {
    let chars: Vec<char> = line.chars().collect();
    let mut words: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i] != ' ' {
            i += 1;
        }
        let w: String = chars[start..i].iter().collect();
        if !w.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return None;
        }
        words.push((start, w));
    }
    if words.len() < 2 {
        return None;
    }
    let mut cols: Vec<(usize, String)> = Vec::new();
    let mut k = 0;
    while k < words.len() {
        if let Some(next) = words.get(k + 1) {
            let joined = format!("{} {}", words[k].1, next.1);
            if TWO_WORD.contains(&joined.as_str()) && next.0 == words[k].0 + words[k].1.len() + 1 {
                cols.push((words[k].0, joined));
                k += 2;
                continue;
            }
        }
        cols.push(words[k].clone());
        k += 1;
    }
    Some(cols)
}

fn cut_row(line: &str, cols: &[(usize, String)]) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let aligned = cols
        .iter()
        .skip(1)
        .all(|(p, _)| *p == 0 || *p > chars.len() || chars.get(p - 1) == Some(&' '));
    if aligned {
        return cols
            .iter()
            .enumerate()
            .map(|(n, (p, _))| {
                let end = cols.get(n + 1).map(|c| c.0).unwrap_or(chars.len());
                let (a, b) = ((*p).min(chars.len()), end.min(chars.len()));
                chars[a..b.max(a)]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string()
            })
            .collect();
    }
    let mut cells: Vec<String> = Vec::new();
    for part in line.trim().split("  ") {
        let t = part.trim();
        if !t.is_empty() {
            cells.push(t.to_string());
        }
    }
    cells.resize(cols.len(), String::new());
    cells
}

/// Read every summary line and table of an `istioctl proxy-config` text output.
pub fn parse_tables(text: &str) -> TextReport {
    let mut out = TextReport::default();
    let mut cur: Option<(Vec<(usize, String)>, TextTable)> = None;
    for raw in text.lines() {
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('$') || t.starts_with("---") || t.starts_with("```") {
            if let Some((_, t)) = cur.take() {
                out.tables.push(t);
            }
            continue;
        }
        if let Some(n) = line.strip_prefix("NOTE:") {
            out.notes.push(n.trim().to_string());
            continue;
        }
        if let Some(cols) = header_columns(line) {
            if let Some((_, t)) = cur.take() {
                out.tables.push(t);
            }
            let t = TextTable {
                columns: cols.iter().map(|c| c.1.clone()).collect(),
                rows: Vec::new(),
            };
            cur = Some((cols, t));
            continue;
        }
        match cur.as_mut() {
            Some((cols, t)) => t.rows.push(cut_row(line, cols)),
            None => {
                if let Some((k, v)) = line.split_once(':') {
                    out.summary
                        .push((k.trim().to_string(), v.trim().to_string()));
                }
            }
        }
    }
    if let Some((_, t)) = cur.take() {
        out.tables.push(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_space_padding_and_empty_cells() {
        let t = "NAME                   ADDRESSES PORT  MATCH DESTINATION\n\
                 listener/main_internal           0     ALL   Cluster: encap\n\
                 listener/              0.0.0.0   15021 ALL   Inline Route: /healthz/ready*\n";
        let r = parse_tables(t);
        assert_eq!(r.tables.len(), 1);
        let tb = &r.tables[0];
        assert_eq!(
            tb.columns,
            ["NAME", "ADDRESSES", "PORT", "MATCH", "DESTINATION"]
        );
        assert_eq!(
            tb.rows[0],
            ["listener/main_internal", "", "0", "ALL", "Cluster: encap"]
        );
        assert_eq!(tb.rows[1][1], "0.0.0.0");
        assert_eq!(tb.rows[1][4], "Inline Route: /healthz/ready*");
    }

    #[test]
    fn never_panics_on_odd_text() {
        for t in [
            "",
            "A B\n\u{e9}",
            "NAME PORT\nx",
            "NAME  PORT\n\u{1F600}\u{1F600}  1",
        ] {
            let _ = parse_tables(t);
        }
    }
}
