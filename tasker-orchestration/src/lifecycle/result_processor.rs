//! Processing a step result that a worker stored.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use pgmq_notify::QueueName;
use tasker_shared::database::step::complete::{self, Completion};
use tasker_shared::database::step::processing::{self, StepForOrchestration};
use tasker_shared::database::step::{self, message};
use tasker_shared::database::task::finalize::{self, AfterCompletion};
use tasker_shared::messaging::StepMessage;
use tasker_shared::state_machine::{TaskState, WorkflowStepState};

use super::backoff;
use super::step_enqueuer::TaskRoute;
use super::task_finalizer::{self, FinalizationAction, finalize_from};
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
    message::delete(&mut *tx, queue, msg_id).await?;
    tx.commit().await?;
    crate::metrics::result_processed(label(outcome), clock.elapsed());
    Ok(outcome)
}

/// Deliveries of one result message before a failure to process it is taken as
/// permanent and the message is archived.
pub const MAX_RESULT_DELIVERIES: i32 = 10;

/// Reads up to `qty` result messages and processes them all in one transaction: the
/// read, every state change, every message it sends and the deletes commit together, so
/// a batch costs one commit however many results it holds. The batch's tasks are locked
/// in task order, so concurrent orchestrators cannot deadlock.
///
/// The batch first runs without savepoints, its succeeded steps completed together (one
/// statement for all of them), and its messages are taken (deleted as they
/// are read, [`message::take_results`]) rather than leased and deleted afterwards: three
/// round trips fewer per batch and two per result. If any result fails (or a message
/// cannot be decoded), the whole transaction rolls back, which puts the messages back
/// untouched, and the batch is read again and processed result by result behind
/// savepoints (see [`process_batch_isolated`]): there, one that fails is rolled back
/// alone and comes back when its lease ends. Returns how many messages were read.
pub async fn process_batch(
    pool: &PgPool,
    queue: &QueueName,
    vt_seconds: i32,
    qty: i32,
) -> Result<usize> {
    let mut tx = pool.begin().await?;
    match process_batch_together(&mut tx, queue, qty).await {
        Ok((read, outcomes)) => {
            tx.commit().await?;
            for (outcome, elapsed, message) in outcomes {
                crate::metrics::result_processed(label(outcome), elapsed);
                tracing::debug!(?outcome, task_uuid = %message.task_uuid, step_uuid = %message.step_uuid, "step result processed");
            }
            Ok(read)
        }
        Err(error) => {
            // Roll back now, not when the connection is next used: until then the
            // transaction would keep the messages' rows locked from the re-read.
            // (An empty batch commits above, so an idle poll costs no fallback.)
            tx.rollback().await?;
            tracing::warn!(%error, "a batch of step results failed; processing its results one by one");
            process_batch_isolated(pool, queue, vt_seconds, qty).await
        }
    }
}

type Decoded = (i64, i32, StepMessage);

/// Reads up to `qty` messages in the caller's transaction; archives those that cannot be
/// decoded (they never will be) and returns the others in task order, with the count read.
async fn read_decoded(
    conn: &mut PgConnection,
    queue: &QueueName,
    vt_seconds: i32,
    qty: i32,
) -> Result<(Vec<Decoded>, usize)> {
    let messages = message::lease_results(&mut *conn, queue, vt_seconds, qty).await?;
    let read = messages.len();
    let mut decoded = Vec::with_capacity(read);
    for m in messages {
        match serde_json::from_value::<StepMessage>(m.message.clone()) {
            Ok(message) => decoded.push((m.msg_id, m.read_ct, message)),
            Err(error) => {
                // A message we cannot read will never become readable: park it.
                tracing::error!(%error, msg_id = m.msg_id, body = %m.message, "unreadable step result message archived");
                message::archive(&mut *conn, queue, m.msg_id).await?;
            }
        }
    }
    decoded.sort_by_key(|(_, _, m)| m.task_uuid);
    Ok((decoded, read))
}

fn result_span(message: &StepMessage) -> tracing::Span {
    tracing::info_span!(
        "step_result",
        task_uuid = %message.task_uuid,
        step_uuid = %message.step_uuid,
        correlation_id = %message.correlation_id
    )
}

/// The batch in the caller's transaction with no savepoints; any failure fails it all.
/// Returns the count taken and each result's outcome, to report after the commit.
async fn process_batch_together(
    conn: &mut PgConnection,
    queue: &QueueName,
    qty: i32,
) -> Result<(usize, Vec<(ResultOutcome, Duration, StepMessage)>)> {
    let taken = message::take_results(&mut *conn, queue, qty).await?;
    let read = taken.len();
    let mut messages = taken
        .into_iter()
        .map(|m| {
            // Archiving an unreadable message is the careful path's job.
            serde_json::from_value::<StepMessage>(m.message).map_err(|e| {
                Error::Corrupt(format!("unreadable step result message {}: {e}", m.msg_id))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    messages.sort_by_key(|m| m.task_uuid);
    let outcomes = process_together(conn, messages).await?;
    Ok((read, outcomes))
}

/// Applies a batch of results in the caller's transaction: one statement locks every
/// task (in task order) and loads every step, one per namespace completes every step
/// that succeeded and enqueues the children they make ready; failures, and the tasks
/// whose state may change, are then handled result by result.
async fn process_together(
    conn: &mut PgConnection,
    messages: Vec<StepMessage>,
) -> Result<Vec<(ResultOutcome, Duration, StepMessage)>> {
    use std::collections::{BTreeMap, HashMap};
    use tracing::Instrument;

    let clock = std::time::Instant::now();
    let pairs: Vec<(uuid::Uuid, uuid::Uuid)> = messages
        .iter()
        .map(|m| (m.task_uuid, m.step_uuid))
        .collect();
    let loaded: HashMap<(uuid::Uuid, uuid::Uuid), (TaskState, StepForOrchestration)> =
        processing::lock_and_load_many(&mut *conn, &pairs)
            .await?
            .into_iter()
            .map(|(state, row)| ((row.task_uuid, row.workflow_step_uuid), (state, row)))
            .collect();

    // Successes, grouped by where their children go (None: nowhere, the task may start
    // nothing new). A step named by two messages is completed once.
    let mut groups: BTreeMap<Option<String>, Vec<Completion>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for message in &messages {
        let Some((task_state, row)) = loaded.get(&(message.task_uuid, message.step_uuid)) else {
            continue;
        };
        if row.state()? != WorkflowStepState::EnqueuedForOrchestration
            || !seen.insert(message.step_uuid)
        {
            continue;
        }
        let may_start_more =
            !task_state.is_terminal() && *task_state != TaskState::BlockedByFailures;
        groups
            .entry(may_start_more.then(|| row.namespace.clone()))
            .or_default()
            .push(Completion {
                step_uuid: message.step_uuid,
                correlation_id: message.correlation_id,
                handoff: message.handoff.clone(),
            });
    }
    let mut completed: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (namespace, completions) in groups {
        let queue = namespace.as_deref().map(QueueName::worker).transpose()?;
        let moved = complete::many(
            &mut *conn,
            &completions,
            &json!({"event": "completed"}),
            queue.as_ref(),
        )
        .await?;
        let enqueued: usize = moved.iter().map(|(_, children)| children.len()).sum();
        if let Some(namespace) = &namespace
            && enqueued > 0
        {
            crate::metrics::steps_enqueued(namespace, enqueued);
        }
        completed.extend(
            moved
                .into_iter()
                .map(|(step, children)| (step, children.len())),
        );
    }
    let shared = clock.elapsed();

    // Each task's state as it stands now: a finalization earlier in the batch may have
    // moved it, and a later one must start from there.
    let mut task_states: HashMap<uuid::Uuid, TaskState> = loaded
        .values()
        .map(|(state, row)| (row.task_uuid, *state))
        .collect();
    let mut outcomes = Vec::with_capacity(messages.len());
    for message in messages {
        let clock = std::time::Instant::now();
        let outcome = match loaded.get(&(message.task_uuid, message.step_uuid)) {
            None => ResultOutcome::Stale,
            Some((loaded_state, row)) => {
                let task_state = task_states
                    .get(&message.task_uuid)
                    .copied()
                    .unwrap_or(*loaded_state);
                let route = TaskRoute {
                    task_uuid: message.task_uuid,
                    namespace: &row.namespace,
                    correlation_id: message.correlation_id,
                };
                let settle = match row.state()? {
                    // The first message of a step gets its completion; a duplicate is stale.
                    WorkflowStepState::EnqueuedForOrchestration => {
                        match completed.remove(&message.step_uuid) {
                            Some(children) => (ResultOutcome::Completed, children),
                            None => (ResultOutcome::Stale, 0),
                        }
                    }
                    WorkflowStepState::EnqueuedAsErrorForOrchestration => (
                        fail_or_retry(&mut *conn, row, route, !task_state.is_terminal())
                            .instrument(result_span(&message))
                            .await?,
                        0,
                    ),
                    _ => (ResultOutcome::Stale, 0),
                };
                let (outcome, now) = settle_task(&mut *conn, route, task_state, settle)
                    .instrument(result_span(&message))
                    .await?;
                task_states.insert(message.task_uuid, now);
                outcome
            }
        };
        outcomes.push((outcome, shared + clock.elapsed(), message));
    }
    Ok(outcomes)
}

/// The batch in one transaction, each result behind a savepoint: a result that fails is
/// rolled back alone, keeps its lease and comes back when the lease ends; one that
/// failed on [`MAX_RESULT_DELIVERIES`] deliveries is archived.
pub async fn process_batch_isolated(
    pool: &PgPool,
    queue: &QueueName,
    vt_seconds: i32,
    qty: i32,
) -> Result<usize> {
    use tracing::Instrument;
    let mut tx = pool.begin().await?;
    let (decoded, read) = read_decoded(&mut tx, queue, vt_seconds, qty).await?;
    for (msg_id, read_ct, message) in decoded {
        let clock = std::time::Instant::now();
        sqlx::query("SAVEPOINT step_result")
            .execute(&mut *tx)
            .await?;
        let outcome = process(&mut tx, &message)
            .instrument(result_span(&message))
            .await;
        match outcome {
            Ok(outcome) => {
                message::delete(&mut *tx, queue, msg_id).await?;
                sqlx::query("RELEASE SAVEPOINT step_result")
                    .execute(&mut *tx)
                    .await?;
                crate::metrics::result_processed(label(outcome), clock.elapsed());
                tracing::debug!(?outcome, task_uuid = %message.task_uuid, step_uuid = %message.step_uuid, "step result processed");
            }
            Err(error) => {
                sqlx::query("ROLLBACK TO SAVEPOINT step_result")
                    .execute(&mut *tx)
                    .await?;
                if read_ct >= MAX_RESULT_DELIVERIES {
                    // The same result failed on every delivery: park it in the queue's
                    // archive instead of failing forever. Its task stops progressing,
                    // so the staleness detector moves it to `error` and the DLQ.
                    message::archive(&mut *tx, queue, msg_id).await?;
                    tracing::error!(%error, msg_id, read_ct, task_uuid = %message.task_uuid, step_uuid = %message.step_uuid, "processing a step result failed on every delivery; message archived");
                } else {
                    tracing::warn!(%error, msg_id, read_ct, task_uuid = %message.task_uuid, "processing a step result failed; it will be retried when its lease ends");
                }
            }
        }
    }
    tx.commit().await?;
    Ok(read)
}

fn label(outcome: ResultOutcome) -> &'static str {
    match outcome {
        ResultOutcome::Completed => "completed",
        ResultOutcome::RetryScheduled(_) => "retry_scheduled",
        ResultOutcome::Failed => "failed",
        ResultOutcome::Stale => "stale",
    }
}

/// Applies a stored result to the step and its task, in the caller's transaction: a
/// batch of one (see [`process_together`]).
pub async fn process(conn: &mut PgConnection, message: &StepMessage) -> Result<ResultOutcome> {
    let outcomes = process_together(conn, vec![message.clone()]).await?;
    Ok(outcomes
        .into_iter()
        .next()
        .map_or(ResultOutcome::Stale, |(outcome, _, _)| outcome))
}

/// Brings the task's state in line with its steps after a result's `outcome`, unless it
/// cannot have changed; `task_state` is the task's state as it stands (read under the
/// task's lock, or left by an earlier finalization in the same transaction). Returns the
/// outcome and the task's state afterwards.
async fn settle_task(
    conn: &mut PgConnection,
    route: TaskRoute<'_>,
    task_state: TaskState,
    (outcome, enqueued_children): (ResultOutcome, usize),
) -> Result<(ResultOutcome, TaskState)> {
    // Readiness is incremental: a completed step leaves a task in steps_in_process
    // exactly where it is while the task has steps on their way (the children just
    // enqueued, or any other step enqueued, running or reported): its execution status
    // is `processing`. No step of a steps_in_process task is in error (the failure's own
    // finalization would have blocked the task), and the children the step made ready
    // were enqueued with its completion. When every step is done, the task is complete.
    // One statement tells these apart (and completes the task); only what is left, and
    // other outcomes, need the whole execution context, which reads every step of the
    // task: computed per result, a 1,000-step task cost O(n²).
    if outcome == ResultOutcome::Completed && task_state == TaskState::StepsInProcess {
        if enqueued_children > 0 {
            return Ok((outcome, task_state));
        }
        let metadata = json!({"event": "finalized", "execution_status": "all_complete"});
        match finalize::complete_if_done(&mut *conn, route.task_uuid, &metadata).await? {
            AfterCompletion::StepsOnTheirWay => return Ok((outcome, task_state)),
            AfterCompletion::Completed => {
                task_finalizer::finalized(route, TaskState::Complete);
                return Ok((outcome, TaskState::Complete));
            }
            AfterCompletion::Undecided => {}
        }
    }
    if outcome != ResultOutcome::Stale
        && !task_state.is_terminal()
        && let FinalizationAction::Transitioned(to) = finalize_from(conn, route, task_state).await?
    {
        return Ok((outcome, to));
    }
    Ok((outcome, task_state))
}

/// The longest delay a handler's `retry_after_ms` may ask for: one day.
const MAX_RETRY_AFTER_MS: u64 = 24 * 60 * 60 * 1000;

async fn fail_or_retry(
    conn: &mut PgConnection,
    step_row: &StepForOrchestration,
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
            // A handler may ask for a later retry, but not for one past the ceiling.
            Some(ms) => Duration::from_millis(ms.min(MAX_RETRY_AFTER_MS)),
            None => backoff::delay(
                &step_row.backoff,
                u64::try_from(step_row.backoff_base_ms).unwrap_or(0),
                u64::try_from(step_row.max_backoff_ms).unwrap_or(0),
                u32::try_from(step_row.attempts_in_budget()).unwrap_or(1),
                fastrand::f64(),
            ),
        };
        let moved = step::transition::one(
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
        step::retry::set_next_at(&mut *conn, step_row.workflow_step_uuid, at).await?;
        // The delayed message is the retry timer: it becomes visible when the backoff
        // ends, and the worker claims the step straight from waiting_for_retry.
        let queue = QueueName::worker(route.namespace)?;
        message::delay_for_retry(
            &mut *conn,
            &queue,
            &StepMessage::new(
                route.task_uuid,
                step_row.workflow_step_uuid,
                route.correlation_id,
            ),
            at,
        )
        .await?;
        return Ok(ResultOutcome::RetryScheduled(delay));
    }
    let moved = step::transition::one(
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
