//! Incoming `X-Request-Id` validation: exactly 1 to 128 characters of `A-Z a-z 0-9 - _ . :`;
//! whatever it keeps is a valid header value and never carries CR, LF or other controls.

#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use rebuff_axum::request_id::{MAX_LEN, is_valid};

fuzz_target!(|data: &[u8]| {
    let expected = (1..=MAX_LEN).contains(&data.len())
        && data.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
    assert_eq!(is_valid(data), expected, "{data:?}");
    if is_valid(data) {
        let v = HeaderValue::from_bytes(data).expect("a kept id is a header value");
        assert!(v.to_str().is_ok_and(|s| !s.contains(|c: char| c.is_control() || c == ' ')));
    }
});
