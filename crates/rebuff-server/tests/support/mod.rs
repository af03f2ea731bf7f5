//! A real server on 127.0.0.1:0 over a fresh SQLite file, with the accounts the tests need.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rebuff::Catalog;
use rebuff_server::{AppState, Config};
use rebuff_sqlite::{AccountStore, NewKey, SqliteStore};

pub struct Server {
    pub base: String,
    pub catalog: &'static Catalog,
    pub db: PathBuf,
    pub store: SqliteStore,
    pub admin: String,
    pub reader: String,
    pub revoked: String,
    pub expired: String,
    pub fenced: String,
    pub other_org_admin: String,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    keep_db: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if self.keep_db {
            return;
        }
        let _ = std::fs::remove_file(&self.db);
        let _ = std::fs::remove_file(self.db.with_extension("db-wal"));
        let _ = std::fs::remove_file(self.db.with_extension("db-shm"));
    }
}

/// The webhook secret the test servers are configured with.
pub const WEBHOOK_SECRET: &[u8] = b"whsec_test_suite_secret";

pub const PASSWORD: &str = "correct horse battery";
pub const ACTIVE_EMAIL: &str = "ada@demo.test";
pub const DISABLED_EMAIL: &str = "bob@demo.test";

/// Options a test may change from the defaults.
#[derive(Clone)]
pub struct Opts {
    pub rate: u32,
    pub monthly_rows: u64,
    pub body_limit: usize,
    pub users: bool,
    pub debug: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { rate: 10_000, monthly_rows: 1_000, body_limit: 64 * 1024, users: true, debug: false }
    }
}

fn temp_db(tag: &str) -> PathBuf {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!("rebuff-test-{tag}-{}-{nanos}.db", std::process::id()))
}

async fn key(
    store: &SqliteStore,
    org: &str,
    scopes: &[&str],
    expires_at: Option<i64>,
    ips: &[&str],
) -> String {
    let (_, text) = store
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
    text
}

pub async fn start(profile: &str, opts: Opts) -> Server {
    start_with(profile, opts, |_| {}).await
}

/// [`start`], with `configure` changing the configuration last.
pub async fn start_with(profile: &str, opts: Opts, configure: impl FnOnce(&mut Config)) -> Server {
    let catalog = Catalog::builtin(profile).expect("built-in profile");
    let db = temp_db(profile);
    let store = SqliteStore::open(&db).expect("open");
    let org = store.get_or_create_org("acme").await.expect("org").id;
    let other = store.get_or_create_org("globex").await.expect("org").id;
    let admin = key(&store, &org, &["read", "write", "admin"], None, &[]).await;
    let reader = key(&store, &org, &["read"], None, &[]).await;
    let revoked = key(&store, &org, &["read"], None, &[]).await;
    let revoked_id = rebuff_axum::auth::key::parse(&revoked).expect("well-formed").id;
    assert!(store.revoke_key(&org, &revoked_id).await.expect("revoke"));
    let expired = key(&store, &org, &["read"], Some(1_000_000_000), &[]).await;
    let fenced = key(&store, &org, &["read"], None, &["10.0.0.0/8"]).await;
    let other_org_admin = key(&store, &other, &["read", "write", "admin"], None, &[]).await;
    if opts.users {
        store.create_user(&org, ACTIVE_EMAIL, PASSWORD, false).await.expect("user");
        store.create_user(&org, DISABLED_EMAIL, PASSWORD, true).await.expect("user");
    }

    let mut config = Config::new(Arc::new(catalog.clone()));
    config.rate_limit.limit = opts.rate;
    config.monthly_rows = opts.monthly_rows;
    config.body_limit = opts.body_limit;
    config.debug = opts.debug;
    config.webhook_secret = WEBHOOK_SECRET.to_vec();
    config.training_delay = Duration::from_millis(50);
    config.job_delay = Duration::from_millis(300);
    configure(&mut config);
    let state = AppState::new(config, store.clone()).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rebuff_server::serve(listener, state, async {
        let _ = rx.await;
    }));
    Server {
        base: format!("http://{addr}"),
        catalog,
        db,
        store,
        admin,
        reader,
        revoked,
        expired,
        fenced,
        other_org_admin,
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        task: Some(task),
        keep_db: false,
    }
}

impl Server {
    /// Shuts down gracefully, waits for the server to finish, and keeps the database file.
    pub async fn stop(mut self) -> PathBuf {
        self.keep_db = true;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("served");
        }
        self.db.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(key)
    }

    pub fn post_json(&self, path: &str, key: &str, body: serde_json::Value) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).bearer_auth(key).json(&body)
    }

    /// Creates a resource and returns its id.
    pub async fn create(&self, path: &str, body: serde_json::Value) -> String {
        self.create_as(&self.admin, path, body).await
    }

    /// Creates a resource with `key` and returns its id.
    pub async fn create_as(&self, key: &str, path: &str, body: serde_json::Value) -> String {
        let res = self.post_json(path, key, body).send().await.expect("send");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let v: serde_json::Value = res.json().await.expect("json");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Signs in and returns (cookie header value, csrf token).
    pub async fn login(&self, email: &str) -> (String, String) {
        let res = self
            .http
            .post(self.url("/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200, "login");
        let cookie =
            res.headers()["set-cookie"].to_str().expect("ascii").split(';').next().expect("pair").to_owned();
        let v: serde_json::Value = res.json().await.expect("json");
        (cookie, v["csrf_token"].as_str().expect("csrf").to_owned())
    }
}

/// A whole response, read.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

pub async fn answer(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.expect("send");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.bytes().await.expect("body");
    Answer { status, headers, body }
}
