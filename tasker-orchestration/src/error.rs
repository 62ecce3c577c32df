//! Orchestration errors.

use tasker_shared::database;

/// What can go wrong in the orchestration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database or queue operation failed.
    #[error(transparent)]
    Database(#[from] database::Error),
    /// A queue operation failed.
    #[error(transparent)]
    Queue(#[from] pgmq_notify::Error),
    /// A stored value had an unexpected shape.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The HTTP server failed.
    #[error("web server: {0}")]
    Web(#[from] std::io::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e.into())
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
