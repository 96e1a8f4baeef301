//! Fuzz target: the output sanitiser and the Markdown writer never let a control character or a block break-out through.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use meshtrace::report::markdown::{code, fence, inline, prose};
use meshtrace::report::safe::{self, Sanitizer, is_unsafe};

fn layout(c: char) -> bool {
    c == '\n' || c == '\t'
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses how the rest is cut into writes.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let s = String::from_utf8_lossy(rest);

    // One field: nothing unsafe at all, not even a newline or a tab.
    assert!(!safe::line(&s).chars().any(is_unsafe));
    // Text: only the layout's own newlines and tabs.
    assert!(!safe::text(&s).chars().any(|c| is_unsafe(c) && !layout(c)));

    // The writer, fed raw bytes (invalid UTF-8 included) in chunks of any size.
    let mut out = Vec::new();
    {
        let mut w = Sanitizer::new(&mut out);
        for chunk in rest.chunks(usize::from(cut.max(1))) {
            w.write_all(chunk).unwrap();
        }
        w.flush().unwrap();
    }
    let written = String::from_utf8(out).expect("the writer writes UTF-8");
    assert!(!written.chars().any(|c| is_unsafe(c) && !layout(c)));

    // Inline Markdown: one line (no raw newline or control character); evidence as inline
    // text carries no raw HTML (prose may keep `<` inside its code spans, where it is text).
    for md in [inline(&s), prose(&s), code(&s)] {
        assert!(!md.chars().any(is_unsafe), "{md:?}");
    }
    let text = inline(&s);
    assert!(!text.contains('<') && !text.contains('>'), "{text:?}");
    let c = code(&s);
    let ticks = c.chars().take_while(|c| *c == '`').count();
    assert!(c.ends_with(&"`".repeat(ticks)));
    assert!(!c[ticks..c.len() - ticks].contains(&"`".repeat(ticks)));

    // A fenced block: opens and closes with the same fence, and no line inside can close it.
    let block = fence("text", &s);
    assert!(!block.chars().any(|c| is_unsafe(c) && !layout(c)));
    let lines: Vec<&str> = block.lines().collect();
    let open = lines[0].trim_end_matches("text");
    assert!(open.len() >= 3 && open.chars().all(|c| c == '`'));
    assert_eq!(*lines.last().unwrap(), open);
    for l in &lines[1..lines.len() - 1] {
        let run = l.trim_start_matches(' ').chars().take_while(|c| *c == '`').count();
        assert!(run < open.len(), "{l:?} closes {open}");
    }
});
