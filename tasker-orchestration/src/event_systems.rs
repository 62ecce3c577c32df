//! The loops that drive the lifecycle: result processing (pushed by NOTIFY, with polling
//! as the safety net) and the readiness sweep (the fallback that finds tasks with ready
//! steps nobody enqueued, for example after a task request arrived by queue).

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use pgmq_notify::consumer::{self, ConsumerConfig};
use pgmq_notify::{PgmqClient, QueueListener, QueueMessage, QueueName};
use tasker_shared::messaging::{ORCHESTRATION_STEP_RESULTS, StepMessage};

use crate::config::OrchestrationConfig;
use crate::error::Result;
use crate::lifecycle::result_processor::{self, ResultOutcome};
use crate::lifecycle::step_enqueuer::StepEnqueuerService;

/// Consumes `orchestration_step_results` until shutdown.
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
        max_in_flight: config.result_concurrency,
        batch_size: usize::try_from(config.result_batch_size).unwrap_or(50),
        poll_interval: config
            .deployment_mode
            .polls()
            .then_some(config.poll_interval),
    };
    let client = PgmqClient::new(pool.clone());
    consumer::run(
        client,
        listener,
        consumer_config,
        shutdown,
        move |queue, message| {
            let pool = pool.clone();
            async move { handle_result(&pool, &queue, message).await }
        },
    )
    .await;
    Ok(())
}

async fn handle_result(pool: &PgPool, queue: &QueueName, message: QueueMessage<Value>) {
    let msg_id = message.msg_id;
    let step_message: StepMessage = match serde_json::from_value(message.message.clone()) {
        Ok(m) => m,
        Err(error) => {
            // A message we cannot read will never become readable: park it in the archive.
            tracing::error!(%error, msg_id, body = %message.message, "unreadable step result message archived");
            if let Err(error) = PgmqClient::archive(pool, queue, msg_id).await {
                tracing::warn!(%error, msg_id, "archiving unreadable message failed");
            }
            return;
        }
    };
    let span = tracing::info_span!(
        "step_result",
        task_uuid = %step_message.task_uuid,
        step_uuid = %step_message.step_uuid,
        correlation_id = %step_message.correlation_id
    );
    let processed = {
        use tracing::Instrument;
        result_processor::process_message(pool, queue, msg_id, &step_message)
            .instrument(span)
            .await
    };
    match processed {
        Ok(outcome) => {
            let level_is_debug = matches!(outcome, ResultOutcome::Completed | ResultOutcome::Stale);
            if level_is_debug {
                tracing::debug!(?outcome, task_uuid = %step_message.task_uuid, step_uuid = %step_message.step_uuid, "step result processed");
            } else {
                tracing::info!(?outcome, task_uuid = %step_message.task_uuid, step_uuid = %step_message.step_uuid, correlation_id = %step_message.correlation_id, "step result processed");
            }
        }
        Err(error) => {
            // Left on the queue: it becomes visible again when its lease ends.
            tracing::warn!(%error, msg_id, task_uuid = %step_message.task_uuid, "processing step result failed; will retry");
        }
    }
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
