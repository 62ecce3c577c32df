//! State transitions written as compare-and-swap.
//!
//! A transition flips the current row's `most_recent` to false *only while its `to_state`
//! is one of the expected states*, and inserts the new row in the same statement. A
//! writer that lost a race blocks on the row lock, re-checks the condition, finds the row
//! no longer current, and writes nothing: the caller gets
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

/// Records a task's first state.
pub async fn insert_initial_task_state(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    state: TaskState,
    metadata: &Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tasker.task_transitions (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key, most_recent)
         VALUES ($1, $2, $3, NULL, $4, 1, true)",
    )
    .bind(Uuid::now_v7())
    .bind(task_uuid)
    .bind(state.as_str())
    .bind(metadata)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the first state of many steps.
pub async fn insert_initial_step_states(
    conn: &mut PgConnection,
    step_uuids: &[Uuid],
    state: WorkflowStepState,
    metadata: &Value,
) -> Result<()> {
    let ids: Vec<Uuid> = step_uuids.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "INSERT INTO tasker.workflow_step_transitions
             (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent)
         SELECT id, step, $3, NULL, $4, 1, true FROM unnest($1::uuid[], $2::uuid[]) AS u(id, step)",
    )
    .bind(&ids)
    .bind(step_uuids)
    .bind(state.as_str())
    .bind(metadata)
    .execute(conn)
    .await?;
    Ok(())
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
    let payload = serde_json::json!({"task_uuid": task_uuid, "status": to.as_str()}).to_string();
    let applied: Option<String> = sqlx::query_scalar(
        "WITH prev AS (
             UPDATE tasker.task_transitions SET most_recent = false
             WHERE task_uuid = $1 AND most_recent AND to_state = ANY($2)
             RETURNING to_state, sort_key
         ), ins AS (
             INSERT INTO tasker.task_transitions
                 (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key, most_recent)
             SELECT $3, $1, $4, prev.to_state, $5, prev.sort_key + 1, true FROM prev
             RETURNING from_state
         )
         SELECT ins.from_state FROM ins
         LEFT JOIN LATERAL (SELECT pg_notify($7, $8) WHERE $6) n ON true",
    )
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

/// The task's current state, or None if the task does not exist.
pub async fn current_task_state(
    conn: &mut PgConnection,
    task_uuid: Uuid,
) -> Result<Option<TaskState>> {
    let state: Option<String> = sqlx::query_scalar(
        "SELECT to_state FROM tasker.task_transitions WHERE task_uuid = $1 AND most_recent",
    )
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
    let sources = check_sources("step", from, to, WorkflowStepState::can_transition_to)?;
    // Two statements rather than one with `$n IS NULL OR ...`: each keeps a simple plan
    // that PostgreSQL can cache, and the unfenced one does not touch workflow_steps.
    // Both flip the moving steps' current rows in `prev` and insert the new ones.
    macro_rules! step_transition_sql {
        ($prev:literal) => {
            concat!(
                "WITH prev AS (",
                $prev,
                " RETURNING t.workflow_step_uuid, t.to_state, t.sort_key)
                 INSERT INTO tasker.workflow_step_transitions
                     (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent)
                 SELECT tasker.uuid_generate_v7(), prev.workflow_step_uuid, $3, prev.to_state, $4, prev.sort_key + 1, true
                 FROM prev
                 RETURNING workflow_step_uuid, from_state"
            )
        };
    }
    let query = match expected_attempt {
        None => sqlx::query_as(step_transition_sql!(
            "UPDATE tasker.workflow_step_transitions t SET most_recent = false
             WHERE t.workflow_step_uuid = ANY($1) AND t.most_recent AND t.to_state = ANY($2)"
        )),
        Some(_) => sqlx::query_as(step_transition_sql!(
            "UPDATE tasker.workflow_step_transitions t SET most_recent = false
             FROM tasker.workflow_steps ws
             WHERE t.workflow_step_uuid = ANY($1) AND t.most_recent AND t.to_state = ANY($2)
               AND ws.workflow_step_uuid = t.workflow_step_uuid AND ws.attempts = $5"
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
        "SELECT to_state FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = $1 AND most_recent",
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
        "SELECT task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at
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
        "SELECT workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at
         FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = $1 ORDER BY sort_key",
    )
    .bind(step_uuid)
    .fetch_all(executor)
    .await?;
    Ok(rows)
}
