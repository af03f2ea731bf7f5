//! API keys: [`KeyStore`] and their management. Only the SHA-256 of a key's secret is
//! stored; the key text is returned once, by [`AccountStore::create_key`](rebuff_store::AccountStore::create_key).
//! The responses of idempotent creations ([`AccountStore::create_key_once`](rebuff_store::AccountStore::create_key_once))
//! are recorded in the creation's transaction with [`outcomes::record`](crate::outcomes::record).

use ipnet::IpNet;
use rebuff_store::accounts::{KeyInfo, KeyOnce, KeyReplay, NewKey};
use rebuff_store::key;
use rebuff_store::{BoxFuture, IdempotencyRecord, KeyChanges, KeyRecord, KeyStore, StoreError};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::{Error, SqliteStore, corrupt, immediate, map_err, now_nanos, outcomes, unix_secs};

const COLUMNS: &str = "id, org_id, name, secret_hash, scopes, expires_at, revoked_at, allowed_ips, \
                       live, created_at, last_used_at";

/// A row as stored, before parsing.
struct RawKey {
    id: String,
    org_id: String,
    name: String,
    secret_hash: Vec<u8>,
    scopes: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    allowed_ips: String,
    live: bool,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl RawKey {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawKey {
            id: row.get(0)?,
            org_id: row.get(1)?,
            name: row.get(2)?,
            secret_hash: row.get(3)?,
            scopes: row.get(4)?,
            expires_at: row.get(5)?,
            revoked_at: row.get(6)?,
            allowed_ips: row.get(7)?,
            live: row.get(8)?,
            created_at: row.get(9)?,
            last_used_at: row.get(10)?,
        })
    }

    fn allowed_ips(&self) -> Result<Vec<IpNet>, StoreError> {
        self.allowed_ips
            .split_whitespace()
            .map(|net| net.parse().map_err(|_| corrupt("allowed_ips")))
            .collect()
    }

    fn scopes(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_owned).collect()
    }

    fn into_record(self) -> Result<KeyRecord, StoreError> {
        let secret_hash =
            <[u8; 32]>::try_from(self.secret_hash.as_slice()).map_err(|_| corrupt("secret_hash"))?;
        Ok(KeyRecord {
            allowed_ips: self.allowed_ips()?,
            scopes: self.scopes().into(),
            id: self.id.into(),
            org_id: self.org_id.into(),
            secret_hash,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            live: self.live,
        })
    }

    fn into_info(self) -> Result<KeyInfo, StoreError> {
        Ok(KeyInfo {
            allowed_ips: self.allowed_ips()?,
            scopes: self.scopes(),
            id: self.id,
            org_id: self.org_id,
            name: self.name,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            live: self.live,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        })
    }
}

fn find(conn: &Connection, id: &str) -> Result<Option<RawKey>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"))
        .and_then(|mut stmt| stmt.query_row([id], RawKey::from_row).optional())
        .map_err(map_err)
}

impl KeyStore for SqliteStore {
    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
        // On the calling thread: see `SqliteStore::read`.
        let found = self.read(|conn| find(conn, id)?.map(RawKey::into_record).transpose());
        Box::pin(std::future::ready(found))
    }
}

/// A counter that triggers bump whenever a key is changed or removed (schema version 2): one
/// read of one row, on the calling thread like [`KeyStore::find_key`].
impl KeyChanges for SqliteStore {
    fn key_generation(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        let generation = self.read(|conn| {
            conn.prepare_cached("SELECT generation FROM key_changes WHERE id = 0")
                .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
                .map_err(map_err)
        });
        Box::pin(std::future::ready(generation.map(i64::cast_unsigned)))
    }
}

/// Refuses an empty scope or one with whitespace (scopes are stored separated by spaces).
fn check_scopes(new: &NewKey) -> Result<(), Error> {
    if new.scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
        return Err(Error::Invalid("scope"));
    }
    Ok(())
}

/// Inserts a new key of `new` (its scopes checked) in the transaction `tx`; what is stored and
/// the key's text.
fn insert_key(tx: &Connection, new: NewKey) -> Result<(KeyInfo, String), Error> {
    if !crate::accounts::org_exists(tx, &new.org_id)? {
        return Err(Error::OrgNotFound);
    }
    // A 12-character base62 id collides with odds of 1 in 3e21; look anyway, since the id is
    // the primary key.
    let mut generated = key::generate(new.live);
    while find(tx, &generated.id)?.is_some() {
        generated = key::generate(new.live);
    }
    let info = KeyInfo {
        id: generated.id,
        org_id: new.org_id,
        name: new.name,
        scopes: new.scopes,
        expires_at: new.expires_at,
        revoked_at: None,
        allowed_ips: new.allowed_ips,
        live: new.live,
        created_at: unix_secs(now_nanos()),
        last_used_at: None,
    };
    let ips = info.allowed_ips.iter().map(IpNet::to_string).collect::<Vec<_>>().join(" ");
    tx.execute(
        &format!("INSERT INTO api_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        rusqlite::params![
            info.id,
            info.org_id,
            info.name,
            &generated.secret_hash[..],
            info.scopes.join(" "),
            info.expires_at,
            info.revoked_at,
            ips,
            info.live,
            info.created_at,
            info.last_used_at,
        ],
    )
    .map_err(map_err)?;
    Ok((info, generated.text))
}

impl SqliteStore {
    /// Creates a key; returns what is stored and the key text, which is shown to its owner
    /// once: only the SHA-256 of its secret is kept.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`] for an unknown organisation, [`Error::Invalid`]`("scope")`
    /// for an empty scope or one with whitespace, [`Error::Store`] when the database fails.
    pub(crate) async fn create_key(&self, new: NewKey) -> Result<(KeyInfo, String), Error> {
        check_scopes(&new)?;
        self.run(move |conn| {
            let tx = immediate(conn)?;
            let created = insert_key(&tx, new)?;
            tx.commit().map_err(map_err)?;
            Ok(created)
        })
        .await
    }

    /// Creates a key and records the response `replay` makes for it, in one transaction,
    /// unless `record.key` has an unexpired outcome already: see
    /// [`AccountStore::create_key_once`](rebuff_store::AccountStore::create_key_once).
    ///
    /// # Errors
    ///
    /// As [`create_key`](Self::create_key); an error of `replay` as [`Error::Store`].
    pub(crate) async fn create_key_once(
        &self,
        new: NewKey,
        record: IdempotencyRecord,
        replay: KeyReplay,
    ) -> Result<KeyOnce, Error> {
        check_scopes(&new)?;
        self.run(move |conn| {
            // IMMEDIATE: the write lock is taken before the look-up, so no other run of the
            // same key can commit between the two.
            let tx = immediate(conn)?;
            if let Some(found) = outcomes::find(&tx, &record.key).map_err(map_err)? {
                return Ok(if found.fingerprint == record.fingerprint {
                    KeyOnce::Replay(found.response)
                } else {
                    KeyOnce::Mismatch
                });
            }
            let (info, text) = insert_key(&tx, new)?;
            let response = replay(&info)?;
            outcomes::record(&tx, &record, &response).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(KeyOnce::Created { info, text })
        })
        .await
    }

    /// The keys of an organisation, revoked ones included, oldest first. Never the secrets.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn list_keys(&self, org_id: &str) -> Result<Vec<KeyInfo>, StoreError> {
        let org_id = org_id.to_owned();
        self.run(move |conn| {
            let raws = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE org_id = ?1 ORDER BY created_at, rowid"
                ))
                .and_then(|mut stmt| {
                    stmt.query_map([&org_id], RawKey::from_row)?.collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)?;
            raws.into_iter().map(RawKey::into_info).collect()
        })
        .await
    }

    /// One key of an organisation; `None` for a key of another organisation, as for a
    /// missing one.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn get_key(&self, org_id: &str, key_id: &str) -> Result<Option<KeyInfo>, StoreError> {
        let (org_id, key_id) = (org_id.to_owned(), key_id.to_owned());
        self.run(move |conn| match find(conn, &key_id)? {
            Some(raw) if raw.org_id == org_id => raw.into_info().map(Some),
            _ => Ok(None),
        })
        .await
    }

    /// Revokes a key of an organisation. `true` when the organisation has this key (revoked
    /// now, or before: the first revocation time is kept); `false` for a key of another
    /// organisation, as for a missing one.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn revoke_key(&self, org_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let (org_id, key_id) = (org_id.to_owned(), key_id.to_owned());
        self.run(move |conn| {
            let tx = immediate(conn)?;
            let found = tx
                .execute(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?3) \
                     WHERE id = ?1 AND org_id = ?2",
                    rusqlite::params![key_id, org_id, unix_secs(now_nanos())],
                )
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(found > 0)
        })
        .await
    }

    /// Records that a key was used at `at` (Unix seconds), for [`KeyInfo::last_used_at`].
    /// A write per request: a server may prefer to call it once a minute per key.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn record_key_use(&self, key_id: &str, at: i64) -> Result<(), StoreError> {
        let key_id = key_id.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?2), ?2) WHERE id = ?1",
                rusqlite::params![key_id, at],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}
