//! `/v1/webhooks/incoming`: accepted only with a valid, fresh HMAC signature (checked by the
//! layer on the route).

use axum::http::StatusCode;
use axum::response::IntoResponse;
use rebuff_axum::extract::Json;

/// An event is a JSON object, as `/openapi.json` declares: any other JSON value is
/// `wrong_field_type` (400).
pub(crate) async fn incoming(
    Json(event): Json<serde_json::Map<String, serde_json::Value>>,
) -> impl IntoResponse {
    let kind = event.get("type").and_then(serde_json::Value::as_str).unwrap_or("unknown").to_owned();
    tracing::info!(event_type = %kind, "webhook received");
    (StatusCode::ACCEPTED, Json(serde_json::json!({ "received": true, "type": kind })))
}
