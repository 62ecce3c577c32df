//! Workflow steps: readiness, claiming, results.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::transition::{
    current_step_state, parse_step_state, parse_task_state, step_sources, step_transition_sql,
    transition_step,
};
use super::{Error, Result};
use pgmq_notify::QueueName;

use crate::messaging::StepMessage;
use crate::results::StepExecutionResult;
use crate::state_machine::{TaskState, TransitionOutcome, WorkflowStepState};

/// One row of `tasker.get_step_readiness_status`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepReadinessStatus {
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Its named step.
    pub named_step_uuid: Uuid,
    /// Step name.
    pub name: String,
    /// Current state.
    pub current_state: String,
    /// All parents done.
    pub dependencies_satisfied: bool,
    /// May be attempted (again).
    pub retry_eligible: bool,
    /// Can be enqueued now.
    pub ready_for_execution: bool,
    /// Last failed attempt reported.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// When the next attempt becomes visible.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Parents in all.
    pub total_parents: i32,
    /// Parents done.
    pub completed_parents: i32,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When the latest attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
}

impl StepReadinessStatus {
    /// The current state, parsed.
    pub fn state(&self) -> Result<WorkflowStepState> {
        parse_step_state(&self.current_state)
    }
}

/// Readiness of a task's steps, or of some of them.
pub async fn readiness<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
    only: Option<&[Uuid]>,
) -> Result<Vec<StepReadinessStatus>> {
    let rows = sqlx::query_as::<_, StepReadinessStatus>(
        "SELECT * FROM tasker.get_step_readiness_status($1, $2)",
    )
    .bind(task_uuid)
    .bind(only)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// A step with its readiness and latest result, for the API.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepDetail {
    /// Readiness columns.
    #[sqlx(flatten)]
    pub readiness: StepReadinessStatus,
    /// Latest result.
    pub results: Option<Value>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Names of the direct parents, sorted.
    pub parent_names: Vec<String>,
}

// Byte order (COLLATE "C"), whatever the database's collation: the same order Rust's
// sort gives, so `POST /v1/tasks` (built in memory) and a read agree.
const PARENT_NAMES: &str =
    "COALESCE((SELECT array_agg(pn.name::text ORDER BY pn.name COLLATE \"C\")
        FROM tasker.workflow_step_edges e
        JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
        JOIN tasker.named_steps pn ON pn.named_step_uuid = p.named_step_uuid
        WHERE e.to_step_uuid = r.workflow_step_uuid), '{}') AS parent_names";

/// All steps of a task, in creation (template) order.
pub async fn list_for_task<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
) -> Result<Vec<StepDetail>> {
    let rows = sqlx::query_as::<_, StepDetail>(&format!(
        "SELECT r.*, ws.results, ws.created_at, ws.completed_at, {PARENT_NAMES}
         FROM tasker.get_step_readiness_status($1) r
         JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = r.workflow_step_uuid
         ORDER BY ws.workflow_step_uuid"
    ))
    .bind(task_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

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

/// What [`claim`] did.
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

/// `[name, result, is_parent]` of every ancestor of a claimed step.
pub(crate) type AncestorList = sqlx::types::Json<Vec<(String, Option<Value>, bool)>>;

/// A claimed step's columns, as the claim statements return them.
#[derive(sqlx::FromRow)]
pub(crate) struct StepContextRow {
    pub(crate) step_name: String,
    pub(crate) task_uuid: Uuid,
    pub(crate) handler_callable: String,
    pub(crate) inputs: Value,
    pub(crate) attempts: i32,
    pub(crate) max_attempts: i32,
    pub(crate) retry_baseline: i32,
    pub(crate) retryable: bool,
    pub(crate) timeout_seconds: Option<i32>,
    pub(crate) context: Value,
    pub(crate) correlation_id: Uuid,
    pub(crate) task_name: String,
    pub(crate) task_version: String,
    pub(crate) namespace: String,
    pub(crate) ancestors: AncestorList,
}

impl StepContextRow {
    pub(crate) fn into_claimed(self, step_uuid: Uuid) -> ClaimedStep {
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

/// The CTEs `ancestors(root, step_uuid)` (every ancestor of each step in the CTE named
/// by the argument, which has a `workflow_step_uuid` column) and
/// `ancestor_results(root, name, result, is_parent)` (each ancestor's name and handler
/// result, and whether it is a direct parent of `root`), for a claim to return.
///
/// Each hop of the walk goes through a LATERAL subquery that cannot be flattened
/// (OFFSET 0), so every plan is a walk of index lookups. Left to itself the planner
/// guesses the recursion's size, and on a young or small database it hashes whole tables
/// (edges, steps) once per hop instead. The statement must start `WITH RECURSIVE`.
macro_rules! ancestors_walk_sql {
    ($roots:literal) => {
        concat!(
            "ancestors(root, step_uuid) AS (
                 SELECT r.workflow_step_uuid, up.from_step_uuid
                 FROM ",
            $roots,
            " r
                 CROSS JOIN LATERAL (SELECT e.from_step_uuid FROM tasker.workflow_step_edges e
                                     WHERE e.to_step_uuid = r.workflow_step_uuid OFFSET 0) up
                 UNION
                 SELECT a.root, up.from_step_uuid
                 FROM ancestors a
                 CROSS JOIN LATERAL (SELECT e.from_step_uuid FROM tasker.workflow_step_edges e
                                     WHERE e.to_step_uuid = a.step_uuid OFFSET 0) up
             ), ancestor_results AS (
                 SELECT a.root, ns.name, s.result,
                        EXISTS (SELECT 1 FROM tasker.workflow_step_edges p
                                WHERE p.from_step_uuid = a.step_uuid AND p.to_step_uuid = a.root) AS is_parent
                 FROM ancestors a
                 CROSS JOIN LATERAL (SELECT ws.named_step_uuid, ws.results -> 'result' AS result
                                     FROM tasker.workflow_steps ws
                                     WHERE ws.workflow_step_uuid = a.step_uuid OFFSET 0) s
                 CROSS JOIN LATERAL (SELECT ns.name FROM tasker.named_steps ns
                                     WHERE ns.named_step_uuid = s.named_step_uuid OFFSET 0) ns
             ) "
        )
    };
}
pub(crate) use ancestors_walk_sql;

/// Claims a step for a new attempt: moves it to `in_progress`, bumps its attempt
/// counter (the fencing token) and loads its context, in the caller's transaction.
///
/// `redelivered` says the queue message was read before (its previous lease expired);
/// only then may a step still marked `in_progress` be claimed again.
pub async fn claim(
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
    let sources = step_sources(from, WorkflowStepState::InProgress)?;
    // One statement: the state moves, the attempt counter (the fencing token) grows, and
    // the context comes back with the results of every ancestor.
    let row = sqlx::query_as::<_, StepContextRow>(concat!(
        step_transition_sql!(
            fence = "",
            set = ", attempts = ws.attempts + 1, last_attempted_at = now()"
        ),
        ", ",
        ancestors_walk_sql!("moved"),
        "SELECT ns.name AS step_name, b.task_uuid, b.handler_callable, b.inputs, b.attempts,
                b.max_attempts, b.retry_baseline, b.retryable, b.timeout_seconds, t.context, t.correlation_id,
                nt.name AS task_name, nt.version AS task_version, tn.name AS namespace,
                (SELECT COALESCE(jsonb_agg(jsonb_build_array(a.name, a.result, a.is_parent)), '[]')
                 FROM ancestor_results a WHERE a.root = b.workflow_step_uuid) AS ancestors
         FROM moved b
         JOIN tasker.named_steps ns ON ns.named_step_uuid = b.named_step_uuid
         JOIN tasker.tasks t ON t.task_uuid = b.task_uuid
         JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
         JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid"
    ))
    .bind(&[step_uuid][..])
    .bind(&sources)
    .bind(WorkflowStepState::InProgress.as_str())
    .bind(&metadata)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(ClaimOutcome::NotClaimable {
            actual: current_step_state(&mut *conn, step_uuid).await?,
        });
    };

    Ok(ClaimOutcome::Claimed(Box::new(row.into_claimed(step_uuid))))
}

/// Stores a worker's result for `attempt` and hands the step to the orchestration
/// (`enqueued_for_orchestration` or `enqueued_as_error_for_orchestration`), in the
/// caller's transaction. Writes nothing and returns `Conflict` if the step is no longer
/// in progress under that attempt (the lease expired and someone else claimed it, or the
/// task was cancelled).
pub async fn record_result(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    attempt: i32,
    result: &StepExecutionResult,
) -> Result<TransitionOutcome<WorkflowStepState>> {
    store_result_fenced(conn, step_uuid, attempt, result).await
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

/// [`record_result`] and, only when it applies, the [`Handover`], in one statement (one
/// round trip for a worker's whole submission, before its commit): [`super::submit::batch`]
/// with one item.
pub async fn submit_result(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    attempt: i32,
    result: &StepExecutionResult,
    handover: Handover<'_>,
) -> Result<TransitionOutcome<WorkflowStepState>> {
    let item = super::submit::Submission {
        step_uuid,
        attempt,
        result,
        msg_id: handover.msg_id,
        message: handover.message,
    };
    let mut outcomes =
        super::submit::batch(conn, handover.worker_queue, handover.results_queue, &[item]).await?;
    outcomes
        .pop()
        .ok_or_else(|| Error::Corrupt("a submission returned no outcome".into()))
}

pub(crate) fn result_transition(
    attempt: i32,
    result: &StepExecutionResult,
) -> (WorkflowStepState, Value) {
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

async fn store_result_fenced(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    attempt: i32,
    result: &StepExecutionResult,
) -> Result<TransitionOutcome<WorkflowStepState>> {
    let (to, metadata) = result_transition(attempt, result);
    let sources = step_sources(&[WorkflowStepState::InProgress], to)?;
    let ids = [step_uuid];
    // Fenced on the attempt, the state moves and the result is stored.
    let moved: Option<String> = sqlx::query_scalar(concat!(
        step_transition_sql!(fence = "AND attempts = $5", set = ", results = $6"),
        "SELECT from_state FROM moved"
    ))
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
            from: parse_step_state(&from)?,
        }),
        None => Ok(TransitionOutcome::Conflict {
            actual: current_step_state(conn, step_uuid).await?,
        }),
    }
}

/// What the orchestration needs to process a step's result.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepForOrchestration {
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Current state.
    pub current_state: String,
    /// Attempts made (never decreases: the fencing token).
    pub attempts: i32,
    /// Attempts made before the last operator reset.
    pub retry_baseline: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Whether failures may be retried.
    pub retryable: bool,
    /// Backoff kind.
    pub backoff: String,
    /// First delay.
    pub backoff_base_ms: i32,
    /// Longest delay.
    pub max_backoff_ms: i32,
    /// Latest result.
    pub results: Option<Value>,
    /// Namespace (for the queue name).
    pub namespace: String,
}

impl StepForOrchestration {
    /// Attempts counted by the retry policy (those since the last operator reset).
    pub fn attempts_in_budget(&self) -> i32 {
        self.attempts - self.retry_baseline
    }

    /// The current state, parsed.
    pub fn state(&self) -> Result<WorkflowStepState> {
        parse_step_state(&self.current_state)
    }

    /// The stored result, parsed.
    pub fn result(&self) -> Result<Option<StepExecutionResult>> {
        self.results
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(Error::from)
    }
}

/// The columns of [`StepForOrchestration`], from `ws` (the step) and `tn` (its namespace).
macro_rules! for_orchestration_columns {
    () => {
        "ws.workflow_step_uuid, ws.task_uuid, ws.current_state, ws.attempts, ws.retry_baseline,
         ws.max_attempts, ws.retryable, ws.backoff, ws.backoff_base_ms, ws.max_backoff_ms,
         ws.results, tn.name AS namespace"
    };
}

/// Loads a step for result processing.
pub async fn load_for_orchestration<'e>(
    executor: impl PgExecutor<'e>,
    step_uuid: Uuid,
) -> Result<Option<StepForOrchestration>> {
    let row = sqlx::query_as::<_, StepForOrchestration>(concat!(
        "SELECT ",
        for_orchestration_columns!(),
        " FROM tasker.workflow_steps ws
             JOIN tasker.tasks t ON t.task_uuid = ws.task_uuid
             JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
             JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
             WHERE ws.workflow_step_uuid = $1"
    ))
    .bind(step_uuid)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

#[derive(sqlx::FromRow)]
struct LockedStepRow {
    task_state: String,
    #[sqlx(flatten)]
    step: StepForOrchestration,
}

/// Locks the task's row (like [`super::task::lock`]) and loads one of its steps for
/// result processing, in one round trip: [`lock_tasks_and_load`] with one pair. None
/// when the task or the step does not exist, or the step belongs to another task (the
/// task, if it exists, is locked all the same).
pub async fn lock_task_and_load(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    step_uuid: Uuid,
) -> Result<Option<(TaskState, StepForOrchestration)>> {
    Ok(lock_tasks_and_load(conn, &[(task_uuid, step_uuid)])
        .await?
        .into_iter()
        .next())
}

/// Locks the tasks of many (task, step) pairs in task order (so concurrent batches
/// cannot deadlock) and loads their steps for result processing, in one statement;
/// returns each pair that exists, the step belonging to the task, with its task's
/// state, in the order given.
///
/// Only the task rows are locked: if a lock had to wait, the steps' columns are those of
/// the statement's snapshot, taken before the wait. That is safe because every write
/// that follows is a compare-and-swap on a step's state, and a step waiting for the
/// orchestration (`enqueued_*_for_orchestration`) changes only under its task's lock.
pub async fn lock_tasks_and_load(
    conn: &mut PgConnection,
    pairs: &[(Uuid, Uuid)],
) -> Result<Vec<(TaskState, StepForOrchestration)>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let (tasks, steps): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    let rows = sqlx::query_as::<_, LockedStepRow>(concat!(
        "WITH locked AS MATERIALIZED (
             SELECT t.task_uuid, t.current_state, t.named_task_uuid FROM tasker.tasks t
             WHERE t.task_uuid = ANY($1)
             ORDER BY t.task_uuid
             FOR UPDATE
         )
         SELECT t.current_state AS task_state, ",
        for_orchestration_columns!(),
        " FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS p(task_uuid, step_uuid, n)
         CROSS JOIN LATERAL (SELECT l.* FROM locked l WHERE l.task_uuid = p.task_uuid) t
         CROSS JOIN LATERAL (SELECT s.* FROM tasker.workflow_steps s
                             WHERE s.workflow_step_uuid = p.step_uuid AND s.task_uuid = t.task_uuid
                             OFFSET 0) ws
         CROSS JOIN LATERAL (SELECT tn.name FROM tasker.named_tasks nt
                             JOIN tasker.task_namespaces tn
                               ON tn.task_namespace_uuid = nt.task_namespace_uuid
                             WHERE nt.named_task_uuid = t.named_task_uuid OFFSET 0) tn
         ORDER BY p.n"
    ))
    .bind(&tasks)
    .bind(&steps)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| Ok((parse_task_state(&r.task_state)?, r.step)))
        .collect()
}

/// Moves those of `step_uuids` that are still `pending` to `enqueued` and sends each
/// moved step's message (`messages[i]` belongs to `step_uuids[i]`) to `queue` with its
/// notification, in one statement: a step is enqueued if and only if its message is on
/// the queue (one message per step, even if a step is listed twice). Returns the steps
/// enqueued.
pub async fn enqueue(
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
    let sources = step_sources(&[WorkflowStepState::Pending], WorkflowStepState::Enqueued)?;
    // `moved` holds each step once, so each moved step gets exactly one message.
    let statement = format!(
        "{transition}, sent AS ({send})
         SELECT workflow_step_uuid FROM moved",
        transition = step_transition_sql!(fence = "", set = ""),
        send = pgmq_notify::sql::insert_with_notify(
            queue,
            "SELECT clock_timestamp(), u.msg
             FROM moved m
             JOIN (SELECT DISTINCT ON (id) id, msg
                   FROM unnest($1::uuid[], $5::jsonb[]) AS i(id, msg)) u
               ON u.id = m.workflow_step_uuid"
        ),
    );
    let ids = sqlx::query_scalar(&statement)
        .bind(step_uuids)
        .bind(&sources)
        .bind(WorkflowStepState::Enqueued.as_str())
        .bind(json!({"event": "enqueued"}))
        .bind(messages)
        .fetch_all(conn)
        .await?;
    Ok(ids)
}

/// Where [`complete`] sends the children it enqueues.
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
/// queue. One statement. Returns None if the step was not waiting for the orchestration
/// (nothing was written), else the children enqueued.
///
/// The caller must hold the task's lock (see [`lock_task_and_load`]): it is what keeps a
/// sibling parent from completing between this statement's snapshot and its commit.
pub async fn complete(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    metadata: &Value,
    children: Option<ChildRoute<'_>>,
) -> Result<Option<Vec<Uuid>>> {
    let completion = super::complete::Completion {
        step_uuid,
        correlation_id: children.map(|c| c.correlation_id).unwrap_or_default(),
        handoff: None,
    };
    let moved =
        super::complete::steps(conn, &[completion], metadata, children.map(|c| c.queue)).await?;
    Ok(moved.into_iter().next().map(|(_, enqueued)| enqueued))
}

/// Records when a step's next attempt becomes visible.
pub async fn set_next_retry_at(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE tasker.workflow_steps SET next_retry_at = $2, updated_at = now() WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every step of a task.
pub async fn ids_for_task<'e>(executor: impl PgExecutor<'e>, task_uuid: Uuid) -> Result<Vec<Uuid>> {
    let ids = sqlx::query_scalar(
        "SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1",
    )
    .bind(task_uuid)
    .fetch_all(executor)
    .await?;
    Ok(ids)
}

/// One step of a task, with readiness and result; None if the step is not in the task.
pub async fn get_detail<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
    step_uuid: Uuid,
) -> Result<Option<StepDetail>> {
    let row = sqlx::query_as::<_, StepDetail>(&format!(
        "SELECT r.*, ws.results, ws.created_at, ws.completed_at, {PARENT_NAMES}
         FROM tasker.get_step_readiness_status($1, ARRAY[$2]::uuid[]) r
         JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = r.workflow_step_uuid"
    ))
    .bind(task_uuid)
    .bind(step_uuid)
    .fetch_optional(executor)
    .await?;
    Ok(row)
}

/// Gives a step a fresh set of attempts (operator reset). The attempt counter itself
/// keeps growing, because it is the fencing token; the retry budget restarts.
pub async fn reset_attempts(conn: &mut PgConnection, step_uuid: Uuid) -> Result<()> {
    sqlx::query(
        "UPDATE tasker.workflow_steps SET retry_baseline = attempts, next_retry_at = NULL, updated_at = now()
         WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a result recorded by an operator and marks the step completed.
pub async fn store_result(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    result: &StepExecutionResult,
) -> Result<()> {
    sqlx::query(
        "UPDATE tasker.workflow_steps SET results = $2, completed_at = now(), updated_at = now()
         WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .bind(serde_json::to_value(result)?)
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry of a step's history, with its name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    /// The transition.
    pub workflow_step_transition_uuid: Uuid,
    /// The step.
    pub workflow_step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Step name.
    pub step_name: String,
    /// State left.
    pub from_state: Option<String>,
    /// State entered.
    pub to_state: String,
    /// Everything recorded.
    pub metadata: Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A step's history, oldest first; empty if the step is not in the task.
pub async fn audit<'e>(
    executor: impl PgExecutor<'e>,
    task_uuid: Uuid,
    step_uuid: Uuid,
) -> Result<Vec<AuditRow>> {
    let rows = sqlx::query_as::<_, AuditRow>(
        "SELECT st.workflow_step_transition_uuid, st.workflow_step_uuid, ws.task_uuid, ns.name AS step_name,
                st.from_state, st.to_state, st.metadata, st.created_at
         FROM tasker.workflow_step_transitions st
         JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = st.workflow_step_uuid
         JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
         WHERE st.workflow_step_uuid = $2 AND ws.task_uuid = $1
         ORDER BY st.sort_key",
    )
    .bind(task_uuid)
    .bind(step_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
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
    let outcome = transition_step(
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
