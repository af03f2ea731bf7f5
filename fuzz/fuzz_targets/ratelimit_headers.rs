//! Rate-limit header rendering: for any decision and quota (arbitrary, and as GCRA makes
//! them), `write_headers` sets all five fields, each a valid header value that says what the
//! decision says.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName};
use libfuzzer_sys::fuzz_target;
use rebuff_axum::ratelimit::{
    RATELIMIT, RATELIMIT_POLICY, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET, gcra,
    write_headers,
};
use rebuff_axum::store::{Decision, Quota};

#[derive(Debug, Arbitrary)]
struct Input {
    allowed: bool,
    limit: u32,
    remaining: u32,
    reset_after: (u64, u32),
    retry_after: Option<(u64, u32)>,
    quota_limit: u32,
    period: (u64, u32),
    now_nanos: u128,
    tat_nanos: Option<u128>,
}

fn duration((secs, nanos): (u64, u32)) -> Duration {
    // Duration::new panics when the nanoseconds carry past u64::MAX seconds.
    Duration::new(secs, nanos % 1_000_000_000)
}

fn check(headers: &HeaderMap, decision: &Decision) {
    for name in
        [&X_RATELIMIT_LIMIT, &X_RATELIMIT_REMAINING, &X_RATELIMIT_RESET, &RATELIMIT, &RATELIMIT_POLICY]
    {
        let value = headers.get(name).unwrap_or_else(|| panic!("{name} missing"));
        let text = value.to_str().unwrap_or_else(|_| panic!("{name} is not visible ASCII"));
        assert!(!text.is_empty() && text.bytes().all(|b| (0x20..0x7f).contains(&b)), "{name}: {text:?}");
    }
    let int = |name: HeaderName| headers.get(name)?.to_str().ok()?.parse::<u64>().ok();
    assert_eq!(int(X_RATELIMIT_LIMIT), Some(u64::from(decision.limit)));
    assert_eq!(int(X_RATELIMIT_REMAINING), Some(u64::from(decision.remaining)));
    assert!(int(X_RATELIMIT_RESET).is_some());
    let fields = headers[&RATELIMIT].to_str().unwrap_or_default();
    assert!(fields.starts_with(&format!("\"default\";r={};t=", decision.remaining)), "{fields}");
    let policy = headers[&RATELIMIT_POLICY].to_str().unwrap_or_default();
    assert!(policy.starts_with(&format!("\"default\";q={};w=", decision.limit)), "{policy}");
}

fuzz_target!(|input: Input| {
    let quota = Quota { limit: input.quota_limit, period: duration(input.period) };
    let decision = Decision {
        allowed: input.allowed,
        limit: input.limit,
        remaining: input.remaining,
        reset_after: duration(input.reset_after),
        retry_after: input.retry_after.map(duration),
    };
    let mut headers = HeaderMap::new();
    write_headers(&mut headers, &decision, quota, input.now_nanos);
    check(&headers, &decision);

    // What the layer actually renders: GCRA's own decisions.
    let (_, decision) = gcra(input.tat_nanos, input.now_nanos, quota);
    assert!(decision.remaining <= decision.limit);
    let mut headers = HeaderMap::new();
    write_headers(&mut headers, &decision, quota, input.now_nanos);
    check(&headers, &decision);
});
