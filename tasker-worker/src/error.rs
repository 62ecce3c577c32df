//! Worker errors.

/// What can go wrong in the worker runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A database operation failed.
    #[error(transparent)]
    Database(#[from] tasker_shared::database::Error),
    /// A queue operation failed.
    #[error(transparent)]
    Queue(#[from] pgmq_notify::Error),
    /// The database schema is missing or older than this worker.
    #[error(
        "the database schema is not migrated to this version; run `tasker-server migrate` (or start tasker-server) first"
    )]
    SchemaNotMigrated,
    /// The task that submits results stopped before answering (it panicked); the
    /// step's message is redelivered when its lease ends.
    #[error("the result submitter stopped before recording this result")]
    SubmitterGone,
    /// Templates could not be read.
    #[error("templates: {0}")]
    Templates(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e.into())
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
