//! `tasker-cli task create`

use std::time::Duration;

use tasker_shared::api::TaskRequest;

use super::{print_task, watch};
use crate::Ctx;
use crate::commands::json_arg;
use crate::output::{CliError, note};

/// Arguments of `task create`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The template's name.
    #[arg(long)]
    template: String,
    /// The template's namespace; looked up when the template name is unique.
    #[arg(long)]
    namespace: Option<String>,
    /// The template's version (default: the newest registered).
    #[arg(long)]
    version: Option<String>,
    /// The task's input: JSON, or @file.json.
    #[arg(long, default_value = "{}")]
    context: String,
    /// -100 to 100; higher runs first when busy.
    #[arg(long)]
    priority: Option<i32>,
    /// A second request with the same key returns the first task (409).
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Who asks (stored with the task).
    #[arg(long, default_value = "tasker-cli")]
    initiator: String,
    /// Wait until the task ends, showing progress; exit 3 if it fails.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 1).
    #[arg(long, default_value_t = 300, requires = "wait")]
    timeout: u64,
}

/// Creates the task.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let context = json_arg("--context", &args.context)?;
    let namespace = match args.namespace {
        Some(ns) => ns,
        None => find_namespace(ctx, &args.template).await?,
    };
    let mut request = TaskRequest::new(namespace, args.template, context);
    request.version = args.version;
    request.priority = args.priority;
    request.idempotency_key = args.idempotency_key;
    request.initiator = Some(args.initiator);
    request.source_system = Some("tasker-cli".into());
    let task = ctx
        .client
        .create_task(&request)
        .await
        .map_err(|e| match &e {
            tasker_client::Error::Api {
                status,
                message,
                existing_task_uuid: Some(existing),
                ..
            } if status.as_u16() == 409 => {
                CliError::usage(format!("{message} (see `tasker-cli task get {existing}`)"))
            }
            _ => e.into(),
        })?;
    if !args.wait {
        return print_task(ctx, &task);
    }
    note(
        ctx,
        format!("created task {}; waiting for it to end", task.task_uuid),
    );
    watch::follow(ctx, task.task_uuid, Duration::from_secs(args.timeout)).await
}

/// The namespace of the only registered template called `name`.
async fn find_namespace(ctx: &Ctx, name: &str) -> Result<String, CliError> {
    let list = ctx.client.list_templates().await?;
    let mut namespaces: Vec<String> = list
        .templates
        .iter()
        .filter(|t| t.name == name)
        .map(|t| t.namespace.clone())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    match namespaces.len() {
        1 => Ok(namespaces.remove(0)),
        0 => Err(CliError::not_found(format!(
            "no template named {name:?} is registered; `tasker-cli template list` shows what is"
        ))),
        _ => Err(CliError::usage(format!(
            "template {name:?} exists in namespaces {}: pass --namespace",
            namespaces.join(", ")
        ))),
    }
}
