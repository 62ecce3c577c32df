//! `tasker-server`: the orchestration server's binary. It owns argument parsing and
//! process wiring only; the orchestration is `tasker-orchestration`. With feature `dev`
//! (the default) it also runs `tasker-server dev`, the only place that links a worker
//! crate; production images build it with `--no-default-features`. It must not depend on
//! `magnus` or `tasker_core` (the Ruby extension).
//!
//! ```text
//! tasker-server [serve]                  migrate (unless database.auto_migrate is false), then serve
//! tasker-server migrate                  install PGMQ and apply migrations, then exit
//! tasker-server dev                      everything on one machine, with a demo task
//! tasker-server config show              print the effective configuration, secrets redacted
//! tasker-server auth generate-key        make an RS256 key pair (or an HS256 secret)
//! tasker-server auth generate-token      sign a JWT with permissions
//! tasker-server maintenance purge --older-than 30d
//!                                        delete finished tasks and archived messages
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

mod auth;
#[cfg(feature = "dev")]
mod dev;
#[cfg(feature = "dev")]
mod embedded_pg;
mod maintenance;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use auth::AuthCommand;
use tasker_orchestration::{OrchestrationConfig, OrchestrationCore};
use tasker_shared::config::{self as settings, TaskerConfig};
use tasker_shared::database;

/// Tasker's orchestration server: REST API, step enqueueing and result processing.
///
/// Configuration is layered: config/tasker/base/*.toml, then
/// config/tasker/environments/$TASKER_ENV/*.toml (TASKER_ENV defaults to development),
/// then --config FILE, then TASKER__SECTION__KEY variables, then DATABASE_URL and
/// TASKER_WEB_BIND_ADDRESS. TASKER_CONFIG_DIR points at another config directory.
/// See docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "tasker-server", version, about, long_about)]
struct Cli {
    /// One more configuration file, merged over the config directory's files.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address the REST API listens on (overrides web.bind_address).
    #[arg(long, global = true)]
    bind: Option<SocketAddr>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations (unless database.auto_migrate is false), then serve. The default.
    Serve,
    /// Install PGMQ and apply migrations, then exit.
    Migrate,
    /// Everything on one machine: PostgreSQL (DATABASE_URL, or a throwaway cluster),
    /// the API on :8080, an in-process worker for config/tasks, and a demo task.
    #[cfg(feature = "dev")]
    Dev(dev::DevArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Keys and tokens for API authentication.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Upkeep of the database, such as purging old finished tasks.
    #[command(subcommand)]
    Maintenance(maintenance::MaintenanceCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration as TOML, with secrets redacted.
    Show,
}

fn load(cli: &Cli) -> anyhow::Result<(TaskerConfig, settings::ConfigSources)> {
    let (mut config, sources) = settings::load(cli.config.as_deref())?;
    if let Some(bind) = cli.bind {
        config.web.bind_address = bind;
    }
    Ok((config, sources))
}

fn require_database(config: &TaskerConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.database.url.is_empty(),
        "no database URL: set DATABASE_URL (or database.url in a config file), for example postgres://user@localhost/tasker"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Auth(ref command)) => return auth::run(command),
        Some(Command::Config(ConfigCommand::Show)) => {
            let (config, sources) = load(&cli)?;
            println!("# environment: {}", sources.environment);
            match &sources.directory {
                Some(dir) => println!("# config directory: {}", dir.display()),
                None => println!("# config directory: none (built-in defaults)"),
            }
            for file in &sources.files {
                println!("# file: {}", file.display());
            }
            for var in &sources.variables {
                println!("# variable: {var}");
            }
            print!("{}", config.redacted().to_toml());
            return Ok(());
        }
        _ => {}
    }

    let (config, _) = load(&cli)?;
    tasker_shared::process::init_tracing(&config.logging.format, &config.logging.level);
    #[cfg(feature = "dev")]
    if let Some(Command::Dev(args)) = cli.command {
        return dev::run(args, config).await;
    }
    require_database(&config)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let orchestration = OrchestrationConfig::from_settings(&config);
            let pool = database::connect(&orchestration.database_url, &orchestration.pool)
                .await
                .context("connecting to the database")?;
            database::setup(&pool).await.context("migrating")?;
            tracing::info!("database is migrated");
            Ok(())
        }
        Command::Serve => {
            let core = OrchestrationCore::from_settings(config)
                .await
                .context("starting the orchestration")?;
            let shutdown = CancellationToken::new();
            tasker_shared::process::cancel_on_signal(shutdown.clone());
            core.run(shutdown).await.context("orchestration failed")?;
            tracing::info!("tasker-server stopped");
            Ok(())
        }
        Command::Maintenance(ref command) => {
            maintenance::run(command, &OrchestrationConfig::from_settings(&config)).await
        }
        Command::Config(_) | Command::Auth(_) => Ok(()),
        #[cfg(feature = "dev")]
        Command::Dev(_) => Ok(()),
    }
}
