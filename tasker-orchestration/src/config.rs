//! Orchestration settings.

use std::net::SocketAddr;
use std::time::Duration;

use tasker_shared::database::PoolConfig;
use tasker_shared::database::dlq::StalenessThresholds;
use tasker_shared::event_system::DeploymentMode;

/// Everything the orchestration needs to run.
#[derive(Debug, Clone)]
pub struct OrchestrationConfig {
    /// PostgreSQL URL.
    pub database_url: String,
    /// Where the REST API listens.
    pub bind_address: SocketAddr,
    /// Notifications, polling, or both.
    pub deployment_mode: DeploymentMode,
    /// How often queues are read when no notification arrives (the safety net).
    pub poll_interval: Duration,
    /// How often tasks with ready but unenqueued steps are looked for.
    pub readiness_sweep_interval: Duration,
    /// Most result messages read at once.
    pub result_batch_size: i32,
    /// Most results processed concurrently.
    pub result_concurrency: usize,
    /// How long a read result message stays invisible to other orchestrators.
    pub visibility_timeout_seconds: i32,
    /// Connection pool.
    pub pool: PoolConfig,
    /// Default staleness limits (templates may override them in `lifecycle`).
    pub staleness: StalenessThresholds,
    /// How often stale tasks are looked for.
    pub staleness_interval: Duration,
}

impl OrchestrationConfig {
    /// Defaults for a database URL.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            bind_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            deployment_mode: DeploymentMode::Hybrid,
            poll_interval: Duration::from_secs(5),
            readiness_sweep_interval: Duration::from_secs(5),
            result_batch_size: 50,
            result_concurrency: 4,
            visibility_timeout_seconds: 30,
            pool: PoolConfig {
                max_connections: 12,
                acquire_timeout: Duration::from_secs(10),
            },
            staleness: StalenessThresholds::default(),
            staleness_interval: Duration::from_secs(60),
        }
    }
}
