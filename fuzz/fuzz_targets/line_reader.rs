//! Fuzz target: the bounded line reader under arbitrary chunking and line lengths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|_data: &[u8]| {});
