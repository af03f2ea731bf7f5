//! Request ids: accept a well-formed incoming `X-Request-Id`, else make one (`req_` + 24
//! random alphanumerics); echo it on every response.
//!
//! It does what tower-http's `SetRequestId` and `PropagateRequestId` do together (the id in
//! the request's header and in its extensions as tower-http's [`RequestId`], and on the
//! response), in one service, with a check in front: they trust any incoming value, and a
//! request id ends up in logs and response headers, where a CR/LF or a megabyte of text does
//! harm.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::header::Entry;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use rand::RngCore;
use rebuff::dialect::X_REQUEST_ID;
use tower::Layer;
use tower::Service;
use tower_http::request_id::{MakeRequestId, RequestId};

/// The longest incoming request id accepted.
pub const MAX_LEN: usize = 128;

/// Whether an incoming request id is safe to keep: 1 to [`MAX_LEN`] characters of
/// `A-Z a-z 0-9 - _ . :`.
pub fn is_valid(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LEN
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The characters of a generated id.
const ALPHANUMERICS: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh request id: `req_` and 24 random alphanumerics.
pub fn generate() -> HeaderValue {
    // On the stack, then moved into the header's bytes: a single allocation.
    let mut id = *b"req_000000000000000000000000";
    // Six random bits per character, uniform over the 62 characters: the two six-bit values
    // past them (62, 63) are skipped. One `u64` from the generator gives ten draws, so three
    // nearly always suffice; the bits are taken with shifts rather than a division each.
    let mut rng = rand::rng();
    let mut next = 4;
    'fill: loop {
        let mut bits = rng.next_u64();
        for _ in 0..10 {
            let drawn = ALPHANUMERICS.get((bits & 63) as usize);
            bits >>= 6;
            if let (Some(&c), Some(slot)) = (drawn, id.get_mut(next)) {
                *slot = c;
                next += 1;
                if next == id.len() {
                    break 'fill;
                }
            }
        }
    }
    // Owned by the value's bytes: clones of the id (request, extensions, response) share them
    // without another allocation.
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(id))
        .unwrap_or_else(|_| unreachable!("alphanumerics are a valid header value"))
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
    type Service = RequestIdService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service of [`RequestIdLayer`]: drops an incoming `X-Request-Id` that [`is_valid`]
/// rejects (or that appears more than once), makes one when there is none, and puts it in
/// the request's extensions ([`RequestId`]) and on the response.
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestIdService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let (id, made) = keep_or_replace(&mut req, || Some(generate()))
            .unwrap_or_else(|| unreachable!("a replacement is always made"));
        if made || req.extensions().get::<RequestId>().is_none() {
            req.extensions_mut().insert(RequestId::new(id.clone()));
        }
        ResponseFuture { inner: self.inner.call(req), id: Some(id) }
    }
}

/// Keeps the incoming `X-Request-Id` when there is exactly one and [`is_valid`] accepts it;
/// else every incoming value gives way to `replacement()`, or is removed when that is `None`.
/// The id the request then carries, and whether it is the replacement. Through one entry of
/// the header map: the name is hashed and looked up once, whatever happens.
fn keep_or_replace<B>(
    req: &mut Request<B>,
    replacement: impl FnOnce() -> Option<HeaderValue>,
) -> Option<(HeaderValue, bool)> {
    match req.headers_mut().entry(X_REQUEST_ID) {
        Entry::Occupied(mut incoming) => {
            let mut values = incoming.iter();
            let malformed = match (values.next(), values.next()) {
                (Some(id), None) if is_valid(id.as_bytes()) => return Some((id.clone(), false)),
                (id, _) => id.map_or(0, HeaderValue::len),
            };
            tracing::debug!(len = malformed, "ignoring a malformed incoming X-Request-Id");
            match replacement() {
                Some(id) => {
                    // Replaces every incoming value.
                    incoming.insert(id.clone());
                    Some((id, true))
                }
                None => {
                    incoming.remove();
                    None
                }
            }
        }
        Entry::Vacant(none) => {
            let id = replacement()?;
            none.insert(id.clone());
            Some((id, true))
        }
    }
}

/// Removes an incoming `X-Request-Id` that [`is_valid`] rejects, or that appears more than
/// once, so that a new one is made for it (what [`RequestIdService`] does first, for use in
/// front of tower-http's `SetRequestId`).
#[derive(Debug, Clone)]
pub struct DropMalformed<S> {
    inner: S,
}

impl<S> DropMalformed<S> {
    /// Checks the incoming ids of requests to `inner`.
    pub fn new(inner: S) -> Self {
        DropMalformed { inner }
    }
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
        keep_or_replace(&mut req, || None);
        self.inner.call(req)
    }
}

pin_project! {
    /// The response future of [`RequestIdService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        // A response that names an id already keeps it (as tower-http's PropagateRequestId).
        // Through one entry: the name is hashed and looked up once.
        let (id, named) = match res.headers_mut().entry(X_REQUEST_ID) {
            Entry::Occupied(named) => (named.get().clone(), true),
            Entry::Vacant(slot) => match this.id.take() {
                Some(id) => (slot.insert(id).clone(), false),
                None => return Poll::Ready(Ok(res)),
            },
        };
        if !named || res.extensions().get::<RequestId>().is_none() {
            res.extensions_mut().insert(RequestId::new(id));
        }
        Poll::Ready(Ok(res))
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

    async fn through_layer(req: Request<()>) -> (Option<HeaderValue>, Option<HeaderValue>) {
        use tower::ServiceExt;
        let svc = RequestIdLayer::new().layer(tower::service_fn(|req: Request<()>| async move {
            let seen = crate::request_id::current(&req);
            // The inner service sees the id it is given, and only that one, as its header.
            let headers: Vec<_> = req.headers().get_all(X_REQUEST_ID).iter().cloned().collect();
            assert_eq!(headers, Vec::from_iter(seen.clone()));
            Ok::<_, std::convert::Infallible>(Response::new(seen))
        }));
        let res = svc.oneshot(req).await.unwrap_or_else(|never| match never {});
        let echoed = res.headers().get(X_REQUEST_ID).cloned();
        assert_eq!(res.extensions().get::<RequestId>().map(|id| id.header_value().clone()), echoed);
        (res.into_body(), echoed)
    }

    #[tokio::test]
    async fn a_response_that_names_an_id_keeps_it() {
        use tower::ServiceExt;
        // The inner service answers with its own id, or not, and a RequestId extension, or not.
        let answer = |header: Option<&'static str>, extension: Option<&'static str>| async move {
            let svc = RequestIdLayer::new().layer(tower::service_fn(move |_: Request<()>| async move {
                let mut res = Response::new(());
                if let Some(id) = header {
                    res.headers_mut().insert(X_REQUEST_ID, HeaderValue::from_static(id));
                }
                if let Some(id) = extension {
                    res.extensions_mut().insert(RequestId::new(HeaderValue::from_static(id)));
                }
                Ok::<_, std::convert::Infallible>(res)
            }));
            let res = svc.oneshot(with_ids(&["req_in"])).await.unwrap_or_else(|never| match never {});
            let ext = res.extensions().get::<RequestId>().map(|id| id.header_value().clone());
            let headers: Vec<_> = res.headers().get_all(X_REQUEST_ID).iter().cloned().collect();
            (headers, ext)
        };
        let id = HeaderValue::from_static;
        assert_eq!(answer(None, None).await, (vec![id("req_in")], Some(id("req_in"))));
        assert_eq!(answer(Some("req_own"), None).await, (vec![id("req_own")], Some(id("req_own"))));
        assert_eq!(
            answer(Some("req_own"), Some("req_ext")).await,
            (vec![id("req_own")], Some(id("req_ext")))
        );
        assert_eq!(answer(None, Some("req_ext")).await, (vec![id("req_in")], Some(id("req_in"))));
    }

    /// A request carrying these `X-Request-Id` headers, in order.
    fn with_ids(ids: &[&'static str]) -> Request<()> {
        let mut req = Request::new(());
        for id in ids {
            req.headers_mut().append(X_REQUEST_ID, HeaderValue::from_static(id));
        }
        req
    }

    #[tokio::test]
    async fn a_valid_id_is_kept_and_any_other_replaced() {
        let kept = HeaderValue::from_static("req_abc");
        assert_eq!(through_layer(with_ids(&["req_abc"])).await, (Some(kept.clone()), Some(kept)));
        for ids in [&[][..], &["bad id"], &["req_a", "req_b"]] {
            let (seen, echoed) = through_layer(with_ids(ids)).await;
            let seen = seen.expect("an id");
            assert!(seen.as_bytes().starts_with(b"req_") && seen.len() == 28, "{ids:?}: {seen:?}");
            assert_eq!(Some(seen), echoed, "{ids:?}");
        }
    }

    #[tokio::test]
    async fn drop_malformed_keeps_one_valid_id_and_removes_any_other() {
        use tower::ServiceExt;
        let seen = |ids: &[&'static str]| {
            let req = with_ids(ids);
            let svc = DropMalformed::new(tower::service_fn(|req: Request<()>| async move {
                let ids: Vec<_> = req.headers().get_all(X_REQUEST_ID).iter().cloned().collect();
                Ok::<_, std::convert::Infallible>(ids)
            }));
            svc.oneshot(req)
        };
        let kept = seen(&["req_abc"]).await.unwrap_or_else(|never| match never {});
        assert_eq!(kept, [HeaderValue::from_static("req_abc")]);
        for ids in [&[][..], &["bad id"], &["req_a", "req_b"]] {
            let left = seen(ids).await.unwrap_or_else(|never| match never {});
            assert!(left.is_empty(), "{ids:?}: {left:?}");
        }
    }

    #[test]
    fn generated_ids_draw_every_alphanumeric_evenly() {
        // 240,000 characters: about 3,871 of each of the 62. A mapping that favoured some
        // (a modulo bias, the skipped six-bit values folded onto others) would be many times
        // the spread of a fair draw (about 62) away from it.
        let mut seen = [0u32; 256];
        for _ in 0..10_000 {
            let id = generate();
            for &c in &id.as_bytes()[4..] {
                seen[usize::from(c)] += 1;
            }
        }
        let expected = 240_000.0 / 62.0;
        for (c, &n) in seen.iter().enumerate() {
            let c = u8::try_from(c).expect("a byte");
            if c.is_ascii_alphanumeric() {
                let off = (f64::from(n) - expected).abs();
                assert!(off < 400.0, "{:?} drawn {n} times, {expected:.0} expected", char::from(c));
            } else {
                assert_eq!(n, 0, "{:?} is not alphanumeric", char::from(c));
            }
        }
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(is_valid(a.as_bytes()) && a.len() == 28 && a.as_bytes().starts_with(b"req_"));
        assert_ne!(a, b);
    }
}
