//! `/v1/tasks` routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;

use tasker_shared::api::{
    Pagination, StepResponse, StepSummary, TaskListResponse, TaskRequest, TaskResponse,
    TaskSummaryResponse,
};
use tasker_shared::database::{dlq, step, task};
use tasker_shared::messaging::worker_queue_name;
use tasker_shared::state_machine::TaskState;

use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::lifecycle::task_initializer::{CreateTaskError, create_task as initialize};

/// `POST /v1/tasks`: 201 with the task.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", security(("permission" = ["tasks:create"])), request_body = tasker_shared::api::TaskRequest,
    responses((status = 201, description = "Created", body = tasker_shared::api::TaskResponse),
        (status = 400, description = "Malformed JSON", body = tasker_shared::api::ErrorResponse), (status = 404, description = "Unknown template or version", body = tasker_shared::api::ErrorResponse),
        (status = 409, description = "Duplicate identity; `existing_task_uuid` names the task", body = tasker_shared::api::ErrorResponse),
        (status = 413, description = "Body too large", body = tasker_shared::api::ErrorResponse), (status = 422, description = "Invalid request", body = tasker_shared::api::ErrorResponse),
        (status = 503, description = "Backpressure; see Retry-After", body = tasker_shared::api::ErrorResponse)))]
pub async fn create_task(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TaskRequest>,
) -> Result<(StatusCode, Json<TaskResponse>), ApiError> {
    let limits = &state.config.orchestration.backpressure;
    if pgmq_notify::validate_namespace(&request.namespace).is_ok() {
        let queue = worker_queue_name(&request.namespace);
        let depth = state.depths.depth(&state.pool, &queue).await?;
        if u64::try_from(depth).unwrap_or(0) > limits.queue_depth_threshold {
            return Err(ApiError::Backpressure {
                message: format!(
                    "{queue} holds {depth} messages, more than the {} allowed before new tasks are refused; retry later",
                    limits.queue_depth_threshold
                ),
                retry_after_seconds: limits.retry_after_seconds,
            });
        }
    }
    let created = initialize(&state.pool, &request).await.map_err(|e| match e {
        CreateTaskError::Invalid(problems) => {
            ApiError::Validation(format!("invalid task request: {}", problems.join("; ")))
        }
        CreateTaskError::TemplateNotFound(message) => ApiError::NotFound(message),
        CreateTaskError::Duplicate { existing_task_uuid } => ApiError::Conflict {
            message: format!(
                "a task with the same identity already exists: {existing_task_uuid}; send an idempotency_key or use identity_strategy always_unique to create another"
            ),
            existing_task_uuid: Some(existing_task_uuid),
        },
        CreateTaskError::Internal(e) => e.into(),
    })?;
    // The task as committed, built from what creating it wrote: no read-back.
    let response = view(created.record, created.steps)?;
    Ok((StatusCode::CREATED, Json(response)))
}

/// `GET /v1/tasks/{task_uuid}`.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}", tag = "tasks", security(("permission" = ["tasks:read"])), params(("task_uuid" = uuid::Uuid, Path, description = "The task")),
    responses((status = 200, body = tasker_shared::api::TaskResponse), (status = 400, description = "Not a UUID", body = tasker_shared::api::ErrorResponse), (status = 404, body = tasker_shared::api::ErrorResponse)))]
pub async fn get_task(
    State(state): State<AppState>,
    Path(task_uuid): Path<String>,
) -> Result<Json<TaskResponse>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    Ok(Json(load_task(&state, task_uuid).await?))
}

pub(super) fn parse_uuid(name: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|e| {
        ApiError::BadRequest(format!("path parameter {name} {raw:?} is not a UUID: {e}"))
    })
}

async fn load_task(state: &AppState, task_uuid: Uuid) -> Result<TaskResponse, ApiError> {
    let record = task::get(&state.pool, task_uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("task {task_uuid} not found")))?;
    let details = step::list_for_task(&state.pool, task_uuid).await?;
    view(record, details)
}

/// A task's response from its row and its steps. The steps are at hand already: the
/// counts come from them rather than from a second pass over the same steps in
/// tasker.get_task_execution_context.
fn view(
    record: task::TaskRecord,
    details: Vec<step::StepDetail>,
) -> Result<TaskResponse, ApiError> {
    let ctx = task::TaskExecutionContext::from_steps(
        record.task_uuid,
        record.named_task_uuid,
        &record.status,
        details.iter().map(|d| {
            (
                d.readiness.current_state.as_str(),
                d.readiness.ready_for_execution,
            )
        }),
    );
    let steps = details
        .into_iter()
        .map(step_response)
        .collect::<Result<Vec<_>, _>>()?;
    response_from(record, ctx, steps)
}

async fn task_response(
    state: &AppState,
    record: task::TaskRecord,
    steps: Vec<StepResponse>,
) -> Result<TaskResponse, ApiError> {
    let task_uuid = record.task_uuid;
    let ctx = task::execution_context(&state.pool, task_uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("task {task_uuid} not found")))?;
    response_from(record, ctx, steps)
}

fn response_from(
    record: task::TaskRecord,
    ctx: task::TaskExecutionContext,
    steps: Vec<StepResponse>,
) -> Result<TaskResponse, ApiError> {
    let tags = serde_json::from_value(record.tags.clone()).unwrap_or_default();
    Ok(TaskResponse {
        task_uuid: record.task_uuid,
        status: record.state().map_err(ApiError::internal)?,
        name: record.name,
        namespace: record.namespace,
        version: record.version,
        created_at: record.created_at,
        updated_at: record.updated_at,
        completed_at: record.completed_at,
        context: record.context,
        initiator: record.initiator,
        source_system: record.source_system,
        reason: record.reason,
        priority: record.priority,
        tags,
        correlation_id: record.correlation_id,
        parent_correlation_id: record.parent_correlation_id,
        total_steps: ctx.total_steps,
        pending_steps: ctx.pending_steps,
        in_progress_steps: ctx.in_progress_steps + ctx.enqueued_steps,
        completed_steps: ctx.completed_steps,
        failed_steps: ctx.failed_steps,
        ready_steps: ctx.ready_steps,
        execution_status: ctx.execution_status,
        recommended_action: ctx.recommended_action,
        completion_percentage: ctx.completion_percentage,
        health_status: ctx.health_status,
        steps,
    })
}

pub(super) fn step_response(detail: step::StepDetail) -> Result<StepResponse, ApiError> {
    let r = detail.readiness;
    Ok(StepResponse {
        current_state: r.state().map_err(ApiError::internal)?,
        step_uuid: r.workflow_step_uuid,
        task_uuid: r.task_uuid,
        name: r.name,
        dependencies_satisfied: r.dependencies_satisfied,
        retry_eligible: r.retry_eligible,
        ready_for_execution: r.ready_for_execution,
        total_parents: r.total_parents,
        completed_parents: r.completed_parents,
        attempts: r.attempts,
        max_attempts: r.max_attempts,
        last_failure_at: r.last_failure_at,
        next_retry_at: r.next_retry_at,
        last_attempted_at: r.last_attempted_at,
        results: detail.results,
        completed_at: detail.completed_at,
        dependencies: detail.parent_names,
    })
}

/// Who cancels and why (`DELETE /v1/tasks/{task_uuid}?reason=...&cancelled_by=...`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelParams {
    reason: Option<String>,
    cancelled_by: Option<String>,
}

/// `DELETE /v1/tasks/{task_uuid}`: cancels the task and answers with it.
#[utoipa::path(delete, path = "/v1/tasks/{task_uuid}", tag = "tasks", security(("permission" = ["tasks:cancel"])),
    params(("task_uuid" = uuid::Uuid, Path, description = "The task"), ("reason" = Option<String>, Query, description = "Why"), ("cancelled_by" = Option<String>, Query, description = "Who")),
    responses((status = 200, description = "Cancelled", body = tasker_shared::api::TaskResponse), (status = 404, body = tasker_shared::api::ErrorResponse),
        (status = 409, description = "The task already ended", body = tasker_shared::api::ErrorResponse)))]
pub async fn cancel_task(
    State(state): State<AppState>,
    Path(task_uuid): Path<String>,
    ApiQuery(params): ApiQuery<CancelParams>,
) -> Result<Json<TaskResponse>, ApiError> {
    use crate::lifecycle::task_cancellation::{CancelError, cancel_task as cancel};
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let actor = params.cancelled_by.unwrap_or_else(|| "api".into());
    let reason = params
        .reason
        .unwrap_or_else(|| "cancelled through the API".into());
    cancel(&state.pool, task_uuid, &actor, &reason)
        .await
        .map_err(|e| match e {
            CancelError::NotFound(_) => ApiError::NotFound(e.to_string()),
            CancelError::AlreadyEnded { .. } => ApiError::Conflict {
                message: e.to_string(),
                existing_task_uuid: None,
            },
            CancelError::Internal(e) => e.into(),
        })?;
    Ok(Json(load_task(&state, task_uuid).await?))
}

/// Query of `GET /v1/tasks`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    page: Option<u32>,
    per_page: Option<u32>,
    namespace: Option<String>,
    status: Option<String>,
    initiator: Option<String>,
    source_system: Option<String>,
}

/// `GET /v1/tasks?namespace=&status=&initiator=&source_system=&page=1&per_page=25`:
/// newest first, without their steps.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", security(("permission" = ["tasks:list"])),
    params(("page" = Option<u32>, Query, description = "From 1"), ("per_page" = Option<u32>, Query, description = "1-100, default 25"),
        ("namespace" = Option<String>, Query), ("status" = Option<String>, Query, description = "A task state"),
        ("initiator" = Option<String>, Query), ("source_system" = Option<String>, Query)),
    responses((status = 200, body = tasker_shared::api::TaskListResponse), (status = 400, body = tasker_shared::api::ErrorResponse)))]
pub async fn list_tasks(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<TaskListResponse>, ApiError> {
    let page = params.page.unwrap_or(1);
    let per_page = params.per_page.unwrap_or(25);
    if page == 0 {
        return Err(ApiError::BadRequest("page starts at 1".into()));
    }
    if !(1..=100).contains(&per_page) {
        return Err(ApiError::BadRequest(format!(
            "per_page must be between 1 and 100, got {per_page}"
        )));
    }
    if let Some(status) = &params.status
        && status.parse::<TaskState>().is_err()
    {
        let all: Vec<&str> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
        return Err(ApiError::BadRequest(format!(
            "status {status:?} is not one of {}",
            all.join(", ")
        )));
    }
    let filter = task::TaskFilter {
        namespace: params.namespace,
        status: params.status,
        initiator: params.initiator,
        source_system: params.source_system,
    };
    let offset = i64::from(page - 1) * i64::from(per_page);
    let (records, total) = task::list(&state.pool, &filter, i64::from(per_page), offset).await?;
    let mut tasks = Vec::with_capacity(records.len());
    for record in records {
        tasks.push(task_response(&state, record, Vec::new()).await?);
    }
    Ok(Json(TaskListResponse {
        tasks,
        pagination: Pagination::new(page, per_page, u64::try_from(total).unwrap_or(0)),
    }))
}

/// `GET /v1/tasks/{task_uuid}/summary`: a compact view for dashboards.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/summary", tag = "tasks", security(("permission" = ["tasks:read"])), params(("task_uuid" = uuid::Uuid, Path, description = "The task")),
    responses((status = 200, body = tasker_shared::api::TaskSummaryResponse), (status = 404, body = tasker_shared::api::ErrorResponse)))]
pub async fn task_summary(
    State(state): State<AppState>,
    Path(task_uuid): Path<String>,
) -> Result<Json<TaskSummaryResponse>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let task = load_task(&state, task_uuid).await?;
    let dlq_entry = dlq::for_task(&state.pool, task_uuid)
        .await?
        .filter(|e| e.resolution_status == "pending")
        .map(super::dlq::entry);
    let end = task.completed_at.unwrap_or_else(chrono::Utc::now);
    Ok(Json(TaskSummaryResponse {
        task_uuid,
        namespace: task.namespace,
        name: task.name,
        version: task.version,
        status: task.status,
        execution_status: task.execution_status,
        completion_percentage: task.completion_percentage,
        created_at: task.created_at,
        completed_at: task.completed_at,
        elapsed_ms: (end - task.created_at).num_milliseconds(),
        steps: task
            .steps
            .into_iter()
            .map(|s| StepSummary {
                step_uuid: s.step_uuid,
                execution_time_ms: s
                    .results
                    .as_ref()
                    .and_then(|r| r["metadata"]["execution_time_ms"].as_u64()),
                error_message: s
                    .results
                    .as_ref()
                    .and_then(|r| r["error"]["message"].as_str().map(str::to_string)),
                name: s.name,
                current_state: s.current_state,
                attempts: s.attempts,
            })
            .collect(),
        dlq_entry,
    }))
}
