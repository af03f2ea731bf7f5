//! Golden tests: every JSON example the five published references show is reproduced by its
//! profile, with the documented status and media type, and parses back to the right code.
//! Every row of each reference's code table is checked too.

use http::HeaderMap;
use rebuff_core::{Catalog, FieldError, Problem, parse_for};
use serde_json::{Value, json};

struct Golden {
    profile: &'static str,
    problem: Problem,
    status: u16,
    body: Value,
    /// A member the example leaves out but the same reference's code table requires for this
    /// code (arize documents `error_code` as optional and lists it for these codes).
    documented_extra: Option<(&'static str, &'static str)>,
}

fn g(profile: &'static str, problem: Problem, status: u16, body: Value) -> Golden {
    Golden { profile, problem, status, body, documented_extra: None }
}

fn with_code(mut golden: Golden, wire: &'static str) -> Golden {
    golden.documented_extra = Some(("error_code", wire));
    golden
}

const ARIZE: &str = "https://arize.com/docs/ax/rest-reference/errors";
const DATAXID: &str = "https://docs.dataxid.com/docs/errors";

fn p(code: &str) -> Problem {
    Problem::dynamic(code)
}

fn goldens() -> Vec<Golden> {
    vec![
        // ---- arize: RFC 9457, `type` anchors per status ------------------------------
        g(
            "arize",
            p("bad_request").detail("JSON parse error: unexpected token '}' at position 42."),
            400,
            json!({"status": 400, "title": "Bad Request", "type": format!("{ARIZE}#invalid-request"),
                   "detail": "JSON parse error: unexpected token '}' at position 42."}),
        ),
        with_code(
            g(
                "arize",
                p("authentication_required"),
                401,
                json!({"status": 401, "title": "Unauthorized", "type": format!("{ARIZE}#authentication-required"),
                       "detail": "Bearer credentials are required (API key or OAuth access token)."}),
            ),
            "AUTHENTICATION_REQUIRED",
        ),
        with_code(
            g(
                "arize",
                p("forbidden").detail("You do not have permission to delete this dataset."),
                403,
                json!({"status": 403, "title": "Forbidden", "type": format!("{ARIZE}#access-forbidden"),
                       "detail": "You do not have permission to delete this dataset."}),
            ),
            "ACCESS_DENIED",
        ),
        with_code(
            g(
                "arize",
                p("resource_not_found").detail("Dataset with ID 'ZGF0YXNldC10ZXN0' was not found."),
                404,
                json!({"status": 404, "title": "Not Found", "type": format!("{ARIZE}#resource-not-found"),
                       "detail": "Dataset with ID 'ZGF0YXNldC10ZXN0' was not found."}),
            ),
            "RESOURCE_NOT_FOUND",
        ),
        with_code(
            g(
                "arize",
                p("method_not_allowed"),
                405,
                json!({"status": 405, "title": "Method Not Allowed", "type": format!("{ARIZE}#method-not-allowed"),
                       "detail": "method not allowed"}),
            ),
            "METHOD_NOT_ALLOWED",
        ),
        with_code(
            g(
                "arize",
                p("resource_already_exists")
                    .detail("A dataset named 'my-dataset' already exists in this space."),
                409,
                json!({"status": 409, "title": "Conflict", "type": format!("{ARIZE}#resource-conflict"),
                       "detail": "A dataset named 'my-dataset' already exists in this space."}),
            ),
            "RESOURCE_ALREADY_EXISTS",
        ),
        with_code(
            g(
                "arize",
                p("unsupported_media_type"),
                415,
                json!({"status": 415, "title": "Unsupported Media Type",
                       "type": format!("{ARIZE}#unsupported-media-type"),
                       "detail": "Content-Type must be application/json"}),
            ),
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        with_code(
            g(
                "arize",
                p("missing_required_field")
                    .detail("The 'name' field is required and must be a non-empty string."),
                422,
                json!({"status": 422, "title": "Unprocessable Entity", "type": format!("{ARIZE}#validation-error"),
                       "detail": "The 'name' field is required and must be a non-empty string."}),
            ),
            "MISSING_REQUIRED_FIELD",
        ),
        with_code(
            g(
                "arize",
                p("rate_limit_exceeded").retry_after(30),
                429,
                json!({"status": 429, "title": "Too Many Requests", "type": format!("{ARIZE}#rate-limit-exceeded"),
                       "detail": "You have exceeded the allowed number of requests. Please try again later."}),
            ),
            "RATE_LIMIT_EXCEEDED",
        ),
        g(
            "arize",
            p("internal_error")
                .detail("SELECT * FROM users failed at /srv/app.rs:12")
                .cause("disk I/O error"),
            500,
            json!({"status": 500, "title": "Internal Server Error", "type": format!("{ARIZE}#internal-server-error"),
                   "detail": "An unexpected error occurred."}),
        ),
        g(
            "arize",
            p("bad_gateway"),
            502,
            json!({"status": 502, "title": "Bad Gateway", "type": format!("{ARIZE}#bad-gateway")}),
        ),
        g(
            "arize",
            p("service_unavailable"),
            503,
            json!({"status": 503, "title": "Service Unavailable", "type": format!("{ARIZE}#service-unavailable")}),
        ),
        // ---- dataxid: Stripe-style envelope --------------------------------------------
        g(
            "dataxid",
            p("parameter_invalid")
                .detail("n_samples must be > 0")
                .param("n_samples")
                .request_id("req_abc123"),
            400,
            json!({"error": {"type": "invalid_request_error", "code": "parameter_invalid",
                   "message": "n_samples must be > 0", "doc_url": format!("{DATAXID}#parameter_invalid"),
                   "param": "n_samples"}, "request_id": "req_abc123"}),
        ),
        g(
            "dataxid",
            p("api_key_missing").request_id("req_abc123"),
            401,
            json!({"error": {"type": "authentication_error", "code": "api_key_missing",
                   "message": "Authorization header with Bearer token is required.",
                   "doc_url": format!("{DATAXID}#api_key_missing")}, "request_id": "req_abc123"}),
        ),
        g(
            "dataxid",
            p("invalid_field_value")
                .field(FieldError::body(
                    "/config/batch_size",
                    "greater_than",
                    "Value error, ensure this value is greater than 0",
                ))
                .request_id("req_abc123"),
            400,
            json!({"error": {"type": "invalid_request_error", "code": "parameter_invalid",
                   "message": "Value error, ensure this value is greater than 0",
                   "doc_url": format!("{DATAXID}#parameter_invalid"), "param": "body.config.batch_size"},
                   "request_id": "req_abc123"}),
        ),
        g(
            "dataxid",
            p("model_not_ready")
                .detail("Model mdl_a1b2c3d4e5f6 is in 'created' state, cannot generate")
                .request_id("req_abc123"),
            400,
            json!({"error": {"type": "invalid_request_error", "code": "model_not_ready",
                   "message": "Model mdl_a1b2c3d4e5f6 is in 'created' state, cannot generate",
                   "doc_url": format!("{DATAXID}#model_not_ready")}, "request_id": "req_abc123"}),
        ),
        g(
            "dataxid",
            p("quota_exceeded").request_id("req_abc123"),
            402,
            json!({"error": {"type": "quota_exceeded_error", "code": "quota_exceeded",
                   "message": "Monthly row quota exceeded. Upgrade your plan for additional capacity.",
                   "doc_url": format!("{DATAXID}#quota_exceeded")}, "request_id": "req_abc123"}),
        ),
        g(
            "dataxid",
            p("rate_limit_exceeded").retry_after(12).request_id("req_abc123"),
            429,
            json!({"error": {"type": "rate_limit_error", "code": "rate_limit_exceeded",
                   "message": "Rate limit exceeded. Retry after 12 seconds.",
                   "doc_url": format!("{DATAXID}#rate_limit_exceeded")}, "request_id": "req_abc123"}),
        ),
        // ---- mlops: FastAPI's {"detail": ...} --------------------------------------------
        g(
            "mlops",
            p("bad_request").detail("Human-readable error message"),
            400,
            json!({"detail": "Human-readable error message"}),
        ),
        g(
            "mlops",
            p("invalid_field_value").field(FieldError::body(
                "/email",
                "value_error.email",
                "value is not a valid email address",
            )),
            422,
            json!({"detail": [{"loc": ["body", "email"], "msg": "value is not a valid email address",
                               "type": "value_error.email"}]}),
        ),
        // ---- incidents: {code, message, details} ------------------------------------------
        g(
            "incidents",
            p("validation_failed")
                .field(FieldError::body("/name", "required", "Name is required"))
                .field(FieldError::body("/email", "invalid_format", "Invalid email format")),
            422,
            json!({"code": "VALIDATION_ERROR", "message": "Validation failed",
                   "details": {"name": {"code": "required", "message": "Name is required"},
                               "email": {"code": "invalid_format", "message": "Invalid email format"}}}),
        ),
        g(
            "incidents",
            p("resource_not_found").detail("Incident 550e8400-e29b-41d4-a716-446655440000 not found"),
            404,
            json!({"code": "NOT_FOUND", "message": "Not found: Incident 550e8400-e29b-41d4-a716-446655440000 not found"}),
        ),
        g(
            "incidents",
            p("resource_conflict").detail("Action is not pending approval (current status: Approved)"),
            409,
            json!({"code": "CONFLICT", "message": "Conflict: Action is not pending approval (current status: Approved)"}),
        ),
        g(
            "incidents",
            p("rate_limit_exceeded").retry_after(5),
            429,
            json!({"code": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}),
        ),
        g(
            "incidents",
            p("authentication_required"),
            401,
            json!({"code": "UNAUTHORIZED", "message": "Unauthorized: No authentication provided"}),
        ),
    ]
}

fn catalog(name: &str) -> &'static Catalog {
    Catalog::builtin(name).unwrap_or_else(|| panic!("built-in profile {name}"))
}

#[test]
fn every_seed_example_is_reproduced_exactly() {
    for golden in goldens() {
        let cat = catalog(golden.profile);
        let res = cat.render(&golden.problem).expect("renders");
        let what = format!("{} {}", golden.profile, golden.problem.code());
        assert_eq!(res.status().as_u16(), golden.status, "{what}: status");
        assert_eq!(res.headers()["content-type"], cat.dialect().content_type(), "{what}: content type");
        let mut body: Value = serde_json::from_slice(res.body()).expect("JSON body");
        if let Some((member, value)) = golden.documented_extra {
            let extra = body.as_object_mut().and_then(|o| o.remove(member));
            assert_eq!(extra, Some(json!(value)), "{what}: documented {member}");
        }
        assert_eq!(body, golden.body, "{what}: body");
        if golden.problem.retry_after.is_some() {
            assert!(res.headers().contains_key("retry-after"), "{what}: Retry-After");
        }
        if golden.status == 401 {
            assert!(res.headers().contains_key("www-authenticate"), "{what}: WWW-Authenticate");
        }
    }
}

#[test]
fn every_seed_example_parses_back_to_its_code() {
    for golden in goldens() {
        let cat = catalog(golden.profile);
        let res = cat.render(&golden.problem).expect("renders");
        let rendered = cat.get(golden.problem.code()).expect("entry");
        let (parsed, entry) = parse_for(cat, res.status().as_u16(), res.headers(), res.body());
        let what = format!("{} {}", golden.profile, golden.problem.code());
        let entry = entry.unwrap_or_else(|| panic!("{what}: not identified: {parsed:?}"));
        assert_eq!(entry.status, rendered.status, "{what}");
        let sends_code = match cat.dialect() {
            rebuff_core::Dialect::Mlops => false,
            rebuff_core::Dialect::Arize => golden.status < 500,
            _ => true,
        };
        if sends_code {
            assert_eq!(entry.wire_code, rendered.wire_code, "{what}");
        }
        assert_eq!(parsed.code, rendered.wire_code.clone().filter(|_| sends_code), "{what}: wire code");
        if rendered.wire_code.is_some() && rendered.presented_as.is_none() && golden.profile != "mlops" {
            // A code that owns its spelling comes back as itself.
            let owner = cat.by_wire_code(rendered.wire_code.as_deref().unwrap_or_default()).count() == 1;
            if owner {
                assert_eq!(entry.code, rendered.code, "{what}");
            }
        }
        if golden.profile == "dataxid" {
            // This envelope names one field (`param`) with the message, and no reason.
            let names =
                |f: &[FieldError]| f.iter().map(|f| (f.pointer.clone(), f.location)).collect::<Vec<_>>();
            assert_eq!(names(&parsed.fields), names(&golden.problem.fields), "{what}: field errors");
        } else {
            assert_eq!(parsed.fields, golden.problem.fields, "{what}: field errors");
        }
        assert_eq!(parsed.request_id, golden.problem.request_id, "{what}: request id");
    }
}

/// (profile, stable code, status, wire code) for every row of each reference's code table.
const TABLES: &[(&str, &str, u16, Option<&str>)] = &[
    ("arize", "invalid_json", 400, Some("VALIDATION_ERROR")),
    ("arize", "wrong_field_type", 400, Some("VALIDATION_ERROR")),
    ("arize", "missing_required_field", 422, Some("MISSING_REQUIRED_FIELD")),
    ("arize", "invalid_field_value", 422, Some("INVALID_FIELD_VALUE")),
    ("arize", "invalid_enum_value", 422, Some("INVALID_ENUM_VALUE")),
    ("arize", "invalid_id", 400, Some("INVALID_ID")),
    ("arize", "resource_not_found", 404, Some("RESOURCE_NOT_FOUND")),
    ("arize", "resource_already_exists", 409, Some("RESOURCE_ALREADY_EXISTS")),
    ("arize", "forbidden", 403, Some("ACCESS_DENIED")),
    ("arize", "authentication_required", 401, Some("AUTHENTICATION_REQUIRED")),
    ("arize", "api_key_missing", 401, Some("AUTHENTICATION_REQUIRED")),
    ("arize", "api_key_malformed", 401, Some("AUTHENTICATION_REQUIRED")),
    ("arize", "api_key_invalid", 401, Some("INVALID_CREDENTIALS")),
    ("arize", "api_key_expired", 401, Some("INVALID_CREDENTIALS")),
    ("arize", "api_key_revoked", 401, Some("INVALID_CREDENTIALS")),
    ("arize", "rate_limit_exceeded", 429, Some("RATE_LIMIT_EXCEEDED")),
    ("arize", "unsupported_media_type", 415, Some("UNSUPPORTED_MEDIA_TYPE")),
    ("arize", "method_not_allowed", 405, Some("METHOD_NOT_ALLOWED")),
    ("dataxid", "api_key_missing", 401, Some("api_key_missing")),
    ("dataxid", "api_key_invalid", 401, Some("api_key_invalid")),
    ("dataxid", "api_key_revoked", 401, Some("api_key_invalid")),
    ("dataxid", "parameter_invalid", 400, Some("parameter_invalid")),
    ("dataxid", "missing_required_field", 400, Some("parameter_invalid")),
    ("dataxid", "wrong_field_type", 400, Some("parameter_invalid")),
    ("dataxid", "model_not_found", 404, Some("model_not_found")),
    ("dataxid", "model_not_ready", 400, Some("model_not_ready")),
    ("dataxid", "training_service_unavailable", 503, Some("training_service_unavailable")),
    ("dataxid", "idempotency_key_in_use", 409, Some("idempotency_key_in_use")),
    ("dataxid", "quota_exceeded", 402, Some("quota_exceeded")),
    ("dataxid", "rate_limit_exceeded", 429, Some("rate_limit_exceeded")),
    ("dataxid", "internal_error", 500, Some("internal_error")),
    ("incidents", "authentication_required", 401, Some("UNAUTHORIZED")),
    ("incidents", "invalid_credentials", 401, Some("INVALID_CREDENTIALS")),
    ("incidents", "session_expired", 401, Some("SESSION_EXPIRED")),
    ("incidents", "invalid_signature", 401, Some("INVALID_SIGNATURE")),
    ("incidents", "forbidden", 403, Some("FORBIDDEN")),
    ("incidents", "csrf_failed", 403, Some("CSRF_VALIDATION_FAILED")),
    ("incidents", "account_disabled", 403, Some("ACCOUNT_DISABLED")),
    ("incidents", "resource_not_found", 404, Some("NOT_FOUND")),
    ("incidents", "bad_request", 400, Some("BAD_REQUEST")),
    ("incidents", "resource_conflict", 409, Some("CONFLICT")),
    ("incidents", "unprocessable_entity", 422, Some("UNPROCESSABLE_ENTITY")),
    ("incidents", "validation_failed", 422, Some("VALIDATION_ERROR")),
    ("incidents", "rate_limit_exceeded", 429, Some("RATE_LIMIT_EXCEEDED")),
    ("incidents", "internal_error", 500, Some("INTERNAL_ERROR")),
    ("incidents", "database_error", 500, Some("DATABASE_ERROR")),
    ("incidents", "service_unavailable", 503, Some("SERVICE_UNAVAILABLE")),
    ("apikeys", "api_key_missing", 401, Some("missing_api_key")),
    ("apikeys", "api_key_invalid", 401, Some("invalid_api_key")),
    ("apikeys", "api_key_malformed", 401, Some("invalid_api_key")),
    ("apikeys", "api_key_revoked", 401, Some("api_key_revoked")),
    ("apikeys", "api_key_expired", 401, Some("api_key_expired")),
    ("apikeys", "insufficient_scope", 403, Some("insufficient_scope")),
    ("apikeys", "ip_not_allowed", 403, Some("ip_not_allowed")),
    ("apikeys", "invalid_json", 400, Some("invalid_request")),
    ("apikeys", "validation_failed", 422, Some("validation_error")),
    ("apikeys", "invalid_query_parameter", 400, Some("invalid_parameter")),
    ("apikeys", "missing_required_field", 422, Some("missing_required_field")),
    ("apikeys", "resource_not_found", 404, Some("resource_not_found")),
    ("apikeys", "resource_already_exists", 409, Some("resource_already_exists")),
    ("apikeys", "resource_conflict", 409, Some("resource_conflict")),
    ("apikeys", "rate_limit_exceeded", 429, Some("rate_limit_exceeded")),
    ("apikeys", "internal_error", 500, Some("internal_error")),
    ("apikeys", "service_unavailable", 503, Some("service_unavailable")),
    // mlops has no codes on the wire; its table documents statuses per scenario.
    ("mlops", "authentication_required", 401, None),
    ("mlops", "invalid_credentials", 401, None),
    ("mlops", "insufficient_scope", 403, None),
    ("mlops", "resource_already_exists", 409, None),
    ("mlops", "invalid_field_value", 422, None),
    ("mlops", "rate_limit_exceeded", 429, None),
    ("mlops", "resource_not_found", 404, None),
    ("mlops", "model_not_ready", 400, None),
    ("mlops", "resource_conflict", 409, None),
    ("mlops", "invalid_enum_value", 422, None),
    ("mlops", "internal_error", 500, None),
];

#[test]
fn every_code_table_row_holds() {
    for &(profile, code, status, wire) in TABLES {
        let cat = catalog(profile);
        let res = cat.render(&p(code)).expect("renders");
        assert_eq!(res.status().as_u16(), status, "{profile} {code}: status");
        let body: Value = serde_json::from_slice(res.body()).expect("JSON");
        let sent = match cat.dialect() {
            rebuff_core::Dialect::Arize => body.get("error_code"),
            rebuff_core::Dialect::Dataxid => body.pointer("/error/code"),
            rebuff_core::Dialect::Mlops => None,
            _ => body.get("code"),
        };
        assert_eq!(sent.and_then(Value::as_str), wire, "{profile} {code}: wire code");
    }
}

#[test]
fn arize_server_errors_never_carry_error_code() {
    let cat = catalog("arize");
    for e in cat.entries().iter().filter(|e| e.status.is_server_error()) {
        let res = cat.render(&p(&e.code)).expect("renders");
        let body: Value = serde_json::from_slice(res.body()).expect("JSON");
        assert!(body.get("error_code").is_none(), "{}", e.code);
    }
}

/// Every JSON object in the published references must be one of the goldens of the same
/// profile (or a schema placeholder, which is not valid JSON). The references are copied into
/// `tests/fixtures/seeds/` (sources named in its README), one file per profile, so this runs
/// from any checkout and fails, never skips, when they are missing.
#[test]
fn goldens_cover_every_json_example_of_the_references() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds");
    let strip = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("request_id");
        }
        v
    };
    let mut total = 0;
    for profile in ["arize", "dataxid", "mlops", "incidents", "apikeys"] {
        let path = dir.join(format!("{profile}.txt"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the reference of {profile} at {}: {e}", path.display()));
        let rendered: Vec<Value> =
            goldens().into_iter().filter(|gd| gd.profile == profile).map(|gd| strip(gd.body)).collect();
        for example in json_objects(&text) {
            let example = strip(example);
            // The generic placeholder `{"detail": "Human-readable error message"}` is
            // reproduced literally; everything else must match a golden body of this profile.
            assert!(rendered.contains(&example), "{}: example not covered: {example}", path.display());
            total += 1;
        }
    }
    assert!(total >= 25, "found only {total} examples");
}

/// Every row `wire code | status | ...` of a reference's code table is one of [`TABLES`] of
/// the same profile, so the table above cannot drift from the published one.
#[test]
fn every_code_table_row_of_the_references_is_checked() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds");
    for (profile, at_least) in [("arize", 13), ("incidents", 15), ("apikeys", 16)] {
        let path = dir.join(format!("{profile}.txt"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the reference of {profile} at {}: {e}", path.display()));
        let rows = code_table_rows(&text);
        assert!(rows.len() >= at_least, "{}: only {} code-table rows", path.display(), rows.len());
        for (wire, status) in rows {
            let listed =
                TABLES.iter().any(|&(p, _, s, w)| p == profile && s == status && w == Some(wire.as_str()));
            assert!(listed, "{}: row {wire} | {status} is not in TABLES", path.display());
        }
    }
}

/// `(code, status)` for each line whose first two cells are a code and a three-digit status.
fn code_table_rows(text: &str) -> Vec<(String, u16)> {
    text.lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(|c| c.trim().trim_matches('`')).filter(|c| !c.is_empty());
            let code = cells.next()?;
            let status = cells.next()?;
            let is_code = !code.is_empty() && code.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
            (is_code && status.len() == 3).then(|| Some((code.to_owned(), status.parse().ok()?)))?
        })
        .collect()
}

/// The JSON objects that start a line in a text, parsed greedily and not nested.
fn json_objects(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let line_start = i == 0 || text.as_bytes()[i - 1] == b'\n';
        if line_start && text.as_bytes()[i] == b'{' {
            let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
            if let Some(Ok(v)) = stream.next() {
                if v.is_object() {
                    out.push(v);
                }
                i += stream.byte_offset().max(1);
                continue;
            }
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    out
}

#[test]
fn a_masked_error_never_shows_its_cause_or_fields() {
    for name in Catalog::PROFILES {
        let cat = catalog(name);
        for e in cat.entries().iter().filter(|e| e.masked) {
            let problem = p(&e.code)
                .detail("SQLSTATE 23505 at /srv/db.rs:42")
                .cause("panicked at src/main.rs:1")
                .param("secret")
                .field(FieldError::body("/password", "x", "hunter2"));
            let res = cat.render(&problem).expect("renders");
            let body = String::from_utf8_lossy(res.body());
            for leak in ["SQLSTATE", "/srv/", "panicked", "hunter2", "secret"] {
                assert!(!body.contains(leak), "{name} {}: leaks {leak}: {body}", e.code);
            }
        }
    }
}

#[test]
fn headers_without_request_id_are_left_alone() {
    let res = catalog("rebuff").render(&p("resource_not_found")).expect("renders");
    assert!(!res.headers().contains_key("x-request-id"));
    let parsed = rebuff_core::parse(404, &HeaderMap::new(), res.body());
    assert_eq!(parsed.code.as_deref(), Some("resource_not_found"));
}
