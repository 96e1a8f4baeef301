//! Fuzz target: the bounded line reader under arbitrary chunking and line lengths.
//!
//! The first bytes choose the maximum line length (0–255) and the chunk sizes; the rest is the
//! input. Checked: no line longer than the maximum is handed out; line numbers go up by one per
//! line; every byte is accounted for (lines + skipped lengths + newlines = input); the bytes
//! held between chunks never exceed the maximum; and the lines are exactly those of a plain
//! split of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace::source::input::{LineSplitter, Piece, TOO_LONG_HEAD};

fuzz_target!(|data: &[u8]| {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let Some((&step, input)) = rest.split_first() else {
        return;
    };
    let max = usize::from(max);
    let mut split = LineSplitter::new(max, 0);
    // Each line handed out, or the head of a line too long.
    let mut got: Vec<Result<Vec<u8>, Vec<u8>>> = Vec::new();
    let mut skipped = 0u64;
    let mut next = 1u64;
    let mut check = |p: Piece<'_>, got: &mut Vec<Result<Vec<u8>, Vec<u8>>>, skipped: &mut u64| match p {
        Piece::Line { number, text } => {
            assert_eq!(number, next);
            next += 1;
            assert!(text.len() <= max, "line of {} bytes over {max}", text.len());
            assert!(!text.contains(&b'\n'));
            got.push(Ok(text.to_vec()));
        }
        Piece::TooLong { number, len, head } => {
            assert_eq!(number, next);
            next += 1;
            assert!(len as usize > max);
            assert!(head.len() <= TOO_LONG_HEAD && head.len() as u64 <= len);
            *skipped += len;
            got.push(Err(head.to_vec()));
        }
    };
    // Chunk sizes from the data: 1 + step, varying along the input.
    let mut at = 0;
    let mut k = 0usize;
    while at < input.len() {
        let size = 1 + (usize::from(step) + k * 7919) % 300;
        let end = (at + size).min(input.len());
        split.push(&input[at..end], &mut |p| check(p, &mut got, &mut skipped));
        assert!(split.held() <= max);
        at = end;
        k += 1;
    }
    split.finish(&mut |p| check(p, &mut got, &mut skipped));
    let newlines = input.iter().filter(|&&b| b == b'\n').count() as u64;
    let kept: u64 = got.iter().flatten().map(|l| l.len() as u64).sum();
    assert_eq!(kept + skipped + newlines, input.len() as u64);
    // The same lines as a plain split (the last one only if it has bytes).
    let mut want: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if want.last().is_some_and(|l| l.is_empty()) {
        want.pop();
    }
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        match g {
            Ok(g) => assert_eq!(g.as_slice(), *w),
            Err(head) => {
                assert!(w.len() > max);
                assert_eq!(head.as_slice(), &w[..w.len().min(TOO_LONG_HEAD)]);
            }
        }
    }
    assert_eq!(split.line(), want.len() as u64);
});
