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
    /// The task.
    pub task_uuid: Uuid,
    /// Its template.
    pub named_task_uuid: Uuid,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// When it reached `complete`.
    pub completed_at: Option<DateTime<Utc>>,
    /// Who asked.
    pub initiator: String,
    /// Which system asked.
    pub source_system: String,
    /// Why.
    pub reason: String,
    /// Labels (a JSON array of strings).
    pub tags: Value,
    /// Input handed to every step.
    pub context: Value,
    /// See [`crate::identity`].
    pub identity_hash: String,
    /// -100..=100.
    pub priority: i32,
    /// Trace id.
    pub correlation_id: Uuid,
    /// Parent trace id.
    pub parent_correlation_id: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A row of `tasker.workflow_steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sqlx::FromRow))]
pub struct WorkflowStep {
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Its named step (the name).
    pub named_step_uuid: Uuid,
    /// Handler lookup key, copied from the template.
    pub handler_callable: String,
    /// Handler initialization, copied from the template.
    pub inputs: Value,
    /// Whether failures may be retried.
    pub retryable: bool,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Backoff kind.
    pub backoff: String,
    /// First delay.
    pub backoff_base_ms: i32,
    /// Longest delay.
    pub max_backoff_ms: i32,
    /// Per-attempt time limit.
    pub timeout_seconds: Option<i32>,
    /// Attempts made; the current attempt's fencing token (never decreases).
    pub attempts: i32,
    /// Attempts made before the last operator reset; the retry policy counts from here.
    pub retry_baseline: i32,
    /// When the latest attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// When the next attempt becomes visible.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The latest attempt's result.
    pub results: Option<Value>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A row of `tasker.task_transitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sqlx::FromRow))]
pub struct TaskTransition {
    /// The transition.
    pub task_transition_uuid: Uuid,
    /// The task.
    pub task_uuid: Uuid,
    /// The state entered.
    pub to_state: String,
    /// The state left (None for the first).
    pub from_state: Option<String>,
    /// Event, actor, reason…
    pub metadata: Value,
    /// 1, 2, 3… per task.
    pub sort_key: i32,
    /// Whether this is the latest entry, i.e. the current state.
    pub most_recent: bool,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A row of `tasker.workflow_step_transitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "db", derive(sqlx::FromRow))]
pub struct WorkflowStepTransition {
    /// The transition.
    pub workflow_step_transition_uuid: Uuid,
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// The state entered.
    pub to_state: String,
    /// The state left (None for the first).
    pub from_state: Option<String>,
    /// Event, worker, attempt, actor, reason…
    pub metadata: Value,
    /// 1, 2, 3… per step.
    pub sort_key: i32,
    /// Whether this is the latest entry, i.e. the current state.
    pub most_recent: bool,
    /// When.
    pub created_at: DateTime<Utc>,
}
