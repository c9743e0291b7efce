//! Byte searches over request and response bytes, eight bytes at a time in plain Rust
//! (no `unsafe`, no SIMD intrinsics): heads are short, and most of a search's cost on
//! them is per-byte loop overhead.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of the lowest zero byte of `x` is set (and possibly bits of bytes above
/// it, where a borrow passed through): 0 when no byte of `x` is zero.
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

fn word(w: &[u8]) -> u64 {
    u64::from_le_bytes(w.try_into().unwrap_or([0; 8]))
}

/// The position of the first `needle` in `hay`.
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let pattern = LO * u64::from(needle);
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let zero = zero_bytes(word(w) ^ pattern);
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

/// The high bit of every byte of `x` that equals `b` (exact: no borrows between bytes).
fn eq_bytes(x: u64, b: u8) -> u64 {
    let y = x ^ (LO * u64::from(b));
    !(((y & !HI) + !HI) | y) & HI
}

/// The high bit of every byte of `x` below `n` (`n` at most 0x80; exact).
fn lt_bytes(x: u64, n: u8) -> u64 {
    !(((x & !HI) + LO * u64::from(0x80 - n)) | x) & HI
}

/// Whether `bytes` hold a control character other than HTAB, or DEL: what a field
/// value may not hold (RFC 9110 §5.5).
pub fn has_ctl(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let x = word(w);
        if (lt_bytes(x, 0x20) & !eq_bytes(x, b'\t')) | eq_bytes(x, 0x7f) != 0 {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| (b < b' ' && b != b'\t') || b == 0x7f)
}

/// Whether `bytes` hold a CR or an LF.
pub fn has_cr_or_lf(bytes: &[u8]) -> bool {
    let (cr, lf) = (LO * u64::from(b'\r'), LO * u64::from(b'\n'));
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let x = word(w);
        if zero_bytes(x ^ cr) | zero_bytes(x ^ lf) != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b == b'\r' || b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position and every byte value around it, against the plain search.
    #[test]
    fn finds_what_a_plain_search_finds() {
        for len in 0..40 {
            for at in 0..=len {
                for fill in [0u8, b'a', 0x80, 0xff, b'\n' ^ 1, b'\r'] {
                    let mut hay = vec![fill; len];
                    if at < len {
                        hay[at] = b'\n';
                    }
                    let plain = hay.iter().position(|&b| b == b'\n');
                    assert_eq!(find_byte(&hay, b'\n'), plain, "{hay:?}");
                    let crlf = hay.iter().any(|&b| b == b'\r' || b == b'\n');
                    assert_eq!(has_cr_or_lf(&hay), crlf, "{hay:?}");
                }
            }
        }
        // Every byte value at every position of a word and of the tail.
        for len in [8, 11, 16] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut hay = vec![b'a'; len];
                    hay[at] = b;
                    let plain = hay.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f);
                    assert_eq!(has_ctl(&hay), plain, "{hay:?}");
                }
            }
        }
        // A match after bytes that borrow (0x00 before a needle of 0x01).
        assert_eq!(find_byte(&[0, 1, 1, 0, 0, 0, 0, 0, 1], 1), Some(1));
        assert_eq!(find_byte(&[2, 2, 2, 2, 2, 2, 2, 2, 2, 1], 1), Some(9));
    }
}
