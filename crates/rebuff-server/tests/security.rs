//! Regression tests of issue 14 (a penetration test of `rebuff serve`): one test or more per
//! finding, each named in `docs/HARDENING.md`'s threat model.

mod support;

use std::time::Duration;

use rebuff_sqlite::AccountStore;
use serde_json::{Value, json};
use support::{Opts, answer, start, start_with};

fn body(a: &support::Answer) -> Value {
    serde_json::from_slice(&a.body).unwrap_or(Value::Null)
}

/// Polls `check` every 20 ms until it holds or `within` passes; whether it held.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- 2. secrets at rest, purging --------------------------------------------------------

/// Finding 2: `POST /v1/api-keys` with an `Idempotency-Key` stored the whole response, the
/// key's secret included, in the idempotency table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_key_creation_never_stores_the_secret_and_its_replay_is_redacted() {
    let s = start("rebuff", Opts::default()).await;
    let create = || {
        s.post_json("/v1/api-keys", &s.admin, json!({"scopes": ["read"]})).header("idempotency-key", "k-1")
    };
    let first = answer(create()).await;
    assert_eq!(first.status, 201);
    let text = body(&first)["key"].as_str().expect("the key, shown once").to_owned();
    let secret = text.rsplit('_').next().expect("a secret part").to_owned();
    // Kept twice: by the idempotency store, and with the key by the accounts store.
    let stored: Vec<Vec<u8>> = s
        .store
        .read_conn(|c| {
            let mut stmt =
                c.prepare("SELECT coalesce(body, x'') FROM idempotency UNION ALL SELECT body FROM outcomes")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .expect("read the idempotency tables");
    assert_eq!(stored.len(), 2, "the completion and the outcome are stored");
    for row in &stored {
        let row = String::from_utf8_lossy(row);
        assert!(!row.contains(&secret), "a stored response holds the secret: {row}");
    }
    let replay = answer(create()).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let replayed = body(&replay);
    assert_eq!(replayed["id"], body(&first)["id"]);
    assert!(replayed["key"].as_str().is_some_and(|k| k.contains("redacted")), "{replayed}");
    assert_eq!(s.get("/v1/projects", &text).send().await.expect("send").status(), 200);
}

/// Finding 2: expired sessions and idempotency records were never deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_and_idempotency_records_are_purged_in_the_background() {
    let s = start_with("rebuff", Opts::default(), |c| c.purge_interval = Duration::from_millis(50)).await;
    let user = s.store.verify_login(support::ACTIVE_EMAIL, support::PASSWORD).await.expect("login");
    let rebuff_sqlite::LoginOutcome::Ok(user) = user else { panic!("the test user signs in") };
    s.store.create_session(&user.id, Duration::ZERO).await.expect("an expired session");
    s.store
        .with_conn(|c| {
            c.execute(
                "INSERT INTO idempotency (key, fingerprint, state, status, headers, body, expires_at) \
                 VALUES ('old', zeroblob(32), 'done', 201, '[]', x'7b7d', 1)",
                [],
            )
        })
        .await
        .expect("an expired record");
    let count = |sql: &'static str| s.store.read_conn(move |c| c.query_row(sql, [], |r| r.get::<_, i64>(0)));
    let purged = eventually(Duration::from_secs(20), async || {
        count("SELECT count(*) FROM sessions").expect("count") == 0
            && count("SELECT count(*) FROM idempotency").expect("count") == 0
    })
    .await;
    assert!(purged, "expired rows are still there");
}

// ---- 3. key creation escalates -----------------------------------------------------------

/// Finding 3: an admin key limited to one range, expiring, in test mode, created a key with no
/// limit, no expiry and `live: true`, which worked from anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_creates_keys_no_stronger_than_itself() {
    let s = start("rebuff", Opts::default()).await;
    let org = s.store.find_org("acme").await.expect("find").expect("acme").id;
    let expiry = jiff::Timestamp::now().as_second() + 3600;
    let (_, limited) = s
        .store
        .create_key(rebuff_sqlite::NewKey {
            org_id: org,
            name: "limited admin".into(),
            scopes: vec!["admin".into()],
            expires_at: Some(expiry),
            allowed_ips: vec!["127.0.0.0/8".parse().expect("net")],
            live: false,
        })
        .await
        .expect("key");
    let create = |body: Value| answer(s.post_json("/v1/api-keys", &limited, body));
    for (req, what) in [
        (json!({"scopes": ["read"], "live": true}), "a live key from a test key"),
        (json!({"scopes": ["read"], "allowed_ips": ["0.0.0.0/0"]}), "a wider range"),
        (json!({"scopes": ["read"], "allowed_ips": ["127.0.0.1", "10.0.0.1"]}), "an address outside"),
        (json!({"scopes": ["read"], "expires_at": "2999-01-01T00:00:00Z"}), "a later expiry"),
    ] {
        let a = create(req).await;
        assert_eq!((a.status, body(&a)["code"].as_str()), (403, Some("forbidden")), "{what}: {:?}", a.body);
        assert!(body(&a)["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: a detail says why");
    }
    let a = create(json!({"scopes": ["read", "write"]})).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let made = body(&a);
    assert_eq!(made["allowed_ips"], json!(["127.0.0.0/8"]), "inherits the creator's range");
    assert_eq!(made["expires_at"], json!(expiry), "expires with its creator");
    assert_eq!(made["live"], json!(false));
    let a = create(json!({"scopes": ["read"], "allowed_ips": ["127.0.0.1/32"]})).await;
    assert_eq!(a.status, 201, "a narrower range is fine: {:?}", a.body);
}

// ---- 4. slow clients ----------------------------------------------------------------------

/// Reads until the server closes the connection (end of stream or a reset); what was read.
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Finding 4: 1,000 connections with unfinished headers were all still open after 70 s. Each
/// client here sends a request line and then one header byte every 300 ms, for ever; the
/// header timeout (1 s here, 10 s by default) closes every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_by_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    const CLIENTS: usize = 1000;
    let s = start_with("rebuff", Opts::default(), |c| {
        c.header_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(600);
        c.max_connections = 2000;
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let started = tokio::time::Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(b"GET /v1/projects HTTP/1.1\r\nHost: x\r\n").await.expect("request line");
        clients.spawn(async move {
            // Dribble a header that never ends, and see when the server hangs up.
            let dribble = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if stream.write_all(b"X").await.is_err() {
                        return;
                    }
                }
            };
            // Closed by the server: the dribble stopped because a write failed.
            tokio::time::timeout(Duration::from_secs(60), dribble).await.is_ok()
        });
    }
    let held = clients.len();
    let mut closed = 0;
    while let Some(done) = clients.join_next().await {
        closed += usize::from(done.expect("client task"));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "slowloris: {held} connections held; all {closed} closed by the server {elapsed:?} after the first connected"
    );
    assert_eq!(closed, CLIENTS, "every slow client is closed");
    assert!(elapsed < Duration::from_secs(60), "closed by the server, not by the clients giving up");
    assert_eq!(s.get("/v1/projects", &s.admin).send().await.expect("send").status(), 200, "still serving");
}

/// The header timeout is kept by the connection's looks (a quarter of the shorter timeout
/// apart), not by a timer per request head: a head still coming in is given at least the
/// whole timeout, counted from when the connection started waiting for it, here after a first
/// request on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_has_the_whole_header_timeout() {
    use tokio::io::AsyncWriteExt;
    const TIMEOUT: Duration = Duration::from_millis(800);
    let s = start_with("rebuff", Opts::default(), |c| {
        c.header_timeout = TIMEOUT;
        c.idle_timeout = Duration::from_secs(600);
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
    let mut first = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut first).await.expect("first response");
    assert_eq!(&first, b"HTTP/1.1 200");
    // The second head, a byte every 100 ms, never finished.
    let started = tokio::time::Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("second head");
    let dribble = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"X").await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), dribble).await.expect("the server closes the connection");
    let held = started.elapsed();
    eprintln!("unfinished head closed after {held:?}");
    // The write that fails comes after the close; the close itself is not before the timeout.
    assert!(held >= TIMEOUT, "closed after {held:?}, before the header timeout");
}

/// Finding 4: a kept-alive connection that sends nothing more is closed after the idle
/// timeout, gracefully (the response it had is complete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed() {
    use tokio::io::AsyncWriteExt;
    let s = start_with("rebuff", Opts::default(), |c| {
        c.header_timeout = Duration::from_secs(600);
        c.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
    let started = tokio::time::Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(30), read_to_close(&mut stream)).await;
    let got = got.expect("the server closes the idle connection");
    let idle = started.elapsed();
    eprintln!("idle connection closed {idle:?} after its request");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"), "the response came first");
    // Never before a whole idle period (the timer looks every quarter of it).
    assert!(idle >= Duration::from_millis(500), "closed after {idle:?}, before the idle timeout");
}

/// Finding 4: past the connection cap, a new connection waits until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_one_to_close() {
    use tokio::io::AsyncWriteExt;
    let s = start_with("rebuff", Opts::default(), |c| {
        c.max_connections = 4;
        c.header_timeout = Duration::from_secs(600);
        c.idle_timeout = Duration::from_secs(600);
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("unfinished head");
        held.push(stream);
    }
    let mut fifth = tokio::net::TcpStream::connect(&addr).await.expect("the kernel's backlog accepts");
    fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("request");
    let waiting = tokio::time::timeout(Duration::from_millis(500), read_to_close(&mut fifth)).await;
    assert!(waiting.is_err(), "a fifth connection is not served while four are held");
    drop(held.pop());
    let got = tokio::time::timeout(Duration::from_secs(30), read_to_close(&mut fifth)).await.expect("served");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
}

// ---- 5. failed authentication ------------------------------------------------------------

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().ok()).build().expect("client")
}

/// Finding 5: 800 requests with unknown keys all got 401. Failures are now throttled per
/// client address, and a client elsewhere failing with a valid key's id does not lock it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_credential_checks_are_throttled_per_address_without_locking_out_a_valid_key() {
    let s = start_with("rebuff", Opts::default(), |c| {
        c.auth_failure_limit = rebuff_server::config::Quota { limit: 5, period: Duration::from_secs(3600) };
    })
    .await;
    let attacker = client_from("127.0.0.2");
    // The admin key's id with a wrong secret: a guess at that key.
    let (prefix, _) = s.admin.rsplit_once('_').expect("a key has a secret part");
    let guess = format!("{prefix}_{}", "x".repeat(s.admin.len() - prefix.len() - 1));
    let url = s.url("/v1/projects");
    for i in 0..5 {
        let a = answer(attacker.get(&url).bearer_auth(&guess)).await;
        assert_eq!(a.status, 401, "failure {i} is an ordinary 401");
    }
    let a = answer(attacker.get(&url).bearer_auth(&guess)).await;
    assert_eq!((a.status, body(&a)["code"].as_str()), (429, Some("rate_limit_exceeded")));
    for h in ["retry-after", "ratelimit", "ratelimit-policy", "x-ratelimit-limit"] {
        assert!(a.headers.contains_key(h), "{h} on the 429");
    }
    let a = answer(attacker.get(&url).bearer_auth(&s.admin)).await;
    assert_eq!(a.status, 429, "a throttled address is refused before its credential is looked at");
    // The key itself is not locked: from its own address it works, however often others fail.
    for _ in 0..10 {
        assert_eq!(answer(s.get("/v1/projects", &s.admin)).await.status, 200);
    }
    // Successes cost nothing: this address has its whole failure budget.
    for i in 0..5 {
        assert_eq!(answer(s.get("/v1/projects", "rb_test_nope")).await.status, 401, "failure {i}");
    }
}

// ---- 6. bodies and fields -----------------------------------------------------------------

/// Finding 6: arrays were read as objects, positionally; `[]` quoted `NewProject` and
/// `?limit=-1` the parser's "invalid digit found in string".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_must_be_objects_and_errors_quote_no_internal_message() {
    let s = start("rebuff", Opts::default()).await;
    for (path, req) in [
        ("/v1/projects", json!(["via-array"])),
        ("/v1/projects", json!([])),
        ("/v1/models", json!(["m", "ctgan", [5]])),
        ("/v1/api-keys", json!([["read"]])),
    ] {
        let a = answer(s.post_json(path, &s.admin, req.clone())).await;
        let b = body(&a);
        assert_eq!((a.status, b["code"].as_str()), (400, Some("wrong_field_type")), "{path} {req}: {b}");
        assert_eq!(b["detail"], "The request body must be a JSON object.", "{path} {req}");
    }
    let a = answer(s.post_json(
        "/v1/models",
        &s.admin,
        json!({"name": "m", "model_type": "ctgan", "config": [5]}),
    ))
    .await;
    assert_eq!((a.status, body(&a)["code"].as_str()), (400, Some("wrong_field_type")), "a nested array");
    let projects = answer(s.get("/v1/projects", &s.admin)).await;
    assert_eq!(body(&projects)["data"], json!([]), "nothing was created");
    let a = answer(s.get("/v1/projects?limit=-1", &s.admin)).await;
    let text = String::from_utf8_lossy(&a.body).into_owned();
    assert_eq!(a.status, 400);
    assert!(!text.contains("invalid digit") && !text.contains("NewProject"), "{text}");
}

/// Finding 6: names of 1 MB, 50,000 scopes and control characters were stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_has_a_maximum_and_names_refuse_control_characters() {
    let s = start("rebuff", Opts { body_limit: 1024 * 1024, ..Opts::default() }).await;
    let refused = async |path: &str, req: Value, pointer: &str| {
        let a = answer(s.post_json(path, &s.admin, req)).await;
        let b = body(&a);
        assert_eq!(a.status, 422, "{path} {pointer}: {b}");
        let pointers: Vec<&str> =
            b["errors"].as_array().into_iter().flatten().filter_map(|e| e["pointer"].as_str()).collect();
        assert!(pointers.contains(&pointer) || b.to_string().contains(pointer), "{path}: {pointer} in {b}");
    };
    refused("/v1/projects", json!({"name": "x".repeat(101)}), "/name").await;
    refused("/v1/projects", json!({"name": "x".repeat(1_000_000)}), "/name").await;
    refused("/v1/projects", json!({"name": "a\u{0}b"}), "/name").await;
    refused("/v1/projects", json!({"name": "line\nbreak"}), "/name").await;
    refused("/v1/projects", json!({"name": "esc\u{1b}[31m"}), "/name").await;
    refused(
        "/v1/models",
        json!({"name": "m\u{7}", "model_type": "ctgan", "config": {"batch_size": 1}}),
        "/name",
    )
    .await;
    let scopes: Vec<&str> = std::iter::repeat_n("read", 50_000).collect();
    refused("/v1/api-keys", json!({"scopes": scopes}), "/scopes").await;
    let ips: Vec<String> = (0..33).map(|i| format!("10.0.0.{i}")).collect();
    refused("/v1/api-keys", json!({"scopes": ["read"], "allowed_ips": ips}), "/allowed_ips").await;
    refused(
        "/v1/api-keys",
        json!({"scopes": ["read"], "allowed_ips": [format!("10.0.0.1/{}", "0".repeat(60))]}),
        "/allowed_ips/0",
    )
    .await;
    refused("/v1/api-keys", json!({"scopes": ["read"], "name": "k".repeat(1001)}), "/name").await;
    let login = answer(
        s.http
            .post(s.url("/v1/auth/login"))
            .json(&json!({"email": support::ACTIVE_EMAIL, "password": "p".repeat(1025)})),
    )
    .await;
    assert_eq!(login.status, 422, "a password over 1024 characters is refused before hashing");
    // A repeated scope is refused, as the schema's `uniqueItems` says; 50,000 entries make one
    // violation about the count, not 50,000.
    refused("/v1/api-keys", json!({"scopes": ["read", "read", "write"]}), "/scopes/1").await;
    let many = answer(s.post_json("/v1/api-keys", &s.admin, json!({"scopes": scopes}))).await;
    assert!(many.body.len() < 4096, "{} bytes", many.body.len());
    // The largest values are accepted.
    let ok = answer(s.post_json("/v1/projects", &s.admin, json!({"name": "é".repeat(100)}))).await;
    assert_eq!(ok.status, 201);
}

// ---- 7. 413 that clients never saw ----------------------------------------------------------

/// Writes the whole of `body` to a new connection before reading anything, as Python's
/// `urllib` and many SDKs do; the response, or the error that broke the exchange.
async fn send_all_then_read(addr: &str, head: &str, body: &[u8]) -> Result<String, std::io::Error> {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Finding 7: a client that sent a whole 10 MB body before reading got a broken pipe instead
/// of the 413, because the server closed while the body was still arriving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_the_whole_oversized_body_first_still_gets_the_413() {
    let s = start("rebuff", Opts::default()).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let body = vec![b' '; 10 * 1024 * 1024];
    // The webhook's signature is checked before its body is read: an unsigned one gets its 401
    // the same way.
    for (path, code) in [
        ("/v1/projects", "413 Payload Too Large"),
        ("/v1/auth/login", "413 Payload Too Large"),
        ("/v1/webhooks/incoming", "401 Unauthorized"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            s.admin,
            body.len()
        );
        let got = send_all_then_read(&addr, &head, &body).await;
        let got = got.unwrap_or_else(|e| panic!("{path}: the exchange broke ({e}) instead of a {code}"));
        assert!(got.starts_with(&format!("HTTP/1.1 {code}")), "{path}: {got}");
    }
}

// ---- 8. forged log lines -------------------------------------------------------------------

/// Everything logged in this test binary, once [`capture_logs`] has run.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the log of the whole binary to [`LOGS`], formatted as `rebuff serve` formats it.
fn capture_logs() {
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(|| LogWriter)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Finding 8: a webhook's `type` was logged raw, and a newline and ESC in it wrote a fake
/// ERROR line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_from_a_request_cannot_forge_a_log_line() {
    capture_logs();
    let s = start("rebuff", Opts::default()).await;
    let forged = "ping\n2026-12-02T00:00:00.000000Z ERROR rebuff: forged line \u{1b}[31m";
    let body = serde_json::to_vec(&json!({"type": forged})).expect("json");
    let now = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs(),
    )
    .expect("fits");
    let signature = rebuff_axum::auth::webhook::sign(support::WEBHOOK_SECRET, now, &body);
    let hook = s
        .http
        .post(s.url("/v1/webhooks/incoming"))
        .header("content-type", "application/json")
        .header("rebuff-signature", signature)
        .body(body);
    assert_eq!(answer(hook).await.status, 202);
    let logs =
        String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned();
    let line = logs
        .lines()
        .find(|l| l.contains("webhook received event_type=ping"))
        .unwrap_or_else(|| panic!("logged: {logs}"));
    assert!(
        line.contains(r"event_type=ping\n2026-12-02T00:00:00.000000Z ERROR rebuff: forged line \u{1b}[31m"),
        "{line}"
    );
    assert!(!logs.lines().any(|l| l.starts_with("2026-12-02T00:00:00")), "a forged line: {logs}");
    assert!(!logs.contains('\u{1b}'), "an escape sequence reached the log");
}

// ---- 9. login limit and Unicode ------------------------------------------------------------

/// Finding 9: the per-email login limit lower-cased ASCII only while the account lookup
/// lower-cased Unicode, so `\u{212a}yle@` (KELVIN SIGN) reached `kyle@`'s account with a
/// fresh budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_limit_and_the_account_lookup_normalise_emails_alike() {
    let s = start("rebuff", Opts::default()).await;
    let org = s.store.find_org("acme").await.expect("find").expect("acme").id;
    s.store.create_user(&org, "kyle@demo.test", support::PASSWORD, false).await.expect("user");
    // Each attempt from its own address, so that only the per-email limit can refuse.
    let login = async |n: u8, email: &str, password: &str| {
        let client = client_from(&format!("127.0.1.{n}"));
        answer(client.post(s.url("/v1/auth/login")).json(&json!({"email": email, "password": password})))
            .await
    };
    for n in 1..=5 {
        assert_eq!(login(n, "kyle@demo.test", "wrong").await.status, 401, "attempt {n}");
    }
    let a = login(6, "\u{212a}yle@demo.test", support::PASSWORD).await;
    assert_eq!((a.status, body(&a)["code"].as_str()), (429, Some("rate_limit_exceeded")), "{:?}", a.body);
    let a = login(7, "KYLE@demo.test", support::PASSWORD).await;
    assert_eq!(a.status, 429);
}

// ---- 10. logout and quoted cookies ---------------------------------------------------------

/// Finding 10: authentication stripped the quotes of `rebuff_session="…"`, logout did not,
/// so a logout with a quoted cookie answered 204 and left the session valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_with_a_quoted_cookie_ends_the_session() {
    let s = start("rebuff", Opts::default()).await;
    let (cookie, csrf) = s.login(support::ACTIVE_EMAIL).await;
    let (name, token) = cookie.split_once('=').expect("name=value");
    let quoted = format!("{name}=\"{token}\"");
    let projects = || s.http.get(s.url("/v1/projects")).header("cookie", &cookie);
    assert_eq!(answer(projects()).await.status, 200, "signed in");
    let out =
        answer(s.http.post(s.url("/v1/auth/logout")).header("cookie", &quoted).header("x-csrf-token", &csrf))
            .await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    let after = answer(projects()).await;
    assert_eq!(
        (after.status, body(&after)["code"].as_str()),
        (401, Some("session_expired")),
        "the session ended"
    );
}

// ---- 11. webhook replays -------------------------------------------------------------------

/// Finding 11: the same signed webhook was accepted any number of times, and timestamps up to
/// 300 s ahead were accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_webhook_is_accepted_once_and_not_from_far_in_the_future() {
    let s = start("rebuff", Opts::default()).await;
    let now = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs(),
    )
    .expect("fits");
    let send = |t: i64, body: &'static [u8], spaced: bool| {
        let mut signature = rebuff_axum::auth::webhook::sign(support::WEBHOOK_SECRET, t, body);
        if spaced {
            signature = signature.replace(',', ", ");
        }
        answer(
            s.http
                .post(s.url("/v1/webhooks/incoming"))
                .header("content-type", "application/json")
                .header("rebuff-signature", signature)
                .body(body),
        )
    };
    let event: &'static [u8] = br#"{"type":"invoice.paid"}"#;
    assert_eq!(send(now, event, false).await.status, 202);
    for spaced in [false, true] {
        let replay = send(now, event, spaced).await;
        assert_eq!(
            (replay.status, body(&replay)["code"].as_str()),
            (401, Some("invalid_signature")),
            "replay"
        );
        assert!(body(&replay)["detail"].as_str().is_some_and(|d| d.contains("already used")));
    }
    assert_eq!(send(now - 120, event, false).await.status, 202, "another timestamp is another signature");
    let ahead = send(now + 120, br#"{"type":"later"}"#, false).await;
    assert_eq!(ahead.status, 401, "two minutes ahead is too far");
    assert!(body(&ahead)["detail"].as_str().is_some_and(|d| d.contains("ahead")));
}

// ---- 12. headers ----------------------------------------------------------------------------

/// Finding 12: no `X-Content-Type-Options: nosniff` anywhere, no `Cache-Control: no-store` on
/// login and key creation, and a session cookie without `Secure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_is_nosniff_and_secrets_are_not_cached() {
    let s = start_with("rebuff", Opts::default(), |c| c.secure_cookies = true).await;
    for req in [
        s.http.get(s.url("/healthz")),
        s.http.get(s.url("/errors")),
        s.http.get(s.url("/openapi.json")),
        s.http.get(s.url("/no/such/route")),
        s.http.get(s.url("/v1/projects")),
        s.get("/v1/projects", &s.admin),
        s.post_json("/v1/projects", &s.admin, json!({"name": "p"})),
    ] {
        let a = answer(req).await;
        assert_eq!(
            a.headers.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{}",
            a.status
        );
    }
    let key = answer(s.post_json("/v1/api-keys", &s.admin, json!({"scopes": ["read"]}))).await;
    assert_eq!(key.status, 201);
    assert_eq!(key.headers["cache-control"], "no-store", "a key's secret is never cached");
    let login = answer(
        s.http
            .post(s.url("/v1/auth/login"))
            .json(&json!({"email": support::ACTIVE_EMAIL, "password": support::PASSWORD})),
    )
    .await;
    assert_eq!(login.status, 200);
    assert_eq!(login.headers["cache-control"], "no-store");
    let cookie = login.headers["set-cookie"].to_str().expect("ascii");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{attribute} in {cookie}");
    }
    let plain = start("rebuff", Opts::default()).await;
    let login = answer(
        plain
            .http
            .post(plain.url("/v1/auth/login"))
            .json(&json!({"email": support::ACTIVE_EMAIL, "password": support::PASSWORD})),
    )
    .await;
    let cookie = login.headers["set-cookie"].to_str().expect("ascii");
    assert!(!cookie.contains("Secure") && cookie.contains("HttpOnly"), "off when configured off: {cookie}");
}

// ---- 13. behind a proxy --------------------------------------------------------------------

/// Finding 13: behind a proxy every client shared the proxy's address, for login limits and
/// IP allow-lists. Forwarding headers are now read from trusted proxies, and only from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_name_the_client_only_when_a_trusted_proxy_sent_them() {
    let s = start_with("rebuff", Opts::default(), |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    let url = s.url("/v1/projects");
    let fenced = |client: &reqwest::Client, header: (&'static str, &'static str)| {
        answer(client.get(&url).bearer_auth(&s.fenced).header(header.0, header.1))
    };
    let proxy = reqwest::Client::new();
    let stranger = client_from("127.0.0.2");
    // The fenced key allows 10.0.0.0/8.
    assert_eq!(fenced(&proxy, ("x-forwarded-for", "10.1.2.3")).await.status, 200, "forwarded by the proxy");
    assert_eq!(fenced(&proxy, ("forwarded", "for=\"10.1.2.3:4711\";proto=https")).await.status, 200);
    let a = fenced(&stranger, ("x-forwarded-for", "10.1.2.3")).await;
    assert_eq!(
        (a.status, body(&a)["code"].as_str()),
        (403, Some("ip_not_allowed")),
        "an untrusted hop is ignored"
    );
    let a = fenced(&proxy, ("x-forwarded-for", "10.1.2.3, 203.0.113.9")).await;
    assert_eq!(a.status, 403, "the right-most untrusted address counts, not one the client wrote");
    // Login limits per client address behind the proxy: one client spends its budget, another
    // behind the same proxy keeps its own.
    let login = async |from: &'static str, n: u32| {
        let body = json!({"email": format!("nobody{n}@demo.test"), "password": "wrong"});
        answer(proxy.post(s.url("/v1/auth/login")).header("x-forwarded-for", from).json(&body)).await.status
    };
    for n in 0..5 {
        assert_eq!(login("10.9.9.9", n).await, 401);
    }
    assert_eq!(login("10.9.9.9", 5).await, 429, "this client's budget is spent");
    assert_eq!(login("10.9.9.8", 6).await, 401, "another client behind the proxy is not limited");
}

// ---- 15. Original-Request ------------------------------------------------------------------

/// Finding 15: a replay carried the original `request_id` in its body and a new one in
/// `X-Request-Id`; it now also names the original in `Original-Request`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_replay_names_the_original_request() {
    let s = start("rebuff", Opts::default()).await;
    let create =
        || s.post_json("/v1/projects", &s.admin, json!({"name": "once"})).header("idempotency-key", "p-1");
    let first = answer(create()).await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("original-request").is_none(), "the first response is the original's own");
    let original = first.headers["x-request-id"].clone();
    let replay = answer(create()).await;
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.headers["original-request"], original);
    assert_ne!(replay.headers["x-request-id"], original, "the retry has its own id");
    // An error replays the same way, its body keeping the original's request_id.
    let bad = || s.post_json("/v1/projects", &s.admin, json!({"name": ""})).header("idempotency-key", "p-2");
    let first = answer(bad()).await;
    assert_eq!(first.status, 422);
    let replay = answer(bad()).await;
    assert_eq!(replay.headers["original-request"], first.headers["x-request-id"]);
    assert_eq!(body(&replay)["request_id"], body(&first)["request_id"]);
}
