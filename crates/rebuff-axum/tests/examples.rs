//! The programs in `examples/`, run as a user runs them and driven over loopback.
//!
//! `cargo test` builds the examples of the package before it runs its tests (and
//! `cargo test --all-targets` in CI does too); this test starts the compiled binaries.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

// rebuff-client's example, compiled into this test so that it runs whichever package is
// tested; its `main` is the example's entry point, unused here.
#[allow(dead_code)]
#[path = "../../rebuff-client/examples/call_guarded.rs"]
mod call_guarded;

/// A running example, killed when dropped.
struct Running {
    child: Child,
    addr: String,
    lines: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The compiled example `name`, beside this test's binary (`target/debug/examples/`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/debug").join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test -p rebuff-axum` (which builds the examples) or \
         `cargo build -p rebuff-axum --examples` first",
        path.display()
    );
    path
}

/// Starts an example with `127.0.0.1:0` as its first argument and `rest` after it; returns
/// once it prints the address it listens on.
fn start(name: &str, rest: &[&str]) -> Running {
    let mut child = Command::new(example(name))
        .arg("127.0.0.1:0")
        .args(rest)
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut addr = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of output");
        addr = line.strip_prefix("listening on http://").map(str::to_owned);
        lines.push(line);
        if addr.is_some() {
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("{name} did not start: {lines:?}"));
    Running { child, addr, lines }
}

/// A fresh path for a database file, removed (with SQLite's side files) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempDb(std::env::temp_dir().join(format!("rebuff-example-{}-{n}.db", std::process::id())))
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = req.send().await.expect("the example answers");
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    let body = res.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn quickstart_answers_its_own_code_and_validation_errors() {
    let app = start("quickstart", &[]);
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.addr);

    let (status, headers, body) = send(http.get(format!("{base}/widgets/w_9"))).await;
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["code"], "widget_not_found");
    assert_eq!(body["detail"], "Widget 'w_9' was not found.");
    assert_eq!(body["type"], "https://widgets.example/errors#widget_not_found");
    assert_eq!(Some(body["request_id"].clone()), headers.get("x-request-id").map(|v| json!(v.to_str().ok())));

    let (status, _, body) = send(http.post(format!("{base}/widgets")).json(&json!({"name": " "}))).await;
    assert_eq!(status, 422);
    // One violation answers with its own code (several would be `validation_failed`).
    assert_eq!(body["code"], "invalid_field_value");
    assert_eq!(body["errors"][0]["pointer"], "/name");
    let (status, _, body) = send(http.post(format!("{base}/widgets")).json(&json!({"name": 5}))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("wrong_field_type")));
    let (status, _, body) =
        send(http.post(format!("{base}/widgets")).json(&json!({"name": "sprocket"}))).await;
    assert_eq!((status, body), (200, json!({"name": "sprocket"})));
    let (status, _, body) = send(http.delete(format!("{base}/widgets/w_1"))).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")));
    let (status, _, body) = send(http.get(format!("{base}/nowhere"))).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("resource_not_found")));
}

#[tokio::test]
async fn guarded_checks_keys_limits_and_replays_retries() {
    let db = TempDb::new();
    let app = start("guarded", &[db.path()]);
    let key = app
        .lines
        .iter()
        .find_map(|l| l.split_once("(shown once): ").map(|(_, k)| k.to_owned()))
        .unwrap_or_else(|| panic!("a fresh database prints a key: {:?}", app.lines));
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.addr);

    // No key: 401, and a method the route lacks is 405 before credentials are looked at.
    let (status, headers, body) = send(http.get(format!("{base}/widgets/w_1"))).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("api_key_missing")));
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, body) = send(http.delete(format!("{base}/widgets/w_1"))).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")));

    // The service's own code, with a key (request 1 of the organisation's 10 a minute).
    let (status, headers, body) = send(http.get(format!("{base}/widgets/w_1")).bearer_auth(&key)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("widget_not_found")));
    assert_eq!(headers["ratelimit-policy"], "\"default\";q=10;w=60");

    // An idempotent retry is replayed, not run again (requests 2 and 3).
    let create = || {
        http.post(format!("{base}/widgets"))
            .bearer_auth(&key)
            .header("idempotency-key", "create-sprocket-1")
            .json(&json!({"name": "sprocket"}))
    };
    let (status, headers, first) = send(create()).await;
    assert_eq!(status, 201, "{first}");
    assert!(!headers.contains_key("idempotent-replayed"));
    let (status, headers, again) = send(create()).await;
    assert_eq!((status, &again), (201, &first));
    assert_eq!(headers["idempotent-replayed"], "true");
    let id = first["id"].as_str().expect("an id");
    let (status, _, read) = send(http.get(format!("{base}/widgets/{id}")).bearer_auth(&key)).await;
    assert_eq!((status, read), (200, first.clone()));

    // A panic is a masked 500 (request 5).
    let (status, _, body) = send(http.get(format!("{base}/explode"))).await;
    assert_eq!((status, body["code"].as_str()), (500, Some("internal_error")));
    assert!(!body.to_string().contains("hunter2"), "{body}");

    // Over the limit: requests 5 to 10 pass, the 11th is 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, headers, body) = send(http.get(format!("{base}/widgets/{id}")).bearer_auth(&key)).await;
        statuses.push(status);
        if status == 429 {
            assert_eq!(body["code"], "rate_limit_exceeded");
            assert!(headers.contains_key("retry-after"), "{headers:?}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429]);

    // The example caches verified keys: a key revoked in the file (as `rebuff keys revoke`
    // does) is still served from memory for at most a second, then refused. Every request
    // the example still accepts (429: admitted, then over the limit) must have been sent
    // within that second; the first refusal is 401.
    use rebuff_sqlite::{AccountStore, SqliteStore};
    use rebuff_store::KeyStore;
    let sqlite = SqliteStore::open(db.path()).expect("open the example's database");
    let id = rebuff_store::key::parse(&key).expect("well-formed").id;
    let org = sqlite.find_key(&id).await.expect("read").expect("the key").org_id;
    assert!(sqlite.revoke_key(&org, &id).await.expect("revoke"));
    let revoked = std::time::Instant::now();
    let bound = rebuff_store::key_cache::DEFAULT_MAX_STALENESS;
    loop {
        let sent = revoked.elapsed();
        let (status, _, body) = send(http.get(format!("{base}/widgets/{id}")).bearer_auth(&key)).await;
        if status == 401 {
            eprintln!("the example first refused the revoked key in a request sent {sent:?} after");
            assert_eq!(body["code"], "api_key_revoked", "{body}");
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(sent < bound, "accepted a request sent {sent:?} after its key was revoked");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_client_example_matches_on_the_typed_codes_of_guarded() {
    let db = TempDb::new();
    let app = start("guarded", &[db.path()]);
    let key = app
        .lines
        .iter()
        .find_map(|l| l.split_once("(shown once): ").map(|(_, k)| k.to_owned()))
        .unwrap_or_else(|| panic!("a fresh database prints a key: {:?}", app.lines));
    let lines =
        call_guarded::call(&format!("http://{}", app.addr), &key).await.expect("every error is handled");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "created w_1");
    assert!(lines[1].starts_with("a missing widget: widget_not_found, list the widgets (req_"), "{lines:?}");
    assert_eq!(lines[2], "no key: api key rejected, check the key");
    assert_eq!(lines[3], "a blank name: invalid_field_value: /name must not be blank");
}

/// The client keeps its own copy of the service's catalog; it must say the same.
#[test]
fn the_client_example_has_the_service_catalog() {
    let load = |path: &str| {
        let text = std::fs::read_to_string(path).expect("the catalog file");
        rebuff::Catalog::from_toml_str(path, &text).expect("a valid catalog")
    };
    let service = load(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/widgets.toml"));
    let client = load(concat!(env!("CARGO_MANIFEST_DIR"), "/../rebuff-client/examples/widgets.toml"));
    assert_eq!(service.entries(), client.entries());
}

/// The workspace README shows the quickstart: it must be the file that is compiled and run.
#[test]
fn the_readme_shows_the_quickstart_and_its_catalog_verbatim() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("the workspace README");
    for (file, fence) in [("quickstart.rs", "```rust\n"), ("widgets.toml", "```toml\n")] {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/").to_owned() + file)
                .expect("the example");
        assert!(
            readme.contains(&format!("{fence}{text}```\n")),
            "README.md does not show examples/{file} as it is"
        );
    }
}
