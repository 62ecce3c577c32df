//! `tasker-worker`: the native Rust worker process.

use std::path::PathBuf;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use tasker_shared::config as settings;
use tasker_worker::WorkerBuilder;

/// Runs Tasker steps with native Rust handlers (`builtin::*` and the `payments::*` example).
///
/// At start it loads every template under the template path, registers them in the
/// database, and serves the namespaces they use (or those given with --namespace). It
/// refuses to start when a served template names a handler it does not have.
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

    let loaded = WorkerBuilder::new(settings)
        .namespaces(cli.namespaces)
        .worker_id(cli.worker_id)
        .load()
        .await?;
    let worker = loaded.start(tasker_worker_rust::registry()).await?;
    let shutdown = CancellationToken::new();
    tasker_shared::process::cancel_on_signal(shutdown.clone());
    worker.run(shutdown).await?;
    tracing::info!("tasker-worker stopped");
    Ok(())
}
