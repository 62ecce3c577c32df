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

/// Cancels `shutdown` on SIGINT (Ctrl-C) or SIGTERM.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops this process");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested: finishing the work in flight");
    shutdown.cancel();
}
