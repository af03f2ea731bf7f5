//! The one error type of the probe: why a probe could not run at all.
//!
//! A probe that ran and found non-conformances is not an error: that is a [`Report`](crate::Report)
//! whose [`conforms`](crate::Report::conforms) is false.

use std::fmt;

/// What kind of problem stopped the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The probe was asked for something it will not or cannot do: a URL it cannot use, an
    /// OpenAPI document on another host, a file it cannot read, a document it cannot parse.
    Usage,
    /// The target could not be reached: the first request got no connection (refused, no
    /// such host, timed out).
    Unreachable,
}

/// Why a probe could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Usage, message: message.into() }
    }

    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Unreachable, message: message.into() }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the target could not be reached.
    pub fn is_unreachable(&self) -> bool {
        self.kind == ErrorKind::Unreachable
    }

    /// Whether the probe was asked for something it cannot do.
    pub fn is_usage(&self) -> bool {
        self.kind == ErrorKind::Usage
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
