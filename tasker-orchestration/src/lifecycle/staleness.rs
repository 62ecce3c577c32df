//! The staleness detector: tasks idle past their thresholds go to `error` with a DLQ
//! entry explaining why.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use tasker_shared::database::dlq::{self, StalenessThresholds};
use tasker_shared::database::task;
use tasker_shared::state_machine::TaskState;

use crate::error::Result;

/// Moves stale tasks to `error`, each with a DLQ entry.
#[derive(Debug, Clone)]
pub struct StalenessDetector {
    pool: PgPool,
    thresholds: StalenessThresholds,
}

impl StalenessDetector {
    /// A detector on `pool` with default thresholds (templates may override them).
    pub fn new(pool: PgPool, thresholds: StalenessThresholds) -> Self {
        Self { pool, thresholds }
    }

    /// One pass: returns how many tasks were moved to `error`.
    pub async fn detect_once(&self, limit: i32) -> Result<usize> {
        let stale = dlq::stale_tasks(&self.pool, &self.thresholds, limit).await?;
        let mut moved = 0;
        for candidate in stale {
            let Ok(state) = candidate.current_state.parse::<TaskState>() else {
                continue;
            };
            let mut tx = self.pool.begin().await?;
            if !task::transition::lock(&mut tx, candidate.task_uuid).await? {
                continue;
            }
            let metadata = json!({
                "event": "staleness_timeout",
                "minutes_in_state": candidate.minutes_in_state,
                "threshold_minutes": candidate.threshold_minutes,
            });
            // Compare-and-swap: if the task moved on since it was found, leave it be.
            let outcome = task::transition::one(
                &mut tx,
                candidate.task_uuid,
                &[state],
                TaskState::Error,
                &metadata,
            )
            .await?;
            if !outcome.applied() {
                continue;
            }
            dlq::create_entry(
                &mut tx,
                candidate.task_uuid,
                state.as_str(),
                "staleness_timeout",
                &metadata,
            )
            .await?;
            tx.commit().await?;
            crate::metrics::task_failed("error");
            moved += 1;
            tracing::warn!(
                task_uuid = %candidate.task_uuid,
                state = %state,
                minutes_in_state = candidate.minutes_in_state,
                threshold_minutes = candidate.threshold_minutes,
                "stale task moved to error and the DLQ"
            );
        }
        Ok(moved)
    }

    /// Runs [`detect_once`](Self::detect_once) every `interval` until shutdown.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(error) = self.detect_once(100).await {
                tracing::warn!(%error, "staleness detection failed");
            }
        }
    }
}
