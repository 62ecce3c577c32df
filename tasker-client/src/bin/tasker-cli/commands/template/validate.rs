//! `tasker-cli template validate`: offline, with the same validation as the server.

use std::path::PathBuf;

use tasker_shared::template::{TaskTemplate, TemplateError};

use crate::output::CliError;

/// Arguments of `template validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Template files (YAML).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Prints `<file>: ok (...)` for each valid file and one line per problem otherwise;
/// exits 1 if any file is invalid.
pub fn run(args: &Args) -> Result<(), CliError> {
    let mut invalid = 0;
    for file in &args.files {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                println!("{shown}: cannot read: {e}");
                invalid += 1;
                continue;
            }
        };
        match TaskTemplate::from_yaml(&text, &shown) {
            Ok(t) => println!("{shown}: ok ({}, {} steps)", t.full_name(), t.steps.len()),
            Err(TemplateError::Invalid {
                problems, template, ..
            }) => {
                invalid += 1;
                for p in problems {
                    println!("{shown}: template '{template}': {p}");
                }
            }
            Err(e @ TemplateError::Parse { .. }) => {
                invalid += 1;
                // The parser's message can span lines (a snippet); keep its first line.
                println!("{}", e.to_string().lines().next().unwrap_or_default());
            }
        }
    }
    if invalid > 0 {
        return Err(CliError::usage(format!(
            "{invalid} of {} template file(s) invalid",
            args.files.len()
        )));
    }
    Ok(())
}
