//! The REST API. [`app`] builds the router, so tests can call it without a port.

mod dlq;
mod error;
mod health;
mod steps;
mod tasks;

use axum::Router;
use axum::routing::get;
use sqlx::PgPool;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiJson, ApiQuery};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
}

impl AppState {
    /// State around a pool.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The router with every route.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health_check))
        .route("/v1/tasks", axum::routing::post(tasks::create_task))
        .route(
            "/v1/tasks/{task_uuid}",
            get(tasks::get_task).delete(tasks::cancel_task),
        )
        .route(
            "/v1/tasks/{task_uuid}/workflow_steps",
            get(steps::list_steps),
        )
        .route(
            "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}",
            get(steps::get_step).patch(steps::act_on_step),
        )
        .route(
            "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit",
            get(steps::step_audit),
        )
        .route("/v1/dlq", get(dlq::list_dlq))
        .fallback(error::not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
