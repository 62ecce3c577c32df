//! The handler API: what a step handler receives, returns and raises.
//!
//! ```
//! use async_trait::async_trait;
//! use serde_json::json;
//! use tasker_worker::handlers::{ResultExt, StepContext, StepHandler, StepResult};
//!
//! struct Greet;
//!
//! #[async_trait]
//! impl StepHandler for Greet {
//!     async fn execute(&self, context: StepContext) -> tasker_worker::handlers::Result<StepResult> {
//!         let name = context
//!             .task_context()
//!             .get("name")
//!             .and_then(|v| v.as_str())
//!             .ok_or("the task context needs a string 'name'")
//!             .permanent()?;
//!         Ok(StepResult::success(json!({ "greeting": format!("hello {name}") })))
//!     }
//! }
//! ```

mod context;
mod error;
mod registry;
pub(crate) mod result;

use async_trait::async_trait;

pub use context::{StepContext, StepContextBuilder};
pub use error::{ResultExt, StepError};
pub use registry::HandlerRegistry;
pub use result::{StepFailure, StepResult};

/// Result alias for handlers.
pub type Result<T, E = StepError> = std::result::Result<T, E>;

/// Runs one step. Implementations must be safe to call concurrently.
#[async_trait]
pub trait StepHandler: Send + Sync + 'static {
    /// Does the step's work. Return [`StepResult::success`] with the result, or an error
    /// classified as retryable or permanent (see [`StepError`]).
    async fn execute(&self, context: StepContext) -> Result<StepResult>;
}
