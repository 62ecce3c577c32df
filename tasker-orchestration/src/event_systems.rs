//! The loops that drive the lifecycle: result processing (pushed by NOTIFY, with polling
//! as the safety net) and the readiness sweep (the fallback that finds tasks with ready
//! steps nobody enqueued, for example after a task request arrived by queue).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use pgmq_notify::consumer::{self, ConsumerConfig};
use pgmq_notify::{QueueListener, QueueName};
use tasker_shared::messaging::ORCHESTRATION_STEP_RESULTS;

use crate::config::OrchestrationConfig;
use crate::error::Result;
use crate::lifecycle::result_processor;
use crate::lifecycle::step_enqueuer::StepEnqueuerService;

/// Consumes `orchestration_step_results` until shutdown, a batch per transaction (see
/// [`result_processor::process_batch`]).
pub async fn run_result_consumer(
    pool: PgPool,
    listener: Option<QueueListener>,
    config: &OrchestrationConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let queue = QueueName::new(ORCHESTRATION_STEP_RESULTS)?;
    let consumer_config = ConsumerConfig {
        queues: vec![queue],
        visibility_timeout_seconds: config.visibility_timeout_seconds,
        max_in_flight: usize::try_from(config.result_batch_size).unwrap_or(50),
        batch_size: usize::try_from(config.result_batch_size).unwrap_or(50),
        poll_interval: config
            .deployment_mode
            .polls()
            .then_some(config.poll_interval),
        // One queue: a probe would cost as much as the read.
        probe: None,
    };
    let vt = config.visibility_timeout_seconds;
    consumer::run_with(
        move |queue: QueueName, qty: i32| {
            let pool = pool.clone();
            async move {
                let read = result_processor::process_batch(&pool, &queue, vt, qty).await?;
                // Everything happened inside the fetch: nothing is left to hand out.
                Ok::<_, crate::Error>((Vec::<()>::new(), read))
            }
        },
        listener,
        consumer_config,
        shutdown,
        |_queue, ()| async {},
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
