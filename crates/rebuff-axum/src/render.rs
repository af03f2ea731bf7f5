//! [`ProblemLayer`]: renders every error response from the catalog.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, StatusCode};
use rebuff::dialect::X_REQUEST_ID;
use rebuff::{Catalog, Problem, RenderOptions};
use tower::{Layer, Service};

use crate::error::Pending;

/// Marks a response whose body was rendered from the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

/// Renders errors in the catalog's dialect.
///
/// * A response carrying an [`ApiError`](crate::ApiError) is rendered from its occurrence;
///   headers set on the way out (rate-limit fields, `Allow`) are kept.
/// * Any other error response (a bare `404` from the router, `405` with `Allow`, `413` from a
///   body limit, a timeout) is replaced by the catalog error its status maps to, so the API
///   has one envelope whatever produced the error.
/// * Every response gets the request id in `X-Request-Id`, and every error body carries it.
/// * Masked errors are logged with their cause here, once, with the request id; the body never
///   shows the cause unless the layer is in debug mode.
#[derive(Debug, Clone)]
pub struct ProblemLayer {
    inner: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    catalog: Arc<Catalog>,
    options: RenderOptions,
    by_status: HashMap<u16, &'static str>,
    throttle: Arc<LogThrottle>,
}

/// The code a bare error response of each status becomes.
const STATUS_CODES: &[(u16, &str)] = &[
    (400, "bad_request"),
    (401, "authentication_required"),
    (403, "forbidden"),
    (404, "resource_not_found"),
    (405, "method_not_allowed"),
    (408, "request_timeout"),
    (409, "resource_conflict"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (422, "unprocessable_entity"),
    (429, "rate_limit_exceeded"),
    (500, "internal_error"),
    (502, "bad_gateway"),
    (503, "service_unavailable"),
    (504, "gateway_timeout"),
];

impl ProblemLayer {
    /// Renders with `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let by_status = STATUS_CODES.iter().filter(|(_, c)| catalog.get(c).is_some()).copied().collect();
        ProblemLayer {
            inner: Arc::new(Config {
                catalog,
                options: RenderOptions::default(),
                by_status,
                throttle: Arc::new(LogThrottle::default()),
            }),
        }
    }

    /// Shows the internal cause of masked errors in bodies. Never in production.
    #[must_use]
    pub fn debug(mut self, debug: bool) -> Self {
        Arc::make_mut(&mut self.inner).options = RenderOptions::debug(debug);
        self
    }

    /// The catalog in use.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }
}

impl<S> Layer<S> for ProblemLayer {
    type Service = ProblemService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ProblemService { inner, config: self.inner.clone() }
    }
}

/// The service of [`ProblemLayer`].
#[derive(Debug, Clone)]
pub struct ProblemService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S, B, ResBody> Service<Request<B>> for ProblemService<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    // Any body the inner service answers with (tower-http's catch-panic boxes its own);
    // `Body::new` does not box an axum `Body` again.
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request_id = crate::request_id::current(&req);
        let config = self.config.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await?.map(Body::new);
            Ok(finish(&config, request_id, res))
        })
    }
}

fn finish(config: &Config, request_id: Option<HeaderValue>, mut res: Response) -> Response {
    let problem = match res.extensions_mut().remove::<Pending>() {
        Some(Pending(p)) => Some(*p),
        None if res.status().is_client_error() || res.status().is_server_error() => {
            if res.extensions().get::<Rendered>().is_some() {
                None
            } else {
                let status = res.status().as_u16();
                let fallback = if res.status().is_server_error() { "internal_error" } else { "bad_request" };
                let code = config
                    .by_status
                    .get(&status)
                    .copied()
                    .or_else(|| config.catalog.get(fallback).map(|_| fallback));
                code.map(Problem::dynamic)
            }
        }
        None => None,
    };
    let Some(mut problem) = problem else {
        if let Some(id) = request_id {
            res.headers_mut().insert(X_REQUEST_ID, id);
        }
        return res;
    };
    if problem.request_id.is_none() {
        problem.request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).map(str::to_owned);
    }
    let rendered = match config.catalog.render_with(&problem, config.options) {
        Ok(r) => r,
        Err(e) => {
            // A code outside the catalog is a bug in the service: answer masked, log it.
            tracing::error!(error = %e, "rendering an error that is not in the catalog");
            let mut internal = Problem::dynamic("internal_error").cause(e);
            internal.request_id = problem.request_id.clone();
            match config.catalog.render_with(&internal, config.options) {
                Ok(r) => r,
                Err(_) => {
                    let mut res = Response::new(Body::empty());
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    return res;
                }
            }
        }
    };
    log(config, &problem, rendered.status());
    let (parts, body) = rendered.into_parts();
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = parts.status;
    // Keep what layers set on the way out, minus what described the placeholder body.
    let mut headers = std::mem::take(res.headers_mut());
    headers.remove(CONTENT_TYPE);
    headers.remove(http::header::CONTENT_LENGTH);
    for (name, value) in parts.headers.iter() {
        headers.insert(name.clone(), value.clone());
    }
    *out.headers_mut() = headers;
    *out.extensions_mut() = std::mem::take(res.extensions_mut());
    out.extensions_mut().insert(Rendered);
    out
}

fn log(config: &Config, problem: &Problem, status: StatusCode) {
    let masked = config.catalog.get(problem.code()).is_none_or(|e| e.masked);
    let id = problem.request_id.as_deref().unwrap_or("-");
    if masked || status.is_server_error() {
        let cause = problem.cause.as_deref().unwrap_or("none recorded");
        // A backend that is down fails every request the same way: say so once per interval,
        // with how many were not logged, rather than once per request.
        let Some(suppressed) = config.throttle.admit(problem.code(), cause) else {
            return;
        };
        tracing::error!(
            request_id = id,
            code = problem.code(),
            status = status.as_u16(),
            cause,
            detail = problem.detail.as_deref().unwrap_or(""),
            same_failures_not_logged = suppressed,
            "request failed"
        );
    } else {
        tracing::debug!(request_id = id, code = problem.code(), status = status.as_u16(), "request rejected");
    }
}

/// Logs each distinct (code, cause) at most once per [`LogThrottle::INTERVAL`].
#[derive(Debug, Default)]
struct LogThrottle {
    seen: std::sync::Mutex<HashMap<(String, String), (std::time::Instant, u64)>>,
}

impl LogThrottle {
    const INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
    /// Distinct failures remembered; past this the map starts afresh (bounded memory).
    const CAPACITY: usize = 1024;

    /// `Some(n)` when this failure should be logged now (`n` identical ones were skipped since
    /// the last time), `None` to skip it.
    fn admit(&self, code: &str, cause: &str) -> Option<u64> {
        let now = std::time::Instant::now();
        let Ok(mut seen) = self.seen.lock() else { return Some(0) };
        if seen.len() >= Self::CAPACITY {
            seen.clear();
        }
        match seen.get_mut(&(code.to_owned(), cause.to_owned())) {
            Some((last, skipped)) if now.duration_since(*last) < Self::INTERVAL => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                *last = now;
                Some(std::mem::take(skipped))
            }
            None => {
                seen.insert((code.to_owned(), cause.to_owned()), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LogThrottle;

    #[test]
    fn repeated_failures_are_logged_once_per_interval() {
        let t = LogThrottle::default();
        assert_eq!(t.admit("service_unavailable", "connection refused"), Some(0));
        assert_eq!(t.admit("service_unavailable", "connection refused"), None);
        assert_eq!(t.admit("service_unavailable", "connection refused"), None);
        // Another cause is news.
        assert_eq!(t.admit("service_unavailable", "timed out"), Some(0));
        // After the interval the count of skipped ones is reported.
        if let Ok(mut seen) = t.seen.lock() {
            for (last, _) in seen.values_mut() {
                *last = last.checked_sub(LogThrottle::INTERVAL).unwrap_or(*last);
            }
        }
        assert_eq!(t.admit("service_unavailable", "connection refused"), Some(2));
    }
}
