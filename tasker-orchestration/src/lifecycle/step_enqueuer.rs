//! Moving ready steps to `enqueued` and sending their messages, atomically.
//!
//! The state change and the queue message commit in the caller's transaction, so a
//! worker can never receive a message for a step that is not `enqueued`, and a step can
//! never be `enqueued` without a message.

use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;
use tasker_shared::database::step;
use tasker_shared::messaging::StepMessage;

use crate::error::Result;

/// Where a task's step messages go.
#[derive(Debug, Clone, Copy)]
pub struct TaskRoute<'a> {
    /// The task.
    pub task_uuid: Uuid,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its trace id.
    pub correlation_id: Uuid,
}

/// Enqueues those of `step_uuids` that are still `pending`. Returns the steps enqueued.
pub async fn enqueue_steps(
    conn: &mut PgConnection,
    route: TaskRoute<'_>,
    step_uuids: &[Uuid],
) -> Result<Vec<Uuid>> {
    let queue = QueueName::worker(route.namespace)?;
    let messages = step_uuids
        .iter()
        .map(|&step_uuid| {
            serde_json::to_value(StepMessage::new(
                route.task_uuid,
                step_uuid,
                route.correlation_id,
            ))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(tasker_shared::database::Error::from)?;
    let ids = step::enqueue::many(&mut *conn, step_uuids, &messages, &queue).await?;
    if ids.is_empty() {
        return Ok(ids);
    }
    crate::metrics::steps_enqueued(route.namespace, ids.len());
    tracing::debug!(task_uuid = %route.task_uuid, count = ids.len(), "steps enqueued");
    Ok(ids)
}

/// Enqueues every ready step of a task (the fallback sweep's path).
pub async fn enqueue_all_ready(conn: &mut PgConnection, route: TaskRoute<'_>) -> Result<Vec<Uuid>> {
    let ready = ready_ids(step::read::readiness(&mut *conn, route.task_uuid, None).await?);
    enqueue_steps(conn, route, &ready).await
}

fn ready_ids(rows: Vec<step::read::StepReadinessStatus>) -> Vec<Uuid> {
    rows.into_iter()
        .filter(|r| r.ready_for_execution)
        .map(|r| r.workflow_step_uuid)
        .collect()
}

/// The fallback that finds tasks with ready steps nothing else enqueued (tasks created
/// without enqueueing, or after a crash between phases) and enqueues them.
#[derive(Debug, Clone)]
pub struct StepEnqueuerService {
    pool: sqlx::PgPool,
}

impl StepEnqueuerService {
    /// A service on `pool`.
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }

    /// Advances up to `limit` tasks with ready steps, highest priority first. Returns how
    /// many it advanced.
    pub async fn process_batch(&self, limit: i32) -> Result<usize> {
        let ready = tasker_shared::database::task::read::next_ready(&self.pool, limit).await?;
        let finalizer = super::task_finalizer::TaskFinalizer::new(self.pool.clone());
        let mut advanced = 0;
        for info in ready {
            // One broken task must not stall the others.
            match finalizer.finalize_task(info.task_uuid).await {
                Ok(_) => advanced += 1,
                Err(error) => {
                    tracing::warn!(%error, task_uuid = %info.task_uuid, "advancing a ready task failed")
                }
            }
        }
        Ok(advanced)
    }
}
