//! `/openapi.json`: the catalog's error components plus every operation of the API, each
//! listing the errors it can answer with, in the profile's schema and media type.

use rebuff::Catalog;
use serde_json::{Value, json};

/// One operation: method, path, summary, scope, success status and body, request body schema,
/// the error statuses it can answer with besides those every authenticated route has, and the
/// operations its success body's `id` leads to (OpenAPI links, which stateful testers follow).
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    scope: Option<&'static str>,
    success: u16,
    returns: Returns,
    body: Option<Value>,
    errors: &'static [u16],
    links: &'static [&'static str],
}

/// What a success body is: nothing, one resource, or `{"data": [...]}` of them, by the name of
/// its schema in `components/schemas`.
#[derive(Clone, Copy)]
enum Returns {
    Nothing,
    One(&'static str),
    List(&'static str),
}

/// Statuses any `/v1` route behind authentication can answer with.
const AUTHED: &[u16] = &[401, 403, 405, 408, 413, 429, 500, 503, 504];
/// Statuses of a route that takes a JSON body.
const WITH_BODY: &[u16] = &[400, 409, 415, 422];

fn ops() -> Vec<Op> {
    let name = json!({"type": "object", "required": ["name"], "properties": {"name": named(Some(100))}});
    vec![
        Op {
            method: "get",
            path: "/v1/projects",
            id: "listProjects",
            summary: "List projects",
            scope: Some("read"),
            success: 200,
            returns: Returns::List("Project"),
            body: None,
            errors: &[400],
            links: &[],
        },
        Op {
            method: "post",
            path: "/v1/projects",
            id: "createProject",
            summary: "Create a project (names are unique per organisation)",
            scope: Some("write"),
            success: 201,
            returns: Returns::One("Project"),
            body: Some(name),
            errors: WITH_BODY,
            links: &["getProject", "deleteProject", "createDataset"],
        },
        Op {
            method: "get",
            path: "/v1/projects/{id}",
            id: "getProject",
            summary: "Get a project",
            scope: Some("read"),
            success: 200,
            returns: Returns::One("Project"),
            body: None,
            errors: &[400, 404],
            links: &[],
        },
        Op {
            method: "delete",
            path: "/v1/projects/{id}",
            id: "deleteProject",
            summary: "Delete a project",
            scope: Some("write"),
            success: 204,
            returns: Returns::Nothing,
            body: None,
            errors: &[400, 404],
            links: &[],
        },
        Op {
            method: "post",
            path: "/v1/datasets",
            id: "createDataset",
            summary: "Create a dataset",
            scope: Some("write"),
            success: 201,
            returns: Returns::One("Dataset"),
            body: Some(
                json!({"type": "object", "required": ["project_id", "name", "format"], "properties": {
                "project_id": id_schema("prj"), "name": named(None),
                "format": {"type": "string", "enum": ["csv", "parquet"]},
                "rows": {"type": "integer", "minimum": 0, "maximum": i64::MAX}}}),
            ),
            errors: &[400, 404, 409, 415, 422],
            links: &["getDataset"],
        },
        Op {
            method: "get",
            path: "/v1/datasets/{id}",
            id: "getDataset",
            summary: "Get a dataset",
            scope: Some("read"),
            success: 200,
            returns: Returns::One("Dataset"),
            body: None,
            errors: &[400, 404],
            links: &[],
        },
        Op {
            method: "post",
            path: "/v1/models",
            id: "createModel",
            summary: "Create a model (status `created`)",
            scope: Some("write"),
            success: 201,
            returns: Returns::One("Model"),
            body: Some(
                json!({"type": "object", "required": ["name", "model_type", "config"], "properties": {
                "name": named(None),
                "model_type": {"type": "string", "enum": ["ctgan", "copulagan", "tvae", "gaussian_copula"]},
                "config": {"type": "object", "required": ["batch_size"], "properties": {
                    "batch_size": {"type": "integer", "exclusiveMinimum": 0, "maximum": i64::MAX},
                    "epochs": {"type": ["integer", "null"], "minimum": 1, "maximum": 10000},
                    "simulate_failure": {"type": "boolean"}}}}}),
            ),
            errors: WITH_BODY,
            links: &["getModel", "trainModel", "generate"],
        },
        Op {
            method: "get",
            path: "/v1/models/{id}",
            id: "getModel",
            summary: "Get a model",
            scope: Some("read"),
            success: 200,
            returns: Returns::One("Model"),
            body: None,
            errors: &[400, 404],
            links: &[],
        },
        Op {
            method: "post",
            path: "/v1/models/{id}/train",
            id: "trainModel",
            summary: "Start training (created or failed -> training -> ready | failed)",
            scope: Some("write"),
            success: 202,
            returns: Returns::One("Model"),
            body: None,
            errors: &[400, 404, 409],
            links: &[],
        },
        Op {
            method: "post",
            path: "/v1/models/{id}/generate",
            id: "generate",
            summary: "Generate rows from a ready model (counts against the monthly row quota)",
            scope: Some("write"),
            success: 202,
            returns: Returns::One("Job"),
            body: Some(
                json!({"type": "object", "required": ["n_samples"], "properties": {"n_samples": {"type": "integer", "minimum": 1, "maximum": 1_000_000}}}),
            ),
            errors: &[400, 402, 404, 409, 415, 422],
            links: &["getJob", "getJobOutput"],
        },
        Op {
            method: "get",
            path: "/v1/jobs/{id}",
            id: "getJob",
            summary: "Get a generation job",
            scope: Some("read"),
            success: 200,
            returns: Returns::One("Job"),
            body: None,
            errors: &[400, 404],
            links: &[],
        },
        Op {
            method: "get",
            path: "/v1/jobs/{id}/output",
            id: "getJobOutput",
            summary: "Get a job's output (409 until it is done)",
            scope: Some("read"),
            success: 200,
            returns: Returns::One("JobOutput"),
            body: None,
            errors: &[400, 404, 409],
            links: &[],
        },
        Op {
            method: "get",
            path: "/v1/api-keys",
            id: "listApiKeys",
            summary: "List API keys (secrets are never shown again)",
            scope: Some("admin"),
            success: 200,
            returns: Returns::List("ApiKey"),
            body: None,
            errors: &[],
            links: &[],
        },
        Op {
            method: "post",
            path: "/v1/api-keys",
            id: "createApiKey",
            summary: "Create an API key (its text is in this response only)",
            scope: Some("admin"),
            success: 201,
            returns: Returns::One("NewApiKey"),
            body: Some(json!({"type": "object", "required": ["scopes"], "properties": {
                "name": {"type": ["string", "null"]},
                "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["read", "write", "admin"]}},
                "expires_at": {"type": ["string", "null"], "format": "date-time",
                    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"},
                "allowed_ips": {"type": "array", "items": {"type": "string"}},
                "live": {"type": "boolean"}}})),
            errors: WITH_BODY,
            links: &["revokeApiKey"],
        },
        Op {
            method: "delete",
            path: "/v1/api-keys/{id}",
            id: "revokeApiKey",
            summary: "Revoke an API key",
            scope: Some("admin"),
            success: 204,
            returns: Returns::Nothing,
            body: None,
            errors: &[400, 404],
            links: &[],
        },
        Op {
            method: "post",
            path: "/v1/auth/logout",
            id: "logout",
            summary: "End the session (a browser session only: an API key is answered with 400)",
            scope: None,
            success: 204,
            returns: Returns::Nothing,
            body: None,
            errors: &[400],
            links: &[],
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
        if op.method == "post" {
            // The Idempotency-Key header: malformed (400), the same key still running (409),
            // or reused with another payload (422).
            statuses.extend([400, 409, 422]);
        }
        let mut responses = error_refs(&mut statuses);
        let mut success = match op.returns {
            Returns::Nothing => json!({"description": "Done; no body."}),
            Returns::One(name) => json!({"description": "Success.",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}),
            Returns::List(name) => json!({"description": "Success.",
                "content": {"application/json": {"schema": {"type": "object", "required": ["data"],
                    "properties": {"data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}}}}}}}),
        };
        if !op.links.is_empty() {
            let links: serde_json::Map<String, Value> = op
                .links
                .iter()
                .map(|&to| {
                    let link = if to == "createDataset" {
                        // A dataset is created in a project: the id goes into the body.
                        json!({"operationId": to, "requestBody":
                            {"project_id": "$response.body#/id", "name": "data", "format": "csv", "rows": 10}})
                    } else {
                        json!({"operationId": to, "parameters": {"id": "$response.body#/id"}})
                    };
                    (to.to_owned(), link)
                })
                .collect();
            success["links"] = Value::Object(links);
        }
        responses.insert(op.success.to_string(), success);
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "security": if op.id == "logout" { json!([{"session": []}]) } else { json!([{"apiKey": []}, {"session": []}]) },
            "responses": responses,
        });
        if let Some(scope) = op.scope {
            operation["description"] =
                json!(format!("Needs the `{scope}` scope (an `admin` key has every scope)."));
        }
        if op.path.contains("{id}") {
            let schema = match op.path.split('/').nth(2) {
                Some("projects") => id_schema("prj"),
                Some("datasets") => id_schema("dst"),
                Some("models") => id_schema("mdl"),
                Some("jobs") => id_schema("job"),
                // An API key's public id: 12 letters or digits.
                _ => {
                    json!({"type": "string", "minLength": 12, "maxLength": 12, "pattern": "^[A-Za-z0-9]{12}"})
                }
            };
            operation["parameters"] =
                json!([{"name": "id", "in": "path", "required": true, "schema": schema}]);
        }
        if op.id == "listProjects" {
            operation["parameters"] = json!([{"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}]);
        }
        if op.method == "post" {
            let mut params = operation["parameters"].as_array().cloned().unwrap_or_default();
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Makes a retried POST safe: the first completion is replayed for 24 hours.",
                "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"}}));
            operation["parameters"] = Value::Array(params);
        }
        if let Some(schema) = op.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let mut login_errors = vec![400, 401, 403, 405, 408, 413, 415, 422, 429, 500, 503, 504];
    paths.insert(
        "/v1/auth/login".into(),
        json!({"post": {
            "operationId": "login", "summary": "Sign in: sets the session cookie and returns the CSRF token",
            "security": [],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["email", "password"],
                "properties": {"email": {"type": "string", "format": "email", "maxLength": 254}, "password": {"type": "string", "minLength": 1}}}}}},
            "responses": merged(error_refs(&mut login_errors), "200", json!({"description": "Signed in.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["user", "csrf_token", "expires_in"], "properties": {
                    "user": {"type": "object", "required": ["id", "email", "org_id"], "properties": {
                        "id": {"type": "string"}, "email": {"type": "string"}, "org_id": {"type": "string"}}},
                    "csrf_token": {"type": "string"}, "expires_in": {"type": "integer", "minimum": 0}}}}}})),
        }}),
    );
    let mut hook_errors = vec![400, 401, 405, 408, 413, 415, 500, 504];
    paths.insert(
        "/v1/webhooks/incoming".into(),
        json!({"post": {
            "operationId": "incomingWebhook", "summary": "Receive an event signed with `Rebuff-Signature: t=...,v1=...`",
            "security": [],
            "parameters": [{"name": "Rebuff-Signature", "in": "header", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": merged(error_refs(&mut hook_errors), "202", json!({"description": "Accepted.", "content": {"application/json": {"schema": {
                "type": "object", "required": ["received", "type"],
                "properties": {"received": {"type": "boolean"}, "type": {"type": "string"}}}}}})),
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
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(resource_schemas());
    }
    doc["components"]["securitySchemes"] = json!({
        "apiKey": {"type": "http", "scheme": "bearer", "description": "`rb_test_...` or `rb_live_...`"},
        "session": {"type": "apiKey", "in": "cookie", "name": "rebuff_session"},
    });
    doc
}

/// The success bodies, as `crate::db` and the key routes serialize them.
fn resource_schemas() -> serde_json::Map<String, Value> {
    let time = json!({"type": "integer", "description": "Unix seconds."});
    let maybe_time = json!({"type": ["integer", "null"], "description": "Unix seconds."});
    let text = json!({"type": "string"});
    let object = |required: &[&str], properties: Value| json!({"type": "object", "required": required, "properties": properties});
    let key_members = json!({
        "id": text, "name": text, "prefix": text,
        "scopes": {"type": "array", "items": {"type": "string", "enum": ["read", "write", "admin"]}},
        "expires_at": maybe_time, "revoked_at": maybe_time,
        "allowed_ips": {"type": "array", "items": text},
        "live": {"type": "boolean"}, "created_at": time, "last_used_at": maybe_time,
    });
    let key_required = [
        "id",
        "name",
        "prefix",
        "scopes",
        "expires_at",
        "revoked_at",
        "allowed_ips",
        "live",
        "created_at",
        "last_used_at",
    ];
    let mut new_key_members = key_members.clone();
    new_key_members["key"] = json!({"type": "string", "description": "The key's text, shown only here."});
    let mut new_key_required = key_required.to_vec();
    new_key_required.push("key");
    [
        ("Project", object(&["id", "name", "created_at"], json!({"id": id_schema("prj"), "name": text, "created_at": time}))),
        (
            "Dataset",
            object(
                &["id", "project_id", "name", "format", "rows", "created_at"],
                json!({"id": id_schema("dst"), "project_id": id_schema("prj"), "name": text,
                    "format": {"type": "string", "enum": ["csv", "parquet"]}, "rows": {"type": "integer", "minimum": 0},
                    "created_at": time}),
            ),
        ),
        (
            "Model",
            object(
                &["id", "name", "model_type", "config", "status", "created_at"],
                json!({"id": id_schema("mdl"), "name": text, "model_type": text, "config": {"type": "object"},
                    "status": {"type": "string", "enum": ["created", "training", "ready", "failed"]},
                    "error": text, "created_at": time}),
            ),
        ),
        (
            "Job",
            object(
                &["id", "model_id", "n_samples", "status", "created_at"],
                json!({"id": id_schema("job"), "model_id": id_schema("mdl"), "n_samples": {"type": "integer", "minimum": 1},
                    "status": {"type": "string", "enum": ["running", "done"]}, "created_at": time}),
            ),
        ),
        (
            "JobOutput",
            object(
                &["job_id", "n_samples", "preview"],
                json!({"job_id": id_schema("job"), "n_samples": {"type": "integer", "minimum": 1},
                    "preview": {"type": "array", "items": {"type": "object"}}}),
            ),
        ),
        ("ApiKey", object(&key_required, key_members)),
        ("NewApiKey", object(&new_key_required, new_key_members)),
    ]
    .into_iter()
    .map(|(name, schema)| (name.to_owned(), schema))
    .collect()
}

/// A path or body id made by the server: `prefix_` and 12 lowercase hex digits. The length
/// bounds anchor the end, since `$` also matches before a final newline in some regex dialects.
fn id_schema(prefix: &str) -> Value {
    let len = prefix.len() + 13;
    json!({"type": "string", "minLength": len, "maxLength": len, "pattern": format!("^{prefix}_[0-9a-f]{{12}}")})
}

/// A name: not blank, i.e. with at least one character that is not whitespace in Rust's sense
/// (what `str::trim` removes), listed one by one so that every regex dialect reads it alike.
fn named(max: Option<u64>) -> Value {
    let blank: String = ('\0'..='\u{3000}').filter(|c| c.is_whitespace()).collect();
    let mut schema = json!({"type": "string", "minLength": 1, "pattern": format!("[^{blank}]")});
    if let Some(max) = max {
        schema["maxLength"] = json!(max);
    }
    schema
}

fn merged(
    mut map: serde_json::Map<String, Value>,
    status: &str,
    success: Value,
) -> serde_json::Map<String, Value> {
    map.insert(status.into(), success);
    map
}
