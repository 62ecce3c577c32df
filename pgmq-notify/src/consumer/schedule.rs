//! What the consumer's next pass reads, and when: the queues that are due ([`Due`]),
//! what one listener event asks for ([`Wake`]), and the deadlines of delayed messages
//! ([`DelayedWakes`], shared with [`crate::batches`]).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::listener::QueueEvent;
use crate::names::QueueName;

/// Which queues (by index in [`ConsumerConfig::queues`](super::ConsumerConfig::queues))
/// the next pass reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) enum Due {
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
    /// Adds queue `index`, which a notification named.
    pub(super) fn add(&mut self, index: usize) {
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

    /// Adds every queue `other` asks for; the result reads at least what both read.
    pub(super) fn merge(&mut self, other: Due) {
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
    pub(super) fn or(self, other: Wake) -> Wake {
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

    /// What a listener event asks for now; a delayed message's deadline is kept for
    /// later.
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
                self.schedule(queues.len(), index, Duration::from_millis(delay_ms));
                Wake::Later
            }
            // Not a reason to read the queue: the message is taken by id
            // ([`Directed`](super::directed::Directed)).
            Ok(QueueEvent::Directed { .. }) => Wake::Later,
            Ok(QueueEvent::Reconnected) | Err(broadcast::error::RecvError::Lagged(_)) => Wake::All,
            Err(broadcast::error::RecvError::Closed) => Wake::Closed,
        }
    }

    /// Remembers to read queue `index` (every one of `queues` when `None`: an event that
    /// names no queue stands for every queue) after `delay`, while there is room.
    fn schedule(&mut self, queues: usize, index: Option<usize>, delay: Duration) {
        if self.0.len() >= Self::MAX {
            return;
        }
        let at = Instant::now() + delay;
        match index {
            Some(index) => self.0.push(Reverse((at, index))),
            None => {
                for index in 0..queues {
                    self.0.push(Reverse((at, index)));
                }
            }
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
