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

impl<C: ErrorCode> From<C> for ApiError {
    fn from(code: C) -> Self {
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
