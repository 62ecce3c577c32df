//! Task bodies: the creation request, a task with its steps, a page of tasks, and a
//! task's summary.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{DlqEntry, StepResponse};
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
