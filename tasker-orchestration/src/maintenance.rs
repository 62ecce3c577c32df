//! Maintenance: the retention job that keeps the hot tables small.
//!
//! Every `interval` it deletes finished tasks and archived queue messages older than
//! `max_age` (see [`tasker_shared::database::retention`]). Several servers may run it at
//! once: each batch deletes whatever is still there, so they only share the work.
//! `tasker-server maintenance purge` runs the same purge once.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use tasker_shared::database::retention::{self, PurgeReport};

use crate::error::Result;

/// What the retention job deletes, and how often it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Finished tasks and archived messages older than this are deleted.
    pub max_age: Duration,
    /// Time between runs.
    pub interval: Duration,
    /// Tasks (each with its steps and history), or archived messages, deleted per
    /// transaction.
    pub batch_size: i64,
}

/// Deletes what `policy` no longer keeps, once.
pub async fn purge_once(pool: &PgPool, policy: &RetentionPolicy) -> Result<PurgeReport> {
    let clock = std::time::Instant::now();
    let report = retention::purge(pool, policy.max_age, policy.batch_size).await?;
    crate::metrics::purged(&report);
    if report != PurgeReport::default() {
        tracing::info!(
            tasks = report.tasks,
            archived_messages = report.archived_messages,
            elapsed_ms = clock.elapsed().as_millis() as u64,
            "retention: purged finished tasks and archived messages"
        );
    }
    Ok(report)
}

/// Runs [`purge_once`] every `policy.interval` until shutdown. A failed run is logged
/// and tried again at the next interval.
pub async fn run_retention(pool: PgPool, policy: RetentionPolicy, shutdown: CancellationToken) {
    tracing::info!(
        max_age_seconds = policy.max_age.as_secs(),
        interval_ms = policy.interval.as_millis() as u64,
        "retention job running"
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(policy.interval) => {}
        }
        if let Err(error) = purge_once(&pool, &policy).await {
            tracing::warn!(%error, "retention: purge failed; trying again at the next interval");
        }
    }
}
