//! JSON strings written by hand, byte for byte as `serde_json` writes them.
//!
//! The renderers of the RFC 9457 envelopes write their bodies with [`write_str`], and so can
//! a handler that writes a page straight into a buffer (the reference API's project list).
//! `serde_json` escapes a string by looking every byte up in a table; the strings of an error
//! or a page (codes, URIs, ids, names) almost never need escaping, so [`write_str`] checks
//! that first, sixteen bytes at a time, and copies the string as it is when nothing needs it.

/// Appends `s` to `out` as a JSON string, quoted and escaped exactly as
/// `serde_json::to_writer(out, s)` would.
///
/// ```
/// let mut out = Vec::new();
/// rebuff_core::json::write_str(&mut out, "plain");
/// rebuff_core::json::write_str(&mut out, "a \"quoted\"\nline");
/// assert_eq!(out, br#""plain""a \"quoted\"\nline""#);
/// ```
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing a string into a Vec cannot fail.
        let written = serde_json::to_writer(&mut *out, s);
        debug_assert!(written.is_ok());
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether JSON must escape a byte of `bytes` (a quote, a backslash, a control character).
///
/// Without a copy or a branch per byte, since nearly every string written here (catalog
/// titles and URIs, codes, ids) needs no escaping and the answer is nearly always "no":
/// sixteen bytes at a time, which the compiler turns into a few vector instructions per
/// block, the last block overlapping the one before it; a string shorter than a block as two
/// overlapping eight-byte words; one shorter than a word a byte at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    let n = bytes.len();
    if n >= 16 {
        let block_escapes = |block: &[u8]| block.iter().fold(false, |any, &b| any | escapes(b));
        let mut blocks = bytes.chunks_exact(16);
        if blocks.any(block_escapes) {
            return true;
        }
        // Bytes checked twice are harmless: only whether one escapes matters.
        return !blocks.remainder().is_empty() && block_escapes(&bytes[n - 16..]);
    }
    if n >= 8 {
        return word_escapes(&bytes[..8]) || word_escapes(&bytes[n - 8..]);
    }
    bytes.iter().any(|&b| escapes(b))
}

/// Whether JSON escapes `b`.
fn escapes(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// Whether JSON escapes a byte of `word` (eight bytes), with the bit tricks of "Bit Twiddling
/// Hacks" (a byte below 0x20; a byte equal to `"` or `\`, as a zero byte of the word xor'ed
/// with it): each is exact about whether such a byte exists.
fn word_escapes(word: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Eight bytes always; were they not, zero would send the string to the slow, exact path.
    let x = word.try_into().map_or(0, u64::from_ne_bytes);
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let zero = |x: u64| below(x, 1);
    below(x, 0x20) | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) != 0
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_byte_is_judged_in_every_place() {
        // Each byte value alone at each place of strings of every length up to three blocks,
        // among fillers that need no escaping, high and low: the blocks, the overlapping last
        // block, the two words and the short loop all see it.
        for filler in [b'a', b' ', b'!', 0x7f, 0xff] {
            for len in 1..=48 {
                for at in 0..len {
                    for b in 0..=u8::MAX {
                        let mut bytes = vec![filler; len];
                        bytes[at] = b;
                        assert_eq!(
                            needs_escape(&bytes),
                            escapes(b),
                            "{b:#04x} at {at} of {len}, among {filler:#04x}"
                        );
                    }
                }
            }
        }
        assert!(!needs_escape(b""));
        assert!(!needs_escape("\u{7f}é€😀 ".as_bytes()));
    }

    proptest! {
        #[test]
        fn written_strings_are_what_serde_writes(
            s in prop_oneof![
                "[a-zA-Z0-9 ._/:-]{0,40}",
                "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}é€😀]){0,40}",
                // Each kind of byte to escape alone among ones that need none, in the blocks
                // and in the tail: a control character at the edge, a quote, a backslash.
                "[a-z \u{1f}\u{7f}]{1,40}",
                "[a-z \u{7f}\"]{1,40}",
                "[a-z \\\\]{1,40}",
            ],
            prefix in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut written = prefix.clone();
            write_str(&mut written, &s);
            let mut expected = prefix;
            expected.extend(serde_json::to_vec(&s).expect("a string serialises"));
            prop_assert_eq!(written, expected);
        }
    }
}
