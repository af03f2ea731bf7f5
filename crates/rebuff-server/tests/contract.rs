//! The contract, over real HTTP: for every catalog code the reference API can raise, the
//! request that triggers it, and the exact status, headers and body members it answers with,
//! in each of the six profiles.

mod support;

use rebuff::{Catalog, Dialect};
use serde_json::{Value, json};
use support::{ACTIVE_EMAIL, Answer, DISABLED_EMAIL, Opts, Server, answer, start};

/// Checks an error answer against the catalog entry of `code` in the server's profile.
fn expect(s: &Server, what: &str, a: &Answer, code: &str) {
    let cat: &Catalog = s.catalog;
    let entry = cat.get(code).unwrap_or_else(|| panic!("{what}: `{code}` not in {}", cat.name()));
    let body = String::from_utf8_lossy(&a.body);
    assert_eq!(a.status, entry.status.as_u16(), "{} {what}: status; body {body}", cat.name());
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some(cat.dialect().content_type()),
        "{} {what}: content type",
        cat.name()
    );
    let id = a.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(id.starts_with("req_"), "{} {what}: request id header", cat.name());
    let v: Value = serde_json::from_slice(&a.body).unwrap_or_else(|_| panic!("{what}: JSON body: {body}"));
    // The body names the same request id as the header.
    let body_id = match cat.dialect() {
        Dialect::Dataxid
        | Dialect::Rebuff
        | Dialect::Arize
        | Dialect::Incidents
        | Dialect::Apikeys
        | Dialect::Mlops => v.get("request_id").and_then(Value::as_str),
        _ => None,
    };
    assert_eq!(body_id, Some(id.as_str()), "{} {what}: request id in body", cat.name());
    let (parsed, identified) = rebuff::parse_for(cat, a.status, &a.headers, &a.body);
    let identified = identified.unwrap_or_else(|| panic!("{} {what}: not identified", cat.name()));
    assert_eq!(identified.status, entry.status, "{} {what}", cat.name());
    let sends_code = match cat.dialect() {
        Dialect::Mlops => false,
        Dialect::Arize => entry.status.is_client_error(),
        _ => true,
    };
    if sends_code {
        assert_eq!(parsed.code, entry.wire_code, "{} {what}: wire code; body {body}", cat.name());
    }
    if entry.status == 401 {
        assert!(a.headers.contains_key("www-authenticate"), "{} {what}: WWW-Authenticate", cat.name());
    }
    if entry.status == 429 || code == "idempotency_key_in_use" {
        assert!(a.headers.contains_key("retry-after"), "{} {what}: Retry-After", cat.name());
    }
    if entry.status == 405 {
        assert!(a.headers.contains_key("allow"), "{} {what}: Allow", cat.name());
    }
    if entry.masked {
        for leak in ["hunter2", "panicked", "no_such_table", "/srv/", "SELECT"] {
            assert!(!body.contains(leak), "{} {what}: masked body leaks {leak}: {body}", cat.name());
        }
    }
}

async fn table(profile: &str) {
    let s = start(profile, Opts::default()).await;
    let admin = s.admin.clone();

    // Credentials.
    expect(&s, "no credentials", &answer(s.http.get(s.url("/v1/projects"))).await, "authentication_required");
    let basic = s.http.get(s.url("/v1/projects")).header("authorization", "Basic dXNlcjpwYXNz");
    expect(&s, "not Bearer", &answer(basic).await, "api_key_malformed");
    expect(&s, "malformed key", &answer(s.get("/v1/projects", "not-a-key")).await, "api_key_malformed");
    let unknown = "rb_test_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    expect(&s, "unknown key", &answer(s.get("/v1/projects", unknown)).await, "api_key_invalid");
    expect(&s, "revoked key", &answer(s.get("/v1/projects", &s.revoked)).await, "api_key_revoked");
    expect(&s, "expired key", &answer(s.get("/v1/projects", &s.expired)).await, "api_key_expired");
    expect(&s, "address not allowed", &answer(s.get("/v1/projects", &s.fenced)).await, "ip_not_allowed");
    let write = s.post_json("/v1/projects", &s.reader, json!({"name": "x"}));
    expect(&s, "missing scope", &answer(write).await, "insufficient_scope");
    let stale = s.http.get(s.url("/v1/projects")).header("cookie", "rebuff_session=stale");
    expect(&s, "unknown session", &answer(stale).await, "session_expired");
    let wrong = s
        .http
        .post(s.url("/v1/auth/login"))
        .json(&json!({"email": ACTIVE_EMAIL, "password": "wrong password"}));
    expect(&s, "wrong password", &answer(wrong).await, "invalid_credentials");
    let disabled = s
        .http
        .post(s.url("/v1/auth/login"))
        .json(&json!({"email": DISABLED_EMAIL, "password": support::PASSWORD}));
    expect(&s, "disabled account", &answer(disabled).await, "account_disabled");
    let (cookie, csrf) = s.login(ACTIVE_EMAIL).await;
    let no_csrf =
        s.http.post(s.url("/v1/projects")).header("cookie", &cookie).json(&json!({"name": "by-session"}));
    expect(&s, "no CSRF token", &answer(no_csrf).await, "csrf_failed");
    let with_csrf = s
        .http
        .post(s.url("/v1/projects"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "by-session"}));
    assert_eq!(answer(with_csrf).await.status, 201, "{profile}: session with CSRF token");
    let hook = s.http.post(s.url("/v1/webhooks/incoming")).json(&json!({"type": "ping"}));
    expect(&s, "unsigned webhook", &answer(hook).await, "invalid_signature");

    // Request shape.
    let raw = |body: &'static str| {
        s.http
            .post(s.url("/v1/projects"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
    };
    expect(&s, "malformed JSON", &answer(raw("{\"name\": ")).await, "invalid_json");
    expect(
        &s,
        "wrong field type",
        &answer(s.post_json("/v1/projects", &admin, json!({"name": 5}))).await,
        "wrong_field_type",
    );
    expect(
        &s,
        "missing field",
        &answer(s.post_json("/v1/projects", &admin, json!({}))).await,
        "missing_required_field",
    );
    expect(
        &s,
        "empty name",
        &answer(s.post_json("/v1/projects", &admin, json!({"name": "  "}))).await,
        "invalid_field_value",
    );
    let no_type = s.http.post(s.url("/v1/projects")).bearer_auth(&admin).body("{\"name\": \"x\"}");
    expect(&s, "no Content-Type", &answer(no_type).await, "unsupported_media_type");
    let text = s
        .http
        .post(s.url("/v1/projects"))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("name=x");
    expect(&s, "text/plain", &answer(text).await, "unsupported_media_type");
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));
    // The server closes the connection after a 413 without reading the body; `close` keeps
    // the client from reusing it for the next request.
    let big = s
        .http
        .post(s.url("/v1/projects"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .header("connection", "close")
        .body(big);
    expect(&s, "body over the limit", &answer(big).await, "payload_too_large");
    expect(&s, "bad path id", &answer(s.get("/v1/projects/not-an-id", &admin)).await, "invalid_id");
    expect(
        &s,
        "limit out of range",
        &answer(s.get("/v1/projects?limit=0", &admin)).await,
        "invalid_query_parameter",
    );
    expect(
        &s,
        "limit not a number",
        &answer(s.get("/v1/projects?limit=ten", &admin)).await,
        "invalid_query_parameter",
    );
    let put = s.http.put(s.url("/v1/projects")).bearer_auth(&admin);
    expect(&s, "wrong method", &answer(put).await, "method_not_allowed");
    // The method is checked before the credentials: no key, or a bad one, is still 405.
    let put = s.http.put(s.url("/v1/projects"));
    expect(&s, "wrong method without a key", &answer(put).await, "method_not_allowed");
    let put = s.http.delete(s.url("/v1/api-keys")).bearer_auth("rb_test_nope_nope");
    expect(&s, "wrong method with a bad key", &answer(put).await, "method_not_allowed");
    expect(&s, "unknown route", &answer(s.get("/v1/nothing-here", &admin)).await, "resource_not_found");

    // Resources and their states.
    let project = s.create("/v1/projects", json!({"name": "alpha"})).await;
    expect(
        &s,
        "duplicate name",
        &answer(s.post_json("/v1/projects", &admin, json!({"name": "alpha"}))).await,
        "resource_already_exists",
    );
    expect(
        &s,
        "missing project",
        &answer(s.get("/v1/projects/prj_000000000000", &admin)).await,
        "resource_not_found",
    );
    let bad_format = json!({"project_id": project, "name": "d", "format": "xls"});
    expect(
        &s,
        "bad format",
        &answer(s.post_json("/v1/datasets", &admin, bad_format)).await,
        "invalid_enum_value",
    );
    let several = json!({"name": "m", "model_type": "gpt", "config": {"batch_size": 0}});
    expect(
        &s,
        "several invalid fields",
        &answer(s.post_json("/v1/models", &admin, several)).await,
        "validation_failed",
    );
    expect(
        &s,
        "missing model",
        &answer(s.get("/v1/models/mdl_000000000000", &admin)).await,
        "model_not_found",
    );
    let model = s
        .create("/v1/models", json!({"name": "m", "model_type": "ctgan", "config": {"batch_size": 32}}))
        .await;
    let generate =
        |n: i64| s.post_json(&format!("/v1/models/{model}/generate"), &admin, json!({"n_samples": n}));
    expect(&s, "model not ready", &answer(generate(10)).await, "model_not_ready");
    assert_eq!(
        answer(s.post_json(&format!("/v1/models/{model}/train"), &admin, json!({}))).await.status,
        202
    );
    let again = s.post_json(&format!("/v1/models/{model}/train"), &admin, json!({}));
    expect(&s, "training twice", &answer(again).await, "resource_conflict");
    wait_for(&s, &format!("/v1/models/{model}"), "status", "ready").await;
    let job = generate(10).send().await.expect("send");
    assert_eq!(job.status(), 202, "{profile}: generate");
    let job: Value = job.json().await.expect("json");
    let job = job["id"].as_str().expect("job id").to_owned();
    expect(
        &s,
        "output not ready",
        &answer(s.get(&format!("/v1/jobs/{job}/output"), &admin)).await,
        "resource_conflict",
    );
    expect(&s, "over the monthly quota", &answer(generate(5_000)).await, "quota_exceeded");

    // Idempotency.
    let idem =
        |body: Value, key: &str| s.post_json("/v1/projects", &admin, body).header("idempotency-key", key);
    let first = answer(idem(json!({"name": "idem"}), "k-1")).await;
    assert_eq!(first.status, 201, "{profile}: first idempotent POST");
    let replay = answer(idem(json!({"name": "idem"}), "k-1")).await;
    assert_eq!((replay.status, &replay.body), (201, &first.body), "{profile}: replay");
    assert_eq!(replay.headers.get("idempotent-replayed").map(|v| v.as_bytes()), Some(&b"true"[..]));
    expect(
        &s,
        "key reused with another payload",
        &answer(idem(json!({"name": "other"}), "k-1")).await,
        "idempotency_key_reused",
    );
    expect(
        &s,
        "malformed idempotency key",
        &answer(idem(json!({"name": "z"}), &"k".repeat(300))).await,
        "bad_request",
    );

    // Failures are masked.
    expect(&s, "panic", &answer(s.http.get(s.url("/v1/_fault/panic"))).await, "internal_error");
    expect(&s, "database failure", &answer(s.http.get(s.url("/v1/_fault/database"))).await, "database_error");
}

async fn wait_for(s: &Server, path: &str, member: &str, value: &str) {
    for _ in 0..100 {
        let v: Value = s.get(path, &s.admin).send().await.expect("send").json().await.expect("json");
        if v[member] == value {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{path}: {member} never became {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_rebuff() {
    table("rebuff").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_arize() {
    table("arize").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_dataxid() {
    table("dataxid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_mlops() {
    table("mlops").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_incidents() {
    table("incidents").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_apikeys() {
    table("apikeys").await;
}

/// The references' JSON examples that the live server produces by itself (no detail supplied
/// by a test), compared member for member; only the request id may differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_server_reproduces_the_references_examples() {
    async fn body_of(a: Answer) -> Value {
        let mut v: Value = serde_json::from_slice(&a.body).expect("json");
        if let Some(o) = v.as_object_mut() {
            o.remove("request_id");
        }
        v
    }
    let x = start("dataxid", Opts { users: false, monthly_rows: 10, ..Opts::default() }).await;
    assert_eq!(
        body_of(answer(x.http.get(x.url("/v1/projects"))).await).await,
        json!({"error": {"type": "authentication_error", "code": "api_key_missing",
               "message": "Authorization header with Bearer token is required.",
               "doc_url": "https://docs.dataxid.com/docs/errors#api_key_missing"}})
    );
    let model = x
        .create("/v1/models", json!({"name": "m", "model_type": "ctgan", "config": {"batch_size": 8}}))
        .await;
    let not_ready = x.post_json(&format!("/v1/models/{model}/generate"), &x.admin, json!({"n_samples": 5}));
    assert_eq!(
        body_of(answer(not_ready).await).await,
        json!({"error": {"type": "invalid_request_error", "code": "model_not_ready",
               "message": format!("Model {model} is in 'created' state, cannot generate"),
               "doc_url": "https://docs.dataxid.com/docs/errors#model_not_ready"}})
    );
    let bad = x.post_json(
        "/v1/models",
        &x.admin,
        json!({"name": "m", "model_type": "ctgan", "config": {"batch_size": 0}}),
    );
    assert_eq!(
        body_of(answer(bad).await).await,
        json!({"error": {"type": "invalid_request_error", "code": "parameter_invalid",
               "message": "Value error, ensure this value is greater than 0",
               "doc_url": "https://docs.dataxid.com/docs/errors#parameter_invalid",
               "param": "body.config.batch_size"}})
    );
    assert_eq!(
        answer(x.post_json(&format!("/v1/models/{model}/train"), &x.admin, json!({}))).await.status,
        202
    );
    wait_for(&x, &format!("/v1/models/{model}"), "status", "ready").await;
    let over = x.post_json(&format!("/v1/models/{model}/generate"), &x.admin, json!({"n_samples": 11}));
    assert_eq!(
        body_of(answer(over).await).await,
        json!({"error": {"type": "quota_exceeded_error", "code": "quota_exceeded",
               "message": "Monthly row quota exceeded. Upgrade your plan for additional capacity.",
               "doc_url": "https://docs.dataxid.com/docs/errors#quota_exceeded"}})
    );

    let a = start("arize", Opts { users: false, ..Opts::default() }).await;
    const ARIZE: &str = "https://arize.com/docs/ax/rest-reference/errors";
    let no_key = answer(a.http.get(a.url("/v1/projects"))).await;
    assert_eq!(no_key.headers["content-type"], "application/problem+json");
    assert_eq!(
        body_of(no_key).await,
        json!({"status": 401, "title": "Unauthorized", "type": format!("{ARIZE}#authentication-required"),
               "detail": "Bearer credentials are required (API key or OAuth access token).",
               "error_code": "AUTHENTICATION_REQUIRED"})
    );
    let text = a
        .http
        .post(a.url("/v1/projects"))
        .bearer_auth(&a.admin)
        .header("content-type", "text/plain")
        .body("x");
    assert_eq!(
        body_of(answer(text).await).await,
        json!({"status": 415, "title": "Unsupported Media Type", "type": format!("{ARIZE}#unsupported-media-type"),
               "detail": "Content-Type must be application/json", "error_code": "UNSUPPORTED_MEDIA_TYPE"})
    );
    let panic = answer(a.http.get(a.url("/v1/_fault/panic"))).await;
    assert_eq!(
        body_of(panic).await,
        json!({"status": 500, "title": "Internal Server Error", "type": format!("{ARIZE}#internal-server-error"),
               "detail": "An unexpected error occurred."})
    );

    let i = start("incidents", Opts { users: false, ..Opts::default() }).await;
    assert_eq!(
        body_of(answer(i.http.get(i.url("/v1/projects"))).await).await,
        json!({"code": "UNAUTHORIZED", "message": "Unauthorized: No authentication provided"})
    );

    let m = start("mlops", Opts { users: false, ..Opts::default() }).await;
    let bad = m.post_json(
        "/v1/datasets",
        &m.admin,
        json!({"project_id": "prj_000000000000", "name": "d", "format": "xls"}),
    );
    let v = body_of(answer(bad).await).await;
    assert_eq!(v["detail"][0]["loc"], json!(["body", "format"]), "{v}");
    assert_eq!(v["detail"][0]["type"], "enum", "{v}");
}
