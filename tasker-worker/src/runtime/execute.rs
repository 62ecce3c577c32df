//! Running a claimed step: its handler under the step's timeout with panics caught,
//! the message's lease extended while it runs, and the result handed to the submitter;
//! or, when the shutdown grace period ends first, the step given back.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use pgmq_notify::QueueName;
use tasker_shared::database::step::{claim, message};

use super::Runtime;
use super::fetch::ClaimedMessage;
use super::submit::{StepAttempt, SubmitRequest};
use crate::error::{Error, Result};
use crate::executor::{self, HandlerOutcome};
use crate::metrics;

impl Runtime {
    /// Runs one claimed or handed step to its end; a failure to record its result leaves
    /// the message to come back when its lease ends.
    pub(super) async fn handle(&self, queue: QueueName, claimed: ClaimedMessage) {
        let ClaimedMessage {
            msg_id,
            message,
            step,
            lease_left,
            handed,
        } = claimed;
        let span = tracing::info_span!(
            "step",
            step_uuid = %step.step_uuid,
            task_uuid = %step.task_uuid,
            correlation_id = %step.correlation_id,
            step = %step.step_name,
            attempt = step.attempt
        );
        let attempt = StepAttempt {
            queue,
            msg_id,
            attempt: step.attempt,
            message,
        };
        if let Err(error) = self
            .run_claimed(&attempt, step, lease_left)
            .instrument(span)
            .await
        {
            // The message stays on the queue and reappears when its lease ends.
            tracing::warn!(%error, step_uuid = %attempt.message.step_uuid, msg_id, "step execution failed; the message will be redelivered");
        }
        if handed {
            self.handed.release(&attempt.queue, msg_id);
        }
    }

    async fn run_claimed(
        &self,
        attempt: &StepAttempt,
        claimed: claim::ClaimedStep,
        lease_left: Option<Duration>,
    ) -> Result<()> {
        let namespace = claimed.namespace.clone();
        let timeout = claimed
            .timeout_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.default_step_timeout);
        let callable = claimed.handler_callable.clone();
        self.status.claimed();
        metrics::claimed(&namespace);
        let clock = Instant::now();

        let lease = self.keep_lease(attempt.queue.clone(), attempt.msg_id, lease_left);
        let outcome = executor::run_registered(
            &self.registry,
            &callable,
            claimed.into(),
            timeout,
            &self.worker_id,
            &self.abort,
        )
        .await;

        let result = match outcome {
            HandlerOutcome::Finished(result) => result,
            HandlerOutcome::Aborted => {
                lease.cancel();
                self.status.finished(None);
                metrics::finished(&namespace, None, clock.elapsed());
                return self
                    .release(
                        &attempt.queue,
                        attempt.msg_id,
                        attempt.message.step_uuid,
                        attempt.attempt,
                    )
                    .await;
            }
        };
        self.status.finished(Some(result.success));
        metrics::finished(&namespace, Some(result.success), clock.elapsed());
        // The lease is kept until the result is recorded: a result waiting for the
        // submitter, or for a database that is slow to answer, must not let the step
        // be delivered again and run twice.
        let _lease = lease.drop_guard();
        let (reply, answer) = oneshot::channel();
        let request = SubmitRequest {
            attempt: attempt.clone(),
            result,
            reply,
        };
        if let Err(mpsc::error::SendError(request)) = self.submissions.send(request) {
            // No submitter (it only stops after every handler): submit directly.
            return self.submit(attempt, &request.result).await;
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::SubmitterGone),
        }
    }

    /// Extends the message's lease every half lease while the handler runs, so a long
    /// healthy step is never delivered to a second worker. The first extension comes
    /// at half of `left` when less than a whole lease is left (a handed step's lease
    /// began at the handoff).
    fn keep_lease(
        &self,
        queue: QueueName,
        msg_id: i64,
        left: Option<Duration>,
    ) -> CancellationToken {
        let stop = CancellationToken::new();
        let pool = self.pool.clone();
        let vt = self.visibility_timeout_seconds;
        let every = Duration::from_millis((u64::try_from(vt).unwrap_or(30) * 1000 / 2).max(100));
        let mut next = left.map_or(every, |left| (left / 2).min(every));
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(next) => {}
                }
                next = every;
                if let Err(error) = message::extend_lease(&pool, &queue, msg_id, vt).await {
                    tracing::warn!(%error, msg_id, "extending the lease failed");
                }
            }
        });
        stop
    }

    /// Gives a step whose handler was stopped by shutdown (or a handed step never
    /// started) back to the queue at once, recording no result.
    pub(super) async fn release(
        &self,
        queue: &QueueName,
        msg_id: i64,
        step_uuid: uuid::Uuid,
        attempt: i32,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if claim::release(&mut tx, step_uuid, attempt, &self.worker_id).await? {
            // Notified, as a send is: a worker that relies on notifications alone
            // (`EventDrivenOnly`) must hear that the step is back.
            message::give_back(&mut *tx, queue, msg_id).await?;
        }
        tx.commit().await?;
        tracing::info!(%step_uuid, attempt, "step given back: the worker is shutting down");
        Ok(())
    }
}
