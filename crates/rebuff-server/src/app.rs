//! The router: routes, and the layers that give every error its catalog answer.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, post};
use rebuff_axum::ProblemLayer;
use rebuff_axum::RequestIdLayer;
use rebuff_axum::auth::{AuthLayer, Principal, RequireScopeLayer, Subject, WebhookSignatureLayer};
use rebuff_axum::idempotency::IdempotencyLayer;
use rebuff_axum::ratelimit::RateLimitLayer;
use rebuff_axum::trace::RequestSpanLayer;
use tower::ServiceBuilder;

use crate::routes;
use crate::state::AppState;

/// How much longer than the request timeout an idempotency lock lasts when its holder dies.
const IDEMPOTENCY_LOCK_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

fn scope(name: &'static str) -> RequireScopeLayer {
    RequireScopeLayer::new(name)
}

/// The whole API. `main` only builds the state and listens.
///
/// Layers, outermost first: request id, tracing span, the rendering [`ProblemLayer`], panic
/// catching, timeouts and body limit; then, for `/v1` routes that need credentials:
/// authentication, the per-organisation rate limit, idempotency keys and an inner
/// [`ProblemLayer`] so that what idempotency stores is already rendered.
pub fn app(state: AppState) -> Router {
    let cfg = state.config().clone();
    let catalog = cfg.catalog.clone();
    let backends = state.backends().clone();

    let idempotency = IdempotencyLayer::new(backends.idempotency.clone())
        .max_body(cfg.body_limit)
        // A lock must outlive the longest a request may run, or a retry could run beside it.
        .lock_ttl(cfg.request_timeout + IDEMPOTENCY_LOCK_MARGIN)
        .scope_fn(|parts| parts.extensions.get::<Principal>().map(caller_scope));
    // One `ServiceBuilder` per stack, outermost first: `Router::layer` boxes every layer of
    // every route separately, and a request then clones each box (an allocation apiece).
    let stack = ServiceBuilder::new()
        .layer(AuthLayer::new(backends.keys.clone()).sessions(backends.sessions.clone()))
        .layer(
            RateLimitLayer::new(backends.rate_limits.clone(), cfg.rate_limit)
                .fail_open(cfg.rate_limit_fail_open)
                .key_fn(|parts| parts.extensions.get::<Principal>().map(|p| format!("org:{}", p.org_id)))
                // One store operation for the limit and the idempotency lookup, where the two
                // share a store that can (Redis: one round trip).
                .idempotency(&idempotency),
        )
        .layer(idempotency.clone())
        .layer(ProblemLayer::new(catalog.clone()).debug(cfg.debug));
    // Around each route's methods, not the route (`MethodRouter::route_layer`): a method the
    // route lacks is 405 before the credentials are looked at.
    let guard = |methods: MethodRouter<AppState>| methods.route_layer(stack.clone());
    let authed = Router::new()
        .route(
            "/v1/projects",
            guard(
                get(routes::projects::list)
                    .route_layer(scope("read"))
                    .merge(post(routes::projects::create).route_layer(scope("write"))),
            ),
        )
        .route(
            "/v1/projects/{id}",
            guard(
                get(routes::projects::get)
                    .route_layer(scope("read"))
                    .merge(delete(routes::projects::delete).route_layer(scope("write"))),
            ),
        )
        .route("/v1/datasets", guard(post(routes::datasets::create).route_layer(scope("write"))))
        .route("/v1/datasets/{id}", guard(get(routes::datasets::get).route_layer(scope("read"))))
        .route("/v1/models", guard(post(routes::models::create).route_layer(scope("write"))))
        .route("/v1/models/{id}", guard(get(routes::models::get).route_layer(scope("read"))))
        .route("/v1/models/{id}/train", guard(post(routes::models::train).route_layer(scope("write"))))
        .route("/v1/models/{id}/generate", guard(post(routes::models::generate).route_layer(scope("write"))))
        .route("/v1/jobs/{id}", guard(get(routes::models::job).route_layer(scope("read"))))
        .route("/v1/jobs/{id}/output", guard(get(routes::models::job_output).route_layer(scope("read"))))
        .route(
            "/v1/api-keys",
            guard(get(routes::keys::list).merge(post(routes::keys::create)).route_layer(scope("admin"))),
        )
        .route("/v1/api-keys/{id}", guard(delete(routes::keys::revoke).route_layer(scope("admin"))))
        .route("/v1/auth/logout", guard(post(routes::auth::logout)));
    #[cfg(feature = "fault-routes")]
    let authed = authed.route(
        "/v1/_fault/slow-project",
        guard(post(routes::faults::slow_project).route_layer(scope("write"))),
    );

    let open = Router::new().route("/v1/auth/login", post(routes::auth::login)).route(
        "/v1/webhooks/incoming",
        post(routes::webhooks::incoming)
            // route_layer: a method the route lacks is 405, not a signature check.
            .route_layer(WebhookSignatureLayer::new(cfg.webhook_secret.clone(), cfg.webhook_tolerance)),
    );
    #[cfg(feature = "fault-routes")]
    let open = open
        .route("/v1/_fault/panic", get(routes::faults::panic))
        .route("/v1/_fault/database", get(routes::faults::database));

    Router::new()
        .route("/healthz", get(routes::meta::healthz))
        .route("/openapi.json", get(routes::meta::openapi))
        .route("/errors", get(routes::meta::errors_html))
        .route("/errors.json", get(routes::meta::errors_json))
        .merge(open)
        .merge(authed)
        .fallback(rebuff_axum::extract::fallback)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer::new())
                // A span at DEBUG, and no per-response line: the ProblemLayer logs failures
                // with their request id (a repeated one once per interval).
                .layer(RequestSpanLayer::new())
                .layer(ProblemLayer::new(catalog).debug(cfg.debug))
                .layer(rebuff_axum::panic::catch_panic())
                .layer(rebuff_axum::panic::body_timeout(cfg.body_timeout))
                .layer(rebuff_axum::panic::timeout(cfg.request_timeout))
                .layer(DefaultBodyLimit::max(cfg.body_limit)),
        )
}

/// Idempotency keys are scoped to the organisation and the credential.
fn caller_scope(p: &Principal) -> String {
    match &p.subject {
        Subject::Key { id, .. } => format!("{}:key:{id}", p.org_id),
        Subject::Session { user_id } => format!("{}:user:{user_id}", p.org_id),
    }
}
