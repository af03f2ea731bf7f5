//! [`RateLimitStore`]: GCRA, one theoretical arrival time per key, decided and written in one
//! transaction.

use rebuff_store::gcra;
use rebuff_store::{BoxFuture, Decision, Quota, RateLimitStore, StoreError};
use rusqlite::{Connection, OptionalExtension};

use crate::{SqliteStore, corrupt, immediate, map_err};

fn check(conn: &mut Connection, key: &str, quota: Quota, now_nanos: u128) -> Result<Decision, StoreError> {
    let tx = immediate(conn)?;
    let stored: Option<String> = tx
        .prepare_cached("SELECT tat_nanos FROM rate_limits WHERE key = ?1")
        .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
        .map_err(map_err)?;
    let tat = stored.map(|t| t.parse::<u128>().map_err(|_| corrupt("tat_nanos"))).transpose()?;
    let (new_tat, decision) = gcra(tat, now_nanos, quota);
    if let Some(new_tat) = new_tat {
        tx.prepare_cached(
            "INSERT INTO rate_limits (key, tat_nanos) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET tat_nanos = excluded.tat_nanos",
        )
        .and_then(|mut stmt| stmt.execute((key, new_tat.to_string())))
        .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)?;
    Ok(decision)
}

/// Deletes state that no longer limits anything: a theoretical arrival time in the past is
/// the same as none.
pub(crate) fn purge(conn: &Connection, now_nanos: u128) -> Result<usize, StoreError> {
    // The times are decimal text (a u128 does not fit SQLite's integers); without leading
    // zeros, a shorter number is smaller and equal lengths compare as text.
    conn.execute(
        "DELETE FROM rate_limits WHERE length(tat_nanos) < length(?1) \
         OR (length(tat_nanos) = length(?1) AND tat_nanos <= ?1)",
        [now_nanos.to_string()],
    )
    .map_err(map_err)
}

impl RateLimitStore for SqliteStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        let key = key.to_owned();
        Box::pin(self.run(move |conn| check(conn, &key, quota, now_nanos)))
    }
}
