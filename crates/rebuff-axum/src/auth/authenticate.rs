//! [`AuthLayer`]: API keys in `Authorization: Bearer`, or a session cookie with its CSRF
//! token; puts the [`Principal`] in the request extensions.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use tower::{Layer, Service};

use super::key::{self, ParsedKey};
use super::principal::{Principal, SESSION_SCOPES, Subject};
use super::throttle::{self, Throttle};
use crate::store::{KeyRecord, KeyStore, Quota, RateLimitStore, SessionStore};
use crate::{ApiError, Code};

/// The cookie that carries the session token.
pub const SESSION_COOKIE: &str = "rebuff_session";

/// The header that carries the CSRF token on unsafe methods of a session request.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// The challenge on every 401 (RFC 9110 §15.5.2 requires one).
const CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer realm=\"api\"");

/// The challenge when a key was presented but is not usable (RFC 6750 §3.1).
const CHALLENGE_INVALID_TOKEN: HeaderValue =
    HeaderValue::from_static("Bearer realm=\"api\", error=\"invalid_token\"");

/// Compared against when a key id is unknown, so that an unknown id costs the same comparison
/// as a known one. No SHA-256 output is known to be all zeroes.
const DUMMY_HASH: [u8; 32] = [0; 32];

/// Authenticates requests by API key or session cookie.
///
/// * `Authorization: Bearer <key>` (scheme in any case): the key must have the
///   [key format](super::key), match a stored key (compared in constant time), be neither
///   revoked nor expired, and the client address must be in the key's allow-list if it has
///   one. Codes: `api_key_malformed`, `api_key_invalid`, `api_key_revoked`,
///   `api_key_expired` (401), `ip_not_allowed` (403).
/// * Without `Authorization`, and with [`sessions`](AuthLayer::sessions) configured, a
///   [`SESSION_COOKIE`] cookie: the session must exist (`session_expired` otherwise), not be
///   expired (`session_expired`), belong to an enabled account (`account_disabled`), and on
///   every method that is not safe (anything but GET, HEAD, OPTIONS and TRACE) the request
///   must echo the session's CSRF token in [`CSRF_HEADER`] (`csrf_failed`).
/// * Neither: `api_key_missing`, or `authentication_required` when sessions are configured
///   (either credential would do).
///
/// The client address is [`client_ip`](crate::client_ip::client_ip)'s: what a
/// [`ClientIpLayer`](crate::client_ip::ClientIpLayer) found behind trusted proxies, else axum's
/// `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`). Without either the address is unknown
/// and keys with an allow-list are refused. Every 401 carries `WWW-Authenticate`.
///
/// On success the request gets a [`Principal`]; store failures answer a masked 503 or 500.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::get};
/// use rebuff_axum::auth::{AuthLayer, MemoryAuthStore, Principal};
///
/// let store = Arc::new(MemoryAuthStore::new());
/// let app: Router = Router::new()
///     .route("/v1/me", get(|p: Principal| async move { p.org_id.to_string() }))
///     .layer(AuthLayer::new(store.clone()).sessions(store));
/// ```
#[derive(Clone)]
pub struct AuthLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    keys: Arc<dyn KeyStore>,
    sessions: Option<Arc<dyn SessionStore>>,
    throttle: Option<Throttle>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer").field("sessions", &self.config.sessions.is_some()).finish_non_exhaustive()
    }
}

impl AuthLayer {
    /// The codes this layer can raise (401 and 403 for credentials; 429 once
    /// [`throttle_failures`](Self::throttle_failures) refuses an address; 503 and 500 when
    /// its store fails), for [`ProblemLayer::builder`](crate::ProblemLayer::builder).
    pub const CODES: &'static [crate::Code] = &[
        crate::Code::AuthenticationRequired,
        crate::Code::ApiKeyMissing,
        crate::Code::ApiKeyMalformed,
        crate::Code::ApiKeyInvalid,
        crate::Code::ApiKeyRevoked,
        crate::Code::ApiKeyExpired,
        crate::Code::SessionExpired,
        crate::Code::CsrfFailed,
        crate::Code::IpNotAllowed,
        crate::Code::AccountDisabled,
        crate::Code::RateLimitExceeded,
        crate::Code::ServiceUnavailable,
        crate::Code::DatabaseError,
    ];

    /// Authenticates API keys found in `keys`.
    pub fn new(keys: Arc<dyn KeyStore>) -> Self {
        AuthLayer { config: Arc::new(Config { keys, sessions: None, throttle: None }) }
    }

    /// Also accepts session cookies found in `sessions`.
    #[must_use]
    pub fn sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        Arc::make_mut(&mut self.config).sessions = Some(sessions);
        self
    }

    /// Limits failed credential checks per client address to `quota`, counted in `store`:
    /// past it, the address gets `rate_limit_exceeded` (429, with `Retry-After` and the
    /// rate-limit fields) and its requests are refused before any credential is looked at
    /// until the budget refills. Successful checks cost nothing, and the limit is per address,
    /// so a client elsewhere cannot lock a valid key out.
    #[must_use]
    pub fn throttle_failures(mut self, store: Arc<dyn RateLimitStore>, quota: Quota) -> Self {
        Arc::make_mut(&mut self.config).throttle = Some(Throttle::new(store, quota));
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, config: self.config.clone() }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("sessions", &self.config.sessions.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The service that was polled ready is the one to call (tower's clone-and-swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            match config.admit(&mut req).await {
                Ok(()) => inner.call(req).await,
                Err(refused) => Ok(refused),
            }
        })
    }
}

impl AuthLayer {
    /// The configuration, for the [`GuardLayer`](crate::guard::GuardLayer) that authenticates
    /// with it.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }
}

impl Config {
    /// Authenticates `req`: inserts its [`Principal`], or gives the refusal to answer (an
    /// [`ApiError`] not rendered yet). What [`AuthService`] runs for each request.
    pub(crate) async fn admit<B>(&self, req: &mut Request<B>) -> Result<(), Response> {
        match self.admit_now(req) {
            Admission::Done(done) => done,
            Admission::Waits(waits) => self.admit_later(req, waits).await,
        }
    }

    /// As much of [`admit`](Self::admit) as needs no waiting: all of it when the key store has
    /// the key at hand ([`KeyStore::find_key_now`]: a key cache) and no failure is to be
    /// counted. The [`Guard`](crate::guard::Guard) calls this, and
    /// [`admit_later`](Self::admit_later) only when it waits, so that its future holds the
    /// waiting part's only when there is one.
    ///
    /// Everything needed is read from the request here (the body need not be `Sync`).
    pub(crate) fn admit_now<B>(&self, req: &mut Request<B>) -> Admission {
        let client_ip = client_ip(req);
        let throttle = self.throttle.as_ref().zip(client_ip);
        if let Some(refused) = throttle.and_then(|(t, ip)| t.refuse_early(ip)) {
            return Admission::Done(Err(refused.into_response()));
        }
        let result = match credential(self, req) {
            Ok(Credential::Key(key)) => match self.keys.find_key_now(&key.id) {
                Some(record) => check_key(&key, Some(record), client_ip),
                None => return Admission::Waits(Waits { credential: Ok(Credential::Key(key)), client_ip }),
            },
            Ok(session) => return Admission::Waits(Waits { credential: Ok(session), client_ip }),
            Err(e) => Err(e),
        };
        match result {
            Ok(principal) => {
                req.extensions_mut().insert(principal);
                Admission::Done(Ok(()))
            }
            // The throttle counts this failure: that waits on its store.
            Err(e) if throttle.is_some() && throttle::counts(&e) => {
                Admission::Waits(Waits { credential: Err(e), client_ip })
            }
            Err(e) => Admission::Done(Err(e.into_response())),
        }
    }

    /// The rest of [`admit`](Self::admit) after [`admit_now`](Self::admit_now) waits.
    pub(crate) async fn admit_later<B>(&self, req: &mut Request<B>, waits: Waits) -> Result<(), Response> {
        let Waits { credential, client_ip } = waits;
        let result = match credential {
            Ok(credential) => verify(self, credential, client_ip).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(principal) => {
                req.extensions_mut().insert(principal);
                Ok(())
            }
            Err(e) => {
                if let Some((t, ip)) = self.throttle.as_ref().zip(client_ip).filter(|_| throttle::counts(&e))
                    && let Some(refused) = t.failed(ip).await
                {
                    return Err(refused.into_response());
                }
                Err(e.into_response())
            }
        }
    }
}

/// What [`Config::admit_now`] came to.
pub(crate) enum Admission {
    /// Admitted (its [`Principal`] inserted), or refused with this answer.
    Done(Result<(), Response>),
    /// The rest waits: [`Config::admit_later`].
    Waits(Waits),
}

/// What [`Config::admit_later`] goes on from: the credential to verify, or the failure the
/// throttle is to count.
pub(crate) struct Waits {
    credential: Result<Credential, ApiError>,
    client_ip: Option<IpAddr>,
}

/// What a request presents.
enum Credential {
    Key(ParsedKey),
    Session(SessionCredential),
}

struct SessionCredential {
    token_hash: [u8; 32],
    /// Whether the method needs the CSRF token.
    needs_csrf: bool,
    /// SHA-256 of the `X-CSRF-Token` header, when there is exactly one.
    csrf_hash: Option<[u8; 32]>,
}

fn credential<B>(config: &Config, req: &Request<B>) -> Result<Credential, ApiError> {
    let headers = req.headers();
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        // Two Authorization headers are ambiguous: refuse rather than pick one.
        if authorization.next().is_some() {
            return Err(unauthorized(Code::ApiKeyMalformed, CHALLENGE));
        }
        return bearer_key(value)
            .map(Credential::Key)
            .ok_or_else(|| unauthorized(Code::ApiKeyMalformed, CHALLENGE));
    }
    if config.sessions.is_none() {
        return Err(unauthorized(Code::ApiKeyMissing, CHALLENGE));
    }
    let Some(token) = session_token(headers) else {
        return Err(unauthorized(Code::AuthenticationRequired, CHALLENGE));
    };
    let needs_csrf = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE);
    let csrf_hash =
        if needs_csrf { single_header(headers, &CSRF_HEADER).map(key::hash_secret) } else { None };
    Ok(Credential::Session(SessionCredential { token_hash: key::hash_secret(&token), needs_csrf, csrf_hash }))
}

/// The key of `Bearer <key>`; `None` for another scheme or a key not of the format. The catalog
/// message of `api_key_malformed` covers both, and each profile words it its own way, so no
/// detail is added.
fn bearer_key(value: &HeaderValue) -> Option<ParsedKey> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    key::parse(token.trim_matches(' '))
}

/// The session token a request carries: the value of its [`SESSION_COOKIE`] cookie, without
/// the double quotes RFC 6265 allows around it. HTTP/2 may split `Cookie` in several fields.
///
/// Authentication and logout both read the cookie through this one function, over the
/// `cookie` crate's parser: with two parsers, logout once missed a quoted value that
/// authentication accepted, and the session stayed valid.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::COOKIE};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(COOKIE, HeaderValue::from_static("theme=dark; rebuff_session=\"abc\""));
/// assert_eq!(rebuff_axum::auth::session_token(&headers).as_deref(), Some("abc"));
/// ```
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value_trimmed().to_owned())
        .filter(|value| !value.is_empty())
}

/// The value of a header that must appear exactly once.
fn single_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// The client address: [`crate::client_ip::client_ip`] (behind trusted proxies, the address
/// they forward; else axum's `ConnectInfo`, IPv4-mapped addresses as IPv4).
fn client_ip<B>(req: &Request<B>) -> Option<IpAddr> {
    crate::client_ip::client_ip(req.extensions())
}

async fn verify(
    config: &Config,
    credential: Credential,
    client_ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    match credential {
        Credential::Key(key) => verify_key(config, key, client_ip).await,
        Credential::Session(session) => match &config.sessions {
            Some(sessions) => verify_session(sessions.as_ref(), session).await,
            // `credential` only reads a cookie when sessions are configured.
            None => Err(unauthorized(Code::ApiKeyMissing, CHALLENGE)),
        },
    }
}

async fn verify_key(
    config: &Config,
    key: ParsedKey,
    client_ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let record = match config.keys.find_key_now(&key.id) {
        Some(cached) => Some(cached),
        None => config.keys.find_key(&key.id).await?,
    };
    check_key(&key, record, client_ip)
}

/// Whether `key` is the stored `record`'s, usable, and from an allowed address.
fn check_key(
    key: &ParsedKey,
    record: Option<KeyRecord>,
    client_ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let stored = record.as_ref().map_or(&DUMMY_HASH, |r| &r.secret_hash);
    let matches = key::hashes_match(&key.secret_hash, stored);
    let Some(record) = record.filter(|r| matches && r.live == key.live) else {
        return Err(unauthorized(Code::ApiKeyInvalid, CHALLENGE_INVALID_TOKEN));
    };
    // Only a caller holding the secret learns that a key is revoked or expired.
    if record.revoked_at.is_some() {
        return Err(unauthorized(Code::ApiKeyRevoked, CHALLENGE_INVALID_TOKEN));
    }
    if record.expires_at.is_some_and(|at| at <= unix_now()) {
        return Err(unauthorized(Code::ApiKeyExpired, CHALLENGE_INVALID_TOKEN));
    }
    if !record.allowed_ips.is_empty() {
        match client_ip {
            Some(ip) if record.allows(ip) => {}
            Some(ip) => {
                return Err(ApiError::new(Code::IpNotAllowed)
                    .detail(format!("Requests from {ip} are not allowed for this API key.")));
            }
            None => {
                return Err(ApiError::new(Code::IpNotAllowed).detail(
                    "The client address is unknown, and this API key accepts requests only from its allowed addresses.",
                ));
            }
        }
    }
    Ok(Principal {
        org_id: record.org_id,
        subject: Subject::Key { id: record.id, live: record.live },
        scopes: record.scopes,
    })
}

async fn verify_session(
    sessions: &dyn SessionStore,
    credential: SessionCredential,
) -> Result<Principal, ApiError> {
    let Some(session) = sessions.find_session(&credential.token_hash).await? else {
        return Err(
            unauthorized(Code::SessionExpired, CHALLENGE).detail("The session is not valid or has expired")
        );
    };
    if session.expires_at <= unix_now() {
        return Err(unauthorized(Code::SessionExpired, CHALLENGE));
    }
    if session.user_disabled {
        return Err(ApiError::new(Code::AccountDisabled));
    }
    if credential.needs_csrf {
        let ok = credential.csrf_hash.is_some_and(|hash| key::hashes_match(&hash, &session.csrf_hash));
        if !ok {
            return Err(ApiError::new(Code::CsrfFailed));
        }
    }
    Ok(Principal {
        org_id: session.org_id.into(),
        subject: Subject::Session { user_id: session.user_id.into() },
        scopes: SESSION_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
    })
}

fn unauthorized(code: Code, challenge: HeaderValue) -> ApiError {
    let mut err = ApiError::new(code);
    err.problem_mut().headers.push((WWW_AUTHENTICATE, challenge));
    err
}

/// Seconds since the Unix epoch; a clock before 1970 reads as the epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
