//! Storage for rebuff, without HTTP: one trait per concern, so that every layer works on any
//! backend (in memory and SQLite for one instance, Redis and PostgreSQL for several), and the
//! pure parts those backends share.
//!
//! | module | what it holds |
//! |---|---|
//! | [`error`] | [`StoreError`]: unavailable (503) or backend failure (500), with its [`source`](std::error::Error::source) |
//! | [`auth`] | [`KeyStore`] and [`SessionStore`]: what authentication looks up ([`KeyRecord`], [`SessionRecord`]) |
//! | [`accounts`] | [`AccountStore`]: organisations, users and logins, API keys, sessions; password hashing |
//! | [`key`] | the API key format, key hashing and constant-time comparison |
//! | [`key_cache`] | [`CachedKeyStore`]: verified keys kept in memory, forgotten within a bound when keys change ([`KeyChanges`]) |
//! | [`ratelimit`] | [`RateLimitStore`] and the GCRA maths ([`gcra`]) |
//! | [`quota`] | [`QuotaStore`]: monthly usage per organisation |
//! | [`idempotency`] | [`IdempotencyStore`]: a lock while the first request runs, then its response; [`Outcomes`]: outcomes recorded with their side effects |
//! | [`memory`] | [`MemoryStore`] (limits, quotas, idempotency) and [`MemoryAuthStore`] (accounts, keys, sessions) |
//! | `conformance` | the suite every backend must pass (feature `conformance`) |
//!
//! The futures are boxed ([`BoxFuture`]) so the traits stay object safe: a server picks its
//! backends at run time (`--redis`, `--postgres`), one per concern, and holds them as
//! `Arc<dyn …>`.
//!
//! Nothing here knows HTTP: a worker that only checks quotas in Redis, or a backend crate,
//! compiles without axum, tower or hyper. `rebuff-axum` turns a [`StoreError`] into a catalog
//! error at its edge.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rebuff_store::{MemoryStore, Quota, RateLimitStore, ratelimit::now_nanos};
//!
//! # tokio_test_block_on(async {
//! let limits: Arc<dyn RateLimitStore> = Arc::new(MemoryStore::new());
//! let quota = Quota { limit: 2, period: Duration::from_secs(60) };
//! let decision = limits.check("org:acme", quota, now_nanos()).await?;
//! assert!(decision.allowed && decision.remaining == 1);
//! # Ok::<_, rebuff_store::StoreError>(())
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;

pub mod accounts;
pub mod auth;
pub mod error;
pub mod idempotency;
pub mod key;
pub mod key_cache;
pub mod memory;
pub mod quota;
pub mod ratelimit;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use accounts::{
    AccountStore, Error as AccountError, KeyInfo, KeyOnce, KeyReplay, LoginOutcome, NewKey, Org, UserInfo,
};
pub use auth::{KeyRecord, KeyStore, SessionRecord, SessionStore};
pub use error::{StoreError, StoreErrorKind};
pub use idempotency::{Begin, IdempotencyRecord, IdempotencyStore, Outcome, Outcomes, StoredResponse};
pub use key_cache::{CachedKeyStore, KeyCacheHandle, KeyChanges};
pub use memory::{MemoryAuthStore, MemoryStore};
pub use quota::{QuotaStore, Usage};
pub use ratelimit::{Admission, BeginRequest, Decision, Quota, RateLimitStore, gcra};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
