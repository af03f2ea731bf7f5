//! Servers to probe: the reference API on 127.0.0.1:0 over a fresh SQLite file, a sloppy
//! API that gets four things wrong, and a counter of what reaches a port.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rebuff_core::Catalog;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};

/// The reference API, running until dropped.
pub struct Reference {
    pub base: String,
    pub admin: String,
    db: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for ext in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(self.db.with_extension(ext));
        }
    }
}

fn temp_db(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!(
        "rebuff-probe-test-{tag}-{}-{}-{nanos}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Starts the reference API in `profile` with an admin key, `rate` requests a minute per
/// organisation, and one project (so that the probe has an id to imitate).
pub async fn reference(profile: &str, rate: u32) -> Reference {
    let catalog = Catalog::builtin(profile).expect("built-in profile");
    let db = temp_db(profile);
    let store = SqliteStore::open(&db).expect("open");
    let org = store.get_or_create_org("acme").await.expect("org").id;
    let (_, admin) = store
        .create_key(NewKey {
            org_id: org,
            name: "probe".into(),
            scopes: vec!["read".into(), "write".into(), "admin".into()],
            expires_at: None,
            allowed_ips: Vec::new(),
            live: false,
        })
        .await
        .expect("key");
    let mut config = Config::new(Arc::new(catalog.clone()));
    config.rate_limit.limit = rate;
    config.body_limit = 64 * 1024;
    let state = AppState::new(config, store).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rebuff_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    let server = Reference { base: format!("http://{addr}"), admin, db, shutdown: Some(tx) };
    let res = reqwest::Client::new()
        .post(format!("{}/v1/projects", server.base))
        .bearer_auth(&server.admin)
        .json(&serde_json::json!({"name": "probed"}))
        .send()
        .await
        .expect("create a project");
    assert_eq!(res.status(), 201, "create a project");
    server
}

/// Serves `app` on 127.0.0.1:0 until the test ends; returns the base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A port nobody listens on.
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// The sloppy API: RFC 9457 everywhere with request ids and the right statuses, except that
// malformed JSON crashes into a plain-text 500 with a stack trace, 415s come in another
// envelope, 429 has no Retry-After and 405 has no Allow.
// ---------------------------------------------------------------------------------------------

pub const SLOPPY_KEY: &str = "sk_test_4f9a1c2b7d3e8f60";

/// Requests the sloppy API admits per run before answering 429.
const SLOPPY_LIMIT: usize = 3;

fn problem(status: StatusCode, code: &str, detail: &str, rid: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("https://sloppy.example/errors#{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
        "request_id": rid,
    });
    (
        status,
        [
            (header::CONTENT_TYPE, "application/problem+json"),
            (header::HeaderName::from_static("x-request-id"), rid),
        ],
        body.to_string(),
    )
        .into_response()
}

fn with_challenge(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"api\""));
    res
}

/// The sloppy API's router; `hits` counts the collection's successful `GET`s for its limit.
pub fn sloppy() -> Router {
    let hits = Arc::new(AtomicUsize::new(0));
    let seq = Arc::new(AtomicUsize::new(0));
    Router::new().fallback(move |req: Request| {
        let hits = hits.clone();
        let n = seq.fetch_add(1, Ordering::Relaxed);
        async move { sloppy_answer(req, &hits, n).await }
    })
}

async fn sloppy_answer(req: Request, hits: &AtomicUsize, n: usize) -> Response {
    let rid = format!("req_sloppy_{n}");
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return problem(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "The body is over 64 KiB.", &rid);
        }
    };
    let path = parts.uri.path().to_owned();
    if path == "/openapi.json" {
        return axum::Json(sloppy_openapi()).into_response();
    }
    let auth = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !auth.is_empty() || path.starts_with("/v1/") {
        match auth.strip_prefix("Bearer ") {
            None => return with_challenge(problem(StatusCode::UNAUTHORIZED, "no_key", "Send a key.", &rid)),
            Some(k) if k != SLOPPY_KEY => {
                return with_challenge(problem(StatusCode::UNAUTHORIZED, "bad_key", "Unknown key.", &rid));
            }
            Some(_) => {}
        }
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (segments.as_slice(), &parts.method) {
        (["v1", "things"], &Method::GET) => {
            if hits.fetch_add(1, Ordering::Relaxed) >= SLOPPY_LIMIT {
                // Sloppy: no Retry-After.
                return problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Slow down.", &rid);
            }
            let mut res =
                axum::Json(serde_json::json!({"data": [{"id": "thg_7c1e9a0b4d2f"}]})).into_response();
            res.headers_mut().insert("x-request-id", header::HeaderValue::from_str(&rid).expect("ascii"));
            res
        }
        (["v1", "things"], &Method::POST) => sloppy_create(&parts.headers, &body, &rid),
        (["v1", "things"], _) => {
            // Sloppy: no Allow.
            problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Use GET or POST.", &rid)
        }
        (["v1", "things", id], &Method::GET) => {
            let well_formed = id
                .strip_prefix("thg_")
                .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if well_formed {
                problem(StatusCode::NOT_FOUND, "not_found", &format!("No thing {id}."), &rid)
            } else {
                problem(StatusCode::BAD_REQUEST, "invalid_id", "Ids look like thg_ and 12 hex digits.", &rid)
            }
        }
        _ => problem(StatusCode::NOT_FOUND, "not_found", "No such route.", &rid),
    }
}

fn sloppy_create(headers: &HeaderMap, body: &[u8], rid: &str) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/json") {
        // Sloppy: another envelope for 415s.
        let mut res = (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(serde_json::json!({"detail": "Send application/json.", "request_id": rid})),
        )
            .into_response();
        res.headers_mut().insert("x-request-id", header::HeaderValue::from_str(rid).expect("ascii"));
        return res;
    }
    let v: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            // Sloppy: a crash, as plain text, with the trace.
            let trace = "thread 'tokio-runtime-worker' panicked at src/handlers/things.rs:42:31:\n\
                         called `Result::unwrap()` on an `Err` value: Error(\"EOF while parsing a list\")\n\
                         stack backtrace:\n   0: rust_begin_unwind\n";
            let mut res = (StatusCode::INTERNAL_SERVER_ERROR, trace).into_response();
            res.headers_mut().insert("x-request-id", header::HeaderValue::from_str(rid).expect("ascii"));
            return res;
        }
    };
    if headers.contains_key("idempotency-key") && v.get("name").is_some_and(|n| n.as_u64() == Some(12_347)) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", "Another payload.", rid);
    }
    if !v.get("name").is_some_and(serde_json::Value::is_string) {
        return problem(StatusCode::BAD_REQUEST, "invalid_body", "`name` must be a string.", rid);
    }
    problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", "Nothing is ever valid here.", rid)
}

/// The sloppy API's OpenAPI document.
pub fn sloppy_openapi() -> serde_json::Value {
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "sloppy", "version": "1"},
        "security": [{"key": []}],
        "paths": {
            "/v1/things": {
                "get": {"responses": {"200": {"description": "ok"}}},
                "post": {"requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
                    "responses": {"201": {"description": "ok"}}}
            },
            "/v1/things/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}
        }
    })
}

// ---------------------------------------------------------------------------------------------
// A counting server: answers everything with a 404 problem and records what it saw.
// ---------------------------------------------------------------------------------------------

/// A request as a counting server saw it: method, target, `Host`.
pub type SeenRequest = (Method, String, Option<String>);

/// What a counting server saw.
#[derive(Clone, Default)]
pub struct Seen {
    pub requests: Arc<Mutex<Vec<SeenRequest>>>,
}

impl Seen {
    pub fn count(&self) -> usize {
        self.requests.lock().map(|r| r.len()).unwrap_or(0)
    }

    pub fn hosts(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.iter().filter_map(|(_, _, h)| h.clone()).collect()).unwrap_or_default()
    }
}

/// A server that counts every request and answers it with `status` (a 429 with
/// `Retry-After` for everything, say, or 200 to invite a long burst).
pub fn counting(seen: Seen, status: StatusCode, location: Option<String>) -> Router {
    Router::new().fallback(move |req: Request| {
        let seen = seen.clone();
        let location = location.clone();
        async move {
            let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned);
            if let Ok(mut r) = seen.requests.lock() {
                r.push((req.method().clone(), req.uri().to_string(), host));
            }
            let mut res = if status.is_success() {
                axum::Json(serde_json::json!({"data": []})).into_response()
            } else {
                problem(status, "nope", "Nope.", "req_count")
            };
            *res.status_mut() = status;
            if let Some(l) = location {
                res.headers_mut().insert(header::LOCATION, header::HeaderValue::from_str(&l).expect("ascii"));
            }
            res
        }
    })
}

pub mod tls;

// ---------------------------------------------------------------------------------------------
// A rate limit in front of any router: `per_second` requests a wall-clock second, each answer
// saying what is left (`RateLimit`, `RateLimit-Policy`), then 429 with `Retry-After: 1`, as
// `rebuff serve` answers a second probe run.
// ---------------------------------------------------------------------------------------------

/// `app` behind a limit of `per_second` requests in each second; counts the 429s in `limited`.
pub fn rate_limited(app: Router, per_second: usize, limited: Arc<AtomicUsize>) -> Router {
    let window = Arc::new(Mutex::new((std::time::Instant::now(), 0usize)));
    app.layer(axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
        let window = window.clone();
        let limited = limited.clone();
        async move {
            let (admitted, left) = match window.lock() {
                Ok(mut w) => {
                    if w.0.elapsed() >= std::time::Duration::from_secs(1) {
                        *w = (std::time::Instant::now(), 0);
                    }
                    w.1 += 1;
                    (w.1 <= per_second, per_second.saturating_sub(w.1))
                }
                Err(_) => (true, per_second),
            };
            if admitted {
                // What is left, as draft-ietf-httpapi-ratelimit-headers-09 says it.
                let mut res = next.run(req).await;
                let state = format!("\"default\";r={left};t=1");
                let policy = format!("\"default\";q={per_second};w=1");
                for (name, value) in [("ratelimit", state), ("ratelimit-policy", policy)] {
                    if let Ok(v) = header::HeaderValue::from_str(&value) {
                        res.headers_mut().insert(name, v);
                    }
                }
                return res;
            }
            limited.fetch_add(1, Ordering::Relaxed);
            let mut res = problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Slow down.", "req_limited");
            res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            res.headers_mut().insert("ratelimit", header::HeaderValue::from_static("\"default\";r=0;t=1"));
            res
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// An API that reads its key from one place only, as its OpenAPI document's security scheme
// says, and records every credential it was sent there.
// ---------------------------------------------------------------------------------------------

/// Where the keyed API reads its key.
#[derive(Debug, Clone, Copy)]
pub enum KeyIn {
    Header,
    Query,
    Cookie,
    Basic,
}

/// The credential the keyed API accepts (for `Basic`: `user:password`).
pub const KEYED_KEY: &str = "ak_test_9c4e2a7b1d";

/// The keyed API: `GET /things` (200 with the key), `POST /things` (400 for any body), and
/// its document at `/openapi.json`; `seen` gets every credential sent where the key goes.
pub fn keyed(key_in: KeyIn, seen: Arc<Mutex<Vec<String>>>) -> Router {
    Router::new().fallback(move |req: Request| {
        let seen = seen.clone();
        async move {
            if req.uri().path() == "/openapi.json" {
                return axum::Json(keyed_openapi(key_in)).into_response();
            }
            let headers = req.headers();
            let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let sent: Option<String> = match key_in {
                KeyIn::Header => header("x-api-key"),
                KeyIn::Query => req.uri().query().and_then(|q| {
                    q.split('&').find_map(|kv| kv.strip_prefix("api_key=")).map(percent_decode)
                }),
                KeyIn::Cookie => header("cookie").and_then(|c| {
                    c.split(';').find_map(|kv| kv.trim().strip_prefix("sid=")).map(percent_decode)
                }),
                KeyIn::Basic => header("authorization").and_then(|a| {
                    let b64 = a.strip_prefix("Basic ")?;
                    use base64::Engine as _;
                    match base64::engine::general_purpose::STANDARD.decode(b64) {
                        Ok(raw) => Some(String::from_utf8_lossy(&raw).into_owned()),
                        Err(_) => Some(format!("not base64: {b64}")),
                    }
                }),
            };
            if let Some(s) = &sent
                && let Ok(mut list) = seen.lock()
            {
                list.push(s.clone());
            }
            if sent.as_deref() != Some(KEYED_KEY) {
                return with_challenge(problem(StatusCode::UNAUTHORIZED, "no_key", "Send the key.", "req_k"));
            }
            match (req.uri().path(), req.method()) {
                ("/things", &Method::GET) => axum::Json(serde_json::json!([])).into_response(),
                ("/things", &Method::POST) => {
                    problem(StatusCode::BAD_REQUEST, "invalid", "Invalid.", "req_k")
                }
                ("/things", _) => {
                    let mut res = problem(StatusCode::METHOD_NOT_ALLOWED, "method", "No.", "req_k");
                    res.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
                    res
                }
                _ => problem(StatusCode::NOT_FOUND, "not_found", "No such thing.", "req_k"),
            }
        }
    })
}

fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()
}

fn keyed_openapi(key_in: KeyIn) -> serde_json::Value {
    let scheme = match key_in {
        KeyIn::Header => serde_json::json!({"type": "apiKey", "in": "header", "name": "X-API-Key"}),
        KeyIn::Query => serde_json::json!({"type": "apiKey", "in": "query", "name": "api_key"}),
        KeyIn::Cookie => serde_json::json!({"type": "apiKey", "in": "cookie", "name": "sid"}),
        KeyIn::Basic => serde_json::json!({"type": "http", "scheme": "basic"}),
    };
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "keyed", "version": "1"},
        "components": {"securitySchemes": {"theKey": scheme}},
        "security": [{"theKey": []}],
        "paths": {"/things": {
            "get": {"responses": {"200": {"description": "ok"}}},
            "post": {"requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
                "responses": {"201": {"description": "ok"}}}
        }}
    })
}
