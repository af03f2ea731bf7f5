//! [`RequestSpanLayer`]: every request runs inside a `request` span (method, path, request
//! id), at a level of the server's choosing, DEBUG by default as tower-http's `TraceLayer`.
//!
//! It does only that, unlike `TraceLayer`: no clock reads for a latency nobody logs, no
//! wrapper around the response body, and the span's fields are only formatted when a
//! subscriber wants the span. Logs stay correlatable at INFO without it: every error and
//! warning the layers of this crate log carries the request id as a field of its own (the
//! [`ProblemLayer`](crate::ProblemLayer)'s `request failed` line among them).
//!
//! Put it inside [`RequestIdLayer`](crate::RequestIdLayer), so that the span has the id.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};
use tracing::instrument::{Instrument, Instrumented};
use tracing::{Level, Span, field};

/// Runs each request inside a `request` span; see the [module documentation](self).
#[derive(Debug, Clone, Copy)]
pub struct RequestSpanLayer {
    level: Level,
}

impl Default for RequestSpanLayer {
    fn default() -> Self {
        RequestSpanLayer { level: Level::DEBUG }
    }
}

impl RequestSpanLayer {
    /// A span at DEBUG.
    pub fn new() -> Self {
        Self::default()
    }

    /// The span's level: a subscriber that filters it out pays almost nothing for it.
    #[must_use]
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }
}

impl<S> Layer<S> for RequestSpanLayer {
    type Service = RequestSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestSpan { inner, level: self.level }
    }
}

/// The service of [`RequestSpanLayer`].
#[derive(Debug, Clone)]
pub struct RequestSpan<S> {
    inner: S,
    level: Level,
}

/// The `request` span for `req` at `level`; disabled (and nothing formatted) when no
/// subscriber wants it.
pub fn make_span<B>(req: &Request<B>, level: Level) -> Span {
    // `span!` takes a constant level: one call site per level.
    macro_rules! span {
        ($level:expr) => {
            tracing::span!($level, "request", method = %req.method(), path = req.uri().path(), request_id = field::Empty)
        };
    }
    let span = match level {
        Level::ERROR => span!(Level::ERROR),
        Level::WARN => span!(Level::WARN),
        Level::INFO => span!(Level::INFO),
        Level::DEBUG => span!(Level::DEBUG),
        Level::TRACE => span!(Level::TRACE),
    };
    if !span.is_disabled()
        && let Some(id) = crate::request_id::current(req)
        && let Ok(id) = id.to_str()
    {
        span.record("request_id", id);
    }
    span
}

impl<S, B> Service<Request<B>> for RequestSpan<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let span = make_span(&req, self.level);
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        future.instrument(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_subscriber_the_span_is_disabled() {
        let req = Request::get("/v1/projects").body(()).expect("request");
        assert!(make_span(&req, Level::ERROR).is_disabled());
    }

    #[test]
    fn with_a_subscriber_the_span_is_made_at_the_level_asked() {
        let subscriber = tracing_subscriber::fmt().with_max_level(Level::INFO).finish();
        tracing::subscriber::with_default(subscriber, || {
            let req = Request::get("/v1/projects").header("x-request-id", "req_1").body(()).expect("request");
            assert!(!make_span(&req, Level::INFO).is_disabled());
            assert!(make_span(&req, Level::DEBUG).is_disabled(), "DEBUG is filtered out at INFO");
        });
    }
}
