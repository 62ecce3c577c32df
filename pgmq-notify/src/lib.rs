//! PGMQ queues with wake-ups pushed through PostgreSQL LISTEN/NOTIFY.
//!
//! This crate owns:
//! - installing PGMQ from SQL when the `pgmq` extension is not installed ([`install`]);
//! - validated queue and channel names ([`names`]);
//! - typed queue operations that run on a pool *or inside the caller's transaction*
//!   ([`PgmqClient`]), including `send_with_notify`, which enqueues and notifies atomically;
//! - the SQL text of those operations, written against each queue's own tables rather
//!   than through PGMQ's dynamic-SQL functions ([`sql`]), for callers that put a send or
//!   a delete inside a larger statement;
//! - one LISTEN connection per process that reconnects with backoff and yields typed
//!   events ([`listener`]);
//! - the read loops built on them: one handler per message ([`consumer`]) or one
//!   transaction per batch ([`batches`]).
//!
//! A notification is only a hint: the queue tables are the truth, and every consumer
//! must also poll so that it stays correct when notifications are lost or disabled.
//!
//! It must not depend on `tasker-shared`, `tasker-orchestration`, `tasker-worker` or
//! `tasker-client` (no Tasker crate at all): it knows queues, not tasks or steps. Its
//! notifications carry the payload of the SQL function `tasker.pgmq_send_with_notify`
//! (installed by the workspace's `migrations/` for SQL callers), which it does not call.

#![warn(missing_docs)]

pub mod batches;
pub mod client;
pub mod consumer;
pub mod error;
pub mod install;
pub mod listener;
pub mod names;
pub mod sql;

pub use batches::BatchConfig;
pub use client::{PgmqClient, QueueMessage};
pub use consumer::ConsumerConfig;
pub use error::{Error, Result};
pub use listener::{QueueEvent, QueueListener};
pub use names::{QueueName, validate_namespace};
