//! Recording results: the result stored, the step message deleted and the result
//! message for the orchestration sent, in one statement fenced on the attempt. One
//! submitter task batches the results that finish together (one statement and one
//! commit for them all); a result that fails is retried on its own.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use tokio::sync::{mpsc, oneshot};

use pgmq_notify::QueueName;
use tasker_shared::database::step::{message, result};
use tasker_shared::messaging::StepMessage;
use tasker_shared::results::StepExecutionResult;
use tasker_shared::state_machine::{TransitionOutcome, WorkflowStepState};

use super::Runtime;
use crate::error::{Error, Result};
use crate::executor;

/// Most results submitted in one statement.
const MAX_SUBMIT_BATCH: usize = 64;

/// One attempt at a step, as the worker holds it: the message it came in and the
/// attempt number that fences its result.
#[derive(Debug, Clone)]
pub(super) struct StepAttempt {
    /// The worker queue the message is on.
    pub(super) queue: QueueName,
    pub(super) msg_id: i64,
    /// The attempt this worker runs (the fencing token).
    pub(super) attempt: i32,
    pub(super) message: StepMessage,
}

/// A finished step's result, waiting to be submitted.
pub(super) struct SubmitRequest {
    pub(super) attempt: StepAttempt,
    pub(super) result: Box<StepExecutionResult>,
    pub(super) reply: oneshot::Sender<Result<()>>,
}

impl Runtime {
    /// The result message for the orchestration: the step's ids, and with a success, this
    /// process's handoff offer unless it is stopping or has no slot to spare (its handler
    /// slots are all taken by other steps): a handed step waits for a slot while its
    /// lease runs, so a saturated worker lets the queue spread the work instead.
    fn result_message(&self, message: &StepMessage, success: bool) -> Result<serde_json::Value> {
        let offer = self.handoff.as_ref().filter(|_| {
            let running = self.status.snapshot();
            success
                && running.running
                && usize::try_from(running.in_flight).unwrap_or(usize::MAX)
                    < self.max_in_flight.saturating_sub(1).max(1)
        });
        let message = StepMessage {
            handoff: offer.cloned(),
            handed: None,
            ..message.clone()
        };
        Ok(serde_json::to_value(&message).map_err(tasker_shared::database::Error::from)?)
    }

    /// Submits the results handlers hand in, batching those that arrive while a
    /// submission is under way: one statement and one commit for all of them
    /// ([`result::submit_many`]). A lone result goes alone, exactly as before; a batch that
    /// fails for any reason is redone result by result, each with its retries.
    pub(super) async fn run_submitter(
        self: Arc<Self>,
        mut requests: mpsc::UnboundedReceiver<SubmitRequest>,
    ) {
        while let Some(first) = requests.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_SUBMIT_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            // One statement per worker queue.
            batch.sort_by(|a, b| a.attempt.queue.as_str().cmp(b.attempt.queue.as_str()));
            while !batch.is_empty() {
                let queue = batch[0].attempt.queue.clone();
                let split = batch
                    .iter()
                    .position(|r| r.attempt.queue != queue)
                    .unwrap_or(batch.len());
                let rest = batch.split_off(split);
                self.clone().submit_group(batch).await;
                batch = rest;
            }
        }
    }

    /// Submits one queue's group, once, while later results queue up behind it: together
    /// if it has several results, else alone. What fails is retried result by result on
    /// tasks of its own (the usual retries), so that a result retrying against a
    /// struggling database holds up no other.
    async fn submit_group(self: Arc<Self>, mut group: Vec<SubmitRequest>) {
        if group.len() == 1 {
            let request = group.remove(0);
            match self.submit_once(&request.attempt, &request.result).await {
                Ok(()) => {
                    let _ = request.reply.send(Ok(()));
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "submitting a result failed; retrying it on its own");
                    group.push(request);
                }
            }
        } else {
            match self.submit_together(&group).await {
                Ok(outcomes) => {
                    for (request, outcome) in group.into_iter().zip(outcomes) {
                        let _ = request.reply.send(outcome);
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, results = group.len(), "submitting a batch of results failed; submitting them one by one");
                }
            }
        }
        for request in group.drain(..) {
            let runtime = self.clone();
            tokio::spawn(async move {
                let outcome = runtime.submit(&request.attempt, &request.result).await;
                let _ = request.reply.send(outcome);
            });
        }
    }

    /// [`result::submit_many`] for results of one queue; the outer error is the batch's, the
    /// inner ones are each result's after its conflict handling.
    async fn submit_together(&self, group: &[SubmitRequest]) -> Result<Vec<Result<()>>> {
        let queue = &group[0].attempt.queue;
        let messages = group
            .iter()
            .map(|r| self.result_message(&r.attempt.message, r.result.success))
            .collect::<Result<Vec<_>>>()?;
        let items: Vec<result::Submission<'_>> = group
            .iter()
            .zip(&messages)
            .map(|(r, message)| result::Submission {
                step_uuid: r.attempt.message.step_uuid,
                attempt: r.attempt.attempt,
                result: &r.result,
                msg_id: r.attempt.msg_id,
                message,
            })
            .collect();
        let mut conn = self.pool.acquire().await?;
        let outcomes = result::submit_many(&mut conn, queue, &self.results_queue, &items).await?;
        let mut replies = Vec::with_capacity(group.len());
        for (request, outcome) in group.iter().zip(outcomes) {
            replies.push(
                self.after_submit(&mut conn, &request.attempt, request.result.success, outcome)
                    .await,
            );
        }
        Ok(replies)
    }

    /// Stores the result and tells the orchestration, in one statement, retrying
    /// transient database failures.
    pub(super) async fn submit(
        &self,
        attempt: &StepAttempt,
        result: &StepExecutionResult,
    ) -> Result<()> {
        let mut delay = Duration::from_millis(50);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.submit_once(attempt, result).await {
                Err(Error::Database(e)) if e.is_transient() && tries < 8 => {
                    tracing::warn!(error = %e, tries, "submitting the result failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                // PostgreSQL refused the result itself: running the handler again would
                // produce the same result, so record why it could not be stored instead.
                Err(Error::Database(e)) if e.is_data_rejected() && result.success => {
                    tracing::error!(error = %e, step_uuid = %attempt.message.step_uuid, "the handler's result cannot be stored; recording a failure");
                    let failure = executor::unstorable_result(result, &e.to_string());
                    return self.submit_once(attempt, &failure).await;
                }
                other => return other,
            }
        }
    }

    async fn submit_once(&self, attempt: &StepAttempt, result: &StepExecutionResult) -> Result<()> {
        // One statement, so no explicit transaction: it commits (or not) as a whole, and
        // saves the BEGIN and COMMIT round trips.
        let mut conn = self.pool.acquire().await?;
        let message = self.result_message(&attempt.message, result.success)?;
        let handover = result::Handover {
            worker_queue: &attempt.queue,
            msg_id: attempt.msg_id,
            results_queue: &self.results_queue,
            message: &message,
        };
        let outcome = result::submit_one(
            &mut conn,
            attempt.message.step_uuid,
            attempt.attempt,
            result,
            handover,
        )
        .await?;
        self.after_submit(&mut conn, attempt, result.success, outcome)
            .await
    }

    /// Logs a submission, and drops the step message of one that was fenced off if it
    /// is no longer the step's live message.
    async fn after_submit(
        &self,
        conn: &mut PgConnection,
        attempt: &StepAttempt,
        success: bool,
        outcome: TransitionOutcome<WorkflowStepState>,
    ) -> Result<()> {
        let (step_uuid, number) = (attempt.message.step_uuid, attempt.attempt);
        match outcome {
            TransitionOutcome::Applied { .. } => {
                // The worker message is gone and the result message sent, in the
                // statement that recorded the result.
                tracing::debug!(%step_uuid, attempt = number, success, "result submitted");
            }
            TransitionOutcome::Conflict { actual } => {
                // Fenced: a newer attempt owns the step, or the step was put back on
                // the queue, or its claim was lost in a PostgreSQL crash (claims commit
                // asynchronously) and it is `enqueued` or `waiting_for_retry` again: leave
                // the message alone, it is the step's live message. Or the step was
                // cancelled or resolved meanwhile: drop the message.
                if !matches!(
                    actual,
                    Some(
                        WorkflowStepState::InProgress
                            | WorkflowStepState::Enqueued
                            | WorkflowStepState::WaitingForRetry
                    )
                ) {
                    message::delete(conn, &attempt.queue, attempt.msg_id).await?;
                }
                tracing::warn!(%step_uuid, attempt = number, ?actual, "result of a stale attempt discarded");
            }
        }
        Ok(())
    }
}
