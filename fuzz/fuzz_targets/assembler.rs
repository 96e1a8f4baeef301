//! Fuzz target: the input split on `\n` and pushed line by line through an `Assembler` (with
//! and without re-joining wrapped lines), then `finish`; every event is inspected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::{Assembler, Event, LineParser};

fuzz_target!(|data: &[u8]| {
    let s = meshtrace_fuzz::text(data);
    for join in [true, false] {
        let mut a = Assembler::new(LineParser::auto(), join);
        let mut sink = |e: Event<'_>| meshtrace_fuzz::event(&e);
        for (i, line) in s.split('\n').enumerate() {
            a.push(i as u64 + 1, line, &mut sink);
        }
        a.finish(&mut sink);
    }
});
