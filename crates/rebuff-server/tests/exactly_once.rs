//! An answered request is never run twice, whatever the idempotency store lost: its outcome
//! was recorded with the side effect, in the same transaction (of the API's SQLite file, or of
//! the accounts store for a key creation), and answers the retry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rebuff::Catalog;
use rebuff_axum::store::MemoryStore;
use rebuff_server::{AppState, Config};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Serves the reference API over `db` with idempotency records in a fresh in-memory store:
/// each call is the same database with an idempotency store that forgot everything, as a
/// Redis restarted without persistence.
async fn serve(db: &Path) -> (String, oneshot::Sender<()>) {
    let (sqlite, _) = rebuff_server::open(db).await.expect("open");
    let config = Config::new(Arc::new(Catalog::builtin("rebuff").expect("profile").clone()));
    let state = AppState::builder(config, sqlite)
        .idempotency(Arc::new(MemoryStore::new()))
        .build()
        .await
        .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(rebuff_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    (base, tx)
}

fn effects(db: &Path, tag: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row("SELECT COUNT(*) FROM fault_effects WHERE tag = ?1", [tag], |r| r.get(0)).unwrap_or(0)
}

fn temp_db() -> PathBuf {
    let nanos = rebuff_axum::ratelimit::now_nanos();
    std::env::temp_dir().join(format!("rebuff-exactly-once-{}-{nanos}.db", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_idempotency_store_forgot_is_answered_from_the_recorded_outcome() {
    let db = temp_db();
    // The demo key is printed once, on the fresh database.
    let (sqlite, demo) = rebuff_server::open(&db).await.expect("open");
    drop(sqlite);
    let key = demo.expect("a fresh database").key;
    let http = reqwest::Client::new();
    let post = |base: &str, body: Value| {
        http.post(format!("{base}/v1/_fault/effect"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "once")
            .json(&body)
    };

    let (first_base, stop) = serve(&db).await;
    let first = post(&first_base, json!({"tag": "t"})).send().await.expect("first");
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.text().await.expect("body");
    drop(stop);

    // The idempotency store forgot the record; the outcome table did not.
    let (base, _stop) = serve(&db).await;
    let retry = post(&base, json!({"tag": "t"})).send().await.expect("retry");
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(retry.text().await.expect("body"), first);
    assert_eq!(effects(&db, "t"), 1, "the request ran again");

    // The same key with another payload is still refused, from the recorded fingerprint.
    let (base, _stop2) = serve(&db).await;
    let other = post(&base, json!({"tag": "u"})).send().await.expect("other payload");
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.expect("problem");
    assert_eq!(problem["code"], "idempotency_key_reused");
    assert_eq!(effects(&db, "u"), 0);

    // Projects too, whose unique name would hide a second run from the client but not here.
    let create = |base: String| {
        http.post(format!("{base}/v1/projects"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "project-1")
            .json(&json!({"name": "once"}))
            .send()
    };
    let created = create(base.clone()).await.expect("create");
    assert_eq!(created.status(), 201);
    let created = created.text().await.expect("body");
    let (base, _stop3) = serve(&db).await;
    let again = create(base).await.expect("retry");
    assert_eq!(again.status(), 201, "a retry is the recorded 201, not a 409 for the name");
    assert_eq!(again.text().await.expect("body"), created);

    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
}

/// API keys live in the accounts store (here SQLite), not in the API's tables: a key creation
/// records its redacted response in the key's own transaction, and a retry after the
/// idempotency store forgot it is that response, with no second key. Keys are counted with
/// `list_keys`, not through any unique constraint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_creation_whose_record_was_lost_is_replayed_redacted_and_not_run_again() {
    use rebuff_axum::store::AccountStore;

    let db = temp_db();
    let (sqlite, demo) = rebuff_server::open(&db).await.expect("open");
    let admin = demo.expect("a fresh database").key;
    let org = sqlite.find_org("demo").await.expect("find_org").expect("the demo organisation");
    let keys = || {
        let (sqlite, org) = (sqlite.clone(), org.id.clone());
        async move { sqlite.list_keys(&org).await.expect("list_keys").len() }
    };
    assert_eq!(keys().await, 1, "the demo key");
    let http = reqwest::Client::new();
    let create = |base: &str, scopes: Value| {
        http.post(format!("{base}/v1/api-keys"))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "key-once")
            .json(&json!({ "scopes": scopes }))
            .send()
    };

    let (base, stop) = serve(&db).await;
    let first = create(&base, json!(["read"])).await.expect("first");
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(first.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let first: Value = first.json().await.expect("body");
    let text = first["key"].as_str().expect("the key's text, in the first response").to_owned();
    let secret = text.rsplit('_').next().expect("a secret part").to_owned();
    assert_eq!(keys().await, 2);
    drop(stop);

    // The idempotency store forgot the record; the accounts store did not.
    let (base, _stop) = serve(&db).await;
    let retry = create(&base, json!(["read"])).await.expect("retry");
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let retry: Value = retry.json().await.expect("body");
    assert_eq!(retry["id"], first["id"], "the first key's response");
    assert_eq!(retry["key"], "[redacted: shown only in the first response]");
    assert!(!retry.to_string().contains(&secret), "a replay shows the secret: {retry}");
    assert_eq!(keys().await, 2, "the key creation ran again");

    // The same key with another payload is refused, from the recorded fingerprint.
    let (base, _stop2) = serve(&db).await;
    let other = create(&base, json!(["write"])).await.expect("other payload");
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.expect("problem");
    assert_eq!(problem["code"], "idempotency_key_reused");
    assert_eq!(keys().await, 2);

    // The outcome kept at rest never holds the secret.
    let conn = rusqlite::Connection::open(&db).expect("open");
    let bodies: Vec<Vec<u8>> = conn
        .prepare("SELECT body FROM api_key_outcomes")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .expect("the recorded outcomes");
    assert_eq!(bodies.len(), 1);
    assert!(bodies.iter().all(|b| !String::from_utf8_lossy(b).contains(&secret)), "the secret is at rest");
    drop(conn);

    // The key itself works.
    let used = http.get(format!("{base}/v1/projects")).bearer_auth(&text).send().await.expect("use");
    assert_eq!(used.status(), 200);

    drop(sqlite);
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
}
