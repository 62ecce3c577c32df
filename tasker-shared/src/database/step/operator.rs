//! An operator's changes to a step outside its state machine's normal flow (its
//! transition is [`super::transition::one`], under the task's lock): a fresh retry
//! budget, or a result recorded by hand.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::database::Result;
use crate::results::StepExecutionResult;

/// Gives a step a fresh set of attempts (operator reset). The attempt counter itself
/// keeps growing, because it is the fencing token; the retry budget restarts.
pub async fn reset_attempts(conn: &mut PgConnection, step_uuid: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE tasker.workflow_steps SET retry_baseline = attempts, next_retry_at = NULL, updated_at = now()
         WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a result recorded by an operator and marks the step completed.
pub async fn store_result(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    result: &StepExecutionResult,
) -> Result<()> {
    sqlx::query(
        "UPDATE tasker.workflow_steps SET results = $2, completed_at = now(), updated_at = now()
         WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .bind(serde_json::to_value(result)?)
    .execute(conn)
    .await?;
    Ok(())
}
