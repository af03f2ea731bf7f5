//! Faults from outside the request: the database file removed, read-only or full while
//! serving; clients that send their body slowly, thousands of headers, invalid UTF-8 in every
//! text field, a 10 MB body, JSON nested 100,000 deep. Each gets its catalog error (or, where
//! the HTTP parser refuses before the service sees anything, that refusal), nothing internal
//! leaks, and the server goes on serving.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebuff::Catalog;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
use serde_json::{Value, json};
use support::{Answer, Opts, Server, answer, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn opts() -> Opts {
    Opts { users: false, ..Opts::default() }
}

fn body(a: &Answer) -> Value {
    serde_json::from_slice(&a.body)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", a.status, String::from_utf8_lossy(&a.body)))
}

/// The `code` of a rebuff-profile error body.
fn code(a: &Answer) -> String {
    body(a)["code"].as_str().unwrap_or_default().to_owned()
}

/// A masked 5xx: the generic body with a request id, and nothing of the cause.
fn assert_masked(a: &Answer, what: &str) {
    let text = String::from_utf8_lossy(&a.body);
    for leak in
        ["SQLite", "sqlite", "rusqlite", "readonly", "read-only", "disk", "full", ".db", "/tmp", "panicked"]
    {
        assert!(!text.contains(leak), "{what}: leaks `{leak}`: {text}");
    }
    let v = body(a);
    assert!(v["request_id"].as_str().is_some_and(|id| id.starts_with("req_")), "{what}: {v}");
    assert!(matches!(v["code"].as_str(), Some("database_error" | "service_unavailable")), "{what}: {v}");
}

/// The server still answers a read and a write, and its public pages.
async fn still_serving(s: &Server, what: &str) {
    assert_eq!(answer(s.http.get(s.url("/healthz"))).await.status, 200, "{what}: /healthz");
    assert_eq!(answer(s.get("/v1/projects", &s.admin)).await.status, 200, "{what}: a read");
    let name = format!("after-{}", rand_suffix());
    let created = answer(s.post_json("/v1/projects", &s.admin, json!({ "name": name }))).await;
    assert_eq!(created.status, 201, "{what}: a write: {}", String::from_utf8_lossy(&created.body));
}

/// A `Rebuff-Signature` for `body` with the test servers' webhook secret, signed now.
fn sign(body: &[u8]) -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rebuff_axum::auth::webhook::sign(support::WEBHOOK_SECRET, i64::try_from(now).unwrap_or(0), body)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn sidecars(db: &std::path::Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    [db.to_owned(), with("-wal"), with("-shm")]
}

// ---- the database --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_database_file_while_serving_leaks_nothing_and_the_server_keeps_serving() {
    let s = start("rebuff", opts()).await;
    let before = s.create("/v1/projects", json!({"name": "before"})).await;
    for f in sidecars(&s.db) {
        let _ = std::fs::remove_file(f);
    }
    assert!(!s.db.exists());
    // SQLite keeps the open file (and its write-ahead log): the data stays readable and
    // writable through the open connection until the process ends. Whatever happens, no
    // answer is a 5xx that shows its cause.
    let mut answers = vec![
        answer(s.get(&format!("/v1/projects/{before}"), &s.admin)).await,
        answer(s.post_json("/v1/projects", &s.admin, json!({"name": "after-removal"}))).await,
        answer(s.get("/v1/projects", &s.admin)).await,
    ];
    answers.push(answer(s.http.get(s.url("/errors.json"))).await);
    for a in &answers {
        if a.status >= 500 {
            assert_masked(a, "database file removed");
        }
    }
    assert_eq!(answers[0].status, 200, "the open file still holds the data");
    assert_eq!(answers[1].status, 201);
    still_serving(&s, "database file removed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_a_masked_error_and_serving_resumes_once_it_is_writable() {
    let s = start("rebuff", opts()).await;
    let project = s.create("/v1/projects", json!({"name": "kept"})).await;
    // As root, file permissions do not stop writes; SQLite's `query_only` makes the server's
    // own connection refuse them exactly as a read-only file would (SQLITE_READONLY).
    s.store.with_conn(|c| c.pragma_update(None, "query_only", true)).await.expect("pragma");
    let write = answer(s.post_json("/v1/projects", &s.admin, json!({"name": "refused"}))).await;
    assert!(write.status >= 500, "a write: {}", write.status);
    assert_masked(&write, "read-only: a write");
    // Reads record rate-limit state, a write too: whatever they answer, nothing leaks.
    let read = answer(s.get(&format!("/v1/projects/{project}"), &s.admin)).await;
    if read.status >= 500 {
        assert_masked(&read, "read-only: a read");
    } else {
        assert_eq!(read.status, 200);
    }
    // Routes without the database are unaffected.
    assert_eq!(answer(s.http.get(s.url("/healthz"))).await.status, 200);
    assert_eq!(answer(s.http.get(s.url("/openapi.json"))).await.status, 200);
    s.store.with_conn(|c| c.pragma_update(None, "query_only", false)).await.expect("pragma");
    still_serving(&s, "read-only database made writable again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_masked_error_and_serving_resumes_once_there_is_room() {
    let s = start("rebuff", opts()).await;
    // A full disk, as SQLite sees it: the file may not grow past its current pages
    // (SQLITE_FULL, "database or disk is full").
    let pages: i64 = s
        .store
        .with_conn(|c| {
            let n: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.query_row(&format!("PRAGMA max_page_count = {n}"), [], |r| r.get::<_, i64>(0))
        })
        .await
        .expect("pragma");
    assert!(pages > 0);
    let long = "x".repeat(90);
    let mut full = None;
    for i in 0..400 {
        let a = answer(s.post_json("/v1/projects", &s.admin, json!({"name": format!("{long}{i}")}))).await;
        if a.status != 201 {
            full = Some(a);
            break;
        }
    }
    let full = full.expect("the file filled up within 400 projects");
    assert!(full.status >= 500, "{}", full.status);
    assert_masked(&full, "disk full");
    assert_eq!(answer(s.http.get(s.url("/healthz"))).await.status, 200);
    s.store
        .with_conn(|c| c.query_row("PRAGMA max_page_count = 1073741823", [], |r| r.get::<_, i64>(0)))
        .await
        .expect("pragma");
    still_serving(&s, "disk full, then room again").await;
}

// ---- slow clients and oversized requests ------------------------------------------------

/// A server like `support::start`'s, with its configuration changed by `configure`.
struct Custom {
    addr: SocketAddr,
    key: String,
    db: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Custom {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for f in sidecars(&self.db) {
            let _ = std::fs::remove_file(f);
        }
    }
}

async fn start_custom(configure: impl FnOnce(&mut Config)) -> Custom {
    let db = std::env::temp_dir().join(format!("rebuff-faults-{}-{}.db", std::process::id(), rand_suffix()));
    let store = SqliteStore::open(&db).expect("open");
    let org = store.get_or_create_org("acme").await.expect("org").id;
    let (_, key) = store
        .create_key(NewKey {
            org_id: org,
            name: "test".into(),
            scopes: vec!["read".into(), "write".into(), "admin".into()],
            expires_at: None,
            allowed_ips: Vec::new(),
            live: false,
        })
        .await
        .expect("key");
    let catalog = Catalog::builtin("rebuff").expect("built in");
    let mut config = Config::new(Arc::new(catalog.clone()));
    config.rate_limit.limit = 10_000;
    config.webhook_secret = support::WEBHOOK_SECRET.to_vec();
    configure(&mut config);
    let state = AppState::new(config, store).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rebuff_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    Custom { addr, key, db, shutdown: Some(tx) }
}

/// Writes `request` on a new connection and reads what comes back until the server closes
/// it, `wait` passes, or the read fails (a reset is an answer too: the empty one).
async fn raw(addr: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before taking everything: a failed write is fine.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn response_body(raw: &str) -> Value {
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"))
}

async fn healthy(addr: SocketAddr, key: &str) {
    let http = reqwest::Client::new();
    let res = http.get(format!("http://{addr}/v1/projects")).bearer_auth(key).send().await.expect("send");
    assert_eq!(res.status(), 200, "the server keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_a_request_timeout_and_other_clients_are_served_meanwhile() {
    let s = start_custom(|c| c.body_timeout = Duration::from_millis(400)).await;
    let addr = s.addr;
    let key = s.key.clone();
    // Slowloris: headers promise 200 bytes, the body starts and then stalls.
    let slow = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\": \"sl"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let started = Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // Keep the connection open, dripping a byte now and then would reset nothing: the
        // timeout is for the body as a whole stalling, so stay silent.
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    out.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&out).contains("\"request_id\"") {
                        break;
                    }
                }
            }
        }
        (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
    });
    // Meanwhile the server answers everyone else.
    tokio::time::sleep(Duration::from_millis(100)).await;
    healthy(s.addr, &s.key).await;
    let (res, took) = slow.await.expect("join");
    assert!(res.starts_with("HTTP/1.1 408"), "{res}");
    assert_eq!(response_body(&res)["code"], "request_timeout", "{res}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    healthy(s.addr, &s.key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_headers_are_refused_by_the_http_parser_and_the_server_keeps_serving() {
    let s = start_custom(|_| {}).await;
    let mut req = format!("GET /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n", s.key);
    for i in 0..5_000 {
        req.push_str(&format!("X-Header-{i}: value-{i}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    let res = raw(s.addr, req.as_bytes(), Duration::from_secs(5)).await;
    // hyper allows 100 headers: past that it answers 431 with no body before any service
    // sees the request, or closes the connection. Either way nothing else is said.
    assert!(res.is_empty() || res.starts_with("HTTP/1.1 431"), "{res}");
    // One header block larger than hyper's read buffer (about 400 KB) is refused the same way.
    let big = format!("GET /v1/projects HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(1024 * 1024));
    let res = raw(s.addr, big.as_bytes(), Duration::from_secs(5)).await;
    assert!(res.is_empty() || res.starts_with("HTTP/1.1 431"), "{}", &res[..res.len().min(200)]);
    healthy(s.addr, &s.key).await;
    // 100 headers are still fine.
    let mut ok = format!("GET /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n", s.key);
    for i in 0..90 {
        ok.push_str(&format!("X-Header-{i}: value-{i}\r\n"));
    }
    ok.push_str("Connection: close\r\n\r\n");
    let res = raw(s.addr, ok.as_bytes(), Duration::from_secs(5)).await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

/// Sends a request head and then as much of `body` as the server takes, and reads the answer
/// whatever happens to the upload (a server may answer 413 and close mid-upload).
async fn upload(addr: &str, head: &str, body: &[u8], chunked: bool) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    let (mut rd, mut wr) = stream.into_split();
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        for chunk in body.chunks(64 * 1024) {
            let sent = if chunked {
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(chunk);
                framed.extend_from_slice(b"\r\n");
                wr.write_all(&framed).await
            } else {
                wr.write_all(chunk).await
            };
            if sent.is_err() {
                return;
            }
        }
        if chunked {
            let _ = wr.write_all(b"0\r\n\r\n").await;
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&out).contains("\"request_id\"") {
                    break;
                }
            }
            _ => break,
        }
    }
    writer.abort();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_json_body_is_payload_too_large() {
    // The server's default body limit (1 MiB), as `rebuff serve` has it.
    let s = start("rebuff", Opts { body_limit: 1024 * 1024, ..opts() }).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let huge = serde_json::to_vec(&json!({ "name": "n".repeat(10 * 1024 * 1024) })).expect("json");
    assert!(huge.len() > 10_000_000);
    let auth = format!("Authorization: Bearer {}\r\n", s.admin);
    let cases = [
        ("with Content-Length", "/v1/projects", auth.clone(), false),
        ("with an Idempotency-Key", "/v1/projects", format!("{auth}Idempotency-Key: big-1\r\n"), false),
        ("chunked, without a length", "/v1/projects", auth.clone(), true),
        (
            "chunked, with an Idempotency-Key",
            "/v1/projects",
            format!("{auth}Idempotency-Key: big-2\r\n"),
            true,
        ),
        ("to the login route", "/v1/auth/login", String::new(), false),
        // Signed, so that the signature layer reads the body rather than refusing at once.
        (
            "to the webhook route",
            "/v1/webhooks/incoming",
            format!("Rebuff-Signature: {}\r\n", sign(&huge)),
            true,
        ),
    ];
    for (what, path, extra, chunked) in cases {
        let length = if chunked {
            "Transfer-Encoding: chunked\r\n".to_owned()
        } else {
            format!("Content-Length: {}\r\n", huge.len())
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\n{length}Connection: close\r\n\r\n"
        );
        let res = upload(&addr, &head, &huge, chunked).await;
        assert!(res.starts_with("HTTP/1.1 413"), "{what}: {}", &res[..res.len().min(300)]);
        assert_eq!(response_body(&res)["code"], "payload_too_large", "{what}");
    }
    still_serving(&s, "10 MB bodies").await;
}

// ---- malformed text -----------------------------------------------------------------------

/// A JSON body with the raw bytes `bad` spliced in where `"@"` stands in `template`.
fn splice(template: &str, bad: &[u8]) -> Vec<u8> {
    let (before, after) = template.split_once('@').expect("a marker");
    [before.as_bytes(), bad, after.as_bytes()].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_any_text_field_is_invalid_json_and_in_queries_and_paths_their_own_errors() {
    let s = start("rebuff", opts()).await;
    let project = s.create("/v1/projects", json!({"name": "utf8"})).await;
    let model =
        s.create("/v1/models", json!({"name": "m", "model_type": "tvae", "config": {"batch_size": 1}})).await;
    // Every text field of every JSON body, and a member name.
    let bodies: Vec<(&str, String)> = vec![
        ("/v1/projects", r#"{"name": "@"}"#.into()),
        ("/v1/projects", r#"{"@": 1, "name": "x"}"#.into()),
        ("/v1/datasets", r#"{"project_id": "@", "name": "d", "format": "csv"}"#.into()),
        ("/v1/datasets", format!(r#"{{"project_id": "{project}", "name": "@", "format": "csv"}}"#)),
        ("/v1/datasets", format!(r#"{{"project_id": "{project}", "name": "d", "format": "@"}}"#)),
        ("/v1/models", r#"{"name": "@", "model_type": "tvae", "config": {"batch_size": 1}}"#.into()),
        ("/v1/models", r#"{"name": "m", "model_type": "@", "config": {"batch_size": 1}}"#.into()),
        ("/v1/models", r#"{"name": "m", "model_type": "tvae", "config": {"batch_size": 1, "@": 2}}"#.into()),
        ("/v1/api-keys", r#"{"name": "@", "scopes": ["read"]}"#.into()),
        ("/v1/api-keys", r#"{"scopes": ["@"]}"#.into()),
        ("/v1/api-keys", r#"{"scopes": ["read"], "expires_at": "@"}"#.into()),
        ("/v1/api-keys", r#"{"scopes": ["read"], "allowed_ips": ["@"]}"#.into()),
        ("/v1/auth/login", r#"{"email": "@", "password": "p"}"#.into()),
        ("/v1/auth/login", r#"{"email": "a@b.c", "password": "@"}"#.into()),
    ];
    let _ = model;
    for (path, template) in &bodies {
        // A lone continuation byte, a truncated sequence, an overlong encoding, a surrogate
        // encoded in UTF-8, and bytes that never appear in UTF-8.
        for bad in [&b"\x80"[..], b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff\xfe"] {
            let sent = splice(template, bad);
            let a = answer(
                s.http
                    .post(s.url(path))
                    .bearer_auth(&s.admin)
                    .header("content-type", "application/json")
                    .body(sent),
            )
            .await;
            assert_eq!((a.status, code(&a).as_str()), (400, "invalid_json"), "{path} {template} {bad:?}");
            let detail = body(&a)["detail"].as_str().unwrap_or_default().to_owned();
            assert!(detail.contains("byte offset"), "{detail}");
        }
        // A lone surrogate written as an escape is not a Unicode string either.
        let escaped = splice(template, br"\ud800");
        let a = answer(
            s.http
                .post(s.url(path))
                .bearer_auth(&s.admin)
                .header("content-type", "application/json")
                .body(escaped),
        )
        .await;
        assert_eq!((a.status, code(&a).as_str()), (400, "invalid_json"), "{path} {template} \\ud800");
    }
    // The signed webhook: the signature is checked over the exact bytes, then the JSON.
    let event = splice(r#"{"type": "@"}"#, b"\xff");
    let signature = sign(&event);
    let a = answer(
        s.http
            .post(s.url("/v1/webhooks/incoming"))
            .header("content-type", "application/json")
            .header("rebuff-signature", signature)
            .body(event),
    )
    .await;
    assert_eq!((a.status, code(&a).as_str()), (400, "invalid_json"), "webhook");

    // Query strings: percent-encoded invalid UTF-8 is a bad parameter; unknown ones are ignored.
    let a = answer(s.get("/v1/projects?limit=%FF%FE", &s.admin)).await;
    assert_eq!((a.status, code(&a).as_str()), (400, "invalid_query_parameter"));
    assert_eq!(body(&a)["param"], "limit");
    assert_eq!(answer(s.get("/v1/projects?note=%C0%AF&limit=5", &s.admin)).await.status, 200);
    // Path segments: every id parameter.
    for path in [
        "/v1/projects/%FF%FE".to_owned(),
        "/v1/datasets/%C0%AF".into(),
        "/v1/models/%ED%A0%80".into(),
        "/v1/jobs/%80".into(),
        "/v1/jobs/%E2%82/output".into(),
    ] {
        let a = answer(s.get(&path, &s.admin)).await;
        assert_eq!((a.status, code(&a).as_str()), (400, "invalid_id"), "GET {path}");
    }
    for path in ["/v1/models/%FF/train", "/v1/models/%FF/generate"] {
        let a = answer(s.post_json(path, &s.admin, json!({"n_samples": 1}))).await;
        assert_eq!((a.status, code(&a).as_str()), (400, "invalid_id"), "POST {path}");
    }
    for path in ["/v1/projects/%FF", "/v1/api-keys/%FF%FE%FD%FC%FB%FA%F9%F8%F7%F6%F5%F4"] {
        let a = answer(s.http.delete(s.url(path)).bearer_auth(&s.admin)).await;
        assert_eq!((a.status, code(&a).as_str()), (400, "invalid_id"), "DELETE {path}");
    }
    let a = answer(s.get("/v1/%FF%FE", &s.admin)).await;
    assert_eq!((a.status, code(&a).as_str()), (404, "resource_not_found"));
    // Raw bytes that are not ASCII in the request line never reach a route: the HTTP parser
    // refuses them (a bare 400) or the router finds nothing (404).
    let addr = s.base.trim_start_matches("http://").parse().expect("addr");
    for target in [&b"/v1/projects?limit=\xff"[..], b"/v1/projects/\xff\xfe"] {
        let req = [b"GET ", target, b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"].concat();
        let res = raw(addr, &req, Duration::from_secs(5)).await;
        assert!(
            res.starts_with("HTTP/1.1 400")
                || res.starts_with("HTTP/1.1 401")
                || res.starts_with("HTTP/1.1 404"),
            "{res}"
        );
    }
    // Headers with bytes that are not UTF-8.
    let a = answer(s.http.get(s.url("/v1/projects")).header("authorization", &b"Bearer \xff\xfe"[..])).await;
    assert_eq!((a.status, code(&a).as_str()), (401, "api_key_malformed"));
    let a = answer(
        s.post_json("/v1/projects", &s.admin, json!({"name": "k"})).header("idempotency-key", &b"k\xff"[..]),
    )
    .await;
    assert_eq!((a.status, code(&a).as_str()), (400, "bad_request"));
    let a = answer(s.get("/v1/projects", &s.admin).header("x-request-id", &b"id-\xff"[..])).await;
    assert_eq!(a.status, 200);
    assert!(a.headers["x-request-id"].to_str().is_ok_and(|id| id.starts_with("req_")));
    let a = answer(
        s.http
            .post(s.url("/v1/projects"))
            .bearer_auth(&s.admin)
            .header("content-type", &b"application/json\xff"[..])
            .body("{}"),
    )
    .await;
    assert_eq!((a.status, code(&a).as_str()), (415, "unsupported_media_type"));
    still_serving(&s, "invalid UTF-8").await;
}

// ---- deep nesting -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_nested_100000_deep_is_invalid_json_without_overflowing_the_stack() {
    let s = start("rebuff", Opts { body_limit: 1024 * 1024, ..opts() }).await;
    let deep_arrays = "[".repeat(100_000);
    let deep_objects = "{\"a\":".repeat(100_000);
    let cases = [
        ("/v1/projects", deep_arrays.clone()),
        ("/v1/projects", format!("{{\"name\": {deep_arrays}")),
        ("/v1/projects", format!("{{\"name\": {deep_objects}")),
        // Closed properly, so the only fault is the depth.
        ("/v1/projects", format!("{{\"name\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000))),
        ("/v1/models", format!("{{\"name\": \"m\", \"model_type\": \"tvae\", \"config\": {deep_objects}")),
        ("/v1/api-keys", format!("{{\"scopes\": [{deep_arrays}")),
        ("/v1/auth/login", deep_arrays.clone()),
    ];
    for (path, text) in cases {
        let a = answer(
            s.http
                .post(s.url(path))
                .bearer_auth(&s.admin)
                .header("content-type", "application/json")
                .body(text),
        )
        .await;
        assert_eq!((a.status, code(&a).as_str()), (400, "invalid_json"), "{path}");
    }
    // The webhook parses into a JSON value, signed so that the parser is reached.
    let event = format!("{{\"type\": \"x\", \"data\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let signature = sign(event.as_bytes());
    let a = answer(
        s.http
            .post(s.url("/v1/webhooks/incoming"))
            .header("content-type", "application/json")
            .header("rebuff-signature", signature)
            .body(event),
    )
    .await;
    assert_eq!((a.status, code(&a).as_str()), (400, "invalid_json"), "webhook");
    // And 100 levels, within the limit, are fine.
    let ok = format!("{{\"name\": \"nested-ok\", \"extra\": {}{}}}", "[".repeat(100), "]".repeat(100));
    let a = answer(
        s.http
            .post(s.url("/v1/projects"))
            .bearer_auth(&s.admin)
            .header("content-type", "application/json")
            .body(ok),
    )
    .await;
    assert_eq!(a.status, 201);
    still_serving(&s, "deep nesting").await;
}

/// Regression guard for what the fault tests found: serde_json skips a member the handler does
/// not know without checking its text, so invalid UTF-8 (not JSON text, RFC 8259 §8.1) in an
/// unknown member was accepted while the same in a known one was `invalid_json`. The extractor
/// now checks the whole body's UTF-8 first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_an_unknown_member_is_invalid_json() {
    let s = start("rebuff", Opts { body_limit: 1024 * 1024, ..opts() }).await;
    let bad_utf8 = splice(r#"{"name": "x", "note": "@"}"#, b"\xff");
    // Deep nesting inside an unknown member is skipped without recursion, so it is accepted
    // (no stack is at risk); invalid UTF-8 anywhere is refused.
    for (what, sent) in [("invalid UTF-8", bad_utf8)] {
        let a = answer(
            s.http
                .post(s.url("/v1/projects"))
                .bearer_auth(&s.admin)
                .header("content-type", "application/json")
                .body(sent),
        )
        .await;
        assert_eq!((a.status, code(&a).as_str()), (400, "invalid_json"), "{what} in an unknown member");
    }
}
