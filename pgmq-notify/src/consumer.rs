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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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
    let mut wakes = DelayedWakes::default();
    let mut error_backoff = Duration::from_millis(100);
    let mut pass = 0usize;

    'outer: loop {
        while tasks.try_join_next().is_some() {}

        // Read until the queues are drained or the slots are full, starting each pass
        // at the next queue so a busy first queue cannot starve the others.
        let mut saturated = false;
        let mut failed = false;
        let n = config.queues.len().max(1);
        pass = pass.wrapping_add(1);
        for i in 0..config.queues.len() {
            let queue = &config.queues[(pass + i) % n];
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

        // Wait for a reason to read again. The poll deadline is fixed for this wait, so
        // a stream of irrelevant events cannot keep pushing it back.
        let poll_at = config.poll_interval.map(|d| Instant::now() + d);
        loop {
            let poll = async {
                match poll_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let delayed = async {
                match wakes.next() {
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
                _ = delayed => { wakes.pop_due(Instant::now()); continue 'outer }
                Some(received) = event => {
                    let mut ready = wakes.note(&config.queues, received);
                    if ready == Wake::Closed {
                        events = None;
                        continue;
                    }
                    if let Some(rx) = events.as_mut() {
                        // Coalesce a burst of wake-ups into one read, keeping the
                        // delayed ones.
                        loop {
                            match rx.try_recv() {
                                Ok(next) => {
                                    if wakes.note(&config.queues, Ok(next)) == Wake::Now {
                                        ready = Wake::Now;
                                    }
                                }
                                Err(broadcast::error::TryRecvError::Lagged(_)) => ready = Wake::Now,
                                Err(_) => break,
                            }
                        }
                    }
                    if ready != Wake::Now {
                        continue;
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

/// What one listener event asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// Read now.
    Now,
    /// Nothing now (another queue's message, or a delayed one that was scheduled).
    Later,
    /// The listener is gone; rely on polling.
    Closed,
}

/// Deadlines of delayed messages announced on our queues: the loop reads when each
/// becomes visible. Bounded; past the bound, polling covers the rest.
#[derive(Debug, Default)]
struct DelayedWakes(BinaryHeap<Reverse<Instant>>);

impl DelayedWakes {
    const MAX: usize = 4096;

    fn note(
        &mut self,
        queues: &[QueueName],
        received: Result<QueueEvent, broadcast::error::RecvError>,
    ) -> Wake {
        match received {
            Ok(QueueEvent::MessageReady {
                queue, delay_ms, ..
            }) => {
                if !queue.is_empty() && !queues.iter().any(|q| q.as_str() == queue) {
                    return Wake::Later;
                }
                if delay_ms == 0 {
                    return Wake::Now;
                }
                if self.0.len() < Self::MAX {
                    self.0
                        .push(Reverse(Instant::now() + Duration::from_millis(delay_ms)));
                }
                Wake::Later
            }
            Ok(QueueEvent::Reconnected) | Err(broadcast::error::RecvError::Lagged(_)) => Wake::Now,
            Err(broadcast::error::RecvError::Closed) => Wake::Closed,
        }
    }

    /// The earliest deadline.
    fn next(&self) -> Option<Instant> {
        self.0.peek().map(|Reverse(at)| *at)
    }

    /// Forgets every deadline up to `now`.
    fn pop_due(&mut self, now: Instant) {
        while self.next().is_some_and(|at| at <= now) {
            self.0.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(queue: &str, delay_ms: u64) -> Result<QueueEvent, broadcast::error::RecvError> {
        Ok(QueueEvent::MessageReady {
            namespace: "ns".to_string(),
            queue: queue.to_string(),
            msg_id: Some(1),
            delay_ms,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn every_delayed_wake_is_kept_in_deadline_order() {
        let queues = [QueueName::new("q").unwrap()];
        let mut wakes = DelayedWakes::default();
        assert_eq!(wakes.note(&queues, ready("q", 300)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("q", 100)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("q", 200)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("other", 50)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("q", 0)), Wake::Now);
        let start = Instant::now();
        let mut fired = Vec::new();
        while let Some(at) = wakes.next() {
            tokio::time::sleep_until(at).await;
            fired.push((Instant::now() - start).as_millis());
            wakes.pop_due(Instant::now());
        }
        assert_eq!(fired, [100, 200, 300]);
    }
}
