//! Fuzz target: an arbitrary string as an Envoy config dump through `ConfigDump::parse` (full
//! `configs` dump, one section with `@type`, or `/clusters?format=json`); the result is
//! formatted and serialized, errors are rendered with their JSON path.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::configdump::{ConfigDump, json_path_at};

fuzz_target!(|data: &[u8]| {
    let s = meshtrace_fuzz::text(data);
    match ConfigDump::parse(&s) {
        Ok(d) => {
            black_box(format!("{d:?}"));
            black_box(serde_json::to_string(&d).map(|j| j.len()).unwrap_or(0));
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
    // The error helper on every offset class: start, middle, end, past the end.
    for off in [0, s.len() / 2, s.len(), s.len() + 1] {
        black_box(json_path_at(&s, off));
    }
});
