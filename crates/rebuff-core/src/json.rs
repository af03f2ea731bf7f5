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
/// Sixteen bytes at a time without an early exit inside, which the compiler turns into a few
/// vector instructions per block.
fn needs_escape(bytes: &[u8]) -> bool {
    let block_escapes =
        |block: &[u8; 16]| block.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block_escapes(block.try_into().unwrap_or(&[b' '; 16])) {
            return true;
        }
    }
    // The short tail (most strings here are shorter than a block) padded with spaces, which
    // need no escaping, so that it too is checked as one block.
    let mut tail = [b' '; 16];
    let rest = blocks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    block_escapes(&tail)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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

    #[test]
    fn every_escaped_byte_is_found_in_any_position() {
        for len in 1..=40 {
            for at in 0..len {
                for bad in [b'"', b'\\', 0x00, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = bad;
                    assert!(needs_escape(&bytes), "{bad:#x} at {at} of {len}");
                }
                assert!(!needs_escape(&vec![b'a'; len]));
            }
        }
        assert!(!needs_escape(b""));
        assert!(!needs_escape("\u{7f}é€😀 ".as_bytes()));
    }
}
