//! Finalizing a task after a step completed: the one-statement shortcut that completes
//! a task whose steps are all done, or tells that a step is still on its way. Anything
//! else derives the task's state from its execution context
//! ([`super::read::execution_context`]) and moves it with [`super::transition::one`].

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::transition::{SETTLED_CHANNEL, settled_payload};
use crate::database::Result;
use crate::state_machine::TaskState;

/// What [`complete_if_done`] found.
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
pub async fn complete_if_done(
    conn: &mut PgConnection,
    task_uuid: Uuid,
    metadata: &Value,
) -> Result<AfterCompletion> {
    let payload = settled_payload(task_uuid, TaskState::Complete);
    let (in_flight, completed): (bool, bool) =
        sqlx::query_as(include_str!("finalize_complete_if_done.sql"))
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
