//! [`IdempotencyStore`]: a lock while the first request runs, then its response for replay.
//! Expiry is on the database's clock, so instances with skewed clocks agree on it.

use std::time::Duration;

use bytes::Bytes;
use rebuff_store::{Begin, BoxFuture, IdempotencyStore, StoreError, StoredResponse};

use crate::{PgStore, corrupt, pg};

pub(crate) fn millis(d: Duration) -> i64 {
    // At least 1: a lifetime below a millisecond is one.
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4).max(1)
}

fn headers(
    names: Option<Vec<String>>,
    values: Option<Vec<String>>,
) -> Result<Vec<(String, String)>, StoreError> {
    let (names, values) = (names.unwrap_or_default(), values.unwrap_or_default());
    if names.len() != values.len() {
        return Err(corrupt("idempotent response headers"));
    }
    Ok(names.into_iter().zip(values).collect())
}

/// What `rebuff_idempotency_begin` answered, read from its five columns starting at `at`.
pub(crate) fn begin_from_row(row: &tokio_postgres::Row, at: usize) -> Result<Begin, StoreError> {
    let outcome: i32 = row.try_get(at).map_err(pg)?;
    Ok(match outcome {
        0 => Begin::Started,
        1 => Begin::InFlight,
        3 => Begin::Mismatch,
        2 => {
            let status: Option<i32> = row.try_get(at + 1).map_err(pg)?;
            let status =
                status.and_then(|s| u16::try_from(s).ok()).ok_or_else(|| corrupt("idempotent status"))?;
            let body: Option<Vec<u8>> = row.try_get(at + 4).map_err(pg)?;
            Begin::Completed(StoredResponse {
                status,
                headers: headers(row.try_get(at + 2).map_err(pg)?, row.try_get(at + 3).map_err(pg)?)?,
                body: Bytes::from(body.unwrap_or_default()),
            })
        }
        _ => return Err(corrupt("idempotency outcome")),
    })
}

impl IdempotencyStore for PgStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        lock_ttl: Duration,
    ) -> BoxFuture<'a, Result<Begin, StoreError>> {
        Box::pin(self.timed(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT outcome, status, header_names, header_values, body \
                     FROM (SELECT rebuff_in_time($4) AS ok) d, \
                     LATERAL rebuff_idempotency_begin(CASE WHEN d.ok THEN $1::text END, $2, $3) b",
                )
                .await
                .map_err(pg)?;
            let deadline = self.deadline_us();
            let row = client
                .query_one(&stmt, &[&key, &&fingerprint[..], &millis(lock_ttl), &deadline])
                .await
                .map_err(pg)?;
            begin_from_row(&row, 0)
        }))
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        response: StoredResponse,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.timed(async move {
            let client = self.client().await?;
            let (names, values): (Vec<&str>, Vec<&str>) =
                response.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).unzip();
            // The first completion stays: a live record that is done already is not overwritten.
            let stmt = client
                .prepare_cached(
                    "INSERT INTO idempotency AS i \
                     (key, fingerprint, state, status, header_names, header_values, body, expires_at) \
                     VALUES ($1, $2, 'done', $3, $4, $5, $6, now() + $7::bigint * interval '1 millisecond') \
                     ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'done', \
                     status = excluded.status, header_names = excluded.header_names, \
                     header_values = excluded.header_values, body = excluded.body, \
                     expires_at = excluded.expires_at \
                     WHERE i.state = 'locked' OR i.expires_at <= now()",
                )
                .await
                .map_err(pg)?;
            let status = i32::from(response.status);
            client
                .execute(
                    &stmt,
                    &[&key, &&fingerprint[..], &status, &names, &values, &&response.body[..], &millis(ttl)],
                )
                .await
                .map_err(pg)?;
            Ok(())
        }))
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.timed(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "DELETE FROM idempotency WHERE key = $1 AND state = 'locked' AND rebuff_in_time($2)",
                )
                .await
                .map_err(pg)?;
            client.execute(&stmt, &[&key, &self.deadline_us()]).await.map_err(pg)?;
            Ok(())
        }))
    }
}
