//! What the account backends (SQLite, PostgreSQL) have in common: organisations, users, API
//! keys as their management sees them, the errors of managing them, and password hashing.
//! Each backend re-exports these types, so a server can switch backends without converting.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ipnet::IpNet;

use crate::auth::key::{LIVE_PREFIX, TEST_PREFIX};
use crate::store::StoreError;
use crate::{ApiError, Code};

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

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::EmailTaken | Error::OrgNameTaken => {
                ApiError::new(Code::ResourceAlreadyExists).detail(e.to_string())
            }
            Error::OrgNotFound | Error::UserNotFound => ApiError::new(Code::ResourceNotFound),
            Error::Invalid(_) => ApiError::new(Code::InvalidFieldValue).detail(e.to_string()),
            Error::Store(e) => e.into(),
        }
    }
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
