//! Fuzz target: an arbitrary string as an Envoy format string through `TextFormat::compile`;
//! when it compiles, the rest of the input is matched against it (whole and from resume points).
//!
//! Two splits are tried: first half / second half of the input, and — when the input has a
//! newline — the text before the first `\n` / the text after it (the seed corpus uses this:
//! `<format>\n<line>`).
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::format::MatchOutcome;
use meshtrace_parsers::{FormatSpec, LineParser, TextFormat};

fn split_half(s: &str) -> (&str, &str) {
    let mut mid = s.len() / 2;
    while !s.is_char_boundary(mid) {
        mid -= 1;
    }
    s.split_at(mid)
}

fn check(fmt: &str, line: &str) {
    match TextFormat::compile("fuzz", fmt) {
        Ok(f) => {
            black_box((
                f.name(),
                f.source(),
                f.typed_field_count(),
                f.commands().len(),
            ));
            for c in f.commands() {
                black_box((c.time_format(), c.slot.map(|s| (s.key(), s.operator()))));
            }
            outcome(&f, f.match_line(line));
            for (seg, off) in f.resume_points(4).into_iter().take(64) {
                outcome(&f, f.match_from(line, seg, off));
            }
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
    // The same string as a `--log-format` value, used by a parser.
    match FormatSpec::parse(fmt) {
        Ok(spec) => meshtrace_fuzz::outcome(&LineParser::new(&spec).parse(line)),
        Err(e) => {
            black_box(e.to_string());
        }
    }
}

fn outcome(f: &TextFormat, o: MatchOutcome<'_>) {
    match o {
        MatchOutcome::Full(r) => meshtrace_fuzz::record(&r),
        MatchOutcome::Truncated {
            record,
            fields_matched,
            stopped_at,
        } => {
            black_box(fields_matched);
            black_box(f.slots_from(stopped_at));
            black_box(f.slots_before(stopped_at));
            meshtrace_fuzz::record(&record);
        }
        MatchOutcome::Mismatch(m) => {
            black_box((m.column, m.fields_matched, m.to_string()));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let s = meshtrace_fuzz::text(data);
    let s = s.as_ref();
    let (fmt, line) = split_half(s);
    check(fmt, line);
    if let Some((fmt, line)) = s.split_once('\n') {
        check(fmt, line);
    }
});
