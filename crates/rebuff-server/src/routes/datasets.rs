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
use utoipa::{IntoParams, ToSchema};

use super::{db_read, not_found, path_id, write_once};
use crate::db::{self as store, Dataset};
use crate::limits;
use crate::state::AppState;

const FORMATS: &[&str] = &["csv", "parquet"];

/// A dataset's format, as its schema.
pub(crate) fn formats() -> utoipa::openapi::schema::Schema {
    limits::one_of(FORMATS)
}

/// A new dataset.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewDataset {
    /// The project it belongs to.
    #[schema(schema_with = limits::project_id)]
    project_id: String,
    /// Its name; surrounding whitespace is removed.
    #[schema(schema_with = limits::name)]
    name: String,
    /// Its format.
    #[schema(schema_with = formats)]
    format: String,
    /// Its row count (default 0).
    #[serde(default, deserialize_with = "super::integer")]
    #[schema(minimum = 0, maximum = 9223372036854775807_i64)]
    rows: i64,
}

/// The dataset's path id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct DatasetId {
    /// The dataset's id.
    #[param(schema_with = limits::dataset_id)]
    #[allow(dead_code)]
    id: String,
}

impl Validate for NewDataset {
    fn validate(&self, v: &mut Violations) {
        v.ensure(crate::db::is_id("prj", &self.project_id), "/project_id", "Not a valid project ID");
        limits::check_name(v, "/name", "Dataset", &self.name);
        if !FORMATS.contains(&self.format.as_str()) {
            v.one_of("/format", FORMATS);
        }
        v.ensure(self.rows >= 0, "/rows", "rows must not be negative");
    }
}

/// Create a dataset.
#[utoipa::path(post, path = "/v1/datasets", operation_id = "createDataset", request_body = NewDataset,
    security(("apiKey" = []), ("session" = [])), description = "Needs the `write` scope (an `admin` key has every scope).",
    responses((status = 201, description = "Created.", body = Dataset), (status = 404, description = "No such project in this organisation.")))]
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

/// Get a dataset.
#[utoipa::path(get, path = "/v1/datasets/{id}", operation_id = "getDataset", params(DatasetId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `read` scope (an `admin` key has every scope).",
    responses((status = 200, description = "Success.", body = Dataset), (status = 400, description = "Not a dataset id."), (status = 404, description = "No such dataset in this organisation.")))]
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
