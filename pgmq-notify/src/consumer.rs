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
//! - a message was leased to this process by its producer ([`QueueEvent::Directed`]):
//!   the loop reads that queue, handing the fetch the message ids to take first.
//!
//! Each message runs in its own task, holding a slot until its handler returns. On
//! shutdown the loop stops reading and waits for the handlers in flight.
//!
//! [`run`] reads with [`PgmqClient::read`]; [`run_with`] takes a fetch function instead, so a
//! consumer can read and claim in one transaction.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
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
    /// When set, a poll of several queues first asks which of them hold visible
    /// messages ([`PgmqClient::queues_with_visible`]) and reads only those.
    pub probe: Option<PgmqClient>,
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

/// Messages leased to this process ([`QueueEvent::Directed`]) that a fetch takes first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectedIds {
    /// Ids heard on the direct channel for this queue, at most the fetch's `qty`.
    pub ids: Vec<i64>,
    /// Directed notifications for this queue may have been lost since its last fetch
    /// (the listener reconnected, or this consumer fell behind its events): the fetch
    /// should look for its directed messages itself.
    pub missed: bool,
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
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let mut events = listener.as_ref().map(QueueListener::subscribe);
    let mut tasks = JoinSet::new();
    let mut wakes = DelayedWakes::default();
    let mut directed = Directed::default();
    let mut error_backoff = Duration::from_millis(100);
    let mut pass = 0usize;
    let n = config.queues.len().max(1);
    // What the next pass reads: everything at start.
    let mut due = Due::All;
    // The last pass filled every slot, so messages may be waiting on any queue: the next
    // pass reads them all, whatever woke it (a slot can free up and be taken by a
    // wake-up for one queue before the loop sees the handler finish).
    let mut backlog = false;

    'outer: loop {
        while tasks.try_join_next().is_some() {}

        // Read until the due queues are drained or the slots are full, starting each pass
        // at the next queue so a busy first queue cannot starve the others.
        let mut saturated = false;
        let mut failed = false;
        pass = pass.wrapping_add(1);
        if backlog {
            due = Due::All;
        }
        let targets = match std::mem::take(&mut due) {
            Due::Poll => match (&config.probe, config.queues.len()) {
                (Some(probe), len) if len > 1 => {
                    match PgmqClient::queues_with_visible(probe.pool(), &config.queues).await {
                        Ok(visible) => config
                            .queues
                            .iter()
                            .enumerate()
                            .filter(|(_, q)| visible.contains(q))
                            .map(|(i, _)| i)
                            .collect(),
                        Err(error) => {
                            tracing::warn!(%error, "probing queues failed; reading them all");
                            (0..config.queues.len()).collect()
                        }
                    }
                }
                _ => (0..config.queues.len()).collect(),
            },
            Due::All => (0..config.queues.len()).collect(),
            Due::Some(set) => set,
            Due::Nothing => BTreeSet::new(),
        };
        for i in 0..config.queues.len() {
            let index = (pass + i) % n;
            // A queue may be due for its directed messages alone: those are taken, and
            // the queue itself is not read (nothing said it holds anything).
            let read_queue = targets.contains(&index);
            if !read_queue && !directed.has(index) {
                continue;
            }
            let queue = &config.queues[index];
            loop {
                let free = slots.available_permits();
                if free == 0 {
                    saturated = true;
                    break;
                }
                // Nothing is read once shutdown has begun: a worker giving a step back
                // makes its message visible again, and must not take it back.
                if shutdown.is_cancelled() {
                    break 'outer;
                }
                let mut want = free.min(config.batch_size.max(1));
                if !read_queue {
                    want = want.min(directed.len(index));
                }
                let qty = i32::try_from(want).unwrap_or(i32::MAX);
                let handed = DirectedIds {
                    ids: directed.take(index, want),
                    missed: directed.missed.remove(&index),
                };
                let kept = handed.clone();
                let (messages, got) = match fetch(queue.clone(), qty, handed).await {
                    Ok(fetched) => fetched,
                    Err(error) => {
                        // The directed ids (and the hint that some were missed) wait
                        // for the next pass, which the failure schedules.
                        directed.restore(index, kept);
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
                // A pass due only for directed ids goes on while some are left (the
                // fetch may have found some no longer ours) and slots are free.
                if read_queue && got < want || !read_queue && !directed.has(index) {
                    break; // drained
                }
            }
        }

        backlog = saturated;
        if failed {
            tokio::select! {
                _ = shutdown.cancelled() => break 'outer,
                _ = tokio::time::sleep(error_backoff) => {}
            }
            error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
            due = Due::All;
            continue;
        }
        error_backoff = Duration::from_millis(100);

        // Wait for a reason to read again. The poll deadline is fixed for this wait, so
        // a stream of irrelevant events cannot keep pushing it back.
        let poll_at = config.poll_interval.map(|d| Instant::now() + d);
        loop {
            let poll = sleep_until_some(poll_at);
            let delayed = sleep_until_some(wakes.next());
            let event = async {
                match events.as_mut() {
                    Some(rx) => Some(rx.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Shutdown first: a wake-up or a finished handler ready at the same time
                // must not start another read.
                biased;
                _ = shutdown.cancelled() => break 'outer,
                _ = poll => {
                    due.merge(Due::Poll);
                    continue 'outer;
                }
                _ = delayed => {
                    for index in wakes.pop_due(Instant::now()) {
                        due.add(index);
                    }
                    continue 'outer;
                }
                Some(received) = event => {
                    directed.note(&config.queues, &received);
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
                                    directed.note(&config.queues, &Ok(next.clone()));
                                    match wakes.note(&config.queues, Ok(next)) {
                                        Wake::Later | Wake::Closed => {}
                                        now => ready = ready.or(now),
                                    }
                                }
                                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                    directed.missed_all(config.queues.len());
                                    ready = Wake::All;
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    match ready {
                        Wake::Later | Wake::Closed if directed.is_empty() => continue,
                        Wake::Later | Wake::Closed => {}
                        Wake::All => due.merge(Due::All),
                        Wake::Queue(index) => due.add(index),
                        Wake::Queues(set) => due.merge(Due::Some(set)),
                    }
                    if slots.available_permits() > 0 {
                        continue 'outer;
                    }
                    saturated = true;
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    if saturated {
                        // The last pass stopped with messages possibly left anywhere.
                        due.merge(Due::All);
                        continue 'outer;
                    }
                    if !directed.is_empty() {
                        // Directed messages waited for this slot (a pass due for them
                        // alone stops at the free slots without marking saturation).
                        continue 'outer;
                    }
                }
            }
        }
    }

    // Stop reading; let the handlers in flight finish.
    while tasks.join_next().await.is_some() {}
}

/// Ids of messages leased to this process, by queue index, waiting for a free slot;
/// and the queues whose directed notifications may have been lost.
#[derive(Debug, Default)]
struct Directed {
    ids: std::collections::BTreeMap<usize, Vec<i64>>,
    missed: BTreeSet<usize>,
}

impl Directed {
    fn note(
        &mut self,
        queues: &[QueueName],
        received: &Result<QueueEvent, broadcast::error::RecvError>,
    ) {
        match received {
            Ok(QueueEvent::Directed { queue, msg_id }) => {
                if let Some(index) = queues.iter().position(|q| q.as_str() == queue) {
                    let ids = self.ids.entry(index).or_default();
                    if !ids.contains(msg_id) {
                        ids.push(*msg_id);
                    }
                }
            }
            Ok(QueueEvent::Reconnected) | Err(broadcast::error::RecvError::Lagged(_)) => {
                self.missed_all(queues.len());
            }
            _ => {}
        }
    }

    fn missed_all(&mut self, queues: usize) {
        self.missed.extend(0..queues);
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn has(&self, index: usize) -> bool {
        self.ids.contains_key(&index)
    }

    fn len(&self, index: usize) -> usize {
        self.ids.get(&index).map_or(0, Vec::len)
    }

    /// Puts back what a failed fetch was given, ahead of ids heard since.
    fn restore(&mut self, index: usize, given: DirectedIds) {
        if given.missed {
            self.missed.insert(index);
        }
        if !given.ids.is_empty() {
            let ids = self.ids.entry(index).or_default();
            let heard = std::mem::replace(ids, given.ids);
            ids.extend(
                heard
                    .into_iter()
                    .filter(|id| !ids.contains(id))
                    .collect::<Vec<_>>(),
            );
        }
    }

    /// Up to `max` of queue `index`'s ids, oldest first.
    fn take(&mut self, index: usize, max: usize) -> Vec<i64> {
        let Some(ids) = self.ids.get_mut(&index) else {
            return Vec::new();
        };
        let taken: Vec<i64> = ids.drain(..max.min(ids.len())).collect();
        if ids.is_empty() {
            self.ids.remove(&index);
        }
        taken
    }
}

/// Sleeps until `at`; forever without a deadline (a `select!` branch that never fires).
pub(crate) async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Which queues (by index in [`ConsumerConfig::queues`]) the next pass reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Due {
    /// Nothing asked yet (a slot freed without a wake-up).
    #[default]
    Nothing,
    /// The poll interval passed: every queue, or those a probe finds non-empty.
    Poll,
    /// Every queue.
    All,
    /// These queues.
    Some(BTreeSet<usize>),
}

impl Due {
    fn add(&mut self, index: usize) {
        match self {
            Due::Nothing => *self = Due::Some(BTreeSet::from([index])),
            Due::Some(set) => {
                set.insert(index);
            }
            // A poll reads what the probe finds; a notified queue must be read anyway.
            Due::Poll => *self = Due::All,
            Due::All => {}
        }
    }

    fn merge(&mut self, other: Due) {
        match other {
            Due::Nothing => {}
            Due::All => *self = Due::All,
            Due::Poll => match self {
                Due::Nothing => *self = Due::Poll,
                Due::Some(_) => *self = Due::All,
                Due::Poll | Due::All => {}
            },
            Due::Some(set) => {
                for index in set {
                    self.add(index);
                }
            }
        }
    }
}

/// What one listener event asks of the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Read this queue now.
    Queue(usize),
    /// Read these queues now.
    Queues(BTreeSet<usize>),
    /// Read every queue now (the listener reconnected or lagged).
    All,
    /// Nothing now (another queue's message, or a delayed one that was scheduled).
    Later,
    /// The listener is gone; rely on polling.
    Closed,
}

impl Wake {
    /// Both wake-ups' reads.
    fn or(self, other: Wake) -> Wake {
        let indexes = |w: &Wake| match w {
            Wake::Queue(i) => Some(BTreeSet::from([*i])),
            Wake::Queues(set) => Some(set.clone()),
            _ => None,
        };
        match (&self, &other) {
            (Wake::All, _) | (_, Wake::All) => Wake::All,
            (Wake::Later | Wake::Closed, _) => other,
            (_, Wake::Later | Wake::Closed) => self,
            _ => {
                let mut set = indexes(&self).unwrap_or_default();
                set.extend(indexes(&other).unwrap_or_default());
                Wake::Queues(set)
            }
        }
    }
}

/// Deadlines of delayed messages announced on our queues, with the queue each is on:
/// the loop reads that queue when its message becomes visible. Bounded; past the bound,
/// polling covers the rest.
#[derive(Debug, Default)]
pub(crate) struct DelayedWakes(BinaryHeap<Reverse<(Instant, usize)>>);

impl DelayedWakes {
    const MAX: usize = 4096;

    pub(crate) fn note(
        &mut self,
        queues: &[QueueName],
        received: Result<QueueEvent, broadcast::error::RecvError>,
    ) -> Wake {
        match received {
            Ok(QueueEvent::MessageReady {
                queue, delay_ms, ..
            }) => {
                let index = if queue.is_empty() {
                    None
                } else {
                    match queues.iter().position(|q| q.as_str() == queue) {
                        Some(index) => Some(index),
                        None => return Wake::Later,
                    }
                };
                if delay_ms == 0 {
                    return index.map_or(Wake::All, Wake::Queue);
                }
                if self.0.len() < Self::MAX {
                    let at = Instant::now() + Duration::from_millis(delay_ms);
                    // An event that names no queue stands for every queue.
                    match index {
                        Some(index) => self.0.push(Reverse((at, index))),
                        None => {
                            for index in 0..queues.len() {
                                self.0.push(Reverse((at, index)));
                            }
                        }
                    }
                }
                Wake::Later
            }
            // Not a reason to read the queue: the message is taken by id ([`Directed`]).
            Ok(QueueEvent::Directed { .. }) => Wake::Later,
            Ok(QueueEvent::Reconnected) | Err(broadcast::error::RecvError::Lagged(_)) => Wake::All,
            Err(broadcast::error::RecvError::Closed) => Wake::Closed,
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.peek().map(|Reverse((at, _))| *at)
    }

    /// Forgets every deadline up to `now`; returns the queues they were on.
    pub(crate) fn pop_due(&mut self, now: Instant) -> BTreeSet<usize> {
        let mut due = BTreeSet::new();
        while self.next().is_some_and(|at| at <= now) {
            if let Some(Reverse((_, index))) = self.0.pop() {
                due.insert(index);
            }
        }
        due
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

    /// Shutdown that begins while a handler runs (here, the handler begins it) stops the
    /// reads: the handler's finishing, ready at the same moment, starts no other read.
    /// Before, an unbiased `select!` picked either, and a worker shutting down could
    /// claim again the step it had just given back.
    #[tokio::test]
    async fn no_read_after_shutdown_begins() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for _ in 0..50 {
            let fetches = Arc::new(AtomicUsize::new(0));
            let shutdown = CancellationToken::new();
            let config = ConsumerConfig {
                queues: vec![QueueName::new("q").unwrap()],
                visibility_timeout_seconds: 30,
                max_in_flight: 1,
                batch_size: 1,
                poll_interval: Some(Duration::from_secs(3600)),
                probe: None,
            };
            let counted = fetches.clone();
            let fetch = move |_queue: QueueName, _qty: i32, _directed: DirectedIds| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, String>((vec![()], 1)) }
            };
            let stop = shutdown.clone();
            let handler = move |_queue: QueueName, _item: ()| {
                let stop = stop.clone();
                async move { stop.cancel() }
            };
            tokio::time::timeout(
                Duration::from_secs(10),
                run_with(fetch, None, config, shutdown, handler),
            )
            .await
            .unwrap();
            assert_eq!(fetches.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_delayed_wake_is_kept_in_deadline_order() {
        let queues = [QueueName::new("q").unwrap()];
        let mut wakes = DelayedWakes::default();
        assert_eq!(wakes.note(&queues, ready("q", 300)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("q", 100)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("q", 200)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("other", 50)), Wake::Later);
        assert_eq!(wakes.note(&queues, ready("q", 0)), Wake::Queue(0));
        let start = Instant::now();
        let mut fired = Vec::new();
        while let Some(at) = wakes.next() {
            tokio::time::sleep_until(at).await;
            fired.push((Instant::now() - start).as_millis());
            assert_eq!(wakes.pop_due(Instant::now()), BTreeSet::from([0]));
        }
        assert_eq!(fired, [100, 200, 300]);
    }

    #[test]
    fn wakes_name_the_queues_to_read() {
        let queues = [QueueName::new("a").unwrap(), QueueName::new("b").unwrap()];
        let mut wakes = DelayedWakes::default();
        assert_eq!(wakes.note(&queues, ready("b", 0)), Wake::Queue(1));
        assert_eq!(wakes.note(&queues, ready("", 0)), Wake::All);
        assert_eq!(wakes.note(&queues, ready("c", 0)), Wake::Later);
        assert_eq!(wakes.note(&queues, Ok(QueueEvent::Reconnected)), Wake::All);
        assert_eq!(
            Wake::Queue(0).or(Wake::Queue(1)),
            Wake::Queues(BTreeSet::from([0, 1]))
        );
        assert_eq!(Wake::Later.or(Wake::Queue(1)), Wake::Queue(1));
        assert_eq!(Wake::Queue(1).or(Wake::All), Wake::All);
    }

    #[test]
    fn directed_ids_wait_by_queue_until_taken() {
        let queues = [QueueName::new("a").unwrap(), QueueName::new("b").unwrap()];
        let directed = |queue: &str, msg_id| {
            Ok(QueueEvent::Directed {
                queue: queue.to_string(),
                msg_id,
            })
        };
        let mut waiting = Directed::default();
        for (queue, id) in [("b", 7), ("b", 8), ("b", 7), ("c", 9), ("a", 1)] {
            waiting.note(&queues, &directed(queue, id));
        }
        waiting.note(&queues, &ready("b", 0));
        let mut wakes = DelayedWakes::default();
        // Directed messages are no reason to read their queue.
        assert_eq!(wakes.note(&queues, directed("b", 10)), Wake::Later);
        assert_eq!(
            (waiting.len(1), waiting.has(0), waiting.has(2)),
            (2, true, false)
        );
        // A queue's ids come out oldest first, no more than asked, each once.
        assert_eq!(waiting.take(1, 1), vec![7]);
        assert_eq!(waiting.take(1, 5), vec![8]);
        assert!(waiting.take(1, 5).is_empty());
        assert_eq!(waiting.take(0, 5), vec![1]);
        assert!(waiting.is_empty());
        // A reconnect (or falling behind) may have lost some: every queue must look.
        assert!(waiting.missed.is_empty());
        waiting.note(&queues, &Ok(QueueEvent::Reconnected));
        assert_eq!(waiting.missed, BTreeSet::from([0, 1]));
        // What a failed fetch was given comes back first, once, with its hint.
        waiting.missed.clear();
        waiting.note(&queues, &directed("a", 5));
        waiting.restore(
            0,
            DirectedIds {
                ids: vec![3, 5],
                missed: true,
            },
        );
        assert_eq!(waiting.take(0, 10), vec![3, 5]);
        assert_eq!(waiting.missed, BTreeSet::from([0]));
    }

    #[test]
    fn due_reads_grow_and_never_shrink() {
        let mut due = Due::default();
        due.add(1);
        due.add(0);
        assert_eq!(due, Due::Some(BTreeSet::from([0, 1])));
        // A poll on top of named queues reads everything.
        due.merge(Due::Poll);
        assert_eq!(due, Due::All);
        let mut due = Due::default();
        due.merge(Due::Poll);
        assert_eq!(due, Due::Poll);
        due.add(1);
        assert_eq!(due, Due::All);
    }
}
