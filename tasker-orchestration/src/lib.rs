//! Tasker's orchestration: it decides what runs next and keeps the books.
//!
//! This crate owns:
//! - task creation from a registered template ([`lifecycle::task_initializer`]);
//! - enqueueing ready steps onto `worker_<namespace>_queue`, always in the same
//!   transaction as the state change that made them ready ([`lifecycle::step_enqueuer`]);
//! - processing step results from `orchestration_step_results`, with retries and backoff
//!   ([`lifecycle::result_processor`]), and finalizing tasks ([`lifecycle::task_finalizer`]);
//! - the event loops that drive those from notifications and polling ([`event_systems`]);
//! - the retention job that deletes finished tasks past an age ([`maintenance`]);
//! - the REST API ([`web`]), which the `tasker-server` binary (its own package) serves.
//!
//! It contains no SQL (that is `tasker_shared::database`) and must not depend on
//! `tasker-worker`, `tasker-worker-rust`, `tasker-client`, `reqwest` or `magnus`. Only
//! this crate and the worker's health endpoint know axum.

pub mod config;
pub mod core;
pub mod error;
pub mod event_systems;
pub mod lifecycle;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod web;

pub use config::OrchestrationConfig;
pub use core::OrchestrationCore;
pub use error::{Error, Result};
