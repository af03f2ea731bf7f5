//! [`Principal`]: who a request acts for, put in the request extensions by
//! [`AuthLayer`](super::AuthLayer) and taken by handlers as an extractor.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::{ApiError, Code};

/// The scope that implies every other scope.
pub const ADMIN_SCOPE: &str = "admin";

/// The scopes of a session principal: a signed-in user can read and write, but administration
/// (creating keys with more rights, for instance) needs an `admin` API key.
pub const SESSION_SCOPES: &[&str] = &["read", "write"];

/// The authenticated caller of a request.
///
/// [`AuthLayer`](super::AuthLayer) inserts it into the request extensions; handlers take it as
/// an extractor, which answers `authentication_required` when the route is not behind the
/// layer (a wiring mistake that must not let the request through). `Option<Principal>` never
/// rejects.
///
/// ```
/// use rebuff_axum::auth::{Principal, Subject};
///
/// async fn whoami(principal: Principal) -> String {
///     match principal.subject {
///         Subject::Key { id, .. } => format!("key {id} of {}", principal.org_id),
///         Subject::Session { user_id } => format!("user {user_id} of {}", principal.org_id),
///     }
/// }
/// # let _ = axum::Router::<()>::new().route("/me", axum::routing::get(whoami));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The organisation the request acts for. Shared with the key record it came from, so
    /// that neither authenticating nor taking the principal as an extractor copies it.
    pub org_id: Arc<str>,
    /// The credential that authenticated it.
    pub subject: Subject,
    /// Granted scopes (`read`, `write`, `admin`). Shared, so that taking the principal as an
    /// extractor (a clone) copies none of them: `vec!["read".into()].into()` makes one.
    pub scopes: Arc<[String]>,
}

/// The credential behind a [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An API key.
    Key {
        /// The key's public id.
        id: Arc<str>,
        /// A live key rather than a test key.
        live: bool,
    },
    /// A browser session.
    Session {
        /// The signed-in user.
        user_id: Arc<str>,
    },
}

impl Principal {
    /// Whether the principal holds `scope`; [`ADMIN_SCOPE`] implies every scope.
    ///
    /// ```
    /// use rebuff_axum::auth::{Principal, Subject};
    ///
    /// let p = Principal {
    ///     org_id: "org_1".into(),
    ///     subject: Subject::Session { user_id: "usr_1".into() },
    ///     scopes: vec!["admin".into()].into(),
    /// };
    /// assert!(p.has_scope("write"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope || s == ADMIN_SCOPE)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::new(Code::AuthenticationRequired))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}
