//! Rate limiting: [`RateLimitLayer`] admits `limit` requests per `period` for each key (by
//! default the client address; usually the organisation), with GCRA.
//!
//! Every response of a limited request, admitted or not, carries the limit's state twice: the
//! widespread `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix
//! seconds at which the limit is whole again), and the IETF structured fields of
//! draft-ietf-httpapi-ratelimit-headers-09:
//!
//! ```text
//! RateLimit: "default";r=4;t=12
//! RateLimit-Policy: "default";q=5;w=60
//! ```
//!
//! A refused request is answered with `rate_limit_exceeded` (429) and `Retry-After`.
//!
//! # The algorithm
//!
//! GCRA (the generic cell rate algorithm) keeps one timestamp per key, the *theoretical
//! arrival time* (TAT): the time at which the key's allowance would be whole again. Each
//! admitted request pushes it forward by the emission interval `period / limit`; a request is
//! refused when that would put the TAT more than `period` ahead of now. So a fresh key admits a
//! burst of `limit` requests, after which one more is admitted every `period / limit`:
//!
//! * over any interval of length `d`, at most `limit + floor(d / (period / limit))` requests
//!   are admitted, so exactly `limit` in a burst shorter than the emission interval, and never
//!   more than `2 * limit` in one `period` (a fixed window allows the same at its boundary, a
//!   sliding log needs `limit` timestamps per key);
//! * one decision is one read and one write of one number, which a shared store does
//!   atomically (a Redis script, a SQL upsert), so several instances admit exactly what one
//!   would.
//!
//! [`gcra`] is the pure decision; stores call it (or its equivalent in a script) under their
//! own atomicity. It lives in `rebuff-store`, beside the stores, and is re-exported here.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use tower::{Layer, Service};

use crate::idempotency::{self, Classified, IdempotencyLayer, Prefetched};
use crate::store::{Admission, Begin, BeginRequest, Decision, Quota, RateLimitStore, StoreError};
use crate::{ApiError, Code};

pub use rebuff_store::ratelimit::{gcra, now_nanos};

/// `X-RateLimit-Limit`: requests allowed per period.
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: requests still admitted now.
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: Unix seconds at which the limit is whole again.
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-09): `"policy";r=remaining;t=seconds`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-09): `"policy";q=limit;w=seconds`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Whole seconds, rounded up: a client that waits this long is admitted.
fn ceil_secs(d: Duration) -> u64 {
    // Saturating: a period near `Duration::MAX` must not overflow (found by fuzzing).
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// Writes the rate-limit fields of `decision`, taken at `now_nanos` under `quota`, into
/// `headers`.
pub fn write_headers(headers: &mut HeaderMap, decision: &Decision, quota: Quota, now_nanos: u128) {
    write_fields(headers, decision, now_nanos, &QuotaFields::new(decision.limit, quota.period));
}

/// The two rate-limit fields that depend on the quota alone (`X-RateLimit-Limit` and
/// `RateLimit-Policy`), made once per layer rather than per response.
#[derive(Clone)]
struct QuotaFields {
    limit: u32,
    window_secs: u64,
    x_limit: HeaderValue,
    policy: HeaderValue,
}

impl QuotaFields {
    fn new(limit: u32, period: Duration) -> Self {
        let window_secs = ceil_secs(period);
        let mut window = itoa::Buffer::new();
        let policy = [
            b"\"default\";q=",
            itoa::Buffer::new().format(limit).as_bytes(),
            b";w=",
            window.format(window_secs).as_bytes(),
        ]
        .concat();
        QuotaFields {
            limit,
            window_secs,
            x_limit: HeaderValue::from(limit),
            // Visible ASCII: always a valid header value.
            policy: HeaderValue::from_maybe_shared(bytes::Bytes::from(policy))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        }
    }
}

/// [`write_headers`], with the quota's own fields made already.
fn write_fields(headers: &mut HeaderMap, decision: &Decision, now_nanos: u128, quota: &QuotaFields) {
    let reset_secs = ceil_secs(decision.reset_after);
    let reset_at = now_nanos.saturating_add(decision.reset_after.as_nanos()).div_ceil(NANOS_PER_SEC);
    let reset_at = u64::try_from(reset_at).unwrap_or(u64::MAX);
    // The three values of this decision are written with itoa (no `fmt` machinery) into one
    // buffer on the stack, moved into one allocation that the header values then share.
    let (mut a, mut b, mut c) = (itoa::Buffer::new(), itoa::Buffer::new(), itoa::Buffer::new());
    let remaining = a.format(decision.remaining).as_bytes();
    let mut text = [0u8; 96];
    let mut len = 0;
    let mut ranges = [0..0, 0..0, 0..0];
    let parts: [&[&[u8]]; 3] = [
        &[remaining],
        &[b.format(reset_at).as_bytes()],
        &[b"\"default\";r=", remaining, b";t=", c.format(reset_secs).as_bytes()],
    ];
    for (range, parts) in ranges.iter_mut().zip(parts) {
        let start = len;
        for part in parts {
            // At most 10 + 20 + 45 bytes: the buffer is large enough.
            if let Some(slot) = text.get_mut(len..len + part.len()) {
                slot.copy_from_slice(part);
                len += part.len();
            }
        }
        *range = start..len;
    }
    let text = bytes::Bytes::from_owner(text);
    // Digits and `"default";r=;t=` are visible ASCII: always a valid header value.
    let value = |range: std::ops::Range<usize>| HeaderValue::from_maybe_shared(text.slice(range));
    let [remaining, reset, ratelimit] = ranges;
    let fields = [
        (X_RATELIMIT_REMAINING, value(remaining)),
        (X_RATELIMIT_RESET, value(reset)),
        (RATELIMIT, value(ratelimit)),
    ];
    let other;
    let quota = if decision.limit == quota.limit {
        quota
    } else {
        other = QuotaFields::new(decision.limit, Duration::from_secs(quota.window_secs));
        &other
    };
    // Room for the five at once, and for the three that the layers outside add to nearly
    // every response (`Content-Length`, `X-Request-Id`, `X-Content-Type-Options`): the map
    // grows once here, while it holds one or two entries, rather than again on the way out
    // with eight to move.
    headers.reserve(5 + 3);
    headers.insert(X_RATELIMIT_LIMIT, quota.x_limit.clone());
    for (name, value) in fields {
        if let Ok(value) = value {
            headers.insert(name, value);
        }
    }
    headers.insert(RATELIMIT_POLICY, quota.policy.clone());
}

/// Extracts the key a request is limited under; `None` leaves it unlimited.
pub type KeyFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// The default key: the client address, as [`client_ip`](crate::client_ip::client_ip) finds
/// it (behind trusted proxies, the address they forward; else axum's
/// `ConnectInfo<SocketAddr>`, present when the server is run with
/// `into_make_service_with_connect_info::<SocketAddr>()`).
pub fn client_ip_key(parts: &Parts) -> Option<String> {
    crate::client_ip::client_ip(&parts.extensions).map(|ip| format!("ip:{ip}"))
}

/// Where a request's limit key comes from.
#[derive(Clone)]
enum KeySource {
    /// A function of the request.
    Fn(KeyFn),
    /// The organisation of the authenticated [`Principal`](crate::Principal), as `org:<id>`.
    Organisation,
}

/// The longest key kept on the stack; a longer one is allocated.
const INLINE_KEY: usize = 64;

/// A request's limit key, written on the stack when it is short (as organisation keys are),
/// so that computing it allocates nothing. On `arrayvec`'s `ArrayString`, which is read back
/// as a `str` without checking its UTF-8 again (a byte array would be, on every request).
pub(crate) enum Key {
    Inline(arrayvec::ArrayString<INLINE_KEY>),
    Owned(String),
}

impl Key {
    /// `prefix` followed by `id`.
    fn concat(prefix: &str, id: &str) -> Self {
        let mut key = arrayvec::ArrayString::new();
        match key.try_push_str(prefix).and_then(|()| key.try_push_str(id)) {
            Ok(()) => Key::Inline(key),
            Err(_) => Key::Owned([prefix, id].concat()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Key::Inline(key) => key,
            Key::Owned(key) => key,
        }
    }
}

/// Limits requests per key with GCRA over a [`RateLimitStore`]; see the [module
/// documentation](self).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rebuff_axum::ratelimit::RateLimitLayer;
/// use rebuff_axum::store::{Quota, memory::MemoryStore};
///
/// let quota = Quota { limit: 60, period: Duration::from_secs(60) };
/// let layer = RateLimitLayer::new(Arc::new(MemoryStore::new()), quota)
///     // Per organisation once authenticated (the auth layer puts its principal in the
///     // request's extensions); here, a header for illustration.
///     .key_fn(|parts| parts.headers.get("x-org").and_then(|v| v.to_str().ok()).map(|o| format!("org:{o}")));
/// # let _ = layer;
/// ```
///
/// Two layers sharing one store must give their keys distinct prefixes. Behind an
/// [`AuthLayer`](crate::AuthLayer), [`per_organisation`](RateLimitLayer::per_organisation)
/// keys each request by its caller's organisation without building a string for it.
#[derive(Clone)]
pub struct RateLimitLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    store: Arc<dyn RateLimitStore>,
    quota: Quota,
    key: KeySource,
    fail_open: bool,
    /// The idempotency layer inside, when it shares this layer's store (see
    /// [`RateLimitLayer::idempotency`]).
    idempotency: Option<Arc<idempotency::Config>>,
    /// Whether the store was failing at the last decision: the log says so on changes only.
    failing: Arc<AtomicBool>,
    /// The fields of `quota` that every response repeats.
    fields: QuotaFields,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("quota", &self.config.quota)
            .field("fail_open", &self.config.fail_open)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// The codes this layer can raise (503 and 500 when its store fails), for
    /// [`ProblemLayer::builder`](crate::ProblemLayer::builder). With
    /// [`RateLimitLayer::idempotency`] it also answers for the idempotency layer
    /// ([`IdempotencyLayer::CODES`](crate::idempotency::IdempotencyLayer::CODES)).
    pub const CODES: &'static [crate::Code] =
        &[crate::Code::RateLimitExceeded, crate::Code::ServiceUnavailable, crate::Code::DatabaseError];

    /// Admits `quota.limit` requests per `quota.period` per key, keeping state in `store`.
    pub fn new(store: Arc<dyn RateLimitStore>, quota: Quota) -> Self {
        RateLimitLayer {
            config: Arc::new(Config {
                store,
                quota,
                key: KeySource::Fn(Arc::new(client_ip_key)),
                fail_open: false,
                idempotency: None,
                failing: Arc::default(),
                fields: QuotaFields::new(quota.limit, quota.period),
            }),
        }
    }

    /// Sets the key a request is limited under, e.g. its organisation; requests for which it
    /// returns `None` are not limited. The default is [`client_ip_key`].
    #[must_use]
    pub fn key_fn<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).key = KeySource::Fn(Arc::new(f));
        self
    }

    /// Limits each request under its caller's organisation: the key is `org:` followed by the
    /// `org_id` of the [`Principal`](crate::Principal) an [`AuthLayer`](crate::AuthLayer)
    /// outside this layer put in the request (requests without one are not limited). The same
    /// keys as `.key_fn(|parts| parts.extensions.get::<Principal>().map(|p| format!("org:{}",
    /// p.org_id)))`, written on the stack instead of allocated.
    #[must_use]
    pub fn per_organisation(mut self) -> Self {
        Arc::make_mut(&mut self.config).key = KeySource::Organisation;
        self
    }

    /// When the store fails, admit requests (without rate-limit headers) instead of answering
    /// the masked store error. The change of state is logged once, not per request.
    #[must_use]
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        Arc::make_mut(&mut self.config).fail_open = fail_open;
        self
    }

    /// Decides the limit and looks up the `Idempotency-Key` of a request together, in one
    /// store operation, for the `idempotency` layer placed inside this one.
    ///
    /// It takes effect when both layers keep their state in the very same store object and
    /// the store implements [`RateLimitStore::check_and_begin`] (Redis does it in one
    /// script: one round trip instead of two); otherwise nothing changes. For a POST or PATCH with a key, this layer then reads the body (up to the
    /// idempotency layer's limit) before deciding, and the idempotency layer takes over what
    /// began instead of asking the store again. A lock begun for an idempotency layer that
    /// turns out not to be inside is released, and a warning logged.
    #[must_use]
    pub fn idempotency(mut self, layer: &IdempotencyLayer) -> Self {
        let idem = layer.config();
        // The same allocation behind both trait objects: one store, so one atomic operation
        // can cover both.
        let same = std::ptr::addr_eq(Arc::as_ptr(&self.config.store), Arc::as_ptr(&idem.store));
        Arc::make_mut(&mut self.config).idempotency = same.then(|| idem.clone());
        self
    }

    /// The quota.
    pub fn quota(&self) -> Quota {
        self.config.quota
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit { inner, config: self.config.clone() }
    }
}

/// The service of [`RateLimitLayer`].
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("quota", &self.config.quota)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for RateLimit<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let Some(key) = self.config.key(&mut req) else {
            return Box::pin(self.inner.call(req));
        };
        // The service that was polled ready goes into the future; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move { config.limit(&key, req, |req| inner.call(req)).await })
    }
}

impl RateLimitLayer {
    /// The configuration, for the [`GuardLayer`](crate::guard::GuardLayer) that limits with it.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

impl Config {
    /// The key `req` is limited under; `None` leaves it unlimited.
    pub(crate) fn key(&self, req: &mut Request<Body>) -> Option<Key> {
        match &self.key {
            KeySource::Organisation => {
                req.extensions().get::<crate::Principal>().map(|p| Key::concat("org:", &p.org_id))
            }
            KeySource::Fn(key_fn) => {
                let (parts, body) = std::mem::take(req).into_parts();
                let key = key_fn(&parts).map(Key::Owned);
                *req = Request::from_parts(parts, body);
                key
            }
        }
    }

    /// Decides the limit of `req` under `key`, runs it through `next` when admitted, and writes
    /// the limit's headers on the response. What [`RateLimit`] and the
    /// [`Guard`](crate::guard::Guard) run for each limited request.
    #[allow(clippy::manual_async_fn, reason = "an async fn would hold a second copy of the request")]
    pub(crate) fn limit<'a, F, Fut, E>(
        &'a self,
        key: &'a Key,
        req: Request<Body>,
        next: F,
    ) -> impl Future<Output = Result<Response, E>> + 'a
    where
        F: FnOnce(Request<Body>) -> Fut + 'a,
        Fut: Future<Output = Result<Response, E>> + 'a,
        E: 'a,
    {
        // An async block rather than an `async fn`, and the request kept where it was captured
        // until it runs: an `async fn` would hold a second copy of it.
        async move {
            let key = key.as_str();
            let now = now_nanos();
            match &self.idempotency {
                // Boxed: its future is large, and most requests carry no key.
                Some(idem) if idempotency::carries_key(&req) => {
                    let (req, decided) = Box::pin(decide_with_idempotency(self, idem, key, now, req)).await;
                    respond(self, next, req, decided, now).await
                }
                _ => {
                    let decided = plain(self, key, now).await;
                    respond(self, next, Ok(req), decided, now).await
                }
            }
        }
    }

    /// The decision for `req` under `key` when it needs no waiting: the store answers at once
    /// ([`RateLimitStore::check_now`]: the memory store) and the request carries no
    /// `Idempotency-Key` to begin in the same operation. The
    /// [`Guard`](crate::guard::Guard) hands it to [`respond_decided`](Self::respond_decided),
    /// and goes through [`limit`](Self::limit) only when it is `None`.
    pub(crate) fn decide_now(&self, key: &Key, req: &Request<Body>) -> Option<(Decided, u128)> {
        if self.idempotency.is_some() && idempotency::carries_key(req) {
            return None;
        }
        let now = now_nanos();
        let decided = self.store.check_now(key.as_str(), self.quota, now)?;
        Some((decided.map(|d| (d, None)), now))
    }

    /// What [`limit`](Self::limit) does once it has decided: runs `req` through `next` when
    /// admitted, and writes the limit's headers on the response.
    pub(crate) fn respond_decided<'a, F, Fut, E>(
        &'a self,
        req: Request<Body>,
        next: F,
        decided: (Decided, u128),
    ) -> impl Future<Output = Result<Response, E>> + 'a
    where
        F: FnOnce(Request<Body>) -> Fut,
        Fut: Future<Output = Result<Response, E>> + 'a,
        E: 'a,
    {
        let (decided, now) = decided;
        respond(self, next, Ok(req), decided, now)
    }
}

/// A decision, and what began for the idempotency layer when it was made together with one.
pub(crate) type Decided = Result<(Decision, Option<Prefetched>), StoreError>;

/// A decision alone.
async fn plain(config: &Config, key: &str, now: u128) -> Decided {
    let decided = match config.store.check_now(key, config.quota, now) {
        Some(decided) => decided,
        None => config.store.check(key, config.quota, now).await,
    };
    decided.map(|d| (d, None))
}

/// For a request carrying an `Idempotency-Key`, decides the limit and begins the idempotency
/// record in one store operation, and leaves what began for the idempotency layer inside.
/// Other requests (and stores without the operation) get a plain decision.
///
/// The request comes back with its body read into memory when it had a key; a body the
/// idempotency layer would refuse (too large, unreadable) is answered here, as it would be
/// there, before anything is decided.
async fn decide_with_idempotency(
    config: &Config,
    idem: &Arc<idempotency::Config>,
    key: &str,
    now: u128,
    req: Request<Body>,
) -> (Result<Request<Body>, Response>, Decided) {
    let read = match idempotency::classify(idem, req) {
        Classified::Keyed(keyed) => keyed.read(idem, None).await,
        Classified::Pass(req) => return (Ok(req), plain(config, key, now).await),
        // Malformed keys are the idempotency layer's to answer, after the limit.
        Classified::Reject(res) => Err(res),
    };
    let read = match read {
        Ok(read) => read,
        // So is a body it would refuse.
        Err(res) => return (Err(res), plain(config, key, now).await),
    };
    let begin =
        BeginRequest { key: &read.store_key, fingerprint: &read.fingerprint, lock_ttl: idem.lock_ttl };
    let mut combined = false;
    let decided = match config.store.check_and_begin(key, config.quota, now, begin) {
        Some(both) => {
            combined = true;
            both.await
        }
        .map(|Admission { decision, begin }| {
            let prefetched = begin.map(|begin| Prefetched {
                store_key: read.store_key.clone(),
                fingerprint: read.fingerprint,
                begin,
                claimed: Arc::new(AtomicBool::new(false)),
            });
            (decision, prefetched)
        }),
        None => plain(config, key, now).await,
    };
    // The combined operation's answer was lost: the lock may have been taken for a request
    // about to be refused. (Failing open, the idempotency layer begins it again itself.)
    if let Err(e) = &decided
        && combined
        && e.kind() == crate::store::StoreErrorKind::Unavailable
        && !config.fail_open
    {
        idempotency::release_unknown(idem, read.store_key.clone());
    }
    let mut parts = read.parts;
    if let Ok((_, Some(prefetched))) = &decided {
        parts.extensions.insert(prefetched.clone());
    }
    (Ok(Request::from_parts(parts, Body::from(read.bytes))), decided)
}

/// Runs or refuses the request by the decision, and writes the limit's headers. A request
/// already answered (`Err`) gets that answer when admitted.
///
/// Not an `async fn`: the request goes to `next` (or is answered) when this is called, so the
/// future returned holds the next step's future and the decision, not the request as well.
fn respond<'a, F, Fut, E>(
    config: &'a Config,
    next: F,
    req: Result<Request<Body>, Response>,
    decided: Decided,
    now: u128,
) -> impl Future<Output = Result<Response, E>> + 'a
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: Future<Output = Result<Response, E>> + 'a,
    E: 'a,
{
    /// What happens to the request: it runs, or it is answered.
    enum Step<Fut> {
        Run(Fut),
        Answer(Response),
    }
    let run = |req: Result<Request<Body>, Response>| match req {
        Ok(req) => Step::Run(next(req)),
        Err(res) => Step::Answer(res),
    };
    let answer = Step::Answer;
    let (step, decided) = match decided {
        Ok(d) => {
            // A load first: the shared flag is written only when the state changes.
            if config.failing.load(Ordering::Relaxed) && config.failing.swap(false, Ordering::Relaxed) {
                tracing::info!("rate-limit store is answering again");
            }
            let (decision, _) = &d;
            let step = if decision.allowed {
                run(req)
            } else {
                let secs = decision.retry_after.map_or(1, ceil_secs).max(1);
                let mut err = ApiError::new(Code::RateLimitExceeded);
                err.problem_mut().retry_after = Some(secs);
                answer(err.into_response())
            };
            (step, Some(d))
        }
        Err(e) => {
            if !config.failing.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    error = %e,
                    fail_open = config.fail_open,
                    "rate-limit store failed; {}",
                    if config.fail_open { "admitting requests unlimited" } else { "refusing requests" }
                );
            }
            // Unlimited, without the limit's headers, or refused.
            let step = if config.fail_open { run(req) } else { answer(ApiError::from(e).into_response()) };
            (step, None)
        }
    };
    async move {
        let mut res = match step {
            Step::Run(next) => next.await?,
            Step::Answer(res) => res,
        };
        if let Some((decision, prefetched)) = decided {
            if let Some(p) = prefetched
                && !p.claimed.load(Ordering::Acquire)
            {
                unclaimed(config, p);
            }
            write_fields(res.headers_mut(), &decision, now, &config.fields);
        }
        Ok(res)
    }
}

/// A record begun for an idempotency layer that never took it over: the layer is missing
/// from inside this one (or the request never reached it). A lock is released rather than
/// left to block retries until it expires.
fn unclaimed(config: &Config, p: Prefetched) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "RateLimitLayer began an idempotency record that no IdempotencyLayer took over: \
             configure `idempotency` only with that IdempotencyLayer inside this layer"
        );
    }
    if p.begin == Begin::Started
        && let Some(idem) = &config.idempotency
    {
        let store = idem.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.release(&p.store_key).await {
                tracing::warn!(error = %e, "could not release an idempotency lock; it expires by itself");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u128 = NANOS_PER_SEC;

    fn quota(limit: u32, secs: u64) -> Quota {
        Quota { limit, period: Duration::from_secs(secs) }
    }

    struct DownStore;

    impl RateLimitStore for DownStore {
        fn check<'a>(
            &'a self,
            _key: &'a str,
            _quota: Quota,
            _now_nanos: u128,
        ) -> crate::store::BoxFuture<'a, Result<Decision, crate::store::StoreError>> {
            Box::pin(async { Err(crate::store::StoreError::unavailable("connection refused")) })
        }
    }

    async fn call_with_down_store(fail_open: bool) -> Response {
        use tower::ServiceExt;
        let layer = RateLimitLayer::new(Arc::new(DownStore), quota(5, 60))
            .key_fn(|_| Some("org:1".to_owned()))
            .fail_open(fail_open);
        let svc = layer.layer(tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>("ok".into_response())
        }));
        match svc.oneshot(Request::new(Body::empty())).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn a_failing_store_refuses_unless_failing_open() {
        let res = call_with_down_store(false).await;
        let pending = res.extensions().get::<crate::error::Pending>().map(|p| p.0.code().to_owned());
        assert_eq!(pending.as_deref(), Some("service_unavailable"));
        assert!(res.headers().get(X_RATELIMIT_LIMIT).is_none());
        let res = call_with_down_store(true).await;
        assert_eq!(res.status(), 200);
        assert!(!crate::error::is_pending(&res));
        assert!(res.headers().get(X_RATELIMIT_LIMIT).is_none());
    }

    #[test]
    fn per_organisation_keys_are_those_of_the_key_fn_it_replaces() {
        let principal = |org: &str| crate::Principal {
            org_id: org.into(),
            subject: crate::Subject::Key { id: "key_1".into(), live: false },
            scopes: Vec::new().into(),
        };
        let layer = |per_organisation: bool| {
            let layer = RateLimitLayer::new(Arc::new(crate::store::memory::MemoryStore::new()), quota(5, 60));
            if per_organisation {
                layer.per_organisation()
            } else {
                layer.key_fn(|parts| {
                    parts.extensions.get::<crate::Principal>().map(|p| format!("org:{}", p.org_id))
                })
            }
        };
        let long = "o".repeat(2 * INLINE_KEY);
        for org in [Some("org_1"), Some(""), Some(long.as_str()), None] {
            let keys = [false, true].map(|per_organisation| {
                let mut req = Request::new(Body::empty());
                if let Some(org) = org {
                    req.extensions_mut().insert(principal(org));
                }
                layer(per_organisation).config().key(&mut req).map(|k| k.as_str().to_owned())
            });
            assert_eq!(keys[0], keys[1], "{org:?}");
            assert_eq!(keys[1], org.map(|o| format!("org:{o}")));
        }
    }

    #[test]
    fn headers_have_the_draft_syntax() {
        let q = quota(5, 60);
        let now = 1_708_425_048 * S;
        let (_, d) = gcra(None, now, q);
        let mut h = HeaderMap::new();
        write_headers(&mut h, &d, q, now);
        assert_eq!(h[X_RATELIMIT_LIMIT], "5");
        assert_eq!(h[X_RATELIMIT_REMAINING], "4");
        assert_eq!(h[X_RATELIMIT_RESET], "1708425060");
        assert_eq!(h[RATELIMIT], "\"default\";r=4;t=12");
        assert_eq!(h[RATELIMIT_POLICY], "\"default\";q=5;w=60");
    }
}
