//! `/v1/models` and `/v1/jobs`: created -> training -> ready | failed; generating needs ready.

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

const MODEL_TYPES: &[&str] = &["ctgan", "copulagan", "tvae", "gaussian_copula"];

#[derive(Debug, Deserialize)]
pub(crate) struct ModelConfig {
    #[serde(deserialize_with = "super::integer")]
    batch_size: i64,
    #[serde(default, deserialize_with = "super::optional_integer")]
    epochs: Option<i64>,
    /// Makes training fail, to show the `failed` state.
    #[serde(default)]
    simulate_failure: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewModel {
    name: String,
    model_type: String,
    config: ModelConfig,
}

impl Validate for NewModel {
    fn validate(&self, v: &mut Violations) {
        v.ensure(!self.name.trim().is_empty(), "/name", "Model name must not be empty");
        if !MODEL_TYPES.contains(&self.model_type.as_str()) {
            v.one_of("/model_type", MODEL_TYPES);
        }
        v.ensure(
            self.config.batch_size > 0,
            "/config/batch_size",
            "Value error, ensure this value is greater than 0",
        );
        if let Some(e) = self.config.epochs {
            v.ensure((1..=10_000).contains(&e), "/config/epochs", "epochs must be between 1 and 10000");
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Generate {
    #[serde(deserialize_with = "super::integer")]
    n_samples: i64,
}

impl Validate for Generate {
    fn validate(&self, v: &mut Violations) {
        v.ensure(self.n_samples > 0, "/n_samples", "n_samples must be > 0");
        v.ensure(self.n_samples <= 1_000_000, "/n_samples", "n_samples must be at most 1000000");
    }
}

/// The caller's model, or `model_not_found` (also for another organisation's model).
fn find_model(state: &AppState, org: &str, id: &str) -> Result<store::Model, ApiError> {
    db_read(state, |c| store::get_model(c, org, id))?
        .ok_or_else(|| not_found(Code::ModelNotFound, "Model", id))
}

/// The caller's job, or `resource_not_found`.
fn find_job(state: &AppState, org: &str, id: &str) -> Result<store::Job, ApiError> {
    db_read(state, |c| store::get_job(c, org, id))?
        .ok_or_else(|| not_found(Code::ResourceNotFound, "Job", id))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    record: Option<axum::extract::Extension<rebuff_axum::idempotency::IdempotencyRecord>>,
    Valid(body): Valid<NewModel>,
) -> Result<impl IntoResponse, ApiError> {
    let org = principal.org_id;
    let config = serde_json::json!({
        "batch_size": body.config.batch_size,
        "epochs": body.config.epochs.unwrap_or(100),
        "simulate_failure": body.config.simulate_failure,
    });
    super::write_once(&state, record.map(|axum::extract::Extension(r)| r), StatusCode::CREATED, move |c| {
        Ok(Ok(store::insert_model(c, &org, body.name.trim(), &body.model_type, &config)?))
    })
    .await
}

pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("mdl", &raw, "model")?;
    Ok(Json(find_model(&state, &principal.org_id, &id)?))
}

/// Starts training; a background step finishes it after the configured delay.
pub(crate) async fn train(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("mdl", &raw, "model")?;
    let model = find_model(&state, &principal.org_id, &id)?;
    let (org, key) = (principal.org_id.clone(), id.clone());
    let started =
        db(&state, move |c| store::transition_model(c, &org, &key, &["created", "failed"], "training", None))
            .await?;
    if !started {
        return Err(ApiError::new(Code::ResourceConflict)
            .detail(format!("Model {id} is in '{}' state, cannot start training", model.status)));
    }
    let fail = model.config.get("simulate_failure").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let delay = state.config().training_delay;
    let (bg, org, key) = (state.clone(), principal.org_id, id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let (to, error) =
            if fail { ("failed", Some("Training diverged (simulated failure)")) } else { ("ready", None) };
        if let Err(e) =
            db(&bg, move |c| store::transition_model(c, &org, &key, &["training"], to, error)).await
        {
            tracing::error!(cause = ?e.problem().cause, "finishing training failed");
        }
    });
    let mut model = model;
    model.status = "training".into();
    Ok((StatusCode::ACCEPTED, Json(model)))
}

/// Generates rows from a ready model, charged against the monthly row quota.
pub(crate) async fn generate(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    Valid(body): Valid<Generate>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("mdl", &raw, "model")?;
    let model = find_model(&state, &principal.org_id, &id)?;
    if model.status != "ready" {
        return Err(ApiError::new(Code::ModelNotReady)
            .detail(format!("Model {id} is in '{}' state, cannot generate", model.status)));
    }
    let rows = u64::try_from(body.n_samples).unwrap_or(0);
    state.inner.quotas.charge(&principal.org_id, rows).await?;
    let (org, key, n) = (principal.org_id, id, body.n_samples);
    let job = db(&state, move |c| store::insert_job(c, &org, &key, n)).await?;
    let delay = state.config().job_delay;
    let (bg, job_id) = (state.clone(), job.id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Err(e) = db(&bg, move |c| store::finish_job(c, &job_id)).await {
            tracing::error!(cause = ?e.problem().cause, "finishing a job failed");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(job)))
}

pub(crate) async fn job(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("job", &raw, "job")?;
    Ok(Json(find_job(&state, &principal.org_id, &id)?))
}

/// The generated rows: 409 until the job is done.
pub(crate) async fn job_output(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("job", &raw, "job")?;
    let job = find_job(&state, &principal.org_id, &id)?;
    if job.status != "done" {
        return Err(ApiError::new(Code::ResourceConflict).detail("Job output not available yet"));
    }
    let n = job.n_samples.min(5);
    let rows: Vec<_> =
        (0..n).map(|i| serde_json::json!({ "row": i, "value": (i * 37 + 11) % 101 })).collect();
    Ok(Json(serde_json::json!({ "job_id": job.id, "n_samples": job.n_samples, "preview": rows })))
}
