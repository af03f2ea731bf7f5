//! Occurrences: one error that happened, before it is rendered in a dialect.

use std::borrow::Cow;
use std::fmt;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// A typed error code: implemented by the enums that `rebuff::catalog!` generates, so that
/// only codes of the catalog can be named in Rust.
pub trait ErrorCode: Copy + fmt::Debug + Send + Sync + 'static {
    /// The stable code.
    fn as_str(&self) -> &'static str;
}

/// Where in the request a field error was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// The JSON body.
    Body,
    /// The query string.
    Query,
    /// A path parameter.
    Path,
    /// A request header.
    Header,
}

impl Location {
    /// The lowercase name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Location::Body => "body",
            Location::Query => "query",
            Location::Path => "path",
            Location::Header => "header",
        }
    }

    /// Parses the wire name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "body" => Some(Location::Body),
            "query" => Some(Location::Query),
            "path" => Some(Location::Path),
            "header" => Some(Location::Header),
            _ => None,
        }
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldError {
    /// A JSON Pointer (RFC 6901) to the field, e.g. `/config/batch_size`.
    pub pointer: String,
    /// Where the field is.
    pub location: Location,
    /// A short machine-readable reason (`required`, `invalid_format`, `enum`, ...).
    pub reason: String,
    /// A human message for this field.
    pub message: String,
}

impl FieldError {
    /// A field error in the JSON body.
    pub fn body(pointer: impl Into<String>, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Location::Body, pointer, reason, message)
    }

    /// A field error anywhere.
    pub fn new(
        location: Location,
        pointer: impl Into<String>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError { pointer: pointer.into(), location, reason: reason.into(), message: message.into() }
    }

    /// The pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`).
    pub fn segments(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.pointer.split('/').skip(1).map(|t| {
            if t.contains('~') {
                Cow::Owned(t.replace("~1", "/").replace("~0", "~"))
            } else {
                Cow::Borrowed(t)
            }
        })
    }

    /// The field as a dotted path (`config.batch_size`), used by envelopes that name fields.
    pub fn dotted(&self) -> String {
        // Without `~`, no token is escaped: the tokens are what follows the first `/`, and
        // the dots go where the other slashes are. (A validation failure is an answer a
        // client can ask for at will: this runs for each one.)
        if !self.pointer.contains('~') {
            return match self.pointer.split_once('/') {
                Some((_, tokens)) => tokens.replace('/', "."),
                None => String::new(),
            };
        }
        let mut out = String::with_capacity(self.pointer.len());
        for (i, s) in self.segments().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&s);
        }
        out
    }
}

/// Builds a JSON Pointer from reference tokens, escaping `~` and `/`.
pub fn pointer_from<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for s in segments {
        out.push('/');
        let s = s.as_ref();
        if s.contains(['~', '/']) {
            out.push_str(&s.replace('~', "~0").replace('/', "~1"));
        } else {
            out.push_str(s);
        }
    }
    out
}

/// One occurrence of a catalog error, with everything specific to it.
///
/// The catalog decides status, title, type and wire code; the occurrence carries only what
/// varies: detail, parameter, field errors, request id, retry delay and extra headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    code: Cow<'static, str>,
    /// Human explanation of this occurrence; replaced by the catalog's message when masked.
    pub detail: Option<String>,
    /// The parameter at fault (Stripe's `param`).
    pub param: Option<String>,
    /// Per-field validation errors.
    pub fields: Vec<FieldError>,
    /// The request id.
    pub request_id: Option<String>,
    /// RFC 9457 `instance`.
    pub instance: Option<String>,
    /// Extra members (RFC 9457 extensions) for the envelopes that carry them.
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Seconds the client should wait; sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// Extra response headers (`Allow`, `WWW-Authenticate`, rate-limit fields...).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The internal cause: logged, shown only in debug rendering, never sent for a masked code.
    pub cause: Option<String>,
}

impl Problem {
    /// An occurrence of a typed code.
    pub fn new<C: ErrorCode>(code: C) -> Self {
        Self::with_code(Cow::Borrowed(code.as_str()))
    }

    /// An occurrence of a code known only at run time (tools, parsers, the CLI). Rendering
    /// fails for a code the catalog does not have, so prefer [`Problem::new`] in services.
    pub fn dynamic(code: impl Into<String>) -> Self {
        Self::with_code(Cow::Owned(code.into()))
    }

    fn with_code(code: Cow<'static, str>) -> Self {
        Problem {
            code,
            detail: None,
            param: None,
            fields: Vec::new(),
            request_id: None,
            instance: None,
            extensions: serde_json::Map::new(),
            retry_after: None,
            headers: Vec::new(),
            cause: None,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Sets the detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the parameter at fault.
    #[must_use]
    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Adds a field error.
    #[must_use]
    pub fn field(mut self, field: FieldError) -> Self {
        self.fields.push(field);
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the RFC 9457 instance.
    #[must_use]
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Sets the retry delay in seconds.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Adds an extension member.
    #[must_use]
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(name.into(), value.into());
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Records the internal cause (never sent for a masked code unless rendering in debug mode).
    #[must_use]
    pub fn cause(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
}
