//! Completing steps the orchestration processes: `enqueued_for_orchestration` →
//! `complete`, and the children this makes ready enqueued, in one statement.
//!
//! [`many`] completes steps of any tasks of one namespace and enqueues the children
//! they make ready; [`one`] is the same statement with one step. The orchestration
//! completes a whole batch of results with `many`: two statements per result (load,
//! then complete) became two per batch.
//!
//! A completion may carry the reporting worker's [`HandoffRequest`]: then one child it
//! makes ready is claimed for that worker in the same statement, instead of being
//! enqueued for any worker to claim (see [`many`]; the worker reads it with
//! [`super::handoff::load`]).

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;

use super::transition::sources;
use crate::database::Result;
use crate::database::splice::fill;
use crate::messaging::HandoffRequest;
use crate::state_machine::WorkflowStepState;

/// Where [`one`] sends the children it enqueues.
#[derive(Debug, Clone, Copy)]
pub struct ChildRoute<'a> {
    /// The worker queue of the task's namespace.
    pub queue: &'a QueueName,
    /// The task's trace id, carried by each step message.
    pub correlation_id: Uuid,
}

/// Completes a step the orchestration is processing (`enqueued_for_orchestration` →
/// `complete`) and, with `children`, enqueues the children this makes ready: each
/// `pending` child whose other parents are all `complete` or `resolved_manually` (and
/// that may still be attempted) moves to `enqueued` and gets its `StepMessage` on the
/// queue. One statement: [`many`] with one step. Returns None if the step was not
/// waiting for the orchestration (nothing was written), else the children enqueued.
///
/// The caller must hold the task's lock (see
/// [`super::processing::lock_and_load_one`]): it is what keeps a sibling parent from
/// completing between this statement's snapshot and its commit.
pub async fn one(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    metadata: &Value,
    children: Option<ChildRoute<'_>>,
) -> Result<Option<Vec<Uuid>>> {
    let completion = Completion {
        step_uuid,
        correlation_id: children.map(|c| c.correlation_id).unwrap_or_default(),
        handoff: None,
    };
    let moved = many(conn, &[completion], metadata, children.map(|c| c.queue)).await?;
    Ok(moved.into_iter().next().map(|(_, enqueued)| enqueued))
}

/// One step to complete, with the trace id its children's messages carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task's trace id.
    pub correlation_id: Uuid,
    /// The worker that reported it offers to run one of the children it makes ready.
    pub handoff: Option<HandoffRequest>,
}

/// Completes the steps that are `enqueued_for_orchestration` (others are left alone) and,
/// with `queue`, enqueues the children they make ready: each `pending` child whose
/// parents are all `complete`, `resolved_manually` or completing in this statement (and
/// that may still be attempted) moves to `enqueued` and gets its `StepMessage` on
/// `queue`. The history entry of each completed step records its attempt.
///
/// A completion with a [`HandoffRequest`] hands its first ready child (in uuid order) to
/// that worker instead: the child moves through `enqueued` to `in_progress` (attempt +
/// 1, history `{"event": "claimed", "handoff": true}`), and its message, marked
/// [`crate::messaging::Handed`], is leased to the worker for the request's lease
/// (`read_ct` 1, so a reader that finds it after the lease takes it over as a
/// redelivery) and named on the worker's handoff channel instead of the queue's.
///
/// Returns each step that moved with the children enqueued (or handed) because of it,
/// children in uuid order. A child made ready by two steps completing together is
/// enqueued once and listed under one of them.
///
/// The caller must hold the locks of the steps' tasks: they are what keep a sibling
/// parent from completing between this statement's snapshot and its commit. Every
/// step given must belong to a task of `queue`'s namespace.
pub async fn many(
    conn: &mut PgConnection,
    completions: &[Completion],
    metadata: &Value,
    queue: Option<&QueueName>,
) -> Result<Vec<(Uuid, Vec<Uuid>)>> {
    if completions.is_empty() {
        return Ok(Vec::new());
    }
    let sources_completed = sources(
        &[WorkflowStepState::EnqueuedForOrchestration],
        WorkflowStepState::Complete,
    )?;
    let ids: Vec<Uuid> = completions.iter().map(|c| c.step_uuid).collect();
    let Some(queue) = queue else {
        let rows: Vec<(Uuid, Vec<Uuid>)> =
            sqlx::query_as(include_str!("complete_many_no_children.sql"))
                .bind(&ids)
                .bind(&sources_completed)
                .bind(WorkflowStepState::Complete.as_str())
                .bind(metadata)
                .fetch_all(&mut *conn)
                .await?;
        return Ok(rows);
    };
    let sources_enqueued = sources(&[WorkflowStepState::Pending], WorkflowStepState::Enqueued)?;
    // A handed child moves on from `enqueued` to `in_progress`.
    sources(
        &[WorkflowStepState::Enqueued],
        WorkflowStepState::InProgress,
    )?;
    let correlation_ids: Vec<Uuid> = completions.iter().map(|c| c.correlation_id).collect();
    let tokens: Vec<Option<Uuid>> = completions
        .iter()
        .map(|c| c.handoff.as_ref().map(|h| h.token))
        .collect();
    let workers: Vec<Option<&str>> = completions
        .iter()
        .map(|c| c.handoff.as_ref().map(|h| h.worker_id.as_str()))
        .collect();
    let leases: Vec<Option<i32>> = completions
        .iter()
        .map(|c| c.handoff.as_ref().map(|h| h.lease_seconds.clamp(1, 86_400)))
        .collect();
    let rows: Vec<(Uuid, Vec<Uuid>)> = sqlx::query_as(&statement(queue))
        .bind(&ids)
        .bind(&sources_completed)
        .bind(WorkflowStepState::Complete.as_str())
        .bind(metadata)
        .bind(&sources_enqueued)
        .bind(WorkflowStepState::Enqueued.as_str())
        .bind(json!({"event": "enqueued"}))
        .bind(&correlation_ids)
        .bind(&tokens)
        .bind(&workers)
        .bind(&leases)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows)
}

fn statement(queue: &QueueName) -> String {
    use pgmq_notify::sql::{queue_table, returning_with_notify};
    fill(
        include_str!("complete_many.sql"),
        &[
            ("{worker_queue}", &queue_table(queue)),
            ("{worker_queue_notify}", &returning_with_notify(queue)),
            ("{worker_queue_name}", queue.as_str()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use crate::database::splice::tests::assert_filled;
    use crate::messaging::HANDOFF_CHANNEL_PREFIX;

    #[test]
    fn the_statement_sends_to_the_queue_and_hands_on_the_handoff_channel() {
        let queue = pgmq_notify::QueueName::worker("payments").unwrap();
        let statement = super::statement(&queue);
        assert_filled(&statement);
        assert!(statement.contains("INSERT INTO pgmq.q_worker_payments_queue (vt, message)"));
        assert!(
            statement.contains("INSERT INTO pgmq.q_worker_payments_queue (vt, read_ct, message)")
        );
        assert!(statement.contains("'queue', 'worker_payments_queue'"));
        // The channel the worker listens on (messaging::handoff_channel).
        assert!(statement.contains(&format!("pg_notify('{HANDOFF_CHANNEL_PREFIX}.' ||")));
    }
}
