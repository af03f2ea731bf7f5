//! Incoming webhooks signed with HMAC-SHA256 and a timestamp: [`WebhookSignatureLayer`]
//! verifies, [`sign`] produces the header.
//!
//! The header is `Rebuff-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! Signing the timestamp with the body makes a captured request useless once it is outside the
//! tolerance; several `v1` entries let a sender sign with an old and a new secret while the
//! secret is being rotated.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, Request};
use sha2::Sha256;
use tower::{Layer, Service};

use super::authenticate::unix_now;
use crate::store::{Quota, RateLimitStore};
use crate::{ApiError, Code};

/// The signature header.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("rebuff-signature");

/// The largest body verified by default (1 MiB); a larger one is `payload_too_large`.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The header's name as shown in details.
const SHOWN: &str = "Rebuff-Signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` (Unix seconds).
///
/// ```
/// use rebuff_axum::auth::webhook::sign;
///
/// let header = sign(b"whsec_test", 1_700_000_000, br#"{"event":"ping"}"#);
/// assert!(header.starts_with("t=1700000000,v1="));
/// assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
/// ```
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let signature = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

/// Verifies the [`SIGNATURE_HEADER`] of incoming webhooks.
///
/// The body is buffered (up to [`DEFAULT_MAX_BODY`], else `payload_too_large`), checked, and
/// passed on unchanged. A missing or unparseable header, no `v1` signature matching (compared
/// in constant time), or a timestamp further than `tolerance` from now answers
/// `invalid_signature` (401) with a detail saying which.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::post};
/// use rebuff_axum::auth::WebhookSignatureLayer;
///
/// let hooks: Router = Router::new()
///     .route("/v1/webhooks/incoming", post(|body: String| async move { body }))
///     .route_layer(WebhookSignatureLayer::new("whsec_test", Duration::from_secs(300)));
/// ```
#[derive(Clone)]
pub struct WebhookSignatureLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    secret: Vec<u8>,
    tolerance: Duration,
    future_tolerance: Duration,
    max_body: usize,
    /// Where signatures already accepted are remembered; `None` accepts replays.
    seen: Option<Arc<dyn RateLimitStore>>,
}

/// How far ahead of this clock a timestamp may be by default: clocks kept by NTP differ by
/// far less, and a timestamp far ahead would stay valid (and replayable) for longer.
pub const DEFAULT_FUTURE_TOLERANCE: Duration = Duration::from_secs(30);

impl fmt::Debug for WebhookSignatureLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("WebhookSignature")
            .field("tolerance", &self.tolerance)
            .field("future_tolerance", &self.future_tolerance)
            .field("max_body", &self.max_body)
            .field("rejects_replays", &self.seen.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookSignatureLayer {
    /// The codes this layer can raise (a body over its limit is `payload_too_large`; the store
    /// of [`reject_replays`](Self::reject_replays) failing is `service_unavailable` or
    /// `database_error`), for [`ProblemLayer::builder`](crate::ProblemLayer::builder).
    pub const CODES: &'static [crate::Code] = &[
        crate::Code::InvalidSignature,
        crate::Code::PayloadTooLarge,
        crate::Code::BadRequest,
        crate::Code::RequestTimeout,
        crate::Code::ServiceUnavailable,
        crate::Code::DatabaseError,
    ];

    /// Verifies signatures made with `secret`, accepting timestamps up to `tolerance` old, and
    /// up to [`DEFAULT_FUTURE_TOLERANCE`] (or `tolerance` if shorter) ahead of this clock.
    pub fn new(secret: impl Into<Vec<u8>>, tolerance: Duration) -> Self {
        WebhookSignatureLayer {
            config: Arc::new(Config {
                secret: secret.into(),
                tolerance,
                future_tolerance: tolerance.min(DEFAULT_FUTURE_TOLERANCE),
                max_body: DEFAULT_MAX_BODY,
                seen: None,
            }),
        }
    }

    /// Sets how far ahead of this clock a timestamp may be.
    #[must_use]
    pub fn future_tolerance(mut self, tolerance: Duration) -> Self {
        Arc::make_mut(&mut self.config).future_tolerance = tolerance;
        self
    }

    /// Accepts each signature once: a signature already accepted is refused
    /// (`invalid_signature`) for as long as its timestamp could still be accepted. Accepted
    /// signatures are remembered in `store` (a limit of one per window under the signature's
    /// key), which instances share when the store is shared (Redis, PostgreSQL).
    #[must_use]
    pub fn reject_replays(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        Arc::make_mut(&mut self.config).seen = Some(store);
        self
    }

    /// Sets the largest body verified, in bytes.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.config).max_body = bytes;
        self
    }
}

impl<S> Layer<S> for WebhookSignatureLayer {
    type Service = WebhookSignature<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WebhookSignature { inner, config: self.config.clone() }
    }
}

/// The service of [`WebhookSignatureLayer`].
#[derive(Clone)]
pub struct WebhookSignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for WebhookSignature<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSignature").field("inner", &self.inner).field("config", &self.config).finish()
    }
}

impl<S> Service<Request<Body>> for WebhookSignature<S>
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

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            match verify(&config, req).await {
                Ok(req) => inner.call(req).await,
                Err(e) => Ok(e.into_response()),
            }
        })
    }
}

/// A parsed signature header.
#[derive(Debug, PartialEq, Eq)]
struct Signature {
    timestamp: i64,
    v1: Vec<Vec<u8>>,
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidSignature).detail(detail)
}

async fn verify(config: &Config, req: Request<Body>) -> Result<Request<Body>, ApiError> {
    // The header is checked before the body is read: a request without one costs nothing.
    let signature = signature(req.headers())?;
    let (parts, body) = req.into_parts();
    let body = crate::extract::read_body(&parts.headers, body, config.max_body).await?;
    let expected = mac(&config.secret, signature.timestamp, &body);
    if !signature.v1.iter().any(|candidate| expected.clone().verify_slice(candidate).is_ok()) {
        return Err(invalid(format!("No signature in the {SHOWN} header matches the request body.")));
    }
    // After the signature, so that a forged request is told it is forged, and only a genuine
    // but late (or replayed) one is told about the clock.
    let age = i128::from(unix_now()) - i128::from(signature.timestamp);
    if age > i128::from(config.tolerance.as_secs()) {
        return Err(invalid(format!(
            "The signature timestamp is more than {} seconds old.",
            config.tolerance.as_secs()
        )));
    }
    if -age > i128::from(config.future_tolerance.as_secs()) {
        return Err(invalid(format!(
            "The signature timestamp is more than {} seconds ahead of the server's clock.",
            config.future_tolerance.as_secs()
        )));
    }
    if let Some(seen) = &config.seen {
        // Keyed by the MAC computed here, not the header's text: another spelling of the same
        // header (spaces, a second v1) is the same signature.
        let key = format!("webhook-seen:{}", hex::encode(expected.finalize().into_bytes()));
        // Remembered for as long as the timestamp could be accepted, from when it is first
        // seen (a second of slack for whole-second timestamps).
        let window = config.tolerance + config.future_tolerance + Duration::from_secs(1);
        let quota = Quota { limit: 1, period: window };
        let decision = seen.check(&key, quota, crate::ratelimit::now_nanos()).await?;
        if !decision.allowed {
            return Err(invalid("This signature was already used: each signed webhook is accepted once."));
        }
    }
    Ok(Request::from_parts(parts, Body::from(body)))
}

/// Reads the header: exactly one, with one `t` and at least one `v1` of 32 hex-encoded bytes;
/// other schemes are ignored so that a sender can add one without breaking receivers.
fn signature(headers: &HeaderMap) -> Result<Signature, ApiError> {
    let mut values = headers.get_all(SIGNATURE_HEADER).iter();
    let Some(value) = values.next() else {
        return Err(invalid(format!("The {SHOWN} header is missing.")));
    };
    let malformed = || {
        invalid(format!("The {SHOWN} header is malformed: expected `t=<unix seconds>,v1=<hex HMAC-SHA256>`."))
    };
    if values.next().is_some() {
        return Err(malformed());
    }
    parse_signature(value.to_str().map_err(|_| malformed())?).ok_or_else(malformed)
}

fn parse_signature(value: &str) -> Option<Signature> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in value.split(',') {
        let (name, value) = item.trim().split_once('=')?;
        match name {
            "t" => {
                if timestamp.is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                timestamp = Some(value.parse::<i64>().ok()?);
            }
            "v1" => {
                let bytes = hex::decode(value).ok()?;
                if bytes.len() != 32 {
                    return None;
                }
                v1.push(bytes);
            }
            _ => {}
        }
    }
    let timestamp = timestamp?;
    (!v1.is_empty()).then_some(Signature { timestamp, v1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_headers_parse_back() {
        let header = sign(b"secret", 1_700_000_000, b"{}");
        let parsed = parse_signature(&header).expect("a signed header parses");
        assert_eq!(parsed.timestamp, 1_700_000_000);
        assert!(mac(b"secret", 1_700_000_000, b"{}").verify_slice(&parsed.v1[0]).is_ok());
    }

    #[test]
    fn several_signatures_and_unknown_schemes_are_accepted() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let parsed = parse_signature(&format!("t=1, v0=zz, v1={a}, v1={b}")).expect("parses");
        assert_eq!(parsed.v1.len(), 2);
    }

    #[test]
    fn malformed_headers_are_refused() {
        let sig = "a".repeat(64);
        for bad in [
            String::new(),
            "t=1".to_owned(),
            format!("v1={sig}"),
            format!("t=,v1={sig}"),
            format!("t=-1,v1={sig}"),
            format!("t=1,t=2,v1={sig}"),
            "t=1,v1=abc".to_owned(),
            format!("t=1,v1={}", "zz".repeat(32)),
            format!("t=1;v1={sig}"),
            format!("t=99999999999999999999,v1={sig}"),
        ] {
            assert!(parse_signature(&bad).is_none(), "{bad}");
        }
    }
}
