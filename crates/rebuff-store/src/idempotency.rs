//! Idempotency records: [`IdempotencyStore`] keeps a lock while the first request with a key
//! runs, then its response for replay.
//!
//! A store can lose a record (a restart without persistence, a response never stored because
//! the store was down), so exactly-once takes more: a handler records the outcome of its side
//! effect in the side effect's own transaction ([`IdempotencyRecord`] says under which key),
//! and [`Outcomes`] finds those records before a request runs again.

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

impl StoredResponse {
    /// A JSON response: `status`, `content-type: application/json` and `body`.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        StoredResponse {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.into(),
        }
    }
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

/// The idempotency key of the request being run, so that its outcome can be recorded in the
/// same transaction as its side effect: then the outcome exists exactly when the side effect
/// does, and [`Outcomes::find`] answers retries from it. The idempotency layer of `rebuff-axum`
/// puts it in the request's extensions.
///
/// Whoever records must, inside its transaction and before writing, look the key up and
/// answer the recorded outcome if there is one (a run that raced this one committed first); a
/// primary key on the record's key makes a second commit impossible even then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The key, scoped to its caller, as stored.
    pub key: String,
    /// The payload's fingerprint; a recorded outcome with another one answers
    /// `idempotency_key_reused`.
    pub fingerprint: [u8; 32],
    /// How long the outcome must be kept.
    pub ttl: Duration,
}

/// An outcome recorded with its side effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The payload's fingerprint.
    pub fingerprint: [u8; 32],
    /// The response, as the client got it (without the exchange's own headers).
    pub response: StoredResponse,
}

/// Reads outcomes recorded with their side effects (see [`IdempotencyRecord`]).
pub trait Outcomes: Send + Sync + 'static {
    /// The unexpired outcome recorded for `key`, if any.
    fn find<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Outcome>, StoreError>>;
}
