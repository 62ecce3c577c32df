//! `tasker-cli step reset|resolve|complete`: operator actions.

use tasker_shared::api::{CompletionData, StepManualAction};

use super::{locate, print_step};
use crate::Ctx;
use crate::commands::json_arg;
use crate::output::{CliError, note};

fn default_actor() -> String {
    std::env::var("USER")
        .map(|u| format!("{u}@tasker-cli"))
        .unwrap_or_else(|_| "tasker-cli".into())
}

/// Arguments of `step reset`.
#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// The task's UUID.
    task: String,
    /// The step's UUID or name.
    step: String,
    /// Why (stored in the step's audit).
    #[arg(long)]
    reason: String,
    /// Who (default: $USER@tasker-cli).
    #[arg(long = "by")]
    actor: Option<String>,
}

/// Arguments of `step resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The task's UUID.
    task: String,
    /// The step's UUID or name.
    step: String,
    /// Why (stored in the step's audit).
    #[arg(long)]
    reason: String,
    /// Who (default: $USER@tasker-cli).
    #[arg(long = "by")]
    actor: Option<String>,
}

/// Arguments of `step complete`.
#[derive(Debug, clap::Args)]
pub struct CompleteArgs {
    /// The task's UUID.
    task: String,
    /// The step's UUID or name.
    step: String,
    /// The step's result: JSON, or @file.json.
    #[arg(long)]
    result: String,
    /// Why (stored in the step's audit).
    #[arg(long)]
    reason: String,
    /// Who (default: $USER@tasker-cli).
    #[arg(long = "by")]
    actor: Option<String>,
}

async fn apply(
    ctx: &Ctx,
    task: &str,
    step: &str,
    action: StepManualAction,
) -> Result<(), CliError> {
    let (task_uuid, step_uuid) = locate(ctx, task, step).await?;
    let updated = ctx
        .client
        .step_action(task_uuid, step_uuid, &action)
        .await?;
    note(
        ctx,
        format!("{} applied to step {}", action.name(), updated.name),
    );
    print_step(ctx, &updated)
}

/// `step reset`.
pub async fn reset(ctx: &Ctx, a: ResetArgs) -> Result<(), CliError> {
    let action = StepManualAction::ResetForRetry {
        reason: a.reason,
        reset_by: a.actor.unwrap_or_else(default_actor),
    };
    apply(ctx, &a.task, &a.step, action).await
}

/// `step resolve`.
pub async fn resolve(ctx: &Ctx, a: ResolveArgs) -> Result<(), CliError> {
    let action = StepManualAction::ResolveManually {
        reason: a.reason,
        resolved_by: a.actor.unwrap_or_else(default_actor),
    };
    apply(ctx, &a.task, &a.step, action).await
}

/// `step complete`.
pub async fn complete(ctx: &Ctx, a: CompleteArgs) -> Result<(), CliError> {
    let action = StepManualAction::CompleteManually {
        completion_data: CompletionData {
            result: json_arg("--result", &a.result)?,
            metadata: None,
        },
        reason: a.reason,
        completed_by: a.actor.unwrap_or_else(default_actor),
    };
    apply(ctx, &a.task, &a.step, action).await
}
