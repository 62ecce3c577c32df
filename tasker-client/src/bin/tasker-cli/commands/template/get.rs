//! `tasker-cli template get`

use crate::Ctx;
use crate::output::{self, CliError, Format};

/// Arguments of `template get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The namespace.
    namespace: String,
    /// The template's name.
    name: String,
    /// The version (default: the newest registered).
    #[arg(long)]
    version: Option<String>,
}

/// Shows a template.
pub async fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let version = match args.version {
        Some(v) => v,
        None => ctx
            .client
            .list_templates()
            .await?
            .templates
            .into_iter()
            .filter(|t| t.namespace == args.namespace && t.name == args.name)
            .max_by_key(|t| t.created_at)
            .map(|t| t.version)
            .ok_or_else(|| {
                CliError::not_found(format!(
                    "no template {:?} is registered in namespace {:?}",
                    args.name, args.namespace
                ))
            })?,
    };
    let tpl = ctx
        .client
        .get_template(&args.namespace, &args.name, &version)
        .await?;
    if ctx.format == Format::Json {
        return output::json(&tpl);
    }
    println!(
        "{}",
        output::pairs(&[
            (
                "template",
                format!(
                    "{}/{}:{}",
                    tpl.summary.namespace, tpl.summary.name, tpl.summary.version
                )
            ),
            (
                "description",
                tpl.summary.description.clone().unwrap_or_default()
            ),
            ("identity", tpl.identity_strategy.clone()),
            ("registered", tpl.summary.updated_at.to_rfc3339()),
        ])
    );
    let mut t = output::table(&["step", "handler", "depends on", "attempts", "backoff"]);
    for step in tpl.template["steps"].as_array().into_iter().flatten() {
        let deps: Vec<&str> = step["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .collect();
        t.add_row(vec![
            step["name"].as_str().unwrap_or("").to_string(),
            step["handler"]["callable"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            deps.join(", "),
            step["retry"]["max_attempts"].to_string(),
            step["retry"]["backoff"].as_str().unwrap_or("").to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}
