//! Behaviour beyond the conformance suite: exact limits under concurrent tasks, the first
//! completion kept, and the connection lent to the server for its own tables.

mod support;

use std::time::Duration;

use bytes::Bytes;
use rebuff_sqlite::rusqlite;
use rebuff_store::{
    Begin, IdempotencyStore, Quota, QuotaStore, RateLimitStore, StoreErrorKind, StoredResponse,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_admit_exactly_the_limit() {
    let (_dir, store) = support::fresh("rate-eight");
    let quota = Quota { limit: 10, period: Duration::from_secs(60) };
    let now = rebuff_store::ratelimit::now_nanos();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut admitted = 0u32;
                for _ in 0..5 {
                    let d = store.check("org:acme", quota, now).await.expect("check");
                    if d.allowed {
                        admitted += 1;
                    } else {
                        assert_eq!(d.remaining, 0);
                        assert!(d.retry_after.is_some());
                    }
                }
                admitted
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.expect("task");
    }
    assert_eq!(admitted, 10, "40 checks from 8 tasks against a limit of 10");
}

#[tokio::test]
async fn a_quota_near_the_integer_limit_is_refused_not_wrapped() {
    let (_dir, store) = support::fresh("quota-big");
    let u = store.consume("org", "2026-01", u64::MAX, u64::MAX).await.expect("consume");
    assert!(!u.granted && u.used == 0, "{u:?}");
    let big = i64::MAX as u64;
    assert!(store.consume("org", "2026-01", big, u64::MAX).await.expect("consume").granted);
    let u = store.consume("org", "2026-01", 1, u64::MAX).await.expect("consume");
    assert_eq!((u.granted, u.used), (false, big));
}

#[tokio::test]
async fn the_first_completion_is_kept() {
    let (_dir, store) = support::fresh("idem-first");
    let fp = [1u8; 32];
    let first = StoredResponse {
        status: 201,
        headers: vec![("location".into(), "/v1/x/1".into())],
        body: Bytes::from_static(b"first"),
    };
    let second = StoredResponse { status: 500, headers: Vec::new(), body: Bytes::from_static(b"second") };
    assert_eq!(store.begin("k", &fp, Duration::from_secs(60)).await, Ok(Begin::Started));
    store.complete("k", &fp, first.clone(), Duration::from_secs(60)).await.expect("complete");
    store.complete("k", &fp, second, Duration::from_secs(60)).await.expect("complete again");
    assert_eq!(store.begin("k", &fp, Duration::from_secs(60)).await, Ok(Begin::Completed(first)));
}

#[tokio::test]
async fn the_server_keeps_its_own_tables_in_the_same_file() {
    let (dir, store) = support::fresh("with-conn");
    store
        .with_conn(|conn| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, name TEXT NOT NULL)",
            )
        })
        .await
        .expect("create table");
    store
        .with_conn(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("INSERT INTO projects VALUES ('prj_1', 'org_1', 'first')", [])?;
            tx.commit()
        })
        .await
        .expect("insert");
    // An SQL error is a backend error; a panic is an error too and the store goes on.
    let err = store
        .with_conn(|conn| conn.execute("INSERT INTO nowhere VALUES (1)", []))
        .await
        .expect_err("bad SQL");
    assert_eq!(err.kind(), StoreErrorKind::Backend);
    let err = store
        .with_conn(|conn| -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO projects VALUES ('prj_2', 'org_1', 'lost')")?;
            panic!("a bug in a handler");
        })
        .await
        .expect_err("panic");
    assert_eq!(err.kind(), StoreErrorKind::Backend);
    // A transaction left open is rolled back, not committed by the next user.
    store
        .with_conn(|conn| {
            conn.execute_batch("BEGIN; INSERT INTO projects VALUES ('prj_3', 'org_1', 'left open')")
        })
        .await
        .expect("leave a transaction open");
    let names = store
        .with_conn(|conn| {
            let mut stmt = conn.prepare("SELECT name FROM projects ORDER BY id")?;
            stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .expect("select");
    assert_eq!(names, ["first"]);
    let version: i64 = store
        .with_conn(|conn| conn.query_row("PRAGMA user_version", [], |row| row.get(0)))
        .await
        .expect("version");
    assert!(version >= 1);
    drop(store);
    let store = rebuff_sqlite::SqliteStore::open(dir.db()).expect("reopen");
    let n: i64 = store
        .with_conn(|conn| conn.query_row("SELECT count(*) FROM projects", [], |row| row.get(0)))
        .await
        .expect("count");
    assert_eq!(n, 1);
}
