//! Health, metrics and configuration routes.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use tasker_shared::api::{HealthCheck, HealthResponse, ReadinessResponse};
use tasker_shared::database;
use tasker_shared::messaging::{
    ORCHESTRATION_STEP_RESULTS, ORCHESTRATION_TASK_FINALIZATIONS, ORCHESTRATION_TASK_REQUESTS,
};

use super::{ApiError, AppState};

/// `GET /health`: 200 with `healthy` when the database answers, else 503 `unhealthy`.
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, body = tasker_shared::api::HealthResponse), (status = 503, body = tasker_shared::api::HealthResponse)))]
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

/// `GET /health/live`: the process answers (no dependencies checked).
#[utoipa::path(get, path = "/health/live", tag = "health", security(()), responses((status = 200, body = tasker_shared::api::HealthResponse)))]
pub async fn live() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "alive".into(),
        timestamp: Utc::now(),
    })
}

async fn checks(state: &AppState) -> BTreeMap<String, HealthCheck> {
    let mut checks = BTreeMap::new();
    let timed = Instant::now();
    let db = sqlx::query("SELECT 1").execute(&state.pool).await;
    checks.insert(
        "database".into(),
        check(
            db.is_ok(),
            db.err().map_or("reachable".into(), |e| e.to_string()),
            timed,
        ),
    );

    let timed = Instant::now();
    let migrated = database::schema_is_current(&state.pool).await;
    let (ok, message) = match migrated {
        Ok(true) => (true, "every migration is applied".to_string()),
        Ok(false) => (
            false,
            "migrations are missing: run `tasker-server migrate`".to_string(),
        ),
        Err(e) => (false, e.to_string()),
    };
    checks.insert("migrations".into(), check(ok, message, timed));

    let timed = Instant::now();
    let queues = [
        ORCHESTRATION_STEP_RESULTS,
        ORCHESTRATION_TASK_REQUESTS,
        ORCHESTRATION_TASK_FINALIZATIONS,
    ];
    let (ok, message) = match database::missing_queues(&state.pool, &queues).await {
        Ok(missing) if missing.is_empty() => (true, "orchestration queues exist".to_string()),
        Ok(missing) => (false, format!("missing queues: {}", missing.join(", "))),
        Err(e) => (false, e.to_string()),
    };
    checks.insert("queues".into(), check(ok, message, timed));
    checks
}

fn check(ok: bool, message: String, started: Instant) -> HealthCheck {
    HealthCheck {
        status: if ok { "healthy" } else { "unhealthy" }.into(),
        message,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

fn readiness(
    checks: BTreeMap<String, HealthCheck>,
    info: Option<serde_json::Value>,
) -> (StatusCode, Json<ReadinessResponse>) {
    let ok = checks.values().all(|c| c.status == "healthy");
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(ReadinessResponse {
            status: if ok { "ready" } else { "not_ready" }.into(),
            timestamp: Utc::now(),
            checks,
            info,
        }),
    )
}

/// `GET /health/ready`: the database answers, migrations are applied, queues exist.
#[utoipa::path(get, path = "/health/ready", tag = "health", security(()),
    responses((status = 200, body = tasker_shared::api::ReadinessResponse), (status = 503, body = tasker_shared::api::ReadinessResponse)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadinessResponse>) {
    readiness(checks(&state).await, None)
}

/// `GET /health/detailed`: readiness plus version, settings and pool usage.
#[utoipa::path(get, path = "/health/detailed", tag = "health", security(()),
    responses((status = 200, body = tasker_shared::api::ReadinessResponse), (status = 503, body = tasker_shared::api::ReadinessResponse)))]
pub async fn detailed(State(state): State<AppState>) -> (StatusCode, Json<ReadinessResponse>) {
    let c = &state.config;
    let info = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "environment": c.environment,
        "deployment_mode": c.events.deployment_mode,
        "auth_enabled": c.web.auth.enabled,
        "pool": {"size": state.pool.size(), "idle": state.pool.num_idle(), "max": c.database.max_connections},
    });
    readiness(checks(&state).await, Some(info))
}

/// `GET /metrics`: Prometheus text, with queue depths sampled now.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 404, description = "Metrics disabled", body = tasker_shared::api::ErrorResponse)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.prometheus else {
        return ApiError::NotFound("metrics are not enabled in this process".into())
            .into_response();
    };
    if let Ok(depths) = database::queue_depths(&state.pool).await {
        for (queue, depth) in depths {
            crate::metrics::queue_depth(&queue, depth);
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// `GET /config`: the effective configuration with secrets redacted, when
/// `web.config_endpoint_enabled` is true.
#[utoipa::path(get, path = "/config", tag = "system", security(("permission" = ["system:config_read"])),
    responses((status = 200, description = "The effective configuration, secrets redacted", body = serde_json::Value),
        (status = 404, description = "web.config_endpoint_enabled is false", body = tasker_shared::api::ErrorResponse)))]
pub async fn config(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.config.web.config_endpoint_enabled {
        return Err(ApiError::NotFound(
            "the configuration endpoint is disabled (web.config_endpoint_enabled = false)".into(),
        ));
    }
    let mut value = serde_json::to_value(state.config.redacted()).map_err(ApiError::internal)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("environment".into(), json!(state.config.environment));
    }
    Ok(Json(value))
}
