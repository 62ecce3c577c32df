//! Output formats, tables, and the mapping of failures to exit codes.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// JSON, for scripts.
    Json,
    /// `task visualize` only: a Mermaid flowchart.
    Mermaid,
    /// `task visualize` only: Graphviz DOT.
    Dot,
    /// `task visualize` only: text for the terminal (its default).
    Ascii,
}

impl Format {
    /// Whether this is a drawing format, which only `task visualize` understands.
    pub fn is_drawing(self) -> bool {
        matches!(self, Self::Mermaid | Self::Dot | Self::Ascii)
    }
}

/// A failure, with the process exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// One plain sentence (or a few lines) for stderr.
    pub message: String,
}

impl CliError {
    /// Exit code 1: bad input or a server-side error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 2: something does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }

    /// Exit code 3: the task failed.
    pub fn task_failed(message: impl Into<String>) -> Self {
        Self {
            code: 3,
            message: message.into(),
        }
    }
}

impl From<tasker_client::Error> for CliError {
    fn from(e: tasker_client::Error) -> Self {
        match e {
            tasker_client::Error::Connection { url, source } => {
                let base = url
                    .split("/v1/")
                    .next()
                    .map(|b| b.split("/health").next().unwrap_or(b))
                    .unwrap_or(&url)
                    .to_string();
                let why = if source.is_timeout() {
                    "it did not answer in time"
                } else {
                    "the connection failed"
                };
                Self {
                    code: 4,
                    message: format!(
                        "cannot reach the Tasker server at {base} ({why}). Is it running? Point --url or TASKER_URL at it."
                    ),
                }
            }
            tasker_client::Error::Api {
                status,
                code,
                message,
                ..
            } if status.as_u16() == 404 => Self::not_found(format!("{message} ({code})")),
            tasker_client::Error::Api {
                status,
                code,
                message,
                ..
            } if status.as_u16() == 401 => Self::usage(format!(
                "{message} ({code}): pass --token or --api-key (or TASKER_AUTH_TOKEN / TASKER_API_KEY)"
            )),
            tasker_client::Error::Api {
                status,
                code,
                message,
                ..
            } => Self::usage(format!("the server answered {status}: {message} ({code})")),
            other => Self::usage(other.to_string()),
        }
    }
}

/// Prints a value as JSON.
pub fn json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::usage(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// A table with the house style.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

/// Key/value rows.
pub fn pairs(rows: &[(&str, String)]) -> Table {
    let mut t = table(&["field", "value"]);
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v.clone()]);
    }
    t
}

/// Prints a note on stderr unless quiet.
pub fn note(ctx: &crate::Ctx, text: impl AsRef<str>) {
    if !ctx.quiet {
        eprintln!("{}", text.as_ref());
    }
}

/// A JSON value on one line, shortened for a table cell.
pub fn short(value: &serde_json::Value, max: usize) -> String {
    let text = value.to_string();
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
