//! [`GuardLayer`]: authentication, rate limit, idempotency, the inner rendering and the scope
//! check of a guarded route, in one service.
//!
//! The recommended stack puts four layers (and often a [`RequireScopeLayer`]) around each
//! guarded route: [`AuthLayer`], [`RateLimitLayer`], [`IdempotencyLayer`] and an inner
//! [`ProblemLayer`]. Nested, they are a service each, and a request then goes through a boxed
//! future per layer, each holding the next one's, and a copy of the services inside each
//! layer (with axum, one `Route` per `route_layer`, which is cloned for every call). They
//! always travel together, so [`GuardLayer`] runs the same steps, in the same order and with
//! the same code, in one service and one future per request:
//!
//! ```text
//! authentication (401, 403 ip_not_allowed) -> rate limit (429, and the limit's headers on
//!     every answer) -> idempotency (replay, 409, 422) -> inner rendering -> scope (403) -> route
//! ```
//!
//! Each step is configured by its own layer, which stays usable alone: a guard answers every
//! request exactly as the nested layers would, headers and bodies included.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::{Router, handler::Handler, routing::get};
//! use rebuff::Catalog;
//! use rebuff_axum::guard::GuardLayer;
//! use rebuff_axum::idempotency::IdempotencyLayer;
//! use rebuff_axum::ratelimit::RateLimitLayer;
//! use rebuff_axum::store::{MemoryAuthStore, MemoryStore, Quota};
//! use rebuff_axum::{AuthLayer, ProblemLayer, RequireScopeLayer};
//!
//! let catalog = Arc::new(Catalog::standard().clone());
//! let (keys, limits) = (Arc::new(MemoryAuthStore::new()), Arc::new(MemoryStore::new()));
//! let quota = Quota { limit: 60, period: Duration::from_secs(60) };
//! let guard = GuardLayer::new(AuthLayer::new(keys))
//!     .rate_limit(RateLimitLayer::new(limits.clone(), quota).per_organisation())
//!     .idempotency(IdempotencyLayer::new(limits))
//!     .problems(ProblemLayer::new(catalog));
//! async fn list_things() -> &'static str {
//!     "[]"
//! }
//! let app: Router = Router::new()
//!     .route("/v1/things", get(list_things.layer(guard.scope(RequireScopeLayer::new("read")))));
//! # let _ = app;
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use futures_util::future::Either;
use http::Request;
use tower::{Layer, Service};

use crate::auth::{AuthLayer, RequireScopeLayer};
use crate::idempotency::IdempotencyLayer;
use crate::ratelimit::RateLimitLayer;
use crate::render::{Echo, ProblemLayer};

/// Authenticates, limits, applies idempotency keys, renders and checks the scope of each
/// request in one service; see the [module documentation](self).
///
/// Built from the layers it replaces, with their configurations:
/// `GuardLayer::new(auth).rate_limit(limit).idempotency(idempotency).problems(inner)`, and
/// [`scope`](GuardLayer::scope) per route. Each step but authentication is optional; the
/// order is fixed, the one the nested layers must be given:
///
/// ```text
/// AuthLayer -> RateLimitLayer -> IdempotencyLayer -> ProblemLayer (inner) -> RequireScopeLayer
/// ```
///
/// Put it around each handler (`get(handler.layer(guard))`, axum's `Handler::layer`), so that
/// a method the route lacks is 405 before credentials are looked at, and inside the outer
/// [`ProblemLayer`], which renders its refusals. Around the handler, the guard runs inside the
/// one boxed route axum makes of it; around a route's methods (`MethodRouter::route_layer`)
/// it answers the same but adds a second route, cloned and boxed for every request. A
/// [`RateLimitLayer::idempotency`] given the same [`IdempotencyLayer`] still decides the limit
/// and looks the key up in one store operation.
#[derive(Clone)]
pub struct GuardLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    auth: AuthLayer,
    rate_limit: Option<RateLimitLayer>,
    idempotency: Option<IdempotencyLayer>,
    problems: Option<ProblemLayer>,
    scope: Option<RequireScopeLayer>,
}

impl fmt::Debug for GuardLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardLayer")
            .field("auth", &self.config.auth)
            .field("rate_limit", &self.config.rate_limit)
            .field("idempotency", &self.config.idempotency)
            .field("problems", &self.config.problems.is_some())
            .field("scope", &self.config.scope.as_ref().map(RequireScopeLayer::scope))
            .finish()
    }
}

impl GuardLayer {
    /// A guard that authenticates with `auth`, as an [`AuthLayer`] would.
    pub fn new(auth: AuthLayer) -> Self {
        GuardLayer {
            config: Arc::new(Config {
                auth,
                rate_limit: None,
                idempotency: None,
                problems: None,
                scope: None,
            }),
        }
    }

    /// Then limits what authentication admitted, as `limit` would inside the [`AuthLayer`].
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimitLayer) -> Self {
        Arc::make_mut(&mut self.config).rate_limit = Some(limit);
        self
    }

    /// Then applies `Idempotency-Key`s to what the limit admitted, as `idempotency` would
    /// inside the [`RateLimitLayer`].
    #[must_use]
    pub fn idempotency(mut self, idempotency: IdempotencyLayer) -> Self {
        Arc::make_mut(&mut self.config).idempotency = Some(idempotency);
        self
    }

    /// Then renders what the route (or the scope check) answers with `problems`, as an inner
    /// [`ProblemLayer`] would: what the idempotency step stores is already rendered.
    #[must_use]
    pub fn problems(mut self, problems: ProblemLayer) -> Self {
        Arc::make_mut(&mut self.config).problems = Some(problems);
        self
    }

    /// Last, requires the scope of `scope` before the route runs, as a [`RequireScopeLayer`]
    /// between the inner [`ProblemLayer`] and the route would. The guards of routes that need
    /// different scopes are made from one guard:
    /// `guard.scope(RequireScopeLayer::new("read"))`.
    #[must_use]
    pub fn scope(&self, scope: RequireScopeLayer) -> Self {
        let mut guard = self.clone();
        Arc::make_mut(&mut guard.config).scope = Some(scope);
        guard
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard { inner, config: self.config.clone() }
    }
}

/// The service of [`GuardLayer`].
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for Guard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for Guard<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The service that was polled ready goes into the future; a clone stays for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(guarded(self.config.clone(), inner, req))
    }
}

/// One request through every step: each step's own code, called in turn within one future.
///
/// What needs no waiting is decided without an await: authentication with a key the store
/// has at hand, and the limit from a store that answers at once. What waits (a key read
/// from its store, a session, a failure the throttle counts, a limit store over the
/// network, a limit decided together with an `Idempotency-Key`) is boxed: rare once keys are
/// cached or slow anyway, and its futures are large, so the guard's future stays small for
/// the rest.
#[allow(clippy::manual_async_fn, reason = "an async fn would hold a second copy of the request")]
fn guarded<S>(
    config: Arc<Config>,
    inner: S,
    mut req: Request<Body>,
) -> impl Future<Output = Result<Response, S::Error>>
where
    S: Service<Request<Body>, Response = Response>,
{
    use crate::auth::authenticate::Admission;
    // An async block rather than an `async fn`: it keeps the request where it was captured
    // (an `async fn` would hold a second copy of it).
    async move {
        let auth = config.auth.config();
        match auth.admit_now(&mut req) {
            Admission::Done(Ok(())) => {}
            Admission::Done(Err(refused)) => return Ok(refused),
            Admission::Waits(waits) => {
                if let Err(refused) = Box::pin(auth.admit_later(&mut req, waits)).await {
                    return Ok(refused);
                }
            }
        }
        let Some(limit) = &config.rate_limit else {
            return admitted(&config, inner, req).await;
        };
        let limit = limit.config();
        let Some(key) = limit.key(&mut req) else {
            return admitted(&config, inner, req).await;
        };
        match limit.decide_now(&key, &req) {
            Some(decided) => limit.respond_decided(req, |req| admitted(&config, inner, req), decided).await,
            None => Box::pin(limit.limit(&key, req, |req| admitted(&config, inner, req))).await,
        }
    }
}

// The steps after the limit are not `async fn`s: each hands the request on (or answers it)
// when it is called, so that the guard's future does not hold a copy of the request per step.

/// A request the limit admitted: through the idempotency step, if any.
fn admitted<'a, S>(
    config: &'a Config,
    inner: S,
    req: Request<Body>,
) -> impl Future<Output = Result<Response, S::Error>> + 'a
where
    S: Service<Request<Body>, Response = Response> + 'a,
    S::Future: 'a,
    S::Error: 'a,
{
    match &config.idempotency {
        Some(idempotency) => {
            Either::Left(idempotency.config().handle(req, move |req| rendered(config, inner, req)))
        }
        None => Either::Right(rendered(config, inner, req)),
    }
}

/// The scope check and the route, their answer rendered by the inner problems step, if any.
fn rendered<'a, S>(
    config: &'a Config,
    mut inner: S,
    req: Request<Body>,
) -> impl Future<Output = Result<Response, S::Error>> + 'a
where
    S: Service<Request<Body>, Response = Response>,
    S::Future: 'a,
    S::Error: 'a,
{
    let problems = config.problems.as_ref().map(|p| (p.config(), crate::request_id::current(&req)));
    let step = match config.scope.as_ref().and_then(|scope| scope.refusal(&req)) {
        Some(refused) => Either::Left(std::future::ready(Ok(refused))),
        None => Either::Right(inner.call(req)),
    };
    async move {
        let res = step.await?;
        Ok(match problems {
            // The outer ProblemLayer puts the id on what is not an error.
            Some((problems, request_id)) => problems.finish(request_id, Echo::Errors, res),
            None => res,
        })
    }
}
