//! `tasker-worker`: the native Rust worker process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio_util::sync::CancellationToken;

use tasker_shared::database;
use tasker_shared::event_system::DeploymentMode;
use tasker_worker::health;
use tasker_worker::task_template_manager::TaskTemplateManager;
use tasker_worker::{WorkerConfig, WorkerCore};

/// Runs Tasker steps with native Rust handlers (`builtin::*` and the `payments::*` example).
///
/// At start it loads every template under --templates, registers them in the database,
/// and serves the namespaces they use (or those given with --namespace).
#[derive(Debug, Parser)]
#[command(name = "tasker-worker", version, about, long_about)]
struct Cli {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// Namespace to serve (repeatable). Default: every namespace of the loaded templates.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    namespaces: Vec<String>,

    /// Directory (searched recursively) or file of task templates.
    #[arg(
        long = "templates",
        env = "TASKER_TEMPLATE_PATH",
        default_value = "config/tasks"
    )]
    templates: PathBuf,

    /// Handlers running at once, at most; only this many steps are claimed.
    #[arg(long, env = "TASKER_MAX_CONCURRENT_STEPS", default_value_t = 10)]
    max_concurrent_steps: usize,

    /// Hybrid (NOTIFY plus polling), EventDrivenOnly or PollingOnly.
    #[arg(long, env = "TASKER_DEPLOYMENT_MODE", default_value = "Hybrid")]
    deployment_mode: DeploymentMode,

    /// Fallback polling interval, in milliseconds.
    #[arg(long, env = "TASKER_POLL_INTERVAL_MS", default_value_t = 5000)]
    poll_interval_ms: u64,

    /// Lease on a claimed step, in seconds; extended while its handler runs.
    #[arg(long, env = "TASKER_VISIBILITY_TIMEOUT_SECONDS", default_value_t = 30)]
    visibility_timeout_seconds: i32,

    /// Limit for one attempt when a step sets no timeout_seconds, in seconds.
    #[arg(
        long,
        env = "TASKER_DEFAULT_STEP_TIMEOUT_SECONDS",
        default_value_t = 300
    )]
    default_step_timeout_seconds: u64,

    /// On SIGTERM/SIGINT, seconds running handlers may take to finish before their steps
    /// are given back to the queue.
    #[arg(long, env = "TASKER_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    shutdown_grace_seconds: u64,

    /// Serve /health, /health/ready and /metrics on this port (all interfaces).
    #[arg(long, env = "TASKER_WORKER_HEALTH_PORT")]
    health_port: Option<u16>,

    /// Name of this worker in results and transitions (default: worker-<pid>).
    #[arg(long, env = "TASKER_WORKER_ID")]
    worker_id: Option<String>,

    /// Log format: pretty or json. The level comes from RUST_LOG (default info).
    #[arg(long, env = "TASKER_LOG_FORMAT", default_value = "pretty")]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tasker_shared::process::init_tracing(&cli.log_format);
    let database_url = cli.database_url.clone().context(
        "DATABASE_URL is not set: pass --database-url or set DATABASE_URL, for example postgres://user@localhost/tasker",
    )?;
    if cli.max_concurrent_steps == 0 {
        bail!("--max-concurrent-steps must be at least 1");
    }
    if cli.visibility_timeout_seconds < 1 {
        bail!("--visibility-timeout-seconds must be at least 1");
    }
    for ns in &cli.namespaces {
        pgmq_notify::validate_namespace(ns).with_context(|| format!("--namespace {ns:?}"))?;
    }

    let mut templates = TaskTemplateManager::new(&cli.templates);
    templates.load_templates().await?;
    for problem in templates.problems() {
        tracing::error!("template not loaded: {problem}");
    }
    let registry = tasker_worker_rust::registry();
    for loaded in templates.templates() {
        for step in &loaded.template.steps {
            if registry.get(&step.handler.callable).is_none() {
                tracing::warn!(
                    template = %loaded.template.full_name(),
                    step = %step.name,
                    callable = %step.handler.callable,
                    "no handler registered for this callable; its steps will fail with handler_not_found"
                );
            }
        }
    }

    let mut config = WorkerConfig::new(database_url);
    if let Some(id) = cli.worker_id {
        config.worker_id = id;
    }
    config.template_path = cli.templates.clone();
    config.deployment_mode = cli.deployment_mode;
    config.poll_interval = Duration::from_millis(cli.poll_interval_ms.max(10));
    config.max_concurrent_steps = cli.max_concurrent_steps;
    config.visibility_timeout_seconds = cli.visibility_timeout_seconds;
    config.default_step_timeout = Duration::from_secs(cli.default_step_timeout_seconds.max(1));
    config.shutdown_grace_period = Duration::from_secs(cli.shutdown_grace_seconds);
    config.pool.max_connections = u32::try_from(cli.max_concurrent_steps + 3)
        .unwrap_or(64)
        .min(64);

    let pool = database::connect(&config.database_url, &config.pool)
        .await
        .context("connecting to the database")?;
    if !database::schema_is_current(&pool).await? {
        bail!(
            "the database is not migrated to this version; run `tasker-server migrate` (or start tasker-server) first"
        );
    }
    for (name, outcome) in templates.register_all(&pool).await? {
        tracing::info!(template = %name, ?outcome, "template registered");
    }

    let namespaces: Vec<String> = if cli.namespaces.is_empty() {
        templates.namespaces().into_iter().collect()
    } else {
        cli.namespaces.clone()
    };
    if namespaces.is_empty() {
        bail!(
            "nothing to serve: no valid template under {} and no --namespace given",
            cli.templates.display()
        );
    }

    let worker_id = config.worker_id.clone();
    let core = WorkerCore::with_pool(config, pool.clone(), registry, namespaces.clone()).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(tasker_shared::process::cancel_on_signal(shutdown.clone()));
    if let Some(port) = cli.health_port {
        let prometheus = tasker_worker::metrics::install_prometheus()
            .context("installing the metrics recorder")?;
        let app = health::router(pool, core.status(), worker_id, namespaces, Some(prometheus));
        let address = std::net::SocketAddr::from(([0, 0, 0, 0], port));
        health::serve(address, app, shutdown.clone())
            .await
            .with_context(|| format!("--health-port {port}: cannot listen on {address}"))?;
    }
    core.run(shutdown).await?;
    tracing::info!("tasker-worker stopped");
    Ok(())
}
