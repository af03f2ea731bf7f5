//! The universal parser: any status, headers and body give a `ParsedError`, never a panic, and
//! the normalised value survives a JSON round trip.
//!
//! Input: two bytes of status (big-endian), header lines `name: value` up to an empty line,
//! then the body. Lines that are not valid headers are dropped: an HTTP stack never hands
//! those over.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use rebuff::{Catalog, ParsedError, parse, parse_for};

fn split(data: &[u8]) -> (u16, HeaderMap, &[u8]) {
    let status = u16::from_be_bytes([data[0], data[1]]);
    let rest = &data[2..];
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (&[][..], rest),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    (status, headers, body)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (status, headers, body) = split(data);
    let parsed = parse(status, &headers, body);
    assert_eq!(parsed.status, status);
    let json = serde_json::to_vec(&parsed).expect("a ParsedError serializes");
    let back: ParsedError = serde_json::from_slice(&json).expect("and deserializes");
    assert_eq!(back, parsed);
    for name in Catalog::PROFILES {
        let catalog = Catalog::builtin(name).expect("built in");
        let (p, entry) = parse_for(catalog, status, &headers, body);
        assert_eq!(p.status, status);
        if let Some(entry) = entry {
            assert!(catalog.get(&entry.code).is_some(), "{name}: identified a code it does not have");
        }
    }
});
