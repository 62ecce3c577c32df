//! Reading steps: readiness (`tasker.get_step_readiness_status`), the API's step
//! details, and a task's step ids.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::database::Result;
use crate::database::states::parse_step;
use crate::state_machine::WorkflowStepState;

/// One row of `tasker.get_step_readiness_status`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepReadinessStatus {
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Its named step.
    pub named_step_uuid: Uuid,
    /// Step name.
    pub name: String,
    /// Current state.
    pub current_state: String,
    /// All parents done.
    pub dependencies_satisfied: bool,
    /// May be attempted (again).
    pub retry_eligible: bool,
    /// Can be enqueued now.
    pub ready_for_execution: bool,
    /// Last failed attempt reported.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// When the next attempt becomes visible.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Parents in all.
    pub total_parents: i32,
    /// Parents done.
    pub completed_parents: i32,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When the latest attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
}

impl StepReadinessStatus {
    /// The current state, parsed.
    pub fn state(&self) -> Result<WorkflowStepState> {
        parse_step(&self.current_state)
    }
}

/// Readiness of a task's steps, or of some of them.
pub async fn readiness<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
    only: Option<&[Uuid]>,
) -> Result<Vec<StepReadinessStatus>> {
    let rows = sqlx::query_as::<_, StepReadinessStatus>(
        "SELECT * FROM tasker.get_step_readiness_status($1, $2)",
    )
    .bind(task_uuid)
    .bind(only)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// A step with its readiness and latest result, for the API.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepDetail {
    /// Readiness columns.
    #[sqlx(flatten)]
    pub readiness: StepReadinessStatus,
    /// Latest result.
    pub results: Option<Value>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Names of the direct parents, sorted.
    pub parent_names: Vec<String>,
}

/// All steps of a task, in creation (template) order.
pub async fn list_for_task<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
) -> Result<Vec<StepDetail>> {
    // Parent names in byte order (COLLATE "C"), whatever the database's collation: the
    // order Rust's sort gives, so `POST /v1/tasks` (built in memory) and a read agree.
    // The same subquery is in `detail`.
    let rows = sqlx::query_as::<_, StepDetail>(
        "SELECT r.*, ws.results, ws.created_at, ws.completed_at,
                COALESCE((SELECT array_agg(pn.name::text ORDER BY pn.name COLLATE \"C\")
                          FROM tasker.workflow_step_edges e
                          JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
                          JOIN tasker.named_steps pn ON pn.named_step_uuid = p.named_step_uuid
                          WHERE e.to_step_uuid = r.workflow_step_uuid), '{}') AS parent_names
         FROM tasker.get_step_readiness_status($1) r
         JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = r.workflow_step_uuid
         ORDER BY ws.workflow_step_uuid",
    )
    .bind(task_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// One step of a task, with readiness and result; None if the step is not in the task.
pub async fn detail<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
    step_uuid: Uuid,
) -> Result<Option<StepDetail>> {
    // The parent names as in `list_for_task`.
    let row = sqlx::query_as::<_, StepDetail>(
        "SELECT r.*, ws.results, ws.created_at, ws.completed_at,
                COALESCE((SELECT array_agg(pn.name::text ORDER BY pn.name COLLATE \"C\")
                          FROM tasker.workflow_step_edges e
                          JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
                          JOIN tasker.named_steps pn ON pn.named_step_uuid = p.named_step_uuid
                          WHERE e.to_step_uuid = r.workflow_step_uuid), '{}') AS parent_names
         FROM tasker.get_step_readiness_status($1, ARRAY[$2]::uuid[]) r
         JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = r.workflow_step_uuid",
    )
    .bind(task_uuid)
    .bind(step_uuid)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

/// Every step of a task.
pub async fn ids_for_task<'e>(executor: impl PgExecutor<'e>, task_uuid: Uuid) -> Result<Vec<Uuid>> {
    let ids = sqlx::query_scalar(
        "SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1",
    )
    .bind(task_uuid)
    .fetch_all(executor)
    .await?;
    Ok(ids)
}
