//! Throttling of failed credential checks per client address, for
//! [`AuthLayer::throttle_failures`](super::AuthLayer::throttle_failures).
//!
//! Only failures count, each against the rate-limit store (shared between instances when the
//! store is): a request whose credential is refused takes one unit of the address's budget.
//! Once the budget is spent the address answers `rate_limit_exceeded` (429), and until the
//! budget refills its requests are refused before any credential is looked at, so a guess
//! made meanwhile teaches nothing. The limit is per address, never per key: a client
//! elsewhere cannot lock a valid key out by failing with its id.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::ratelimit::{now_nanos, write_headers};
use crate::store::{Decision, Quota, RateLimitStore};
use crate::{ApiError, Code};

/// Addresses remembered as throttled on this instance; past this, expired ones are dropped
/// first, and then new ones are not remembered (the store still refuses their failures).
const MAX_BLOCKED: usize = 100_000;

/// The state of one throttle, shared by the clones of a layer.
#[derive(Clone)]
pub(crate) struct Throttle {
    store: Arc<dyn RateLimitStore>,
    quota: Quota,
    /// Until when each throttled address is refused before its credential is checked. Local
    /// to this instance: it saves a store operation per refused request, while the count of
    /// failures itself lives in the store.
    blocked: Arc<Mutex<HashMap<IpAddr, Instant>>>,
}

impl Throttle {
    pub(crate) fn new(store: Arc<dyn RateLimitStore>, quota: Quota) -> Self {
        Throttle { store, quota, blocked: Arc::default() }
    }

    /// The 429 for an address still throttled, if it is.
    pub(crate) fn refuse_early(&self, ip: IpAddr) -> Option<ApiError> {
        // The clock is read only for an address that was throttled: most never are.
        let until = *self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&ip)?;
        let left = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        let decision = Decision {
            allowed: false,
            limit: self.quota.limit,
            remaining: 0,
            reset_after: left,
            retry_after: Some(left),
        };
        Some(self.too_many(&decision, now_nanos()))
    }

    /// Counts a failed check from `ip`; the 429 to answer instead of the failure once the
    /// budget is spent. A store failure lets the original failure through: it is a refusal
    /// already.
    pub(crate) async fn failed(&self, ip: IpAddr) -> Option<ApiError> {
        let now = now_nanos();
        let key = format!("auth-failures:{ip}");
        let decision = match self.store.check(&key, self.quota, now).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "counting a failed credential check failed");
                return None;
            }
        };
        if decision.allowed {
            return None;
        }
        let wait = decision.retry_after.unwrap_or(Duration::from_secs(1));
        self.remember(ip, Instant::now() + wait);
        Some(self.too_many(&decision, now))
    }

    fn remember(&self, ip: IpAddr, until: Instant) {
        let mut blocked = self.blocked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocked.len() >= MAX_BLOCKED {
            let now = Instant::now();
            blocked.retain(|_, t| *t > now);
        }
        if blocked.len() < MAX_BLOCKED || blocked.contains_key(&ip) {
            blocked.insert(ip, until);
        }
    }

    fn too_many(&self, decision: &Decision, now: u128) -> ApiError {
        let mut headers = HeaderMap::new();
        write_headers(&mut headers, decision, self.quota, now);
        let mut err = ApiError::new(Code::RateLimitExceeded)
            .detail("Too many failed authentication attempts from this address. Try again later.");
        let p = err.problem_mut();
        p.retry_after = decision.retry_after.map(|d| d.as_secs_f64().ceil() as u64).map(|s| s.max(1));
        p.headers.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        err
    }
}

/// Whether a refusal is a failed credential check: a credential was presented and is wrong.
/// Presenting none (`api_key_missing`, `authentication_required`) is not a guess.
pub(crate) fn counts(err: &ApiError) -> bool {
    matches!(
        err.problem().code(),
        "api_key_malformed" | "api_key_invalid" | "api_key_revoked" | "api_key_expired" | "session_expired"
    )
}
