//! When and how long to wait before sending a request again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::Method;
use rebuff::RetryClass;

use crate::error::{ApiError, Kind};

/// When a failed request is sent again, and after how long.
///
/// A request is retried only when all of these hold:
/// - the failure is retryable: the identified code's [`RetryClass`] is `backoff` or
///   `retry_after` (without a contract, the status is 408, 429 or a 5xx other than 501), or
///   the connection failed, was reset or timed out. A 4xx that needs the request fixed is
///   never retried;
/// - the request is safe to replay: its method is idempotent (`GET`, `HEAD`, `OPTIONS`,
///   `TRACE`, `PUT`, `DELETE`) or it carries an `Idempotency-Key`. A `POST` or `PATCH`
///   without a key is never retried, except when no connection could be made at all (then
///   nothing was sent). By default every `POST` gets a generated key, the same on all its
///   attempts;
/// - fewer than [`max_attempts`](RetryPolicyBuilder::max_attempts) attempts were made;
/// - the delay fits: the server's hint (`Retry-After` in seconds or as an HTTP-date, or the
///   IETF `RateLimit` field's `t`) is at most
///   [`max_retry_after`](RetryPolicyBuilder::max_retry_after) (a longer one is not waited
///   for: the error is returned with its [`retry_after`](ApiError::retry_after)), and the
///   wait ends before the [deadline](RetryPolicyBuilder::deadline);
/// - the shared [`RetryBudget`] has the tokens for it.
///
/// Without a hint the delay is full-jitter exponential backoff: a uniformly random duration
/// between zero and `min(max_delay, base_delay × 2^(retry − 1))`.
///
/// An `after_reauth` error (an expired key or session) is retried once, right away, after the
/// client's re-authentication hook has run; that retry costs no budget and does not count
/// against `max_attempts`.
///
/// ```
/// use std::time::Duration;
/// use rebuff_client::{Jitter, RetryBudget, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(5)
///     .base_delay(Duration::from_millis(100))
///     .max_delay(Duration::from_secs(5))
///     .deadline(Some(Duration::from_secs(20)))
///     .jitter(Jitter::Full)
///     .budget(RetryBudget::new(100))
///     .build();
/// assert_eq!(policy.max_attempts(), 5);
/// ```
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
    deadline: Option<Duration>,
    attempt_timeout: Option<Duration>,
    jitter: Jitter,
    idempotency_keys: bool,
    budget: RetryBudget,
}

impl Default for RetryPolicy {
    /// 3 attempts, backoff from 500 ms capped at 20 s, server hints up to 60 s, a 60 s
    /// deadline, no timeout per attempt, full jitter, generated idempotency keys, and a budget
    /// of 500 tokens.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
            deadline: Some(Duration::from_secs(60)),
            attempt_timeout: None,
            jitter: Jitter::Full,
            idempotency_keys: true,
            budget: RetryBudget::default(),
        }
    }
}

impl RetryPolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder { policy: RetryPolicy::default() }
    }

    /// One attempt, no retries (errors are still decoded, POSTs still get a key).
    pub fn none() -> Self {
        Self::builder().max_attempts(1).build()
    }

    /// The number of attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff's first ceiling.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The backoff's largest ceiling.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The longest server-requested delay the client waits for.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The time allowed for all attempts and the waits between them.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The time allowed for one attempt.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    /// How backoff delays are randomised.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// Whether a `POST` without an `Idempotency-Key` gets one.
    pub fn idempotency_keys(&self) -> bool {
        self.idempotency_keys
    }

    /// The budget retries draw from.
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The backoff ceiling before retry number `retry` (1 for the first retry).
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => {
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rand::random_range(0..=nanos))
            }
        }
    }

    /// What to do after attempt number `state.attempt` failed with `error`.
    pub(crate) fn decide(&self, error: &ApiError, state: &State) -> Decision {
        let class = error.retry_class();
        let nothing_sent = error.kind() == Kind::Connect;
        if !(state.replay_safe || nothing_sent) {
            return Decision::Stop(Stop::NotReplayable);
        }
        if class == RetryClass::AfterReauth {
            return if state.can_reauth { Decision::Reauth } else { Decision::Stop(Stop::NotRetryable) };
        }
        if !class.is_retryable() {
            return Decision::Stop(Stop::NotRetryable);
        }
        if state.retries + 1 >= self.max_attempts {
            return Decision::Stop(Stop::Attempts);
        }
        let delay = match error.retry_after() {
            Some(hint) if hint > self.max_retry_after => return Decision::Stop(Stop::RetryAfterTooLong),
            Some(hint) => hint,
            None => self.backoff(state.retries + 1),
        };
        if let Some(remaining) = state.remaining
            && delay >= remaining
        {
            return Decision::Stop(Stop::Deadline);
        }
        let cost =
            if error.kind() == Kind::Timeout { self.budget.timeout_cost() } else { self.budget.retry_cost() };
        if !self.budget.withdraw(cost) {
            return Decision::Stop(Stop::Budget);
        }
        Decision::Retry { delay, cost }
    }
}

/// Where a request stands, for [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    /// Retries already made (re-authentication excluded).
    pub(crate) retries: u32,
    /// The method is idempotent or the request has an idempotency key.
    pub(crate) replay_safe: bool,
    /// A hook is set, it has not run for this request, and the request can be sent again.
    pub(crate) can_reauth: bool,
    /// Time left before the deadline.
    pub(crate) remaining: Option<Duration>,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Wait, then send again; `cost` tokens were taken from the budget.
    Retry { delay: Duration, cost: u32 },
    /// Run the re-authentication hook, then send again.
    Reauth,
    /// Return the error.
    Stop(Stop),
}

/// Why a failed request is not sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    NotRetryable,
    NotReplayable,
    Attempts,
    RetryAfterTooLong,
    Deadline,
    Budget,
}

/// Whether a method may be sent twice with the same effect as once (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Builds a [`RetryPolicy`]; every setting starts at its default.
#[derive(Debug, Clone)]
pub struct RetryPolicyBuilder {
    policy: RetryPolicy,
}

impl RetryPolicyBuilder {
    /// The number of attempts, the first included (at least 1; default 3).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.policy.max_attempts = n.max(1);
        self
    }

    /// The backoff's first ceiling (default 500 ms).
    #[must_use]
    pub fn base_delay(mut self, d: Duration) -> Self {
        self.policy.base_delay = d;
        self
    }

    /// The backoff's largest ceiling (default 20 s).
    #[must_use]
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.policy.max_delay = d;
        self
    }

    /// The longest `Retry-After` (or `RateLimit` reset) the client waits for (default 60 s);
    /// a longer one ends the retries.
    #[must_use]
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.policy.max_retry_after = d;
        self
    }

    /// The time allowed for all attempts and the waits between them, `None` for no limit
    /// (default 60 s).
    #[must_use]
    pub fn deadline(mut self, d: Option<Duration>) -> Self {
        self.policy.deadline = d;
        self
    }

    /// The time allowed for one attempt, up to the response's headers (and an error
    /// response's body); `None` leaves it to the `reqwest::Client` (default `None`).
    #[must_use]
    pub fn attempt_timeout(mut self, d: Option<Duration>) -> Self {
        self.policy.attempt_timeout = d;
        self
    }

    /// How backoff delays are randomised (default [`Jitter::Full`]).
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// Whether a `POST` without an `Idempotency-Key` gets a generated one (default `true`).
    /// Without one, a `POST` is never retried.
    #[must_use]
    pub fn idempotency_keys(mut self, on: bool) -> Self {
        self.policy.idempotency_keys = on;
        self
    }

    /// The budget retries draw from (default: a new [`RetryBudget`] of 500 tokens). Give
    /// clients of the same API the same budget.
    #[must_use]
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.policy.budget = budget;
        self
    }

    /// The policy.
    pub fn build(self) -> RetryPolicy {
        self.policy
    }
}

/// How backoff delays are randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// Uniformly random between zero and the ceiling ("full jitter"), so that clients that
    /// failed together do not retry together.
    #[default]
    Full,
    /// Exactly the ceiling. For tests, or a single client.
    None,
}

/// A token bucket that retries draw from, shared by every clone of a client (AWS's "retry
/// quota"): when an API keeps failing, the bucket empties and the client stops retrying
/// instead of multiplying the load, until successes fill it again.
///
/// Each retry takes [`retry_cost`](Self::retry_cost) tokens (a retry after a timeout takes
/// [`timeout_cost`](Self::timeout_cost)); a request that succeeds at once puts back one token,
/// and one that succeeds after retrying puts back what its last retry took. The bucket never
/// holds more than its capacity.
///
/// ```
/// use rebuff_client::RetryBudget;
///
/// let budget = RetryBudget::new(500);
/// assert_eq!(budget.available(), 500);
/// assert_eq!((budget.retry_cost(), budget.timeout_cost()), (5, 10));
/// ```
#[derive(Debug, Clone)]
pub struct RetryBudget {
    inner: Arc<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    capacity: u32,
    retry_cost: u32,
    timeout_cost: u32,
    tokens: AtomicU32,
}

impl Default for RetryBudget {
    /// 500 tokens, 5 a retry, 10 a retry after a timeout (AWS's defaults).
    fn default() -> Self {
        Self::new(500)
    }
}

impl RetryBudget {
    /// A full bucket of `capacity` tokens, with AWS's costs (5 a retry, 10 after a timeout).
    pub fn new(capacity: u32) -> Self {
        Self::with_costs(capacity, 5, 10)
    }

    /// A full bucket with the given costs.
    pub fn with_costs(capacity: u32, retry_cost: u32, timeout_cost: u32) -> Self {
        RetryBudget {
            inner: Arc::new(Bucket { capacity, retry_cost, timeout_cost, tokens: AtomicU32::new(capacity) }),
        }
    }

    /// A budget that never runs out.
    pub fn unlimited() -> Self {
        Self::with_costs(u32::MAX, 0, 0)
    }

    /// The tokens in the bucket now.
    pub fn available(&self) -> u32 {
        self.inner.tokens.load(Ordering::Relaxed)
    }

    /// The bucket's capacity.
    pub fn capacity(&self) -> u32 {
        self.inner.capacity
    }

    /// What one retry takes.
    pub fn retry_cost(&self) -> u32 {
        self.inner.retry_cost
    }

    /// What a retry after a timeout takes.
    pub fn timeout_cost(&self) -> u32 {
        self.inner.timeout_cost
    }

    /// Takes `cost` tokens if the bucket has them.
    pub(crate) fn withdraw(&self, cost: u32) -> bool {
        self.inner.tokens.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(cost)).is_ok()
    }

    /// Puts back `amount` tokens, up to the capacity.
    pub(crate) fn deposit(&self, amount: u32) {
        let cap = self.inner.capacity;
        let _ = self
            .inner
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_add(amount).min(cap)));
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, StatusCode};

    use super::*;
    use crate::Contract;

    fn state(retries: u32) -> State {
        State { retries, replay_safe: true, can_reauth: false, remaining: None }
    }

    fn status(code: u16) -> ApiError {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Contract::none().decode(status, &HeaderMap::new(), b"")
    }

    #[test]
    fn backoff_ceilings_double_up_to_the_cap() {
        let p = RetryPolicy::builder()
            .base_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(500))
            .build();
        let ceilings: Vec<u128> = (1..=5).map(|r| p.backoff_ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 500, 500]);
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling() {
        let p =
            RetryPolicy::builder().base_delay(Duration::from_millis(100)).budget(RetryBudget::unlimited());
        let p = p.max_attempts(10).build();
        for retries in 0..8 {
            for _ in 0..200 {
                match p.decide(&status(503), &state(retries)) {
                    Decision::Retry { delay, .. } => assert!(delay <= p.backoff_ceiling(retries + 1)),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn status_classes_without_a_contract() {
        let p = RetryPolicy::builder().jitter(Jitter::None).build();
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(p.decide(&status(code), &state(0)), Decision::Retry { .. }), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 413, 415, 422, 501] {
            assert!(matches!(p.decide(&status(code), &state(0)), Decision::Stop(_)), "{code}");
        }
    }

    #[test]
    fn hints_are_honoured_up_to_the_cap() {
        let p = RetryPolicy::builder().max_retry_after(Duration::from_secs(30)).build();
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("30"));
        let e = Contract::none().decode(StatusCode::TOO_MANY_REQUESTS, &h, b"");
        assert_eq!(p.decide(&e, &state(0)), Decision::Retry { delay: Duration::from_secs(30), cost: 5 });
        h.insert("retry-after", HeaderValue::from_static("31"));
        let e = Contract::none().decode(StatusCode::TOO_MANY_REQUESTS, &h, b"");
        assert_eq!(p.decide(&e, &state(0)), Decision::Stop(Stop::RetryAfterTooLong));
        let near = State { remaining: Some(Duration::from_secs(29)), ..state(0) };
        h.insert("retry-after", HeaderValue::from_static("29"));
        let e = Contract::none().decode(StatusCode::TOO_MANY_REQUESTS, &h, b"");
        assert_eq!(p.decide(&e, &near), Decision::Stop(Stop::Deadline));
    }

    #[test]
    fn unsafe_requests_are_not_replayed_unless_nothing_was_sent() {
        let p = RetryPolicy::default();
        let unsafe_ = State { replay_safe: false, ..state(0) };
        assert_eq!(p.decide(&status(503), &unsafe_), Decision::Stop(Stop::NotReplayable));
        let refused = ApiError::transport(Kind::Connect, None);
        assert!(matches!(p.decide(&refused, &unsafe_), Decision::Retry { .. }));
        let reset = ApiError::transport(Kind::Reset, None);
        assert_eq!(p.decide(&reset, &unsafe_), Decision::Stop(Stop::NotReplayable));
    }

    #[test]
    fn reauth_only_with_a_hook() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(&status(401), &state(0)), Decision::Stop(Stop::NotRetryable));
        let hook = State { can_reauth: true, ..state(0) };
        assert_eq!(p.decide(&status(401), &hook), Decision::Reauth);
    }

    #[test]
    fn the_budget_runs_out_and_refills_to_capacity() {
        let budget = RetryBudget::with_costs(12, 5, 10);
        let p = RetryPolicy::builder().max_attempts(100).budget(budget.clone()).build();
        assert!(matches!(p.decide(&status(503), &state(0)), Decision::Retry { cost: 5, .. }));
        assert!(matches!(p.decide(&status(503), &state(1)), Decision::Retry { cost: 5, .. }));
        assert_eq!(budget.available(), 2);
        assert_eq!(p.decide(&status(503), &state(2)), Decision::Stop(Stop::Budget));
        budget.deposit(100);
        assert_eq!(budget.available(), 12);
    }
}
