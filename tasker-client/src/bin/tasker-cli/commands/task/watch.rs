//! `tasker-cli task watch`, and the waiting behind `task create --wait`.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tasker_shared::state_machine::TaskState;

use super::{failure_of, print_task};
use crate::Ctx;
use crate::commands::uuid_arg;
use crate::output::{CliError, note};

/// Arguments of `task watch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's UUID.
    task: String,
    /// Give up after this many seconds (exit 1).
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

/// Follows the task until it ends.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    follow(
        ctx,
        uuid_arg("task", &args.task)?,
        Duration::from_secs(args.timeout),
    )
    .await
}

/// Shows progress on stderr until the task ends; prints it; exits 3 when it failed.
/// A task blocked by failures counts as failed: it needs an operator to go on.
pub async fn follow(ctx: &Ctx, task_uuid: uuid::Uuid, timeout: Duration) -> Result<(), CliError> {
    let bar = if ctx.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} steps {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let deadline = Instant::now() + timeout;
    let mut last_state = None;
    let task = loop {
        let task = ctx.client.get_task(task_uuid).await?;
        bar.set_length(u64::try_from(task.total_steps).unwrap_or(0));
        bar.set_position(u64::try_from(task.completed_steps).unwrap_or(0));
        bar.set_message(task.status.to_string());
        if last_state != Some(task.status) && ctx.verbose {
            bar.println(format!("{task_uuid} is {}", task.status));
        }
        last_state = Some(task.status);
        if task.status.is_terminal() || task.status == TaskState::BlockedByFailures {
            break task;
        }
        if Instant::now() > deadline {
            bar.abandon();
            return Err(CliError::usage(format!(
                "task {task_uuid} is still {} after {} s",
                task.status,
                timeout.as_secs()
            )));
        }
        bar.tick();
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    bar.finish_and_clear();
    print_task(ctx, &task)?;
    match task.status {
        TaskState::Complete | TaskState::ResolvedManually => {
            note(ctx, format!("task {task_uuid} is {}", task.status));
            Ok(())
        }
        state => Err(CliError::task_failed(format!(
            "task {task_uuid} is {state}: {}",
            failure_of(&task)
        ))),
    }
}
