//! Built-in handlers, registered under `builtin::<name>`:
//!
//! | callable | does |
//! |---|---|
//! | `builtin::noop` | returns `{}` |
//! | `builtin::echo` | returns `{"context", "config", "dependencies"}`: what it was given |
//! | `builtin::sleep` | sleeps `initialization.ms` milliseconds, returns `{"slept_ms"}` |
//! | `builtin::fail_n_times` | fails attempts 1..=`initialization.times` (retryable unless `initialization.retryable` is false), then returns `{"attempts": n}` |
//! | `builtin::square` | squares the product of its parents' numeric results, or the task context's `even_number` when it has no parents |

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tasker_worker::handlers::{
    HandlerRegistry, Result, StepContext, StepError, StepHandler, StepResult,
};

/// Registers every built-in handler.
pub fn register(registry: &mut HandlerRegistry) {
    registry
        .register("builtin::noop", Noop)
        .register("builtin::echo", Echo)
        .register("builtin::sleep", Sleep)
        .register("builtin::fail_n_times", FailNTimes)
        .register("builtin::square", Square);
}

/// Returns `{}`.
#[derive(Debug)]
pub struct Noop;

#[async_trait]
impl StepHandler for Noop {
    async fn execute(&self, _context: StepContext) -> Result<StepResult> {
        Ok(StepResult::success(json!({})))
    }
}

/// Returns what it was given.
#[derive(Debug)]
pub struct Echo;

#[async_trait]
impl StepHandler for Echo {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        Ok(StepResult::success(json!({
            "context": context.task_context(),
            "config": context.initialization(),
            "dependencies": context.dependency_results(),
        })))
    }
}

/// Sleeps `initialization.ms` milliseconds.
#[derive(Debug)]
pub struct Sleep;

#[async_trait]
impl StepHandler for Sleep {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let ms = context
            .initialization()
            .get("ms")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                StepError::permanent(
                    "builtin::sleep needs handler.initialization.ms, a non-negative integer",
                )
            })?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(StepResult::success(json!({ "slept_ms": ms })))
    }
}

/// Fails the first `initialization.times` attempts.
#[derive(Debug)]
pub struct FailNTimes;

#[async_trait]
impl StepHandler for FailNTimes {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let init = context.initialization();
        let times = init.get("times").and_then(Value::as_i64).unwrap_or(1);
        let retryable = init
            .get("retryable")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let attempt = i64::from(context.attempt());
        if attempt <= times {
            let message =
                format!("failing on purpose: attempt {attempt} of {times} planned failures");
            return Err(if retryable {
                StepError::retryable(message)
            } else {
                StepError::permanent(message)
            });
        }
        Ok(StepResult::success(json!({ "attempts": attempt })))
    }
}

/// Squares its input: the product of its parents' results, or `even_number`.
#[derive(Debug)]
pub struct Square;

#[async_trait]
impl StepHandler for Square {
    async fn execute(&self, context: StepContext) -> Result<StepResult> {
        let input = if context.parents().is_empty() {
            context
                .task_context()
                .get("even_number")
                .filter(|v| v.is_number())
                .cloned()
                .ok_or_else(|| {
                    StepError::permanent(
                        "builtin::square needs a numeric 'even_number' in the task context",
                    )
                })?
        } else {
            let mut product = json!(1);
            for parent in context.parents() {
                let value = context
                    .dependency_result(parent)
                    .filter(|v| v.is_number())
                    .ok_or_else(|| {
                        StepError::permanent(format!(
                            "builtin::square needs a numeric result from parent step '{parent}'"
                        ))
                    })?;
                product = multiply(&product, value);
            }
            product
        };
        Ok(StepResult::success(multiply(&input, &input)))
    }
}

/// Multiplies two JSON numbers exactly while the product fits in 64 bits.
fn multiply(a: &Value, b: &Value) -> Value {
    if let (Some(x), Some(y)) = (as_i128(a), as_i128(b))
        && let Some(p) = x.checked_mul(y)
    {
        if let Ok(v) = i64::try_from(p) {
            return json!(v);
        }
        if let Ok(v) = u64::try_from(p) {
            return json!(v);
        }
    }
    json!(a.as_f64().unwrap_or(f64::NAN) * b.as_f64().unwrap_or(f64::NAN))
}

fn as_i128(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiply_is_exact_then_falls_back_to_float() {
        assert_eq!(multiply(&json!(256), &json!(256)), json!(65536));
        assert_eq!(multiply(&json!(-3), &json!(3)), json!(-9));
        assert_eq!(
            multiply(&json!(1u64 << 32), &json!(1u64 << 31)),
            json!(1u64 << 63)
        );
        assert_eq!(multiply(&json!(1.5), &json!(2)), json!(3.0));
        assert!(multiply(&json!(u64::MAX), &json!(u64::MAX)).is_f64());
    }
}
