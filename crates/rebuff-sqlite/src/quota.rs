//! [`QuotaStore`]: usage counters per organisation and period.

use std::time::Duration;

use rebuff_store::ratelimit::now_nanos;
use rebuff_store::{BoxFuture, QuotaStore, StoreError, Usage};
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::{SqliteStore, corrupt, immediate, map_err};

/// How many forgotten charge ids a charge deletes, at most: the table stays as large as the
/// charges of one id lifetime, at a bounded cost per charge.
const PURGE_BATCH: i64 = 100;

fn consume(
    conn: &mut Connection,
    org: &str,
    period: &str,
    amount: u64,
    limit: u64,
) -> Result<Usage, StoreError> {
    let tx = immediate(conn)?;
    let usage = consume_in(&tx, org, period, amount, limit)?;
    tx.commit().map_err(map_err)?;
    Ok(usage)
}

fn consume_once(
    conn: &mut Connection,
    (org, period, charge): (&str, &str, &str),
    amount: u64,
    limit: u64,
    ttl: Duration,
) -> Result<Usage, StoreError> {
    let now = i64::try_from(now_nanos()).unwrap_or(i64::MAX);
    let tx = immediate(conn)?;
    let remembered: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM quota_charges WHERE org = ?1 AND charge = ?2 AND expires_at > ?3")
        .and_then(|mut stmt| stmt.query_row((org, charge, now), |row| row.get(0)).optional())
        .map_err(map_err)?;
    let usage = if remembered.is_some() {
        Usage { granted: true, used: used(&tx, org, period)?, limit }
    } else {
        let usage = consume_in(&tx, org, period, amount, limit)?;
        if usage.granted {
            let until = now.saturating_add(i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX));
            tx.prepare_cached(
                "DELETE FROM quota_charges WHERE (org, charge) IN \
                 (SELECT org, charge FROM quota_charges WHERE expires_at <= ?1 LIMIT ?2)",
            )
            .and_then(|mut stmt| stmt.execute((now, PURGE_BATCH)))
            .map_err(map_err)?;
            tx.prepare_cached(
                "INSERT INTO quota_charges (org, charge, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (org, charge) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .and_then(|mut stmt| stmt.execute((org, charge, until)))
            .map_err(map_err)?;
        }
        usage
    };
    tx.commit().map_err(map_err)?;
    Ok(usage)
}

/// `org`'s usage in `period`.
fn used(tx: &Transaction<'_>, org: &str, period: &str) -> Result<u64, StoreError> {
    let used: Option<i64> = tx
        .prepare_cached("SELECT used FROM usage WHERE org = ?1 AND period = ?2")
        .and_then(|mut stmt| stmt.query_row((org, period), |row| row.get(0)).optional())
        .map_err(map_err)?;
    u64::try_from(used.unwrap_or(0)).map_err(|_| corrupt("usage"))
}

fn consume_in(
    tx: &Transaction<'_>,
    org: &str,
    period: &str,
    amount: u64,
    limit: u64,
) -> Result<Usage, StoreError> {
    let used = used(tx, org, period)?;
    // SQLite integers are i64: a total past i64::MAX is refused like one past the limit.
    let after = used
        .checked_add(amount)
        .filter(|after| *after <= limit)
        .and_then(|after| i64::try_from(after).ok().map(|stored| (after, stored)));
    Ok(match after {
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
    })
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

    fn consume_once<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
        charge: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        let (org, period, charge) = (org.to_owned(), period.to_owned(), charge.to_owned());
        Box::pin(self.run(move |conn| consume_once(conn, (&org, &period, &charge), amount, limit, ttl)))
    }
}
