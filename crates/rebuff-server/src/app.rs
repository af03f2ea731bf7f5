//! The router: routes, and the layers that give every error its catalog answer.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::MethodFilter;
#[cfg(feature = "fault-routes")]
use axum::routing::{get, post};
use http::Request;
use rebuff::{Catalog, MissingCodes};
use rebuff_axum::ProblemLayer;
use rebuff_axum::RequestIdLayer;
use rebuff_axum::auth::{AuthLayer, Principal, RequireScopeLayer, Subject, WebhookSignatureLayer};
use rebuff_axum::guard::GuardLayer;
use rebuff_axum::idempotency::IdempotencyLayer;
use rebuff_axum::ratelimit::RateLimitLayer;
use rebuff_axum::trace::RequestSpanLayer;
use tower::{Service, ServiceBuilder};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::path::Paths;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::routes;
use crate::state::AppState;

/// How much longer than the request timeout an idempotency lock lasts when its holder dies.
const IDEMPOTENCY_LOCK_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

fn scope(name: &'static str) -> RequireScopeLayer {
    RequireScopeLayer::new(name)
}

/// `routes!(handler)` with `guard` around the handler itself (`Handler::layer`) instead of
/// around its methods' route (`MethodRouter::route_layer`): the same methods, the same
/// `#[utoipa::path]` in the document, one boxed route fewer per request.
macro_rules! guarded {
    ($guard:expr, $handler:path) => {{
        let (schemas, paths, _) = routes!($handler);
        let methods = methods(&paths);
        (schemas, paths, axum::routing::on(methods, axum::handler::Handler::layer($handler, $guard.clone())))
    }};
}

/// The methods a handler's `#[utoipa::path]` declares, for [`guarded!`].
fn methods(paths: &Paths) -> MethodFilter {
    let declared = paths.paths.values().flat_map(|item| {
        [
            (item.get.is_some(), MethodFilter::GET),
            (item.post.is_some(), MethodFilter::POST),
            (item.put.is_some(), MethodFilter::PUT),
            (item.patch.is_some(), MethodFilter::PATCH),
            (item.delete.is_some(), MethodFilter::DELETE),
            (item.head.is_some(), MethodFilter::HEAD),
            (item.options.is_some(), MethodFilter::OPTIONS),
            (item.trace.is_some(), MethodFilter::TRACE),
        ]
        .into_iter()
        .filter_map(|(declared, filter)| declared.then_some(filter))
    });
    // `#[utoipa::path]` cannot be written without a method.
    declared.reduce(MethodFilter::or).expect("a #[utoipa::path] declares a method")
}

/// The whole API. `main` only builds the state and listens. Its `/openapi.json` is derived
/// from the same routes: each handler's `#[utoipa::path]`, its types' `ToSchema`, and
/// `rebuff_axum::openapi::ErrorDocs` for the errors the layers add.
///
/// Layers, outermost first: request id, tracing span, the rendering [`ProblemLayer`], panic
/// catching, timeouts and body limit; then, for `/v1` routes that need credentials, one
/// [`GuardLayer`]: authentication, the per-organisation rate limit, idempotency keys, an inner
/// [`ProblemLayer`] so that what idempotency stores is already rendered, and the route's scope.
///
/// The outer layers wrap the router, so the API is a service, not a [`Router`](axum::Router):
/// serve it with `axum::serve(listener, axum::ServiceExt::into_make_service(app))`, or make it
/// the fallback service of a `Router` to merge it with other routes.
pub fn app(
    state: AppState,
) -> impl Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ Unpin
+ 'static {
    let cfg = state.config().clone();
    let catalog = cfg.catalog.clone();
    let backends = state.backends().clone();

    let idempotency = IdempotencyLayer::new(backends.idempotency.clone())
        .max_body(cfg.body_limit)
        // A lock must outlive the longest a request may run, or a retry could run beside it.
        .lock_ttl(cfg.request_timeout + IDEMPOTENCY_LOCK_MARGIN)
        .scope_fn(|parts| parts.extensions.get::<Principal>().map(caller_scope))
        // Writes record their outcome in their own transaction (`routes::write_once` in
        // SQLite, key creation in the accounts store): looked up before a request runs, it
        // answers retries whatever the idempotency store lost.
        .outcomes(state.store().outcomes());
    // Authentication, the limit, idempotency, the inner rendering and the scope in one service
    // per route method (`GuardLayer`): nested, they would cost a boxed future and a clone of the
    // route per layer and request.
    let stack = GuardLayer::new(
        AuthLayer::new(backends.keys.clone())
            .sessions(backends.sessions.clone())
            .throttle_failures(backends.rate_limits.clone(), cfg.auth_failure_limit),
    )
    .rate_limit(
        RateLimitLayer::new(backends.rate_limits.clone(), cfg.rate_limit)
            .fail_open(cfg.rate_limit_fail_open)
            .per_organisation()
            // One store operation for the limit and the idempotency lookup, where the two
            // share a store that can (Redis: one round trip).
            .idempotency(&idempotency),
    )
    .idempotency(idempotency)
    .problems(ProblemLayer::new(catalog.clone()).debug(cfg.debug));
    // Around each handler (`Handler::layer`), not the route: a method the route lacks is 405
    // before the credentials are looked at, and the guard is inside the handler's one boxed
    // route rather than a second one (`MethodRouter::route_layer`), cloned for every request.
    // `guarded!` registers each handler as `routes!` does, with its `#[utoipa::path]`.
    let (read, write, admin) =
        (stack.scope(scope("read")), stack.scope(scope("write")), stack.scope(scope("admin")));
    let authed = OpenApiRouter::new()
        .routes(guarded!(read, routes::projects::list))
        .routes(guarded!(write, routes::projects::create))
        .routes(guarded!(read, routes::projects::get))
        .routes(guarded!(write, routes::projects::delete))
        .routes(guarded!(write, routes::datasets::create))
        .routes(guarded!(read, routes::datasets::get))
        .routes(guarded!(write, routes::models::create))
        .routes(guarded!(read, routes::models::get))
        .routes(guarded!(write, routes::models::train))
        .routes(guarded!(write, routes::models::generate))
        .routes(guarded!(read, routes::models::job))
        .routes(guarded!(read, routes::models::job_output))
        .routes(guarded!(admin, routes::keys::list))
        .routes(guarded!(admin, routes::keys::create))
        .routes(guarded!(admin, routes::keys::revoke))
        .routes(guarded!(stack, routes::auth::logout));
    #[cfg(feature = "fault-routes")]
    let authed = authed.route(
        "/v1/_fault/slow-project",
        post(routes::faults::slow_project).route_layer(stack.scope(scope("write"))),
    );
    #[cfg(feature = "fault-routes")]
    let authed = authed
        .route("/v1/_fault/effect", post(routes::faults::effect).route_layer(stack.scope(scope("write"))));

    let open = OpenApiRouter::new().routes(routes!(routes::auth::login)).routes(
        routes!(routes::webhooks::incoming).map(|methods| {
            // route_layer: a method the route lacks is 405, not a signature check.
            methods.route_layer(
                WebhookSignatureLayer::new(cfg.webhook_secret.clone(), cfg.webhook_tolerance)
                    .future_tolerance(cfg.webhook_future_tolerance)
                    // Where the request limits are: shared between instances when they are.
                    .reject_replays(backends.rate_limits.clone()),
            )
        }),
    );
    #[cfg(feature = "fault-routes")]
    let open = open
        .route("/v1/_fault/panic", get(routes::faults::panic))
        .route("/v1/_fault/database", get(routes::faults::database));

    let (router, api) = OpenApiRouter::new()
        .routes(routes!(routes::meta::healthz))
        .routes(routes!(routes::meta::openapi))
        .routes(routes!(routes::meta::errors_html))
        .routes(routes!(routes::meta::errors_json))
        .merge(open)
        .merge(authed)
        .split_for_parts();
    state.set_openapi(crate::openapi::document(api, &catalog));

    // Around the router rather than through `Router::layer`, which would wrap each route in
    // one more boxed service, cloned for every request.
    let router = router.fallback(rebuff_axum::extract::fallback).with_state(state);
    ServiceBuilder::new()
        .layer(RequestIdLayer::new())
        // Before anything that looks at the client's address (limits, allow-lists).
        .layer(rebuff_axum::client_ip::ClientIpLayer::new(cfg.trusted_proxies.clone()))
        // No response is to be sniffed into another type (an error body as HTML).
        .layer(SetResponseHeaderLayer::overriding(
            http::header::X_CONTENT_TYPE_OPTIONS,
            http::HeaderValue::from_static("nosniff"),
        ))
        // A span at DEBUG, and no per-response line: the ProblemLayer logs failures with
        // their request id (a repeated one once per interval). Its fields cannot forge a
        // log line: the method is a token, the path is recorded quoted and escaped, the
        // request id is validated.
        .layer(RequestSpanLayer::new())
        .layer(ProblemLayer::new(catalog).debug(cfg.debug))
        .layer(rebuff_axum::panic::catch_panic())
        .layer(rebuff_axum::panic::body_timeout(cfg.body_timeout))
        .layer(rebuff_axum::panic::timeout(cfg.request_timeout))
        .layer(DefaultBodyLimit::max(cfg.body_limit))
        .service(router)
}

/// Idempotency keys are scoped to the organisation and the credential.
fn caller_scope(p: &Principal) -> String {
    match &p.subject {
        Subject::Key { id, .. } => format!("{}:key:{id}", p.org_id),
        Subject::Session { user_id } => format!("{}:user:{user_id}", p.org_id),
    }
}

/// Checks that `catalog` can serve this API: it must have every code of the standard
/// catalog, which the reference API's layers and routes answer with (a profile of it, or a
/// catalog that `extends = "standard"` and adds codes, has them all).
///
/// [`app()`] would panic on a catalog without the layers' codes ([`ProblemLayer::new`]); this
/// check lets a binary refuse to start with the same message instead, before it listens.
///
/// # Errors
/// [`MissingCodes`] naming every code the catalog lacks.
pub fn check_catalog(catalog: &Catalog) -> Result<(), MissingCodes> {
    let standard = Catalog::standard().entries().iter().map(|e| e.code.as_str());
    catalog.require(standard, "the reference API")
}
