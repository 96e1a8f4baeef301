//! Tables for people that never break a token: cells wrap only after a space, `/`, `|` or `,`
//! (or before the `{` of Envoy's `details{argument}`), so an IP, an `ip:port`, a pod name or a
//! request id is never split across lines. When even the longest tokens cannot fit side by
//! side, the table is printed as one block of `name  value` lines per row instead; a token
//! wider than the screen is cut with `…`. With no width (`-o wide`) every value is printed
//! whole. Drawn with the condensed full box-drawing style the tables always had; cells
//! are padded before they are painted, so colour never shifts a column.

use std::fmt;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::style::{self, Paint};

/// One cell: already escaped text (see [`super::safe::line`]), and how to paint it.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    text: String,
    paint: Option<Paint>,
    /// Never wrapped (a short value whose parts belong together, like `◀ 5`).
    whole: bool,
}

impl Cell {
    /// A cell painted as `paint`.
    pub fn painted(text: impl Into<String>, paint: Option<Paint>) -> Cell {
        Cell {
            text: text.into(),
            paint,
            whole: false,
        }
    }

    /// This cell is never wrapped (only cut with `…` if its column is narrower).
    pub fn whole(mut self) -> Cell {
        self.whole = true;
        self
    }

    /// A status code, painted by its class (2xx green, 4xx yellow, 5xx red).
    pub fn status(text: impl Into<String>) -> Cell {
        let text = text.into();
        let paint = style::status_paint(&text);
        Cell {
            text,
            paint,
            whole: true,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell {
            text,
            paint: None,
            whole: false,
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::from(text.to_string())
    }
}

/// A table: a header and rows of cells, laid out at a width when it is displayed.
#[derive(Debug, Clone)]
pub struct Grid {
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
    width: Option<usize>,
}

impl Grid {
    /// A table with these column names, laid out within `width` columns of text (`None`: as
    /// wide as its values).
    pub fn new(header: &[&str], width: Option<u16>) -> Grid {
        Grid {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            width: width.map(usize::from),
        }
    }

    /// Add a row (missing cells are empty, extra cells dropped).
    pub fn add_row(&mut self, cells: Vec<Cell>) {
        let mut cells = cells;
        cells.resize_with(self.header.len(), Cell::default);
        self.rows.push(cells);
    }

    /// The width of each column (text only, without padding and borders).
    fn widths(&self) -> Vec<usize> {
        let n = self.header.len();
        let mut natural = vec![0usize; n];
        let mut least = vec![1usize; n];
        let all = std::iter::once(
            self.header
                .iter()
                .map(|h| (h.as_str(), false))
                .collect::<Vec<_>>(),
        )
        .chain(
            self.rows
                .iter()
                .map(|r| r.iter().map(|c| (c.text.as_str(), c.whole)).collect()),
        );
        for row in all {
            for (i, (text, whole)) in row.into_iter().enumerate() {
                natural[i] = natural[i].max(text.split('\n').map(|l| l.width()).max().unwrap_or(0));
                least[i] = least[i].max(min_width(text, whole));
            }
        }
        let Some(total) = self.width else {
            return natural;
        };
        // Borders and padding: `│ ` + ` ┆ ` between columns + ` │`.
        let avail = total.saturating_sub(3 * n + 1).max(n);
        if natural.iter().sum::<usize>() <= avail {
            return natural;
        }
        if least.iter().sum::<usize>() <= avail {
            // Every token fits whole: from the narrowest widths, give whole lines to as many
            // columns as possible (the smallest wishes first), the rest of the room to the
            // others evenly.
            let mut w = least.clone();
            let mut room = avail - least.iter().sum::<usize>();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| natural[i] - least[i]);
            let mut short = Vec::new();
            for i in order {
                let want = natural[i] - least[i];
                if want <= room {
                    w[i] = natural[i];
                    room -= want;
                } else {
                    short.push(i);
                }
            }
            while room > 0 && !short.is_empty() {
                short.retain(|&i| w[i] < natural[i]);
                for &i in &short {
                    if room == 0 {
                        break;
                    }
                    w[i] += 1;
                    room -= 1;
                }
            }
            return w;
        }
        // Even the longest tokens do not fit: narrow the widest columns (their tokens are cut
        // with `…`), the narrow ones keep their width. (Displayed, such a table is printed as
        // records instead: see `fits`.)
        fill(avail, |level| {
            (0..n).map(|i| least[i].min(level.max(1))).collect()
        })
    }

    /// Can every token be shown whole in columns at this width?
    fn fits(&self) -> bool {
        let Some(total) = self.width else {
            return true;
        };
        let n = self.header.len();
        let avail = total.saturating_sub(3 * n + 1);
        let mut least = vec![1usize; n];
        for (i, h) in self.header.iter().enumerate() {
            least[i] = least[i].max(min_width(h, false));
        }
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                least[i] = least[i].max(min_width(&c.text, c.whole));
            }
        }
        least.iter().sum::<usize>() <= avail
    }

    /// The table as one block per row — `── <first column> ──` then `name  value` lines, values
    /// wrapped at separators under each other — for widths too narrow for its columns.
    fn fmt_records(&self, f: &mut fmt::Formatter<'_>, total: usize) -> fmt::Result {
        use std::fmt::Write as _;
        let mut out = String::new();
        // The first column names the block (`── # 1 ──`) when it is short; else it is a line
        // of the block like the others.
        let short = |r: &Vec<Cell>| {
            r.first().map_or(0, |c| c.text.width()) + self.header[0].width() + 6 <= total
                && !r.first().is_some_and(|c| c.text.contains('\n'))
        };
        let titled = self.rows.iter().all(short);
        let from = usize::from(titled);
        let label = self.header[from..]
            .iter()
            .map(|h| h.width())
            .max()
            .unwrap_or(0);
        let value_width = total.saturating_sub(label + 4).max(8);
        for (k, r) in self.rows.iter().enumerate() {
            if k > 0 {
                writeln!(out)?;
            }
            let title = if titled {
                let first = r.first().map(|c| c.text.as_str()).unwrap_or("");
                format!("── {} {} ", self.header[0], first)
            } else {
                "──".to_string()
            };
            let rule = "─".repeat(total.min(60).saturating_sub(title.width()));
            writeln!(
                out,
                "{}",
                style::paint(Paint::Heading, &format!("{title}{rule}"))
            )?;
            for (h, c) in self.header[from..].iter().zip(&r[from..]) {
                let lines = wrap(&c.text, value_width, c.whole);
                for (i, l) in lines.iter().enumerate() {
                    let name = if i == 0 { h.as_str() } else { "" };
                    let pad = label - name.width();
                    let shown = match c.paint {
                        Some(p) => style::paint(p, l),
                        None => l.clone(),
                    };
                    writeln!(
                        out,
                        "  {}{}  {shown}",
                        style::paint(Paint::Heading, name),
                        " ".repeat(pad)
                    )?;
                }
            }
        }
        // Like the boxed table, no newline after the last line.
        f.write_str(out.trim_end_matches('\n'))
    }
}

/// The largest `level` for which `at(level)` sums to at most `avail`, then the columns still
/// below what they would get one level up get one more each while room is left.
fn fill(avail: usize, at: impl Fn(usize) -> Vec<usize>) -> Vec<usize> {
    let (mut lo, mut hi) = (0usize, avail + 1);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if at(mid).iter().sum::<usize>() <= avail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut w = at(lo);
    let up = at(lo + 1);
    let mut room = avail.saturating_sub(w.iter().sum());
    for (x, u) in w.iter_mut().zip(up) {
        if room > 0 && u > *x {
            *x += 1;
            room -= 1;
        }
    }
    w
}

/// The unbreakable pieces of one line of text, each with whether a space came before it: the
/// line is cut at spaces (which are dropped), after `/`, `|` and `,`, and before `{`.
fn pieces(line: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    for (wi, word) in line.split(' ').filter(|w| !w.is_empty()).enumerate() {
        let mut start = 0;
        let mut first = true;
        for (i, c) in word.char_indices() {
            // After `/`, `|`, `,`; before `{` (Envoy's `details{argument}`).
            let end = match c {
                '/' | '|' | ',' => i + c.len_utf8(),
                '{' => i,
                _ => continue,
            };
            if end > start && end < word.len() {
                out.push((&word[start..end], first && wi > 0));
                first = false;
                start = end;
            }
        }
        out.push((&word[start..], first && wi > 0));
    }
    out
}

/// The narrowest column `text` fits in without a token cut: its widest piece (its widest line
/// when it is kept whole).
fn min_width(text: &str, whole: bool) -> usize {
    text.split('\n')
        .map(|l| {
            if whole {
                l.width()
            } else {
                pieces(l).iter().map(|(p, _)| p.width()).max().unwrap_or(0)
            }
        })
        .max()
        .unwrap_or(0)
}

/// `text` cut to `width` columns, ending in `…`.
fn cut(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut w = 0;
    for c in text.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// The lines of a cell at `width` columns.
fn wrap(text: &str, width: usize, whole: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for hard in text.split('\n') {
        if hard.width() <= width {
            lines.push(hard.to_string());
            continue;
        }
        if whole {
            lines.push(cut(hard, width));
            continue;
        }
        let mut cur = String::new();
        for (piece, spaced) in pieces(hard) {
            let piece = if piece.width() > width {
                cut(piece, width)
            } else {
                piece.to_string()
            };
            let sep = usize::from(spaced && !cur.is_empty());
            if !cur.is_empty() && cur.width() + sep + piece.width() > width {
                lines.push(std::mem::take(&mut cur));
            } else if sep == 1 {
                cur.push(' ');
            }
            cur.push_str(&piece);
        }
        lines.push(cur);
    }
    lines
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(total) = self.width
            && !self.fits()
            && self.header.len() > 1
        {
            return self.fmt_records(f, total);
        }
        let widths = self.widths();
        let rule = |l: &str, fill: &str, mid: &str, r: &str| {
            let parts: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
            format!("{l}{}{r}", parts.join(mid))
        };
        writeln!(f, "{}", rule("┌", "─", "┬", "┐"))?;
        let header: Vec<Cell> = self
            .header
            .iter()
            .map(|h| Cell::painted(h.clone(), Some(Paint::Heading)))
            .collect();
        write_row(f, &header, &widths)?;
        writeln!(f, "{}", rule("╞", "═", "╪", "╡"))?;
        for r in &self.rows {
            write_row(f, r, &widths)?;
        }
        write!(f, "{}", rule("└", "─", "┴", "┘"))
    }
}

fn write_row(f: &mut fmt::Formatter<'_>, cells: &[Cell], widths: &[usize]) -> fmt::Result {
    let wrapped: Vec<Vec<String>> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| wrap(&c.text, *w, c.whole))
        .collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    for i in 0..height {
        let mut line = String::from("│");
        for (j, (lines, w)) in wrapped.iter().zip(widths).enumerate() {
            let text = lines.get(i).map(String::as_str).unwrap_or("");
            let pad = w.saturating_sub(text.width());
            let shown = match cells[j].paint {
                Some(p) => style::paint(p, text),
                None => text.to_string(),
            };
            line.push(' ');
            line.push_str(&shown);
            line.push_str(&" ".repeat(pad));
            line.push_str(if j + 1 == widths.len() {
                " │"
            } else {
                " ┆"
            });
        }
        writeln!(f, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_break_after_separators_only() {
        let p: Vec<&str> = pieces("kserve-test/pod-1 10.0.0.1:80, a|b x{y}")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            p,
            [
                "kserve-test/",
                "pod-1",
                "10.0.0.1:80,",
                "a|",
                "b",
                "x",
                "{y}"
            ]
        );
    }

    #[test]
    fn narrow_tables_wrap_between_tokens_or_cut_with_an_ellipsis() {
        let mut g = Grid::new(&["pod", "listener"], Some(30));
        g.add_row(vec![
            "istio-system/istio-ingressgateway-64694db8d5-zmcc7".into(),
            "10.135.0.43:8443".into(),
        ]);
        let s = g.to_string();
        for l in s.lines() {
            assert!(l.width() <= 30, "{l}");
        }
        assert!(s.contains("10.135.0.43:8443"), "{s}");
        assert!(s.contains("istio-system/"), "{s}");
        assert!(s.contains("istio-ingre") && s.contains('…'), "{s}");
    }

    #[test]
    fn no_width_prints_everything_whole() {
        let mut g = Grid::new(&["a"], None);
        let long = "x".repeat(300);
        g.add_row(vec![long.clone().into()]);
        assert!(g.to_string().contains(&long));
    }
}
