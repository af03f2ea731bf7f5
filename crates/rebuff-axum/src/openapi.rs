//! OpenAPI for a service that describes itself with [utoipa](https://docs.rs/utoipa) (feature
//! `utoipa`): [`ErrorDocs`] adds the catalog's errors to the service's own document in one call.
//!
//! What it adds:
//!
//! - `components.schemas.Error` (the profile's envelope, its code member an `enum` of every
//!   code) and `FieldError`, as [`rebuff::docs::openapi_components`] describes them;
//! - `components.examples.<code>`: one example body per code;
//! - `components.responses.Error<status>` for every status the catalog uses, with the media
//!   type the profile sends, the examples of the codes answered with that status, and the
//!   headers such a response carries;
//! - `components.headers`: `X-Request-Id`, `Retry-After`, `WWW-Authenticate`, `Allow`, and with
//!   a rate limit `RateLimit`, `RateLimit-Policy`, `X-RateLimit-Limit`,
//!   `X-RateLimit-Remaining` and `X-RateLimit-Reset`;
//! - on every operation: a reference to `Error<status>` for each error status the operation
//!   declares itself (`responses((status = 404, description = "..."))` keeps its description)
//!   or that the layers in front of it can answer with ([`ErrorDocs::every_operation`],
//!   [`ErrorDocs::operations_where`], [`ErrorDocs::rate_limited_where`],
//!   [`ErrorDocs::idempotent_where`]), the headers its own success responses carry
//!   (`X-Request-Id`; the rate-limit headers where limited), and the `Idempotency-Key` header
//!   where idempotency keys are taken.
//!
//! ```
//! use rebuff::Catalog;
//! use rebuff_axum::openapi::ErrorDocs;
//! use utoipa::OpenApi;
//!
//! /// Get a widget.
//! #[utoipa::path(get, path = "/widgets/{id}", responses(
//!     (status = 200, description = "The widget."),
//!     (status = 404, description = "No such widget."),
//! ))]
//! async fn get_widget() {}
//!
//! #[derive(OpenApi)]
//! #[openapi(paths(get_widget))]
//! struct Api;
//!
//! let mut api = Api::openapi();
//! ErrorDocs::new(Catalog::standard())
//!     // The stack around every route: timeouts, body limit, panics, overload.
//!     .every_operation([405, 408, 413, 500, 503, 504])
//!     // Authentication and a per-key rate limit around the routes that need credentials.
//!     .operations_where(|route| route.is_authenticated(), [401, 403])
//!     .rate_limited_where(|route| route.is_authenticated())
//!     .idempotent_where(|route| route.is_authenticated())
//!     .apply(&mut api);
//! let doc = serde_json::to_value(&api).unwrap();
//! assert_eq!(
//!     doc["paths"]["/widgets/{id}"]["get"]["responses"]["404"]["$ref"],
//!     "#/components/responses/Error404"
//! );
//! assert!(doc["components"]["examples"]["resource_not_found"].is_object());
//! ```
//!
//! Which layer answers with which status is listed in the [crate documentation](crate); an
//! operation that declares a status itself always gets it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use rebuff::Catalog;
use serde_json::{Map, Value, json};
use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Components, OpenApi, Ref, RefOr};
use utoipa::openapi::{ObjectBuilder, Required, Type};

/// The headers [`ErrorDocs`] declares in `components.headers`, by name.
pub mod headers {
    /// The request's id (`RequestIdLayer`), on every response.
    pub const REQUEST_ID: &str = "X-Request-Id";
    /// Seconds to wait before retrying, on 429, 503 and the statuses whose codes may carry a
    /// delay.
    pub const RETRY_AFTER: &str = "Retry-After";
    /// The authentication challenge, on 401 (and 403 for a missing scope).
    pub const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
    /// The methods a route has, on 405.
    pub const ALLOW: &str = "Allow";
    /// `"policy";r=remaining;t=seconds` (draft-ietf-httpapi-ratelimit-headers-09).
    pub const RATELIMIT: &str = "RateLimit";
    /// `"policy";q=limit;w=seconds` (draft-ietf-httpapi-ratelimit-headers-09).
    pub const RATELIMIT_POLICY: &str = "RateLimit-Policy";
    /// Requests allowed per period.
    pub const X_RATELIMIT_LIMIT: &str = "X-RateLimit-Limit";
    /// Requests still admitted now.
    pub const X_RATELIMIT_REMAINING: &str = "X-RateLimit-Remaining";
    /// Unix seconds at which the limit is whole again.
    pub const X_RATELIMIT_RESET: &str = "X-RateLimit-Reset";

    /// The five headers every response of a rate-limited request carries.
    pub const RATE_LIMIT: [&str; 5] =
        [RATELIMIT, RATELIMIT_POLICY, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET];
}

/// The largest value of a header that counts seconds or requests: `u32::MAX` for a count
/// (`Decision::limit` is a `u32`), and the largest Unix second a `u64` holds for times.
const COUNT_MAX: u64 = u32::MAX as u64;
const SECONDS_MAX: u64 = u64::MAX;

/// One operation of the document, as [`ErrorDocs`]' filters see it.
#[derive(Clone, Copy)]
pub struct Route<'a> {
    /// Its path template (`/widgets/{id}`).
    pub path: &'a str,
    /// Its method.
    pub method: &'a HttpMethod,
    /// The operation, as the service described it.
    pub operation: &'a Operation,
    /// The document's own `security`, which an operation without one inherits.
    global: Option<&'a [SecurityRequirement]>,
}

impl fmt::Debug for Route<'_> {
    // utoipa's types implement `Debug` only with its `debug` feature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("operation_id", &self.operation_id())
            .finish_non_exhaustive()
    }
}

impl Route<'_> {
    /// Whether the operation needs credentials: its security requirements (its own, else the
    /// document's) are not empty and none is the empty one (`{}`: "none needed").
    pub fn is_authenticated(&self) -> bool {
        let reqs = self.operation.security.as_deref().or(self.global).unwrap_or_default();
        !reqs.is_empty() && reqs.iter().all(|r| r != &SecurityRequirement::default())
    }

    /// The operation's `operationId`, if it has one.
    pub fn operation_id(&self) -> Option<&str> {
        self.operation.operation_id.as_deref()
    }
}

type Filter = Arc<dyn Fn(&Route<'_>) -> bool + Send + Sync>;

/// A set of statuses for the operations a filter picks.
#[derive(Clone)]
struct Rule {
    applies: Filter,
    statuses: BTreeSet<u16>,
    rate_limited: bool,
    idempotent: bool,
}

/// Adds a catalog's error schema, examples, responses and headers to a utoipa document; see
/// the [module documentation](self).
#[derive(Clone)]
pub struct ErrorDocs {
    /// `openapi_components(catalog)["components"]`, with the headers as references.
    components: Value,
    rules: Vec<Rule>,
}

impl fmt::Debug for ErrorDocs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorDocs").field("rules", &self.rules.len()).finish_non_exhaustive()
    }
}

impl ErrorDocs {
    /// The catalog's error components, in its profile's envelope and media type; no operation
    /// gets more than the statuses it declares until a rule says so.
    pub fn new(catalog: &Catalog) -> Self {
        let mut components = rebuff::docs::openapi_components(catalog)["components"].take();
        if let Some(responses) = components.get_mut("responses").and_then(Value::as_object_mut) {
            for (name, response) in responses.iter_mut() {
                let status = name.strip_prefix("Error").and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
                let mut names: Vec<&str> = vec![headers::REQUEST_ID];
                let declared = response.get("headers").and_then(Value::as_object);
                if declared.is_some_and(|h| h.contains_key(headers::RETRY_AFTER)) || status == 429 {
                    names.push(headers::RETRY_AFTER);
                }
                // The scope check answers 403 with an `insufficient_scope` challenge.
                if status == 401 || status == 403 {
                    names.push(headers::WWW_AUTHENTICATE);
                }
                if status == 405 {
                    names.push(headers::ALLOW);
                }
                response["headers"] = header_refs(&names);
            }
        }
        components["headers"] = header_components(false);
        ErrorDocs { components, rules: Vec::new() }
    }

    /// Every operation may also answer with these statuses (the layers around the whole
    /// router: timeouts, the body limit, panics, an unavailable store). A status the catalog
    /// does not use is left out.
    #[must_use]
    pub fn every_operation(self, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.operations_where(|_| true, statuses)
    }

    /// The operations `applies` picks may also answer with these statuses (the layers around
    /// some routes: authentication, scopes, idempotency keys).
    #[must_use]
    pub fn operations_where(
        mut self,
        applies: impl Fn(&Route<'_>) -> bool + Send + Sync + 'static,
        statuses: impl IntoIterator<Item = u16>,
    ) -> Self {
        self.rules.push(Rule {
            applies: Arc::new(applies),
            statuses: statuses.into_iter().collect(),
            rate_limited: false,
            idempotent: false,
        });
        self
    }

    /// The operations `applies` picks are behind an
    /// [`IdempotencyLayer`](crate::idempotency::IdempotencyLayer) (which only ever acts on
    /// `POST`): they take an optional `Idempotency-Key` header, and may answer 400 (a malformed
    /// key), 409 (the same key still running) and 422 (the key reused with another payload).
    #[must_use]
    pub fn idempotent_where(mut self, applies: impl Fn(&Route<'_>) -> bool + Send + Sync + 'static) -> Self {
        self.rules.push(Rule {
            applies: Arc::new(move |r| matches!(r.method, HttpMethod::Post) && applies(r)),
            statuses: BTreeSet::from([400, 409, 422]),
            rate_limited: false,
            idempotent: true,
        });
        self
    }

    /// The operations `applies` picks are behind a [`RateLimitLayer`](crate::ratelimit::RateLimitLayer):
    /// they may answer 429, and their responses carry `RateLimit`, `RateLimit-Policy` and
    /// `X-RateLimit-*`. The headers are declared (not required) on the catalog's 4xx responses
    /// too, since those are shared by every operation: a request refused before the limit was
    /// checked (no credentials, a method the route lacks) has none.
    #[must_use]
    pub fn rate_limited_where(
        mut self,
        applies: impl Fn(&Route<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        if let Some(responses) = self.components.get_mut("responses").and_then(Value::as_object_mut) {
            for (name, response) in responses.iter_mut() {
                if name.starts_with("Error4")
                    && let Some(h) = response["headers"].as_object_mut()
                {
                    for name in headers::RATE_LIMIT {
                        h.insert(name.to_owned(), header_ref(name));
                    }
                }
            }
        }
        self.components["headers"] = header_components(true);
        self.rules.push(Rule {
            applies: Arc::new(applies),
            statuses: BTreeSet::from([429]),
            rate_limited: true,
            idempotent: false,
        });
        self
    }

    /// The components alone, as utoipa's type (for a document assembled by other means).
    ///
    /// # Panics
    /// Never: the components are generated by [`rebuff::docs::openapi_components`], whose
    /// output utoipa reads (a test checks every profile).
    pub fn components(&self) -> Components {
        #[allow(clippy::expect_used)]
        serde_json::from_value(self.components.clone()).expect("rebuff's components are valid OpenAPI")
    }

    /// Adds the components to `api` (keeping the service's own where names collide: a schema
    /// of its own named `Error` is replaced, since operations refer to it) and the error
    /// responses and headers to each of its operations.
    pub fn apply(&self, api: &mut OpenApi) {
        let ours = self.components();
        let known: BTreeSet<u16> = ours
            .responses
            .keys()
            .filter_map(|n| n.strip_prefix("Error").and_then(|s| s.parse().ok()))
            .collect();
        let components = api.components.get_or_insert_with(Components::new);
        components.schemas.extend(ours.schemas);
        components.examples.extend(ours.examples);
        components.responses.extend(ours.responses);
        for (name, header) in ours.headers {
            components.headers.entry(name).or_insert(header);
        }
        let global = api.security.as_deref();
        for (path, item) in api.paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                let route = Route { path, method: &method, operation: op, global };
                let mut statuses = BTreeSet::new();
                let (mut limited, mut idempotent) = (false, false);
                for rule in &self.rules {
                    if (rule.applies)(&route) {
                        statuses.extend(&rule.statuses);
                        limited |= rule.rate_limited;
                        idempotent |= rule.idempotent;
                    }
                }
                if idempotent {
                    add_idempotency_key(op);
                }
                self.decorate(op, &statuses, limited, &known);
            }
        }
    }

    fn decorate(&self, op: &mut Operation, extra: &BTreeSet<u16>, limited: bool, known: &BTreeSet<u16>) {
        let responses = &mut op.responses.responses;
        for (status, response) in responses.iter_mut() {
            let code = status.parse::<u16>().ok();
            match code {
                Some(code) if code >= 400 && known.contains(&code) => {
                    // The catalog's response, keeping the operation's own words for it.
                    let description = match response {
                        RefOr::T(r) => r.description.clone(),
                        RefOr::Ref(r) => r.description.clone(),
                    };
                    let mut reference = Ref::from_response_name(format!("Error{code}"));
                    reference.description = description;
                    *response = RefOr::Ref(reference);
                }
                _ => {
                    if let RefOr::T(r) = response {
                        let mut names = vec![headers::REQUEST_ID];
                        if limited && code.is_none_or(|c| c < 500) {
                            names.extend(headers::RATE_LIMIT);
                        }
                        for name in names {
                            r.headers
                                .entry(name.to_owned())
                                .or_insert_with(|| RefOr::Ref(header_ref_of(name)));
                        }
                    }
                }
            }
        }
        for code in extra.iter().filter(|c| known.contains(c)) {
            responses
                .entry(code.to_string())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(format!("Error{code}"))));
        }
    }
}

impl utoipa::Modify for ErrorDocs {
    fn modify(&self, openapi: &mut OpenApi) {
        self.apply(openapi);
    }
}

/// The optional `Idempotency-Key` header, unless the operation declares it itself.
fn add_idempotency_key(op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    let declared = params.iter().any(|p| match p {
        RefOr::T(p) => p.name.eq_ignore_ascii_case("idempotency-key"),
        RefOr::Ref(_) => false,
    });
    if declared {
        return;
    }
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::idempotency::MAX_KEY_LEN))
        .pattern(Some(format!("^[!-~]{{1,{}}}$", crate::idempotency::MAX_KEY_LEN)));
    params.push(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retried POST safe: the first completion is replayed to every retry with the \
                 same key and payload while it is kept (24 hours by default).",
            ))
            .schema(Some(schema))
            .build()
            .into(),
    );
}

/// Every operation of a path item, with its method.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

fn header_ref_of(name: &str) -> Ref {
    Ref::new(format!("#/components/headers/{name}"))
}

fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

fn header_refs(names: &[&str]) -> Value {
    Value::Object(names.iter().map(|n| ((*n).to_owned(), header_ref(n))).collect::<Map<_, _>>())
}

/// The header components. Every value is bounded (length or range) and shaped (pattern), as
/// OWASP's API checklist asks of any string or integer a client reads.
fn header_components(rate_limited: bool) -> Value {
    let integer = |description: &str, max: u64| {
        json!({"description": description,
            "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": max}})
    };
    let mut h: BTreeMap<&str, Value> = BTreeMap::new();
    h.insert(
        headers::REQUEST_ID,
        json!({"description": "The request's id: the client's own `X-Request-Id` when it is 1 to 128 visible ASCII characters, else one the server made. Also in the error body.",
            "schema": {"type": "string", "minLength": 1, "maxLength": crate::request_id::MAX_LEN, "pattern": "^[!-~]+$"}}),
    );
    h.insert(headers::RETRY_AFTER, integer("Seconds to wait before retrying.", SECONDS_MAX));
    h.insert(
        headers::WWW_AUTHENTICATE,
        json!({"description": "The authentication challenge (RFC 9110 §11.6.1; RFC 6750 §3 for bearer tokens).",
            "schema": {"type": "string", "maxLength": 1000, "pattern": "^[A-Za-z][!#$%&'*+.^_`|~0-9A-Za-z-]*( .*)?$"}}),
    );
    h.insert(
        headers::ALLOW,
        json!({"description": "The methods the route has.",
            "schema": {"type": "string", "maxLength": 100, "pattern": "^[A-Z]+(, ?[A-Z]+)*$"}}),
    );
    if rate_limited {
        h.insert(
            headers::RATELIMIT,
            json!({"description": "The limit's state: `\"policy\";r=<requests remaining>;t=<seconds until it is whole again>` (draft-ietf-httpapi-ratelimit-headers-09).",
                "schema": {"type": "string", "maxLength": 100, "pattern": "^\"[!#-\\[\\]-~]*\";r=[0-9]+;t=[0-9]+$"}}),
        );
        h.insert(
            headers::RATELIMIT_POLICY,
            json!({"description": "The limit: `\"policy\";q=<requests>;w=<seconds>` (draft-ietf-httpapi-ratelimit-headers-09).",
                "schema": {"type": "string", "maxLength": 100, "pattern": "^\"[!#-\\[\\]-~]*\";q=[0-9]+;w=[0-9]+$"}}),
        );
        h.insert(headers::X_RATELIMIT_LIMIT, integer("Requests allowed per period.", COUNT_MAX));
        h.insert(headers::X_RATELIMIT_REMAINING, integer("Requests still admitted now.", COUNT_MAX));
        h.insert(
            headers::X_RATELIMIT_RESET,
            integer("Unix seconds at which the limit is whole again.", SECONDS_MAX),
        );
    }
    Value::Object(h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}
