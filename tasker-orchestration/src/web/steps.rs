//! `/v1/tasks/{task_uuid}/workflow_steps` routes.

use axum::Json;
use axum::extract::{Path, State};

use tasker_shared::api::{StepAuditResponse, StepManualAction, StepResponse};
use tasker_shared::database::{step, task};

use super::tasks::{parse_uuid, step_response};
use super::{ApiError, ApiJson, AppState};
use crate::lifecycle::step_actions::{self, StepActionError};

/// `GET /v1/tasks/{task_uuid}/workflow_steps`.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/workflow_steps", tag = "steps", security(("permission" = ["steps:read"])), params(("task_uuid" = uuid::Uuid, Path, description = "The task")),
    responses((status = 200, body = Vec<tasker_shared::api::StepResponse>), (status = 404, body = tasker_shared::api::ErrorResponse)))]
pub async fn list_steps(
    State(state): State<AppState>,
    Path(task_uuid): Path<String>,
) -> Result<Json<Vec<StepResponse>>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    if task::get(&state.pool, task_uuid).await?.is_none() {
        return Err(ApiError::NotFound(format!("task {task_uuid} not found")));
    }
    let steps = step::list_for_task(&state.pool, task_uuid)
        .await?
        .into_iter()
        .map(step_response)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(steps))
}

/// `GET /v1/tasks/{task_uuid}/workflow_steps/{step_uuid}`.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}", tag = "steps", security(("permission" = ["steps:read"])), params(("task_uuid" = uuid::Uuid, Path, description = "The task"), ("step_uuid" = uuid::Uuid, Path, description = "The step")),
    responses((status = 200, body = tasker_shared::api::StepResponse), (status = 404, body = tasker_shared::api::ErrorResponse)))]
pub async fn get_step(
    State(state): State<AppState>,
    Path((task_uuid, step_uuid)): Path<(String, String)>,
) -> Result<Json<StepResponse>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let step_uuid = parse_uuid("step_uuid", &step_uuid)?;
    let detail = step::get_detail(&state.pool, task_uuid, step_uuid)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "step {step_uuid} is not a step of task {task_uuid}"
            ))
        })?;
    Ok(Json(step_response(detail)?))
}

/// `PATCH /v1/tasks/{task_uuid}/workflow_steps/{step_uuid}`: an operator action.
#[utoipa::path(patch, path = "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}", tag = "steps", security(("permission" = ["steps:resolve"])), params(("task_uuid" = uuid::Uuid, Path, description = "The task"), ("step_uuid" = uuid::Uuid, Path, description = "The step")),
    request_body = tasker_shared::api::StepManualAction,
    responses((status = 200, body = tasker_shared::api::StepResponse), (status = 404, body = tasker_shared::api::ErrorResponse),
        (status = 409, description = "The step or task does not allow the action", body = tasker_shared::api::ErrorResponse), (status = 422, body = tasker_shared::api::ErrorResponse)))]
pub async fn act_on_step(
    State(state): State<AppState>,
    Path((task_uuid, step_uuid)): Path<(String, String)>,
    ApiJson(action): ApiJson<StepManualAction>,
) -> Result<Json<StepResponse>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let step_uuid = parse_uuid("step_uuid", &step_uuid)?;
    step_actions::apply(&state.pool, task_uuid, step_uuid, &action)
        .await
        .map_err(|e| match e {
            StepActionError::Invalid(_) => ApiError::Validation(e.to_string()),
            StepActionError::NotFound(m) => ApiError::NotFound(m),
            StepActionError::Conflict(m) => ApiError::Conflict {
                message: m,
                existing_task_uuid: None,
            },
            StepActionError::Internal(e) => e.into(),
        })?;
    let detail = step::get_detail(&state.pool, task_uuid, step_uuid)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "step {step_uuid} is not a step of task {task_uuid}"
            ))
        })?;
    Ok(Json(step_response(detail)?))
}

/// `GET /v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit`: the step's history,
/// oldest first, with actors and reasons.
#[utoipa::path(get, path = "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit", tag = "steps", security(("permission" = ["steps:read"])), params(("task_uuid" = uuid::Uuid, Path, description = "The task"), ("step_uuid" = uuid::Uuid, Path, description = "The step")),
    responses((status = 200, body = Vec<tasker_shared::api::StepAuditResponse>), (status = 404, body = tasker_shared::api::ErrorResponse)))]
pub async fn step_audit(
    State(state): State<AppState>,
    Path((task_uuid, step_uuid)): Path<(String, String)>,
) -> Result<Json<Vec<StepAuditResponse>>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let step_uuid = parse_uuid("step_uuid", &step_uuid)?;
    let rows = step::audit(&state.pool, task_uuid, step_uuid).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "step {step_uuid} is not a step of task {task_uuid}"
        )));
    }
    let entries = rows
        .into_iter()
        .map(|r| {
            let text = |key: &str| {
                r.metadata
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            Ok(StepAuditResponse {
                transition_uuid: r.workflow_step_transition_uuid,
                step_uuid: r.workflow_step_uuid,
                task_uuid: r.task_uuid,
                step_name: r.step_name.clone(),
                from_state: r
                    .from_state
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(ApiError::internal)?,
                to_state: r.to_state.parse().map_err(ApiError::internal)?,
                created_at: r.created_at,
                event: text("event"),
                actor: text("actor").or_else(|| text("worker_id")),
                reason: text("reason"),
                metadata: r.metadata,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(entries))
}
