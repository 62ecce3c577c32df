//! `tasker-cli health`

use crate::Ctx;
use crate::output::{self, CliError, Format};

/// Prints the server's readiness checks; exits 1 when it is not ready.
pub async fn run(ctx: &Ctx) -> Result<(), CliError> {
    let health = ctx.client.health_check().await?;
    let ready = ctx.client.health_detailed().await;
    let report = match ready {
        Ok(r) => r,
        Err(tasker_client::Error::Api {
            status, message, ..
        }) if status.as_u16() == 503 => {
            return Err(CliError::usage(format!(
                "the server is up but not ready: {message}"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    match ctx.format {
        Format::Json => output::json(&serde_json::json!({"health": health, "readiness": report})),
        _ => {
            let mut t = output::table(&["check", "status", "message", "ms"]);
            for (name, c) in &report.checks {
                t.add_row(vec![
                    name.clone(),
                    c.status.clone(),
                    c.message.clone(),
                    c.duration_ms.to_string(),
                ]);
            }
            println!(
                "{} is {} and {}",
                ctx.client.base_url(),
                health.status,
                report.status
            );
            println!("{t}");
            Ok(())
        }
    }
}
