//! `tasker-server`: the orchestration server.
//!
//! ```text
//! tasker-server [serve]   migrate, then run the API and the orchestration loops
//! tasker-server migrate   install PGMQ and apply migrations, then exit
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use tasker_orchestration::{OrchestrationConfig, OrchestrationCore};
use tasker_shared::database;
use tasker_shared::database::dlq::StalenessThresholds;
use tasker_shared::event_system::DeploymentMode;

/// Tasker's orchestration server: REST API, step enqueueing and result processing.
#[derive(Debug, Parser)]
#[command(name = "tasker-server", version, about)]
struct Cli {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Address the REST API listens on.
    #[arg(
        long,
        env = "TASKER_WEB_BIND_ADDRESS",
        default_value = "0.0.0.0:8080",
        global = true
    )]
    bind: SocketAddr,

    /// Hybrid (NOTIFY plus polling), EventDrivenOnly or PollingOnly.
    #[arg(
        long,
        env = "TASKER_DEPLOYMENT_MODE",
        default_value = "Hybrid",
        global = true
    )]
    deployment_mode: DeploymentMode,

    /// Fallback polling interval, in milliseconds.
    #[arg(
        long,
        env = "TASKER_POLL_INTERVAL_MS",
        default_value_t = 5000,
        global = true
    )]
    poll_interval_ms: u64,

    /// How often stale tasks are looked for, in milliseconds.
    #[arg(
        long,
        env = "TASKER_STALENESS_INTERVAL_MS",
        default_value_t = 60_000,
        global = true
    )]
    staleness_interval_ms: u64,

    /// Default limit for a task blocked by failures before it goes to error and the DLQ.
    #[arg(
        long,
        env = "TASKER_MAX_BLOCKED_MINUTES",
        default_value_t = 1440,
        global = true
    )]
    max_blocked_minutes: i32,

    /// Default limit for a task waiting for dependencies without progress.
    #[arg(
        long,
        env = "TASKER_MAX_WAITING_FOR_DEPENDENCIES_MINUTES",
        default_value_t = 60,
        global = true
    )]
    max_waiting_for_dependencies_minutes: i32,

    /// Default limit for a task waiting for a retry.
    #[arg(
        long,
        env = "TASKER_MAX_WAITING_FOR_RETRY_MINUTES",
        default_value_t = 60,
        global = true
    )]
    max_waiting_for_retry_minutes: i32,

    /// Default limit for a task in process without any step making progress.
    #[arg(
        long,
        env = "TASKER_MAX_STEPS_IN_PROCESS_MINUTES",
        default_value_t = 120,
        global = true
    )]
    max_steps_in_process_minutes: i32,

    /// Log format: pretty or json. The level comes from RUST_LOG (default info).
    #[arg(
        long,
        env = "TASKER_LOG_FORMAT",
        default_value = "pretty",
        global = true
    )]
    log_format: String,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations (and install PGMQ if needed), then serve. The default.
    Serve,
    /// Install PGMQ and apply migrations, then exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tasker_shared::process::init_tracing(&cli.log_format);
    let database_url = cli.database_url.clone().context(
        "DATABASE_URL is not set: pass --database-url or set DATABASE_URL, for example postgres://user@localhost/tasker",
    )?;
    let mut config = OrchestrationConfig::new(database_url);
    config.bind_address = cli.bind;
    config.deployment_mode = cli.deployment_mode;
    config.poll_interval = Duration::from_millis(cli.poll_interval_ms.max(10));
    config.readiness_sweep_interval = config.poll_interval;
    config.staleness_interval = Duration::from_millis(cli.staleness_interval_ms.max(10));
    for (name, value) in [
        ("--max-blocked-minutes", cli.max_blocked_minutes),
        (
            "--max-waiting-for-dependencies-minutes",
            cli.max_waiting_for_dependencies_minutes,
        ),
        (
            "--max-waiting-for-retry-minutes",
            cli.max_waiting_for_retry_minutes,
        ),
        (
            "--max-steps-in-process-minutes",
            cli.max_steps_in_process_minutes,
        ),
    ] {
        anyhow::ensure!(value >= 0, "{name} must not be negative, got {value}");
    }
    config.staleness = StalenessThresholds {
        waiting_for_dependencies_minutes: cli.max_waiting_for_dependencies_minutes,
        waiting_for_retry_minutes: cli.max_waiting_for_retry_minutes,
        steps_in_process_minutes: cli.max_steps_in_process_minutes,
        blocked_minutes: cli.max_blocked_minutes,
    };

    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let pool = database::connect(&config.database_url, &config.pool)
                .await
                .context("connecting to the database")?;
            database::setup(&pool).await.context("migrating")?;
            tracing::info!("database is migrated");
            Ok(())
        }
        Command::Serve => {
            let core = OrchestrationCore::from_config(config)
                .await
                .context("starting the orchestration")?;
            let shutdown = CancellationToken::new();
            tokio::spawn(tasker_shared::process::cancel_on_signal(shutdown.clone()));
            core.run(shutdown).await.context("orchestration failed")?;
            tracing::info!("tasker-server stopped");
            Ok(())
        }
    }
}
