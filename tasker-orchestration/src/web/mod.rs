//! The REST API. [`app`] builds the router, so tests can call it without a port.

pub mod auth;
mod backpressure;
pub(crate) mod dlq;
mod error;
pub(crate) mod health;
mod layers;
pub(crate) mod steps;
pub(crate) mod tasks;
pub(crate) mod templates;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, patch};
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use tasker_shared::config::TaskerConfig;

pub use auth::{Authenticator, Principal};
pub use backpressure::QueueDepths;
pub use error::{ApiError, ApiJson, ApiQuery};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// The effective configuration.
    pub config: Arc<TaskerConfig>,
    /// Credentials checking.
    pub auth: Arc<Authenticator>,
    /// Cached queue depths for backpressure.
    pub depths: Arc<QueueDepths>,
    /// The Prometheus recorder's handle, when metrics are on.
    pub prometheus: Option<PrometheusHandle>,
}

impl AppState {
    /// State with the default configuration and auth off (tests, embedding).
    pub fn new(pool: PgPool) -> Self {
        Self::with_config(
            pool,
            TaskerConfig::default(),
            Authenticator::disabled(),
            None,
        )
    }

    /// State with a configuration.
    pub fn with_config(
        pool: PgPool,
        config: TaskerConfig,
        auth: Authenticator,
        prometheus: Option<PrometheusHandle>,
    ) -> Self {
        Self {
            pool,
            config: Arc::new(config),
            auth: Arc::new(auth),
            depths: Arc::new(QueueDepths::default()),
            prometheus,
        }
    }
}

/// Every route the API serves, as (method, path template). Tests check that each is
/// routed, documented in the OpenAPI spec, and guarded by the right permission.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/health/detailed"),
    ("GET", "/metrics"),
    ("GET", "/config"),
    ("POST", "/v1/tasks"),
    ("GET", "/v1/tasks"),
    ("GET", "/v1/tasks/{task_uuid}"),
    ("DELETE", "/v1/tasks/{task_uuid}"),
    ("GET", "/v1/tasks/{task_uuid}/summary"),
    ("GET", "/v1/tasks/{task_uuid}/workflow_steps"),
    ("GET", "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"),
    ("PATCH", "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"),
    (
        "GET",
        "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit",
    ),
    ("GET", "/v1/templates"),
    ("GET", "/v1/templates/{namespace}/{name}/{version}"),
    ("GET", "/v1/dlq"),
    ("GET", "/v1/dlq/stats"),
    ("GET", "/v1/dlq/task/{task_uuid}"),
    ("PATCH", "/v1/dlq/entry/{dlq_entry_uuid}"),
];

/// The router with every route and the request layers (request id, timeout, body
/// limit, CORS, authentication).
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/health", get(health::health_check))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/health/detailed", get(health::detailed))
        .route("/metrics", get(health::metrics))
        .route("/config", get(health::config))
        .route("/v1/tasks", get(tasks::list_tasks).post(tasks::create_task))
        .route(
            "/v1/tasks/{task_uuid}",
            get(tasks::get_task).delete(tasks::cancel_task),
        )
        .route("/v1/tasks/{task_uuid}/summary", get(tasks::task_summary))
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
        .route("/v1/templates", get(templates::list_templates))
        .route(
            "/v1/templates/{namespace}/{name}/{version}",
            get(templates::get_template),
        )
        .route("/v1/dlq", get(dlq::list_dlq))
        .route("/v1/dlq/stats", get(dlq::dlq_stats))
        .route("/v1/dlq/task/{task_uuid}", get(dlq::dlq_for_task))
        .route(
            "/v1/dlq/entry/{dlq_entry_uuid}",
            patch(dlq::update_dlq_entry),
        )
        .merge(crate::openapi::routes());
    layers::apply(routes, state)
}
