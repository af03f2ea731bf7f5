//! Idempotency records: [`IdempotencyStore`] keeps a lock while the first request with a key
//! runs, then its response for replay.

use std::time::Duration;

use bytes::Bytes;

use crate::{BoxFuture, StoreError};

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Status code.
    pub status: u16,
    /// Headers worth replaying (content type, location...).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

/// What `begin` found for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// No record: the caller now holds the lock and must `complete` or `release`.
    Started,
    /// Another request with this key is running.
    InFlight,
    /// Done before: replay this.
    Completed(StoredResponse),
    /// The key was used with another payload.
    Mismatch,
}

/// Keeps idempotency records: a lock while the first request runs, then its response.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Looks up `key` (already scoped to the caller); takes the lock if there is no record.
    /// `fingerprint` identifies the payload; `lock_ttl` bounds a lock whose holder died.
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        lock_ttl: Duration,
    ) -> BoxFuture<'a, Result<Begin, StoreError>>;

    /// Stores the first completion, kept for `ttl`.
    fn complete<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        response: StoredResponse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Drops the lock without a record (the request did not complete).
    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}
