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
use rebuff::catalog::GENERIC_CODES;
use rebuff::dialect::X_REQUEST_ID;
use rebuff::{Catalog, ErrorCode, MissingCodes, Problem, RenderOptions};
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
///
/// # The catalog must have the codes the layers raise
///
/// A layer that raises a code the catalog lacks would answer `500` (or, without
/// `internal_error`, an empty body), so the check happens when the layer is built:
///
/// * [`ProblemLayer::builder`] takes the codes of the layers in use
///   (`.raises(AuthLayer::CODES)`) and [`build`](ProblemLayerBuilder::build) returns
///   [`MissingCodes`], naming every code the catalog lacks, in one message.
/// * [`ProblemLayer::try_new`] checks every code this crate's layers and extractors can raise
///   ([`crate::codes`]); [`ProblemLayer::new`] does the same and panics with that message.
///
/// A service's own catalog that `extends = "standard"` has them all.
///
/// ```
/// use std::sync::Arc;
/// use rebuff::Catalog;
/// use rebuff_axum::{AuthLayer, ProblemLayer};
///
/// let widgets = Catalog::from_toml_str("widgets.toml", r#"
///     [catalog]
///     name = "widgets"
///     dialect = "rebuff"
///     type_uri = "https://widgets.example/errors#{anchor}"
///
///     [[error]]
///     code = "widget_not_found"
///     status = 404
///     category = "invalid_request_error"
///     title = "Widget not found"
///     when = "No widget has this id."
///     fix = "Check the id."
///     retry = "never"
/// "#)?;
/// let err = ProblemLayer::builder(Arc::new(widgets)).raises(AuthLayer::CODES).build().unwrap_err();
/// assert!(err.to_string().starts_with("catalog `widgets` lacks 18 codes"), "{err}");
/// assert!(err.codes().iter().any(|c| c == "api_key_missing"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProblemLayer {
    inner: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    catalog: Arc<Catalog>,
    options: RenderOptions,
    by_status: HashMap<u16, &'static str>,
    throttle: Arc<LogThrottle>,
}

impl ProblemLayer {
    /// The codes this layer needs whatever the layers inside it: what a router and axum's
    /// own layers answer bare (`404` for no route, `405` with `Allow`, `413` from a body
    /// limit), the fallbacks of a bare error status it has no generic code for (`400`,
    /// `500`), and `internal_error`, which a code outside the catalog is answered with.
    pub const CODES: &'static [crate::Code] = &[
        crate::Code::BadRequest,
        crate::Code::ResourceNotFound,
        crate::Code::MethodNotAllowed,
        crate::Code::PayloadTooLarge,
        crate::Code::InternalError,
    ];

    /// Renders with `catalog`, which must have every code this crate's layers and extractors
    /// can raise ([`crate::codes`]).
    ///
    /// # Panics
    /// When the catalog lacks some of them, with the message of [`MissingCodes`] naming them
    /// all. Use [`ProblemLayer::try_new`] to handle that, or [`ProblemLayer::builder`] to
    /// check only the codes of the layers in use.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self::try_new(catalog).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Renders with `catalog`, once it is checked to have every code this crate's layers and
    /// extractors can raise ([`crate::codes`]).
    ///
    /// # Errors
    /// [`MissingCodes`] naming every code the catalog lacks.
    pub fn try_new(catalog: Arc<Catalog>) -> Result<Self, MissingCodes> {
        Self::builder(catalog).raises(&crate::codes()).build()
    }

    /// A builder that checks the catalog against [`ProblemLayer::CODES`] and the codes of the
    /// layers given to [`raises`](ProblemLayerBuilder::raises).
    pub fn builder(catalog: Arc<Catalog>) -> ProblemLayerBuilder {
        ProblemLayerBuilder { catalog, raises: Vec::new(), debug: false }
    }

    fn unchecked(catalog: Arc<Catalog>, debug: bool) -> Self {
        // Only the generic codes the catalog has; a status without one falls back in `finish`.
        let by_status = GENERIC_CODES.iter().filter(|(_, c)| catalog.get(c).is_some()).copied().collect();
        ProblemLayer {
            inner: Arc::new(Config {
                catalog,
                options: RenderOptions::debug(debug),
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

    /// The configuration, for the [`GuardLayer`](crate::guard::GuardLayer) that renders with
    /// it.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.inner
    }
}

/// Builds a [`ProblemLayer`] after checking that its catalog has the codes of the layers in
/// use; see [`ProblemLayer::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ProblemLayerBuilder {
    catalog: Arc<Catalog>,
    raises: Vec<&'static str>,
    debug: bool,
}

impl ProblemLayerBuilder {
    /// Adds codes the layers and handlers inside can raise: a layer's `CODES`
    /// ([`AuthLayer::CODES`](crate::AuthLayer::CODES), [`extract::CODES`](crate::extract::CODES),
    /// ...), or a service's own codes.
    pub fn raises<C: ErrorCode>(mut self, codes: &[C]) -> Self {
        self.raises.extend(codes.iter().map(ErrorCode::as_str));
        self
    }

    /// Shows the internal cause of masked errors in bodies. Never in production.
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// The layer, if the catalog has [`ProblemLayer::CODES`] and every code given to
    /// [`raises`](ProblemLayerBuilder::raises).
    ///
    /// # Errors
    /// [`MissingCodes`] naming, in one message, every code the catalog lacks.
    pub fn build(self) -> Result<ProblemLayer, MissingCodes> {
        let needed = ProblemLayer::CODES.iter().map(|c| c.as_str()).chain(self.raises.iter().copied());
        self.catalog.require(needed, "the layers in use")?;
        Ok(ProblemLayer::unchecked(self.catalog, self.debug))
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
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request_id = crate::request_id::current(&req);
        ResponseFuture { inner: self.inner.call(req), rendering: Some((self.config.clone(), request_id)) }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ProblemService`]: the inner service's, rendered when it is
    /// ready (no box: it runs on every request).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        rendering: Option<(Arc<Config>, Option<HeaderValue>)>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx))?.map(Body::new);
        let Some((config, request_id)) = this.rendering.take() else {
            // Polled after it completed: answer as the inner future would, unrendered.
            return Poll::Ready(Ok(res));
        };
        Poll::Ready(Ok(config.finish(request_id, Echo::Always, res)))
    }
}

impl Config {
    /// Renders `res`, the answer to the request whose id is `request_id`, if it is an error:
    /// what [`ProblemService`] and the [`Guard`](crate::guard::Guard) do with every response.
    pub(crate) fn finish(&self, request_id: Option<HeaderValue>, echo: Echo, res: Response) -> Response {
        finish(self, request_id, echo, res)
    }
}

/// Which responses [`Config::finish`] puts the request id on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Echo {
    /// Every response: what a [`ProblemLayer`] promises.
    Always,
    /// Only the errors it renders: inside another [`ProblemLayer`] (the guard's inner
    /// rendering), which puts the id on the rest.
    Errors,
}

fn finish(config: &Config, request_id: Option<HeaderValue>, echo: Echo, mut res: Response) -> Response {
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
        if let Some(id) = request_id.filter(|_| echo == Echo::Always) {
            res.headers_mut().insert(X_REQUEST_ID, id);
        }
        return res;
    };
    // The body names the request's id; the header is the request's own value, shared rather
    // than made again from the text (unless the problem names another id).
    let mut options = config.options;
    let mut id_header = None;
    if problem.request_id.is_none()
        && let Some(id) = request_id
        && let Ok(text) = id.to_str()
    {
        problem.request_id = Some(text.to_owned());
        options = options.without_request_id_header();
        id_header = Some(id);
    }
    let rendered = match config.catalog.render_with(&problem, options) {
        Ok(r) => r,
        Err(e) => {
            // A code outside the catalog is a bug in the service: answer masked, log it.
            tracing::error!(error = %e, "rendering an error that is not in the catalog");
            let mut internal = Problem::dynamic("internal_error").cause(e);
            internal.request_id = problem.request_id.clone();
            match config.catalog.render_with(&internal, options) {
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
    // Keep what layers set on the way out, minus what described the placeholder body, and
    // one value per rendered header. (An error straight from a handler has no header: the
    // rendered ones are taken as they are, unless a name repeats.)
    let headers = std::mem::take(res.headers_mut());
    *out.headers_mut() = if headers.is_empty() && parts.headers.keys_len() == parts.headers.len() {
        parts.headers
    } else {
        let mut headers = headers;
        headers.remove(CONTENT_TYPE);
        headers.remove(http::header::CONTENT_LENGTH);
        for (name, value) in parts.headers.iter() {
            headers.insert(name.clone(), value.clone());
        }
        headers
    };
    if let Some(id) = id_header {
        out.headers_mut().insert(X_REQUEST_ID, id);
    }
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
    use std::convert::Infallible;

    use axum::response::IntoResponse;
    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::{ApiError, Code, RequestIdLayer};

    /// An error response through a [`ProblemLayer`] inside a [`RequestIdLayer`], for a request
    /// that sends `X-Request-Id: req_incoming`; the handler's problem names `named` as its id.
    async fn rendered(named: Option<&'static str>) -> (Option<HeaderValue>, serde_json::Value) {
        let problems = ProblemLayer::new(Arc::new(Catalog::standard().clone()));
        let handler = tower::service_fn(move |_req: Request<Body>| async move {
            let mut err = ApiError::new(Code::ResourceNotFound);
            err.problem_mut().request_id = named.map(str::to_owned);
            Ok::<_, Infallible>(err.into_response())
        });
        let service = RequestIdLayer::new().layer(problems.layer(handler));
        let req = Request::builder().header(X_REQUEST_ID, "req_incoming").body(Body::empty());
        let res = service.oneshot(req.expect("a request")).await.expect("infallible");
        let id = res.headers().get(X_REQUEST_ID).cloned();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("the body");
        (id, serde_json::from_slice(&body).expect("a JSON body"))
    }

    #[tokio::test]
    async fn the_header_and_the_body_name_the_same_request_id() {
        // The request's own id, in both.
        let (header, body) = rendered(None).await;
        assert_eq!(header.as_ref().and_then(|v| v.to_str().ok()), Some("req_incoming"));
        assert_eq!(body["request_id"], "req_incoming");
        // An id the problem names itself is the one the header carries too.
        let (header, body) = rendered(Some("req_named")).await;
        assert_eq!(header.as_ref().and_then(|v| v.to_str().ok()), Some("req_named"));
        assert_eq!(body["request_id"], "req_named");
    }

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
