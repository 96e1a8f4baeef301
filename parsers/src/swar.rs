//! Byte searches eight bytes at a time for the short values between a format's literals (a
//! status, a flag, an address): on a few bytes they cost less than a vector search's set-up,
//! which they hand over to past the first [`SHORT`] bytes.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// How many bytes are searched a word at a time before `memchr` takes over.
const SHORT: usize = 32;

/// The word of `b` at `i` (eight bytes there, little-endian).
#[inline(always)]
fn word(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]))
}

/// The high bit of each byte of `w` that equals `c`, and maybe of bytes after one that does
/// (a borrow): the lowest bit set is always the first equal byte.
#[inline(always)]
fn equal_bytes(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The first place of `c` in `hay`, as `memchr::memchr` finds it.
#[inline]
pub(crate) fn find_byte(c: u8, hay: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= hay.len() {
        if i >= SHORT {
            return memchr::memchr(c, &hay[i..]).map(|k| i + k);
        }
        let z = equal_bytes(word(hay, i), c);
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..].iter().position(|&b| b == c).map(|k| i + k)
}

/// Does `hay` hold `x` or `y` (`memchr::memchr2(x, y, hay).is_some()`)?
#[inline]
pub(crate) fn has_either(x: u8, y: u8, hay: &[u8]) -> bool {
    if hay.len() > 2 * SHORT {
        return memchr::memchr2(x, y, hay).is_some();
    }
    let mut i = 0;
    while i + 8 <= hay.len() {
        let w = word(hay, i);
        if equal_bytes(w, x) | equal_bytes(w, y) != 0 {
            return true;
        }
        i += 8;
    }
    hay[i..].iter().any(|&b| b == x || b == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both searches answer as `memchr` does, on haystacks of every length up to past where
    /// `memchr` takes over, with the bytes looked for anywhere, several times or not at all,
    /// and next to bytes one above or below them (a borrow's decoys).
    #[test]
    fn searches_answer_as_memchr_does() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for (x, y) in [
            (b' ', b'"'),
            (b'"', b'"'),
            (b':', b'.'),
            (0, 0xff),
            (b'a', 1),
        ] {
            let pool = [
                x,
                y,
                x.wrapping_add(1),
                x.wrapping_sub(1),
                y ^ 0x80,
                b'z',
                0,
                0x80,
            ];
            for _ in 0..20_000 {
                let len = next(90) as usize;
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        if next(4) == 0 {
                            pool[next(pool.len() as u64) as usize]
                        } else {
                            b'q'
                        }
                    })
                    .collect();
                assert_eq!(
                    find_byte(x, &hay),
                    memchr::memchr(x, &hay),
                    "{x} in {hay:?}"
                );
                assert_eq!(
                    has_either(x, y, &hay),
                    memchr::memchr2(x, y, &hay).is_some(),
                    "{x} {y} in {hay:?}"
                );
            }
        }
        assert_eq!(find_byte(b'x', b""), None);
        assert!(!has_either(b'x', b'y', b""));
    }
}
