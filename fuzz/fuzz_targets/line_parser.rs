//! Fuzz target: one payload line through `LineParser::auto()` and through each built-in format
//! alone (via `FormatSpec`), then every typed accessor of whatever record comes out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::builtins::BUILTIN_TEXT;
use meshtrace_parsers::envelope::strip_envelope;
use meshtrace_parsers::{FormatSpec, LineParser};

fuzz_target!(|data: &[u8]| {
    let line = meshtrace_fuzz::text(data);
    let line = line.as_ref();

    // Auto-detection; twice, so the remembered last format takes the fast path.
    let mut auto = LineParser::auto();
    meshtrace_fuzz::outcome(&auto.parse(line));
    meshtrace_fuzz::outcome(&auto.parse(line));
    // The payload behind a kubectl/CRI/docker envelope, as the assembler would hand it over.
    let (_, payload) = strip_envelope(line);
    meshtrace_fuzz::outcome(&auto.parse(&payload));

    // Each built-in format on its own, and the JSON dictionary.
    for b in BUILTIN_TEXT {
        if let Ok(spec) = FormatSpec::parse(b.name) {
            meshtrace_fuzz::outcome(&LineParser::new(&spec).parse(line));
        }
    }
    if let Ok(spec) = FormatSpec::parse("json") {
        meshtrace_fuzz::outcome(&LineParser::new(&spec).parse(line));
    }

    // The field-level parsers on the raw value (wider than what a format slot lets through).
    if line.len() <= 4096 {
        meshtrace_fuzz::field_parsers(line);
    }
});
