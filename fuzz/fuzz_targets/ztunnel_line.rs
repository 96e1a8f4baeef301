//! Fuzz target: ztunnel's connection lines — `ztunnel::parse` (text and JSON) never panics, a
//! line read once reads the same again, and every failure classifies.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::ztunnel::{Failure, parse, parse_duration_ms};

fuzz_target!(|data: &[u8]| {
    let s = meshtrace_fuzz::text(data);
    let s = s.as_ref();
    if let Some(c) = parse(s) {
        assert!(c.src_addr.is_some() || c.dst_addr.is_some());
        assert!(c.errors.len() <= meshtrace_parsers::ztunnel::MAX_ERRORS);
        assert_eq!(parse(s).as_ref(), Some(&c));
        black_box(c.failure());
    }
    black_box(Failure::classify(s));
    black_box(parse_duration_ms(s));
});
