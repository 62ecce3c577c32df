//! A step's messages: its [`StepMessage`] on a worker queue (there while the step is
//! enqueued, running or waiting for a retry) and on the results queue (a worker's
//! report for the orchestration).
//!
//! Thin functions over [`PgmqClient`], each taking an executor so it runs in the
//! caller's transaction, for the queue operations the worker and the orchestration's
//! result processor perform around a step's state changes. Messages sent or deleted in
//! the statement that changes a step are part of that statement
//! ([`super::result::submit_many`], [`super::enqueue::many`], [`super::complete::many`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;

use pgmq_notify::{PgmqClient, QueueMessage, QueueName};

use crate::database::Result;
use crate::messaging::StepMessage;

/// Deletes message `msg_id` of `queue` (a stale step message, or a result processed).
/// Returns whether it still existed.
pub async fn delete<'e>(
    executor: impl PgExecutor<'e>,
    queue: &QueueName,
    msg_id: i64,
) -> Result<bool> {
    Ok(PgmqClient::delete(executor, queue, msg_id).await?)
}

/// Moves message `msg_id` of `queue` to the queue's archive (a message that can never
/// be processed). Returns whether it still existed.
pub async fn archive<'e>(
    executor: impl PgExecutor<'e>,
    queue: &QueueName,
    msg_id: i64,
) -> Result<bool> {
    Ok(PgmqClient::archive(executor, queue, msg_id).await?)
}

/// Extends the lease of message `msg_id` of `queue` to `lease_seconds` from now (a
/// handler still running). Returns whether the message still existed.
pub async fn extend_lease<'e>(
    executor: impl PgExecutor<'e>,
    queue: &QueueName,
    msg_id: i64,
    lease_seconds: i32,
) -> Result<bool> {
    Ok(PgmqClient::set_vt(executor, queue, msg_id, lease_seconds).await?)
}

/// Extends to `lease_seconds` from now the leases of those of `msg_ids` that nobody has
/// read since they were sent (handed steps: leased to one worker by the orchestration).
/// Returns the ids extended.
pub async fn extend_unread<'e>(
    executor: impl PgExecutor<'e>,
    queue: &QueueName,
    msg_ids: &[i64],
    lease_seconds: i32,
) -> Result<Vec<i64>> {
    Ok(PgmqClient::extend_unread(executor, queue, msg_ids, lease_seconds).await?)
}

/// Makes message `msg_id` of `queue` visible at once and notifies the queue's channel,
/// as a send does (a step given back at shutdown, so that workers relying on
/// notifications alone hear of it). Returns whether the message still existed.
pub async fn give_back<'e>(
    executor: impl PgExecutor<'e>,
    queue: &QueueName,
    msg_id: i64,
) -> Result<bool> {
    Ok(PgmqClient::give_back(executor, queue, msg_id).await?)
}

/// Sends a step's message to its worker queue, visible at `visible_at` (the end of its
/// retry's backoff), with the notification carrying the delay: the delayed message is
/// the retry's timer. Returns the message's id.
pub async fn delay_for_retry<'e>(
    executor: impl PgExecutor<'e>,
    queue: &QueueName,
    message: &StepMessage,
    visible_at: DateTime<Utc>,
) -> Result<i64> {
    Ok(PgmqClient::send_with_notify_at(executor, queue, message, visible_at).await?)
}

/// Sends a step's message to the results queue (a result recorded outside a
/// submission, such as a worker's `worker_lost` failure), with its notification.
/// Returns the message's id.
pub async fn send_result<'e>(
    executor: impl PgExecutor<'e>,
    results_queue: &QueueName,
    message: &StepMessage,
) -> Result<i64> {
    Ok(PgmqClient::send_with_notify(executor, results_queue, message, 0).await?)
}

/// Takes (deletes and returns) up to `qty` visible messages of the results queue, oldest
/// first, for a consumer that processes them in the transaction that takes them: if it
/// rolls back, they are back untouched. Bodies are left undecoded, so the caller
/// decides what an unreadable one means.
pub async fn take_results<'e>(
    executor: impl PgExecutor<'e>,
    results_queue: &QueueName,
    qty: i32,
) -> Result<Vec<QueueMessage<Value>>> {
    Ok(PgmqClient::take_with(executor, results_queue, qty).await?)
}

/// Leases up to `qty` visible messages of the results queue for `lease_seconds`, oldest
/// first (a consumer that deletes each message as it processes it). Bodies are left
/// undecoded.
pub async fn lease_results<'e>(
    executor: impl PgExecutor<'e>,
    results_queue: &QueueName,
    lease_seconds: i32,
    qty: i32,
) -> Result<Vec<QueueMessage<Value>>> {
    Ok(PgmqClient::read_with(executor, results_queue, lease_seconds, qty).await?)
}
