//! Rows of Tasker's core tables, as plain data.
//!
//! With feature `db` each derives `sqlx::FromRow`; the functions that load them live in
//! [`crate::database`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A row of `tasker.tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sqlx::FromRow))]
pub struct Task {
    /// The task's id (a UUIDv7, so ids sort by creation time).
    pub task_uuid: Uuid,
    /// The registered template (`tasker.named_tasks`) it runs.
    pub named_task_uuid: Uuid,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When it reached `complete`.
    pub completed_at: Option<DateTime<Utc>>,
    /// Who asked for the task, as the request said.
    pub initiator: String,
    /// Which system asked for the task, as the request said.
    pub source_system: String,
    /// Why the task was requested, as the request said.
    pub reason: String,
    /// Labels (a JSON array of strings).
    pub tags: Value,
    /// Input handed to every step.
    pub context: Value,
    /// See [`crate::identity`].
    pub identity_hash: String,
    /// -100..=100; higher runs first when the system is busy.
    pub priority: i32,
    /// Trace id carried by the task's messages and log lines.
    pub correlation_id: Uuid,
    /// Trace id of the workflow that started this one, if any.
    pub parent_correlation_id: Option<Uuid>,
    /// When the row was inserted.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// A row of `tasker.workflow_steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sqlx::FromRow))]
pub struct WorkflowStep {
    /// The step's id.
    pub workflow_step_uuid: Uuid,
    /// The task the step belongs to.
    pub task_uuid: Uuid,
    /// The row of `tasker.named_steps` that holds the step's name.
    pub named_step_uuid: Uuid,
    /// Handler lookup key, copied from the template.
    pub handler_callable: String,
    /// Handler initialization, copied from the template.
    pub inputs: Value,
    /// Whether failures may be retried.
    pub retryable: bool,
    /// Attempts allowed, counted from `retry_baseline`.
    pub max_attempts: i32,
    /// How the retry delay grows ([`BackoffKind::as_str`](crate::template::BackoffKind::as_str)).
    pub backoff: String,
    /// Delay before the first retry, in milliseconds.
    pub backoff_base_ms: i32,
    /// Longest delay between retries, in milliseconds.
    pub max_backoff_ms: i32,
    /// Time limit of one attempt, in seconds; `worker.default_step_timeout_seconds` when `None`.
    pub timeout_seconds: Option<i32>,
    /// Attempts made; the current attempt's fencing token (never decreases).
    pub attempts: i32,
    /// Attempts made before the last operator reset; the retry policy counts from here.
    pub retry_baseline: i32,
    /// When the latest attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// When the next attempt's message becomes visible to workers.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The latest attempt's [`StepExecutionResult`](crate::results::StepExecutionResult).
    pub results: Option<Value>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When the row was inserted.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// A row of `tasker.task_transitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sqlx::FromRow))]
pub struct TaskTransition {
    /// The history entry's id.
    pub task_transition_uuid: Uuid,
    /// The task that changed state.
    pub task_uuid: Uuid,
    /// The state entered.
    pub to_state: String,
    /// The state left (`None` for the first entry).
    pub from_state: Option<String>,
    /// Event, actor, reason…
    pub metadata: Value,
    /// 1, 2, 3… per task.
    pub sort_key: i32,
    /// Whether this is the latest entry, i.e. the current state.
    pub most_recent: bool,
    /// When the transition happened.
    pub created_at: DateTime<Utc>,
}

/// A row of `tasker.workflow_step_transitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sqlx::FromRow))]
pub struct WorkflowStepTransition {
    /// The history entry's id.
    pub workflow_step_transition_uuid: Uuid,
    /// The step that changed state.
    pub workflow_step_uuid: Uuid,
    /// The state entered.
    pub to_state: String,
    /// The state left (`None` for the first entry).
    pub from_state: Option<String>,
    /// Event, worker, attempt, actor, reason…
    pub metadata: Value,
    /// 1, 2, 3… per step.
    pub sort_key: i32,
    /// Whether this is the latest entry, i.e. the current state.
    pub most_recent: bool,
    /// When the transition happened.
    pub created_at: DateTime<Utc>,
}
