//! The crate's one error type: an error answer of the API, decoded, or a transport failure.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use rebuff::{Dialect, Envelope, ErrorCode, FieldError, ParsedError, RetryClass};

use crate::contract::Known;

type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// What kind of failure an [`ApiError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The API answered with an error status (4xx or 5xx); the body is decoded.
    Status,
    /// No connection could be made (refused, unreachable, TLS failure). Nothing was sent.
    Connect,
    /// One attempt took longer than its timeout.
    Timeout,
    /// The connection was reset or closed before a complete response arrived. The request may
    /// or may not have been processed.
    Reset,
    /// The deadline across all attempts passed.
    Deadline,
    /// The re-authentication hook failed.
    Reauth,
    /// The request could not be sent for another reason (an invalid URL, a body that failed,
    /// too many redirects...).
    Request,
}

/// Everything that can go wrong when calling an API: an error answer, decoded from any of
/// the six envelopes (or a body that is none of them), or a transport failure.
///
/// Like `reqwest::Error`, it is opaque: ask it with [`kind`](ApiError::kind) and the `is_*`
/// methods, and read the decoded answer with the accessors, which return `None` for what the
/// response did not carry (and for transport failures).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use rebuff::standard::Code;
/// use rebuff_client::{Contract, Kind};
///
/// let arize = Contract::builtin("arize").expect("built in");
/// let body = br#"{"status":401,"title":"Unauthorized","type":"https://arize.com/docs/api-reference/errors#401","detail":"API key expired.","error_code":"INVALID_CREDENTIALS"}"#;
/// let error = arize.decode(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body);
/// assert_eq!(error.kind(), Kind::Status);
/// assert_eq!(error.code(), Some("INVALID_CREDENTIALS"));
/// assert_eq!(error.code_as::<Code>(), Some(Code::InvalidCredentials));
/// assert_eq!(error.message(), Some("API key expired."));
/// assert!(error.needs_reauth());
/// ```
#[derive(Clone)]
pub struct ApiError {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: Kind,
    status: Option<StatusCode>,
    parsed: Option<ParsedError>,
    known: Option<Known>,
    attempts: u32,
    source: Option<Source>,
}

impl ApiError {
    fn new(kind: Kind) -> Self {
        ApiError {
            inner: Box::new(Inner {
                kind,
                status: None,
                parsed: None,
                known: None,
                attempts: 1,
                source: None,
            }),
        }
    }

    pub(crate) fn from_parsed(status: StatusCode, parsed: ParsedError, known: Option<Known>) -> Self {
        let mut e = Self::new(Kind::Status);
        e.inner.status = Some(status);
        e.inner.parsed = Some(parsed);
        e.inner.known = known;
        e
    }

    pub(crate) fn transport(kind: Kind, source: Option<Source>) -> Self {
        let mut e = Self::new(kind);
        e.inner.source = source;
        e
    }

    pub(crate) fn from_reqwest(error: reqwest::Error) -> Self {
        let kind = classify(&error);
        let status = error.status();
        let mut e = Self::transport(kind, Some(Arc::new(error)));
        e.inner.status = status;
        e
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> Kind {
        self.inner.kind
    }

    /// Whether the API answered with an error status.
    pub fn is_status(&self) -> bool {
        self.inner.kind == Kind::Status
    }

    /// Whether no connection could be made.
    pub fn is_connect(&self) -> bool {
        self.inner.kind == Kind::Connect
    }

    /// Whether an attempt timed out, or the deadline across attempts passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::Timeout | Kind::Deadline)
    }

    /// Whether the deadline across attempts passed.
    pub fn is_deadline(&self) -> bool {
        self.inner.kind == Kind::Deadline
    }

    /// Whether the connection was reset or closed before a complete response.
    pub fn is_reset(&self) -> bool {
        self.inner.kind == Kind::Reset
    }

    /// Whether the re-authentication hook failed.
    pub fn is_reauth(&self) -> bool {
        self.inner.kind == Kind::Reauth
    }

    /// Whether the API answered with a 4xx status.
    pub fn is_client_error(&self) -> bool {
        self.is_status() && self.inner.status.is_some_and(|s| s.is_client_error())
    }

    /// Whether the API answered with a 5xx status.
    pub fn is_server_error(&self) -> bool {
        self.is_status() && self.inner.status.is_some_and(|s| s.is_server_error())
    }

    /// The HTTP status of the error answer.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The code as sent on the wire (`INVALID_CREDENTIALS`, `api_key_expired`...).
    pub fn code(&self) -> Option<&str> {
        self.parsed()?.code.as_deref()
    }

    /// The stable code the answer was identified as, when the client has the API's contract.
    /// A wire code the contract does not know falls back to the generic code of its status.
    pub fn stable_code(&self) -> Option<&str> {
        self.inner.known.as_ref()?.entry().map(|e| e.code)
    }

    /// The stable code as a typed code: an enum generated by `rebuff::catalog!` or by
    /// `rebuff docs --format rust-client`.
    pub fn code_as<C: ErrorCode + FromStr>(&self) -> Option<C> {
        self.stable_code()?.parse().ok()
    }

    /// The error category: the one the body sent (`dataxid`'s `type`), else the identified
    /// entry's.
    pub fn category(&self) -> Option<&str> {
        self.parsed()
            .and_then(|p| p.category.as_deref())
            .or_else(|| self.inner.known.as_ref()?.entry().map(|e| e.category))
    }

    /// The title (RFC 9457), or the status's reason phrase.
    pub fn title(&self) -> Option<&str> {
        self.parsed()?.title.as_deref()
    }

    /// The human message (`detail` or `message`).
    pub fn message(&self) -> Option<&str> {
        self.parsed()?.message.as_deref()
    }

    /// The parameter at fault.
    pub fn param(&self) -> Option<&str> {
        self.parsed()?.param.as_deref()
    }

    /// The per-field errors of a validation failure, each with a JSON Pointer.
    pub fn fields(&self) -> &[FieldError] {
        self.parsed().map(|p| p.fields.as_slice()).unwrap_or_default()
    }

    /// The request id, from the body or else the `X-Request-Id` header. Quote it to support.
    pub fn request_id(&self) -> Option<&str> {
        self.parsed()?.request_id.as_deref()
    }

    /// How long the API asked the client to wait: `Retry-After` (seconds or HTTP-date), else
    /// the `t` of the IETF `RateLimit` field, else a `retry_after` member.
    pub fn retry_after(&self) -> Option<Duration> {
        self.parsed()?.retry_after.map(Duration::from_secs)
    }

    /// The RFC 9457 `type` or the `doc_url`.
    pub fn type_uri(&self) -> Option<&str> {
        self.parsed()?.type_uri.as_deref()
    }

    /// What the body was recognised as.
    pub fn envelope(&self) -> Option<Envelope> {
        self.parsed().map(|p| p.envelope)
    }

    /// The envelope's dialect, when the body was one of the six.
    pub fn dialect(&self) -> Option<Dialect> {
        match self.envelope()? {
            Envelope::Dialect(d) => Some(d),
            _ => None,
        }
    }

    /// Everything decoded from the answer.
    pub fn parsed(&self) -> Option<&ParsedError> {
        self.inner.parsed.as_ref()
    }

    /// When the same request may be sent again: the identified code's class, else one
    /// derived from the status (408, 429 and 5xx but 501 with backoff, 401 after
    /// re-authentication, any other 4xx after fixing the request). Connection failures,
    /// resets and timeouts are transient; a passed deadline or a failed re-authentication
    /// are final.
    pub fn retry_class(&self) -> RetryClass {
        match self.inner.kind {
            Kind::Status => match self.inner.known.as_ref().and_then(Known::entry) {
                Some(e) => e.retry,
                None => self.inner.status.map_or(RetryClass::Never, status_class),
            },
            Kind::Connect | Kind::Timeout | Kind::Reset => RetryClass::Backoff,
            Kind::Deadline | Kind::Reauth | Kind::Request => RetryClass::Never,
        }
    }

    /// Whether the identical request may be sent again (by [`retry_class`](Self::retry_class);
    /// whether it is safe to replay also depends on the method and idempotency key).
    pub fn is_retryable(&self) -> bool {
        self.retry_class().is_retryable()
    }

    /// Whether the credential or session must be renewed before retrying.
    pub fn needs_reauth(&self) -> bool {
        self.retry_class() == RetryClass::AfterReauth
    }

    /// How many attempts were made before this error was returned.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }
}

/// The retry class of a status that the contract does not identify.
pub(crate) fn status_class(status: StatusCode) -> RetryClass {
    match status.as_u16() {
        408 | 429 => RetryClass::RetryAfter,
        401 => RetryClass::AfterReauth,
        501 => RetryClass::Never,
        500..=599 => RetryClass::Backoff,
        400..=499 => RetryClass::AfterFix,
        _ => RetryClass::Never,
    }
}

/// Sorts a reqwest failure into a kind, walking its causes for a reset connection.
pub(crate) fn classify(error: &reqwest::Error) -> Kind {
    if error.is_timeout() {
        return Kind::Timeout;
    }
    if error.is_connect() {
        return Kind::Connect;
    }
    if is_reset(error) {
        return Kind::Reset;
    }
    Kind::Request
}

fn is_reset(error: &(dyn StdError + 'static)) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed() || h.is_canceled())
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        cause = e.source();
    }
    false
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ApiError");
        d.field("kind", &self.inner.kind);
        if let Some(s) = self.inner.status {
            d.field("status", &s.as_u16());
        }
        if let Some(p) = &self.inner.parsed {
            d.field("code", &p.code);
        }
        if let Some(k) = &self.inner.known {
            d.field("stable_code", k);
        }
        if let Some(p) = &self.inner.parsed {
            d.field("message", &p.message).field("request_id", &p.request_id);
        }
        d.field("attempts", &self.inner.attempts);
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.kind {
            Kind::Status => {
                let status = self.inner.status.map_or(0, |s| s.as_u16());
                write!(f, "HTTP {status}")?;
                if let Some(code) = self.stable_code().or(self.code()) {
                    write!(f, " {code}")?;
                }
                if let Some(m) = self.message().or(self.title()) {
                    write!(f, ": {m}")?;
                }
                if let Some(id) = self.request_id() {
                    write!(f, " (request {id})")?;
                }
                Ok(())
            }
            Kind::Connect => f.write_str("could not connect"),
            Kind::Timeout => f.write_str("the attempt timed out"),
            Kind::Reset => f.write_str("the connection closed before a complete response"),
            Kind::Deadline => f.write_str("the deadline across attempts passed"),
            Kind::Reauth => f.write_str("re-authentication failed"),
            Kind::Request => f.write_str("the request could not be sent"),
        }?;
        if self.inner.attempts > 1 {
            write!(f, " after {} attempts", self.inner.attempts)?;
        }
        Ok(())
    }
}

impl From<reqwest::Error> for ApiError {
    /// A failure of reqwest's, sorted into a [`Kind`] (a status error from
    /// `error_for_status` becomes a [`Kind::Status`] without a body).
    fn from(error: reqwest::Error) -> Self {
        let mut e = ApiError::from_reqwest(error);
        if e.inner.status.is_some() {
            e.inner.kind = Kind::Status;
        }
        e
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}
