//! Dialects: the six envelopes an error can be sent in, and rendering into them.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::catalog::{Catalog, Entry};
use crate::json::write_str;
use crate::problem::{FieldError, Problem};

/// The `X-Request-Id` header name.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `application/problem+json` (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Dialect {
    /// RFC 9457 with `code`, `request_id`, `errors[]` and retry hints.
    Rebuff,
    /// RFC 9457 with `error_code` on 4xx only and `type` anchors per status.
    Arize,
    /// `{"error": {type, code, message, doc_url, param}, "request_id"}`.
    Dataxid,
    /// `{"detail": "..."}`, and `{"detail": [{loc, msg, type}]}` for field errors.
    Mlops,
    /// `{code, message, details, request_id}` with `UPPER_SNAKE` codes.
    Incidents,
    /// `{code, message, details[], request_id}` with `lower_snake` codes.
    Apikeys,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 6] = [
        Dialect::Rebuff,
        Dialect::Arize,
        Dialect::Dataxid,
        Dialect::Mlops,
        Dialect::Incidents,
        Dialect::Apikeys,
    ];

    /// The dialect's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dialect::Rebuff => "rebuff",
            Dialect::Arize => "arize",
            Dialect::Dataxid => "dataxid",
            Dialect::Mlops => "mlops",
            Dialect::Incidents => "incidents",
            Dialect::Apikeys => "apikeys",
        }
    }

    /// Parses a dialect name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The media type of this dialect's bodies.
    pub const fn content_type(self) -> &'static str {
        match self {
            Dialect::Rebuff | Dialect::Arize => PROBLEM_JSON,
            _ => "application/json",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Show the internal cause of masked errors. For development only.
    pub debug: bool,
    /// Send the occurrence's request id as `X-Request-Id` too (the default). Off for a caller
    /// that puts the request's own header value on the response itself, and so saves making
    /// another from the text.
    pub request_id_header: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions::debug(false)
    }
}

impl RenderOptions {
    /// Options with debug output switched on or off.
    pub const fn debug(debug: bool) -> Self {
        RenderOptions { debug, request_id_header: true }
    }

    /// These options, without the `X-Request-Id` header (the body still carries the id).
    ///
    /// ```
    /// use rebuff_core::{Catalog, Problem, RenderOptions};
    ///
    /// let problem = Problem::dynamic("resource_not_found").request_id("req_1");
    /// let catalog = Catalog::standard();
    /// let res = catalog.render_with(&problem, RenderOptions::default().without_request_id_header())?;
    /// assert!(!res.headers().contains_key("x-request-id"));
    /// assert!(std::str::from_utf8(res.body())?.contains(r#""request_id":"req_1""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub const fn without_request_id_header(self) -> Self {
        RenderOptions { request_id_header: false, ..self }
    }
}

/// Rendering failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The occurrence names a code the catalog does not have.
    #[error("code `{0}` is not in catalog `{1}`")]
    UnknownCode(String, String),
}

/// The headers an error response has room for when it is rendered: the four written here
/// and eight more (twelve entries fit the sixteen slots this asks `HeaderMap` for).
const ERROR_HEADERS: usize = 12;

impl Catalog {
    /// Renders an occurrence as a complete HTTP response in this catalog's dialect.
    ///
    /// # Errors
    /// [`RenderError::UnknownCode`] when the occurrence's code is not in the catalog.
    pub fn render(&self, problem: &Problem) -> Result<Response<Bytes>, RenderError> {
        self.render_with(problem, RenderOptions::default())
    }

    /// Renders with options (debug output).
    ///
    /// # Errors
    /// [`RenderError::UnknownCode`] when the occurrence's code is not in the catalog.
    pub fn render_with(
        &self,
        problem: &Problem,
        opts: RenderOptions,
    ) -> Result<Response<Bytes>, RenderError> {
        let (entry, written) = self
            .entry_and_written(problem.code())
            .ok_or_else(|| RenderError::UnknownCode(problem.code().to_owned(), self.name().to_owned()))?;
        let body = render_body(self.dialect(), entry, written, problem, opts);
        let mut res = Response::new(Bytes::from(body));
        *res.status_mut() = entry.status;
        let headers = res.headers_mut();
        // Room for what is written here and for what the layers of a server add to an error
        // on its way out (rate-limit fields, `Content-Length`, `X-Content-Type-Options`):
        // `HeaderMap` grows by moving every entry, and an error answer would otherwise grow
        // it once more on the way out.
        headers.reserve(ERROR_HEADERS + problem.headers.len());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.dialect().content_type()));
        if let Some(secs) = problem.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if opts.request_id_header
            && let Some(id) = problem.request_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.insert(X_REQUEST_ID, id);
        }
        for (name, value) in &problem.headers {
            headers.append(name.clone(), value.clone());
        }
        if entry.status == StatusCode::UNAUTHORIZED && !headers.contains_key(WWW_AUTHENTICATE) {
            // RFC 9110 §15.5.2: a 401 must carry a challenge.
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"api\""));
        }
        Ok(res)
    }
}

/// The human text of an occurrence after masking and message templating.
fn detail_text<'a>(entry: &'a Entry, problem: &'a Problem, opts: RenderOptions) -> Option<Cow<'a, str>> {
    if entry.masked {
        if opts.debug
            && let Some(cause) = &problem.cause
        {
            return Some(Cow::Borrowed(cause));
        }
        return entry.message.as_deref().map(|m| template(m, problem.retry_after));
    }
    match &problem.detail {
        Some(d) => Some(Cow::Borrowed(d)),
        None => entry.message.as_deref().map(|m| template(m, problem.retry_after)),
    }
}

fn template(message: &str, retry_after: Option<u64>) -> Cow<'_, str> {
    if !message.contains("{retry_after}") {
        return Cow::Borrowed(message);
    }
    match retry_after {
        // "Retry after 1 seconds" reads wrong; the unit that follows the number agrees with it.
        Some(1) => {
            Cow::Owned(message.replace("{retry_after} seconds", "1 second").replace("{retry_after}", "1"))
        }
        Some(s) => Cow::Owned(message.replace("{retry_after}", itoa::Buffer::new().format(s))),
        // Without a delay the sentence naming it is dropped rather than shown with a hole.
        None => Cow::Owned(
            message
                .split_inclusive(". ")
                .filter(|s| !s.contains("{retry_after}"))
                .collect::<String>()
                .trim_end()
                .to_owned(),
        ),
    }
}

fn render_body(
    dialect: Dialect,
    entry: &Entry,
    written: &Written,
    p: &Problem,
    opts: RenderOptions,
) -> Vec<u8> {
    let detail = detail_text(entry, p, opts);
    let detail = detail.as_deref();
    let masked = entry.masked;
    // Masked errors carry nothing the caller passed but the request id.
    let fields: &[FieldError] = if masked { &[] } else { &p.fields };
    let param = if masked { None } else { p.param.as_deref() };
    let ext = if masked { None } else { Some(&p.extensions).filter(|m| !m.is_empty()) };
    let request_id = p.request_id.as_deref();
    let wire = entry.wire_code.as_deref();
    // Room for a problem with a field error or two without growing.
    let mut out = Vec::with_capacity(512);
    let result = match dialect {
        // The two RFC 9457 envelopes, the ones most APIs answer in, are written directly
        // (see `write_problem`); the others go through serde.
        Dialect::Rebuff => {
            RebuffBody {
                written,
                detail,
                instance: p.instance.as_deref(),
                request_id,
                param,
                errors: fields,
                retry_after: p.retry_after,
                ext,
            }
            .write(&mut out);
            Ok(())
        }
        Dialect::Arize => {
            ArizeBody { written, detail, instance: p.instance.as_deref(), request_id, errors: fields, ext }
                .write(&mut out);
            Ok(())
        }
        Dialect::Dataxid => {
            let mut ser = serde_json::Serializer::new(&mut out);
            // This envelope names one parameter. When a field failed, it is the first field,
            // as `body.config.batch_size` with the field's own message (the reference's
            // example); the occurrence's summary detail and param are for envelopes that list
            // every field.
            let derived;
            let (message, param) = match fields.first() {
                Some(f) => {
                    derived = format!("{}.{}", f.location.as_str(), f.dotted());
                    (f.message.as_str(), Some(derived.as_str()))
                }
                None => (detail.unwrap_or(&entry.title), param),
            };
            DataxidBody {
                error: DataxidError {
                    type_: &entry.category,
                    code: wire.unwrap_or(&entry.code),
                    message,
                    doc_url: &entry.type_uri,
                    param,
                },
                request_id,
            }
            .serialize(&mut ser)
        }
        Dialect::Mlops => {
            let mut ser = serde_json::Serializer::new(&mut out);
            if fields.is_empty() {
                MlopsBody { detail: MlopsDetail::Text(detail.unwrap_or(&entry.title)), request_id }
                    .serialize(&mut ser)
            } else {
                MlopsBody { detail: MlopsDetail::Fields(fields), request_id }.serialize(&mut ser)
            }
        }
        Dialect::Incidents => {
            let mut ser = serde_json::Serializer::new(&mut out);
            let message = match detail {
                Some(d) => Cow::Owned(format!("{}: {d}", entry.title)),
                None => Cow::Borrowed(entry.title.as_str()),
            };
            let details = if fields.is_empty() {
                ext.map(IncidentDetails::Ext)
            } else {
                Some(IncidentDetails::Fields(fields))
            };
            FlatBody { code: wire.unwrap_or(&entry.code), message: &message, details, request_id }
                .serialize(&mut ser)
        }
        Dialect::Apikeys => {
            let mut ser = serde_json::Serializer::new(&mut out);
            let details = if fields.is_empty() { None } else { Some(IncidentDetails::List(fields)) };
            FlatBody {
                code: wire.unwrap_or(&entry.code),
                message: detail.unwrap_or(&entry.title),
                details,
                request_id,
            }
            .serialize(&mut ser)
        }
    };
    // Serializing borrowed strings and integers into a Vec cannot fail.
    debug_assert!(result.is_ok());
    out
}

type Extensions<'a> = Option<&'a serde_json::Map<String, serde_json::Value>>;

/// The members of an entry's RFC 9457 body that are the same in every occurrence, written
/// once when the catalog is built: an error answer then copies them instead of writing and
/// escaping five strings and a number each time. Empty for the other dialects, and a member
/// the entry does not send (`error_code` of a 5xx) is empty.
#[derive(Clone, Default)]
pub(crate) struct Written {
    /// `"type":…,"title":…,"status":…` (`rebuff`), or the same three in `arize`'s order.
    head: Box<[u8]>,
    /// `"code":…` (`rebuff`) or `"error_code":…` (`arize`).
    code: Box<[u8]>,
    /// `"retry":…` (`rebuff`).
    retry: Box<[u8]>,
}

impl fmt::Debug for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_struct("Written")
            .field("head", &text(&self.head))
            .field("code", &text(&self.code))
            .field("retry", &text(&self.retry))
            .finish()
    }
}

impl Written {
    /// The fixed members of `entry` in `dialect`.
    pub(crate) fn new(dialect: Dialect, entry: &Entry) -> Self {
        let wire = entry.wire_code.as_deref();
        let status = entry.status.as_u16();
        match dialect {
            Dialect::Rebuff => Written::rebuff(
                &entry.type_uri,
                &entry.title,
                status,
                wire.unwrap_or(&entry.code),
                entry.retry.as_str(),
            ),
            Dialect::Arize => Written::arize(
                &entry.type_uri,
                &entry.title,
                status,
                wire.filter(|_| entry.status.is_client_error()),
            ),
            _ => Written::default(),
        }
    }

    fn rebuff(type_: &str, title: &str, status: u16, code: &str, retry: &str) -> Self {
        Written {
            head: members(&[
                ("type", Json::Str(type_)),
                ("title", Json::Str(title)),
                ("status", Json::Int(status.into())),
            ]),
            code: members(&[("code", Json::Str(code))]),
            retry: members(&[("retry", Json::Str(retry))]),
        }
    }

    fn arize(type_: &str, title: &str, status: u16, error_code: Option<&str>) -> Self {
        Written {
            head: members(&[
                ("status", Json::Int(status.into())),
                ("title", Json::Str(title)),
                ("type", Json::Str(type_)),
            ]),
            code: members(&[("error_code", Json::opt(error_code))]),
            retry: Box::default(),
        }
    }
}

/// `members` as [`write_problem`] writes them, without the braces.
fn members(members: &[(&str, Json<'_>)]) -> Box<[u8]> {
    let mut out = Vec::new();
    write_members(&mut out, &mut true, members);
    out.into_boxed_slice()
}

/// The `rebuff` envelope: RFC 9457 with `code`, `request_id`, `errors[]` and retry hints.
struct RebuffBody<'a> {
    written: &'a Written,
    detail: Option<&'a str>,
    instance: Option<&'a str>,
    request_id: Option<&'a str>,
    param: Option<&'a str>,
    errors: &'a [FieldError],
    retry_after: Option<u64>,
    ext: Extensions<'a>,
}

impl RebuffBody<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        write_problem(
            out,
            &[
                ("", Json::Written(&self.written.head)),
                ("detail", Json::opt(self.detail)),
                ("instance", Json::opt(self.instance)),
                ("", Json::Written(&self.written.code)),
                ("request_id", Json::opt(self.request_id)),
                ("param", Json::opt(self.param)),
                ("errors", Json::Fields(self.errors)),
                ("", Json::Written(&self.written.retry)),
                ("retry_after", self.retry_after.map_or(Json::Skip, Json::Int)),
            ],
            self.ext,
        );
    }
}

/// The `arize` envelope: RFC 9457 with `error_code` on 4xx only.
struct ArizeBody<'a> {
    written: &'a Written,
    detail: Option<&'a str>,
    instance: Option<&'a str>,
    request_id: Option<&'a str>,
    errors: &'a [FieldError],
    ext: Extensions<'a>,
}

impl ArizeBody<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        write_problem(
            out,
            &[
                ("", Json::Written(&self.written.head)),
                ("detail", Json::opt(self.detail)),
                ("instance", Json::opt(self.instance)),
                ("", Json::Written(&self.written.code)),
                ("request_id", Json::opt(self.request_id)),
                // RFC 9457 §3's own example extension for per-field problems.
                ("errors", Json::Fields(self.errors)),
            ],
            self.ext,
        );
    }
}

/// A member of an RFC 9457 body, as [`write_problem`] writes it.
enum Json<'a> {
    Str(&'a str),
    Int(u64),
    Fields(&'a [FieldError]),
    /// Members already written as `"name":value` (see [`Written`]), none when empty.
    Written(&'a [u8]),
    /// Left out (an absent optional member).
    Skip,
}

impl<'a> Json<'a> {
    fn opt(value: Option<&'a str>) -> Self {
        value.map_or(Json::Skip, Json::Str)
    }
}

/// Writes `{"name":value,...}` (the names are plain ASCII, written as they are) and then the
/// extension members, leaving out `Skip` and an empty
/// `errors`: what serde writes for the derived structures these envelopes were first
/// written with (kept as the test oracle), byte for byte, including duplicate keys.
///
/// By hand because serde_json escapes every string a byte at a time through a table, and
/// goes through its map machinery for the flattened extensions; the strings of a problem
/// (catalog titles and URIs, codes, ids, details) almost never need escaping, so
/// [`write_str`](crate::json::write_str) checks that in one pass first, and an error answer costs a fraction of
/// what it did.
fn write_problem(
    out: &mut Vec<u8>,
    members: &[(&str, Json<'_>)],
    ext: Option<&serde_json::Map<String, serde_json::Value>>,
) {
    out.push(b'{');
    let mut first = true;
    write_members(out, &mut first, members);
    for (name, value) in ext.into_iter().flatten() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        // Writing JSON values into a Vec cannot fail.
        let written = serde_json::to_writer(&mut *out, value);
        debug_assert!(written.is_ok());
    }
    out.push(b'}');
}

/// Writes `"name":value` for each member not left out, a comma before each but the first of
/// the object (`first` says whether nothing has been written in it yet).
fn write_members(out: &mut Vec<u8>, first: &mut bool, members: &[(&str, Json<'_>)]) {
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !std::mem::take(first) {
            out.push(b',');
        }
        if !name.is_empty() {
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        }
    };
    for (name, value) in members {
        match value {
            Json::Skip | Json::Fields([]) | Json::Written([]) => {}
            Json::Written(members) => {
                key(out, "");
                out.extend_from_slice(members);
            }
            Json::Str(s) => {
                key(out, name);
                write_str(out, s);
            }
            Json::Int(n) => {
                key(out, name);
                out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
            }
            Json::Fields(fields) => {
                key(out, name);
                out.push(b'[');
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(b"{\"pointer\":");
                    write_str(out, &f.pointer);
                    out.extend_from_slice(b",\"location\":");
                    write_str(out, f.location.as_str());
                    out.extend_from_slice(b",\"reason\":");
                    write_str(out, &f.reason);
                    out.extend_from_slice(b",\"detail\":");
                    write_str(out, &f.message);
                    out.push(b'}');
                }
                out.push(b']');
            }
        }
    }
}

#[derive(Serialize)]
struct DataxidBody<'a> {
    error: DataxidError<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

#[derive(Serialize)]
struct DataxidError<'a> {
    #[serde(rename = "type")]
    type_: &'a str,
    code: &'a str,
    message: &'a str,
    doc_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

#[derive(Serialize)]
struct MlopsBody<'a> {
    detail: MlopsDetail<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

enum MlopsDetail<'a> {
    Text(&'a str),
    Fields(&'a [FieldError]),
}

impl Serialize for MlopsDetail<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MlopsDetail::Text(t) => s.serialize_str(t),
            MlopsDetail::Fields(fields) => s.collect_seq(fields.iter().map(MlopsItem)),
        }
    }
}

struct MlopsItem<'a>(&'a FieldError);

impl Serialize for MlopsItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("loc", &MlopsLoc(f))?;
        m.serialize_entry("msg", &f.message)?;
        m.serialize_entry("type", &f.reason)?;
        m.end()
    }
}

/// FastAPI's `loc`: the location, then each pointer token, array indices as integers.
struct MlopsLoc<'a>(&'a FieldError);

impl Serialize for MlopsLoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        seq.serialize_element(self.0.location.as_str())?;
        for token in self.0.segments() {
            match token.parse::<u64>() {
                Ok(n) if !token.starts_with('0') || token.len() == 1 => seq.serialize_element(&n)?,
                _ => seq.serialize_element(&*token)?,
            }
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct FlatBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<IncidentDetails<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

enum IncidentDetails<'a> {
    /// `{"name": {"code": ..., "message": ...}}`
    Fields(&'a [FieldError]),
    /// `[{"field": ..., "code": ..., "message": ...}]`
    List(&'a [FieldError]),
    Ext(&'a serde_json::Map<String, serde_json::Value>),
}

impl Serialize for IncidentDetails<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IncidentDetails::Fields(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for f in *fields {
                    m.serialize_entry(&f.dotted(), &CodeMessage { code: &f.reason, message: &f.message })?;
                }
                m.end()
            }
            IncidentDetails::List(fields) => s.collect_seq(fields.iter().map(|f| FieldCodeMessage {
                field: f.dotted(),
                code: &f.reason,
                message: &f.message,
            })),
            IncidentDetails::Ext(map) => map.serialize(s),
        }
    }
}

#[derive(Serialize)]
struct CodeMessage<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct FieldCodeMessage<'a> {
    field: String,
    code: &'a str,
    message: &'a str,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::problem::Location;

    struct ProblemFields<'a>(&'a [FieldError]);

    impl ProblemFields<'_> {
        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl Serialize for ProblemFields<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(ProblemField))
        }
    }

    struct ProblemField<'a>(&'a FieldError);

    impl Serialize for ProblemField<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let f = self.0;
            let mut m = s.serialize_map(Some(4))?;
            m.serialize_entry("pointer", &f.pointer)?;
            m.serialize_entry("location", f.location.as_str())?;
            m.serialize_entry("reason", &f.reason)?;
            m.serialize_entry("detail", &f.message)?;
            m.end()
        }
    }

    // The derived structures the two RFC 9457 envelopes were first written with: the oracle
    // `write_problem` must match byte for byte.
    #[derive(Serialize)]
    struct RebuffOracle<'a> {
        #[serde(rename = "type")]
        type_: &'a str,
        title: &'a str,
        status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        instance: Option<&'a str>,
        code: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        param: Option<&'a str>,
        #[serde(skip_serializing_if = "ProblemFields::is_empty")]
        errors: ProblemFields<'a>,
        retry: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        ext: Option<&'a serde_json::Map<String, serde_json::Value>>,
    }

    #[derive(Serialize)]
    struct ArizeOracle<'a> {
        status: u16,
        title: &'a str,
        #[serde(rename = "type")]
        type_: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        instance: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<&'a str>,
        #[serde(skip_serializing_if = "ProblemFields::is_empty")]
        errors: ProblemFields<'a>,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        ext: Option<&'a serde_json::Map<String, serde_json::Value>>,
    }

    /// Text with what JSON must escape (quotes, backslashes, control characters), what it
    /// must not (DEL, non-ASCII), and plain text.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 ._/:-]{0,40}",
            "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}é€😀]){0,20}",
            // The edges of what must be escaped.
            "[a-z\u{1f}\u{20}\"\\\\]{1,6}",
        ]
    }

    fn field() -> impl Strategy<Value = FieldError> {
        (
            text(),
            prop_oneof![Just(Location::Body), Just(Location::Query), Just(Location::Path)],
            text(),
            text(),
        )
            .prop_map(|(pointer, location, reason, message)| {
                FieldError::new(location, pointer, reason, message)
            })
    }

    fn ext() -> impl Strategy<Value = Option<serde_json::Map<String, serde_json::Value>>> {
        let value = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            text().prop_map(serde_json::Value::from),
            proptest::collection::vec(text(), 0..3).prop_map(serde_json::Value::from),
        ];
        // "type" and "status" repeat members of the body, as an extension may.
        let key = prop_oneof![text(), Just("type".to_owned()), Just("status".to_owned())];
        proptest::option::of(
            proptest::collection::vec((key, value), 0..4).prop_map(|kv| kv.into_iter().collect()),
        )
    }

    proptest! {
        #[test]
        fn written_bodies_are_what_serde_writes(
            strings in proptest::collection::vec(text(), 4),
            optional in proptest::collection::vec(proptest::option::of(text()), 5),
            status in 100u16..600,
            retry_after in proptest::option::of(any::<u64>()),
            fields in proptest::collection::vec(field(), 0..3),
            ext in ext(),
        ) {
            let [type_, title, code, retry] = [&strings[0], &strings[1], &strings[2], &strings[3]];
            let [detail, instance, request_id, param, error_code] =
                [0, 1, 2, 3, 4].map(|i| optional[i].as_deref());
            let ext = ext.as_ref().filter(|m| !m.is_empty());

            let written = Written::rebuff(type_, title, status, code, retry);
            let rebuff = RebuffBody {
                written: &written, detail, instance, request_id, param, errors: &fields, retry_after, ext,
            };
            let mut written = Vec::new();
            rebuff.write(&mut written);
            let expected = serde_json::to_vec(&RebuffOracle {
                type_, title, status, detail, instance, code, request_id, param,
                errors: ProblemFields(&fields), retry, retry_after, ext,
            }).expect("serializes");
            prop_assert_eq!(String::from_utf8_lossy(&written), String::from_utf8_lossy(&expected));

            let written = Written::arize(type_, title, status, error_code);
            let arize = ArizeBody { written: &written, detail, instance, request_id, errors: &fields, ext };
            let mut written = Vec::new();
            arize.write(&mut written);
            let expected = serde_json::to_vec(&ArizeOracle {
                status, title, type_, detail, instance, error_code, request_id,
                errors: ProblemFields(&fields), ext,
            }).expect("serializes");
            prop_assert_eq!(String::from_utf8_lossy(&written), String::from_utf8_lossy(&expected));
        }
    }
}
