//! The consumer's loop: a read pass over the due queues, then a wait for the next reason
//! to read, until shutdown.
//!
//! A pass reads each due queue until it is drained or the slots are full, starting at the
//! next queue each pass so a busy first queue cannot starve the others. A failed read
//! backs off (100 ms, doubling to 5 s) and then reads every queue. The wait coalesces a
//! burst of notifications into one pass.

use std::collections::BTreeSet;
use std::future::Future;
use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::directed::Directed;
use super::schedule::{DelayedWakes, Due, Wake};
use super::{ConsumerConfig, DirectedIds, sleep_until_some};
use crate::client::PgmqClient;
use crate::listener::QueueEvent;
use crate::names::QueueName;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The state of one running consumer; `G` is its fetch, `F` its handler.
pub(super) struct ReadLoop<G, F> {
    fetch: G,
    handler: F,
    config: ConsumerConfig,
    shutdown: CancellationToken,
    /// One permit per handler that may run.
    slots: Arc<Semaphore>,
    /// The listener's events; `None` in polling-only mode or once the listener is gone.
    events: Option<broadcast::Receiver<QueueEvent>>,
    /// The handlers running.
    tasks: JoinSet<()>,
    wakes: DelayedWakes,
    directed: Directed,
    error_backoff: Duration,
    /// Passes made, so each starts at the next queue.
    pass: usize,
    /// What the next pass reads: everything at start.
    due: Due,
    /// The last pass filled every slot, so messages may be waiting on any queue: the
    /// next pass reads them all, whatever woke it (a slot can free up and be taken by a
    /// wake-up for one queue before the loop sees the handler finish).
    backlog: bool,
}

/// How a pass ended, when shutdown did not end it.
#[derive(Debug, Default)]
struct Pass {
    /// Some queue stopped at full slots.
    saturated: bool,
    /// Some read failed.
    failed: bool,
}

/// How reading one queue in a pass ended.
#[derive(Debug)]
enum QueueRead {
    /// It holds no more (or, for a queue due for its directed ids alone, none are left).
    Drained,
    /// Every slot is taken.
    Saturated,
    /// The fetch failed.
    Failed,
}

/// What ended a wait.
#[derive(Debug)]
enum Woke {
    /// Shutdown began.
    Shutdown,
    /// The poll interval passed.
    Poll,
    /// A delayed message became visible.
    Delayed,
    /// The listener sent (or lost) something.
    Event(Result<QueueEvent, broadcast::error::RecvError>),
    /// A handler returned, freeing its slot.
    HandlerDone,
}

impl<T, E, G, GFut, F, Fut> ReadLoop<G, F>
where
    T: Send + 'static,
    E: std::fmt::Display,
    G: Fn(QueueName, i32, DirectedIds) -> GFut,
    GFut: Future<Output = Result<(Vec<T>, usize), E>>,
    F: Fn(QueueName, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    pub(super) fn new(
        fetch: G,
        handler: F,
        events: Option<broadcast::Receiver<QueueEvent>>,
        config: ConsumerConfig,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            fetch,
            handler,
            slots: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            shutdown,
            events,
            tasks: JoinSet::new(),
            wakes: DelayedWakes::default(),
            directed: Directed::default(),
            error_backoff: FIRST_BACKOFF,
            pass: 0,
            due: Due::All,
            backlog: false,
        }
    }

    /// Reads and waits until shutdown, then lets the handlers in flight finish.
    pub(super) async fn run(mut self) {
        loop {
            while self.tasks.try_join_next().is_some() {}
            let Continue(pass) = self.read_pass().await else {
                break;
            };
            self.backlog = pass.saturated;
            let next = if pass.failed {
                self.back_off().await
            } else {
                self.error_backoff = FIRST_BACKOFF;
                self.wait(pass.saturated).await
            };
            if next.is_break() {
                break;
            }
        }
        while self.tasks.join_next().await.is_some() {}
    }

    /// Reads the due queues until each is drained or the slots are full; breaks when
    /// shutdown has begun.
    async fn read_pass(&mut self) -> ControlFlow<(), Pass> {
        let mut outcome = Pass::default();
        self.pass = self.pass.wrapping_add(1);
        if self.backlog {
            self.due = Due::All;
        }
        let targets = self.targets().await;
        let n = self.config.queues.len().max(1);
        for i in 0..self.config.queues.len() {
            let index = (self.pass + i) % n;
            // A queue may be due for its directed messages alone: those are taken, and
            // the queue itself is not read (nothing said it holds anything).
            let read_queue = targets.contains(&index);
            if !read_queue && !self.directed.has(index) {
                continue;
            }
            match self.read_queue(index, read_queue).await? {
                QueueRead::Drained => {}
                QueueRead::Saturated => outcome.saturated = true,
                QueueRead::Failed => outcome.failed = true,
            }
        }
        Continue(outcome)
    }

    /// The indexes of the queues this pass reads (taking what was due); a poll of
    /// several queues with a probe reads only those holding visible messages.
    async fn targets(&mut self) -> BTreeSet<usize> {
        let every = 0..self.config.queues.len();
        match std::mem::take(&mut self.due) {
            Due::Poll => match (&self.config.probe, self.config.queues.len()) {
                (Some(probe), len) if len > 1 => {
                    match PgmqClient::queues_with_visible(probe.pool(), &self.config.queues).await {
                        Ok(visible) => every
                            .filter(|&i| visible.contains(&self.config.queues[i]))
                            .collect(),
                        Err(error) => {
                            tracing::warn!(%error, "probing queues failed; reading them all");
                            every.collect()
                        }
                    }
                }
                _ => every.collect(),
            },
            Due::All => every.collect(),
            Due::Some(set) => set,
            Due::Nothing => BTreeSet::new(),
        }
    }

    /// Fetches from queue `index` until it is drained or the slots are full, starting a
    /// handler per item; `read_queue` false takes its directed ids only. Breaks when
    /// shutdown has begun.
    async fn read_queue(&mut self, index: usize, read_queue: bool) -> ControlFlow<(), QueueRead> {
        let queue = self.config.queues[index].clone();
        loop {
            let free = self.slots.available_permits();
            if free == 0 {
                return Continue(QueueRead::Saturated);
            }
            // Nothing is read once shutdown has begun: a worker giving a step back
            // makes its message visible again, and must not take it back.
            if self.shutdown.is_cancelled() {
                return Break(());
            }
            let mut want = free.min(self.config.batch_size.max(1));
            if !read_queue {
                want = want.min(self.directed.len(index));
            }
            let qty = i32::try_from(want).unwrap_or(i32::MAX);
            let handed = self.directed.hand_over(index, want);
            let kept = handed.clone();
            let (items, got) = match (self.fetch)(queue.clone(), qty, handed).await {
                Ok(fetched) => fetched,
                Err(error) => {
                    // The directed ids (and the hint that some were missed) wait for the
                    // next pass, which the failure schedules.
                    self.directed.restore(index, kept);
                    tracing::warn!(%error, %queue, "reading queue failed");
                    return Continue(QueueRead::Failed);
                }
            };
            self.start_handlers(&queue, items);
            // A pass due only for directed ids goes on while some are left (the fetch
            // may have found some no longer ours) and slots are free.
            if read_queue && got < want || !read_queue && !self.directed.has(index) {
                return Continue(QueueRead::Drained);
            }
        }
    }

    /// Runs the handler on each item in a task of its own, holding a slot until it
    /// returns.
    fn start_handlers(&mut self, queue: &QueueName, items: Vec<T>) {
        for item in items {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                break; // cannot happen: we read no more than the free slots
            };
            let handler = self.handler.clone();
            let queue = queue.clone();
            self.tasks.spawn(async move {
                handler(queue, item).await;
                drop(permit);
            });
        }
    }

    /// Sleeps after a failed read (doubling each time); then every queue is due.
    async fn back_off(&mut self) -> ControlFlow<()> {
        tokio::select! {
            _ = self.shutdown.cancelled() => return Break(()),
            _ = tokio::time::sleep(self.error_backoff) => {}
        }
        self.error_backoff = (self.error_backoff * 2).min(MAX_BACKOFF);
        self.due = Due::All;
        Continue(())
    }

    /// Waits for a reason to read again; breaks on shutdown. `saturated`: the last pass
    /// stopped at full slots. The poll deadline is fixed for this wait, so a stream of
    /// irrelevant events cannot keep pushing it back.
    async fn wait(&mut self, mut saturated: bool) -> ControlFlow<()> {
        let poll_at = self.config.poll_interval.map(|d| Instant::now() + d);
        loop {
            match self.next_wake(poll_at).await {
                Woke::Shutdown => return Break(()),
                Woke::Poll => {
                    self.due.merge(Due::Poll);
                    return Continue(());
                }
                Woke::Delayed => {
                    for index in self.wakes.pop_due(Instant::now()) {
                        self.due.add(index);
                    }
                    return Continue(());
                }
                Woke::Event(received) => {
                    if self.hear(received) {
                        if self.slots.available_permits() > 0 {
                            return Continue(());
                        }
                        saturated = true;
                    }
                }
                Woke::HandlerDone => {
                    if saturated {
                        // The last pass stopped with messages possibly left anywhere.
                        self.due.merge(Due::All);
                        return Continue(());
                    }
                    if !self.directed.is_empty() {
                        // Directed messages waited for this slot (a pass due for them
                        // alone stops at the free slots without marking saturation).
                        return Continue(());
                    }
                }
            }
        }
    }

    /// The first of: shutdown, the poll deadline, a delayed message's deadline, a
    /// listener event, a handler finishing.
    async fn next_wake(&mut self, poll_at: Option<Instant>) -> Woke {
        let poll = sleep_until_some(poll_at);
        let delayed = sleep_until_some(self.wakes.next());
        let events = self.events.as_mut();
        let event = async move {
            match events {
                Some(rx) => Some(rx.recv().await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Shutdown first: a wake-up or a finished handler ready at the same time
            // must not start another read.
            biased;
            _ = self.shutdown.cancelled() => Woke::Shutdown,
            _ = poll => Woke::Poll,
            _ = delayed => Woke::Delayed,
            Some(received) = event => Woke::Event(received),
            Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => Woke::HandlerDone,
        }
    }

    /// Takes in a listener event and the burst queued behind it, noting directed ids
    /// and delayed messages and marking the queues due; returns whether to read now.
    fn hear(&mut self, received: Result<QueueEvent, broadcast::error::RecvError>) -> bool {
        self.directed.note(&self.config.queues, &received);
        let ready = self.wakes.note(&self.config.queues, received);
        if ready == Wake::Closed {
            self.events = None;
            return false;
        }
        match self.coalesce(ready) {
            Wake::Later | Wake::Closed if self.directed.is_empty() => return false,
            Wake::Later | Wake::Closed => {}
            Wake::All => self.due.merge(Due::All),
            Wake::Queue(index) => self.due.add(index),
            Wake::Queues(set) => self.due.merge(Due::Some(set)),
        }
        true
    }

    /// Adds to `ready` the events already waiting, so a burst of wake-ups makes one
    /// read (the delayed ones are kept for later).
    fn coalesce(&mut self, mut ready: Wake) -> Wake {
        let Some(rx) = self.events.as_mut() else {
            return ready;
        };
        loop {
            match rx.try_recv() {
                Ok(next) => {
                    self.directed.note(&self.config.queues, &Ok(next.clone()));
                    match self.wakes.note(&self.config.queues, Ok(next)) {
                        Wake::Later | Wake::Closed => {}
                        now => ready = ready.or(now),
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.directed.missed_all(self.config.queues.len());
                    ready = Wake::All;
                }
                Err(_) => return ready,
            }
        }
    }
}
