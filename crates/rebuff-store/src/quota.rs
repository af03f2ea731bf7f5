//! Monthly usage counters: [`QuotaStore`].

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
}
