//! [`RateLimitStore`] and [`QuotaStore`]: one round trip per decision.

use std::time::Duration;

use rebuff_store::{
    Admission, BeginRequest, BoxFuture, Decision, Quota, QuotaStore, RateLimitStore, StoreError, Usage,
};

use crate::{PgStore, corrupt, pg};

fn micros(n: i64) -> Duration {
    Duration::from_micros(u64::try_from(n).unwrap_or(0))
}

impl RateLimitStore for PgStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(async move {
            let period = i64::try_from(quota.period.as_micros()).unwrap_or(i64::MAX / 4);
            if quota.limit == 0 || period == 0 {
                return Ok(rebuff_store::gcra(None, now_nanos, quota).1);
            }
            let now = i64::try_from(now_nanos / 1000).unwrap_or(i64::MAX / 4);
            let limit = i64::from(quota.limit);
            self.timed(async {
                let client = self.client().await?;
                let stmt = client
                    .prepare_cached(
                        // The guard is a lateral source of the call's argument: it runs first.
                        "SELECT allowed, remaining, reset_after, retry_after \
                         FROM (SELECT rebuff_in_time($5) AS ok) d, \
                         LATERAL rebuff_gcra($1, $2, $3, CASE WHEN d.ok THEN $4::bigint END) g",
                    )
                    .await
                    .map_err(pg)?;
                let deadline = self.deadline_us();
                let row =
                    client.query_one(&stmt, &[&key, &limit, &period, &now, &deadline]).await.map_err(pg)?;
                decision_from_row(&row, quota)
            })
            .await
        })
    }

    fn check_and_begin<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now_nanos: u128,
        begin: BeginRequest<'a>,
    ) -> Option<BoxFuture<'a, Result<Admission, StoreError>>> {
        let period = i64::try_from(quota.period.as_micros()).unwrap_or(i64::MAX / 4);
        if quota.limit == 0 || period == 0 {
            return None;
        }
        let now = i64::try_from(now_nanos / 1000).unwrap_or(i64::MAX / 4);
        let limit = i64::from(quota.limit);
        Some(Box::pin(self.timed(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT allowed, remaining, reset_after, retry_after, \
                     outcome, status, header_names, header_values, body \
                     FROM (SELECT rebuff_in_time($8) AS ok) d, \
                     LATERAL rebuff_check_and_begin($1, $2, $3, CASE WHEN d.ok THEN $4::bigint END, $5, $6, $7) g",
                )
                .await
                .map_err(pg)?;
            let lock_ms = crate::idempotency::millis(begin.lock_ttl);
            let deadline = self.deadline_us();
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
                [&key, &limit, &period, &now, &begin.key, &&begin.fingerprint[..], &lock_ms, &deadline];
            let row = client.query_one(&stmt, &args).await.map_err(pg)?;
            let decision = decision_from_row(&row, quota)?;
            let begin =
                if decision.allowed { Some(crate::idempotency::begin_from_row(&row, 4)?) } else { None };
            Ok(Admission { decision, begin })
        })))
    }
}

/// What `rebuff_gcra` answered, from its first four columns.
fn decision_from_row(row: &tokio_postgres::Row, quota: Quota) -> Result<Decision, StoreError> {
    let allowed: bool = row.try_get(0).map_err(pg)?;
    let remaining: i64 = row.try_get(1).map_err(pg)?;
    let reset_after: i64 = row.try_get(2).map_err(pg)?;
    let retry_after: i64 = row.try_get(3).map_err(pg)?;
    Ok(Decision {
        allowed,
        limit: quota.limit,
        remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
        reset_after: micros(reset_after),
        retry_after: (retry_after >= 0).then(|| micros(retry_after)),
    })
}

impl QuotaStore for PgStore {
    fn consume<'a>(
        &'a self,
        org: &'a str,
        period: &'a str,
        amount: u64,
        limit: u64,
    ) -> BoxFuture<'a, Result<Usage, StoreError>> {
        Box::pin(async move {
            // BIGINT counters: a limit past i64::MAX is i64::MAX, an amount past it is refused.
            let stored_limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let Ok(stored_amount) = i64::try_from(amount) else {
                return self.usage(org, period, limit).await;
            };
            let granted = self
                .timed(async {
                    let client = self.client().await?;
                    // `used <= limit - amount` cannot overflow, unlike `used + amount <= limit`.
                    let stmt = client
                        .prepare_cached(
                            "INSERT INTO usage AS u (org, period, used) \
                             SELECT $1::text, $2::text, $3::bigint WHERE $3::bigint <= $4::bigint \
                             AND rebuff_in_time($5) \
                             ON CONFLICT (org, period) DO UPDATE SET used = u.used + excluded.used \
                             WHERE u.used <= $4::bigint - excluded.used RETURNING used",
                        )
                        .await
                        .map_err(pg)?;
                    let row = client
                        .query_opt(
                            &stmt,
                            &[&org, &period, &stored_amount, &stored_limit, &self.deadline_us()],
                        )
                        .await
                        .map_err(pg)?;
                    row.map(|r| r.try_get::<_, i64>(0).map_err(pg)).transpose()
                })
                .await?;
            match granted {
                Some(used) => {
                    let used = u64::try_from(used).map_err(|_| corrupt("usage"))?;
                    Ok(Usage { granted: true, used, limit })
                }
                None => self.usage(org, period, limit).await,
            }
        })
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
        Box::pin(self.consume_charge_once((org, period, charge), amount, limit, ttl))
    }
}

impl PgStore {
    /// [`QuotaStore::consume_once`]: one call of `rebuff_consume_once` (schema version 6).
    async fn consume_charge_once(
        &self,
        (org, period, charge): (&str, &str, &str),
        amount: u64,
        limit: u64,
        ttl: Duration,
    ) -> Result<Usage, StoreError> {
        let stored_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let Ok(stored_amount) = i64::try_from(amount) else {
            return self.usage(org, period, limit).await;
        };
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        let (granted, used) = self
            .timed(async {
                let client = self.client().await?;
                let stmt = client
                    .prepare_cached(
                        "SELECT o_granted, o_used FROM rebuff_consume_once($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .await
                    .map_err(pg)?;
                let row = client
                    .query_one(
                        &stmt,
                        &[
                            &org,
                            &period,
                            &stored_amount,
                            &stored_limit,
                            &charge,
                            &ttl_ms,
                            &self.deadline_us(),
                        ],
                    )
                    .await
                    .map_err(pg)?;
                Ok::<_, StoreError>((
                    row.try_get::<_, bool>(0).map_err(pg)?,
                    row.try_get::<_, i64>(1).map_err(pg)?,
                ))
            })
            .await?;
        let used = u64::try_from(used).map_err(|_| corrupt("usage"))?;
        Ok(Usage { granted, used, limit })
    }

    /// A refusal: the usage as it stands.
    async fn usage(&self, org: &str, period: &str, limit: u64) -> Result<Usage, StoreError> {
        self.timed(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("SELECT used FROM usage WHERE org = $1 AND period = $2")
                .await
                .map_err(pg)?;
            let used = match client.query_opt(&stmt, &[&org, &period]).await.map_err(pg)? {
                Some(row) => row.try_get::<_, i64>(0).map_err(pg)?,
                None => 0,
            };
            let used = u64::try_from(used).map_err(|_| corrupt("usage"))?;
            Ok(Usage { granted: false, used, limit })
        })
        .await
    }
}
