//! Extractor rejections, fallback, 405, body limits, panics and timeouts as catalog errors,
//! over real HTTP on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use http::StatusCode;
use rebuff::Catalog;
use rebuff_axum::extract::{Json, Path, Query, fallback};
use rebuff_axum::panic::{body_timeout, catch_panic, timeout};
use rebuff_axum::validate::{Valid, Validate, Violations};
use rebuff_axum::{ProblemLayer, RequestIdLayer};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_http::limit::RequestBodyLimitLayer;

// ---- the app under test -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct NewModel {
    name: String,
    model_type: String,
    config: ModelConfig,
}

#[derive(Debug, Deserialize)]
struct ModelConfig {
    batch_size: i64,
}

const MODEL_TYPES: &[&str] = &["gan", "vae", "transformer"];

impl Validate for NewModel {
    fn validate(&self, v: &mut Violations) {
        if self.name.trim().is_empty() {
            v.required("/name");
        }
        if !MODEL_TYPES.contains(&self.model_type.as_str()) {
            v.one_of("/model_type", MODEL_TYPES);
        }
        v.range("/config/batch_size", self.config.batch_size, 1..);
    }
}

#[derive(Debug, Deserialize)]
struct Paging {
    limit: Option<u32>,
}

async fn create_model(Valid(m): Valid<NewModel>) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({ "name": m.name, "batch_size": m.config.batch_size })))
}

async fn list_models(Query(p): Query<Paging>) -> Json<Value> {
    Json(json!({ "limit": p.limit.unwrap_or(10), "data": [] }))
}

async fn get_item(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({ "id": id }))
}

async fn echo(Json(v): Json<Value>) -> Json<Value> {
    Json(v)
}

const PANIC_MESSAGE: &str = "connection to postgres://admin:hunter2@db failed";

async fn boom() -> &'static str {
    panic!("{PANIC_MESSAGE}")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(10)).await;
    "too late"
}

/// `/models` takes at most 1 KiB (axum's `DefaultBodyLimit`); every route at most 512 KiB
/// (tower-http's `RequestBodyLimitLayer`).
const SMALL_LIMIT: usize = 1024;
const LARGE_LIMIT: usize = 512 * 1024;

fn app(catalog: &Catalog) -> Router {
    Router::new()
        .route("/models", post(create_model).get(list_models).layer(DefaultBodyLimit::max(SMALL_LIMIT)))
        .route("/items/{id}", get(get_item))
        .route("/echo", post(echo).layer(DefaultBodyLimit::disable()))
        .route("/panic", get(boom))
        .route("/slow", get(slow))
        .fallback(fallback)
        .layer(catch_panic())
        .layer(timeout(Duration::from_millis(1000)))
        .layer(body_timeout(Duration::from_millis(200)))
        .layer(RequestBodyLimitLayer::new(LARGE_LIMIT))
        .layer(ProblemLayer::new(Arc::new(catalog.clone())))
        .layer(RequestIdLayer::new())
}

async fn spawn(catalog: &Catalog) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let app = app(catalog);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

fn standard() -> &'static Catalog {
    Catalog::standard()
}

fn arize() -> &'static Catalog {
    Catalog::builtin("arize").expect("the arize profile is built in")
}

// ---- helpers ------------------------------------------------------------------------------

/// What a client sees: status, headers and the JSON body.
#[derive(Debug)]
struct Seen {
    status: u16,
    headers: http::HeaderMap,
    body: Value,
}

impl Seen {
    async fn from(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Seen { status, headers, body }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn str(&self, member: &str) -> &str {
        self.body[member].as_str().unwrap_or_default()
    }

    fn pointers(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["pointer"].as_str()).collect())
            .unwrap_or_default()
    }

    /// A problem body in the rebuff profile: status, media type, code, and the request id in
    /// the header and the body.
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:#?}");
        assert_eq!(self.header("content-type"), "application/problem+json", "{self:#?}");
        assert_eq!(self.str("code"), code, "{self:#?}");
        assert_eq!(self.body["status"], status, "{self:#?}");
        let id = self.header("x-request-id");
        assert!(id.starts_with("req_"), "{self:#?}");
        assert_eq!(self.str("request_id"), id, "{self:#?}");
    }
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn start(catalog: &Catalog) -> Self {
        let addr = spawn(catalog).await;
        Client { base: format!("http://{addr}"), http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> Seen {
        Seen::from(self.http.get(self.url(path)).send().await.expect("send")).await
    }

    async fn post(&self, path: &str, content_type: Option<&str>, body: impl Into<reqwest::Body>) -> Seen {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Seen::from(req.send().await.expect("send")).await
    }

    async fn post_json(&self, path: &str, body: &str) -> Seen {
        self.post(path, Some("application/json"), body.to_owned()).await
    }
}

/// Sends raw bytes (what reqwest refuses to send) and returns the raw response.
async fn raw(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A raw response's status and body (`Connection: close`, so the body runs to the end; a
/// chunked body is decoded).
fn split_raw(response: &str) -> (u16, String, Value) {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_owned()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, head.to_owned(), json)
}

const VALID: &str = r#"{"name": "churn", "model_type": "gan", "config": {"batch_size": 32}}"#;

// ---- JSON bodies ----------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_body_is_accepted() {
    let c = Client::start(standard()).await;
    let res = c.post_json("/models", VALID).await;
    assert_eq!(res.status, 201, "{res:#?}");
    assert_eq!(res.body, json!({ "name": "churn", "batch_size": 32 }));
    assert!(res.header("x-request-id").starts_with("req_"));
    for ct in ["application/json; charset=utf-8", "application/vnd.api+json"] {
        assert_eq!(c.post("/models", Some(ct), VALID).await.status, 201, "{ct}");
    }
}

#[tokio::test]
async fn malformed_json_names_line_and_column() {
    let c = Client::start(standard()).await;
    let res = c.post_json("/models", "{\"name\": \"churn\",\n \"config\": }").await;
    res.assert_problem(400, "invalid_json");
    assert_eq!(res.str("detail"), "JSON parse error: expected value at line 2 column 12 (byte offset 29)");
    assert_eq!(res.body["errors"], Value::Null);

    let res = c.post_json("/models", "").await;
    res.assert_problem(400, "invalid_json");
    assert!(res.str("detail").contains("EOF while parsing a value at line 1 column 0"), "{res:#?}");
}

#[tokio::test]
async fn a_field_of_the_wrong_type() {
    let c = Client::start(standard()).await;
    let body = r#"{"name": "churn", "model_type": "gan", "config": {"batch_size": "large"}}"#;
    let res = c.post_json("/models", body).await;
    res.assert_problem(400, "wrong_field_type");
    assert_eq!(res.pointers(), ["/config/batch_size"]);
    assert_eq!(res.body["errors"][0]["reason"], "type");
    assert_eq!(res.body["errors"][0]["location"], "body");
    assert_eq!(res.str("param"), "config.batch_size");
}

#[tokio::test]
async fn a_missing_field() {
    let c = Client::start(standard()).await;
    let res = c.post_json("/models", r#"{"model_type": "gan", "config": {"batch_size": 1}}"#).await;
    res.assert_problem(422, "missing_required_field");
    assert_eq!(res.pointers(), ["/name"]);
    assert_eq!(res.body["errors"][0]["reason"], "required");
    assert_eq!(res.str("param"), "name");

    let res = c.post_json("/models", r#"{"name": "x", "model_type": "gan", "config": {}}"#).await;
    res.assert_problem(422, "missing_required_field");
    assert_eq!(res.pointers(), ["/config/batch_size"]);
}

#[tokio::test]
async fn one_semantic_violation_keeps_its_code() {
    let c = Client::start(standard()).await;
    let res =
        c.post_json("/models", r#"{"name": "x", "model_type": "rnn", "config": {"batch_size": 1}}"#).await;
    res.assert_problem(422, "invalid_enum_value");
    assert_eq!(res.pointers(), ["/model_type"]);
    assert_eq!(res.body["errors"][0]["detail"], "Must be one of: gan, vae, transformer.");

    let res =
        c.post_json("/models", r#"{"name": "x", "model_type": "gan", "config": {"batch_size": 0}}"#).await;
    res.assert_problem(422, "invalid_field_value");
    assert_eq!(res.pointers(), ["/config/batch_size"]);
}

#[tokio::test]
async fn several_invalid_fields_at_once() {
    let c = Client::start(standard()).await;
    let res =
        c.post_json("/models", r#"{"name": " ", "model_type": "rnn", "config": {"batch_size": 0}}"#).await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.pointers(), ["/name", "/model_type", "/config/batch_size"]);
    let reasons: Vec<_> = res.body["errors"].as_array().into_iter().flatten().map(|e| &e["reason"]).collect();
    assert_eq!(reasons, ["required", "enum", "range"]);
}

#[tokio::test]
async fn content_type_must_be_json() {
    let c = Client::start(standard()).await;
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let res = c.post("/models", ct, VALID).await;
        res.assert_problem(415, "unsupported_media_type");
        assert_eq!(res.str("detail"), "Content-Type must be application/json");
    }
}

#[tokio::test]
async fn a_body_over_the_limit() {
    let c = Client::start(standard()).await;
    let addr = c.base.trim_start_matches("http://").to_owned();
    let big = format!(r#"{{"name": "{}"}}"#, "a".repeat(SMALL_LIMIT));

    // With Content-Length, over axum's DefaultBodyLimit.
    let res = c.post_json("/models", &big).await;
    res.assert_problem(413, "payload_too_large");

    // Chunked, over axum's DefaultBodyLimit.
    let chunked = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    let (status, head, body) = split_raw(&raw(&addr, chunked("/models", &big).as_bytes()).await);
    assert_eq!(status, 413, "{head}");
    assert_eq!(body["code"], "payload_too_large");
    assert!(head.to_ascii_lowercase().contains("content-type: application/problem+json"), "{head}");

    // With Content-Length, over tower-http's RequestBodyLimitLayer: refused before the handler.
    let huge = format!("[\"{}\"]", "a".repeat(LARGE_LIMIT));
    let res = c.post_json("/echo", &huge).await;
    res.assert_problem(413, "payload_too_large");

    // Chunked, over tower-http's limit while the body is read.
    let (status, head, body) = split_raw(&raw(&addr, chunked("/echo", &huge).as_bytes()).await);
    assert_eq!(status, 413, "{head}");
    assert_eq!(body["code"], "payload_too_large");
}

#[tokio::test]
async fn deeply_nested_json_is_invalid_not_a_crash() {
    let c = Client::start(standard()).await;
    let closed = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let res = c.post_json("/echo", &closed).await;
    res.assert_problem(400, "invalid_json");
    assert!(res.str("detail").contains("recursion limit exceeded"), "{res:#?}");

    let open = "[".repeat(100_000);
    c.post_json("/echo", &open).await.assert_problem(400, "invalid_json");
    // A typed body too, whose first error would otherwise be a type error.
    let nested_model = format!("{}{}", "[".repeat(500), "]".repeat(500));
    c.post_json("/models", &nested_model).await.assert_problem(400, "invalid_json");
    // And the server is still up.
    assert_eq!(c.post_json("/echo", "[1]").await.status, 200);
}

#[tokio::test]
async fn a_stalled_body_times_out() {
    let c = Client::start(standard()).await;
    let addr = c.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let head = "POST /models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\nConnection: close\r\n\r\n{\"name\": ";
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    let (status, head, body) = split_raw(&String::from_utf8_lossy(&out));
    assert_eq!(status, 408, "{head}");
    assert_eq!(body["code"], "request_timeout");
    assert!(body["request_id"].as_str().unwrap_or_default().starts_with("req_"));
}

// ---- path, query, routing -------------------------------------------------------------------

#[tokio::test]
async fn a_bad_path_id() {
    let c = Client::start(standard()).await;
    assert_eq!(c.get("/items/42").await.body, json!({ "id": 42 }));
    let res = c.get("/items/abc").await;
    res.assert_problem(400, "invalid_id");
    assert_eq!(res.str("param"), "id");
    assert_eq!(res.str("detail"), "`abc` is not a valid value for path parameter `id`.");
}

#[tokio::test]
async fn a_bad_query_parameter() {
    let c = Client::start(standard()).await;
    assert_eq!(c.get("/models?limit=5").await.body["limit"], 5);
    let res = c.get("/models?limit=ten").await;
    res.assert_problem(400, "invalid_query_parameter");
    assert_eq!(res.str("param"), "limit");
    assert!(res.str("detail").starts_with("Invalid query parameter `limit`"), "{res:#?}");
}

#[tokio::test]
async fn an_unknown_route() {
    let c = Client::start(standard()).await;
    let res = c.get("/nope/here").await;
    res.assert_problem(404, "resource_not_found");
    assert_eq!(res.str("detail"), "No route for GET /nope/here");

    let long = format!("/{}", "x".repeat(5000));
    let res = c.get(&long).await;
    res.assert_problem(404, "resource_not_found");
    assert!(res.str("detail").chars().count() <= 220, "{res:#?}");
}

#[tokio::test]
async fn a_wrong_method_lists_the_allowed_ones() {
    let c = Client::start(standard()).await;
    let res = Seen::from(c.http.delete(c.url("/items/1")).send().await.expect("send")).await;
    res.assert_problem(405, "method_not_allowed");
    let allow: Vec<_> = res.header("allow").split(',').map(str::trim).collect();
    assert!(allow.contains(&"GET"), "{res:#?}");
    assert!(!allow.contains(&"DELETE"), "{res:#?}");

    let res = Seen::from(c.http.put(c.url("/models")).send().await.expect("send")).await;
    res.assert_problem(405, "method_not_allowed");
    let allow = res.header("allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{res:#?}");
}

// ---- panics and timeouts ----------------------------------------------------------------------

#[tokio::test]
async fn a_panic_is_masked() {
    let c = Client::start(standard()).await;
    let res = c.get("/panic").await;
    res.assert_problem(500, "internal_error");
    let text = res.body.to_string();
    assert!(!text.contains("hunter2") && !text.contains("postgres"), "{text}");
    assert!(!text.to_lowercase().contains("panicked"), "{text}");
    // Still serving.
    assert_eq!(c.get("/items/1").await.status, 200);
}

#[tokio::test]
async fn a_slow_handler_times_out() {
    let c = Client::start(standard()).await;
    let res = c.get("/slow").await;
    res.assert_problem(504, "gateway_timeout");
}

// ---- request ids -----------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_incoming_request_id_is_echoed() {
    let c = Client::start(standard()).await;
    let res = c.http.post(c.url("/models")).header("x-request-id", "client-7f3a.01:x_y").body(VALID);
    let res = Seen::from(res.send().await.expect("send")).await;
    assert_eq!(res.status, 415);
    assert_eq!(res.header("x-request-id"), "client-7f3a.01:x_y");
    assert_eq!(res.str("request_id"), "client-7f3a.01:x_y");

    let ok = c.http.get(c.url("/items/3")).header("x-request-id", "abc-123").send().await.expect("send");
    assert_eq!(ok.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn a_malformed_request_id_is_never_reflected() {
    let c = Client::start(standard()).await;
    let too_long = "a".repeat(300);
    for bad in [too_long.as_str(), "has spaces", "<script>alert(1)</script>", "a\tb"] {
        let res = c.http.get(c.url("/nope")).header("x-request-id", bad).send().await.expect("send");
        let res = Seen::from(res).await;
        res.assert_problem(404, "resource_not_found");
        assert!(!res.body.to_string().contains(bad), "{res:#?}");
        assert_ne!(res.header("x-request-id"), bad);
    }

    let addr = c.base.trim_start_matches("http://").to_owned();
    let attacks: [&[u8]; 4] = [
        b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: evil\x01id\r\nConnection: close\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: evil\xffid\r\nConnection: close\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: evil\rSet-Cookie: injected=1\r\nConnection: close\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: evil\r\n Set-Cookie: injected=1\r\nConnection: close\r\n\r\n",
    ];
    for attack in attacks {
        let response = raw(&addr, attack).await;
        assert!(!response.contains("evil"), "{response}");
        assert!(!response.to_ascii_lowercase().contains("injected"), "{response}");
        let (status, head, body) = split_raw(&response);
        if status == 404 {
            // Accepted by the HTTP parser: a fresh id replaced the malformed one.
            assert!(head.to_ascii_lowercase().contains("x-request-id: req_"), "{head}");
            assert!(body["request_id"].as_str().unwrap_or_default().starts_with("req_"));
        } else {
            // Refused by the HTTP parser itself, before any layer saw it.
            assert_eq!(status, 400, "{response}");
        }
    }
}

// ---- the arize profile -------------------------------------------------------------------------

/// An Arize problem: status, media type, the profile's `error_code` (absent where the seed
/// has none), a request id.
fn assert_arize(res: &Seen, status: u16, error_code: Option<&str>) {
    assert_eq!(res.status, status, "{res:#?}");
    assert_eq!(res.header("content-type"), "application/problem+json", "{res:#?}");
    assert_eq!(res.body["status"], status, "{res:#?}");
    assert_eq!(res.body["error_code"].as_str(), error_code, "{res:#?}");
    assert_eq!(res.body["code"], Value::Null, "{res:#?}");
    assert!(res.str("type").starts_with("https://arize.com/docs/ax/rest-reference/errors#"), "{res:#?}");
    assert!(!res.str("title").is_empty(), "{res:#?}");
    let id = res.header("x-request-id");
    assert!(id.starts_with("req_"), "{res:#?}");
    assert_eq!(res.str("request_id"), id, "{res:#?}");
}

#[tokio::test]
async fn arize_profile_renders_the_same_failures() {
    let c = Client::start(arize()).await;

    let res = c.post_json("/models", "{\"name\": \"churn\",\n \"config\": }").await;
    assert_arize(&res, 400, Some("VALIDATION_ERROR"));
    assert!(res.str("detail").contains("line 2 column 12"), "{res:#?}");

    let body = r#"{"name": "churn", "model_type": "gan", "config": {"batch_size": "large"}}"#;
    let res = c.post_json("/models", body).await;
    assert_arize(&res, 400, Some("VALIDATION_ERROR"));
    assert_eq!(res.pointers(), ["/config/batch_size"]);

    assert_arize(&c.get("/items/abc").await, 400, Some("INVALID_ID"));
    assert_arize(&c.get("/models?limit=ten").await, 400, Some("VALIDATION_ERROR"));

    let res = c.post("/models", Some("text/plain"), VALID).await;
    assert_arize(&res, 415, Some("UNSUPPORTED_MEDIA_TYPE"));
    assert_eq!(res.str("detail"), "Content-Type must be application/json");

    let res = c.get("/nope").await;
    assert_arize(&res, 404, Some("RESOURCE_NOT_FOUND"));
    assert_eq!(res.str("detail"), "No route for GET /nope");

    let res = Seen::from(c.http.delete(c.url("/items/1")).send().await.expect("send")).await;
    assert_arize(&res, 405, Some("METHOD_NOT_ALLOWED"));
    assert!(res.header("allow").contains("GET"), "{res:#?}");

    let res =
        c.post_json("/models", r#"{"name": " ", "model_type": "rnn", "config": {"batch_size": 0}}"#).await;
    assert_arize(&res, 422, None);
    assert_eq!(res.pointers(), ["/name", "/model_type", "/config/batch_size"]);

    let res = c.get("/panic").await;
    assert_eq!(res.status, 500);
    assert_eq!(res.body["error_code"], Value::Null, "5xx carry no error_code: {res:#?}");
    assert!(!res.body.to_string().contains("hunter2"));
}
