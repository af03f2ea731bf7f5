//! Request and request-body timeouts that arm a timer only when there is something to wait
//! for.
//!
//! tower-http's `TimeoutLayer` and `RequestBodyTimeoutLayer` poll their `Sleep` before the
//! inner future or body, so every request registers a timer with tokio's timer wheel, and a
//! request body registers one for every frame, even when the answer or the frame is already
//! there. Registering takes the timer wheel's lock and, when no other timer is pending (a
//! server between bursts), wakes the thread parked on the I/O driver: on the reference
//! server's success route that cost about a tenth of the server's CPU per request. Most
//! requests never wait (the handler answers in its first poll, the body is already in
//! hyper's buffer), so these two poll the inner future or body first and arm the timer only
//! when it is pending. The deadline is the same: the request timeout counts from the call, the
//! body timeout from the moment the body stalls.
//!
//! Use them through [`panic::timeout`](crate::panic::timeout) and
//! [`panic::body_timeout`](crate::panic::body_timeout).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers a bare response with a status (504 from [`panic::timeout`](crate::panic::timeout))
/// for a request whose inner service has not answered `timeout` after the call; the inner
/// future is dropped.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    timeout: Duration,
    status: StatusCode,
}

impl TimeoutLayer {
    /// The code of the bare status [`panic::timeout`](crate::panic::timeout) answers with
    /// (504), which [`ProblemLayer`](crate::ProblemLayer) renders.
    pub const CODES: &'static [crate::Code] = &[crate::Code::GatewayTimeout];

    /// A layer answering `status` after `timeout`.
    pub fn new(status: StatusCode, timeout: Duration) -> Self {
        TimeoutLayer { timeout, status }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout { inner, timeout: self.timeout, status: self.status }
    }
}

/// The service of [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
    status: StatusCode,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Timeout<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            deadline: Instant::now() + self.timeout,
            inner: self.inner.call(req),
            sleep: None,
            status: self.status,
        }
    }
}

pin_project! {
    /// The response future of [`Timeout`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Created the first time `inner` is pending.
        #[pin]
        sleep: Option<Sleep>,
        deadline: Instant,
        status: StatusCode,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(res) = this.inner.poll(cx) {
            return Poll::Ready(res);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            ready!(sleep.poll(cx));
        }
        let mut res = Response::new(B::default());
        *res.status_mut() = *this.status;
        Poll::Ready(Ok(res))
    }
}

/// Fails the reading of a request body that sends nothing for a while: the body yields a
/// [`BodyTimeoutError`].
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeoutLayer {
    timeout: Duration,
}

impl BodyTimeoutLayer {
    /// The code this crate's extractors answer a stalled body with (408), for
    /// [`ProblemLayer::builder`](crate::ProblemLayer::builder).
    pub const CODES: &'static [crate::Code] = &[crate::Code::RequestTimeout];

    /// A layer failing a body that stalls for `timeout`.
    pub fn new(timeout: Duration) -> Self {
        BodyTimeoutLayer { timeout }
    }
}

impl<S> Layer<S> for BodyTimeoutLayer {
    type Service = BodyTimeout<S>;

    fn layer(&self, inner: S) -> BodyTimeout<S> {
        BodyTimeout { inner, timeout: self.timeout }
    }
}

/// The service of [`BodyTimeoutLayer`]. The inner service gets an axum
/// [`Body`](axum::body::Body): the request's own when it has already ended, else one that
/// reads it through a [`TimeoutBody`].
#[derive(Debug, Clone)]
pub struct BodyTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for BodyTimeout<S>
where
    S: Service<Request<axum::body::Body>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let timeout = self.timeout;
        // A body that has already ended (most GETs) has nothing to wait for and goes on as it
        // is: an axum `Body` is not boxed again. The others are watched by a `TimeoutBody`,
        // boxed into a `Body` here rather than by the router.
        self.inner.call(req.map(|body| {
            if body.is_end_stream() {
                axum::body::Body::new(body)
            } else {
                axum::body::Body::new(TimeoutBody { body, sleep: None, timeout })
            }
        }))
    }
}

pin_project! {
    /// A request body whose reading fails with [`BodyTimeoutError`] once it has sent nothing
    /// for the layer's timeout.
    pub struct TimeoutBody<B> {
        #[pin]
        body: B,
        // Armed while the body is pending; cleared by every frame.
        #[pin]
        sleep: Option<Sleep>,
        timeout: Duration,
    }
}

impl<B> http_body::Body for TimeoutBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            this.sleep.set(None);
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.timeout)));
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            ready!(sleep.poll(cx));
        }
        Poll::Ready(Some(Err(Box::new(BodyTimeoutError))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The error of a [`TimeoutBody`] that stalled past its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeoutError;

impl std::fmt::Display for BodyTimeoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body sent nothing within the body timeout")
    }
}

impl std::error::Error for BodyTimeoutError {}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_passes_and_a_late_one_is_replaced() {
        let svc = |delay: u64| {
            TimeoutLayer::new(StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(1)).layer(tower::service_fn(
                move |_: Request<()>| async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    Ok::<_, Infallible>(Response::new(String::from("done")))
                },
            ))
        };
        let res = tower::ServiceExt::oneshot(svc(999), Request::new(())).await.expect("the service answers");
        assert_eq!((res.status(), res.body().as_str()), (StatusCode::OK, "done"));
        let res = tower::ServiceExt::oneshot(svc(1001), Request::new(())).await.expect("the service answers");
        assert_eq!((res.status(), res.body().as_str()), (StatusCode::GATEWAY_TIMEOUT, ""));
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_deadline_counts_from_the_call() {
        let mut svc = TimeoutLayer::new(StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(1)).layer(
            tower::service_fn(|_: Request<()>| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                Ok::<_, Infallible>(Response::new(String::new()))
            }),
        );
        let fut = tower::Service::call(&mut svc, Request::new(()));
        // Not polled for 600 ms: the handler's 600 ms then run past the deadline.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(fut.await.expect("the service answers").status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_and_one_that_trickles_does_not() {
        let trickle = |gap: u64| {
            let frames = futures_util::stream::unfold(0u8, move |n| async move {
                if n == 3 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(gap)).await;
                Some((Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"ab"))), n + 1))
            });
            TimeoutBody {
                body: http_body_util::StreamBody::new(frames),
                sleep: None,
                timeout: Duration::from_secs(1),
            }
        };
        // Each gap is under the timeout, the whole read over it.
        let bytes = trickle(900).collect().await.expect("the trickle is read").to_bytes();
        assert_eq!(&bytes[..], b"ababab");
        let err = trickle(1100).collect().await.expect_err("the stalled body fails");
        assert!(err.is::<BodyTimeoutError>(), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn through_the_layer_only_a_body_that_can_stall_is_watched() {
        let svc = || {
            BodyTimeoutLayer::new(Duration::from_secs(1)).layer(tower::service_fn(
                |req: Request<axum::body::Body>| async move {
                    let ended = http_body::Body::is_end_stream(req.body());
                    let read = req.into_body().collect().await.map(|b| b.to_bytes());
                    Ok::<_, Infallible>((ended, read.map_err(|e| e.into_inner().is::<BodyTimeoutError>())))
                },
            ))
        };
        let call = |body| tower::ServiceExt::oneshot(svc(), Request::new(body));
        let (ended, read) = call(axum::body::Body::empty()).await.expect("the service answers");
        assert_eq!((ended, read), (true, Ok(Bytes::new())));
        let stalled =
            axum::body::Body::from_stream(futures_util::stream::pending::<Result<Bytes, Infallible>>());
        let (ended, read) = call(stalled).await.expect("the service answers");
        assert_eq!((ended, read), (false, Err(true)), "a stalled body fails with BodyTimeoutError");
        let (_, read) = call(axum::body::Body::from("abc")).await.expect("the service answers");
        assert_eq!(read, Ok(Bytes::from_static(b"abc")));
    }
}
