//! `/v1/datasets`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rebuff_axum::auth::Principal;
use rebuff_axum::extract::{Json, Path};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use serde::Deserialize;

use super::{db, db_read, not_found, path_id};
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
    Valid(body): Valid<NewDataset>,
) -> Result<impl IntoResponse, ApiError> {
    let org = principal.org_id;
    let project = body.project_id.clone();
    let created = db(&state, move |c| {
        store::insert_dataset(c, &org, &body.project_id, body.name.trim(), &body.format, body.rows)
    })
    .await?;
    match created {
        Some(d) => Ok((StatusCode::CREATED, Json(d))),
        None => Err(not_found(Code::ResourceNotFound, "Project", &project)),
    }
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
