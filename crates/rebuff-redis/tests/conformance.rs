//! The storage conformance suite, and what the suite cannot check: decisions on the Redis
//! server's clock, and failures.
//!
//! Needs a Redis (`REBUFF_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/`): in CI a missing
//! one fails these tests; elsewhere they print a notice and pass without running.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rebuff_redis::{Clock, RedisStore};
use rebuff_store::ratelimit::now_nanos;
use rebuff_store::{Begin, IdempotencyStore, Quota, QuotaStore, RateLimitStore, StoreErrorKind};
use support::{Mode, Proxy, cleanup, connect_or_skip, redis_url, unique_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite_on_the_callers_clock() {
    let prefix = unique_prefix("conformance");
    let builder = RedisStore::builder(redis_url()).prefix(&prefix).clock(Clock::Caller);
    let Some(store) = connect_or_skip(builder).await else { return };
    let store = Arc::new(store);
    rebuff_store::conformance::run_all(store).await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_clock_free_part_of_the_suite_on_the_redis_clock() {
    let prefix = unique_prefix("conformance-redis-clock");
    let Some(store) = connect_or_skip(RedisStore::builder(redis_url()).prefix(&prefix)).await else { return };
    let store = Arc::new(store);
    rebuff_store::conformance::quota_exact(store.clone()).await;
    rebuff_store::conformance::quota_once(store.clone()).await;
    rebuff_store::conformance::idempotency_lifecycle(store.clone()).await;
    rebuff_store::conformance::idempotency_lock_expires(store).await;
    cleanup(&prefix).await;
}

/// The suite's exact-burst check, on the Redis clock: the durations are measured from the
/// server's time at each decision, so they can only shrink by the time the test takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_clock_admits_exactly_the_limit() {
    let prefix = unique_prefix("redis-clock");
    let Some(store) = connect_or_skip(RedisStore::builder(redis_url()).prefix(&prefix)).await else { return };
    let quota = Quota { limit: 5, period: Duration::from_secs(60) };
    let started = Instant::now();
    for i in 0..5u32 {
        let d = store.check("burst", quota, 0).await.expect("check");
        assert!(d.allowed, "request {i} refused");
        assert_eq!(d.remaining, 4 - i);
        let full = Duration::from_secs(12 * u64::from(i + 1));
        assert!(
            d.reset_after <= full && d.reset_after + started.elapsed() + Duration::from_millis(5) >= full
        );
    }
    for _ in 0..3 {
        let d = store.check("burst", quota, 0).await.expect("check");
        assert!(!d.allowed, "a request over the limit was admitted");
        assert_eq!(d.remaining, 0);
        let retry = d.retry_after.expect("retry delay");
        assert!(retry <= Duration::from_secs(12) && retry > Duration::from_secs(11), "{retry:?}");
    }

    let store = Arc::new(store);
    let quota = Quota { limit: 50, period: Duration::from_secs(3600) };
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.check("concurrent", quota, 0).await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.expect("task").expect("check").allowed);
    }
    assert_eq!(admitted, 50, "200 concurrent checks with a limit of 50");
    cleanup(&prefix).await;
}

/// Two instances whose clocks are an hour apart share one limit: the time they pass is
/// ignored. On the callers' clocks, the instance that is behind spends the allowance, and the
/// one ahead then finds it whole again: twice the limit gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_with_skewed_clocks_agree_on_the_redis_clock() {
    let prefix = unique_prefix("skew");
    let Some(store) = connect_or_skip(RedisStore::builder(redis_url()).prefix(&prefix)).await else { return };
    let caller = RedisStore::builder(redis_url())
        .prefix(&prefix)
        .clock(Clock::Caller)
        .connect()
        .await
        .expect("connect");
    let quota = Quota { limit: 10, period: Duration::from_secs(60) };
    let hour = Duration::from_secs(3600).as_nanos();
    let (fast, slow) = (now_nanos() + hour, now_nanos() - hour);
    let mut admitted = 0;
    for now in [slow, fast] {
        for _ in 0..20 {
            admitted += usize::from(store.check("shared", quota, now).await.expect("check").allowed);
        }
    }
    assert_eq!(admitted, 10, "skewed instances on the Redis clock");
    let mut admitted = 0;
    for now in [slow, fast] {
        for _ in 0..20 {
            admitted += usize::from(caller.check("shared-caller", quota, now).await.expect("check").allowed);
        }
    }
    assert_eq!(admitted, 20, "on the callers' clocks the skew was expected to show");
    cleanup(&prefix).await;
}

#[tokio::test]
async fn quota_counters_expire_and_are_per_prefix() {
    let prefix = unique_prefix("quota-ttl");
    let builder = RedisStore::builder(redis_url()).prefix(&prefix).quota_ttl(Duration::from_secs(1));
    let Some(store) = connect_or_skip(builder).await else { return };
    let other = RedisStore::builder(redis_url()).prefix(unique_prefix("quota-ttl-other")).connect().await;
    let other = other.expect("connect");
    assert_eq!(store.consume("org", "2026-01", 3, 5).await.expect("consume").used, 3);
    assert_eq!(other.consume("org", "2026-01", 0, 5).await.expect("consume").used, 0, "prefixes are apart");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.consume("org", "2026-01", 0, 5).await.expect("consume").used, 0, "counter kept");
    cleanup(&prefix).await;
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_at_connect() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let started = Instant::now();
    let err = RedisStore::builder(format!("redis://:hunter2@127.0.0.1:{port}/"))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable);
    assert!(!err.to_string().contains("hunter2"), "the password leaked: {err}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    let err = RedisStore::connect("not a url").await.expect_err("bad url");
    assert_eq!(err.kind(), StoreErrorKind::Backend);
}

/// Redis goes away (connections cut, new ones refused), then hangs (no answers), then comes
/// back: every call fails fast as unavailable meanwhile, and the store reconnects by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_is_unavailable_and_the_store_reconnects() {
    let prefix = unique_prefix("outage");
    if connect_or_skip(RedisStore::builder(redis_url()).prefix(&prefix)).await.is_none() {
        return;
    }
    let proxy = Proxy::start().await;
    let store = RedisStore::builder(proxy.url())
        .prefix(&prefix)
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect through the proxy");
    let quota = Quota { limit: 3, period: Duration::from_secs(3600) };
    assert!(store.check("k", quota, 0).await.expect("check").allowed);
    let fp = [9u8; 32];
    assert_eq!(store.begin("idem", &fp, Duration::from_secs(60)).await.expect("begin"), Begin::Started);

    for mode in [Mode::Down, Mode::Hang] {
        proxy.set(mode);
        for _ in 0..5 {
            let started = Instant::now();
            let err = store.check("k", quota, 0).await.expect_err("Redis is away");
            assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{mode:?}: {err}");
            assert!(started.elapsed() < Duration::from_millis(900), "{mode:?}: took {:?}", started.elapsed());
            let err = store.consume("org", "2026-01", 1, 10).await.expect_err("Redis is away");
            assert_eq!(err.kind(), StoreErrorKind::Unavailable);
            let err = store.begin("idem", &fp, Duration::from_secs(60)).await.expect_err("Redis is away");
            assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        }
    }

    proxy.set(Mode::Up);
    let mut admitted = 1; // the one before the outage
    let mut back = false;
    for _ in 0..200 {
        if let Ok(d) = store.check("k", quota, 0).await {
            admitted += usize::from(d.allowed);
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the store did not reconnect");
    // The state from before the outage is still there: the lock, and the admissions.
    assert_eq!(store.begin("idem", &fp, Duration::from_secs(60)).await.expect("begin"), Begin::InFlight);
    let mut last = None;
    for _ in 0..5 {
        let d = store.check("k", quota, 0).await.expect("check");
        admitted += usize::from(d.allowed);
        last = Some(d.allowed);
    }
    // Never more than the limit. (Fewer is possible: a check that Redis ran but whose answer
    // came after the deadline, as the connection came back, counted without admitting.)
    assert!(admitted <= 3, "{admitted} admitted across the outage, limit 3");
    assert_eq!(last, Some(false), "the limit is enforced after the outage");
    cleanup(&prefix).await;
}
