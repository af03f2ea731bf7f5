//! Deadlines, the circuit breaker and reconnection, on a Redis server of the test's own
//! (`redis-server` on the `PATH`), paused with `SIGSTOP` and killed with `SIGKILL`.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rebuff_redis::RedisStore;
use rebuff_store::{Begin, IdempotencyStore, Quota, QuotaStore, RateLimitStore, StoreErrorKind};
use support::in_ci;

struct OwnRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl OwnRedis {
    fn start() -> Option<OwnRedis> {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let dir = std::env::temp_dir().join(format!("rebuff-deadlines-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut r = OwnRedis { child: None, port, dir };
        if let Err(e) = r.spawn() {
            assert!(!in_ci(), "redis-server is required in CI: {e}");
            eprintln!("SKIPPED: cannot run redis-server ({e})");
            return None;
        }
        Some(r)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until the server answers a connection of the test's own.
    async fn ready(&self) {
        for _ in 0..400 {
            if let Ok(c) = redis::Client::open(self.url())
                && let Ok(mut conn) = c.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not answer");
    }

    async fn keys(&self) -> Vec<String> {
        let c = redis::Client::open(self.url()).expect("url");
        let mut conn = c.get_multiplexed_async_connection().await.expect("connect");
        redis::cmd("KEYS").arg("*").query_async(&mut conn).await.expect("KEYS")
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const QUOTA: Quota = Quota { limit: 10, period: Duration::from_secs(3600) };

/// Scripts queued while Redis is paused run when it wakes up, after their callers have been
/// answered: they change nothing, so no lock is taken, no limit charged, no quota used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_that_start_after_their_deadline_change_nothing() {
    let Some(redis) = OwnRedis::start() else { return };
    redis.ready().await;
    let store = RedisStore::builder(redis.url())
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("connect");
    redis.signal("-STOP");
    let fp = [7u8; 32];
    let limit = store.check("org:1", QUOTA, 0).await;
    let begin = store.begin("key-1", &fp, Duration::from_secs(60)).await;
    let quota = store.consume("org", "2026-12", 5, 100).await;
    for e in [limit.err(), begin.err(), quota.err()] {
        assert_eq!(e.map(|e| e.kind()), Some(StoreErrorKind::Unavailable));
    }
    redis.signal("-CONT");
    redis.ready().await;
    assert_eq!(redis.keys().await, Vec::<String>::new(), "a late script wrote");
    // Once the circuit closes, the same calls act, as if the refused ones had never been.
    let mut decided = None;
    for _ in 0..100 {
        if let Ok(d) = store.check("org:1", QUOTA, 0).await {
            decided = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(decided.map(|d| (d.allowed, d.remaining)), Some((true, QUOTA.limit - 1)));
    assert_eq!(store.begin("key-1", &fp, Duration::from_secs(60)).await, Ok(Begin::Started));
    assert_eq!(store.consume("org", "2026-12", 5, 100).await.map(|u| u.used), Ok(5));
}

/// Once Redis is known to be down, calls fail without waiting for it (the circuit is open);
/// after it is back and the health check has passed, the very first call succeeds, although
/// no call was made in between to find the old connection dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_opens_the_circuit_and_the_first_call_after_it_is_back_succeeds() {
    let Some(mut redis) = OwnRedis::start() else { return };
    redis.ready().await;
    let store = RedisStore::builder(redis.url())
        .health_check(Duration::from_millis(100))
        .connect()
        .await
        .expect("connect");
    assert!(store.check("org:1", QUOTA, 0).await.is_ok());
    redis.kill();
    // The health check notices; calls then say so at once.
    let mut open = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Err(e) = store.check("org:1", QUOTA, 0).await
            && e.to_string().contains("waiting for a health check")
        {
            open = true;
            break;
        }
    }
    assert!(open, "the circuit never opened");
    redis.spawn().expect("restart");
    redis.ready().await;
    // Idle while the health check reconnects.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = store.check("org:1", QUOTA, 0).await;
    assert!(first.is_ok(), "the first call after the restart: {first:?}");
}

/// A Redis restarted between two health checks: the first call finds the old connection dead
/// and is sent again on a new one, within its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_a_dead_connection_is_sent_once_more() {
    let Some(mut redis) = OwnRedis::start() else { return };
    redis.ready().await;
    let store = RedisStore::builder(redis.url())
        .health_check(Duration::from_secs(3600))
        .connect()
        .await
        .expect("connect");
    assert!(store.check("org:1", QUOTA, 0).await.is_ok());
    redis.kill();
    redis.spawn().expect("restart");
    redis.ready().await;
    let first = store.check("org:1", QUOTA, 0).await;
    assert!(first.is_ok(), "the first call after the restart: {first:?}");
}
