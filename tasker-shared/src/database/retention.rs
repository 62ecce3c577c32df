//! Retention: deleting finished tasks and archived queue messages past an age, in
//! batches, so that the hot tables stay small.
//!
//! A task is finished when its current state is `complete`, `error`, `cancelled` or
//! `resolved_manually`; its age is the time since it entered that state. A task with a
//! DLQ entry still `pending` investigation is kept whatever its age. Deleting a task
//! deletes its steps, edges and both histories in the same transaction (the hot tables
//! have no foreign keys to cascade, see migration 11) and its DLQ entries by
//! `ON DELETE CASCADE`. Each batch is its own transaction, so locks are held briefly
//! and an interrupted purge loses nothing: the next run carries on.

use std::time::Duration;

use sqlx::PgPool;

use pgmq_notify::PgmqClient;

use crate::database::Result;

/// What a purge deleted (or, for a dry run, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Finished tasks, each with its steps, edges, transitions and DLQ entries.
    pub tasks: u64,
    /// Messages from the queues' archive tables (`pgmq.a_*`).
    pub archived_messages: u64,
}

const FINISHED: &str = "
    SELECT t.task_uuid
    FROM tasker.tasks t
    WHERE t.current_state IN ('complete', 'error', 'cancelled', 'resolved_manually')
      AND t.state_changed_at < now() - $1 * interval '1 second'
      AND NOT EXISTS (
          SELECT 1 FROM tasker.tasks_dlq d
          WHERE d.task_uuid = t.task_uuid AND d.resolution_status = 'pending')";

/// Deletes finished tasks older than `older_than` and archived queue messages older
/// than `older_than`, `batch_size` tasks (or messages) per transaction, until none are
/// left.
pub async fn purge(pool: &PgPool, older_than: Duration, batch_size: i64) -> Result<PurgeReport> {
    let seconds = older_than.as_secs_f64();
    let limit = batch_size.max(1);
    let mut report = PurgeReport::default();
    loop {
        let deleted = purge_batch(pool, seconds, limit).await?;
        report.tasks += deleted;
        // A full batch deleted rows, so the loop ends; a short one means no more
        // candidates that nobody holds (a task locked now goes at the next run).
        if deleted < limit as u64 {
            break;
        }
    }
    for queue in PgmqClient::queue_names(pool).await? {
        loop {
            let deleted = PgmqClient::delete_archived_before(pool, &queue, seconds, limit).await?;
            report.archived_messages += deleted;
            if deleted < limit as u64 {
                break;
            }
        }
    }
    Ok(report)
}

/// Deletes up to `limit` finished tasks with their steps, edges and histories, in one
/// transaction. The tables have no foreign keys to cascade (migration 11), so the
/// transaction locks the tasks (skipping any that someone holds) and then their steps,
/// in step order like every writer of steps: a worker still moving a step of a finished
/// task (a late result after a cancellation) has committed by then, history row
/// included, and none can start. The delete is a later statement, so it sees every
/// row committed before the locks were granted and leaves none behind.
async fn purge_batch(pool: &PgPool, seconds: f64, limit: i64) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let doomed: Vec<uuid::Uuid> =
        sqlx::query_scalar(&format!("{FINISHED} LIMIT $2 FOR UPDATE OF t SKIP LOCKED"))
            .bind(seconds)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
    if doomed.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    sqlx::query(
        "SELECT count(*) FROM (
             SELECT 1 FROM tasker.workflow_steps WHERE task_uuid = ANY($1)
             ORDER BY workflow_step_uuid FOR UPDATE
         ) locked",
    )
    .bind(&doomed)
    .execute(&mut *tx)
    .await?;
    let deleted: i64 = sqlx::query_scalar(
        "WITH steps AS (
             SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = ANY($1)
         ), step_history AS (
             DELETE FROM tasker.workflow_step_transitions
             WHERE workflow_step_uuid IN (SELECT workflow_step_uuid FROM steps)
         ), edges AS (
             DELETE FROM tasker.workflow_step_edges
             WHERE from_step_uuid IN (SELECT workflow_step_uuid FROM steps)
         ), deleted_steps AS (
             DELETE FROM tasker.workflow_steps WHERE task_uuid = ANY($1)
         ), task_history AS (
             DELETE FROM tasker.task_transitions WHERE task_uuid = ANY($1)
         ), tasks AS (
             DELETE FROM tasker.tasks WHERE task_uuid = ANY($1) RETURNING 1
         )
         SELECT count(*) FROM tasks",
    )
    .bind(&doomed)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// What [`purge`] would delete now, without deleting anything.
pub async fn count_purgeable(pool: &PgPool, older_than: Duration) -> Result<PurgeReport> {
    let seconds = older_than.as_secs_f64();
    let tasks: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM ({FINISHED}) f"))
        .bind(seconds)
        .fetch_one(pool)
        .await?;
    let mut archived_messages = 0;
    for queue in PgmqClient::queue_names(pool).await? {
        let n = PgmqClient::count_archived_before(pool, &queue, seconds).await?;
        archived_messages += u64::try_from(n).unwrap_or(0);
    }
    Ok(PurgeReport {
        tasks: u64::try_from(tasks).unwrap_or(0),
        archived_messages,
    })
}
