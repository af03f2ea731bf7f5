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

use super::{Page, Paging, db, db_read, not_found, path_id, write_once};
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

pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(paging): Query<Paging>,
) -> Result<impl IntoResponse, ApiError> {
    let page = paging.request()?;
    let org = principal.org_id;
    let items = db_read(&state, |c| store::list_projects(c, &org, page.limit + 1, page.after.as_ref()))?;
    Ok(Json(Page::of(items, page.limit, |p| (p.created_at, p.id.as_str()))))
}

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
