//! Colour for the human printers (`--color auto|always|never`, `NO_COLOR`, `CLICOLOR_FORCE`).
//!
//! Styles never travel as escape sequences inside the text a printer builds: [`paint`] wraps
//! already escaped text in *markers* — a private-use character followed by a random number
//! chosen when the process starts and a style letter — and only the sanitiser
//! ([`super::safe::Sanitizer`]) turns markers into SGR sequences, after it has escaped the
//! evidence around them. Evidence cannot forge a marker (it would have to guess the number), so
//! an escape sequence in a log line is still shown escaped with `--color always`. When colour is
//! off, [`paint`] returns the text unchanged and the output is byte for byte what it was.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anstyle::{AnsiColor, Style};

/// When to colour: `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal, unless `NO_COLOR` is set (`CLICOLOR_FORCE`
    /// forces it).
    #[default]
    Auto,
    /// Always colour, even into a pipe or a file.
    Always,
    /// Never colour.
    Never,
}

/// What a painted piece of text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// A heading or a table header.
    Heading,
    /// A verdict or a status that means success.
    Ok,
    /// A verdict that means failure.
    Failed,
    /// A 4xx status (the client's request was refused).
    Warn,
    /// A 5xx status or a failed connection.
    Bad,
}

impl Paint {
    fn letter(self) -> char {
        match self {
            Paint::Heading => 'h',
            Paint::Ok => 'o',
            Paint::Failed => 'f',
            Paint::Warn => 'w',
            Paint::Bad => 'b',
        }
    }

    fn from_letter(c: char) -> Option<Style> {
        let fg = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        Some(match c {
            'h' => Style::new().bold(),
            'o' => fg(AnsiColor::Green),
            'f' => fg(AnsiColor::Red).bold(),
            'w' => fg(AnsiColor::Yellow),
            'b' => fg(AnsiColor::Red),
            _ => return None,
        })
    }
}

/// The style of an HTTP status code by class: 2xx (and 1xx/3xx) success, 4xx refused, 5xx and
/// 0 (no response) failed. `None` for text that is not a status.
pub fn status_paint(status: &str) -> Option<Paint> {
    let b = status.as_bytes();
    if status == "0" {
        return Some(Paint::Bad);
    }
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(match b[0] {
        b'1'..=b'3' => Paint::Ok,
        b'4' => Paint::Warn,
        _ => Paint::Bad,
    })
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Decide once, from `--color` and the environment, whether standard output is coloured.
/// `auto`: off when `NO_COLOR` is set to anything non-empty (<https://no-color.org>), on when
/// `CLICOLOR_FORCE` is set to anything but `0` (<https://bixense.com/clicolors/>), else on when
/// standard output is a terminal (and `TERM` is not `dumb`). `always`/`never` win over both.
pub fn configure(choice: ColorChoice) {
    let set = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if set("NO_COLOR").is_some() {
                false
            } else if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
                true
            } else {
                super::stdout_is_terminal()
                    && set("TERM").is_none_or(|t| t != "dumb")
                    && set("CLICOLOR").is_none_or(|v| v != "0")
            }
        }
    };
    ENABLED.store(on, Ordering::Relaxed);
}

/// Is colour on?
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The first character of every marker (a private-use character no printer writes).
const LEAD: char = '\u{f8ff}';
/// Hex digits of the per-process number in a marker.
const NONCE_LEN: usize = 16;

/// `LEAD` + the per-process number: what every marker starts with.
fn prefix() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // `RandomState` is seeded from the operating system's randomness per process.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        format!("{LEAD}{:0width$x}", h.finish(), width = NONCE_LEN)
    })
}

/// `text` (already escaped: our own words or evidence through [`super::safe::line`]) in a
/// style, when colour is on; unchanged when it is off.
pub fn paint(kind: Paint, text: &str) -> String {
    if !enabled() || text.is_empty() {
        return text.to_string();
    }
    let p = prefix();
    format!("{p}{}{text}{p}0", kind.letter())
}

/// A status code painted by its class ([`status_paint`]); other text unchanged.
pub fn paint_status(text: &str) -> String {
    match status_paint(text) {
        Some(k) => paint(k, text),
        None => text.to_string(),
    }
}

/// Does this (sanitiser) line hold a marker? Only ever true while colour is on.
pub(crate) fn has_marker(line: &[u8]) -> bool {
    if !enabled() {
        return false;
    }
    let p = prefix().as_bytes();
    line.windows(p.len()).any(|w| w == p)
}

/// One line with markers: the text between them through `clean` (the sanitiser's masking and
/// escaping), each marker replaced by its SGR sequence. A style left open at the end of the
/// line is reset, so colour never spills into the next line or the shell prompt.
pub(crate) fn render_line(line: &str, mut clean: impl FnMut(&str, &mut String)) -> String {
    let p = prefix();
    let mut out = String::with_capacity(line.len() + 16);
    let mut open = false;
    let mut rest = line;
    while let Some(i) = rest.find(p) {
        clean(&rest[..i], &mut out);
        let after = &rest[i + p.len()..];
        let mut chars = after.chars();
        match chars.next() {
            Some('0') => {
                if open {
                    out.push_str(&anstyle::Reset.render().to_string());
                }
                open = false;
            }
            Some(c) => match Paint::from_letter(c) {
                Some(s) => {
                    if open {
                        out.push_str(&anstyle::Reset.render().to_string());
                    }
                    out.push_str(&s.render().to_string());
                    open = true;
                }
                None => clean(&rest[i..i + p.len() + c.len_utf8()], &mut out),
            },
            None => clean(&rest[i..i + p.len()], &mut out),
        }
        rest = chars.as_str();
    }
    // Keep the line's own newline after the reset.
    let (body, nl) = match rest.strip_suffix('\n') {
        Some(b) => (b, true),
        None => (rest, false),
    };
    clean(body, &mut out);
    if open {
        out.push_str(&anstyle::Reset.render().to_string());
    }
    if nl {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_paint("200"), Some(Paint::Ok));
        assert_eq!(status_paint("404"), Some(Paint::Warn));
        assert_eq!(status_paint("503"), Some(Paint::Bad));
        assert_eq!(status_paint("0"), Some(Paint::Bad));
        assert_eq!(status_paint("-"), None);
        assert_eq!(status_paint("4040"), None);
    }

    #[test]
    fn markers_become_sgr_and_evidence_stays_escaped() {
        ENABLED.store(true, Ordering::Relaxed);
        let line = format!("{} \u{1b}[31mx\n", paint(Paint::Failed, "Verdict"));
        let out = render_line(&line, |s, o| o.push_str(&super::super::safe::text(s)));
        assert_eq!(out, "\u{1b}[1m\u{1b}[31mVerdict\u{1b}[0m \\x1b[31mx\n");
        // A forged marker with another number is shown as it is.
        let forged = format!("{LEAD}{}f", "0".repeat(NONCE_LEN));
        assert!(!has_marker(forged.as_bytes()) || prefix().ends_with(&"0".repeat(NONCE_LEN)));
        ENABLED.store(false, Ordering::Relaxed);
    }
}
