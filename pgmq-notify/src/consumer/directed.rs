//! The ids of messages leased to this process ([`QueueEvent::Directed`]), kept by queue
//! until a slot frees up for them, and the queues whose directed notifications may have
//! been lost (so their next fetch looks for its directed messages itself).

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::broadcast;

use super::DirectedIds;
use crate::listener::QueueEvent;
use crate::names::QueueName;

/// Ids of messages leased to this process, by queue index, waiting for a free slot;
/// and the queues whose directed notifications may have been lost.
#[derive(Debug, Default)]
pub(super) struct Directed {
    pub(super) ids: BTreeMap<usize, Vec<i64>>,
    pub(super) missed: BTreeSet<usize>,
}

impl Directed {
    /// Records a listener event: a directed id joins its queue's list (once), and a
    /// reconnect or a lagged receiver marks every queue as possibly missing some.
    pub(super) fn note(
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

    /// Marks each of `queues` queues as possibly missing directed notifications.
    pub(super) fn missed_all(&mut self, queues: usize) {
        self.missed.extend(0..queues);
    }

    /// No ids wait, on any queue.
    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Ids wait on queue `index`.
    pub(super) fn has(&self, index: usize) -> bool {
        self.ids.contains_key(&index)
    }

    /// How many ids wait on queue `index`.
    pub(super) fn len(&self, index: usize) -> usize {
        self.ids.get(&index).map_or(0, Vec::len)
    }

    /// What the next fetch of queue `index` is given: up to `max` of its ids, and
    /// whether it may have missed some (a hint that is handed over once).
    pub(super) fn hand_over(&mut self, index: usize, max: usize) -> DirectedIds {
        DirectedIds {
            ids: self.take(index, max),
            missed: self.missed.remove(&index),
        }
    }

    /// Puts back what a failed fetch was given, ahead of ids heard since.
    pub(super) fn restore(&mut self, index: usize, given: DirectedIds) {
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
    pub(super) fn take(&mut self, index: usize, max: usize) -> Vec<i64> {
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
