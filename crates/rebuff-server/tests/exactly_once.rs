//! An answered request is never run twice, whatever the idempotency store lost: its outcome
//! was recorded with the side effect, in the same SQLite transaction, and answers the retry.

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
