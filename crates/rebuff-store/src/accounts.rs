//! Accounts: organisations, users, API keys as their management sees them, sessions
//! ([`AccountStore`]), the errors of managing them, and password hashing.
//!
//! Every account backend (SQLite, PostgreSQL, [`MemoryAuthStore`](crate::MemoryAuthStore))
//! implements [`AccountStore`], so a server holds an `Arc<dyn AccountStore>` and switches
//! backends without converting.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ipnet::IpNet;

use crate::key::{LIVE_PREFIX, TEST_PREFIX};
use crate::{BoxFuture, IdempotencyRecord, KeyStore, Outcomes, SessionStore, StoreError, StoredResponse};

/// An organisation: the tenant that keys, users and resources belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// `org_` and 12 base62 characters.
    pub id: String,
    /// Its unique name.
    pub name: String,
}

/// A user, short of the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `usr_` and 12 base62 characters.
    pub id: String,
    /// The user's organisation.
    pub org_id: String,
    /// The email as given at creation.
    pub email: String,
    /// The account is disabled: its logins and sessions are refused.
    pub disabled: bool,
    /// Unix seconds of creation.
    pub created_at: i64,
}

/// The result of a password login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Right email and password, account enabled.
    Ok(UserInfo),
    /// No such email, or the wrong password: the two are not told apart, not even by the
    /// time taken.
    UnknownOrWrongPassword,
    /// Right email and password, but the account is disabled.
    Disabled(UserInfo),
}

/// A key to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The organisation the key acts for.
    pub org_id: String,
    /// A label for its owner (`ci`, `dashboard`...).
    pub name: String,
    /// Granted scopes (`read`, `write`, `admin`); no whitespace in a scope.
    pub scopes: Vec<String>,
    /// Unix seconds after which the key is expired.
    pub expires_at: Option<i64>,
    /// Client networks allowed to use the key; empty allows any.
    pub allowed_ips: Vec<IpNet>,
    /// A live key (`rb_live_`) rather than a test key (`rb_test_`).
    pub live: bool,
}

/// What is known about a key, short of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The public id (the part after the prefix).
    pub id: String,
    /// The organisation the key acts for.
    pub org_id: String,
    /// Its label.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Unix seconds after which the key is expired.
    pub expires_at: Option<i64>,
    /// Unix seconds at which the key was revoked.
    pub revoked_at: Option<i64>,
    /// Client networks allowed to use the key; empty allows any.
    pub allowed_ips: Vec<IpNet>,
    /// A live key.
    pub live: bool,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last use recorded with `record_key_use`.
    pub last_used_at: Option<i64>,
}

impl KeyInfo {
    /// The key's visible beginning, safe to show: `rb_test_` or `rb_live_` and the id.
    pub fn prefix(&self) -> String {
        let prefix = if self.live { LIVE_PREFIX } else { TEST_PREFIX };
        format!("{prefix}{}", self.id)
    }
}

/// Makes the response recorded for a key that [`AccountStore::create_key_once`] creates, from
/// what is known about the key: what a retry is answered. It is called inside the
/// transaction, and is given no secret: the key's text is never stored.
///
/// An error rolls the creation back.
pub type KeyReplay = Box<dyn FnOnce(&KeyInfo) -> Result<StoredResponse, StoreError> + Send>;

/// What [`AccountStore::create_key_once`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOnce {
    /// The key was created now, and its response recorded in the same transaction.
    Created {
        /// What is known about the key.
        info: KeyInfo,
        /// The key's text, shown once.
        text: String,
    },
    /// A key was created before under this idempotency key, with the same payload: nothing
    /// was created; this is the response recorded then.
    Replay(StoredResponse),
    /// The idempotency key was recorded with another payload: nothing was created.
    Mismatch,
}

/// Account or key management failed.
///
/// The variants other than [`Error::Store`] are the caller's mistakes and map to 4xx
/// responses; [`Error::Store`] is a failure of the database, masked for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user with this email (ignoring case) exists already.
    #[error("a user with this email exists already")]
    EmailTaken,
    /// An organisation with this name exists already.
    #[error("an organisation with this name exists already")]
    OrgNameTaken,
    /// No organisation has this id.
    #[error("no such organisation")]
    OrgNotFound,
    /// No user has this id.
    #[error("no such user")]
    UserNotFound,
    /// An argument cannot be stored (names the argument: `scope`, `name`...).
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// Something with this identity exists already (409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::EmailTaken | Error::OrgNameTaken)
    }

    /// The organisation or user named does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::OrgNotFound | Error::UserNotFound)
    }
}

/// Manages accounts: organisations, users and their logins, API keys, sessions.
///
/// It extends [`KeyStore`] and [`SessionStore`], the lookups of authentication, so one
/// `Arc<dyn AccountStore>` serves both the management routes and the authentication layer
/// (it coerces to `Arc<dyn KeyStore>` and `Arc<dyn SessionStore>`), and [`Outcomes`], which
/// finds the responses that [`create_key_once`](Self::create_key_once) recorded. The futures
/// are boxed so the trait stays object safe; the conformance suite's `accounts` (feature
/// `conformance`) is its contract in tests.
pub trait AccountStore: KeyStore + SessionStore + Outcomes {
    /// Creates an organisation named `name` (`org_` and 12 base62 characters as its id).
    ///
    /// # Errors
    /// [`Error::OrgNameTaken`] when the name is taken, [`Error::Invalid`] for an empty name,
    /// [`Error::Store`] when the database fails.
    fn create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, Error>>;

    /// The organisation named `name`, created if there is none.
    ///
    /// # Errors
    /// As [`create_org`](Self::create_org), short of the name being taken.
    fn get_or_create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, Error>>;

    /// The organisation named `name`.
    ///
    /// # Errors
    /// The database failed.
    fn find_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>>;

    /// The organisation with this id.
    ///
    /// # Errors
    /// The database failed.
    fn get_org<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>>;

    /// Creates a user of `org_id` with an Argon2id hash of `password`.
    ///
    /// # Errors
    /// [`Error::OrgNotFound`], [`Error::EmailTaken`] (ignoring case), [`Error::Invalid`] for
    /// an empty email, [`Error::Store`] when the database fails.
    fn create_user<'a>(
        &'a self,
        org_id: &'a str,
        email: &'a str,
        password: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<UserInfo, Error>>;

    /// The user with this id.
    ///
    /// # Errors
    /// The database failed.
    fn get_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Option<UserInfo>, StoreError>>;

    /// Disables or enables a user (a disabled user's logins and sessions are refused);
    /// whether the user exists.
    ///
    /// # Errors
    /// The database failed.
    fn set_user_disabled<'a>(
        &'a self,
        user_id: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Checks a password login. An unknown email costs as much time as a wrong password.
    ///
    /// # Errors
    /// [`Error::Store`] when the database fails or a stored hash is damaged.
    fn verify_login<'a>(
        &'a self,
        email: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<LoginOutcome, Error>>;

    /// Opens a session for `user_id` lasting `ttl`; returns the session token (the cookie)
    /// and the CSRF token, both shown once: only their hashes are stored.
    ///
    /// # Errors
    /// [`Error::UserNotFound`], [`Error::Store`] when the database fails.
    fn create_session<'a>(
        &'a self,
        user_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(String, String), Error>>;

    /// Ends the session whose token hashes to `token_hash` (sign-out); whether it existed.
    ///
    /// # Errors
    /// The database failed.
    fn delete_session<'a>(&'a self, token_hash: &'a [u8; 32]) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Creates a key; returns what is known about it and its text, shown once.
    ///
    /// # Errors
    /// [`Error::OrgNotFound`], [`Error::Invalid`] for an empty scope or one with whitespace,
    /// [`Error::Store`] when the database fails.
    fn create_key(&self, new: NewKey) -> BoxFuture<'_, Result<(KeyInfo, String), Error>>;

    /// Creates a key once per idempotency key: in one transaction, looks `record.key` up
    /// among the recorded outcomes and, when it is there (a run that raced this one committed
    /// first, or a retry), creates nothing and answers it ([`KeyOnce::Replay`], or
    /// [`KeyOnce::Mismatch`] for another fingerprint); otherwise creates the key and records
    /// the response `replay` makes for it, kept for `record.ttl`. The key and its outcome
    /// commit together or not at all, and the idempotency key is the outcome's primary key, so
    /// two runs can never both create a key. [`Outcomes::find`] reads the outcome until it
    /// expires.
    ///
    /// # Errors
    /// As [`create_key`](Self::create_key); an error of `replay` as [`Error::Store`].
    fn create_key_once(
        &self,
        new: NewKey,
        record: IdempotencyRecord,
        replay: KeyReplay,
    ) -> BoxFuture<'_, Result<KeyOnce, Error>>;

    /// The keys of `org_id`, revoked ones included, oldest first.
    ///
    /// # Errors
    /// The database failed.
    fn list_keys<'a>(&'a self, org_id: &'a str) -> BoxFuture<'a, Result<Vec<KeyInfo>, StoreError>>;

    /// The key `key_id` of `org_id` (`None` for another organisation's key).
    ///
    /// # Errors
    /// The database failed.
    fn get_key<'a>(
        &'a self,
        org_id: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, StoreError>>;

    /// Revokes the key `key_id` of `org_id`; whether such a key exists (revoking twice keeps
    /// the first time).
    ///
    /// # Errors
    /// The database failed.
    fn revoke_key<'a>(&'a self, org_id: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Records that the key was used at `at` (Unix seconds).
    ///
    /// # Errors
    /// The database failed.
    fn record_key_use<'a>(&'a self, key_id: &'a str, at: i64) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// An Argon2id hash (of a random password nobody knows) with the same parameters as
/// [`Argon2::default`], verified against when the email is unknown so that an unknown
/// account costs as much time as a wrong password.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Gw5Ycg6y+9hSw2quG79dtg$+f2GDoXD+8uomvIXslF9+4Gt+v2fPYPOLGBfxL+w3uY";

/// The email as compared: uniqueness and login ignore case and surrounding space.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// An Argon2id hash of `password` with a fresh random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::backend(format!("argon2 salt: {e}")))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::backend(format!("argon2: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (whose parameters it uses); `None` when
/// `hash` does not parse (a damaged row: the backend reports it as such).
pub fn verify_password(password: &str, hash: &str) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    Some(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        let dummy = PasswordHash::new(DUMMY_HASH).expect("dummy hash parses");
        let real = hash_password("x").expect("hash");
        let real = PasswordHash::new(&real).expect("real hash parses");
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }

    #[test]
    fn emails_compare_without_case() {
        assert_eq!(email_key(" Ann@Example.COM "), "ann@example.com");
    }

    #[test]
    fn a_damaged_hash_is_not_a_wrong_password() {
        assert_eq!(verify_password("x", "not a PHC string"), None);
        let hash = hash_password("right").expect("hash");
        assert_eq!(verify_password("right", &hash), Some(true));
        assert_eq!(verify_password("wrong", &hash), Some(false));
    }
}
