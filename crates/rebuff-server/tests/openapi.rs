//! `/openapi.json` is derived from the routes: every operation served is described, the bounds
//! it declares are the ones the handlers enforce, and the headers it declares are the ones
//! the responses carry.

mod support;

use serde_json::{Value, json};
use support::{Opts, answer, start};

async fn document(s: &support::Server) -> Value {
    serde_json::from_slice(&answer(s.http.get(s.url("/openapi.json"))).await.body).expect("json")
}

/// The schema a `$ref` names, or the schema itself.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).expect("ref resolves"),
        None => schema,
    }
}

fn request_schema<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    resolve(doc, &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_described_with_its_operation_id() {
    let s = start("rebuff", Opts::default()).await;
    let doc = document(&s).await;
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    ids.sort_unstable();
    let expected = [
        "createApiKey",
        "createDataset",
        "createModel",
        "createProject",
        "deleteProject",
        "errorCatalog",
        "errorReference",
        "generate",
        "getDataset",
        "getJob",
        "getJobOutput",
        "getModel",
        "getProject",
        "health",
        "incomingWebhook",
        "listApiKeys",
        "listProjects",
        "login",
        "logout",
        "openapi",
        "revokeApiKey",
        "trainModel",
    ];
    assert_eq!(ids, expected);
    // The test-only fault routes are served but not described.
    assert!(doc["paths"].get("/v1/_fault/panic").is_none());
    assert_eq!(answer(s.http.get(s.url("/v1/_fault/panic"))).await.status, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_bounds_are_the_enforced_ones() {
    let s = start("rebuff", Opts::default()).await;
    let doc = document(&s).await;
    let name = &request_schema(&doc, "/v1/projects", "post")["properties"]["name"];
    let max = name["maxLength"].as_u64().expect("maxLength") as usize;
    assert_eq!(max, 100);
    let at_max = "n".repeat(max);
    let over = "n".repeat(max + 1);
    let create = |name: &str| s.post_json("/v1/projects", &s.admin, json!({ "name": name }));
    assert_eq!(answer(create(&at_max)).await.status, 201);
    assert_eq!(answer(create(&over)).await.status, 422);
    // The pattern refuses control characters, and so does the handler, for every name.
    let pattern = regex_lite(name["pattern"].as_str().expect("pattern"));
    for bad in ["a\u{0}b", "tab\there", "esc\u{1b}[31m", "c1\u{85}"] {
        assert!(!pattern(bad), "{bad:?} matches the declared pattern");
        assert_eq!(answer(create(bad)).await.status, 422, "{bad:?}");
        let model = json!({"name": bad, "model_type": "ctgan", "config": {"batch_size": 1}});
        assert_eq!(answer(s.post_json("/v1/models", &s.admin, model)).await.status, 422, "{bad:?}");
    }
    assert!(pattern("ünïcödé name"));

    let key = request_schema(&doc, "/v1/api-keys", "post");
    let scopes = &key["properties"]["scopes"];
    assert_eq!((scopes["maxItems"].as_u64(), scopes["uniqueItems"].as_bool()), (Some(3), Some(true)));
    let ips = &key["properties"]["allowed_ips"];
    assert_eq!((ips["maxItems"].as_u64(), ips["items"]["maxLength"].as_u64()), (Some(32), Some(49)));
    let new_key = |body: Value| s.post_json("/v1/api-keys", &s.admin, body);
    assert_eq!(answer(new_key(json!({"scopes": ["read", "read"]}))).await.status, 422);
    let many: Vec<String> = (0..33).map(|i| format!("10.0.{i}.0/24")).collect();
    assert_eq!(answer(new_key(json!({"scopes": ["read"], "allowed_ips": many}))).await.status, 422);
    assert_eq!(answer(new_key(json!({"scopes": ["read"], "allowed_ips": many[..32]}))).await.status, 201);
    assert_eq!(answer(new_key(json!({"scopes": ["read"], "name": "k".repeat(1001)}))).await.status, 422);

    let login = request_schema(&doc, "/v1/auth/login", "post");
    assert_eq!(login["properties"]["password"]["maxLength"], 1024);
    let body = json!({"email": "a@example.com", "password": "p".repeat(1025)});
    assert_eq!(answer(s.http.post(s.url("/v1/auth/login")).json(&body)).await.status, 422);

    let limit = doc["paths"]["/v1/projects"]["get"]["parameters"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "limit"))
        .expect("limit parameter");
    assert_eq!(
        (limit["schema"]["minimum"].as_u64(), limit["schema"]["maximum"].as_u64()),
        (Some(1), Some(100))
    );
    assert_eq!(answer(s.get("/v1/projects?limit=100", &s.admin)).await.status, 200);
    assert_eq!(answer(s.get("/v1/projects?limit=101", &s.admin)).await.status, 400);
}

/// A matcher for the subset of regex syntax the name pattern uses (`^`, `$`, character
/// classes with ranges, `*`): enough to check the declared pattern itself, not a copy.
fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
    // ^[^C]*[^B][^C]*$ : no character of C anywhere, at least one character outside B.
    let body = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("anchored");
    let classes: Vec<String> =
        body.split("[^").skip(1).map(|c| c.trim_end_matches('*').trim_end_matches(']').to_owned()).collect();
    assert_eq!(classes.len(), 3, "{pattern}");
    let (control, blank) = (classes[0].clone(), classes[1].clone());
    move |s: &str| !s.chars().any(|c| control.contains(c)) && s.chars().any(|c| !blank.contains(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_headers_are_the_ones_sent() {
    let s = start("rebuff", Opts::default()).await;
    let doc = document(&s).await;
    let declared = |path: &str, method: &str, status: &str| -> Vec<String> {
        let response = resolve(&doc, &doc["paths"][path][method]["responses"][status]);
        response["headers"]
            .as_object()
            .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default()
    };
    let rate_limit =
        ["ratelimit", "ratelimit-policy", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];
    let cases = [
        ("/v1/projects", "get", s.get("/v1/projects", &s.admin), 200, &rate_limit[..]),
        ("/v1/projects/{id}", "get", s.get("/v1/projects/prj_000000000000", &s.admin), 404, &rate_limit[..]),
        ("/v1/projects", "get", s.http.get(s.url("/v1/projects")), 401, &["www-authenticate"][..]),
        ("/v1/projects", "get", s.http.patch(s.url("/v1/projects")), 405, &["allow"][..]),
        ("/healthz", "get", s.http.get(s.url("/healthz")), 200, &[][..]),
    ];
    for (path, method, req, status, specific) in cases {
        let a = answer(req).await;
        assert_eq!(a.status, status, "{path}");
        let names = declared(path, method, &status.to_string());
        for name in specific.iter().chain(&["x-request-id"]) {
            assert!(a.headers.contains_key(*name), "{path} {status}: {name} not sent");
            assert!(
                names.iter().any(|n| n == name),
                "{path} {status}: {name} sent but not declared: {names:?}"
            );
        }
    }
    // Unauthenticated routes are not rate limited, and say so.
    assert!(!declared("/healthz", "get", "200").iter().any(|n| n == "ratelimit"));
}
