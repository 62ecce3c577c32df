//! The stored result of a step attempt (`workflow_steps.results`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Outcome of one attempt, as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepExecutionResult {
    /// The step the attempt ran.
    pub step_uuid: Uuid,
    /// Whether the handler succeeded.
    pub success: bool,
    /// The handler's result (`null` on failure).
    #[serde(default)]
    pub result: Value,
    /// `completed` or `failed`.
    pub status: ResultStatus,
    /// Why the attempt failed (`None` on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepErrorInfo>,
    /// Which attempt it was, which worker ran it, and how long it took.
    pub metadata: ResultMetadata,
}

/// Whether an attempt succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// The handler returned a result.
    Completed,
    /// The handler returned an error, panicked or timed out.
    Failed,
}

/// A failure, as the handler or the worker classified it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepErrorInfo {
    /// What went wrong.
    pub message: String,
    /// A class: `retryable_error`, `permanent_error`, `handler_not_found`, `handler_panic`,
    /// `timeout`, or a handler's own.
    pub error_type: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The handler's own delay before the next attempt, overriding the backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Backtrace lines, when the handler's language has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<Vec<String>>,
    /// Extra detail from the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// Timing and attribution of an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultMetadata {
    /// Which attempt this was (1 for the first).
    pub attempt: i32,
    /// How long the handler ran.
    pub execution_time_ms: u64,
    /// The id of the worker that ran the attempt.
    pub worker_id: String,
    /// When the handler started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it finished.
    pub completed_at: chrono::DateTime<chrono::Utc>,
    /// The handler's own metadata.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub custom: Value,
}
