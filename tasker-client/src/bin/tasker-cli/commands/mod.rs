//! One module per noun, one file per verb.

pub mod dlq;
pub mod health;
pub mod step;
pub mod task;
pub mod template;

use uuid::Uuid;

use crate::output::CliError;

/// Parses a UUID argument.
pub fn uuid_arg(what: &str, raw: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(raw).map_err(|e| CliError::usage(format!("{what} {raw:?} is not a UUID: {e}")))
}

/// Reads a JSON argument, inline or `@file.json`.
pub fn json_arg(what: &str, raw: &str) -> Result<serde_json::Value, CliError> {
    let (text, origin) = match raw.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("{what}: cannot read {path}: {e}")))?,
            path.to_string(),
        ),
        None => (raw.to_string(), "the argument".to_string()),
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::usage(format!("{what}: {origin} is not valid JSON: {e}")))
}
