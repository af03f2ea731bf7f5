//! Shared state of the reference API, and where each kind of state lives.
//!
//! The API's own tables (projects, datasets, models, jobs) are always in SQLite. The rest goes
//! where [`AppState::builder`] puts it, one backend per concern:
//!
//! | concern | default | with Redis | with PostgreSQL (and no Redis) |
//! |---|---|---|---|
//! | rate limits (requests, logins) | SQLite | Redis | PostgreSQL |
//! | monthly quotas | SQLite | Redis | PostgreSQL |
//! | idempotency records | SQLite | Redis | PostgreSQL |
//! | organisations, users, API keys, sessions | SQLite | (unchanged) | PostgreSQL |
//!
//! So that several instances act as one, they share a Redis (limits, quotas, idempotency) and
//! a PostgreSQL (accounts), or one PostgreSQL for all of it.

use std::fmt;
use std::sync::Arc;

use rebuff_axum::quota::Quotas;
use rebuff_axum::store::{
    AccountStore, BoxFuture, CachedKeyStore, Decision, IdempotencyStore, KeyCacheHandle, KeyChanges,
    KeyStore, Outcomes, Quota, QuotaStore, RateLimitStore, SessionStore, StoreError,
};
use rebuff_postgres::PgStore;
use rebuff_redis::RedisStore;
use rebuff_sqlite::SqliteStore;

use crate::config::Config;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) quotas: Quotas,
    pub(crate) errors_html: String,
    pub(crate) errors_json: String,
    /// Set by [`crate::app()`], from the routes it serves.
    pub(crate) openapi: std::sync::OnceLock<String>,
}

impl AppState {
    /// `/openapi.json`: the first document [`crate::app()`] derived (every call derives the
    /// same one from the same routes).
    pub(crate) fn set_openapi(&self, doc: String) {
        let _ = self.inner.openapi.set(doc);
    }

    /// `/openapi.json`'s text.
    pub(crate) fn openapi(&self) -> String {
        self.inner.openapi.get().cloned().unwrap_or_default()
    }

    /// State with everything in one SQLite store; creates the API's own tables.
    ///
    /// # Errors
    /// The store could not be migrated.
    pub async fn new(config: Config, store: SqliteStore) -> Result<Self, StoreError> {
        Self::builder(config, store).build().await
    }

    /// State over SQLite (for the API's own tables) whose other concerns can be moved to Redis,
    /// PostgreSQL or any store; see the [module documentation](self).
    pub fn builder(config: Config, store: SqliteStore) -> StateBuilder {
        StateBuilder {
            config,
            sqlite: store,
            redis: None,
            postgres: None,
            rate_limits: None,
            quotas: None,
            idempotency: None,
            accounts: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The backend of each concern.
    pub fn backends(&self) -> &Backends {
        &self.inner.store.backends
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
}

/// Builds an [`AppState`]: each concern goes to the most specific store given, then Redis,
/// then PostgreSQL, then SQLite (accounts: PostgreSQL, then SQLite).
pub struct StateBuilder {
    config: Config,
    sqlite: SqliteStore,
    redis: Option<RedisStore>,
    postgres: Option<PgStore>,
    rate_limits: Option<Arc<dyn RateLimitStore>>,
    quotas: Option<Arc<dyn QuotaStore>>,
    idempotency: Option<Arc<dyn IdempotencyStore>>,
    accounts: Option<Arc<dyn AccountStore>>,
}

impl fmt::Debug for StateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateBuilder")
            .field("sqlite", &self.sqlite)
            .field("redis", &self.redis)
            .field("postgres", &self.postgres)
            .finish_non_exhaustive()
    }
}

impl StateBuilder {
    /// Rate limits, quotas and idempotency records in Redis.
    #[must_use]
    pub fn redis(mut self, store: RedisStore) -> Self {
        self.redis = Some(store);
        self
    }

    /// Organisations, users, API keys and sessions in PostgreSQL; also rate limits, quotas
    /// and idempotency records unless Redis has them.
    #[must_use]
    pub fn postgres(mut self, store: PgStore) -> Self {
        self.postgres = Some(store);
        self
    }

    /// Rate limits in `store`, whatever else is configured.
    #[must_use]
    pub fn rate_limits(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.rate_limits = Some(store);
        self
    }

    /// Quotas in `store`, whatever else is configured.
    #[must_use]
    pub fn quotas(mut self, store: Arc<dyn QuotaStore>) -> Self {
        self.quotas = Some(store);
        self
    }

    /// Idempotency records in `store`, whatever else is configured.
    #[must_use]
    pub fn idempotency(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.idempotency = Some(store);
        self
    }

    /// Organisations, users, API keys and sessions in `store`, whatever else is configured.
    #[must_use]
    pub fn accounts(mut self, store: Arc<dyn AccountStore>) -> Self {
        self.accounts = Some(store);
        self
    }

    /// Creates the API's own tables and the state.
    ///
    /// # Errors
    /// The SQLite store could not be migrated.
    pub async fn build(self) -> Result<AppState, StoreError> {
        let StateBuilder { config, sqlite, redis, postgres, rate_limits, quotas, idempotency, accounts } =
            self;
        sqlite.with_conn(crate::db::migrate).await?;

        // The shared store for limits, quotas and idempotency: Redis, else PostgreSQL, else
        // SQLite; each can be overridden.
        let (mut shared, shared_name): (Backend, &'static str) = match (&redis, &postgres) {
            (Some(r), _) => (Backend::from_store(Arc::new(r.clone())), "Redis"),
            (None, Some(p)) => (Backend::from_store(Arc::new(p.clone())), "PostgreSQL"),
            (None, None) => (Backend::from_store(Arc::new(sqlite.clone())), "SQLite"),
        };
        // One instance alone keeps rate-limit state in memory: it is just as exact there, it
        // only needs to outlive a window, and it spares every request a write transaction.
        // Quotas and idempotency records must survive a restart and stay in SQLite.
        let limits_name = if redis.is_none() && postgres.is_none() {
            shared.rate_limits = Arc::new(rebuff_axum::store::memory::MemoryStore::new());
            "memory"
        } else {
            shared_name
        };
        let named = |given: bool| if given { "custom" } else { shared_name };
        let mut placement = Placement {
            rate_limits: if rate_limits.is_some() { "custom" } else { limits_name },
            quotas: named(quotas.is_some()),
            idempotency: named(idempotency.is_some()),
            accounts: match (&accounts, &postgres) {
                (Some(_), _) => "custom",
                (None, Some(_)) => "PostgreSQL",
                (None, None) => "SQLite",
            },
        };
        // Kept to purge its expired rows (sessions, idempotency records, limits).
        let purged = postgres.clone();
        let accounts_elsewhere = accounts.is_some() || postgres.is_some();
        // Keys are cached where the backend tells of their changes (not a custom store).
        let (accounts, changes, pg): (Arc<dyn AccountStore>, Option<Arc<dyn KeyChanges>>, _) =
            match (accounts, postgres) {
                (Some(a), _) => (a, None, None),
                (None, Some(p)) => (Arc::new(p.clone()), Some(Arc::new(p.clone())), Some(p)),
                (None, None) => (Arc::new(sqlite.clone()), Some(Arc::new(sqlite.clone())), None),
            };
        let (keys, key_cache, announce): (Arc<dyn KeyStore>, _, _) = match (changes, config.key_cache) {
            (Some(changes), Some(bound)) => {
                let cache = CachedKeyStore::new(accounts.clone(), changes).max_staleness(bound);
                let handle = cache.handle();
                // Pushed changes on top of the polling, so that a revocation is seen at once:
                // PostgreSQL announces its own (a trigger's NOTIFY); SQLite cannot, so where a
                // Redis is shared the revoking instance announces there.
                let announce = match (pg, &redis) {
                    (Some(pg), _) => {
                        pg.listen_key_changes(handle.clone());
                        None
                    }
                    (None, Some(redis)) => {
                        redis.listen_key_changes(handle.clone());
                        Some(redis.clone())
                    }
                    (None, None) => None,
                };
                (Arc::new(cache), Some(handle), announce)
            }
            _ => (accounts.clone(), None, None),
        };
        if announce.is_some() {
            placement.accounts = "SQLite (revocations announced over Redis)";
        }
        let sessions: Arc<dyn SessionStore> = accounts.clone();
        let backends = Backends {
            rate_limits: rate_limits.unwrap_or(shared.rate_limits),
            quotas: quotas.unwrap_or(shared.quotas),
            idempotency: idempotency.unwrap_or(shared.idempotency),
            keys,
            sessions,
            key_cache,
            announce,
            placement,
        };
        let quotas = Quotas::new(backends.quotas.clone(), config.monthly_rows);
        let catalog = &config.catalog;
        let errors_html = rebuff::docs::html(catalog);
        let errors_json = rebuff::docs::json(catalog).to_string();
        let openapi = std::sync::OnceLock::new();
        let store = Store { sqlite, accounts, backends, postgres: purged, accounts_elsewhere };
        Ok(AppState { inner: Arc::new(Inner { config, store, quotas, errors_html, errors_json, openapi }) })
    }
}

/// The three shared concerns of one store.
struct Backend {
    rate_limits: Arc<dyn RateLimitStore>,
    quotas: Arc<dyn QuotaStore>,
    idempotency: Arc<dyn IdempotencyStore>,
}

impl Backend {
    fn from_store<S: RateLimitStore + QuotaStore + IdempotencyStore>(store: Arc<S>) -> Self {
        Backend { rate_limits: store.clone(), quotas: store.clone(), idempotency: store }
    }
}

/// The store of each concern, for the layers.
#[derive(Clone)]
pub struct Backends {
    /// Rate-limit state (requests per organisation, login attempts).
    pub rate_limits: Arc<dyn RateLimitStore>,
    /// Monthly usage counters.
    pub quotas: Arc<dyn QuotaStore>,
    /// Idempotency locks and records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// API keys.
    pub keys: Arc<dyn KeyStore>,
    /// Login sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Empties the key cache of `keys`, if it has one: after a revocation on this instance
    /// ([`Backends::key_changed`] also tells the other instances).
    pub key_cache: Option<KeyCacheHandle>,
    /// Where key changes are announced to the other instances: the shared Redis, when keys
    /// are cached from SQLite.
    announce: Option<RedisStore>,
    placement: Placement,
}

impl Backends {
    /// After a key changed through this instance (a revocation, committed): empties this
    /// instance's key cache, so that it refuses the key at once, and announces the change
    /// where the others listen (Redis beside SQLite's keys; PostgreSQL announces its own).
    /// An announcement that fails is logged: the others' polling still sees the change
    /// within the cache's bound.
    pub async fn key_changed(&self) {
        if let Some(cache) = &self.key_cache {
            cache.invalidate();
        }
        if let Some(redis) = &self.announce
            && let Err(e) = redis.announce_key_change().await
        {
            tracing::warn!(
                error = %e,
                "a key change was not announced over Redis; other instances see it within the key cache's bound"
            );
        }
    }

    /// Which backend holds what, for the start-up log: `rate limits: Redis, ...`.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }
}

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends").field("placement", &self.placement).finish_non_exhaustive()
    }
}

/// The name of the backend of each concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Rate limits.
    pub rate_limits: &'static str,
    /// Quotas.
    pub quotas: &'static str,
    /// Idempotency records.
    pub idempotency: &'static str,
    /// Organisations, users, keys and sessions.
    pub accounts: &'static str,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limits: {}, quotas: {}, idempotency: {}, keys and sessions: {}, API tables: SQLite",
            self.rate_limits, self.quotas, self.idempotency, self.accounts
        )
    }
}

/// What the handlers store through: SQLite for the API's own tables, and the accounts and
/// rate limits on whichever backend holds them.
#[derive(Clone)]
pub struct Store {
    sqlite: SqliteStore,
    accounts: Arc<dyn AccountStore>,
    backends: Backends,
    /// The PostgreSQL store, when there is one, for [`Store::purge_expired`].
    postgres: Option<PgStore>,
    /// Whether the accounts are somewhere else than the API's SQLite file.
    accounts_elsewhere: bool,
}

/// The outcomes the idempotency layer looks up before a request runs: those of the API's own
/// writes, in its SQLite file (`routes::write_once`), then those of key creations, in the
/// accounts store (`AccountStore::create_key_once`), which may be PostgreSQL. A request
/// records its outcome in one place only, and keys are unique per caller, so the first found
/// is the one.
struct BothOutcomes {
    /// The API's SQLite file.
    api: Arc<dyn Outcomes>,
    /// The accounts store's outcomes.
    accounts: Arc<dyn Outcomes>,
}

impl Outcomes for BothOutcomes {
    fn find<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<rebuff_axum::idempotency::Outcome>, StoreError>> {
        Box::pin(async move {
            if let Some(found) = self.api.find(key).await? {
                return Ok(Some(found));
            }
            self.accounts.find(key).await
        })
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("sqlite", &self.sqlite)
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The SQLite store of the API's own tables.
    pub fn sqlite(&self) -> &SqliteStore {
        &self.sqlite
    }

    /// The store of each concern.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// Organisations, users, API keys and sessions, on whichever backend holds them.
    pub fn accounts(&self) -> &dyn AccountStore {
        &*self.accounts
    }

    /// Where the idempotency layer looks for outcomes recorded with their writes: the API's
    /// SQLite file (its own writes, and key creations when the accounts are there too), then
    /// the accounts store when it is another.
    pub(crate) fn outcomes(&self) -> Arc<dyn Outcomes> {
        let api: Arc<dyn Outcomes> = Arc::new(self.sqlite.clone());
        if !self.accounts_elsewhere {
            return api;
        }
        Arc::new(BothOutcomes { api, accounts: self.accounts.clone() })
    }

    /// [`SqliteStore::read_conn`] on the API's own tables: a short lookup on the calling
    /// thread.
    ///
    /// # Errors
    /// As [`SqliteStore::read_conn`].
    pub fn read<T>(
        &self,
        f: impl FnOnce(&rebuff_sqlite::rusqlite::Connection) -> rebuff_sqlite::rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.sqlite.read_conn(f)
    }

    /// [`SqliteStore::with_conn`] on the API's own tables.
    ///
    /// # Errors
    /// As [`SqliteStore::with_conn`].
    pub async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rebuff_sqlite::rusqlite::Connection) -> rebuff_sqlite::rusqlite::Result<T>
        + Send
        + 'static,
    ) -> Result<T, StoreError> {
        self.sqlite.with_conn(f).await
    }
}

impl Store {
    /// Deletes expired sessions, idempotency records and rate-limit rows from SQLite, and from
    /// PostgreSQL when there is one (Redis expires its own keys). Returns the rows deleted.
    ///
    /// # Errors
    /// A database failed.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let mut n = self.sqlite.purge_expired().await?;
        if let Some(p) = &self.postgres {
            n += p.purge_expired().await?;
        }
        Ok(n)
    }
}

/// Login limits go where the request limits are.
impl RateLimitStore for Store {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        self.backends.rate_limits.check(key, quota, now_nanos)
    }

    fn check_now(&self, key: &str, quota: Quota, now_nanos: u128) -> Option<Result<Decision, StoreError>> {
        self.backends.rate_limits.check_now(key, quota, now_nanos)
    }
}
