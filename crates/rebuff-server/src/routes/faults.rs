//! Routes that fail on purpose, compiled only with the `fault-routes` feature, to test that
//! failures are masked.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rebuff_axum::auth::Principal;
use rebuff_axum::extract::Json;
use rebuff_axum::{ApiError, Code};

use crate::state::AppState;

pub(crate) async fn panic() -> &'static str {
    panic!("fault route: secret=hunter2 at /srv/rebuff/src/routes/faults.rs");
}

pub(crate) async fn database(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    super::db(&state, |c| {
        c.execute("SELECT * FROM no_such_table WHERE password = 'hunter2'", []).map(|_| ())
    })
    .await?;
    Ok("unreachable")
}

/// Creates a project named by the body's `name` after waiting the milliseconds that the
/// `X-Fault-Delay-Ms` header asks for: a request still running when its instance is killed.
/// The header is not part of an idempotent request's fingerprint, so a retry without it is
/// the same request and runs at once.
pub(crate) async fn slow_project(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    let delay = headers.get("x-fault-delay-ms").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let name = body.get("name").and_then(serde_json::Value::as_str).unwrap_or("slow").to_owned();
    let org = principal.org_id;
    match super::db(&state, move |c| crate::db::insert_project(c, &org, &name)).await? {
        crate::db::Insert::Created(p) => Ok((StatusCode::CREATED, Json(p))),
        crate::db::Insert::Duplicate => Err(ApiError::new(Code::ResourceAlreadyExists)),
    }
}

/// Records one side effect, a row of `fault_effects` tagged with the body's `tag`, after
/// waiting the milliseconds `X-Fault-Delay-Ms` asks for. The table has no unique constraint,
/// so a request that runs twice leaves two rows: what the chaos test counts.
pub(crate) async fn effect(
    State(state): State<AppState>,
    record: Option<axum::extract::Extension<rebuff_axum::idempotency::IdempotencyRecord>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<impl IntoResponse, ApiError> {
    let delay = headers.get("x-fault-delay-ms").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let tag = body.get("tag").and_then(serde_json::Value::as_str).unwrap_or("").to_owned();
    let record = record.map(|axum::extract::Extension(r)| r);
    super::write_once(&state, record, StatusCode::CREATED, move |c| {
        c.execute_batch("CREATE TABLE IF NOT EXISTS fault_effects (tag TEXT NOT NULL, at INTEGER NOT NULL)")?;
        c.execute(
            "INSERT INTO fault_effects (tag, at) VALUES (?1, ?2)",
            rusqlite::params![tag, crate::db::now()],
        )?;
        Ok(Ok(serde_json::json!({ "seq": c.last_insert_rowid() })))
    })
    .await
}
