//! Workers' results with their handover, one or many of one worker queue in one
//! statement ([`batch`]; [`super::step::submit_result`] is a batch of one).

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;

use super::Result;
use super::step::result_transition;
use super::transition::current_step_state;
use crate::results::StepExecutionResult;
use crate::state_machine::{TransitionOutcome, WorkflowStepState};

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
pub async fn batch(
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
        let (to, meta) = result_transition(item.attempt, item.result);
        steps.push(item.step_uuid);
        attempts.push(item.attempt);
        states.push(to.as_str());
        metadata.push(meta);
        results.push(serde_json::to_value(item.result)?);
        msg_ids.push(item.msg_id);
        messages.push(item.message);
    }
    let worker_table = pgmq_notify::sql::queue_table(worker_queue);
    // Fenced on the attempt, the state moves and the
    // result is stored; the step's message is deleted only if no reader holds it (a
    // reader re-leasing it locks it before the step, the reverse order), and the
    // orchestration's message is sent only for the steps that moved.
    let statement = format!(
        "WITH u AS MATERIALIZED (
             -- One result per attempt, so that `old` holds a step at most once.
             SELECT DISTINCT ON (step, attempt) *
             FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[], $5::jsonb[],
                         $6::bigint[], $7::jsonb[])
                 AS u(step, attempt, to_state, metadata, results, msg_id, message)
             ORDER BY step, attempt
         ), old AS (
             SELECT ws.workflow_step_uuid, ws.current_state, u.to_state, u.metadata, u.results,
                    u.msg_id, u.message
             FROM tasker.workflow_steps ws
             JOIN u ON u.step = ws.workflow_step_uuid
             WHERE ws.workflow_step_uuid = ANY($1) AND ws.current_state = 'in_progress'
               AND ws.attempts = u.attempt
             ORDER BY ws.workflow_step_uuid
             FOR UPDATE OF ws
         ), updated AS (
             -- By key alone, with the values looked up in `old` in memory: joined to
             -- `old`, the UPDATE was planned as n² index probes (see claim.rs).
             UPDATE tasker.workflow_steps ws
             SET (current_state, results, last_failure_at) = (
                     SELECT o.to_state, o.results,
                            CASE WHEN o.to_state = 'enqueued_as_error_for_orchestration'
                                 THEN now() ELSE ws.last_failure_at END
                     FROM old o WHERE o.workflow_step_uuid = ws.workflow_step_uuid),
                 state_sort_key = ws.state_sort_key + 1, updated_at = now()
             WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM old))
             RETURNING ws.workflow_step_uuid, ws.attempts, ws.state_sort_key
         ), moved AS (
             SELECT u.workflow_step_uuid, u.attempts, u.state_sort_key,
                    o.current_state AS from_state, o.to_state, o.metadata, o.msg_id, o.message
             FROM updated u JOIN old o ON o.workflow_step_uuid = u.workflow_step_uuid
         ), ins AS (
             INSERT INTO tasker.workflow_step_transitions
                 (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
             SELECT tasker.uuid_generate_v7(), workflow_step_uuid, to_state, from_state, metadata,
                    state_sort_key
             FROM moved
         ), handed_back AS (
             DELETE FROM {worker_table}
             WHERE msg_id = ANY(ARRAY(SELECT q.msg_id FROM {worker_table} q
                                      WHERE q.msg_id = ANY(ARRAY(SELECT msg_id FROM moved))
                                      FOR UPDATE SKIP LOCKED))
         ), handed_over AS ({send})
         SELECT workflow_step_uuid, attempts FROM moved",
        send = pgmq_notify::sql::insert_with_notify(
            results_queue,
            "SELECT clock_timestamp(), message FROM moved ORDER BY workflow_step_uuid"
        ),
    );
    let moved: Vec<(Uuid, i32)> = sqlx::query_as(&statement)
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
                actual: current_step_state(conn, item.step_uuid).await?,
            }
        });
    }
    Ok(outcomes)
}
