//! Faults of whole processes, for real: an instance killed with SIGKILL in the middle of an
//! idempotent request, and the Redis server itself killed and started again during a load run.
//!
//! The SIGKILL test needs the test Redis (`REBUFF_TEST_REDIS_URL`); the restart test starts
//! a Redis server of its own (`redis-server` on the `PATH`) on a free port, with its
//! append-only file synced on every write, so that what Redis acknowledged survives its
//! restart. In CI a missing Redis or `redis-server` fails these tests; elsewhere they print a
//! notice and pass without running.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebuff::Catalog;
use rebuff_redis::RedisStore;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
use rebuff_store::Quota;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{cleanup, connect_or_skip, in_ci, redis_url, unique_prefix};
use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;

/// The request timeout of every instance here: an idempotency lock outlives a dead holder by
/// this plus the server's margin of 5 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

fn config() -> Config {
    let mut config = Config::new(Arc::new(Catalog::builtin("rebuff").expect("profile").clone()));
    config.request_timeout = REQUEST_TIMEOUT;
    config
}

/// A fresh SQLite file with organisation `acme` and an admin key.
async fn database(test: &str) -> (PathBuf, SqliteStore, String) {
    let nanos = rebuff_store::ratelimit::now_nanos();
    let db = std::env::temp_dir().join(format!("rebuff-{test}-{}-{nanos}.db", std::process::id()));
    let sqlite = SqliteStore::open(&db).expect("open SQLite");
    let org = sqlite.get_or_create_org("acme").await.expect("org").id;
    let new = NewKey {
        org_id: org,
        name: "admin".into(),
        scopes: vec!["read".into(), "write".into(), "admin".into()],
        expires_at: None,
        allowed_ips: Vec::new(),
        live: false,
    };
    let (_, key) = sqlite.create_key(new).await.expect("key");
    (db, sqlite, key)
}

fn remove_database(db: &Path) {
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
}

/// Serves the reference API over `db` and a Redis store; returns its base URL and the sender
/// that stops it.
async fn serve(db: &Path, redis: RedisStore, config: Config) -> (String, oneshot::Sender<()>) {
    let store = SqliteStore::open(db).expect("open SQLite");
    let state = AppState::builder(config, store).redis(redis).build().await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(rebuff_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    (base, tx)
}

// ---- an instance killed mid-request ----------------------------------------------------------

/// The environment variables that make [`child_instance`] serve.
const CHILD_DB: &str = "REBUFF_TEST_CHILD_DB";
const CHILD_PREFIX: &str = "REBUFF_TEST_CHILD_PREFIX";

/// Not a test of its own: the SIGKILL test runs this test binary again, with only this
/// function selected and the environment naming its database and Redis prefix, as a second
/// server process it can kill. It prints its address and serves until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a server process for `an_instance_killed_mid_request_leaves_a_lock_that_expires`"]
async fn child_instance() {
    let (Ok(db), Ok(prefix)) = (std::env::var(CHILD_DB), std::env::var(CHILD_PREFIX)) else {
        return;
    };
    let redis = RedisStore::builder(redis_url()).prefix(&prefix).connect().await.expect("connect to Redis");
    let (base, _stop) = serve(Path::new(&db), redis, config()).await;
    println!("LISTENING {base}");
    std::future::pending::<()>().await;
}

/// Kills the child on every way out of the test.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second server process, started from this test binary, sharing `db` and Redis `prefix`.
async fn spawn_instance(db: &Path, prefix: &str) -> (Killed, String) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "child_instance", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, db)
        .env(CHILD_PREFIX, prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the second instance");
    let stdout = child.stdout.take().expect("its output");
    let child = Killed(child);
    let stdout = tokio::process::ChildStdout::from_std(stdout).expect("async output");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read its output") {
            // The harness may have begun the line with the test's name.
            if let Some((_, base)) = line.split_once("LISTENING ") {
                return base.trim().to_owned();
            }
        }
        panic!("the second instance exited before listening");
    })
    .await
    .expect("the second instance did not start within 30 s");
    (child, base)
}

/// An instance killed with SIGKILL while it runs an idempotent request leaves its lock in
/// Redis: a retry on the other instance is answered `idempotency_key_in_use` (409, with
/// `Retry-After`) until the lock expires, then runs the request exactly once, and the retry
/// after that is a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_mid_request_leaves_a_lock_that_expires() {
    let prefix = unique_prefix("sigkill");
    let Some(redis) = connect_or_skip(RedisStore::builder(redis_url()).prefix(&prefix)).await else {
        return;
    };
    let (db, sqlite, key) = database("sigkill").await;
    let (survivor, _stop) = serve(&db, redis, config()).await;
    let (mut doomed, doomed_base) = spawn_instance(&db, &prefix).await;
    let http = reqwest::Client::new();
    let body = json!({"name": "exactly-once"});
    let post = |base: &str| {
        http.post(format!("{base}/v1/_fault/slow-project"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "order-7")
            .json(&body)
    };

    // The first attempt would take a minute on the instance about to die.
    let first = tokio::spawn(post(&doomed_base).header("X-Fault-Delay-Ms", "60000").send());
    // Once its lock is in Redis, the request is in its handler (asking through the other
    // instance instead could take the lock first).
    let mut conn = redis::Client::open(redis_url())
        .expect("Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let locks: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}idem:*")).query_async(&mut conn).await.expect("KEYS");
        if !locks.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the first attempt never took the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = Instant::now();
    doomed.0.kill().expect("SIGKILL the instance");
    doomed.0.wait().expect("reap it");
    assert!(first.await.expect("task").is_err(), "the killed instance answered");

    // Until the lock expires, retries are told to wait, never run, never a 5xx.
    let mut conflicts = 0;
    let res = loop {
        let res = post(&survivor).send().await.expect("retry");
        if res.status() != StatusCode::CONFLICT {
            break res;
        }
        assert_eq!(res.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        let problem: Value = res.json().await.expect("problem body");
        assert_eq!(problem["code"], "idempotency_key_in_use", "{problem}");
        conflicts += 1;
        assert!(killed_at.elapsed() < Duration::from_secs(20), "the lock never expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let waited = killed_at.elapsed();
    assert_eq!(res.status(), StatusCode::CREATED, "the retry after the lock expired");
    assert!(res.headers().get("idempotent-replayed").is_none());
    let created: Value = res.json().await.expect("project");
    assert!(conflicts > 0, "no retry saw the lock");
    // The lock lasts the request timeout plus a 5 s margin from when it was taken.
    let lock_ttl = REQUEST_TIMEOUT + Duration::from_secs(5);
    assert!(waited <= lock_ttl + Duration::from_secs(2), "waited {waited:?} for a {lock_ttl:?} lock");

    let res = post(&survivor).send().await.expect("second retry");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(res.json::<Value>().await.expect("replay"), created);
    let runs: i64 = sqlite
        .with_conn(|c| {
            c.query_row("SELECT COUNT(*) FROM projects WHERE name = 'exactly-once'", [], |r| r.get(0))
        })
        .await
        .expect("count");
    assert_eq!(runs, 1, "the request ran {runs} times");
    eprintln!("SIGKILL: {conflicts} retries answered 409 for {waited:?}, then one run and a replay");

    drop(doomed);
    cleanup(&prefix).await;
    remove_database(&db);
}

// ---- Redis killed and started again ------------------------------------------------------

/// A Redis server of this test's own, persisting every write before acknowledging it.
struct OwnRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl OwnRedis {
    /// Starts `redis-server` on a free port; `None` when it is not installed (outside CI).
    async fn start() -> Option<OwnRedis> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("address").port()
        };
        let dir = std::env::temp_dir().join(format!("rebuff-own-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("Redis directory");
        let mut redis = OwnRedis { child: None, port, dir };
        match redis.spawn() {
            Ok(()) => {}
            Err(e) if in_ci() => panic!("redis-server is required in CI (run scripts/services.sh): {e}"),
            Err(e) => {
                eprintln!("SKIPPED: cannot run redis-server ({e})");
                return None;
            }
        }
        redis.wait_ready().await;
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
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

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no final save.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL redis-server");
            child.wait().expect("reap redis-server");
        }
    }

    async fn restart(&mut self) {
        self.spawn().expect("start redis-server again");
        self.wait_ready().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one request of the load run got.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
    /// For an idempotent POST: its key and payload.
    post: Option<(String, Value)>,
}

/// Redis killed with SIGKILL and started again during a load run over two instances: no 5xx
/// but a masked 503 with `Retry-After`; every idempotent request that got its answer replays
/// that answer afterwards; and the rate limit, whose state Redis kept, admits no more than
/// its limit over the whole run, so it is enforced again after the recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_during_a_load_run_keeps_records_and_limits() {
    let Some(mut redis) = OwnRedis::start().await else {
        return;
    };
    const LIMIT: u32 = 3000;
    let (db, _sqlite, key) = database("redis-restart").await;
    let mut bases = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let store = RedisStore::builder(redis.url())
            .timeout(Duration::from_millis(300))
            .connect()
            .await
            .expect("connect to our Redis");
        let mut config = config();
        config.rate_limit = Quota { limit: LIMIT, period: Duration::from_secs(24 * 3600) };
        let (base, stop) = serve(&db, store, config).await;
        bases.push(base);
        stops.push(stop);
    }
    let bases = Arc::new(bases);
    let http = reqwest::Client::new();

    // The load: 8 loops alternating instances, each request a GET or an idempotent POST with
    // a key of its own, until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loops: Vec<_> = (0..8)
        .map(|worker| {
            let (http, bases, key, stop) = (http.clone(), bases.clone(), key.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut i = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let base = &bases[(worker + i) % 2];
                    let (req, post) = if i.is_multiple_of(2) {
                        (http.get(format!("{base}/v1/projects")), None)
                    } else {
                        let idem = format!("w{worker}-{i}");
                        let payload = json!({"name": format!("p-{idem}")});
                        let req = http
                            .post(format!("{base}/v1/projects"))
                            .header("Idempotency-Key", &idem)
                            .json(&payload);
                        (req, Some((idem, payload)))
                    };
                    let res = req.bearer_auth(&key).send().await.expect("the instance answers");
                    let status = res.status();
                    let retry_after =
                        res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let body = res.text().await.expect("body");
                    answers.push(Answer { status, retry_after, body, post });
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                answers
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.restart().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut answers = Vec::new();
    for task in loops {
        answers.extend(task.await.expect("load loop"));
    }

    let count = |s: StatusCode| answers.iter().filter(|a| a.status == s).count();
    let unavailable = count(StatusCode::SERVICE_UNAVAILABLE);
    for a in answers.iter().filter(|a| a.status.is_server_error()) {
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
        assert!(a.retry_after.is_some(), "a 503 without Retry-After: {}", a.body);
        let problem: Value = serde_json::from_str(&a.body).expect("a catalog error body");
        assert_eq!(problem["code"], "service_unavailable", "{problem}");
        for leak in ["redis", "Redis", "127.0.0.1", "refused", "os error", "timed out"] {
            assert!(!a.body.contains(leak), "a 503 body shows `{leak}`: {}", a.body);
        }
    }
    assert!(unavailable > 0, "the outage was not seen: kill the server longer");

    let refused_in_load = count(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused_in_load, 0, "the limit was reached during the load; raise LIMIT");

    // Every POST answered 201 replays that very answer, whether it was made before, during
    // or after the outage.
    let mut replayed = 0;
    for a in &answers {
        let (StatusCode::CREATED, Some((idem, payload))) = (a.status, &a.post) else { continue };
        let base = &bases[replayed % 2];
        let res = http
            .post(format!("{base}/v1/projects"))
            .bearer_auth(&key)
            .header("Idempotency-Key", idem)
            .json(payload)
            .send()
            .await
            .expect("replay");
        assert_eq!(res.status(), StatusCode::CREATED, "key {idem} after the restart");
        assert_eq!(res.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
        assert_eq!(res.text().await.expect("body"), a.body, "key {idem} replayed another answer");
        replayed += 1;
    }
    assert!(replayed > 0, "no POST completed");

    // The limit: admitted requests of the load, the replays above, and now more GETs, 32 at
    // a time until the limit refuses: never more than LIMIT in all.
    let admitted_in_load = answers.len() - unavailable;
    let mut admitted_after = 0;
    loop {
        let batch: Vec<_> = (0..32)
            .map(|i| tokio::spawn(http.get(format!("{}/v1/projects", bases[i % 2])).bearer_auth(&key).send()))
            .collect();
        let mut refused = false;
        for task in batch {
            let status = task.await.expect("task").expect("GET").status();
            match status {
                StatusCode::OK => admitted_after += 1,
                StatusCode::TOO_MANY_REQUESTS => refused = true,
                other => panic!("after the recovery: {other}"),
            }
        }
        if refused {
            break;
        }
        assert!(admitted_after <= LIMIT as usize, "the limit never refused");
    }
    let admitted = admitted_in_load + replayed + admitted_after;
    eprintln!(
        "Redis restart: {} requests in the load ({unavailable} x 503), {replayed} replays, \
         {admitted_after} more admitted after; {admitted} admitted in all, limit {LIMIT}",
        answers.len()
    );
    assert!(admitted <= LIMIT as usize, "{admitted} admitted with a limit of {LIMIT}");
    // Requests whose 503 came after Redis counted them (a reply lost with the server) are the
    // only ones that may be missing from the count.
    assert!(admitted + unavailable >= LIMIT as usize, "the limit's state was lost: {admitted} admitted");

    drop(stops);
    remove_database(&db);
}
