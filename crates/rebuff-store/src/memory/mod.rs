//! Backends in this process's memory, for one instance, tests and embedding.
//!
//! | type | implements |
//! |---|---|
//! | [`MemoryStore`] | [`RateLimitStore`](crate::RateLimitStore), [`QuotaStore`](crate::QuotaStore), [`IdempotencyStore`](crate::IdempotencyStore) |
//! | [`MemoryAuthStore`] | [`AccountStore`](crate::AccountStore), [`KeyStore`](crate::KeyStore), [`SessionStore`](crate::SessionStore) |
//!
//! They need no async runtime: every operation completes at its future's first poll, under a
//! `std` lock.

mod auth;
mod limits;

pub use auth::MemoryAuthStore;
pub use limits::MemoryStore;
