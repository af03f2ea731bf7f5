//! Monthly usage counters: [`QuotaStore`].

use std::time::Duration;

use crate::{BoxFuture, StoreError};

/// The answer to a usage request against a monthly quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Whether the amount was granted (and recorded).
    pub granted: bool,
    /// Usage in the period after this request.
    pub used: u64,
    /// The quota.
    pub limit: u64,
}

/// Keeps usage counters per organisation and period.
pub trait QuotaStore: Send + Sync + 'static {
    /// Adds `amount` to `org`'s usage in `period` (e.g. `2026-11`) unless that would pass
    /// `limit`; atomic.
    fn consume<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Usage, StoreError>>;

    /// [`consume`](Self::consume), at most once per `charge` of `org`: the charge id of a
    /// granted request is remembered for `ttl`, and a repeat meanwhile records nothing and
    /// answers `granted` with the usage as it is. A refused charge is not remembered.
    ///
    /// This makes a charge safe to retry when its outcome is unknown (the reply was lost, the
    /// caller died): a multi-step operation picks the charge id before its first attempt and
    /// keeps it with its progress, as an idempotency key for the charge. The marking and the
    /// charge are one atomic step.
    fn consume_once<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
        charge: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Usage, StoreError>>;
}
