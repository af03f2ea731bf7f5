//! Idempotency keys: [`IdempotencyLayer`] runs a `POST` (or `PATCH`) carrying an
//! `Idempotency-Key` once, and answers every retry with the stored first completion.
//!
//! For a request with a key, scoped to its caller (two callers never share a key):
//!
//! * no record: the request runs under a lock; its response, success or error, is stored for
//!   [`ttl`](IdempotencyLayer::ttl) (24 hours by default) unless it is a 5xx: a server error is
//!   not a completion, so a retry runs again;
//! * completed before with the same payload: the stored status, headers and body are replayed
//!   with `Idempotent-Replayed: true` and `Original-Request` naming the first request's id
//!   (the replay's own `X-Request-Id` is new);
//! * still running: `idempotency_key_in_use` (409) with `Retry-After: 1`;
//! * used before with another payload (method, path and query, body): `idempotency_key_reused`
//!   (422);
//! * a malformed key (not 1 to 255 visible ASCII characters): `bad_request` (400).
//!
//! Requests without the header, and other methods, pass through untouched.
//!
//! # Where it goes in the stack
//!
//! The layer stores the bytes of the response, so the response must already be rendered when
//! it gets here: put a [`ProblemLayer`](crate::ProblemLayer) inside it as well as the usual one
//! outside (the outer one leaves responses that the inner one rendered alone):
//!
//! ```text
//! RequestIdLayer -> ProblemLayer (outer) -> auth -> RateLimitLayer -> IdempotencyLayer
//!     -> ProblemLayer (inner) -> routes
//! ```
//!
//! With axum, layers added later wrap those added before:
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::post};
//! use rebuff_axum::{ProblemLayer, RequestIdLayer};
//! use rebuff_axum::idempotency::IdempotencyLayer;
//! use rebuff_axum::store::memory::MemoryStore;
//!
//! let problems = ProblemLayer::new(Arc::new(rebuff::Catalog::standard().clone()));
//! let app: Router = Router::new()
//!     .route("/v1/things", post(|| async { "created" }))
//!     .layer(problems.clone())
//!     .layer(IdempotencyLayer::new(Arc::new(MemoryStore::new())))
//!     .layer(problems)
//!     .layer(RequestIdLayer::new());
//! # let _ = app;
//! ```
//!
//! The lock is released when the request fails with a 5xx, when the handler panics and when
//! the client goes away before the response (the future is dropped). If the whole process dies
//! the lock expires after [`lock_ttl`](IdempotencyLayer::lock_ttl), which must therefore be
//! longer than any request may run (bound it with a timeout layer).
//!
//! A completion is stored before the response leaves, so a response the client received is
//! the one its retries replay. While the store is unavailable (a restart, a failover) the
//! response is sent at once and a background task keeps trying to store it for as long as the
//! lock lives; the key stays locked meanwhile, and a retry gets `idempotency_key_in_use`
//! ("in progress, or its outcome is being recovered"), never a second run.
//!
//! Exactly once whatever the store does takes the outcome committed with the side effect:
//! a handler records it in its own transaction ([`IdempotencyRecord`], [`Recorded`]) and the
//! layer, given those records ([`IdempotencyLayer::outcomes`]), replays one before running a
//! request, whatever the store lost or still holds as a lock.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, OriginalUri};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_LANGUAGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, LINK, LOCATION};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use crate::render::Rendered;
use crate::store::{Begin, IdempotencyStore, StoreErrorKind, StoredResponse};
use crate::{ApiError, Code};

/// `Idempotency-Key`: the client's key for one operation.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotent-Replayed: true` marks a replayed response.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// `Original-Request: <request id>` on a replayed response names the request whose response it
/// is (as Stripe does); its own `X-Request-Id` is the retry's.
pub const ORIGINAL_REQUEST: HeaderName = HeaderName::from_static("original-request");

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Headers of a response that are stored and replayed with it. Others (request id, rate-limit
/// fields, dates) describe the exchange, not the result, and are set afresh on a replay.
const STORED_HEADERS: [HeaderName; 7] =
    [CONTENT_TYPE, CONTENT_LANGUAGE, LOCATION, ETAG, LAST_MODIFIED, LINK, HeaderName::from_static("allow")];

/// Put in a response's extensions by a handler whose body holds a secret (a new API key's
/// text): the idempotency record keeps this body instead, so that the secret is never stored
/// at rest, and a replay shows it. The client that made the request still gets the real body.
///
/// ```
/// use axum::response::IntoResponse;
/// use rebuff_axum::idempotency::ReplayBody;
///
/// let mut res = "rb_test_secret".into_response();
/// res.extensions_mut().insert(ReplayBody::new(r#"{"key":"[redacted]"}"#));
/// # let _ = res;
/// ```
#[derive(Debug, Clone)]
pub struct ReplayBody(Bytes);

impl ReplayBody {
    /// The body that replays of this response show.
    pub fn new(body: impl Into<Bytes>) -> Self {
        ReplayBody(body.into())
    }
}

/// Extracts the caller a key belongs to; `None` runs the request without idempotency.
pub type ScopeFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// Whether `key` is a well-formed `Idempotency-Key`: 1 to [`MAX_KEY_LEN`] visible ASCII
/// characters.
pub fn is_valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|b| b.is_ascii_graphic())
}

/// The default scope: the SHA-256 of the `Authorization` header (so each credential has its
/// own keys, and the credential is not kept), else the client address from axum's
/// `ConnectInfo<SocketAddr>`.
pub fn default_scope(parts: &Parts) -> Option<String> {
    if let Some(auth) = parts.headers.get(AUTHORIZATION) {
        return Some(format!("auth:{}", hex::encode(Sha256::digest(auth.as_bytes()))));
    }
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| format!("ip:{}", addr.ip()))
}

/// Stores the first completion of requests carrying an `Idempotency-Key` and replays it; see
/// the [module documentation](self).
#[derive(Clone)]
pub struct IdempotencyLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn IdempotencyStore>,
    ttl: Duration,
    pub(crate) lock_ttl: Duration,
    max_body: usize,
    scope_fn: ScopeFn,
    /// Where handlers record outcomes with their side effects, when they do.
    outcomes: Option<Arc<dyn Outcomes>>,
}

impl fmt::Debug for IdempotencyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyLayer")
            .field("ttl", &self.config.ttl)
            .field("lock_ttl", &self.config.lock_ttl)
            .field("max_body", &self.config.max_body)
            .finish_non_exhaustive()
    }
}

impl IdempotencyLayer {
    /// Keeps    /// The codes this layer can raise (a body over its limit is `payload_too_large`; 503
    /// and 500 when its store fails), for [`ProblemLayer::builder`](crate::ProblemLayer::builder).
    pub const CODES: &'static [crate::Code] = &[
        crate::Code::BadRequest,
        crate::Code::IdempotencyKeyInUse,
        crate::Code::IdempotencyKeyReused,
        crate::Code::PayloadTooLarge,
        crate::Code::RequestTimeout,
        crate::Code::InternalError,
        crate::Code::ServiceUnavailable,
        crate::Code::DatabaseError,
    ];

    /// Keeps records in `store`: completions for 24 hours, locks for 60 seconds, request
    /// bodies up to 1 MiB.
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        IdempotencyLayer {
            config: Arc::new(Config {
                store,
                ttl: Duration::from_secs(24 * 60 * 60),
                lock_ttl: Duration::from_secs(60),
                max_body: 1024 * 1024,
                scope_fn: Arc::new(default_scope),
                outcomes: None,
            }),
        }
    }

    /// How long a completion is kept and replayed (24 hours by default).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        Arc::make_mut(&mut self.config).ttl = ttl;
        self
    }

    /// How long a lock outlives a process that died holding it (60 seconds by default). Must
    /// be longer than any request may run, or a retry could run alongside the first attempt.
    #[must_use]
    pub fn lock_ttl(mut self, lock_ttl: Duration) -> Self {
        Arc::make_mut(&mut self.config).lock_ttl = lock_ttl;
        self
    }

    /// The largest request body buffered to fingerprint the payload (1 MiB by default); a
    /// larger one is answered with `payload_too_large` (413).
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_body = bytes;
        self
    }

    /// Sets who a key belongs to, e.g. the organisation and API key id of the authenticated
    /// principal. Requests for which it returns `None` run without idempotency. The default is
    /// [`default_scope`].
    #[must_use]
    pub fn scope_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).scope_fn = Arc::new(f);
        self
    }
}

impl IdempotencyLayer {
    /// Looks up outcomes that handlers record in the same transaction as their side effect
    /// (see [`IdempotencyRecord`]) before running a request, and replays one when it is there:
    /// a request whose side effect committed is never run again, whatever became of its
    /// record in the idempotency store (lost with a Redis restart, never stored because the
    /// store was down, a lock left by a dead instance or expired).
    #[must_use]
    pub fn outcomes(mut self, outcomes: Arc<dyn Outcomes>) -> Self {
        Arc::make_mut(&mut self.config).outcomes = Some(outcomes);
        self
    }
}

/// The idempotency key of the request a handler runs (in the request's extensions), an outcome
/// recorded with its side effect, and where such outcomes are found: defined in
/// [`rebuff_store`], so that a store records outcomes without depending on HTTP.
pub use rebuff_store::idempotency::{IdempotencyRecord, Outcome, Outcomes};

/// In a response's extensions: its outcome was recorded with the side effect
/// ([`IdempotencyRecord`]), so it survives whatever happens to the idempotency store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded;

/// A replay of a recorded response, marked as such: what a handler answers when it finds its
/// key already recorded in its transaction.
pub fn replay_response(stored: StoredResponse) -> Response {
    replay(stored)
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Idempotency { inner, config: self.config.clone() }
    }
}

impl IdempotencyLayer {
    /// The configuration, for the rate-limit layer that begins records on this layer's behalf
    /// and the [`GuardLayer`](crate::guard::GuardLayer).
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

/// The service of [`IdempotencyLayer`].
#[derive(Clone)]
pub struct Idempotency<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for Idempotency<S>
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
        match classify(&self.config, req) {
            Classified::Pass(req) => Box::pin(self.inner.call(req)),
            Classified::Reject(res) => Box::pin(async move { Ok(res) }),
            Classified::Keyed(keyed) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let config = self.config.clone();
                Box::pin(async move { run(&config, keyed, |req| inner.call(req)).await })
            }
        }
    }
}

impl Config {
    /// Runs `req` through `next` under its `Idempotency-Key`, if it carries one: what
    /// [`Idempotency`] does for each request, for the [`Guard`](crate::guard::Guard).
    ///
    /// Not an `async fn`: the request is sorted out (and, without a key, handed to `next`)
    /// when this is called, so that the future returned does not hold it as well.
    pub(crate) fn handle<'a, F, Fut, E>(
        self: &'a Arc<Self>,
        req: Request<Body>,
        next: F,
    ) -> impl Future<Output = Result<Response, E>> + 'a
    where
        F: FnOnce(Request<Body>) -> Fut + 'a,
        Fut: Future<Output = Result<Response, E>> + 'a,
        E: 'a,
    {
        use futures_util::future::Either;
        match classify(self, req) {
            Classified::Pass(req) => Either::Left(next(req)),
            Classified::Reject(res) => Either::Right(Either::Left(std::future::ready(Ok(res)))),
            // Boxed: its future is large, and most requests carry no key.
            Classified::Keyed(keyed) => Either::Right(Either::Right(Box::pin(run(self, keyed, next)))),
        }
    }
}

/// What a request is to this layer.
pub(crate) enum Classified {
    /// Not idempotent (no key, not POST or PATCH, no scope): runs untouched.
    Pass(Request<Body>),
    /// A malformed key: answered without running.
    Reject(Response),
    /// Carries a well-formed key.
    Keyed(Keyed),
}

/// A request with a well-formed key, its body not read yet.
pub(crate) struct Keyed {
    parts: Parts,
    body: Body,
    /// The key scoped to its caller, as stored.
    store_key: String,
}

impl Keyed {
    /// Reads the body (up to the configured limit) and fingerprints the payload, unless its
    /// fingerprint is `known` already.
    pub(crate) async fn read(self, config: &Config, known: Option<[u8; 32]>) -> Result<Read, Response> {
        let bytes = crate::extract::read_body(&self.parts.headers, self.body, config.max_body)
            .await
            .map_err(IntoResponse::into_response)?;
        let fingerprint = known.unwrap_or_else(|| fingerprint(&self.parts, &bytes));
        Ok(Read { parts: self.parts, bytes, store_key: self.store_key, fingerprint })
    }
}

/// A keyed request with its body read.
pub(crate) struct Read {
    pub(crate) parts: Parts,
    pub(crate) bytes: Bytes,
    pub(crate) store_key: String,
    pub(crate) fingerprint: [u8; 32],
}

/// What the [`RateLimitLayer`](crate::ratelimit::RateLimitLayer) found for a key when it
/// decided the limit and began the record in one store operation
/// ([`RateLimitStore::check_and_begin`](crate::store::RateLimitStore::check_and_begin)); this
/// layer takes it over instead of calling `begin` itself.
#[derive(Clone)]
pub(crate) struct Prefetched {
    pub(crate) store_key: String,
    /// The payload's, as the rate-limit layer computed it from the same body.
    pub(crate) fingerprint: [u8; 32],
    pub(crate) begin: Begin,
    /// Set when this layer takes the result over; a lock nobody took over is released.
    pub(crate) claimed: Arc<AtomicBool>,
}

/// Whether a request is one [`classify`] looks at further: a POST or PATCH with an
/// `Idempotency-Key`. Every other request passes untouched.
pub(crate) fn carries_key<B>(req: &Request<B>) -> bool {
    matches!(*req.method(), Method::POST | Method::PATCH) && req.headers().contains_key(IDEMPOTENCY_KEY)
}

/// Sorts a request out by its `Idempotency-Key`.
pub(crate) fn classify(config: &Config, req: Request<Body>) -> Classified {
    if !carries_key(&req) {
        return Classified::Pass(req);
    }
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY).iter();
    let Some(first) = values.next() else {
        return Classified::Pass(req);
    };
    if values.next().is_some() || !is_valid_key(first.as_bytes()) {
        let detail = "The Idempotency-Key header must appear once, with 1 to 255 visible ASCII characters.";
        return Classified::Reject(ApiError::new(Code::BadRequest).detail(detail).into_response());
    }
    // Checked above: visible ASCII only.
    let key = String::from_utf8_lossy(first.as_bytes()).into_owned();
    let (parts, body) = req.into_parts();
    let Some(scope) = (config.scope_fn)(&parts) else {
        tracing::debug!("no idempotency scope for this request: running it without idempotency");
        return Classified::Pass(Request::from_parts(parts, body));
    };
    // Length-prefixed so that no scope and key can spell another pair's store key.
    let store_key = format!("{}:{scope}:{key}", scope.len());
    Classified::Keyed(Keyed { parts, body, store_key })
}

async fn run<F, Fut, E>(config: &Arc<Config>, mut keyed: Keyed, next: F) -> Result<Response, E>
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: Future<Output = Result<Response, E>>,
{
    let prefetched = keyed.parts.extensions.remove::<Prefetched>().filter(|p| p.store_key == keyed.store_key);
    let known = prefetched.as_ref().map(|p| p.fingerprint);
    let Read { parts, bytes, store_key, fingerprint } = match keyed.read(config, known).await {
        Ok(read) => read,
        Err(res) => return Ok(res),
    };
    let begin = match prefetched {
        Some(p) => {
            p.claimed.store(true, Ordering::Release);
            p.begin
        }
        None => match config.store.begin(&store_key, &fingerprint, config.lock_ttl).await {
            Ok(b) => b,
            Err(e) => {
                if e.kind() == StoreErrorKind::Unavailable {
                    release_unknown(config, store_key);
                }
                return Ok(ApiError::from(e).into_response());
            }
        },
    };
    let started = match begin {
        Begin::Started => true,
        Begin::Completed(stored) => return Ok(replay(stored)),
        Begin::InFlight => false,
        Begin::Mismatch => return Ok(ApiError::new(Code::IdempotencyKeyReused).into_response()),
    };
    // From here on, when started, the lock is ours: the guard releases it however this future
    // ends, unless the response is stored.
    let mut guard = ReleaseGuard { config: config.clone(), key: started.then(|| store_key.clone()) };

    // An outcome recorded with its side effect wins over the lock: the request ran and
    // committed, whatever the idempotency store says (it lost the record, or never got it).
    if let Some(outcomes) = &config.outcomes {
        match outcomes.find(&store_key).await {
            Ok(Some(outcome)) if outcome.fingerprint == fingerprint => {
                // Stored again, so that the next retry is answered by the store alone.
                guard.disarm();
                store_in_background(config, store_key, fingerprint, outcome.response.clone());
                return Ok(replay(outcome.response));
            }
            Ok(Some(_)) => {
                guard.release_now().await;
                return Ok(ApiError::new(Code::IdempotencyKeyReused).into_response());
            }
            Ok(None) => {}
            Err(e) => {
                // Not knowing whether it ran, it must not run: a 503 to retry later.
                guard.release_now().await;
                return Ok(ApiError::from(e).into_response());
            }
        }
    }
    if !started {
        // Running elsewhere, or its outcome is not known yet (its instance died, or could not
        // store the response): never run a second time, say to retry.
        let mut err = ApiError::new(Code::IdempotencyKeyInUse)
            .detail("A request with this Idempotency-Key is in progress, or its outcome is being recovered; retry later.");
        err.problem_mut().retry_after = Some(1);
        return Ok(err.into_response());
    }

    let mut parts = parts;
    parts.extensions.insert(IdempotencyRecord { key: store_key.clone(), fingerprint, ttl: config.ttl });
    let request = Request::from_parts(parts, Body::from(bytes));
    let request_id = crate::request_id::current(&request).and_then(|v| v.to_str().ok().map(str::to_owned));
    let res = match next(request).await {
        Ok(res) => res,
        Err(e) => {
            guard.release_now().await;
            return Err(e);
        }
    };
    if crate::error::is_pending(&res) {
        warn_not_rendered();
    }
    if res.status().is_server_error() {
        guard.release_now().await;
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            guard.release_now().await;
            return Ok(ApiError::new(Code::InternalError)
                .cause(format_args!("reading the response to store: {e}"))
                .into_response());
        }
    };
    let mut headers: Vec<(String, String)> = STORED_HEADERS
        .iter()
        .flat_map(|name| parts.headers.get_all(name).iter().map(move |v| (name, v)))
        .filter_map(|(name, v)| Some((name.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    // Replayed with the record only: the first response is the original request's own.
    if let Some(id) = request_id {
        headers.push((ORIGINAL_REQUEST.as_str().to_owned(), id));
    }
    let stored_body = parts.extensions.get::<ReplayBody>().map_or_else(|| body.clone(), |r| r.0.clone());
    let stored = StoredResponse { status: parts.status.as_u16(), headers, body: stored_body };
    let key = guard.key.clone().unwrap_or_default();
    // The operation happened. From here the lock stays, stored or not, even if the client
    // goes away: released, it would let a retry run the operation a second time at once;
    // held, retries get `idempotency_key_in_use` until it expires.
    guard.disarm();
    // The record is stored before the client hears of it, so that a response the client got
    // is always the one a retry replays. One try: while the store is unavailable the request
    // does not wait for it (it would run into its timeout); the lock stays, retries are told
    // the outcome is being recovered, and a task keeps trying in the background.
    match config.store.complete(&key, &fingerprint, stored.clone(), config.ttl).await {
        Ok(()) => {}
        Err(e) if e.kind() == StoreErrorKind::Unavailable => {
            tracing::warn!(error = %e, "could not store an idempotent response yet; trying again in the background");
            store_in_background(config, key, fingerprint, stored);
        }
        Err(e) => {
            tracing::error!(error = %e, "could not store an idempotent response; its lock expires by itself");
        }
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Waits between tries to store a completion in the background while the store is
/// unavailable; then every 2 s until the lock would have expired.
const COMPLETE_RETRY_DELAYS_MS: [u64; 6] = [50, 100, 200, 400, 800, 1600];

/// Stores a completion from a task of its own, trying again while the store is unavailable,
/// for as long as the lock lives (a completion stored later still tells retries the truth).
fn store_in_background(config: &Arc<Config>, key: String, fingerprint: [u8; 32], stored: StoredResponse) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
    let config = config.clone();
    handle.spawn(async move {
        let give_up = tokio::time::Instant::now() + config.lock_ttl;
        let mut delays = COMPLETE_RETRY_DELAYS_MS.iter().copied().chain(std::iter::repeat(2000));
        loop {
            match config.store.complete(&key, &fingerprint, stored.clone(), config.ttl).await {
                Err(e) if e.kind() == StoreErrorKind::Unavailable => {
                    let ms = delays.next().unwrap_or(2000);
                    if tokio::time::Instant::now() + Duration::from_millis(ms) > give_up {
                        tracing::error!(error = %e, "could not store an idempotent response; its lock expires by itself");
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not store an idempotent response; its lock expires by itself");
                    return;
                }
                Ok(()) => return,
            }
        }
    });
}

/// After a `begin` whose answer was lost (the store stalled or died after running it, before
/// its reply arrived), the request is refused, but the store may hold its lock: released from a
/// task of its own once the store answers again, for as long as the lock would live, so that
/// the key is not left locked after its request was refused. (`release` drops only a lock,
/// never a completion; a retry that took the key meanwhile may lose its lock, which the
/// outcomes recorded with the writes make harmless, see [`IdempotencyLayer::outcomes`].)
pub(crate) fn release_unknown(config: &Arc<Config>, key: String) {
    // Twice: the lost `begin` may still be finishing on the store (a database resumed after a
    // pause finishes the statements it was running) when the first release runs.
    release_in_background(config, key, 2);
}

/// Releases a lock `times` times from a task of its own, trying again while the store is
/// unavailable, for as long as the lock would live.
fn release_in_background(config: &Arc<Config>, key: String, times: u32) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no runtime to release an idempotency lock; it expires by itself");
        return;
    };
    let config = config.clone();
    handle.spawn(async move {
        let give_up = tokio::time::Instant::now() + config.lock_ttl;
        let mut released = 0;
        while released < times {
            match config.store.release(&key).await {
                Err(e) if e.kind() == StoreErrorKind::Unavailable => {}
                _ => released += 1,
            }
            if released == times || tokio::time::Instant::now() + Duration::from_millis(500) > give_up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(if released == 0 { 200 } else { 500 })).await;
        }
    });
}

/// SHA-256 over method, path and query, and body: what makes a retry "the same request".
fn fingerprint(parts: &Parts, body: &[u8]) -> [u8; 32] {
    let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |o| &o.0);
    let path = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str().as_bytes());
    hash.update([0]);
    hash.update(path.as_bytes());
    hash.update([0]);
    hash.update(body);
    hash.finalize().into()
}

fn replay(stored: StoredResponse) -> Response {
    let mut res = Response::new(Body::from(stored.body));
    *res.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            headers.append(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    // A stored error was rendered when it happened: the outer ProblemLayer must keep it as is.
    res.extensions_mut().insert(Rendered);
    res
}

fn warn_not_rendered() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "IdempotencyLayer got an ApiError that no ProblemLayer rendered: put a ProblemLayer \
             inside it, or errors are not stored for replay"
        );
    }
}

/// Releases an idempotency lock when dropped armed: a handler that panicked or a client that
/// went away must not leave the key locked until the lock expires. A release the store cannot
/// take now (it is unavailable) is tried again in the background: a request that was refused
/// leaves no lock behind once the store is back.
struct ReleaseGuard {
    config: Arc<Config>,
    key: Option<String>,
}

impl ReleaseGuard {
    fn disarm(&mut self) {
        self.key = None;
    }

    async fn release_now(&mut self) {
        if let Some(key) = self.key.take()
            && let Err(e) = self.config.store.release(&key).await
        {
            if e.kind() == StoreErrorKind::Unavailable {
                release_in_background(&self.config, key, 1);
            } else {
                tracing::warn!(error = %e, "could not release an idempotency lock; it expires by itself");
            }
        }
    }
}

impl Drop for ReleaseGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            release_in_background(&self.config, key, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii() {
        assert!(is_valid_key(b"a"));
        assert!(is_valid_key(b"550e8400-e29b-41d4-a716-446655440000"));
        assert!(is_valid_key(&[b'k'; MAX_KEY_LEN]));
        assert!(!is_valid_key(b""));
        assert!(!is_valid_key(&[b'k'; MAX_KEY_LEN + 1]));
        assert!(!is_valid_key(b"has space"));
        assert!(!is_valid_key(b"tab\t"));
        assert!(!is_valid_key("clé".as_bytes()));
    }

    #[test]
    fn fingerprint_covers_method_path_query_and_body() {
        let parts = |method: &str, uri: &str| {
            let (parts, ()) = Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .unwrap_or_else(|_| unreachable!("valid request"))
                .into_parts();
            parts
        };
        let base = fingerprint(&parts("POST", "/v1/a?x=1"), b"{}");
        assert_eq!(base, fingerprint(&parts("POST", "/v1/a?x=1"), b"{}"));
        assert_ne!(base, fingerprint(&parts("PATCH", "/v1/a?x=1"), b"{}"));
        assert_ne!(base, fingerprint(&parts("POST", "/v1/a?x=2"), b"{}"));
        assert_ne!(base, fingerprint(&parts("POST", "/v1/b?x=1"), b"{}"));
        assert_ne!(base, fingerprint(&parts("POST", "/v1/a?x=1"), b"{ }"));
    }

    #[test]
    fn scope_is_the_credential_hash_or_the_address() {
        let (mut parts, ()) = Request::new(()).into_parts();
        assert_eq!(default_scope(&parts), None);
        parts.extensions.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
        assert_eq!(default_scope(&parts).as_deref(), Some("ip:10.0.0.1"));
        parts.headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
        let scope = default_scope(&parts).unwrap_or_default();
        assert!(scope.starts_with("auth:") && scope.len() == 5 + 64 && !scope.contains("secret"));
    }
}
