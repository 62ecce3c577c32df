//! A worker's read and claim, in one statement.
//!
//! [`from_queue`] leases up to `qty` messages of a worker queue and claims their steps
//! in a single statement, so the leases and the claims commit together without an
//! explicit transaction: one round trip where reading, then claiming each step, took
//! three plus one per message.
//!
//! [`handed`] loads the steps the orchestration already claimed for this worker
//! process (a handoff, [`crate::messaging::HandoffRequest`]): a read, no write.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::step::{AncestorList, ClaimedStep, StepContextRow, ancestors_walk_sql};
use super::transition::{parse_step_state, step_sources};
use super::{Error, Result};
use crate::state_machine::WorkflowStepState;
use pgmq_notify::QueueName;

/// One message [`from_queue`] leased, and what became of its step.
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

#[derive(sqlx::FromRow)]
struct DeliveryRow {
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

/// The claim's output columns for a claimed step `b` (a row of `moved`: the step as
/// claimed, with `msg_id`), and the joins they read; `ancestor_results` must be in scope.
macro_rules! context_columns {
    () => {
        "ns.name AS step_name, b.task_uuid, b.handler_callable, b.inputs, b.attempts,
         b.max_attempts, b.retry_baseline, b.retryable, b.timeout_seconds, t.context,
         t.correlation_id, nt.name AS task_name, nt.version AS task_version,
         nt.namespace,
         CASE WHEN b.workflow_step_uuid IS NOT NULL THEN
             (SELECT COALESCE(jsonb_agg(jsonb_build_array(a.name, a.result, a.is_parent)), '[]')
              FROM ancestor_results a WHERE a.root = b.workflow_step_uuid) END AS ancestors"
    };
}
macro_rules! context_joins {
    () => {
        "LEFT JOIN LATERAL (SELECT ns.name FROM tasker.named_steps ns
                            WHERE ns.named_step_uuid = b.named_step_uuid OFFSET 0) ns ON true
         LEFT JOIN LATERAL (SELECT t.context, t.correlation_id, t.named_task_uuid
                            FROM tasker.tasks t WHERE t.task_uuid = b.task_uuid OFFSET 0) t ON true
         LEFT JOIN LATERAL (SELECT nt.name, nt.version, tn.name AS namespace
                            FROM tasker.named_tasks nt
                            JOIN tasker.task_namespaces tn
                              ON tn.task_namespace_uuid = nt.task_namespace_uuid
                            WHERE nt.named_task_uuid = t.named_task_uuid OFFSET 0) nt ON true"
    };
}

/// Guards the cast of a message's `step_uuid` (so one malformed body cannot fail a
/// whole statement): the UUID, or NULL. (Spliced in as a `format!` argument, so its
/// braces are literal.)
macro_rules! step_uuid_of {
    ($message:literal) => {
        concat!(
            "CASE WHEN jsonb_typeof(",
            $message,
            " -> 'step_uuid') = 'string' AND ",
            $message,
            " ->> 'step_uuid' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
             THEN (",
            $message,
            " ->> 'step_uuid')::uuid END"
        )
    };
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

/// Leases up to `qty` visible messages of `queue` for `vt_seconds` and claims their
/// steps (`enqueued`/`waiting_for_retry` → `in_progress`, attempt + 1, the context with
/// every ancestor's result), in one statement that commits on its own. A message read
/// before (its last lease ended) may also reclaim a step still `in_progress`: its worker
/// is gone. The first takeover of a handed message (a handoff whose lease ended,
/// `read_ct` 2) does not count the handed attempt against `max_attempts` (its
/// `retry_baseline` moves with it, as a release's does): the worker it was handed to
/// may never have started it. Later takeovers count as usual, so a step that kills
/// its workers still fails after at most one extra attempt. Steps are locked in `step_uuid` order, so overlapping reads cannot deadlock;
/// of several messages naming one step, a redelivered one claims it, else the oldest.
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
    let fresh = step_sources(
        &[
            WorkflowStepState::Enqueued,
            WorkflowStepState::WaitingForRetry,
        ],
        WorkflowStepState::InProgress,
    )?;
    let redelivered = step_sources(WorkflowStepState::CLAIMABLE, WorkflowStepState::InProgress)?;
    let table = pgmq_notify::sql::queue_table(queue);
    // `parsed` keeps every leased message; `wanted` one message per step: a redelivered
    // one first (only it may take over a step still `in_progress` from a lost worker),
    // else the oldest. The UUID test guards the cast, so one malformed body cannot fail
    // the whole read. `updated` finds its rows by key alone and `moved` joins them to
    // `old` in memory: an UPDATE joined to `old` was planned (generic plan, made on
    // small tables) as a loop over `old` probing the index for every key of the batch,
    // n² probes per read.
    let statement = format!(
        "WITH RECURSIVE {visible}, leased AS (
             UPDATE {table} m
             SET vt = clock_timestamp() + make_interval(secs => $1), read_ct = m.read_ct + 1
             WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM visible))
             RETURNING m.msg_id, m.read_ct, m.message
         ), parsed AS (
             SELECT msg_id, read_ct, message, {step_uuid} AS step_uuid,
                    message -> 'handed' IS NOT NULL AS handed
             FROM leased
         ), wanted AS (
             SELECT DISTINCT ON (step_uuid) msg_id, read_ct, step_uuid, handed
             FROM parsed WHERE step_uuid IS NOT NULL
             ORDER BY step_uuid, read_ct > 1 DESC, msg_id
         ), old AS (
             SELECT ws.workflow_step_uuid, ws.current_state, w.msg_id, w.read_ct,
                    w.handed AND w.read_ct = 2 AND ws.current_state = $5 AS untaken
             FROM tasker.workflow_steps ws
             JOIN wanted w ON w.step_uuid = ws.workflow_step_uuid
             WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT step_uuid FROM wanted))
               AND ws.current_state = ANY(CASE WHEN w.read_ct > 1 THEN $4 ELSE $3 END)
             ORDER BY ws.workflow_step_uuid
             FOR UPDATE OF ws
         ), updated AS (
             UPDATE tasker.workflow_steps ws
             SET current_state = $5, state_sort_key = ws.state_sort_key + 1, updated_at = now(),
                 attempts = ws.attempts + 1, last_attempted_at = now(),
                 retry_baseline = ws.retry_baseline + CASE
                     WHEN ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM old WHERE untaken))
                     THEN 1 ELSE 0 END
             WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM old))
             RETURNING ws.*
         ), moved AS (
             SELECT u.*, o.current_state AS from_state, o.msg_id, o.read_ct AS claim_read_ct,
                    o.untaken
             FROM updated u JOIN old o ON o.workflow_step_uuid = u.workflow_step_uuid
         ), ins AS (
             INSERT INTO tasker.workflow_step_transitions
                 (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
             SELECT tasker.uuid_generate_v7(), workflow_step_uuid, $5, from_state,
                    jsonb_build_object('event', 'claimed', 'worker_id', $6::text,
                                       'redelivered', claim_read_ct > 1)
                    || CASE WHEN untaken THEN jsonb_build_object('handoff_expired', true)
                            ELSE '{{}}'::jsonb END,
                    state_sort_key
             FROM moved
         ), {ancestors}
         SELECT p.msg_id, p.read_ct, p.message, p.step_uuid,
                CASE WHEN b.workflow_step_uuid IS NULL AND p.step_uuid IS NOT NULL THEN
                    (SELECT s.current_state FROM tasker.workflow_steps s
                     WHERE s.workflow_step_uuid = p.step_uuid) END AS actual,
                b.workflow_step_uuid IS NOT NULL AS claimed, {columns}
         FROM parsed p
         LEFT JOIN moved b ON b.msg_id = p.msg_id
         {joins}
         ORDER BY p.msg_id",
        ancestors = ancestors_walk_sql!("moved"),
        columns = context_columns!(),
        joins = context_joins!(),
        step_uuid = step_uuid_of!("message"),
        visible = pgmq_notify::sql::visible_cte(queue, "$2"),
    );
    let rows: Vec<DeliveryRow> = sqlx::query_as(&statement)
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

/// Each row as a [`Delivery`]; a row that cannot be one is reported [`Delivery::Broken`]
/// alone.
fn deliveries(rows: Vec<DeliveryRow>) -> Vec<Delivery> {
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
            actual: row.actual.as_deref().map(parse_step_state).transpose()?,
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

/// The ids of the messages on `queue` handed to `token` that are still its to take (not
/// read since, lease running), oldest first: a scan of the queue table, for the rare
/// moments a worker may have missed their notifications.
pub async fn handed_ids<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    queue: &QueueName,
    token: Uuid,
) -> Result<Vec<i64>> {
    let ids = sqlx::query_scalar(&format!(
        "SELECT msg_id FROM {} WHERE message -> 'handed' ->> 'token' = $1
           AND read_ct = 1 AND vt > clock_timestamp()
         ORDER BY msg_id",
        pgmq_notify::sql::queue_table(queue)
    ))
    .bind(token.to_string())
    .fetch_all(executor)
    .await?;
    Ok(ids)
}

/// How many results on `results_queue` still carry the handoff offer of `token`: the
/// orchestration takes a result in the transaction that makes its handoff, so none left
/// means every handoff for them is made.
pub async fn offers_queued<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    results_queue: &QueueName,
    token: Uuid,
) -> Result<i64> {
    let queued = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {} WHERE message -> 'handoff' ->> 'token' = $1",
        pgmq_notify::sql::queue_table(results_queue)
    ))
    .bind(token.to_string())
    .fetch_one(executor)
    .await?;
    Ok(queued)
}

/// Loads the steps of `msg_ids` (messages of `queue`) that the orchestration handed to
/// the worker process with handoff `token` and that are still its to run: the message
/// is marked handed to `token`, not read since and its lease not over (past it, any
/// reader may take the step over), and its step is `in_progress` under the handed
/// attempt. A read: the claim was written with the handoff. Messages that no
/// longer qualify are left alone (their step moved on; the message goes when its lease
/// ends). Returns [`Delivery::Claimed`] items, in `msg_id` order, each with what is left
/// of its lease.
pub async fn handed(
    conn: &mut PgConnection,
    queue: &QueueName,
    token: Uuid,
    msg_ids: &[i64],
) -> Result<Vec<Delivery>> {
    if msg_ids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = format!(
        "WITH RECURSIVE moved AS (
             SELECT ws.*, m.msg_id, m.read_ct, m.message, m.vt
             FROM {table} m
             JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = {step_uuid}
             WHERE m.msg_id = ANY($1)
               AND m.read_ct = 1
               AND m.vt > clock_timestamp()
               AND m.message -> 'handed' ->> 'token' = $2::text
               AND jsonb_typeof(m.message -> 'handed' -> 'attempt') = 'number'
               AND ws.current_state = $3
               AND ws.attempts = (m.message -> 'handed' ->> 'attempt')::numeric
         ), {ancestors}
         SELECT b.msg_id, b.read_ct, b.message, b.workflow_step_uuid AS step_uuid,
                NULL::text AS actual, true AS claimed,
                greatest(0, ceil(extract(epoch FROM b.vt - clock_timestamp()) * 1000))::bigint
                    AS lease_left_ms,
                {columns}
         FROM moved b
         {joins}
         ORDER BY b.msg_id",
        table = pgmq_notify::sql::queue_table(queue),
        step_uuid = step_uuid_of!("m.message"),
        ancestors = ancestors_walk_sql!("moved"),
        columns = context_columns!(),
        joins = context_joins!(),
    );
    let rows: Vec<DeliveryRow> = sqlx::query_as(&statement)
        .bind(msg_ids)
        .bind(token.to_string())
        .bind(WorkflowStepState::InProgress.as_str())
        .fetch_all(conn)
        .await?;
    Ok(deliveries(rows))
}
