//! API keys: [`KeyStore`] and their management. Only the SHA-256 of a key's secret is
//! stored; the key text is returned once, by [`AccountStore::create_key`](rebuff_store::AccountStore::create_key).
//! The responses of idempotent creations ([`AccountStore::create_key_once`](rebuff_store::AccountStore::create_key_once))
//! are recorded in `outcomes`, in the creation's transaction, and found through
//! [`Outcomes`].

use bytes::Bytes;
use ipnet::IpNet;
use rebuff_store::accounts::{KeyInfo, KeyOnce, KeyReplay, NewKey};
use rebuff_store::key;
use std::time::Duration;

use rebuff_store::{
    BoxFuture, IdempotencyRecord, KeyCacheHandle, KeyChanges, KeyRecord, KeyStore, Outcome, Outcomes,
    StoreError, StoredResponse,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::{Client, Error, PgStore, corrupt, pg, unix_secs};

/// At most this many expired outcomes are deleted per key creation, so that one creation
/// never pays for a long backlog (`purge_expired` deletes the rest).
const PURGE_BATCH: i64 = 64;

/// The columns of an outcome, as `outcome_from_row` reads them.
const OUTCOME_COLUMNS: &str = "o.fingerprint, o.status, o.header_names, o.header_values, o.body";

fn outcome_from_row(row: &Row) -> Result<Outcome, StoreError> {
    let fingerprint: Vec<u8> = row.try_get(0).map_err(pg)?;
    let fingerprint =
        <[u8; 32]>::try_from(fingerprint.as_slice()).map_err(|_| corrupt("key outcome fingerprint"))?;
    let status: i32 = row.try_get(1).map_err(pg)?;
    let status = u16::try_from(status).map_err(|_| corrupt("key outcome status"))?;
    let names: Vec<String> = row.try_get(2).map_err(pg)?;
    let values: Vec<String> = row.try_get(3).map_err(pg)?;
    if names.len() != values.len() {
        return Err(corrupt("key outcome headers"));
    }
    let body: Vec<u8> = row.try_get(4).map_err(pg)?;
    let response =
        StoredResponse { status, headers: names.into_iter().zip(values).collect(), body: Bytes::from(body) };
    Ok(Outcome { fingerprint, response })
}

/// What a recorded outcome answers a run with `fingerprint`.
fn answer(found: Outcome, fingerprint: &[u8; 32]) -> KeyOnce {
    if found.fingerprint == *fingerprint { KeyOnce::Replay(found.response) } else { KeyOnce::Mismatch }
}

const COLUMNS: &str = "id, org_id, name, secret_hash, scopes, expires_at, revoked_at, allowed_ips, \
                       live, created_at, last_used_at";

fn info_from_row(row: &Row) -> Result<(KeyInfo, Vec<u8>), StoreError> {
    let ips: Vec<String> = row.try_get(7).map_err(pg)?;
    let allowed_ips =
        ips.iter().map(|net| net.parse().map_err(|_| corrupt("allowed_ips"))).collect::<Result<_, _>>()?;
    let info = KeyInfo {
        id: row.try_get(0).map_err(pg)?,
        org_id: row.try_get(1).map_err(pg)?,
        name: row.try_get(2).map_err(pg)?,
        scopes: row.try_get(4).map_err(pg)?,
        expires_at: row.try_get(5).map_err(pg)?,
        revoked_at: row.try_get(6).map_err(pg)?,
        allowed_ips,
        live: row.try_get(8).map_err(pg)?,
        created_at: row.try_get(9).map_err(pg)?,
        last_used_at: row.try_get(10).map_err(pg)?,
    };
    Ok((info, row.try_get(3).map_err(pg)?))
}

async fn find(client: &Client, id: &str) -> Result<Option<(KeyInfo, Vec<u8>)>, StoreError> {
    let stmt =
        client.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1")).await.map_err(pg)?;
    client.query_opt(&stmt, &[&id]).await.map_err(pg)?.as_ref().map(info_from_row).transpose()
}

/// Refuses an empty scope or one with whitespace.
fn check_scopes(new: &NewKey) -> Result<(), Error> {
    if new.scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
        return Err(Error::Invalid("scope"));
    }
    Ok(())
}

impl KeyStore for PgStore {
    fn find_key<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>> {
        Box::pin(self.timed(async move {
            let client = self.client().await?;
            let Some((info, hash)) = find(&client, id).await? else { return Ok(None) };
            let secret_hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| corrupt("secret_hash"))?;
            Ok(Some(KeyRecord {
                id: info.id.into(),
                org_id: info.org_id.into(),
                secret_hash,
                scopes: info.scopes.into(),
                expires_at: info.expires_at,
                revoked_at: info.revoked_at,
                allowed_ips: info.allowed_ips,
                live: info.live,
            }))
        }))
    }
}

/// A counter that a trigger bumps whenever a key is changed or removed (schema version 3).
impl KeyChanges for PgStore {
    fn key_generation(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.timed(async move {
            let client = self.client().await?;
            let stmt =
                client.prepare_cached("SELECT generation FROM key_changes WHERE id = 0").await.map_err(pg)?;
            let generation: i64 = client.query_one(&stmt, &[]).await.map_err(pg)?.try_get(0).map_err(pg)?;
            Ok(generation.cast_unsigned())
        }))
    }
}

/// The responses recorded by [`AccountStore::create_key_once`](rebuff_store::AccountStore::create_key_once):
/// one indexed lookup, expiry on the database's clock.
impl Outcomes for PgStore {
    fn find<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Outcome>, StoreError>> {
        Box::pin(self.timed(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {OUTCOME_COLUMNS} FROM outcomes o WHERE o.key = $1 AND o.expires_at > now()"
                ))
                .await
                .map_err(pg)?;
            client.query_opt(&stmt, &[&key]).await.map_err(pg)?.as_ref().map(outcome_from_row).transpose()
        }))
    }
}

/// How long the listener waits before connecting again after losing its connection.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// How often an idle listener looks whether its cache is gone (the server's state dropped),
/// to close its connection.
const ORPHAN_CHECK: Duration = Duration::from_secs(5);

impl PgStore {
    /// Empties `cache` whenever a key of this schema changes, as PostgreSQL announces it
    /// (`LISTEN rebuff_keys_<schema>`), on a connection of its own, so that a revocation is
    /// seen in one round trip instead of at the cache's next poll. Runs until the cache is
    /// dropped (checked every few seconds) or the runtime stops; when the connection drops it
    /// empties the cache (a change may have been missed) and connects again a second later.
    /// The cache's polling still bounds how long a change can go unseen while the connection
    /// is down.
    pub fn listen_key_changes(&self, cache: KeyCacheHandle) -> tokio::task::JoinHandle<()> {
        let (config, channel) = (self.inner.config.clone(), format!("rebuff_keys_{}", self.inner.schema));
        tokio::spawn(async move {
            loop {
                match config.connect(NoTls).await {
                    Ok((client, mut connection)) => {
                        // The connection yields the notifications; it runs beside the client.
                        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                        let pump = tokio::spawn(async move {
                            while let Some(message) =
                                std::future::poll_fn(|cx| connection.poll_message(cx)).await
                            {
                                match message {
                                    Ok(AsyncMessage::Notification(_)) => {
                                        if tx.send(()).is_err() {
                                            break;
                                        }
                                    }
                                    Ok(_) => {}
                                    Err(e) => {
                                        tracing::debug!(error = %e, "key-change listener: connection lost");
                                        break;
                                    }
                                }
                            }
                        });
                        // The channel name is built from a checked schema name: a plain identifier.
                        let listen = format!("LISTEN \"{channel}\"");
                        match client.batch_execute(&listen).await {
                            Ok(()) => {
                                // Changes made before LISTEN took effect were not announced.
                                cache.invalidate();
                                loop {
                                    match tokio::time::timeout(ORPHAN_CHECK, rx.recv()).await {
                                        Ok(Some(())) => cache.invalidate(),
                                        Ok(None) => break,
                                        Err(_) if cache.is_orphaned() => break,
                                        Err(_) => {}
                                    }
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "key-change listener: LISTEN failed"),
                        }
                        drop(client);
                        pump.abort();
                    }
                    Err(e) => tracing::debug!(error = %e, "key-change listener: cannot connect"),
                }
                if cache.is_orphaned() {
                    return;
                }
                cache.invalidate();
                tokio::time::sleep(RELISTEN_DELAY).await;
            }
        })
    }
}

/// Inserts a new key for `new` with `client` (a connection or a transaction), guarded by the
/// call's `deadline` (`rebuff_in_time`): a statement that starts late inserts nothing. Returns
/// what is stored and the key text.
async fn insert_key(
    client: &impl deadpool_postgres::GenericClient,
    new: NewKey,
    deadline: i64,
) -> Result<(KeyInfo, String), Error> {
    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO api_keys ({COLUMNS}) \
             SELECT $1::text, $2::text, $3::text, $4::bytea, $5::text[], $6::bigint, NULL, \
             $7::text[], $8::boolean, $9::bigint, NULL WHERE rebuff_in_time($10) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .await
        .map_err(pg)?;
    let ips: Vec<String> = new.allowed_ips.iter().map(IpNet::to_string).collect();
    let now = unix_secs();
    // A 12-character base62 id collides with odds of 1 in 3e21; if it ever does, nothing is
    // inserted and another is drawn.
    let generated = loop {
        let generated = key::generate(new.live);
        let inserted = client
            .execute(
                &stmt,
                &[
                    &generated.id,
                    &new.org_id,
                    &new.name,
                    &&generated.secret_hash[..],
                    &new.scopes,
                    &new.expires_at,
                    &ips,
                    &new.live,
                    &now,
                    &deadline,
                ],
            )
            .await;
        match inserted {
            Ok(0) => {}
            Ok(_) => break generated,
            // An unknown organisation, or one deleted in between.
            Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => return Err(Error::OrgNotFound),
            Err(e) => return Err(Error::Store(pg(e))),
        }
    };
    let info = KeyInfo {
        id: generated.id,
        org_id: new.org_id,
        name: new.name,
        scopes: new.scopes,
        expires_at: new.expires_at,
        revoked_at: None,
        allowed_ips: new.allowed_ips,
        live: new.live,
        created_at: now,
        last_used_at: None,
    };
    Ok((info, generated.text))
}

impl PgStore {
    /// Creates a key; returns what is stored and the key text, which is shown to its owner
    /// once: only the SHA-256 of its secret is kept.
    ///
    /// # Errors
    ///
    /// [`Error::OrgNotFound`] for an unknown organisation, [`Error::Invalid`]`("scope")`
    /// for an empty scope or one with whitespace, [`Error::Store`] when the database fails.
    pub(crate) async fn create_key(&self, new: NewKey) -> Result<(KeyInfo, String), Error> {
        check_scopes(&new)?;
        self.timed(async {
            let client = self.client().await?;
            insert_key(&client, new, self.deadline_us()).await
        })
        .await
    }

    /// Creates a key and records the response `replay` makes for it, in one transaction,
    /// unless `record.key` has an unexpired outcome already: see
    /// [`AccountStore::create_key_once`](rebuff_store::AccountStore::create_key_once).
    ///
    /// Every statement is guarded by the call's deadline (`rebuff_in_time`), so one that
    /// starts late changes nothing. Two runs that race both find no outcome and both insert a
    /// key; the second insert of the outcome waits for the first run's commit, then inserts
    /// nothing, and the second run rolls its key back and answers the first run's outcome.
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
        self.timed(async {
            let mut client = self.client().await?;
            let deadline = self.deadline_us();
            let tx = client.transaction().await.map_err(pg)?;
            // The guard is a lateral source of the look-up: it runs first.
            let find = tx
                .prepare_cached(&format!(
                    "SELECT {OUTCOME_COLUMNS} FROM (SELECT rebuff_in_time($2) AS ok) d, \
                     LATERAL (SELECT * FROM outcomes \
                     WHERE key = CASE WHEN d.ok THEN $1::text END AND expires_at > now()) o"
                ))
                .await
                .map_err(pg)?;
            let found = tx.query_opt(&find, &[&record.key, &deadline]).await.map_err(pg)?;
            if let Some(row) = found {
                return Ok(answer(outcome_from_row(&row)?, &record.fingerprint));
            }

            let (info, text) = insert_key(&tx, new, deadline).await?;
            let response = replay(&info)?;

            let purge = tx
                .prepare_cached(
                    "DELETE FROM outcomes WHERE expires_at <= now() AND rebuff_in_time($3) \
                     AND (key = $1 OR key IN (SELECT key FROM outcomes WHERE expires_at <= now() \
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
                )
                .await
                .map_err(pg)?;
            tx.execute(&purge, &[&record.key, &PURGE_BATCH, &deadline]).await.map_err(pg)?;
            let insert_outcome = tx
                .prepare_cached(
                    "INSERT INTO outcomes \
                     (key, fingerprint, status, header_names, header_values, body, expires_at) \
                     SELECT $1::text, $2::bytea, $3::integer, $4::text[], $5::text[], $6::bytea, \
                     now() + $7::bigint * interval '1 millisecond' WHERE rebuff_in_time($8) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .await
                .map_err(pg)?;
            let (names, values): (Vec<&str>, Vec<&str>) =
                response.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).unzip();
            let recorded = tx
                .execute(
                    &insert_outcome,
                    &[
                        &record.key,
                        &&record.fingerprint[..],
                        &i32::from(response.status),
                        &names,
                        &values,
                        &&response.body[..],
                        &crate::idempotency::millis(record.ttl),
                        &deadline,
                    ],
                )
                .await
                .map_err(pg)?;
            if recorded == 0 {
                // A run that raced this one committed its key and outcome first: this run's
                // key is rolled back, and the first one's outcome (visible now, to this new
                // statement) answers.
                let found = tx.query_opt(&find, &[&record.key, &deadline]).await.map_err(pg)?;
                tx.rollback().await.map_err(pg)?;
                return match found {
                    Some(row) => Ok(answer(outcome_from_row(&row)?, &record.fingerprint)),
                    None => Err(Error::Store(StoreError::unavailable(
                        "a concurrent creation under this idempotency key has not settled yet",
                    ))),
                };
            }
            tx.commit().await.map_err(pg)?;
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
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY seq"))
                .await
                .map_err(pg)?;
            let rows = client.query(&stmt, &[&org_id]).await.map_err(pg)?;
            rows.iter().map(|row| info_from_row(row).map(|(info, _)| info)).collect()
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
        self.timed(async {
            let client = self.client().await?;
            Ok(find(&client, key_id).await?.map(|(info, _)| info).filter(|info| info.org_id == org_id))
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
        self.timed(async {
            let client = self.client().await?;
            let n = client
                .execute(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3) WHERE id = $1 AND org_id = $2",
                    &[&key_id, &org_id, &unix_secs()],
                )
                .await
                .map_err(pg)?;
            Ok(n > 0)
        })
        .await
    }

    /// Records that a key was used at `at` (Unix seconds), for [`KeyInfo::last_used_at`].
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the database fails.
    pub(crate) async fn record_key_use(&self, key_id: &str, at: i64) -> Result<(), StoreError> {
        self.timed(async {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE api_keys SET last_used_at = greatest(coalesce(last_used_at, $2), $2) WHERE id = $1",
                    &[&key_id, &at],
                )
                .await
                .map_err(pg)?;
            Ok(())
        })
        .await
    }
}
