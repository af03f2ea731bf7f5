//! Rate limits: [`RateLimitStore`] and the maths it keeps, GCRA ([`gcra`]).
//!
//! # The algorithm
//!
//! GCRA (the generic cell rate algorithm) keeps one timestamp per key, the *theoretical
//! arrival time* (TAT): the time at which the key's allowance would be whole again. Each
//! admitted request pushes it forward by the emission interval `period / limit`; a request is
//! refused when that would put the TAT more than `period` ahead of now. So a fresh key admits a
//! burst of `limit` requests, after which one more is admitted every `period / limit`:
//!
//! * over any interval of length `d`, at most `limit + floor(d / (period / limit))` requests
//!   are admitted, so exactly `limit` in a burst shorter than the emission interval, and never
//!   more than `2 * limit` in one `period` (a fixed window allows the same at its boundary, a
//!   sliding log needs `limit` timestamps per key);
//! * one decision is one read and one write of one number, which a shared store does
//!   atomically (a Redis script, a SQL upsert), so several instances admit exactly what one
//!   would.
//!
//! [`gcra`] is the pure decision; stores call it (or its equivalent in a script) under their
//! own atomicity.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::idempotency::Begin;
use crate::{BoxFuture, StoreError};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A rate limit: `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period (also the burst).
    pub limit: u32,
    /// The period.
    pub period: Duration,
}

/// The answer to one request against a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The limit.
    pub limit: u32,
    /// Requests still admitted right now.
    pub remaining: u32,
    /// Time until the limit is whole again.
    pub reset_after: Duration,
    /// For a refused request, time until one is admitted.
    pub retry_after: Option<Duration>,
}

/// Keeps rate-limit state. One call decides and records atomically (GCRA: one timestamp per
/// key), so that several instances sharing a store admit exactly the limit.
pub trait RateLimitStore: Send + Sync + 'static {
    /// Decides one request for `key` at `now_nanos` (nanoseconds since the Unix epoch).
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>>;

    /// Decides as [`check`](Self::check) does, when the store can do it without waiting (one
    /// in memory): no future to allocate and poll. `None` (the default) sends the caller to
    /// `check`. A store that implements it makes the same decisions both ways.
    fn check_now(&self, key: &str, quota: Quota, now_nanos: u128) -> Option<Result<Decision, StoreError>> {
        let _ = (key, quota, now_nanos);
        None
    }

    /// For a store that also keeps idempotency records: decides one request as
    /// [`check`](Self::check) does and, only if it is admitted, begins its idempotency record
    /// as [`IdempotencyStore::begin`](crate::IdempotencyStore::begin) on this same store would,
    /// in one atomic operation (on Redis, one script and one round trip instead of two).
    ///
    /// `None` (the default) when the store has no such operation; a rate-limit layer then
    /// leaves the idempotency record to the idempotency layer.
    fn check_and_begin<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
        begin: BeginRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<Admission, StoreError>>> {
        let _ = (key, quota, now_nanos, begin);
        None
    }
}

/// The idempotency half of [`RateLimitStore::check_and_begin`]: the arguments of
/// [`IdempotencyStore::begin`](crate::IdempotencyStore::begin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeginRequest<'a> {
    /// The idempotency key, already scoped to the caller.
    pub key: &'a str,
    /// The payload's fingerprint.
    pub fingerprint: &'a [u8; 32],
    /// How long the lock outlives a holder that died.
    pub lock_ttl: Duration,
}

/// What [`RateLimitStore::check_and_begin`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The rate-limit decision.
    pub decision: Decision,
    /// What began for the idempotency key: `None` exactly when the request was refused, in
    /// which case nothing was written for the key.
    pub begin: Option<Begin>,
}

/// Decides one request with GCRA.
///
/// `tat_nanos` is the key's stored theoretical arrival time (`None` for a key never seen or
/// expired), `now_nanos` the current time, both in nanoseconds since the Unix epoch. Returns
/// the TAT to store (`None`: the request was refused and the stored TAT stays as it was) and
/// the decision.
///
/// The burst is `limit` and the emission interval `period / limit` (rounded down to a whole
/// nanosecond, so that a burst of exactly `limit` always fits in `period`). A stored TAT in
/// the past is the same as none: once it has passed, the key can be forgotten. A `limit` of
/// zero refuses everything.
///
/// ```
/// use std::time::Duration;
/// use rebuff_store::ratelimit::gcra;
/// use rebuff_store::Quota;
///
/// let quota = Quota { limit: 2, period: Duration::from_secs(10) };
/// let now = 1_000_000_000_000;
/// let (tat, first) = gcra(None, now, quota);
/// assert!(first.allowed && first.remaining == 1);
/// let (tat, second) = gcra(tat, now, quota);
/// assert!(second.allowed && second.remaining == 0);
/// let (unchanged, third) = gcra(tat, now, quota);
/// assert!(!third.allowed && unchanged.is_none());
/// assert_eq!(third.retry_after, Some(Duration::from_secs(5)));
/// ```
pub fn gcra(tat_nanos: Option<u128>, now_nanos: u128, quota: Quota) -> (Option<u128>, Decision) {
    let period = quota.period.as_nanos();
    let limit = quota.limit;
    let tat = tat_nanos.map_or(now_nanos, |t| t.max(now_nanos));
    if limit == 0 || period == 0 {
        let decision = Decision {
            allowed: false,
            limit,
            remaining: 0,
            reset_after: quota.period,
            retry_after: Some(quota.period),
        };
        return (None, decision);
    }
    let interval = (period / u128::from(limit)).max(1);
    let horizon = now_nanos.saturating_add(period);
    let new_tat = tat.saturating_add(interval);
    let remaining = |tat: u128| -> u32 {
        let n = horizon.saturating_sub(tat) / interval;
        u32::try_from(n).unwrap_or(u32::MAX).min(limit)
    };
    if new_tat <= horizon {
        let decision = Decision {
            allowed: true,
            limit,
            remaining: remaining(new_tat),
            reset_after: nanos(new_tat - now_nanos),
            retry_after: None,
        };
        (Some(new_tat), decision)
    } else {
        let decision = Decision {
            allowed: false,
            limit,
            remaining: remaining(tat),
            reset_after: nanos(tat - now_nanos),
            retry_after: Some(nanos(new_tat - horizon)),
        };
        (None, decision)
    }
}

fn nanos(n: u128) -> Duration {
    let secs = u64::try_from(n / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9 and fits.
    let sub = u32::try_from(n % NANOS_PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

/// The current time in nanoseconds since the Unix epoch.
pub fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u128 = NANOS_PER_SEC;

    fn quota(limit: u32, secs: u64) -> Quota {
        Quota { limit, period: Duration::from_secs(secs) }
    }

    /// Runs `times` (nanoseconds) through GCRA; returns which were admitted.
    fn run(q: Quota, times: &[u128]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&t| {
                let (new, d) = gcra(tat, t, q);
                if let Some(n) = new {
                    tat = Some(n);
                }
                d.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_admits_exactly_the_limit() {
        let q = quota(5, 60);
        let t0 = 1_700_000_000 * S;
        let admitted = run(q, &[t0; 20]);
        assert_eq!(admitted.iter().filter(|a| **a).count(), 5);
        assert!(admitted[..5].iter().all(|a| *a));
    }

    #[test]
    fn remaining_reset_and_retry_come_from_the_tat() {
        let q = quota(5, 60);
        let t0 = 1_700_000_000 * S;
        let (tat, d) = gcra(None, t0, q);
        assert_eq!((d.allowed, d.limit, d.remaining), (true, 5, 4));
        assert_eq!(d.reset_after, Duration::from_secs(12));
        assert_eq!(d.retry_after, None);
        let mut tat = tat;
        for expected in (0..4).rev() {
            let (t, d) = gcra(tat, t0, q);
            tat = t;
            assert_eq!(d.remaining, expected);
        }
        let (none, d) = gcra(tat, t0 + S, q);
        assert_eq!(none, None);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_after, Duration::from_secs(59));
        assert_eq!(d.retry_after, Some(Duration::from_secs(11)));
        // Once the retry delay has passed, exactly one more is admitted.
        let (t, d) = gcra(tat, t0 + 12 * S, q);
        assert!(d.allowed && d.remaining == 0 && t.is_some());
    }

    #[test]
    fn recovers_fully_after_the_period() {
        let q = quota(3, 30);
        let t0 = 5 * S;
        let mut tat = None;
        for _ in 0..3 {
            tat = gcra(tat, t0, q).0;
        }
        let (_, d) = gcra(tat, t0 + 30 * S, q);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
    }

    #[test]
    fn steady_rate_admits_one_per_interval() {
        let q = quota(10, 10);
        // A request every 100 ms for 10 s after the burst: one admitted per second.
        let t0 = 100 * S;
        let mut times = vec![t0; 10];
        times.extend((1..=100).map(|i| t0 + i * S / 10));
        let admitted = run(q, &times).iter().filter(|a| **a).count();
        assert_eq!(admitted, 20);
    }

    #[test]
    fn zero_limit_refuses() {
        let (tat, d) = gcra(None, S, quota(0, 60));
        assert!(tat.is_none() && !d.allowed && d.retry_after.is_some());
    }
}
