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

/// The facts listed for an entry, as `(label, inline text)`; inline text may hold backtick
/// code spans and is escaped by each renderer.
fn facts(dialect: Dialect, e: &Entry) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(9);
    if let Some((member, code)) = wire_code(dialect, e) {
        out.push(("Code on the wire", format!("`{code}` (in `{member}`)")));
    }
    out.push(("Stable code", format!("`{}`", e.code)));
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

// ---- Markdown ------------------------------------------------------------------------

/// The error reference page in Markdown (CommonMark with GitHub tables).
///
/// Layout: the catalog name as title, its description, the envelope (dialect, media type, the
/// members and one example), one section per docs anchor, and a summary table of every code.
/// Each anchor is written as `<a id="anchor"></a>` before its heading, and each code as
/// `<a id="code-<code>"></a>`, so that links work in any renderer that keeps inline HTML.
/// Catalog text is written as Markdown inline text: backtick code spans are kept, `<`, `>` and
/// `&` outside them are escaped.
pub fn markdown(catalog: &Catalog) -> String {
    let page = Page::new(catalog);
    let dialect = catalog.dialect();
    let mut out = String::with_capacity(32 * 1024);
    // Writing into a String cannot fail: the `fmt::Result`s below are always `Ok`.
    let _ = writeln!(out, "# {} error reference\n", md_inline(catalog.name()));
    if !catalog.description().is_empty() {
        let _ = writeln!(out, "{}\n", md_inline(catalog.description()));
    }

    let (summary, members) = envelope(dialect);
    let _ = writeln!(out, "## Error response format\n");
    let _ = writeln!(
        out,
        "Every error response is sent with `Content-Type: {}` in the `{}` envelope: {}\n",
        dialect.content_type(),
        dialect.as_str(),
        md_inline(summary),
    );
    let _ = writeln!(out, "| Member | Type | Description |\n|---|---|---|");
    for (member, ty, text) in members {
        let _ = writeln!(out, "| `{member}` | {ty} | {} |", md_cell(text));
    }
    if let Some(ex) = envelope_entry(catalog).and_then(|e| example(catalog, e).map(|x| (e, x))) {
        let (e, ex) = ex;
        let _ = writeln!(out, "\nFor example, [`{}`](#code-{}):\n", e.code, e.code);
        let _ = writeln!(out, "```json\n{}\n```", ex.body);
    }

    let _ = writeln!(out, "\n## Errors");
    for section in &page.sections {
        blank_line(&mut out);
        let _ = write!(out, "<a id=\"{}\"></a>", html_escape(section.anchor));
        if !section.sub_headings {
            // One entry: its ids go with the section's, before the heading.
            for id in section.items.iter().flat_map(|i| &i.ids) {
                let _ = write!(out, "<a id=\"{}\"></a>", html_escape(id));
            }
        }
        let _ = writeln!(out, "\n\n### {}\n", md_inline(&section.heading));
        if let Some(s) = section.summary {
            let _ = writeln!(out, "{}\n", md_inline(s));
        }
        for item in &section.items {
            if section.sub_headings && !item.ids.is_empty() {
                for id in &item.ids {
                    let _ = write!(out, "<a id=\"{}\"></a>", html_escape(id));
                }
                out.push_str("\n\n");
            }
            if section.sub_headings {
                let _ = writeln!(out, "#### `{}`\n", item.entry.code);
            }
            md_item(&mut out, catalog, item);
        }
    }

    blank_line(&mut out);
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| Code | Wire code | Status | Category | Retry |\n|---|---|---|---|---|");
    for e in by_status(catalog) {
        let wire = match wire_code(dialect, e) {
            Some((_, w)) => format!("`{w}`"),
            None => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| [`{code}`](#code-{code}) | {wire} | {} | {} | `{}` |",
            e.status.as_u16(),
            md_cell(&format!("`{}`", e.category)),
            e.retry.as_str(),
            code = e.code,
        );
    }
    out
}

/// Ends the text with an empty line (one, not more).
fn blank_line(out: &mut String) {
    while out.ends_with("\n\n") {
        out.pop();
    }
    if !out.is_empty() {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
}

/// Every entry, by HTTP status, in catalog order within a status.
fn by_status(catalog: &Catalog) -> Vec<&Entry> {
    let mut all: Vec<&Entry> = catalog.entries().iter().collect();
    all.sort_by_key(|e| e.status);
    all
}

fn md_item(out: &mut String, catalog: &Catalog, item: &Item<'_>) {
    let e = item.entry;
    for (label, text) in facts(catalog.dialect(), e) {
        let _ = writeln!(out, "- **{label}:** {}", md_inline(&text));
    }
    out.push('\n');
    if !item.also.is_empty() {
        let _ = writeln!(out, "Also answers for:\n");
        for (other, ids) in &item.also {
            out.push_str("- ");
            for id in ids {
                let _ = write!(out, "<a id=\"{}\"></a>", html_escape(id));
            }
            let _ = writeln!(out, "`{}`: {}", other.code, md_inline(&other.when));
        }
        out.push('\n');
    }
    if let Some(ex) = example(catalog, e) {
        let _ = write!(out, "Example response: `{}`", ex.status);
        for (name, value) in &ex.headers {
            let _ = write!(out, ", `{name}: {value}`");
        }
        let _ = writeln!(out, "\n\n```json\n{}\n```\n", ex.body);
    }
}

/// Markdown inline text: code spans kept as they are, `&`, `<` and `>` escaped elsewhere.
fn md_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for part in split_code(text) {
        match part {
            Span::Code(code) => {
                out.push('`');
                out.push_str(code);
                out.push('`');
            }
            Span::Text(t) => {
                // A lone backtick (no closing one) is text; escape it so it opens nothing.
                for c in t.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        '`' => out.push_str("\\`"),
                        _ => out.push(c),
                    }
                }
            }
        }
    }
    out
}

/// Markdown inline text in a table cell: `|` is escaped too, and lines are joined.
fn md_cell(text: &str) -> String {
    md_inline(text).replace('|', "\\|").replace('\n', " ")
}

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

// ---- HTML ----------------------------------------------------------------------------

const CSS: &str = "\
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#fff;--line:#d1d9e0;--code:#f6f8fa;--accent:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--line:#3d444d;--code:#151b23;--accent:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.6 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}
main{max-width:52rem;margin:0 auto;padding:2rem 1.25rem 4rem}
h1{font-size:2rem;margin:0 0 1rem}
h2{font-size:1.5rem;margin:2.5rem 0 1rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1.25rem;margin:2.5rem 0 .75rem}
h4{font-size:1.05rem;margin:1.75rem 0 .5rem}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
a.anchor{color:var(--muted);margin-left:.4rem;font-weight:normal}
code{font:.875em/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--code);padding:.1em .35em;border-radius:4px}
pre{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:.9rem 1rem;overflow-x:auto}
pre code{padding:0;background:none}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.95rem}
th,td{border:1px solid var(--line);padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:var(--code)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:.75rem 0}
dt{font-weight:600;color:var(--muted)}
dd{margin:0}
section.errors>section{border-top:1px solid var(--line)}
article.entry{margin:0 0 1.5rem}
nav ul{columns:2;padding-left:1.2rem}
.meta{color:var(--muted);font-size:.95rem;margin-bottom:.25rem}
";

/// The error reference page as one self-contained HTML document: inline CSS (light and dark),
/// no script, no external asset.
///
/// Same layout as [`markdown`]. Every section has `id="<anchor>"` on its `<h3>` (the fragment of
/// its entries' `type_uri`), each code has `id="code-<code>"`, each id appears once, and all
/// catalog text is HTML-escaped (backtick spans become `<code>`).
pub fn html(catalog: &Catalog) -> String {
    let page = Page::new(catalog);
    let dialect = catalog.dialect();
    let name = html_escape(catalog.name());
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name} error reference</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n\
         <h1>{name} error reference</h1>\n"
    );
    if !catalog.description().is_empty() {
        let _ = writeln!(out, "<p>{}</p>", html_inline(catalog.description()));
    }

    // Contents.
    let _ = writeln!(out, "<nav>\n<h2>Contents</h2>\n<ul>");
    let envelope_id = page.own_id("error-response-format");
    let summary_id = page.own_id("summary");
    if let Some(id) = envelope_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Error response format</a></li>");
    }
    for section in &page.sections {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            html_escape(section.anchor),
            html_inline(&section.heading)
        );
    }
    if let Some(id) = summary_id {
        let _ = writeln!(out, "<li><a href=\"#{id}\">Summary</a></li>");
    }
    let _ = writeln!(out, "</ul>\n</nav>");

    // Envelope.
    let (summary, members) = envelope(dialect);
    let _ = writeln!(out, "<section>\n<h2{}>Error response format</h2>", id_attr(envelope_id));
    let _ = writeln!(
        out,
        "<p>Every error response is sent with <code>Content-Type: {}</code> in the <code>{}</code> \
         envelope: {}</p>",
        dialect.content_type(),
        dialect.as_str(),
        html_inline(summary),
    );
    let _ = writeln!(
        out,
        "<table>\n<thead><tr><th>Member</th><th>Type</th><th>Description</th></tr></thead>\n<tbody>"
    );
    for (member, ty, text) in members {
        let _ = writeln!(
            out,
            "<tr><td><code>{member}</code></td><td>{ty}</td><td>{}</td></tr>",
            html_inline(text)
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>");
    if let Some((e, ex)) = envelope_entry(catalog).and_then(|e| example(catalog, e).map(|x| (e, x))) {
        let _ = writeln!(
            out,
            "<p>For example, <a href=\"#code-{code}\"><code>{code}</code></a>:</p>",
            code = html_escape(&e.code)
        );
        let _ = writeln!(out, "<pre><code class=\"language-json\">{}</code></pre>", html_escape(&ex.body));
    }
    let _ = writeln!(out, "</section>");

    // Sections.
    let _ = writeln!(out, "<section class=\"errors\">\n<h2>Errors</h2>");
    for section in &page.sections {
        let anchor = html_escape(section.anchor);
        let _ = writeln!(
            out,
            "<section>\n<h3 id=\"{anchor}\">{}<a class=\"anchor\" href=\"#{anchor}\" \
             aria-label=\"Link to this section\">#</a></h3>",
            html_inline(&section.heading)
        );
        if let Some(s) = section.summary {
            let _ = writeln!(out, "<p>{}</p>", html_inline(s));
        }
        for item in &section.items {
            html_item(&mut out, catalog, item, section.sub_headings);
        }
        let _ = writeln!(out, "</section>");
    }
    let _ = writeln!(out, "</section>");

    // Summary.
    let _ = writeln!(
        out,
        "<section>\n<h2{}>Summary</h2>\n<table>\n<thead><tr><th>Code</th><th>Wire code</th>\
         <th>Status</th><th>Category</th><th>Retry</th></tr></thead>\n<tbody>",
        id_attr(summary_id)
    );
    for e in by_status(catalog) {
        let code = html_escape(&e.code);
        let wire = match wire_code(dialect, e) {
            Some((_, w)) => format!("<code>{}</code>", html_escape(w)),
            None => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#code-{code}\"><code>{code}</code></a></td><td>{wire}</td>\
             <td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            e.status.as_u16(),
            html_escape(&e.category),
            e.retry.as_str()
        );
    }
    let _ = writeln!(out, "</tbody>\n</table>\n</section>\n</main>\n</body>\n</html>");
    out
}

fn html_item(out: &mut String, catalog: &Catalog, item: &Item<'_>, sub_heading: bool) {
    let e = item.entry;
    let (first, rest) = match item.ids.split_first() {
        Some((first, rest)) => (Some(first.as_str()), rest),
        None => (None, &[][..]),
    };
    let _ = write!(out, "<article class=\"entry\"{}>", id_attr(first));
    for id in rest {
        let _ = write!(out, "<span id=\"{}\"></span>", html_escape(id));
    }
    out.push('\n');
    if sub_heading {
        let code = html_escape(&e.code);
        let _ = writeln!(
            out,
            "<h4><code>{code}</code><a class=\"anchor\" href=\"#code-{code}\" \
             aria-label=\"Link to this code\">#</a></h4>"
        );
    }
    let _ = writeln!(out, "<dl>");
    for (label, text) in facts(catalog.dialect(), e) {
        let _ = writeln!(out, "<dt>{label}</dt><dd>{}</dd>", html_inline(&text));
    }
    if let Some(names) = crate::sdk::class_names(catalog, &e.code) {
        let text = format!("Python `{}`, TypeScript `{}`", names.python, names.typescript);
        let _ = writeln!(out, "<dt>SDK class</dt><dd>{}</dd>", html_inline(&text));
    }
    let _ = writeln!(out, "</dl>");
    if !item.also.is_empty() {
        let _ = writeln!(out, "<p>Also answers for:</p>\n<ul>");
        for (other, ids) in &item.also {
            let (first, rest) = match ids.split_first() {
                Some((first, rest)) => (Some(first.as_str()), rest),
                None => (None, &[][..]),
            };
            let _ = write!(out, "<li{}>", id_attr(first));
            for id in rest {
                let _ = write!(out, "<span id=\"{}\"></span>", html_escape(id));
            }
            let _ =
                writeln!(out, "<code>{}</code>: {}</li>", html_escape(&other.code), html_inline(&other.when));
        }
        let _ = writeln!(out, "</ul>");
    }
    if let Some(ex) = example(catalog, e) {
        let _ = write!(out, "<p class=\"meta\">Example response: <code>{}</code>", html_escape(&ex.status));
        for (name, value) in &ex.headers {
            let _ = write!(out, ", <code>{}: {}</code>", html_escape(name), html_escape(value));
        }
        let _ = writeln!(out, "</p>");
        let _ = writeln!(out, "<pre><code class=\"language-json\">{}</code></pre>", html_escape(&ex.body));
    }
    let _ = writeln!(out, "</article>");
}

fn id_attr(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(" id=\"{}\"", html_escape(id)),
        None => String::new(),
    }
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

/// Catalog inline text as HTML: escaped, with backtick spans as `<code>`.
fn html_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for part in split_code(text) {
        match part {
            Span::Code(code) => {
                out.push_str("<code>");
                out.push_str(&html_escape(code));
                out.push_str("</code>");
            }
            Span::Text(t) => out.push_str(&html_escape(t)),
        }
    }
    out
}

// ---- OpenAPI -------------------------------------------------------------------------

/// An OpenAPI 3.1 document that describes the catalog's error responses, for merging into an
/// API's own description:
///
/// ```json
/// {"openapi": "3.1.0", "info": {...}, "paths": {},
///  "components": {"schemas": {...}, "examples": {...}, "responses": {...}}}
/// ```
///
/// - `components.schemas.Error` is the dialect's envelope (RFC 9457 problem details with
///   rebuff's or Arize's extension members; the `dataxid` `{error, request_id}` object; the
///   `mlops` `detail`; the flat `incidents` and `apikeys` objects); its code member has an
///   `enum` of every code the catalog sends. `FieldError` is the item of the envelope's
///   field error list, for the dialects that have one (all but `dataxid`).
/// - `components.examples.<stable code>` is `{summary: title, description: when, value:
///   example body}` for every entry (see [`example_body`]).
/// - `components.responses.Error<status>` (`Error404`, ...) exists for every status the catalog
///   uses: the dialect's media type, the `Error` schema, the example of every code answered
///   with that status, and its headers (`X-Request-Id`; `WWW-Authenticate` on 401;
///   `Retry-After` where an entry may carry a delay).
pub fn openapi_components(catalog: &Catalog) -> Value {
    let dialect = catalog.dialect();
    let content_type = dialect.content_type();
    let (error, field) = error_schemas(catalog);
    let mut schemas = Map::new();
    schemas.insert("Error".to_owned(), error);
    if let Some(field) = field {
        schemas.insert("FieldError".to_owned(), field);
    }

    let mut examples = Map::new();
    let mut by_status: BTreeMap<StatusCode, Vec<&Entry>> = BTreeMap::new();
    for e in catalog.entries() {
        examples.insert(
            e.code.clone(),
            json!({"summary": e.title, "description": e.when, "value": example_body(catalog, e)}),
        );
        by_status.entry(e.status).or_default().push(e);
    }

    let mut responses = Map::new();
    for (&status_code, entries) in &by_status {
        let mut refs = Map::new();
        for e in entries {
            refs.insert(e.code.clone(), json!({"$ref": format!("#/components/examples/{}", e.code)}));
        }
        let mut headers = Map::new();
        headers.insert(
            "X-Request-Id".to_owned(),
            json!({"description": "The request's id, also in the body.", "schema": {"type": "string"}}),
        );
        if status_code == StatusCode::UNAUTHORIZED {
            headers.insert(
                "WWW-Authenticate".to_owned(),
                json!({"description": "The authentication challenge.", "schema": {"type": "string"}}),
            );
        }
        if entries
            .iter()
            .any(|e| e.status == StatusCode::TOO_MANY_REQUESTS || e.retry == RetryClass::RetryAfter)
        {
            headers.insert(
                "Retry-After".to_owned(),
                json!({
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer", "minimum": 0}
                }),
            );
        }
        let codes: Vec<&str> = entries.iter().map(|e| e.code.as_str()).collect();
        responses.insert(
            format!("Error{}", status_code.as_u16()),
            json!({
                "description": format!("{}: {}.", status_line(status_code), codes.join(", ")),
                "headers": headers,
                "content": {
                    content_type: {
                        "schema": {"$ref": "#/components/schemas/Error"},
                        "examples": refs,
                    }
                }
            }),
        );
    }

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} errors", catalog.name()),
            "version": OPENAPI_DOC_VERSION,
            "description": catalog.description(),
        },
        "paths": {},
        "components": {
            "schemas": schemas,
            "examples": examples,
            "responses": responses,
        }
    })
}

/// The distinct codes that the dialect sends, in catalog order.
fn code_enum(catalog: &Catalog) -> Vec<&str> {
    let mut seen = HashSet::new();
    catalog
        .entries()
        .iter()
        .filter_map(|e| wire_code(catalog.dialect(), e).map(|(_, w)| w))
        .filter(|w| seen.insert(*w))
        .collect()
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

fn error_schemas(catalog: &Catalog) -> (Value, Option<Value>) {
    let codes = code_enum(catalog);
    let field_ref = json!({"$ref": "#/components/schemas/FieldError"});
    // A request id is the client's own when it is 1 to 128 visible ASCII characters, else one
    // the server made (rebuff-axum's `request_id::MAX_LEN`).
    let request_id = json!({"type": "string", "maxLength": 128, "pattern": "^[!-~]+$",
        "description": "The request's id. Quote it when you contact support."});
    let problem_field = json!({
        "type": "object",
        "description": "One invalid field.",
        "required": ["pointer", "location", "reason", "detail"],
        "properties": {
            "pointer": {"type": "string", "description": "A JSON Pointer (RFC 6901) to the field."},
            "location": {"type": "string", "enum": ["body", "query", "path", "header"]},
            "reason": {"type": "string", "description": "A short machine-readable reason."},
            "detail": {"type": "string", "description": "A human-readable message for this field."}
        }
    });
    let title = json!({"type": "string", "description": "A short summary of the problem type."});
    let status = json!({"type": "integer", "format": "int32", "minimum": 400, "maximum": 599});
    let type_uri = json!({"type": "string", "format": "uri", "description": "Identifies the problem type."});
    let detail = json!({"type": "string", "description": "An explanation specific to this occurrence."});
    let instance = json!({"type": "string", "format": "uri-reference"});
    match catalog.dialect() {
        Dialect::Rebuff => (
            json!({
                "type": "object",
                "description": "RFC 9457 problem details with rebuff's extension members.",
                "required": ["type", "title", "status", "code", "retry"],
                "properties": {
                    "type": type_uri,
                    "title": title,
                    "status": status,
                    "detail": detail,
                    "instance": instance,
                    "code": {"type": "string", "enum": codes, "description": "The stable error code."},
                    "request_id": request_id,
                    "param": {"type": "string", "description": "The parameter at fault."},
                    "errors": {"type": "array", "items": field_ref},
                    "retry": {
                        "type": "string",
                        "enum": RetryClass::ALL.map(RetryClass::as_str),
                        "description": "When the request may be retried."
                    },
                    "retry_after": {"type": "integer", "format": "int64", "minimum": 0, "maximum": u64::MAX, "description": "Seconds to wait before retrying."}
                },
                "additionalProperties": true
            }),
            Some(problem_field),
        ),
        Dialect::Arize => (
            json!({
                "type": "object",
                "description": "RFC 9457 problem details.",
                "required": ["status", "title", "type"],
                "properties": {
                    "status": status,
                    "title": title,
                    "type": type_uri,
                    "detail": detail,
                    "instance": instance,
                    "error_code": {
                        "type": "string",
                        "enum": codes,
                        "description": "The error subtype; on actionable 4xx responses only."
                    },
                    "request_id": request_id,
                    "errors": {"type": "array", "items": field_ref}
                },
                "additionalProperties": true
            }),
            Some(problem_field),
        ),
        Dialect::Dataxid => (
            json!({
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["type", "code", "message", "doc_url"],
                        "properties": {
                            "type": {
                                "type": "string",
                                "enum": distinct(catalog.entries().iter().map(|e| e.category.as_str())),
                                "description": "The error category."
                            },
                            "code": {"type": "string", "enum": codes, "description": "A machine-readable error code (unique, stable)."},
                            "message": {"type": "string", "description": "A human-readable description."},
                            "doc_url": {"type": "string", "format": "uri", "description": "A link to the docs of this code."},
                            "param": {"type": "string", "description": "Which parameter caused the error."}
                        }
                    },
                    "request_id": request_id
                }
            }),
            None,
        ),
        Dialect::Mlops => (
            json!({
                "type": "object",
                "required": ["detail"],
                "properties": {
                    "detail": {
                        "oneOf": [
                            {"type": "string", "description": "A human-readable error message."},
                            {"type": "array", "items": field_ref, "description": "Field validation errors (422)."}
                        ]
                    },
                    "request_id": request_id
                }
            }),
            Some(json!({
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"type": ["string", "integer"], "format": "int64", "minimum": 0, "maximum": i64::MAX},
                        "description": "The location (`body`, `query`, `path`, `header`), then the path to the field."
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"}
                }
            })),
        ),
        Dialect::Incidents => (
            json!({
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string", "description": "The title, then `: ` and the detail when there is one."},
                    "details": {
                        "type": "object",
                        "description": "For validation errors, one member per field with its own `code` and `message`.",
                        "additionalProperties": true
                    },
                    "request_id": request_id
                }
            }),
            None,
        ),
        Dialect::Apikeys => (
            json!({
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": field_ref},
                    "request_id": request_id
                }
            }),
            Some(json!({
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": "string", "description": "The field, as a dotted path."},
                    "code": {"type": "string"},
                    "message": {"type": "string"}
                }
            })),
        ),
    }
}

// ---- JSON export ---------------------------------------------------------------------

/// The catalog as JSON, for client generators and other tools. The format is stable: members
/// may be added, never removed or changed.
///
/// ```json
/// {
///   "name": "rebuff",
///   "description": "...",
///   "dialect": "rebuff",
///   "content_type": "application/problem+json",
///   "type_uri": "https://rebuff.dev/errors#{anchor}",
///   "extends": null,
///   "errors": [
///     {
///       "code": "api_key_missing",
///       "wire_code": "api_key_missing",
///       "status": 401,
///       "category": "authentication_error",
///       "title": "API key missing",
///       "message": "An API key is required. ...",
///       "when": "...",
///       "fix": "...",
///       "retry": "after_reauth",
///       "retryable": false,
///       "masked": false,
///       "anchor": "api_key_missing",
///       "type_uri": "https://rebuff.dev/errors#api_key_missing",
///       "presented_as": null
///     }
///   ]
/// }
/// ```
///
/// - `type_uri` at the top is the template (`{anchor}` and `{code}` placeholders); in an entry
///   it is expanded. `extends` is the base catalog's name for a profile, else `null`.
/// - `errors` is in catalog order. `code` is the stable code; `wire_code` its spelling on the
///   wire, `null` when this profile sends no code for it; `message` the default message,
///   `null` when there is none; `retry` one of `never`, `after_reauth`, `after_fix`, `backoff`,
///   `retry_after`, and `retryable` whether the identical request may be sent again;
///   `presented_as` the code whose presentation the entry borrows, else `null`.
pub fn json(catalog: &Catalog) -> Value {
    let errors: Vec<Value> = catalog
        .entries()
        .iter()
        .map(|e| {
            json!({
                "code": e.code,
                "wire_code": e.wire_code,
                "status": e.status.as_u16(),
                "category": e.category,
                "title": e.title,
                "message": e.message,
                "when": e.when,
                "fix": e.fix,
                "retry": e.retry.as_str(),
                "retryable": e.retry.is_retryable(),
                "masked": e.masked,
                "anchor": e.anchor,
                "type_uri": e.type_uri,
                "presented_as": e.presented_as,
                "sdk_class": e.sdk_class,
            })
        })
        .collect();
    json!({
        "name": catalog.name(),
        "description": catalog.description(),
        "dialect": catalog.dialect().as_str(),
        "content_type": catalog.dialect().content_type(),
        "type_uri": catalog.type_uri_template(),
        "extends": catalog.extends(),
        "errors": errors,
    })
}

// ---- Rust client table ---------------------------------------------------------------

/// A JSON export that [`rust_client_json`] cannot turn into a client table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a rebuff catalog export: {0}")]
pub struct ExportError(String);

/// One entry, as the client table needs it: from a [`Catalog`] or from its [`json()`] export.
struct ClientRow {
    code: String,
    wire_code: Option<String>,
    status: u16,
    category: String,
    title: String,
    when: String,
    retry: RetryClass,
    type_uri: String,
    presented_as: Option<String>,
}

/// A Rust source file for API consumers using `rebuff-client`: a typed enum of the catalog's
/// stable codes and a table mapping a response's wire code and status to it, with each
/// code's retry class.
///
/// The file holds:
/// - `pub enum Code`, one variant per stable code (`api_key_missing` is `ApiKeyMissing`), with
///   `ALL`, `as_str`, `wire_code`, `status`, `retry`, `from_code` and `identify`; it
///   implements `rebuff_client::ErrorCode`, `Display` and `FromStr`, so that
///   `error.code_as::<Code>()` gives a typed code to match on;
/// - `pub static TABLE: rebuff_client::CodeTable`, to hand to the client with
///   `rebuff_client::Contract::table(&TABLE)`: it identifies codes exactly as
///   [`Catalog::identify`] does, and tells the client which errors it may retry.
///
/// The file starts with plain `//` comments only, so it works both as a module file and
/// through `include!`. The output is deterministic, and the same as [`rust_client_json`]
/// gives for the catalog's [`json()`] export.
///
/// ```
/// use rebuff_core::{Catalog, docs};
///
/// let source = docs::rust_client(Catalog::builtin("dataxid").expect("built in"));
/// assert!(source.contains("pub enum Code {"));
/// assert!(source.contains("ApiKeyMissing,"));
/// assert!(source.contains("pub static TABLE: ::rebuff_client::CodeTable"));
/// ```
pub fn rust_client(catalog: &Catalog) -> String {
    let rows: Vec<ClientRow> = catalog
        .entries()
        .iter()
        .map(|e| ClientRow {
            code: e.code.clone(),
            wire_code: e.wire_code.clone(),
            status: e.status.as_u16(),
            category: e.category.clone(),
            title: e.title.clone(),
            when: e.when.clone(),
            retry: e.retry,
            type_uri: e.type_uri.clone(),
            presented_as: e.presented_as.clone(),
        })
        .collect();
    client_source(catalog.name(), catalog.dialect(), &rows)
}

/// [`rust_client`] from a catalog's JSON export (what [`json()`] renders, and what a rebuff
/// server publishes at `/errors.json`), for a consumer who has the export but not the TOML.
///
/// The export comes from outside, so nothing in it can break out of the generated source:
/// strings become escaped literals, doc text loses its control characters, and codes that
/// are not identifiers still give distinct variant names.
///
/// # Errors
/// An [`ExportError`] when the value is not an export: no `name`, an unknown `dialect`, no
/// `errors`, or an entry without a `code`, a `status` in 400..=599 or a known `retry` class.
///
/// ```
/// use rebuff_core::{Catalog, docs};
///
/// let catalog = Catalog::builtin("incidents").expect("built in");
/// let from_json = docs::rust_client_json(&docs::json(catalog))?;
/// assert_eq!(from_json, docs::rust_client(catalog));
/// # Ok::<(), docs::ExportError>(())
/// ```
pub fn rust_client_json(export: &Value) -> Result<String, ExportError> {
    let err = |msg: String| ExportError(msg);
    let name = export.get("name").and_then(Value::as_str).ok_or_else(|| err("no `name`".into()))?;
    let dialect = export
        .get("dialect")
        .and_then(Value::as_str)
        .and_then(Dialect::from_name)
        .ok_or_else(|| err("no known `dialect`".into()))?;
    let errors =
        export.get("errors").and_then(Value::as_array).ok_or_else(|| err("no `errors` array".into()))?;
    let text = |e: &Value, member: &str| e.get(member).and_then(Value::as_str).map(str::to_owned);
    let mut rows = Vec::with_capacity(errors.len());
    for (i, e) in errors.iter().enumerate() {
        let code = text(e, "code").ok_or_else(|| err(format!("errors[{i}] has no `code`")))?;
        let status = e
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..=599).contains(s))
            .ok_or_else(|| err(format!("`{code}`: `status` is not an HTTP error status")))?;
        let retry = e
            .get("retry")
            .and_then(Value::as_str)
            .and_then(RetryClass::from_name)
            .ok_or_else(|| err(format!("`{code}`: no known `retry` class")))?;
        rows.push(ClientRow {
            wire_code: text(e, "wire_code"),
            status,
            category: text(e, "category").unwrap_or_default(),
            title: text(e, "title").unwrap_or_default(),
            when: text(e, "when").unwrap_or_default(),
            retry,
            type_uri: text(e, "type_uri").unwrap_or_default(),
            presented_as: text(e, "presented_as"),
            code,
        });
    }
    if rows.is_empty() {
        return Err(err("`errors` is empty".into()));
    }
    Ok(client_source(name, dialect, &rows))
}

fn client_source(name: &str, dialect: Dialect, rows: &[ClientRow]) -> String {
    let variants = variant_names(rows.iter().map(|r| r.code.as_str()));
    let name_text = rustdoc_line(name);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// The error codes of the `{name_text}` API, for `rebuff-client`.\n\
         //\n\
         // Generated by `rebuff docs --format rust-client` from the API's error catalog. Do not\n\
         // edit: generate it again when the catalog changes. Use it with\n\
         //\n\
         //     let client = rebuff_client::Client::builder()\n\
         //         .contract(rebuff_client::Contract::table(&TABLE))\n\
         //         .build();\n\
         //     // ...\n\
         //     match error.code_as::<Code>() {{\n\
         //         Some(Code::RateLimitExceeded) => {{ /* ... */ }}\n\
         //         _ => {{ /* ... */ }}\n\
         //     }}\n"
    );
    let _ = writeln!(out, "/// The stable error codes of the `{name_text}` API, one variant per code.");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\npub enum Code {\n");
    for (row, variant) in rows.iter().zip(&variants) {
        let _ = writeln!(
            out,
            "    /// **{}** (HTTP {}, `{}`, retry: `{}`)",
            rustdoc_line(&row.title),
            row.status,
            rustdoc_line(&row.code).replace('`', "'"),
            row.retry
        );
        if !row.when.trim().is_empty() {
            out.push_str("    ///\n");
            let _ = writeln!(out, "    /// {}", rustdoc_line(&row.when));
        }
        let _ = writeln!(out, "    {variant},");
    }
    out.push_str("}\n\n");

    out.push_str("impl Code {\n");
    let _ = writeln!(out, "    /// Every code of the `{name_text}` API, in catalog order.");
    out.push_str("    pub const ALL: &'static [Code] = &[\n");
    for v in &variants {
        let _ = writeln!(out, "        Code::{v},");
    }
    out.push_str("    ];\n\n");
    let matcher = |out: &mut String, doc: &str, sig: &str, arm: &dyn Fn(&ClientRow) -> String| {
        let _ = writeln!(out, "    /// {doc}\n    pub const fn {sig} {{\n        match self {{");
        for (row, v) in rows.iter().zip(&variants) {
            let _ = writeln!(out, "            Code::{v} => {},", arm(row));
        }
        out.push_str("        }\n    }\n\n");
    };
    matcher(&mut out, "The stable code.", "as_str(self) -> &'static str", &|r| format!("{:?}", r.code));
    matcher(
        &mut out,
        "The code as this API spells it on the wire; `None` when it sends no code for it.",
        "wire_code(self) -> ::core::option::Option<&'static str>",
        &|r| match &r.wire_code {
            Some(w) => format!("::core::option::Option::Some({w:?})"),
            None => "::core::option::Option::None".to_owned(),
        },
    );
    matcher(&mut out, "The HTTP status this code is answered with.", "status(self) -> u16", &|r| {
        r.status.to_string()
    });
    matcher(
        &mut out,
        "When a client may send the same request again.",
        "retry(self) -> ::rebuff_client::RetryClass",
        &|r| format!("::rebuff_client::RetryClass::{}", retry_variant(r.retry)),
    );
    out.push_str(
        "    /// The code whose stable spelling is `code`.\n    \
         pub fn from_code(code: &str) -> ::core::option::Option<Code> {\n        \
         match code {\n",
    );
    for (row, v) in rows.iter().zip(&variants) {
        let _ = writeln!(out, "            {:?} => ::core::option::Option::Some(Code::{v}),", row.code);
    }
    out.push_str("            _ => ::core::option::Option::None,\n        }\n    }\n\n");
    out.push_str(
        "    /// The code a response stands for, from its status and the code it carries on the wire\n    \
         /// (see [`TABLE`]).\n    \
         pub fn identify(status: u16, wire_code: ::core::option::Option<&str>) -> ::core::option::Option<Code> {\n        \
         TABLE\n            .identify(status, wire_code, ::core::option::Option::None)\n            \
         .and_then(|row| Code::from_code(row.code()))\n    }\n}\n\n",
    );
    out.push_str(
        "impl ::rebuff_client::ErrorCode for Code {\n    \
         fn as_str(&self) -> &'static str {\n        Code::as_str(*self)\n    }\n}\n\n\
         impl ::core::fmt::Display for Code {\n    \
         fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {\n        \
         f.write_str(Code::as_str(*self))\n    }\n}\n\n\
         impl ::core::str::FromStr for Code {\n    \
         type Err = ::rebuff_client::UnknownCode;\n\n    \
         fn from_str(code: &str) -> ::core::result::Result<Self, Self::Err> {\n        \
         Code::from_code(code).ok_or_else(|| ::rebuff_client::UnknownCode::new(code))\n    }\n}\n\n",
    );

    let _ = writeln!(
        out,
        "/// The `{name_text}` API's error table: a response's wire code and status to its stable code,\n\
         /// with each code's retry class. Give it to the client with\n\
         /// `rebuff_client::Contract::table(&TABLE)`.\n\
         pub static TABLE: ::rebuff_client::CodeTable = ::rebuff_client::CodeTable::new(\n    \
         {name:?},\n    ::rebuff_client::Dialect::{},\n    &[",
        dialect_variant(dialect)
    );
    let opt = |v: &Option<String>| match v {
        Some(s) => format!("::core::option::Option::Some({s:?})"),
        None => "::core::option::Option::None".to_owned(),
    };
    for r in rows {
        let _ = writeln!(
            out,
            "        ::rebuff_client::CodeRow::new(\n            {:?},\n            {},\n            {},\n            \
             {:?},\n            ::rebuff_client::RetryClass::{},\n            {:?},\n            {},\n        ),",
            r.code,
            opt(&r.wire_code),
            r.status,
            r.category,
            retry_variant(r.retry),
            r.type_uri,
            opt(&r.presented_as),
        );
    }
    out.push_str("    ],\n    &[\n");
    for (status, code) in status_fallbacks(rows) {
        let _ = writeln!(out, "        ({status}, {code:?}),");
    }
    out.push_str("    ],\n);\n");
    out
}

/// For each status, the code [`Catalog::identify`] answers when nothing but the status is
/// known: the first generic code of that status, else its first code, never one presented as
/// another.
fn status_fallbacks(rows: &[ClientRow]) -> Vec<(u16, &str)> {
    let statuses: std::collections::BTreeSet<u16> = rows.iter().map(|r| r.status).collect();
    statuses
        .into_iter()
        .filter_map(|status| {
            let mut own = rows.iter().filter(|r| r.status == status && r.presented_as.is_none());
            let first = own.clone().next()?;
            let generic = own.find(|r| crate::catalog::is_generic(&r.code));
            Some((status, generic.unwrap_or(first).code.as_str()))
        })
        .collect()
}

const fn retry_variant(retry: RetryClass) -> &'static str {
    match retry {
        RetryClass::Never => "Never",
        RetryClass::AfterReauth => "AfterReauth",
        RetryClass::AfterFix => "AfterFix",
        RetryClass::Backoff => "Backoff",
        RetryClass::RetryAfter => "RetryAfter",
    }
}

fn dialect_variant(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Rebuff => "Rebuff",
        Dialect::Arize => "Arize",
        Dialect::Dataxid => "Dataxid",
        Dialect::Mlops => "Mlops",
        Dialect::Incidents => "Incidents",
        Dialect::Apikeys => "Apikeys",
    }
}

/// One line of doc text: no control characters (a newline or a bare CR would end the
/// comment), nothing rustdoc reads as HTML or an intra-doc link.
pub fn rustdoc_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            c if c.is_control() => out.push(' '),
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            '[' | ']' if !in_code => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if in_code {
        // An unclosed code span would swallow the rest of the line's markup.
        out.push('`');
    }
    out.trim().to_owned()
}

/// `UpperCamelCase` variant names, distinct and valid whatever the codes are: runs of ASCII
/// letters and digits become words, a name that would not start with a letter gets a `C`, and
/// a name already taken gets `2`, `3`...
fn variant_names<'a>(codes: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut taken = HashSet::new();
    codes
        .map(|code| {
            let mut name = String::with_capacity(code.len());
            for word in code.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    name.push(first.to_ascii_uppercase());
                    name.push_str(chars.as_str());
                }
            }
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                name.insert(0, 'C');
            }
            if name == "Self" {
                name.push_str("Code");
            }
            let mut candidate = name.clone();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{name}{n}");
                n += 1;
            }
            candidate
        })
        .collect()
}
