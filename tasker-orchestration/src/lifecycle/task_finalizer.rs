//! Deciding a task's state from its steps.

use serde_json::json;
use sqlx::PgConnection;

use tasker_shared::database::task;
use tasker_shared::state_machine::{TaskState, TransitionOutcome};

use super::step_enqueuer::{TaskRoute, enqueue_all_ready};
use crate::error::{Error, Result};

/// What finalization did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizationAction {
    /// The task moved to this state.
    Transitioned(tasker_shared::state_machine::TaskState),
    /// The task was already where it belongs (or is terminal).
    NoAction,
}

/// Brings the task's state in line with its steps. The caller holds the task's row lock
/// ([`task::transition::lock`]), so finalizations of one task never interleave.
///
/// Ready steps found here are enqueued at once; a failed step moves the task to
/// `blocked_by_failures` in this same pass, even while other steps still run.
pub async fn finalize(conn: &mut PgConnection, route: TaskRoute<'_>) -> Result<FinalizationAction> {
    let Some(current) = task::transition::current_state(&mut *conn, route.task_uuid).await? else {
        return Ok(FinalizationAction::NoAction);
    };
    finalize_from(conn, route, current).await
}

/// [`finalize`] for a caller that read the task's state `current` under the row lock
/// it still holds.
pub async fn finalize_from(
    conn: &mut PgConnection,
    route: TaskRoute<'_>,
    current: TaskState,
) -> Result<FinalizationAction> {
    if current.is_terminal() {
        return Ok(FinalizationAction::NoAction);
    }
    let ctx = task::read::execution_context(&mut *conn, route.task_uuid)
        .await?
        .ok_or_else(|| {
            Error::Corrupt(format!("task {} has no execution context", route.task_uuid))
        })?;
    let target = match ctx.execution_status.as_str() {
        "all_complete" => TaskState::Complete,
        "blocked_by_failures" => TaskState::BlockedByFailures,
        "has_ready_steps" => {
            enqueue_all_ready(&mut *conn, route).await?;
            TaskState::StepsInProcess
        }
        "processing" => TaskState::StepsInProcess,
        "waiting_for_retry" => TaskState::WaitingForRetry,
        _ => TaskState::WaitingForDependencies,
    };
    if target == current {
        return Ok(FinalizationAction::NoAction);
    }
    if !current.can_transition_to(target) {
        tracing::warn!(task_uuid = %route.task_uuid, %current, %target, "finalization found no legal transition");
        return Ok(FinalizationAction::NoAction);
    }
    let outcome = task::transition::one(
        &mut *conn,
        route.task_uuid,
        &[current],
        target,
        &json!({"event": "finalized", "execution_status": ctx.execution_status}),
    )
    .await?;
    match outcome {
        TransitionOutcome::Applied { .. } => {
            finalized(route, target);
            Ok(FinalizationAction::Transitioned(target))
        }
        // We hold the task lock, so this means a writer that does not take it (none
        // should exist); report and let the next pass retry.
        TransitionOutcome::Conflict { actual } => {
            tracing::warn!(task_uuid = %route.task_uuid, ?actual, "task state changed under its lock");
            Ok(FinalizationAction::NoAction)
        }
    }
}

/// Finalizes tasks by id, each in its own transaction.
#[derive(Debug, Clone)]
pub struct TaskFinalizer {
    pool: sqlx::PgPool,
}

impl TaskFinalizer {
    /// A finalizer on `pool`.
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }

    /// Locks the task, enqueues its ready steps and brings its state in line with its
    /// steps. A task that does not exist is `NoAction`.
    pub async fn finalize_task(&self, task_uuid: uuid::Uuid) -> Result<FinalizationAction> {
        let mut tx = self.pool.begin().await?;
        if !task::transition::lock(&mut tx, task_uuid).await? {
            return Ok(FinalizationAction::NoAction);
        }
        let Some(record) = task::read::get(&mut *tx, task_uuid).await? else {
            return Ok(FinalizationAction::NoAction);
        };
        let route = TaskRoute {
            task_uuid,
            namespace: &record.namespace,
            correlation_id: record.correlation_id,
        };
        let action = finalize(&mut tx, route).await?;
        tx.commit().await?;
        Ok(action)
    }
}

/// Counts and logs a task's move to `target` by finalization.
pub(crate) fn finalized(route: TaskRoute<'_>, target: TaskState) {
    if target == TaskState::BlockedByFailures {
        crate::metrics::task_failed("blocked_by_failures");
    }
    if target == TaskState::Complete {
        crate::metrics::task_completed();
        tracing::info!(task_uuid = %route.task_uuid, correlation_id = %route.correlation_id, "task complete");
    }
}
