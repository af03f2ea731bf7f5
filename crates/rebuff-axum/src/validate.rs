//! Semantic validation after parsing: [`Validate`] collects every [`FieldError`] of a value
//! in [`Violations`], so the client learns about all bad fields in one response; [`Valid`]
//! is the extractor that parses a JSON body with [`Json`] and then
//! validates it.
//!
//! ```
//! use rebuff_axum::validate::{Validate, Violations};
//!
//! struct NewDataset {
//!     name: String,
//!     format: String,
//!     rows: u64,
//! }
//!
//! impl Validate for NewDataset {
//!     fn validate(&self, v: &mut Violations) {
//!         if self.name.trim().is_empty() {
//!             v.required("/name");
//!         }
//!         if !["csv", "parquet"].contains(&self.format.as_str()) {
//!             v.one_of("/format", &["csv", "parquet"]);
//!         }
//!         v.range("/rows", self.rows, 1..=1_000_000);
//!     }
//! }
//!
//! let ds = NewDataset { name: " ".into(), format: "xls".into(), rows: 0 };
//! let err = ds.check().unwrap_err();
//! assert_eq!(err.problem().code(), "validation_failed");
//! assert_eq!(err.problem().fields.len(), 3);
//! ```

use std::fmt::Display;
use std::ops::{Bound, Deref, DerefMut, RangeBounds};

use axum::extract::{FromRequest, Request};
use rebuff::FieldError;
use serde::de::DeserializeOwned;

use crate::extract::Json;
use crate::{ApiError, Code};

/// The code [`Validate`] answers with (422, with every field error); [`Valid`] also answers
/// with the codes of [`Json`] ([`extract::CODES`](crate::extract::CODES)). For
/// [`ProblemLayer::builder`](crate::ProblemLayer::builder).
pub const CODES: &[Code] =
    &[Code::ValidationFailed, Code::MissingRequiredField, Code::InvalidFieldValue, Code::InvalidEnumValue];

/// A value that can check itself beyond what its type says (non-empty names, ranges,
/// cross-field rules), reporting every violation rather than the first.
pub trait Validate {
    /// Records each violation in `v`.
    fn validate(&self, v: &mut Violations);

    /// Validates, as an error ready to return.
    ///
    /// # Errors
    /// See [`Violations::into_result`].
    fn check(&self) -> Result<(), ApiError> {
        let mut v = Violations::new();
        self.validate(&mut v);
        v.into_result()
    }
}

/// The field errors found while validating one value.
///
/// Pointers are JSON Pointers into the body (`/config/batch_size`); build them with
/// [`rebuff::problem::pointer_from`] when a key may contain `/` or `~`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations {
    fields: Vec<FieldError>,
}

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Violations::default()
    }

    /// Records a field error as is.
    pub fn push(&mut self, field: FieldError) {
        self.fields.push(field);
    }

    /// A required field is missing or empty (reason `required`).
    pub fn required(&mut self, pointer: impl Into<String>) {
        self.push(FieldError::body(pointer, "required", "This field is required."));
    }

    /// A field's value is not acceptable (reason `invalid`).
    pub fn invalid(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.push(FieldError::body(pointer, "invalid", message));
    }

    /// A field's value is not one of `allowed` (reason `enum`).
    pub fn one_of(&mut self, pointer: impl Into<String>, allowed: &[&str]) {
        let message = format!("Must be one of: {}.", allowed.join(", "));
        self.push(FieldError::body(pointer, "enum", message));
    }

    /// Records `message` at `pointer` (reason `invalid`) unless `ok`; returns `ok`.
    pub fn ensure(&mut self, ok: bool, pointer: impl Into<String>, message: impl Into<String>) -> bool {
        if !ok {
            self.invalid(pointer, message);
        }
        ok
    }

    /// Checks that `value` lies in `range` and records a violation (reason `range`) if it
    /// does not; returns whether it does.
    ///
    /// ```
    /// let mut v = rebuff_axum::validate::Violations::new();
    /// assert!(!v.range("/batch_size", 0, 1..));
    /// assert_eq!(v.fields()[0].message, "Must be at least 1.");
    /// ```
    pub fn range<N, R>(&mut self, pointer: impl Into<String>, value: N, range: R) -> bool
    where
        N: PartialOrd + Display,
        R: RangeBounds<N>,
    {
        if range.contains(&value) {
            return true;
        }
        let low = match range.start_bound() {
            Bound::Included(n) => Some(format!("at least {n}")),
            Bound::Excluded(n) => Some(format!("greater than {n}")),
            Bound::Unbounded => None,
        };
        let high = match range.end_bound() {
            Bound::Included(n) => Some(format!("at most {n}")),
            Bound::Excluded(n) => Some(format!("less than {n}")),
            Bound::Unbounded => None,
        };
        let message = match (low, high) {
            (Some(l), Some(h)) => format!("Must be {l} and {h}."),
            (Some(b), None) | (None, Some(b)) => format!("Must be {b}."),
            (None, None) => "Out of range.".to_owned(),
        };
        self.push(FieldError::body(pointer, "range", message));
        false
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// How many violations were recorded.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// The violations so far.
    pub fn fields(&self) -> &[FieldError] {
        &self.fields
    }

    /// The outcome.
    ///
    /// # Errors
    /// With exactly one violation, its own code: `missing_required_field` (reason
    /// `required`), `invalid_enum_value` (reason `enum`) or `invalid_field_value`, with the
    /// field, `param` the dotted field and the detail its message. With several,
    /// `validation_failed` with all of them.
    pub fn into_result(self) -> Result<(), ApiError> {
        let (code, detail, param) = match self.fields.as_slice() {
            [] => return Ok(()),
            [_, _, ..] => (Code::ValidationFailed, None, None),
            [field] => {
                let code = match field.reason.as_str() {
                    "required" => Code::MissingRequiredField,
                    "enum" => Code::InvalidEnumValue,
                    _ => Code::InvalidFieldValue,
                };
                let dotted = field.dotted();
                // Joined rather than formatted: a validation failure is an answer a client can
                // ask for at will, and `format!` costs several times as much here.
                let detail = if field.reason == "required" && !dotted.is_empty() {
                    ["Missing required field `", &dotted, "`."].concat()
                } else if dotted.is_empty() {
                    field.message.clone()
                } else {
                    ["`", dotted.as_str(), "`: ", &field.message].concat()
                };
                (code, Some(detail), Some(dotted).filter(|d| !d.is_empty()))
            }
        };
        // The problem is filled in place, and takes the list of fields as it is.
        let mut err = ApiError::new(code);
        let problem = err.problem_mut();
        problem.detail = detail;
        problem.param = param;
        problem.fields = self.fields;
        Err(err)
    }
}

/// A JSON body that parsed and passed [`Validate`].
///
/// Parsing errors are those of [`Json`]; validation errors those of
/// [`Violations::into_result`].
///
/// ```
/// use rebuff_axum::validate::{Valid, Validate, Violations};
///
/// #[derive(serde::Deserialize)]
/// struct NewProject {
///     name: String,
/// }
///
/// impl Validate for NewProject {
///     fn validate(&self, v: &mut Violations) {
///         if self.name.is_empty() {
///             v.required("/name");
///         }
///     }
/// }
///
/// async fn create(Valid(body): Valid<NewProject>) -> String {
///     body.name
/// }
/// # let _ = axum::Router::<()>::new().route("/", axum::routing::post(create));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Valid<T>(pub T);

impl<T, S> FromRequest<S> for Valid<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        value.check()?;
        Ok(Valid(value))
    }
}

impl<T> Deref for Valid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Valid<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_ok() {
        assert!(Violations::new().into_result().is_ok());
    }

    #[test]
    fn one_violation_keeps_its_own_code() {
        let mut v = Violations::new();
        v.required("/name");
        let p = v.into_result().err().map(ApiError::into_problem);
        let p = p.unwrap_or_else(|| panic!("no error"));
        assert_eq!(p.code(), "missing_required_field");
        assert_eq!(p.param.as_deref(), Some("name"));
        assert_eq!(p.detail.as_deref(), Some("Missing required field `name`."));

        let mut v = Violations::new();
        v.one_of("/format", &["csv", "parquet"]);
        let p = v.into_result().err().map(ApiError::into_problem);
        let p = p.unwrap_or_else(|| panic!("no error"));
        assert_eq!(p.code(), "invalid_enum_value");
        assert_eq!(p.fields[0].message, "Must be one of: csv, parquet.");

        let mut v = Violations::new();
        v.range("/config/batch_size", 0u32, 1..=512);
        let p = v.into_result().err().map(ApiError::into_problem);
        let p = p.unwrap_or_else(|| panic!("no error"));
        assert_eq!(p.code(), "invalid_field_value");
        assert_eq!(p.detail.as_deref(), Some("`config.batch_size`: Must be at least 1 and at most 512."));
    }

    #[test]
    fn several_violations_are_reported_together() {
        let mut v = Violations::new();
        v.required("/name");
        v.invalid("/email", "Not an email address.");
        assert!(v.ensure(true, "/x", "never recorded"));
        assert_eq!(v.len(), 2);
        let p = v.into_result().err().map(ApiError::into_problem);
        let p = p.unwrap_or_else(|| panic!("no error"));
        assert_eq!(p.code(), "validation_failed");
        assert_eq!(p.fields.len(), 2);
    }

    #[test]
    fn range_messages() {
        let mut v = Violations::new();
        assert!(v.range("/a", 5, 1..10));
        assert!(!v.range("/a", 10, 1..10));
        assert!(!v.range("/a", 0.0, ..0.0));
        let messages: Vec<_> = v.fields().iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages, ["Must be at least 1 and less than 10.", "Must be less than 0."]);
    }
}
