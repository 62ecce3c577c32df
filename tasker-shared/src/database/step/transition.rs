//! A step's state: the compare-and-swap that moves it, and reading it.
//!
//! A step's current state is a column of its row (`current_state`); the transition
//! table is insert-only history. A transition updates the row *only while its
//! `current_state` is one of the expected states* and inserts the history entry in the
//! same statement. A writer that lost a race blocks on the row lock, re-checks the
//! condition, finds the state moved on, and writes nothing: the caller gets
//! [`TransitionOutcome::Conflict`], a normal outcome rather than an error.
//!
//! The statements that move a step and do more in the same round trip (a claim, a
//! result, an enqueue, a completion) live with their operation and open with the same
//! compare-and-swap (`transition_many.sql` names them).

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::database::Result;
use crate::database::states::{checked_sources, parse_step};
use crate::state_machine::{TransitionOutcome, WorkflowStepState};

/// Moves one step from one of `from` to `to`. With `expected_attempt`, the transition is
/// written only while the step's attempt counter still equals it: that is the fencing
/// token that stops a worker whose lease expired from recording a stale result.
pub async fn one(
    conn: &mut PgConnection,
    step_uuid: Uuid,
    from: &[WorkflowStepState],
    to: WorkflowStepState,
    metadata: &Value,
    expected_attempt: Option<i32>,
) -> Result<TransitionOutcome<WorkflowStepState>> {
    let moved = fenced(conn, &[step_uuid], from, to, metadata, expected_attempt).await?;
    match moved.into_iter().next() {
        Some((_, from)) => Ok(TransitionOutcome::Applied { from }),
        None => Ok(TransitionOutcome::Conflict {
            actual: current_state(conn, step_uuid).await?,
        }),
    }
}

/// Moves every step of `step_uuids` that is in one of `from` to `to`, in one statement.
/// Returns the steps that moved, with the state each left.
pub async fn many(
    conn: &mut PgConnection,
    step_uuids: &[Uuid],
    from: &[WorkflowStepState],
    to: WorkflowStepState,
    metadata: &Value,
) -> Result<Vec<(Uuid, WorkflowStepState)>> {
    fenced(conn, step_uuids, from, to, metadata, None).await
}

/// The step's current state, or None if the step does not exist.
pub async fn current_state(
    conn: &mut PgConnection,
    step_uuid: Uuid,
) -> Result<Option<WorkflowStepState>> {
    let state: Option<String> = sqlx::query_scalar(
        "SELECT current_state FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .fetch_optional(conn)
    .await?;
    state.as_deref().map(parse_step).transpose()
}

/// Checks that every source may move to `to` and returns the sources as strings, to
/// bind as the accepted source states (`$2` of `transition_many.sql` and its kin).
pub(crate) fn sources(from: &[WorkflowStepState], to: WorkflowStepState) -> Result<Vec<String>> {
    checked_sources("step", from, to, WorkflowStepState::can_transition_to)
}

async fn fenced(
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
    let sources = sources(from, to)?;
    // Two statements rather than one with `$n IS NULL OR ...`: each keeps a simple plan
    // that PostgreSQL can cache.
    let query = match expected_attempt {
        None => sqlx::query_as(include_str!("transition_many.sql")),
        Some(_) => sqlx::query_as(include_str!("transition_many_fenced.sql")),
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
        .map(|(id, from)| Ok((id, parse_step(&from)?)))
        .collect()
}
