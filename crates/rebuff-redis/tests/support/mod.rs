//! Shared by the tests that need a Redis: where it is, whether to skip, unique key prefixes, and
//! a TCP proxy that can cut the connection to simulate an outage without touching the shared
//! Redis server.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use rebuff_redis::{Builder, RedisStore};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The Redis the tests use: `REBUFF_TEST_REDIS_URL`, else the local default.
pub fn redis_url() -> String {
    std::env::var("REBUFF_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// Whether this is CI, where a missing Redis fails the test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A prefix no other run uses.
pub fn unique_prefix(test: &str) -> String {
    let suffix: String = rand::rng().sample_iter(&Alphanumeric).take(10).map(char::from).collect();
    format!("rebuff-test:{test}:{suffix}:")
}

/// Connects with `builder`, or, when Redis cannot be reached, panics in CI and prints a notice
/// and returns `None` elsewhere (the test then passes without running).
pub async fn connect_or_skip(builder: Builder) -> Option<RedisStore> {
    match builder.connect().await {
        Ok(store) => Some(store),
        Err(e) if in_ci() => panic!("Redis is required in CI (run scripts/services.sh): {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no Redis ({e}); run scripts/services.sh to start it");
            None
        }
    }
}

/// Deletes every key under `prefix`.
pub async fn cleanup(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else { return };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return };
    let mut cursor: u64 = 0;
    loop {
        let scanned: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await;
        let Ok((next, keys)) = scanned else { return };
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// The host and port of a `redis://` URL.
fn upstream_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.contains(':') { host.to_owned() } else { format!("{host}:6379") }
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards to Redis.
    Up,
    /// Cuts every connection and closes new ones at once: Redis is down.
    Down,
    /// Accepts connections and never answers: Redis is hung or the network drops packets.
    Hang,
}

/// A TCP proxy to the test Redis whose [`Mode`] can be switched.
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    url_path: String,
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1, forwarding to [`redis_url`].
    pub async fn start() -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let url = redis_url();
        let upstream = upstream_addr(&url);
        let url_path = url
            .split_once("://")
            .map_or("", |(_, r)| r)
            .find('/')
            .map_or(String::new(), |i| url.split_once("://").map_or("", |(_, r)| r)[i..].to_owned());
        let (mode, rx) = watch::channel(Mode::Up);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let mut rx = rx.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let current = *rx.borrow_and_update();
                    match current {
                        Mode::Down => drop(client),
                        Mode::Hang => {
                            // Hold the socket without answering until the mode changes.
                            let _ = rx.changed().await;
                            drop(client);
                        }
                        Mode::Up => {
                            let Ok(server) = TcpStream::connect(&upstream).await else { return };
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = async {
                                    while rx.changed().await.is_ok() {
                                        if *rx.borrow() != Mode::Up {
                                            break;
                                        }
                                    }
                                } => {}
                            }
                            if *rx.borrow() == Mode::Hang {
                                // Stop forwarding but keep both sockets open: requests stall.
                                let _ = rx.changed().await;
                            }
                            drop((client, server));
                        }
                    }
                });
            }
        });
        Arc::new(Proxy { addr, mode, url_path })
    }

    /// The URL to connect to Redis through this proxy.
    pub fn url(&self) -> String {
        format!("redis://{}{}", self.addr, self.url_path)
    }

    /// Switches mode; `Down` and `Hang` cut the connections open now.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// Polls `f` until it returns true or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = tokio::time::Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`); 0 when Redis cannot be
/// asked.
pub async fn subscribers(channel: &str) -> i64 {
    let Ok(client) = redis::Client::open(redis_url()) else { return 0 };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return 0 };
    let answer: redis::RedisResult<(String, i64)> =
        redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query_async(&mut conn).await;
    answer.map_or(0, |(_, n)| n)
}
