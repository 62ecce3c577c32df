//! Tasks: each module owns one operation, its long statements in `.sql` files next to
//! it.
//!
//! - [`create`]: a task with its steps, edges and history (and its root steps
//!   enqueued), in one statement;
//! - [`read`]: one task, a page of tasks, a task's execution context, the tasks with
//!   ready steps;
//! - [`transition`]: the task's row lock, the compare-and-swap that moves it, its
//!   current state, and the settled notification;
//! - [`finalize`]: completing a task whose steps are all done, in one statement;
//! - [`history`]: a task's transitions.
//!
//! [`finalize`] depends on [`transition`], never the other way round.

pub mod create;
pub mod finalize;
pub mod history;
pub mod read;
pub mod transition;

// TEMPORARY: old paths for callers being moved; removed by the worker refactor.
// The list is at the end of database/mod.rs (`old_task_paths`).
#[doc(hidden)]
pub use super::old_task_paths::*;
