//! The task lifecycle, one file per phase. Every function here runs inside a
//! transaction it or its caller owns, so a phase and the messages it sends commit
//! together.

pub mod backoff;
pub mod result_processor;
pub mod staleness;
pub mod step_actions;
pub mod step_enqueuer;
pub mod task_cancellation;
pub mod task_finalizer;
pub mod task_initializer;
