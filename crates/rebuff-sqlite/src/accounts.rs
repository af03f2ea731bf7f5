//! Organisations, users, password logins and browser sessions ([`SessionStore`]).

use std::time::Duration;

use rebuff_store::accounts::{
    DUMMY_HASH, LoginOutcome, Org, UserInfo, email_key, hash_password, verify_password,
};
use rebuff_store::key::{hash_secret, token};
use rebuff_store::{
    AccountStore, BoxFuture, IdempotencyRecord, KeyInfo, KeyOnce, KeyReplay, NewKey, SessionRecord,
    SessionStore, StoreError,
};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::{Error, SqliteStore, corrupt, immediate, map_err, now_nanos, random_alnum, unix_secs};

pub(crate) fn org_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    conn.query_row("SELECT 1 FROM orgs WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(map_err)
}

fn org_by(conn: &Connection, column: &str, value: &str) -> Result<Option<Org>, StoreError> {
    // `column` is one of ours, never input.
    conn.query_row(&format!("SELECT id, name FROM orgs WHERE {column} = ?1"), [value], |row| {
        Ok(Org { id: row.get(0)?, name: row.get(1)? })
    })
    .optional()
    .map_err(map_err)
}

fn insert_org(conn: &Connection, name: &str) -> Result<Org, StoreError> {
    let org = Org { id: format!("org_{}", random_alnum(12)), name: name.to_owned() };
    conn.execute(
        "INSERT INTO orgs (id, name, created_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![org.id, org.name, unix_secs(now_nanos())],
    )
    .map_err(map_err)?;
    Ok(org)
}

const USER_COLUMNS: &str = "id, org_id, email, disabled, created_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserInfo> {
    Ok(UserInfo {
        id: row.get(0)?,
        org_id: row.get(1)?,
        email: row.get(2)?,
        disabled: row.get(3)?,
        created_at: row.get(4)?,
    })
}

impl SqliteStore {
    /// Creates an organisation.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNameTaken`] when the name is in use, [`Error::Invalid`]`("name")` for an
    /// empty name, [`Error::Store`] when the database fails.
    pub(crate) async fn create_org(&self, name: &str) -> Result<Org, Error> {
        if name.trim().is_empty() {
            return Err(Error::Invalid("name"));
        }
        let name = name.to_owned();
        self.run(move |conn| {
            let tx = immediate(conn)?;
            if org_by(&tx, "name", &name)?.is_some() {
                return Err(Error::OrgNameTaken);
            }
            let org = insert_org(&tx, &name)?;
            tx.commit().map_err(map_err)?;
            Ok(org)
        })
        .await
    }

    /// The organisation with this name, created if there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`]`("name")` for an empty name, [`Error::Store`] when the database
    /// fails.
    pub(crate) async fn get_or_create_org(&self, name: &str) -> Result<Org, Error> {
        if name.trim().is_empty() {
            return Err(Error::Invalid("name"));
        }
        let name = name.to_owned();
        self.run(move |conn| {
            let tx = immediate(conn)?;
            let org = match org_by(&tx, "name", &name)? {
                Some(org) => org,
                None => insert_org(&tx, &name)?,
            };
            tx.commit().map_err(map_err)?;
            Ok(org)
        })
        .await
    }

    /// The organisation with this name.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn find_org(&self, name: &str) -> Result<Option<Org>, StoreError> {
        let name = name.to_owned();
        self.run(move |conn| org_by(conn, "name", &name)).await
    }

    /// The organisation with this id.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn get_org(&self, id: &str) -> Result<Option<Org>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| org_by(conn, "id", &id)).await
    }

    /// Creates a user with an Argon2id hash of `password` (random salt, PHC string).
    ///
    /// # Errors
    ///
    /// [`Error::EmailTaken`] when a user has this email already, ignoring case;
    /// [`Error::OrgNotFound`] for an unknown organisation; [`Error::Invalid`]`("email")`
    /// for an empty email; [`Error::Store`] when the database fails.
    pub(crate) async fn create_user(
        &self,
        org_id: &str,
        email: &str,
        password: &str,
        disabled: bool,
    ) -> Result<UserInfo, Error> {
        let key = email_key(email);
        if key.is_empty() {
            return Err(Error::Invalid("email"));
        }
        let (org_id, email, password) = (org_id.to_owned(), email.to_owned(), password.to_owned());
        self.blocking(move |inner| {
            // Hash before taking the connection: Argon2 takes tens of milliseconds on purpose.
            let hash = hash_password(&password)?;
            let mut conn = inner.lock();
            let tx = immediate(&mut conn)?;
            if !org_exists(&tx, &org_id)? {
                return Err(Error::OrgNotFound);
            }
            let taken = tx
                .query_row("SELECT 1 FROM users WHERE email_key = ?1", [&key], |_| Ok(()))
                .optional()
                .map_err(map_err)?;
            if taken.is_some() {
                return Err(Error::EmailTaken);
            }
            let user = UserInfo {
                id: format!("usr_{}", random_alnum(12)),
                org_id,
                email,
                disabled,
                created_at: unix_secs(now_nanos()),
            };
            tx.execute(
                "INSERT INTO users (id, org_id, email, email_key, password_hash, disabled, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    user.id,
                    user.org_id,
                    user.email,
                    key,
                    hash,
                    user.disabled,
                    user.created_at
                ],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(user)
        })
        .await
    }

    /// The user with this id.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn get_user(&self, user_id: &str) -> Result<Option<UserInfo>, StoreError> {
        let user_id = user_id.to_owned();
        self.run(move |conn| {
            conn.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                [&user_id],
                user_from_row,
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }

    /// Disables or enables a user; `false` when there is no such user.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        self.run(move |conn| {
            let n = conn
                .execute("UPDATE users SET disabled = ?2 WHERE id = ?1", rusqlite::params![user_id, disabled])
                .map_err(map_err)?;
            Ok(n > 0)
        })
        .await
    }

    /// Checks an email (ignoring case) and password. An unknown email is checked against
    /// a dummy hash, so that it takes as long as a wrong password; a disabled account is
    /// reported only with the right password.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database fails or the stored hash does not parse.
    pub(crate) async fn verify_login(&self, email: &str, password: &str) -> Result<LoginOutcome, Error> {
        let (key, password) = (email_key(email), password.to_owned());
        self.blocking(move |inner| {
            let found = {
                let conn = inner.lock();
                conn.query_row(
                    &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email_key = ?1"),
                    [&key],
                    |row| Ok((user_from_row(row)?, row.get::<_, String>(5)?)),
                )
                .optional()
                .map_err(map_err)?
            };
            // Verify without holding the connection: Argon2 is slow on purpose.
            let Some((user, hash)) = found else {
                let _ = verify_password(&password, DUMMY_HASH);
                return Ok(LoginOutcome::UnknownOrWrongPassword);
            };
            Ok(match verify_password(&password, &hash).ok_or_else(|| corrupt("password_hash"))? {
                false => LoginOutcome::UnknownOrWrongPassword,
                true if user.disabled => LoginOutcome::Disabled(user),
                true => LoginOutcome::Ok(user),
            })
        })
        .await
    }

    /// Starts a session for a user, valid for `ttl`; returns the session token (the cookie
    /// value) and the CSRF token. Only their SHA-256 hashes are stored.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`] for an unknown user, [`Error::Store`] when the database
    /// fails.
    pub(crate) async fn create_session(
        &self,
        user_id: &str,
        ttl: Duration,
    ) -> Result<(String, String), Error> {
        let user_id = user_id.to_owned();
        self.run(move |conn| {
            let (session, csrf) = (token(), token());
            let now = unix_secs(now_nanos());
            let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
            let tx = immediate(conn)?;
            let user = tx
                .query_row("SELECT 1 FROM users WHERE id = ?1", [&user_id], |_| Ok(()))
                .optional()
                .map_err(map_err)?;
            if user.is_none() {
                return Err(Error::UserNotFound);
            }
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf_hash, expires_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    &hash_secret(&session)[..],
                    user_id,
                    &hash_secret(&csrf)[..],
                    expires_at,
                    now
                ],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok((session, csrf))
        })
        .await
    }

    /// Ends the session whose token hashes to `token_hash`; `false` if there was none.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        let token_hash = *token_hash;
        self.run(move |conn| {
            let n = conn
                .execute("DELETE FROM sessions WHERE token_hash = ?1", [&token_hash[..]])
                .map_err(map_err)?;
            Ok(n > 0)
        })
        .await
    }
}

impl SessionStore for SqliteStore {
    fn find_session<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        let token_hash = *token_hash;
        // On the calling thread: see `SqliteStore::read`.
        Box::pin(std::future::ready(self.read(|conn| {
            let found = conn
                .prepare_cached(
                    "SELECT s.user_id, u.org_id, s.csrf_hash, s.expires_at, u.disabled \
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
                )
                .and_then(|mut stmt| {
                    stmt.query_row([&token_hash[..]], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, bool>(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(map_err)?;
            let Some((user_id, org_id, csrf, expires_at, user_disabled)) = found else {
                return Ok(None);
            };
            let csrf_hash = <[u8; 32]>::try_from(csrf.as_slice()).map_err(|_| corrupt("csrf_hash"))?;
            Ok(Some(SessionRecord { token_hash, user_id, org_id, csrf_hash, expires_at, user_disabled }))
        })))
    }
}

/// The account operations of [`SqliteStore`]; see [`AccountStore`] for their contract.
impl AccountStore for SqliteStore {
    fn create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, Error>> {
        Box::pin(SqliteStore::create_org(self, name))
    }

    fn get_or_create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, Error>> {
        Box::pin(SqliteStore::get_or_create_org(self, name))
    }

    fn find_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>> {
        Box::pin(SqliteStore::find_org(self, name))
    }

    fn get_org<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>> {
        Box::pin(SqliteStore::get_org(self, id))
    }

    fn create_user<'a>(
        &'a self,
        org_id: &'a str,
        email: &'a str,
        password: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<UserInfo, Error>> {
        Box::pin(SqliteStore::create_user(self, org_id, email, password, disabled))
    }

    fn get_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Option<UserInfo>, StoreError>> {
        Box::pin(SqliteStore::get_user(self, user_id))
    }

    fn set_user_disabled<'a>(
        &'a self,
        user_id: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(SqliteStore::set_user_disabled(self, user_id, disabled))
    }

    fn verify_login<'a>(
        &'a self,
        email: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<LoginOutcome, Error>> {
        Box::pin(SqliteStore::verify_login(self, email, password))
    }

    fn create_session<'a>(
        &'a self,
        user_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(String, String), Error>> {
        Box::pin(SqliteStore::create_session(self, user_id, ttl))
    }

    fn delete_session<'a>(&'a self, token_hash: &'a [u8; 32]) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(SqliteStore::delete_session(self, token_hash))
    }

    fn create_key(&self, new: NewKey) -> BoxFuture<'_, Result<(KeyInfo, String), Error>> {
        Box::pin(SqliteStore::create_key(self, new))
    }

    fn create_key_once(
        &self,
        new: NewKey,
        record: IdempotencyRecord,
        replay: KeyReplay,
    ) -> BoxFuture<'_, Result<KeyOnce, Error>> {
        Box::pin(SqliteStore::create_key_once(self, new, record, replay))
    }

    fn list_keys<'a>(&'a self, org_id: &'a str) -> BoxFuture<'a, Result<Vec<KeyInfo>, StoreError>> {
        Box::pin(SqliteStore::list_keys(self, org_id))
    }

    fn get_key<'a>(
        &'a self,
        org_id: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, StoreError>> {
        Box::pin(SqliteStore::get_key(self, org_id, key_id))
    }

    fn revoke_key<'a>(&'a self, org_id: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(SqliteStore::revoke_key(self, org_id, key_id))
    }

    fn record_key_use<'a>(&'a self, key_id: &'a str, at: i64) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(SqliteStore::record_key_use(self, key_id, at))
    }
}
