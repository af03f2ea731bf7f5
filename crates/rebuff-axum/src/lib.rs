//! tower/axum layers that make an HTTP API answer every error from its catalog.
//!
//! Each behaviour is its own layer and can be used alone:
//!
//! | module | what it does |
//! |---|---|
//! | [`render`] | [`ProblemLayer`]: renders [`ApiError`]s and bare error responses in the catalog's dialect; checks at construction that the catalog has the codes the layers raise |
//! | [`request_id`] | [`RequestIdLayer`]: validated or generated `X-Request-Id`, echoed everywhere |
//! | [`auth`] | [`AuthLayer`] (API keys, sessions with CSRF, IP allow-lists; inserts the [`Principal`]), [`RequireScopeLayer`] (403 naming the scope), [`WebhookSignatureLayer`] (HMAC with timestamp) |
//! | [`extract`] | [`Json`](extract::Json), [`Path`](extract::Path), [`Query`](extract::Query) and [`fallback`](extract::fallback): rejections as catalog errors (400/404/413/415/422) |
//! | [`validate`] | [`Valid`](validate::Valid) and [`Validate`](validate::Validate): per-field validation, every violation at once (422) |
//! | [`panic`](mod@panic) | [`catch_panic`](panic::catch_panic), [`timeout`](panic::timeout), [`body_timeout`](panic::body_timeout): masked 500, 504, 408 |
//! | [`trace`] | [`RequestSpanLayer`](trace::RequestSpanLayer): a `request` span (method, path, request id) at a chosen level, DEBUG by default |
//! | [`timeout`] | the layers behind [`panic::timeout`] and [`panic::body_timeout`], which arm a timer only when a request or body has to wait |
//! | [`guard`] | [`GuardLayer`]: authentication, rate limit, idempotency, inner rendering and scope of a guarded route in one service, configured by those layers |
//! | [`ratelimit`] | [`RateLimitLayer`](ratelimit::RateLimitLayer): GCRA per organisation or address, `X-RateLimit-*`, `RateLimit`, `RateLimit-Policy`, 429 with `Retry-After` |
//! | [`quota`] | [`Quotas`](quota::Quotas): monthly usage per organisation, 402 past the limit |
//! | [`idempotency`] | [`IdempotencyLayer`](idempotency::IdempotencyLayer): `Idempotency-Key` on POST, first completion replayed, 409 in flight, 422 on another payload |
//! | [`client_ip`] | [`ClientIpLayer`](client_ip::ClientIpLayer): the client's address, from `Forwarded`/`X-Forwarded-For` written by trusted proxies only |
//! | [`log`](mod@log) | [`escaped`](log::escaped): a value from a request, safe to log (control characters escaped) |
//! | [`store`] | the storage traits, [`MemoryStore`](store::MemoryStore), [`MemoryAuthStore`](store::MemoryAuthStore) and the conformance suite: the crate `rebuff-store`, re-exported |
//! | [`accounts`] | organisations, users, keys and sessions ([`AccountStore`](store::AccountStore)), re-exported from `rebuff-store` |
//! | `openapi` (feature `utoipa`) | `ErrorDocs`: the catalog's error schema, examples, responses and headers added to a utoipa document in one call |
//!
//! Handlers return `Result<T, ApiError>`; an [`ApiError`] only names a catalog code (typed, so
//! a code outside the catalog does not compile) and what is specific to the occurrence.
//! [`ProblemLayer`] decides everything else from the profile in use.
//!
//! # The recommended stack
//!
//! The order matters, and this is the one that works (`examples/guarded.rs` runs it over
//! SQLite; `examples/quickstart.rs` is the smallest service):
//!
//! * around the whole router, outermost first: [`RequestIdLayer`], [`ProblemLayer`] (it
//!   renders everything below it, including a router's bare 404 and 405),
//!   [`catch_panic`](panic::catch_panic), [`body_timeout`](panic::body_timeout),
//!   [`timeout`](panic::timeout), the body limit;
//! * around each guarded *handler* (`Handler::layer`, so that a method the route lacks is 405
//!   before credentials are looked at; `MethodRouter::route_layer` answers the same, with one
//!   more boxed route per request), one [`GuardLayer`] that runs, in
//!   this order and in one service: [`AuthLayer`],
//!   [`RateLimitLayer`](ratelimit::RateLimitLayer) keyed by the caller's organisation,
//!   [`IdempotencyLayer`](idempotency::IdempotencyLayer), a second [`ProblemLayer`], so
//!   that what the idempotency step stores and replays is already rendered, and the route's
//!   [`RequireScopeLayer`]. (The same layers nested with `route_layer`, in that order, answer
//!   the same; the guard saves a boxed future and a clone of the route per layer and request.)
//! * serve with `into_make_service_with_connect_info::<SocketAddr>()`, which the IP
//!   allow-lists of keys and per-address limits read.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::{Router, extract::DefaultBodyLimit, handler::Handler, routing::get};
//! use rebuff::Catalog;
//! use rebuff_axum::idempotency::IdempotencyLayer;
//! use rebuff_axum::ratelimit::RateLimitLayer;
//! use rebuff_axum::store::{MemoryAuthStore, MemoryStore, Quota};
//! use rebuff_axum::{AuthLayer, GuardLayer, Principal, ProblemLayer, RequestIdLayer, RequireScopeLayer, panic};
//! use tower::ServiceBuilder;
//!
//! async fn list_things() -> &'static str {
//!     "[]"
//! }
//!
//! # fn main() -> Result<(), rebuff::MissingCodes> {
//! let catalog = Arc::new(Catalog::standard().clone());
//! let (keys, limits) = (Arc::new(MemoryAuthStore::new()), Arc::new(MemoryStore::new()));
//! let idempotency = IdempotencyLayer::new(limits.clone())
//!     .scope_fn(|parts| parts.extensions.get::<Principal>().map(|p| p.org_id.to_string()));
//! let quota = Quota { limit: 60, period: Duration::from_secs(60) };
//! let guard = GuardLayer::new(AuthLayer::new(keys))
//!     .rate_limit(RateLimitLayer::new(limits, quota).per_organisation().idempotency(&idempotency))
//!     .idempotency(idempotency)
//!     .problems(
//!         ProblemLayer::builder(catalog.clone())
//!             .raises(AuthLayer::CODES)
//!             .raises(RequireScopeLayer::CODES)
//!             .raises(RateLimitLayer::CODES)
//!             .raises(IdempotencyLayer::CODES)
//!             .build()?,
//!     );
//! let app: Router = Router::new()
//!     .route("/v1/things", get(list_things.layer(guard.scope(RequireScopeLayer::new("read")))))
//!     .fallback(rebuff_axum::extract::fallback)
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(RequestIdLayer::new())
//!             .layer(ProblemLayer::try_new(catalog)?)
//!             .layer(panic::catch_panic())
//!             .layer(panic::body_timeout(Duration::from_secs(10)))
//!             .layer(panic::timeout(Duration::from_secs(30)))
//!             .layer(DefaultBodyLimit::max(1024 * 1024)),
//!     );
//! # let _ = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod client_ip;
pub mod error;
pub mod extract;
pub mod guard;
pub mod idempotency;
pub mod log;
#[cfg(feature = "utoipa")]
pub mod openapi;
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
pub use guard::GuardLayer;
pub use rebuff::standard::Code;
pub use render::{ProblemLayer, ProblemLayerBuilder};
pub use request_id::RequestIdLayer;

/// Every code this crate's layers and extractors can raise, each once: what a catalog needs
/// to serve a router that uses any of them, and what [`ProblemLayer::try_new`] checks.
///
/// The codes are the standard catalog's; a catalog that `extends = "standard"` has them all.
/// To check only the layers a router uses, pass their `CODES` to [`ProblemLayer::builder`].
pub fn codes() -> Vec<Code> {
    let all: [&[Code]; 13] = [
        ProblemLayer::CODES,
        AuthLayer::CODES,
        RequireScopeLayer::CODES,
        WebhookSignatureLayer::CODES,
        ratelimit::RateLimitLayer::CODES,
        idempotency::IdempotencyLayer::CODES,
        quota::Quotas::CODES,
        timeout::TimeoutLayer::CODES,
        timeout::BodyTimeoutLayer::CODES,
        panic::PanicToProblem::CODES,
        extract::CODES,
        validate::CODES,
        &[Code::ServiceUnavailable, Code::DatabaseError],
    ];
    let mut out: Vec<Code> = Vec::new();
    for code in all.into_iter().flatten() {
        if !out.contains(code) {
            out.push(*code);
        }
    }
    out
}
