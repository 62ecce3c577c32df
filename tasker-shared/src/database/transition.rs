//! State transitions written as compare-and-swap.
//!
//! A task's or step's current state is a column of its own row (`current_state`); the
//! transition tables are insert-only history. A transition updates the row *only while
//! its `current_state` is one of the expected states* and inserts the history entry in
//! the same statement. A writer that lost a race blocks on the row lock, re-checks the
//! condition, finds the state moved on, and writes nothing: the caller gets
//! [`TransitionOutcome::Conflict`], a normal outcome rather than an error.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Error, Result};
use crate::state_machine::{IllegalTransition, TaskState, TransitionOutcome, WorkflowStepState};

fn check_sources<S: Copy + std::fmt::Display>(
    kind: &'static str,
    from: &[S],
    to: S,
    legal: impl Fn(S, S) -> bool,
) -> Result<Vec<String>> {
    from.iter()
        .map(|f| {
            if legal(*f, to) {
                Ok(f.to_string())
            } else {
                Err(Error::IllegalTransition(IllegalTransition {
                    kind,
                    from: f.to_string(),
                    to: to.to_string(),
                }))
            }
        })
        .collect()
}

/// Channel announcing that a task reached `complete`, `error`, `cancelled`,
/// `resolved_manually` or `blocked_by_failures`; the payload is
/// `{"task_uuid": "...", "status": "..."}`.
pub const SETTLED_CHANNEL: &str = "tasker_task_settled";

/// The [`SETTLED_CHANNEL`] payload for a task that reached `state`.
fn settled_payload(task_uuid: Uuid, state: TaskState) -> String {
    serde_json::json!({"task_uuid": task_uuid, "status": state.as_str()}).to_string()
}

/// The CTEs that move a task row locked in `old` (`task_uuid`, `current_state`) to `$4`
/// and write its history entry (`$3` its id, `$5` its metadata); `moved` returns the
/// state left as `from_state`.
macro_rules! task_move_ctes {
    () => {
        "moved AS (
             UPDATE tasker.tasks t
             SET current_state = $4, state_sort_key = t.state_sort_key + 1,
                 state_changed_at = now(), updated_at = now(),
                 completed_at = CASE WHEN $4 = 'complete' THEN now() ELSE t.completed_at END
             FROM old WHERE t.task_uuid = old.task_uuid AND t.task_uuid = $1
             RETURNING old.current_state AS from_state, t.state_sort_key
         ), ins AS (
             INSERT INTO tasker.task_transitions
                 (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key)
             SELECT $3, $1, $4, moved.from_state, $5, moved.state_sort_key FROM moved
         )"
    };
}

/// Moves a task from one of `from` to `to`.
pub async fn transition_task(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    from: &[TaskState],
    to: TaskState,
    metadata: &Value,
) -> Result<TransitionOutcome<TaskState>> {
    let sources = check_sources("task", from, to, TaskState::can_transition_to)?;
    // Waiters (the CLI, benchmarks, operators' tools) hear about settled tasks on
    // SETTLED_CHANNEL, in the same transaction; the table stays the truth.
    let settled = matches!(
        to,
        TaskState::Complete
            | TaskState::Error
            | TaskState::Cancelled
            | TaskState::ResolvedManually
            | TaskState::BlockedByFailures
    );
    let payload = settled_payload(task_uuid, to);
    let applied: Option<String> = sqlx::query_scalar(concat!(
        // `old` locks the row and remembers the state it leaves; `moved` writes the new
        // one (re-checked on the latest row version if another writer got there first).
        "WITH old AS (
             SELECT task_uuid, current_state FROM tasker.tasks
             WHERE task_uuid = $1 AND current_state = ANY($2)
             FOR UPDATE
         ), ",
        task_move_ctes!(),
        " SELECT moved.from_state FROM moved
         LEFT JOIN LATERAL (SELECT pg_notify($7, $8) WHERE $6) n ON true"
    ))
    .bind(task_uuid)
    .bind(&sources)
    .bind(Uuid::now_v7())
    .bind(to.as_str())
    .bind(metadata)
    .bind(settled)
    .bind(SETTLED_CHANNEL)
    .bind(&payload)
    .fetch_optional(&mut *conn)
    .await?;
    match applied {
        Some(from) => Ok(TransitionOutcome::Applied {
            from: parse_task_state(&from)?,
        }),
        None => Ok(TransitionOutcome::Conflict {
            actual: current_task_state(conn, task_uuid).await?,
        }),
    }
}

/// What [`complete_task_if_done`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCompletion {
    /// Every step is complete or resolved manually: the task moved from
    /// `steps_in_process` to `complete`, with its history entry, completion time and
    /// settled notification.
    Completed,
    /// A step is on its way (enqueued, running, or with a result waiting): the task
    /// stays in `steps_in_process`.
    StepsOnTheirWay,
    /// Neither (a step is pending, waiting for a retry, failed or cancelled, or the task
    /// is not in `steps_in_process`): the task's execution context decides.
    Undecided,
}

/// After a step of a task completed without making a child ready, in one statement:
/// moves the task from `steps_in_process` to `complete` if every step is complete or
/// resolved manually, and otherwise says whether any step is on its way.
///
/// The caller holds the task's row lock: steps become complete only under it, so the
/// answer cannot go stale before the caller commits. The checks read the task's steps
/// through the `(task_uuid, ...)` index until the first step that decides them.
pub async fn complete_task_if_done(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    metadata: &Value,
) -> Result<AfterCompletion> {
    let payload = settled_payload(task_uuid, TaskState::Complete);
    let (in_flight, completed): (bool, bool) = sqlx::query_as(concat!(
        "WITH s AS MATERIALIZED (
             SELECT EXISTS (SELECT 1 FROM tasker.workflow_steps w
                            WHERE w.task_uuid = $1
                              AND w.current_state IN ('enqueued', 'in_progress',
                                  'enqueued_for_orchestration',
                                  'enqueued_as_error_for_orchestration')) AS in_flight,
                    NOT EXISTS (SELECT 1 FROM tasker.workflow_steps w
                                WHERE w.task_uuid = $1
                                  AND w.current_state NOT IN ('complete', 'resolved_manually'))
                        AS all_done
         ), old AS (
             SELECT t.task_uuid, t.current_state FROM tasker.tasks t
             WHERE t.task_uuid = $1 AND t.current_state = ANY($2) AND (SELECT all_done FROM s)
             FOR UPDATE OF t
         ), ",
        task_move_ctes!(),
        " SELECT s.in_flight, m.from_state IS NOT NULL AS completed
         FROM s LEFT JOIN moved m ON true
         LEFT JOIN LATERAL (SELECT pg_notify($6, $7) WHERE m.from_state IS NOT NULL) n ON true"
    ))
    .bind(task_uuid)
    .bind([TaskState::StepsInProcess.as_str()])
    .bind(Uuid::now_v7())
    .bind(TaskState::Complete.as_str())
    .bind(metadata)
    .bind(SETTLED_CHANNEL)
    .bind(&payload)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if completed {
        AfterCompletion::Completed
    } else if in_flight {
        AfterCompletion::StepsOnTheirWay
    } else {
        AfterCompletion::Undecided
    })
}

/// The task's current state, or None if the task does not exist.
pub async fn current_task_state(
    conn: &mut PgConnection,
    task_uuid: Uuid,
) -> Result<Option<TaskState>> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT current_state FROM tasker.tasks WHERE task_uuid = $1")
            .bind(task_uuid)
            .fetch_optional(conn)
            .await?;
    state.as_deref().map(parse_task_state).transpose()
}

/// Moves one step from one of `from` to `to`. With `expected_attempt`, the transition is
/// written only while the step's attempt counter still equals it: that is the fencing
/// token that stops a worker whose lease expired from recording a stale result.
pub async fn transition_step(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    from: &[WorkflowStepState],
    to: WorkflowStepState,
    metadata: &Value,
    expected_attempt: Option<i32>,
) -> Result<TransitionOutcome<WorkflowStepState>> {
    let moved =
        transition_steps_fenced(conn, &[step_uuid], from, to, metadata, expected_attempt).await?;
    match moved.into_iter().next() {
        Some((_, from)) => Ok(TransitionOutcome::Applied { from }),
        None => Ok(TransitionOutcome::Conflict {
            actual: current_step_state(conn, step_uuid).await?,
        }),
    }
}

/// Moves every step of `step_uuids` that is in one of `from` to `to`, in one statement.
/// Returns the steps that moved, with the state each left.
pub async fn transition_steps(
    conn: &mut PgConnection,
    step_uuids: &[Uuid],
    from: &[WorkflowStepState],
    to: WorkflowStepState,
    metadata: &Value,
) -> Result<Vec<(Uuid, WorkflowStepState)>> {
    transition_steps_fenced(conn, step_uuids, from, to, metadata, None).await
}

/// The compare-and-swap that moves steps, as the CTEs `old` (the rows locked, with the
/// state each leaves), `moved` (`ws.*` after the update, plus `from_state`) and `ins`
/// (the history entries); the caller appends its own `SELECT ... FROM moved`, and may
/// add CTEs first (`, name AS (...)`).
///
/// Parameters: $1 step uuids, $2 accepted source states, $3 target state, $4 history
/// metadata. `fence` adds to the lock's condition (for example `AND attempts = $5`) and
/// `set` to the update (for example `, results = $6`). Entering
/// `enqueued_as_error_for_orchestration` records `last_failure_at`; entering `complete`
/// or `resolved_manually` records `completed_at`.
macro_rules! step_transition_sql {
    (fence = $fence:literal, set = $set:literal) => {
        step_transition_sql!(fence = $fence, set = $set, metadata = "$4")
    };
    // `metadata` is the history entry's metadata, an expression over `moved` (the row
    // as updated) and the parameters; `$4` unless given.
    (fence = $fence:literal, set = $set:literal, metadata = $metadata:literal) => {
        concat!(
            // RECURSIVE so that callers may append recursive CTEs (the claim does).
            "WITH RECURSIVE old AS (
                 SELECT workflow_step_uuid, current_state FROM tasker.workflow_steps
                 WHERE workflow_step_uuid = ANY($1) AND current_state = ANY($2) ",
            $fence,
            "
                 FOR UPDATE
             ), moved AS (
                 UPDATE tasker.workflow_steps ws
                 SET current_state = $3, state_sort_key = ws.state_sort_key + 1, updated_at = now(),
                     last_failure_at = CASE WHEN $3 = 'enqueued_as_error_for_orchestration'
                                            THEN now() ELSE ws.last_failure_at END,
                     completed_at = CASE WHEN $3 IN ('complete', 'resolved_manually')
                                         THEN now() ELSE ws.completed_at END ",
            $set,
            "
                 FROM old
                 WHERE ws.workflow_step_uuid = ANY($1) AND ws.workflow_step_uuid = old.workflow_step_uuid
                 RETURNING ws.*, old.current_state AS from_state
             ), ins AS (
                 INSERT INTO tasker.workflow_step_transitions
                     (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
                 SELECT tasker.uuid_generate_v7(), moved.workflow_step_uuid, $3, moved.from_state, ",
            $metadata,
            ", moved.state_sort_key
                 FROM moved
             ) "
        )
    };
}
pub(crate) use step_transition_sql;

/// Checks that every source may move to `to` and returns the sources as strings, to
/// bind as the `$2` of [`step_transition_sql`].
pub(crate) fn step_sources(
    from: &[WorkflowStepState],
    to: WorkflowStepState,
) -> Result<Vec<String>> {
    check_sources("step", from, to, WorkflowStepState::can_transition_to)
}

async fn transition_steps_fenced(
    conn: &mut PgConnection,
    step_uuids: &[Uuid],
    from: &[WorkflowStepState],
    to: WorkflowStepState,
    metadata: &Value,
    expected_attempt: Option<i32>,
) -> Result<Vec<(Uuid, WorkflowStepState)>> {
    if step_uuids.is_empty() {
        return Ok(Vec::new());
    }
    let sources = step_sources(from, to)?;
    // Two statements rather than one with `$n IS NULL OR ...`: each keeps a simple plan
    // that PostgreSQL can cache.
    let query = match expected_attempt {
        None => sqlx::query_as(concat!(
            step_transition_sql!(fence = "", set = ""),
            "SELECT workflow_step_uuid, from_state FROM moved"
        )),
        Some(_) => sqlx::query_as(concat!(
            step_transition_sql!(fence = "AND attempts = $5", set = ""),
            "SELECT workflow_step_uuid, from_state FROM moved"
        )),
    }
    .bind(step_uuids)
    .bind(&sources)
    .bind(to.as_str())
    .bind(metadata);
    let query = match expected_attempt {
        Some(attempt) => query.bind(attempt),
        None => query,
    };
    let rows: Vec<(Uuid, String)> = query.fetch_all(conn).await?;
    rows.into_iter()
        .map(|(id, from)| Ok((id, parse_step_state(&from)?)))
        .collect()
}

/// The step's current state, or None if the step does not exist.
pub async fn current_step_state(
    conn: &mut PgConnection,
    step_uuid: Uuid,
) -> Result<Option<WorkflowStepState>> {
    let state: Option<String> = sqlx::query_scalar(
        "SELECT current_state FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .fetch_optional(conn)
    .await?;
    state.as_deref().map(parse_step_state).transpose()
}

pub(crate) fn parse_task_state(s: &str) -> Result<TaskState> {
    s.parse()
        .map_err(|e: crate::state_machine::UnknownState| Error::Corrupt(e.to_string()))
}

pub(crate) fn parse_step_state(s: &str) -> Result<WorkflowStepState> {
    s.parse()
        .map_err(|e: crate::state_machine::UnknownState| Error::Corrupt(e.to_string()))
}

/// A task's transitions, oldest first.
pub async fn task_history<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    task_uuid: Uuid,
) -> Result<Vec<crate::models::TaskTransition>> {
    let rows = sqlx::query_as(
        "SELECT task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key,
                sort_key = max(sort_key) OVER () AS most_recent, created_at
         FROM tasker.task_transitions WHERE task_uuid = $1 ORDER BY sort_key",
    )
    .bind(task_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}

/// A step's transitions, oldest first.
pub async fn step_history<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    step_uuid: Uuid,
) -> Result<Vec<crate::models::WorkflowStepTransition>> {
    let rows = sqlx::query_as(
        "SELECT workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key,
                sort_key = max(sort_key) OVER () AS most_recent, created_at
         FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = $1 ORDER BY sort_key",
    )
    .bind(step_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
