//! `tasker-cli task get`

use super::print_task;
use crate::Ctx;
use crate::commands::uuid_arg;
use crate::output::CliError;

/// Arguments of `task get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's UUID.
    task: String,
}

/// Shows the task.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let task = ctx.client.get_task(uuid_arg("task", &args.task)?).await?;
    print_task(ctx, &task)
}
