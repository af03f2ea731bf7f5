//! `/healthz`, `/openapi.json`, `/errors`, `/errors.json`: rendered once at start-up.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

pub(crate) async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

pub(crate) async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.inner.openapi.clone())
}

/// The page runs only its own inline style and filter script, by hash; nothing loads.
pub(crate) async fn errors_html(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, rebuff::docs::html_content_security_policy()),
        ],
        state.inner.errors_html.clone(),
    )
}

pub(crate) async fn errors_json(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.inner.errors_json.clone())
}
