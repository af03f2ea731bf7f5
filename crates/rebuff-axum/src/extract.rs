//! Drop-in extractors whose rejections are catalog errors, and the router fallback.
//!
//! axum's own extractors answer a bad request with a `text/plain` body and a status; these
//! answer with an [`ApiError`] naming the precise catalog code, so the client learns *which*
//! field is wrong and *where* the JSON broke:
//!
//! | extractor | failure | code |
//! |---|---|---|
//! | [`Json`] | no `Content-Type`, or not JSON | `unsupported_media_type` (415) |
//! | [`Json`] | body over the limit | `payload_too_large` (413) |
//! | [`Json`] | body stalled past [`body_timeout`](crate::panic::body_timeout) | `request_timeout` (408) |
//! | [`Json`] | syntax error, truncated body, nesting too deep | `invalid_json` (400), with line, column and byte offset |
//! | [`Json`] | a field of the wrong type | `wrong_field_type` (400) |
//! | [`Json`] | a required field missing | `missing_required_field` (422) |
//! | [`Json`] | a value outside an enum | `invalid_enum_value` (422) |
//! | [`Json`] | any other bad value | `invalid_field_value` (422) |
//! | [`Path`] | a parameter that does not parse | `invalid_id` (400) |
//! | [`Query`] | a parameter missing or not parsing | `invalid_query_parameter` (400) |
//! | [`fallback`] | no route | `resource_not_found` (404) |
//!
//! Field errors carry a JSON Pointer to the field (`/config/batch_size`), and `param` the
//! same path dotted (`config.batch_size`).

use std::fmt;
use std::ops::{Deref, DerefMut};

use axum::RequestExt;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, RawPathParams, Request};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderMap, Method};
use rebuff::problem::pointer_from;
use rebuff::{FieldError, Problem};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_path_to_error::Segment;

use crate::{ApiError, Code};

/// The codes the extractors of this module and [`fallback`] can answer with (the table
/// above, and `internal_error` for an extractor used on a route it does not fit), for
/// [`ProblemLayer::builder`](crate::ProblemLayer::builder).
pub const CODES: &[Code] = &[
    Code::UnsupportedMediaType,
    Code::PayloadTooLarge,
    Code::RequestTimeout,
    Code::BadRequest,
    Code::InvalidJson,
    Code::WrongFieldType,
    Code::MissingRequiredField,
    Code::InvalidEnumValue,
    Code::InvalidFieldValue,
    Code::InvalidId,
    Code::InvalidQueryParameter,
    Code::ResourceNotFound,
    Code::InternalError,
];

mod objects;

/// The longest user-supplied text (a path, a value quoted by a parser) echoed in an error.
const MAX_ECHO: usize = 200;

// ---- Json ------------------------------------------------------------------------------

/// A JSON body, like [`axum::Json`], whose rejections are catalog errors.
///
/// Accepts `application/json` and any `application/*+json`, with parameters (`charset`).
/// Syntax errors take precedence over type errors: a body that is not valid JSON (including
/// one nested deeper than 128 levels) is always `invalid_json`, whatever its first data
/// error would have been.
///
/// It is also a response: a handler may return `Json(value)`.
///
/// ```
/// use rebuff_axum::extract::Json;
///
/// #[derive(serde::Deserialize)]
/// struct NewProject {
///     name: String,
/// }
///
/// async fn create(Json(body): Json<NewProject>) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "name": body.name }))
/// }
/// # let _ = axum::Router::<()>::new().route("/", axum::routing::post(create));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> Json<T> {
    /// Parses a JSON body, mapping failures as the extractor does (without the content-type
    /// and body-reading checks).
    ///
    /// # Errors
    /// `invalid_json`, `wrong_field_type`, `missing_required_field`, `invalid_enum_value` or
    /// `invalid_field_value`, with the field that failed.
    ///
    /// ```
    /// use rebuff_axum::extract::Json;
    ///
    /// let err = Json::<Vec<u32>>::from_bytes(b"[1, 2,").unwrap_err();
    /// assert_eq!(err.problem().code(), "invalid_json");
    /// assert_eq!(
    ///     err.problem().detail.as_deref(),
    ///     Some("JSON parse error: EOF while parsing a value at line 1 column 6 (byte offset 6)")
    /// );
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ApiError> {
        parse_json(bytes).map(Json)
    }
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(
                ApiError::new(Code::UnsupportedMediaType).detail("Content-Type must be application/json")
            );
        }
        // axum's `Bytes` extractor, without its `Collect`: the body under the route's
        // `DefaultBodyLimit`, read by `collect`.
        let bytes = collect(req.into_limited_body()).await.map_err(|e| read_failure(&e))?;
        Self::from_bytes(&bytes)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Json(value)
    }
}

/// Whether the request declares a JSON body: `application/json` or `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    // What nearly every client sends, compared whole before the value is taken apart.
    if value.as_bytes().eq_ignore_ascii_case(b"application/json") {
        return true;
    }
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((ty, subtype)) = essence.split_once('/') else {
        return false;
    };
    // Compared without making a lowercase copy: this runs on every request with a body.
    let json_suffix = subtype
        .as_bytes()
        .get(subtype.len().saturating_sub(5)..)
        .is_some_and(|tail| tail.eq_ignore_ascii_case(b"+json"));
    ty.eq_ignore_ascii_case("application") && (subtype.eq_ignore_ascii_case("json") || json_suffix)
}

/// The catalog error for a body that could not be read: over the limit
/// (`payload_too_large`, 413), stalled past [`body_timeout`](crate::panic::body_timeout)
/// (`request_timeout`, 408), or broken off (`bad_request`, 400).
///
/// For handlers that take axum's [`Bytes`] as `Result<Bytes, BytesRejection>`:
///
/// ```
/// use axum::body::Bytes;
/// use axum::extract::rejection::BytesRejection;
/// use rebuff_axum::ApiError;
/// use rebuff_axum::extract::body_error;
///
/// async fn webhook(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
///     let body = body.map_err(body_error)?;
///     Ok(format!("{} bytes", body.len()))
/// }
/// # let _ = axum::Router::<()>::new().route("/", axum::routing::post(webhook));
/// ```
pub fn body_error(rejection: BytesRejection) -> ApiError {
    if let BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(e)) = &rejection {
        return ApiError::new(Code::PayloadTooLarge).cause(e);
    }
    read_failure(&rejection)
}

/// What a failed body read is: a stalled body (`body_timeout`) is `request_timeout`, a body
/// over a limit `payload_too_large`, anything else `bad_request`.
fn read_failure(err: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<crate::timeout::BodyTimeoutError>() {
            return ApiError::new(Code::RequestTimeout).cause(err);
        }
        if e.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(Code::PayloadTooLarge).cause(err);
        }
        source = e.source();
    }
    ApiError::new(Code::BadRequest).detail("Failed to read the request body.").cause(err)
}

/// Reads a whole body of at most `max` bytes, for layers that must see it before the handler
/// (signature checks, idempotency fingerprints). A declared `Content-Length` over the limit is
/// refused before reading.
///
/// # Errors
/// `payload_too_large` over the limit, `request_timeout` for a stalled body, else `bad_request`.
pub async fn read_body(
    headers: &http::HeaderMap,
    body: axum::body::Body,
    max: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(Code::PayloadTooLarge).detail(format!("The request body is larger than {max} bytes."))
    };
    let declared =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > u64::try_from(max).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    collect(http_body_util::Limited::new(body, max)).await.map_err(|e| {
        let err = read_failure(&*e);
        if err.problem().code() == "payload_too_large" { too_large() } else { err }
    })
}

/// Reads a whole body.
///
/// By hand rather than with `http_body_util`'s `collect`, which gathers the frames in a list
/// and polls once more after the last one: nearly every request body arrives in one frame, and
/// once the body says it has ended (a `Content-Length` all read) that frame is the body, as it
/// is. Trailers are not kept.
async fn collect<B>(mut body: B) -> Result<Bytes, B::Error>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    let mut first: Option<Bytes> = None;
    let mut joined: Option<bytes::BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        match (&mut joined, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, Some(before)) => {
                let mut buf = bytes::BytesMut::with_capacity(before.len() + data.len());
                buf.extend_from_slice(&before);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
            (None, None) => first = Some(data),
        }
        if body.is_end_stream() {
            break;
        }
    }
    Ok(joined.map_or_else(|| first.unwrap_or_default(), bytes::BytesMut::freeze))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde_json skips unknown members without checking their text; JSON is UTF-8 throughout,
    // so the whole body is checked first (cheap next to parsing).
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::new(Code::InvalidJson)
            .detail(format!("JSON parse error: invalid UTF-8 (byte offset {})", e.valid_up_to())));
    }
    // A body that parses is the common case, and tracking the path costs an allocation per
    // member; so the first parse does not track it, and only a data error is parsed again
    // with tracking, to say where it is. Parsing is deterministic: the second parse stops at
    // the same error. Structs from objects only: serde would also fill one from an array,
    // positionally.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match T::deserialize(objects::ObjectsOnly(&mut de)) {
        Ok(value) => return de.end().map(|()| value).map_err(|e| syntax_error(bytes, &e)),
        Err(e) if e.is_syntax() || e.is_eof() || e.is_io() => return Err(syntax_error(bytes, &e)),
        Err(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let err = match serde_path_to_error::deserialize::<_, T>(objects::ObjectsOnly(&mut de)) {
        Ok(value) => return de.end().map(|()| value).map_err(|e| syntax_error(bytes, &e)),
        Err(e) => e,
    };
    if err.inner().is_syntax() || err.inner().is_eof() || err.inner().is_io() {
        return Err(syntax_error(bytes, err.inner()));
    }
    // A data error may have stopped the parse before a syntax error further on, or before
    // nesting got deep enough to hit the recursion limit: check the whole document first.
    check_syntax(bytes).map_err(|e| syntax_error(bytes, &e))?;
    Err(data_error(&err))
}

/// Walks the whole document without allocating, through `deserialize_any` so that
/// serde_json's recursion limit applies (`IgnoredAny` alone skips values iteratively,
/// without one).
fn check_syntax(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Syntax::deserialize(&mut de)?;
    de.end()
}

struct Syntax;

impl<'de> Deserialize<'de> for Syntax {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SyntaxVisitor)
    }
}

struct SyntaxVisitor;

impl<'de> Visitor<'de> for SyntaxVisitor {
    type Value = Syntax;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_str<E>(self, _: &str) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_unit<E>(self) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_none<E>(self) -> Result<Syntax, E> {
        Ok(Syntax)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Syntax, D::Error> {
        Syntax::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Syntax, A::Error> {
        while seq.next_element::<Syntax>()?.is_some() {}
        Ok(Syntax)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Syntax, A::Error> {
        while map.next_entry::<IgnoredAny, Syntax>()?.is_some() {}
        Ok(Syntax)
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn bare_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(bare) => bare.to_owned(),
        None => full,
    }
}

/// The byte offset of serde_json's (line, column): columns count bytes, and point one past
/// the offending byte, except at the end of the input.
fn byte_offset(bytes: &[u8], e: &serde_json::Error) -> usize {
    if e.is_eof() {
        return bytes.len();
    }
    let mut line_start = 0;
    if e.line() > 1 {
        let mut newlines = bytes.iter().enumerate().filter(|&(_, &b)| b == b'\n').map(|(i, _)| i + 1);
        line_start = newlines.nth(e.line() - 2).unwrap_or(bytes.len());
    }
    (line_start + e.column().saturating_sub(1)).min(bytes.len())
}

fn syntax_error(bytes: &[u8], e: &serde_json::Error) -> ApiError {
    ApiError::new(Code::InvalidJson).detail(format!(
        "JSON parse error: {} at line {} column {} (byte offset {})",
        clip(&bare_message(e)),
        e.line(),
        e.column(),
        byte_offset(bytes, e),
    ))
}

/// The quoted name in messages like "missing field `name`".
fn quoted(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}

fn data_error(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let message = bare_message(err.inner());
    let mut segments: Vec<String> = err
        .path()
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    // serde's messages name Rust types (`struct NewProject`, `u32`) and quote values: each is
    // reworded here, and only the field names and the accepted enum values are kept.
    let (code, reason, text) = if let Some(field) = quoted(&message, "missing field `") {
        segments.push(field);
        (Code::MissingRequiredField, "required", "This field is required.".to_owned())
    } else if let Some(field) = quoted(&message, "unknown field `") {
        if segments.last() != Some(&field) {
            segments.push(field);
        }
        (Code::InvalidFieldValue, "unknown", "This field is not accepted.".to_owned())
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (got, wanted) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let text = format!("Expected {}, got {}.", expected_kind(wanted), unexpected_kind(got));
        (Code::WrongFieldType, "type", text)
    } else if message.starts_with("unknown variant `") {
        let allowed = message.split_once(", expected ").map_or("", |(_, e)| e);
        let allowed = allowed.trim_start_matches("one of ").replace('`', "");
        (Code::InvalidEnumValue, "enum", format!("Must be one of: {}.", clip(&allowed)))
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        let wanted = rest.split_once(", expected ").map_or("", |(_, e)| e);
        let text = if expected_kind(wanted) == "an integer" { "Out of range." } else { "Invalid value." };
        (Code::InvalidFieldValue, "invalid", text.to_owned())
    } else if message.starts_with("invalid length ") {
        (Code::InvalidFieldValue, "invalid", "Wrong number of elements.".to_owned())
    } else {
        (Code::InvalidFieldValue, "invalid", "Invalid value.".to_owned())
    };
    let field = FieldError::body(pointer_from(&segments), reason, text);
    let dotted = field.dotted();
    let detail = match (code, dotted.is_empty()) {
        (Code::WrongFieldType, true) if field.message.starts_with("Expected an object") => {
            "The request body must be a JSON object.".to_owned()
        }
        (_, true) => format!("Invalid request body: {}", field.message),
        (Code::MissingRequiredField, false) => format!("Missing required field `{dotted}`."),
        (_, false) => format!("Invalid value for `{dotted}`: {}", field.message),
    };
    let mut problem = Problem::new(code).detail(detail).field(field);
    if !dotted.is_empty() {
        problem = problem.param(dotted);
    }
    ApiError::from_problem(problem)
}

/// What serde's "expected ..." wants, in JSON's words.
fn expected_kind(wanted: &str) -> &'static str {
    let w = wanted.trim();
    let integer = |t: &str| {
        matches!(
            t,
            "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "isize"
        ) || t.contains("integer")
    };
    if w.starts_with("struct ") || w.contains("map") || w.contains("object") {
        "an object"
    } else if w.contains("sequence") || w.contains("tuple") || w.contains("array") || w.contains("vector") {
        "an array"
    } else if w.contains("string") || w == "char" || w.contains("character") {
        "a string"
    } else if w.contains("bool") {
        "a boolean"
    } else if integer(w.split(' ').next().unwrap_or_default()) {
        if w.ends_with("or null") { "an integer or null" } else { "an integer" }
    } else if w.starts_with('f') || w.contains("number") || w.contains("float") {
        "a number"
    } else if w.starts_with("unit variant") || w.starts_with("variant") || w.starts_with("enum") {
        "one of the accepted values"
    } else {
        "a value of another type"
    }
}

/// What serde's `Unexpected` found, in JSON's words, without the value itself.
fn unexpected_kind(got: &str) -> &'static str {
    match got.split([' ', '`', '"']).next().unwrap_or_default() {
        "boolean" => "a boolean",
        "integer" => "an integer",
        "floating" => "a number with a fraction",
        "string" | "char" => "a string",
        "sequence" => "an array",
        "map" => "an object",
        "null" | "unit" | "Option" => "null",
        _ => "a value of another type",
    }
}

/// Text from the request made safe to echo: no control characters, at most [`MAX_ECHO`]
/// characters.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(MAX_ECHO).collect();
    if s.chars().filter(|c| !c.is_control()).nth(MAX_ECHO).is_some() {
        out.push('…');
    }
    out
}

// ---- Path ------------------------------------------------------------------------------

/// Path parameters, like [`axum::extract::Path`], whose rejection is `invalid_id` (400) with
/// `param` naming the parameter.
///
/// A route that does not match its extractor (wrong number of parameters, unsupported type)
/// is a bug in the service, answered as a masked `internal_error`.
///
/// ```
/// use rebuff_axum::extract::Path;
///
/// async fn get_item(Path(id): Path<u64>) -> String {
///     id.to_string()
/// }
/// # let _ = axum::Router::<()>::new().route("/items/{id}", axum::routing::get(get_item));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let rejection = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => return Ok(Path(value)),
            Err(rejection) => rejection,
        };
        let raw = RawPathParams::from_request_parts(parts, state).await.ok();
        let raw: Vec<(&str, &str)> = raw.as_ref().map(|r| r.iter().collect()).unwrap_or_default();
        Err(path_error(&rejection, &raw))
    }
}

impl<T> Deref for Path<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Path<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

fn path_error(rejection: &PathRejection, raw: &[(&str, &str)]) -> ApiError {
    use axum::extract::path::ErrorKind;

    let PathRejection::FailedToDeserializePathParams(failed) = rejection else {
        return ApiError::new(Code::InternalError).cause(rejection);
    };
    let only = || match raw {
        [(key, _)] => Some((*key).to_owned()),
        _ => None,
    };
    let (key, value) = match failed.kind() {
        ErrorKind::ParseErrorAtKey { key, value, .. } | ErrorKind::DeserializeError { key, value, .. } => {
            (Some(key.clone()), Some(value.as_str()))
        }
        ErrorKind::ParseErrorAtIndex { index, value, .. } => {
            (raw.get(*index).map(|(k, _)| (*k).to_owned()), Some(value.as_str()))
        }
        ErrorKind::ParseError { value, .. } => (only(), Some(value.as_str())),
        ErrorKind::InvalidUtf8InPathParam { key } => (Some(key.clone()), None),
        ErrorKind::Message(_) => (only(), raw.first().filter(|_| raw.len() == 1).map(|(_, v)| *v)),
        _ => return ApiError::new(Code::InternalError).cause(rejection),
    };
    let detail = match (&key, value) {
        (Some(k), Some(v)) => format!("`{}` is not a valid value for path parameter `{k}`.", clip(v)),
        (Some(k), None) => format!("The path parameter `{k}` is not valid."),
        (None, Some(v)) => format!("`{}` is not a valid ID.", clip(v)),
        (None, None) => "The path contains an invalid ID.".to_owned(),
    };
    let mut problem = Problem::new(Code::InvalidId).detail(detail).cause(rejection);
    problem.param = key;
    ApiError::from_problem(problem)
}

// ---- Query -----------------------------------------------------------------------------

/// The query string, like [`axum::extract::Query`], whose rejection is
/// `invalid_query_parameter` (400) with `param` naming the parameter.
///
/// ```
/// use rebuff_axum::extract::Query;
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Paging {
///     limit: Option<u32>,
/// }
///
/// assert_eq!(Query::<Paging>::from_query("limit=20")?.limit, Some(20));
/// let err = Query::<Paging>::from_query("limit=ten").unwrap_err();
/// assert_eq!(err.problem().code(), "invalid_query_parameter");
/// assert_eq!(err.problem().param.as_deref(), Some("limit"));
/// # Ok::<(), rebuff_axum::ApiError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    /// Parses a raw query string (without the `?`).
    ///
    /// # Errors
    /// `invalid_query_parameter`, naming the parameter when it is known.
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Query).map_err(|e| query_error(&e))
    }
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_query(parts.uri.query().unwrap_or_default())
    }
}

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Query<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

fn query_error(err: &serde_path_to_error::Error<serde_urlencoded::de::Error>) -> ApiError {
    let message = err.inner().to_string();
    let key = err.path().iter().find_map(|s| match s {
        Segment::Map { key } => Some(key.clone()),
        _ => None,
    });
    let (key, detail) = match (quoted(&message, "missing field `"), key) {
        (Some(missing), _) => {
            let detail = format!("Missing required query parameter `{}`.", clip(&missing));
            (Some(missing), detail)
        }
        // The parser's own words ("invalid digit found in string") are not repeated.
        (None, Some(key)) => {
            let detail = format!("Invalid query parameter `{}`: not a value it accepts.", clip(&key));
            (Some(key), detail)
        }
        (None, None) => (None, "The query string is not valid.".to_owned()),
    };
    let mut problem = Problem::new(Code::InvalidQueryParameter).detail(detail);
    problem.param = key.map(|k| clip(&k));
    ApiError::from_problem(problem)
}

// ---- fallback --------------------------------------------------------------------------

/// The router fallback: `resource_not_found` (404) naming the method and path.
///
/// ```
/// let app: axum::Router = axum::Router::new().fallback(rebuff_axum::extract::fallback);
/// # let _ = app;
/// ```
pub async fn fallback(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    no_route(&method, uri.path())
}

fn no_route(method: &Method, path: &str) -> ApiError {
    ApiError::new(Code::ResourceNotFound).detail(format!("No route for {method} {}", clip(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Model {
        name: String,
        config: Config,
        format: Format,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Config {
        batch_size: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Format {
        Csv,
        Parquet,
    }

    fn err(body: &str) -> Problem {
        match Json::<Model>::from_bytes(body.as_bytes()) {
            Ok(_) => panic!("{body} parsed"),
            Err(e) => e.into_problem(),
        }
    }

    /// Found by Schemathesis: serde_json's default float parsing is not correctly rounded, so
    /// `4409696590477594.0` (an integer, exactly representable) came back as `...593.5` and
    /// an integer field refused it. The workspace enables `float_roundtrip`.
    #[test]
    fn floats_are_read_exactly() {
        #[derive(Debug, serde::Deserialize)]
        struct Config {
            config: Inner,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Inner {
            batch_size: f64,
        }
        let parsed =
            Json::<Config>::from_bytes(br#"{"config": {"batch_size": 4409696590477594.0}}"#).expect("parses");
        assert_eq!(parsed.0.config.batch_size.to_bits(), 4_409_696_590_477_594.0_f64.to_bits());
    }

    #[test]
    fn syntax_errors_name_line_column_and_offset() {
        let p = err("{\n  \"name\": \"a\",\n  \"config\": }");
        assert_eq!(p.code(), "invalid_json");
        assert_eq!(
            p.detail.as_deref(),
            Some("JSON parse error: expected value at line 3 column 13 (byte offset 29)")
        );
        assert_eq!("{\n  \"name\": \"a\",\n  \"config\": }".as_bytes()[29], b'}');
        let p = err("");
        assert_eq!(
            p.detail.as_deref(),
            Some("JSON parse error: EOF while parsing a value at line 1 column 0 (byte offset 0)")
        );
        assert_eq!(err(r#"{"name": "a"} x"#).code(), "invalid_json");
    }

    #[test]
    fn syntax_errors_win_over_data_errors() {
        assert_eq!(err(r#"{"name": 1, "#).code(), "invalid_json");
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let p = err(&deep);
        assert_eq!(p.code(), "invalid_json");
        assert!(p.detail.as_deref().unwrap_or_default().contains("recursion limit exceeded"));
        let deep_value = Json::<serde_json::Value>::from_bytes(deep.as_bytes()).err();
        assert_eq!(deep_value.map(|e| e.problem().code().to_owned()).as_deref(), Some("invalid_json"));
    }

    #[test]
    fn data_errors_point_at_the_field() {
        let p = err(r#"{"name": "a", "config": {}, "format": "csv"}"#);
        assert_eq!(p.code(), "missing_required_field");
        assert_eq!(p.fields[0].pointer, "/config/batch_size");
        assert_eq!(p.fields[0].reason, "required");
        assert_eq!(p.param.as_deref(), Some("config.batch_size"));

        let p = err(r#"{"name": "a", "config": {"batch_size": "x"}, "format": "csv"}"#);
        assert_eq!(p.code(), "wrong_field_type");
        assert_eq!(p.fields[0].pointer, "/config/batch_size");
        assert_eq!(p.fields[0].reason, "type");

        let p = err(r#"{"name": "a", "config": {"batch_size": 1}, "format": "xls"}"#);
        assert_eq!(p.code(), "invalid_enum_value");
        assert_eq!(p.fields[0].pointer, "/format");

        let p = err(r#"{"name": "a", "config": {"batch_size": -1}, "format": "csv"}"#);
        assert_eq!(p.code(), "invalid_field_value");
        assert_eq!(p.fields[0].pointer, "/config/batch_size");

        let p = err(r#""just a string""#);
        assert_eq!(p.code(), "wrong_field_type");
        assert_eq!(p.fields[0].pointer, "");
        assert_eq!(p.param, None);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u8,
    }

    #[test]
    fn unknown_fields_point_at_themselves() {
        let p =
            Json::<Strict>::from_bytes(br#"{"inner": {"a": 1, "b": 2}}"#).err().map(ApiError::into_problem);
        let p = p.unwrap_or_else(|| panic!("parsed"));
        assert_eq!(p.code(), "invalid_field_value");
        assert_eq!(p.fields[0].pointer, "/inner/b");
        assert_eq!(p.fields[0].reason, "unknown");
    }

    #[test]
    fn long_values_are_clipped() {
        let long = "x".repeat(10_000);
        let p = err(&format!(r#"{{"name": 1, "config": "{long}"}}"#));
        assert!(p.fields[0].message.chars().count() <= MAX_ECHO + 1);
        assert!(p.detail.as_deref().unwrap_or_default().len() < 400);
    }

    #[test]
    fn content_types() {
        let check = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, http::HeaderValue::from_str(v).unwrap_or_else(|_| unreachable!()));
            is_json(&h)
        };
        assert!(check("application/json"));
        assert!(check("application/json; charset=utf-8"));
        assert!(check("Application/JSON"));
        assert!(check("application/merge-patch+json"));
        assert!(check("application/vnd.api+JSON"));
        assert!(!check("application/json+x"));
        assert!(!check("application/son"));
        assert!(!check("text/plain"));
        assert!(!check("application/jsonx"));
        assert!(!check("text/json"));
        assert!(check(" application/json ;charset=utf-8"));
        assert!(!check("application"));
        assert!(!check("application/"));
        assert!(!check("/json"));
        assert!(!check("application/json/x"));
        assert!(!check("application/jsön"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Paging {
        limit: u32,
        cursor: Option<String>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let p = Query::<Paging>::from_query("limit=ten").err().map(ApiError::into_problem);
        let p = p.unwrap_or_else(|| panic!("parsed"));
        assert_eq!(p.code(), "invalid_query_parameter");
        assert_eq!(p.param.as_deref(), Some("limit"));
        let p = Query::<Paging>::from_query("cursor=a").err().map(ApiError::into_problem);
        let p = p.unwrap_or_else(|| panic!("parsed"));
        assert_eq!(p.param.as_deref(), Some("limit"));
        assert_eq!(p.detail.as_deref(), Some("Missing required query parameter `limit`."));
        assert!(Query::<Paging>::from_query("limit=5&cursor=abc").is_ok());
    }

    /// Issue 14, finding 6: `["via-array"]` created a project named `via-array`, and `[]`
    /// answered with serde's message naming the internal type (`struct Model`).
    #[test]
    fn structs_are_read_from_objects_only_and_messages_name_no_rust_type() {
        let p = err(r#"["a", {"batch_size": 1}, "csv"]"#);
        assert_eq!(p.code(), "wrong_field_type");
        assert_eq!(p.detail.as_deref(), Some("The request body must be a JSON object."));
        let p = err(r#"{"name": "a", "config": [1], "format": "csv"}"#);
        assert_eq!((p.code(), p.fields[0].pointer.as_str()), ("wrong_field_type", "/config"));
        assert_eq!(p.fields[0].message, "Expected an object, got an array.");
        for body in
            ["[]", r#"{"name": 5}"#, r#"{"name": "a", "config": {"batch_size": -1}, "format": "csv"}"#]
        {
            let p = err(body);
            let text = format!("{:?} {:?}", p.detail, p.fields);
            for internal in ["Model", "struct", "u32", "i64", "invalid type", "`-1`"] {
                assert!(!text.contains(internal), "{body}: {internal} in {text}");
            }
        }
        let list = Json::<Vec<u32>>::from_bytes(b"[1, 2]").map(|j| j.0);
        assert_eq!(list.ok(), Some(vec![1, 2]), "a list is still read from an array");
    }

    /// Issue 14, finding 6: `?limit=-1` quoted the parser's "invalid digit found in string".
    #[test]
    fn query_errors_do_not_quote_the_parser() {
        let p = Query::<Paging>::from_query("limit=-1").err().map(ApiError::into_problem);
        let detail = p.and_then(|p| p.detail).unwrap_or_default();
        assert_eq!(detail, "Invalid query parameter `limit`: not a value it accepts.");
    }

    /// A body of frames, each `Ok` a data frame (or trailers when `None`), `Err` a failure.
    fn frames(
        frames: Vec<Result<Option<&'static str>, &'static str>>,
    ) -> impl http_body::Body<Data = Bytes, Error = axum::BoxError> + Unpin {
        let frames = frames.into_iter().map(|f| match f {
            Ok(Some(data)) => Ok(http_body::Frame::data(Bytes::from_static(data.as_bytes()))),
            Ok(None) => Ok(http_body::Frame::trailers(HeaderMap::new())),
            Err(e) => Err(axum::BoxError::from(e)),
        });
        http_body_util::StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_however_it_is_framed() {
        let read = |f| async move { collect(frames(f)).await.map_err(|e| e.to_string()) };
        assert_eq!(read(vec![]).await, Ok(Bytes::new()));
        assert_eq!(read(vec![Ok(Some(r#"{"name": "a"}"#))]).await, Ok(Bytes::from(r#"{"name": "a"}"#)));
        let pieces = vec![Ok(Some("{\"na")), Ok(Some("")), Ok(Some("me\": ")), Ok(Some("\"a\"}")), Ok(None)];
        assert_eq!(read(pieces).await, Ok(Bytes::from(r#"{"name": "a"}"#)), "joined, trailers left out");
        let broken = vec![Ok(Some("{\"na")), Err("connection reset")];
        assert_eq!(read(broken).await, Err("connection reset".to_owned()));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_in_pieces_is_payload_too_large() {
        let pieces = vec![Ok(Some("{\"name\": \"")), Ok(Some("abcdefghij")), Ok(Some("\"}"))];
        let req = Request::post("/")
            .header(CONTENT_TYPE, "application/json")
            .body(axum::body::Body::new(frames(pieces)))
            .unwrap_or_else(|_| unreachable!("a valid request"));
        let limited = axum::Router::new()
            .route("/", axum::routing::post(|Json(v): Json<serde_json::Value>| async move { Json(v) }))
            .layer(axum::extract::DefaultBodyLimit::max(16));
        let res = tower::ServiceExt::oneshot(limited.clone(), req).await.unwrap_or_else(|e| match e {});
        assert_eq!(
            res.extensions().get::<crate::error::Pending>().map(|p| p.0.code()),
            Some("payload_too_large")
        );
        let small = vec![Ok(Some("{\"name\": ")), Ok(Some("\"a\"}"))];
        let req = Request::post("/")
            .header(CONTENT_TYPE, "application/json")
            .body(axum::body::Body::new(frames(small)))
            .unwrap_or_else(|_| unreachable!("a valid request"));
        let res = tower::ServiceExt::oneshot(limited, req).await.unwrap_or_else(|e| match e {});
        assert_eq!(res.status(), http::StatusCode::OK);
    }

    #[test]
    fn fallback_never_echoes_much() {
        let p = no_route(&Method::GET, &format!("/{}\u{7}", "a".repeat(1000))).into_problem();
        let detail = p.detail.unwrap_or_default();
        assert!(detail.starts_with("No route for GET /aaa"));
        assert!(!detail.contains('\u{7}'));
        assert!(detail.chars().count() < 230);
    }
}
