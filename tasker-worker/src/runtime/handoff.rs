//! Handoffs, the worker's side: the orchestration claims a ready child for this process
//! in the transaction that completes its parent and names it on the process's channel;
//! the worker loads it with a read ([`handoff::load`]) instead of claiming it.
//!
//! The process holds the ids of the handed steps it has loaded until their handling
//! ends, so a scan after lost notifications never loads a step running here a second
//! time; what such a scan finds beyond the free slots waits here ([`HandedSteps`]) for
//! the next fetches of its queue. At shutdown the steps still handed to the process are
//! given back.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pgmq_notify::QueueName;
use tasker_shared::database::step::claim::Delivery;
use tasker_shared::database::step::{handoff, message};

use super::Runtime;
use super::fetch::ClaimedMessage;
use crate::error::Result;

/// How long a stopping worker waits for the orchestration to act on the offers its
/// last results carried, before giving its handed steps back.
const OFFER_DRAIN: Duration = Duration::from_secs(2);

/// The handed steps this process holds (loaded, handling not yet ended) and those a
/// scan found beyond the free slots, by queue.
#[derive(Debug, Default)]
pub(super) struct HandedSteps {
    held: Mutex<HashSet<(String, i64)>>,
    backlog: Mutex<HashMap<String, Vec<i64>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl HandedSteps {
    pub(super) fn is_held(&self, queue: &QueueName, msg_id: i64) -> bool {
        lock(&self.held).contains(&(queue.as_str().to_string(), msg_id))
    }

    fn hold(&self, queue: &QueueName, msg_ids: impl Iterator<Item = i64>) {
        lock(&self.held).extend(msg_ids.map(|id| (queue.as_str().to_string(), id)));
    }

    /// The handling of a handed step has ended.
    pub(super) fn release(&self, queue: &QueueName, msg_id: i64) {
        lock(&self.held).remove(&(queue.as_str().to_string(), msg_id));
    }

    /// The handed ids found earlier beyond the free slots; taken first by the next fetch.
    pub(super) fn take_backlog(&self, queue: &QueueName) -> Vec<i64> {
        lock(&self.backlog)
            .remove(queue.as_str())
            .unwrap_or_default()
    }

    pub(super) fn add_backlog(&self, queue: &QueueName, msg_id: i64) {
        lock(&self.backlog)
            .entry(queue.as_str().to_string())
            .or_default()
            .push(msg_id);
    }
}

impl Runtime {
    /// Loads the handed steps of `msg_ids` this process does not hold already (a scan
    /// after lost notifications also finds the handed steps running here), and holds
    /// them until their handling ends.
    pub(super) async fn load_handed(
        &self,
        queue: &QueueName,
        token: uuid::Uuid,
        msg_ids: &[i64],
    ) -> Result<Vec<ClaimedMessage>> {
        let msg_ids: Vec<i64> = msg_ids
            .iter()
            .copied()
            .filter(|id| !self.handed.is_held(queue, *id))
            .collect();
        let mut conn = self.pool.acquire().await?;
        let mut deliveries = handoff::load(&mut conn, queue, token, &msg_ids).await?;
        // A step that waited for a slot through most of its lease gets a whole lease
        // before it runs (one write, for these alone): with only moments left, another
        // worker could take it over before the lease keeper's first extension. Those
        // someone read meanwhile are theirs now.
        let lease_ms = i64::from(self.visibility_timeout_seconds) * 1000;
        let short: Vec<i64> = deliveries
            .iter()
            .filter_map(|d| match d {
                Delivery::Claimed {
                    msg_id,
                    lease_left_ms: Some(left),
                    ..
                } if *left < lease_ms / 2 => Some(*msg_id),
                _ => None,
            })
            .collect();
        if !short.is_empty() {
            let extended =
                message::extend_unread(&mut *conn, queue, &short, self.visibility_timeout_seconds)
                    .await?;
            deliveries.retain_mut(|d| match d {
                Delivery::Claimed {
                    msg_id,
                    lease_left_ms,
                    ..
                } if short.contains(msg_id) => {
                    *lease_left_ms = None;
                    extended.contains(msg_id)
                }
                _ => true,
            });
        }
        let mut taken = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery {
                Delivery::Claimed {
                    msg_id,
                    step,
                    lease_left_ms,
                    ..
                } => taken.push(ClaimedMessage {
                    msg_id,
                    message: step.message(),
                    step: *step,
                    lease_left: lease_left_ms
                        .and_then(|ms| u64::try_from(ms).ok())
                        .map(Duration::from_millis),
                    handed: true,
                }),
                other => {
                    tracing::error!(%queue, ?other, "a handed step could not be loaded; it returns when its lease ends")
                }
            }
        }
        if taken.len() < msg_ids.len() {
            tracing::debug!(%queue, heard = msg_ids.len(), taken = taken.len(), "some handed steps were no longer ours");
        }
        self.handed.hold(queue, taken.iter().map(|t| t.msg_id));
        Ok(taken)
    }

    /// Gives back, at shutdown, the steps handed to this process that it never started
    /// (heard too late, or still waiting for a slot): each goes back to `enqueued`, its
    /// attempt not counted, and its message becomes visible to other workers at once.
    ///
    /// A result this process sent with an offer may still wait for the orchestration,
    /// whose handoff would then come after the scan: first it waits, up to
    /// [`OFFER_DRAIN`], until none of its offers is queued (the orchestration takes a
    /// result in the transaction that makes its handoff). What is missed even so (the
    /// orchestration is down) returns when its lease ends.
    pub(super) async fn give_back_handed(&self) {
        let Some(handoff) = &self.handoff else {
            return;
        };
        let deadline = Instant::now() + OFFER_DRAIN;
        loop {
            match handoff::offers_queued(&self.pool, &self.results_queue, handoff.token).await {
                Ok(0) => break,
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(queued) => {
                    tracing::warn!(
                        queued,
                        "results offering a handoff are still queued; steps handed for them return when their lease ends"
                    );
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "checking for queued offers failed");
                    break;
                }
            }
        }
        for queue in &self.queues {
            let ids = match handoff::ids(&self.pool, queue, handoff.token).await {
                Ok(ids) => ids,
                Err(error) => {
                    tracing::warn!(%error, %queue, "looking for handed steps to give back failed; they return when their lease ends");
                    continue;
                }
            };
            let steps = match self.load_handed(queue, handoff.token, &ids).await {
                Ok(steps) => steps,
                Err(error) => {
                    tracing::warn!(%error, %queue, "loading handed steps to give back failed; they return when their lease ends");
                    continue;
                }
            };
            for handed in steps {
                if let Err(error) = self
                    .release(
                        queue,
                        handed.msg_id,
                        handed.step.step_uuid,
                        handed.step.attempt,
                    )
                    .await
                {
                    tracing::warn!(%error, msg_id = handed.msg_id, "giving back a handed step failed; it returns when its lease ends");
                }
            }
        }
    }
}
