//! `tasker-cli task steps`

use comfy_table::Table;
use tasker_shared::api::StepResponse;

use crate::Ctx;
use crate::commands::uuid_arg;
use crate::output::{self, CliError, Format};

/// Arguments of `task steps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's UUID.
    task: String,
}

/// Lists the task's steps.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let steps = ctx
        .client
        .list_task_steps(uuid_arg("task", &args.task)?)
        .await?;
    match ctx.format {
        Format::Json => output::json(&steps),
        _ => {
            println!("{}", table(&steps));
            Ok(())
        }
    }
}

/// The steps as a table.
pub fn table(steps: &[StepResponse]) -> Table {
    let mut t = output::table(&["step", "state", "attempts", "depends on", "result / error"]);
    for s in steps {
        let outcome = match &s.results {
            Some(r) if r["success"] == true => output::short(&r["result"], 60),
            Some(r) => r["error"]["message"].as_str().unwrap_or("").to_string(),
            None => String::new(),
        };
        t.add_row(vec![
            s.name.clone(),
            s.current_state.to_string(),
            format!("{}/{}", s.attempts, s.max_attempts),
            s.dependencies.join(", "),
            outcome,
        ]);
    }
    t
}
