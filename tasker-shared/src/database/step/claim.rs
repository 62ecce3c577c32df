//! Claiming steps: a worker takes a step for a new attempt (`in_progress`, attempt + 1,
//! the fencing token) and gets its context with every ancestor's result; or gives a
//! claimed attempt back.
//!
//! [`one`] claims a step named by a message the caller already read. [`from_queue`]
//! leases up to `qty` messages of a worker queue and claims their steps in a single
//! statement, so the leases and the claims commit together without an explicit
//! transaction: one round trip where reading, then claiming each step, took three plus
//! one per message. [`release`] gives a claimed attempt back (a worker shutting down).
//!
//! The steps the orchestration claimed for a worker (handoffs) are loaded by
//! [`super::handoff`], into the same [`Delivery`].

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use pgmq_notify::QueueName;

use super::transition::{self, current_state, sources};
use crate::database::splice::fill;
use crate::database::states::parse_step;
use crate::database::{Error, Result};
use crate::messaging::StepMessage;
use crate::state_machine::WorkflowStepState;

/// Everything a worker needs to run a step it claimed.
#[derive(Debug, Clone)]
pub struct ClaimedStep {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Step name.
    pub step_name: String,
    /// Handler lookup key.
    pub handler_callable: String,
    /// Handler initialization.
    pub inputs: Value,
    /// This attempt's number: the fencing token for recording the result.
    pub attempt: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Attempts before the last operator reset or shutdown release; they do not count
    /// against `max_attempts`.
    pub retry_baseline: i32,
    /// Whether failures may be retried.
    pub retryable: bool,
    /// Per-attempt time limit.
    pub timeout_seconds: Option<i32>,
    /// The task's input.
    pub task_context: Value,
    /// Trace id.
    pub correlation_id: Uuid,
    /// Template name.
    pub task_name: String,
    /// Template version.
    pub task_version: String,
    /// Namespace.
    pub namespace: String,
    /// Names of the direct parents.
    pub parents: Vec<String>,
    /// Results (the handler's `result` value) of every ancestor, by step name.
    pub dependency_results: BTreeMap<String, Value>,
}

impl ClaimedStep {
    /// The step's message, as the orchestration sent it and expects it back.
    pub fn message(&self) -> StepMessage {
        StepMessage::new(self.task_uuid, self.step_uuid, self.correlation_id)
    }

    /// Whether this attempt is past the step's budget. Only a redelivery gets here: a
    /// worker took the step and vanished (crashed, or was killed by its handler) often
    /// enough to use every attempt. Running it again could crash the next worker too,
    /// so the step fails instead of looping forever.
    pub fn over_budget(&self) -> bool {
        self.attempt - self.retry_baseline > self.max_attempts.max(1)
    }
}

/// What [`one`] did.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// The step is ours for this attempt.
    Claimed(Box<ClaimedStep>),
    /// The step is not claimable (already done, cancelled, claimed by someone else…);
    /// the message that led here is stale.
    NotClaimable {
        /// Its actual state (None if it does not exist).
        actual: Option<WorkflowStepState>,
    },
}

/// One message [`from_queue`] leased (or [`super::handoff::load`] found), and what
/// became of its step.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The step is claimed for a new attempt; run it.
    Claimed {
        /// The message, to delete with the result.
        msg_id: i64,
        /// How many times it has been read, this read included.
        read_ct: i32,
        /// The step and its context.
        step: Box<ClaimedStep>,
        /// What is left of the message's lease, when it was not just set (a handoff's
        /// lease started when the orchestration handed the step over).
        lease_left_ms: Option<i64>,
    },
    /// The message names a step that is not claimable now (done, cancelled, held by a
    /// live attempt, or named by another message of the same read): the message is
    /// stale.
    NotClaimable {
        /// The message.
        msg_id: i64,
        /// The step it names.
        step_uuid: Uuid,
        /// The step's state when the statement started (None if it does not exist).
        actual: Option<WorkflowStepState>,
    },
    /// The body does not name a step (no `step_uuid` in canonical UUID form).
    Unreadable {
        /// The message.
        msg_id: i64,
        /// Its body.
        body: Value,
    },
    /// The row could not be turned into one of the above (a corrupt state name, or a
    /// claimed step without its task, template or namespace: a task and its steps are
    /// created and deleted together and registry rows are never deleted, so only a hand
    /// edit of the tables can cause it). Reported alone, so it does not hold back the
    /// rest of the read.
    Broken {
        /// The message.
        msg_id: i64,
        /// What was wrong.
        error: String,
    },
}

/// Claims a step for a new attempt: moves it to `in_progress`, bumps its attempt
/// counter (the fencing token) and loads its context, in the caller's transaction.
///
/// `redelivered` says the queue message was read before (its previous lease expired);
/// only then may a step still marked `in_progress` be claimed again.
pub async fn one(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    worker_id: &str,
    redelivered: bool,
) -> Result<ClaimOutcome> {
    let from: &[WorkflowStepState] = if redelivered {
        WorkflowStepState::CLAIMABLE
    } else {
        &[
            WorkflowStepState::Enqueued,
            WorkflowStepState::WaitingForRetry,
        ]
    };
    let metadata = json!({"event": "claimed", "worker_id": worker_id, "redelivered": redelivered});
    let sources = sources(from, WorkflowStepState::InProgress)?;
    let row = sqlx::query_as::<_, StepContextRow>(include_str!("claim_one.sql"))
        .bind(&[step_uuid][..])
        .bind(&sources)
        .bind(WorkflowStepState::InProgress.as_str())
        .bind(&metadata)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(ClaimOutcome::NotClaimable {
            actual: current_state(&mut *conn, step_uuid).await?,
        });
    };

    Ok(ClaimOutcome::Claimed(Box::new(row.into_claimed(step_uuid))))
}

/// Leases up to `qty` visible messages of `queue` for `vt_seconds` and claims their
/// steps (`enqueued`/`waiting_for_retry` → `in_progress`, attempt + 1, the context with
/// every ancestor's result), in one statement that commits on its own. A message read
/// before (its last lease ended) may also reclaim a step still `in_progress`: its worker
/// is gone. The first takeover of a handed message (a handoff whose lease ended,
/// `read_ct` 2) does not count the handed attempt against `max_attempts` (its
/// `retry_baseline` moves with it, as a release's does): the worker it was handed to
/// may never have started it. Later takeovers count as usual, so a step that kills
/// its workers still fails after at most one extra attempt. Steps are locked in
/// `step_uuid` order, so overlapping reads cannot deadlock; of several messages naming
/// one step, a redelivered one claims it, else the oldest.
///
/// Every leased message comes back, in `msg_id` order; the caller deletes the stale
/// ones and archives the unreadable ones.
pub async fn from_queue(
    conn: &mut PgConnection,
    queue: &QueueName,
    worker_id: &str,
    vt_seconds: i32,
    qty: i32,
) -> Result<Vec<Delivery>> {
    let fresh = sources(
        &[
            WorkflowStepState::Enqueued,
            WorkflowStepState::WaitingForRetry,
        ],
        WorkflowStepState::InProgress,
    )?;
    let redelivered = sources(WorkflowStepState::CLAIMABLE, WorkflowStepState::InProgress)?;
    let rows: Vec<DeliveryRow> = sqlx::query_as(&from_queue_statement(queue))
        .bind(vt_seconds)
        .bind(i64::from(qty))
        .bind(&fresh)
        .bind(&redelivered)
        .bind(WorkflowStepState::InProgress.as_str())
        .bind(worker_id)
        .fetch_all(conn)
        .await?;
    Ok(deliveries(rows))
}

fn from_queue_statement(queue: &QueueName) -> String {
    fill(
        include_str!("claim_from_queue.sql"),
        &[
            (
                "{worker_queue_visible}",
                &pgmq_notify::sql::visible_cte(queue, "$2"),
            ),
            ("{worker_queue}", &pgmq_notify::sql::queue_table(queue)),
        ],
    )
}

/// Gives a claimed attempt back without a result (a worker shutting down): the step
/// returns to `enqueued`, fenced on `attempt`, and the attempt does not count against
/// the retry budget. Returns whether the step was still held under that attempt.
pub async fn release(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    attempt: i32,
    worker_id: &str,
) -> Result<bool> {
    let outcome = transition::one(
        &mut *conn,
        step_uuid,
        &[WorkflowStepState::InProgress],
        WorkflowStepState::Enqueued,
        &json!({"event": "released", "worker_id": worker_id, "attempt": attempt, "reason": "worker shutting down"}),
        Some(attempt),
    )
    .await?;
    if !outcome.applied() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE tasker.workflow_steps SET retry_baseline = retry_baseline + 1, updated_at = now()
         WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .execute(conn)
    .await?;
    Ok(true)
}

/// `[name, result, is_parent]` of every ancestor of a claimed step.
type AncestorList = sqlx::types::Json<Vec<(String, Option<Value>, bool)>>;

/// A claimed step's columns, as `claim_one.sql` returns them.
#[derive(sqlx::FromRow)]
struct StepContextRow {
    step_name: String,
    task_uuid: Uuid,
    handler_callable: String,
    inputs: Value,
    attempts: i32,
    max_attempts: i32,
    retry_baseline: i32,
    retryable: bool,
    timeout_seconds: Option<i32>,
    context: Value,
    correlation_id: Uuid,
    task_name: String,
    task_version: String,
    namespace: String,
    ancestors: AncestorList,
}

impl StepContextRow {
    fn into_claimed(self, step_uuid: Uuid) -> ClaimedStep {
        let mut parents = Vec::new();
        let mut dependency_results = BTreeMap::new();
        for (name, result, is_parent) in self.ancestors.0 {
            if is_parent {
                parents.push(name.clone());
            }
            dependency_results.insert(name, result.unwrap_or(Value::Null));
        }
        parents.sort();
        ClaimedStep {
            step_uuid,
            task_uuid: self.task_uuid,
            step_name: self.step_name,
            handler_callable: self.handler_callable,
            inputs: self.inputs,
            attempt: self.attempts,
            max_attempts: self.max_attempts,
            retry_baseline: self.retry_baseline,
            retryable: self.retryable,
            timeout_seconds: self.timeout_seconds,
            task_context: self.context,
            correlation_id: self.correlation_id,
            task_name: self.task_name,
            task_version: self.task_version,
            namespace: self.namespace,
            parents,
            dependency_results,
        }
    }
}

/// A row of `claim_from_queue.sql` or `handoff_load.sql`: a message and, if its step
/// was claimed, the step's context.
#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    msg_id: i64,
    read_ct: i32,
    message: Value,
    step_uuid: Option<Uuid>,
    actual: Option<String>,
    claimed: bool,
    #[sqlx(default)]
    lease_left_ms: Option<i64>,
    #[sqlx(flatten)]
    context: OptionalContext,
}

/// [`StepContextRow`]'s columns, NULL when the message's step was not claimed.
#[derive(sqlx::FromRow)]
struct OptionalContext {
    step_name: Option<String>,
    task_uuid: Option<Uuid>,
    handler_callable: Option<String>,
    inputs: Option<Value>,
    attempts: Option<i32>,
    max_attempts: Option<i32>,
    retry_baseline: Option<i32>,
    retryable: Option<bool>,
    timeout_seconds: Option<i32>,
    context: Option<Value>,
    correlation_id: Option<Uuid>,
    task_name: Option<String>,
    task_version: Option<String>,
    namespace: Option<String>,
    ancestors: Option<AncestorList>,
}

impl OptionalContext {
    fn into_row(self) -> Option<StepContextRow> {
        Some(StepContextRow {
            step_name: self.step_name?,
            task_uuid: self.task_uuid?,
            handler_callable: self.handler_callable?,
            inputs: self.inputs?,
            attempts: self.attempts?,
            max_attempts: self.max_attempts?,
            retry_baseline: self.retry_baseline?,
            retryable: self.retryable?,
            timeout_seconds: self.timeout_seconds,
            context: self.context?,
            correlation_id: self.correlation_id?,
            task_name: self.task_name?,
            task_version: self.task_version?,
            namespace: self.namespace?,
            ancestors: self.ancestors?,
        })
    }
}

/// Each row as a [`Delivery`]; a row that cannot be one is reported [`Delivery::Broken`]
/// alone.
pub(crate) fn deliveries(rows: Vec<DeliveryRow>) -> Vec<Delivery> {
    rows.into_iter()
        .map(|row| {
            let msg_id = row.msg_id;
            delivery(row).unwrap_or_else(|e| Delivery::Broken {
                msg_id,
                error: e.to_string(),
            })
        })
        .collect()
}

fn delivery(row: DeliveryRow) -> Result<Delivery> {
    let Some(step_uuid) = row.step_uuid else {
        return Ok(Delivery::Unreadable {
            msg_id: row.msg_id,
            body: row.message,
        });
    };
    if !row.claimed {
        return Ok(Delivery::NotClaimable {
            msg_id: row.msg_id,
            step_uuid,
            actual: row.actual.as_deref().map(parse_step).transpose()?,
        });
    }
    let context = row.context.into_row().ok_or_else(|| {
        Error::Corrupt(format!(
            "claimed step {step_uuid} is missing its task, template or namespace"
        ))
    })?;
    Ok(Delivery::Claimed {
        msg_id: row.msg_id,
        read_ct: row.read_ct,
        step: Box::new(context.into_claimed(step_uuid)),
        lease_left_ms: row.lease_left_ms,
    })
}

#[cfg(test)]
mod tests {
    use crate::database::splice::tests::assert_filled;

    #[test]
    fn the_queue_statement_names_the_queue() {
        let queue = pgmq_notify::QueueName::worker("payments").unwrap();
        let statement = super::from_queue_statement(&queue);
        assert_filled(&statement);
        assert!(statement.contains("UPDATE pgmq.q_worker_payments_queue m"));
        assert!(statement.contains("SELECT msg_id FROM pgmq.q_worker_payments_queue"));
    }
}
