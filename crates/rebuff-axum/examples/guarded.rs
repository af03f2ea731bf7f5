//! The quickstart's widgets service, guarded: API keys kept in SQLite (and, once verified, in
//! memory), a rate limit per organisation, idempotency keys on `POST`, timeouts and panic
//! masking, in the order rebuff recommends.
//!
//! ```text
//! cargo run -p rebuff-axum --example guarded -- 127.0.0.1:3000 guarded.db
//! ```
//!
//! A fresh database prints an API key for the organisation `demo` (read and write).
//! `POST /widgets` creates a widget (send `Idempotency-Key` to make a retry safe),
//! `GET /widgets/{id}` reads one, `GET /explode` panics (answered as a masked 500).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::routing::get;
use rebuff::Catalog;
use rebuff_axum::auth::{AuthLayer, Principal, RequireScopeLayer};
use rebuff_axum::extract::{Json, Path, fallback};
use rebuff_axum::idempotency::IdempotencyLayer;
use rebuff_axum::ratelimit::RateLimitLayer;
use rebuff_axum::store::{CachedKeyStore, Quota};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ApiError, GuardLayer, ProblemLayer, RequestIdLayer, panic};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
use tower::ServiceBuilder;

rebuff::catalog!(Code = "examples/widgets.toml");

/// Requests each organisation may make per minute.
const RATE_LIMIT: Quota = Quota { limit: 10, period: Duration::from_secs(60) };
/// The longest a handler may run (504 after), and a stalled request body may wait (408 after).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, serde::Deserialize, serde::Serialize)]
struct Widget {
    #[serde(default)]
    id: String,
    name: String,
}

impl Validate for Widget {
    fn validate(&self, v: &mut Violations) {
        v.ensure(!self.name.trim().is_empty(), "/name", "must not be blank");
    }
}

/// Widgets per organisation (in memory: the example is about the error contract).
type Widgets = Arc<Mutex<HashMap<(String, String), Widget>>>;

async fn create_widget(
    State(widgets): State<Widgets>,
    caller: Principal,
    Valid(mut widget): Valid<Widget>,
) -> (http::StatusCode, Json<Widget>) {
    let mut widgets = widgets.lock().unwrap_or_else(PoisonError::into_inner);
    widget.id = format!("w_{}", widgets.len() + 1);
    widgets.insert((caller.org_id.to_string(), widget.id.clone()), widget.clone());
    (http::StatusCode::CREATED, Json(widget))
}

async fn get_widget(
    State(widgets): State<Widgets>,
    caller: Principal,
    Path(id): Path<String>,
) -> Result<Json<Widget>, ApiError> {
    let widgets = widgets.lock().unwrap_or_else(PoisonError::into_inner);
    match widgets.get(&(caller.org_id.to_string(), id.clone())) {
        Some(widget) => Ok(Json(widget.clone())),
        None => Err(ApiError::new(Code::WidgetNotFound).detail(format!("Widget '{id}' was not found."))),
    }
}

async fn explode() -> &'static str {
    panic!("the database password is hunter2") // logged with the request id, never sent
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let db = args.next().unwrap_or_else(|| "guarded.db".to_owned());
    let store = Arc::new(SqliteStore::open(&db)?);
    if store.was_created() {
        let org = store.get_or_create_org("demo").await?;
        let scopes = vec!["read".to_owned(), "write".to_owned()];
        let new = NewKey {
            org_id: org.id,
            name: "demo".into(),
            scopes,
            expires_at: None,
            allowed_ips: vec![],
            live: false,
        };
        let (_, key) = store.create_key(new).await?;
        println!("API key for organisation `demo` (shown once): {key}");
    }
    let catalog = Arc::new(Catalog::from_toml_str("widgets.toml", include_str!("widgets.toml"))?);

    // Around each route's methods, in one service (GuardLayer), in this order: who calls
    // (401), how often (429), whether the request repeats an earlier one (replayed), a
    // ProblemLayer that renders errors before the idempotency step stores them, so that a
    // replay is the same bytes, and the route's scope (403).
    let idempotency = IdempotencyLayer::new(store.clone())
        // A lock outlives the longest a request may run, or a retry could run beside it.
        .lock_ttl(REQUEST_TIMEOUT + Duration::from_secs(5))
        .scope_fn(|parts| parts.extensions.get::<Principal>().map(|p| p.org_id.to_string()));
    // Verified keys are kept in memory, so that a request does not read SQLite for its key;
    // a key revoked in the file is refused within a second (`max_staleness`).
    let keys = Arc::new(CachedKeyStore::new(store.clone(), store.clone()));
    let guard = GuardLayer::new(AuthLayer::new(keys))
        .rate_limit(
            RateLimitLayer::new(store.clone(), RATE_LIMIT).per_organisation().idempotency(&idempotency), // one store operation for the limit and the key lookup
        )
        .idempotency(idempotency)
        .problems(
            ProblemLayer::builder(catalog.clone())
                .raises(AuthLayer::CODES)
                .raises(RequireScopeLayer::CODES)
                .raises(RateLimitLayer::CODES)
                .raises(IdempotencyLayer::CODES)
                .raises(Code::ALL)
                .build()?,
        );
    let widgets = Router::new()
        // Around each handler: a method a route lacks is 405, before credentials.
        .route(
            "/widgets",
            axum::routing::post(create_widget.layer(guard.scope(RequireScopeLayer::new("write")))),
        )
        .route("/widgets/{id}", get(get_widget.layer(guard.scope(RequireScopeLayer::new("read")))))
        .with_state(Widgets::default());

    // Around everything, outermost first: the request id, the ProblemLayer that renders every
    // error (including a router's bare 404/405 and what the layers below answer), then panics
    // (500), timeouts (408, 504) and the body limit (413).
    let app = widgets.route("/explode", get(explode)).fallback(fallback).layer(
        ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .layer(ProblemLayer::try_new(catalog)?)
            .layer(panic::catch_panic())
            .layer(panic::body_timeout(BODY_TIMEOUT))
            .layer(panic::timeout(REQUEST_TIMEOUT))
            .layer(DefaultBodyLimit::max(64 * 1024)),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // The client's address, for per-address limits and IP allow-lists on keys.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
