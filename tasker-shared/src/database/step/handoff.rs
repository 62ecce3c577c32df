//! The worker's side of a handoff: the steps the orchestration claimed for this worker
//! process when it completed their parent ([`crate::messaging::HandoffRequest`]; the
//! claim itself is written by [`super::complete::many`]).
//!
//! [`load`] reads the handed steps (no write: they are claimed already); [`ids`] and
//! [`offers_queued`] scan a queue table for a worker's rescans and its shutdown.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use pgmq_notify::QueueName;

use super::claim::{Delivery, DeliveryRow, deliveries};
use crate::database::Result;
use crate::database::splice::fill;
use crate::state_machine::WorkflowStepState;

/// Loads the steps of `msg_ids` (messages of `queue`) that the orchestration handed to
/// the worker process with handoff `token` and that are still its to run: the message
/// is marked handed to `token`, not read since and its lease not over (past it, any
/// reader may take the step over), and its step is `in_progress` under the handed
/// attempt. A read: the claim was written with the handoff. Messages that no
/// longer qualify are left alone (their step moved on; the message goes when its lease
/// ends). Returns [`Delivery::Claimed`] items, in `msg_id` order, each with what is left
/// of its lease.
pub async fn load(
    conn: &mut PgConnection,
    queue: &QueueName,
    token: Uuid,
    msg_ids: &[i64],
) -> Result<Vec<Delivery>> {
    if msg_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<DeliveryRow> = sqlx::query_as(&load_statement(queue))
        .bind(msg_ids)
        .bind(token.to_string())
        .bind(WorkflowStepState::InProgress.as_str())
        .fetch_all(conn)
        .await?;
    Ok(deliveries(rows))
}

fn load_statement(queue: &QueueName) -> String {
    fill(
        include_str!("handoff_load.sql"),
        &[("{worker_queue}", &pgmq_notify::sql::queue_table(queue))],
    )
}

/// The ids of the messages on `queue` handed to `token` that are still its to take (not
/// read since, lease running), oldest first: a scan of the queue table, for the rare
/// moments a worker may have missed their notifications.
pub async fn ids<'e>(
    executor: impl PgExecutor<'e>,
    queue: &QueueName,
    token: Uuid,
) -> Result<Vec<i64>> {
    let statement = fill(
        "SELECT msg_id FROM {worker_queue} WHERE message -> 'handed' ->> 'token' = $1
           AND read_ct = 1 AND vt > clock_timestamp()
         ORDER BY msg_id",
        &[("{worker_queue}", &pgmq_notify::sql::queue_table(queue))],
    );
    let ids = sqlx::query_scalar(&statement)
        .bind(token.to_string())
        .fetch_all(executor)
        .await?;
    Ok(ids)
}

/// How many results on `results_queue` still carry the handoff offer of `token`: the
/// orchestration takes a result in the transaction that makes its handoff, so none left
/// means every handoff for them is made.
pub async fn offers_queued<'e>(
    executor: impl PgExecutor<'e>,
    results_queue: &QueueName,
    token: Uuid,
) -> Result<i64> {
    let statement = fill(
        "SELECT count(*) FROM {results_queue} WHERE message -> 'handoff' ->> 'token' = $1",
        &[(
            "{results_queue}",
            &pgmq_notify::sql::queue_table(results_queue),
        )],
    );
    let queued = sqlx::query_scalar(&statement)
        .bind(token.to_string())
        .fetch_one(executor)
        .await?;
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use crate::database::splice::tests::assert_filled;

    #[test]
    fn the_load_statement_names_the_queue() {
        let queue = pgmq_notify::QueueName::worker("payments").unwrap();
        let statement = super::load_statement(&queue);
        assert_filled(&statement);
        assert!(statement.contains("FROM pgmq.q_worker_payments_queue m"));
    }
}
