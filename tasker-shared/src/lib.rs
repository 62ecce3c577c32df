//! Tasker's shared domain.
//!
//! This crate owns:
//! - the task and step state machines ([`state_machine`]) and table rows ([`models`]);
//! - task templates and their validation ([`template`]);
//! - queue names and message shapes ([`messaging`]), stored step results ([`results`]);
//! - REST request/response types shared by server and client ([`api`]);
//! - task identity hashing ([`identity`]) and layered configuration ([`config`]);
//! - with feature `db` (default): the only SQL in Tasker, behind typed functions
//!   ([`database`]), and the embedded migrations;
//! - with feature `process`: logging setup and shutdown signals for binaries ([`process`]);
//! - with feature `test-utils`: a fresh, migrated database per test ([`testing`]).
//!
//! It must not depend on `axum`, `reqwest`, `magnus`, `tasker-orchestration`,
//! `tasker-worker` or `tasker-client`. Of the Tasker crates it uses only `pgmq-notify`, and
//! only with the `db` feature: without it the crate has no database dependencies at all,
//! so a REST client can use the API types alone.

pub mod api;
pub mod auth;
pub mod config;
#[cfg(feature = "db")]
pub mod database;
pub mod event_system;
pub mod identity;
pub mod messaging;
pub mod models;
#[cfg(feature = "process")]
pub mod process;
pub mod results;
pub mod state_machine;
pub mod template;
#[cfg(feature = "test-utils")]
pub mod testing;
