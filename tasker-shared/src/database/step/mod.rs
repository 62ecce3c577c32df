//! Workflow steps: each module owns one operation, with its one-step and many-step
//! forms side by side and its long statements in `.sql` files next to it.
//!
//! - [`read`]: readiness and the API's step details;
//! - [`transition`]: the compare-and-swap that moves a step, and its current state;
//! - [`enqueue`]: `pending` → `enqueued` with the step's message;
//! - [`claim`]: a worker takes a step for a new attempt (from its queue, or one it
//!   read), or gives it back;
//! - [`handoff`]: a worker loads the steps the orchestration claimed for it;
//! - [`result`]: a worker's result, stored under its attempt and handed over;
//! - [`processing`]: what the orchestration loads (its task locked) to process a result;
//! - [`complete`]: the orchestration completes steps and enqueues (or hands) the
//!   children they make ready;
//! - [`retry`]: when a failed step's next attempt becomes visible;
//! - [`operator`]: an operator's reset or recorded result;
//! - [`message`]: the queue operations on a step's messages;
//! - [`history`]: a step's transitions.
//!
//! Siblings depend on [`transition`] (and [`handoff`] on [`claim`]), never the other
//! way round.

pub mod claim;
pub mod complete;
pub mod enqueue;
pub mod handoff;
pub mod history;
pub mod message;
pub mod operator;
pub mod processing;
pub mod read;
pub mod result;
pub mod retry;
pub mod transition;

// TEMPORARY: old paths for callers being moved; removed by the worker refactor.
// The list is at the end of database/mod.rs (`old_step_paths`).
#[doc(hidden)]
pub use super::old_step_paths::*;
