//! Running a handler without a database, as the worker would.
//!
//! ```
//! use async_trait::async_trait;
//! use serde_json::json;
//! use tasker_worker::handlers::{StepContext, StepHandler, StepResult, StepError};
//! use tasker_worker::testing::run_step;
//!
//! struct Double;
//!
//! #[async_trait]
//! impl StepHandler for Double {
//!     async fn execute(&self, ctx: StepContext) -> Result<StepResult, StepError> {
//!         let n = ctx.task_context()["n"].as_i64().ok_or(StepError::permanent("n is missing"))?;
//!         Ok(StepResult::success(json!(n * 2)))
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let ok = run_step(Double, StepContext::builder("double").task_context(json!({"n": 21})).build()).await;
//! assert!(ok.success);
//! assert_eq!(ok.result, json!(42));
//!
//! let bad = run_step(Double, StepContext::builder("double").build()).await;
//! let error = bad.error.unwrap();
//! assert_eq!((error.error_type.as_str(), error.retryable), ("permanent_error", false));
//! # });
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use tasker_shared::results::StepExecutionResult;

use crate::executor::{self, HandlerOutcome};
use crate::handlers::{StepContext, StepHandler};

/// How long [`run_step`] lets a handler run.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `handler` on `context` exactly as the worker does (own task, panic capture,
/// time limit, error classification) and returns the result the worker would store.
pub async fn run_step(handler: impl StepHandler, context: StepContext) -> StepExecutionResult {
    run_step_with_timeout(handler, context, DEFAULT_TEST_TIMEOUT).await
}

/// [`run_step`] with a time limit of your choosing.
pub async fn run_step_with_timeout(
    handler: impl StepHandler,
    context: StepContext,
    timeout: Duration,
) -> StepExecutionResult {
    let never = CancellationToken::new();
    match executor::run(
        Arc::new(handler),
        "test",
        context,
        timeout,
        "test-worker",
        &never,
    )
    .await
    {
        HandlerOutcome::Finished(result) => *result,
        HandlerOutcome::Aborted => unreachable!("the abort token is never cancelled"),
    }
}
