//! Orchestration settings.

use std::net::SocketAddr;
use std::time::Duration;

use tasker_shared::database::PoolConfig;
use tasker_shared::database::dlq::StalenessThresholds;
use tasker_shared::event_system::DeploymentMode;

use crate::maintenance::RetentionPolicy;

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
    /// Batches of results processed at once.
    pub result_processors: usize,
    /// How long a read result message stays invisible to other orchestrators.
    pub visibility_timeout_seconds: i32,
    /// Connection pool.
    pub pool: PoolConfig,
    /// Default staleness limits (templates may override them in `lifecycle`).
    pub staleness: StalenessThresholds,
    /// How often stale tasks are looked for.
    pub staleness_interval: Duration,
    /// The retention job; `None` when it is off.
    pub retention: Option<RetentionPolicy>,
}

impl OrchestrationConfig {
    /// The orchestration's part of the layered configuration.
    pub fn from_settings(c: &tasker_shared::config::TaskerConfig) -> Self {
        let o = &c.orchestration;
        let s = &o.staleness;
        let minutes = |m: u32| i32::try_from(m).unwrap_or(i32::MAX);
        Self {
            database_url: c.database.url.clone(),
            bind_address: c.web.bind_address,
            deployment_mode: c.events.deployment_mode,
            poll_interval: Duration::from_millis(c.events.poll_interval_ms),
            readiness_sweep_interval: Duration::from_millis(o.readiness_sweep_interval_ms),
            result_batch_size: i32::try_from(o.result_batch_size).unwrap_or(50),
            result_processors: usize::try_from(o.result_processors).unwrap_or(2),
            visibility_timeout_seconds: i32::try_from(o.visibility_timeout_seconds).unwrap_or(30),
            pool: PoolConfig {
                max_connections: c.database.max_connections,
                acquire_timeout: Duration::from_millis(c.database.acquire_timeout_ms),
                ..PoolConfig::default()
            },
            staleness: StalenessThresholds {
                waiting_for_dependencies_minutes: minutes(s.max_waiting_for_dependencies_minutes),
                waiting_for_retry_minutes: minutes(s.max_waiting_for_retry_minutes),
                steps_in_process_minutes: minutes(s.max_steps_in_process_minutes),
                blocked_minutes: minutes(s.max_blocked_minutes),
            },
            staleness_interval: Duration::from_millis(s.interval_ms),
            retention: retention_policy(&o.retention),
        }
    }

    /// Defaults for a database URL.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            bind_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            deployment_mode: DeploymentMode::Hybrid,
            poll_interval: Duration::from_secs(5),
            readiness_sweep_interval: Duration::from_secs(30),
            result_batch_size: 50,
            result_processors: 2,
            visibility_timeout_seconds: 30,
            pool: PoolConfig {
                max_connections: 12,
                acquire_timeout: Duration::from_secs(10),
                ..PoolConfig::default()
            },
            staleness: StalenessThresholds::default(),
            staleness_interval: Duration::from_secs(60),
            retention: retention_policy(&Default::default()),
        }
    }
}

fn retention_policy(r: &tasker_shared::config::RetentionSettings) -> Option<RetentionPolicy> {
    // max_age was validated when the configuration loaded; an unparsable one (only
    // possible for a hand-built TaskerConfig) turns the job off rather than guessing.
    let max_age = r.max_age().ok()?;
    r.enabled.then_some(RetentionPolicy {
        max_age,
        interval: Duration::from_millis(r.interval_ms),
        batch_size: i64::from(r.batch_size.max(1)),
    })
}
