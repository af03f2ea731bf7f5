//! `/openapi.json`, derived from the routes themselves: each handler's `#[utoipa::path]` and
//! the `ToSchema` derives of its request and response types give the operations and schemas
//! (`crate::app` registers every handler with `utoipa_axum::routes!`), and
//! [`rebuff_axum::openapi::ErrorDocs`] adds the catalog's errors, examples and headers for the
//! layers in front of each route, as any service over rebuff would.

use rebuff::Catalog;
use rebuff_axum::openapi::ErrorDocs;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Statuses any route can answer with: a method it lacks, a panic, the request timeout.
const EVERY: [u16; 3] = [405, 500, 504];
/// Statuses of a route that reads a JSON body: malformed, too slow, too large, not JSON, not
/// valid.
const WITH_BODY: [u16; 5] = [400, 408, 413, 415, 422];
/// Statuses of a route behind credentials: none or bad, forbidden (scope, IP), the key store
/// unavailable.
const AUTHED: [u16; 3] = [401, 403, 503];

/// The operations a created resource's `id` leads to (OpenAPI links, which stateful testers
/// follow), by operation id.
const LINKS: &[(&str, &[&str])] = &[
    ("createProject", &["getProject", "deleteProject", "createDataset"]),
    ("createDataset", &["getDataset"]),
    ("createModel", &["getModel", "trainModel", "generate"]),
    ("generate", &["getJob", "getJobOutput"]),
    ("createApiKey", &["revokeApiKey"]),
];

/// The whole document for the routes `api` describes, in `catalog`'s profile.
pub(crate) fn document(mut api: OpenApi, catalog: &Catalog) -> String {
    api.info.title = format!("rebuff reference API ({} profile)", catalog.name());
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api.info.description = Some(
        "Every documented error has a real cause here. Errors follow the catalog at /errors.".to_owned(),
    );
    api.info.license = None;
    api.info.contact = None;
    let components = api.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        "apiKey".to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("`rb_test_...` or `rb_live_...`"))
                .build(),
        )
        .into(),
    );
    components.security_schemes.insert(
        "session".to_owned(),
        SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
            utoipa::openapi::security::ApiKeyValue::new(rebuff_axum::auth::SESSION_COOKIE),
        ))
        .into(),
    );
    ErrorDocs::new(catalog)
        .every_operation(EVERY)
        .operations_where(|r| r.operation.request_body.is_some(), WITH_BODY)
        .operations_where(|r| r.is_authenticated(), AUTHED)
        // Sign-in checks the accounts store, and has its own limits per address and email.
        .operations_where(|r| r.operation_id() == Some("login"), [503])
        .rate_limited_where(|r| r.is_authenticated() || r.operation_id() == Some("login"))
        // The idempotency layer sits inside the authenticated stack.
        .idempotent_where(|r| r.is_authenticated())
        .apply(&mut api);
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    path_parameters_required(&mut doc);
    add_links(&mut doc);
    doc.to_string()
}

/// Marks every path parameter required, as OpenAPI demands: utoipa's `IntoParams` derive
/// leaves `required` false on a field whose schema comes from `schema_with`, even when told.
fn path_parameters_required(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
        let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else { continue };
        for p in params.iter_mut().filter(|p| p["in"] == "path") {
            p["required"] = Value::Bool(true);
        }
    }
}

/// Adds [`LINKS`] to the success response of each operation that creates something.
fn add_links(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for op in item.values_mut() {
            let id = op.get("operationId").and_then(Value::as_str).unwrap_or_default().to_owned();
            let Some((_, targets)) = LINKS.iter().find(|(from, _)| *from == id) else { continue };
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            let Some(success) = responses.iter_mut().find(|(s, _)| s.starts_with('2')).map(|(_, r)| r) else {
                continue;
            };
            let links: serde_json::Map<String, Value> = targets
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
    }
}

#[cfg(test)]
mod tests {
    use utoipa::{IntoParams, PartialSchema};

    use crate::db::Project;
    use crate::limits::LIST_LIMIT_MAX;
    use crate::routes::{Page, Paging};

    /// utoipa's attributes take literals only: the bounds written there must be the constants.
    #[test]
    fn literal_bounds_in_attributes_are_the_constants() {
        let list = serde_json::to_value(Page::<Project>::schema()).unwrap_or_default();
        assert_eq!(list["properties"]["data"]["maxItems"], LIST_LIMIT_MAX);
        let params = Paging::into_params(|| None);
        let limit = serde_json::to_value(&params[0]).unwrap_or_default();
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["maximum"], LIST_LIMIT_MAX);
        assert_eq!(limit["schema"]["minimum"], 1);
    }
}
