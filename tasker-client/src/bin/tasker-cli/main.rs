//! `tasker-cli`: operate Tasker from the terminal.
//!
//! Results go to stdout (a table, or JSON with `--format json`); progress and errors go
//! to stderr. Exit codes: 0 ok, 1 a server or usage error, 2 not found, 3 the task
//! failed (with `--wait`), 4 the server is unreachable.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use output::{CliError, Format};

/// Operate Tasker: create and follow tasks, act on steps, inspect templates and the DLQ.
#[derive(Debug, Parser)]
#[command(name = "tasker-cli", version)]
pub struct Cli {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "TASKER_URL",
        default_value = "http://localhost:8080"
    )]
    url: String,
    /// A bearer token (JWT) for servers with authentication on.
    #[arg(
        long,
        global = true,
        env = "TASKER_AUTH_TOKEN",
        hide_env_values = true,
        conflicts_with = "api_key"
    )]
    token: Option<String>,
    /// An API key for servers with authentication on.
    #[arg(long, global = true, env = "TASKER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Output format of results; `task visualize` also takes mermaid, dot or ascii.
    #[arg(long, global = true, value_enum, default_value = "table")]
    format: Format,
    /// Print only results: no progress and no notes.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more: the requests made.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, inspect, follow and cancel tasks.
    #[command(subcommand)]
    Task(commands::task::TaskCommand),
    /// Inspect steps and act on them (reset, resolve, complete).
    #[command(subcommand)]
    Step(commands::step::StepCommand),
    /// List, show and validate task templates.
    #[command(subcommand)]
    Template(commands::template::TemplateCommand),
    /// The dead letter queue.
    #[command(subcommand)]
    Dlq(commands::dlq::DlqCommand),
    /// Check that the server is up and ready.
    Health,
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// What every command needs.
#[derive(Debug)]
pub struct Ctx {
    client: tasker_client::OrchestrationClient,
    format: Format,
    quiet: bool,
    verbose: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 1, as documented.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "tasker-cli",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    if let Command::Template(commands::template::TemplateCommand::Validate(ref args)) = cli.command
    {
        return commands::template::validate::run(args);
    }
    let visualizing = matches!(
        cli.command,
        Command::Task(commands::task::TaskCommand::Visualize(_))
    );
    if cli.format.is_drawing() && !visualizing {
        return Err(CliError::usage(
            "--format mermaid, dot and ascii apply only to `task visualize`; use table or json",
        ));
    }
    let mut builder = tasker_client::OrchestrationClient::builder(&cli.url);
    if let Some(token) = &cli.token {
        builder = builder.bearer_token(token);
    }
    if let Some(key) = &cli.api_key {
        builder = builder.api_key(key);
    }
    let client = builder
        .build()
        .map_err(|e| CliError::usage(format!("{e} (set --url or TASKER_URL)")))?;
    let ctx = Ctx {
        client,
        format: cli.format,
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    if ctx.verbose {
        eprintln!("server: {}", ctx.client.base_url());
    }
    match cli.command {
        Command::Task(c) => commands::task::run(&ctx, c).await,
        Command::Step(c) => commands::step::run(&ctx, c).await,
        Command::Template(c) => commands::template::run(&ctx, c).await,
        Command::Dlq(c) => commands::dlq::run(&ctx, c).await,
        Command::Health => commands::health::run(&ctx).await,
        Command::Completions { .. } => Ok(()),
    }
}
