//! [`QuotaStore`]: usage counters per organisation and period.

use rebuff_store::{BoxFuture, QuotaStore, StoreError, Usage};
use rusqlite::{Connection, OptionalExtension};

use crate::{SqliteStore, corrupt, immediate, map_err};

fn consume(
    conn: &mut Connection,
    org: &str,
    period: &str,
    amount: u64,
    limit: u64,
) -> Result<Usage, StoreError> {
    let tx = immediate(conn)?;
    let used: Option<i64> = tx
        .prepare_cached("SELECT used FROM usage WHERE org = ?1 AND period = ?2")
        .and_then(|mut stmt| stmt.query_row((org, period), |row| row.get(0)).optional())
        .map_err(map_err)?;
    let used = u64::try_from(used.unwrap_or(0)).map_err(|_| corrupt("usage"))?;
    // SQLite integers are i64: a total past i64::MAX is refused like one past the limit.
    let after = used
        .checked_add(amount)
        .filter(|after| *after <= limit)
        .and_then(|after| i64::try_from(after).ok().map(|stored| (after, stored)));
    let usage = match after {
        Some((after, stored)) => {
            if amount > 0 {
                tx.prepare_cached(
                    "INSERT INTO usage (org, period, used) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (org, period) DO UPDATE SET used = excluded.used",
                )
                .and_then(|mut stmt| stmt.execute((org, period, stored)))
                .map_err(map_err)?;
            }
            Usage { granted: true, used: after, limit }
        }
        None => Usage { granted: false, used, limit },
    };
    tx.commit().map_err(map_err)?;
    Ok(usage)
}

impl QuotaStore for SqliteStore {
    fn consume<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        let (org, period) = (org.to_owned(), period.to_owned());
        Box::pin(self.run(move |conn| consume(conn, &org, &period, amount, limit)))
    }
}
