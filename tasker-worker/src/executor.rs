//! Running one handler: lookup, time limit, panic capture, classification.
//!
//! This is the part of the worker that needs no database, shared by the runtime and by
//! [`crate::testing::run_step`].

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use tasker_shared::database::step;
use tasker_shared::results::{ResultMetadata, ResultStatus, StepErrorInfo, StepExecutionResult};

use crate::handlers::result::Outcome;
use crate::handlers::{HandlerRegistry, StepContext, StepError, StepHandler};

/// How a handler run ended.
#[derive(Debug)]
pub enum HandlerOutcome {
    /// It returned (successfully or not), panicked or timed out: a result to record.
    Finished(Box<StepExecutionResult>),
    /// It was stopped by a shutdown before it finished: nothing to record.
    Aborted,
}

/// Looks `callable` up in `registry` and runs it (see [`run`]).
pub async fn run_registered(
    registry: &HandlerRegistry,
    callable: &str,
    context: StepContext,
    timeout: Duration,
    worker_id: &str,
    abort: &CancellationToken,
) -> HandlerOutcome {
    let started_at = Utc::now();
    match registry.get(callable) {
        Some(handler) => run(handler, callable, context, timeout, worker_id, abort).await,
        None => {
            let failure = Failure::new(
                "handler_not_found",
                format!("no handler is registered for callable '{callable}' in worker {worker_id}"),
                false,
            );
            HandlerOutcome::Finished(Box::new(build(
                context.step_uuid(),
                context.attempt(),
                worker_id,
                started_at,
                Instant::now(),
                Err(failure),
                Value::Null,
            )))
        }
    }
}

/// Runs `handler` on its own task with a time limit, catching panics, until it finishes
/// or `abort` is cancelled. The result has the shape the worker stores.
pub async fn run(
    handler: std::sync::Arc<dyn StepHandler>,
    callable: &str,
    context: StepContext,
    timeout: Duration,
    worker_id: &str,
    abort: &CancellationToken,
) -> HandlerOutcome {
    let step_uuid = context.step_uuid();
    let attempt = context.attempt();
    let started_at = Utc::now();
    let clock = Instant::now();
    let task = tokio::spawn(async move { handler.execute(context).await });
    let abort_handle = task.abort_handle();
    let outcome = tokio::select! {
        _ = abort.cancelled() => {
            abort_handle.abort();
            return HandlerOutcome::Aborted;
        }
        outcome = tokio::time::timeout(timeout, task) => outcome,
    };
    let (value, metadata) = match outcome {
        Err(_) => {
            abort_handle.abort();
            (
                Err(Failure::new(
                    "timeout",
                    format!(
                        "handler '{callable}' did not finish within {} s",
                        timeout.as_secs_f64()
                    ),
                    true,
                )),
                Value::Null,
            )
        }
        Ok(Err(join_error)) => {
            let message = if join_error.is_panic() {
                let payload = join_error.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string())
            } else {
                "its task was cancelled".to_string()
            };
            (
                Err(Failure::new(
                    "handler_panic",
                    format!("handler '{callable}' panicked: {message}"),
                    false,
                )),
                Value::Null,
            )
        }
        Ok(Ok(Err(StepError::Retryable {
            message,
            retry_after,
        }))) => {
            let mut f = Failure::new("retryable_error", message, true);
            f.retry_after = retry_after;
            (Err(f), Value::Null)
        }
        Ok(Ok(Err(StepError::Permanent { message }))) => (
            Err(Failure::new("permanent_error", message, false)),
            Value::Null,
        ),
        Ok(Ok(Ok(result))) => {
            let metadata = result.metadata.clone();
            match result.outcome {
                Outcome::Success(v) => (Ok(v), metadata),
                Outcome::Failure(f) => {
                    let mut failure = Failure::new(&f.error_type, f.message, f.retryable);
                    failure.retry_after = f.retry_after;
                    (Err(failure), metadata)
                }
            }
        }
    };
    HandlerOutcome::Finished(Box::new(build(
        step_uuid, attempt, worker_id, started_at, clock, value, metadata,
    )))
}

struct Failure {
    error_type: String,
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(error_type: &str, message: String, retryable: bool) -> Self {
        Self {
            error_type: error_type.to_string(),
            message,
            retryable,
            retry_after: None,
        }
    }
}

fn build(
    step_uuid: Uuid,
    attempt: i32,
    worker_id: &str,
    started_at: chrono::DateTime<Utc>,
    clock: Instant,
    value: Result<Value, Failure>,
    custom: Value,
) -> StepExecutionResult {
    let metadata = ResultMetadata {
        attempt,
        execution_time_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        worker_id: worker_id.to_string(),
        started_at,
        completed_at: Utc::now(),
        custom,
    };
    match value {
        Ok(result) => StepExecutionResult {
            step_uuid,
            success: true,
            result,
            status: ResultStatus::Completed,
            error: None,
            metadata,
        },
        Err(f) => failed(step_uuid, f, metadata),
    }
}

fn failed(step_uuid: Uuid, f: Failure, metadata: ResultMetadata) -> StepExecutionResult {
    StepExecutionResult {
        step_uuid,
        success: false,
        result: Value::Null,
        status: ResultStatus::Failed,
        error: Some(StepErrorInfo {
            message: f.message,
            error_type: f.error_type,
            retryable: f.retryable,
            retry_after_ms: f
                .retry_after
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            backtrace: None,
            context: None,
        }),
        metadata,
    }
}

/// The failure recorded for a step whose attempts were all lost with their workers
/// (see [`step::ClaimedStep::over_budget`]): permanent, since running it again could
/// take down the next worker too.
pub fn lost_worker_result(claimed: &step::ClaimedStep, worker_id: &str) -> StepExecutionResult {
    let lost = claimed.attempt - claimed.retry_baseline - 1;
    build(
        claimed.step_uuid,
        claimed.attempt,
        worker_id,
        Utc::now(),
        Instant::now(),
        Err(Failure::new(
            "worker_lost",
            format!(
                "the step was claimed {lost} times and every worker stopped before reporting a result (max_attempts is {})",
                claimed.max_attempts
            ),
            false,
        )),
        Value::Null,
    )
}

/// The failure recorded in place of a successful result PostgreSQL refused to store
/// (a NUL character in a string, a value past jsonb's size limit): permanent, since the
/// handler would return the same result again.
pub fn unstorable_result(result: &StepExecutionResult, reason: &str) -> StepExecutionResult {
    failed(
        result.step_uuid,
        Failure::new(
            "result_not_storable",
            format!("the handler's result could not be stored: {reason}"),
            false,
        ),
        ResultMetadata {
            custom: Value::Null,
            ..result.metadata.clone()
        },
    )
}
