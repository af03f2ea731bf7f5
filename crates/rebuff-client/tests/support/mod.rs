//! The reference server on 127.0.0.1:0 over a fresh SQLite file, with the keys and accounts
//! the client tests need (as `rebuff-server`'s own tests start it).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rebuff::Catalog;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};

pub const PASSWORD: &str = "correct horse battery";
pub const ACTIVE_EMAIL: &str = "ada@demo.test";
pub const DISABLED_EMAIL: &str = "bob@demo.test";

pub struct Server {
    pub base: String,
    pub catalog: &'static Catalog,
    pub admin: String,
    pub reader: String,
    pub revoked: String,
    pub expired: String,
    pub fenced: String,
    db: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for ext in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(self.db.with_extension(ext));
        }
    }
}

/// What a test may change from the defaults.
#[derive(Clone, Copy)]
pub struct Opts {
    pub rate: u32,
    pub monthly_rows: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { rate: 10_000, monthly_rows: 1_000 }
    }
}

async fn key(
    store: &SqliteStore,
    org: &str,
    scopes: &[&str],
    expires_at: Option<i64>,
    ips: &[&str],
) -> (String, String) {
    let (info, text) = store
        .create_key(NewKey {
            org_id: org.to_owned(),
            name: "test".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at,
            allowed_ips: ips.iter().filter_map(|s| s.parse().ok()).collect(),
            live: false,
        })
        .await
        .expect("key");
    (info.id, text)
}

pub async fn start(profile: &str, opts: Opts) -> Server {
    let catalog = Catalog::builtin(profile).expect("built-in profile");
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let db = std::env::temp_dir().join(format!("rebuff-client-{profile}-{}-{nanos}.db", std::process::id()));
    let store = SqliteStore::open(&db).expect("open");
    let org = store.get_or_create_org("acme").await.expect("org").id;
    let (_, admin) = key(&store, &org, &["read", "write", "admin"], None, &[]).await;
    let (_, reader) = key(&store, &org, &["read"], None, &[]).await;
    let (revoked_id, revoked) = key(&store, &org, &["read"], None, &[]).await;
    assert!(store.revoke_key(&org, &revoked_id).await.expect("revoke"));
    let (_, expired) = key(&store, &org, &["read"], Some(1_000_000_000), &[]).await;
    let (_, fenced) = key(&store, &org, &["read"], None, &["10.0.0.0/8"]).await;
    store.create_user(&org, ACTIVE_EMAIL, PASSWORD, false).await.expect("user");
    store.create_user(&org, DISABLED_EMAIL, PASSWORD, true).await.expect("user");

    let mut config = Config::new(Arc::new(catalog.clone()));
    config.rate_limit.limit = opts.rate;
    config.monthly_rows = opts.monthly_rows;
    config.body_limit = 64 * 1024;
    config.training_delay = Duration::from_millis(50);
    config.job_delay = Duration::from_millis(300);
    let state = AppState::new(config, store).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rebuff_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    Server {
        base: format!("http://{addr}"),
        catalog,
        admin,
        reader,
        revoked,
        expired,
        fenced,
        db,
        shutdown: Some(tx),
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
