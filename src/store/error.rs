//! The store's one error type. Callers learn what they can act on (the store is saturated or
//! gone: retry later; a stored value is unreadable; anything else) without seeing sqlx.

use crate::oauth::error::{ErrorCode, OAuthError};

/// Why a store operation failed. Nothing was committed by an operation that returns one.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection within the pool's acquire timeout, or the pool is closed (the process
    /// is shutting down): load or a restart, not a bug, so worth a retry.
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A stored value that does not read back as its type (a JSON document, an enum column):
    /// never replaced by a default, since a default could weaken a check.
    #[error("a stored {what} cannot be read: {reason}")]
    Corrupt { what: &'static str, reason: String },
    /// Anything else the database or its driver reported.
    #[error("store error: {0}")]
    Backend(#[source] sqlx::Error),
}

pub type DbResult<T> = Result<T, StoreError>;

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => StoreError::Unavailable(e),
            e => StoreError::Backend(e),
        }
    }
}

/// For the protocol: the store's errors as the client sees them. Here rather than in
/// `oauth/`, so the protocol vocabulary does not depend on the store.
impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            // A saturated pool is load, not a bug: RFC 6749 §4.1.2.1 temporarily_unavailable.
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "store unavailable");
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "The server is overloaded; retry shortly.",
                )
            }
            e => OAuthError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::error::is_wire_safe;

    #[test]
    fn a_saturated_pool_is_temporarily_unavailable() {
        let e = OAuthError::from(StoreError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
        assert_eq!(e.status(), 503);
        assert!(is_wire_safe(&e.description), "{:?}", e.description);
        let e = OAuthError::from(StoreError::from(sqlx::Error::RowNotFound));
        assert_eq!(e.code, ErrorCode::ServerError);
        assert!(is_wire_safe(&e.description), "{:?}", e.description);
    }
}
