//! `/openapi.json`: the catalog's error components plus every operation of the API, each
//! listing the errors it can answer with, in the profile's schema and media type.

use rebuff::Catalog;
use serde_json::{Value, json};

/// One operation: method, path, summary, scope, success status, request body schema, and the
/// error statuses it can answer with besides those every authenticated route has.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    scope: Option<&'static str>,
    success: u16,
    body: Option<Value>,
    errors: &'static [u16],
}

/// Statuses any `/v1` route behind authentication can answer with.
const AUTHED: &[u16] = &[401, 403, 405, 408, 413, 429, 500, 503, 504];
/// Statuses of a route that takes a JSON body.
const WITH_BODY: &[u16] = &[400, 409, 415, 422];

fn ops() -> Vec<Op> {
    let name = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}}});
    vec![
        Op {
            method: "get",
            path: "/v1/projects",
            id: "listProjects",
            summary: "List projects",
            scope: Some("read"),
            success: 200,
            body: None,
            errors: &[400],
        },
        Op {
            method: "post",
            path: "/v1/projects",
            id: "createProject",
            summary: "Create a project (names are unique per organisation)",
            scope: Some("write"),
            success: 201,
            body: Some(name),
            errors: WITH_BODY,
        },
        Op {
            method: "get",
            path: "/v1/projects/{id}",
            id: "getProject",
            summary: "Get a project",
            scope: Some("read"),
            success: 200,
            body: None,
            errors: &[400, 404],
        },
        Op {
            method: "delete",
            path: "/v1/projects/{id}",
            id: "deleteProject",
            summary: "Delete a project",
            scope: Some("write"),
            success: 204,
            body: None,
            errors: &[400, 404],
        },
        Op {
            method: "post",
            path: "/v1/datasets",
            id: "createDataset",
            summary: "Create a dataset",
            scope: Some("write"),
            success: 201,
            body: Some(
                json!({"type": "object", "required": ["project_id", "name", "format"], "properties": {
                "project_id": {"type": "string"}, "name": {"type": "string"},
                "format": {"type": "string", "enum": ["csv", "parquet"]}, "rows": {"type": "integer", "minimum": 0}}}),
            ),
            errors: &[400, 404, 409, 415, 422],
        },
        Op {
            method: "get",
            path: "/v1/datasets/{id}",
            id: "getDataset",
            summary: "Get a dataset",
            scope: Some("read"),
            success: 200,
            body: None,
            errors: &[400, 404],
        },
        Op {
            method: "post",
            path: "/v1/models",
            id: "createModel",
            summary: "Create a model (status `created`)",
            scope: Some("write"),
            success: 201,
            body: Some(
                json!({"type": "object", "required": ["name", "model_type", "config"], "properties": {
                "name": {"type": "string"},
                "model_type": {"type": "string", "enum": ["ctgan", "copulagan", "tvae", "gaussian_copula"]},
                "config": {"type": "object", "required": ["batch_size"], "properties": {
                    "batch_size": {"type": "integer", "exclusiveMinimum": 0},
                    "epochs": {"type": "integer", "minimum": 1, "maximum": 10000},
                    "simulate_failure": {"type": "boolean"}}}}}),
            ),
            errors: WITH_BODY,
        },
        Op {
            method: "get",
            path: "/v1/models/{id}",
            id: "getModel",
            summary: "Get a model",
            scope: Some("read"),
            success: 200,
            body: None,
            errors: &[400, 404],
        },
        Op {
            method: "post",
            path: "/v1/models/{id}/train",
            id: "trainModel",
            summary: "Start training (created or failed -> training -> ready | failed)",
            scope: Some("write"),
            success: 202,
            body: None,
            errors: &[400, 404, 409],
        },
        Op {
            method: "post",
            path: "/v1/models/{id}/generate",
            id: "generate",
            summary: "Generate rows from a ready model (counts against the monthly row quota)",
            scope: Some("write"),
            success: 202,
            body: Some(
                json!({"type": "object", "required": ["n_samples"], "properties": {"n_samples": {"type": "integer", "minimum": 1, "maximum": 1_000_000}}}),
            ),
            errors: &[400, 402, 404, 409, 415, 422],
        },
        Op {
            method: "get",
            path: "/v1/jobs/{id}",
            id: "getJob",
            summary: "Get a generation job",
            scope: Some("read"),
            success: 200,
            body: None,
            errors: &[400, 404],
        },
        Op {
            method: "get",
            path: "/v1/jobs/{id}/output",
            id: "getJobOutput",
            summary: "Get a job's output (409 until it is done)",
            scope: Some("read"),
            success: 200,
            body: None,
            errors: &[400, 404, 409],
        },
        Op {
            method: "get",
            path: "/v1/api-keys",
            id: "listApiKeys",
            summary: "List API keys (secrets are never shown again)",
            scope: Some("admin"),
            success: 200,
            body: None,
            errors: &[],
        },
        Op {
            method: "post",
            path: "/v1/api-keys",
            id: "createApiKey",
            summary: "Create an API key (its text is in this response only)",
            scope: Some("admin"),
            success: 201,
            body: Some(json!({"type": "object", "required": ["scopes"], "properties": {
                "name": {"type": "string"},
                "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["read", "write", "admin"]}},
                "expires_at": {"type": "string", "format": "date-time"},
                "allowed_ips": {"type": "array", "items": {"type": "string"}},
                "live": {"type": "boolean"}}})),
            errors: WITH_BODY,
        },
        Op {
            method: "delete",
            path: "/v1/api-keys/{id}",
            id: "revokeApiKey",
            summary: "Revoke an API key",
            scope: Some("admin"),
            success: 204,
            body: None,
            errors: &[400, 404],
        },
        Op {
            method: "post",
            path: "/v1/auth/logout",
            id: "logout",
            summary: "End the session",
            scope: None,
            success: 204,
            body: None,
            errors: &[400],
        },
    ]
}

/// The whole document for a catalog.
pub(crate) fn document(catalog: &Catalog) -> Value {
    let mut doc = rebuff::docs::openapi_components(catalog);
    let responses: Vec<String> = doc
        .pointer("/components/responses")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let error_refs = |statuses: &mut Vec<u16>| -> serde_json::Map<String, Value> {
        statuses.sort_unstable();
        statuses.dedup();
        statuses
            .iter()
            .filter(|s| responses.contains(&format!("Error{s}")))
            .map(|s| (s.to_string(), json!({"$ref": format!("#/components/responses/Error{s}")})))
            .collect()
    };
    let mut paths = serde_json::Map::new();
    for op in ops() {
        let mut statuses: Vec<u16> = AUTHED.iter().chain(op.errors).copied().collect();
        if op.body.is_some() {
            statuses.extend([400, 413, 415, 422]);
        }
        let mut responses = error_refs(&mut statuses);
        let success = if op.success == 204 {
            json!({"description": "Done; no body."})
        } else {
            json!({"description": "Success.", "content": {"application/json": {"schema": {"type": "object"}}}})
        };
        responses.insert(op.success.to_string(), success);
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "security": [{"apiKey": []}, {"session": []}],
            "responses": responses,
        });
        if let Some(scope) = op.scope {
            operation["description"] =
                json!(format!("Needs the `{scope}` scope (an `admin` key has every scope)."));
        }
        if op.path.contains("{id}") {
            operation["parameters"] =
                json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if op.id == "listProjects" {
            operation["parameters"] = json!([{"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}]);
        }
        if op.method == "post" {
            let mut params = operation["parameters"].as_array().cloned().unwrap_or_default();
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Makes a retried POST safe: the first completion is replayed for 24 hours.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255}}));
            operation["parameters"] = Value::Array(params);
        }
        if let Some(schema) = op.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let mut login_errors = vec![400, 401, 403, 405, 413, 415, 422, 429, 500, 503];
    paths.insert(
        "/v1/auth/login".into(),
        json!({"post": {
            "operationId": "login", "summary": "Sign in: sets the session cookie and returns the CSRF token",
            "security": [],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["email", "password"],
                "properties": {"email": {"type": "string", "format": "email"}, "password": {"type": "string"}}}}}},
            "responses": merged(error_refs(&mut login_errors), "200", json!({"description": "Signed in.", "content": {"application/json": {"schema": {"type": "object"}}}})),
        }}),
    );
    let mut hook_errors = vec![400, 401, 405, 413, 415, 500];
    paths.insert(
        "/v1/webhooks/incoming".into(),
        json!({"post": {
            "operationId": "incomingWebhook", "summary": "Receive an event signed with `Rebuff-Signature: t=...,v1=...`",
            "security": [],
            "parameters": [{"name": "Rebuff-Signature", "in": "header", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": merged(error_refs(&mut hook_errors), "202", json!({"description": "Accepted.", "content": {"application/json": {"schema": {"type": "object"}}}})),
        }}),
    );
    for (path, id, kind) in [
        ("/healthz", "health", "application/json"),
        ("/errors", "errorReference", "text/html"),
        ("/errors.json", "errorCatalog", "application/json"),
        ("/openapi.json", "openapi", "application/json"),
    ] {
        paths.insert(
            path.into(),
            json!({"get": {"operationId": id, "security": [], "responses": {"200": {"description": "OK.", "content": {kind: {"schema": if kind == "text/html" { json!({"type": "string"}) } else { json!({"type": "object"}) }}}}}}}),
        );
    }
    doc["paths"] = Value::Object(paths);
    doc["info"] = json!({
        "title": format!("rebuff reference API ({} profile)", catalog.name()),
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Every documented error has a real cause here. Errors follow the catalog at /errors.",
    });
    doc["components"]["securitySchemes"] = json!({
        "apiKey": {"type": "http", "scheme": "bearer", "description": "`rb_test_...` or `rb_live_...`"},
        "session": {"type": "apiKey", "in": "cookie", "name": "rebuff_session"},
    });
    doc
}

fn merged(
    mut map: serde_json::Map<String, Value>,
    status: &str,
    success: Value,
) -> serde_json::Map<String, Value> {
    map.insert(status.into(), success);
    map
}
