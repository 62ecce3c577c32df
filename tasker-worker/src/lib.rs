//! Tasker's worker runtime: everything between a queue message and a recorded result.
//!
//! This crate owns:
//! - the handler API: [`handlers::StepHandler`], [`handlers::StepContext`],
//!   [`handlers::StepResult`] and [`handlers::StepError`];
//! - the handler registry, keyed by a template step's `handler.callable`;
//! - loading, validating and registering templates ([`task_template_manager`]);
//! - the one start-up path of every worker process, whatever its language
//!   ([`WorkerBuilder`]: templates loaded, handlers checked, schema checked, templates
//!   registered, health endpoint started);
//! - the runtime ([`WorkerCore`], [`runtime`]): claim a step by compare-and-swap, run its
//!   handler under a timeout with its lease extended, and store the result together with
//!   the message that tells the orchestration, in one statement;
//! - a test harness for handler authors ([`testing::run_step`]) and an optional health and
//!   metrics endpoint ([`health`]).
//!
//! It contains no SQL (that is `tasker_shared::database`) and must not depend on
//! `tasker-orchestration`, `tasker-client` or `magnus`; language bridges build on it from
//! outside. Its only use of axum is the health endpoint.

pub mod bootstrap;
pub mod config;
pub mod error;
pub mod executor;
pub mod handlers;
pub mod health;
pub mod metrics;
mod read_gate;
pub mod runtime;
pub mod status;
pub mod task_template_manager;
pub mod testing;

pub use bootstrap::{LoadedWorker, Worker, WorkerBuilder};
pub use config::WorkerConfig;
pub use error::{Error, Result};
pub use runtime::WorkerCore;
