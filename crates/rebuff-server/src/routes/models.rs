//! `/v1/models` and `/v1/jobs`: created -> training -> ready | failed; generating needs ready.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rebuff_axum::auth::Principal;
use rebuff_axum::extract::{Json, Path};
use rebuff_axum::idempotency::IdempotencyRecord;
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, Code};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{db, db_read, not_found, path_id};
use crate::db::{self as store, Job, Model};
use crate::limits;
use crate::state::AppState;

const MODEL_TYPES: &[&str] = &["ctgan", "copulagan", "tvae", "gaussian_copula"];
const MODEL_STATUSES: &[&str] = &["created", "training", "ready", "failed"];
const JOB_STATUSES: &[&str] = &["running", "done"];
/// How many rows a job's output previews.
const PREVIEW_ROWS: i64 = 5;

/// A model type, as its schema.
pub(crate) fn model_types() -> utoipa::openapi::schema::Schema {
    limits::one_of(MODEL_TYPES)
}

/// A model's status, as its schema.
pub(crate) fn model_statuses() -> utoipa::openapi::schema::Schema {
    limits::one_of(MODEL_STATUSES)
}

/// A job's status, as its schema.
pub(crate) fn job_statuses() -> utoipa::openapi::schema::Schema {
    limits::one_of(JOB_STATUSES)
}

/// How a model trains.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ModelConfig {
    /// Rows per training batch.
    #[serde(deserialize_with = "super::integer")]
    #[schema(exclusive_minimum = 0, maximum = 9223372036854775807_i64)]
    batch_size: i64,
    /// Training epochs (default 100).
    #[serde(default, deserialize_with = "super::optional_integer")]
    #[schema(minimum = 1, maximum = 10000)]
    epochs: Option<i64>,
    /// Makes training fail, to show the `failed` state.
    #[serde(default)]
    simulate_failure: bool,
}

/// A new model (status `created`).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewModel {
    /// Its name; surrounding whitespace is removed.
    #[schema(schema_with = limits::name)]
    name: String,
    /// Its type.
    #[schema(schema_with = model_types)]
    model_type: String,
    /// How it trains.
    config: ModelConfig,
}

/// How many rows to generate.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct Generate {
    /// Rows, charged against the monthly row quota.
    #[serde(deserialize_with = "super::integer")]
    #[schema(minimum = 1, maximum = 1000000)]
    n_samples: i64,
}

/// A finished job's output: the first rows.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobOutput {
    /// The job.
    #[schema(schema_with = limits::job_id)]
    job_id: String,
    /// Rows generated.
    #[schema(minimum = 1, maximum = 1000000)]
    n_samples: i64,
    /// The first rows (at most 5).
    #[schema(max_items = 5)]
    preview: Vec<Row>,
}

/// One generated row.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Row {
    /// Its index.
    #[schema(minimum = 0, maximum = 4)]
    row: i64,
    /// A value.
    #[schema(minimum = 0, maximum = 100)]
    value: i64,
}

/// A model's path id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ModelId {
    /// The model's id.
    #[param(schema_with = limits::model_id)]
    #[allow(dead_code)]
    id: String,
}

/// A job's path id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct JobId {
    /// The job's id.
    #[param(schema_with = limits::job_id)]
    #[allow(dead_code)]
    id: String,
}

impl Validate for NewModel {
    fn validate(&self, v: &mut Violations) {
        limits::check_name(v, "/name", "Model", &self.name);
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

/// Create a model (status `created`).
#[utoipa::path(post, path = "/v1/models", operation_id = "createModel", request_body = NewModel,
    security(("apiKey" = []), ("session" = [])), description = "Needs the `write` scope (an `admin` key has every scope).",
    responses((status = 201, description = "Created.", body = Model)))]
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

/// Get a model.
#[utoipa::path(get, path = "/v1/models/{id}", operation_id = "getModel", params(ModelId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `read` scope (an `admin` key has every scope).",
    responses((status = 200, description = "Success.", body = Model), (status = 400, description = "Not a model id."), (status = 404, description = "No such model in this organisation.")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("mdl", &raw, "model")?;
    Ok(Json(find_model(&state, &principal.org_id, &id)?))
}

/// Start training (created or failed -> training -> ready | failed).
///
/// A background step finishes it after the configured delay.
#[utoipa::path(post, path = "/v1/models/{id}/train", operation_id = "trainModel", params(ModelId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `write` scope (an `admin` key has every scope).",
    responses((status = 202, description = "Training.", body = Model), (status = 400, description = "Not a model id."),
        (status = 404, description = "No such model in this organisation."), (status = 409, description = "The model is training or ready.")))]
pub(crate) async fn train(
    State(state): State<AppState>,
    principal: Principal,
    record: Option<axum::extract::Extension<IdempotencyRecord>>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id("mdl", &raw, "model")?;
    let model = find_model(&state, &principal.org_id, &id)?;
    let fail = model.config.get("simulate_failure").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let (org, key) = (principal.org_id.clone(), id.clone());
    // The transition and the outcome commit together: a retry is answered the recorded 202
    // and does not start training again, whatever the idempotency store kept.
    let (res, ran) = super::write_once_ran(
        &state,
        record.map(|axum::extract::Extension(r)| r),
        StatusCode::ACCEPTED,
        move |c| {
            if !store::transition_model(c, &org, &key, &["created", "failed"], "training", None)? {
                let status = store::get_model(c, &org, &key)?.map_or_else(String::new, |m| m.status);
                return Ok(Err(ApiError::new(Code::ResourceConflict)
                    .detail(format!("Model {key} is in '{status}' state, cannot start training"))));
            }
            Ok(store::get_model(c, &org, &key)?.ok_or_else(|| not_found(Code::ModelNotFound, "Model", &key)))
        },
    )
    .await?;
    if ran {
        finish_training_later(&state, principal.org_id.to_string(), id, fail);
    }
    Ok(res)
}

/// Ends a model's training (ready, or failed as its configuration asks) after the configured
/// delay, in the background.
fn finish_training_later(state: &AppState, org: String, id: String, fail: bool) {
    let (bg, delay) = (state.clone(), state.config().training_delay);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let (to, error) =
            if fail { ("failed", Some("Training diverged (simulated failure)")) } else { ("ready", None) };
        if let Err(e) =
            db(&bg, move |c| store::transition_model(c, &org, &id, &["training"], to, error)).await
        {
            tracing::error!(cause = ?e.problem().cause, "finishing training failed");
        }
    });
}

/// Ends a job after the configured delay, in the background.
fn finish_job_later(state: &AppState, job_id: String) {
    let (bg, delay) = (state.clone(), state.config().job_delay);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Err(e) = db(&bg, move |c| store::finish_job(c, &job_id)).await {
            tracing::error!(cause = ?e.problem().cause, "finishing a job failed");
        }
    });
}

/// Finishes, each after its delay, the trainings and jobs that an instance which stopped
/// (or died) left running: their requests were answered, so nothing else would. Finishing is
/// a guarded transition, so an instance that finishes what another still runs changes
/// nothing twice.
pub(crate) async fn resume_unfinished(state: &AppState) {
    match db(state, |c| store::unfinished(c)).await {
        Ok(store::Unfinished { models, jobs }) => {
            if !models.is_empty() || !jobs.is_empty() {
                tracing::info!(models = models.len(), jobs = jobs.len(), "resuming unfinished work");
            }
            for (org, id, fail) in models {
                finish_training_later(state, org, id, fail);
            }
            for job in jobs {
                finish_job_later(state, job);
            }
        }
        Err(e) => tracing::error!(cause = ?e.problem().cause, "cannot read unfinished work"),
    }
}

/// Generate rows from a ready model (counts against the monthly row quota).
///
/// With an `Idempotency-Key` it runs in steps from a recovery point: the job's id is chosen
/// first and kept with the key, the quota is charged once under that id, and the job is
/// written with the outcome. A retry after any failure resumes with the same id and charges
/// nothing twice.
#[utoipa::path(post, path = "/v1/models/{id}/generate", operation_id = "generate", params(ModelId), request_body = Generate,
    security(("apiKey" = []), ("session" = [])), description = "Needs the `write` scope (an `admin` key has every scope).",
    responses((status = 202, description = "Generating.", body = Job), (status = 400, description = "Not a model id, or the model is not ready."),
        (status = 402, description = "The monthly row quota is spent."), (status = 404, description = "No such model in this organisation.")))]
pub(crate) async fn generate(
    State(state): State<AppState>,
    principal: Principal,
    record: Option<axum::extract::Extension<IdempotencyRecord>>,
    Path(raw): Path<String>,
    Valid(body): Valid<Generate>,
) -> Result<Response, ApiError> {
    let id = path_id("mdl", &raw, "model")?;
    let model = find_model(&state, &principal.org_id, &id)?;
    let rows = u64::try_from(body.n_samples).unwrap_or(0);
    let Some(axum::extract::Extension(record)) = record else {
        if model.status != "ready" {
            return Err(not_ready(&id, &model.status));
        }
        state.inner.quotas.charge(&principal.org_id, rows).await?;
        let (org, job_id) = (principal.org_id, store::new_id("job"));
        let job = db(&state, move |c| store::insert_job(c, job_id, &org, &id, body.n_samples)).await?;
        finish_job_later(&state, job.id.clone());
        return Ok((StatusCode::ACCEPTED, Json(job)).into_response());
    };
    // Step 0: the recovery point (or the finished outcome).
    let begun = {
        let record = record.clone();
        db(&state, move |c| store::begin_progress(c, &record, "job")).await?
    };
    let (job_id, started_at) = match begun {
        store::Progress::Finished(outcome) if outcome.fingerprint == record.fingerprint => {
            return Ok(rebuff_axum::idempotency::replay_response(outcome.response));
        }
        store::Progress::At { resource_id, started_at, fingerprint } if fingerprint == record.fingerprint => {
            (resource_id, started_at)
        }
        store::Progress::Finished(_) | store::Progress::At { .. } => {
            return Err(ApiError::new(Code::IdempotencyKeyReused));
        }
    };
    if model.status != "ready" {
        return Err(not_ready(&id, &model.status));
    }
    // Step 1: the charge, at most once under the job's id, in the month the operation began.
    let began =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(started_at).unwrap_or(0));
    state.inner.quotas.charge_once_at(&principal.org_id, rows, &job_id, record.ttl, began).await?;
    // Step 2: the job and the outcome, together; the recovery point goes with them.
    let (org, n, job, key) = (principal.org_id.clone(), body.n_samples, job_id.clone(), record.key.clone());
    let (res, ran) = super::write_once_ran(&state, Some(record), StatusCode::ACCEPTED, move |c| {
        store::end_progress(c, &key)?;
        Ok(Ok(store::insert_job(c, job, &org, &id, n)?))
    })
    .await?;
    if ran {
        finish_job_later(&state, job_id);
    }
    Ok(res)
}

/// The refusal to generate from a model that is not ready.
fn not_ready(id: &str, status: &str) -> ApiError {
    ApiError::new(Code::ModelNotReady).detail(format!("Model {id} is in '{status}' state, cannot generate"))
}

/// Get a generation job.
#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "getJob", params(JobId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `read` scope (an `admin` key has every scope).",
    responses((status = 200, description = "Success.", body = Job), (status = 400, description = "Not a job id."), (status = 404, description = "No such job in this organisation.")))]
pub(crate) async fn job(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = path_id("job", &raw, "job")?;
    Ok(Json(find_job(&state, &principal.org_id, &id)?))
}

/// Get a job's output (409 until it is done).
#[utoipa::path(get, path = "/v1/jobs/{id}/output", operation_id = "getJobOutput", params(JobId),
    security(("apiKey" = []), ("session" = [])), description = "Needs the `read` scope (an `admin` key has every scope).",
    responses((status = 200, description = "Success.", body = JobOutput), (status = 400, description = "Not a job id."),
        (status = 404, description = "No such job in this organisation."), (status = 409, description = "The job is still running.")))]
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
    let n = job.n_samples.min(PREVIEW_ROWS);
    let preview = (0..n).map(|i| Row { row: i, value: (i * 37 + 11) % 101 }).collect();
    Ok(Json(JobOutput { job_id: job.id, n_samples: job.n_samples, preview }))
}
