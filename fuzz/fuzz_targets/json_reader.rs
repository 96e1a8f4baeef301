//! Fuzz target: the JSON side — `json::scan_object`, `envelope::strip_envelope`, the input as a
//! `--log-format` JSON mapping (`FormatSpec::parse` / `JsonFormat::from_mapping`) and the input
//! as a JSON access-log line for the auto dictionary and for the mapping it defines.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::detect::JsonFormat;
use meshtrace_parsers::envelope::strip_envelope;
use meshtrace_parsers::json::{parse_string, scan_object};
use meshtrace_parsers::{FormatSpec, LineParser};

fuzz_target!(|data: &[u8]| {
    let s = meshtrace_fuzz::text(data);
    let s = s.as_ref();

    let mut members = 0usize;
    let scanned = scan_object(s, |k, v| {
        members += 1;
        black_box(k.len());
        black_box(v.into_text());
    });
    match scanned {
        Ok(()) => {
            black_box(members);
        }
        Err(e) => {
            black_box((e.column, e.to_string()));
        }
    }
    if s.starts_with('"') {
        let _ = black_box(parse_string(s, 0));
    }

    let (env, payload) = strip_envelope(s);
    black_box((env.kind.name(), env.time, env.stream, env.partial));
    let mut auto = LineParser::auto();
    meshtrace_fuzz::outcome(&auto.parse(&payload));
    meshtrace_fuzz::outcome(&auto.parse(s));

    match JsonFormat::auto().parse(s) {
        Ok(Ok(r)) => meshtrace_fuzz::record(&r),
        Ok(Err(keys)) => {
            black_box(keys);
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }

    // The input as a mapping {"key": "%OPERATOR%", ...}; if usable, parse the input with it.
    match FormatSpec::parse(s) {
        Ok(spec) => meshtrace_fuzz::outcome(&LineParser::new(&spec).parse(s)),
        Err(e) => {
            black_box(e.to_string());
        }
    }
    match JsonFormat::from_mapping("fuzz", s) {
        Ok(f) => match f.parse(s) {
            Ok(Ok(r)) => meshtrace_fuzz::record(&r),
            Ok(Err(keys)) => {
                black_box(keys);
            }
            Err(e) => {
                black_box(e.to_string());
            }
        },
        Err(e) => {
            black_box(e.to_string());
        }
    }
});
