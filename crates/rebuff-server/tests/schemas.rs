//! Every profile's error bodies validate against the schemas its `/openapi.json` declares, and
//! the problem+json profiles' also against RFC 9457's own (Appendix A): for every code of the
//! catalog, rendered with and without the optional members, and for errors the live server
//! answers.

mod support;

use jsonschema::{Draft, Validator};
use rebuff::{Catalog, FieldError, Location, Problem};
use serde_json::{Value, json};
use support::{Opts, answer, start};

/// RFC 9457, Appendix A: the JSON Schema of a problem details object.
fn rfc9457() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "An RFC 9457 problem object",
        "type": "object",
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 100, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string", "format": "uri-reference"}
        }
    })
}

fn validator(schema: &Value) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"))
}

/// The schema an `/openapi.json` declares for error bodies, with its components so that its
/// `$ref`s resolve.
fn declared(openapi: &Value) -> Validator {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/schemas/Error",
        "components": {"schemas": openapi["components"]["schemas"].clone()},
    });
    validator(&schema)
}

fn check(what: &str, body: &Value, schemas: &[(&str, &Validator)]) {
    for (name, v) in schemas {
        let errors: Vec<String> =
            v.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{what}: not valid against {name}: {errors:?}\n{body}");
    }
}

/// Each code several ways: bare, with every optional member, and with field errors in each
/// location (validation codes carry them; the envelope must hold them whatever the code).
fn occurrences(code: &str) -> Vec<(&'static str, Problem)> {
    let full = Problem::dynamic(code)
        .detail("Something specific to this request (with \"quotes\", <tags> and ünïcödé).")
        .request_id("req_abcdefghijklmnopqrstuvwx")
        .instance("/v1/projects/prj_0123456789ab")
        .param("config.batch_size")
        .retry_after(7);
    let fields = Problem::dynamic(code)
        .detail("2 fields are invalid.")
        .request_id("req_abcdefghijklmnopqrstuvwx")
        .field(FieldError::body("/config/batch_size", "type", "expected an integer"))
        .field(FieldError::new(Location::Query, "/limit", "range", "must be between 1 and 100"))
        .field(FieldError::new(Location::Path, "/id", "format", "not a model ID"))
        .field(FieldError::new(Location::Header, "/idempotency-key", "format", "too long"))
        .field(FieldError::body("", "type", "expected an object"));
    vec![("bare", Problem::dynamic(code)), ("full", full), ("fields", fields)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profiles_error_bodies_match_their_declared_schemas_for_every_code() {
    let appendix_a = validator(&rfc9457());
    let mut checked = 0;
    for profile in Catalog::PROFILES {
        let s = start(profile, Opts { users: false, ..Opts::default() }).await;
        let openapi: Value =
            serde_json::from_slice(&answer(s.http.get(s.url("/openapi.json"))).await.body).expect("json");
        let own = declared(&openapi);
        let media_type = s.catalog.dialect().content_type();
        let problem_json = media_type == "application/problem+json";
        // The schemas do reject: every envelope has required members.
        assert!(!own.is_valid(&json!({"unrelated": true})), "{profile}: the Error schema accepts anything");
        assert!(!appendix_a.is_valid(&json!({"status": "500", "type": 1})));
        let mut schemas = vec![("its /openapi.json Error schema", &own)];
        if problem_json {
            schemas.push(("RFC 9457 Appendix A", &appendix_a));
        }
        // Each status's response in /openapi.json names the media type that is sent.
        for e in s.catalog.entries() {
            let response = &openapi["components"]["responses"][format!("Error{}", e.status.as_u16())];
            assert!(response["content"].get(media_type).is_some(), "{profile}: {} media type", e.code);
        }

        for e in s.catalog.entries() {
            for (variant, problem) in occurrences(&e.code) {
                let res = s.catalog.render(&problem).expect("renders");
                assert_eq!(res.headers()["content-type"], media_type, "{profile}/{}", e.code);
                let body: Value = serde_json::from_slice(res.body()).expect("JSON body");
                check(&format!("{profile}/{}/{variant}", e.code), &body, &schemas);
                checked += 1;
            }
        }

        // And what the server itself sends, from its layers and handlers.
        let project = format!("/v1/projects/{}", "prj_000000000000");
        let live = [
            ("no credentials", s.http.get(s.url("/v1/projects"))),
            ("revoked key", s.get("/v1/projects", &s.revoked)),
            ("missing scope", s.post_json("/v1/projects", &s.reader, json!({"name": "x"}))),
            ("unknown route", s.get("/v1/nothing", &s.admin)),
            ("wrong method", s.http.put(s.url("/v1/projects")).bearer_auth(&s.admin)),
            ("not found", s.get(&project, &s.admin)),
            ("bad id", s.get("/v1/projects/nope", &s.admin)),
            ("bad query", s.get("/v1/projects?limit=0", &s.admin)),
            (
                "bad JSON",
                s.http
                    .post(s.url("/v1/projects"))
                    .bearer_auth(&s.admin)
                    .header("content-type", "application/json")
                    .body("{\"name\": "),
            ),
            ("no content type", s.http.post(s.url("/v1/projects")).bearer_auth(&s.admin).body("{}")),
            ("wrong type", s.post_json("/v1/projects", &s.admin, json!({"name": 5}))),
            ("missing field", s.post_json("/v1/projects", &s.admin, json!({}))),
            (
                "several invalid fields",
                s.post_json(
                    "/v1/models",
                    &s.admin,
                    json!({"name": " ", "model_type": "x", "config": {"batch_size": 0}}),
                ),
            ),
            (
                "too large",
                s.http
                    .post(s.url("/v1/projects"))
                    .bearer_auth(&s.admin)
                    .header("content-type", "application/json")
                    .body(vec![b' '; 65 * 1024]),
            ),
            (
                "bad idempotency key",
                s.post_json("/v1/projects", &s.admin, json!({"name": "y"})).header("idempotency-key", "a b"),
            ),
            ("bad signature", s.http.post(s.url("/v1/webhooks/incoming")).json(&json!({}))),
            ("database failure", s.http.get(s.url("/v1/_fault/database"))),
            ("panic", s.http.get(s.url("/v1/_fault/panic"))),
        ];
        for (what, req) in live {
            let a = answer(req).await;
            assert!(a.status >= 400, "{profile}: {what}: {}", a.status);
            assert_eq!(a.headers["content-type"], media_type, "{profile}: {what}");
            let body: Value = serde_json::from_slice(&a.body).expect("JSON body");
            check(&format!("{profile}: {what} ({})", a.status), &body, &schemas);
            checked += 1;
        }
    }
    assert!(checked > 6 * 44 * 3, "{checked} bodies checked");
}
