//! A complete, documented, machine-readable error contract for HTTP APIs.
//!
//! One catalog (a TOML file) declares every error an API can answer with; responses in six
//! envelopes, the error reference, OpenAPI components and client tables are derived from it.
//! This crate re-exports the framework-free core ([`Catalog`], [`Problem`], the dialects, the
//! parser, the docs renderers) and adds typed codes: [`catalog!`] reads a catalog while the
//! crate compiles and generates an enum with one variant per code, so a code that is not in
//! the catalog cannot be emitted.
//!
//! ```
//! use rebuff::standard::Code;
//!
//! let problem = Code::ApiKeyMissing.problem().request_id("req_123");
//! let res = rebuff::Catalog::standard().render(&problem)?;
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["content-type"], "application/problem+json");
//! assert_eq!(Code::ApiKeyMissing.as_str(), "api_key_missing");
//! assert_eq!("api_key_missing".parse::<Code>(), Ok(Code::ApiKeyMissing));
//! # Ok::<(), rebuff::RenderError>(())
//! ```
//!
//! Your own catalog, with a path relative to your crate's `Cargo.toml`. A catalog that
//! `extends = "standard"` and adds `[[error]]` entries gets the standard codes and its own:
//!
//! ```
//! // tests/widgets.toml: `extends = "standard"`, plus `widget_not_found`.
//! rebuff::catalog!(pub Code = "tests/widgets.toml");
//!
//! fn not_found(id: &str) -> rebuff::Problem {
//!     Code::WidgetNotFound.problem().detail(format!("No widget with ID '{id}'."))
//! }
//! assert_eq!(not_found("w_1").code(), "widget_not_found");
//! assert_eq!(Code::ApiKeyMissing.status(), 401); // inherited
//! ```

extern crate self as rebuff;

use std::fmt;

pub use rebuff_core::*;
pub use rebuff_macros::catalog;

/// rebuff's standard catalog (`rebuff-core/catalog/standard.toml`) as typed codes.
///
/// Profiles of the standard catalog have the same stable codes, so these codes render in any
/// of them (`Catalog::builtin("arize")`, ...).
pub mod standard {
    crate::catalog!(pub Code = "builtin:standard");
}

/// A string that is not a code of the catalog: the error of a generated code's `FromStr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownCode {
    code: String,
}

impl UnknownCode {
    /// The error for `code`.
    pub fn new(code: impl Into<String>) -> Self {
        UnknownCode { code: code.into() }
    }

    /// The string that was not a code.
    pub fn code(&self) -> &str {
        &self.code
    }
}

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a code of the catalog", self.code)
    }
}

impl std::error::Error for UnknownCode {}
