//! Cancelling a task.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use tasker_shared::database::{step, task};
use tasker_shared::state_machine::{TaskState, TransitionOutcome, WorkflowStepState};

use crate::error::Error;

/// Why a task was not cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such task.
    #[error("task {0} not found")]
    NotFound(Uuid),
    /// The task already ended.
    #[error("task {task_uuid} is already {state}; only a task that has not ended can be cancelled")]
    AlreadyEnded {
        /// The task.
        task_uuid: Uuid,
        /// Its terminal state.
        state: TaskState,
    },
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<tasker_shared::database::Error> for CancelError {
    fn from(e: tasker_shared::database::Error) -> Self {
        CancelError::Internal(e.into())
    }
}

impl From<sqlx::Error> for CancelError {
    fn from(e: sqlx::Error) -> Self {
        CancelError::Internal(e.into())
    }
}

/// Cancels a task: every step that has not started (or failed and waits for an
/// operator) becomes `cancelled`, and the task becomes `cancelled`, in one transaction.
/// Steps already running finish; their results are recorded but never re-open the task.
/// Returns how many steps were cancelled.
pub async fn cancel_task(
    pool: &PgPool,
    task_uuid: Uuid,
    actor: &str,
    reason: &str,
) -> Result<usize, CancelError> {
    let mut tx = pool.begin().await?;
    if !task::transition::lock(&mut tx, task_uuid).await? {
        return Err(CancelError::NotFound(task_uuid));
    }
    let state = task::transition::current_state(&mut tx, task_uuid)
        .await?
        .ok_or(CancelError::NotFound(task_uuid))?;
    if state.is_terminal() {
        return Err(CancelError::AlreadyEnded { task_uuid, state });
    }
    let metadata = json!({"event": "cancelled", "actor": actor, "reason": reason});
    let steps = step::read::ids_for_task(&mut *tx, task_uuid).await?;
    let cancelled = step::transition::many(
        &mut tx,
        &steps,
        &[
            WorkflowStepState::Pending,
            WorkflowStepState::Enqueued,
            WorkflowStepState::WaitingForRetry,
            WorkflowStepState::Error,
        ],
        WorkflowStepState::Cancelled,
        &metadata,
    )
    .await?;
    match task::transition::one(
        &mut tx,
        task_uuid,
        &[state],
        TaskState::Cancelled,
        &metadata,
    )
    .await?
    {
        TransitionOutcome::Applied { .. } => {}
        // Impossible under the task lock; report rather than guess.
        TransitionOutcome::Conflict { actual } => {
            return Err(CancelError::Internal(Error::Corrupt(format!(
                "task {task_uuid} changed state under its lock (now {actual:?})"
            ))));
        }
    }
    tx.commit().await?;
    tracing::info!(%task_uuid, actor, reason, steps_cancelled = cancelled.len(), "task cancelled");
    Ok(cancelled.len())
}
