//! Processing a step result that a worker stored.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use pgmq_notify::{PgmqClient, QueueName};
use tasker_shared::database::{step, task, transition};
use tasker_shared::messaging::StepMessage;
use tasker_shared::state_machine::{TaskState, WorkflowStepState};

use super::backoff;
use super::step_enqueuer::{TaskRoute, enqueue_ready_among};
use super::task_finalizer::finalize;
use crate::error::{Error, Result};

/// What processing a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultOutcome {
    /// The step is complete; ready children were enqueued.
    Completed,
    /// The attempt failed; the next one is scheduled after this delay.
    RetryScheduled(Duration),
    /// The step failed for good.
    Failed,
    /// Nothing to do: a duplicate or late message.
    Stale,
}

/// Processes one message from `orchestration_step_results` and deletes it, in one
/// transaction. Processing the same message twice changes nothing the second time.
pub async fn process_message(
    pool: &PgPool,
    queue: &QueueName,
    msg_id: i64,
    message: &StepMessage,
) -> Result<ResultOutcome> {
    let clock = std::time::Instant::now();
    let mut tx = pool.begin().await?;
    let outcome = process(&mut tx, message).await?;
    PgmqClient::delete(&mut *tx, queue, msg_id).await?;
    tx.commit().await?;
    let label = match outcome {
        ResultOutcome::Completed => "completed",
        ResultOutcome::RetryScheduled(_) => "retry_scheduled",
        ResultOutcome::Failed => "failed",
        ResultOutcome::Stale => "stale",
    };
    crate::metrics::result_processed(label, clock.elapsed());
    Ok(outcome)
}

/// Applies a stored result to the step and its task, in the caller's transaction.
pub async fn process(conn: &mut PgConnection, message: &StepMessage) -> Result<ResultOutcome> {
    if !task::lock(&mut *conn, message.task_uuid).await? {
        return Ok(ResultOutcome::Stale);
    }
    let Some(step_row) = step::load_for_orchestration(&mut *conn, message.step_uuid).await? else {
        return Ok(ResultOutcome::Stale);
    };
    let task_state = transition::current_task_state(&mut *conn, message.task_uuid).await?;
    let task_live = task_state.is_some_and(|s| !s.is_terminal());
    // A blocked task waits for an operator: results of steps still running are
    // recorded, but nothing new starts until the failure is dealt with.
    let may_start_more = task_live && task_state != Some(TaskState::BlockedByFailures);
    let route = TaskRoute {
        task_uuid: message.task_uuid,
        namespace: &step_row.namespace,
        correlation_id: message.correlation_id,
    };

    let outcome = match step_row.state()? {
        WorkflowStepState::EnqueuedForOrchestration => {
            complete(conn, &step_row, route, may_start_more).await?
        }
        WorkflowStepState::EnqueuedAsErrorForOrchestration => {
            fail_or_retry(conn, &step_row, route, task_live).await?
        }
        _ => ResultOutcome::Stale,
    };
    if outcome != ResultOutcome::Stale && task_live {
        finalize(conn, route).await?;
    }
    Ok(outcome)
}

async fn complete(
    conn: &mut PgConnection,
    step_row: &step::StepForOrchestration,
    route: TaskRoute<'_>,
    enqueue_children: bool,
) -> Result<ResultOutcome> {
    let moved = transition::transition_step(
        &mut *conn,
        step_row.workflow_step_uuid,
        &[WorkflowStepState::EnqueuedForOrchestration],
        WorkflowStepState::Complete,
        &json!({"event": "completed", "attempt": step_row.attempts}),
        None,
    )
    .await?;
    if !moved.applied() {
        return Ok(ResultOutcome::Stale);
    }
    step::mark_completed(&mut *conn, step_row.workflow_step_uuid).await?;
    if enqueue_children {
        let children = step::children(&mut *conn, step_row.workflow_step_uuid).await?;
        enqueue_ready_among(conn, route, &children).await?;
    }
    Ok(ResultOutcome::Completed)
}

async fn fail_or_retry(
    conn: &mut PgConnection,
    step_row: &step::StepForOrchestration,
    route: TaskRoute<'_>,
    task_live: bool,
) -> Result<ResultOutcome> {
    let result = step_row
        .result()
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    let error = result.as_ref().and_then(|r| r.error.as_ref());
    let handler_says_retry = error.is_none_or(|e| e.retryable);
    let attempts_left = step_row.attempts_in_budget() < step_row.max_attempts;
    if task_live && handler_says_retry && step_row.retryable && attempts_left {
        let delay = match error.and_then(|e| e.retry_after_ms) {
            Some(ms) => Duration::from_millis(ms),
            None => backoff::delay(
                &step_row.backoff,
                u64::try_from(step_row.backoff_base_ms).unwrap_or(0),
                u64::try_from(step_row.max_backoff_ms).unwrap_or(0),
                u32::try_from(step_row.attempts_in_budget()).unwrap_or(1),
                fastrand::f64(),
            ),
        };
        let moved = transition::transition_step(
            &mut *conn,
            step_row.workflow_step_uuid,
            &[WorkflowStepState::EnqueuedAsErrorForOrchestration],
            WorkflowStepState::WaitingForRetry,
            &json!({"event": "retry_scheduled", "attempt": step_row.attempts, "delay_ms": delay.as_millis() as u64}),
            None,
        )
        .await?;
        if !moved.applied() {
            return Ok(ResultOutcome::Stale);
        }
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        step::set_next_retry_at(&mut *conn, step_row.workflow_step_uuid, at).await?;
        // The delayed message is the retry timer: it becomes visible when the backoff
        // ends, and the worker claims the step straight from waiting_for_retry.
        let queue = QueueName::worker(route.namespace)?;
        PgmqClient::send_with_notify_at(
            &mut *conn,
            &queue,
            &StepMessage {
                task_uuid: route.task_uuid,
                step_uuid: step_row.workflow_step_uuid,
                correlation_id: route.correlation_id,
            },
            at,
        )
        .await?;
        return Ok(ResultOutcome::RetryScheduled(delay));
    }
    let moved = transition::transition_step(
        &mut *conn,
        step_row.workflow_step_uuid,
        &[WorkflowStepState::EnqueuedAsErrorForOrchestration],
        WorkflowStepState::Error,
        &json!({
            "event": "failed",
            "attempt": step_row.attempts,
            "reason": if !handler_says_retry || !step_row.retryable { "permanent" } else { "attempts_exhausted" },
        }),
        None,
    )
    .await?;
    Ok(if moved.applied() {
        ResultOutcome::Failed
    } else {
        ResultOutcome::Stale
    })
}

/// Processes messages of `orchestration_step_results` (see [`process_message`]).
#[derive(Debug, Clone)]
pub struct OrchestrationResultProcessor {
    pool: PgPool,
    queue: QueueName,
}

impl OrchestrationResultProcessor {
    /// A processor on `pool`.
    pub fn new(pool: PgPool) -> Result<Self> {
        Ok(Self {
            pool,
            queue: QueueName::new(tasker_shared::messaging::ORCHESTRATION_STEP_RESULTS)?,
        })
    }

    /// Applies one result message and deletes it, in one transaction.
    pub async fn process_message(
        &self,
        msg_id: i64,
        message: &StepMessage,
    ) -> Result<ResultOutcome> {
        process_message(&self.pool, &self.queue, msg_id, message).await
    }
}
