//! `/v1/dlq` routes.

use axum::Json;
use axum::extract::State;

use tasker_shared::api::DlqEntry;
use tasker_shared::database::dlq;

use super::{ApiError, ApiQuery, AppState};

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
    Ok(Json(
        rows.into_iter()
            .map(|r| DlqEntry {
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
            })
            .collect(),
    ))
}
