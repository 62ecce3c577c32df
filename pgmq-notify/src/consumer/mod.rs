//! A queue consumer loop: read only as many messages as there are free slots, wake on
//! notifications, and poll as the safety net.
//!
//! The loop reads when
//! - a notification for one of its queues arrives (or one was scheduled for a delayed
//!   message): it reads that queue only;
//! - the listener reconnected or lagged: it reads every queue;
//! - the poll interval passes without a wake-up: it reads every queue, or, with a
//!   [`ConsumerConfig::probe`] and several queues, asks in one query which queues hold
//!   visible messages and reads only those (so an idle consumer of many queues costs one
//!   query per interval, not one per queue);
//! - a slot frees up after a read that filled every free slot (more may be waiting);
//! - a message was leased to this process by its producer
//!   ([`QueueEvent::Directed`](crate::QueueEvent::Directed)):
//!   the loop reads that queue, handing the fetch the message ids to take first.
//!
//! Each message runs in its own task, holding a slot until its handler returns. On
//! shutdown the loop stops reading and waits for the handlers in flight.
//!
//! [`run`] reads with [`PgmqClient::read`]; [`run_with`] takes a fetch function instead, so a
//! consumer can read and claim in one transaction.
//!
//! This file holds the public entry points; `read_loop` the loop itself (its read passes
//! and its wait for a reason to read), `schedule` what the next pass reads and when,
//! `directed` the ids of directed messages waiting for a slot.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{PgmqClient, QueueMessage};
use crate::listener::QueueListener;
use crate::names::QueueName;

mod directed;
mod read_loop;
mod schedule;
#[cfg(test)]
mod tests;

pub(crate) use schedule::{DelayedWakes, Wake};

/// How a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// The queues to read, in order.
    pub queues: Vec<QueueName>,
    /// Lease on each message read, in seconds.
    pub visibility_timeout_seconds: i32,
    /// Handlers running at once, at most.
    pub max_in_flight: usize,
    /// Messages read per query, at most.
    pub batch_size: usize,
    /// Read on this interval when nothing wakes the loop; `None` to rely on
    /// notifications alone.
    pub poll_interval: Option<Duration>,
    /// When set, a poll of several queues first asks which of them hold visible
    /// messages ([`PgmqClient::queues_with_visible`]) and reads only those.
    pub probe: Option<PgmqClient>,
}

/// Messages leased to this process ([`QueueEvent::Directed`](crate::QueueEvent::Directed))
/// that a fetch takes first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectedIds {
    /// Ids heard on the direct channel for this queue, at most the fetch's `qty`.
    pub ids: Vec<i64>,
    /// Directed notifications for this queue may have been lost since its last fetch
    /// (the listener reconnected, or this consumer fell behind its events): the fetch
    /// should look for its directed messages itself.
    pub missed: bool,
}

/// Runs the consumer until `shutdown` is cancelled, then waits for handlers in flight.
///
/// `listener` is the process-wide LISTEN connection, or `None` in polling-only mode.
/// `handler` receives each message with the queue it came from; it must delete or
/// archive the message when done (usually in the same transaction as its work), or
/// leave it to reappear when its lease ends.
pub async fn run<F, Fut>(
    client: PgmqClient,
    listener: Option<QueueListener>,
    config: ConsumerConfig,
    shutdown: CancellationToken,
    handler: F,
) where
    F: Fn(QueueName, QueueMessage<Value>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let vt = config.visibility_timeout_seconds;
    let fetch = move |queue: QueueName, qty: i32| {
        let client = client.clone();
        async move {
            let messages = client.read::<Value>(&queue, vt, qty).await?;
            let read = messages.len();
            Ok::<_, crate::Error>((messages, read))
        }
    };
    let fetch = move |queue: QueueName, qty: i32, _directed: DirectedIds| fetch(queue, qty);
    run_with(fetch, listener, config, shutdown, handler).await;
}

/// Like [`run`], with `fetch(queue, qty, directed)` taking up to `qty` messages and
/// returning the items to handle with the number of messages it consumed (items may be
/// fewer, when the fetch itself disposed of some). The fetch takes the `directed` ones
/// first and reads the rest of `qty` from the queue. Directed ids still waiting for a
/// slot when shutdown begins are dropped: the caller finds its directed messages itself
/// (their lease makes sure they are not lost).
pub async fn run_with<T, E, G, GFut, F, Fut>(
    fetch: G,
    listener: Option<QueueListener>,
    config: ConsumerConfig,
    shutdown: CancellationToken,
    handler: F,
) where
    T: Send + 'static,
    E: std::fmt::Display,
    G: Fn(QueueName, i32, DirectedIds) -> GFut,
    GFut: Future<Output = Result<(Vec<T>, usize), E>>,
    F: Fn(QueueName, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // The listener stays alive (held here) for as long as the loop runs.
    let events = listener.as_ref().map(QueueListener::subscribe);
    read_loop::ReadLoop::new(fetch, handler, events, config, shutdown)
        .run()
        .await;
}

/// Sleeps until `at`; forever without a deadline (a `select!` branch that never fires).
pub(crate) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
