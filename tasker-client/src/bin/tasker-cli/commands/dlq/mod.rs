//! `tasker-cli dlq ...`

use clap::Subcommand;
use tasker_shared::api::{DlqEntry, DlqUpdateRequest};

use crate::Ctx;
use crate::commands::uuid_arg;
use crate::output::{self, CliError, Format};

/// DLQ commands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List entries, newest first.
    List {
        /// Only entries with this resolution status (pending, manually_resolved, …).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Skip this many.
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Show a task's newest entry.
    Get {
        /// The task's UUID.
        task: String,
    },
    /// Record investigation progress on an entry.
    Update {
        /// The entry's UUID.
        entry: String,
        /// pending, manually_resolved, permanently_failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Notes.
        #[arg(long)]
        notes: Option<String>,
        /// Who (default: $USER@tasker-cli).
        #[arg(long = "by")]
        actor: Option<String>,
    },
}

/// Runs a DLQ command.
pub async fn run(ctx: &Ctx, command: DlqCommand) -> Result<(), CliError> {
    match command {
        DlqCommand::List {
            status,
            limit,
            offset,
        } => {
            let entries = ctx
                .client
                .list_dlq_page(status.as_deref(), limit, offset)
                .await?;
            if ctx.format == Format::Json {
                return output::json(&entries);
            }
            let mut t =
                output::table(&["entry", "task", "reason", "state then", "status", "added"]);
            for e in &entries {
                t.add_row(vec![
                    e.dlq_entry_uuid.to_string(),
                    e.task_uuid.to_string(),
                    e.dlq_reason.clone(),
                    e.original_state.clone(),
                    e.resolution_status.clone(),
                    e.dlq_timestamp.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        DlqCommand::Get { task } => print(
            ctx,
            &ctx.client.dlq_for_task(uuid_arg("task", &task)?).await?,
        ),
        DlqCommand::Update {
            entry,
            status,
            notes,
            actor,
        } => {
            let update = DlqUpdateRequest {
                resolution_status: status,
                resolution_notes: notes,
                resolved_by: Some(actor.unwrap_or_else(|| {
                    std::env::var("USER")
                        .map(|u| format!("{u}@tasker-cli"))
                        .unwrap_or_else(|_| "tasker-cli".into())
                })),
                metadata: None,
            };
            print(
                ctx,
                &ctx.client
                    .update_dlq_entry(uuid_arg("entry", &entry)?, &update)
                    .await?,
            )
        }
    }
}

fn print(ctx: &Ctx, e: &DlqEntry) -> Result<(), CliError> {
    if ctx.format == Format::Json {
        return output::json(e);
    }
    println!(
        "{}",
        output::pairs(&[
            ("entry", e.dlq_entry_uuid.to_string()),
            ("task", e.task_uuid.to_string()),
            ("reason", e.dlq_reason.clone()),
            ("state then", e.original_state.clone()),
            ("status", e.resolution_status.clone()),
            ("notes", e.resolution_notes.clone().unwrap_or_default()),
            ("resolved_by", e.resolved_by.clone().unwrap_or_default()),
            ("added", e.dlq_timestamp.to_rfc3339()),
        ])
    );
    Ok(())
}
