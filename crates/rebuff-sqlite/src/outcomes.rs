//! Outcomes of idempotent writes, recorded in the write's own transaction.
//!
//! An idempotency store alone cannot make a write exactly once: the write commits in one
//! place and its response is stored in another afterwards, and anything can fail in between.
//! Recording the response in the same transaction as the write closes that gap: the outcome
//! exists exactly when the side effect does. The `outcomes` table (created by
//! [`SqliteStore::open`]) holds them, keyed by the scoped idempotency key, so that two runs of
//! one key can never both commit.
//!
//! A handler that writes to the store's file does, in one `IMMEDIATE` transaction (the write
//! lock is taken before the look-up): [`find`] the request's key and answer the recorded
//! response if it is there; otherwise write, [`record`] the response, commit. The
//! [`IdempotencyLayer`](https://docs.rs/rebuff-axum/latest/rebuff_axum/idempotency/struct.IdempotencyLayer.html)
//! is given the store as its [`Outcomes`] and replays a recorded
//! response before running a request again, whatever its idempotency store kept. The reference
//! server's writes and [`AccountStore::create_key_once`](rebuff_store::AccountStore::create_key_once)
//! both work this way.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use rebuff_sqlite::rusqlite::TransactionBehavior;
//! use rebuff_sqlite::{SqliteStore, outcomes};
//! use rebuff_store::{IdempotencyRecord, Outcomes, StoredResponse};
//!
//! let store = SqliteStore::open_in_memory()?;
//! store.with_conn(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS widgets (name TEXT)")).await?;
//! // What the idempotency layer puts in the request's extensions.
//! let record = IdempotencyRecord { key: "org_1:key:abc:retry-1".into(), fingerprint: [7; 32], ttl: Duration::from_secs(86_400) };
//! let create = |record: IdempotencyRecord| store.with_conn(move |c| {
//!     let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
//!     if let Some(found) = outcomes::find(&tx, &record.key)? {
//!         return Ok(found.response); // ran before: answer what it answered
//!     }
//!     tx.execute("INSERT INTO widgets (name) VALUES ('sprocket')", [])?;
//!     let response = StoredResponse::json(201, br#"{"name":"sprocket"}"#.to_vec());
//!     outcomes::record(&tx, &record, &response)?;
//!     tx.commit()?;
//!     Ok(response)
//! });
//! let first = create(record.clone()).await?;
//! let retry = create(record.clone()).await?;
//! assert_eq!(first, retry);
//! let widgets: i64 = store.read_conn(|c| c.query_row("SELECT count(*) FROM widgets", [], |r| r.get(0)))?;
//! assert_eq!(widgets, 1);
//! // The idempotency layer finds it too, before running a retry.
//! assert!(store.find(&record.key).await?.is_some());
//! # Ok(()) }
//! ```

use bytes::Bytes;
use rebuff_store::{BoxFuture, IdempotencyRecord, Outcome, Outcomes, StoreError, StoredResponse};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension};

use crate::{SqliteStore, nanos_after, nanos_i64, now_nanos};

/// At most this many expired outcomes are deleted per recorded one, so that one write never
/// pays for a long backlog ([`SqliteStore::purge_expired`] deletes the rest).
const PURGE_BATCH: i64 = 64;

/// The unexpired outcome recorded for `key`, if any. In a write's transaction, call it before
/// writing, after taking the write lock (an `IMMEDIATE` transaction).
///
/// # Errors
///
/// SQLite's, or a stored row that does not parse (as a conversion failure).
pub fn find(conn: &Connection, key: &str) -> rusqlite::Result<Option<Outcome>> {
    let row = conn
        .prepare_cached(
            "SELECT fingerprint, status, headers, body FROM outcomes WHERE key = ?1 AND expires_at > ?2",
        )?
        .query_row((key, nanos_i64(now_nanos())), |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Vec<u8>>(3)?,
            ))
        })
        .optional()?;
    let Some((fingerprint, status, headers, body)) = row else { return Ok(None) };
    let bad = |column: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(column, Type::Blob, format!("stored outcome {what}").into())
    };
    let fingerprint = <[u8; 32]>::try_from(fingerprint.as_slice()).map_err(|_| bad(0, "fingerprint"))?;
    let status = u16::try_from(status).map_err(|_| bad(1, "status"))?;
    let headers = serde_json::from_str(&headers).map_err(|_| bad(2, "headers"))?;
    Ok(Some(Outcome { fingerprint, response: StoredResponse { status, headers, body: Bytes::from(body) } }))
}

/// Records `response` as the outcome of `record.key`, for `record.ttl`, in the transaction
/// `tx` that writes the side effect and found no unexpired outcome ([`find`]). An expired
/// outcome of the same key is replaced, and a bounded batch of other expired ones deleted. The
/// primary key refuses a second outcome of one key, so a run that raced another cannot commit.
///
/// # Errors
///
/// SQLite's: a unique-constraint violation when the key has an unexpired outcome.
pub fn record(
    tx: &Connection,
    record: &IdempotencyRecord,
    response: &StoredResponse,
) -> rusqlite::Result<()> {
    let now = now_nanos();
    let headers = serde_json::to_string(&response.headers)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(
        "DELETE FROM outcomes WHERE (key = ?1 AND expires_at <= ?2) OR key IN \
         (SELECT key FROM outcomes WHERE expires_at <= ?2 ORDER BY expires_at LIMIT ?3)",
    )?
    .execute((&record.key, nanos_i64(now), PURGE_BATCH))?;
    tx.prepare_cached(
        "INSERT INTO outcomes (key, fingerprint, status, headers, body, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        record.key,
        &record.fingerprint[..],
        response.status,
        headers,
        &response.body[..],
        nanos_after(now, record.ttl),
    ])?;
    Ok(())
}

/// The outcomes recorded in the store's file ([`record`]): one indexed read, on the calling
/// thread like [`KeyStore::find_key`](rebuff_store::KeyStore::find_key).
impl Outcomes for SqliteStore {
    fn find<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Outcome>, StoreError>> {
        Box::pin(std::future::ready(self.read_conn(|conn| find(conn, key))))
    }
}
