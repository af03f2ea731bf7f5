//! `/healthz`, `/openapi.json`, `/errors`, `/errors.json`: rendered once at start-up.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{ObjectBuilder, RefOr, Type};

use crate::state::AppState;

/// The service is up.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(schema_with = ok)]
    status: String,
}

fn ok() -> Schema {
    crate::limits::one_of(&["ok"])
}

/// A document the server renders once from its catalog: a JSON object.
#[derive(Debug)]
pub(crate) struct Document;

impl utoipa::PartialSchema for Document {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Object).into()
    }
}

impl ToSchema for Document {}

/// The error reference page: HTML, far below this bound.
#[derive(Debug)]
pub(crate) struct Html;

impl utoipa::PartialSchema for Html {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(10_000_000))
            .pattern(Some("^<!DOCTYPE html>"))
            .into()
    }
}

impl ToSchema for Html {}

/// Service health.
#[utoipa::path(get, path = "/healthz", operation_id = "health", security(()),
    responses((status = 200, description = "Up.", body = Health)))]
pub(crate) async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description of this API.", body = Document)))]
pub(crate) async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi())
}

/// The error reference: every code, when it happens, what to do. The page runs only its own
/// inline style and filter script, by hash; nothing loads.
#[utoipa::path(get, path = "/errors", operation_id = "errorReference", security(()),
    responses((status = 200, description = "The reference page.", body = Html, content_type = "text/html")))]
pub(crate) async fn errors_html(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, rebuff::docs::html_content_security_policy()),
        ],
        state.inner.errors_html.clone(),
    )
}

/// The catalog as JSON, for tools (`rebuff docs` reads it).
#[utoipa::path(get, path = "/errors.json", operation_id = "errorCatalog", security(()),
    responses((status = 200, description = "The catalog.", body = Document)))]
pub(crate) async fn errors_json(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.inner.errors_json.clone())
}
