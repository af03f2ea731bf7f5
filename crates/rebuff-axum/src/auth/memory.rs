//! [`MemoryAuthStore`]: API keys and sessions in memory, for tests and for embedding.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::store::{BoxFuture, KeyRecord, KeyStore, SessionRecord, SessionStore, StoreError};

/// API keys and sessions in memory. Implements [`KeyStore`] and [`SessionStore`]; share one
/// `Arc<MemoryAuthStore>` as both.
///
/// ```
/// use rebuff_axum::auth::{MemoryAuthStore, key};
/// use rebuff_axum::store::KeyRecord;
///
/// let store = MemoryAuthStore::new();
/// let generated = key::generate(false);
/// store.insert_key(KeyRecord {
///     id: generated.id.clone(),
///     org_id: "org_1".into(),
///     secret_hash: generated.secret_hash,
///     scopes: vec!["read".into()],
///     expires_at: None,
///     revoked_at: None,
///     allowed_ips: Vec::new(),
///     live: false,
/// });
/// // `generated.text` is the key to hand to the client.
/// ```
#[derive(Debug, Default)]
pub struct MemoryAuthStore {
    keys: RwLock<HashMap<String, KeyRecord>>,
    sessions: RwLock<HashMap<[u8; 32], SessionRecord>>,
}

impl MemoryAuthStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key, replacing one with the same id.
    pub fn insert_key(&self, record: KeyRecord) {
        // A panic elsewhere while holding the lock cannot leave a map half-updated: every
        // update is one insert or one field write.
        self.keys.write().unwrap_or_else(PoisonError::into_inner).insert(record.id.clone(), record);
    }

    /// Marks a key revoked at `at` (Unix seconds); whether the key existed.
    pub fn revoke_key(&self, id: &str, at: i64) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        match keys.get_mut(id) {
            Some(record) => {
                record.revoked_at = Some(at);
                true
            }
            None => false,
        }
    }

    /// Adds a session, replacing one with the same token.
    pub fn insert_session(&self, record: SessionRecord) {
        self.sessions.write().unwrap_or_else(PoisonError::into_inner).insert(record.token_hash, record);
    }

    /// Removes the session whose token hashes to `token_hash` (sign-out); whether it existed.
    pub fn remove_session(&self, token_hash: &[u8; 32]) -> bool {
        self.sessions.write().unwrap_or_else(PoisonError::into_inner).remove(token_hash).is_some()
    }
}

impl KeyStore for MemoryAuthStore {
    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
        let found = self.keys.read().unwrap_or_else(PoisonError::into_inner).get(id).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

impl SessionStore for MemoryAuthStore {
    fn find_session<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let found = self.sessions.read().unwrap_or_else(PoisonError::into_inner).get(token_hash).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}
