//! `/v1/webhooks/incoming`: accepted only with a valid, fresh HMAC signature (checked by the
//! layer on the route).

use axum::http::StatusCode;
use axum::response::IntoResponse;
use rebuff::FieldError;
use rebuff_axum::extract::Json;
use rebuff_axum::{ApiError, Code};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::limits::{self, TEXT_MAX_CHARS};

/// An event: any JSON object; its `type`, when it has one, names it.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Describes the body; the handler reads it as a map (any other member is kept).
pub(crate) struct Event {
    /// What happened.
    #[serde(rename = "type")]
    #[schema(schema_with = limits::optional_text, required = false)]
    kind: Option<String>,
}

/// An event received.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Received {
    /// Always `true`.
    received: bool,
    /// The event's `type` (`unknown` when it has none).
    #[serde(rename = "type")]
    #[schema(schema_with = limits::text)]
    kind: String,
}

/// The signature header.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Checked by `WebhookSignatureLayer` before the handler runs.
pub(crate) struct Signature {
    /// `t=<Unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
    #[param(rename = "Rebuff-Signature", max_length = 1000, pattern = "^[!-~]+$")]
    signature: String,
}

/// Receive an event signed with `Rebuff-Signature: t=...,v1=...`.
///
/// An event is a JSON object: any other JSON value is `wrong_field_type` (400). Its `type`, if
/// any, is a string of at most 1000 characters.
#[utoipa::path(post, path = "/v1/webhooks/incoming", operation_id = "incomingWebhook", params(Signature),
    request_body = Event, security(()),
    responses((status = 202, description = "Accepted.", body = Received), (status = 401, description = "The signature is missing, wrong or stale.")))]
pub(crate) async fn incoming(Json(event): Json<Map<String, Value>>) -> Result<impl IntoResponse, ApiError> {
    let kind = match event.get("type") {
        None | Some(Value::Null) => "unknown".to_owned(),
        Some(Value::String(s)) if s.chars().count() <= TEXT_MAX_CHARS => s.clone(),
        Some(Value::String(_)) => {
            return Err(invalid_type(
                Code::InvalidFieldValue,
                format!("must be at most {TEXT_MAX_CHARS} characters"),
            ));
        }
        Some(_) => return Err(invalid_type(Code::WrongFieldType, "must be a string".to_owned())),
    };
    // The sender chose this text: escaped, it cannot write a line of its own into the log.
    tracing::info!(event_type = %rebuff_axum::log::escaped(&kind), "webhook received");
    Ok((StatusCode::ACCEPTED, Json(Received { received: true, kind })))
}

fn invalid_type(code: Code, detail: String) -> ApiError {
    let mut err = ApiError::new(code).detail(format!("type {detail}."));
    let p = err.problem_mut();
    p.param = Some("type".to_owned());
    p.fields.push(FieldError::body("/type", "invalid", detail));
    err
}
