//! Authentication and authorisation: API keys, scopes, IP allow-lists, sessions with CSRF,
//! webhook signatures.

pub mod key;
