//! A queue consumer loop: read only as many messages as there are free slots, wake on
//! notifications, and poll as the safety net.
//!
//! The loop reads when
//! - a notification for one of its queues arrives (or one was scheduled for a delayed
//!   message), or the listener reconnected or lagged;
//! - the poll interval passes without a wake-up;
//! - a slot frees up after a read that filled every free slot (more may be waiting).
//!
//! Each message runs in its own task, holding a slot until its handler returns. On
//! shutdown the loop stops reading and waits for the handlers in flight.
//!
//! [`run`] reads with `pgmq.read`; [`run_with`] takes a fetch function instead, so a
//! consumer can read and claim in one transaction.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{PgmqClient, QueueMessage};
use crate::listener::{QueueEvent, QueueListener};
use crate::names::QueueName;

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
    run_with(fetch, listener, config, shutdown, handler).await;
}

/// Like [`run`], with `fetch(queue, qty)` reading up to `qty` messages and returning the
/// items to handle with the number of messages it read (items may be fewer, when the
/// fetch itself disposed of some).
pub async fn run_with<T, E, G, GFut, F, Fut>(
    fetch: G,
    listener: Option<QueueListener>,
    config: ConsumerConfig,
    shutdown: CancellationToken,
    handler: F,
) where
    T: Send + 'static,
    E: std::fmt::Display,
    G: Fn(QueueName, i32) -> GFut,
    GFut: Future<Output = Result<(Vec<T>, usize), E>>,
    F: Fn(QueueName, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let mut events = listener.as_ref().map(QueueListener::subscribe);
    let mut tasks = JoinSet::new();
    let mut wake_at: Option<Instant> = None;
    let mut error_backoff = Duration::from_millis(100);

    'outer: loop {
        while tasks.try_join_next().is_some() {}

        // Read until the queues are drained or the slots are full.
        let mut saturated = false;
        let mut failed = false;
        for queue in &config.queues {
            loop {
                let free = slots.available_permits();
                if free == 0 {
                    saturated = true;
                    break;
                }
                let want = free.min(config.batch_size.max(1));
                let qty = i32::try_from(want).unwrap_or(i32::MAX);
                let (messages, got) = match fetch(queue.clone(), qty).await {
                    Ok(fetched) => fetched,
                    Err(error) => {
                        tracing::warn!(%error, %queue, "reading queue failed");
                        failed = true;
                        break;
                    }
                };
                for message in messages {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        break; // cannot happen: we read no more than the free slots
                    };
                    let handler = handler.clone();
                    let queue = queue.clone();
                    tasks.spawn(async move {
                        handler(queue, message).await;
                        drop(permit);
                    });
                }
                if got < want {
                    break; // drained
                }
            }
        }

        if failed {
            tokio::select! {
                _ = shutdown.cancelled() => break 'outer,
                _ = tokio::time::sleep(error_backoff) => {}
            }
            error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        error_backoff = Duration::from_millis(100);

        // Wait for a reason to read again.
        loop {
            let poll = async {
                match config.poll_interval {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            let delayed = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let event = async {
                match events.as_mut() {
                    Some(rx) => Some(rx.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break 'outer,
                _ = poll => continue 'outer,
                _ = delayed => { wake_at = None; continue 'outer }
                Some(received) = event => {
                    match received {
                        Ok(QueueEvent::MessageReady { queue, delay_ms, .. }) => {
                            if !queue.is_empty() && !config.queues.iter().any(|q| q.as_str() == queue) {
                                continue;
                            }
                            if delay_ms > 0 {
                                let at = Instant::now() + Duration::from_millis(delay_ms);
                                wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                                continue;
                            }
                        }
                        Ok(QueueEvent::Reconnected) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => { events = None; continue; }
                    }
                    // Coalesce a burst of wake-ups into one read.
                    if let Some(rx) = events.as_mut() {
                        while rx.try_recv().is_ok() {}
                    }
                    if slots.available_permits() > 0 {
                        continue 'outer;
                    }
                    saturated = true;
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    if saturated {
                        continue 'outer;
                    }
                }
            }
        }
    }

    // Stop reading; let the handlers in flight finish.
    while tasks.join_next().await.is_some() {}
}
