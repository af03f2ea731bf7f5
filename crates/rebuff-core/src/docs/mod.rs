//! Error reference rendering: the docs page (Markdown and HTML), an OpenAPI 3.1 description of
//! the error responses, and a JSON export of the catalog.
//!
//! Everything here is derived from a [`Catalog`] alone and is deterministic: the same catalog
//! always renders byte for byte the same output, so that rendered pages can be committed and
//! diffed, and snapshot-tested.
//!
//! The reference page groups entries by their docs anchor (`entry.anchor`): every anchor is one
//! section whose HTML `id` is the anchor itself, so that every `type` / `doc_url` the API sends
//! (`entry.type_uri`, which ends in `#<anchor>`) resolves to its section. Several codes may share
//! one anchor (a profile that documents one section per HTTP status, or per wire code); each
//! code also gets its own `id="code-<code>"`, so that every stable code is linkable. Entries
//! that a profile presents as another code (`present_as`) have no section of their own: they
//! are listed under the entry they are answered with.
//!
//! ```
//! use rebuff_core::{Catalog, docs};
//!
//! let catalog = Catalog::builtin("dataxid").expect("built in");
//! let page = docs::html(catalog);
//! assert!(page.contains(r#"id="quota_exceeded""#));
//! let entry = catalog.get("quota_exceeded").expect("in the catalog");
//! let body = docs::example_body(catalog, entry);
//! assert_eq!(body["error"]["code"], "quota_exceeded");
//! assert_eq!(body["request_id"], "req_abc123");
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use http::StatusCode;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Map, Value, json};

use crate::catalog::{Catalog, Entry, RetryClass};
use crate::dialect::Dialect;
use crate::problem::{FieldError, Location, Problem};

mod export;
mod html;
mod markdown;
mod openapi;
mod rust_client;

pub use export::json;
pub use html::{html, html_content_security_policy};
pub use markdown::markdown;
pub use openapi::openapi_components;
pub use rust_client::{ExportError, rust_client, rust_client_json, rustdoc_line};

/// The request id every example body carries.
const EXAMPLE_REQUEST_ID: &str = "req_abc123";
/// The delay, in seconds, of every example that carries one.
const EXAMPLE_RETRY_AFTER: u64 = 12;
/// The `info.version` of the OpenAPI document: the version of the document's format.
const OPENAPI_DOC_VERSION: &str = "1.0.0";

// ---- examples ------------------------------------------------------------------------

/// The occurrence that the docs show for an entry.
///
/// Every example carries the request id `req_abc123`. On top of that:
/// - entries answered with 429, or whose retry class is `retry_after`, carry a delay of 12
///   seconds (sent as `Retry-After`);
/// - validation entries (every 422, and the 400 codes about one field: `parameter_invalid`,
///   `wrong_field_type`, `invalid_query_parameter`) carry one field error;
/// - `parameter_invalid` also names its parameter (`body.config.batch_size`).
///
/// The occurrence has no detail of its own, so the entry's default message is shown.
pub fn example_problem(entry: &Entry) -> Problem {
    let mut problem = Problem::dynamic(entry.code.clone()).request_id(EXAMPLE_REQUEST_ID);
    if entry.status == StatusCode::TOO_MANY_REQUESTS || entry.retry == RetryClass::RetryAfter {
        problem = problem.retry_after(EXAMPLE_RETRY_AFTER);
    }
    if let Some(field) = example_field(entry) {
        problem = problem.field(field);
    }
    if entry.code == "parameter_invalid" {
        problem = problem.param("body.config.batch_size");
    }
    problem
}

/// The field error of an entry's example, if it has one.
fn example_field(entry: &Entry) -> Option<FieldError> {
    let field = match entry.code.as_str() {
        "parameter_invalid" | "invalid_field_value" => FieldError::body(
            "/config/batch_size",
            "greater_than",
            "Value error, ensure this value is greater than 0",
        ),
        "wrong_field_type" => {
            FieldError::body("/config/batch_size", "type", "Input should be a valid integer")
        }
        "invalid_query_parameter" => {
            FieldError::new(Location::Query, "/limit", "type", "Input should be a valid integer")
        }
        "missing_required_field" => FieldError::body(
            "/name",
            "required",
            "The 'name' field is required and must be a non-empty string.",
        ),
        "invalid_enum_value" => FieldError::body(
            "/model_type",
            "enum",
            "Input should be 'ctgan', 'copulagan', 'tvae' or 'gaussian_copula'",
        ),
        "idempotency_key_reused" => FieldError::new(
            Location::Header,
            "/idempotency-key",
            "reused",
            "This Idempotency-Key was already used with a different request body.",
        ),
        _ if entry.status == StatusCode::UNPROCESSABLE_ENTITY => {
            FieldError::body("/email", "invalid_format", "value is not a valid email address")
        }
        _ => return None,
    };
    Some(field)
}

/// The body of an entry's example response: [`example_problem`] rendered by the catalog, as
/// JSON.
///
/// Returns `Value::Null` when the entry's code is not in `catalog` (an entry of another
/// catalog).
pub fn example_body(catalog: &Catalog, entry: &Entry) -> Value {
    match catalog.render(&example_problem(entry)) {
        // The renderer writes JSON, so parsing it back cannot fail.
        Ok(res) => serde_json::from_slice(res.body()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// An example response, ready to show.
struct Example {
    /// `401 Unauthorized`.
    status: String,
    /// The headers worth showing, `Content-Type` first.
    headers: Vec<(String, String)>,
    /// The pretty-printed body.
    body: String,
}

fn example(catalog: &Catalog, entry: &Entry) -> Option<Example> {
    let res = catalog.render(&example_problem(entry)).ok()?;
    let body: Value = serde_json::from_slice(res.body()).ok()?;
    let headers = [CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE]
        .iter()
        .filter_map(|name| {
            let value = res.headers().get(name)?.to_str().ok()?;
            Some((canonical_header(name.as_str()), value.to_owned()))
        })
        .collect();
    Some(Example { status: status_line(res.status()), headers, body: pretty(&body) })
}

/// `content-type` -> `Content-Type`, `www-authenticate` -> `WWW-Authenticate`.
fn canonical_header(name: &str) -> String {
    if name == "www-authenticate" {
        return "WWW-Authenticate".to_owned();
    }
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn pretty(value: &Value) -> String {
    // Serializing a `Value` (string keys only) into a String cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

// ---- the page model shared by Markdown and HTML --------------------------------------

/// One docs section: one anchor.
struct Section<'a> {
    anchor: &'a str,
    /// The heading, as inline text (backtick code spans only).
    heading: String,
    summary: Option<&'a str>,
    /// Whether the entries get their own sub-headings (several entries in the section).
    sub_headings: bool,
    items: Vec<Item<'a>>,
}

/// One entry with its own section content.
struct Item<'a> {
    entry: &'a Entry,
    /// The ids this entry's block carries: `code-<code>`, and its `type_uri` fragment when that
    /// differs from every section anchor.
    ids: Vec<String>,
    /// Entries presented as this one, each with its ids.
    also: Vec<(&'a Entry, Vec<String>)>,
}

struct Page<'a> {
    sections: Vec<Section<'a>>,
    /// Every id used by the catalog's anchors and codes, so that the page's own ids avoid them.
    used: HashSet<String>,
}

impl<'a> Page<'a> {
    fn new(catalog: &'a Catalog) -> Self {
        let mut sections: Vec<Section<'a>> = Vec::new();
        for e in catalog.entries().iter().filter(|e| e.presented_as.is_none()) {
            let item = Item { entry: e, ids: Vec::new(), also: Vec::new() };
            match sections.iter_mut().find(|s| s.anchor == e.anchor) {
                Some(s) => s.items.push(item),
                None => sections.push(Section {
                    anchor: &e.anchor,
                    heading: String::new(),
                    summary: None,
                    sub_headings: false,
                    items: vec![item],
                }),
            }
        }
        // Sections by HTTP status (stable: catalog order within a status), like the seeds.
        sections.sort_by_key(|s| s.items.iter().map(|i| i.entry.status).min());
        let mut used: HashSet<String> = sections.iter().map(|s| s.anchor.to_owned()).collect();
        let mut claim = |entry: &Entry| -> Vec<String> {
            let mut ids = Vec::new();
            let code_id = format!("code-{}", entry.code);
            if used.insert(code_id.clone()) {
                ids.push(code_id);
            }
            if let Some((_, fragment)) = entry.type_uri.rsplit_once('#')
                && !fragment.is_empty()
                && used.insert(fragment.to_owned())
            {
                ids.push(fragment.to_owned());
            }
            ids
        };
        for section in &mut sections {
            for item in &mut section.items {
                item.ids = claim(item.entry);
                for other in catalog.entries() {
                    if other.presented_as.as_deref() == Some(item.entry.code.as_str()) {
                        let ids = claim(other);
                        item.also.push((other, ids));
                    }
                }
            }
        }
        for section in &mut sections {
            section.sub_headings = section.items.len() > 1;
            let declared = section.items.iter().find_map(|item| {
                let status = item.entry.status;
                catalog
                    .sections()
                    .get(&status.as_u16())
                    .filter(|s| s.anchor.as_deref() == Some(section.anchor))
                    .map(|s| (status, s))
            });
            if let Some((status, declared)) = declared {
                section.heading = match &declared.heading {
                    Some(h) => format!("{} — {h}", status.as_u16()),
                    None => status_line(status),
                };
                section.summary = declared.summary.as_deref();
            } else if let [item] = section.items.as_slice() {
                section.heading = format!("`{}`", item.entry.code);
            } else {
                let dialect = catalog.dialect();
                let first = wire_code(dialect, section.items[0].entry).map(|(_, w)| w);
                let shared = first.filter(|w| {
                    section.items.iter().all(|i| wire_code(dialect, i.entry).map(|(_, x)| x) == Some(*w))
                });
                section.heading = format!("`{}`", shared.unwrap_or(section.anchor));
            }
        }
        Page { sections, used }
    }

    /// A structural id of the page, unless a catalog anchor or code already took it.
    fn own_id(&self, id: &'static str) -> Option<&'static str> {
        (!self.used.contains(id)).then_some(id)
    }
}

/// The code member an entry's responses carry in a dialect: `(member, value)`.
fn wire_code(dialect: Dialect, e: &Entry) -> Option<(&'static str, &str)> {
    let code = e.wire_code.as_deref().unwrap_or(&e.code);
    match dialect {
        Dialect::Rebuff | Dialect::Incidents | Dialect::Apikeys => Some(("code", code)),
        Dialect::Dataxid => Some(("error.code", code)),
        Dialect::Arize => {
            e.wire_code.as_deref().filter(|_| e.status.is_client_error()).map(|w| ("error_code", w))
        }
        Dialect::Mlops => None,
    }
}

/// Whether any code is sent under another spelling than its stable code. When none is, the
/// page shows one "Code" instead of a wire code and a stable code that always agree.
fn renames_codes(catalog: &Catalog) -> bool {
    let dialect = catalog.dialect();
    catalog.entries().iter().any(|e| wire_code(dialect, e).is_some_and(|(_, w)| w != e.code))
}

/// The facts listed for an entry, as `(label, inline text)`; inline text may hold backtick
/// code spans and is escaped by each renderer. `renames` is [`renames_codes`] of the catalog.
fn facts(dialect: Dialect, e: &Entry, renames: bool) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(9);
    match wire_code(dialect, e) {
        Some((member, code)) if renames => {
            out.push(("Code on the wire", format!("`{code}` (in `{member}`)")));
            out.push(("Stable code", format!("`{}`", e.code)));
        }
        Some((member, code)) => out.push(("Code", format!("`{code}` (in `{member}`)"))),
        None => out.push(("Stable code", format!("`{}`", e.code))),
    }
    out.push(("HTTP status", format!("`{}`", status_line(e.status))));
    out.push(("Category", format!("`{}`", e.category)));
    out.push(("Title", e.title.clone()));
    out.push(("When", e.when.clone()));
    out.push(("How to fix", e.fix.clone()));
    out.push(("Retry", format!("{} (`{}`)", e.retry.describe(), e.retry.as_str())));
    if e.masked {
        out.push((
            "Masked",
            "The response carries only the generic message and the `request_id`; the cause is \
             logged by the server and never sent. Quote the `request_id` when you contact support."
                .to_owned(),
        ));
    }
    out
}

/// The envelope's description and its members `(member, type, description)`.
fn envelope(dialect: Dialect) -> (&'static str, &'static [(&'static str, &'static str, &'static str)]) {
    const PROBLEM: &str = "RFC 9457 problem details.";
    match dialect {
        Dialect::Rebuff => (
            "RFC 9457 problem details with a stable `code`, the `request_id`, per-field `errors` \
             (each with a JSON Pointer) and retry hints.",
            &[
                ("type", "string (URI)", "Identifies the problem type; links to its entry on this page."),
                ("title", "string", "A short summary of the problem type; the same for every occurrence."),
                ("status", "integer", "The HTTP status code."),
                ("detail", "string", "An explanation specific to this occurrence, when there is one."),
                ("instance", "string (URI)", "The resource or request this occurrence is about, when known."),
                ("code", "string", "The stable, machine-readable error code. Branch on this."),
                ("request_id", "string", "The request's id. Quote it when you contact support."),
                ("param", "string", "The parameter at fault, when there is one."),
                (
                    "errors",
                    "array",
                    "Validation errors: one object per invalid field with `pointer` (a JSON Pointer), \
                     `location`, `reason` and `detail`.",
                ),
                (
                    "retry",
                    "string",
                    "When the request may be retried: `never`, `after_reauth`, `after_fix`, `backoff` or \
                     `retry_after`.",
                ),
                ("retry_after", "integer", "Seconds to wait before retrying, also sent as `Retry-After`."),
            ],
        ),
        Dialect::Arize => (
            PROBLEM,
            &[
                ("status", "integer", "The HTTP status code."),
                ("title", "string", "A short, stable summary of the problem type."),
                ("type", "string (URI)", "Identifies the problem type; links to its section on this page."),
                ("detail", "string", "An explanation specific to this occurrence, when there is one."),
                ("instance", "string (URI)", "The resource involved in the error, when known."),
                (
                    "error_code",
                    "string (enum)",
                    "A stable code for the error subtype, on 4xx responses where the distinction is \
                     actionable.",
                ),
                ("request_id", "string", "The request's id. Quote it when you contact support."),
                ("errors", "array", "Validation errors: one object per invalid field."),
            ],
        ),
        Dialect::Dataxid => (
            "An `error` object and the `request_id`.",
            &[
                ("error.type", "string", "The error category."),
                ("error.code", "string", "A machine-readable error code (unique, stable)."),
                ("error.message", "string", "A human-readable description."),
                ("error.doc_url", "string (URI)", "A link to this page for the specific error code."),
                ("error.param", "string", "Which parameter caused the error (when applicable)."),
                ("request_id", "string", "Include this in support requests."),
            ],
        ),
        Dialect::Mlops => (
            "A `detail` member: a message, or a list of field errors.",
            &[
                (
                    "detail",
                    "string or array",
                    "A human-readable error message; for field validation errors (422), a list of \
                     objects with `loc` (location, then the path to the field), `msg` and `type`.",
                ),
                ("request_id", "string", "The request's id. Quote it when you contact support."),
            ],
        ),
        Dialect::Incidents => (
            "A flat object with `code`, `message`, `details` and `request_id`.",
            &[
                ("code", "string", "The error code. Branch on this."),
                (
                    "message",
                    "string",
                    "A human-readable message: the error's title, then the detail when there is one.",
                ),
                (
                    "details",
                    "object",
                    "Optional. For validation errors, one member per field, each with its own `code` and \
                     `message`.",
                ),
                ("request_id", "string", "The request's id. Quote it when you contact support."),
            ],
        ),
        Dialect::Apikeys => (
            "A flat object with `code`, `message`, `details` and `request_id`.",
            &[
                ("code", "string", "Use it to identify and handle specific error conditions."),
                ("message", "string", "A human-readable message."),
                (
                    "details",
                    "array",
                    "Validation errors only: one object per field with `field`, `code` and `message`.",
                ),
                ("request_id", "string", "Include it when contacting support."),
            ],
        ),
    }
}

/// The entry whose example illustrates the envelope: the first with a field error (the most
/// complete body), else the first entry.
fn envelope_entry(catalog: &Catalog) -> Option<&Entry> {
    let primary = || catalog.entries().iter().filter(|e| e.presented_as.is_none());
    primary().find(|e| example_field(e).is_some() && !e.masked).or_else(|| primary().next())
}

// ---- inline text shared by Markdown and HTML -------------------------------------

enum Span<'a> {
    Text(&'a str),
    Code(&'a str),
}

/// Splits text into plain text and single-backtick code spans; an unmatched backtick is text.
fn split_code(text: &str) -> Vec<Span<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(len) = after.find('`') else { break };
        if start > 0 {
            out.push(Span::Text(&rest[..start]));
        }
        out.push(Span::Code(&after[..len]));
        rest = &after[len + 1..];
    }
    if !rest.is_empty() {
        out.push(Span::Text(rest));
    }
    out
}

/// Escapes text for HTML content and attribute values.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Every entry, by HTTP status, in catalog order within a status.
fn by_status(catalog: &Catalog) -> Vec<&Entry> {
    let mut all: Vec<&Entry> = catalog.entries().iter().collect();
    all.sort_by_key(|e| e.status);
    all
}
