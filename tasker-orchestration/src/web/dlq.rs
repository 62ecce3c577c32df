//! `/v1/dlq` routes.

use axum::Json;
use axum::extract::{Path, State};

use tasker_shared::api::{DlqEntry, DlqStatsResponse, DlqUpdateRequest};
use tasker_shared::database::dlq::{self, DlqRow};

use super::tasks::parse_uuid;
use super::{ApiError, ApiJson, ApiQuery, AppState};

/// Filters of `GET /v1/dlq`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqParams {
    resolution_status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

const STATUSES: [&str; 4] = [
    "pending",
    "manually_resolved",
    "permanently_failed",
    "cancelled",
];

/// `GET /v1/dlq?resolution_status=&limit=50&offset=0`: entries, newest first.
#[utoipa::path(get, path = "/v1/dlq", tag = "dlq", security(("permission" = ["dlq:read"])),
    params(("resolution_status" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1-1000, default 50"), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = Vec<tasker_shared::api::DlqEntry>), (status = 400, body = tasker_shared::api::ErrorResponse)))]
pub async fn list_dlq(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<DlqParams>,
) -> Result<Json<Vec<DlqEntry>>, ApiError> {
    if let Some(s) = &params.resolution_status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "resolution_status {s:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let limit = params.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let offset = params.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::BadRequest(format!(
            "offset must not be negative, got {offset}"
        )));
    }
    let rows = dlq::list(
        &state.pool,
        params.resolution_status.as_deref(),
        limit,
        offset,
    )
    .await?;
    Ok(Json(rows.into_iter().map(entry).collect()))
}

pub(super) fn entry(r: DlqRow) -> DlqEntry {
    DlqEntry {
        dlq_entry_uuid: r.dlq_entry_uuid,
        task_uuid: r.task_uuid,
        original_state: r.original_state,
        dlq_reason: r.dlq_reason,
        dlq_timestamp: r.dlq_timestamp,
        resolution_status: r.resolution_status,
        resolution_timestamp: r.resolution_timestamp,
        resolution_notes: r.resolution_notes,
        resolved_by: r.resolved_by,
        task_snapshot: r.task_snapshot,
        metadata: r.metadata,
    }
}

/// `GET /v1/dlq/task/{task_uuid}`: the task's newest entry.
#[utoipa::path(get, path = "/v1/dlq/task/{task_uuid}", tag = "dlq", security(("permission" = ["dlq:read"])), params(("task_uuid" = uuid::Uuid, Path, description = "The task")),
    responses((status = 200, body = tasker_shared::api::DlqEntry), (status = 404, body = tasker_shared::api::ErrorResponse)))]
pub async fn dlq_for_task(
    State(state): State<AppState>,
    Path(task_uuid): Path<String>,
) -> Result<Json<DlqEntry>, ApiError> {
    let task_uuid = parse_uuid("task_uuid", &task_uuid)?;
    let row = dlq::for_task(&state.pool, task_uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("task {task_uuid} has no DLQ entry")))?;
    Ok(Json(entry(row)))
}

/// `PATCH /v1/dlq/entry/{dlq_entry_uuid}`: record investigation progress.
#[utoipa::path(patch, path = "/v1/dlq/entry/{dlq_entry_uuid}", tag = "dlq", security(("permission" = ["dlq:update"])),
    params(("dlq_entry_uuid" = uuid::Uuid, Path)), request_body = tasker_shared::api::DlqUpdateRequest,
    responses((status = 200, body = tasker_shared::api::DlqEntry), (status = 404, body = tasker_shared::api::ErrorResponse), (status = 409, body = tasker_shared::api::ErrorResponse), (status = 422, body = tasker_shared::api::ErrorResponse)))]
pub async fn update_dlq_entry(
    State(state): State<AppState>,
    Path(entry_uuid): Path<String>,
    ApiJson(body): ApiJson<DlqUpdateRequest>,
) -> Result<Json<DlqEntry>, ApiError> {
    let entry_uuid = parse_uuid("dlq_entry_uuid", &entry_uuid)?;
    if let Some(s) = &body.resolution_status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::Validation(format!(
            "resolution_status {s:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    if body.metadata.as_ref().is_some_and(|m| !m.is_object()) {
        return Err(ApiError::Validation(
            "metadata must be a JSON object".into(),
        ));
    }
    if body == DlqUpdateRequest::default() {
        return Err(ApiError::Validation(
            "nothing to change: send resolution_status, resolution_notes, resolved_by or metadata"
                .into(),
        ));
    }
    let change = dlq::DlqUpdate {
        resolution_status: body.resolution_status,
        resolution_notes: body.resolution_notes,
        resolved_by: body.resolved_by,
        metadata: body.metadata,
    };
    match dlq::update(&state.pool, entry_uuid, &change).await {
        Ok(Some(row)) => Ok(Json(entry(row))),
        Ok(None) => Err(ApiError::NotFound(format!(
            "DLQ entry {entry_uuid} not found"
        ))),
        // Re-opening an entry while the task has another pending one.
        Err(e) if e.constraint() == Some("tasks_dlq_one_pending_per_task") => {
            Err(ApiError::Conflict {
                message: "the task already has a pending DLQ entry".into(),
                existing_task_uuid: None,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1/dlq/stats`.
#[utoipa::path(get, path = "/v1/dlq/stats", tag = "dlq", security(("permission" = ["dlq:read"])),
    responses((status = 200, body = tasker_shared::api::DlqStatsResponse)))]
pub async fn dlq_stats(State(state): State<AppState>) -> Result<Json<DlqStatsResponse>, ApiError> {
    let (by_reason, by_status, oldest) = dlq::stats(&state.pool).await?;
    let to_map = |rows: Vec<(String, i64)>| -> std::collections::BTreeMap<String, u64> {
        rows.into_iter()
            .map(|(k, v)| (k, u64::try_from(v).unwrap_or(0)))
            .collect()
    };
    let by_status = to_map(by_status);
    Ok(Json(DlqStatsResponse {
        total: by_status.values().sum(),
        by_reason: to_map(by_reason),
        by_status,
        oldest_pending_at: oldest,
    }))
}
