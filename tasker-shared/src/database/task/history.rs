//! A task's history (`tasker.task_transitions`), oldest first.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::database::Result;

/// A task's transitions, with which one is the latest.
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
) -> Result<Vec<crate::models::TaskTransition>> {
    let rows = sqlx::query_as(
        "SELECT task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key,
                sort_key = max(sort_key) OVER () AS most_recent, created_at
         FROM tasker.task_transitions WHERE task_uuid = $1 ORDER BY sort_key",
    )
    .bind(task_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
