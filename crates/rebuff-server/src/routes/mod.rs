//! Handlers. Each returns `Result<_, ApiError>` naming a typed catalog code; the layers render it.

pub(crate) mod auth;
pub(crate) mod datasets;
#[cfg(feature = "fault-routes")]
pub(crate) mod faults;
pub(crate) mod keys;
pub(crate) mod meta;
pub(crate) mod models;
pub(crate) mod projects;
pub(crate) mod webhooks;

use std::fmt;

use rebuff::FieldError;
use rebuff_axum::{ApiError, Code};
use serde::Deserializer;
use serde::de::{self, Unexpected, Visitor};

use crate::state::AppState;

/// Runs a short read-only lookup on the calling thread (see `SqliteStore::read`); a failure
/// is a masked `database_error` (or `service_unavailable`).
pub(crate) fn db_read<T>(
    state: &AppState,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> Result<T, ApiError> {
    state.store().read(f).map_err(ApiError::from)
}

/// Runs a query on the store; a failure is a masked `database_error`.
pub(crate) async fn db<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
{
    state.store().with_conn(f).await.map_err(ApiError::from)
}

/// Checks a path id's shape so a malformed id is `invalid_id` (400), not a 404.
pub(crate) fn path_id(prefix: &str, raw: &str, what: &str) -> Result<String, ApiError> {
    if crate::db::is_id(prefix, raw) {
        return Ok(raw.to_owned());
    }
    let mut err = ApiError::new(Code::InvalidId)
        .detail(format!("Not a valid {what} ID: expected `{prefix}_` followed by 12 lowercase hex digits."));
    let p = err.problem_mut();
    p.param = Some("id".to_owned());
    p.fields.push(FieldError::new(rebuff::Location::Path, "/id", "format", format!("not a {what} ID")));
    Err(err)
}

/// The 404 for a resource that does not exist or belongs to another organisation: the two
/// are answered identically.
pub(crate) fn not_found(code: Code, what: &str, id: &str) -> ApiError {
    ApiError::new(code).detail(format!("{what} with ID '{id}' was not found."))
}

/// Deserializes a JSON integer, also when written with a zero fraction (`5.0`, `1e3`): JSON
/// Schema's `integer`, which `/openapi.json` declares, counts those as integers, and so do the
/// clients generated from it. A fraction (`1.5`) is still `wrong_field_type`, and an integer
/// outside `i64` is `invalid_field_value`.
pub(crate) fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntegerVisitor)
}

/// [`integer`] for an optional field (`null` or absent is `None`).
pub(crate) fn optional_integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_option(OptionalInteger)
}

struct IntegerVisitor;

impl Visitor<'_> for IntegerVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("i64")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // 2^63 is exact in f64; every integral value below it (and at or above -2^63) converts
        // exactly.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(E::invalid_type(Unexpected::Float(v), &self));
        }
        if !(-LIMIT..LIMIT).contains(&v) {
            return Err(E::invalid_value(Unexpected::Float(v), &self));
        }
        Ok(v as i64)
    }
}

struct OptionalInteger;

impl<'de> Visitor<'de> for OptionalInteger {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("i64 or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        integer(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct N {
        #[serde(deserialize_with = "integer")]
        n: i64,
        #[serde(default, deserialize_with = "optional_integer")]
        m: Option<i64>,
    }

    fn n(json: &str) -> Result<N, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_may_be_written_with_a_zero_fraction() {
        assert_eq!(n(r#"{"n": 5}"#).map(|v| (v.n, v.m)), Ok((5, None)));
        assert_eq!(n(r#"{"n": 5.0, "m": 1e3}"#).map(|v| (v.n, v.m)), Ok((5, Some(1000))));
        assert_eq!(n(r#"{"n": -9223372036854775808, "m": null}"#).map(|v| v.n), Ok(i64::MIN));
        assert!(n(r#"{"n": 1.5}"#).is_err_and(|e| e.starts_with("invalid type: floating point `1.5`")));
        assert!(n(r#"{"n": "5"}"#).is_err_and(|e| e.starts_with("invalid type: string")));
        assert!(n(r#"{"n": 9223372036854775808}"#).is_err_and(|e| e.starts_with("invalid value")));
        assert!(n(r#"{"n": 1e300}"#).is_err_and(|e| e.starts_with("invalid value")));
    }

    /// Found by Schemathesis: without correctly rounded float parsing, `4409696590477594.0`
    /// (an integer, exactly representable) was read as `...593.5` and refused as a fraction.
    #[test]
    fn large_integers_with_a_zero_fraction_are_read_exactly() {
        assert_eq!(n(r#"{"n": 4409696590477594.0}"#).map(|v| v.n), Ok(4_409_696_590_477_594));
        assert_eq!(n(r#"{"n": 9007199254740992.0}"#).map(|v| v.n), Ok(9_007_199_254_740_992));
    }
}
