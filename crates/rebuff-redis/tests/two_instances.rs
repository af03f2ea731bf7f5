//! Two reference-server instances sharing one Redis (rate limits, quotas, idempotency) and one
//! SQLite file (the API's tables and the accounts) act as one.
//!
//! Needs a Redis (`REBUFF_TEST_REDIS_URL`): in CI a missing one fails these tests; elsewhere
//! they print a notice and pass without running.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rebuff::Catalog;
use rebuff_redis::RedisStore;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
use rebuff_store::{Quota, QuotaStore};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Mode, Proxy, cleanup, connect_or_skip, eventually, redis_url, subscribers, unique_prefix};
use tokio::sync::oneshot;

/// Two servers on one Redis and one SQLite file, with an admin key of organisation `acme`.
struct Pair {
    bases: [String; 2],
    key: String,
    org: String,
    sqlite: SqliteStore,
    redis: RedisStore,
    prefix: String,
    db: PathBuf,
    http: reqwest::Client,
    stops: Vec<oneshot::Sender<()>>,
    /// One pair at a time: four pairs loading a two-core machine at once measure the machine.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Pair {
    /// Starts the pair, both instances reaching Redis at `redis` (the test Redis, or a proxy to
    /// it); `None` when there is no Redis and this is not CI.
    async fn start(test: &str, redis: Option<String>, configure: impl Fn(&mut Config)) -> Option<Pair> {
        let serial = SERIAL.lock().await;
        let prefix = unique_prefix(test);
        let check = connect_or_skip(RedisStore::builder(redis_url()).prefix(&prefix)).await?;
        // Through a proxy, a short deadline so that the outage shows quickly; otherwise one that
        // a debug build answering 1,000 requests at once on a small, busy machine still meets:
        // these tests are about exactness, not latency.
        let timeout = if redis.is_some() { Duration::from_millis(300) } else { Duration::from_secs(10) };
        let url = redis.unwrap_or_else(redis_url);
        let nanos = rebuff_store::ratelimit::now_nanos();
        let db = std::env::temp_dir().join(format!("rebuff-two-{test}-{}-{nanos}.db", std::process::id()));
        let sqlite = SqliteStore::open(&db).expect("open SQLite");
        let org = sqlite.get_or_create_org("acme").await.expect("org").id;
        let (_, key) = sqlite
            .create_key(NewKey {
                org_id: org.clone(),
                name: "admin".into(),
                scopes: vec!["read".into(), "write".into(), "admin".into()],
                expires_at: None,
                allowed_ips: Vec::new(),
                live: false,
            })
            .await
            .expect("key");
        let mut bases = Vec::new();
        let mut stops = Vec::new();
        for _ in 0..2 {
            let mut config = Config::new(Arc::new(Catalog::builtin("rebuff").expect("profile").clone()));
            config.training_delay = Duration::from_millis(20);
            config.job_delay = Duration::from_millis(20);
            configure(&mut config);
            // Each instance has connections of its own, as two processes would.
            let store = SqliteStore::open(&db).expect("open SQLite again");
            let redis = RedisStore::builder(url.as_str())
                .prefix(&prefix)
                .timeout(timeout)
                .connect()
                .await
                .expect("connect to Redis");
            let state = AppState::builder(config, store).redis(redis).build().await.expect("state");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            bases.push(format!("http://{}", listener.local_addr().expect("address")));
            let (tx, rx) = oneshot::channel::<()>();
            tokio::spawn(rebuff_server::serve(listener, state, async {
                let _ = rx.await;
            }));
            stops.push(tx);
        }
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");
        let bases = [bases[0].clone(), bases[1].clone()];
        Some(Pair { bases, key, org, sqlite, redis: check, prefix, db, http, stops, _serial: serial })
    }

    fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.bases[i % 2])
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let res = req.bearer_auth(&self.key).send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn count(&self, sql: &'static str, arg: String) -> i64 {
        self.sqlite
            .with_conn(move |c| c.query_row(sql, [arg], |row| row.get::<_, i64>(0)))
            .await
            .expect("count")
    }

    /// A new key of the organisation with the `read` scope alone, made in the SQLite file.
    async fn reader_key(&self) -> String {
        let new = NewKey {
            org_id: self.org.clone(),
            name: "reader".into(),
            scopes: vec!["read".into()],
            expires_at: None,
            allowed_ips: Vec::new(),
            live: false,
        };
        self.sqlite.create_key(new).await.expect("key").1
    }

    async fn stop(self) {
        drop(self);
    }
}

/// Also on a panic: the servers stop, the keys and the SQLite file go.
impl Drop for Pair {
    fn drop(&mut self) {
        for tx in self.stops.drain(..) {
            let _ = tx.send(());
        }
        let prefix = self.prefix.clone();
        // A thread of its own: `Drop` cannot await, and may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(cleanup(&prefix));
            }
        })
        .join();
        for ext in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(self.db.with_extension(ext));
        }
    }
}

/// Runs `n` requests made by `make(i)`, `concurrency` at a time; returns the answers in order.
async fn run<F>(n: usize, concurrency: usize, make: F) -> Vec<(StatusCode, reqwest::header::HeaderMap, Value)>
where
    F: Fn(usize) -> tokio::task::JoinHandle<(StatusCode, reqwest::header::HeaderMap, Value)>,
{
    let mut out = Vec::with_capacity(n);
    let mut pending = std::collections::VecDeque::new();
    for i in 0..n {
        pending.push_back(make(i));
        if pending.len() >= concurrency
            && let Some(task) = pending.pop_front()
        {
            out.push(task.await.expect("task"));
        }
    }
    for task in pending {
        out.push(task.await.expect("task"));
    }
    out
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// 10,000 requests spread over both instances within one window admit exactly the limit, and
/// the admitted ones were told each remaining count once: 499, 498, ... 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_requests_over_two_instances_admit_exactly_the_limit() {
    // 500 a day: one window for the whole test however slow the machine (500 an hour would
    // admit one more for every 7.2 s the test takes).
    let Some(pair) = Pair::start("rate", None, |c| {
        c.rate_limit = Quota { limit: 500, period: Duration::from_secs(24 * 3600) };
    })
    .await
    else {
        return;
    };
    let pair = Arc::new(pair);
    let answers = run(10_000, 128, |i| {
        let pair = pair.clone();
        tokio::spawn(async move { pair.send(pair.http.get(pair.url(i, "/v1/projects"))).await })
    })
    .await;
    let mut by_status = BTreeMap::new();
    let mut remaining = BTreeSet::new();
    for (status, headers, body) in &answers {
        *by_status.entry(status.as_u16()).or_insert(0) += 1;
        assert_eq!(header(headers, "x-ratelimit-limit"), Some("500"), "{status} {body}");
        if *status == StatusCode::OK {
            let r: u32 =
                header(headers, "x-ratelimit-remaining").and_then(|v| v.parse().ok()).expect("remaining");
            assert!(remaining.insert(r), "remaining {r} told twice");
        } else {
            assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
            assert_eq!(body["code"], "rate_limit_exceeded");
            let retry: u64 =
                header(headers, "retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
            assert!(retry >= 1);
        }
    }
    assert_eq!(by_status.get(&200), Some(&500), "answers by status: {by_status:?}");
    assert_eq!(by_status.get(&429), Some(&9_500), "answers by status: {by_status:?}");
    assert_eq!(remaining, (0..500).collect::<BTreeSet<u32>>());
    match Arc::try_unwrap(pair) {
        Ok(pair) => pair.stop().await,
        Err(_) => panic!("pair still shared"),
    }
}

/// 1,000 concurrent POSTs with one idempotency key, spread over both instances, create one
/// dataset; every other answer is its replay or `idempotency_key_in_use`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_posts_with_one_key_run_once() {
    let Some(pair) = Pair::start("idem", None, |c| {
        c.rate_limit = Quota { limit: 1_000_000, period: Duration::from_secs(60) };
    })
    .await
    else {
        return;
    };
    let (status, _, project) =
        pair.send(pair.http.post(pair.url(0, "/v1/projects")).json(&json!({"name": "idem"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let body = json!({"project_id": project["id"], "name": "once", "format": "csv", "rows": 3});
    let pair = Arc::new(pair);
    // All in flight at once: each task waits at the barrier until every request is built.
    let barrier = Arc::new(tokio::sync::Barrier::new(1_000));
    let started = std::time::Instant::now();
    let answers = run(1_000, 1_000, |i| {
        let (pair, barrier, body) = (pair.clone(), barrier.clone(), body.clone());
        tokio::spawn(async move {
            let req =
                pair.http.post(pair.url(i, "/v1/datasets")).header("idempotency-key", "one-key").json(&body);
            barrier.wait().await;
            pair.send(req).await
        })
    })
    .await;
    let (mut first, mut replays, mut in_use) = (Vec::new(), 0, 0);
    for (status, headers, body) in &answers {
        match (status.as_u16(), header(headers, "idempotent-replayed")) {
            (201, None) => first.push(body.clone()),
            (201, Some("true")) => replays += 1,
            (409, None) => {
                assert_eq!(body["code"], "idempotency_key_in_use", "{body}");
                assert!(header(headers, "retry-after").is_some());
                in_use += 1;
            }
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    assert_eq!(first.len(), 1, "the handler ran {} times", first.len());
    assert_eq!(1 + replays + in_use, 1_000);
    let rows = pair.count("SELECT count(*) FROM datasets WHERE name = ?1", "once".into()).await;
    assert_eq!(rows, 1, "datasets created");
    // A replay is the first answer, byte for byte.
    let (status, headers, replay) = pair
        .send(pair.http.post(pair.url(1, "/v1/datasets")).header("idempotency-key", "one-key").json(&body))
        .await;
    assert_eq!((status, header(&headers, "idempotent-replayed")), (StatusCode::CREATED, Some("true")));
    assert_eq!(replay, first[0]);
    eprintln!("1,000 POSTs in {:?}: 1 ran, {replays} replays, {in_use} in use", started.elapsed());
    match Arc::try_unwrap(pair) {
        Ok(pair) => pair.stop().await,
        Err(_) => panic!("pair still shared"),
    }
}

/// Concurrent generation jobs over both instances charge the monthly row quota exactly: the
/// counter is the sum of the granted requests, and the last row fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_counters_are_exact_to_the_row() {
    let Some(pair) = Pair::start("quota", None, |c| {
        c.rate_limit = Quota { limit: 1_000_000, period: Duration::from_secs(60) };
        c.monthly_rows = 1_000;
    })
    .await
    else {
        return;
    };
    let model = json!({"name": "m", "model_type": "ctgan", "config": {"batch_size": 10}});
    let (status, _, model) = pair.send(pair.http.post(pair.url(0, "/v1/models")).json(&model)).await;
    assert_eq!(status, StatusCode::CREATED, "{model}");
    let id = model["id"].as_str().expect("model id").to_owned();
    let (status, _, body) = pair.send(pair.http.post(pair.url(1, &format!("/v1/models/{id}/train")))).await;
    assert!(status.is_success(), "{status} {body}");
    let mut ready = false;
    for _ in 0..200 {
        let (_, _, m) = pair.send(pair.http.get(pair.url(0, &format!("/v1/models/{id}")))).await;
        if m["status"] == "ready" {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "the model did not get ready");

    let pair = Arc::new(pair);
    let path = format!("/v1/models/{id}/generate");
    // 400 requests of 7 rows: 2,800 asked for against 1,000.
    let answers = run(400, 64, |i| {
        let (pair, path) = (pair.clone(), path.clone());
        tokio::spawn(async move {
            pair.send(pair.http.post(pair.url(i, &path)).json(&json!({"n_samples": 7}))).await
        })
    })
    .await;
    let mut granted = 0u64;
    for (status, _, body) in &answers {
        match status.as_u16() {
            202 => granted += 7,
            402 => assert_eq!(body["code"], "quota_exceeded", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(granted, 994, "142 requests of 7 rows fit in 1,000");
    let period = rebuff_axum::quota::period_at(std::time::SystemTime::now());
    let usage = pair.redis.consume(&pair.org, &period, 0, 1_000).await.expect("usage");
    assert_eq!(usage.used, granted, "the counter is the sum of what was granted");
    let jobs = pair.count("SELECT count(*) FROM jobs WHERE model_id = ?1", id.clone()).await;
    assert_eq!(u64::try_from(jobs).unwrap_or(0) * 7, granted, "jobs created");
    // The last 6 rows fit; one more does not.
    let (status, _, _) = pair.send(pair.http.post(pair.url(0, &path)).json(&json!({"n_samples": 6}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, body) =
        pair.send(pair.http.post(pair.url(1, &path)).json(&json!({"n_samples": 1}))).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["usage"]["used"], 1_000, "{body}");
    match Arc::try_unwrap(pair) {
        Ok(pair) => pair.stop().await,
        Err(_) => panic!("pair still shared"),
    }
}

/// Redis goes away during a load run and comes back: meanwhile every answer is a masked 503
/// with `Retry-After` (nothing about Redis in it); records stored before the outage are
/// replayed after it; the limit counts the admissions from before the outage and is enforced
/// again after it.
///
/// The outage is a TCP proxy cutting the connections (Redis itself keeps running, so other
/// tests sharing it are not disturbed, and its data survives as it would on a network
/// partition or a restart of a persistent Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_during_a_load_run_is_masked_and_limits_hold_after_it() {
    let proxy = Proxy::start().await;
    let limit = 300;
    let Some(pair) = Pair::start("outage", Some(proxy.url()), |c| {
        c.rate_limit = Quota { limit, period: Duration::from_secs(24 * 3600) };
    })
    .await
    else {
        return;
    };
    let (status, _, project) =
        pair.send(pair.http.post(pair.url(0, "/v1/projects")).json(&json!({"name": "outage"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let pair = Arc::new(pair);
    let project_id = project["id"].clone();
    let dataset = move |i: usize| json!({"project_id": project_id, "name": format!("d{i}"), "format": "csv"});

    // Before: 20 idempotent POSTs complete.
    let mut before = Vec::new();
    for i in 0..20 {
        let req = pair.http.post(pair.url(i, "/v1/datasets")).header("idempotency-key", format!("k{i}"));
        let (status, _, body) = pair.send(req.json(&dataset(i))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        before.push(body);
    }

    // During: a load of GETs and new POSTs while the connection to Redis is cut.
    let load = {
        let pair = pair.clone();
        let dataset = dataset.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for round in 0..60 {
                let get = pair.send(pair.http.get(pair.url(round, "/v1/projects")));
                let key = format!("during{round}");
                let post = pair.send(
                    pair.http
                        .post(pair.url(round + 1, "/v1/datasets"))
                        .header("idempotency-key", key)
                        .json(&dataset(1000 + round)),
                );
                let (g, p) = tokio::join!(get, post);
                answers.push(g);
                answers.push(p);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set(Mode::Down);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.set(Mode::Hang);
    tokio::time::sleep(Duration::from_millis(800)).await;
    proxy.set(Mode::Up);
    let answers = load.await.expect("load");
    let mut unavailable = 0;
    for (status, headers, body) in &answers {
        if status.is_server_error() {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["code"], "service_unavailable", "{body}");
            assert!(header(headers, "retry-after").is_some(), "503 without Retry-After");
            // The random request id may spell anything; the rest must not.
            let mut masked = body.clone();
            masked.as_object_mut().and_then(|o| o.remove("request_id")).expect("a request id in the body");
            let text = masked.to_string().to_lowercase();
            for leak in ["redis", "connection", "os error", "refused", "timed out", "127.0.0.1"] {
                assert!(!text.contains(leak), "a 503 tells `{leak}`: {body}");
            }
            unavailable += 1;
        } else {
            assert!(status.is_success(), "{status} {body}");
        }
    }
    assert!(unavailable > 0, "the outage did not show");

    // After: the records from before are replayed, byte for byte.
    for (i, first) in before.iter().enumerate() {
        let req = pair.http.post(pair.url(i + 1, "/v1/datasets")).header("idempotency-key", format!("k{i}"));
        let (status, headers, body) = pair.send(req.json(&dataset(i))).await;
        assert_eq!((status, header(&headers, "idempotent-replayed")), (StatusCode::CREATED, Some("true")));
        assert_eq!(&body, first);
    }
    // The limit counts every admission, before, during and after the outage, and holds.
    // The project, 20 POSTs, the successes of the load, 20 replays.
    let admitted_so_far = 1 + 20 + answers.iter().filter(|(s, _, _)| s.is_success()).count() + before.len();
    let mut more = 0;
    let mut refused = 0;
    for i in 0..(limit as usize) {
        let (status, _, body) = pair.send(pair.http.get(pair.url(i, "/v1/projects"))).await;
        match status.as_u16() {
            200 => more += 1,
            429 => refused += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused > 0, "the limit was not enforced after the outage");
    // A request cut off by the outage after Redis counted it, but before the answer came back
    // (or admitted and then refused by the idempotency store), counts without a 2xx: at most
    // one per 503.
    let counted = admitted_so_far + more;
    let limit = limit as usize;
    assert!(
        counted <= limit && counted + unavailable >= limit,
        "{counted} admissions seen, {unavailable} unavailable, limit {limit}"
    );
    match Arc::try_unwrap(pair) {
        Ok(pair) => pair.stop().await,
        Err(_) => panic!("pair still shared"),
    }
}

/// Keys live in the shared SQLite file, which cannot push its changes: the instance that
/// revokes a key announces it over Redis, and the other refuses the key as soon as it hears.
/// Each instance polls the key generation only once an hour here, so only the announcement can
/// make the other refuse the key within the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_is_refused_by_the_other_once_announced() {
    let polled_every = Duration::from_secs(3600);
    let Some(pair) = Pair::start("revoke", None, |c| {
        c.rate_limit.limit = 1_000_000;
        c.key_cache = Some(polled_every);
    })
    .await
    else {
        return;
    };
    let reader = pair.reader_key().await;
    // Both instances listen (an announcement made before a listener subscribed is not heard
    // by it; the listener empties its cache when it subscribes, so nothing is kept stale).
    let channel = pair.redis.key_changes_channel();
    assert!(
        eventually(Duration::from_secs(10), async || subscribers(&channel).await == 2).await,
        "both instances subscribe to {channel}"
    );
    let get_on_b = || pair.http.get(pair.url(1, "/v1/projects")).bearer_auth(&reader).send();
    // B verifies the key, and keeps it for the hour.
    assert_eq!(get_on_b().await.expect("request").status(), StatusCode::OK);
    let id = rebuff_axum::auth::key::parse(&reader).expect("well-formed").id;
    let (status, _, body) = pair.send(pair.http.delete(pair.url(0, &format!("/v1/api-keys/{id}")))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let revoked = std::time::Instant::now();

    // The announcement was published before A answered; B hears it within a round trip or
    // two. Two seconds leave a loaded machine room and are still far below the hour B would
    // otherwise keep the key.
    let limit = Duration::from_secs(2);
    let refused = loop {
        let sent = revoked.elapsed();
        let status = get_on_b().await.expect("request").status();
        if status == StatusCode::UNAUTHORIZED {
            break sent;
        }
        assert_eq!(status, StatusCode::OK, "before the revocation is heard the key works");
        assert!(sent < limit, "B still accepts the key {sent:?} after its revocation was announced");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!("the other instance first refused the key in a request sent {refused:?} after the revocation");
    pair.stop().await;
}

/// With Redis hung, a revocation still answers (its announcement gives up at the store's
/// deadline and is logged), the revoking instance refuses the key at once, and the other
/// refuses it within the key cache's bound, by polling the key generation in SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_not_announced_while_redis_hangs_is_seen_within_the_bound() {
    let proxy = Proxy::start().await;
    let Some(pair) = Pair::start("revoke-hung", Some(proxy.url()), |c| {
        c.rate_limit.limit = 1_000_000;
        // The rate limit cannot be decided while Redis hangs: admit, so that what the other
        // instance answers is its authentication's verdict alone.
        c.rate_limit_fail_open = true;
    })
    .await
    else {
        return;
    };
    let bound = Config::new(Arc::new(Catalog::builtin("rebuff").expect("profile").clone()))
        .key_cache
        .expect("keys are cached by default");
    let reader = pair.reader_key().await;
    let get = |i: usize| pair.http.get(pair.url(i, "/v1/projects")).bearer_auth(&reader).send();
    assert_eq!(get(1).await.expect("request").status(), StatusCode::OK);

    proxy.set(Mode::Hang);
    let id = rebuff_axum::auth::key::parse(&reader).expect("well-formed").id;
    let (status, _, body) = pair.send(pair.http.delete(pair.url(0, &format!("/v1/api-keys/{id}")))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let revoked = std::time::Instant::now();
    assert_eq!(get(0).await.expect("request").status(), StatusCode::UNAUTHORIZED, "the revoking instance");

    // As in the SQLite-only test: every probe B accepts was sent within the bound.
    let refused = loop {
        let sent = revoked.elapsed();
        let status = get(1).await.expect("request").status();
        if status == StatusCode::UNAUTHORIZED {
            break sent;
        }
        assert_eq!(status, StatusCode::OK, "before the revocation is seen the key works");
        assert!(sent < bound, "accepted a request sent {sent:?} after its revocation (bound {bound:?})");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!(
        "with Redis hung, the other instance first refused the key in a request sent {refused:?} after it"
    );
    proxy.set(Mode::Up);
    pair.stop().await;
}
