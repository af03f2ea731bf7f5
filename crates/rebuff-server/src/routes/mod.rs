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

use std::fmt::{self, Write as _};

use axum::http::StatusCode;
use axum::response::Response;
use rebuff::FieldError;
use rebuff_axum::idempotency::{IdempotencyRecord, Recorded, replay_response};
use rebuff_axum::{ApiError, Code};
use serde::Deserializer;
use serde::de::{self, Unexpected, Visitor};

use crate::limits::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
use crate::state::AppState;

/// A list answer: `{"data": [...], "has_more": bool, "next_cursor": "..." | null}`, serialized
/// straight from the items.
///
/// Lists are in creation order, `(created_at, id)`, and paged with an opaque cursor naming the
/// last item's place in that order rather than the item itself (as Stripe's `starting_after`
/// does): a cursor stays valid when its item is deleted, and needs no lookup to resolve. An
/// item that existed when a walk began is seen exactly once however many are created
/// meanwhile; those created meanwhile come last, so a walk sees them if it has not ended yet.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Page<T> {
    /// At most `limit` items.
    #[schema(max_items = 100)] // LIST_LIMIT_MAX: utoipa takes literals only; a test compares them.
    pub(crate) data: Vec<T>,
    /// Whether there is a next page.
    pub(crate) has_more: bool,
    /// What to pass as `cursor` for the next page; `null` on the last one.
    #[schema(max_length = 258, pattern = "^c1[0-9a-f]*$")]
    pub(crate) next_cursor: Option<String>,
}

/// The query of a list: `limit` (1 to 100, 20 by default) and `cursor` (from `next_cursor`).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Paging {
    /// Items per page (default 20).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Where the page starts: the `next_cursor` of the previous page.
    #[param(value_type = String, required = false, pattern = "^c1[0-9a-f]*$", max_length = 258)]
    cursor: Option<String>,
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRequest {
    /// Items per page.
    pub(crate) limit: u32,
    /// The place, in creation order, after which the page starts.
    pub(crate) after: Option<(i64, String)>,
}

impl Paging {
    /// Checks the query: a `limit` out of range or a `cursor` this server did not make is
    /// `invalid_query_parameter` naming the parameter.
    pub(crate) fn request(&self) -> Result<PageRequest, ApiError> {
        let bad = |param: &str, detail: &str| {
            let mut err = ApiError::new(Code::InvalidQueryParameter).detail(detail);
            err.problem_mut().param = Some(param.into());
            err.problem_mut().fields.push(FieldError::new(
                rebuff::Location::Query,
                format!("/{param}"),
                if param == "limit" { "range" } else { "format" },
                detail,
            ));
            err
        };
        let limit = self.limit.unwrap_or(LIST_LIMIT_DEFAULT);
        if !(1..=LIST_LIMIT_MAX).contains(&limit) {
            return Err(bad("limit", &format!("limit must be between 1 and {LIST_LIMIT_MAX}")));
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(
                decode_cursor(c)
                    .ok_or_else(|| bad("cursor", "cursor must be a next_cursor this list returned"))?,
            ),
        };
        Ok(PageRequest { limit, after })
    }
}

/// The cursor of a place in creation order: `c1` then the hex of `created_at.id`, opaque to
/// clients (they only pass back what they were given) and cheap to check.
pub(crate) fn encode_cursor(created_at: i64, id: &str) -> String {
    let text = format!("{created_at}.{id}");
    let mut out = String::with_capacity(2 + text.len() * 2);
    out.push_str("c1");
    for b in text.bytes() {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The place a cursor names; `None` for anything [`encode_cursor`] did not make.
pub(crate) fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let hex = cursor.strip_prefix("c1")?;
    if hex.len() % 2 != 0 || hex.len() > 256 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once('.')?;
    let well_formed = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    well_formed.then_some(())?;
    Some((at.parse().ok()?, id.to_owned()))
}

impl<T> Page<T> {
    /// A page of `items`, read in creation order with one more than `limit` to tell whether
    /// another page follows; `place` gives an item's `(created_at, id)`.
    pub(crate) fn of(mut items: Vec<T>, limit: u32, place: impl Fn(&T) -> (i64, &str)) -> Self {
        let has_more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if has_more {
            items.last().map(|last| {
                let (at, id) = place(last);
                encode_cursor(at, id)
            })
        } else {
            None
        };
        Page { data: items, has_more, next_cursor }
    }
}

/// The headers the stack puts on a response of an authenticated route: `Content-Type` and
/// `Content-Length`, the rate limit's five, `X-Request-Id` and `X-Content-Type-Options`.
const RESPONSE_HEADERS: usize = 9;

/// A response of `status` whose body is JSON written already. Its header map is made with
/// room for every header the stack adds ([`RESPONSE_HEADERS`]): allocated once, where one
/// grown header by header would be allocated and rehashed twice on the way out.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut headers = http::HeaderMap::with_capacity(RESPONSE_HEADERS);
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    let mut res = Response::new(axum::body::Body::from(body));
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

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

/// What [`write_once`]'s transaction came to.
enum Done {
    /// Written now, with this body; its outcome recorded when there was a key.
    Written(Vec<u8>),
    /// The key's outcome was recorded before: nothing written.
    Found(rebuff_axum::idempotency::Outcome),
    /// Refused by the write itself (rolled back, nothing recorded).
    Refused(ApiError),
}

/// Runs a write and answers `status` with its JSON, exactly once per idempotency key: for a
/// request with a key (`record`), the outcome is recorded in the write's own transaction,
/// after checking, in that same transaction, that the key has none yet. So the side effect and
/// its outcome commit together or not at all, and a retry, whatever became of the
/// idempotency store's record meanwhile, is answered the recorded response and writes nothing.
/// Without a key it is a plain transaction.
///
/// `write` returns `Ok(Err(error))` to refuse (nothing is committed or recorded).
pub(crate) async fn write_once<T, F>(
    state: &AppState,
    record: Option<IdempotencyRecord>,
    status: StatusCode,
    write: F,
) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<Result<T, ApiError>> + Send + 'static,
{
    write_once_ran(state, record, status, write).await.map(|(res, _)| res)
}

/// [`write_once`], also saying whether the write ran now (`true`), rather than a recorded
/// outcome being answered: work that follows the write (a background step) starts only then.
pub(crate) async fn write_once_ran<T, F>(
    state: &AppState,
    record: Option<IdempotencyRecord>,
    status: StatusCode,
    write: F,
) -> Result<(Response, bool), ApiError>
where
    T: serde::Serialize,
    F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<Result<T, ApiError>> + Send + 'static,
{
    let recorded = record.is_some();
    let fingerprint = record.as_ref().map(|r| r.fingerprint);
    let done = db(state, move |conn| {
        // IMMEDIATE: the write lock is taken before the look-up, so no other run of the same
        // key can commit between the two.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(r) = &record
            && let Some(found) = rebuff_sqlite::outcomes::find(&tx, &r.key)?
        {
            return Ok(Done::Found(found));
        }
        let value = match write(&tx)? {
            Ok(value) => value,
            Err(e) => return Ok(Done::Refused(e)),
        };
        let body =
            serde_json::to_vec(&value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        if let Some(r) = &record {
            let response = rebuff_axum::store::StoredResponse::json(status.as_u16(), body.clone());
            rebuff_sqlite::outcomes::record(&tx, r, &response)?;
        }
        tx.commit()?;
        Ok(Done::Written(body))
    })
    .await?;
    match done {
        Done::Written(body) => {
            let mut res = json_response(status, body);
            if recorded {
                res.extensions_mut().insert(Recorded);
            }
            Ok((res, true))
        }
        Done::Found(outcome) if Some(outcome.fingerprint) == fingerprint => {
            Ok((replay_response(outcome.response), false))
        }
        Done::Found(_) => Err(ApiError::new(Code::IdempotencyKeyReused)),
        Done::Refused(e) => Err(e),
    }
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
    fn cursors_round_trip_and_strangers_are_refused() {
        let c = encode_cursor(1_733_000_000, "prj_0123456789ab");
        assert_eq!(decode_cursor(&c), Some((1_733_000_000, "prj_0123456789ab".to_owned())));
        assert_eq!(decode_cursor(&encode_cursor(-5, "Ab12")), Some((-5, "Ab12".to_owned())));
        for bad in ["", "c1", "c1zz", "c1abc", "x1616263", "c1" /* empty */, "prj_0123456789ab"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        // Well-formed hex of something else: no dot, a bad time, a bad id.
        for text in ["12prj", "x.prj_1", "1.", "1.a'b"] {
            let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
            assert_eq!(decode_cursor(&format!("c1{hex}")), None, "{text}");
        }
    }

    #[test]
    fn a_page_says_whether_more_follow() {
        let items: Vec<(i64, String)> = (0..5).map(|i| (i, format!("id{i}"))).collect();
        let page = Page::of(items.clone(), 4, |(at, id)| (*at, id.as_str()));
        assert!(page.has_more);
        assert_eq!(page.data.len(), 4);
        assert_eq!(page.next_cursor.as_deref().and_then(decode_cursor), Some((3, "id3".to_owned())));
        let last = Page::of(items, 5, |(at, id)| (*at, id.as_str()));
        assert!(!last.has_more && last.next_cursor.is_none() && last.data.len() == 5);
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
