//! [`StoreError`]: what every store operation fails with.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A store failed. Reaches an HTTP client only as a masked `service_unavailable` or
/// `database_error` (rebuff-axum converts it at its edge); the message goes to the log.
///
/// The backend's own error, when there is one, is kept and reachable through
/// [`std::error::Error::source`], so a caller can tell a timeout from a refused connection
/// without parsing the message.
#[derive(Debug, Clone)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    // `Arc`, not `Box`: a store error is cloned (a shared failure answered to several waiters).
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

/// What kind of store failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The backend cannot be reached or timed out: worth a retry later (503).
    Unavailable,
    /// The backend answered with an error (500 `database_error`).
    Backend,
}

impl StoreError {
    /// The backend cannot be reached.
    pub fn unavailable(message: impl fmt::Display) -> Self {
        StoreError { kind: StoreErrorKind::Unavailable, message: message.to_string(), source: None }
    }

    /// The backend failed.
    pub fn backend(message: impl fmt::Display) -> Self {
        StoreError { kind: StoreErrorKind::Backend, message: message.to_string(), source: None }
    }

    /// Keeps `source`, the backend's own error, as this error's
    /// [`source`](std::error::Error::source).
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The kind.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The backend cannot be reached (the kind is [`StoreErrorKind::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }

    /// The message, without the source's.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Two errors are equal when their kinds and messages are: the source is a detail of the
/// backend, and most backend errors cannot be compared.
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for StoreError {}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_error_is_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = StoreError::unavailable("cannot connect").with_source(io);
        assert!(e.is_unavailable());
        let source = e.source().expect("a source");
        let io = source.downcast_ref::<std::io::Error>().expect("the io error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(e.to_string(), "cannot connect");
        assert!(StoreError::backend("x").source().is_none());
        assert_eq!(e.clone(), StoreError::unavailable("cannot connect"));
    }
}
