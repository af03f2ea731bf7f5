//! [`IdempotencyStore`]: a lock while the first request runs, then its response for replay.
//!
//! Times are nanoseconds since the Unix epoch from this machine's clock. While a row is
//! locked its `expires_at` is its `locked_until`, so that one comparison tells a live row
//! from one to ignore (and [`SqliteStore::purge_expired`] removes both expired records and
//! dead locks).

use std::time::Duration;

use bytes::Bytes;
use rebuff_store::{Begin, BoxFuture, IdempotencyStore, StoreError, StoredResponse};
use rusqlite::{Connection, OptionalExtension};

use crate::{SqliteStore, corrupt, immediate, map_err, nanos_after, nanos_i64, now_nanos};

/// A row as stored.
struct Row {
    fingerprint: Vec<u8>,
    done: bool,
    status: Option<i64>,
    headers: Option<String>,
    body: Option<Vec<u8>>,
}

impl Row {
    fn response(self) -> Result<StoredResponse, StoreError> {
        let status = self.status.and_then(|s| u16::try_from(s).ok()).ok_or_else(|| corrupt("status"))?;
        let headers = match self.headers {
            Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("headers"))?,
            None => Vec::new(),
        };
        Ok(StoredResponse { status, headers, body: Bytes::from(self.body.unwrap_or_default()) })
    }
}

fn begin(
    conn: &mut Connection,
    key: &str,
    fingerprint: &[u8; 32],
    lock_ttl: Duration,
) -> Result<Begin, StoreError> {
    let now = now_nanos();
    let tx = immediate(conn)?;
    let live = tx
        .prepare_cached(
            "SELECT fingerprint, state, status, headers, body FROM idempotency \
             WHERE key = ?1 AND expires_at > ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row((key, nanos_i64(now)), |row| {
                Ok(Row {
                    fingerprint: row.get(0)?,
                    done: row.get::<_, String>(1)? == "done",
                    status: row.get(2)?,
                    headers: row.get(3)?,
                    body: row.get(4)?,
                })
            })
            .optional()
        })
        .map_err(map_err)?;
    let answer = match live {
        Some(row) if row.fingerprint != fingerprint[..] => Begin::Mismatch,
        Some(row) if row.done => Begin::Completed(row.response()?),
        Some(_) => Begin::InFlight,
        None => {
            // No record, or an expired one, or a lock whose holder died: take the lock.
            let until = nanos_after(now, lock_ttl);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency \
                 (key, fingerprint, state, locked_until, status, headers, body, expires_at) \
                 VALUES (?1, ?2, 'locked', ?3, NULL, NULL, NULL, ?3)",
            )
            .and_then(|mut stmt| stmt.execute((key, &fingerprint[..], until)))
            .map_err(map_err)?;
            Begin::Started
        }
    };
    tx.commit().map_err(map_err)?;
    Ok(answer)
}

fn complete(
    conn: &mut Connection,
    key: &str,
    fingerprint: &[u8; 32],
    response: &StoredResponse,
    ttl: Duration,
) -> Result<(), StoreError> {
    let now = now_nanos();
    let headers = serde_json::to_string(&response.headers)
        .map_err(|e| StoreError::backend(format!("idempotency headers: {e}")))?;
    // The first completion stays: a live record that is done already is not overwritten.
    conn.prepare_cached(
        "INSERT INTO idempotency (key, fingerprint, state, locked_until, status, headers, body, expires_at) \
         VALUES (?1, ?2, 'done', NULL, ?3, ?4, ?5, ?6) \
         ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'done', \
         locked_until = NULL, status = excluded.status, headers = excluded.headers, \
         body = excluded.body, expires_at = excluded.expires_at \
         WHERE idempotency.state = 'locked' OR idempotency.expires_at <= ?7",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            key,
            &fingerprint[..],
            response.status,
            headers,
            &response.body[..],
            nanos_after(now, ttl),
            nanos_i64(now),
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

impl IdempotencyStore for SqliteStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        lock_ttl: Duration,
    ) -> BoxFuture<'a, Result<Begin, StoreError>> {
        let (key, fingerprint) = (key.to_owned(), *fingerprint);
        Box::pin(self.run(move |conn| begin(conn, &key, &fingerprint, lock_ttl)))
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        response: StoredResponse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (key, fingerprint) = (key.to_owned(), *fingerprint);
        Box::pin(self.run(move |conn| complete(conn, &key, &fingerprint, &response, ttl)))
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let key = key.to_owned();
        Box::pin(self.run(move |conn| {
            conn.prepare_cached("DELETE FROM idempotency WHERE key = ?1 AND state = 'locked'")
                .and_then(|mut stmt| stmt.execute([key]))
                .map_err(map_err)?;
            Ok(())
        }))
    }
}
