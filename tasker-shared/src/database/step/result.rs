//! A worker's result: stored for the attempt that produced it (the fence) and handed to
//! the orchestration.
//!
//! [`record`] stores a result in the caller's transaction. [`submit_one`] and
//! [`submit_many`] store results with their [`Handover`] (the step message deleted,
//! the orchestration's message sent) in one statement: one round trip for a worker's
//! whole submission; `submit_one` is `submit_many` with one item.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;

use super::transition::{current_state, sources};
use crate::database::splice::fill;
use crate::database::states::parse_step;
use crate::database::{Error, Result};
use crate::results::StepExecutionResult;
use crate::state_machine::{TransitionOutcome, WorkflowStepState};

/// Stores a worker's result for `attempt` and hands the step to the orchestration
/// (`enqueued_for_orchestration` or `enqueued_as_error_for_orchestration`), in the
/// caller's transaction. Writes nothing and returns `Conflict` if the step is no longer
/// in progress under that attempt (the lease expired and someone else claimed it, or the
/// task was cancelled).
pub async fn record(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    attempt: i32,
    result: &StepExecutionResult,
) -> Result<TransitionOutcome<WorkflowStepState>> {
    let (to, metadata) = transition_for(attempt, result);
    let sources = sources(&[WorkflowStepState::InProgress], to)?;
    let ids = [step_uuid];
    let moved: Option<String> = sqlx::query_scalar(include_str!("result_record.sql"))
        .bind(&ids[..])
        .bind(&sources)
        .bind(to.as_str())
        .bind(&metadata)
        .bind(attempt)
        .bind(serde_json::to_value(result)?)
        .fetch_optional(&mut *conn)
        .await?;
    match moved {
        Some(from) => Ok(TransitionOutcome::Applied {
            from: parse_step(&from)?,
        }),
        None => Ok(TransitionOutcome::Conflict {
            actual: current_state(conn, step_uuid).await?,
        }),
    }
}

/// Where a worker's result goes once it is recorded: the step's message on the worker
/// queue is deleted and `message` is sent (with its notification) to the results queue.
#[derive(Debug, Clone, Copy)]
pub struct Handover<'a> {
    /// The worker queue holding the step's message.
    pub worker_queue: &'a QueueName,
    /// That message.
    pub msg_id: i64,
    /// The queue the orchestration reads results from.
    pub results_queue: &'a QueueName,
    /// What to send there.
    pub message: &'a Value,
}

/// [`record`] and, only when it applies, the [`Handover`], in one statement (one round
/// trip for a worker's whole submission, before its commit): [`submit_many`] with one
/// item.
pub async fn submit_one(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    attempt: i32,
    result: &StepExecutionResult,
    handover: Handover<'_>,
) -> Result<TransitionOutcome<WorkflowStepState>> {
    let item = Submission {
        step_uuid,
        attempt,
        result,
        msg_id: handover.msg_id,
        message: handover.message,
    };
    let mut outcomes =
        submit_many(conn, handover.worker_queue, handover.results_queue, &[item]).await?;
    outcomes
        .pop()
        .ok_or_else(|| Error::Corrupt("a submission returned no outcome".into()))
}

/// One result to submit: the step, the attempt that produced it (the fence), the result,
/// the step's message on the worker queue and the message for the orchestration.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The step.
    pub step_uuid: Uuid,
    /// The attempt that ran.
    pub attempt: i32,
    /// What the handler returned.
    pub result: &'a StepExecutionResult,
    /// The step's message on the worker queue, deleted with the result.
    pub msg_id: i64,
    /// What to send to the results queue.
    pub message: &'a Value,
}

/// Records each result that is still wanted (its step `in_progress` under that attempt),
/// deletes its step message from `worker_queue` (unless a reader holds it) and sends its
/// message to `results_queue`, with the notification, in one statement. Returns one
/// outcome per item, in order; an item that was not applied wrote nothing.
pub async fn submit_many(
    conn: &mut PgConnection,
    worker_queue: &QueueName,
    results_queue: &QueueName,
    items: &[Submission<'_>],
) -> Result<Vec<TransitionOutcome<WorkflowStepState>>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut steps = Vec::with_capacity(items.len());
    let mut attempts = Vec::with_capacity(items.len());
    let mut states = Vec::with_capacity(items.len());
    let mut metadata = Vec::with_capacity(items.len());
    let mut results = Vec::with_capacity(items.len());
    let mut msg_ids = Vec::with_capacity(items.len());
    let mut messages = Vec::with_capacity(items.len());
    for item in items {
        let (to, meta) = transition_for(item.attempt, item.result);
        steps.push(item.step_uuid);
        attempts.push(item.attempt);
        states.push(to.as_str());
        metadata.push(meta);
        results.push(serde_json::to_value(item.result)?);
        msg_ids.push(item.msg_id);
        messages.push(item.message);
    }
    let moved: Vec<(Uuid, i32)> =
        sqlx::query_as(&submit_many_statement(worker_queue, results_queue))
            .bind(&steps)
            .bind(&attempts)
            .bind(&states)
            .bind(&metadata)
            .bind(&results)
            .bind(&msg_ids)
            .bind(&messages)
            .fetch_all(&mut *conn)
            .await?;
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        outcomes.push(if moved.contains(&(item.step_uuid, item.attempt)) {
            TransitionOutcome::Applied {
                from: WorkflowStepState::InProgress,
            }
        } else {
            TransitionOutcome::Conflict {
                actual: current_state(conn, item.step_uuid).await?,
            }
        });
    }
    Ok(outcomes)
}

fn submit_many_statement(worker_queue: &QueueName, results_queue: &QueueName) -> String {
    use pgmq_notify::sql::{queue_table, returning_with_notify};
    fill(
        include_str!("result_submit_many.sql"),
        &[
            ("{worker_queue}", &queue_table(worker_queue)),
            (
                "{results_queue_notify}",
                &returning_with_notify(results_queue),
            ),
            ("{results_queue}", &queue_table(results_queue)),
        ],
    )
}

/// The state a result moves its step to, and the history entry's metadata.
fn transition_for(attempt: i32, result: &StepExecutionResult) -> (WorkflowStepState, Value) {
    let to = if result.success {
        WorkflowStepState::EnqueuedForOrchestration
    } else {
        WorkflowStepState::EnqueuedAsErrorForOrchestration
    };
    let metadata = json!({
        "event": if result.success { "result_succeeded" } else { "result_failed" },
        "worker_id": result.metadata.worker_id,
        "attempt": attempt,
        "execution_time_ms": result.metadata.execution_time_ms,
    });
    (to, metadata)
}

#[cfg(test)]
mod tests {
    use crate::database::splice::tests::assert_filled;
    use pgmq_notify::QueueName;

    #[test]
    fn the_submission_names_both_queues() {
        let worker = QueueName::worker("payments").unwrap();
        let results = QueueName::new("orchestration_step_results").unwrap();
        let statement = super::submit_many_statement(&worker, &results);
        assert_filled(&statement);
        assert!(statement.contains("DELETE FROM pgmq.q_worker_payments_queue"));
        assert!(statement.contains("INSERT INTO pgmq.q_orchestration_step_results (vt, message)"));
        assert!(statement.contains("pg_notify('pgmq_message_ready.orchestration'"));
    }
}
