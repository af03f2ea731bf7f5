//! The client against the reference server, over real HTTP, in each of the six profiles: every
//! error the server can produce decodes to the right stable code (the same triggers as
//! `rebuff-server`'s contract tests), and retries and re-authentication work against it.
//!
//! "The right stable code" is exact wherever the profile's wire form tells codes apart. Some
//! profiles send one form for several codes (`mlops` sends no code at all; `incidents` sends
//! `UNAUTHORIZED` for every credential problem); there the client must land on a code that
//! is indistinguishable from the right one on the wire (same status, code member and type
//! URI), which is what any client of that API can know.

mod support;

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use rebuff::{Catalog, Dialect, Envelope, Problem};
use rebuff_client::{ApiError, Client, Contract, Jitter, Kind, RetryBudget, RetryPolicy};
use serde_json::json;
use support::{ACTIVE_EMAIL, DISABLED_EMAIL, Opts, PASSWORD, Server, start};

/// What a response of `code` looks like on the wire in `catalog`: status, code member, type.
fn wire_form(catalog: &Catalog, code: &str) -> (u16, Option<String>, Option<String>) {
    let res = catalog.render(&Problem::dynamic(code)).expect("renders");
    let p = rebuff::parse(res.status().as_u16(), res.headers(), res.body());
    (p.status, p.code, p.type_uri)
}

/// The codes that a client of `catalog` cannot tell from `code`.
fn indistinguishable(catalog: &Catalog, code: &str) -> Vec<String> {
    let form = wire_form(catalog, code);
    catalog.entries().iter().filter(|e| wire_form(catalog, &e.code) == form).map(|e| e.code.clone()).collect()
}

struct Tally {
    profile: String,
    exact: usize,
    total: usize,
}

fn check(s: &Server, tally: &mut Tally, what: &str, result: Result<reqwest::Response, ApiError>, code: &str) {
    let cat = s.catalog;
    let name = cat.name();
    let e = match result {
        Ok(r) => panic!("{name} {what}: expected `{code}`, got {}", r.status()),
        Err(e) => e,
    };
    let entry = cat.get(code).unwrap_or_else(|| panic!("`{code}` not in {name}"));
    assert_eq!(e.kind(), Kind::Status, "{name} {what}: {e}");
    assert_eq!(e.status(), Some(entry.status), "{name} {what}: {e}");
    assert_eq!(e.dialect(), Some(cat.dialect()), "{name} {what}: {e:?}");
    assert!(e.request_id().is_some_and(|id| id.starts_with("req_")), "{name} {what}: request id: {e:?}");
    let stable = e.stable_code().unwrap_or_else(|| panic!("{name} {what}: not identified: {e:?}"));
    let same = indistinguishable(cat, code);
    assert!(same.iter().any(|c| c == stable), "{name} {what}: `{stable}`, expected one of {same:?}");
    if same.len() == 1 {
        assert_eq!(stable, code, "{name} {what}");
    }
    assert_eq!(e.code_as::<rebuff::standard::Code>().map(|c| c.as_str()), Some(stable));
    let sends_code = match cat.dialect() {
        Dialect::Mlops => false,
        Dialect::Arize => entry.status.is_client_error(),
        _ => true,
    };
    if sends_code {
        assert_eq!(e.code(), entry.wire_code.as_deref(), "{name} {what}: wire code");
    }
    assert_eq!(e.retry_class(), cat.get(stable).map(|x| x.retry).unwrap_or(entry.retry), "{name} {what}");
    if entry.status == 429 {
        assert!(e.retry_after().is_some(), "{name} {what}: retry hint");
    }
    if entry.masked {
        let text = format!("{e:?}");
        assert!(!text.contains("panicked") && !text.contains("no_such_table"), "{name} {what}: {text}");
    }
    tally.total += 1;
    if stable == code {
        tally.exact += 1;
    }
}

/// Field errors where the envelope carries them.
fn expect_fields(s: &Server, what: &str, result: &Result<reqwest::Response, ApiError>, pointers: &[&str]) {
    let Err(e) = result else { panic!("{what}: expected an error") };
    let got: Vec<&str> = e.fields().iter().map(|f| f.pointer.as_str()).collect();
    for p in pointers {
        assert!(got.contains(p), "{} {what}: field {p} in {got:?} ({e:?})", s.catalog.name());
    }
}

async fn table(profile: &str) {
    let s = start(profile, Opts::default()).await;
    let mut tally = Tally { profile: profile.to_owned(), exact: 0, total: 0 };
    // Retries on, with short waits: a GET on a pooled connection that the server has just
    // closed (after the 413, say) is reset, and is retried as any client would.
    let client = Client::builder()
        .contract(Contract::builtin(profile).expect("built in"))
        .retry(
            RetryPolicy::builder()
                .base_delay(Duration::from_millis(1))
                .max_retry_after(Duration::from_secs(1))
                .budget(RetryBudget::unlimited())
                .build(),
        )
        .build();
    let c = &client;
    let admin = s.admin.clone();
    let get = |path: &str, key: &str| c.get(s.url(path)).bearer_auth(key);
    let post =
        |path: &str, key: &str, body: serde_json::Value| c.post(s.url(path)).bearer_auth(key).json(&body);
    macro_rules! expect {
        ($what:expr, $req:expr, $code:expr) => {
            check(&s, &mut tally, $what, c.send($req).await, $code)
        };
    }

    // Credentials.
    expect!("no credentials", c.get(s.url("/v1/projects")), "authentication_required");
    expect!(
        "not Bearer",
        c.get(s.url("/v1/projects")).header("authorization", "Basic dXNlcjpwYXNz"),
        "api_key_malformed"
    );
    expect!("malformed key", get("/v1/projects", "not-a-key"), "api_key_malformed");
    let unknown = "rb_test_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    expect!("unknown key", get("/v1/projects", unknown), "api_key_invalid");
    expect!("revoked key", get("/v1/projects", &s.revoked), "api_key_revoked");
    expect!("expired key", get("/v1/projects", &s.expired), "api_key_expired");
    expect!("address not allowed", get("/v1/projects", &s.fenced), "ip_not_allowed");
    expect!("missing scope", post("/v1/projects", &s.reader, json!({"name": "x"})), "insufficient_scope");
    expect!(
        "unknown session",
        c.get(s.url("/v1/projects")).header("cookie", "rebuff_session=stale"),
        "session_expired"
    );
    let login = |email: &str, password: &str| {
        c.post(s.url("/v1/auth/login")).json(&json!({"email": email, "password": password}))
    };
    expect!("wrong password", login(ACTIVE_EMAIL, "wrong password"), "invalid_credentials");
    expect!("disabled account", login(DISABLED_EMAIL, PASSWORD), "account_disabled");
    let res = c.send(login(ACTIVE_EMAIL, PASSWORD)).await.expect("login");
    let cookie =
        res.headers()["set-cookie"].to_str().expect("ascii").split(';').next().expect("pair").to_owned();
    expect!(
        "no CSRF token",
        c.post(s.url("/v1/projects")).header("cookie", &cookie).json(&json!({"name": "by-session"})),
        "csrf_failed"
    );
    expect!(
        "unsigned webhook",
        c.post(s.url("/v1/webhooks/incoming")).json(&json!({"type": "ping"})),
        "invalid_signature"
    );

    // Request shape.
    let raw = |body: &'static str| {
        c.post(s.url("/v1/projects"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
    };
    expect!("malformed JSON", raw("{\"name\": "), "invalid_json");
    let r = c.send(post("/v1/projects", &admin, json!({"name": 5}))).await;
    if !matches!(profile, "dataxid") {
        expect_fields(&s, "wrong field type", &r, &["/name"]);
    }
    check(&s, &mut tally, "wrong field type", r, "wrong_field_type");
    let r = c.send(post("/v1/projects", &admin, json!({}))).await;
    if !matches!(profile, "dataxid") {
        expect_fields(&s, "missing field", &r, &["/name"]);
    }
    check(&s, &mut tally, "missing field", r, "missing_required_field");
    expect!("empty name", post("/v1/projects", &admin, json!({"name": "  "})), "invalid_field_value");
    expect!(
        "no Content-Type",
        c.post(s.url("/v1/projects")).bearer_auth(&admin).body("{\"name\": \"x\"}"),
        "unsupported_media_type"
    );
    expect!(
        "text/plain",
        c.post(s.url("/v1/projects")).bearer_auth(&admin).header("content-type", "text/plain").body("name=x"),
        "unsupported_media_type"
    );
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));
    expect!(
        "body over the limit",
        c.post(s.url("/v1/projects"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(big),
        "payload_too_large"
    );
    expect!("bad path id", get("/v1/projects/not-an-id", &admin), "invalid_id");
    expect!("limit out of range", get("/v1/projects?limit=0", &admin), "invalid_query_parameter");
    expect!("wrong method", c.put(s.url("/v1/projects")).bearer_auth(&admin), "method_not_allowed");
    expect!("unknown route", get("/v1/nothing-here", &admin), "resource_not_found");

    // Resources and their states.
    c.send(post("/v1/projects", &admin, json!({"name": "alpha"}))).await.expect("created");
    expect!(
        "duplicate name",
        post("/v1/projects", &admin, json!({"name": "alpha"})),
        "resource_already_exists"
    );
    expect!("missing project", get("/v1/projects/prj_000000000000", &admin), "resource_not_found");
    let project = c
        .send(post("/v1/projects", &admin, json!({"name": "beta"})))
        .await
        .expect("created")
        .json::<serde_json::Value>()
        .await
        .expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    expect!(
        "bad format",
        post("/v1/datasets", &admin, json!({"project_id": project, "name": "d", "format": "xls"})),
        "invalid_enum_value"
    );
    let several = json!({"name": "m", "model_type": "gpt", "config": {"batch_size": 0}});
    let r = c.send(post("/v1/models", &admin, several)).await;
    if !matches!(profile, "dataxid") {
        expect_fields(&s, "several invalid fields", &r, &["/model_type", "/config/batch_size"]);
    }
    check(&s, &mut tally, "several invalid fields", r, "validation_failed");
    expect!("missing model", get("/v1/models/mdl_000000000000", &admin), "model_not_found");
    let model = c
        .send(post(
            "/v1/models",
            &admin,
            json!({"name": "m", "model_type": "ctgan", "config": {"batch_size": 32}}),
        ))
        .await
        .expect("created")
        .json::<serde_json::Value>()
        .await
        .expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let generate = |n: i64| post(&format!("/v1/models/{model}/generate"), &admin, json!({"n_samples": n}));
    expect!("model not ready", generate(10), "model_not_ready");
    c.send(post(&format!("/v1/models/{model}/train"), &admin, json!({}))).await.expect("training");
    expect!(
        "training twice",
        post(&format!("/v1/models/{model}/train"), &admin, json!({})),
        "resource_conflict"
    );
    let mut ready = false;
    for _ in 0..250 {
        let v: serde_json::Value = c
            .send(get(&format!("/v1/models/{model}"), &admin))
            .await
            .expect("model")
            .json()
            .await
            .expect("json");
        if v["status"] == "ready" {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "{profile}: the model never became ready");
    expect!("over the monthly quota", generate(5_000), "quota_exceeded");

    // Idempotency.
    let idem = |body: serde_json::Value, key: &str| {
        post("/v1/projects", &admin, body).header("idempotency-key", key)
    };
    c.send(idem(json!({"name": "idem"}), "k-1")).await.expect("first");
    expect!(
        "key reused with another payload",
        idem(json!({"name": "other"}), "k-1"),
        "idempotency_key_reused"
    );
    expect!("malformed idempotency key", idem(json!({"name": "z"}), &"k".repeat(300)), "bad_request");

    // Failures are masked.
    expect!("panic", c.get(s.url("/v1/_fault/panic")), "internal_error");
    expect!("database failure", c.get(s.url("/v1/_fault/database")), "database_error");

    // Rate limit, on a server that allows two requests a minute.
    let limited = start(profile, Opts { rate: 2, ..Opts::default() }).await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(c.send(c.get(limited.url("/v1/projects")).bearer_auth(&limited.admin)).await);
    }
    check(&limited, &mut tally, "over the rate limit", last.expect("sent"), "rate_limit_exceeded");

    eprintln!("{}: {} of {} errors identified exactly", tally.profile, tally.exact, tally.total);
    if profile == "rebuff" {
        assert_eq!(tally.exact, tally.total, "{profile} sends a distinct code for every error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_rebuff() {
    table("rebuff").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_arize() {
    table("arize").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_dataxid() {
    table("dataxid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_mlops() {
    table("mlops").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_incidents() {
    table("incidents").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_apikeys() {
    table("apikeys").await;
}

/// Retries against the real server: a masked 500 is retried (a GET), a validation error is
/// not, and a POST's retries carry its key so the server runs it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_against_the_reference_server() {
    for profile in Catalog::PROFILES {
        let s = start(profile, Opts::default()).await;
        let client = Client::builder()
            .contract(Contract::builtin(profile).expect("built in"))
            .retry(
                RetryPolicy::builder()
                    .max_attempts(3)
                    .base_delay(Duration::from_millis(1))
                    .jitter(Jitter::None)
                    .budget(RetryBudget::unlimited())
                    .build(),
            )
            .build();
        let e = client.send(client.get(s.url("/v1/_fault/panic"))).await.expect_err("500");
        assert_eq!((e.stable_code(), e.attempts()), (Some("internal_error"), 3), "{profile}");
        let e = client
            .send(client.post(s.url("/v1/projects")).bearer_auth(&s.admin).json(&json!({})))
            .await
            .expect_err("422");
        let missing = s.catalog.get("missing_required_field").expect("in every profile");
        assert_eq!((e.status(), e.attempts()), (Some(missing.status), 1), "{profile}");
        assert!(e.fields().iter().any(|f| f.pointer == "/name") || profile == "dataxid", "{profile}: {e:?}");
    }
}

/// An expired key, renewed by the hook: the request succeeds on its second attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthentication_against_the_reference_server() {
    for profile in ["rebuff", "arize", "mlops"] {
        let s = start(profile, Opts::default()).await;
        let fresh = HeaderValue::try_from(format!("Bearer {}", s.admin)).expect("header");
        let client = Client::builder()
            .contract(Contract::builtin(profile).expect("built in"))
            .reauthenticate(move |_| {
                let fresh = fresh.clone();
                async move {
                    let mut h = HeaderMap::new();
                    h.insert("authorization", fresh);
                    Ok(h)
                }
            })
            .build();
        let res =
            client.send(client.get(s.url("/v1/projects")).bearer_auth(&s.expired)).await.expect("renewed");
        assert_eq!(res.status(), 200, "{profile}");
        // A key without the scope is not an expired credential: no renewal, no retry.
        let e = client
            .send(client.post(s.url("/v1/projects")).bearer_auth(&s.reader).json(&json!({"name": "x"})))
            .await
            .expect_err("403");
        assert_eq!((e.status().map(|s| s.as_u16()), e.attempts()), (Some(403), 1), "{profile}");
        assert!(e.envelope().is_some_and(|env| env != Envelope::Text), "{profile}: {e:?}");
    }
}

/// A consumer generates its table from the API's published `/errors.json`: the same source as
/// from the catalog itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_catalog_generates_the_client_table() {
    for profile in Catalog::PROFILES {
        let s = start(profile, Opts::default()).await;
        let client = Client::new();
        let res = client.send(client.get(s.url("/errors.json"))).await.expect("published");
        let export: serde_json::Value = res.json().await.expect("JSON");
        let source = rebuff::docs::rust_client_json(&export).expect("an export");
        assert!(
            source == rebuff::docs::rust_client(s.catalog),
            "{profile}: /errors.json gives another table"
        );
    }
}
