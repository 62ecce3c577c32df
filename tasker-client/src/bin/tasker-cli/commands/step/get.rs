//! `tasker-cli step get`

use super::{locate, print_step};
use crate::Ctx;
use crate::output::CliError;

/// Arguments of `step get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's UUID.
    task: String,
    /// The step's UUID or name.
    step: String,
}

/// Shows the step.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let (task, step) = locate(ctx, &args.task, &args.step).await?;
    print_step(ctx, &ctx.client.get_step(task, step).await?)
}
