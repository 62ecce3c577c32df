//! Enqueueing steps: `pending` → `enqueued`, each with its message on the worker queue,
//! in one statement (a step is enqueued if and only if its message is on its queue).
//!
//! The children a completion makes ready are enqueued by [`super::complete`]; this is
//! for the rest (a task's ready steps found by the readiness sweep or an operator).

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;

use super::transition::sources;
use crate::database::splice::fill;
use crate::database::{Error, Result};
use crate::state_machine::WorkflowStepState;

/// Moves those of `step_uuids` that are still `pending` to `enqueued` and sends each
/// moved step's message (`messages[i]` belongs to `step_uuids[i]`) to `queue` with its
/// notification, in one statement: a step is enqueued if and only if its message is on
/// the queue (one message per step, even if a step is listed twice). Returns the steps
/// enqueued.
pub async fn many(
    conn: &mut PgConnection,
    step_uuids: &[Uuid],
    messages: &[Value],
    queue: &QueueName,
) -> Result<Vec<Uuid>> {
    if step_uuids.is_empty() {
        return Ok(Vec::new());
    }
    if step_uuids.len() != messages.len() {
        return Err(Error::Corrupt(format!(
            "{} steps to enqueue but {} messages",
            step_uuids.len(),
            messages.len()
        )));
    }
    let sources = sources(&[WorkflowStepState::Pending], WorkflowStepState::Enqueued)?;
    let ids = sqlx::query_scalar(&statement(queue))
        .bind(step_uuids)
        .bind(&sources)
        .bind(WorkflowStepState::Enqueued.as_str())
        .bind(json!({"event": "enqueued"}))
        .bind(messages)
        .fetch_all(conn)
        .await?;
    Ok(ids)
}

fn statement(queue: &QueueName) -> String {
    use pgmq_notify::sql::{queue_table, returning_with_notify};
    fill(
        include_str!("enqueue_many.sql"),
        &[
            ("{worker_queue}", &queue_table(queue)),
            ("{worker_queue_notify}", &returning_with_notify(queue)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use crate::database::splice::tests::assert_filled;

    #[test]
    fn the_statement_sends_to_the_queue() {
        let queue = pgmq_notify::QueueName::worker("payments").unwrap();
        let statement = super::statement(&queue);
        assert_filled(&statement);
        assert!(statement.contains("INSERT INTO pgmq.q_worker_payments_queue (vt, message)"));
        assert!(statement.contains("pg_notify('pgmq_message_ready.payments'"));
    }
}
