//! `/v1/projects`.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rebuff_axum::auth::Principal;
use rebuff_axum::extract::{Json, Path, Query};
use rebuff_axum::idempotency::IdempotencyRecord;
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Page, Paging, db, db_read, not_found, path_id, write_once};
use crate::db::{self as store, Insert, Project};
use crate::limits;
use crate::state::AppState;

/// A new project.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewProject {
    /// Unique in the organisation; surrounding whitespace is removed.
    #[schema(schema_with = limits::name)]
    name: String,
}

impl Validate for NewProject {
    fn validate(&self, v: &mut Violations) {
        limits::check_name(v, "/name", "Project", &self.name);
    }
}

/// The project's path id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ProjectId {
    /// The project's id.
    #[param(schema_with = limits::project_id)]
    #[allow(dead_code)]
    id: String,
}

/// List projects, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/projects", operation_id = "listProjects", params(Paging),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `read` scope (an `admin` key has every scope).",
    responses((status = 200, description = "Success.", body = Page<Project>), (status = 400, description = "A query parameter is invalid.")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let page = paging.request()?;
    let org = principal.org_id;
    let body = db_read(&state, |c| store::list_projects_json(c, &org, page.limit, page.after.as_ref()))?;
    Ok(super::json_response(StatusCode::OK, body))
}

/// Create a project (names are unique per organisation).
#[utoipa::path(post, path = "/v1/projects", operation_id = "createProject", request_body = NewProject,
    security(("apiKey" = []), ("session" = [])), description = "Needs the `write` scope (an `admin` key has every scope).",
    responses((status = 201, description = "Created.", body = Project), (status = 409, description = "A project of this name exists.")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    record: Option<Extension<IdempotencyRecord>>,
    Valid(body): Valid<NewProject>,
) -> Result<impl IntoResponse, ApiError> {
    let org = principal.org_id;
    let name = body.name.trim().to_owned();
    write_once(&state, record.map(|Extension(r)| r), StatusCode::CREATED, move |c| {
        Ok(match store::insert_project(c, &org, &name)? {
            Insert::Created(p) => Ok(p),
            Insert::Duplicate => Err(ApiError::new(Code::ResourceAlreadyExists)
                .detail(format!("A project named '{name}' already exists in this organization."))),
        })
    })
    .await
}

/// Get a project.
#[utoipa::path(get, path = "/v1/projects/{id}", operation_id = "getProject", params(ProjectId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `read` scope (an `admin` key has every scope).",
    responses((status = 200, description = "Success.", body = Project), (status = 400, description = "Not a project id."), (status = 404, description = "No such project in this organisation.")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("prj", &raw, "project")?;
    match db_read(&state, |c| store::get_project(c, &principal.org_id, &id))? {
        Some(p) => Ok(Json(p)),
        None => Err(not_found(Code::ResourceNotFound, "Project", &id)),
    }
}

/// Delete a project.
#[utoipa::path(delete, path = "/v1/projects/{id}", operation_id = "deleteProject", params(ProjectId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `write` scope (an `admin` key has every scope).",
    responses((status = 204, description = "Deleted; no body."), (status = 400, description = "Not a project id."), (status = 404, description = "No such project in this organisation.")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("prj", &raw, "project")?;
    let (org, key) = (principal.org_id, id.clone());
    if db(&state, move |c| store::delete_project(c, &org, &key)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(Code::ResourceNotFound, "Project", &id))
    }
}
