//! Step bodies: a step with its readiness, an operator's action on one, and its
//! history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::state_machine::WorkflowStepState;

/// A step, with its readiness and latest result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepResponse {
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Step name from the template.
    pub name: String,
    /// Names of the steps it depends on (its direct parents), sorted.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Current state.
    pub current_state: WorkflowStepState,
    /// All parents complete or resolved.
    pub dependencies_satisfied: bool,
    /// May be attempted (again).
    pub retry_eligible: bool,
    /// Can be enqueued now.
    pub ready_for_execution: bool,
    /// Number of parents.
    pub total_parents: i32,
    /// Parents done.
    pub completed_parents: i32,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When a worker last reported a failure.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// When the next attempt becomes visible to workers.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// When the latest attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// The latest attempt's `StepExecutionResult`.
    pub results: Option<Value>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// `PATCH /v1/tasks/{task_uuid}/workflow_steps/{step_uuid}`: an operator's action on a
/// step. Each takes the acting person or system and a reason, both stored in the step's
/// transition metadata and shown by the audit route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "action_type", rename_all = "snake_case")]
pub enum StepManualAction {
    /// Put a step in `error` back to `pending` with its attempts reset, so it runs again.
    ResetForRetry {
        /// Why.
        reason: String,
        /// Who.
        reset_by: String,
    },
    /// Declare a step resolved without a result; its dependents may run.
    ResolveManually {
        /// Why.
        reason: String,
        /// Who.
        resolved_by: String,
    },
    /// Complete a step with a result supplied by the operator.
    CompleteManually {
        /// The result (and optional metadata) to record.
        completion_data: CompletionData,
        /// Why.
        reason: String,
        /// Who.
        completed_by: String,
    },
}

/// The result an operator records with `complete_manually`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompletionData {
    /// The step's result, handed to its dependents like a handler's result.
    pub result: Value,
    /// Extra metadata stored with the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl StepManualAction {
    /// The action's name, as in `action_type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ResetForRetry { .. } => "reset_for_retry",
            Self::ResolveManually { .. } => "resolve_manually",
            Self::CompleteManually { .. } => "complete_manually",
        }
    }

    /// Who acts.
    pub fn actor(&self) -> &str {
        match self {
            Self::ResetForRetry { reset_by, .. } => reset_by,
            Self::ResolveManually { resolved_by, .. } => resolved_by,
            Self::CompleteManually { completed_by, .. } => completed_by,
        }
    }

    /// Why.
    pub fn reason(&self) -> &str {
        match self {
            Self::ResetForRetry { reason, .. }
            | Self::ResolveManually { reason, .. }
            | Self::CompleteManually { reason, .. } => reason,
        }
    }

    /// Checks the actor and the reason; returns every problem, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let actor_field = match self {
            Self::ResetForRetry { .. } => "reset_by",
            Self::ResolveManually { .. } => "resolved_by",
            Self::CompleteManually { .. } => "completed_by",
        };
        let mut problems = Vec::new();
        if self.actor().trim().is_empty() || self.actor().len() > 255 {
            problems.push(format!("{actor_field} must be 1-255 characters"));
        }
        if self.reason().trim().is_empty() || self.reason().len() > 500 {
            problems.push("reason must be 1-500 characters".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// One entry of a step's history (`GET .../workflow_steps/{step_uuid}/audit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepAuditResponse {
    /// The transition.
    pub transition_uuid: Uuid,
    /// The step.
    pub step_uuid: Uuid,
    /// Its task.
    pub task_uuid: Uuid,
    /// Step name.
    pub step_name: String,
    /// State left (None for the first entry).
    pub from_state: Option<WorkflowStepState>,
    /// State entered.
    pub to_state: WorkflowStepState,
    /// When.
    pub created_at: DateTime<Utc>,
    /// What happened (`enqueued`, `claimed`, `reset_for_retry`…).
    pub event: Option<String>,
    /// Who acted: an operator, or the worker that ran the attempt.
    pub actor: Option<String>,
    /// The operator's reason.
    pub reason: Option<String>,
    /// Everything recorded with the transition.
    pub metadata: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manual_actions_are_tagged() {
        let a: StepManualAction = serde_json::from_value(json!({
            "action_type": "complete_manually",
            "completion_data": {"result": {"ok": true}},
            "reason": "fixed upstream",
            "completed_by": "ops@example.com"
        }))
        .unwrap();
        assert_eq!(a.name(), "complete_manually");
        assert_eq!(a.actor(), "ops@example.com");
        assert!(a.validate().is_ok());
        let bad: StepManualAction = serde_json::from_value(json!({
            "action_type": "reset_for_retry", "reason": " ", "reset_by": ""
        }))
        .unwrap();
        assert_eq!(
            bad.validate().unwrap_err(),
            [
                "reset_by must be 1-255 characters",
                "reason must be 1-500 characters"
            ]
        );
        let err = serde_json::from_value::<StepManualAction>(json!({"action_type": "explode"}))
            .unwrap_err();
        assert!(err.to_string().contains("explode"), "{err}");
    }
}
