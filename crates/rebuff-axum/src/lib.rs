//! tower/axum layers that make an HTTP API answer every error from its catalog.
//!
//! Each behaviour is its own layer and can be used alone:
//!
//! | module | what it does |
//! |---|---|
//! | [`render`] | [`ProblemLayer`]: renders [`ApiError`]s and bare error responses in the catalog's dialect |
//! | [`request_id`] | [`RequestIdLayer`]: validated or generated `X-Request-Id`, echoed everywhere |
//! | [`auth`] | [`AuthLayer`] (API keys, sessions with CSRF, IP allow-lists; inserts the [`Principal`]), [`RequireScopeLayer`] (403 naming the scope), [`WebhookSignatureLayer`] (HMAC with timestamp) |
//! | [`extract`] | [`Json`](extract::Json), [`Path`](extract::Path), [`Query`](extract::Query) and [`fallback`](extract::fallback): rejections as catalog errors (400/404/413/415/422) |
//! | [`validate`] | [`Valid`](validate::Valid) and [`Validate`](validate::Validate): per-field validation, every violation at once (422) |
//! | [`panic`](mod@panic) | [`catch_panic`](panic::catch_panic), [`timeout`](panic::timeout), [`body_timeout`](panic::body_timeout): masked 500, 504, 408 |
//! | [`trace`] | [`RequestSpanLayer`](trace::RequestSpanLayer): a `request` span (method, path, request id) at a chosen level, DEBUG by default |
//! | [`timeout`] | the layers behind [`panic::timeout`] and [`panic::body_timeout`], which arm a timer only when a request or body has to wait |
//! | [`ratelimit`] | [`RateLimitLayer`](ratelimit::RateLimitLayer): GCRA per organisation or address, `X-RateLimit-*`, `RateLimit`, `RateLimit-Policy`, 429 with `Retry-After` |
//! | [`quota`] | [`Quotas`](quota::Quotas): monthly usage per organisation, 402 past the limit |
//! | [`idempotency`] | [`IdempotencyLayer`](idempotency::IdempotencyLayer): `Idempotency-Key` on POST, first completion replayed, 409 in flight, 422 on another payload |
//! | [`store`] | the storage traits, [`MemoryStore`](store::MemoryStore), [`MemoryAuthStore`](store::MemoryAuthStore) and the conformance suite: the crate `rebuff-store`, re-exported |
//! | [`accounts`] | organisations, users, keys and sessions ([`AccountStore`](store::AccountStore)), re-exported from `rebuff-store` |
//!
//! Handlers return `Result<T, ApiError>`; an [`ApiError`] only names a catalog code (typed, so
//! a code outside the catalog does not compile) and what is specific to the occurrence.
//! [`ProblemLayer`] decides everything else from the profile in use.

pub mod auth;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod panic;
pub mod quota;
pub mod ratelimit;
pub mod render;
pub mod request_id;
pub mod timeout;
pub mod trace;
pub mod validate;

/// The storage traits, in-memory backends and conformance suite: the crate
/// [`rebuff_store`], which knows no HTTP, so that backends compile without axum. A
/// [`StoreError`](store::StoreError) becomes an [`ApiError`] (masked 503 or 500) through
/// `From`.
pub use rebuff_store as store;
/// Organisations, users, API keys and sessions: [`rebuff_store::accounts`]. An
/// [`accounts::Error`] becomes an [`ApiError`] (409, 404, 422 or masked) through `From`.
pub use rebuff_store::accounts;

pub use auth::{AuthLayer, Principal, RequireScopeLayer, Subject, WebhookSignatureLayer};
pub use error::ApiError;
pub use rebuff::standard::Code;
pub use render::ProblemLayer;
pub use request_id::RequestIdLayer;
