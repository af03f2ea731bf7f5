//! `/v1/datasets`.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rebuff_axum::auth::Principal;
use rebuff_axum::extract::{Json, Path};
use rebuff_axum::idempotency::IdempotencyRecord;
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use serde::Deserialize;

use super::{db_read, not_found, path_id, write_once};
use crate::db as store;
use crate::state::AppState;

const FORMATS: &[&str] = &["csv", "parquet"];

#[derive(Debug, Deserialize)]
pub(crate) struct NewDataset {
    project_id: String,
    name: String,
    format: String,
    #[serde(default, deserialize_with = "super::integer")]
    rows: i64,
}

impl Validate for NewDataset {
    fn validate(&self, v: &mut Violations) {
        v.ensure(crate::db::is_id("prj", &self.project_id), "/project_id", "Not a valid project ID");
        v.ensure(!self.name.trim().is_empty(), "/name", "Dataset name must not be empty");
        if !FORMATS.contains(&self.format.as_str()) {
            v.one_of("/format", FORMATS);
        }
        v.ensure(self.rows >= 0, "/rows", "rows must not be negative");
    }
}

pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    record: Option<Extension<IdempotencyRecord>>,
    Valid(body): Valid<NewDataset>,
) -> Result<impl IntoResponse, ApiError> {
    let org = principal.org_id;
    write_once(&state, record.map(|Extension(r)| r), StatusCode::CREATED, move |c| {
        let created =
            store::insert_dataset(c, &org, &body.project_id, body.name.trim(), &body.format, body.rows)?;
        Ok(created.ok_or_else(|| not_found(Code::ResourceNotFound, "Project", &body.project_id)))
    })
    .await
}

pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("dst", &raw, "dataset")?;
    match db_read(&state, |c| store::get_dataset(c, &principal.org_id, &id))? {
        Some(d) => Ok(Json(d)),
        None => Err(not_found(Code::ResourceNotFound, "Dataset", &id)),
    }
}
