//! Worker settings.

use std::path::PathBuf;
use std::time::Duration;

use tasker_shared::database::PoolConfig;
use tasker_shared::event_system::DeploymentMode;

/// Everything a worker needs to run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// PostgreSQL URL.
    pub database_url: String,
    /// Identifies this worker in transition metadata and results.
    pub worker_id: String,
    /// Namespaces to serve; empty means every namespace of the loaded templates.
    pub namespaces: Vec<String>,
    /// Where templates are loaded from.
    pub template_path: PathBuf,
    /// Notifications, polling, or both.
    pub deployment_mode: DeploymentMode,
    /// How often queues are read when no notification arrives.
    pub poll_interval: Duration,
    /// Handlers running at once, at most. Only this many messages are ever claimed.
    pub max_concurrent_steps: usize,
    /// Lease on a claimed message; extended while the handler runs.
    pub visibility_timeout_seconds: i32,
    /// Limit for one attempt when the step sets no `timeout_seconds`.
    pub default_step_timeout: Duration,
    /// On shutdown, how long running handlers may finish before their steps are given
    /// back to the queue.
    pub shutdown_grace_period: Duration,
    /// Connection pool.
    pub pool: PoolConfig,
}

impl WorkerConfig {
    /// Defaults for a database URL.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            worker_id: format!("worker-{}", std::process::id()),
            namespaces: Vec::new(),
            template_path: PathBuf::from("config/tasks"),
            deployment_mode: DeploymentMode::Hybrid,
            poll_interval: Duration::from_secs(5),
            max_concurrent_steps: 10,
            visibility_timeout_seconds: 30,
            default_step_timeout: Duration::from_secs(300),
            shutdown_grace_period: Duration::from_secs(30),
            pool: PoolConfig {
                max_connections: 8,
                acquire_timeout: Duration::from_secs(10),
            },
        }
    }
}
