//! The OpenAPI 3.1 components describing the error responses.

use super::*;

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
