//! Steps handed to Ruby and their outcomes coming back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use magnus::Error;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use tasker_worker::handlers::{
    Result, StepContext, StepError, StepFailure, StepHandler, StepResult,
};

use crate::dispatch::QUEUE;

enum Outcome {
    Success(Value),
    Failure(Value),
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static PENDING: LazyLock<Mutex<HashMap<u64, oneshot::Sender<Outcome>>>> =
    LazyLock::new(Default::default);

fn pending() -> std::sync::MutexGuard<'static, HashMap<u64, oneshot::Sender<Outcome>>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the pending entry if the step's future is dropped (timeout, shutdown).
struct Forget(u64);

impl Drop for Forget {
    fn drop(&mut self) {
        pending().remove(&self.0);
    }
}

/// A handler whose work is done by a Ruby class: it queues the step for a Ruby thread
/// and waits for the outcome.
#[derive(Debug)]
pub struct RubyHandler {
    callable: String,
}

impl RubyHandler {
    /// A handler for `callable` (resolved to a Ruby class on the Ruby side).
    pub fn new(callable: impl Into<String>) -> Self {
        Self {
            callable: callable.into(),
        }
    }
}

fn event(id: u64, callable: &str, ctx: &StepContext) -> String {
    json!({
        "event_id": id,
        "context": {
            "callable": callable,
            "task_uuid": ctx.task_uuid(),
            "step_uuid": ctx.step_uuid(),
            "step_name": ctx.step_name(),
            "namespace": ctx.namespace(),
            "task_name": ctx.task_name(),
            "task_version": ctx.task_version(),
            "correlation_id": ctx.correlation_id(),
            "attempt": ctx.attempt(),
            "max_attempts": ctx.max_attempts(),
            "task_context": ctx.task_context(),
            "initialization": ctx.initialization(),
            "dependency_results": ctx.dependency_results(),
            "parents": ctx.parents(),
        }
    })
    .to_string()
}

#[async_trait]
impl StepHandler for RubyHandler {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        pending().insert(id, tx);
        let _forget = Forget(id);
        QUEUE.push(event(id, &self.callable, &context));
        match rx.await {
            Ok(Outcome::Success(value)) => Ok(StepResult::success(value)),
            Ok(Outcome::Failure(f)) => {
                let text = |k: &str| {
                    f.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let mut result = StepResult::failure(StepFailure {
                    message: text("message"),
                    error_type: f
                        .get("error_type")
                        .and_then(Value::as_str)
                        .unwrap_or("ruby_error")
                        .to_string(),
                    retryable: f.get("retryable").and_then(Value::as_bool).unwrap_or(true),
                    retry_after: f
                        .get("retry_after_ms")
                        .and_then(Value::as_u64)
                        .map(Duration::from_millis),
                });
                let mut meta = serde_json::Map::new();
                for key in ["error_class", "backtrace"] {
                    if let Some(v) = f.get(key) {
                        meta.insert(key.to_string(), v.clone());
                    }
                }
                if !meta.is_empty() {
                    result = result.with_metadata(Value::Object(meta));
                }
                Ok(result)
            }
            Err(_) => Err(StepError::retryable(
                "the Ruby worker stopped before the handler answered",
            )),
        }
    }
}

fn settle(event_id: u64, outcome: Outcome) -> bool {
    match pending().remove(&event_id) {
        Some(tx) => tx.send(outcome).is_ok(),
        // Timed out or shut down meanwhile: the runtime no longer waits for it.
        None => false,
    }
}

fn parse(ruby: &magnus::Ruby, kind: &str, text: &str) -> std::result::Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::new(
            ruby.exception_arg_error(),
            format!("{kind} is not valid JSON: {e}"),
        )
    })
}

/// `TaskerCore::Native.complete_step(event_id, result_json)`: whether the runtime still
/// waited for it.
pub fn complete_step(
    ruby: &magnus::Ruby,
    event_id: u64,
    result_json: String,
) -> std::result::Result<bool, Error> {
    let value = parse(ruby, "the result", &result_json)?;
    Ok(settle(event_id, Outcome::Success(value)))
}

/// `TaskerCore::Native.fail_step(event_id, failure_json)`.
pub fn fail_step(
    ruby: &magnus::Ruby,
    event_id: u64,
    failure_json: String,
) -> std::result::Result<bool, Error> {
    let value = parse(ruby, "the failure", &failure_json)?;
    Ok(settle(event_id, Outcome::Failure(value)))
}
