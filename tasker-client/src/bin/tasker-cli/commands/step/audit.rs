//! `tasker-cli step audit`

use super::locate;
use crate::Ctx;
use crate::output::{self, CliError, Format};

/// Arguments of `step audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's UUID.
    task: String,
    /// The step's UUID or name.
    step: String,
}

/// Prints the step's history.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let (task, step) = locate(ctx, &args.task, &args.step).await?;
    let audit = ctx.client.get_step_audit(task, step).await?;
    if ctx.format == Format::Json {
        return output::json(&audit);
    }
    let mut t = output::table(&["at", "from", "to", "event", "actor", "reason"]);
    for a in &audit {
        t.add_row(vec![
            a.created_at.format("%H:%M:%S%.3f").to_string(),
            a.from_state.map(|s| s.to_string()).unwrap_or_default(),
            a.to_state.to_string(),
            a.event.clone().unwrap_or_default(),
            a.actor.clone().unwrap_or_default(),
            a.reason.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}
