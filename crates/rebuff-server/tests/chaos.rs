//! Chaos: the shared store of two instances killed (`SIGKILL`), paused (`SIGSTOP`) and started
//! again while requests are in flight, some of them parked inside their handler. Once with a
//! Redis of its own (limits, quotas, idempotency) and once with a PostgreSQL of its own as the
//! only shared store (accounts too); never the shared services of the other tests.
//!
//! What must hold, counted without relying on any unique constraint (the side effect is a row
//! of a table that has none):
//!
//! * no request is executed twice, whatever its retries;
//! * no key stays locked after its request was refused (a retry of a refused request runs);
//! * a paused store that wakes up runs none of the work queued while it slept: no lock taken,
//!   nothing charged to the rate limit, for requests already answered;
//! * the first request after the store is back succeeds, on every instance;
//! * every outage answer is a masked 503 with `Retry-After`, and no request waits longer than
//!   the store's deadline allows.
//!
//! Each test prints its figures (`CHAOS Redis: ...`). `redis-server`, `initdb` and `postgres`
//! must be installed (`scripts/services.sh` installs them); without them the tests print a
//! notice and pass, except in CI where they fail. Both take about half a minute.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rebuff::Catalog;
use rebuff_server::{AppState, Config, PgStore, RedisStore};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Every instance's request timeout: an idempotency lock outlives a dead holder by this plus
/// the server's margin of 5 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The stores' deadline per call.
const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a parked request waits inside its handler.
const PARKED: Duration = Duration::from_millis(1500);
/// Requests parked inside the handler when the store is killed.
const PARKED_REQUESTS: usize = 10;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn skip(what: &str) {
    assert!(!in_ci(), "{what} is required in CI (run scripts/services.sh)");
    eprintln!("SKIPPED: {what} is not available");
}

// ---- the stores ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redis,
    Postgres,
}

/// A store server of the test's own, on a free port, persisting every write before it
/// acknowledges it (Redis: append-only file synced always; PostgreSQL: `fsync`).
struct OwnStore {
    kind: Kind,
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// A PostgreSQL program: on the `PATH`, else in Debian's `/usr/lib/postgresql/<version>/bin`
/// (where the `postgresql` package that `scripts/services.sh` installs puts it).
fn pg_program(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .unwrap_or_default();
    let debian = || {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin").join(name))
            .collect();
        versions.sort();
        versions.into_iter().rev().find(|f| f.is_file())
    };
    on_path.or_else(debian).unwrap_or_else(|| PathBuf::from(name))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// The uid and gid PostgreSQL runs as when the test runs as root (it refuses root).
fn postgres_ids() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    Some((id(&["-u", "postgres"])?, id(&["-g", "postgres"])?))
}

impl OwnStore {
    async fn start(kind: Kind) -> Option<OwnStore> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("rebuff-chaos-{kind:?}-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("store directory");
        let mut store = OwnStore { kind, child: None, port, dir };
        if kind == Kind::Postgres && !store.initdb() {
            skip("initdb");
            return None;
        }
        if let Err(e) = store.spawn() {
            skip(&format!("the {kind:?} server ({e})"));
            return None;
        }
        store.wait_ready().await;
        Some(store)
    }

    fn initdb(&self) -> bool {
        let data = self.dir.join("data");
        let mut cmd = Command::new(pg_program("initdb"));
        cmd.args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"]).arg(&data);
        if let Some((uid, gid)) = postgres_ids() {
            let _ = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(&self.dir).status();
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    fn url(&self) -> String {
        match self.kind {
            Kind::Redis => format!("redis://127.0.0.1:{}/", self.port),
            Kind::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
        }
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let port = self.port.to_string();
        let mut cmd = match self.kind {
            Kind::Redis => {
                let mut cmd = Command::new("redis-server");
                cmd.args(["--bind", "127.0.0.1", "--port", &port, "--save", ""])
                    .args(["--appendonly", "yes", "--appendfsync", "always"])
                    .arg("--dir")
                    .arg(&self.dir);
                cmd
            }
            Kind::Postgres => {
                let mut cmd = Command::new(pg_program("postgres"));
                cmd.arg("-D")
                    .arg(self.dir.join("data"))
                    .args(["-p", &port, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-k"])
                    .arg(&self.dir);
                if let Some((uid, gid)) = postgres_ids() {
                    use std::os::unix::process::CommandExt;
                    cmd.uid(uid).gid(gid);
                }
                cmd
            }
        };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log"))?;
        self.child = Some(cmd.stdout(Stdio::null()).stderr(log).spawn()?);
        Ok(())
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.answers().await {
                return;
            }
            assert!(Instant::now() < deadline, "the {:?} server did not answer within 30 s", self.kind);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn answers(&self) -> bool {
        match self.kind {
            Kind::Redis => {
                // The protocol's inline PING: no client library needed to see it answer.
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let ping = async {
                    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
                    conn.write_all(b"PING\r\n").await?;
                    let mut reply = [0u8; 7];
                    conn.read_exact(&mut reply).await?;
                    Ok::<_, std::io::Error>(&reply == b"+PONG\r\n")
                };
                matches!(tokio::time::timeout(Duration::from_millis(500), ping).await, Ok(Ok(true)))
            }
            Kind::Postgres => {
                let Ok(Ok((client, conn))) = tokio::time::timeout(
                    Duration::from_millis(500),
                    rebuff_postgres::tokio_postgres::connect(
                        &self.url(),
                        rebuff_postgres::tokio_postgres::NoTls,
                    ),
                )
                .await
                else {
                    return false;
                };
                tokio::spawn(conn);
                client.simple_query("SELECT 1").await.is_ok()
            }
        }
    }

    /// The server process and its children (PostgreSQL's backends), all started by this test.
    fn pids(&self) -> Vec<u32> {
        let Some(child) = &self.child else { return Vec::new() };
        let root = child.id();
        let mut pids = vec![root];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
                // The parent pid is the second field after the command's closing parenthesis.
                let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
                if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(root) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    fn signal(&self, signal: &str) {
        for pid in self.pids() {
            let _ = Command::new("kill").args([signal, &pid.to_string()]).stderr(Stdio::null()).status();
        }
    }

    /// SIGKILL: no shutdown, no final save.
    fn kill(&mut self) {
        // The server first, so that it cannot start new children, then the children it had, so
        // that none outlives it (PostgreSQL would refuse to start again while an orphaned
        // backend holds its shared memory).
        let pids = self.pids();
        for pid in &pids {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    fn pause(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }

    async fn restart(&mut self) {
        self.spawn().expect("start the store again");
        self.wait_ready().await;
    }
}

impl Drop for OwnStore {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.dir.join("server.log"))
        {
            eprintln!("--- the {:?} server's log ---\n{log}", self.kind);
        }
        self.resume();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- the instances ---------------------------------------------------------------------------

fn config() -> Config {
    let mut config = Config::new(Arc::new(Catalog::builtin("rebuff").expect("profile").clone()));
    config.request_timeout = REQUEST_TIMEOUT;
    // A limit no run reaches, whose allowance hardly grows back during a run: what it charged
    // shows in `X-RateLimit-Remaining`.
    config.rate_limit =
        rebuff_server::config::Quota { limit: 1_000_000, period: Duration::from_secs(365 * 86400) };
    config
}

struct Instances {
    bases: Vec<String>,
    key: String,
    db: PathBuf,
    _stops: Vec<oneshot::Sender<()>>,
}

impl Drop for Instances {
    fn drop(&mut self) {
        for ext in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(self.db.with_extension(ext));
        }
    }
}

async fn instances(store: &OwnStore) -> Instances {
    let nanos = rebuff_axum::ratelimit::now_nanos();
    let db = std::env::temp_dir().join(format!("rebuff-chaos-{}-{nanos}.db", std::process::id()));
    let mut bases = Vec::new();
    let mut stops = Vec::new();
    let mut key = None;
    for _ in 0..2 {
        let (sqlite, state) = match store.kind {
            Kind::Redis => {
                let redis = RedisStore::builder(store.url())
                    .timeout(STORE_TIMEOUT)
                    .connect()
                    .await
                    .expect("connect to our Redis");
                let (sqlite, demo) = rebuff_server::open(&db).await.expect("open SQLite");
                key = key.or(demo.map(|d| d.key));
                let state = AppState::builder(config(), sqlite.clone()).redis(redis);
                (sqlite, state)
            }
            Kind::Postgres => {
                let pg = PgStore::builder(store.url())
                    .timeout(STORE_TIMEOUT)
                    .connect()
                    .await
                    .expect("connect to our PostgreSQL");
                let (sqlite, demo) = rebuff_server::open_with(&db, Some(&pg)).await.expect("open");
                key = key.or(demo.map(|d| d.key));
                let state = AppState::builder(config(), sqlite.clone()).postgres(pg);
                (sqlite, state)
            }
        };
        drop(sqlite);
        let state = state.build().await.expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        bases.push(format!("http://{}", listener.local_addr().expect("address")));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(rebuff_server::serve(listener, state, async {
            let _ = rx.await;
        }));
        stops.push(tx);
    }
    Instances { bases, key: key.expect("a demo key"), db, _stops: stops }
}

/// What one request got, and how long it took.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    remaining: Option<u64>,
    replayed: bool,
    body: String,
    took: Duration,
}

/// Sends an idempotent side effect tagged `tag` with key `tag`, parked `delay` in the handler.
async fn effect(http: &reqwest::Client, base: &str, key: &str, tag: &str, delay: Duration) -> Answer {
    let req = http
        .post(format!("{base}/v1/_fault/effect"))
        .bearer_auth(key)
        .header("Idempotency-Key", tag)
        .header("X-Fault-Delay-Ms", delay.as_millis().to_string())
        .json(&json!({"tag": tag}));
    send(req).await
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let started = Instant::now();
    let res = req.send().await.expect("the instance answers");
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let retry_after = header("retry-after");
    let remaining = header("x-ratelimit-remaining").and_then(|v| v.parse().ok());
    let replayed = header("idempotent-replayed").is_some();
    let status = res.status();
    let body = res.text().await.expect("body");
    Answer { status, retry_after, remaining, replayed, body, took: started.elapsed() }
}

async fn get(http: &reqwest::Client, base: &str, key: &str) -> Answer {
    send(http.get(format!("{base}/v1/projects")).bearer_auth(key)).await
}

/// Side effects per tag, counted in the database: a request run twice has two rows.
fn effects(db: &Path) -> BTreeMap<String, i64> {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    let mut st = match conn.prepare("SELECT tag, COUNT(*) FROM fault_effects GROUP BY tag") {
        Ok(st) => st,
        Err(_) => return BTreeMap::new(),
    };
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("count").map(|r| r.expect("row")).collect()
}

/// What is wrong with an answer as an outage answer: every 5xx must be a masked
/// `service_unavailable` with `Retry-After`, nothing leaked.
fn unmasked(a: &Answer) -> Option<String> {
    if !a.status.is_server_error() {
        return None;
    }
    if a.status != StatusCode::SERVICE_UNAVAILABLE || a.retry_after.is_none() {
        return Some(format!("{} (Retry-After {:?}): {}", a.status, a.retry_after, a.body));
    }
    let problem: Value = serde_json::from_str(&a.body).unwrap_or_default();
    if problem["code"] != "service_unavailable" {
        return Some(format!("not a catalog 503: {}", a.body));
    }
    let leaks = ["redis", "Redis", "postgres", "Postgres", "127.0.0.1", "refused", "os error", "timed out"];
    leaks.iter().find(|leak| a.body.contains(*leak)).map(|leak| format!("shows `{leak}`: {}", a.body))
}

/// The figures of one run.
#[derive(Debug, Default)]
struct Figures {
    double_executions: i64,
    wrongly_locked: usize,
    wrongly_charged: i64,
    first_request_failures: usize,
    max_latency: Duration,
    recovery: Duration,
    parked_answers: BTreeMap<u16, usize>,
    answers: usize,
    unavailable: usize,
    unmasked: Vec<String>,
}

/// One request of a load: for a side effect, its tag; and what it got.
type Sent = (Option<String>, Answer);

/// A load of GETs and idempotent side effects over both instances until `stop`; each worker
/// returns what it sent (for POSTs, the tag) and got.
fn load(
    http: &reqwest::Client,
    inst: &Instances,
    round: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Sent>>> {
    (0..8)
        .map(|worker| {
            let (http, bases, key, stop) = (http.clone(), inst.bases.clone(), inst.key.clone(), stop.clone());
            let round = round.to_owned();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let base = &bases[(worker + i) % 2];
                    if i.is_multiple_of(2) {
                        answers.push((None, get(&http, base, &key).await));
                    } else {
                        let tag = format!("{round}-w{worker}-{i}");
                        let a = effect(&http, base, &key, &tag, Duration::ZERO).await;
                        answers.push((Some(tag), a));
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                answers
            })
        })
        .collect()
}

/// The two runs, one at a time: each is a load on a shared machine, and its figures are its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn chaos(kind: Kind) -> Option<Figures> {
    let _serial = SERIAL.lock().await;
    let mut store = OwnStore::start(kind).await?;
    let inst = instances(&store).await;
    let http = reqwest::Client::new();
    let key = inst.key.clone();
    let mut figures = Figures::default();
    let mut all: Vec<Answer> = Vec::new();

    // 0. An idle outage: the store killed and started again while nobody asks anything. The
    //    first request on each instance, a moment after the store answers again, must succeed.
    for base in &inst.bases {
        all.push(get(&http, base, &key).await);
    }
    store.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    store.restart().await;
    // The health check finds the store back within 100 ms; a second leaves room for a loaded
    // machine. No request is made meanwhile to wake the connection.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for base in &inst.bases {
        let a = get(&http, base, &key).await;
        if a.status != StatusCode::OK {
            figures.first_request_failures += 1;
        }
        all.push(a);
    }

    // 1. Requests parked inside the handler when the store is killed; it comes back after
    //    they have answered.
    let parked: Vec<_> = (0..PARKED_REQUESTS)
        .map(|i| {
            let (http, base, key) = (http.clone(), inst.bases[i % 2].clone(), key.clone());
            tokio::spawn(async move { effect(&http, &base, &key, &format!("parked-{i}"), PARKED).await })
        })
        .collect();
    tokio::time::sleep(PARKED / 3).await;
    store.kill();
    let mut parked_answers = Vec::new();
    for task in parked {
        let a = task.await.expect("parked request");
        *figures.parked_answers.entry(a.status.as_u16()).or_default() += 1;
        parked_answers.push(a);
    }
    store.restart().await;
    // An idle outage: nothing was asked while the store was away. The first request on each
    // instance, a moment after the store answers again, must succeed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for base in &inst.bases {
        let a = get(&http, base, &key).await;
        if a.status != StatusCode::OK {
            figures.first_request_failures += 1;
        }
        all.push(a);
    }
    // Retries of the parked requests, without the delay, until none is told the key is in use
    // (a lock outlives a dead holder by the request timeout and 5 s).
    let retry_until = Instant::now() + REQUEST_TIMEOUT + Duration::from_secs(8);
    for (i, first) in parked_answers.iter().enumerate() {
        let tag = format!("parked-{i}");
        loop {
            let a = effect(&http, &inst.bases[(i + 1) % 2], &key, &tag, Duration::ZERO).await;
            all.push(a.clone());
            if a.status == StatusCode::CONFLICT && Instant::now() < retry_until {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            if first.status == StatusCode::CREATED {
                assert!(a.status != StatusCode::CREATED || a.body == first.body || !a.replayed, "{tag}");
            }
            break;
        }
    }
    all.extend(parked_answers);

    // 2. The store paused under load, then woken up: what was queued while it slept must not
    //    run for requests already answered.
    let before = get(&http, &inst.bases[0], &key).await.remaining.expect("rate-limit headers");
    let stop = Arc::new(AtomicBool::new(false));
    let loops = load(&http, &inst, "pause", &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.pause();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    store.resume();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut paused = Vec::new();
    for task in loops {
        paused.extend(task.await.expect("load"));
    }
    // Give scripts the store ran late a moment to land, and the instances the moment they
    // take to release locks whose begin answer was lost once the store answers again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = get(&http, &inst.bases[1], &key).await.remaining.expect("rate-limit headers");
    let admitted = paused.iter().filter(|(_, a)| a.status != StatusCode::SERVICE_UNAVAILABLE).count();
    // The two GETs around the load were admitted too.
    figures.wrongly_charged = i64::try_from(before).unwrap_or(0)
        - i64::try_from(after).unwrap_or(0)
        - i64::try_from(admitted).unwrap_or(0)
        - 1;
    // Every refused side effect, asked again: it runs now, it is not locked.
    for (tag, a) in &paused {
        let (Some(tag), StatusCode::SERVICE_UNAVAILABLE) = (tag, a.status) else { continue };
        let again = effect(&http, &inst.bases[0], &key, tag, Duration::ZERO).await;
        if again.status == StatusCode::CONFLICT {
            figures.wrongly_locked += 1;
        }
        all.push(again);
    }
    all.extend(paused.into_iter().map(|(_, a)| a));

    // 3. The store killed under load and started again: how long until each instance serves.
    let stop = Arc::new(AtomicBool::new(false));
    let loops = load(&http, &inst, "kill", &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    store.restart().await;
    let ready = Instant::now();
    let mut recovered = [None, None];
    while recovered.iter().any(Option::is_none) && ready.elapsed() < Duration::from_secs(10) {
        for (i, base) in inst.bases.iter().enumerate() {
            if recovered[i].is_none() {
                let a = get(&http, base, &key).await;
                if a.status == StatusCode::OK {
                    recovered[i] = Some(ready.elapsed());
                }
                all.push(a);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    figures.recovery =
        recovered.iter().map(|r| r.unwrap_or(Duration::from_secs(10))).max().unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in loops {
        all.extend(task.await.expect("load").into_iter().map(|(_, a)| a));
    }

    figures.double_executions = effects(&inst.db).values().map(|n| (n - 1).max(0)).sum();
    figures.max_latency = all.iter().map(|a| a.took).max().unwrap_or_default();
    figures.answers = all.len();
    figures.unavailable = all.iter().filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE).count();
    figures.unmasked = all.iter().filter_map(unmasked).collect();
    eprintln!(
        "CHAOS {kind:?}: double executions {}, keys wrongly locked {}, requests wrongly charged {}, \
         first-request failures {}, max latency {} ms, recovery {} ms; parked answers {:?}; \
         {} answers, {} x 503, {} other 5xx",
        figures.double_executions,
        figures.wrongly_locked,
        figures.wrongly_charged,
        figures.first_request_failures,
        figures.max_latency.as_millis(),
        figures.recovery.as_millis(),
        figures.parked_answers,
        figures.answers,
        figures.unavailable,
        figures.unmasked.len(),
    );
    drop(inst);
    drop(store);
    Some(figures)
}

fn assert_held(f: &Figures, charged_bound: i64) {
    assert!(f.unmasked.is_empty(), "outage answers other than a masked 503: {:#?}", f.unmasked);
    assert_eq!(f.double_executions, 0, "requests executed twice");
    assert_eq!(f.wrongly_locked, 0, "keys locked after their request was refused");
    // A script that ran in time but whose reply was lost (the store was stopped between
    // running it and writing the answer) charged a request that was then refused: an
    // ambiguous outcome no deadline can tell apart, a few requests per pause on a loaded
    // machine. Scripts that
    // ran late, after their requests were answered, charged every request queued during the
    // pause (6 to 16 in this run before deadlines); they must charge nothing.
    assert!(
        f.wrongly_charged <= charged_bound,
        "{} refused requests charged to the rate limit (bound {charged_bound})",
        f.wrongly_charged
    );
    assert_eq!(f.first_request_failures, 0, "first requests after the recovery failed");
    // The longest a request may wait: a parked request's handler, then the deadline of the
    // store call that stores its response, with room for a loaded machine.
    let bound = PARKED + REQUEST_TIMEOUT + STORE_TIMEOUT * 4;
    assert!(f.max_latency <= bound, "a request waited {:?} (bound {bound:?})", f.max_latency);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_paused_and_restarted_under_load() {
    if let Some(f) = chaos(Kind::Redis).await {
        // Before deadlines, 6 to 16 late scripts charged their queued requests here.
        assert_held(&f, 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_killed_paused_and_restarted_under_load() {
    if let Some(f) = chaos(Kind::Postgres).await {
        // A stopped PostgreSQL loses the replies of every statement in flight on the pool's
        // connections, not only one script's: 0 to 6 such ambiguous charges were seen across
        // runs (a known limit, see docs/DESIGN.md); late statements charging whole queues
        // would exceed this.
        assert_held(&f, 10);
    }
}
