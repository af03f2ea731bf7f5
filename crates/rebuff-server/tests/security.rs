//! Regression tests of issue 14 (a penetration test of `rebuff serve`): one test or more per
//! finding, each named in `docs/HARDENING.md`'s threat model.

mod support;

use std::time::Duration;

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
    let stored: Vec<Vec<u8>> = s
        .store
        .read_conn(|c| {
            let mut stmt = c.prepare("SELECT coalesce(body, x'') FROM idempotency")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .expect("read the idempotency table");
    assert!(!stored.is_empty(), "the completion is stored");
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
