//! The shape of the configuration: one struct per section (`[database]`, `[events]`,
//! `[logging]`, `[orchestration]`, `[web]`, `[worker]`), each key with its default.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::event_system::DeploymentMode;

/// Every setting, for every component.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskerConfig {
    /// The environment these settings were loaded for (`TASKER_ENV`).
    #[serde(skip)]
    pub environment: String,
    /// `[database]`: where PostgreSQL is, the pool, and whether to migrate at start.
    pub database: DatabaseConfig,
    /// `[events]`: how components learn about work.
    pub events: EventsConfig,
    /// `[logging]`: the format and level of log lines.
    pub logging: LoggingConfig,
    /// `[orchestration]`: the orchestration's loops.
    pub orchestration: OrchestrationSettings,
    /// `[web]`: the REST API's address, limits and authentication.
    pub web: WebConfig,
    /// `[worker]`: where templates are, how many steps run at once, leases, time limits
    /// and the shutdown grace period.
    pub worker: WorkerSettings,
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// PostgreSQL URL (`DATABASE_URL` overrides it). Secret: redacted by `config show`.
    pub url: String,
    /// Most connections per process.
    pub max_connections: u32,
    /// How long to wait for a free connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// Whether `tasker-server` applies migrations when it starts.
    pub auto_migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 12,
            acquire_timeout_ms: 10_000,
            auto_migrate: true,
        }
    }
}

/// `[events]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// `Hybrid`, `EventDrivenOnly` or `PollingOnly`.
    pub deployment_mode: DeploymentMode,
    /// How often queues are read when no notification arrives, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            deployment_mode: DeploymentMode::Hybrid,
            poll_interval_ms: 5_000,
        }
    }
}

/// `[logging]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// `pretty` or `json`.
    pub format: String,
    /// A tracing filter (`info`, `tasker_worker=debug,info`…); `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

/// `[orchestration]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestrationSettings {
    /// Most step results read at once.
    pub result_batch_size: u32,
    /// Batches of step results processed at once.
    pub result_processors: u32,
    /// Lease on a read result message, in seconds.
    pub visibility_timeout_seconds: u32,
    /// How often tasks with ready but unenqueued steps are looked for, in milliseconds.
    pub readiness_sweep_interval_ms: u64,
    /// `[orchestration.staleness]`
    pub staleness: StalenessSettings,
    /// `[orchestration.backpressure]`
    pub backpressure: BackpressureSettings,
    /// `[orchestration.retention]`
    pub retention: RetentionSettings,
}

impl Default for OrchestrationSettings {
    fn default() -> Self {
        Self {
            result_batch_size: 50,
            result_processors: 2,
            visibility_timeout_seconds: 30,
            readiness_sweep_interval_ms: 30_000,
            staleness: StalenessSettings::default(),
            backpressure: BackpressureSettings::default(),
            retention: RetentionSettings::default(),
        }
    }
}

/// `[orchestration.staleness]`: when an idle task is given up on (templates may override
/// each limit in their `lifecycle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StalenessSettings {
    /// How often stale tasks are looked for, in milliseconds.
    pub interval_ms: u64,
    /// Minutes in `waiting_for_dependencies` without progress.
    pub max_waiting_for_dependencies_minutes: u32,
    /// Minutes in `waiting_for_retry` without progress.
    pub max_waiting_for_retry_minutes: u32,
    /// Minutes in `steps_in_process` without any step changing state.
    pub max_steps_in_process_minutes: u32,
    /// Minutes in `blocked_by_failures`.
    pub max_blocked_minutes: u32,
}

impl Default for StalenessSettings {
    fn default() -> Self {
        Self {
            interval_ms: 60_000,
            max_waiting_for_dependencies_minutes: 60,
            max_waiting_for_retry_minutes: 60,
            max_steps_in_process_minutes: 120,
            max_blocked_minutes: 1440,
        }
    }
}

/// `[orchestration.retention]`: the server's job that deletes finished tasks and
/// archived queue messages past an age (`tasker-server maintenance purge` does the same
/// on demand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Whether the server runs the job.
    pub enabled: bool,
    /// How long finished tasks and archived messages are kept, such as `30d` or `12h`
    /// (see [`parse_duration`]).
    pub max_age: String,
    /// How often the job runs, in milliseconds.
    pub interval_ms: u64,
    /// Tasks (each with its steps and history), or archived messages, deleted per
    /// transaction.
    pub batch_size: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_age: "30d".into(),
            interval_ms: 3_600_000,
            batch_size: 1_000,
        }
    }
}

impl RetentionSettings {
    /// [`max_age`](Self::max_age) as a duration (validated when the configuration loads).
    pub fn max_age(&self) -> Result<std::time::Duration, String> {
        parse_duration(&self.max_age)
    }
}

/// Parses a duration such as `30d`, `12h`, `90m`, `45s` or `1h 30m` (humantime's
/// format); the message of an error says what was wrong.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 30d, 12h or 90m: {e}"))
}

/// `[orchestration.backpressure]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackpressureSettings {
    /// Task creation answers 503 while the namespace's queue holds more messages than this.
    pub queue_depth_threshold: u64,
    /// The `Retry-After` of those 503s, in seconds.
    pub retry_after_seconds: u32,
}

impl Default for BackpressureSettings {
    fn default() -> Self {
        Self {
            queue_depth_threshold: 10_000,
            retry_after_seconds: 5,
        }
    }
}

/// `[web]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Where the REST API listens (`TASKER_WEB_BIND_ADDRESS` overrides it).
    pub bind_address: SocketAddr,
    /// A request taking longer is answered with 408, in milliseconds.
    pub request_timeout_ms: u64,
    /// Largest request body accepted; 413 past it.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS; `["*"]` allows any, `[]` sends no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// Whether `GET /config` serves the effective configuration (secrets redacted).
    pub config_endpoint_enabled: bool,
    /// `[web.auth]`
    pub auth: AuthConfig,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            bind_address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            request_timeout_ms: 30_000,
            body_limit_bytes: 1024 * 1024,
            cors_allowed_origins: Vec::new(),
            config_endpoint_enabled: false,
            auth: AuthConfig::default(),
        }
    }
}

/// `[web.auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether the `/v1` routes need credentials.
    pub enabled: bool,
    /// Whether `/health*`, `/metrics` and `/api-docs` stay public when auth is on.
    pub public_health_and_metrics: bool,
    /// Accepted JWT issuer (`iss`).
    pub jwt_issuer: String,
    /// Accepted JWT audience (`aud`).
    pub jwt_audience: String,
    /// PEM public key for RS256 tokens, inline.
    pub jwt_public_key: Option<String>,
    /// PEM public key for RS256 tokens, from a file.
    pub jwt_public_key_path: Option<PathBuf>,
    /// Shared secret for HS256 tokens. Secret: redacted by `config show`.
    pub jwt_hs256_secret: Option<String>,
    /// The claim holding the permission list.
    pub permissions_claim: String,
    /// Accepted `X-API-Key` values and their permissions.
    pub api_keys: Vec<ApiKeyConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            public_health_and_metrics: true,
            jwt_issuer: "tasker-core".into(),
            jwt_audience: "tasker-api".into(),
            jwt_public_key: None,
            jwt_public_key_path: None,
            jwt_hs256_secret: None,
            permissions_claim: "permissions".into(),
            api_keys: Vec::new(),
        }
    }
}

/// One API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The key. Secret: redacted by `config show`.
    pub key: String,
    /// A name for logs.
    #[serde(default)]
    pub name: String,
    /// Permissions such as `tasks:create` or `tasks:*`.
    pub permissions: Vec<String>,
}

/// `[worker]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Where templates are loaded from (`TASKER_TEMPLATE_PATH` overrides it).
    pub template_path: PathBuf,
    /// Handlers running at once, at most.
    pub max_concurrent_steps: u32,
    /// Lease on a claimed step, in seconds; extended while its handler runs.
    pub visibility_timeout_seconds: u32,
    /// Limit for one attempt when a step sets no `timeout_seconds`.
    pub default_step_timeout_seconds: u64,
    /// On shutdown, how long running handlers may finish before their steps are given back.
    pub shutdown_grace_seconds: u64,
    /// Offer, with each successful result, to run the next step of the chain: the
    /// orchestration then claims one ready child for this worker when it completes the
    /// step, so the worker skips the claim's write (notifications must be on).
    pub handoff: bool,
    /// Port of `/health`, `/health/ready` and `/metrics`; none when unset.
    pub health_port: Option<u16>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            template_path: PathBuf::from("config/tasks"),
            max_concurrent_steps: 10,
            visibility_timeout_seconds: 30,
            default_step_timeout_seconds: 300,
            shutdown_grace_seconds: 30,
            handoff: true,
            health_port: None,
        }
    }
}
