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
    /// Offer, with each successful result, to run one child it makes ready (a
    /// handoff: the orchestration claims the child for this worker). Needs notifications.
    pub handoff: bool,
    /// Connection pool.
    pub pool: PoolConfig,
}

impl WorkerConfig {
    /// The worker's part of the layered configuration.
    pub fn from_settings(c: &tasker_shared::config::TaskerConfig) -> Self {
        let w = &c.worker;
        let mut config = Self::new(c.database.url.clone());
        config.template_path = w.template_path.clone();
        config.deployment_mode = c.events.deployment_mode;
        config.poll_interval = Duration::from_millis(c.events.poll_interval_ms);
        config.max_concurrent_steps = w.max_concurrent_steps as usize;
        config.visibility_timeout_seconds =
            i32::try_from(w.visibility_timeout_seconds).unwrap_or(30);
        config.default_step_timeout = Duration::from_secs(w.default_step_timeout_seconds);
        config.shutdown_grace_period = Duration::from_secs(w.shutdown_grace_seconds);
        config.handoff = w.handoff;
        config.pool = PoolConfig {
            max_connections: c.database.max_connections,
            acquire_timeout: Duration::from_millis(c.database.acquire_timeout_ms),
            ..PoolConfig::default()
        };
        config
    }

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
            handoff: true,
            pool: PoolConfig {
                max_connections: 8,
                acquire_timeout: Duration::from_secs(10),
                ..PoolConfig::default()
            },
        }
    }
}
