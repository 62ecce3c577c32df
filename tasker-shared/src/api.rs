//! REST request and response bodies, shared by `tasker-server` and `tasker-client` so the
//! wire format cannot drift.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::state_machine::{TaskState, WorkflowStepState};

/// `POST /v1/tasks`: create a task from a registered template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// The template's namespace.
    pub namespace: String,
    /// The template's name.
    pub name: String,
    /// The template's version; the newest registered one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The task's input, handed to every step. Must be a JSON object.
    pub context: Value,
    /// Who asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Which system asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Labels for searching.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// -100 to 100; higher runs first when the system is busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Trace id; a fresh one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// Trace id of the parent workflow, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_correlation_id: Option<Uuid>,
    /// Makes the request idempotent: a second request with the same key for the same
    /// template returns 409 with the first task's uuid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl TaskRequest {
    /// A request with only the required fields set.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, context: Value) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            version: None,
            context,
            initiator: None,
            source_system: None,
            reason: None,
            tags: Vec::new(),
            priority: None,
            correlation_id: None,
            parent_correlation_id: None,
            idempotency_key: None,
        }
    }

    /// Checks field sizes and shapes; returns every problem, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut len = |field: &str, value: &str, max: usize| {
            if value.is_empty() || value.len() > max {
                problems.push(format!("{field} must be 1-{max} characters"));
            }
        };
        len("namespace", &self.namespace, 29);
        len("name", &self.name, 64);
        if let Some(v) = &self.version {
            len("version", v, 32);
        }
        if let Some(v) = &self.initiator {
            len("initiator", v, 128);
        }
        if let Some(v) = &self.source_system {
            len("source_system", v, 128);
        }
        if let Some(v) = &self.reason {
            len("reason", v, 500);
        }
        if let Some(v) = &self.idempotency_key {
            len("idempotency_key", v, 255);
        }
        if !self.context.is_object() {
            problems.push("context must be a JSON object".to_string());
        }
        if let Some(p) = self.priority
            && !(-100..=100).contains(&p)
        {
            problems.push(format!("priority must be between -100 and 100, got {p}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A task, with where it stands and its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskResponse {
    /// The task.
    pub task_uuid: Uuid,
    /// Template name.
    pub name: String,
    /// Template namespace.
    pub namespace: String,
    /// Template version.
    pub version: String,
    /// The task's current state.
    pub status: TaskState,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it reached `complete`.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its input.
    pub context: Value,
    /// Who asked for it.
    pub initiator: String,
    /// Which system asked for it.
    pub source_system: String,
    /// Why.
    pub reason: String,
    /// Priority, -100 to 100.
    pub priority: i32,
    /// Labels.
    pub tags: Vec<String>,
    /// Trace id.
    pub correlation_id: Uuid,
    /// Parent trace id.
    pub parent_correlation_id: Option<Uuid>,
    /// Number of steps.
    pub total_steps: i32,
    /// Steps not started.
    pub pending_steps: i32,
    /// Steps running or awaiting result processing.
    pub in_progress_steps: i32,
    /// Steps complete or resolved manually.
    pub completed_steps: i32,
    /// Steps in error.
    pub failed_steps: i32,
    /// Steps that can be enqueued now.
    pub ready_steps: i32,
    /// Summary of what the task is doing (see `docs/states-and-lifecycles.md`).
    pub execution_status: String,
    /// What the orchestration will do next.
    pub recommended_action: String,
    /// Percentage of steps done.
    pub completion_percentage: f64,
    /// `healthy`, `recovering` or `blocked`.
    pub health_status: String,
    /// The steps, with readiness.
    pub steps: Vec<StepResponse>,
}

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

/// A dead-letter entry (`GET /v1/dlq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqEntry {
    /// The entry.
    pub dlq_entry_uuid: Uuid,
    /// The task.
    pub task_uuid: Uuid,
    /// The task's state when it was given up on.
    pub original_state: String,
    /// `staleness_timeout`, `max_retries_exceeded`, `dependency_cycle_detected`,
    /// `worker_unavailable` or `manual_dlq`.
    pub dlq_reason: String,
    /// When it was added.
    pub dlq_timestamp: DateTime<Utc>,
    /// `pending`, `manually_resolved`, `permanently_failed` or `cancelled`.
    pub resolution_status: String,
    /// When it was resolved.
    pub resolution_timestamp: Option<DateTime<Utc>>,
    /// Notes of the investigation.
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The task and its steps as they were.
    pub task_snapshot: Value,
    /// Thresholds and timings that led here.
    pub metadata: Value,
}

/// `GET /v1/tasks`: one page of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskListResponse {
    /// The tasks on this page (without their steps).
    pub tasks: Vec<TaskResponse>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// Page metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pagination {
    /// This page, from 1.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
    /// Items in all pages.
    pub total_count: u64,
    /// Pages in all.
    pub total_pages: u32,
    /// Whether a later page exists.
    pub has_next: bool,
    /// Whether an earlier page exists.
    pub has_previous: bool,
}

impl Pagination {
    /// Page metadata for `total_count` items.
    pub fn new(page: u32, per_page: u32, total_count: u64) -> Self {
        let total_pages =
            u32::try_from(total_count.div_ceil(u64::from(per_page.max(1)))).unwrap_or(u32::MAX);
        Self {
            page,
            per_page,
            total_count,
            total_pages,
            has_next: page < total_pages,
            has_previous: page > 1,
        }
    }
}

/// `GET /v1/tasks/{uuid}/summary`: a compact view of a task for dashboards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskSummaryResponse {
    /// The task.
    pub task_uuid: Uuid,
    /// Template namespace, name and version.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version.
    pub version: String,
    /// Current state.
    pub status: TaskState,
    /// See `TaskResponse`.
    pub execution_status: String,
    /// Percentage of steps done.
    pub completion_percentage: f64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Milliseconds from creation to completion (or until now).
    pub elapsed_ms: i64,
    /// One line per step.
    pub steps: Vec<StepSummary>,
    /// The task's pending DLQ entry, if any.
    pub dlq_entry: Option<DlqEntry>,
}

/// One step in a [`TaskSummaryResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepSummary {
    /// The step.
    pub step_uuid: Uuid,
    /// Its name.
    pub name: String,
    /// Current state.
    pub current_state: WorkflowStepState,
    /// Attempts made.
    pub attempts: i32,
    /// How long the latest attempt's handler ran.
    pub execution_time_ms: Option<u64>,
    /// The latest failure's message.
    pub error_message: Option<String>,
}

/// `GET /v1/templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateListResponse {
    /// Namespaces with registered templates.
    pub namespaces: Vec<NamespaceSummary>,
    /// Every registered template version.
    pub templates: Vec<TemplateSummary>,
}

/// A namespace in [`TemplateListResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceSummary {
    /// Its name.
    pub name: String,
    /// Templates (versions) registered in it.
    pub template_count: u32,
}

/// A template in [`TemplateListResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateSummary {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What it does.
    pub description: Option<String>,
    /// Number of steps.
    pub step_count: u32,
    /// First registered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/templates/{namespace}/{name}/{version}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateResponse {
    /// Namespace, name, version and the rest.
    #[serde(flatten)]
    pub summary: TemplateSummary,
    /// `strict`, `caller_provided` or `always_unique`.
    pub identity_strategy: String,
    /// The whole template, as registered.
    pub template: Value,
}

/// `PATCH /v1/dlq/entry/{dlq_entry_uuid}`: investigation progress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DlqUpdateRequest {
    /// `pending`, `manually_resolved`, `permanently_failed` or `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_status: Option<String>,
    /// Notes of the investigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Extra metadata, merged into the entry's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `GET /v1/dlq/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqStatsResponse {
    /// Entries in all.
    pub total: u64,
    /// Entries per reason.
    pub by_reason: std::collections::BTreeMap<String, u64>,
    /// Entries per resolution status.
    pub by_status: std::collections::BTreeMap<String, u64>,
    /// When the oldest pending entry was added.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// `GET /health/ready` and `/health/detailed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadinessResponse {
    /// `ready` or `not_ready`.
    pub status: String,
    /// When this was measured.
    pub timestamp: DateTime<Utc>,
    /// Each check by name.
    pub checks: std::collections::BTreeMap<String, HealthCheck>,
    /// Version and settings (`/health/detailed` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthCheck {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// What was found.
    pub message: String,
    /// How long the check took.
    pub duration_ms: u64,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// When this was measured.
    pub timestamp: DateTime<Utc>,
}

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
}

/// The body of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `NOT_FOUND`.
    pub code: String,
    /// What was wrong, and where.
    pub message: String,
    /// For `CONFLICT` on task creation: the task that already exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_task_uuid: Option<Uuid>,
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

    #[test]
    fn request_rejects_unknown_fields_and_bad_values() {
        let err = serde_json::from_value::<TaskRequest>(json!({
            "namespace": "ns", "name": "n", "context": {}, "contxt": {}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("contxt"), "{err}");
        let mut r = TaskRequest::new("ns", "n", json!([1]));
        r.priority = Some(500);
        let problems = r.validate().unwrap_err();
        assert_eq!(
            problems,
            [
                "context must be a JSON object",
                "priority must be between -100 and 100, got 500"
            ]
        );
        assert!(TaskRequest::new("ns", "n", json!({})).validate().is_ok());
    }
}
