//! A consumer of one queue whose messages are handled a batch per transaction, several
//! batches at once.
//!
//! [`run_batches`] calls `process(queue, qty)`, which reads up to `qty` messages and
//! disposes of them itself (typically reading, handling and deleting them in one
//! transaction) and returns how many it read. Up to [`BatchConfig::concurrency`] calls
//! run at once, so one batch's round trips and commit wait overlap another's work: a
//! single serial loop leaves the database idle while it waits. A new batch starts when
//! - a notification for the queue arrives (or one scheduled for a delayed message comes
//!   due), or the listener reconnected or lagged;
//! - the poll interval passes without a batch starting (the safety net);
//! - a batch comes back full (more may be waiting): then as many start as there are
//!   free slots;
//! - a batch failed, after a backoff (100 ms, doubling to 5 s).
//!
//! A reason to read that arrives while every slot is busy is kept until one frees up,
//! and many reasons then start one batch, not many: an idle queue costs one read per
//! notification or poll, never one per slot. On shutdown no new batch starts and the
//! loop waits for those in flight.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::consumer::{DelayedWakes, Wake, sleep_until_some};
use crate::listener::QueueListener;
use crate::names::QueueName;

/// How [`run_batches`] reads.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// The queue.
    pub queue: QueueName,
    /// Messages per batch, at most.
    pub batch_size: usize,
    /// Batches running at once, at most.
    pub concurrency: usize,
    /// Start a batch on this interval when nothing else does; `None` to rely on
    /// notifications alone.
    pub poll_interval: Option<Duration>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs batches of `config.queue` until `shutdown` is cancelled, then waits for those in
/// flight. `listener` is the process-wide LISTEN connection, or `None` in polling-only
/// mode. `process(queue, qty)` returns how many messages it read; an error is logged and
/// the batch retried after a backoff.
pub async fn run_batches<G, GFut, E>(
    process: G,
    listener: Option<QueueListener>,
    config: BatchConfig,
    shutdown: CancellationToken,
) where
    G: Fn(QueueName, i32) -> GFut,
    GFut: Future<Output = Result<usize, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let qty = i32::try_from(config.batch_size.max(1)).unwrap_or(i32::MAX);
    let full = usize::try_from(qty).unwrap_or(usize::MAX);
    let concurrency = config.concurrency.max(1);
    let queues = std::slice::from_ref(&config.queue);
    let mut events = listener.as_ref().map(QueueListener::subscribe);
    let mut wakes = DelayedWakes::default();
    let mut running: JoinSet<Result<usize, E>> = JoinSet::new();
    // Read at start.
    let mut wanted = true;
    let mut fill = false;
    let mut paused_until: Option<Instant> = None;
    let mut backoff = FIRST_BACKOFF;
    let next_poll = || config.poll_interval.map(|d| Instant::now() + d);
    let mut poll_at = next_poll();

    loop {
        // No batch starts once shutdown has begun, whatever else is ready.
        if shutdown.is_cancelled() {
            break;
        }
        if paused_until.is_none() {
            // A wake-up starts one batch; a full batch fills every free slot.
            let target = if fill {
                concurrency
            } else {
                usize::from(wanted)
            };
            let mut started = 0;
            while started < target && running.len() < concurrency {
                running.spawn(process(config.queue.clone(), qty));
                started += 1;
                poll_at = next_poll();
            }
            // A wake-up that found every slot busy waits for the next free one; a full
            // batch's fill need not (the batches running report whether they were full).
            wanted &= started == 0;
            fill = false;
        }
        let poll = sleep_until_some(poll_at);
        let delayed = sleep_until_some(wakes.next());
        let resume = sleep_until_some(paused_until);
        let event = async {
            match events.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let failure = match joined {
                    Ok(Ok(read)) => {
                        backoff = FIRST_BACKOFF;
                        // A full batch may have left more behind.
                        fill |= read >= full;
                        None
                    }
                    Ok(Err(error)) => Some(error.to_string()),
                    Err(join_error) => Some(format!("the batch task ended abnormally: {join_error}")),
                };
                if let Some(error) = failure {
                    tracing::warn!(%error, queue = %config.queue, retry_in_ms = backoff.as_millis() as u64, "processing a batch failed");
                    paused_until = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wanted = true;
                }
            }
            _ = resume => paused_until = None,
            _ = poll => {
                wanted = true;
                poll_at = next_poll();
            }
            _ = delayed => {
                wakes.pop_due(Instant::now());
                wanted = true;
            }
            received = event => match wakes.note(queues, received) {
                Wake::Later => {}
                Wake::Closed => events = None,
                Wake::Queue(_) | Wake::Queues(_) | Wake::All => wanted = true,
            },
        }
    }

    while running.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake queue: `process` takes up to `qty` of what is left, taking 10 ms, and
    /// records how many batches ran at once.
    #[derive(Default)]
    struct Fake {
        left: AtomicUsize,
        running: AtomicUsize,
        most_at_once: AtomicUsize,
        batches: AtomicUsize,
        fail_first: AtomicUsize,
        /// How long a batch takes, in ms (10 when 0).
        batch_ms: AtomicUsize,
    }

    fn process(fake: Arc<Fake>) -> impl Fn(QueueName, i32) -> BoxedBatch {
        {
            move |_queue, qty| {
                let fake = fake.clone();
                Box::pin(async move {
                    fake.batches.fetch_add(1, Ordering::SeqCst);
                    if fake
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return Err("database unavailable".to_string());
                    }
                    let now = fake.running.fetch_add(1, Ordering::SeqCst) + 1;
                    fake.most_at_once.fetch_max(now, Ordering::SeqCst);
                    let want = usize::try_from(qty).unwrap();
                    let taken = fake
                        .left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                            Some(n - n.min(want))
                        })
                        .map(|n| n.min(want))
                        .unwrap_or(0);
                    let ms = match fake.batch_ms.load(Ordering::SeqCst) {
                        0 => 10,
                        ms => ms,
                    };
                    tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                    fake.running.fetch_sub(1, Ordering::SeqCst);
                    Ok(taken)
                })
            }
        }
    }

    type BoxedBatch = std::pin::Pin<Box<dyn Future<Output = Result<usize, String>> + Send>>;

    fn config(concurrency: usize, poll_interval: Option<Duration>) -> BatchConfig {
        BatchConfig {
            queue: QueueName::new("q").unwrap(),
            batch_size: 50,
            concurrency,
            poll_interval,
        }
    }

    async fn run_for(fake: &Arc<Fake>, config: BatchConfig, time: Duration) {
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(time).await;
            stop.cancel();
        });
        run_batches(process(fake.clone()), None, config, shutdown).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_is_drained_by_batches_running_side_by_side() {
        let fake = Arc::new(Fake::default());
        fake.left.store(500, Ordering::SeqCst);
        run_for(&fake, config(2, None), Duration::from_secs(1)).await;
        assert_eq!(fake.left.load(Ordering::SeqCst), 0);
        assert_eq!(fake.most_at_once.load(Ordering::SeqCst), 2);
        // Ten full batches and the empty ones that showed the queue drained.
        assert!(fake.batches.load(Ordering::SeqCst) <= 12);
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_batches_run_at_once_than_allowed() {
        let fake = Arc::new(Fake::default());
        fake.left.store(500, Ordering::SeqCst);
        run_for(&fake, config(1, None), Duration::from_secs(1)).await;
        assert_eq!(fake.left.load(Ordering::SeqCst), 0);
        assert_eq!(fake.most_at_once.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_queue_is_read_once_per_poll_not_once_per_slot() {
        let fake = Arc::new(Fake::default());
        // One read at start, then one per second for 3.5 s.
        run_for(
            &fake,
            config(4, Some(Duration::from_secs(1))),
            Duration::from_millis(3500),
        )
        .await;
        assert_eq!(fake.batches.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wake_up_while_every_slot_is_busy_starts_a_batch_when_one_frees() {
        let fake = Arc::new(Fake::default());
        fake.batch_ms.store(1500, Ordering::SeqCst);
        // The first batch (at 0) finds nothing; messages arrive at 0.5 s; the poll at
        // 1 s finds the only slot busy until 1.5 s.
        let arrive = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            arrive.left.store(30, Ordering::SeqCst);
        });
        run_for(
            &fake,
            config(1, Some(Duration::from_secs(1))),
            Duration::from_millis(1600),
        )
        .await;
        assert_eq!(fake.left.load(Ordering::SeqCst), 0);
    }

    /// Shutdown that begins while a batch runs (here, the batch begins it) starts no
    /// other batch, though the batch came back full. Before, an unbiased `select!`
    /// picked the finished batch or the shutdown at random.
    #[tokio::test]
    async fn no_batch_starts_after_shutdown_begins() {
        for _ in 0..50 {
            let batches = Arc::new(AtomicUsize::new(0));
            let shutdown = CancellationToken::new();
            let (counted, stop) = (batches.clone(), shutdown.clone());
            let process = move |_queue: QueueName, qty: i32| {
                counted.fetch_add(1, Ordering::SeqCst);
                let stop = stop.clone();
                async move {
                    stop.cancel();
                    Ok::<_, String>(usize::try_from(qty).unwrap())
                }
            };
            tokio::time::timeout(
                Duration::from_secs(10),
                run_batches(process, None, config(1, None), shutdown),
            )
            .await
            .unwrap();
            assert_eq!(batches.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_retried_after_a_backoff() {
        let fake = Arc::new(Fake::default());
        fake.left.store(30, Ordering::SeqCst);
        fake.fail_first.store(2, Ordering::SeqCst);
        // Fails at 0 and after 100 ms, succeeds after a further 200 ms; no poll.
        run_for(&fake, config(2, None), Duration::from_millis(290)).await;
        assert_eq!(fake.left.load(Ordering::SeqCst), 30);
        let fake = Arc::new(Fake::default());
        fake.left.store(30, Ordering::SeqCst);
        fake.fail_first.store(2, Ordering::SeqCst);
        run_for(&fake, config(2, None), Duration::from_millis(400)).await;
        assert_eq!(fake.left.load(Ordering::SeqCst), 0);
        assert_eq!(fake.batches.load(Ordering::SeqCst), 3);
    }
}
