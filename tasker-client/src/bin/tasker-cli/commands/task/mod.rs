//! `tasker-cli task ...`

pub mod cancel;
pub mod create;
pub mod get;
pub mod list;
pub mod steps;
pub mod visualize;
pub mod watch;

use clap::Subcommand;
use tasker_shared::api::TaskResponse;

use crate::Ctx;
use crate::output::{self, CliError, Format};

/// Task commands.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Create a task from a template, optionally waiting until it ends.
    Create(create::Args),
    /// Show a task and its steps.
    Get(get::Args),
    /// List tasks, newest first.
    List(list::Args),
    /// Cancel a task: steps not yet started are cancelled.
    Cancel(cancel::Args),
    /// List a task's steps.
    Steps(steps::Args),
    /// Follow a task until it ends.
    Watch(watch::Args),
    /// Draw a task's DAG with each step's state.
    Visualize(visualize::Args),
}

/// Runs a task command.
pub async fn run(ctx: &Ctx, command: TaskCommand) -> Result<(), CliError> {
    match command {
        TaskCommand::Create(a) => create::run(ctx, a).await,
        TaskCommand::Get(a) => get::run(ctx, a).await,
        TaskCommand::List(a) => list::run(ctx, a).await,
        TaskCommand::Cancel(a) => cancel::run(ctx, a).await,
        TaskCommand::Steps(a) => steps::run(ctx, a).await,
        TaskCommand::Watch(a) => watch::run(ctx, a).await,
        TaskCommand::Visualize(a) => visualize::run(ctx, a).await,
    }
}

/// Prints a task: a summary table and a steps table, or JSON.
pub fn print_task(ctx: &Ctx, task: &TaskResponse) -> Result<(), CliError> {
    if ctx.format == Format::Json {
        return output::json(task);
    }
    println!(
        "{}",
        output::pairs(&[
            ("task_uuid", task.task_uuid.to_string()),
            (
                "template",
                format!("{}/{}:{}", task.namespace, task.name, task.version)
            ),
            ("status", task.status.to_string()),
            ("execution", task.execution_status.clone()),
            (
                "progress",
                format!(
                    "{}/{} steps ({:.0}%)",
                    task.completed_steps, task.total_steps, task.completion_percentage
                )
            ),
            ("created_at", task.created_at.to_rfc3339()),
            (
                "completed_at",
                task.completed_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            ),
            ("correlation_id", task.correlation_id.to_string()),
        ])
    );
    if !task.steps.is_empty() {
        println!("{}", steps::table(&task.steps));
    }
    Ok(())
}

/// The first failed step's error message, for exit messages.
pub fn failure_of(task: &TaskResponse) -> String {
    task.steps
        .iter()
        .find(|s| s.current_state == tasker_shared::state_machine::WorkflowStepState::Error)
        .map(|s| {
            let message = s
                .results
                .as_ref()
                .and_then(|r| r["error"]["message"].as_str())
                .unwrap_or("no message");
            format!(
                "step {} failed after {} attempt(s): {message}",
                s.name, s.attempts
            )
        })
        .unwrap_or_else(|| format!("task is {}", task.status))
}
