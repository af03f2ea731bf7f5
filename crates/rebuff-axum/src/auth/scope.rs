//! [`RequireScopeLayer`]: refuses a [`Principal`] without the scope a route needs.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use super::principal::{Principal, Subject};
use crate::{ApiError, Code};

/// Requires a scope of the request's [`Principal`]; `admin` implies every scope.
///
/// Put it behind [`AuthLayer`](super::AuthLayer), with `route_layer` so that an unknown route
/// stays a 404. A principal without the scope gets `insufficient_scope` (403) naming the scope,
/// with `WWW-Authenticate: Bearer error="insufficient_scope", scope="<scope>"` (RFC 6750
/// §3.1); a request without a principal gets `authentication_required` (401).
///
/// ```
/// use axum::{Router, routing::post};
/// use rebuff_axum::auth::RequireScopeLayer;
///
/// let writes: Router = Router::new()
///     .route("/v1/projects", post(|| async { "created" }))
///     .route_layer(RequireScopeLayer::new("write"));
/// ```
#[derive(Debug, Clone)]
pub struct RequireScopeLayer {
    scope: Arc<Scope>,
}

#[derive(Debug)]
struct Scope {
    name: String,
    challenge: HeaderValue,
}

impl RequireScopeLayer {
    /// The codes this layer can raise, for
    /// [`ProblemLayer::builder`](crate::ProblemLayer::builder).
    pub const CODES: &'static [crate::Code] =
        &[crate::Code::AuthenticationRequired, crate::Code::InsufficientScope];

    /// Requires `scope`.
    ///
    /// # Panics
    /// When `scope` is not a scope token of RFC 6749 §3.3 (printable ASCII other than space,
    /// `"` and `\`): a bug in the service, found when the router is built.
    pub fn new(scope: impl Into<String>) -> Self {
        let name = scope.into();
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
            "`{name}` is not a valid scope token"
        );
        let challenge =
            HeaderValue::try_from(format!("Bearer error=\"insufficient_scope\", scope=\"{name}\""))
                .unwrap_or_else(|_| unreachable!("a scope token is a valid header value"));
        RequireScopeLayer { scope: Arc::new(Scope { name, challenge }) }
    }

    /// The scope required.
    pub fn scope(&self) -> &str {
        &self.scope.name
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireScope { inner, scope: self.scope.clone() }
    }
}

impl RequireScopeLayer {
    /// The refusal to answer when `req`'s principal lacks the scope (`None` when it holds
    /// it): what [`RequireScope`] and the [`Guard`](crate::guard::Guard) check.
    pub(crate) fn refusal<B>(&self, req: &Request<B>) -> Option<Response> {
        check(req.extensions().get::<Principal>(), &self.scope).err().map(IntoResponse::into_response)
    }
}

/// The service of [`RequireScopeLayer`].
#[derive(Debug, Clone)]
pub struct RequireScope<S> {
    inner: S,
    scope: Arc<Scope>,
}

impl<S, B> Service<Request<B>> for RequireScope<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match check(req.extensions().get::<Principal>(), &self.scope) {
            Ok(()) => Either::Left(self.inner.call(req)),
            Err(e) => Either::Right(std::future::ready(Ok(e.into_response()))),
        }
    }
}

fn check(principal: Option<&Principal>, scope: &Scope) -> Result<(), ApiError> {
    let Some(principal) = principal else {
        return Err(ApiError::new(Code::AuthenticationRequired));
    };
    if principal.has_scope(&scope.name) {
        return Ok(());
    }
    let holder = match principal.subject {
        Subject::Key { .. } => "API key",
        Subject::Session { .. } => "session",
    };
    let mut err = ApiError::new(Code::InsufficientScope)
        .detail(format!("This {holder} lacks the `{}` scope.", scope.name));
    err.problem_mut().headers.push((WWW_AUTHENTICATE, scope.challenge.clone()));
    Err(err)
}
