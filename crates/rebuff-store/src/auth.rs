//! What authentication looks up: API keys ([`KeyStore`]) and browser sessions
//! ([`SessionStore`]).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::{BoxFuture, StoreError};

/// A stored API key. The secret itself is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The public key id (part of the key, used to look it up). Shared, like `org_id`: a
    /// record cloned out of a cache, and the principal made from it, copy neither.
    pub id: Arc<str>,
    /// The organisation the key acts for.
    pub org_id: Arc<str>,
    /// SHA-256 of the key's secret part.
    pub secret_hash: [u8; 32],
    /// Granted scopes (`read`, `write`, `admin`). Shared: a record cloned out of a cache, and
    /// the principal of each request made from it, copy none of them
    /// (`vec!["read".into()].into()` makes one).
    pub scopes: Arc<[String]>,
    /// Unix seconds after which the key is expired.
    pub expires_at: Option<i64>,
    /// Unix seconds at which the key was revoked.
    pub revoked_at: Option<i64>,
    /// Client addresses allowed to use the key; empty allows any.
    pub allowed_ips: Vec<IpNet>,
    /// A live key (`rb_live_`) rather than a test key (`rb_test_`).
    pub live: bool,
}

impl KeyRecord {
    /// Whether `ip` may use this key.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&ip))
    }
}

/// Looks up API keys.
pub trait KeyStore: Send + Sync + 'static {
    /// The key with this public id.
    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>>;

    /// The key with this public id, when the store has it at hand without waiting (a cache
    /// holding it, fresh): no future to allocate and poll. `None` (the default) sends the
    /// caller to [`find_key`](Self::find_key), which also answers for a key that does not exist.
    fn find_key_now(&self, id: &str) -> Option<KeyRecord> {
        let _ = id;
        None
    }
}

/// A browser session (cookie) with its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session token (the cookie value).
    pub token_hash: [u8; 32],
    /// The user.
    pub user_id: String,
    /// The user's organisation.
    pub org_id: String,
    /// SHA-256 of the CSRF token the client must echo on unsafe methods.
    pub csrf_hash: [u8; 32],
    /// Unix seconds after which the session is expired.
    pub expires_at: i64,
    /// The user's account is disabled.
    pub user_disabled: bool,
}

/// Looks up sessions.
pub trait SessionStore: Send + Sync + 'static {
    /// The session whose token hashes to `token_hash`.
    fn find_session<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>>;
}
