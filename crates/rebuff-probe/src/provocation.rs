//! The requests a probe sends, each designed to provoke one error.

use std::fmt;

use serde::{Serialize, Serializer};

/// One request designed to provoke an error, and what a conforming API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Provocation {
    /// `GET` the collection without credentials: 401.
    NoCredentials,
    /// `GET` the collection with a credential that is not a key at all, where the key goes: 401 (or 400).
    MalformedCredentials,
    /// `GET` the collection with a well-formed key that does not exist: 401.
    UnknownCredentials,
    /// `GET` a path that no route matches: 404.
    UnknownRoute,
    /// A method the collection's route does not have: 405.
    WrongMethod,
    /// Truncated JSON to an operation that takes JSON: 400 (or 422).
    MalformedJson,
    /// `POST` JSON whose members have the wrong types: 400 (or 422).
    WrongBodyType,
    /// `POST` JSON without a `Content-Type`: 415 (or 400).
    MissingContentType,
    /// `POST` JSON labelled `text/plain`: 415 (or 400).
    WrongContentType,
    /// `POST` a body over 2 MiB: 413.
    OversizeBody,
    /// `GET` an item by an id that cannot be one: 400 (or 404, 422).
    InvalidId,
    /// An item by a well-formed id that is not the caller's: 404, shaped like any other 404
    /// (a method with a body may refuse the invalid body first: 400 or 422).
    ForeignId,
    /// A query parameter of the wrong type (a word where a number goes): 400 (or 422).
    WrongQueryType,
    /// `POST` an invalid payload with a fresh `Idempotency-Key`: 400 or 422.
    IdempotencyFirst,
    /// The same request again: the first answer, replayed.
    IdempotencyReplay,
    /// The same key with another payload: 409 or 422 (or 400).
    IdempotencyReuse,
    /// Requests past the rate limit (only with `burst`): 429 with `Retry-After`.
    RateLimit,
}

impl Provocation {
    /// Every provocation, in the order a probe sends them.
    pub const ALL: [Provocation; 17] = [
        Provocation::NoCredentials,
        Provocation::MalformedCredentials,
        Provocation::UnknownCredentials,
        Provocation::UnknownRoute,
        Provocation::WrongMethod,
        Provocation::MalformedJson,
        Provocation::WrongBodyType,
        Provocation::MissingContentType,
        Provocation::WrongContentType,
        Provocation::OversizeBody,
        Provocation::InvalidId,
        Provocation::ForeignId,
        Provocation::WrongQueryType,
        Provocation::IdempotencyFirst,
        Provocation::IdempotencyReplay,
        Provocation::IdempotencyReuse,
        Provocation::RateLimit,
    ];

    /// The provocation's stable name, as reports show it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provocation::NoCredentials => "no-credentials",
            Provocation::MalformedCredentials => "malformed-credentials",
            Provocation::UnknownCredentials => "unknown-credentials",
            Provocation::UnknownRoute => "unknown-route",
            Provocation::WrongMethod => "wrong-method",
            Provocation::MalformedJson => "malformed-json",
            Provocation::WrongBodyType => "wrong-body-type",
            Provocation::MissingContentType => "missing-content-type",
            Provocation::WrongContentType => "wrong-content-type",
            Provocation::OversizeBody => "oversize-body",
            Provocation::InvalidId => "invalid-id",
            Provocation::ForeignId => "foreign-id",
            Provocation::WrongQueryType => "wrong-query-type",
            Provocation::IdempotencyFirst => "idempotency-first",
            Provocation::IdempotencyReplay => "idempotency-replay",
            Provocation::IdempotencyReuse => "idempotency-reuse",
            Provocation::RateLimit => "rate-limit",
        }
    }

    /// Parses a name made by [`Provocation::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// What the request does, in a few words.
    pub const fn describe(self) -> &'static str {
        match self {
            Provocation::NoCredentials => "no credentials",
            Provocation::MalformedCredentials => "a credential that is not a key, where the key goes",
            Provocation::UnknownCredentials => "a well-formed key that does not exist",
            Provocation::UnknownRoute => "a path no route matches",
            Provocation::WrongMethod => "a method the route does not have",
            Provocation::MalformedJson => "truncated JSON",
            Provocation::WrongBodyType => "JSON members of the wrong type",
            Provocation::MissingContentType => "JSON without Content-Type",
            Provocation::WrongContentType => "JSON sent as text/plain",
            Provocation::OversizeBody => "a body over 2 MiB",
            Provocation::InvalidId => "an id that cannot be one",
            Provocation::ForeignId => "a well-formed id that is not the caller's",
            Provocation::WrongQueryType => "a query parameter of the wrong type",
            Provocation::IdempotencyFirst => "an invalid payload with a fresh Idempotency-Key",
            Provocation::IdempotencyReplay => "the same request again",
            Provocation::IdempotencyReuse => "the same Idempotency-Key with another payload",
            Provocation::RateLimit => "requests past the rate limit",
        }
    }

    /// The statuses that conform, the expected one first.
    pub(crate) const fn expected(self) -> &'static [u16] {
        match self {
            Provocation::NoCredentials | Provocation::UnknownCredentials => &[401],
            Provocation::MalformedCredentials => &[401, 400],
            Provocation::UnknownRoute | Provocation::ForeignId => &[404],
            Provocation::WrongMethod => &[405],
            Provocation::MalformedJson | Provocation::WrongBodyType | Provocation::WrongQueryType => {
                &[400, 422]
            }
            Provocation::MissingContentType | Provocation::WrongContentType => &[415, 400],
            Provocation::OversizeBody => &[413],
            Provocation::InvalidId => &[400, 404, 422],
            Provocation::IdempotencyFirst | Provocation::IdempotencyReplay => &[422, 400],
            Provocation::IdempotencyReuse => &[422, 409, 400],
            Provocation::RateLimit => &[429],
        }
    }
}

impl fmt::Display for Provocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Provocation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
