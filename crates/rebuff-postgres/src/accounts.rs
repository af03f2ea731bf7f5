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
use tokio_postgres::Row;

use crate::{Client, Error, PgStore, corrupt, is_unique_violation, pg, random_alnum, unix_secs};

pub(crate) async fn org_exists(client: &Client, id: &str) -> Result<bool, StoreError> {
    let stmt = client.prepare_cached("SELECT 1 FROM orgs WHERE id = $1").await.map_err(pg)?;
    Ok(client.query_opt(&stmt, &[&id]).await.map_err(pg)?.is_some())
}

fn org_from_row(row: &Row) -> Result<Org, StoreError> {
    Ok(Org { id: row.try_get(0).map_err(pg)?, name: row.try_get(1).map_err(pg)? })
}

const USER_COLUMNS: &str = "id, org_id, email, disabled, created_at";

fn user_from_row(row: &Row) -> Result<UserInfo, StoreError> {
    Ok(UserInfo {
        id: row.try_get(0).map_err(pg)?,
        org_id: row.try_get(1).map_err(pg)?,
        email: row.try_get(2).map_err(pg)?,
        disabled: row.try_get(3).map_err(pg)?,
        created_at: row.try_get(4).map_err(pg)?,
    })
}

impl PgStore {
    async fn org_by(&self, column: &str, value: &str) -> Result<Option<Org>, StoreError> {
        self.timed(async {
            let client = self.client().await?;
            // `column` is one of ours, never input.
            let stmt = client
                .prepare_cached(&format!("SELECT id, name FROM orgs WHERE {column} = $1"))
                .await
                .map_err(pg)?;
            client.query_opt(&stmt, &[&value]).await.map_err(pg)?.as_ref().map(org_from_row).transpose()
        })
        .await
    }

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
        self.timed(async {
            let client = self.client().await?;
            let org = Org { id: format!("org_{}", random_alnum(12)), name: name.to_owned() };
            match client
                .execute(
                    "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)",
                    &[&org.id, &org.name, &unix_secs()],
                )
                .await
            {
                Ok(_) => Ok(org),
                Err(e) if is_unique_violation(&e) => Err(Error::OrgNameTaken),
                Err(e) => Err(Error::Store(pg(e))),
            }
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
        if let Some(org) = self.find_org(name).await? {
            return Ok(org);
        }
        match self.create_org(name).await {
            // Created by someone else in between.
            Err(Error::OrgNameTaken) => self.find_org(name).await?.ok_or(Error::OrgNameTaken),
            other => other,
        }
    }

    /// The organisation with this name.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn find_org(&self, name: &str) -> Result<Option<Org>, StoreError> {
        self.org_by("name", name).await
    }

    /// The organisation with this id.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn get_org(&self, id: &str) -> Result<Option<Org>, StoreError> {
        self.org_by("id", id).await
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
        // Hashing is slow on purpose: off the async workers, and outside the deadline.
        let password = password.to_owned();
        let hash = Self::blocking(move || hash_password(&password).map_err(Error::from)).await?;
        self.timed(async {
            let client = self.client().await?;
            if !org_exists(&client, org_id).await? {
                return Err(Error::OrgNotFound);
            }
            let user = UserInfo {
                id: format!("usr_{}", random_alnum(12)),
                org_id: org_id.to_owned(),
                email: email.to_owned(),
                disabled,
                created_at: unix_secs(),
            };
            let inserted = client
                .execute(
                    "INSERT INTO users (id, org_id, email, email_key, password_hash, disabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&user.id, &user.org_id, &user.email, &key, &hash, &user.disabled, &user.created_at],
                )
                .await;
            match inserted {
                Ok(_) => Ok(user),
                Err(e) if is_unique_violation(&e) => Err(Error::EmailTaken),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
                    Err(Error::OrgNotFound)
                }
                Err(e) => Err(Error::Store(pg(e))),
            }
        })
        .await
    }

    /// The user with this id.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn get_user(&self, user_id: &str) -> Result<Option<UserInfo>, StoreError> {
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .await
                .map_err(pg)?;
            client.query_opt(&stmt, &[&user_id]).await.map_err(pg)?.as_ref().map(user_from_row).transpose()
        })
        .await
    }

    /// Disables or enables a user; `false` when there is no such user.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<bool, StoreError> {
        self.timed(async {
            let client = self.client().await?;
            let n = client
                .execute("UPDATE users SET disabled = $2 WHERE id = $1", &[&user_id, &disabled])
                .await
                .map_err(pg)?;
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
        let key = email_key(email);
        let found = self
            .timed(async {
                let client = self.client().await?;
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email_key = $1"
                    ))
                    .await
                    .map_err(pg)?;
                match client.query_opt(&stmt, &[&key]).await.map_err(pg)? {
                    Some(row) => Ok::<_, StoreError>(Some((
                        user_from_row(&row)?,
                        row.try_get::<_, String>(5).map_err(pg)?,
                    ))),
                    None => Ok(None),
                }
            })
            .await?;
        let password = password.to_owned();
        Self::blocking(move || {
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
        let (session, csrf) = (token(), token());
        let now = unix_secs();
        let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        self.timed(async {
            let client = self.client().await?;
            let inserted = client
                .execute(
                    "INSERT INTO sessions (token_hash, user_id, csrf_hash, expires_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&&hash_secret(&session)[..], &user_id, &&hash_secret(&csrf)[..], &expires_at, &now],
                )
                .await;
            match inserted {
                Ok(_) => Ok((session.clone(), csrf.clone())),
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
                    Err(Error::UserNotFound)
                }
                Err(e) => Err(Error::Store(pg(e))),
            }
        })
        .await
    }

    /// Ends the session whose token hashes to `token_hash`; `false` if there was none.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.timed(async {
            let client = self.client().await?;
            let n = client
                .execute("DELETE FROM sessions WHERE token_hash = $1", &[&&token_hash[..]])
                .await
                .map_err(pg)?;
            Ok(n > 0)
        })
        .await
    }
}

impl SessionStore for PgStore {
    fn find_session<'a>(
        &'a self,
        token_hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(self.timed(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT s.user_id, u.org_id, s.csrf_hash, s.expires_at, u.disabled \
                     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                )
                .await
                .map_err(pg)?;
            let Some(row) = client.query_opt(&stmt, &[&&token_hash[..]]).await.map_err(pg)? else {
                return Ok(None);
            };
            let csrf: Vec<u8> = row.try_get(2).map_err(pg)?;
            let csrf_hash = <[u8; 32]>::try_from(csrf.as_slice()).map_err(|_| corrupt("csrf_hash"))?;
            Ok(Some(SessionRecord {
                token_hash: *token_hash,
                user_id: row.try_get(0).map_err(pg)?,
                org_id: row.try_get(1).map_err(pg)?,
                csrf_hash,
                expires_at: row.try_get(3).map_err(pg)?,
                user_disabled: row.try_get(4).map_err(pg)?,
            }))
        }))
    }
}

/// The account operations of [`PgStore`]; see [`AccountStore`] for their contract.
impl AccountStore for PgStore {
    fn create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, Error>> {
        Box::pin(PgStore::create_org(self, name))
    }

    fn get_or_create_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Org, Error>> {
        Box::pin(PgStore::get_or_create_org(self, name))
    }

    fn find_org<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>> {
        Box::pin(PgStore::find_org(self, name))
    }

    fn get_org<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Org>, StoreError>> {
        Box::pin(PgStore::get_org(self, id))
    }

    fn create_user<'a>(
        &'a self,
        org_id: &'a str,
        email: &'a str,
        password: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<UserInfo, Error>> {
        Box::pin(PgStore::create_user(self, org_id, email, password, disabled))
    }

    fn get_user<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Option<UserInfo>, StoreError>> {
        Box::pin(PgStore::get_user(self, user_id))
    }

    fn set_user_disabled<'a>(
        &'a self,
        user_id: &'a str,
        disabled: bool,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(PgStore::set_user_disabled(self, user_id, disabled))
    }

    fn verify_login<'a>(
        &'a self,
        email: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<LoginOutcome, Error>> {
        Box::pin(PgStore::verify_login(self, email, password))
    }

    fn create_session<'a>(
        &'a self,
        user_id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(String, String), Error>> {
        Box::pin(PgStore::create_session(self, user_id, ttl))
    }

    fn delete_session<'a>(&'a self, token_hash: &'a [u8; 32]) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(PgStore::delete_session(self, token_hash))
    }

    fn create_key(&self, new: NewKey) -> BoxFuture<'_, Result<(KeyInfo, String), Error>> {
        Box::pin(PgStore::create_key(self, new))
    }

    fn create_key_once(
        &self,
        new: NewKey,
        record: IdempotencyRecord,
        replay: KeyReplay,
    ) -> BoxFuture<'_, Result<KeyOnce, Error>> {
        Box::pin(PgStore::create_key_once(self, new, record, replay))
    }

    fn list_keys<'a>(&'a self, org_id: &'a str) -> BoxFuture<'a, Result<Vec<KeyInfo>, StoreError>> {
        Box::pin(PgStore::list_keys(self, org_id))
    }

    fn get_key<'a>(
        &'a self,
        org_id: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyInfo>, StoreError>> {
        Box::pin(PgStore::get_key(self, org_id, key_id))
    }

    fn revoke_key<'a>(&'a self, org_id: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(PgStore::revoke_key(self, org_id, key_id))
    }

    fn record_key_use<'a>(&'a self, key_id: &'a str, at: i64) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(PgStore::record_key_use(self, key_id, at))
    }
}
