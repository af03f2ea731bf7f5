//! Authentication and authorisation: API keys, scopes, IP allow-lists, sessions with CSRF,
//! webhook signatures.
//!
//! | item | what it does |
//! |---|---|
//! | [`AuthLayer`] | API key (`Authorization: Bearer`) or session cookie with CSRF; IP allow-lists; inserts the [`Principal`] |
//! | [`RequireScopeLayer`] | refuses a principal without the route's scope (`admin` implies all) |
//! | [`WebhookSignatureLayer`] | HMAC-SHA256 signature with a timestamp on incoming webhooks ([`webhook::sign`] makes one) |
//! | [`MemoryAuthStore`] | accounts, keys and sessions in memory, for tests and embedding (from `rebuff-store`) |
//! | [`key`] | the API key format, hashing and constant-time comparison (from `rebuff-store`) |
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use axum::{Router, routing::{get, post}};
//! use rebuff_axum::auth::{AuthLayer, MemoryAuthStore, Principal, RequireScopeLayer, WebhookSignatureLayer};
//!
//! let store = Arc::new(MemoryAuthStore::new());
//! let reads = Router::new().route("/v1/me", get(|p: Principal| async move { p.org_id.to_string() }));
//! let writes = Router::new()
//!     .route("/v1/projects", post(|| async { "created" }))
//!     .route_layer(RequireScopeLayer::new("write"));
//! let hooks = Router::new()
//!     .route("/v1/webhooks/incoming", post(|body: String| async move { body }))
//!     .route_layer(WebhookSignatureLayer::new("whsec_test", Duration::from_secs(300)));
//! let app: Router = reads
//!     .merge(writes)
//!     .layer(AuthLayer::new(store.clone()).sessions(store))
//!     .merge(hooks);
//! ```

pub(crate) mod authenticate;
mod principal;
mod scope;
mod throttle;
pub mod webhook;

pub use authenticate::{AuthLayer, AuthService, CSRF_HEADER, SESSION_COOKIE, session_token};
pub use principal::{ADMIN_SCOPE, Principal, SESSION_SCOPES, Subject};
pub use rebuff_store::MemoryAuthStore;
pub use rebuff_store::key;
pub use scope::{RequireScope, RequireScopeLayer};
pub use webhook::{WebhookSignature, WebhookSignatureLayer};
