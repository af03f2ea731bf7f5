//! Redis storage for rebuff: rate limits, monthly quotas and idempotency records that several
//! server instances share exactly.
//!
//! [`RedisStore`] implements [`RateLimitStore`], [`QuotaStore`] and [`IdempotencyStore`].
//! Every decision is one Lua script, so it is atomic on the Redis server and costs one round
//! trip:
//!
//! | trait | script | keys |
//! |---|---|---|
//! | [`RateLimitStore::check`] | GCRA on the server's clock (`TIME`): read, decide, write | `{prefix}rl:{key}`, expires when the limit is whole again |
//! | [`QuotaStore::consume`] | check and increment | `{prefix}quota:{len}:{org}:{period}`, expires [`quota_ttl`](Builder::quota_ttl) after its last change |
//! | [`QuotaStore::consume_once`] | the same, unless the charge id's marker exists; a granted charge sets it (`PX` its lifetime) | the counter and `{prefix}charge:{len}:{org}:{charge}` (one Redis, as below) |
//! | [`RateLimitStore::check_and_begin`] | both of the above scripts' steps in one: GCRA, then, if admitted, `begin` | both keys (one Redis: not for a cluster, where the two keys may live on different nodes) |
//! | [`IdempotencyStore::begin`] | take the lock (`PX` lock lifetime), or answer the record, in flight, or mismatch | `{prefix}idem:{key}` |
//! | [`IdempotencyStore::complete`] | a plain `SET` with `PX` | the same |
//! | [`IdempotencyStore::release`] | delete if still a lock | the same |
//!
//! ```no_run
//! # async fn demo() -> Result<(), rebuff_store::StoreError> {
//! use std::sync::Arc;
//! use rebuff_store::{IdempotencyStore, QuotaStore, RateLimitStore};
//! use rebuff_redis::RedisStore;
//!
//! let store = Arc::new(RedisStore::builder("redis://127.0.0.1:6379/").prefix("myapi:").connect().await?);
//! let limits: Arc<dyn RateLimitStore> = store.clone();
//! let quotas: Arc<dyn QuotaStore> = store.clone();
//! let idempotency: Arc<dyn IdempotencyStore> = store;
//! # let _ = (limits, quotas, idempotency);
//! # Ok(()) }
//! ```
//!
//! # Key changes
//!
//! Redis holds no API keys, but instances that keep theirs in a store that cannot push its
//! changes (SQLite) can share revocations through it: [`RedisStore::announce_key_change`]
//! after a key changes, and [`RedisStore::listen_key_changes`] on every instance, which
//! empties that instance's [`CachedKeyStore`](rebuff_store::CachedKeyStore) as the
//! announcement arrives (pub/sub on `{prefix}key-changes`). The cache's own polling still
//! bounds how long a change that was not announced goes unseen.
//!
//! # Whose clock
//!
//! By default ([`Clock::Redis`]) the rate-limit script reads the Redis server's clock, and the
//! `now_nanos` a caller passes to [`RateLimitStore::check`] is ignored: instances whose clocks
//! disagree still decide on one time line. [`Clock::Caller`] uses the time passed instead,
//! which makes decisions reproducible (the conformance suite uses it) but lets a skewed
//! instance see more or less allowance than the others.
//!
//! # Failures
//!
//! Every command has a deadline ([`timeout`](Builder::timeout), 500 ms by default). A Redis
//! that cannot be reached, does not answer in time, or is loading its data set gives
//! [`StoreError::unavailable`] (which a server answers with 503 and `Retry-After`, or, for
//! rate limits, may fail open); an error Redis answers with gives [`StoreError::backend`]. The
//! connection is a [`ConnectionManager`]: after a failure it reconnects by itself, in the
//! background, and the store logs the outage once when it starts and once when it ends.
//!
//! Every script is given its call's deadline on the Redis server's clock (the local clock plus
//! the offset to Redis's `TIME` that the health check measures) and starts by comparing it
//! with `TIME`: a script that starts late (Redis was paused, or stalled) does nothing and
//! answers `LATE`, so the work queued during a stall neither takes locks nor charges limits
//! for requests that were answered 503 meanwhile.
//!
//! A health check ([`Builder::health_check`]) runs in the background: it keeps the connection
//! alive between requests and notices a Redis that went away before a request does. Once Redis
//! is known to be down (a connection error, or a failed check) the circuit is open: calls fail
//! at once, so a fail-open rate limit admits at once, until a check passes (every 100 ms while
//! down). A call that finds its connection dead is sent once more on a new one.
//!
//! Requires Redis 5 or later (scripts that read `TIME` before writing).

mod codec;
mod key_changes;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rebuff_store::{
    Admission, Begin, BeginRequest, BoxFuture, Decision, IdempotencyStore, Quota, QuotaStore, RateLimitStore,
    StoreError, StoredResponse, Usage,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError, RedisResult, RetryMethod, Script, ScriptInvocation, Value};

/// Usage counts, limits and amounts are exact up to 2^53 (Lua numbers are doubles); a larger
/// limit counts as 2^53, which no real quota reaches.
const MAX_EXACT: u64 = 1 << 53;

/// The clock a rate-limit decision is taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Clock {
    /// The Redis server's clock (`TIME` in the script): instances with skewed clocks agree.
    #[default]
    Redis,
    /// The time the caller passes to [`RateLimitStore::check`] (microseconds are kept).
    Caller,
}

/// Options of a [`RedisStore`]; [`connect`](Builder::connect) opens it.
#[derive(Clone)]
pub struct Builder {
    url: String,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    clock: Clock,
    quota_ttl: Duration,
    health_check: Duration,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("clock", &self.clock)
            .field("quota_ttl", &self.quota_ttl)
            .field("health_check", &self.health_check)
            .finish()
    }
}

impl Builder {
    /// Prefix of every key this store writes (`rebuff:` by default). Two applications, or two
    /// test runs, sharing a Redis keep apart by their prefixes.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one command may take before it fails as unavailable (500 ms by default).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long [`connect`](Self::connect) tries before giving up (5 s by default).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whose clock rate limits are decided on ([`Clock::Redis`] by default).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a usage counter is kept after its last change (62 days by default, so that a
    /// monthly counter outlives its month).
    #[must_use]
    pub fn quota_ttl(mut self, ttl: Duration) -> Self {
        self.quota_ttl = ttl;
        self
    }

    /// How often a background task checks that Redis answers while it does (1 s by default);
    /// while it does not, the check runs every 100 ms (or this interval, if shorter). The
    /// check keeps the connection alive between requests, notices a Redis that went away
    /// before a request does, opens the circuit (calls then fail at once instead of waiting
    /// for their deadline) and closes it as soon as Redis answers again.
    #[must_use]
    pub fn health_check(mut self, interval: Duration) -> Self {
        self.health_check = interval.max(Duration::from_millis(1));
        self
    }

    /// Connects, and loads the scripts so that the first decisions take one round trip too.
    ///
    /// # Errors
    ///
    /// [`StoreError::backend`] for a URL that does not parse; [`StoreError::unavailable`]
    /// when Redis cannot be reached within the connect timeout. The message never contains the
    /// URL's password.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| StoreError::backend(format!("Redis URL {}: {e}", redact(&self.url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let unreachable = |e: &dyn fmt::Display| {
            StoreError::unavailable(format!("cannot connect to Redis at {}: {e}", redact(&self.url)))
        };
        let scripts = Scripts::new();
        // Kept for the subscriptions of `listen_key_changes`, which need a connection of their own.
        let pubsub_client = client.clone();
        let conn = tokio::time::timeout(self.connect_timeout, async {
            let mut conn = ConnectionManager::new_with_config(client, config).await?;
            for script in scripts.all() {
                script.load_async(&mut conn).await?;
            }
            Ok::<_, RedisError>(conn)
        })
        .await
        .map_err(|_| unreachable(&"no answer"))?
        .map_err(|e| unreachable(&e))?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                client: pubsub_client,
                conn,
                url: redact(&self.url),
                prefix: self.prefix,
                timeout: self.timeout,
                clock: self.clock,
                quota_ttl_secs: self.quota_ttl.as_secs().max(1),
                scripts,
                down: AtomicBool::new(false),
                clock_offset_us: AtomicI64::new(0),
                wake: Arc::new(tokio::sync::Notify::new()),
            }),
        };
        store.probe().await;
        spawn_health_check(Arc::downgrade(&store.inner), store.inner.wake.clone(), self.health_check);
        Ok(store)
    }
}

/// Checks Redis every `interval` while it answers and every 100 ms (at most `interval`)
/// while it does not, at once when a command timed out, until the store is dropped.
fn spawn_health_check(inner: Weak<Inner>, wake: Arc<tokio::sync::Notify>, interval: Duration) {
    let down_interval = interval.min(Duration::from_millis(100));
    tokio::spawn(async move {
        loop {
            let wait = match inner.upgrade() {
                Some(inner) if inner.down.load(Ordering::Relaxed) => down_interval,
                Some(_) => interval,
                None => return,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
            }
            let Some(inner) = inner.upgrade() else { return };
            RedisStore { inner }.probe().await;
        }
    });
}

struct Scripts {
    gcra: Script,
    quota: Script,
    quota_once: Script,
    begin: Script,
    check_and_begin: Script,
    release: Script,
}

/// `gcra.lua` and `begin.lua` define one Lua function each, so that the combined script runs
/// the very same code as the two single ones; `deadline.lua` defines `late`, with which every
/// script begins.
macro_rules! script {
    ($($file:literal),+; $body:literal) => {
        Script::new(concat!(include_str!("lua/deadline.lua"), "\n", $(include_str!(concat!("lua/", $file)), "\n",)+ $body))
    };
}

/// What a script answers when it started after its caller's deadline and did nothing.
const LATE: &[u8] = b"LATE";

impl Scripts {
    fn new() -> Self {
        Scripts {
            gcra: script!("gcra.lua"; "if late(ARGV[4]) then return 'LATE' end return gcra(KEYS[1], ARGV[1], ARGV[2], ARGV[3])"),
            quota: script!("quota.lua"; "if late(ARGV[4]) then return 'LATE' end return consume(KEYS[1], ARGV[1], ARGV[2], ARGV[3])"),
            quota_once: script!("quota.lua", "quota_once.lua"; ""),
            begin: script!("begin.lua"; "if late(ARGV[3]) then return 'LATE' end return begin(KEYS[1], ARGV[1], ARGV[2])"),
            check_and_begin: script!("gcra.lua", "begin.lua", "check_and_begin.lua"; ""),
            release: script!("release.lua"; ""),
        }
    }

    fn all(&self) -> [&Script; 6] {
        [&self.gcra, &self.quota, &self.quota_once, &self.begin, &self.check_and_begin, &self.release]
    }
}

/// Rate limits, quotas and idempotency records in Redis; see the [crate documentation](crate).
///
/// Cloning is cheap; all clones share one multiplexed connection, which carries concurrent
/// commands without waiting for each other.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Opens the connection a key-change listener subscribes on.
    client: redis::Client,
    conn: ConnectionManager,
    /// For the log: the URL without its password.
    url: String,
    prefix: String,
    timeout: Duration,
    clock: Clock,
    quota_ttl_secs: u64,
    scripts: Scripts,
    /// Whether Redis is known to be down: the circuit is open, commands fail at once, and the
    /// outage is logged on changes only.
    down: AtomicBool,
    /// The Redis server's clock minus this process's, in microseconds, as last measured.
    clock_offset_us: AtomicI64,
    /// Wakes the health check before its time (a command timed out).
    wake: Arc<tokio::sync::Notify>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Options for a store on `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` where the `redis` crate is built with TLS).
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder {
            url: url.into(),
            prefix: "rebuff:".to_owned(),
            timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(5),
            clock: Clock::Redis,
            quota_ttl: Duration::from_secs(62 * 24 * 3600),
            health_check: Duration::from_secs(1),
        }
    }

    /// Connects to `url` with the default options.
    ///
    /// # Errors
    ///
    /// As [`Builder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Runs one script invocation (one round trip: `EVALSHA`) under the deadline, which the
    /// script is given too: one that starts after it changes nothing and answers `LATE`.
    async fn invoke<T: FromRedisValue>(&self, mut invocation: ScriptInvocation<'_>) -> Result<T, StoreError> {
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        invocation.arg(self.server_deadline().to_string());
        let invocation = &invocation;
        let value: Value = self
            .run(deadline, move |mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
        if matches!(&value, Value::BulkString(b) if b == LATE)
            || matches!(&value, Value::SimpleString(t) if t.as_bytes() == LATE)
        {
            // Redis ran it after the caller gave up (it was paused, or slow): nothing changed.
            self.inner.wake.notify_one();
            return Err(StoreError::unavailable(
                "Redis ran the script after its deadline; it changed nothing",
            ));
        }
        T::from_redis_value(value).map_err(|e| StoreError::backend(format!("Redis: unexpected answer: {e}")))
    }

    /// The deadline of a call starting now, on the Redis server's clock (microseconds since
    /// the Unix epoch): the local clock, the offset the health check last measured, and the
    /// store's timeout.
    fn server_deadline(&self) -> i64 {
        let now = i64::try_from(rebuff_store::ratelimit::now_nanos() / 1000).unwrap_or(i64::MAX);
        let timeout = i64::try_from(self.inner.timeout.as_micros()).unwrap_or(i64::MAX);
        now.saturating_add(self.inner.clock_offset_us.load(Ordering::Relaxed)).saturating_add(timeout)
    }

    /// Runs a command on the shared connection until `deadline`, and keeps the outage state
    /// up to date.
    ///
    /// While Redis is known to be down (the circuit is open) it fails at once without asking:
    /// only the health check ([`Builder::health_check`]) closes the circuit again. A command
    /// that finds the connection dead (closed or refused, so it never reached a server) is
    /// sent once more, on the connection the manager opens again, within the same deadline:
    /// a Redis restarted between two health checks does not fail the first request after it.
    async fn run<T, F, Fut>(&self, deadline: tokio::time::Instant, mut command: F) -> Result<T, StoreError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if self.inner.down.load(Ordering::Relaxed) {
            return Err(StoreError::unavailable("Redis is down; waiting for a health check to pass"));
        }
        let mut retried = false;
        let result = loop {
            match tokio::time::timeout_at(deadline, command(self.inner.conn.clone())).await {
                Ok(Ok(value)) => break Ok(value),
                Ok(Err(e)) if !retried && (e.is_connection_dropped() || e.is_connection_refusal()) => {
                    retried = true;
                }
                Ok(Err(e)) => break Err(map_err(&e).with_source(e)),
                Err(_) => {
                    // A slow answer alone does not open the circuit (one slow command on a
                    // loaded machine would fail every request for a while): the health check
                    // runs at once and decides.
                    self.inner.wake.notify_one();
                    return Err(StoreError::unavailable(format!(
                        "Redis did not answer within {} ms",
                        self.inner.timeout.as_millis()
                    )));
                }
            }
        };
        self.observe(result.as_ref().err());
        result
    }

    /// One health check: `TIME`, bypassing the circuit. Success closes the circuit and
    /// measures the offset of the server's clock; failure opens it.
    async fn probe(&self) {
        let mut conn = self.inner.conn.clone();
        let before = rebuff_store::ratelimit::now_nanos();
        let answer =
            tokio::time::timeout(self.inner.timeout, redis::cmd("TIME").query_async::<(i64, i64)>(&mut conn))
                .await;
        let result = match answer {
            Ok(Ok((secs, micros))) => {
                let after = rebuff_store::ratelimit::now_nanos();
                let local_us = i64::try_from((before + after) / 2000).unwrap_or(i64::MAX);
                let offset = secs.saturating_mul(1_000_000).saturating_add(micros).saturating_sub(local_us);
                self.inner.clock_offset_us.store(offset, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(map_err(&e).with_source(e)),
            Err(_) => Err(StoreError::unavailable("Redis did not answer the health check in time")),
        };
        self.observe(result.as_ref().err());
    }

    fn observe(&self, error: Option<&StoreError>) {
        let down = &self.inner.down;
        match error {
            None => {
                // A load first: the shared flag is written only when the state changes.
                if down.load(Ordering::Relaxed) && down.swap(false, Ordering::Relaxed) {
                    tracing::info!(url = %self.inner.url, "Redis is answering again");
                }
            }
            Some(e) if e.kind() == rebuff_store::StoreErrorKind::Unavailable => {
                if !down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        url = %self.inner.url,
                        error = %e,
                        "Redis is unavailable; reconnecting in the background"
                    );
                }
            }
            Some(_) => {}
        }
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.inner.prefix)
    }
}

/// A Redis error as a store error: anything worth retrying later (the connection, a timeout,
/// a server loading its data or busy) is unavailable (503); an error answer is a backend
/// failure (500).
fn map_err(e: &RedisError) -> StoreError {
    if e.is_io_error() || e.is_timeout() || !matches!(e.retry_method(), RetryMethod::NoRetry) {
        StoreError::unavailable(format!("Redis: {e}"))
    } else {
        StoreError::backend(format!("Redis: {e}"))
    }
}

/// `url` without the password of its user information.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn micros(n: i64) -> Duration {
    Duration::from_micros(u64::try_from(n).unwrap_or(0))
}

fn u32_of(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn malformed(what: &str) -> StoreError {
    StoreError::backend(format!("Redis: unexpected answer from the {what} script"))
}

impl RateLimitStore for RedisStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(async move {
            let period_us = quota.period.as_micros();
            if quota.limit == 0 || period_us == 0 {
                // Nothing to store: the same answer as the in-memory GCRA.
                return Ok(rebuff_store::gcra(None, now_nanos, quota).1);
            }
            let mut invocation = self.inner.scripts.gcra.key(self.key("rl", key));
            self.gcra_args(&mut invocation, quota, now_nanos);
            let reply: Vec<i64> = self.invoke(invocation).await?;
            decision(&reply, quota)
        })
    }

    fn check_and_begin<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
        begin: BeginRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<Admission, StoreError>>> {
        if quota.limit == 0 || quota.period.as_micros() == 0 {
            return None;
        }
        Some(Box::pin(async move {
            let mut invocation = self.inner.scripts.check_and_begin.key(self.key("rl", key));
            invocation.key(self.key("idem", begin.key));
            self.gcra_args(&mut invocation, quota, now_nanos);
            invocation.arg(&begin.fingerprint[..]).arg(millis(begin.lock_ttl));
            let reply: Vec<Value> = self.invoke(invocation).await?;
            let (decided, begun) = match reply.as_slice() {
                [decided] => (decided, None),
                [decided, begun] => (decided, Some(begun)),
                _ => return Err(malformed("rate-limit and idempotency")),
            };
            let decision = decision(
                &Vec::<i64>::from_redis_value(decided.clone()).map_err(|_| malformed("rate-limit"))?,
                quota,
            )?;
            let begin = match begun {
                Some(Value::Array(begun)) if decision.allowed => Some(decode_begin(begun)?),
                None if !decision.allowed => None,
                _ => return Err(malformed("rate-limit and idempotency")),
            };
            Ok(Admission { decision, begin })
        }))
    }
}

impl RedisStore {
    /// The GCRA script's arguments: limit, period and the time (empty: Redis's clock).
    fn gcra_args(&self, invocation: &mut ScriptInvocation<'_>, quota: Quota, now_nanos: u128) {
        let period_us = quota.period.as_micros();
        let now = match self.inner.clock {
            Clock::Redis => String::new(),
            Clock::Caller => (now_nanos / 1000).to_string(),
        };
        invocation.arg(quota.limit).arg(period_us.min(u128::from(MAX_EXACT)).to_string()).arg(now);
    }
}

/// The GCRA script's answer.
fn decision(reply: &[i64], quota: Quota) -> Result<Decision, StoreError> {
    let [allowed, remaining, reset_after, retry_after] = reply[..] else {
        return Err(malformed("rate-limit"));
    };
    Ok(Decision {
        allowed: allowed == 1,
        limit: quota.limit,
        remaining: u32_of(remaining),
        reset_after: micros(reset_after),
        retry_after: (retry_after >= 0).then(|| micros(retry_after)),
    })
}

/// The idempotency script's answer.
fn decode_begin(reply: &[Value]) -> Result<Begin, StoreError> {
    match reply {
        [Value::Int(0)] => Ok(Begin::Started),
        [Value::Int(1)] => Ok(Begin::InFlight),
        [Value::Int(3)] => Ok(Begin::Mismatch),
        [Value::Int(2), Value::BulkString(bytes)] => codec::decode(bytes)
            .map(Begin::Completed)
            .ok_or_else(|| StoreError::backend("Redis: a stored idempotent response does not parse")),
        _ => Err(malformed("idempotency")),
    }
}

impl QuotaStore for RedisStore {
    fn consume<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        Box::pin(async move {
            let mut invocation = self.inner.scripts.quota.key(self.quota_key(org, period));
            self.quota_args(&mut invocation, amount, limit);
            usage(self.invoke(invocation).await?, limit)
        })
    }

    fn consume_once<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
        charge: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        Box::pin(async move {
            let marker = self.key("charge", &format!("{}:{org}:{charge}", org.len()));
            let mut invocation = self.inner.scripts.quota_once.key(self.quota_key(org, period));
            invocation.key(marker);
            self.quota_args(&mut invocation, amount, limit);
            invocation.arg(millis(ttl));
            usage(self.invoke(invocation).await?, limit)
        })
    }
}

impl RedisStore {
    /// The counter of `org` in `period`; length-prefixed so that no organisation and period
    /// spell another pair's key.
    fn quota_key(&self, org: &str, period: &str) -> String {
        self.key("quota", &format!("{}:{org}:{period}", org.len()))
    }

    fn quota_args(&self, invocation: &mut ScriptInvocation<'_>, amount: u64, limit: u64) {
        // Past 2^53 an amount can only be refused (the limit is at most 2^53).
        invocation.arg(amount.min(MAX_EXACT + 1)).arg(limit.min(MAX_EXACT)).arg(self.inner.quota_ttl_secs);
    }
}

/// A quota script's `{granted, used}`.
fn usage(reply: Vec<i64>, limit: u64) -> Result<Usage, StoreError> {
    let [granted, used] = reply[..] else {
        return Err(malformed("quota"));
    };
    let used = u64::try_from(used).map_err(|_| malformed("quota"))?;
    Ok(Usage { granted: granted == 1, used, limit })
}

fn millis(d: Duration) -> u64 {
    // At least 1: `PX 0` is an error, and a lifetime below a millisecond is one.
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl IdempotencyStore for RedisStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        lock_ttl: Duration,
    ) -> BoxFuture<'a, Result<Begin, StoreError>> {
        Box::pin(async move {
            let mut invocation = self.inner.scripts.begin.key(self.key("idem", key));
            invocation.arg(&fingerprint[..]).arg(millis(lock_ttl));
            let reply: Vec<Value> = self.invoke(invocation).await?;
            decode_begin(&reply)
        })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        response: StoredResponse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut record = Vec::with_capacity(1 + 32 + 16 + response.body.len());
            record.push(b'D');
            record.extend_from_slice(fingerprint);
            codec::encode(&response, &mut record);
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key("idem", key)).arg(record).arg("PX").arg(millis(ttl));
            let cmd = &cmd;
            // No deadline inside Redis: a completion stored late is still the true outcome.
            let deadline = tokio::time::Instant::now() + self.inner.timeout;
            self.run(deadline, move |mut conn| async move { cmd.query_async::<()>(&mut conn).await }).await
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let invocation = self.inner.scripts.release.key(self.key("idem", key));
            let _deleted: i64 = self.invoke(invocation).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://user:secret@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("redis://:secret@host"), "redis://***@host");
        assert_eq!(redact("redis://host:6379/0"), "redis://host:6379/0");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn errors_map_by_kind() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(map_err(&io).kind(), rebuff_store::StoreErrorKind::Unavailable);
        let answer = RedisError::from((redis::ErrorKind::Client, "bad"));
        assert_eq!(map_err(&answer).kind(), rebuff_store::StoreErrorKind::Backend);
    }
}
