//! The REST API. [`app`] builds the router, so tests can call it without a port.
//!
//! Each route is declared once, by its handler's `#[utoipa::path]` (method, path,
//! documentation and permission); [`routing`] derives the router, the route list
//! ([`routes`]), the permission lookup and the OpenAPI paths from those declarations.

pub mod auth;
mod backpressure;
pub(crate) mod dlq;
mod error;
pub(crate) mod health;
mod layers;
pub(crate) mod routing;
pub(crate) mod steps;
pub(crate) mod tasks;
pub(crate) mod templates;

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use tasker_shared::config::TaskerConfig;

pub use auth::{Authenticator, Principal};
pub use backpressure::QueueDepths;
pub use error::{ApiError, ApiJson, ApiQuery};
pub use routing::{Access, Route, routes};

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

/// The router with every route and the request layers (request id, timeout, body
/// limit, CORS, authentication).
pub fn app(state: AppState) -> Router {
    let routes = routing::router().merge(crate::openapi::routes());
    layers::apply(routes, state)
}
