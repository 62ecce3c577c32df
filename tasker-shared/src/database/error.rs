//! Errors of the SQL seam, with constraint violations mapped to domain errors.

use crate::state_machine::IllegalTransition;

/// Everything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A row that should exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule was hit; `constraint` names it.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The violated constraint or index.
        constraint: String,
    },
    /// A state machine rule was broken by the caller.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// Stored data did not have the expected shape.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Bad connection settings.
    #[error("{0}")]
    Config(String),
    /// A queue operation failed.
    #[error(transparent)]
    Queue(#[from] pgmq_notify::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
            && let Some(constraint) = db.constraint()
        {
            return Error::Conflict {
                constraint: constraint.to_string(),
            };
        }
        Error::Database(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Corrupt(e.to_string())
    }
}

impl Error {
    /// The violated constraint's name, if this is a constraint violation.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            Error::Conflict { constraint } => Some(constraint),
            Error::Database(sqlx::Error::Database(db)) => db.constraint(),
            _ => None,
        }
    }

    /// Whether PostgreSQL refused the data itself (SQLSTATE class 22, data exception,
    /// such as a NUL character in JSON; or class 54, a limit such as a too-large
    /// value): storing the same data again will fail the same way.
    pub fn is_data_rejected(&self) -> bool {
        let code = match self {
            Error::Database(sqlx::Error::Database(db))
            | Error::Queue(pgmq_notify::Error::Database(sqlx::Error::Database(db))) => db.code(),
            _ => None,
        };
        code.is_some_and(|c| c.starts_with("22") || c.starts_with("54"))
    }

    /// Whether retrying the whole transaction may succeed (serialization failures,
    /// deadlocks, lost connections: the connection exceptions of class 08 but for a
    /// protocol violation, and class 57's shutdowns and terminated backends, which a
    /// pooled connection reports when its server went away).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database(sqlx::Error::Database(db)) => matches!(
                db.code().as_deref(),
                Some(
                    "40001"
                        | "40P01"
                        | "57P01"
                        | "57P02"
                        | "57P03"
                        | "08000"
                        | "08001"
                        | "08003"
                        | "08004"
                        | "08006"
                )
            ),
            Error::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
            ) => true,
            Error::Queue(pgmq_notify::Error::Database(sqlx::Error::Io(_))) => true,
            _ => false,
        }
    }
}

/// Result alias for the SQL seam.
pub type Result<T, E = Error> = std::result::Result<T, E>;
