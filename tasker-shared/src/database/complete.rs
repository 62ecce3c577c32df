//! Completing steps the orchestration processes, many in one statement.
//!
//! [`steps`] moves steps from `enqueued_for_orchestration` to `complete` and, given a
//! worker queue, enqueues the children they make ready, whatever tasks the steps belong
//! to; [`super::step::complete`] is the same statement with one step. The orchestration
//! completes a whole batch of results with it: two statements per result (load, then
//! complete) became two per batch.
//!
//! A completion may carry the reporting worker's [`HandoffRequest`]: then one child it
//! makes ready is claimed for that worker in the same statement, instead of being
//! enqueued for any worker to claim (see [`steps`]).

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Result;
use super::transition::{step_sources, step_transition_sql};
use crate::messaging::{HANDOFF_CHANNEL_PREFIX, HandoffRequest};
use crate::state_machine::WorkflowStepState;
use pgmq_notify::QueueName;

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
pub async fn steps(
    conn: &mut PgConnection,
    completions: &[Completion],
    metadata: &Value,
    queue: Option<&QueueName>,
) -> Result<Vec<(Uuid, Vec<Uuid>)>> {
    if completions.is_empty() {
        return Ok(Vec::new());
    }
    let sources = step_sources(
        &[WorkflowStepState::EnqueuedForOrchestration],
        WorkflowStepState::Complete,
    )?;
    let ids: Vec<Uuid> = completions.iter().map(|c| c.step_uuid).collect();
    let Some(queue) = queue else {
        let rows: Vec<(Uuid, Vec<Uuid>)> = sqlx::query_as(concat!(
            step_transition_sql!(
                fence = "",
                set = "",
                metadata = "$4 || jsonb_build_object('attempt', moved.attempts)"
            ),
            "SELECT workflow_step_uuid, '{}'::uuid[] FROM moved"
        ))
        .bind(&ids)
        .bind(&sources)
        .bind(WorkflowStepState::Complete.as_str())
        .bind(metadata)
        .fetch_all(&mut *conn)
        .await?;
        return Ok(rows);
    };
    let enqueued_sources =
        step_sources(&[WorkflowStepState::Pending], WorkflowStepState::Enqueued)?;
    step_sources(
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
    // A CTE does not see the writes of its statement, so the readiness test counts the
    // steps completing here as done: it skips those parents. `handed` is each handing
    // parent's first ready child; `enqueued` moves those to `in_progress` (two history
    // entries) and the others to `enqueued`. A handed step's `last_attempted_at` is the
    // clock's, not the transaction's start: under the task's lock this statement may
    // run after another batch, begun later, completed one of the step's parents.
    let table = pgmq_notify::sql::queue_table(queue);
    let statement = format!(
        "{transition}, input AS (
             SELECT * FROM unnest($1::uuid[], $8::uuid[], $9::uuid[], $10::text[], $11::int[])
                 AS i(step_uuid, correlation_id, token, worker_id, lease)
         ), ready AS (
             SELECT DISTINCT ON (c.workflow_step_uuid)
                    c.workflow_step_uuid, m.workflow_step_uuid AS parent, i.correlation_id,
                    i.token, i.worker_id, i.lease
             FROM moved m
             JOIN input i ON i.step_uuid = m.workflow_step_uuid
             CROSS JOIN LATERAL (SELECT e.to_step_uuid FROM tasker.workflow_step_edges e
                                 WHERE e.from_step_uuid = m.workflow_step_uuid OFFSET 0) e
             CROSS JOIN LATERAL (SELECT c.* FROM tasker.workflow_steps c
                                 WHERE c.workflow_step_uuid = e.to_step_uuid OFFSET 0) c
             WHERE c.current_state = ANY($5)
               AND (c.attempts = c.retry_baseline
                    OR (c.retryable AND c.attempts - c.retry_baseline < c.max_attempts))
               AND NOT EXISTS (
                   SELECT 1 FROM tasker.workflow_step_edges pe
                   WHERE pe.to_step_uuid = c.workflow_step_uuid
                     AND pe.from_step_uuid <> ALL(ARRAY(SELECT workflow_step_uuid FROM moved))
                     AND (SELECT p.current_state FROM tasker.workflow_steps p
                          WHERE p.workflow_step_uuid = pe.from_step_uuid)
                         NOT IN ('complete', 'resolved_manually')
                   OFFSET 0)
             ORDER BY c.workflow_step_uuid, m.workflow_step_uuid
         ), handed AS (
             SELECT DISTINCT ON (parent) workflow_step_uuid
             FROM ready WHERE token IS NOT NULL
             ORDER BY parent, workflow_step_uuid
         ), enqueued AS (
             UPDATE tasker.workflow_steps ws
             SET current_state = CASE WHEN {is_handed} THEN 'in_progress' ELSE $6 END,
                 state_sort_key = ws.state_sort_key + CASE WHEN {is_handed} THEN 2 ELSE 1 END,
                 attempts = ws.attempts + CASE WHEN {is_handed} THEN 1 ELSE 0 END,
                 last_attempted_at = CASE WHEN {is_handed} THEN clock_timestamp()
                                          ELSE ws.last_attempted_at END,
                 updated_at = now()
             WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM ready))
               AND ws.current_state = ANY($5)
             RETURNING ws.workflow_step_uuid, ws.task_uuid, ws.state_sort_key, ws.attempts,
                       {is_handed} AS handed
         ), enqueued_history AS (
             INSERT INTO tasker.workflow_step_transitions
                 (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
             SELECT tasker.uuid_generate_v7(), workflow_step_uuid, $6, 'pending', $7,
                    state_sort_key - CASE WHEN handed THEN 1 ELSE 0 END
             FROM enqueued
             UNION ALL
             SELECT tasker.uuid_generate_v7(), e.workflow_step_uuid, 'in_progress', $6,
                    jsonb_build_object('event', 'claimed', 'worker_id', r.worker_id,
                                       'redelivered', false, 'handoff', true),
                    e.state_sort_key
             FROM enqueued e JOIN ready r ON r.workflow_step_uuid = e.workflow_step_uuid
             WHERE e.handed
         ), sent AS ({send}), handed_sent AS (
             INSERT INTO {table} (vt, read_ct, message)
             SELECT clock_timestamp() + make_interval(secs => r.lease), 1,
                    jsonb_build_object(
                        'task_uuid', e.task_uuid, 'step_uuid', e.workflow_step_uuid,
                        'correlation_id', r.correlation_id,
                        'handed', jsonb_build_object('token', r.token, 'attempt', e.attempts))
             FROM enqueued e JOIN ready r ON r.workflow_step_uuid = e.workflow_step_uuid
             WHERE e.handed
             RETURNING pg_notify('{prefix}.' || replace((message -> 'handed' ->> 'token'), '-', ''),
                                 json_build_object('queue', '{queue_name}', 'msg_id', msg_id)::text)
         )
         SELECT m.workflow_step_uuid,
                ARRAY(SELECT r.workflow_step_uuid FROM ready r
                      WHERE r.parent = m.workflow_step_uuid
                        AND r.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM enqueued))
                      ORDER BY r.workflow_step_uuid)
         FROM moved m",
        transition = step_transition_sql!(
            fence = "",
            set = "",
            metadata = "$4 || jsonb_build_object('attempt', moved.attempts)"
        ),
        send = pgmq_notify::sql::insert_with_notify(
            queue,
            "SELECT clock_timestamp(), jsonb_build_object(
                 'task_uuid', e.task_uuid, 'step_uuid', e.workflow_step_uuid,
                 'correlation_id', r.correlation_id)
             FROM enqueued e JOIN ready r ON r.workflow_step_uuid = e.workflow_step_uuid
             WHERE NOT e.handed"
        ),
        prefix = HANDOFF_CHANNEL_PREFIX,
        is_handed = "ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM handed))",
        queue_name = queue.as_str(),
    );
    let rows: Vec<(Uuid, Vec<Uuid>)> = sqlx::query_as(&statement)
        .bind(&ids)
        .bind(&sources)
        .bind(WorkflowStepState::Complete.as_str())
        .bind(metadata)
        .bind(&enqueued_sources)
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
