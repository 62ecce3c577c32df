//! What the orchestration loads to process a step's result: the step's retry policy,
//! result and namespace, with its task locked.
//!
//! [`lock_and_load_many`] locks every task of a batch of results and loads every step
//! in one statement; [`lock_and_load_one`] is it with one pair. [`load`] reads one step
//! without a lock (for an operator's action, whose caller locks the task itself).

use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::database::states::{parse_step, parse_task};
use crate::database::{Error, Result};
use crate::results::StepExecutionResult;
use crate::state_machine::{TaskState, WorkflowStepState};

/// What the orchestration needs to process a step's result.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepForOrchestration {
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Current state.
    pub current_state: String,
    /// Attempts made (never decreases: the fencing token).
    pub attempts: i32,
    /// Attempts made before the last operator reset.
    pub retry_baseline: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Whether failures may be retried.
    pub retryable: bool,
    /// Backoff kind.
    pub backoff: String,
    /// First delay.
    pub backoff_base_ms: i32,
    /// Longest delay.
    pub max_backoff_ms: i32,
    /// Latest result.
    pub results: Option<Value>,
    /// Namespace (for the queue name).
    pub namespace: String,
}

impl StepForOrchestration {
    /// Attempts counted by the retry policy (those since the last operator reset).
    pub fn attempts_in_budget(&self) -> i32 {
        self.attempts - self.retry_baseline
    }

    /// The current state, parsed.
    pub fn state(&self) -> Result<WorkflowStepState> {
        parse_step(&self.current_state)
    }

    /// The stored result, parsed.
    pub fn result(&self) -> Result<Option<StepExecutionResult>> {
        self.results
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(Error::from)
    }
}

/// Loads a step for result processing.
pub async fn load<'e>(
    executor: impl PgExecutor<'e>,
    step_uuid: Uuid,
) -> Result<Option<StepForOrchestration>> {
    // The columns of processing_lock_and_load_many.sql.
    let row = sqlx::query_as::<_, StepForOrchestration>(
        "SELECT ws.workflow_step_uuid, ws.task_uuid, ws.current_state, ws.attempts,
                ws.retry_baseline, ws.max_attempts, ws.retryable, ws.backoff,
                ws.backoff_base_ms, ws.max_backoff_ms, ws.results, tn.name AS namespace
         FROM tasker.workflow_steps ws
         JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
         JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
         JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
         WHERE ws.workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

/// Locks the task's row (like [`crate::database::task::transition::lock`]) and loads
/// one of its steps for result processing, in one round trip: [`lock_and_load_many`]
/// with one pair. None when the task or the step does not exist, or the step belongs to
/// another task (the task, if it exists, is locked all the same).
pub async fn lock_and_load_one(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    step_uuid: Uuid,
) -> Result<Option<(TaskState, StepForOrchestration)>> {
    Ok(lock_and_load_many(conn, &[(task_uuid, step_uuid)])
        .await?
        .into_iter()
        .next())
}

#[derive(sqlx::FromRow)]
struct LockedStepRow {
    task_state: String,
    #[sqlx(flatten)]
    step: StepForOrchestration,
}

/// Locks the tasks of many (task, step) pairs in task order (so concurrent batches
/// cannot deadlock) and loads their steps for result processing, in one statement;
/// returns each pair that exists, the step belonging to the task, with its task's
/// state, in the order given.
///
/// Only the task rows are locked: if a lock had to wait, the steps' columns are those of
/// the statement's snapshot, taken before the wait. That is safe because every write
/// that follows is a compare-and-swap on a step's state, and a step waiting for the
/// orchestration (`enqueued_*_for_orchestration`) changes only under its task's lock.
pub async fn lock_and_load_many(
    conn: &mut PgConnection,
    pairs: &[(Uuid, Uuid)],
) -> Result<Vec<(TaskState, StepForOrchestration)>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let (tasks, steps): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    let rows =
        sqlx::query_as::<_, LockedStepRow>(include_str!("processing_lock_and_load_many.sql"))
            .bind(&tasks)
            .bind(&steps)
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|r| Ok((parse_task(&r.task_state)?, r.step)))
        .collect()
}
