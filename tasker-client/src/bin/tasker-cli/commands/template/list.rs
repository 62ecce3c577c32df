//! `tasker-cli template list`

use crate::Ctx;
use crate::output::{self, CliError, Format};

/// Lists registered templates.
pub async fn run(ctx: &Ctx) -> Result<(), CliError> {
    let list = ctx.client.list_templates().await?;
    if ctx.format == Format::Json {
        return output::json(&list);
    }
    let mut t = output::table(&["namespace", "name", "version", "steps", "description"]);
    for tpl in &list.templates {
        t.add_row(vec![
            tpl.namespace.clone(),
            tpl.name.clone(),
            tpl.version.clone(),
            tpl.step_count.to_string(),
            tpl.description.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(())
}
