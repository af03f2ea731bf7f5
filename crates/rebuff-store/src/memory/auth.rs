//! [`MemoryAuthStore`]: organisations, users, API keys and sessions in memory, for tests and
//! for embedding.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::accounts::{DUMMY_HASH, email_key, hash_password, verify_password};
use crate::key::{self, hash_secret};
use crate::ratelimit::now_nanos;
use crate::{
    AccountError, AccountStore, BoxFuture, IdempotencyRecord, KeyInfo, KeyOnce, KeyRecord, KeyReplay,
    KeyStore, LoginOutcome, NewKey, Org, Outcome, Outcomes, SessionRecord, SessionStore, StoreError,
    UserInfo,
};

/// At most this many expired outcomes are dropped per key creation, so that one creation never
/// pays for a long backlog.
const PURGE_BATCH: usize = 64;

/// Organisations, users, API keys and sessions in memory. Implements [`AccountStore`],
/// [`KeyStore`], [`SessionStore`] and [`Outcomes`] (of [`AccountStore::create_key_once`]);
/// share one `Arc<MemoryAuthStore>` as all four.
///
/// Keys and sessions can also be put in directly, for a test or a fixed set of keys:
///
/// ```
/// use rebuff_store::{KeyRecord, MemoryAuthStore, key};
///
/// let store = MemoryAuthStore::new();
/// let generated = key::generate(false);
/// store.insert_key(KeyRecord {
///     id: generated.id.as_str().into(),
///     org_id: "org_1".into(),
///     secret_hash: generated.secret_hash,
///     scopes: vec!["read".into()].into(),
///     expires_at: None,
///     revoked_at: None,
///     allowed_ips: Vec::new(),
///     live: false,
/// });
/// // `generated.text` is the key to hand to the client.
/// ```
///
/// Passwords are hashed with Argon2id on the calling task, as nothing here assumes a runtime
/// with a blocking pool: tens of milliseconds per login or new user.
#[derive(Debug, Default)]
pub struct MemoryAuthStore {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    orgs: HashMap<String, Org>,
    users: HashMap<String, User>,
    // Looked up by every request (foldhash: see `CachedKeyStore`'s map); only created keys
    // are inserted.
    keys: HashMap<Arc<str>, StoredKey, foldhash::fast::RandomState>,
    sessions: HashMap<[u8; 32], SessionRecord>,
    /// Insertion order of keys: `list_keys` is oldest first, and several keys share a second.
    next_seq: u64,
    /// The responses of `create_key_once` by idempotency key, with their expiry (nanoseconds
    /// since the Unix epoch).
    outcomes: HashMap<String, (Outcome, u128)>,
    /// The same outcomes by expiry, soonest first, to drop the expired ones.
    outcome_expiry: BTreeSet<(u128, String)>,
}

impl State {
    /// The unexpired outcome recorded for `key`.
    fn live_outcome(&self, key: &str, now: u128) -> Option<&Outcome> {
        self.outcomes.get(key).filter(|(_, expires)| *expires > now).map(|(outcome, _)| outcome)
    }

    /// Records `outcome` under `key` until `expires`, replacing an expired one, and drops up
    /// to [`PURGE_BATCH`] other expired outcomes.
    fn record_outcome(&mut self, key: String, outcome: Outcome, expires: u128, now: u128) {
        for _ in 0..PURGE_BATCH {
            match self.outcome_expiry.first() {
                Some((at, _)) if *at <= now => {
                    if let Some((_, old)) = self.outcome_expiry.pop_first() {
                        self.outcomes.remove(&old);
                    }
                }
                _ => break,
            }
        }
        if let Some((_, old_expiry)) = self.outcomes.get(&key) {
            self.outcome_expiry.remove(&(*old_expiry, key.clone()));
        }
        self.outcome_expiry.insert((expires, key.clone()));
        self.outcomes.insert(key, (outcome, expires));
    }

    /// A new key of `new` (checked already), not stored yet; its text.
    fn draw_key(&self, new: NewKey) -> (StoredKey, String) {
        let mut generated = key::generate(new.live);
        while self.keys.contains_key(generated.id.as_str()) {
            generated = key::generate(new.live);
        }
        let NewKey { org_id, name, scopes, expires_at, allowed_ips, live } = new;
        let stored = StoredKey {
            record: KeyRecord {
                id: generated.id.into(),
                org_id: org_id.into(),
                secret_hash: generated.secret_hash,
                scopes: scopes.into(),
                expires_at,
                revoked_at: None,
                allowed_ips,
                live,
            },
            name,
            created_at: now_secs(),
            last_used_at: None,
            seq: self.next_seq,
        };
        (stored, generated.text)
    }

    /// Stores a key that [`draw_key`](State::draw_key) made.
    fn add_key(&mut self, stored: StoredKey) {
        self.next_seq += 1;
        self.keys.insert(stored.record.id.clone(), stored);
    }
}

/// Refuses an empty scope or one with whitespace.
fn check_scopes(new: &NewKey) -> Result<(), AccountError> {
    if new.scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
        return Err(AccountError::Invalid("scope"));
    }
    Ok(())
}

#[derive(Debug)]
struct User {
    info: UserInfo,
    password_hash: String,
}

#[derive(Debug)]
struct StoredKey {
    record: KeyRecord,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
    seq: u64,
}

impl StoredKey {
    fn info(&self) -> KeyInfo {
        let r = &self.record;
        KeyInfo {
            id: r.id.to_string(),
            org_id: r.org_id.to_string(),
            name: self.name.clone(),
            scopes: r.scopes.to_vec(),
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            allowed_ips: r.allowed_ips.clone(),
            live: r.live,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

fn now_secs() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn random_id(prefix: &str) -> String {
    let suffix: String = rand::rng().sample_iter(&Alphanumeric).take(12).map(char::from).collect();
    format!("{prefix}{suffix}")
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl MemoryAuthStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic elsewhere while holding the lock cannot leave the state half-updated: every
        // update is checked first and then done as map inserts that cannot fail.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a key, replacing one with the same id. Its organisation need not exist here.
    pub fn insert_key(&self, record: KeyRecord) {
        let mut state = self.write();
        let seq = state.next_seq;
        state.next_seq += 1;
        let stored =
            StoredKey { record, name: String::new(), created_at: now_secs(), last_used_at: None, seq };
        state.keys.insert(stored.record.id.clone(), stored);
    }

    /// Marks a key revoked at `at` (Unix seconds), whatever its organisation; whether the key
    /// existed.
    pub fn revoke_key_at(&self, id: &str, at: i64) -> bool {
        match self.write().keys.get_mut(id) {
            Some(stored) => {
                stored.record.revoked_at = Some(at);
                true
            }
            None => false,
        }
    }

    /// Adds a session, replacing one with the same token.
    pub fn insert_session(&self, record: SessionRecord) {
        self.write().sessions.insert(record.token_hash, record);
    }

    /// Removes the session whose token hashes to `token_hash` (sign-out); whether it existed.
    pub fn remove_session(&self, token_hash: &[u8; 32]) -> bool {
        self.write().sessions.remove(token_hash).is_some()
    }

    fn org_by_name(&self, name: &str) -> Option<Org> {
        self.read().orgs.values().find(|o| o.name == name).cloned()
    }

    fn insert_org(&self, name: &str, or_existing: bool) -> Result<Org, AccountError> {
        if name.trim().is_empty() {
            return Err(AccountError::Invalid("name"));
        }
        let mut state = self.write();
        if let Some(org) = state.orgs.values().find(|o| o.name == name) {
            return if or_existing { Ok(org.clone()) } else { Err(AccountError::OrgNameTaken) };
        }
        let org = Org { id: random_id("org_"), name: name.to_owned() };
        state.orgs.insert(org.id.clone(), org.clone());
        Ok(org)
    }

    fn insert_user(
        &self,
        org_id: &str,
        email: &str,
        password: &str,
        disabled: bool,
    ) -> Result<UserInfo, AccountError> {
        let key = email_key(email);
        if key.is_empty() {
            return Err(AccountError::Invalid("email"));
        }
        // Hash before taking the lock: Argon2 is slow on purpose.
        let password_hash = hash_password(password)?;
        let mut state = self.write();
        if !state.orgs.contains_key(org_id) {
            return Err(AccountError::OrgNotFound);
        }
        if state.users.values().any(|u| email_key(&u.info.email) == key) {
            return Err(AccountError::EmailTaken);
        }
        let info = UserInfo {
            id: random_id("usr_"),
            org_id: org_id.to_owned(),
            email: email.to_owned(),
            disabled,
            created_at: now_secs(),
        };
        state.users.insert(info.id.clone(), User { info: info.clone(), password_hash });
        Ok(info)
    }

    fn login(&self, email: &str, password: &str) -> Result<LoginOutcome, AccountError> {
        let key = email_key(email);
        let found = self
            .read()
            .users
            .values()
            .find(|u| email_key(&u.info.email) == key)
            .map(|u| (u.info.clone(), u.password_hash.clone()));
        let Some((user, hash)) = found else {
            // As long as a wrong password takes.
            let _ = verify_password(password, DUMMY_HASH);
            return Ok(LoginOutcome::UnknownOrWrongPassword);
        };
        let verified = verify_password(password, &hash)
            .ok_or_else(|| StoreError::backend("memory: stored password hash does not parse"))?;
        Ok(match verified {
            false => LoginOutcome::UnknownOrWrongPassword,
            true if user.disabled => LoginOutcome::Disabled(user),
            true => LoginOutcome::Ok(user),
        })
    }

    fn open_session(&self, user_id: &str, ttl: Duration) -> Result<(String, String), AccountError> {
        let mut state = self.write();
        let Some(user) = state.users.get(user_id) else {
            return Err(AccountError::UserNotFound);
        };
        let (token, csrf) = (key::token(), key::token());
        let expires_at = now_secs().saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let record = SessionRecord {
            token_hash: hash_secret(&token),
            user_id: user.info.id.clone(),
            org_id: user.info.org_id.clone(),
            csrf_hash: hash_secret(&csrf),
            expires_at,
            user_disabled: user.info.disabled,
        };
        state.sessions.insert(record.token_hash, record);
        Ok((token, csrf))
    }

    fn new_key(&self, new: NewKey) -> Result<(KeyInfo, String), AccountError> {
        check_scopes(&new)?;
        let mut state = self.write();
        if !state.orgs.contains_key(&new.org_id) {
            return Err(AccountError::OrgNotFound);
        }
        let (stored, text) = state.draw_key(new);
        let info = stored.info();
        state.add_key(stored);
        Ok((info, text))
    }

    fn new_key_once(
        &self,
        new: NewKey,
        record: IdempotencyRecord,
        replay: KeyReplay,
    ) -> Result<KeyOnce, AccountError> {
        check_scopes(&new)?;
        let now = now_nanos();
        // One write lock for the look-up, the key and its outcome: the transaction.
        let mut state = self.write();
        if let Some(found) = state.live_outcome(&record.key, now) {
            return Ok(if found.fingerprint == record.fingerprint {
                KeyOnce::Replay(found.response.clone())
            } else {
                KeyOnce::Mismatch
            });
        }
        if !state.orgs.contains_key(&new.org_id) {
            return Err(AccountError::OrgNotFound);
        }
        let (stored, text) = state.draw_key(new);
        let info = stored.info();
        // Before anything changes: a failure leaves the state as it was.
        let response = replay(&info)?;
        state.add_key(stored);
        let expires = now.saturating_add(record.ttl.as_nanos());
        let outcome = Outcome { fingerprint: record.fingerprint, response };
        state.record_outcome(record.key, outcome, expires, now);
        Ok(KeyOnce::Created { info, text })
    }
}

impl KeyStore for MemoryAuthStore {
    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
        ready(Ok(self.read().keys.get(id).map(|k| k.record.clone())))
    }

    /// Every key this store knows is at hand.
    fn find_key_now(&self, id: &str) -> Option<KeyRecord> {
        self.read().keys.get(id).map(|k| k.record.clone())
    }
}

impl SessionStore for MemoryAuthStore {
    fn find_session<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let state = self.read();
        let found = state.sessions.get(token_hash).map(|s| {
            let mut s = s.clone();
            // A user disabled after signing in loses the session at once.
            if let Some(user) = state.users.get(&s.user_id) {
                s.user_disabled = user.info.disabled;
            }
            s
        });
        ready(Ok(found))
    }
}

/// The responses recorded by [`AccountStore::create_key_once`].
impl Outcomes for MemoryAuthStore {
    fn find<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Outcome>, StoreError>> {
        ready(Ok(self.read().live_outcome(key, now_nanos()).cloned()))
    }
}

impl AccountStore for MemoryAuthStore {
    fn create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, AccountError>> {
        ready(self.insert_org(name, false))
    }

    fn get_or_create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, AccountError>> {
        ready(self.insert_org(name, true))
    }

    fn find_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>> {
        ready(Ok(self.org_by_name(name)))
    }

    fn get_org<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>> {
        ready(Ok(self.read().orgs.get(id).cloned()))
    }

    fn create_user<'a>(
        &'a self,
        org_id: &'a str,
        email: &'a str,
        password: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<UserInfo, AccountError>> {
        Box::pin(async move { self.insert_user(org_id, email, password, disabled) })
    }

    fn get_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Option<UserInfo>, StoreError>> {
        ready(Ok(self.read().users.get(user_id).map(|u| u.info.clone())))
    }

    fn set_user_disabled<'a>(
        &'a self,
        user_id: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let found = match self.write().users.get_mut(user_id) {
            Some(user) => {
                user.info.disabled = disabled;
                true
            }
            None => false,
        };
        ready(Ok(found))
    }

    fn verify_login<'a>(
        &'a self,
        email: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<LoginOutcome, AccountError>> {
        Box::pin(async move { self.login(email, password) })
    }

    fn create_session<'a>(
        &'a self,
        user_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(String, String), AccountError>> {
        ready(self.open_session(user_id, ttl))
    }

    fn delete_session<'a>(&'a self, token_hash: &'a [u8; 32]) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(Ok(self.remove_session(token_hash)))
    }

    fn create_key(&self, new: NewKey) -> BoxFuture<'_, Result<(KeyInfo, String), AccountError>> {
        ready(self.new_key(new))
    }

    fn create_key_once(
        &self,
        new: NewKey,
        record: IdempotencyRecord,
        replay: KeyReplay,
    ) -> BoxFuture<'_, Result<KeyOnce, AccountError>> {
        ready(self.new_key_once(new, record, replay))
    }

    fn list_keys<'a>(&'a self, org_id: &'a str) -> BoxFuture<'a, Result<Vec<KeyInfo>, StoreError>> {
        let state = self.read();
        let mut keys: Vec<&StoredKey> = state.keys.values().filter(|k| *k.record.org_id == *org_id).collect();
        keys.sort_by_key(|k| (k.created_at, k.seq));
        ready(Ok(keys.into_iter().map(StoredKey::info).collect()))
    }

    fn get_key<'a>(
        &'a self,
        org_id: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, StoreError>> {
        let found = self.read().keys.get(key_id).filter(|k| *k.record.org_id == *org_id).map(StoredKey::info);
        ready(Ok(found))
    }

    fn revoke_key<'a>(&'a self, org_id: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = now_secs();
        let found = match self.write().keys.get_mut(key_id) {
            Some(k) if *k.record.org_id == *org_id => {
                k.record.revoked_at.get_or_insert(now);
                true
            }
            _ => false,
        };
        ready(Ok(found))
    }

    fn record_key_use<'a>(&'a self, key_id: &'a str, at: i64) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Some(k) = self.write().keys.get_mut(key_id) {
            k.last_used_at = Some(k.last_used_at.map_or(at, |t| t.max(at)));
        }
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_account_conformance_suite() {
        crate::conformance::accounts(Arc::new(MemoryAuthStore::new())).await;
    }
}
