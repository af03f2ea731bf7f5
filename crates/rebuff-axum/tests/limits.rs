//! Rate limits, quotas and idempotency keys over real HTTP on loopback, with the whole stack:
//! request ids, the outer and inner problem layers, the rate limit and the idempotency layer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use rebuff::Catalog;
use rebuff_axum::idempotency::IdempotencyLayer;
use rebuff_axum::quota::Quotas;
use rebuff_axum::ratelimit::RateLimitLayer;
use rebuff_axum::store::Quota;
use rebuff_axum::store::memory::MemoryStore;
use rebuff_axum::{ApiError, Code, ProblemLayer, RequestIdLayer};
use serde_json::{Value, json};
use tokio::task::JoinSet;

#[derive(Clone)]
struct AppState {
    /// Executions of `POST /v1/things`.
    executions: Arc<AtomicUsize>,
    /// Calls of `POST /v1/flaky`.
    flaky: Arc<AtomicUsize>,
    /// Calls of `POST /v1/fragile`.
    fragile: Arc<AtomicUsize>,
    quotas: Quotas,
}

async fn create_thing(State(state): State<AppState>, Json(body): Json<Value>) -> impl IntoResponse {
    let n = state.executions.fetch_add(1, Ordering::SeqCst) + 1;
    // Long enough for concurrent retries to find the first attempt still running.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let location = format!("/v1/things/{n}");
    (StatusCode::CREATED, [("location", location)], Json(json!({ "id": n, "input": body })))
}

async fn flaky(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let n = state.flaky.fetch_add(1, Ordering::SeqCst) + 1;
    if n == 1 {
        return Err(ApiError::new(Code::InternalError).cause("injected failure"));
    }
    Ok((StatusCode::CREATED, Json(json!({ "attempt": n }))))
}

/// Panics the first time, sleeps long the second (for a client to give up), then succeeds.
async fn fragile(State(state): State<AppState>) -> impl IntoResponse {
    let n = state.fragile.fetch_add(1, Ordering::SeqCst) + 1;
    match n {
        1 => panic!("injected panic"),
        2 => tokio::time::sleep(Duration::from_secs(30)).await,
        _ => {}
    }
    (StatusCode::CREATED, Json(json!({ "attempt": n })))
}

async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let org = headers.get("x-org").and_then(|v| v.to_str().ok()).unwrap_or("org_demo");
    let rows = body["n_samples"].as_u64().unwrap_or(0);
    let usage = state.quotas.charge(org, rows).await?;
    Ok(Json(json!({ "used": usage.used, "limit": usage.limit })))
}

struct Server {
    base: String,
    client: reqwest::Client,
    state: AppState,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Starts the stack on 127.0.0.1:0 with `profile`'s catalog and a limit of `limit`/60 s per
/// client address.
async fn start(profile: &str, limit: u32) -> Server {
    let catalog = Catalog::builtin(profile).expect("built-in profile").clone();
    let problems = ProblemLayer::new(Arc::new(catalog));
    let store = Arc::new(MemoryStore::new());
    let state = AppState {
        executions: Arc::default(),
        flaky: Arc::default(),
        fragile: Arc::default(),
        quotas: Quotas::new(store.clone(), 100),
    };
    let quota = Quota { limit, period: Duration::from_secs(60) };
    let app = Router::new()
        .route("/v1/ping", get(|| async { "pong" }))
        .route("/v1/missing", get(|| async { Err::<(), _>(ApiError::new(Code::ResourceNotFound)) }))
        .route("/v1/things", post(create_thing))
        .route("/v1/flaky", post(flaky))
        .route("/v1/fragile", post(fragile))
        .route("/v1/generate", post(generate))
        .with_state(state.clone())
        .layer(problems.clone())
        .layer(IdempotencyLayer::new(store.clone()))
        .layer(RateLimitLayer::new(store, quota))
        .layer(problems)
        .layer(RequestIdLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
    });
    Server { base: format!("http://{addr}"), client: reqwest::Client::new(), state }
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after the epoch").as_secs()
}

/// Parses `"default";r=4;t=12` into (4, 12).
fn parse_ratelimit(value: &str) -> (u64, u64) {
    let rest = value.strip_prefix("\"default\";r=").unwrap_or_else(|| panic!("RateLimit syntax: {value}"));
    let (r, t) = rest.split_once(";t=").unwrap_or_else(|| panic!("RateLimit syntax: {value}"));
    (r.parse().expect("r is an integer"), t.parse().expect("t is an integer"))
}

/// Checks the five rate-limit fields of a response.
fn assert_limit_headers(res: &reqwest::Response, remaining: u64) {
    assert_eq!(header(res, "x-ratelimit-limit"), "5");
    assert_eq!(header(res, "x-ratelimit-remaining"), remaining.to_string());
    let reset: u64 = header(res, "x-ratelimit-reset").parse().expect("reset is Unix seconds");
    let now = unix_now();
    assert!(reset >= now && reset <= now + 61, "reset {reset} not within the window from {now}");
    let (r, t) = parse_ratelimit(header(res, "ratelimit"));
    assert_eq!(r, remaining);
    assert!((1..=60).contains(&t), "t={t}");
    assert_eq!(header(res, "ratelimit-policy"), "\"default\";q=5;w=60");
}

#[tokio::test]
async fn every_response_carries_the_limit_and_429_has_retry_after() {
    let server = start("standard", 5).await;
    for remaining in [4, 3, 2, 1] {
        let res = server.client.get(server.url("/v1/ping")).send().await.expect("request");
        assert_eq!(res.status(), 200);
        assert_limit_headers(&res, remaining);
        assert!(res.headers().get("retry-after").is_none());
    }
    // An error response is counted and carries the fields too.
    let res = server.client.get(server.url("/v1/missing")).send().await.expect("request");
    assert_eq!(res.status(), 404);
    assert_limit_headers(&res, 0);

    let res = server.client.get(server.url("/v1/ping")).send().await.expect("request");
    assert_eq!(res.status(), 429);
    assert_limit_headers(&res, 0);
    let retry: u64 = header(&res, "retry-after").parse().expect("Retry-After is seconds");
    assert!((1..=12).contains(&retry), "Retry-After {retry}");
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    let request_id = header(&res, "x-request-id").to_owned();
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(body["code"], "rate_limit_exceeded");
    assert_eq!(body["status"], 429);
    assert_eq!(body["request_id"], request_id.as_str());
}

#[tokio::test]
async fn exactly_the_limit_of_20_concurrent_requests_is_admitted() {
    let server = Arc::new(start("standard", 5).await);
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let server = server.clone();
        tasks.spawn(async move {
            let res = server.client.get(server.url("/v1/ping")).send().await.expect("request");
            res.status().as_u16()
        });
    }
    let statuses = tasks.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 15, "{statuses:?}");
}

async fn post_thing(server: &Server, key: &str, auth: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = server.client.post(server.url("/v1/things")).header("idempotency-key", key).json(&body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn a_completed_post_is_replayed() {
    let server = start("standard", 1000).await;
    let first = post_thing(&server, "key-1", None, json!({ "name": "a" })).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = header(&first, "location").to_owned();
    let first_body = first.bytes().await.expect("body");

    let again = post_thing(&server, "key-1", None, json!({ "name": "a" })).await;
    assert_eq!(again.status(), 201);
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_eq!(header(&again, "location"), location);
    assert_eq!(header(&again, "content-type"), "application/json");
    assert!(again.headers().get("x-request-id").is_some());
    assert_eq!(again.bytes().await.expect("body"), first_body);
    assert_eq!(server.state.executions.load(Ordering::SeqCst), 1);

    // Another key is another operation.
    let other = post_thing(&server, "key-2", None, json!({ "name": "a" })).await;
    assert_eq!(other.status(), 201);
    assert!(other.headers().get("idempotent-replayed").is_none());
    assert_eq!(server.state.executions.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn fifty_concurrent_posts_with_one_key_run_the_handler_once() {
    let server = Arc::new(start("standard", 1000).await);
    let mut tasks = JoinSet::new();
    for _ in 0..50 {
        let server = server.clone();
        tasks.spawn(async move {
            let res = post_thing(&server, "same-key", None, json!({ "name": "once" })).await;
            let status = res.status().as_u16();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            let retry_after =
                res.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let body = res.bytes().await.expect("body");
            (status, replayed, retry_after, body)
        });
    }
    let answers = tasks.join_all().await;
    assert_eq!(server.state.executions.load(Ordering::SeqCst), 1, "the handler ran more than once");
    let created: Vec<_> = answers.iter().filter(|a| a.0 == 201).collect();
    assert_eq!(created.iter().filter(|a| !a.1).count(), 1, "exactly one original response");
    assert!(created.iter().all(|a| a.3 == created[0].3), "replays differ from the original");
    for (status, _, retry_after, body) in &answers {
        match status {
            201 => {}
            409 => {
                assert!(retry_after.is_some_and(|s| s >= 1), "409 without Retry-After");
                let body: Value = serde_json::from_slice(body).expect("JSON body");
                assert_eq!(body["code"], "idempotency_key_in_use");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // Once done, every retry is a replay.
    let res = post_thing(&server, "same-key", None, json!({ "name": "once" })).await;
    assert_eq!((res.status().as_u16(), header(&res, "idempotent-replayed")), (201, "true"));
}

#[tokio::test]
async fn a_key_reused_with_another_payload_is_refused() {
    let server = start("standard", 1000).await;
    assert_eq!(post_thing(&server, "k", None, json!({ "name": "a" })).await.status(), 201);
    let res = post_thing(&server, "k", None, json!({ "name": "b" })).await;
    assert_eq!(res.status(), 422);
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(body["code"], "idempotency_key_reused");
    // Another path with the same key and body is another payload too.
    let res = server
        .client
        .post(server.url("/v1/flaky"))
        .header("idempotency-key", "k")
        .json(&json!({ "name": "a" }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 422);
    assert_eq!(server.state.executions.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_server_error_is_not_stored() {
    let server = start("standard", 1000).await;
    let send = || {
        server
            .client
            .post(server.url("/v1/flaky"))
            .header("idempotency-key", "retry-me")
            .json(&json!({}))
            .send()
    };
    let first = send().await.expect("request");
    assert_eq!(first.status(), 500);
    let body = first.text().await.expect("body");
    assert!(!body.contains("injected"), "the cause leaked: {body}");
    // The retry runs again and its success is what is stored.
    let second = send().await.expect("request");
    assert_eq!(second.status(), 201);
    assert!(second.headers().get("idempotent-replayed").is_none());
    let second_body = second.bytes().await.expect("body");
    let third = send().await.expect("request");
    assert_eq!(header(&third, "idempotent-replayed"), "true");
    assert_eq!(third.bytes().await.expect("body"), second_body);
    assert_eq!(server.state.flaky.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_panic_or_a_client_gone_releases_the_key() {
    let server = start("standard", 1000).await;
    let send = |timeout: Duration| {
        server
            .client
            .post(server.url("/v1/fragile"))
            .header("idempotency-key", "fragile")
            .timeout(timeout)
            .json(&json!({}))
            .send()
    };
    // The handler panics: the connection is dropped without a response.
    assert!(send(Duration::from_secs(5)).await.is_err());
    // The lock was released, so the retry runs; this time the client gives up first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(send(Duration::from_millis(300)).await.is_err());
    assert_eq!(server.state.fragile.load(Ordering::SeqCst), 2);
    // Dropping the request released the lock again: the next retry runs and completes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = send(Duration::from_secs(5)).await.expect("request");
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(server.state.fragile.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_stored_client_error_is_replayed_as_rendered() {
    let server = start("standard", 1000).await;
    let send = || {
        server
            .client
            .post(server.url("/v1/things"))
            .header("idempotency-key", "bad-json")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
    };
    let first = send().await.expect("request");
    assert_eq!(first.status(), 400);
    let first_body = first.bytes().await.expect("body");
    let again = send().await.expect("request");
    assert_eq!(again.status(), 400);
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_eq!(header(&again, "content-type"), "application/problem+json");
    assert_eq!(again.bytes().await.expect("body"), first_body);
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller() {
    let server = start("standard", 1000).await;
    let a = post_thing(&server, "shared", Some("Bearer caller-a"), json!({ "name": "x" })).await;
    let b = post_thing(&server, "shared", Some("Bearer caller-b"), json!({ "name": "x" })).await;
    assert_eq!((a.status(), b.status()), (StatusCode::CREATED, StatusCode::CREATED));
    assert!(a.headers().get("idempotent-replayed").is_none());
    assert!(b.headers().get("idempotent-replayed").is_none());
    assert_eq!(server.state.executions.load(Ordering::SeqCst), 2);
    let a_again = post_thing(&server, "shared", Some("Bearer caller-a"), json!({ "name": "x" })).await;
    assert_eq!(header(&a_again, "idempotent-replayed"), "true");
    assert_eq!(server.state.executions.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn malformed_keys_and_large_bodies_are_refused() {
    let server = start("standard", 1000).await;
    let long = "k".repeat(256);
    let res = post_thing(&server, &long, None, json!({})).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(body["code"], "bad_request");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("Idempotency-Key")));

    let big = vec![b' '; 1024 * 1024 + 1];
    let res = server
        .client
        .post(server.url("/v1/things"))
        .header("idempotency-key", "big")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(server.state.executions.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_quota_past_its_limit_is_402() {
    let server = start("standard", 1000).await;
    let generate = |rows: u64| {
        server
            .client
            .post(server.url("/v1/generate"))
            .header("x-org", "org_q")
            .json(&json!({ "n_samples": rows }))
            .send()
    };
    let res = generate(60).await.expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.expect("JSON body"), json!({ "used": 60, "limit": 100 }));
    let res = generate(41).await.expect("request");
    assert_eq!(res.status(), 402);
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(body["code"], "quota_exceeded");
    assert_eq!(body["usage"]["used"], 60, "{body}");
    assert_eq!(body["usage"]["limit"], 100, "{body}");
    // Nothing was recorded for the refusal: the rest of the quota is still there.
    let res = generate(40).await.expect("request");
    assert_eq!(res.json::<Value>().await.expect("JSON body"), json!({ "used": 100, "limit": 100 }));
}

#[tokio::test]
async fn dataxid_rate_limit_matches_the_seed() {
    let server = start("dataxid", 5).await;
    for _ in 0..5 {
        let res = server.client.get(server.url("/v1/ping")).send().await.expect("request");
        assert_eq!(res.status(), 200);
    }
    let res = server.client.get(server.url("/v1/ping")).send().await.expect("request");
    assert_eq!(res.status(), 429);
    assert_eq!(header(&res, "x-ratelimit-limit"), "5");
    assert_eq!(header(&res, "x-ratelimit-remaining"), "0");
    let reset: u64 = header(&res, "x-ratelimit-reset").parse().expect("reset is Unix seconds");
    assert!(reset > unix_now());
    let retry = header(&res, "retry-after").to_owned();
    let request_id = header(&res, "x-request-id").to_owned();
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(
        body,
        json!({
            "error": {
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
                "message": format!("Rate limit exceeded. Retry after {retry} seconds."),
                "doc_url": "https://docs.dataxid.com/docs/errors#rate_limit_exceeded"
            },
            "request_id": request_id
        })
    );
}
