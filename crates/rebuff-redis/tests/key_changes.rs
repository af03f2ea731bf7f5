//! A key change announced over Redis empties the key caches listening on the same prefix at
//! once, and no other: keys in SQLite, which cannot push, cached as the server caches them.
//!
//! Needs a Redis (`REBUFF_TEST_REDIS_URL`): in CI a missing one fails this test; elsewhere it
//! prints a notice and passes without running.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rebuff_redis::RedisStore;
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
use rebuff_store::{CachedKeyStore, KeyStore};
use support::{cleanup, connect_or_skip, eventually, redis_url, subscribers, unique_prefix};

/// Whether `cache` answers `id` as revoked (or gone).
async fn revoked(cache: &CachedKeyStore, id: &str) -> bool {
    cache.find_key(id).await.expect("find the key").is_none_or(|record| record.revoked_at.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_key_change_empties_the_caches_on_its_prefix_only() {
    let (prefix, other) = (unique_prefix("keys"), unique_prefix("keys-other"));
    let Some(announcer) = connect_or_skip(RedisStore::builder(redis_url()).prefix(&prefix)).await else {
        return;
    };
    let connect = |prefix: &str| RedisStore::builder(redis_url()).prefix(prefix).connect();
    let same = connect(&prefix).await.expect("connect to Redis");
    let elsewhere = connect(&other).await.expect("connect to Redis");

    let nanos = rebuff_store::ratelimit::now_nanos();
    let db = std::env::temp_dir().join(format!("rebuff-key-changes-{}-{nanos}.db", std::process::id()));
    let sqlite = SqliteStore::open(&db).expect("open SQLite");
    let org = sqlite.get_or_create_org("acme").await.expect("org").id;
    let (_, key) = sqlite
        .create_key(NewKey {
            org_id: org.clone(),
            name: "reader".into(),
            scopes: vec!["read".into()],
            expires_at: None,
            allowed_ips: Vec::new(),
            live: false,
        })
        .await
        .expect("key");
    let id = rebuff_store::key::parse(&key).expect("well-formed").id;
    // Polled once an hour: within the test only an announcement empties them.
    let cache = || {
        CachedKeyStore::new(Arc::new(sqlite.clone()), Arc::new(sqlite.clone()))
            .max_staleness(Duration::from_secs(3600))
    };
    let (heard, unheard) = (cache(), cache());
    same.listen_key_changes(heard.handle());
    elsewhere.listen_key_changes(unheard.handle());
    for channel in [same.key_changes_channel(), elsewhere.key_changes_channel()] {
        assert!(
            eventually(Duration::from_secs(10), async || subscribers(&channel).await == 1).await,
            "a listener subscribes to {channel}"
        );
    }

    // Both cache the key, and keep serving it once it is revoked in the database alone.
    assert!(!revoked(&heard, &id).await && !revoked(&unheard, &id).await);
    assert!(sqlite.revoke_key(&org, &id).await.expect("revoke"));
    assert!(!revoked(&heard, &id).await, "the cache serves the key until it hears of the change");

    announcer.announce_key_change().await.expect("announce");
    assert!(
        eventually(Duration::from_secs(2), async || revoked(&heard, &id).await).await,
        "the cache listening on the announcer's prefix sees the revocation"
    );
    assert!(!revoked(&unheard, &id).await, "a cache listening on another prefix is left alone");

    drop((heard, unheard));
    cleanup(&prefix).await;
    cleanup(&other).await;
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
}
