//! A failed step's next attempt: when it becomes visible. The retry's timer is its
//! delayed message ([`super::message::delay_for_retry`]); nothing polls this column,
//! which readiness and the API report.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::database::Result;

/// Records when a step's next attempt becomes visible.
pub async fn set_next_at(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE tasker.workflow_steps SET next_retry_at = $2, updated_at = now() WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
