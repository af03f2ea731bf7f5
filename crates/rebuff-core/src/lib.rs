//! The framework-free core of rebuff: error catalogs, occurrences, the six wire envelopes,
//! the universal error parser and the error reference renderers.
//!
//! No web framework, async runtime or HTTP client lives here, so that the server side
//! (`rebuff-axum`) and the client side (`rebuff-client`) share it.
//!
//! ```
//! use rebuff_core::{Catalog, Problem};
//!
//! let arize = Catalog::builtin("arize").expect("built in");
//! let res = arize.render(&Problem::dynamic("resource_not_found").detail("Dataset with ID 'ZGF0YXNldC10ZXN0' was not found."))?;
//! assert_eq!(res.status(), 404);
//! assert_eq!(res.headers()["content-type"], "application/problem+json");
//! let parsed = rebuff_core::parse(404, res.headers(), res.body());
//! assert_eq!(parsed.code.as_deref(), Some("RESOURCE_NOT_FOUND"));
//! # Ok::<(), rebuff_core::RenderError>(())
//! ```

// The README's example is compiled and run with the other doctests, so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod catalog;
pub mod dialect;
pub mod diff;
pub mod docs;
pub mod json;
pub mod parse;
pub mod problem;
pub mod sdk;

pub use catalog::{Catalog, CatalogError, Entry, MissingCodes, RetryClass};
pub use dialect::{Dialect, RenderError, RenderOptions};
pub use parse::{Envelope, ParsedError, parse, parse_for};
pub use problem::{ErrorCode, FieldError, Location, Problem};
