//! The loops that drive the lifecycle: result processing (pushed by NOTIFY, with polling
//! as the safety net) and the readiness sweep (the fallback that finds tasks with ready
//! steps nobody enqueued, for example after a task request arrived by queue).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use pgmq_notify::batches::{BatchConfig, run_batches};
use pgmq_notify::{QueueListener, QueueName};
use tasker_shared::messaging::ORCHESTRATION_STEP_RESULTS;

use crate::config::OrchestrationConfig;
use crate::error::Result;
use crate::lifecycle::result_processor;
use crate::lifecycle::step_enqueuer::StepEnqueuerService;

/// Consumes `orchestration_step_results` until shutdown, a batch per transaction (see
/// [`result_processor::process_batch`]), up to `result_processors` batches at once: one
/// batch's round trips and commit wait overlap another's work. Concurrent batches take
/// their messages with `SKIP LOCKED` and lock tasks in task order, as two servers' do.
pub async fn run_result_consumer(
    pool: PgPool,
    listener: Option<QueueListener>,
    config: &OrchestrationConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let batch_config = BatchConfig {
        queue: QueueName::new(ORCHESTRATION_STEP_RESULTS)?,
        batch_size: usize::try_from(config.result_batch_size).unwrap_or(50),
        concurrency: config.result_processors,
        poll_interval: config
            .deployment_mode
            .polls()
            .then_some(config.poll_interval),
    };
    let vt = config.visibility_timeout_seconds;
    run_batches(
        move |queue: QueueName, qty: i32| {
            let pool = pool.clone();
            async move { result_processor::process_batch(&pool, &queue, vt, qty).await }
        },
        listener,
        batch_config,
        shutdown,
    )
    .await;
    Ok(())
}

/// Periodically enqueues ready steps of tasks that nothing else is driving.
pub async fn run_readiness_sweeper(pool: PgPool, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(error) = StepEnqueuerService::new(pool.clone())
            .process_batch(50)
            .await
        {
            tracing::warn!(%error, "readiness sweep failed");
        }
    }
}
