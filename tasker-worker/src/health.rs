//! The worker's optional HTTP endpoint: `/health`, `/health/ready` and `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use sqlx::PgPool;

use crate::status::WorkerStatus;

#[derive(Clone)]
struct HealthState {
    pool: PgPool,
    status: Arc<WorkerStatus>,
    worker_id: String,
    namespaces: Vec<String>,
    prometheus: Option<PrometheusHandle>,
}

/// The health router (exposed for tests).
pub fn router(
    pool: PgPool,
    status: Arc<WorkerStatus>,
    worker_id: String,
    namespaces: Vec<String>,
    prometheus: Option<PrometheusHandle>,
) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(HealthState {
            pool,
            status,
            worker_id,
            namespaces,
            prometheus,
        })
}

/// Serves the health router on `address` until `shutdown` is cancelled. Binding happens
/// before this returns, so a port in use is reported at once.
pub async fn serve(
    address: std::net::SocketAddr,
    app: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "worker health endpoint listening");
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "health endpoint failed");
        }
    }))
}

async fn health(State(s): State<HealthState>) -> impl IntoResponse {
    Json(json!({
        "status": "healthy",
        "worker_id": s.worker_id,
        "namespaces": s.namespaces,
        "steps": s.status.snapshot(),
    }))
}

async fn ready(State(s): State<HealthState>) -> impl IntoResponse {
    let database = sqlx::query("SELECT 1").execute(&s.pool).await.is_ok();
    let snapshot = s.status.snapshot();
    let ok = database && snapshot.running;
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": if ok { "ready" } else { "not_ready" },
            "checks": {"database": database, "claiming": snapshot.running},
        })),
    )
}

async fn metrics(State(s): State<HealthState>) -> impl IntoResponse {
    match &s.prometheus {
        Some(handle) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        )
            .into_response(),
    }
}
