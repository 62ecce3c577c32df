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
    /// No database to connect to.
    #[error(
        "no database URL: set DATABASE_URL (or database.url in a config file), for example postgres://user@localhost/tasker"
    )]
    NoDatabaseUrl,
    /// A namespace given to serve breaks the naming rule.
    #[error("namespace {namespace:?}: {problem}")]
    Namespace {
        /// The namespace given.
        namespace: String,
        /// What is wrong with it.
        problem: String,
    },
    /// No template was loaded and no namespace given.
    #[error("nothing to serve: no valid template under {template_path} and no namespace given")]
    NothingToServe {
        /// Where templates were looked for.
        template_path: String,
    },
    /// Steps of served templates name callables this worker has no handler for.
    #[error("{}", missing_handlers_message(.0))]
    MissingHandlers(Vec<MissingHandler>),
    /// The health endpoint's port cannot be bound.
    #[error("health port: cannot listen on {address}: {source}")]
    HealthPort {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A step whose callable no handler of this worker answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingHandler {
    /// `namespace/name:version` of the template.
    pub template: String,
    /// The step.
    pub step: String,
    /// Its `handler.callable`.
    pub callable: String,
}

fn missing_handlers_message(missing: &[MissingHandler]) -> String {
    let mut text = format!(
        "refusing to start: {} step(s) of the templates served name a handler this worker does not have",
        missing.len()
    );
    for m in missing {
        text.push_str(&format!(
            "\n  {} step {}: no handler for callable {:?}",
            m.template, m.step, m.callable
        ));
    }
    text.push_str(
        "\n(register the handlers, load the code that defines them, or serve other namespaces)",
    );
    text
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(e.into())
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
