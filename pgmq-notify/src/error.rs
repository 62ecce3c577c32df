//! Errors raised by queue operations.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace or queue name broke the naming rules.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// "namespace" or "queue".
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// The database rejected or failed an operation.
    #[error("queue database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A message body could not be encoded or decoded.
    #[error("queue message (de)serialization failed: {0}")]
    Serde(#[from] serde_json::Error),
    /// Installing PGMQ failed.
    #[error("installing PGMQ failed: {0}")]
    Install(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
