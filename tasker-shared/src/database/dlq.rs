//! The dead letter queue and staleness detection.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::Result;

/// A row of `tasker.tasks_dlq`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DlqRow {
    /// The entry.
    pub dlq_entry_uuid: Uuid,
    /// The task.
    pub task_uuid: Uuid,
    /// State when given up on.
    pub original_state: String,
    /// Why.
    pub dlq_reason: String,
    /// When.
    pub dlq_timestamp: DateTime<Utc>,
    /// Investigation status.
    pub resolution_status: String,
    /// When resolved.
    pub resolution_timestamp: Option<DateTime<Utc>>,
    /// Notes.
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The task and steps as they were.
    pub task_snapshot: Value,
    /// Details.
    pub metadata: Value,
}

/// Adds a pending entry for a task, with a snapshot of the task and its steps. Returns
/// None if the task already has a pending entry.
pub async fn create_entry(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    original_state: &str,
    reason: &str,
    metadata: &Value,
) -> Result<Option<Uuid>> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO tasker.tasks_dlq (dlq_entry_uuid, task_uuid, original_state, dlq_reason, task_snapshot, metadata)
         SELECT $1, t.task_uuid, $3, $4,
                jsonb_build_object(
                    'task', to_jsonb(t),
                    'steps', COALESCE((SELECT jsonb_agg(to_jsonb(r)) FROM tasker.get_step_readiness_status(t.task_uuid) r), '[]'::jsonb)
                ),
                $5
         FROM tasker.tasks t WHERE t.task_uuid = $2
         ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING
         RETURNING dlq_entry_uuid",
    )
    .bind(Uuid::now_v7())
    .bind(task_uuid)
    .bind(original_state)
    .bind(reason)
    .bind(metadata)
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// Entries, newest first, optionally of one resolution status.
pub async fn list<'e>(
    executor: impl PgExecutor<'e>,
    resolution_status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<DlqRow>> {
    let rows = sqlx::query_as::<_, DlqRow>(
        "SELECT dlq_entry_uuid, task_uuid, original_state, dlq_reason, dlq_timestamp, resolution_status,
                resolution_timestamp, resolution_notes, resolved_by, task_snapshot, metadata
         FROM tasker.tasks_dlq
         WHERE ($1::text IS NULL OR resolution_status = $1)
         ORDER BY dlq_timestamp DESC, dlq_entry_uuid DESC
         LIMIT $2 OFFSET $3",
    )
    .bind(resolution_status)
    .bind(limit)
    .bind(offset)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// Staleness limits, in minutes, used when a template's `lifecycle` sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalenessThresholds {
    /// Longest idle time in `waiting_for_dependencies`.
    pub waiting_for_dependencies_minutes: i32,
    /// Longest idle time in `waiting_for_retry`.
    pub waiting_for_retry_minutes: i32,
    /// Longest time without progress in `steps_in_process`.
    pub steps_in_process_minutes: i32,
    /// Longest time in `blocked_by_failures`.
    pub blocked_minutes: i32,
}

impl Default for StalenessThresholds {
    fn default() -> Self {
        Self {
            waiting_for_dependencies_minutes: 60,
            waiting_for_retry_minutes: 60,
            steps_in_process_minutes: 120,
            blocked_minutes: 1440,
        }
    }
}

/// A task past its staleness threshold (`tasker.get_stale_tasks`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StaleTask {
    /// The task.
    pub task_uuid: Uuid,
    /// Its state.
    pub current_state: String,
    /// How long it has been idle in that state.
    pub minutes_in_state: f64,
    /// The threshold it passed.
    pub threshold_minutes: i32,
}

/// Tasks past their thresholds, most idle first.
pub async fn stale_tasks<'e>(
    executor: impl PgExecutor<'e>,
    thresholds: &StalenessThresholds,
    limit: i32,
) -> Result<Vec<StaleTask>> {
    let rows = sqlx::query_as::<_, StaleTask>(
        "SELECT task_uuid, current_state, minutes_in_state::float8 AS minutes_in_state, threshold_minutes
         FROM tasker.get_stale_tasks($1, $2, $3, $4, $5)",
    )
    .bind(thresholds.waiting_for_dependencies_minutes)
    .bind(thresholds.waiting_for_retry_minutes)
    .bind(thresholds.steps_in_process_minutes)
    .bind(thresholds.blocked_minutes)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// The newest entry of a task.
pub async fn for_task<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
) -> Result<Option<DlqRow>> {
    let row = sqlx::query_as::<_, DlqRow>(
        "SELECT dlq_entry_uuid, task_uuid, original_state, dlq_reason, dlq_timestamp, resolution_status,
                resolution_timestamp, resolution_notes, resolved_by, task_snapshot, metadata
         FROM tasker.tasks_dlq WHERE task_uuid = $1
         ORDER BY dlq_timestamp DESC, dlq_entry_uuid DESC LIMIT 1",
    )
    .bind(task_uuid)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

/// Changes to an entry; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DlqUpdate {
    /// New resolution status.
    pub resolution_status: Option<String>,
    /// New notes.
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// Metadata merged into the entry's.
    pub metadata: Option<Value>,
}

/// Updates an entry; returns it, or None if it does not exist. Leaving `pending` stamps
/// `resolution_timestamp`.
pub async fn update<'e>(
    executor: impl PgExecutor<'e>,
    entry: Uuid,
    change: &DlqUpdate,
) -> Result<Option<DlqRow>> {
    let row = sqlx::query_as::<_, DlqRow>(
        "UPDATE tasker.tasks_dlq SET
             resolution_status = COALESCE($2, resolution_status),
             resolution_notes = COALESCE($3, resolution_notes),
             resolved_by = COALESCE($4, resolved_by),
             metadata = metadata || COALESCE($5, '{}'::jsonb),
             resolution_timestamp = CASE
                 WHEN COALESCE($2, resolution_status) <> 'pending' THEN COALESCE(resolution_timestamp, now())
                 ELSE NULL END,
             updated_at = now()
         WHERE dlq_entry_uuid = $1
         RETURNING dlq_entry_uuid, task_uuid, original_state, dlq_reason, dlq_timestamp, resolution_status,
                   resolution_timestamp, resolution_notes, resolved_by, task_snapshot, metadata",
    )
    .bind(entry)
    .bind(&change.resolution_status)
    .bind(&change.resolution_notes)
    .bind(&change.resolved_by)
    .bind(&change.metadata)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

/// Counts per reason and per status, and the oldest pending entry's time.
pub async fn stats<'e, E>(
    executor: E,
) -> Result<(
    Vec<(String, i64)>,
    Vec<(String, i64)>,
    Option<DateTime<Utc>>,
)>
where
    E: PgExecutor<'e> + Copy,
{
    let by_reason =
        sqlx::query_as("SELECT dlq_reason, count(*) FROM tasker.tasks_dlq GROUP BY 1 ORDER BY 1")
            .fetch_all(executor)
            .await?;
    let by_status = sqlx::query_as(
        "SELECT resolution_status, count(*) FROM tasker.tasks_dlq GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(executor)
    .await?;
    let oldest = sqlx::query_scalar(
        "SELECT min(dlq_timestamp) FROM tasker.tasks_dlq WHERE resolution_status = 'pending'",
    )
    .fetch_one(executor)
    .await?;
    Ok((by_reason, by_status, oldest))
}
