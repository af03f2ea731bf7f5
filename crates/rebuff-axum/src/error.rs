//! [`ApiError`]: what handlers, extractors and layers return; rendered by [`ProblemLayer`].
//!
//! [`ProblemLayer`]: crate::ProblemLayer

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rebuff::{ErrorCode, Problem};

/// A catalog error on its way out.
///
/// Its response is a placeholder (status 500, empty body) carrying the [`Problem`] in its
/// extensions; [`ProblemLayer`](crate::ProblemLayer) renders it in the profile's dialect, so
/// the same handler speaks every contract and the catalog, not the handler, decides status,
/// title and wire code.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Problem>);

impl ApiError {
    /// An error of a typed code.
    pub fn new<C: ErrorCode>(code: C) -> Self {
        ApiError(Box::new(Problem::new(code)))
    }

    /// An error from a built occurrence (for codes known only at run time, such as a
    /// status mapped to its generic code).
    pub fn from_problem(problem: Problem) -> Self {
        ApiError(Box::new(problem))
    }

    /// The occurrence.
    pub fn problem(&self) -> &Problem {
        &self.0
    }

    /// The occurrence, to add detail, fields or headers.
    pub fn problem_mut(&mut self) -> &mut Problem {
        &mut self.0
    }

    /// Sets the detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    /// Records the internal cause: logged, never sent for a masked code.
    #[must_use]
    pub fn cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.0.cause = Some(cause.to_string());
        self
    }

    /// Takes the occurrence out.
    pub fn into_problem(self) -> Problem {
        *self.0
    }
}

// Not a blanket `impl<C: ErrorCode> From<C>`: with one, coherence refuses the `From` impls of
// the store errors below (rebuff could one day implement `ErrorCode` for them), and `?` on a
// store call matters more in a handler than `.into()` on a code. A code of any catalog goes
// through `ApiError::new`.
impl From<rebuff::standard::Code> for ApiError {
    fn from(code: rebuff::standard::Code) -> Self {
        ApiError::new(code)
    }
}

/// The response extension through which an [`ApiError`] reaches [`ProblemLayer`](crate::ProblemLayer).
#[derive(Debug, Clone)]
pub(crate) struct Pending(pub(crate) Box<Problem>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        res.extensions_mut().insert(Pending(self.0));
        res
    }
}

/// Whether a response carries an error not yet rendered.
pub fn is_pending(res: &Response) -> bool {
    res.extensions().get::<Pending>().is_some()
}

/// A store failure at the edge of the HTTP layers: `service_unavailable` (503, with
/// `Retry-After: 1`) when the backend cannot be reached, else `database_error` (500); both are
/// masked, and the store's message is kept as the cause for the log.
impl From<rebuff_store::StoreError> for ApiError {
    fn from(e: rebuff_store::StoreError) -> Self {
        let unavailable = e.kind() == rebuff_store::StoreErrorKind::Unavailable;
        let code = if unavailable { crate::Code::ServiceUnavailable } else { crate::Code::DatabaseError };
        let mut err = ApiError::new(code).cause(&e);
        if unavailable {
            err.problem_mut().retry_after = Some(1);
        }
        err
    }
}

/// An account-management failure: a name or email taken is `resource_already_exists` (409),
/// an unknown organisation or user `resource_not_found` (404), an argument that cannot be
/// stored `invalid_field_value` (422), and a store failure as [`StoreError`] converts.
///
/// [`StoreError`]: rebuff_store::StoreError
impl From<rebuff_store::AccountError> for ApiError {
    fn from(e: rebuff_store::AccountError) -> Self {
        use rebuff_store::AccountError as E;
        match e {
            E::EmailTaken | E::OrgNameTaken => {
                ApiError::new(crate::Code::ResourceAlreadyExists).detail(e.to_string())
            }
            E::OrgNotFound | E::UserNotFound => ApiError::new(crate::Code::ResourceNotFound),
            E::Invalid(_) => ApiError::new(crate::Code::InvalidFieldValue).detail(e.to_string()),
            E::Store(e) => e.into(),
            // `AccountError` is non-exhaustive: a kind added later is a failure of the store
            // until it is mapped here.
            _ => ApiError::new(crate::Code::DatabaseError).cause(&e),
        }
    }
}

#[cfg(test)]
mod store_error_tests {
    use rebuff_store::{AccountError, StoreError};

    use super::ApiError;

    #[test]
    fn store_errors_become_masked_catalog_errors() {
        let api = ApiError::from(StoreError::unavailable("connection refused"));
        assert_eq!(api.problem().code(), "service_unavailable");
        assert_eq!(api.problem().retry_after, Some(1));
        assert_eq!(api.problem().cause.as_deref(), Some("connection refused"));
        let api = ApiError::from(StoreError::backend("disk I/O error"));
        assert_eq!(api.problem().code(), "database_error");
        assert_eq!(api.problem().retry_after, None);
    }

    #[test]
    fn account_errors_become_the_callers_mistakes() {
        let code = |e: AccountError| ApiError::from(e).problem().code().to_owned();
        assert_eq!(code(AccountError::EmailTaken), "resource_already_exists");
        assert_eq!(code(AccountError::OrgNameTaken), "resource_already_exists");
        assert_eq!(code(AccountError::OrgNotFound), "resource_not_found");
        assert_eq!(code(AccountError::UserNotFound), "resource_not_found");
        assert_eq!(code(AccountError::Invalid("scope")), "invalid_field_value");
        assert_eq!(code(AccountError::Store(StoreError::unavailable("down"))), "service_unavailable");
    }
}
