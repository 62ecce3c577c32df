//! `tasker-server maintenance`: one-off upkeep of the database.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use tasker_orchestration::OrchestrationConfig;
use tasker_orchestration::maintenance::{RetentionPolicy, purge_once};
use tasker_shared::config::parse_duration;
use tasker_shared::database::{self, retention};

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Delete finished tasks (with their steps, transitions and DLQ entries) and archived
    /// queue messages older than --older-than. A task whose DLQ entry is still pending
    /// is kept.
    Purge(PurgeArgs),
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Age past which finished tasks and archived messages go, such as 30d, 12h or 90m.
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    older_than: Duration,
    /// Tasks (each with its steps and history), or archived messages, deleted per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    batch_size: i64,
    /// Only count what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(command: &MaintenanceCommand, config: &OrchestrationConfig) -> anyhow::Result<()> {
    let MaintenanceCommand::Purge(args) = command;
    let pool = database::connect(&config.database_url, &config.pool)
        .await
        .context("connecting to the database")?;
    anyhow::ensure!(
        database::schema_is_current(&pool).await?,
        "the database is not migrated: run `tasker-server migrate` first"
    );
    let age = humanize(args.older_than);
    if args.dry_run {
        let report = retention::count_purgeable(&pool, args.older_than).await?;
        println!(
            "would purge {} finished tasks and {} archived messages older than {age}",
            report.tasks, report.archived_messages
        );
        return Ok(());
    }
    let policy = RetentionPolicy {
        max_age: args.older_than,
        interval: Duration::ZERO,
        batch_size: args.batch_size,
    };
    let report = purge_once(&pool, &policy).await.context("purging")?;
    println!(
        "purged {} finished tasks and {} archived messages older than {age}",
        report.tasks, report.archived_messages
    );
    Ok(())
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
