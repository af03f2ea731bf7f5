//! Panics and timeouts as catalog errors, on tower-http's catch-panic layer and this crate's
//! [`timeout`](crate::timeout) layers.
//!
//! * [`catch_panic`]: a panicking handler answers `internal_error` (500). The panic message
//!   becomes the error's cause, which [`ProblemLayer`](crate::ProblemLayer) logs with the
//!   request id and never sends (outside debug mode).
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
use std::time::Duration;

use axum::body::Body;
use axum::response::IntoResponse;
use http::{Response, StatusCode};
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

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
pub fn catch_panic() -> CatchPanicLayer<PanicToProblem> {
    CatchPanicLayer::custom(PanicToProblem)
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
    use super::*;

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
