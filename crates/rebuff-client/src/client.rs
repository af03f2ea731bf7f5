//! The client: a `reqwest::Client` with decoding and retries.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::HeaderMap;
use reqwest::{IntoUrl, Method, Request, RequestBuilder, Response};

use crate::contract::Contract;
use crate::engine::{BoxError, Engine, Outcome, ReauthHook, RetryEvent, RetryHook};
use crate::error::ApiError;
use crate::retry::RetryPolicy;

/// A `reqwest::Client` that decodes error answers into [`ApiError`]s and retries what is
/// safe to retry, by a [`RetryPolicy`].
///
/// Clones share the connection pool, the policy and its [`RetryBudget`](crate::RetryBudget).
///
/// ```no_run
/// use rebuff_client::{Client, Contract};
/// use rebuff::standard::Code;
///
/// # async fn run() -> Result<(), rebuff_client::ApiError> {
/// let client = Client::builder().contract(Contract::builtin("rebuff").expect("built in")).build();
/// let request = client.get("http://127.0.0.1:8080/v1/projects").bearer_auth("rb_test_...").build()?;
/// match client.execute(request).await {
///     Ok(response) => println!("{}", response.status()),
///     Err(e) if e.code_as::<Code>() == Some(Code::ApiKeyExpired) => eprintln!("renew the key"),
///     Err(e) => eprintln!("{e} (request id {:?})", e.request_id()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    shared: Arc<Shared>,
}

struct Shared {
    policy: RetryPolicy,
    contract: Contract,
    reauth: Option<Box<ReauthHook>>,
    on_retry: Option<Box<RetryHook>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("policy", &self.shared.policy)
            .field("contract", &self.shared.contract)
            .field("reauth", &self.shared.reauth.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with a default `reqwest::Client`, the default policy and no contract.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            http: None,
            policy: RetryPolicy::default(),
            contract: Contract::none(),
            reauth: None,
            on_retry: None,
        }
    }

    /// The `reqwest::Client` underneath.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.shared.policy
    }

    /// The API's contract.
    pub fn contract(&self) -> &Contract {
        &self.shared.contract
    }

    /// Starts a request on the underlying `reqwest::Client`; send it with
    /// [`execute`](Self::execute) after `build()`, or with [`send`](Self::send).
    pub fn request<U: IntoUrl>(&self, method: Method, url: U) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Starts a `GET`.
    pub fn get<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.http.get(url)
    }

    /// Starts a `POST`.
    pub fn post<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.http.post(url)
    }

    /// Starts a `PUT`.
    pub fn put<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.http.put(url)
    }

    /// Starts a `PATCH`.
    pub fn patch<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.http.patch(url)
    }

    /// Starts a `DELETE`.
    pub fn delete<U: IntoUrl>(&self, url: U) -> RequestBuilder {
        self.http.delete(url)
    }

    /// Builds and [executes](Self::execute) a request.
    ///
    /// # Errors
    /// As [`execute`](Self::execute); a request that cannot be built is a
    /// [`Kind::Request`](crate::Kind::Request) error.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, ApiError> {
        let request = request.build().map_err(ApiError::from_reqwest)?;
        self.execute(request).await
    }

    /// Sends a request, retrying by the policy, and returns the first response that is not
    /// an error (its body unread).
    ///
    /// A `POST` without an `Idempotency-Key` gets a generated one (unless the policy says not
    /// to), the same on every attempt. A request whose body cannot be cloned (a stream) is
    /// sent once. Each attempt is a tracing span `rebuff_client.attempt` with its number, the
    /// status and the request id the server returned, inside a `rebuff_client.request` span.
    ///
    /// # Errors
    /// The last attempt's error: a 4xx or 5xx answer, decoded ([`Kind::Status`]); a
    /// transport failure ([`Kind::Connect`], [`Kind::Timeout`], [`Kind::Reset`],
    /// [`Kind::Request`]); [`Kind::Deadline`] when the deadline passed during an attempt;
    /// [`Kind::Reauth`] when the re-authentication hook failed.
    ///
    /// [`Kind::Status`]: crate::Kind::Status
    /// [`Kind::Connect`]: crate::Kind::Connect
    /// [`Kind::Timeout`]: crate::Kind::Timeout
    /// [`Kind::Reset`]: crate::Kind::Reset
    /// [`Kind::Request`]: crate::Kind::Request
    /// [`Kind::Deadline`]: crate::Kind::Deadline
    /// [`Kind::Reauth`]: crate::Kind::Reauth
    pub async fn execute(&self, request: Request) -> Result<Response, ApiError> {
        let engine = Engine {
            policy: &self.shared.policy,
            contract: &self.shared.contract,
            reauth: self.shared.reauth.as_deref(),
            on_retry: self.shared.on_retry.as_deref(),
        };
        let mut http = self.http.clone();
        match engine.run(request, &mut http).await {
            Outcome::Response(r) => Ok(r),
            Outcome::Error { error, original: Some(original), .. } => {
                Err(ApiError::from_reqwest(original).with_attempts(error.attempts()))
            }
            Outcome::Error { error, .. } => Err(error),
        }
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    http: Option<reqwest::Client>,
    policy: RetryPolicy,
    contract: Contract,
    reauth: Option<Box<ReauthHook>>,
    on_retry: Option<Box<RetryHook>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("policy", &self.policy)
            .field("contract", &self.contract)
            .field("reauth", &self.reauth.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The `reqwest::Client` to send with (default: `reqwest::Client::new()`). Its own
    /// timeout, if set, applies to each attempt.
    #[must_use]
    pub fn http(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The API's contract, to identify codes and retry by their class (default: none).
    #[must_use]
    pub fn contract(mut self, contract: Contract) -> Self {
        self.contract = contract;
        self
    }

    /// A hook that renews an expired credential or session: run at most once per request,
    /// on an error whose retry class is `after_reauth`, before the request is sent again.
    /// It returns the headers that carry the new credential (`Authorization`, `Cookie`,
    /// `X-CSRF-Token`...), which replace the request's own; when it fails, the request ends
    /// with a [`Kind::Reauth`](crate::Kind::Reauth) error.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
    /// use rebuff_client::Client;
    ///
    /// let client = Client::builder()
    ///     .reauthenticate(|_error| async {
    ///         let token = "new-token"; // ask your identity provider here
    ///         let mut headers = HeaderMap::new();
    ///         headers.insert(AUTHORIZATION, HeaderValue::try_from(format!("Bearer {token}"))?);
    ///         Ok(headers)
    ///     })
    ///     .build();
    /// # drop(client);
    /// ```
    #[must_use]
    pub fn reauthenticate<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&ApiError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HeaderMap, BoxError>> + Send + 'static,
    {
        self.reauth = Some(Box::new(move |e: &ApiError| Box::pin(hook(e))));
        self
    }

    /// Called before each retry with the failed attempt, the delay and the error: for
    /// metrics or logs.
    #[must_use]
    pub fn on_retry<F>(mut self, hook: F) -> Self
    where
        F: Fn(&RetryEvent<'_>) + Send + Sync + 'static,
    {
        self.on_retry = Some(Box::new(hook));
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client {
            http: self.http.unwrap_or_default(),
            shared: Arc::new(Shared {
                policy: self.policy,
                contract: self.contract,
                reauth: self.reauth,
                on_retry: self.on_retry,
            }),
        }
    }
}
