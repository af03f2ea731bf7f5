//! The reference API under load with its rate limits in memory, then in Redis, in one run;
//! and the Redis round trips each request costs, counted by Redis itself (`INFO
//! commandstats` before and after).
//!
//! Both servers run in this process over the same SQLite file (API keys, projects), so the
//! only difference is the rate-limit store. The load generator shares the machine: the ratio
//! means more than the absolute figures.
//!
//! ```sh
//! CARGO_TARGET_DIR=/root/.cache/rebuff-target cargo bench -p rebuff-redis --bench http
//! REBUFF_BENCH_SECONDS=10 REBUFF_BENCH_CONNECTIONS=64 cargo bench -p rebuff-redis --bench http
//! ```

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rebuff::Catalog;
use rebuff_redis::RedisStore;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
use rebuff_store::Quota;
use rebuff_store::memory::MemoryStore;

type BoxError = Box<dyn Error + Send + Sync>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Calls per command since Redis started, from `INFO commandstats`.
async fn command_calls(
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<BTreeMap<String, u64>, BoxError> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await?;
    let mut calls = BTreeMap::new();
    for line in info.lines() {
        let Some((name, stats)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
            continue;
        };
        let n = stats.split(',').find_map(|kv| kv.strip_prefix("calls=")).and_then(|v| v.parse().ok());
        calls.insert(name.to_owned(), n.unwrap_or(0));
    }
    Ok(calls)
}

/// Counts the commands clients send, one round trip each, as `MONITOR` shows them: a
/// command a script runs is shown with `lua` as its source and is not counted, nor is `INFO`.
/// (`INFO stats` and `INFO commandstats` count a script's own commands too.)
struct Monitor {
    sent: Arc<AtomicU64>,
    /// Commands sent by name (lower case).
    by_name: Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    async fn start(url: &str) -> Result<Monitor, BoxError> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let addr = if host.contains(':') { host.to_owned() } else { format!("{host}:6379") };
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(b"MONITOR\r\n").await?;
        let mut lines = BufReader::new(stream).lines();
        // `+OK` first: from here on every command is seen.
        lines.next_line().await?;
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let by_name = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let names = by_name.clone();
        let task = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let source = line.split_once('[').and_then(|(_, r)| r.split_once(']')).map_or("", |(s, _)| s);
                let command = line.split_once("] \"").map_or("", |(_, r)| r).to_ascii_lowercase();
                if !source.contains("lua") && !command.starts_with("info") {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let name = command.split('"').next().unwrap_or("").to_owned();
                    if let Ok(mut names) = names.lock() {
                        *names.entry(name).or_insert(0) += 1;
                    }
                }
            }
        });
        Ok(Monitor { sent, by_name, task })
    }

    async fn count(&self) -> u64 {
        // MONITOR lags the commands by a little.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.sent.load(Ordering::Relaxed)
    }

    /// Commands sent so far, by name; and resets the tally.
    fn take_names(&self) -> BTreeMap<String, u64> {
        self.by_name.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0))))
        .filter(|(k, v)| *v > 0 && k != "info")
        .collect()
}

async fn serve(state: AppState) -> Result<String, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(rebuff_server::serve(listener, state, std::future::pending()));
    Ok(base)
}

/// Sends GETs from `connections` loops for `seconds`; returns requests per second.
async fn load(url: &str, key: &str, connections: u64, seconds: u64) -> Result<f64, BoxError> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(usize::try_from(connections)?).build()?;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (http, url, key, done) = (http.clone(), url.to_owned(), key.to_owned(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match http.get(&url).bearer_auth(&key).send().await {
                        Ok(res) if res.status() == 200 => {
                            let _ = res.bytes().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(res) => panic!("unexpected status {}", res.status()),
                        Err(e) => panic!("request failed: {e}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; a filter that excludes this bench skips it.
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && !"http".contains(a.as_str())) {
        return Ok(());
    }
    let seconds = env_or("REBUFF_BENCH_SECONDS", 5);
    let connections = env_or("REBUFF_BENCH_CONNECTIONS", 32);
    let url = std::env::var("REBUFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let prefix = format!("rebuff-bench:{}:", std::process::id());
    let redis = match RedisStore::builder(url.as_str()).prefix(&prefix).connect().await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("no Redis ({e}): nothing to compare");
            return Ok(());
        }
    };
    let mut stats = redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?;

    let db = std::env::temp_dir().join(format!("rebuff-bench-http-{}.db", std::process::id()));
    let sqlite = SqliteStore::open(&db)?;
    let org = sqlite.get_or_create_org("bench").await?;
    let scopes = vec!["read".to_owned(), "write".to_owned()];
    let new = NewKey {
        org_id: org.id,
        name: "bench".into(),
        scopes,
        expires_at: None,
        allowed_ips: Vec::new(),
        live: false,
    };
    let (_, key) = sqlite.create_key(new).await?;
    let mut config = Config::new(Arc::new(Catalog::builtin("rebuff").ok_or("no rebuff profile")?.clone()));
    // Never refuses: every request is a full decision and write.
    config.rate_limit = Quota { limit: 1_000_000_000, period: Duration::from_secs(1) };

    let memory = AppState::builder(config.clone(), SqliteStore::open(&db)?)
        .rate_limits(Arc::new(MemoryStore::new()))
        .build();
    let memory = serve(memory.await?).await?;
    let shared =
        serve(AppState::builder(config, SqliteStore::open(&db)?).redis(redis).build().await?).await?;

    // Warm up both (connections, prepared statements, script cache).
    load(&format!("{memory}/v1/projects"), &key, 4, 1).await?;
    load(&format!("{shared}/v1/projects"), &key, 4, 1).await?;

    let in_memory = load(&format!("{memory}/v1/projects"), &key, connections, seconds).await?;
    let before = command_calls(&mut stats).await?;
    let started = Instant::now();
    let with_redis = load(&format!("{shared}/v1/projects"), &key, connections, seconds).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let gets = delta(&before, &command_calls(&mut stats).await?);

    // Round trips, counted by MONITOR (after the throughput runs: it slows Redis down).
    let http = reqwest::Client::new();
    let monitor = Monitor::start(&url).await?;
    let get_count = 1_000u64;
    for _ in 0..get_count {
        let res = http.get(format!("{shared}/v1/projects")).bearer_auth(&key).send().await?;
        assert_eq!(res.status(), 200);
    }
    let get_trips = monitor.count().await;
    let get_names = monitor.take_names();

    // Idempotent POSTs: 200, each with a key of its own.
    let before = command_calls(&mut stats).await?;
    let posts = 200u64;
    for i in 0..posts {
        let res = http
            .post(format!("{shared}/v1/projects"))
            .bearer_auth(&key)
            .header("idempotency-key", format!("bench-{i}"))
            .json(&serde_json::json!({ "name": format!("bench project {i} {}", std::process::id()) }))
            .send()
            .await?;
        assert_eq!(res.status(), 201, "project creation");
    }
    let post_trips = monitor.count().await - get_trips;
    let post_names = monitor.take_names();
    monitor.task.abort();
    let post_calls = delta(&before, &command_calls(&mut stats).await?);

    let requests = (with_redis * elapsed).round();
    let get_total: u64 = gets.values().sum();
    let post_total: u64 = post_calls.values().sum();
    println!("GET /v1/projects, {connections} connections, {seconds} s each, release build, one process:");
    println!("  rate limits in memory: {in_memory:>9.0} requests/s");
    println!(
        "  rate limits in Redis:  {with_redis:>9.0} requests/s  ({:.2}x in-memory)",
        with_redis / in_memory
    );
    println!(
        "Redis round trips per GET: {:.3} ({get_trips} commands sent for {get_count} requests, by MONITOR: {get_names:?})",
        get_trips as f64 / get_count as f64
    );
    println!(
        "  commands Redis ran, scripts' own included: {:.3} per GET {gets:?}",
        get_total as f64 / requests
    );
    println!(
        "Redis round trips per idempotent POST: {:.3} ({post_trips} commands sent for {posts} requests, by MONITOR: {post_names:?})",
        post_trips as f64 / posts as f64
    );
    println!(
        "  before the handler: {:.3} per POST (EVALSHA: the limit and the idempotency lookup in one script); \
         after it: {:.3} (SET: the stored response)",
        post_names.get("evalsha").copied().unwrap_or(0) as f64 / posts as f64,
        post_names.get("set").copied().unwrap_or(0) as f64 / posts as f64
    );
    println!(
        "  commands Redis ran, scripts' own included: {:.3} per POST {post_calls:?}",
        post_total as f64 / posts as f64
    );
    let _ = redis::cmd("EVAL")
        .arg("for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0")
        .arg(0)
        .arg(format!("{prefix}*"))
        .query_async::<i64>(&mut stats)
        .await;
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(db.with_extension(ext));
    }
    Ok(())
}
