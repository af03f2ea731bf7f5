//! The universal parser: any of the six envelopes, a plain RFC 9457 body, or whatever a proxy
//! sent, into one [`ParsedError`].
//!
//! RFC 9457 §3 rules hold for every dialect: unknown members are ignored, and a member of the
//! wrong JSON type is ignored as if absent, never an error. To get that without building a
//! `serde_json::Value` tree, the body is first split into raw member slices, and each member
//! the parser cares about is then decoded on its own.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{CONTENT_TYPE, DATE, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::catalog::{Catalog, Entry};
use crate::dialect::{Dialect, X_REQUEST_ID};
use crate::problem::{FieldError, Location, pointer_from};

/// The envelope a body was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "dialect")]
pub enum Envelope {
    /// One of the six dialects.
    Dialect(Dialect),
    /// RFC 9457 problem details with no code member (which dialect cannot be told apart).
    Problem,
    /// JSON of no known envelope.
    OtherJson,
    /// A body that is not JSON (an HTML page from a proxy, truncated JSON, plain text).
    Text,
    /// No body.
    Empty,
}

/// One error response, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParsedError {
    /// The HTTP status.
    pub status: u16,
    /// The code as sent on the wire.
    pub code: Option<String>,
    /// The error type (Stripe's `type`, from `dataxid`).
    pub category: Option<String>,
    /// The stable title (RFC 9457), or the status's reason phrase.
    pub title: Option<String>,
    /// The human message (`detail` or `message`).
    pub message: Option<String>,
    /// The RFC 9457 `type` or `doc_url`.
    pub type_uri: Option<String>,
    /// The RFC 9457 `instance`.
    pub instance: Option<String>,
    /// The parameter at fault.
    pub param: Option<String>,
    /// Per-field errors.
    pub fields: Vec<FieldError>,
    /// The request id, from the body or else the `X-Request-Id` header.
    pub request_id: Option<String>,
    /// Seconds to wait: `Retry-After` (either form), else the `RateLimit` field's `t`, else the body.
    pub retry_after: Option<u64>,
    /// What the body was recognised as.
    pub envelope: Envelope,
}

impl ParsedError {
    /// The catalog entry this response stands for, when the catalog can tell.
    pub fn identify<'c>(&self, catalog: &'c Catalog) -> Option<&'c Entry> {
        catalog.identify(self.status, self.code.as_deref(), self.type_uri.as_deref())
    }
}

/// The members of every envelope, each kept raw so a wrong type cannot fail the whole body.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Members<'a> {
    #[serde(rename = "type", borrow)]
    type_: Option<&'a RawValue>,
    #[serde(borrow)]
    title: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<&'a RawValue>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
    #[serde(borrow)]
    instance: Option<&'a RawValue>,
    #[serde(borrow)]
    error_code: Option<&'a RawValue>,
    #[serde(borrow)]
    code: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    request_id: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    param: Option<&'a RawValue>,
    #[serde(borrow)]
    doc_url: Option<&'a RawValue>,
    #[serde(borrow)]
    details: Option<&'a RawValue>,
    #[serde(borrow)]
    errors: Option<&'a RawValue>,
    #[serde(borrow)]
    retry_after: Option<&'a RawValue>,
}

fn get<T: DeserializeOwned>(raw: Option<&RawValue>) -> Option<T> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
}

fn text(raw: Option<&RawValue>) -> Option<String> {
    get::<String>(raw)
}

#[derive(Deserialize)]
struct RebuffField {
    pointer: Option<String>,
    location: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct MlopsItem {
    #[serde(default)]
    loc: Vec<serde_json::Value>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(rename = "type", default)]
    type_: Option<String>,
}

#[derive(Deserialize)]
struct CodeMessage {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct FieldCodeMessage {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Parses an error response of any envelope. Never panics, whatever the bytes.
pub fn parse(status: u16, headers: &HeaderMap, body: &[u8]) -> ParsedError {
    let mut out = ParsedError {
        status,
        code: None,
        category: None,
        title: None,
        message: None,
        type_uri: None,
        instance: None,
        param: None,
        fields: Vec::new(),
        request_id: None,
        retry_after: retry_after_from_headers(headers),
        envelope: Envelope::Empty,
    };
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        out.title = reason(status);
    } else if trimmed[0] != b'{' {
        out.envelope = if serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok() {
            Envelope::OtherJson
        } else {
            Envelope::Text
        };
        out.title = reason(status);
        out.message = plain_text(headers, trimmed);
    } else {
        match serde_json::from_slice::<Members<'_>>(trimmed) {
            Ok(m) => decode_members(&mut out, headers, &m),
            Err(_) => {
                out.envelope = Envelope::Text;
                out.title = reason(status);
            }
        }
    }
    if out.request_id.is_none() {
        out.request_id = headers.get(X_REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    }
    out
}

/// Parses with a catalog at hand: an envelope that fits the catalog's dialect is reported as
/// that dialect (a plain RFC 9457 body under `arize`, say), and the result is identified.
pub fn parse_for<'c>(
    catalog: &'c Catalog,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> (ParsedError, Option<&'c Entry>) {
    let mut parsed = parse(status, headers, body);
    if parsed.envelope == Envelope::Problem && matches!(catalog.dialect(), Dialect::Arize | Dialect::Rebuff) {
        parsed.envelope = Envelope::Dialect(catalog.dialect());
    }
    let entry = parsed.identify(catalog);
    (parsed, entry)
}

fn decode_members(out: &mut ParsedError, headers: &HeaderMap, m: &Members<'_>) {
    out.request_id = text(m.request_id);
    if out.retry_after.is_none() {
        out.retry_after = get::<u64>(m.retry_after);
    }
    // Stripe-style: everything under "error".
    if let Some(inner) = m
        .error
        .filter(|r| r.get().starts_with('{'))
        .and_then(|r| serde_json::from_str::<Members<'_>>(r.get()).ok())
        && (inner.code.is_some() || inner.message.is_some() || inner.type_.is_some())
    {
        out.envelope = Envelope::Dialect(Dialect::Dataxid);
        out.code = text(inner.code);
        out.category = text(inner.type_);
        out.message = text(inner.message);
        out.type_uri = text(inner.doc_url);
        out.param = text(inner.param);
        // A located param (`body.config.batch_size`) names a field: keep it as one, with
        // the message (this envelope has no per-field reason).
        if let Some((location, path)) = out.param.as_deref().and_then(|p| p.split_once('.'))
            && let Some(location) = Location::from_name(location)
        {
            out.fields.push(FieldError {
                pointer: pointer_from(path.split('.')),
                location,
                reason: String::new(),
                message: out.message.clone().unwrap_or_default(),
            });
        }
        if out.request_id.is_none() {
            out.request_id = text(inner.request_id);
        }
        return;
    }
    let is_problem_media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| starts_with_ignore_case(v.trim_start(), "application/problem+json"));
    let code = text(m.code);
    let error_code = text(m.error_code);
    let title = text(m.title);
    let type_uri = text(m.type_);
    let problem_like = is_problem_media || title.is_some() || type_uri.is_some() || m.status.is_some();

    if problem_like && (title.is_some() || type_uri.is_some() || is_problem_media) {
        out.title = title;
        out.type_uri = type_uri;
        out.message = text(m.detail);
        out.instance = text(m.instance);
        out.param = text(m.param);
        if let Some(ec) = error_code {
            out.envelope = Envelope::Dialect(Dialect::Arize);
            out.code = Some(ec);
            out.fields = rebuff_fields(m.errors);
        } else if let Some(c) = code {
            out.envelope = Envelope::Dialect(Dialect::Rebuff);
            out.code = Some(c);
            out.fields = rebuff_fields(m.errors);
        } else {
            out.envelope = Envelope::Problem;
            out.fields = rebuff_fields(m.errors);
        }
        if out.title.is_none() {
            out.title = reason(out.status);
        }
        return;
    }

    if code.is_none() && m.detail.is_some() {
        out.envelope = Envelope::Dialect(Dialect::Mlops);
        if m.detail.is_some_and(|r| r.get().starts_with('[')) {
            let items = get::<Vec<MlopsItem>>(m.detail).unwrap_or_default();
            out.fields = items.into_iter().filter_map(mlops_field).collect();
        } else {
            out.message = text(m.detail);
        }
        out.title = reason(out.status);
        return;
    }

    if let Some(code) = code {
        out.message = text(m.message);
        let upper =
            code.bytes().any(|b| b.is_ascii_uppercase()) && !code.bytes().any(|b| b.is_ascii_lowercase());
        let details_is_object = m.details.is_some_and(|r| r.get().starts_with('{'));
        let details_is_array = m.details.is_some_and(|r| r.get().starts_with('['));
        if details_is_array || (!upper && !details_is_object) {
            out.envelope = Envelope::Dialect(Dialect::Apikeys);
            if let Some(items) = get::<Vec<FieldCodeMessage>>(m.details) {
                out.fields = items
                    .into_iter()
                    .filter_map(|f| {
                        let field = f.field?;
                        Some(FieldError::body(
                            pointer_from(field.split('.')),
                            f.code.unwrap_or_default(),
                            f.message.unwrap_or_default(),
                        ))
                    })
                    .collect();
            }
        } else {
            out.envelope = Envelope::Dialect(Dialect::Incidents);
            if let Some(map) = get::<serde_json::Map<String, serde_json::Value>>(m.details) {
                out.fields = map
                    .into_iter()
                    .filter_map(|(name, v)| {
                        let cm: CodeMessage = serde_json::from_value(v).ok()?;
                        Some(FieldError::body(
                            pointer_from(name.split('.')),
                            cm.code?,
                            cm.message.unwrap_or_default(),
                        ))
                    })
                    .collect();
            }
        }
        out.code = Some(code);
        out.title = reason(out.status);
        return;
    }

    out.envelope = Envelope::OtherJson;
    out.message = text(m.message).or_else(|| text(m.detail));
    out.title = reason(out.status);
}

fn rebuff_fields(raw: Option<&RawValue>) -> Vec<FieldError> {
    get::<Vec<serde_json::Value>>(raw)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| {
            let f: RebuffField = serde_json::from_value(v).ok()?;
            Some(FieldError {
                pointer: f.pointer?,
                location: f.location.as_deref().and_then(Location::from_name).unwrap_or(Location::Body),
                reason: f.reason.unwrap_or_default(),
                message: f.detail.unwrap_or_default(),
            })
        })
        .collect()
}

fn mlops_field(item: MlopsItem) -> Option<FieldError> {
    let mut loc = item.loc.into_iter();
    let location =
        loc.next().and_then(|v| v.as_str().and_then(Location::from_name)).unwrap_or(Location::Body);
    let tokens: Vec<String> = loc
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .collect();
    Some(FieldError {
        pointer: pointer_from(tokens),
        location,
        reason: item.type_.unwrap_or_default(),
        message: item.msg.unwrap_or_default(),
    })
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn reason(status: u16) -> Option<String> {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).map(str::to_owned)
}

/// A short plain-text body is kept as the message; HTML and long bodies are not.
fn plain_text(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let is_plain = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| starts_with_ignore_case(v, "text/plain"));
    if !is_plain || body.len() > 512 {
        return None;
    }
    let s = std::str::from_utf8(body).ok()?.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// `Retry-After` in either form (RFC 9110 §10.2.3), else the `t` parameter of the IETF
/// `RateLimit` field.
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<u64> {
    if let Some(v) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(secs);
        }
        if let Ok(when) = httpdate::parse_http_date(v) {
            let now = headers
                .get(DATE)
                .and_then(|d| d.to_str().ok())
                .and_then(|d| httpdate::parse_http_date(d).ok())
                .unwrap_or_else(SystemTime::now);
            return Some(when.duration_since(now).unwrap_or(Duration::ZERO).as_secs());
        }
    }
    headers.get_all("ratelimit").iter().filter_map(|v| v.to_str().ok()).find_map(ratelimit_reset)
}

/// The `t` (seconds until the quota resets) of an IETF `RateLimit` field value whose
/// remaining quota `r` is 0, e.g. `"default";r=0;t=12`.
fn ratelimit_reset(value: &str) -> Option<u64> {
    value.split(',').find_map(|item| {
        let mut r = None;
        let mut t = None;
        for param in item.split(';').skip(1) {
            let (k, v) = param.trim().split_once('=')?;
            match k {
                "r" => r = v.parse::<u64>().ok(),
                "t" => t = v.parse::<u64>().ok(),
                _ => {}
            }
        }
        (r == Some(0)).then_some(t).flatten()
    })
}
