//! Panics and timeouts as catalog errors, on this crate's [`CatchPanicLayer`] and
//! [`timeout`](crate::timeout) layers.
//!
//! * [`catch_panic`]: a panicking handler answers `internal_error` (500). The panic message
//!   becomes the error's cause, which [`ProblemLayer`](crate::ProblemLayer) logs with the
//!   request id and never sends (outside debug mode). [`PanicToProblem`] gives tower-http's
//!   `CatchPanicLayer` the same answer, for a stack built on it.
//! * [`timeout`]: a handler still running after the deadline answers `gateway_timeout` (504).
//! * [`body_timeout`]: a request body that stalls answers `request_timeout` (408).
//!
//! These layers go inside [`ProblemLayer`](crate::ProblemLayer), which renders what they
//! produce:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use axum::Router;
//! use rebuff::Catalog;
//! use rebuff_axum::{ProblemLayer, RequestIdLayer, panic};
//!
//! let app: Router = Router::new()
//!     .route("/", axum::routing::get(|| async { "ok" }))
//!     .layer(panic::catch_panic())
//!     .layer(panic::timeout(Duration::from_secs(30)))
//!     .layer(panic::body_timeout(Duration::from_secs(10)))
//!     .layer(ProblemLayer::new(Arc::new(Catalog::standard().clone())))
//!     .layer(RequestIdLayer::new());
//! # let _ = app;
//! ```

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::IntoResponse;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::catch_panic::ResponseForPanic;

use crate::timeout::{BodyTimeoutLayer, TimeoutLayer};
use crate::{ApiError, Code};

/// Turns a panic into a pending `internal_error` whose cause is the panic message.
#[derive(Debug, Clone, Copy, Default)]
pub struct PanicToProblem;

impl PanicToProblem {
    /// The code a caught panic answers with (500), for
    /// [`ProblemLayer::builder`](crate::ProblemLayer::builder).
    pub const CODES: &'static [Code] = &[Code::InternalError];
}

impl ResponseForPanic for PanicToProblem {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, err: Box<dyn Any + Send + 'static>) -> Response<Self::ResponseBody> {
        let message = if let Some(s) = err.downcast_ref::<&str>() {
            s
        } else if let Some(s) = err.downcast_ref::<String>() {
            s.as_str()
        } else {
            "a panic with a payload that is not a string"
        };
        ApiError::new(Code::InternalError).cause(format_args!("handler panicked: {message}")).into_response()
    }
}

/// Catches panics in the services inside it and answers `internal_error` (500).
pub fn catch_panic() -> CatchPanicLayer {
    CatchPanicLayer
}

/// Catches a panic of the inner service, in its `call` or while its future is polled, and
/// answers what [`PanicToProblem`] makes of it: a pending `internal_error` (500) whose cause
/// is the panic message.
///
/// By hand rather than tower-http's `CatchPanicLayer` (which [`PanicToProblem`] also serves):
/// that one boxes every response body again, panic or not, so each response cost an
/// allocation more and each of its frames one more dynamic call. This one hands the inner
/// response on as it is. A panic while the body is read, after the response has left, is not
/// caught by either.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> CatchPanic<S> {
        CatchPanic { inner }
    }
}

/// The service of [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S, ReqBody> Service<Request<ReqBody>> for CatchPanic<S>
where
    S: Service<Request<ReqBody>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = CatchPanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => CatchPanicFuture { state: State::Running { future } },
            Err(payload) => CatchPanicFuture { state: State::Panicked { payload: Some(payload) } },
        }
    }
}

pin_project! {
    /// The response future of [`CatchPanic`].
    pub struct CatchPanicFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // The inner service's future.
        Running {
            #[pin]
            future: F,
        },
        // The inner service panicked in `call`.
        Panicked {
            payload: Option<Box<dyn Any + Send + 'static>>,
        },
    }
}

impl<F, E> Future for CatchPanicFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let payload = match self.project().state.project() {
            StateProj::Running { future } => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(polled) => return polled,
                    Err(payload) => payload,
                }
            }
            StateProj::Panicked { payload } => {
                payload.take().unwrap_or_else(|| Box::new("a caught panic's future polled again"))
            }
        };
        Poll::Ready(Ok(PanicToProblem.response_for_panic(payload)))
    }
}

/// Answers `gateway_timeout` (504) for a request whose handler runs longer than `d`; the
/// handler's future is dropped.
///
/// The layer answers a bare 504, which [`ProblemLayer`](crate::ProblemLayer) renders as
/// `gateway_timeout`. Its timer is armed only if the handler does not answer at once (see
/// [`timeout`](crate::timeout)).
pub fn timeout(d: Duration) -> TimeoutLayer {
    TimeoutLayer::new(StatusCode::GATEWAY_TIMEOUT, d)
}

/// Fails the reading of a request body that sends nothing for `d`.
///
/// The layer only makes the body yield a
/// [`BodyTimeoutError`](crate::timeout::BodyTimeoutError); what the client sees depends on the
/// extractor reading it. This crate's [`Json`](crate::extract::Json) and
/// [`Valid`](crate::validate::Valid), and any handler that maps a
/// [`BytesRejection`](axum::extract::rejection::BytesRejection) with
/// [`body_error`](crate::extract::body_error), answer `request_timeout` (408). (axum's own
/// extractors would answer 400.)
pub fn body_timeout(d: Duration) -> BodyTimeoutLayer {
    BodyTimeoutLayer::new(d)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt;

    use super::*;

    /// The status, the pending error's cause (if any) and the body of what `svc` answers.
    async fn answer<S>(svc: S) -> (StatusCode, Option<String>, String)
    where
        S: Service<Request<()>, Response = Response<Body>, Error = Infallible>,
    {
        let res = tower::ServiceExt::oneshot(catch_panic().layer(svc), Request::new(()))
            .await
            .unwrap_or_else(|never| match never {});
        let cause = res.extensions().get::<crate::error::Pending>().and_then(|p| p.0.cause.clone());
        let status = res.status();
        let body = res.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        (status, cause, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn panics_in_call_and_in_poll_answer_internal_error() {
        let ok = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Body::from("fine")))
        });
        assert_eq!(answer(ok).await, (StatusCode::OK, None, "fine".to_owned()));

        let in_poll = tower::service_fn(|_: Request<()>| async {
            if std::hint::black_box(true) {
                panic!("in poll");
            }
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        let (status, cause, _) = answer(in_poll).await;
        assert_eq!(
            (status, cause.as_deref()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("handler panicked: in poll"))
        );

        #[derive(Clone)]
        struct PanicsInCall;
        impl Service<Request<()>> for PanicsInCall {
            type Response = Response<Body>;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response<Body>, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<()>) -> Self::Future {
                panic!("in call")
            }
        }
        let (status, cause, _) = answer(PanicsInCall).await;
        assert_eq!(
            (status, cause.as_deref()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("handler panicked: in call"))
        );
    }

    #[test]
    fn panic_message_is_the_cause() {
        let cause = |payload: Box<dyn Any + Send>| {
            let res = PanicToProblem.response_for_panic(payload);
            let pending = res.extensions().get::<crate::error::Pending>();
            pending.map(|p| (p.0.code().to_owned(), p.0.cause.clone().unwrap_or_default()))
        };
        let internal = |c: &str| Some(("internal_error".to_owned(), c.to_owned()));
        assert_eq!(cause(Box::new("boom")), internal("handler panicked: boom"));
        assert_eq!(cause(Box::new(String::from("bang"))), internal("handler panicked: bang"));
        assert_eq!(
            cause(Box::new(42)),
            internal("handler panicked: a panic with a payload that is not a string")
        );
    }
}
