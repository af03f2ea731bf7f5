//! The error of account and key management.

use rebuff_axum::store::StoreError;
use rebuff_axum::{ApiError, Code};

/// Account or key management failed.
///
/// The variants other than [`Error::Store`] are the caller's mistakes and map to 4xx
/// responses; [`Error::Store`] is a failure of the database, masked for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user with this email (ignoring case) exists already.
    #[error("a user with this email exists already")]
    EmailTaken,
    /// An organisation with this name exists already.
    #[error("an organisation with this name exists already")]
    OrgNameTaken,
    /// No organisation has this id.
    #[error("no such organisation")]
    OrgNotFound,
    /// No user has this id.
    #[error("no such user")]
    UserNotFound,
    /// An argument cannot be stored (names the argument: `scope`, `name`...).
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// Something with this identity exists already (409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::EmailTaken | Error::OrgNameTaken)
    }

    /// The organisation or user named does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::OrgNotFound | Error::UserNotFound)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::EmailTaken | Error::OrgNameTaken => {
                ApiError::new(Code::ResourceAlreadyExists).detail(e.to_string())
            }
            Error::OrgNotFound | Error::UserNotFound => ApiError::new(Code::ResourceNotFound),
            Error::Invalid(_) => ApiError::new(Code::InvalidFieldValue).detail(e.to_string()),
            Error::Store(e) => e.into(),
        }
    }
}
