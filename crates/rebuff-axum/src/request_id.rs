//! Request ids: accept a well-formed incoming `X-Request-Id`, else make one (`req_` + 24
//! random alphanumerics); echo it on every response.
//!
//! Built on tower-http's `SetRequestId` and `PropagateRequestId`; the only thing added is the
//! check in front of them, because they trust any incoming value, and a request id ends up in
//! logs and response headers, where a CR/LF or a megabyte of text does harm.

use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use rand::Rng;
use rand::distr::Alphanumeric;
use rebuff::dialect::X_REQUEST_ID;
use tower::Layer;
use tower::Service;
use tower_http::request_id::{MakeRequestId, PropagateRequestId, RequestId, SetRequestId};

/// The longest incoming request id accepted.
pub const MAX_LEN: usize = 128;

/// Whether an incoming request id is safe to keep: 1 to [`MAX_LEN`] characters of
/// `A-Z a-z 0-9 - _ . :`.
pub fn is_valid(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LEN
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A fresh request id: `req_` and 24 random alphanumerics.
pub fn generate() -> HeaderValue {
    // On the stack, then one copy into the header's bytes: a single allocation.
    let mut id = *b"req_000000000000000000000000";
    for (b, c) in id[4..].iter_mut().zip(rand::rng().sample_iter(&Alphanumeric)) {
        *b = c;
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| unreachable!("alphanumerics are a valid header value"))
}

/// The request id of a request that went through [`RequestIdLayer`].
pub fn current<B>(req: &Request<B>) -> Option<HeaderValue> {
    req.extensions()
        .get::<RequestId>()
        .map(|id| id.header_value().clone())
        .or_else(|| req.headers().get(X_REQUEST_ID).filter(|v| is_valid(v.as_bytes())).cloned())
}

/// Makes `req_` ids for tower-http's `SetRequestId`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeReqId;

impl MakeRequestId for MakeReqId {
    fn make_request_id<B>(&mut self, _req: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(generate()))
    }
}

/// Validates, sets and propagates `X-Request-Id`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        RequestIdLayer
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = DropMalformed<SetRequestId<PropagateRequestId<S>, MakeReqId>>;
    fn layer(&self, inner: S) -> Self::Service {
        DropMalformed {
            inner: SetRequestId::x_request_id(PropagateRequestId::x_request_id(inner), MakeReqId),
        }
    }
}

/// Removes an incoming `X-Request-Id` that [`is_valid`] rejects, so a new one is made for it.
#[derive(Debug, Clone)]
pub struct DropMalformed<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for DropMalformed<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let all_valid = req.headers().get_all(X_REQUEST_ID).iter().all(|v| is_valid(v.as_bytes()));
        let several = req.headers().get_all(X_REQUEST_ID).iter().nth(1).is_some();
        if !all_valid || several {
            if let Some(v) = req.headers().get(X_REQUEST_ID) {
                tracing::debug!(len = v.len(), "ignoring a malformed incoming X-Request-Id");
            }
            req.headers_mut().remove(X_REQUEST_ID);
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_safe_ids() {
        assert!(is_valid(b"req_abc123"));
        assert!(is_valid(b"550e8400-e29b-41d4-a716-446655440000"));
        assert!(!is_valid(b""));
        assert!(!is_valid(b"a\r\nSet-Cookie: x=1"));
        assert!(!is_valid(b"has space"));
        assert!(!is_valid(&[b'a'; MAX_LEN + 1]));
        assert!(!is_valid("ünï".as_bytes()));
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(is_valid(a.as_bytes()) && a.len() == 28 && a.as_bytes().starts_with(b"req_"));
        assert_ne!(a, b);
    }
}
