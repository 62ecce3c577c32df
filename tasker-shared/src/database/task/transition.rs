//! A task's state: its row lock, the compare-and-swap that moves it, reading it, and
//! the notification of a settled task.
//!
//! A task's current state is a column of its row (`current_state`); the transition
//! table is insert-only history. A transition updates the row *only while its
//! `current_state` is one of the expected states* and inserts the history entry in the
//! same statement; a writer that lost a race writes nothing and gets
//! [`TransitionOutcome::Conflict`], a normal outcome rather than an error.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::database::Result;
use crate::database::states::{checked_sources, parse_task};
use crate::state_machine::{TaskState, TransitionOutcome};

/// Channel announcing that a task reached `complete`, `error`, `cancelled`,
/// `resolved_manually` or `blocked_by_failures`; the payload is
/// `{"task_uuid": "...", "status": "..."}`.
pub const SETTLED_CHANNEL: &str = "tasker_task_settled";

/// The [`SETTLED_CHANNEL`] payload for a task that reached `state`.
pub(crate) fn settled_payload(task_uuid: Uuid, state: TaskState) -> String {
    serde_json::json!({"task_uuid": task_uuid, "status": state.as_str()}).to_string()
}

/// Locks the task row until the end of the transaction, serialising everything that
/// evaluates this task. Returns false if the task does not exist.
pub async fn lock(conn: &mut PgConnection, task_uuid: Uuid) -> Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE")
            .bind(task_uuid)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Moves a task from one of `from` to `to`.
pub async fn one(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    from: &[TaskState],
    to: TaskState,
    metadata: &Value,
) -> Result<TransitionOutcome<TaskState>> {
    let sources = checked_sources("task", from, to, TaskState::can_transition_to)?;
    // Waiters (the CLI, benchmarks, operators' tools) hear about settled tasks on
    // SETTLED_CHANNEL, in the same transaction; the table stays the truth.
    let settled = matches!(
        to,
        TaskState::Complete
            | TaskState::Error
            | TaskState::Cancelled
            | TaskState::ResolvedManually
            | TaskState::BlockedByFailures
    );
    let payload = settled_payload(task_uuid, to);
    let applied: Option<String> = sqlx::query_scalar(include_str!("transition.sql"))
        .bind(task_uuid)
        .bind(&sources)
        .bind(Uuid::now_v7())
        .bind(to.as_str())
        .bind(metadata)
        .bind(settled)
        .bind(SETTLED_CHANNEL)
        .bind(&payload)
        .fetch_optional(&mut *conn)
        .await?;
    match applied {
        Some(from) => Ok(TransitionOutcome::Applied {
            from: parse_task(&from)?,
        }),
        None => Ok(TransitionOutcome::Conflict {
            actual: current_state(conn, task_uuid).await?,
        }),
    }
}

/// The task's current state, or None if the task does not exist.
pub async fn current_state(conn: &mut PgConnection, task_uuid: Uuid) -> Result<Option<TaskState>> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT current_state FROM tasker.tasks WHERE task_uuid = $1")
            .bind(task_uuid)
            .fetch_optional(conn)
            .await?;
    state.as_deref().map(parse_task).transpose()
}
