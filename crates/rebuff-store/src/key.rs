//! The API key format: `rb_test_` or `rb_live_`, a 12-character public id, `_`, and a
//! 32-character secret (base62). Only the id and SHA-256 of the secret are stored.
//!
//! A fast hash is right for keys (unlike passwords): the secret has about 190 bits of entropy,
//! so there is nothing to brute-force; the comparison is constant time all the same.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of test keys.
pub const TEST_PREFIX: &str = "rb_test_";
/// Prefix of live keys.
pub const LIVE_PREFIX: &str = "rb_live_";
/// Length of the public id.
pub const ID_LEN: usize = 12;
/// Length of the secret.
pub const SECRET_LEN: usize = 32;

/// A newly generated key. `text` is shown to its owner once and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    /// The whole key, as the client sends it.
    pub text: String,
    /// The public id.
    pub id: String,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// A live key.
    pub live: bool,
}

/// A key as read from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// The public id.
    pub id: String,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// A live key.
    pub live: bool,
}

fn random(n: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect()
}

/// SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Makes a new key.
pub fn generate(live: bool) -> GeneratedKey {
    let id = random(ID_LEN);
    let secret = random(SECRET_LEN);
    let prefix = if live { LIVE_PREFIX } else { TEST_PREFIX };
    GeneratedKey { text: format!("{prefix}{id}_{secret}"), secret_hash: hash_secret(&secret), id, live }
}

/// Reads a key; `None` when it is not of the format (a malformed key).
pub fn parse(text: &str) -> Option<ParsedKey> {
    let (live, rest) = if let Some(rest) = text.strip_prefix(LIVE_PREFIX) {
        (true, rest)
    } else {
        (false, text.strip_prefix(TEST_PREFIX)?)
    };
    let (id, secret) = rest.split_once('_')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok(id, ID_LEN) || !ok(secret, SECRET_LEN) {
        return None;
    }
    Some(ParsedKey { id: id.to_owned(), secret_hash: hash_secret(secret), live })
}

/// Compares two hashes in constant time.
///
/// The differences of the four 64-bit words are gathered without a branch, and only their
/// union is compared through `subtle`: `subtle`'s byte slices are compared a byte at a time
/// behind an optimisation barrier each, ten times the instructions for the same guarantee.
pub fn hashes_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let words = |h: &[u8; 32]| {
        let mut w = [0u64; 4];
        for (word, bytes) in w.iter_mut().zip(h.chunks_exact(8)) {
            *word = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
        }
        w
    };
    let (a, b) = (words(a), words(b));
    let diff = (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]);
    diff.ct_eq(&0).into()
}

/// A random token for sessions and CSRF (43 base62 characters).
pub fn token() -> String {
    random(43)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_only_when_every_byte_does() {
        let a: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert!(hashes_match(&a, &a));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!hashes_match(&a, &b), "byte {i}, bit {bit}");
            }
        }
        assert!(!hashes_match(&[0; 32], &[0xff; 32]));
    }

    #[test]
    fn generated_keys_parse_back() {
        for live in [false, true] {
            let k = generate(live);
            let p = parse(&k.text).expect("well-formed");
            assert_eq!((p.id, p.secret_hash, p.live), (k.id, k.secret_hash, live));
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "rb_test_",
            "sk_test_abc",
            "rb_test_short_secret",
            "rb_live_aaaaaaaaaaaa_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
