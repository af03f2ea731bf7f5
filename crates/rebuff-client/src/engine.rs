//! The retry loop, shared by [`Client`](crate::Client) and the middleware adapter: attempts,
//! decoding, decisions, waits, the deadline, the budget, idempotency keys and tracing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use reqwest::{Request, Response, Url};
use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::contract::Contract;
use crate::error::{ApiError, Kind};
use crate::retry::{Decision, RetryPolicy, State, is_idempotent};

/// The `Idempotency-Key` request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The most of an error body that is read and decoded; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A boxed error, as re-authentication hooks return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future, as re-authentication hooks return.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The re-authentication hook: renews the credential and returns the headers that carry the
/// new one.
pub(crate) type ReauthHook = dyn Fn(&ApiError) -> BoxFuture<Result<HeaderMap, BoxError>> + Send + Sync;

/// The retry observer.
pub(crate) type RetryHook = dyn Fn(&RetryEvent<'_>) + Send + Sync;

/// One retry about to happen, as given to [`ClientBuilder::on_retry`](crate::ClientBuilder::on_retry).
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// How long the client waits before the next attempt.
    pub delay: Duration,
    /// Whether the client re-authenticates before the next attempt.
    pub reauth: bool,
    /// Why the attempt failed.
    pub error: &'a ApiError,
}

/// Sends one attempt. Implemented for `reqwest::Client` and for the middleware chain.
pub(crate) trait Transport {
    /// The transport's own error, handed back as is when the last attempt fails with it.
    type Error: Send;

    fn send(&mut self, request: Request) -> impl Future<Output = Result<Response, Self::Error>> + Send;

    /// The kind and the error to report.
    fn describe(error: &Self::Error) -> ApiError;
}

impl Transport for reqwest::Client {
    type Error = reqwest::Error;

    fn send(&mut self, request: Request) -> impl Future<Output = Result<Response, Self::Error>> + Send {
        self.execute(request)
    }

    fn describe(error: &Self::Error) -> ApiError {
        // reqwest::Error is not Clone; keep its message and kind.
        ApiError::transport(crate::error::classify(error), Some(Arc::new(Described(error.to_string()))))
    }
}

/// A transport error's message, kept when the error itself is handed back to the caller.
#[derive(Debug)]
pub(crate) struct Described(pub(crate) String);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Described {}

/// An error answer, kept whole so that the middleware can hand it on as a response.
#[derive(Debug)]
#[cfg_attr(not(feature = "middleware"), allow(dead_code))]
pub(crate) struct Raw {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) url: Url,
}

/// How a request ended.
#[derive(Debug)]
#[cfg_attr(not(feature = "middleware"), allow(dead_code))]
pub(crate) enum Outcome<E> {
    /// A response that is not an error (2xx, 3xx, 1xx).
    Response(Response),
    /// An error: the decoded answer with its raw form, or a transport failure with the
    /// transport's own error, or neither (deadline, timeout, failed re-authentication).
    Error { error: ApiError, raw: Option<Raw>, original: Option<E> },
}

/// One attempt's result.
enum Attempt<E> {
    Ok(Response),
    Failed { error: ApiError, raw: Option<Raw>, original: Option<E> },
}

/// What the loop needs from a client.
pub(crate) struct Engine<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) contract: &'a Contract,
    pub(crate) reauth: Option<&'a ReauthHook>,
    pub(crate) on_retry: Option<&'a RetryHook>,
}

impl Engine<'_> {
    /// Sends `request` until it succeeds or the policy says stop.
    pub(crate) async fn run<T: Transport>(
        &self,
        mut request: Request,
        transport: &mut T,
    ) -> Outcome<T::Error> {
        let method = request.method().clone();
        if self.policy.idempotency_keys()
            && method == Method::POST
            && !request.headers().contains_key(IDEMPOTENCY_KEY)
        {
            request.headers_mut().insert(IDEMPOTENCY_KEY, new_idempotency_key());
        }
        let span = tracing::info_span!(
            "rebuff_client.request",
            http.request.method = %method,
            server.address = request.url().host_str().unwrap_or_default(),
            url.path = request.url().path(),
            attempts = Empty,
        );
        self.run_inner(request, transport).instrument(span).await
    }

    async fn run_inner<T: Transport>(&self, request: Request, transport: &mut T) -> Outcome<T::Error> {
        let started = Instant::now();
        let deadline = self.policy.deadline().map(|d| started + d);
        let replay_safe = is_idempotent(request.method()) || request.headers().contains_key(IDEMPOTENCY_KEY);
        let mut template = Some(request);
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut reauthed = false;
        let mut last_cost = None;
        loop {
            attempts += 1;
            // A body that cannot be cloned (a stream) is sent once, without retries.
            let Some(this) = template.as_ref().and_then(Request::try_clone).or_else(|| template.take())
            else {
                unreachable!("the loop stops once the template is gone")
            };
            let span = tracing::info_span!(
                "rebuff_client.attempt",
                attempt = attempts,
                http.response.status_code = Empty,
                request_id = Empty,
                error.kind = Empty,
            );
            let attempt = self.attempt(this, transport).instrument(span.clone());
            let result = match deadline {
                None => attempt.await,
                Some(at) => match tokio::time::timeout_at(at, attempt).await {
                    Ok(r) => r,
                    Err(_) => {
                        span.record("error.kind", "deadline");
                        tracing::Span::current().record("attempts", attempts);
                        let error = ApiError::transport(Kind::Deadline, None).with_attempts(attempts);
                        return Outcome::Error { error, raw: None, original: None };
                    }
                },
            };
            let (error, raw, original) = match result {
                Attempt::Ok(response) => {
                    tracing::Span::current().record("attempts", attempts);
                    let budget = self.policy.budget();
                    budget.deposit(last_cost.unwrap_or(1));
                    return Outcome::Response(response);
                }
                Attempt::Failed { error, raw, original } => (error.with_attempts(attempts), raw, original),
            };
            let state = State {
                retries,
                replay_safe,
                can_reauth: self.reauth.is_some() && !reauthed && template.is_some(),
                remaining: deadline.map(|at| at.saturating_duration_since(Instant::now())),
            };
            let decision = if template.is_some() {
                self.policy.decide(&error, &state)
            } else {
                Decision::Stop(crate::retry::Stop::NotReplayable)
            };
            match decision {
                Decision::Stop(why) => {
                    tracing::debug!(attempt = attempts, reason = ?why, error = %error, "not retrying");
                    tracing::Span::current().record("attempts", attempts);
                    return Outcome::Error { error, raw, original };
                }
                Decision::Reauth => {
                    // `decide` answers `Reauth` only when there is a hook.
                    let Some(hook) = self.reauth else {
                        return Outcome::Error { error, raw, original };
                    };
                    reauthed = true;
                    self.notify(attempts, Duration::ZERO, true, &error);
                    tracing::debug!(attempt = attempts, error = %error, "re-authenticating");
                    let renewed = match deadline {
                        None => hook(&error).await,
                        Some(at) => match tokio::time::timeout_at(at, hook(&error)).await {
                            Ok(r) => r,
                            Err(_) => {
                                let error = ApiError::transport(Kind::Deadline, None).with_attempts(attempts);
                                return Outcome::Error { error, raw: None, original: None };
                            }
                        },
                    };
                    match renewed {
                        Ok(headers) => {
                            if let Some(t) = template.as_mut() {
                                replace_headers(t.headers_mut(), headers);
                            }
                        }
                        Err(cause) => {
                            tracing::Span::current().record("attempts", attempts);
                            let error = ApiError::transport(Kind::Reauth, Some(Arc::from(cause)))
                                .with_attempts(attempts);
                            return Outcome::Error { error, raw, original: None };
                        }
                    }
                }
                Decision::Retry { delay, cost } => {
                    retries += 1;
                    last_cost = Some(cost);
                    self.notify(attempts, delay, false, &error);
                    tracing::debug!(
                        attempt = attempts,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %error,
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn notify(&self, attempt: u32, delay: Duration, reauth: bool, error: &ApiError) {
        if let Some(hook) = self.on_retry {
            hook(&RetryEvent { attempt, delay, reauth, error });
        }
    }

    /// Sends once; reads and decodes an error answer. Records the status and the request id
    /// the server returned on the current (attempt) span.
    async fn attempt<T: Transport>(&self, request: Request, transport: &mut T) -> Attempt<T::Error> {
        let url = request.url().clone();
        let sent = transport.send(request);
        let sent = match self.policy.attempt_timeout() {
            None => sent.await,
            Some(limit) => match tokio::time::timeout(limit, sent).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::Span::current().record("error.kind", "timeout");
                    return Attempt::Failed {
                        error: ApiError::transport(Kind::Timeout, None),
                        raw: None,
                        original: None,
                    };
                }
            },
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let error = T::describe(&e);
                tracing::Span::current().record("error.kind", kind_name(error.kind()));
                return Attempt::Failed { error, raw: None, original: Some(e) };
            }
        };
        let span = tracing::Span::current();
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if let Some(id) = response.headers().get(rebuff::dialect::X_REQUEST_ID).and_then(|v| v.to_str().ok())
        {
            span.record("request_id", id);
        }
        if !(status.is_client_error() || status.is_server_error()) {
            return Attempt::Ok(response);
        }
        let version = response.version();
        let headers = response.headers().clone();
        let body = match read_capped(response).await {
            Ok(b) => b,
            Err(e) => {
                let error = ApiError::from_reqwest(e);
                span.record("error.kind", kind_name(error.kind()));
                return Attempt::Failed { error, raw: None, original: None };
            }
        };
        let error = self.contract.decode(status, &headers, &body);
        if let Some(id) = error.request_id() {
            span.record("request_id", id);
        }
        span.record("error.kind", "status");
        Attempt::Failed { error, raw: Some(Raw { status, version, headers, body, url }), original: None }
    }
}

const fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Status => "status",
        Kind::Connect => "connect",
        Kind::Timeout => "timeout",
        Kind::Reset => "reset",
        Kind::Deadline => "deadline",
        Kind::Reauth => "reauth",
        Kind::Request => "request",
    }
}

/// Reads a body, keeping at most [`MAX_ERROR_BODY`] bytes.
pub(crate) async fn read_capped(mut response: Response) -> Result<Bytes, reqwest::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ERROR_BODY - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A fresh idempotency key: 128 random bits.
fn new_idempotency_key() -> HeaderValue {
    let key = format!("rbk_{:032x}", rand::random::<u128>());
    HeaderValue::try_from(key).unwrap_or_else(|_| unreachable!("ASCII hex is a valid header value"))
}

/// Sets every header of `new` on `headers`, replacing the values they had.
fn replace_headers(headers: &mut HeaderMap, new: HeaderMap) {
    let mut last = None;
    for (name, value) in new {
        match name {
            Some(name) => {
                headers.insert(name.clone(), value);
                last = Some(name);
            }
            None => {
                if let Some(name) = &last {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
}
