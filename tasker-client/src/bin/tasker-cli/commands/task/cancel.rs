//! `tasker-cli task cancel`

use super::print_task;
use crate::Ctx;
use crate::commands::uuid_arg;
use crate::output::CliError;

/// Arguments of `task cancel`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's UUID.
    task: String,
}

/// Cancels the task and shows it.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let task = ctx
        .client
        .cancel_task(uuid_arg("task", &args.task)?)
        .await?;
    print_task(ctx, &task)
}
