//! The storage conformance suite, the accounts, and failures, against a real PostgreSQL.
//!
//! Needs PostgreSQL (`REBUFF_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`): in CI a missing one fails these tests;
//! elsewhere they print a notice and pass without running. Each test works in a schema of its
//! own, dropped at the end.

use std::sync::Arc;
use std::time::Duration;

use rebuff_postgres::{Error, LoginOutcome, NewKey, PgStore};
use rebuff_store::key::{hash_secret, parse};
use rebuff_store::{AccountStore, KeyStore, Quota, RateLimitStore, SessionStore, StoreErrorKind};

mod support;

use support::{drop_schema, in_ci, postgres_url};

/// A store in a fresh schema; dropped with [`Schema::drop`].
struct Schema {
    store: PgStore,
}

impl Schema {
    async fn new(test: &str) -> Option<Schema> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("rebuff_test_{test}_{}_{}", std::process::id(), nanos % 1_000_000_000);
        match PgStore::builder(postgres_url()).schema(&name).pool_size(8).connect().await {
            Ok(store) => Some(Schema { store }),
            Err(e) if in_ci() => panic!("PostgreSQL is required in CI (run scripts/services.sh): {e}"),
            Err(e) => {
                eprintln!("SKIPPED: no PostgreSQL ({e}); run scripts/services.sh to start it");
                None
            }
        }
    }

    /// Drops the schema (also done on a panic, through `Drop`).
    async fn drop(self) {
        drop(self);
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if !drop_schema(self.store.schema()) {
            eprintln!("could not drop the test schema {}", self.store.schema());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite() {
    let Some(schema) = Schema::new("conformance").await else { return };
    let store = Arc::new(schema.store.clone());
    rebuff_store::conformance::run_all(store).await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_account_conformance_suite() {
    let Some(schema) = Schema::new("conformance_accounts").await else { return };
    rebuff_store::conformance::accounts(Arc::new(schema.store.clone())).await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_and_sessions_round_trip() {
    let Some(schema) = Schema::new("accounts").await else { return };
    let store = &schema.store;
    let org = store.get_or_create_org("acme").await.expect("org");
    assert_eq!(store.get_or_create_org("acme").await.expect("again"), org);
    assert_eq!(store.create_org("acme").await, Err(Error::OrgNameTaken));
    assert_eq!(store.get_org(&org.id).await.expect("get"), Some(org.clone()));

    let new = NewKey {
        org_id: org.id.clone(),
        name: "ci".into(),
        scopes: vec!["read".into(), "write".into()],
        expires_at: Some(4_000_000_000),
        allowed_ips: vec!["10.0.0.0/8".parse().expect("net")],
        live: false,
    };
    let (info, text) = store.create_key(new.clone()).await.expect("key");
    let parsed = parse(&text).expect("well-formed key");
    let record = store.find_key(&parsed.id).await.expect("find").expect("found");
    assert_eq!(record.secret_hash, parsed.secret_hash);
    assert_eq!((&record.scopes[..], record.expires_at), (&new.scopes[..], new.expires_at));
    assert_eq!(record.allowed_ips, new.allowed_ips);
    let (second, _) = store.create_key(NewKey { name: "second".into(), ..new.clone() }).await.expect("key");
    let listed: Vec<_> = store.list_keys(&org.id).await.expect("list").into_iter().map(|k| k.id).collect();
    assert_eq!(listed, vec![info.id.clone(), second.id.clone()], "oldest first");
    assert!(store.revoke_key(&org.id, &info.id).await.expect("revoke"));
    assert!(store.find_key(&info.id).await.expect("find").expect("found").revoked_at.is_some());
    let other = store.create_org("globex").await.expect("org");
    assert!(!store.revoke_key(&other.id, &second.id).await.expect("revoke"), "another org's key");
    assert_eq!(store.get_key(&other.id, &second.id).await.expect("get"), None);
    let bad_scope = NewKey { scopes: vec!["a b".into()], ..new.clone() };
    assert_eq!(store.create_key(bad_scope).await, Err(Error::Invalid("scope")));
    let no_org = NewKey { org_id: "org_missing".into(), ..new };
    assert_eq!(store.create_key(no_org).await, Err(Error::OrgNotFound));

    let user = store.create_user(&org.id, "Ada@Example.com", "pw", false).await.expect("user");
    assert_eq!(store.create_user(&org.id, "ada@example.COM", "pw", false).await, Err(Error::EmailTaken));
    assert_eq!(
        store.verify_login("ada@example.com", "pw").await.expect("login"),
        LoginOutcome::Ok(user.clone())
    );
    assert_eq!(
        store.verify_login("ada@example.com", "nope").await.expect("login"),
        LoginOutcome::UnknownOrWrongPassword
    );
    let (token, csrf) = store.create_session(&user.id, Duration::from_secs(60)).await.expect("session");
    let session = store.find_session(&hash_secret(&token)).await.expect("find").expect("found");
    assert_eq!((session.user_id.as_str(), session.org_id.as_str()), (user.id.as_str(), org.id.as_str()));
    assert_eq!(session.csrf_hash, hash_secret(&csrf));
    assert!(!session.user_disabled);
    assert!(store.set_user_disabled(&user.id, true).await.expect("disable"));
    assert!(store.find_session(&hash_secret(&token)).await.expect("find").expect("found").user_disabled);
    assert!(store.delete_session(&hash_secret(&token)).await.expect("delete"));
    assert_eq!(store.find_session(&hash_secret(&token)).await.expect("find"), None);
    assert_eq!(store.create_session("usr_missing", Duration::from_secs(60)).await, Err(Error::UserNotFound));
    schema.drop().await;
}

#[tokio::test]
async fn a_second_connect_finds_the_schema_migrated() {
    let Some(schema) = Schema::new("migrate").await else { return };
    let again =
        PgStore::builder(postgres_url()).schema(schema.store.schema()).connect().await.expect("again");
    again.get_or_create_org("x").await.expect("usable");
    schema.drop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_bad_names_are_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let err = PgStore::builder(format!("postgres://app:hunter2@127.0.0.1:{port}/x"))
        .timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable);
    assert!(!err.to_string().contains("hunter2"), "the password leaked: {err}");
    let err = PgStore::builder(postgres_url())
        .schema("x; DROP TABLE orgs")
        .connect()
        .await
        .expect_err("bad schema");
    assert_eq!(err.kind(), StoreErrorKind::Backend);
}

/// A rate-limit row deleted while a decision waits for its lock (as `purge_expired` deletes a
/// time in the past, which every instance runs at start) is made again: the decision is an
/// admission, not a refusal with NULL times that the store cannot read (once a 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_row_purged_during_a_decision_is_made_again() {
    let Some(schema) = Schema::new("gcra_purged").await else { return };
    let store = schema.store.clone();
    let quota = Quota { limit: 1_000, period: Duration::from_secs(60) };
    let now = || rebuff_store::ratelimit::now_nanos();
    assert!(store.check("org_a", quota, now()).await.expect("first decision").allowed);

    // Another session holds the row; the decision inserts nothing (the row is there) and waits
    // for its lock; the row is deleted before the lock is released.
    let (purger, conn) =
        tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    purger.batch_execute("BEGIN").await.expect("begin");
    let table = format!("{}.rate_limits", store.schema());
    purger
        .query_one(&format!("SELECT tat_us FROM {table} WHERE key = 'org_a' FOR UPDATE"), &[])
        .await
        .expect("the row, locked");
    let pid: i32 = purger.query_one("SELECT pg_backend_pid()", &[]).await.expect("pid").get(0);
    let decision = tokio::spawn({
        let store = store.clone();
        async move { store.check("org_a", quota, now()).await }
    });
    let (watcher, conn) =
        tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(conn);
    let mut waiting = false;
    for _ in 0..200 {
        let row = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))",
                &[&pid],
            )
            .await
            .expect("blocked sessions");
        if row.get::<_, i64>(0) > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(waiting, "the decision never waited for the row's lock");
    purger.execute(&format!("DELETE FROM {table} WHERE key = 'org_a'"), &[]).await.expect("purge");
    purger.batch_execute("COMMIT").await.expect("commit");

    let decision = decision.await.expect("task").expect("a decision, not a store error");
    assert!(decision.allowed, "{decision:?}");
    assert_eq!(decision.retry_after, None);
    schema.drop().await;
}
