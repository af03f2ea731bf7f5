//! The conformance suite every storage backend must pass (enable the `conformance` feature).
//!
//! Each function exercises one contract of a trait and panics, like an assertion, when the
//! backend breaks it. Keys get a random suffix, so the suite can run repeatedly against a
//! shared server (Redis, PostgreSQL) without cleaning up. The functions spawn tokio tasks for
//! the concurrency checks, so run them on a multi-threaded runtime:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn redis_conforms() {
//!     let store = Arc::new(RedisStore::connect(URL).await?);
//!     rebuff_store::conformance::run_all(store).await;
//! }
//! ```
//!
//! An account backend runs [`accounts`] as well.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::key::{self, hash_secret};
use crate::ratelimit::now_nanos;
use crate::{
    AccountError, AccountStore, Begin, BeginRequest, IdempotencyRecord, IdempotencyStore, KeyInfo, KeyOnce,
    KeyReplay, LoginOutcome, NewKey, Outcome, Quota, QuotaStore, RateLimitStore, StoreError, StoredResponse,
};

/// Lock and record lifetimes in the expiry checks: long enough for a backend that stores
/// whole seconds.
const SHORT_TTL: Duration = Duration::from_secs(1);
/// How long the expiry checks wait for [`SHORT_TTL`] to pass.
const AFTER_SHORT_TTL: Duration = Duration::from_millis(2100);

fn unique(prefix: &str) -> String {
    let suffix: String = rand::rng().sample_iter(&Alphanumeric).take(12).map(char::from).collect();
    format!("conformance:{prefix}:{suffix}")
}

/// A burst admits exactly `limit` and refuses the rest, with consistent counters; 200
/// concurrent checks against a limit of 50 admit exactly 50.
pub async fn rate_limit_exact(store: Arc<dyn RateLimitStore>) {
    let quota = Quota { limit: 5, period: Duration::from_secs(60) };
    let key = unique("rate-exact");
    let now = now_nanos();
    for i in 0..5u32 {
        let d = store.check(&key, quota, now).await.expect("rate-limit check");
        assert!(d.allowed, "request {i} of the limit refused");
        assert_eq!(d.limit, 5);
        assert_eq!(d.remaining, 4 - i, "remaining after request {i}");
        assert_eq!(d.retry_after, None);
        assert_eq!(
            d.reset_after,
            Duration::from_secs(12 * u64::from(i + 1)),
            "reset_after after request {i}"
        );
    }
    for _ in 0..3 {
        let d = store.check(&key, quota, now).await.expect("rate-limit check");
        assert!(!d.allowed, "a request over the limit was admitted");
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Some(Duration::from_secs(12)));
        assert_eq!(d.reset_after, Duration::from_secs(60));
    }
    // Keys are independent.
    let other = store.check(&unique("rate-exact-other"), quota, now).await.expect("rate-limit check");
    assert!(other.allowed && other.remaining == 4);

    let quota = Quota { limit: 50, period: Duration::from_secs(3600) };
    let key = Arc::new(unique("rate-concurrent"));
    let now = now_nanos();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.check(&key, quota, now).await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        let d = task.await.expect("task").expect("rate-limit check");
        admitted += usize::from(d.allowed);
    }
    assert_eq!(admitted, 50, "200 concurrent checks with a limit of 50");
}

/// A store that decides without waiting ([`RateLimitStore::check_now`]) decides as `check`
/// does, on the same state: alternating the two counts one allowance down. (A store without
/// it answers `None`, and is checked through `check` alone.)
pub async fn rate_limit_now_agrees(store: Arc<dyn RateLimitStore>) {
    let quota = Quota { limit: 5, period: Duration::from_secs(60) };
    let key = unique("rate-now");
    let now = now_nanos();
    for i in 0..7u32 {
        let at_hand = if i % 2 == 0 { store.check_now(&key, quota, now) } else { None };
        let d = match at_hand {
            Some(decided) => decided,
            None => store.check(&key, quota, now).await,
        }
        .expect("rate-limit check");
        assert_eq!(d.allowed, i < 5, "request {i}");
        assert_eq!(d.remaining, 4_u32.saturating_sub(i), "remaining after request {i}");
    }
}

/// A refused key is admitted again after the retry delay, and is whole again after the
/// period.
pub async fn rate_limit_recovers(store: Arc<dyn RateLimitStore>) {
    let quota = Quota { limit: 4, period: Duration::from_secs(40) };
    let key = unique("rate-recovers");
    let t0 = now_nanos();
    for _ in 0..4 {
        assert!(store.check(&key, quota, t0).await.expect("rate-limit check").allowed);
    }
    let refused = store.check(&key, quota, t0).await.expect("rate-limit check");
    assert!(!refused.allowed);
    let retry = refused.retry_after.expect("a refusal has a retry delay");
    assert_eq!(retry, Duration::from_secs(10));
    // A millisecond early (a backend may keep milliseconds) is still refused.
    let just_before = t0 + retry.as_nanos() - 1_000_000;
    assert!(!store.check(&key, quota, just_before).await.expect("rate-limit check").allowed);
    let after = t0 + retry.as_nanos();
    let d = store.check(&key, quota, after).await.expect("rate-limit check");
    assert!(d.allowed, "not admitted after the retry delay");
    assert!(!store.check(&key, quota, after).await.expect("rate-limit check").allowed);
    // A whole period after the last admission the key is whole again.
    let later = after + Duration::from_secs(40).as_nanos();
    let d = store.check(&key, quota, later).await.expect("rate-limit check");
    assert!(d.allowed && d.remaining == 3, "not whole again after the period: {d:?}");
}

/// Charges are granted up to the limit exactly, concurrent charges never pass it, a refusal
/// records nothing, and organisations and periods are independent.
pub async fn quota_exact(store: Arc<dyn QuotaStore>) {
    let org = unique("quota-org");
    let u = store.consume(&org, "2026-01", 60, 100).await.expect("consume");
    assert_eq!((u.granted, u.used, u.limit), (true, 60, 100));
    let u = store.consume(&org, "2026-01", 41, 100).await.expect("consume");
    assert!(!u.granted, "a charge past the limit was granted");
    assert_eq!(u.used, 60, "a refused charge was recorded");
    let u = store.consume(&org, "2026-01", 40, 100).await.expect("consume");
    assert_eq!((u.granted, u.used), (true, 100), "the charge reaching the limit exactly");
    let u = store.consume(&org, "2026-01", 1, 100).await.expect("consume");
    assert_eq!((u.granted, u.used), (false, 100));
    let u = store.consume(&org, "2026-02", 1, 100).await.expect("consume");
    assert_eq!((u.granted, u.used), (true, 1), "periods are independent");
    let u = store.consume(&unique("quota-other"), "2026-01", 1, 100).await.expect("consume");
    assert_eq!((u.granted, u.used), (true, 1), "organisations are independent");

    let org = Arc::new(unique("quota-concurrent"));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (store, org) = (store.clone(), org.clone());
            // 3 and 7 alternately: 500 asked for against a limit of 250.
            let amount = if i % 2 == 0 { 3 } else { 7 };
            tokio::spawn(async move { (amount, store.consume(&org, "2026-03", amount, 250).await) })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        let (amount, u) = task.await.expect("task");
        let u = u.expect("consume");
        assert!(u.used <= 250, "usage passed the limit: {u:?}");
        if u.granted {
            granted += amount;
        }
    }
    assert!(granted <= 250 && granted > 240, "granted {granted} of 250");
    let u = store.consume(&org, "2026-03", 0, 250).await.expect("consume");
    assert_eq!(u.used, granted, "recorded usage differs from what was granted");
}

fn response(body: &'static str) -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("location".to_owned(), "/v1/things/1".to_owned()),
        ],
        body: Bytes::from_static(body.as_bytes()),
    }
}

/// `begin` takes the lock once; while it is held the same payload is in flight and another is
/// a mismatch; `release` frees it; `complete` stores the response for replay; 100 concurrent
/// `begin`s start exactly once.
pub async fn idempotency_lifecycle(store: Arc<dyn IdempotencyStore>) {
    let lock_ttl = Duration::from_secs(60);
    let ttl = Duration::from_secs(3600);
    let (fp, other) = ([7u8; 32], [8u8; 32]);
    let key = unique("idem-lifecycle");
    assert_eq!(store.begin(&key, &fp, lock_ttl).await.expect("begin"), Begin::Started);
    assert_eq!(store.begin(&key, &fp, lock_ttl).await.expect("begin"), Begin::InFlight);
    assert_eq!(store.begin(&key, &other, lock_ttl).await.expect("begin"), Begin::Mismatch);
    store.release(&key).await.expect("release");
    assert_eq!(store.begin(&key, &other, lock_ttl).await.expect("begin"), Begin::Started, "after release");
    store.release(&key).await.expect("release");
    assert_eq!(store.begin(&key, &fp, lock_ttl).await.expect("begin"), Begin::Started);
    let res = response(r#"{"id":1}"#);
    store.complete(&key, &fp, res.clone(), ttl).await.expect("complete");
    assert_eq!(store.begin(&key, &fp, lock_ttl).await.expect("begin"), Begin::Completed(res.clone()));
    assert_eq!(store.begin(&key, &other, lock_ttl).await.expect("begin"), Begin::Mismatch);
    // Releasing a completed key (a late drop guard) keeps the record.
    store.release(&key).await.expect("release");
    assert_eq!(store.begin(&key, &fp, lock_ttl).await.expect("begin"), Begin::Completed(res));
    // Keys are independent.
    assert_eq!(store.begin(&unique("idem-other"), &fp, lock_ttl).await.expect("begin"), Begin::Started);

    let key = Arc::new(unique("idem-concurrent"));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move { store.begin(&key, &fp, lock_ttl).await })
        })
        .collect();
    let mut started = 0;
    for task in tasks {
        match task.await.expect("task").expect("begin") {
            Begin::Started => started += 1,
            Begin::InFlight => {}
            other => panic!("concurrent begin answered {other:?}"),
        }
    }
    assert_eq!(started, 1, "100 concurrent begins with one key");
}

/// A lock whose holder died (never completed nor released) expires after `lock_ttl`; the
/// next `begin` starts.
pub async fn idempotency_lock_expires(store: Arc<dyn IdempotencyStore>) {
    let key = unique("idem-lock-expires");
    let fp = [3u8; 32];
    assert_eq!(store.begin(&key, &fp, SHORT_TTL).await.expect("begin"), Begin::Started);
    assert_eq!(store.begin(&key, &fp, SHORT_TTL).await.expect("begin"), Begin::InFlight);
    tokio::time::sleep(AFTER_SHORT_TTL).await;
    assert_eq!(
        store.begin(&key, &fp, SHORT_TTL).await.expect("begin"),
        Begin::Started,
        "lock did not expire"
    );
}

/// A completed record expires after its `ttl`; the key can then be used again, even with
/// another payload.
pub async fn idempotency_record_expires(store: Arc<dyn IdempotencyStore>) {
    let key = unique("idem-record-expires");
    let fp = [4u8; 32];
    let lock_ttl = Duration::from_secs(60);
    assert_eq!(store.begin(&key, &fp, lock_ttl).await.expect("begin"), Begin::Started);
    let res = response("{}");
    store.complete(&key, &fp, res.clone(), SHORT_TTL).await.expect("complete");
    assert_eq!(store.begin(&key, &fp, lock_ttl).await.expect("begin"), Begin::Completed(res));
    tokio::time::sleep(AFTER_SHORT_TTL).await;
    assert_eq!(
        store.begin(&key, &[5u8; 32], lock_ttl).await.expect("begin"),
        Begin::Started,
        "record did not expire"
    );
}

/// For a store with [`RateLimitStore::check_and_begin`] (`store` is both the rate-limit and
/// the idempotency store): the decision is the one `check` makes, and the idempotency record
/// begins exactly when the request is admitted, as `begin` would begin it. 100 concurrent
/// calls with one idempotency key against a limit of 50 admit exactly 50, of which exactly
/// one starts. A store without the operation passes trivially.
pub async fn limit_and_begin<S: RateLimitStore + IdempotencyStore>(store: Arc<S>) {
    let quota = Quota { limit: 3, period: Duration::from_secs(60) };
    let lock_ttl = Duration::from_secs(60);
    let (fp, other) = ([11u8; 32], [12u8; 32]);
    let (limit_key, idem_key) = (unique("lb-limit"), unique("lb-idem"));
    let now = now_nanos();
    let begin = |key, fingerprint| BeginRequest { key, fingerprint, lock_ttl };
    let Some(first) = store.check_and_begin(&limit_key, quota, now, begin(&idem_key, &fp)) else {
        return;
    };
    let first = first.await.expect("check_and_begin");
    assert!(first.decision.allowed && first.decision.remaining == 2, "{first:?}");
    assert_eq!(first.begin, Some(Begin::Started));
    // The record is the one `begin` sees.
    assert_eq!(store.begin(&idem_key, &fp, lock_ttl).await.expect("begin"), Begin::InFlight);
    let second = store.check_and_begin(&limit_key, quota, now, begin(&idem_key, &other));
    let second = second.expect("supported once").await.expect("check_and_begin");
    assert!(second.decision.allowed && second.decision.remaining == 1);
    assert_eq!(second.begin, Some(Begin::Mismatch));
    let res = response(r#"{"id":"lb"}"#);
    store.complete(&idem_key, &fp, res.clone(), Duration::from_secs(3600)).await.expect("complete");
    let third = store.check_and_begin(&limit_key, quota, now, begin(&idem_key, &fp));
    let third = third.expect("supported once").await.expect("check_and_begin");
    assert!(third.decision.allowed && third.decision.remaining == 0);
    assert_eq!(third.begin, Some(Begin::Completed(res)));
    // Refused: nothing is written for the idempotency key.
    let fresh = unique("lb-refused");
    let refused = store.check_and_begin(&limit_key, quota, now, begin(&fresh, &fp));
    let refused = refused.expect("supported once").await.expect("check_and_begin");
    assert!(!refused.decision.allowed && refused.decision.retry_after.is_some(), "{refused:?}");
    assert_eq!(refused.begin, None);
    assert_eq!(store.begin(&fresh, &fp, lock_ttl).await.expect("begin"), Begin::Started, "refused yet begun");

    let quota = Quota { limit: 50, period: Duration::from_secs(3600) };
    let (limit_key, idem_key) = (Arc::new(unique("lb-concurrent")), Arc::new(unique("lb-concurrent-idem")));
    let now = now_nanos();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (store, limit_key, idem_key) = (store.clone(), limit_key.clone(), idem_key.clone());
            tokio::spawn(async move {
                let request = BeginRequest { key: &idem_key, fingerprint: &fp, lock_ttl };
                store.check_and_begin(&limit_key, quota, now, request).expect("supported").await
            })
        })
        .collect();
    let (mut admitted, mut started) = (0, 0);
    for task in tasks {
        let a = task.await.expect("task").expect("check_and_begin");
        admitted += usize::from(a.decision.allowed);
        match a.begin {
            Some(Begin::Started) => started += 1,
            Some(Begin::InFlight) => {}
            None => assert!(!a.decision.allowed),
            Some(other) => panic!("concurrent check_and_begin answered {other:?}"),
        }
    }
    assert_eq!(admitted, 50, "100 concurrent calls with a limit of 50");
    assert_eq!(started, 1, "100 concurrent calls with one idempotency key");
}

/// A charge with an id is recorded once however often it is repeated while remembered (a
/// repeat answers granted with the usage as it is), concurrent repeats charge once, a refused
/// charge is not remembered, ids are per organisation, and a forgotten id charges again.
pub async fn quota_once(store: Arc<dyn QuotaStore>) {
    let (org, ttl) = (unique("quota-once"), Duration::from_secs(60));
    let u = store.consume_once(&org, "2026-01", 30, 100, "job_1", ttl).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (true, 30));
    let u = store.consume_once(&org, "2026-01", 30, 100, "job_1", ttl).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (true, 30), "a repeated charge was recorded again");
    let u = store.consume_once(&org, "2026-01", 30, 100, "job_2", ttl).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (true, 60), "another charge id");
    // Refused: not remembered, so the same id is charged once there is room.
    let u = store.consume_once(&org, "2026-01", 50, 100, "job_3", ttl).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (false, 60), "a charge past the limit");
    let u = store.consume_once(&org, "2026-01", 40, 100, "job_3", ttl).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (true, 100), "a refused charge id was remembered");
    // A repeat is answered even when the limit is reached: it asks for nothing new.
    let u = store.consume_once(&org, "2026-01", 40, 100, "job_3", ttl).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (true, 100));
    // Ids belong to their organisation.
    let other = unique("quota-once-other");
    let u = store.consume_once(&other, "2026-01", 5, 100, "job_1", ttl).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (true, 5), "a charge id of another organisation");

    let org = Arc::new(unique("quota-once-concurrent"));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, org) = (store.clone(), org.clone());
            tokio::spawn(async move { store.consume_once(&org, "2026-03", 7, 250, "job_c", ttl).await })
        })
        .collect();
    for task in tasks {
        let u = task.await.expect("task").expect("consume_once");
        assert!(u.granted, "a repeat of a granted charge was refused: {u:?}");
    }
    let u = store.consume(&org, "2026-03", 0, 250).await.expect("consume");
    assert_eq!(u.used, 7, "50 concurrent repeats of one charge");

    // Once forgotten, the id charges again.
    let org = unique("quota-once-expiry");
    let short = Duration::from_secs(1);
    store.consume_once(&org, "2026-01", 1, 100, "job_e", short).await.expect("consume_once");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let u = store.consume_once(&org, "2026-01", 1, 100, "job_e", short).await.expect("consume_once");
    assert_eq!((u.granted, u.used), (true, 2), "an expired charge id");
}

/// Runs the whole suite on a store that keeps all three concerns (the two expiry checks
/// concurrently, as they mostly wait).
pub async fn run_all<S: RateLimitStore + QuotaStore + IdempotencyStore>(store: Arc<S>) {
    rate_limit_exact(store.clone()).await;
    rate_limit_now_agrees(store.clone()).await;
    rate_limit_recovers(store.clone()).await;
    quota_exact(store.clone()).await;
    idempotency_lifecycle(store.clone()).await;
    limit_and_begin(store.clone()).await;
    tokio::join!(
        idempotency_lock_expires(store.clone()),
        idempotency_record_expires(store.clone()),
        quota_once(store)
    );
}

fn now_secs() -> i64 {
    i64::try_from(now_nanos() / 1_000_000_000).unwrap_or(i64::MAX)
}

/// The contract of [`AccountStore`]: organisations with unique names, users with unique
/// emails (ignoring case) and password logins that do not tell an unknown email from a wrong
/// password, sessions whose tokens are stored hashed and follow their user's state, keys
/// whose secrets are stored hashed, listed oldest first, scoped to their organisation and
/// revoked once; bad arguments are refused with the argument named; and
/// [`accounts_key_once`].
pub async fn accounts(store: Arc<dyn AccountStore>) {
    // Organisations.
    let name = unique("org");
    let org = store.create_org(&name).await.expect("create_org");
    assert!(org.id.starts_with("org_") && org.id.len() == 16, "org id {}", org.id);
    assert_eq!(org.name, name);
    assert_eq!(store.create_org(&name).await, Err(AccountError::OrgNameTaken));
    assert_eq!(store.create_org("  ").await, Err(AccountError::Invalid("name")));
    assert_eq!(store.get_or_create_org("").await, Err(AccountError::Invalid("name")));
    assert_eq!(store.get_or_create_org(&name).await.expect("get_or_create_org"), org);
    assert_eq!(store.find_org(&name).await.expect("find_org"), Some(org.clone()));
    assert_eq!(store.get_org(&org.id).await.expect("get_org"), Some(org.clone()));
    assert_eq!(store.find_org(&unique("absent")).await.expect("find_org"), None);
    assert_eq!(store.get_org("org_000000000000").await.expect("get_org"), None);
    let other = store.get_or_create_org(&unique("org-other")).await.expect("get_or_create_org");
    assert_ne!(other.id, org.id);

    // Users and logins.
    let email = format!("{}@Example.test", unique("user").replace(':', "-"));
    let password = "correct horse battery staple";
    let user = store.create_user(&org.id, &email, password, false).await.expect("create_user");
    assert!(user.id.starts_with("usr_") && user.id.len() == 16, "user id {}", user.id);
    assert_eq!(
        (user.org_id.as_str(), user.email.as_str(), user.disabled),
        (org.id.as_str(), email.as_str(), false)
    );
    assert_eq!(
        store.create_user(&other.id, &email.to_uppercase(), "x", false).await,
        Err(AccountError::EmailTaken),
        "emails are unique ignoring case, across organisations"
    );
    assert_eq!(store.create_user(&org.id, " ", "x", false).await, Err(AccountError::Invalid("email")));
    let stray = format!("{}@example.test", unique("stray").replace(':', "-"));
    assert_eq!(
        store.create_user("org_000000000000", &stray, "x", false).await,
        Err(AccountError::OrgNotFound)
    );
    assert_eq!(store.get_user(&user.id).await.expect("get_user"), Some(user.clone()));
    assert_eq!(store.get_user("usr_000000000000").await.expect("get_user"), None);
    let login = |email: String, password: &'static str| {
        let store = store.clone();
        async move { store.verify_login(&email, password).await.expect("verify_login") }
    };
    assert_eq!(login(email.clone(), password).await, LoginOutcome::Ok(user.clone()));
    assert_eq!(login(format!(" {} ", email.to_lowercase()), password).await, LoginOutcome::Ok(user.clone()));
    assert_eq!(login(email.clone(), "wrong").await, LoginOutcome::UnknownOrWrongPassword);
    assert_eq!(login(stray.clone(), password).await, LoginOutcome::UnknownOrWrongPassword);
    assert!(store.set_user_disabled(&user.id, true).await.expect("set_user_disabled"));
    let disabled = crate::UserInfo { disabled: true, ..user.clone() };
    assert_eq!(login(email.clone(), password).await, LoginOutcome::Disabled(disabled.clone()));
    assert_eq!(
        login(email.clone(), "wrong").await,
        LoginOutcome::UnknownOrWrongPassword,
        "a disabled account is told only with the right password"
    );
    assert_eq!(store.get_user(&user.id).await.expect("get_user"), Some(disabled));
    assert!(!store.set_user_disabled("usr_000000000000", true).await.expect("set_user_disabled"));

    // Sessions follow their user.
    let before = now_secs();
    let (token, csrf) =
        store.create_session(&user.id, Duration::from_secs(3600)).await.expect("create_session");
    let after = now_secs();
    assert_ne!(token, csrf);
    let session = store.find_session(&hash_secret(&token)).await.expect("find_session").expect("the session");
    assert_eq!((session.user_id.as_str(), session.org_id.as_str()), (user.id.as_str(), org.id.as_str()));
    assert_eq!(session.csrf_hash, hash_secret(&csrf), "the CSRF token is stored hashed");
    assert!(
        (before + 3600..=after + 3600).contains(&session.expires_at),
        "expires_at {}",
        session.expires_at
    );
    assert!(session.user_disabled, "the session of a disabled user");
    store.set_user_disabled(&user.id, false).await.expect("set_user_disabled");
    let session = store.find_session(&hash_secret(&token)).await.expect("find_session").expect("the session");
    assert!(!session.user_disabled, "the user was enabled again");
    assert_eq!(store.find_session(&hash_secret(&csrf)).await.expect("find_session"), None);
    assert_eq!(
        store.create_session("usr_000000000000", Duration::from_secs(60)).await,
        Err(AccountError::UserNotFound)
    );
    assert!(store.delete_session(&hash_secret(&token)).await.expect("delete_session"));
    assert!(!store.delete_session(&hash_secret(&token)).await.expect("delete_session"));
    assert_eq!(store.find_session(&hash_secret(&token)).await.expect("find_session"), None);

    // Keys.
    let new = |org_id: &str, name: &str, scopes: &[&str], live: bool| NewKey {
        org_id: org_id.to_owned(),
        name: name.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        expires_at: None,
        allowed_ips: Vec::new(),
        live,
    };
    let mut first = new(&org.id, "ci", &["read", "write"], false);
    first.expires_at = Some(4_102_444_800);
    first.allowed_ips = vec!["10.0.0.0/8".parse().expect("net"), "2001:db8::/32".parse().expect("net")];
    let (info, text) = store.create_key(first.clone()).await.expect("create_key");
    let parsed = key::parse(&text).expect("the key text parses");
    assert_eq!((parsed.id.as_str(), parsed.live), (info.id.as_str(), false));
    assert_eq!(info.prefix(), format!("{}{}", key::TEST_PREFIX, info.id));
    assert_eq!(
        (&info.org_id, &info.name, &info.scopes, info.expires_at, &info.allowed_ips),
        (&first.org_id, &first.name, &first.scopes, first.expires_at, &first.allowed_ips)
    );
    assert_eq!((info.revoked_at, info.last_used_at), (None, None));
    let record = store.find_key(&info.id).await.expect("find_key").expect("the key");
    assert_eq!(record.secret_hash, parsed.secret_hash, "the secret is stored hashed");
    assert_eq!(
        (&record.scopes[..], record.allowed_ips, record.live),
        (&first.scopes[..], first.allowed_ips, false)
    );
    let (live, live_text) =
        store.create_key(new(&org.id, "live", &["admin"], true)).await.expect("create_key");
    assert!(live_text.starts_with(key::LIVE_PREFIX) && live.live);
    let (foreign, _) = store.create_key(new(&other.id, "other", &["read"], false)).await.expect("create_key");
    for bad in [&["read", ""][..], &["read write"][..]] {
        assert_eq!(
            store.create_key(new(&org.id, "bad", bad, false)).await,
            Err(AccountError::Invalid("scope"))
        );
    }
    assert_eq!(
        store.create_key(new("org_000000000000", "stray", &["read"], false)).await,
        Err(AccountError::OrgNotFound)
    );
    assert_eq!(store.find_key("000000000000").await.expect("find_key"), None);
    let listed = store.list_keys(&org.id).await.expect("list_keys");
    let ids: Vec<&str> = listed.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, [info.id.as_str(), live.id.as_str()], "the organisation's keys, oldest first");
    assert_eq!(listed[0], info);
    assert_eq!(store.get_key(&org.id, &info.id).await.expect("get_key"), Some(info.clone()));
    assert_eq!(
        store.get_key(&other.id, &info.id).await.expect("get_key"),
        None,
        "another organisation's key"
    );
    assert!(!store.revoke_key(&org.id, &foreign.id).await.expect("revoke_key"), "another organisation's key");
    assert_eq!(store.find_key(&foreign.id).await.expect("find_key").and_then(|k| k.revoked_at), None);
    assert!(!store.revoke_key(&org.id, "000000000000").await.expect("revoke_key"));
    let before = now_secs();
    assert!(store.revoke_key(&org.id, &info.id).await.expect("revoke_key"));
    let revoked_at = store.get_key(&org.id, &info.id).await.expect("get_key").and_then(|k| k.revoked_at);
    let revoked_at = revoked_at.expect("revoked");
    assert!((before..=now_secs()).contains(&revoked_at));
    assert!(store.revoke_key(&org.id, &info.id).await.expect("revoke_key"), "revoking twice");
    let again = store.find_key(&info.id).await.expect("find_key").and_then(|k| k.revoked_at);
    assert_eq!(again, Some(revoked_at), "the first revocation is kept");
    assert_eq!(store.list_keys(&org.id).await.expect("list_keys").len(), 2, "revoked keys are listed");
    store.record_key_use(&live.id, 1_900_000_000).await.expect("record_key_use");
    store.record_key_use(&live.id, 1_800_000_000).await.expect("record_key_use");
    let used = store.get_key(&org.id, &live.id).await.expect("get_key").and_then(|k| k.last_used_at);
    assert_eq!(used, Some(1_900_000_000), "the latest use is kept");
    store.record_key_use("000000000000", 1).await.expect("record_key_use of a missing key");

    accounts_key_once(store).await;
}

/// The response recorded for a key in the conformance checks: its id and `tag`, never its text.
fn key_replay(tag: &'static str) -> KeyReplay {
    Box::new(move |info: &KeyInfo| Ok(key_response(&info.id, tag)))
}

fn key_response(id: &str, tag: &str) -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: Bytes::from(format!(r#"{{"id":"{id}","tag":"{tag}"}}"#)),
    }
}

/// [`AccountStore::create_key_once`]: one key per idempotency key, however often and however
/// concurrently it is asked for; a retry gets the response recorded by the first run (which
/// [`Outcomes::find`](crate::Outcomes::find) finds too), another payload is reported as such,
/// a refusal or a failure records nothing, and an expired outcome is gone.
pub async fn accounts_key_once(store: Arc<dyn AccountStore>) {
    let org = store.get_or_create_org(&unique("org-once")).await.expect("get_or_create_org");
    let new = NewKey {
        org_id: org.id.clone(),
        name: "once".to_owned(),
        scopes: vec!["read".to_owned()],
        expires_at: None,
        allowed_ips: Vec::new(),
        live: false,
    };
    let count = || {
        let (store, org_id) = (store.clone(), org.id.clone());
        async move { store.list_keys(&org_id).await.expect("list_keys").len() }
    };
    let (fp, other_fp) = ([21u8; 32], [22u8; 32]);
    let record =
        IdempotencyRecord { key: unique("key-once"), fingerprint: fp, ttl: Duration::from_secs(3600) };

    let first = store.create_key_once(new.clone(), record.clone(), key_replay("first")).await;
    let Ok(KeyOnce::Created { info, text }) = first else { panic!("the first run: {first:?}") };
    assert_eq!(key::parse(&text).map(|k| k.id), Some(info.id.clone()), "the key text is the key's");
    assert_eq!(store.get_key(&org.id, &info.id).await.expect("get_key"), Some(info.clone()));
    let recorded = key_response(&info.id, "first");
    assert_eq!(
        store.find(&record.key).await.expect("find"),
        Some(Outcome { fingerprint: fp, response: recorded.clone() }),
        "the outcome is recorded with the key"
    );
    let again = store.create_key_once(new.clone(), record.clone(), key_replay("second")).await;
    assert_eq!(again, Ok(KeyOnce::Replay(recorded.clone())), "a retry creates nothing");
    let other = IdempotencyRecord { fingerprint: other_fp, ..record.clone() };
    let reused = store.create_key_once(new.clone(), other, key_replay("other")).await;
    assert_eq!(reused, Ok(KeyOnce::Mismatch), "another payload under the same key");
    assert_eq!(count().await, 1, "one key for one idempotency key");
    assert_eq!(store.find(&unique("key-absent")).await.expect("find"), None);

    // Refusals and failures record nothing, and create nothing.
    let refused = IdempotencyRecord { key: unique("key-refused"), ..record.clone() };
    let stray = NewKey { org_id: "org_000000000000".to_owned(), ..new.clone() };
    let answer = store.create_key_once(stray, refused.clone(), key_replay("stray")).await;
    assert_eq!(answer, Err(AccountError::OrgNotFound));
    let bad = NewKey { scopes: vec!["read write".to_owned()], ..new.clone() };
    let answer = store.create_key_once(bad, refused.clone(), key_replay("bad")).await;
    assert_eq!(answer, Err(AccountError::Invalid("scope")));
    let failing: KeyReplay = Box::new(|_| Err(StoreError::backend("no response to record")));
    let answer = store.create_key_once(new.clone(), refused.clone(), failing).await;
    assert!(matches!(answer, Err(AccountError::Store(_))), "{answer:?}");
    assert_eq!(store.find(&refused.key).await.expect("find"), None, "a refusal was recorded");
    assert_eq!(count().await, 1, "a refused or failed creation left a key");

    // Concurrent runs of one idempotency key create one key, even when they overlap inside
    // their transactions (the response takes a while to make).
    let raced = IdempotencyRecord { key: unique("key-raced"), ..record.clone() };
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, new, raced) = (store.clone(), new.clone(), raced.clone());
            let slow: KeyReplay = Box::new(|info: &KeyInfo| {
                std::thread::sleep(Duration::from_millis(30));
                Ok(key_response(&info.id, "raced"))
            });
            tokio::spawn(async move { store.create_key_once(new, raced, slow).await })
        })
        .collect();
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        match task.await.expect("task").expect("create_key_once") {
            KeyOnce::Created { info, .. } => created.push(info.id),
            KeyOnce::Replay(response) => replayed.push(response),
            KeyOnce::Mismatch => panic!("a concurrent run with the same payload was told it differs"),
        }
    }
    assert_eq!(created.len(), 1, "20 concurrent runs of one idempotency key");
    assert!(replayed.iter().all(|r| *r == key_response(&created[0], "raced")), "{replayed:?}");
    assert_eq!(count().await, 2);

    // An expired outcome is not found, and no longer holds the idempotency key.
    let short = IdempotencyRecord { key: unique("key-expires"), ttl: SHORT_TTL, ..record };
    let answer = store.create_key_once(new.clone(), short.clone(), key_replay("short")).await;
    assert!(matches!(answer, Ok(KeyOnce::Created { .. })), "{answer:?}");
    assert!(store.find(&short.key).await.expect("find").is_some());
    tokio::time::sleep(AFTER_SHORT_TTL).await;
    assert_eq!(store.find(&short.key).await.expect("find"), None, "an expired outcome was found");
    let answer = store.create_key_once(new, short, key_replay("later")).await;
    assert!(matches!(answer, Ok(KeyOnce::Created { .. })), "after the outcome expired: {answer:?}");
    assert_eq!(count().await, 4);
}
