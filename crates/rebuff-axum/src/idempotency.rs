//! Idempotency keys: [`IdempotencyLayer`] runs a `POST` (or `PATCH`) carrying an
//! `Idempotency-Key` once, and answers every retry with the stored first completion.
//!
//! For a request with a key, scoped to its caller (two callers never share a key):
//!
//! * no record: the request runs under a lock; its response, success or error, is stored for
//!   [`ttl`](IdempotencyLayer::ttl) (24 hours by default) unless it is a 5xx: a server error is
//!   not a completion, so a retry runs again;
//! * completed before with the same payload: the stored status, headers and body are replayed
//!   with `Idempotent-Replayed: true`;
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

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_LANGUAGE, CONTENT_TYPE, ETAG, LAST_MODIFIED, LINK, LOCATION};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use crate::render::Rendered;
use crate::store::{Begin, IdempotencyStore, StoredResponse};
use crate::{ApiError, Code};

/// `Idempotency-Key`: the client's key for one operation.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotent-Replayed: true` marks a replayed response.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Headers of a response that are stored and replayed with it. Others (request id, rate-limit
/// fields, dates) describe the exchange, not the result, and are set afresh on a replay.
const STORED_HEADERS: [HeaderName; 7] =
    [CONTENT_TYPE, CONTENT_LANGUAGE, LOCATION, ETAG, LAST_MODIFIED, LINK, HeaderName::from_static("allow")];

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
struct Config {
    store: Arc<dyn IdempotencyStore>,
    ttl: Duration,
    lock_ttl: Duration,
    max_body: usize,
    scope_fn: ScopeFn,
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

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotency<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Idempotency { inner, config: self.config.clone() }
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
        if !matches!(*req.method(), Method::POST | Method::PATCH) {
            return Box::pin(self.inner.call(req));
        }
        let mut values = req.headers().get_all(IDEMPOTENCY_KEY).iter();
        let Some(first) = values.next() else {
            return Box::pin(self.inner.call(req));
        };
        if values.next().is_some() || !is_valid_key(first.as_bytes()) {
            let detail =
                "The Idempotency-Key header must appear once, with 1 to 255 visible ASCII characters.";
            let err = ApiError::new(Code::BadRequest).detail(detail);
            return Box::pin(async move { Ok(err.into_response()) });
        }
        // Checked above: visible ASCII only.
        let key = String::from_utf8_lossy(first.as_bytes()).into_owned();
        let (parts, body) = req.into_parts();
        let Some(scope) = (self.config.scope_fn)(&parts) else {
            tracing::debug!("no idempotency scope for this request: running it without idempotency");
            return Box::pin(self.inner.call(Request::from_parts(parts, body)));
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(run(config, inner, parts, body, scope, key))
    }
}

async fn run<S>(
    config: Arc<Config>,
    mut inner: S,
    parts: Parts,
    body: Body,
    scope: String,
    key: String,
) -> Result<Response, S::Error>
where
    S: Service<Request<Body>, Response = Response>,
{
    let bytes = match crate::extract::read_body(&parts.headers, body, config.max_body).await {
        Ok(b) => b,
        Err(err) => return Ok(err.into_response()),
    };
    let fingerprint = fingerprint(&parts, &bytes);
    // Length-prefixed so that no scope and key can spell another pair's store key.
    let store_key = format!("{}:{scope}:{key}", scope.len());
    let begin = match config.store.begin(&store_key, &fingerprint, config.lock_ttl).await {
        Ok(b) => b,
        Err(e) => return Ok(ApiError::from(e).into_response()),
    };
    match begin {
        Begin::Started => {}
        Begin::Completed(stored) => return Ok(replay(stored)),
        Begin::InFlight => {
            let mut err = ApiError::new(Code::IdempotencyKeyInUse);
            err.problem_mut().retry_after = Some(1);
            return Ok(err.into_response());
        }
        Begin::Mismatch => return Ok(ApiError::new(Code::IdempotencyKeyReused).into_response()),
    }

    // From here on the lock is ours: the guard releases it however this future ends, unless
    // the response is stored.
    let mut guard = ReleaseGuard { store: config.store.clone(), key: Some(store_key) };
    let res = match inner.call(Request::from_parts(parts, Body::from(bytes))).await {
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
    let headers = STORED_HEADERS
        .iter()
        .flat_map(|name| parts.headers.get_all(name).iter().map(move |v| (name, v)))
        .filter_map(|(name, v)| Some((name.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let stored = StoredResponse { status: parts.status.as_u16(), headers, body: body.clone() };
    let key = guard.key.clone().unwrap_or_default();
    let completed = config.store.complete(&key, &fingerprint, stored, config.ttl).await;
    match completed {
        Ok(()) => guard.disarm(),
        Err(e) => {
            // The operation happened; only its record is lost. Free the key rather than leave
            // it locked until the lock expires.
            tracing::error!(error = %e, "could not store an idempotent response");
            guard.release_now().await;
        }
    }
    Ok(Response::from_parts(parts, Body::from(body)))
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
/// went away must not leave the key locked until the lock expires.
struct ReleaseGuard {
    store: Arc<dyn IdempotencyStore>,
    key: Option<String>,
}

impl ReleaseGuard {
    fn disarm(&mut self) {
        self.key = None;
    }

    async fn release_now(&mut self) {
        if let Some(key) = self.key.take()
            && let Err(e) = self.store.release(&key).await
        {
            tracing::warn!(error = %e, "could not release an idempotency lock; it expires by itself");
        }
    }
}

impl Drop for ReleaseGuard {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let store = self.store.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = store.release(&key).await {
                        tracing::warn!(error = %e, "could not release an idempotency lock; it expires by itself");
                    }
                });
            }
            Err(_) => tracing::warn!("no runtime to release an idempotency lock; it expires by itself"),
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
