//! Persisted state machines: a typed handle on one task's or step's transitions.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{TaskState, TransitionOutcome, WorkflowStepState};
use crate::database::Result;
use crate::database::{step, task};

/// The state machine of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskStateMachine {
    task_uuid: Uuid,
}

impl TaskStateMachine {
    /// The machine of `task_uuid`.
    pub fn new(task_uuid: Uuid) -> Self {
        Self { task_uuid }
    }

    /// The current state (None if the task does not exist).
    pub async fn current_state(&self, conn: &mut PgConnection) -> Result<Option<TaskState>> {
        task::transition::current_state(conn, self.task_uuid).await
    }

    /// Moves from one of `from` to `to` (compare and swap).
    pub async fn transition(
        &self,
        conn: &mut PgConnection,
        from: &[TaskState],
        to: TaskState,
        metadata: &Value,
    ) -> Result<TransitionOutcome<TaskState>> {
        task::transition::one(conn, self.task_uuid, from, to, metadata).await
    }
}

/// The state machine of one workflow step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepStateMachine {
    step_uuid: Uuid,
}

impl StepStateMachine {
    /// The machine of `step_uuid`.
    pub fn new(step_uuid: Uuid) -> Self {
        Self { step_uuid }
    }

    /// The current state (None if the step does not exist).
    pub async fn current_state(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Option<WorkflowStepState>> {
        step::transition::current_state(conn, self.step_uuid).await
    }

    /// Moves from one of `from` to `to` (compare and swap), optionally fenced on the
    /// step's attempt number.
    pub async fn transition(
        &self,
        conn: &mut PgConnection,
        from: &[WorkflowStepState],
        to: WorkflowStepState,
        metadata: &Value,
        expected_attempt: Option<i32>,
    ) -> Result<TransitionOutcome<WorkflowStepState>> {
        step::transition::one(conn, self.step_uuid, from, to, metadata, expected_attempt).await
    }
}
