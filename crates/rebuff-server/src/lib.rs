//! The rebuff reference API: a small multi-tenant service (projects, datasets, models,
//! generation jobs, API keys, login sessions, an incoming webhook, a monthly row quota) in
//! which every error of the catalog has a real cause.
//!
//! [`app()`] builds the router from an [`AppState`]; [`serve`] listens with graceful shutdown.
//!
//! The API's own tables are in SQLite; rate limits, quotas, idempotency records and accounts
//! can move to Redis and PostgreSQL so that several instances act as one (see [`state`]):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use std::sync::Arc;
//! use rebuff_server::{AppState, Config};
//!
//! let redis = rebuff_redis::RedisStore::connect("redis://127.0.0.1:6379/").await?;
//! let postgres = rebuff_postgres::PgStore::connect("postgres://rebuff@127.0.0.1/rebuff").await?;
//! let (sqlite, _demo) = rebuff_server::open_with(std::path::Path::new("rebuff.db"), Some(&postgres)).await?;
//! let config = Config::new(Arc::new(rebuff::Catalog::standard().clone()));
//! let state = AppState::builder(config, sqlite).redis(redis).postgres(postgres).build().await?;
//! # let _ = state;
//! # Ok(()) }
//! ```

pub mod app;
pub mod config;
mod conn;
mod db;
mod limits;
mod openapi;
mod routes;
pub mod state;

use std::path::Path;

pub use app::{app, check_catalog};
pub use config::Config;
pub use ipnet::IpNet;
pub use routes::keys::{parse_net, parse_time};
pub use state::{AppState, Backends, StateBuilder, Store};
/// The shared backends, re-exported so that a binary over this crate can open them.
pub use {rebuff_postgres::PgStore, rebuff_redis::RedisStore};

use rebuff_axum::store::AccountStore;
use rebuff_sqlite::SqliteStore;
use tokio::net::TcpListener;

/// The organisation and key a fresh database starts with.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The organisation's name.
    pub org: String,
    /// The admin key's text, shown once.
    pub key: String,
}

/// Opens (creating and migrating) the database; on a fresh one, makes the `demo` organisation
/// and an admin key for it.
///
/// # Errors
/// The database cannot be opened or written.
pub async fn open(
    path: &Path,
) -> Result<(SqliteStore, Option<Demo>), Box<dyn std::error::Error + Send + Sync>> {
    let store = SqliteStore::open(path)?;
    if !store.was_created() {
        return Ok((store, None));
    }
    let org = store.get_or_create_org("demo").await?;
    let (_, key) = store.create_key(demo_key(org.id)).await?;
    Ok((store, Some(Demo { org: org.name, key })))
}

/// Opens (creating and migrating) the SQLite database for the API's own tables; the demo
/// organisation and admin key go where the accounts are: with `postgres`, into PostgreSQL when
/// it has no `demo` organisation yet; without, into a fresh SQLite database (as [`open`]).
///
/// # Errors
/// A database cannot be opened or written.
pub async fn open_with(
    path: &Path,
    postgres: Option<&rebuff_postgres::PgStore>,
) -> Result<(SqliteStore, Option<Demo>), Box<dyn std::error::Error + Send + Sync>> {
    let Some(pg) = postgres else {
        return open(path).await;
    };
    let store = SqliteStore::open(path)?;
    if pg.find_org("demo").await?.is_some() {
        return Ok((store, None));
    }
    let org = pg.get_or_create_org("demo").await?;
    let (_, key) = pg.create_key(demo_key(org.id)).await?;
    Ok((store, Some(Demo { org: org.name, key })))
}

/// The webhook secret kept in the SQLite database: the one stored there, or a fresh random
/// one stored now (`true`: created by this call, to be shown once, like the admin key).
/// Instances that share the database file share the secret.
///
/// # Errors
/// The database cannot be read or written.
pub async fn stored_webhook_secret(
    store: &SqliteStore,
) -> Result<(String, bool), rebuff_axum::store::StoreError> {
    let fresh = config::new_webhook_secret();
    store
        .with_conn(move |c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            )?;
            // INSERT OR IGNORE then SELECT: two instances starting together agree on one.
            let created = c.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES ('webhook_secret', ?1)",
                [&fresh],
            )? == 1;
            let value: String =
                c.query_row("SELECT value FROM settings WHERE name = 'webhook_secret'", [], |r| r.get(0))?;
            Ok((value, created))
        })
        .await
}

/// The demo organisation's admin key, as created on a fresh database.
fn demo_key(org_id: String) -> rebuff_sqlite::NewKey {
    rebuff_sqlite::NewKey {
        org_id,
        name: "demo admin".into(),
        scopes: vec!["read".into(), "write".into(), "admin".into()],
        expires_at: None,
        allowed_ips: Vec::new(),
        live: false,
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (SQLite commits each write before its response is sent, so nothing committed is lost).
///
/// Connections are bounded as the [`Config`] says: how many at once, how long a request head
/// may take, how long a connection may idle.
///
/// # Errors
/// The listener failed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purge = tokio::spawn(purge_expired(state.clone()));
    routes::models::resume_unfinished(&state).await;
    let cfg = state.config();
    let limits = conn::Limits {
        max_connections: cfg.max_connections,
        header_timeout: cfg.header_timeout,
        idle_timeout: cfg.idle_timeout,
        linger_time: cfg.linger_time,
        linger_bytes: cfg.linger_bytes,
    };
    let served = conn::serve(listener, app(state), limits, shutdown).await;
    purge.abort();
    served
}

/// Deletes expired rows every [`Config::purge_interval`]: nothing depends on it for
/// correctness (expired rows read as absent), but without it expired sessions and stored
/// responses would stay in the files for ever.
async fn purge_expired(state: AppState) {
    let mut every = tokio::time::interval(state.config().purge_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // The stores' rows (sessions, stored responses), then the API's own (outcomes and
        // recovery points of idempotent writes).
        let purged = match state.store().purge_expired().await {
            Ok(n) => state.store().with_conn(|c| db::purge_expired(c)).await.map(|m| n.saturating_add(m)),
            Err(e) => Err(e),
        };
        match purged {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired rows"),
            Err(e) => tracing::warn!(error = %e, "purging expired rows failed; trying again later"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
