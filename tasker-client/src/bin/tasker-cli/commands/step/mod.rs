//! `tasker-cli step ...`: steps are named by UUID or by name within their task.

pub mod act;
pub mod audit;
pub mod get;

use clap::Subcommand;
use tasker_shared::api::StepResponse;
use uuid::Uuid;

use crate::Ctx;
use crate::commands::uuid_arg;
use crate::output::{self, CliError, Format};

/// Step commands.
#[derive(Debug, Subcommand)]
pub enum StepCommand {
    /// Show a step with its result.
    Get(get::Args),
    /// Put a step in error back to pending, with a fresh retry budget.
    Reset(act::ResetArgs),
    /// Declare a step resolved without a result; its dependents run.
    Resolve(act::ResolveArgs),
    /// Complete a step with a result you supply; its dependents receive it.
    Complete(act::CompleteArgs),
    /// A step's history: every transition with its actor and reason.
    Audit(audit::Args),
}

/// Runs a step command.
pub async fn run(ctx: &Ctx, command: StepCommand) -> Result<(), CliError> {
    match command {
        StepCommand::Get(a) => get::run(ctx, a).await,
        StepCommand::Reset(a) => act::reset(ctx, a).await,
        StepCommand::Resolve(a) => act::resolve(ctx, a).await,
        StepCommand::Complete(a) => act::complete(ctx, a).await,
        StepCommand::Audit(a) => audit::run(ctx, a).await,
    }
}

/// The task and step UUIDs for a task UUID and a step UUID or name.
pub async fn locate(ctx: &Ctx, task: &str, step: &str) -> Result<(Uuid, Uuid), CliError> {
    let task_uuid = uuid_arg("task", task)?;
    if let Ok(step_uuid) = Uuid::parse_str(step) {
        return Ok((task_uuid, step_uuid));
    }
    let steps = ctx.client.list_task_steps(task_uuid).await?;
    steps
        .iter()
        .find(|s| s.name == step)
        .map(|s| (task_uuid, s.step_uuid))
        .ok_or_else(|| {
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            CliError::not_found(format!(
                "task {task_uuid} has no step {step:?}; its steps are {}",
                names.join(", ")
            ))
        })
}

/// Prints a step.
pub fn print_step(ctx: &Ctx, step: &StepResponse) -> Result<(), CliError> {
    if ctx.format == Format::Json {
        return output::json(step);
    }
    println!(
        "{}",
        output::pairs(&[
            ("step_uuid", step.step_uuid.to_string()),
            ("name", step.name.clone()),
            ("state", step.current_state.to_string()),
            (
                "attempts",
                format!("{}/{}", step.attempts, step.max_attempts)
            ),
            ("depends on", step.dependencies.join(", ")),
            (
                "next_retry_at",
                step.next_retry_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            ),
            (
                "results",
                step.results
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ),
        ])
    );
    Ok(())
}
