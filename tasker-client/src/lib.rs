//! A client for Tasker's REST API.
//!
//! It owns HTTP transport and error mapping; the request and response types come from
//! `tasker_shared::api`, the same types the server uses, so the wire format cannot drift.
//! It must not depend on `sqlx`, `pgmq-notify`, `tasker-orchestration` or `tasker-worker`.
//! It uses `tasker-shared` without its `db` feature.
//!
//! [`OrchestrationClient`] has one method per route, defined in one module per resource
//! (`tasks`, `steps`, `templates`, `dlq`, `health`) over the shared `transport`
//! (credentials, retries of reads, mapping answers to [`Error`]s).
//!
//! ```no_run
//! # async fn demo() -> Result<(), tasker_client::Error> {
//! use tasker_client::OrchestrationClient;
//! use tasker_shared::api::TaskRequest;
//!
//! let client = OrchestrationClient::new("http://localhost:8080")?;
//! let task = client
//!     .create_task(&TaskRequest::new("examples", "linear_workflow", serde_json::json!({"even_number": 2})))
//!     .await?;
//! println!("{} is {}", task.task_uuid, task.status);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod client;
mod dlq;
mod error;
mod health;
mod steps;
mod tasks;
mod templates;
mod transport;

pub use client::{ClientBuilder, OrchestrationClient};
pub use error::{Error, Result};
pub use tasks::TaskFilters;
