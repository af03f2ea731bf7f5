//! tower/axum layers that make an HTTP API answer every error from its catalog.
//!
//! Each behaviour is its own layer and can be used alone:
//!
//! | module | what it does |
//! |---|---|
//! | [`render`] | [`ProblemLayer`]: renders [`ApiError`]s and bare error responses in the catalog's dialect |
//! | [`request_id`] | [`RequestIdLayer`]: validated or generated `X-Request-Id`, echoed everywhere |
//!
//! Handlers return `Result<T, ApiError>`; an [`ApiError`] only names a catalog code (typed, so
//! a code outside the catalog does not compile) and what is specific to the occurrence.
//! [`ProblemLayer`] decides everything else from the profile in use.

pub mod auth;
pub mod error;
pub mod render;
pub mod request_id;
pub mod store;

pub use error::ApiError;
pub use rebuff::standard::Code;
pub use render::ProblemLayer;
pub use request_id::RequestIdLayer;
