//! SQLite storage for rebuff: the default embedded backend of the reference server.
//!
//! One file holds everything a single `rebuff serve` instance needs: organisations, users,
//! API keys, sessions, rate-limit state, monthly usage and idempotency records.
//! [`SqliteStore`] implements every storage trait of [`rebuff_store`]
//! ([`KeyStore`], [`SessionStore`], [`RateLimitStore`], [`QuotaStore`], [`IdempotencyStore`])
//! and [`AccountStore`], the account management the CLI and the server use (organisations,
//! keys, users, logins, sessions): bring the trait into scope to call it. Its [`Outcomes`] are
//! the responses of idempotent key creations, recorded with the key.
//!
//! [`Outcomes`]: rebuff_store::Outcomes
//! [`KeyStore`]: rebuff_store::KeyStore
//! [`SessionStore`]: rebuff_store::SessionStore
//! [`RateLimitStore`]: rebuff_store::RateLimitStore
//! [`QuotaStore`]: rebuff_store::QuotaStore
//! [`IdempotencyStore`]: rebuff_store::IdempotencyStore
//!
//! ```no_run
//! # async fn demo() -> Result<(), rebuff_sqlite::Error> {
//! use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};
//!
//! let store = SqliteStore::open("rebuff.db")?;
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
//! # Schema versions
//!
//! The schema is migrated on open with `PRAGMA user_version`, which this crate reserves for
//! itself. A server keeping its own domain tables in the same file (through
//! [`SqliteStore::with_conn`]) must not touch `user_version`: it should use
//! `CREATE TABLE IF NOT EXISTS` or a migrations table of its own.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = NORMAL`: a committed write survives a
//! crash or kill of the process; after a power loss the file is consistent but may lack the
//! last commits. `FULL` would fsync on every rate-limit decision, which the server makes on
//! every request.

mod accounts;
mod idempotency;
mod keys;
mod migrate;
pub mod outcomes;
mod quota;
mod ratelimit;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rebuff_store::{StoreError, StoreErrorKind};
use rusqlite::{Connection, ErrorCode};

pub use rebuff_store::accounts::{AccountStore, Error, KeyInfo, LoginOutcome, NewKey, Org, UserInfo};
/// The `rusqlite` this crate is built with, for [`SqliteStore::with_conn`] callers.
pub use rusqlite;

/// How long a statement waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a read on the calling thread may wait for a lock ([`SqliteStore::read`]). In WAL
/// mode a reader never waits for a writer; it can only meet a lock while another process
/// recovers the WAL after a crash, and then it answers "busy" (a 503) rather than stall an
/// async worker thread.
const READ_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// Idle read connections kept for reuse ([`SqliteStore::read`]); one per worker thread is
/// what a server uses, and more are closed when returned.
const MAX_IDLE_READERS: usize = 16;

/// Creates the database file readable and writable by its owner only (0600), if it does not
/// exist yet: it holds key hashes, sessions and stored responses. SQLite gives the `-wal` and
/// `-shm` files it creates next to it the same mode as the database file. An existing file
/// keeps its mode (an operator may have chosen a group on purpose).
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // Exists already, or is a directory, or the directory cannot be written: SQLite's own
        // open reports those with its own words.
        Err(_) => Ok(()),
    }
}

/// An SQLite database holding every kind of rebuff state.
///
/// Cloning is cheap (an [`Arc`]); all clones share one connection for writes. Writes run on
/// tokio's blocking pool, so a tokio runtime must be running when their futures are polled.
/// Lookups on the request path (keys, sessions, and [`read`](SqliteStore::read) for the
/// server's own tables) run on the calling thread over a small pool of read connections:
/// see [`read`](SqliteStore::read) for why.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    // One connection behind a mutex for writes: SQLite allows one writer at a time anyway,
    // so a pool of writers would only queue on the file lock.
    conn: Mutex<Connection>,
    // Idle read connections (file databases only; an in-memory database has one connection).
    readers: Mutex<Vec<Connection>>,
    path: Option<PathBuf>,
    created: bool,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("created", &self.inner.created)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its schema on first use and
    /// migrating an older schema.
    ///
    /// Blocking: call it at start-up, or inside `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the file cannot be created, opened or read (permissions, a
    /// directory, a missing parent directory), is not an SQLite database or is corrupt, or
    /// was written by a newer version of this crate. Its message names the path; it is for
    /// the log, not for clients.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let fail = |e: StoreError| rewrap(&e, format!("{}: {e}", path.display()));
        create_private(path).map_err(fail)?;
        let conn = Connection::open(path).map_err(map_err).map_err(fail)?;
        Self::setup(conn, Some(path.to_owned())).map_err(fail)
    }

    /// Opens a private in-memory database (for tests and demos; gone when the last clone is
    /// dropped).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory().map_err(map_err)?, None)
    }

    fn setup(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        // The first statements read the file header: this is where a file that is not a
        // database, or that cannot be read, fails.
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(map_err)?;
        if path.is_some() && !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "SQLite did not switch to WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(map_err)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(map_err)?;
        let created = migrate::migrate(&mut conn)?;
        let readers = Mutex::new(Vec::new());
        Ok(SqliteStore { inner: Arc::new(Inner { conn: Mutex::new(conn), readers, path, created }) })
    }

    /// The file this store was opened on (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Whether this open created the schema: the database was new (a server prints its demo
    /// key then).
    pub fn was_created(&self) -> bool {
        self.inner.created
    }

    /// Runs `f` on the connection, on the blocking pool, for the server's own domain tables.
    ///
    /// `f` has the connection to itself for its duration; it should open its own
    /// transaction (`conn.transaction_with_behavior(TransactionBehavior::Immediate)`) when
    /// it writes more than once. A transaction it leaves open is rolled back. The schema
    /// version (`PRAGMA user_version`) belongs to this crate: create tables with
    /// `CREATE TABLE IF NOT EXISTS` or keep a migrations table of your own.
    ///
    /// # Errors
    ///
    /// The error `f` returns, or a failed task (a panic in `f`), as a [`StoreError`].
    pub async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run(move |conn| f(conn).map_err(map_err)).await
    }

    /// Runs the read-only `f` on the calling thread, over a read connection of its own.
    ///
    /// This is for the short indexed lookups on a request's path (a key, a session, a
    /// resource by id, a page of a list). They run here rather than on tokio's blocking pool
    /// because the hop costs more than the lookup: handing the closure to a blocking thread
    /// and waking the async task again takes two thread wake-ups, tens of microseconds on a
    /// busy machine, while an indexed read of pages in the cache takes a few. A reader in WAL
    /// mode never waits for the writer; the only wait left (another process recovering the
    /// WAL) is capped at 100 ms and then fails as `Unavailable`. Anything slow (a scan, a
    /// write, a password hash) belongs in [`with_conn`](SqliteStore::with_conn).
    ///
    /// The connection is read-only (`PRAGMA query_only`): a write fails. An in-memory
    /// database has a single connection, which `read` locks like a write does.
    ///
    /// # Errors
    ///
    /// What `f` returns; a read connection that cannot be opened (a file that became
    /// unreadable) as [`StoreError`] `Unavailable`.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let Some(path) = &self.inner.path else {
            return f(&self.inner.lock());
        };
        let idle = self.inner.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(path)?,
        };
        let result = f(&conn);
        if conn.is_autocommit() {
            let mut readers = self.inner.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if readers.len() < MAX_IDLE_READERS {
                readers.push(conn);
            }
        }
        result
    }

    /// [`read`](SqliteStore::read) with rusqlite's errors, for the server's own tables.
    ///
    /// # Errors
    ///
    /// As [`read`](SqliteStore::read), SQLite's errors mapped as [`with_conn`](SqliteStore::with_conn) maps them.
    pub fn read_conn<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        self.read(|conn| f(conn).map_err(map_err))
    }

    /// Deletes what has expired: sessions, idempotency records and locks, the outcomes of
    /// idempotent key creations, and rate-limit state that no longer limits anything. Returns
    /// the number of rows deleted.
    ///
    /// Nothing depends on it for correctness (expired rows are treated as absent); a server
    /// calls it now and then to keep the file small.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.run(|conn| {
            let now = now_nanos();
            let tx = immediate(conn)?;
            let mut n = tx
                .execute("DELETE FROM sessions WHERE expires_at <= ?1", [unix_secs(now)])
                .map_err(map_err)?;
            n += tx
                .execute("DELETE FROM idempotency WHERE expires_at <= ?1", [nanos_i64(now)])
                .map_err(map_err)?;
            n += tx
                .execute("DELETE FROM outcomes WHERE expires_at <= ?1", [nanos_i64(now)])
                .map_err(map_err)?;
            n += ratelimit::purge(&tx, now)?;
            tx.commit().map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }

    /// Runs `f` with the connection on tokio's blocking pool: rusqlite is blocking, and a
    /// query (or an fsync, or a wait on another process's lock) must not stall the async
    /// worker threads.
    fn run<T, E, F>(&self, f: F) -> impl Future<Output = Result<T, E>> + Send + 'static
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.blocking(move |inner| f(&mut inner.lock()))
    }

    /// Runs `f` on tokio's blocking pool; `f` takes the connection when it needs it (and
    /// can do slow work, such as password hashing, without holding it).
    fn blocking<T, E, F>(&self, f: F) -> impl Future<Output = Result<T, E>> + Send + 'static
    where
        F: FnOnce(&Inner) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        async move {
            match tokio::task::spawn_blocking(move || f(&inner)).await {
                Ok(result) => result,
                Err(e) => Err(E::from(StoreError::backend(format!("SQLite task failed: {e}")))),
            }
        }
    }
}

impl Inner {
    /// The connection, with no transaction left open.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic in an operation poisons the mutex; the connection itself is still sound
        // (an unwinding `Transaction` rolls back), so carry on with it.
        let conn = self.conn.lock().unwrap_or_else(|poisoned| {
            self.conn.clear_poison();
            poisoned.into_inner()
        });
        if !conn.is_autocommit() {
            tracing::warn!("rolling back a transaction left open on the SQLite connection");
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "SQLite rollback failed");
            }
        }
        conn
    }
}

/// A read-only connection to the database at `path`, for [`SqliteStore::read`].
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(map_err)?;
    conn.busy_timeout(READ_BUSY_TIMEOUT).map_err(map_err)?;
    conn.pragma_update(None, "query_only", true).map_err(map_err)?;
    Ok(conn)
}

/// Starts a write transaction: taking the write lock first means two connections never
/// both read a value and then fail to upgrade (SQLITE_BUSY mid-transaction).
fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_err)
}

/// An SQLite error as a store error: lock contention and an unopenable file are worth a
/// retry later (503); anything else is a backend failure (500).
fn map_err(e: rusqlite::Error) -> StoreError {
    let err = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen) => {
            StoreError::unavailable(format!("SQLite: {e}"))
        }
        _ => StoreError::backend(format!("SQLite: {e}")),
    };
    err.with_source(e)
}

/// A backend error about data that does not read back (a damaged or foreign row).
fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("SQLite: stored {what} does not parse"))
}

/// The same kind of [`StoreError`] with another message.
fn rewrap(e: &StoreError, message: String) -> StoreError {
    match e.kind() {
        StoreErrorKind::Unavailable => StoreError::unavailable(message),
        _ => StoreError::backend(message),
    }
}

/// Nanoseconds since the Unix epoch.
fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Whole seconds of a nanosecond timestamp.
fn unix_secs(nanos: u128) -> i64 {
    i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX)
}

/// A nanosecond timestamp as SQLite's integer (saturating in the year 2262).
fn nanos_i64(nanos: u128) -> i64 {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// `nanos + d`, as SQLite's integer.
fn nanos_after(nanos: u128, d: Duration) -> i64 {
    nanos_i64(nanos.saturating_add(d.as_nanos()))
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
    fn the_sqlite_error_is_the_source() {
        let e = map_err(rusqlite::Error::QueryReturnedNoRows);
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<rusqlite::Error>());
        assert!(matches!(source, Some(rusqlite::Error::QueryReturnedNoRows)), "{source:?}");
    }
}
