//! The rate limit and the idempotency lookup decided in one store operation
//! (`RateLimitLayer::idempotency`), and what happens when storing a completion fails. Over real
//! HTTP on loopback, with the in-memory store wrapped to count and to fail on demand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use rebuff::Catalog;
use rebuff_axum::idempotency::IdempotencyLayer;
use rebuff_axum::ratelimit::RateLimitLayer;
use rebuff_axum::store::memory::MemoryStore;
use rebuff_axum::store::{
    Admission, Begin, BeginRequest, BoxFuture, Decision, IdempotencyStore, Quota, RateLimitStore, StoreError,
    StoredResponse,
};
use rebuff_axum::{ProblemLayer, RequestIdLayer};
use serde_json::{Value, json};

/// A [`MemoryStore`] that counts its calls and can fail `complete`.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    checks: AtomicUsize,
    combined: AtomicUsize,
    begins: AtomicUsize,
    /// What the combined calls began, in order.
    began: std::sync::Mutex<Vec<Option<Begin>>>,
    /// `complete` fails as unavailable this many more times.
    complete_unavailable: AtomicUsize,
    /// `complete` always fails as a backend error.
    complete_broken: bool,
}

impl RateLimitStore for Counting {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.check(key, quota, now)
    }

    fn check_and_begin<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now: u128,
        begin: BeginRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<Admission, StoreError>>> {
        self.combined.fetch_add(1, Ordering::SeqCst);
        let call = self.inner.check_and_begin(key, quota, now, begin)?;
        Some(Box::pin(async move {
            let admission = call.await?;
            self.began.lock().expect("log").push(admission.begin.clone());
            Ok(admission)
        }))
    }
}

impl IdempotencyStore for Counting {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        lock_ttl: Duration,
    ) -> BoxFuture<'a, Result<Begin, StoreError>> {
        self.begins.fetch_add(1, Ordering::SeqCst);
        self.inner.begin(key, fingerprint, lock_ttl)
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        response: StoredResponse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        if self.complete_broken {
            return Box::pin(async { Err(StoreError::backend("injected: the write was refused")) });
        }
        let unavailable =
            self.complete_unavailable.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if unavailable.is_ok() {
            return Box::pin(async { Err(StoreError::unavailable("injected: connection reset")) });
        }
        self.inner.complete(key, fingerprint, response, ttl)
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.release(key)
    }
}

struct Server {
    base: String,
    http: reqwest::Client,
    store: Arc<Counting>,
    runs: Arc<AtomicUsize>,
}

/// Serves `POST /v1/things` (counted) behind the rate limit (5 a minute), combined with the
/// idempotency layer on the same store; without the idempotency layer itself when
/// `idempotency_inside` is false (a misconfiguration).
async fn start(store: Counting, idempotency_inside: bool) -> Server {
    let store = Arc::new(store);
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let handler = post(move |axum::Json(body): axum::Json<Value>| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { (StatusCode::CREATED, axum::Json(json!({ "run": n, "input": body }))) }
    });
    let problems = ProblemLayer::new(Arc::new(Catalog::builtin("standard").expect("catalog").clone()));
    let idempotency = IdempotencyLayer::new(store.clone()).lock_ttl(Duration::from_secs(60));
    let limit = RateLimitLayer::new(store.clone(), Quota { limit: 5, period: Duration::from_secs(60) })
        .idempotency(&idempotency);
    let mut app = Router::new().route("/v1/things", handler).layer(problems.clone());
    if idempotency_inside {
        app = app.layer(idempotency);
    }
    let app = app.layer(limit).layer(problems).layer(RequestIdLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
    });
    Server { base, http: reqwest::Client::new(), store, runs }
}

impl Server {
    async fn post(&self, key: Option<&str>, body: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.post(format!("{}/v1/things", self.base)).json(&body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let res = req.send().await.expect("request");
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.json().await.unwrap_or(Value::Null))
    }

    fn counts(&self) -> (usize, usize, usize) {
        let s = &self.store;
        (s.checks.load(Ordering::SeqCst), s.combined.load(Ordering::SeqCst), s.begins.load(Ordering::SeqCst))
    }
}

fn remaining(headers: &reqwest::header::HeaderMap) -> Option<&str> {
    headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn an_idempotent_post_costs_one_store_operation_before_its_handler() {
    let s = start(Counting::default(), true).await;

    let (status, headers, first) = s.post(Some("k1"), json!({"name": "a"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(remaining(&headers), Some("4"));
    assert_eq!(s.counts(), (0, 1, 0), "(checks, combined, begins) after the first POST");

    let (status, headers, replay) = s.post(Some("k1"), json!({"name": "a"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(remaining(&headers), Some("3"), "a replay counts against the limit, and says so");
    assert_eq!(replay, first);

    let (status, _, problem) = s.post(Some("k1"), json!({"name": "b"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "idempotency_key_reused");

    // Without a key: a plain decision.
    let (status, headers, _) = s.post(None, json!({"name": "c"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(remaining(&headers), Some("1"));
    assert_eq!(s.counts(), (1, 3, 0));
    assert_eq!(s.runs.load(Ordering::SeqCst), 2, "the handler ran for the first POST and the keyless one");

    // Over the limit: refused before any record is begun.
    let (status, _, _) = s.post(Some("k2"), json!({"name": "d"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, problem) = s.post(Some("k3"), json!({"name": "e"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert!(headers.get("retry-after").is_some());
    assert_eq!(s.store.began.lock().expect("log").last(), Some(&None), "a refused request began a record");
    assert_eq!(s.runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_lock_begun_for_a_missing_idempotency_layer_is_released() {
    let s = start(Counting::default(), false).await;
    assert_eq!(s.post(Some("k"), json!({})).await.0, StatusCode::CREATED);
    // The release runs in the background.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.post(Some("k"), json!({})).await.0, StatusCode::CREATED);
    let began = s.store.began.lock().expect("log").clone();
    assert_eq!(began, [Some(Begin::Started), Some(Begin::Started)], "the first lock was left behind");
}

#[tokio::test]
async fn a_completion_is_stored_once_the_store_answers_again() {
    let store = Counting { complete_unavailable: AtomicUsize::new(3), ..Counting::default() };
    let s = start(store, true).await;
    let (status, _, first) = s.post(Some("k"), json!({"name": "a"})).await;
    assert_eq!(status, StatusCode::CREATED);
    // The response was sent without waiting for the store; the completion is stored in the
    // background. Meanwhile a retry is told the outcome is being recovered, never run.
    let (status, headers, replay) = loop {
        let (status, headers, body) = s.post(Some("k"), json!({"name": "a"})).await;
        if status != StatusCode::CONFLICT {
            break (status, headers, body);
        }
        assert_eq!(body["code"], "idempotency_key_in_use", "{body}");
        assert!(headers.get("retry-after").is_some());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(replay, first);
    assert_eq!(s.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_completion_that_cannot_be_stored_keeps_its_lock() {
    let s = start(Counting { complete_broken: true, ..Counting::default() }, true).await;
    let (status, _, _) = s.post(Some("k"), json!({"name": "a"})).await;
    assert_eq!(status, StatusCode::CREATED, "the operation happened: its answer is sent");
    let (status, headers, problem) = s.post(Some("k"), json!({"name": "a"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "idempotency_key_in_use");
    assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(s.runs.load(Ordering::SeqCst), 1, "the retry ran the operation again");
}
