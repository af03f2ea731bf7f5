//! `/v1/projects`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use rebuff_axum::auth::Principal;
use rebuff_axum::extract::{Json, Path, Query};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use serde::Deserialize;

use super::{db, db_read, not_found, path_id};
use crate::db::{self as store, Insert};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct NewProject {
    name: String,
}

impl Validate for NewProject {
    fn validate(&self, v: &mut Violations) {
        v.ensure(!self.name.trim().is_empty(), "/name", "Project name must not be empty");
        v.ensure(self.name.chars().count() <= 100, "/name", "Project name must be at most 100 characters");
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Paging {
    limit: Option<u32>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let limit = paging.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        let mut err = ApiError::new(Code::InvalidQueryParameter).detail("limit must be between 1 and 100");
        err.problem_mut().param = Some("limit".into());
        return Err(err);
    }
    let org = principal.org_id;
    let body = db_read(&state, |c| store::list_projects_json(c, &org, limit))?;
    Ok(([(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"))], body))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Valid(body): Valid<NewProject>,
) -> Result<impl IntoResponse, ApiError> {
    let org = principal.org_id;
    let name = body.name.trim().to_owned();
    let shown = name.clone();
    match db(&state, move |c| store::insert_project(c, &org, &name)).await? {
        Insert::Created(p) => Ok((StatusCode::CREATED, Json(p))),
        Insert::Duplicate => Err(ApiError::new(Code::ResourceAlreadyExists)
            .detail(format!("A project named '{shown}' already exists in this organization."))),
    }
}

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
