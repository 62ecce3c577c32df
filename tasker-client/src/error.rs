//! The client's error type: an unusable URL, an unreachable server, an error answer, or
//! an answer that could not be decoded.

use reqwest::StatusCode;
use uuid::Uuid;

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL is not a valid URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The base URL as the caller gave it.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the Tasker server at {url}: {source}")]
    Connection {
        /// The full URL of the request that failed.
        url: String,
        /// Why the request or the reading of its answer failed (refused, timed out, reset).
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{status}: {code}: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The server's error code, such as `NOT_FOUND`.
        code: String,
        /// The server's message.
        message: String,
        /// For duplicate tasks: the existing task.
        existing_task_uuid: Option<Uuid>,
    },
    /// The server's answer could not be decoded.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// The full URL of the request whose answer was undecodable.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
