//! Monthly usage quotas: [`Quotas`] charges an organisation's usage (rows, requests, credits)
//! against a monthly limit and answers `quota_exceeded` (402) past it.
//!
//! Quotas are charged by handlers, not by a layer, because only the handler knows what an
//! operation costs (`n_samples` rows, say) and whether it is about to do it:
//!
//! ```
//! use std::sync::Arc;
//! use rebuff_axum::ApiError;
//! use rebuff_axum::quota::Quotas;
//! use rebuff_axum::store::memory::MemoryStore;
//!
//! # async fn generate(quotas: &Quotas, org: &str, n_samples: u64) -> Result<(), ApiError> {
//! quotas.charge(org, n_samples).await?;
//! // ... generate the rows ...
//! # Ok(())
//! # }
//! let quotas = Quotas::new(Arc::new(MemoryStore::new()), 100_000);
//! # let _ = quotas;
//! ```
//!
//! Periods are calendar months in UTC, named `YYYY-MM`: usage resets at midnight UTC on the
//! first of each month.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::{QuotaStore, Usage};
use crate::{ApiError, Code};

/// Charges usage against a monthly limit per organisation.
#[derive(Clone)]
pub struct Quotas {
    store: Arc<dyn QuotaStore>,
    monthly_limit: u64,
}

impl fmt::Debug for Quotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quotas").field("monthly_limit", &self.monthly_limit).finish_non_exhaustive()
    }
}

impl Quotas {
    /// The codes [`Quotas::charge`] can answer with (503 and 500 when its store fails), for
    /// [`ProblemLayer::builder`](crate::ProblemLayer::builder).
    pub const CODES: &'static [crate::Code] =
        &[crate::Code::QuotaExceeded, crate::Code::ServiceUnavailable, crate::Code::DatabaseError];

    /// Allows each organisation `monthly_limit` units per calendar month, counted in `store`.
    pub fn new(store: Arc<dyn QuotaStore>, monthly_limit: u64) -> Self {
        Quotas { store, monthly_limit }
    }

    /// The monthly limit.
    pub fn monthly_limit(&self) -> u64 {
        self.monthly_limit
    }

    /// Adds `amount` to `org`'s usage this month, unless that would pass the limit.
    ///
    /// # Errors
    ///
    /// `quota_exceeded` (402) when the charge would pass the limit, with a detail giving the
    /// usage and the limit; nothing is recorded then. A store failure gives the masked store
    /// error (503 or 500).
    pub async fn charge(&self, org: &str, amount: u64) -> Result<Usage, ApiError> {
        self.charge_at(org, amount, SystemTime::now()).await
    }

    /// [`charge`](Self::charge) as if at `time` (which picks the month).
    ///
    /// # Errors
    ///
    /// As [`charge`](Self::charge).
    pub async fn charge_at(&self, org: &str, amount: u64, time: SystemTime) -> Result<Usage, ApiError> {
        let period = period_at(time);
        let usage = self.store.consume(org, &period, amount, self.monthly_limit).await?;
        granted(usage, period, amount)
    }

    /// [`charge`](Self::charge), at most once per `charge` id of `org`: the id of a granted
    /// charge is remembered for `ttl`, and charging it again meanwhile records nothing and
    /// succeeds ([`QuotaStore::consume_once`]).
    ///
    /// For operations of several steps that must survive a retry: choose the id before the
    /// first attempt and keep it with the operation's progress (its recovery point), so that a
    /// retry after an unknown outcome (the store's reply lost, the process gone) cannot charge
    /// twice. `time` picks the month; pass the time the operation first started, so that a
    /// retry charges the same month.
    ///
    /// # Errors
    ///
    /// As [`charge`](Self::charge); a refused charge is not remembered.
    pub async fn charge_once_at(
        &self,
        org: &str,
        amount: u64,
        charge: &str,
        ttl: Duration,
        time: SystemTime,
    ) -> Result<Usage, ApiError> {
        let period = period_at(time);
        let usage = self.store.consume_once(org, &period, amount, self.monthly_limit, charge, ttl).await?;
        granted(usage, period, amount)
    }
}

/// The usage of a granted charge, or `quota_exceeded`.
fn granted(usage: Usage, period: String, amount: u64) -> Result<Usage, ApiError> {
    if usage.granted {
        return Ok(usage);
    }
    // The figures go in an extension member rather than the detail, so envelopes whose
    // message is the catalog's (dataxid's "Monthly row quota exceeded...") keep it.
    let mut err = ApiError::new(Code::QuotaExceeded);
    let usage = serde_json::json!({ "period": period, "used": usage.used, "limit": usage.limit, "requested": amount });
    err.problem_mut().extensions.insert("usage".to_owned(), usage);
    Err(err)
}

/// The quota period (UTC calendar month, `YYYY-MM`) that `time` falls in.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use rebuff_axum::quota::period_at;
///
/// assert_eq!(period_at(UNIX_EPOCH), "1970-01");
/// assert_eq!(period_at(UNIX_EPOCH + Duration::from_secs(1_708_425_060)), "2024-02");
/// ```
pub fn period_at(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    let (year, month, _) = civil_from_days(secs.div_euclid(86_400));
    format!("{year:04}-{month:02}")
}

/// The proleptic Gregorian date (year, month 1..=12, day 1..=31) of a day count since
/// 1970-01-01. Howard Hinnant's `civil_from_days`: it counts in 400-year eras starting on
/// 1 March, so that the leap day falls at the end of a year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in range by construction.
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn at(secs: i64) -> String {
        let time = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        period_at(time)
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // 2000 is a leap year (divisible by 400), 2100 is not.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_818), (2026, 12, 31));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // 1900-01-01 to 2200-12-31, checked against a naive calendar.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut days = -25_567; // 1900-01-01
        for year in 1900..=2200 {
            for month in 1..=12u32 {
                let len = match month {
                    2 if leap(year) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                for day in 1..=len {
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn month_boundaries() {
        // 2024-02-29T23:59:59Z and 2024-03-01T00:00:00Z.
        assert_eq!(at(1_709_251_199), "2024-02");
        assert_eq!(at(1_709_251_200), "2024-03");
        // 2025-12-31T23:59:59Z and 2026-01-01T00:00:00Z.
        assert_eq!(at(1_767_225_599), "2025-12");
        assert_eq!(at(1_767_225_600), "2026-01");
        // Before the epoch.
        assert_eq!(at(-1), "1969-12");
        assert_eq!(at(0), "1970-01");
    }

    #[tokio::test]
    async fn refuses_past_the_limit_and_records_nothing() {
        let quotas = Quotas::new(Arc::new(MemoryStore::new()), 100);
        let jan = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let usage = quotas.charge_at("org_1", 80, jan).await.expect("granted");
        assert_eq!((usage.used, usage.limit), (80, 100));
        let err = quotas.charge_at("org_1", 30, jan).await.expect_err("over the limit");
        assert_eq!(err.problem().code(), "quota_exceeded");
        assert_eq!(err.problem().detail, None, "the catalog's message stands");
        assert_eq!(
            err.problem().extensions["usage"],
            serde_json::json!({"period": "2026-01", "used": 80, "limit": 100, "requested": 30})
        );
        assert_eq!(quotas.charge_at("org_1", 20, jan).await.expect("granted").used, 100);
        // A new month starts from zero.
        let feb = jan + Duration::from_secs(31 * 86_400);
        assert_eq!(quotas.charge_at("org_1", 100, feb).await.expect("granted").used, 100);
    }
}
