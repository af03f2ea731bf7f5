//! Storage traits, one per concern, so that every layer works on any backend: in memory and
//! SQLite for one instance, Redis and PostgreSQL for several.
//!
//! The futures are boxed (`BoxFuture`) so the traits stay object safe: a server picks its
//! backends at run time (`--redis`, `--postgres`), one per concern.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use ipnet::IpNet;

pub mod memory;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store failed. Reaches the client only as a masked `service_unavailable` or
/// `database_error`; the message goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

/// What kind of store failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend cannot be reached or timed out: worth a retry later (503).
    Unavailable,
    /// The backend answered with an error (500 `database_error`).
    Backend,
}

impl StoreError {
    /// The backend cannot be reached.
    pub fn unavailable(message: impl fmt::Display) -> Self {
        StoreError { kind: StoreErrorKind::Unavailable, message: message.to_string() }
    }

    /// The backend failed.
    pub fn backend(message: impl fmt::Display) -> Self {
        StoreError { kind: StoreErrorKind::Backend, message: message.to_string() }
    }

    /// The kind.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for crate::ApiError {
    fn from(e: StoreError) -> Self {
        let code = match e.kind {
            StoreErrorKind::Unavailable => crate::Code::ServiceUnavailable,
            StoreErrorKind::Backend => crate::Code::DatabaseError,
        };
        let mut err = crate::ApiError::new(code).cause(&e);
        if e.kind == StoreErrorKind::Unavailable {
            err.problem_mut().retry_after = Some(1);
        }
        err
    }
}

// ---- API keys ---------------------------------------------------------------------------

/// A stored API key. The secret itself is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The public key id (part of the key, used to look it up).
    pub id: String,
    /// The organisation the key acts for.
    pub org_id: String,
    /// SHA-256 of the key's secret part.
    pub secret_hash: [u8; 32],
    /// Granted scopes (`read`, `write`, `admin`).
    pub scopes: Vec<String>,
    /// Unix seconds after which the key is expired.
    pub expires_at: Option<i64>,
    /// Unix seconds at which the key was revoked.
    pub revoked_at: Option<i64>,
    /// Client addresses allowed to use the key; empty allows any.
    pub allowed_ips: Vec<IpNet>,
    /// A live key (`rb_live_`) rather than a test key (`rb_test_`).
    pub live: bool,
}

impl KeyRecord {
    /// Whether `ip` may use this key.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip))
    }
}

/// Looks up API keys.
pub trait KeyStore: Send + Sync + 'static {
    /// The key with this public id.
    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>>;
}

// ---- sessions ---------------------------------------------------------------------------

/// A browser session (cookie) with its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session token (the cookie value).
    pub token_hash: [u8; 32],
    /// The user.
    pub user_id: String,
    /// The user's organisation.
    pub org_id: String,
    /// SHA-256 of the CSRF token the client must echo on unsafe methods.
    pub csrf_hash: [u8; 32],
    /// Unix seconds after which the session is expired.
    pub expires_at: i64,
    /// The user's account is disabled.
    pub user_disabled: bool,
}

/// Looks up sessions.
pub trait SessionStore: Send + Sync + 'static {
    /// The session whose token hashes to `token_hash`.
    fn find_session<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>>;
}

// ---- rate limits ------------------------------------------------------------------------

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

    /// For a store that also keeps idempotency records: decides one request as
    /// [`check`](Self::check) does and, only if it is admitted, begins its idempotency record
    /// as [`IdempotencyStore::begin`] on this same store would, in one atomic operation (on
    /// Redis, one script and one round trip instead of two).
    ///
    /// `None` (the default) when the store has no such operation; the
    /// [`RateLimitLayer`](crate::ratelimit::RateLimitLayer) then leaves the idempotency
    /// record to the [`IdempotencyLayer`](crate::idempotency::IdempotencyLayer).
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
/// [`IdempotencyStore::begin`].
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

// ---- quotas -----------------------------------------------------------------------------

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

// ---- idempotency ------------------------------------------------------------------------

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
