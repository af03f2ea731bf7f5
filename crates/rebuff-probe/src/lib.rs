//! Checks a live HTTP API's error contract from outside: `rebuff probe URL`.
//!
//! A probe sends a bounded set of requests, each designed to provoke one error
//! ([`Provocation`]): no, malformed and unknown credentials, an unknown route, the wrong
//! method, malformed JSON, members of the wrong type, a missing and a wrong `Content-Type`,
//! an oversize body, an invalid and a foreign-looking id, a query parameter of the wrong
//! type, an idempotency key replayed and reused with another payload, and, only when asked,
//! a burst past the rate limit. Routes come from an OpenAPI document when there is one, else
//! they are guessed under the URL. Every operation of the document gets the provocations that
//! apply to it, round robin within the budget, and the report says how many were reached
//! ([`Coverage`]); findings are grouped by check and cause ([`FindingGroup`]).
//!
//! Each answer is checked ([`Check`]): the status is right for the provocation; every error
//! is in one envelope (the same dialect everywhere, as rebuff's universal parser recognises
//! it); the media type matches the body (`application/problem+json` for RFC 9457); a `status`
//! member equals the HTTP status; a request id is there and agrees with `X-Request-Id`; a 401
//! has `WWW-Authenticate`, a 405 an `Allow` naming the path's methods, a 429 `Retry-After`;
//! no body shows a stack trace,
//! SQL, a file path or a framework banner; a 404 for a foreign-looking id is shaped like any
//! other 404.
//!
//! The probe is polite by construction: it never sends more than
//! [`Config::max_requests`] requests, talks only to the URL's own origin (an OpenAPI URL on
//! another host is refused, redirects are not followed, environment proxies are not used),
//! and its payloads are built to be refused, so that it creates nothing.
//!
//! # Choices
//!
//! - A replayed answer (`Idempotent-Replayed: true`) is the first answer stored byte for
//!   byte, so its body names the request that did the work while `X-Request-Id` names the
//!   replay. The request-id check accepts that difference when the body's id is the first
//!   answer's, and the replay check demands the bytes be the same.
//! - An answer that shows the provocation did not take is inconclusive, not a failure: a 422
//!   for the 2 MiB body means the API's limit is higher; a 400 for the foreign id, when the
//!   collection had no id to imitate and a UUID stood in, means ids look different there.
//! - Without a key, what lies behind authentication is skipped, not failed; a key the API
//!   refuses is a usage error, since every answer would be the same 401.
//! - `https://` through rustls, trusting the webpki roots and any CA in
//!   [`Config::root_certificates`] (`--cacert`); a handshake that fails is an unreachable target.
//! - Credentials go where the OpenAPI document's security scheme says ([`Placement`]); the
//!   malformed and unknown ones go to the same place.
//! - A 429 outside the burst is the API protecting itself, not a fault: the probe waits as
//!   `Retry-After` asks (within [`Config::max_wait`]) and sends again, or stops and says so.
//! - Features an API may lack (request ids, idempotency keys, rate-limit headers) are
//!   detected first and reported "not offered" unless [`Config::expect`] requires them.
//!
//! ```no_run
//! # async fn example() -> Result<(), rebuff_probe::Error> {
//! let mut config = rebuff_probe::Config::new("http://127.0.0.1:8080");
//! config.key = Some("rb_test_...".into());
//! config.openapi = Some("http://127.0.0.1:8080/openapi.json".into());
//! let report = rebuff_probe::run(&config).await?;
//! print!("{}", report.to_text());
//! for (provocation, finding) in report.findings() {
//!     eprintln!("{provocation}: {}: {}", finding.check, finding.message);
//! }
//! # Ok(())
//! # }
//! ```

mod auth;
mod check;
mod error;
mod leak;
mod plan;
mod provocation;
mod report;
mod run;
mod transport;

pub use auth::Placement;
pub use check::{Check, CheckResult, Outcome};
pub use error::{Error, ErrorKind};
pub use plan::Routes;
pub use provocation::Provocation;
pub use report::{Coverage, Exchange, Feature, FeatureStatus, FindingGroup, Format, Report, Tally};
pub use run::{Config, Event, OVERSIZE_BYTES, run, run_with};
