//! `tasker-worker`: the native Rust worker process.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;
use tokio_util::sync::CancellationToken;

use tasker_shared::config as settings;
use tasker_shared::database;
use tasker_worker::health;
use tasker_worker::task_template_manager::TaskTemplateManager;
use tasker_worker::{WorkerConfig, WorkerCore};

/// Runs Tasker steps with native Rust handlers (`builtin::*` and the `payments::*` example).
///
/// At start it loads every template under the template path, registers them in the
/// database, and serves the namespaces they use (or those given with --namespace).
///
/// Settings come from the layered configuration (config/tasker/base/*.toml, then
/// config/tasker/environments/$TASKER_ENV/*.toml, then --config FILE, then
/// TASKER__SECTION__KEY variables, then DATABASE_URL and TASKER_TEMPLATE_PATH); the flags
/// below override them. See docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "tasker-worker", version, about, long_about)]
struct Cli {
    /// One more configuration file, merged over the config directory's files.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Namespace to serve (repeatable). Default: every namespace of the loaded templates.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    namespaces: Vec<String>,

    /// Directory (searched recursively) or file of task templates [config: worker.template_path, env: TASKER_TEMPLATE_PATH].
    #[arg(long = "templates")]
    templates: Option<PathBuf>,

    /// Handlers running at once, at most; only this many steps are claimed [config: worker.max_concurrent_steps].
    #[arg(long)]
    max_concurrent_steps: Option<u32>,

    /// Lease on a claimed step, in seconds; extended while its handler runs [config: worker.visibility_timeout_seconds].
    #[arg(long)]
    visibility_timeout_seconds: Option<u32>,

    /// Limit for one attempt when a step sets no timeout_seconds [config: worker.default_step_timeout_seconds].
    #[arg(long)]
    default_step_timeout_seconds: Option<u64>,

    /// On SIGTERM/SIGINT, seconds running handlers may take to finish before their steps
    /// are given back to the queue [config: worker.shutdown_grace_seconds].
    #[arg(long)]
    shutdown_grace_seconds: Option<u64>,

    /// Serve /health, /health/ready and /metrics on this port, all interfaces [config: worker.health_port].
    #[arg(long)]
    health_port: Option<u16>,

    /// Name of this worker in results and transitions (default: worker-<pid>).
    #[arg(long, env = "TASKER_WORKER_ID")]
    worker_id: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (mut settings, _) = settings::load(cli.config.as_deref())?;
    let w = &mut settings.worker;
    if let Some(v) = cli.templates.clone() {
        w.template_path = v;
    }
    if let Some(v) = cli.max_concurrent_steps {
        anyhow::ensure!(v >= 1, "--max-concurrent-steps must be at least 1");
        w.max_concurrent_steps = v;
    }
    if let Some(v) = cli.visibility_timeout_seconds {
        anyhow::ensure!(v >= 1, "--visibility-timeout-seconds must be at least 1");
        w.visibility_timeout_seconds = v;
    }
    if let Some(v) = cli.default_step_timeout_seconds {
        anyhow::ensure!(v >= 1, "--default-step-timeout-seconds must be at least 1");
        w.default_step_timeout_seconds = v;
    }
    if let Some(v) = cli.shutdown_grace_seconds {
        w.shutdown_grace_seconds = v;
    }
    if cli.health_port.is_some() {
        w.health_port = cli.health_port;
    }
    tasker_shared::process::init_tracing(&settings.logging.format, &settings.logging.level);
    if settings.database.url.is_empty() {
        bail!(
            "no database URL: set DATABASE_URL (or database.url in a config file), for example postgres://user@localhost/tasker"
        );
    }
    for ns in &cli.namespaces {
        pgmq_notify::validate_namespace(ns).with_context(|| format!("--namespace {ns:?}"))?;
    }

    let mut config = WorkerConfig::from_settings(&settings);
    if let Some(id) = cli.worker_id {
        config.worker_id = id;
    }
    config.pool.max_connections = config.pool.max_connections.max(
        u32::try_from(config.max_concurrent_steps + 3)
            .unwrap_or(64)
            .min(64),
    );

    let mut templates = TaskTemplateManager::new(&config.template_path);
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
            config.template_path.display()
        );
    }

    let worker_id = config.worker_id.clone();
    let core = WorkerCore::with_pool(config, pool.clone(), registry, namespaces.clone()).await?;
    let shutdown = CancellationToken::new();
    tasker_shared::process::cancel_on_signal(shutdown.clone());
    if let Some(port) = settings.worker.health_port {
        let prometheus = tasker_worker::metrics::install_prometheus()
            .context("installing the metrics recorder")?;
        let app = health::router(pool, core.status(), worker_id, namespaces, Some(prometheus));
        let address = std::net::SocketAddr::from(([0, 0, 0, 0], port));
        health::serve(address, app, shutdown.clone())
            .await
            .with_context(|| format!("health port {port}: cannot listen on {address}"))?;
    }
    core.run(shutdown).await?;
    tracing::info!("tasker-worker stopped");
    Ok(())
}
