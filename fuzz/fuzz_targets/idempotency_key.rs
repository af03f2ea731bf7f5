//! `Idempotency-Key` validation: exactly 1 to 255 visible ASCII characters; whatever it keeps
//! is a valid header value, so it can be stored and replayed.

#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use rebuff_axum::idempotency::{MAX_KEY_LEN, is_valid_key};

fuzz_target!(|data: &[u8]| {
    let expected = (1..=MAX_KEY_LEN).contains(&data.len()) && data.iter().all(|b| (0x21..=0x7e).contains(b));
    assert_eq!(is_valid_key(data), expected, "{data:?}");
    if is_valid_key(data) {
        let v = HeaderValue::from_bytes(data).expect("a kept key is a header value");
        assert!(v.to_str().is_ok());
    }
});
