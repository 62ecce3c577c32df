//! `tasker-cli task list`

use tasker_client::TaskFilters;

use crate::Ctx;
use crate::output::{self, CliError, Format, note};

/// Arguments of `task list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Only tasks in this state (complete, blocked_by_failures, …).
    #[arg(long)]
    status: Option<String>,
    /// Only tasks from this initiator.
    #[arg(long)]
    initiator: Option<String>,
    /// Page, from 1.
    #[arg(long, default_value_t = 1)]
    page: u32,
    /// Tasks per page (1-100).
    #[arg(long, default_value_t = 25)]
    per_page: u32,
}

/// Lists tasks.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let page = ctx
        .client
        .list_tasks(&TaskFilters {
            namespace: args.namespace,
            status: args.status,
            initiator: args.initiator,
            source_system: None,
            page: Some(args.page),
            per_page: Some(args.per_page),
        })
        .await?;
    if ctx.format == Format::Json {
        return output::json(&page);
    }
    let mut t = output::table(&["task_uuid", "template", "status", "steps", "created_at"]);
    for task in &page.tasks {
        t.add_row(vec![
            task.task_uuid.to_string(),
            format!("{}/{}:{}", task.namespace, task.name, task.version),
            task.status.to_string(),
            format!("{}/{}", task.completed_steps, task.total_steps),
            task.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        ]);
    }
    println!("{t}");
    let p = page.pagination;
    note(
        ctx,
        format!(
            "page {} of {} ({} tasks)",
            p.page,
            p.total_pages.max(1),
            p.total_count
        ),
    );
    Ok(())
}
