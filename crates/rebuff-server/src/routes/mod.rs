//! Handlers. Each returns `Result<_, ApiError>` naming a typed catalog code; the layers render it.

pub(crate) mod auth;
pub(crate) mod datasets;
#[cfg(feature = "fault-routes")]
pub(crate) mod faults;
pub(crate) mod keys;
pub(crate) mod meta;
pub(crate) mod models;
pub(crate) mod projects;
pub(crate) mod webhooks;

use rebuff::FieldError;
use rebuff_axum::{ApiError, Code};

use crate::state::AppState;

/// Runs a query on the store; a failure is a masked `database_error`.
pub(crate) async fn db<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
{
    state.store().with_conn(f).await.map_err(ApiError::from)
}

/// Checks a path id's shape so a malformed id is `invalid_id` (400), not a 404.
pub(crate) fn path_id(prefix: &str, raw: &str, what: &str) -> Result<String, ApiError> {
    if crate::db::is_id(prefix, raw) {
        return Ok(raw.to_owned());
    }
    let mut err = ApiError::new(Code::InvalidId)
        .detail(format!("Not a valid {what} ID: expected `{prefix}_` followed by 12 lowercase hex digits."));
    let p = err.problem_mut();
    p.param = Some("id".to_owned());
    p.fields.push(FieldError::new(rebuff::Location::Path, "/id", "format", format!("not a {what} ID")));
    Err(err)
}

/// The 404 for a resource that does not exist or belongs to another organisation: the two
/// are answered identically.
pub(crate) fn not_found(code: Code, what: &str, id: &str) -> ApiError {
    ApiError::new(code).detail(format!("{what} with ID '{id}' was not found."))
}
