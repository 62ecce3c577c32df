//! A step's history (`tasker.workflow_step_transitions`), oldest first.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::database::Result;

/// One entry of a step's history, with its name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    /// The transition.
    pub workflow_step_transition_uuid: Uuid,
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Step name.
    pub step_name: String,
    /// State left.
    pub from_state: Option<String>,
    /// State entered.
    pub to_state: String,
    /// Everything recorded.
    pub metadata: Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A step's history with its name, for the API; empty if the step is not in the task.
pub async fn audit<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
    step_uuid: Uuid,
) -> Result<Vec<AuditRow>> {
    let rows = sqlx::query_as::<_, AuditRow>(
        "SELECT st.workflow_step_transition_uuid, st.workflow_step_uuid, ws.task_uuid, ns.name AS step_name,
                st.from_state, st.to_state, st.metadata, st.created_at
         FROM tasker.workflow_step_transitions st
         JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = st.workflow_step_uuid
         JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
         WHERE st.workflow_step_uuid = $2 AND ws.task_uuid = $1
         ORDER BY st.sort_key",
    )
    .bind(task_uuid)
    .bind(step_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// A step's transitions, with which one is the latest.
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    step_uuid: Uuid,
) -> Result<Vec<crate::models::WorkflowStepTransition>> {
    let rows = sqlx::query_as(
        "SELECT workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key,
                sort_key = max(sort_key) OVER () AS most_recent, created_at
         FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = $1 ORDER BY sort_key",
    )
    .bind(step_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
