//! Fetching work: the steps handed to this process first, then a claim from the queue
//! for the slots left (read and claim in one statement), and the disposal of what a
//! claim finds but cannot run (stale, unreadable, or past its attempt budget).

use std::time::Duration;

use pgmq_notify::QueueName;
use pgmq_notify::consumer::DirectedIds;
use tasker_shared::database::step::claim::Delivery;
use tasker_shared::database::step::{self, claim, handoff, message};
use tasker_shared::messaging::StepMessage;

use super::Runtime;
use crate::error::Result;
use crate::executor;

/// A message whose step this worker claimed.
pub(super) struct ClaimedMessage {
    pub(super) msg_id: i64,
    pub(super) message: StepMessage,
    pub(super) step: step::ClaimedStep,
    /// What was left of the lease when the step was taken, if it was not just set.
    pub(super) lease_left: Option<Duration>,
    /// Handed to this process (and held until its handling ends), not claimed.
    pub(super) handed: bool,
}

impl Runtime {
    /// Takes the steps handed to this process among `directed` (up to `qty` message ids
    /// the listener heard; when notifications may have been lost, those it finds on the
    /// queue), then claims from the queue for the slots left. The handed steps cost a
    /// read; a failure to load them is logged and leaves them to their lease, after
    /// which any worker reclaims them.
    pub(super) async fn fetch(
        &self,
        queue: QueueName,
        qty: i32,
        directed: DirectedIds,
    ) -> Result<(Vec<ClaimedMessage>, usize)> {
        let mut taken = Vec::new();
        let mut handed = directed.ids;
        let room = usize::try_from(qty).unwrap_or(0);
        // Handed steps a scan found beyond the free slots of its fetch come first.
        let mut found = self.handed.take_backlog(&queue);
        if let (Some(handoff), true) = (&self.handoff, directed.missed) {
            match handoff::ids(&self.pool, &queue, handoff.token).await {
                Ok(ids) => found.extend(ids),
                Err(error) => {
                    tracing::warn!(%error, %queue, "looking for handed steps after lost notifications failed; they return when their lease ends")
                }
            }
        }
        for id in found {
            if handed.contains(&id) || self.handed.is_held(&queue, id) {
                continue;
            }
            if handed.len() < room {
                handed.push(id);
            } else {
                self.handed.add_backlog(&queue, id);
            }
        }
        if let (Some(handoff), false) = (&self.handoff, handed.is_empty()) {
            match self.load_handed(&queue, handoff.token, &handed).await {
                Ok(steps) => taken = steps,
                Err(error) => {
                    tracing::warn!(%error, %queue, ?handed, "loading handed steps failed; they return when their lease ends")
                }
            }
        }
        // The slots of handed ids no longer ours are not filled from the queue here: a
        // pass due only for handed steps must not read it.
        let rest = qty.saturating_sub(i32::try_from(handed.len()).unwrap_or(i32::MAX));
        if rest == 0 {
            return Ok((taken, handed.len()));
        }
        match self.claim_batch(queue, rest).await {
            Ok((claimed, read)) => {
                taken.extend(claimed);
                Ok((taken, handed.len() + read))
            }
            // The handed steps are loaded and out of the consumer's hands: run them.
            Err(error) if !taken.is_empty() => {
                tracing::warn!(%error, "claiming from the queue failed; running the handed steps");
                Ok((taken, handed.len()))
            }
            Err(error) => Err(error),
        }
    }

    /// Reads up to `qty` messages and claims their steps, in one statement: the leases
    /// and the claims commit together. Then, outside it, stale messages (the step
    /// finished, was cancelled, or someone else holds it) are deleted, unreadable ones
    /// archived, and steps whose every attempt was lost with its worker are failed. A
    /// failure there is logged and left to the message's next delivery, so it never
    /// holds back the steps claimed.
    async fn claim_batch(
        &self,
        queue: QueueName,
        qty: i32,
    ) -> Result<(Vec<ClaimedMessage>, usize)> {
        // The claim commits without waiting for the WAL flush: if PostgreSQL crashes
        // before the flush and loses it, the step is back where it was with its message
        // visible, and a result of this attempt is recorded only if the step is
        // `in_progress` under the same attempt number again (docs/operations.md,
        // Durability); the durable commit of a result flushes every claim before it.
        let mut conn = self.claim_pool.acquire().await?;
        let deliveries = claim::from_queue(
            &mut conn,
            &queue,
            &self.worker_id,
            self.visibility_timeout_seconds,
            qty,
        )
        .await?;
        drop(conn);
        let read = deliveries.len();
        let mut claimed = Vec::with_capacity(read);
        for delivery in deliveries {
            match delivery {
                Delivery::Claimed { msg_id, step, .. } if step.over_budget() => {
                    if let Err(error) = self.fail_lost(&queue, msg_id, &step).await {
                        tracing::warn!(%error, step_uuid = %step.step_uuid, msg_id, "failing a step whose attempts were all lost did not commit; its message will come back");
                    }
                }
                Delivery::Claimed { msg_id, step, .. } => claimed.push(ClaimedMessage {
                    msg_id,
                    message: step.message(),
                    step: *step,
                    lease_left: None,
                    handed: false,
                }),
                Delivery::NotClaimable {
                    msg_id,
                    step_uuid,
                    actual,
                } => {
                    tracing::debug!(%step_uuid, ?actual, "stale step message dropped");
                    if let Err(error) = message::delete(&self.pool, &queue, msg_id).await {
                        tracing::warn!(%error, msg_id, "dropping a stale step message failed; it will come back");
                    }
                }
                Delivery::Broken { msg_id, error } => {
                    // Left to its lease: a later delivery may read it whole.
                    tracing::error!(%queue, msg_id, %error, "a step message could not be claimed");
                }
                Delivery::Unreadable { msg_id, body } => {
                    tracing::error!(%queue, msg_id, %body, "unreadable step message archived");
                    if let Err(error) = message::archive(&self.pool, &queue, msg_id).await {
                        tracing::warn!(%error, msg_id, "archiving an unreadable step message failed; it will come back");
                    }
                }
            }
        }
        Ok((claimed, read))
    }

    /// Records a permanent `worker_lost` failure for a step past its attempt budget (a
    /// worker took it and vanished often enough to use every attempt) and hands it to
    /// the orchestration, in one transaction.
    async fn fail_lost(
        &self,
        queue: &QueueName,
        msg_id: i64,
        step: &claim::ClaimedStep,
    ) -> Result<()> {
        tracing::error!(step_uuid = %step.step_uuid, attempt = step.attempt, max_attempts = step.max_attempts, "step failed: every attempt was lost with its worker");
        let result = executor::lost_worker_result(step, &self.worker_id);
        let step_message = step.message();
        let mut tx = self.pool.begin().await?;
        if step::result::record(&mut tx, step.step_uuid, step.attempt, &result)
            .await?
            .applied()
        {
            message::send_result(&mut *tx, &self.results_queue, &step_message).await?;
        }
        message::delete(&mut *tx, queue, msg_id).await?;
        tx.commit().await?;
        Ok(())
    }
}
