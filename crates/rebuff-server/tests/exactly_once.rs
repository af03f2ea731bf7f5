//! An answered request is never run twice, whatever the idempotency store lost: its outcome
//! was recorded with the side effect, in the same transaction (of the API's SQLite file, or of
//! the accounts store for a key creation), and answers the retry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use rebuff::Catalog;
use rebuff_axum::store::{BoxFuture, MemoryStore, QuotaStore, StoreError, Usage};
use rebuff_server::{AppState, Config};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Serves the reference API over `db` with idempotency records in a fresh in-memory store:
/// each call is the same database with an idempotency store that forgot everything, as a
/// Redis restarted without persistence.
async fn serve(db: &Path) -> (String, oneshot::Sender<()>) {
    serve_with(db, |_| {}, None).await
}

/// [`serve`], with a configuration of the test's and, when given, a quota store of its own.
async fn serve_with(
    db: &Path,
    configure: impl FnOnce(&mut Config),
    quotas: Option<Arc<dyn QuotaStore>>,
) -> (String, oneshot::Sender<()>) {
    let (sqlite, _) = rebuff_server::open(db).await.expect("open");
    let mut config = Config::new(Arc::new(Catalog::builtin("rebuff").expect("profile").clone()));
    configure(&mut config);
    let mut builder = AppState::builder(config, sqlite).idempotency(Arc::new(MemoryStore::new()));
    if let Some(quotas) = quotas {
        builder = builder.quotas(quotas);
    }
    let state = builder.build().await.expect("state");
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
        .prepare("SELECT body FROM outcomes")
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

/// A quota store whose next charge is made but its reply lost, as when the store (or the
/// network) fails between doing the work and answering it.
struct LosesAReply {
    inner: MemoryStore,
    lose_next: AtomicBool,
}

impl QuotaStore for LosesAReply {
    fn consume<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        self.inner.consume(org, period, amount, limit)
    }

    fn consume_once<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
        charge: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        Box::pin(async move {
            let usage = self.inner.consume_once(org, period, amount, limit, charge, ttl).await?;
            if self.lose_next.swap(false, Ordering::SeqCst) {
                return Err(StoreError::unavailable("the reply was lost"));
            }
            Ok(usage)
        })
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

fn remove(db: &Path) {
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
}

/// Training and generation run in steps (a transition, a quota charge, a job, work finished
/// in the background). With a key, each retry resumes where the first attempt stopped and
/// repeats nothing: the charge whose reply was lost is not charged again, one job is written,
/// and a retry after the idempotency store forgot is the recorded answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_step_work_resumes_from_its_recovery_point_and_repeats_nothing() {
    let db = temp_db();
    let (sqlite, demo) = rebuff_server::open(&db).await.expect("open");
    drop(sqlite);
    let key = demo.expect("a fresh database").key;
    let org: String = rusqlite::Connection::open(&db)
        .expect("open")
        .query_row("SELECT id FROM orgs", [], |r| r.get(0))
        .expect("the demo organisation");
    let quotas = Arc::new(LosesAReply { inner: MemoryStore::new(), lose_next: AtomicBool::new(false) });
    let fast = |c: &mut Config| {
        c.training_delay = Duration::from_millis(20);
        c.job_delay = Duration::from_millis(20);
    };
    let (base, _stop) = serve_with(&db, fast, Some(quotas.clone())).await;
    let http = reqwest::Client::new();
    let post = |url: String, idempotency_key: &str, body: Value| {
        http.post(url).bearer_auth(&key).header("Idempotency-Key", idempotency_key).json(&body).send()
    };

    let model: Value = post(
        format!("{base}/v1/models"),
        "model-1",
        json!({"name": "m", "model_type": "ctgan", "config": {"batch_size": 10}}),
    )
    .await
    .expect("create model")
    .json()
    .await
    .expect("model");
    let model_id = model["id"].as_str().expect("model id").to_owned();
    let train = |base: String| post(format!("{base}/v1/models/{model_id}/train"), "train-1", json!({}));
    let trained = train(base.clone()).await.expect("train");
    assert_eq!(trained.status(), 202);
    let trained = trained.text().await.expect("body");
    // Its retry, on an instance whose idempotency store forgot: the recorded 202, not a 409.
    let (base2, _stop2) = serve_with(&db, fast, Some(quotas.clone())).await;
    let again = train(base2.clone()).await.expect("train again");
    assert_eq!(again.status(), 202, "a retried training was refused as a second run");
    assert_eq!(again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(again.text().await.expect("body"), trained);
    // The background step finishes it.
    let ready = async {
        loop {
            let m: Value = http
                .get(format!("{base}/v1/models/{model_id}"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("get model")
                .json()
                .await
                .expect("model");
            if m["status"] == "ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ready).await.expect("the model became ready");

    // The charge is made, its reply lost: the request fails, masked, and may be retried.
    let generate = |base: String, n: i64| {
        post(format!("{base}/v1/models/{model_id}/generate"), "gen-1", json!({"n_samples": n}))
    };
    quotas.lose_next.store(true, Ordering::SeqCst);
    let failed = generate(base.clone(), 100).await.expect("generate");
    assert_eq!(failed.status(), 503);
    assert!(failed.headers().get("retry-after").is_some());
    let period = rebuff_axum::quota::period_at(SystemTime::now());
    let used = || {
        let (org, period, quotas) = (org.clone(), period.clone(), quotas.clone());
        async move { quotas.inner.consume(&org, &period, 0, u64::MAX).await.expect("usage").used }
    };
    assert_eq!(used().await, 100, "the first attempt's charge was made");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM jobs"), 0);

    // The retry resumes from the recovery point: the same charge is not made again.
    let done = generate(base.clone(), 100).await.expect("retry");
    assert_eq!(done.status(), 202);
    let job: Value = done.json().await.expect("job");
    assert_eq!(used().await, 100, "the retry charged the quota again");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM jobs"), 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM idempotency_progress"),
        0,
        "the recovery point outlived the outcome"
    );

    // Forgotten by the idempotency store: the recorded outcome, nothing run or charged.
    let (base3, _stop3) = serve_with(&db, fast, Some(quotas.clone())).await;
    let replayed = generate(base3.clone(), 100).await.expect("replay");
    assert_eq!(replayed.status(), 202);
    assert_eq!(replayed.json::<Value>().await.expect("job"), job);
    assert_eq!(used().await, 100);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM jobs"), 1);
    // Another payload under the key is refused, whatever step it reached.
    let other = generate(base3, 5).await.expect("other payload");
    assert_eq!(other.status(), 422);
    assert_eq!(other.json::<Value>().await.expect("problem")["code"], "idempotency_key_reused");
    remove(&db);
}

/// Work left running by an instance that stopped (training, a job) is finished by the next
/// one to start: its requests were answered, so nothing else would finish it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_left_running_by_a_stopped_instance_is_finished_by_the_next() {
    let db = temp_db();
    let (sqlite, demo) = rebuff_server::open(&db).await.expect("open");
    drop(sqlite);
    let key = demo.expect("a fresh database").key;
    let slow = |c: &mut Config| c.training_delay = Duration::from_secs(3600);
    let (base, stop) = serve_with(&db, slow, None).await;
    let http = reqwest::Client::new();
    let model: Value = http
        .post(format!("{base}/v1/models"))
        .bearer_auth(&key)
        .json(&json!({"name": "m", "model_type": "ctgan", "config": {"batch_size": 10}}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("model");
    let id = model["id"].as_str().expect("id").to_owned();
    let res =
        http.post(format!("{base}/v1/models/{id}/train")).bearer_auth(&key).send().await.expect("train");
    assert_eq!(res.status(), 202);
    drop(stop);
    let status = || count(&db, &format!("SELECT status = 'ready' FROM models WHERE id = '{id}'"));
    assert_eq!(status(), 0, "still training when its instance stopped");

    let (_base, _stop) = serve_with(&db, |c| c.training_delay = Duration::from_millis(20), None).await;
    let ready = async {
        while status() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("the next instance finished the training");
    remove(&db);
}

/// Outcomes recorded by an earlier version, in the server's own `idempotency_outcomes` table,
/// are carried over to the store's `outcomes` when the server starts, so that their retries
/// are still answered from them; expired ones are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_of_an_earlier_version_are_carried_over() {
    let db = temp_db();
    drop(rebuff_server::open(&db).await.expect("open"));
    let now = i64::try_from(rebuff_axum::ratelimit::now_nanos() / 1_000_000_000).expect("seconds");
    {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(
            "CREATE TABLE idempotency_outcomes (key TEXT PRIMARY KEY, fingerprint BLOB NOT NULL,
             status INTEGER NOT NULL, content_type TEXT NOT NULL, body BLOB NOT NULL, expires_at INTEGER NOT NULL)",
        )
        .expect("the earlier table");
        let insert = "INSERT INTO idempotency_outcomes VALUES (?1, ?2, 201, 'application/json', ?3, ?4)";
        conn.execute(insert, rusqlite::params!["kept", &[1u8; 32][..], &b"{\"id\":1}"[..], now + 3600])
            .expect("row");
        conn.execute(insert, rusqlite::params!["expired", &[1u8; 32][..], &b"{}"[..], now - 1]).expect("row");
    }
    // The server's own tables are migrated when it starts.
    let (_base, stop) = serve(&db).await;
    drop(stop);
    let (store, _) = rebuff_server::open(&db).await.expect("open again");
    use rebuff_axum::idempotency::Outcomes as _;
    let kept = store.find("kept").await.expect("find").expect("carried over");
    assert_eq!((kept.response.status, &kept.response.body[..]), (201, &b"{\"id\":1}"[..]));
    assert_eq!(kept.response.headers, vec![("content-type".to_owned(), "application/json".to_owned())]);
    assert!(store.find("expired").await.expect("find").is_none());
    assert_eq!(
        count(&db, "SELECT count(*) FROM sqlite_master WHERE name = 'idempotency_outcomes'"),
        0,
        "the earlier table is gone"
    );
    drop(store);
    remove(&db);
}
