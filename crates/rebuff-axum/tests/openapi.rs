//! `ErrorDocs` on a document derived with utoipa: components for every profile, error
//! responses and headers per operation, every reference resolving.
#![cfg(feature = "utoipa")]

use rebuff::Catalog;
use rebuff_axum::openapi::ErrorDocs;
use serde_json::Value;
use utoipa::OpenApi;

/// A widget.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Widget {
    /// Its id.
    #[schema(max_length = 20)]
    id: String,
}

/// Get a widget.
#[utoipa::path(get, path = "/widgets/{id}", security(("key" = [])), responses(
    (status = 200, description = "The widget.", body = Widget),
    (status = 404, description = "No widget has this id."),
    (status = 418, description = "Not a catalog status: left as it is."),
))]
#[expect(dead_code, reason = "only described here, never served")]
async fn get_widget() {}

/// Make a widget.
#[utoipa::path(post, path = "/widgets", security(("key" = [])), responses((status = 201, description = "Made.")))]
#[expect(dead_code, reason = "only described here, never served")]
async fn make_widget() {}

/// Service health.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, description = "Up.")))]
#[expect(dead_code, reason = "only described here, never served")]
async fn health() {}

#[derive(OpenApi)]
#[openapi(paths(get_widget, make_widget, health))]
struct Api;

fn documented(catalog: &Catalog) -> Value {
    let mut api = Api::openapi();
    ErrorDocs::new(catalog)
        .every_operation([405, 500])
        .operations_where(|r| r.is_authenticated(), [401, 403])
        .rate_limited_where(|r| r.is_authenticated())
        .idempotent_where(|r| r.is_authenticated())
        .apply(&mut api);
    serde_json::to_value(&api).expect("serializes")
}

/// Resolves every `$ref` of the document, which must all point inside it.
fn refs<'a>(doc: &'a Value, at: &'a Value, found: &mut Vec<String>) {
    match at {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external ref {r}"));
                assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                found.push(r.clone());
            }
            m.values().for_each(|v| refs(doc, v, found));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(doc, v, found)),
        _ => {}
    }
}

#[test]
fn every_profile_adds_its_envelope_examples_and_responses_to_a_utoipa_document() {
    for profile in Catalog::PROFILES {
        let catalog = Catalog::builtin(profile).expect("built in");
        let ours = rebuff::docs::openapi_components(catalog);
        let doc = documented(catalog);
        // The envelope and examples are exactly the catalog's, through utoipa's types.
        assert_eq!(
            doc["components"]["schemas"]["Error"], ours["components"]["schemas"]["Error"],
            "{profile}"
        );
        assert_eq!(doc["components"]["examples"], ours["components"]["examples"], "{profile}");
        // The service's own schema is still there.
        assert!(doc["components"]["schemas"]["Widget"].is_object(), "{profile}");
        let media = catalog.dialect().content_type();
        for e in catalog.entries() {
            let response = &doc["components"]["responses"][format!("Error{}", e.status.as_u16())];
            let example = &response["content"][media]["examples"][&e.code]["$ref"];
            assert_eq!(example, &format!("#/components/examples/{}", e.code), "{profile}/{}", e.code);
        }
        let mut found = Vec::new();
        refs(&doc, &doc, &mut found);
        assert!(found.len() > catalog.entries().len(), "{profile}: {} refs", found.len());
    }
}

#[test]
fn operations_get_the_statuses_of_their_layers_and_keep_their_own_words() {
    let doc = documented(Catalog::standard());
    let get = &doc["paths"]["/widgets/{id}"]["get"]["responses"];
    assert_eq!(get["404"]["$ref"], "#/components/responses/Error404");
    assert_eq!(get["404"]["description"], "No widget has this id.");
    assert!(get["418"]["$ref"].is_null(), "{}", get["418"]);
    for status in ["401", "403", "405", "429", "500"] {
        assert_eq!(get[status]["$ref"], format!("#/components/responses/Error{status}"), "{status}");
    }
    // The success response carries the request id and the rate limit's headers.
    let headers = get["200"]["headers"].as_object().expect("headers");
    for name in [
        "X-Request-Id",
        "RateLimit",
        "RateLimit-Policy",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    ] {
        assert_eq!(headers[name]["$ref"], format!("#/components/headers/{name}"), "{name}");
    }

    // An operation without credentials is neither authenticated nor rate limited.
    let health = &doc["paths"]["/healthz"]["get"]["responses"];
    assert!(health.get("401").is_none() && health.get("429").is_none(), "{health}");
    assert_eq!(health["405"]["$ref"], "#/components/responses/Error405");
    let headers = health["200"]["headers"].as_object().expect("headers");
    assert!(headers.contains_key("X-Request-Id") && !headers.contains_key("RateLimit"), "{headers:?}");
}

#[test]
fn idempotent_posts_take_the_key_and_answer_its_errors() {
    let doc = documented(Catalog::standard());
    let post = &doc["paths"]["/widgets"]["post"];
    let key = post["parameters"].as_array().and_then(|p| p.iter().find(|p| p["name"] == "Idempotency-Key"));
    let key = key.expect("Idempotency-Key declared");
    assert_eq!((key["in"].as_str(), key["required"].as_bool()), (Some("header"), Some(false)));
    assert_eq!(key["schema"]["maxLength"], 255);
    for status in ["400", "409", "422"] {
        assert_eq!(post["responses"][status]["$ref"], format!("#/components/responses/Error{status}"));
    }
    // A GET takes no idempotency key, even where the filter picks it.
    let get = &doc["paths"]["/widgets/{id}"]["get"];
    assert!(get["parameters"].as_array().is_none_or(|p| p.iter().all(|p| p["name"] != "Idempotency-Key")));
    assert!(get["responses"].get("409").is_none());
}

#[test]
fn error_responses_declare_the_headers_the_layers_send() {
    let doc = documented(Catalog::standard());
    let responses = &doc["components"]["responses"];
    let has = |status: u16, name: &str| responses[format!("Error{status}")]["headers"].get(name).is_some();
    assert!(has(401, "WWW-Authenticate") && has(403, "WWW-Authenticate"));
    assert!(has(405, "Allow") && !has(404, "Allow"));
    assert!(has(429, "Retry-After") && has(429, "RateLimit") && has(503, "Retry-After"));
    assert!(has(404, "X-RateLimit-Limit") && !has(500, "RateLimit"));
    for status in [400, 401, 404, 405, 429, 500, 503] {
        assert!(has(status, "X-Request-Id"), "{status}");
    }
    // Every header is bounded: a string by its length, an integer by its range.
    for (name, header) in doc["components"]["headers"].as_object().expect("headers") {
        let schema = &header["schema"];
        match schema["type"].as_str() {
            Some("string") => {
                assert!(schema["maxLength"].is_u64() && schema["pattern"].is_string(), "{name}")
            }
            Some("integer") => assert!(schema["minimum"].is_u64() && schema["maximum"].is_u64(), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn without_a_rate_limit_no_rate_limit_header_is_declared() {
    let mut api = Api::openapi();
    ErrorDocs::new(Catalog::standard()).every_operation([500]).apply(&mut api);
    let doc = serde_json::to_value(&api).expect("serializes");
    assert!(doc["components"]["headers"].get("RateLimit").is_none());
    assert!(doc["components"]["responses"]["Error429"]["headers"].get("RateLimit").is_none());
    assert!(doc["paths"]["/widgets/{id}"]["get"]["responses"].get("429").is_none());
}
