//! The same retries for `reqwest-middleware` users (feature `middleware`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::{Extensions, HeaderMap};
use reqwest::{Request, Response, ResponseBuilderExt as _};
use reqwest_middleware::{Middleware, Next};

use crate::contract::Contract;
use crate::engine::{
    BoxError, Described, Engine, Outcome, Raw, ReauthHook, RetryEvent, RetryHook, Transport,
};
use crate::error::{ApiError, Kind};
use crate::retry::RetryPolicy;

/// A `reqwest_middleware::Middleware` that retries by a [`RetryPolicy`] and decodes error
/// answers, for a `ClientWithMiddleware`.
///
/// It follows the middleware convention: the last error answer is returned as an `Ok`
/// response (its body intact), with its decoded [`ApiError`] in the response's
/// extensions; a transport failure is returned as the chain's own error; a passed deadline
/// or a failed re-authentication is a `reqwest_middleware::Error::Middleware` holding an
/// [`ApiError`].
///
/// ```
/// use rebuff_client::{ApiError, Contract, RetryMiddleware, RetryPolicy};
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(RetryMiddleware::new(RetryPolicy::default()).contract(Contract::builtin("rebuff").expect("built in")))
///     .build();
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> Result<(), reqwest_middleware::Error> {
/// let response = client.get("http://127.0.0.1:8080/v1/projects").send().await?;
/// if let Some(error) = response.extensions().get::<ApiError>() {
///     eprintln!("{error}");
/// }
/// # Ok(())
/// # }
/// ```
pub struct RetryMiddleware {
    policy: RetryPolicy,
    contract: Contract,
    reauth: Option<Arc<ReauthHook>>,
    on_retry: Option<Arc<RetryHook>>,
}

impl fmt::Debug for RetryMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryMiddleware")
            .field("policy", &self.policy)
            .field("contract", &self.contract)
            .field("reauth", &self.reauth.is_some())
            .finish_non_exhaustive()
    }
}

impl RetryMiddleware {
    /// A middleware with this policy and no contract.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryMiddleware { policy, contract: Contract::none(), reauth: None, on_retry: None }
    }

    /// The API's contract, to identify codes and retry by their class.
    #[must_use]
    pub fn contract(mut self, contract: Contract) -> Self {
        self.contract = contract;
        self
    }

    /// The re-authentication hook; see
    /// [`ClientBuilder::reauthenticate`](crate::ClientBuilder::reauthenticate).
    #[must_use]
    pub fn reauthenticate<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&ApiError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HeaderMap, BoxError>> + Send + 'static,
    {
        self.reauth = Some(Arc::new(move |e: &ApiError| Box::pin(hook(e)) as _));
        self
    }

    /// Called before each retry; see [`ClientBuilder::on_retry`](crate::ClientBuilder::on_retry).
    #[must_use]
    pub fn on_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RetryEvent<'_>) + Send + Sync + 'static,
    {
        self.on_retry = Some(Arc::new(hook));
        self
    }
}

/// The rest of the middleware chain, as a transport.
struct Chain<'a, 'e> {
    next: Next<'a>,
    extensions: &'e mut Extensions,
}

impl Transport for Chain<'_, '_> {
    type Error = reqwest_middleware::Error;

    fn send(&mut self, request: Request) -> impl Future<Output = Result<Response, Self::Error>> + Send {
        self.next.clone().run(request, self.extensions)
    }

    fn describe(error: &Self::Error) -> ApiError {
        let kind = match error {
            reqwest_middleware::Error::Reqwest(e) => crate::error::classify(e),
            reqwest_middleware::Error::Middleware(e) => match e.downcast_ref::<ApiError>() {
                Some(api) => api.kind(),
                None => Kind::Request,
            },
        };
        ApiError::transport(kind, Some(Arc::new(Described(error.to_string()))))
    }
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let engine = Engine {
            policy: &self.policy,
            contract: &self.contract,
            reauth: self.reauth.as_deref(),
            on_retry: self.on_retry.as_deref(),
        };
        let mut chain = Chain { next, extensions };
        match engine.run(req, &mut chain).await {
            Outcome::Response(r) => Ok(r),
            Outcome::Error { original: Some(original), .. } => Err(original),
            Outcome::Error { error, raw: Some(raw), .. } => Ok(rebuild(raw, error)),
            Outcome::Error { error, .. } => Err(reqwest_middleware::Error::middleware(error)),
        }
    }
}

/// The error answer as a response again, its decoded error in the extensions.
fn rebuild(raw: Raw, error: ApiError) -> Response {
    let Raw { status, version, headers, body, url } = raw;
    let mut res = http::Response::new(body);
    *res.status_mut() = status;
    *res.version_mut() = version;
    *res.headers_mut() = headers;
    res.extensions_mut().insert(error);
    let (mut parts, body) = res.into_parts();
    // Carry the URL the way reqwest expects it.
    let with_url = http::Response::builder().url(url).body(()).map(|r| r.into_parts().0.extensions);
    if let Ok(ext) = with_url {
        parts.extensions.extend(ext);
    }
    Response::from(http::Response::from_parts(parts, body))
}
