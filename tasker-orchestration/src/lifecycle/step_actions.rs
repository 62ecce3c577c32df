//! Operator actions on a step: reset for retry, resolve manually, complete manually.

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use tasker_shared::api::StepManualAction;
use tasker_shared::database::{step, task};
use tasker_shared::results::{ResultMetadata, ResultStatus, StepExecutionResult};
use tasker_shared::state_machine::{TransitionOutcome, WorkflowStepState};

use super::step_enqueuer::TaskRoute;
use super::task_finalizer::finalize;
use crate::error::Error;

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum StepActionError {
    /// The request broke the rules.
    #[error("invalid step action: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// No such task, or the step is not one of its steps.
    #[error("{0}")]
    NotFound(String),
    /// The step or task is in a state that does not allow the action.
    #[error("{0}")]
    Conflict(String),
    /// Anything else.
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<tasker_shared::database::Error> for StepActionError {
    fn from(e: tasker_shared::database::Error) -> Self {
        StepActionError::Internal(e.into())
    }
}

impl From<sqlx::Error> for StepActionError {
    fn from(e: sqlx::Error) -> Self {
        StepActionError::Internal(e.into())
    }
}

/// Applies an operator action and resumes the task: ready steps are enqueued and the
/// task's state is re-derived (a blocked task whose last failure was handled continues),
/// all in one transaction.
pub async fn apply(
    pool: &PgPool,
    task_uuid: Uuid,
    step_uuid: Uuid,
    action: &StepManualAction,
) -> Result<WorkflowStepState, StepActionError> {
    action.validate().map_err(StepActionError::Invalid)?;
    let mut tx = pool.begin().await?;
    if !task::transition::lock(&mut tx, task_uuid).await? {
        return Err(StepActionError::NotFound(format!(
            "task {task_uuid} not found"
        )));
    }
    let record = task::read::get(&mut *tx, task_uuid)
        .await?
        .ok_or_else(|| StepActionError::NotFound(format!("task {task_uuid} not found")))?;
    let step_row = step::processing::load(&mut *tx, step_uuid)
        .await?
        .filter(|s| s.task_uuid == task_uuid)
        .ok_or_else(|| {
            StepActionError::NotFound(format!(
                "step {step_uuid} is not a step of task {task_uuid}"
            ))
        })?;
    let task_state = record.state()?;
    if task_state.is_terminal() {
        return Err(StepActionError::Conflict(format!(
            "task {task_uuid} is {task_state}; the steps of an ended task cannot change"
        )));
    }

    let metadata = json!({
        "event": action.name(),
        "actor": action.actor(),
        "reason": action.reason(),
        "attempt": step_row.attempts,
    });
    let live: Vec<WorkflowStepState> = WorkflowStepState::ALL
        .iter()
        .copied()
        .filter(|s| !s.is_terminal())
        .collect();
    let (from, to): (&[WorkflowStepState], WorkflowStepState) = match action {
        StepManualAction::ResetForRetry { .. } => {
            (&[WorkflowStepState::Error], WorkflowStepState::Pending)
        }
        StepManualAction::ResolveManually { .. } => (&live, WorkflowStepState::ResolvedManually),
        StepManualAction::CompleteManually { .. } => (&live, WorkflowStepState::Complete),
    };
    let outcome = step::transition::one(&mut tx, step_uuid, from, to, &metadata, None).await?;
    if let TransitionOutcome::Conflict { actual } = outcome {
        let actual = actual.map_or("missing".to_string(), |s| s.to_string());
        let allowed = match action {
            StepManualAction::ResetForRetry { .. } => "only a step in error can be reset",
            _ => "a step that has ended cannot change",
        };
        return Err(StepActionError::Conflict(format!(
            "step {step_uuid} is {actual}; {allowed}"
        )));
    }
    match action {
        StepManualAction::ResetForRetry { .. } => {
            step::operator::reset_attempts(&mut tx, step_uuid).await?
        }
        StepManualAction::CompleteManually {
            completion_data,
            completed_by,
            ..
        } => {
            let now = Utc::now();
            let result = StepExecutionResult {
                step_uuid,
                success: true,
                result: completion_data.result.clone(),
                status: ResultStatus::Completed,
                error: None,
                metadata: ResultMetadata {
                    attempt: step_row.attempts,
                    execution_time_ms: 0,
                    worker_id: format!("manual:{completed_by}"),
                    started_at: now,
                    completed_at: now,
                    custom: completion_data.metadata.clone().unwrap_or(Value::Null),
                },
            };
            step::operator::store_result(&mut tx, step_uuid, &result).await?;
        }
        // The transition set completed_at.
        StepManualAction::ResolveManually { .. } => {}
    }
    let route = TaskRoute {
        task_uuid,
        namespace: &record.namespace,
        correlation_id: record.correlation_id,
    };
    finalize(&mut tx, route).await?;
    tx.commit().await?;
    tracing::info!(%task_uuid, %step_uuid, action = action.name(), actor = action.actor(), reason = action.reason(), "operator action applied");
    Ok(to)
}
