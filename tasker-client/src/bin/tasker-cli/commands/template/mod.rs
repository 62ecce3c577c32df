//! `tasker-cli template ...`

pub mod get;
pub mod list;
pub mod validate;

use clap::Subcommand;

use crate::Ctx;
use crate::output::CliError;

/// Template commands.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List registered templates.
    List,
    /// Show a registered template.
    Get(get::Args),
    /// Check template files offline, with the server's validation: one line per problem.
    Validate(validate::Args),
}

/// Runs a template command.
pub async fn run(ctx: &Ctx, command: TemplateCommand) -> Result<(), CliError> {
    match command {
        TemplateCommand::List => list::run(ctx).await,
        TemplateCommand::Get(a) => get::run(ctx, a).await,
        TemplateCommand::Validate(a) => validate::run(&a),
    }
}
