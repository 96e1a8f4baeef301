//! Fuzz target: a pasted `curl -v` transcript — `curl::parse` never panics, keeps its bounds,
//! and reads the same input the same way twice.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::curl::{MAX_BODY_LINES, MAX_HEADERS, MAX_VALUE, parse};

fuzz_target!(|data: &[u8]| {
    let s = meshtrace_fuzz::text(data);
    let s = s.as_ref();
    if let Some(t) = parse(s) {
        assert!(t.status.is_some() || t.curl_error.is_some());
        assert!(t.status.is_none_or(|c| (200..=599).contains(&c)));
        assert!(t.headers.len() <= MAX_HEADERS);
        assert!(t.body.len() <= MAX_BODY_LINES);
        assert!(t.headers.iter().all(|(_, v)| v.len() <= MAX_VALUE));
        assert!(t.body.iter().all(|b| b.len() <= MAX_VALUE));
        assert_eq!(parse(s).as_ref(), Some(&t));
        black_box((t.server(), t.request_id(), t.body_text()));
    }
});
