//! Fuzz target: one payload line through `LineParser::auto()` and through each built-in format
//! alone (via `FormatSpec`), then every typed accessor of whatever record comes out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::builtins::BUILTIN_TEXT;
use meshtrace_parsers::envelope::strip_envelope;
use meshtrace_parsers::{FormatSpec, LineOutcome, LineParser, Slot};

fuzz_target!(|data: &[u8]| {
    let line = meshtrace_fuzz::text(data);
    let line = line.as_ref();

    // Auto-detection; twice, so the remembered last format (or the format read by the line's
    // shape) takes the fast path, and its cheap success test is held to the same rule.
    let mut auto = LineParser::auto();
    meshtrace_fuzz::outcome(&auto.parse(line));
    let certified = auto.is_plain_success(line.as_bytes());
    let again = auto.parse(line);
    meshtrace_fuzz::outcome(&again);
    if certified {
        certified_is_success(line, &again);
    }
    // The payload behind a kubectl/CRI/docker envelope, as the assembler would hand it over.
    let (_, payload) = strip_envelope(line);
    meshtrace_fuzz::outcome(&auto.parse(&payload));

    // Each built-in format on its own, and the JSON dictionary. The cheap success test never
    // certifies a line that parses as a failure.
    let specs = BUILTIN_TEXT
        .iter()
        .map(|b| b.name)
        .chain(["json"])
        .filter_map(|n| FormatSpec::parse(n).ok());
    for spec in specs {
        let mut p = LineParser::new(&spec);
        let certified = p.is_plain_success(line.as_bytes());
        let outcome = p.parse(line);
        meshtrace_fuzz::outcome(&outcome);
        if certified {
            certified_is_success(line, &outcome);
        }
    }

    // The field-level parsers on the raw value (wider than what a format slot lets through).
    if line.len() <= 4096 {
        meshtrace_fuzz::field_parsers(line);
    }
});

/// A line the cheap success test certified is no failure once parsed.
fn certified_is_success(line: &str, outcome: &LineOutcome<'_>) {
    if let LineOutcome::Record(r) | LineOutcome::Truncated { record: r, .. } = outcome {
        // The test reads the status where a line Envoy wrote has it; the parser may split a
        // line differently only if a field before the status holds a quote, which Envoy never
        // writes there (the test refuses such lines itself).
        let quoted_prefix = [Slot::StartTime, Slot::Method, Slot::Path, Slot::Protocol]
            .iter()
            .any(|s| r.get(*s).is_some_and(|v| v.contains('"')));
        assert!(
            quoted_prefix
                || (r.status().is_some_and(|s| (100..400).contains(&s)) && r.flags().is_empty()),
            "certified a failure: {line:?}"
        );
    }
}
