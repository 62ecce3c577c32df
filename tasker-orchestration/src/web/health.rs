//! `GET /health`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;

use tasker_shared::api::HealthResponse;

use super::AppState;

/// 200 with `healthy` when the database answers, else 503 with `unhealthy`.
pub async fn health_check(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let ok = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(HealthResponse {
            status: if ok { "healthy" } else { "unhealthy" }.into(),
            timestamp: Utc::now(),
        }),
    )
}
