//! The `handmade` benchmark target: what an axum user assembles by hand instead of rebuff,
//! from the crates they would reach for, serving the same routes with the same key.
//!
//! tower-http's `SetRequestId` (UUID v4) + `TraceLayer` + `PropagateRequestId` +
//! `CatchPanic` + `Timeout`, axum's `DefaultBodyLimit`, `tower_governor` keyed by the bearer
//! token with its rate-limit headers on, a `middleware::from_fn` that looks the SHA-256 of the
//! bearer secret up in a `HashMap`, and problem+json errors built with `serde_json::json!`.
//! It is a baseline, not a recommendation: it has no catalog, one envelope, no scopes, no
//! idempotency and no masking beyond tower-http's panic handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tower::ServiceBuilder;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Keys by the bearer token, as a user limiting per caller would.
#[derive(Clone, Debug)]
struct BearerKey;

impl KeyExtractor for BearerKey {
    type Key = String;

    fn extract<T>(&self, req: &http::Request<T>) -> Result<String, tower_governor::GovernorError> {
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .ok_or(tower_governor::GovernorError::UnableToExtractKey)
    }
}

/// The organisation a verified key belongs to.
#[derive(Clone, Debug)]
struct Org(#[allow(dead_code)] Arc<str>);

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    res
}

async fn authenticate(keys: Arc<HashMap<[u8; 32], Arc<str>>>, mut req: Request, next: Next) -> Response {
    let secret = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(secret) = secret else {
        return problem(StatusCode::UNAUTHORIZED, "Unauthorized", "An API key is required.");
    };
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    match keys.get(&hash) {
        Some(org) => {
            req.extensions_mut().insert(Org(org.clone()));
            next.run(req).await
        }
        None => problem(StatusCode::UNAUTHORIZED, "Unauthorized", "The API key is not valid."),
    }
}

#[derive(serde::Serialize)]
struct Project {
    id: String,
    name: String,
    created_at: i64,
}

#[derive(serde::Deserialize)]
struct NewProject {
    name: String,
}

async fn list() -> impl IntoResponse {
    let data: Vec<Project> = (0..super::PROJECTS)
        .map(|i| Project {
            id: format!("prj_{i:012x}"),
            name: format!("bench-{i}"),
            created_at: 1_735_689_600,
        })
        .collect();
    axum::Json(serde_json::json!({ "data": data }))
}

async fn create(body: axum::Json<NewProject>) -> Response {
    if body.name.trim().is_empty() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Entity",
            "Project name must not be empty",
        );
    }
    (StatusCode::CREATED, axum::Json(serde_json::json!({ "id": "prj_000000000001", "name": body.name })))
        .into_response()
}

async fn get_one(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    problem(StatusCode::NOT_FOUND, "Not Found", &format!("Project with ID '{id}' was not found."))
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "Not Found", "No such route.")
}

/// The hand-assembled stack with `limit` requests per `period` per bearer token; returns the
/// router and a key it accepts.
pub(crate) fn stack(limit: u32, period: Duration) -> (Router, String) {
    let secret = format!("hm_{}", rebuff_axum::auth::key::token());
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let keys = Arc::new(HashMap::from([(hash, Arc::<str>::from("org_bench"))]));

    // governor's period is the time to earn back one request; a burst of `limit`.
    let per_request = (period / limit.max(1)).max(Duration::from_nanos(1));
    let governor = GovernorConfigBuilder::default()
        .period(per_request)
        .burst_size(limit)
        .key_extractor(BearerKey)
        .use_headers()
        .finish()
        .map(Arc::new);
    let governor = governor.expect("a non-zero burst and period");

    let guarded = Router::new()
        .route("/v1/projects", get(list).post(create))
        .route("/v1/projects/{id}", get(get_one))
        .layer(GovernorLayer::new(governor))
        .layer(middleware::from_fn(move |req, next| authenticate(keys.clone(), req, next)));

    let app = Router::new().merge(guarded).fallback(not_found).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http())
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(CatchPanicLayer::new())
            .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
            .layer(DefaultBodyLimit::max(1 << 20)),
    );
    (app, secret)
}
