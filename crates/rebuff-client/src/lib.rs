//! Typed errors and safe retries for the consumers of an HTTP API whose errors follow a
//! rebuff contract (or any of the six envelopes rebuff speaks, or none).
//!
//! - [`ApiError`] is the crate's one error type. An error answer in any of the six
//!   envelopes (RFC 9457 with rebuff's or Arize's members, `{"error": {...}}`, `{"detail"}`,
//!   the flat `{code, message, details}` objects), or an HTML page or empty body from a proxy,
//!   decodes into it: status, wire code, stable code, category, message, parameter, field
//!   errors, request id, retry delay and dialect. Transport failures (connect, timeout,
//!   reset) are kinds of it too.
//! - A [`Contract`] (a catalog, or a [`CodeTable`] generated with
//!   `rebuff docs CATALOG --format rust-client`) identifies each answer as one stable code,
//!   typed with [`ApiError::code_as`]; a code it does not know falls back to its status.
//! - [`RetryPolicy`] retries only what is retryable, with full-jitter backoff, honouring
//!   `Retry-After` and the `RateLimit` field, within a shared [`RetryBudget`] and one deadline
//!   across attempts; a `POST` gets one `Idempotency-Key` for all its attempts.
//! - [`Client`] wraps a `reqwest::Client`; `RetryMiddleware` (feature `middleware`) does the
//!   same for `reqwest-middleware` users.
//!
//! ```no_run
//! use std::time::Duration;
//! use rebuff::standard::Code;
//! use rebuff_client::{Client, Contract, RetryPolicy};
//!
//! # async fn run() -> Result<(), rebuff_client::ApiError> {
//! let client = Client::builder()
//!     .contract(Contract::builtin("rebuff").expect("built in"))
//!     .retry(RetryPolicy::builder().max_attempts(4).deadline(Some(Duration::from_secs(30))).build())
//!     .build();
//! let create = client.post("http://127.0.0.1:8080/v1/projects").bearer_auth("rb_test_...").json(&serde_json::json!({"name": "alpha"}));
//! match client.send(create).await {
//!     Ok(created) => println!("{}", created.status()),
//!     Err(e) if e.code_as::<Code>() == Some(Code::ResourceAlreadyExists) => println!("already there"),
//!     Err(e) if e.is_client_error() => {
//!         for field in e.fields() {
//!             eprintln!("{}: {}", field.pointer, field.message);
//!         }
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `rustls` (default) | `https://` through rustls, trusting the webpki roots (Mozilla's), no system OpenSSL |
//! | `middleware` | `RetryMiddleware`, a `reqwest_middleware::Middleware` |
//!
//! A private CA: build the `reqwest::Client` with `add_root_certificate` and hand it to
//! [`ClientBuilder::http`]. Without `rustls` (`default-features = false`), HTTPS is whatever
//! your own `reqwest` dependency enables (`native-tls`, say).
//!
//! # Time
//!
//! Every wait and deadline uses `tokio::time`, so a test under a paused clock
//! (`#[tokio::test(start_paused = true)]`) runs a whole retry sequence (backoff, a
//! `Retry-After` of minutes, a deadline) in no real time, and sees the exact delays the policy
//! chose as the clock's jumps. This crate's own tests do that over loopback sockets, against a
//! scripted server on the same runtime, which is deterministic because loopback delivers in
//! the write itself. [`ClientBuilder::on_retry`] reports each delay too.

mod client;
mod contract;
mod engine;
mod error;
#[cfg(feature = "middleware")]
mod middleware;
mod retry;

pub use client::{Client, ClientBuilder};
pub use contract::{CodeRow, CodeTable, Contract};
pub use engine::{BoxError, IDEMPOTENCY_KEY, RetryEvent};
pub use error::{ApiError, Kind};
#[cfg(feature = "middleware")]
pub use middleware::RetryMiddleware;
pub use retry::{Jitter, RetryBudget, RetryPolicy, RetryPolicyBuilder};

pub use rebuff::{Dialect, Envelope, ErrorCode, FieldError, Location, ParsedError, RetryClass, UnknownCode};
