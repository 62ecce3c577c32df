//! What every Tasker binary does the same way: logging setup and shutdown signals.

use tokio_util::sync::CancellationToken;

/// Logs to stderr, `pretty` or `json`, at the level `RUST_LOG` sets, else `level`
/// (sqlx's own notices are kept at `warn` unless the filter says otherwise).
pub fn init_tracing(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::try_new(format!("sqlx=warn,{level}"))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: embedding processes (the Ruby gem) may call this more than once.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Cancels `shutdown` on SIGINT (Ctrl-C), SIGTERM or SIGHUP (the terminal closed: its
/// default action would kill the process without giving its work back). The handlers
/// are installed before this returns (a signal that arrived before that would kill the
/// process), so call it before announcing that the process is ready; the wait runs on a
/// spawned task.
pub fn cancel_on_signal(shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut int), Ok(mut term), Ok(mut hup)) => tokio::spawn(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                requested(shutdown);
            }),
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                tracing::warn!(%error, "cannot install the SIGINT/SIGTERM/SIGHUP handlers; trying Ctrl-C alone");
                tokio::spawn(wait_for_ctrl_c(shutdown))
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(wait_for_ctrl_c(shutdown))
    }
}

/// Cancels `shutdown` on Ctrl-C; if even that cannot be listened for, never (the process
/// then stops only when killed), rather than shutting down at once.
async fn wait_for_ctrl_c(shutdown: CancellationToken) {
    match tokio::signal::ctrl_c().await {
        Ok(()) => requested(shutdown),
        Err(error) => {
            tracing::error!(%error, "cannot listen for Ctrl-C either; stop this process with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

fn requested(shutdown: CancellationToken) {
    tracing::info!("shutdown requested: finishing the work in flight");
    shutdown.cancel();
}
