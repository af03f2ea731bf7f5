//! PostgreSQL storage for rebuff: the accounts (organisations, users, API keys, sessions) and
//! the request state (idempotency records, quotas, rate limits) that several server instances
//! share.
//!
//! [`PgStore`] implements every storage trait of [`rebuff_store`] ([`KeyStore`],
//! [`SessionStore`], [`IdempotencyStore`], [`QuotaStore`], [`RateLimitStore`]) and
//! [`AccountStore`], the same account management as the SQLite backend. Each decision is one statement or one server-side
//! function, so it takes one round trip and is atomic under concurrency:
//!
//! | trait | how |
//! |---|---|
//! | [`RateLimitStore`] | `rebuff_gcra()`: GCRA under a row lock, on the caller's clock (microseconds) |
//! | [`RateLimitStore::check_and_begin`] | `rebuff_check_and_begin()`: `rebuff_gcra()`, then, if admitted, `rebuff_idempotency_begin()`, in one call |
//! | [`QuotaStore`] | one conditional upsert (`used <= limit - amount`) |
//! | [`IdempotencyStore`] | `rebuff_idempotency_begin()`: take the lock or read the record; expiry on the database's clock |
//! | [`KeyStore`], [`SessionStore`] | one indexed lookup |
//! | [`AccountStore::create_key_once`] | one transaction: look the idempotency key up, insert the key, record its response (the idempotency key is the primary key) |
//!
//! [`KeyStore`]: rebuff_store::KeyStore
//! [`SessionStore`]: rebuff_store::SessionStore
//! [`IdempotencyStore`]: rebuff_store::IdempotencyStore
//! [`QuotaStore`]: rebuff_store::QuotaStore
//! [`RateLimitStore`]: rebuff_store::RateLimitStore
//! [`RateLimitStore::check_and_begin`]: rebuff_store::RateLimitStore::check_and_begin
//! [`AccountStore::create_key_once`]: rebuff_store::AccountStore::create_key_once
//!
//! ```no_run
//! # async fn demo() -> Result<(), rebuff_postgres::Error> {
//! use rebuff_postgres::{AccountStore, NewKey, PgStore};
//!
//! let store = PgStore::connect("postgres://rebuff@db.internal/rebuff").await?;
//! let org = store.get_or_create_org("demo").await?;
//! let (info, text) = store
//!     .create_key(NewKey {
//!         org_id: org.id.clone(),
//!         name: "admin".into(),
//!         scopes: vec!["admin".into()],
//!         expires_at: None,
//!         allowed_ips: Vec::new(),
//!         live: false,
//!     })
//!     .await?;
//! println!("{} {text}", info.id); // the text is shown once and never stored
//! # Ok(()) }
//! ```
//!
//! # Schema and migrations
//!
//! [`Builder::connect`] creates the database the URL names when it does not exist and the
//! role may (`CREATE DATABASE` from the `postgres` maintenance database), then creates the schema ([`Builder::schema`], `public` by default) if it is
//! missing and migrates it, under an advisory lock so that instances starting together migrate
//! once. Every connection of the pool sets its `search_path` to that schema, so several
//! applications (or test runs) can share a database in separate schemas.
//!
//! # Failures
//!
//! A database that cannot be reached, is shutting down, or does not answer within
//! [`Builder::timeout`] gives [`StoreError::unavailable`] (503); an error it answers with gives
//! [`StoreError::backend`] (500). The pool drops broken connections and opens new ones as the
//! database comes back; the outage is logged once when it starts and once when it ends.
//!
//! Once the database is known to be down (a connection refused, closed or not made in time,
//! the server shutting down) the circuit is open: calls fail at once instead of each waiting
//! for its deadline, so a fail-open rate limit admits at once, until a check (`SELECT 1`,
//! every 100 ms while it fails) passes. One slow or late statement does not open it; it runs a
//! check, which decides.

mod accounts;
mod database;
mod idempotency;
mod keys;
mod limits;
mod migrate;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType};
use rebuff_store::{StoreError, StoreErrorKind};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

pub use rebuff_store::accounts::{AccountStore, Error, KeyInfo, LoginOutcome, NewKey, Org, UserInfo};
/// The `tokio-postgres` this crate is built with.
pub use tokio_postgres;

/// Options of a [`PgStore`]; [`connect`](Builder::connect) opens it.
#[derive(Clone)]
pub struct Builder {
    url: String,
    schema: String,
    pool_size: usize,
    timeout: Duration,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Builder {
    /// The schema holding the tables (`public` by default): lower-case letters, digits and
    /// `_`, not starting with a digit.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Connections in the pool (16 by default).
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long one operation (waiting for a connection included) may take before it fails as
    /// unavailable (2 s by default).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects, creates the database and the schema if needed, and migrates the schema.
    ///
    /// # Errors
    ///
    /// [`StoreError::backend`] for a URL that does not parse, a bad schema name, or a schema
    /// written by a newer version of this crate, or a missing database the role may not
    /// create (the message says `createdb`); [`StoreError::unavailable`] when the database
    /// cannot be reached. Messages never contain the URL's password.
    pub async fn connect(self) -> Result<PgStore, StoreError> {
        if !valid_schema(&self.schema) {
            return Err(StoreError::backend(format!("`{}` is not a valid schema name", self.schema)));
        }
        let mut config: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e| StoreError::backend(format!("PostgreSQL URL {}: {e}", redact(&self.url))))?;
        config.connect_timeout(self.timeout);
        // Checked above: a plain identifier, safe to splice.
        // Notices (`schema ... already exists, skipping`) are not worth a log line each start.
        config.options(format!("-c search_path={} -c client_min_messages=warning", self.schema));
        config.application_name("rebuff");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.timeout))
            .create_timeout(Some(self.timeout))
            .recycle_timeout(Some(self.timeout))
            .build()
            .map_err(|e| StoreError::backend(format!("PostgreSQL pool: {e}")))?;
        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                config,
                url: redact(&self.url),
                schema: self.schema,
                timeout: self.timeout,
                down: AtomicBool::new(false),
                checking: AtomicBool::new(false),
            }),
        };
        if let Err(e) = store.inner.pool.get().await
            && database::is_missing(&e)
        {
            database::create(&store.inner.config, &store.inner.url).await?;
        }
        let mut client = store.client().await.map_err(|e| {
            StoreError::unavailable(format!("cannot connect to PostgreSQL at {}: {e}", store.inner.url))
        })?;
        migrate::migrate(&mut client, &store.inner.schema).await?;
        Ok(store)
    }
}

/// Accounts and request state in PostgreSQL; see the [crate documentation](crate).
///
/// Cloning is cheap; all clones share one connection pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// For connections of their own (listening to key changes).
    config: tokio_postgres::Config,
    /// For the log: the URL without its password.
    url: String,
    schema: String,
    timeout: Duration,
    /// Whether the database is known to be down: the circuit is open and calls fail at once
    /// until a check passes. The outage is logged on changes only.
    down: AtomicBool,
    /// Whether a check is running (at most one at a time).
    checking: AtomicBool,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.url)
            .field("schema", &self.inner.schema)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A pooled connection.
type Client = deadpool_postgres::Object;

impl PgStore {
    /// Options for a store on `url` (`postgres://user[:password]@host[:port]/database`, or the
    /// `key=value` form of libpq). TLS is not built in: use it on a trusted network or through
    /// a local proxy.
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder {
            url: url.into(),
            schema: "public".to_owned(),
            pool_size: 16,
            timeout: Duration::from_secs(2),
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

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Deletes what has expired: sessions, idempotency records and dead locks, the outcomes of
    /// idempotent key creations, and rate-limit state that no longer limits anything. Returns the number of rows deleted. Nothing
    /// depends on it for correctness (expired rows are treated as absent).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = unix_secs();
        let now_us = i64::try_from(now_nanos() / 1000).unwrap_or(i64::MAX);
        self.timed(async {
            let client = self.client().await?;
            let mut n =
                client.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now]).await.map_err(pg)?;
            n +=
                client.execute("DELETE FROM idempotency WHERE expires_at <= now()", &[]).await.map_err(pg)?;
            n += client.execute("DELETE FROM outcomes WHERE expires_at <= now()", &[]).await.map_err(pg)?;
            n +=
                client.execute("DELETE FROM rate_limits WHERE tat_us <= $1", &[&now_us]).await.map_err(pg)?;
            Ok(n)
        })
        .await
    }

    /// A connection from the pool, or why there is none.
    async fn client(&self) -> Result<Client, StoreError> {
        self.inner.pool.get().await.map_err(|e| {
            let (err, down) = pool_error(e);
            if down {
                self.open_circuit(&err);
            } else {
                self.check_soon();
            }
            err
        })
    }

    /// Runs `work` (which takes its connections with [`client`](Self::client)) under the
    /// deadline, and keeps the circuit and the outage log up to date. While the circuit is
    /// open it fails at once, without asking.
    async fn timed<T, E>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, E>
    where
        E: From<StoreError> + AsStoreError,
    {
        if self.inner.down.load(Ordering::Relaxed) {
            return Err(E::from(StoreError::unavailable("PostgreSQL is down; waiting for a check to pass")));
        }
        let deadline = self.inner.timeout;
        let Ok(result) = tokio::time::timeout(deadline, work).await else {
            // A slow answer alone does not open the circuit (one slow statement on a loaded
            // machine would fail every request for a while): a check runs at once and decides.
            self.check_soon();
            return Err(E::from(StoreError::unavailable(format!(
                "PostgreSQL did not answer within {} ms",
                deadline.as_millis()
            ))));
        };
        match result.as_ref().err().and_then(AsStoreError::as_store_error) {
            None => self.close_circuit(),
            Some(e) if is_connection_failure(e) => self.open_circuit(e),
            // Late, out of resources, a conflict: the database answered; a check decides.
            Some(e) if e.kind() == StoreErrorKind::Unavailable => self.check_soon(),
            Some(_) => {}
        }
        result
    }

    /// The deadline of a call starting now, for `rebuff_in_time`: microseconds since the Unix
    /// epoch, on this process's clock (the database compares it with its own, so the two hosts'
    /// clocks are assumed synchronised, as NTP keeps them to well within a timeout).
    pub(crate) fn deadline_us(&self) -> i64 {
        let now = i64::try_from(rebuff_store::ratelimit::now_nanos() / 1000).unwrap_or(i64::MAX / 4);
        now.saturating_add(i64::try_from(self.inner.timeout.as_micros()).unwrap_or(i64::MAX / 4))
    }

    fn close_circuit(&self) {
        let down = &self.inner.down;
        // A load first: the shared flag is written only when the state changes.
        if down.load(Ordering::Relaxed) && down.swap(false, Ordering::Relaxed) {
            tracing::info!(url = %self.inner.url, "PostgreSQL is answering again");
        }
    }

    fn open_circuit(&self, error: &StoreError) {
        if !self.inner.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(url = %self.inner.url, error = %error, "PostgreSQL is unavailable; checking every 100 ms");
        }
        self.check_soon();
    }

    /// Starts a check unless one runs: `SELECT 1` at once, then every 100 ms while it fails;
    /// the first success closes the circuit, a failure opens it.
    fn check_soon(&self) {
        if self.inner.checking.swap(true, Ordering::Relaxed) {
            return;
        }
        let inner: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = inner.upgrade() else { return };
                let store = PgStore { inner };
                match store.check().await {
                    Ok(()) => {
                        store.close_circuit();
                        store.inner.checking.store(false, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        if !store.inner.down.swap(true, Ordering::Relaxed) {
                            tracing::warn!(url = %store.inner.url, error = %e, "PostgreSQL is unavailable; checking every 100 ms");
                        }
                    }
                }
                drop(store);
                tokio::time::sleep(CHECK_INTERVAL).await;
            }
        });
    }

    /// One check, bypassing the circuit: a connection and `SELECT 1` within the timeout.
    async fn check(&self) -> Result<(), StoreError> {
        let check = async {
            let client = self.inner.pool.get().await.map_err(|e| pool_error(e).0)?;
            client.simple_query("SELECT 1").await.map_err(pg)?;
            Ok(())
        };
        tokio::time::timeout(self.inner.timeout, check)
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("PostgreSQL did not answer the check in time")))
    }

    /// Runs `f` on the blocking pool (password hashing).
    async fn blocking<T, F>(f: F) -> Result<T, Error>
    where
        F: FnOnce() -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(Error::Store(StoreError::backend(format!("hashing task failed: {e}")))))
    }
}

/// The store error inside an operation's error, if it is one.
trait AsStoreError {
    fn as_store_error(&self) -> Option<&StoreError>;
}

impl AsStoreError for StoreError {
    fn as_store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl AsStoreError for Error {
    fn as_store_error(&self) -> Option<&StoreError> {
        match self {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// [`map_err`] by value, for `map_err(pg)`.
fn pg(e: tokio_postgres::Error) -> StoreError {
    map_err(&e).with_source(e)
}

/// A database error as a store error: the connection, a server shutting down or out of
/// resources, and serialization conflicts are worth a retry later (503); anything else is a
/// backend failure (500).
fn map_err(e: &tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // No answer from the server (the connection failed, was closed or timed out), or a
        // mistake on this side (a parameter or column of the wrong type).
        let text = e.to_string();
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        let transient = e.is_closed()
            || io
            || text.starts_with("error connecting")
            || text.starts_with("error communicating")
            || text.starts_with("timeout");
        let message = format!("PostgreSQL: {e}");
        return if transient { StoreError::unavailable(message) } else { StoreError::backend(message) };
    };
    let code = db.code().code();
    // `RBLTE`: `rebuff_in_time` found the call late; nothing was done, and the caller has
    // answered already.
    let transient = code == "RBLTE"
        || code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
        || *db.code() == SqlState::T_R_DEADLOCK_DETECTED;
    let message = format!("PostgreSQL: {} ({code})", db.message());
    if transient { StoreError::unavailable(message) } else { StoreError::backend(message) }
}

/// How often a check runs while the database is down.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// A pool's error as a store error, and whether it says the database is down: no connection
/// could be made (refused, failed, or not in time). Waiting for a free connection too long
/// says only that the pool is busy.
fn pool_error(e: PoolError) -> (StoreError, bool) {
    match e {
        PoolError::Backend(e) => {
            let err = pg(e);
            let down = is_connection_failure(&err);
            (err, down)
        }
        PoolError::Timeout(kind) => {
            let down = !matches!(kind, TimeoutType::Wait);
            (StoreError::unavailable(format!("PostgreSQL pool: timed out ({kind:?})")), down)
        }
        other => (StoreError::unavailable(format!("PostgreSQL pool: {other}")), false),
    }
}

/// Whether `e` says the database cannot be reached at all (the connection refused, closed or
/// broken; the server shutting down), as opposed to one statement that failed.
fn is_connection_failure(e: &StoreError) -> bool {
    let Some(pg) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
    else {
        return false;
    };
    match pg.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
        None => {
            let io = std::error::Error::source(pg).is_some_and(|s| s.is::<std::io::Error>());
            pg.is_closed() || io || pg.to_string().starts_with("error connecting")
        }
    }
}

/// Whether the error is a unique-constraint violation.
fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A plain identifier: `[a-z_][a-z0-9_]*`, at most 63 bytes.
fn valid_schema(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && name.len() <= 63
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// `url` without the password of its user information.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // The key=value form: hide the password value.
        return url
            .split_whitespace()
            .map(|kv| if kv.starts_with("password=") { "password=***" } else { kv })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A backend error about data that does not read back.
fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("PostgreSQL: stored {what} does not parse"))
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Unix seconds now.
fn unix_secs() -> i64 {
    i64::try_from(now_nanos() / 1_000_000_000).unwrap_or(i64::MAX)
}

/// Random base62 characters.
fn random_alnum(n: usize) -> String {
    use rand::Rng;
    rand::rng().sample_iter(&rand::distr::Alphanumeric).take(n).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("public"));
        assert!(valid_schema("rebuff_test_1a"));
        assert!(!valid_schema("1abc"));
        assert!(!valid_schema("a-b"));
        assert!(!valid_schema("x; DROP TABLE orgs"));
        assert!(!valid_schema(""));
        assert!(!valid_schema("Public"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("host=db user=app password=s3cret"), "host=db user=app password=***");
    }
}
