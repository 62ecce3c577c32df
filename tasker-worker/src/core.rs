//! `WorkerCore`: claims steps, runs handlers, records results.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use pgmq_notify::consumer::{self, ConsumerConfig, DirectedIds};
use pgmq_notify::{PgmqClient, QueueListener, QueueName};
use tasker_shared::database::claim::{self, Delivery};
use tasker_shared::database::{self, step, submit};
use tasker_shared::messaging::{
    HandoffRequest, ORCHESTRATION_STEP_RESULTS, StepMessage, handoff_channel,
};
use tasker_shared::results::StepExecutionResult;
use tasker_shared::state_machine::{TransitionOutcome, WorkflowStepState};

use crate::config::WorkerConfig;
use crate::error::{Error, Result};
use crate::executor::{self, HandlerOutcome};
use crate::handlers::HandlerRegistry;
use crate::metrics;
use crate::read_gate::ReadGate;
use crate::status::WorkerStatus;

/// A connected worker, ready to [`run`](Self::run).
#[derive(Debug)]
pub struct WorkerCore {
    config: WorkerConfig,
    pool: PgPool,
    registry: Arc<HandlerRegistry>,
    namespaces: Vec<String>,
    status: Arc<WorkerStatus>,
}

struct Runtime {
    pool: PgPool,
    /// For the claim only: its commit does not wait for the WAL flush.
    claim_pool: PgPool,
    registry: Arc<HandlerRegistry>,
    worker_id: String,
    visibility_timeout_seconds: i32,
    default_step_timeout: Duration,
    results_queue: QueueName,
    status: Arc<WorkerStatus>,
    /// Cancelled when the shutdown grace period ends: handlers still running are
    /// stopped and their steps given back.
    abort: CancellationToken,
    /// Results to submit, for [`Runtime::run_submitter`].
    submissions: mpsc::UnboundedSender<SubmitRequest>,
    /// This process's offer to run the next step of a chain, sent with successful
    /// results (None: handoffs off, or no notifications to hear them on).
    handoff: Option<HandoffRequest>,
    /// Handler slots.
    max_in_flight: usize,
    /// The worker queues served.
    queues: Vec<QueueName>,
    /// Handed messages (queue, msg_id) loaded and not yet done with.
    held: std::sync::Mutex<std::collections::HashSet<(String, i64)>>,
    /// Handed messages a scan found beyond the free slots, by queue, taken first by the
    /// next fetches of that queue.
    backlog: std::sync::Mutex<std::collections::HashMap<String, Vec<i64>>>,
}

/// A finished step's result, waiting to be submitted.
struct SubmitRequest {
    queue: QueueName,
    msg_id: i64,
    message: StepMessage,
    attempt: i32,
    result: Box<StepExecutionResult>,
    reply: oneshot::Sender<Result<()>>,
}

/// Most results submitted in one statement.
const MAX_SUBMIT_BATCH: usize = 64;

/// How long a stopping worker waits for the orchestration to act on the offers its
/// last results carried, before giving its handed steps back.
const OFFER_DRAIN: Duration = Duration::from_secs(2);

impl WorkerCore {
    /// Connects, checks the schema and makes sure every served namespace has its queue.
    pub async fn new(
        config: WorkerConfig,
        registry: HandlerRegistry,
        namespaces: Vec<String>,
    ) -> Result<Self> {
        let pool = database::connect(&config.database_url, &config.pool).await?;
        Self::with_pool(config, pool, registry, namespaces).await
    }

    /// Like [`new`](Self::new), on an existing pool.
    pub async fn with_pool(
        config: WorkerConfig,
        pool: PgPool,
        registry: HandlerRegistry,
        namespaces: Vec<String>,
    ) -> Result<Self> {
        if !database::schema_is_current(&pool).await? {
            return Err(Error::SchemaNotMigrated);
        }
        let client = PgmqClient::new(pool.clone());
        for ns in &namespaces {
            client.create_queue(&QueueName::worker(ns)?).await?;
        }
        Ok(Self {
            config,
            pool,
            registry: Arc::new(registry),
            namespaces,
            status: Arc::new(WorkerStatus::default()),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The namespaces served.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Live counters, for health checks.
    pub fn status(&self) -> Arc<WorkerStatus> {
        self.status.clone()
    }

    /// Claims and runs steps until `shutdown` is cancelled. Then it stops claiming, lets
    /// running handlers finish for up to the configured grace period, gives the steps
    /// of those that did not finish back to the queue (recording no result), and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let queues = self
            .namespaces
            .iter()
            .map(|ns| QueueName::worker(ns))
            .collect::<Result<Vec<_>, _>>()?;
        let listens = self.config.deployment_mode.listens();
        // Unique per process: two processes configured with one worker id must not hear
        // each other's handoffs.
        let handoff = (listens && self.config.handoff).then(|| HandoffRequest {
            token: uuid::Uuid::now_v7(),
            worker_id: self.config.worker_id.clone(),
            lease_seconds: self.config.visibility_timeout_seconds,
        });
        let listener = if listens {
            let (listener, _task) = QueueListener::start_with_direct(
                self.pool.clone(),
                self.namespaces.clone(),
                handoff.as_ref().map(|h| handoff_channel(h.token)),
                shutdown.clone(),
            )
            .await?;
            Some(listener)
        } else {
            None
        };
        let abort = CancellationToken::new();
        // Shutdown stops claiming first (waiting for a claim in flight), and only then
        // counts the grace period down: a step given back must not be claimed again by
        // a read that was already running.
        let gate = ReadGate::default();
        {
            let (shutdown, abort, gate, grace) = (
                shutdown.clone(),
                abort.clone(),
                gate.clone(),
                self.config.shutdown_grace_period,
            );
            tokio::spawn(async move {
                shutdown.cancelled().await;
                gate.close().await;
                tokio::time::sleep(grace).await;
                abort.cancel();
            });
        }
        let (submissions, submitted) = mpsc::unbounded_channel();
        let runtime = Arc::new(Runtime {
            submissions,
            pool: self.pool.clone(),
            // One claim runs at a time; a lost claim is replayable (see `claim_batch`).
            claim_pool: database::replayable_pool(
                &self.pool,
                &database::PoolConfig {
                    max_connections: 2,
                    ..self.config.pool.clone()
                },
            ),
            registry: self.registry.clone(),
            worker_id: self.config.worker_id.clone(),
            visibility_timeout_seconds: self.config.visibility_timeout_seconds,
            default_step_timeout: self.config.default_step_timeout,
            results_queue: QueueName::new(ORCHESTRATION_STEP_RESULTS)?,
            status: self.status.clone(),
            abort: abort.clone(),
            handoff,
            max_in_flight: self.config.max_concurrent_steps.max(1),
            queues: queues.clone(),
            held: Default::default(),
            backlog: Default::default(),
        });
        let consumer_config = ConsumerConfig {
            queues,
            visibility_timeout_seconds: self.config.visibility_timeout_seconds,
            max_in_flight: self.config.max_concurrent_steps,
            batch_size: self.config.max_concurrent_steps,
            poll_interval: self
                .config
                .deployment_mode
                .polls()
                .then_some(self.config.poll_interval),
            probe: Some(pgmq_notify::PgmqClient::new(self.pool.clone())),
        };
        self.status.set_running(true);
        tracing::info!(
            worker_id = %self.config.worker_id,
            namespaces = ?self.namespaces,
            max_concurrent_steps = self.config.max_concurrent_steps,
            mode = ?self.config.deployment_mode,
            "worker running"
        );
        let stop_claiming = shutdown.clone();
        let status = self.status.clone();
        tokio::spawn(async move {
            stop_claiming.cancelled().await;
            status.set_running(false);
        });
        let submitter = tokio::spawn(runtime.clone().run_submitter(submitted));
        let fetcher = runtime.clone();
        let give_back = runtime.clone();
        consumer::run_with(
            move |queue, qty, handed| {
                let (runtime, gate) = (fetcher.clone(), gate.clone());
                async move {
                    let claimed = gate.read(runtime.fetch(queue, qty, handed)).await;
                    claimed.unwrap_or_else(|| Ok((Vec::new(), 0)))
                }
            },
            listener,
            consumer_config,
            shutdown,
            move |queue, claimed| {
                let runtime = runtime.clone();
                async move { runtime.handle(queue, claimed).await }
            },
        )
        .await;
        // Every handler has returned, so every submission has been answered.
        submitter.abort();
        abort.cancel();
        give_back.give_back_handed().await;
        self.status.set_running(false);
        Ok(())
    }
}

/// A message whose step this worker claimed.
struct ClaimedMessage {
    msg_id: i64,
    message: StepMessage,
    step: step::ClaimedStep,
    /// What was left of the lease when the step was taken, if it was not just set.
    lease_left: Option<Duration>,
    /// Handed to this process (and held until its handling ends), not claimed.
    handed: bool,
}

impl Runtime {
    /// Takes the steps handed to this process among `directed` (up to `qty` message ids
    /// the listener heard; when notifications may have been lost, those it finds on the
    /// queue), then claims from the queue for the slots left. The handed steps cost a
    /// read; a failure to load them is logged and leaves them to their lease, after
    /// which any worker reclaims them.
    async fn fetch(
        &self,
        queue: QueueName,
        qty: i32,
        directed: DirectedIds,
    ) -> Result<(Vec<ClaimedMessage>, usize)> {
        let mut taken = Vec::new();
        let mut handed = directed.ids;
        let room = usize::try_from(qty).unwrap_or(0);
        // Handed steps a scan found beyond the free slots of its fetch come first.
        let mut found = self.take_backlog(&queue);
        if let (Some(handoff), true) = (&self.handoff, directed.missed) {
            match claim::handed_ids(&self.pool, &queue, handoff.token).await {
                Ok(ids) => found.extend(ids),
                Err(error) => {
                    tracing::warn!(%error, %queue, "looking for handed steps after lost notifications failed; they return when their lease ends")
                }
            }
        }
        for id in found {
            if handed.contains(&id) || self.is_held(&queue, id) {
                continue;
            }
            if handed.len() < room {
                handed.push(id);
            } else {
                self.add_backlog(&queue, id);
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

    /// Loads the handed steps of `msg_ids` this process does not hold already (a scan
    /// after lost notifications also finds the handed steps running here), and holds
    /// them until their handling ends.
    async fn load_handed(
        &self,
        queue: &QueueName,
        token: uuid::Uuid,
        msg_ids: &[i64],
    ) -> Result<Vec<ClaimedMessage>> {
        let msg_ids: Vec<i64> = msg_ids
            .iter()
            .copied()
            .filter(|id| !self.is_held(queue, *id))
            .collect();
        let mut conn = self.pool.acquire().await?;
        let mut deliveries = claim::handed(&mut conn, queue, token, &msg_ids).await?;
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
            let extended = PgmqClient::extend_unread(
                &mut *conn,
                queue,
                &short,
                self.visibility_timeout_seconds,
            )
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
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.extend(taken.iter().map(|t| (queue.as_str().to_string(), t.msg_id)));
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
    async fn give_back_handed(&self) {
        let Some(handoff) = &self.handoff else {
            return;
        };
        let deadline = Instant::now() + OFFER_DRAIN;
        loop {
            match claim::offers_queued(&self.pool, &self.results_queue, handoff.token).await {
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
            let ids = match claim::handed_ids(&self.pool, queue, handoff.token).await {
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

    fn is_held(&self, queue: &QueueName, msg_id: i64) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(queue.as_str().to_string(), msg_id))
    }

    fn take_backlog(&self, queue: &QueueName) -> Vec<i64> {
        self.backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(queue.as_str())
            .unwrap_or_default()
    }

    fn add_backlog(&self, queue: &QueueName, msg_id: i64) {
        self.backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(queue.as_str().to_string())
            .or_default()
            .push(msg_id);
    }

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
                    if let Err(error) = PgmqClient::delete(&self.pool, &queue, msg_id).await {
                        tracing::warn!(%error, msg_id, "dropping a stale step message failed; it will come back");
                    }
                }
                Delivery::Broken { msg_id, error } => {
                    // Left to its lease: a later delivery may read it whole.
                    tracing::error!(%queue, msg_id, %error, "a step message could not be claimed");
                }
                Delivery::Unreadable { msg_id, body } => {
                    tracing::error!(%queue, msg_id, %body, "unreadable step message archived");
                    if let Err(error) = PgmqClient::archive(&self.pool, &queue, msg_id).await {
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
        step: &step::ClaimedStep,
    ) -> Result<()> {
        tracing::error!(step_uuid = %step.step_uuid, attempt = step.attempt, max_attempts = step.max_attempts, "step failed: every attempt was lost with its worker");
        let result = executor::lost_worker_result(step, &self.worker_id);
        let message = step.message();
        let mut tx = self.pool.begin().await?;
        if step::record_result(&mut tx, step.step_uuid, step.attempt, &result)
            .await?
            .applied()
        {
            PgmqClient::send_with_notify(&mut *tx, &self.results_queue, &message, 0).await?;
        }
        PgmqClient::delete(&mut *tx, queue, msg_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn handle(&self, queue: QueueName, claimed: ClaimedMessage) {
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
        if let Err(error) = self
            .run_claimed(&queue, msg_id, &message, step, lease_left)
            .instrument(span)
            .await
        {
            // The message stays on the queue and reappears when its lease ends.
            tracing::warn!(%error, step_uuid = %message.step_uuid, msg_id, "step execution failed; the message will be redelivered");
        }
        if handed {
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(queue.as_str().to_string(), msg_id));
        }
    }

    async fn run_claimed(
        &self,
        queue: &QueueName,
        msg_id: i64,
        step_message: &StepMessage,
        claimed: step::ClaimedStep,
        lease_left: Option<Duration>,
    ) -> Result<()> {
        let attempt = claimed.attempt;
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

        let lease = self.keep_lease(queue.clone(), msg_id, lease_left);
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
                    .release(queue, msg_id, step_message.step_uuid, attempt)
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
            queue: queue.clone(),
            msg_id,
            message: step_message.clone(),
            attempt,
            result,
            reply,
        };
        if let Err(mpsc::error::SendError(request)) = self.submissions.send(request) {
            // No submitter (it only stops after every handler): submit directly.
            return self
                .submit(queue, msg_id, step_message, attempt, &request.result)
                .await;
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::SubmitterGone),
        }
    }

    /// Submits the results handlers hand in, batching those that arrive while a
    /// submission is under way: one statement and one commit for all of them
    /// ([`submit::batch`]). A lone result goes alone, exactly as before; a batch that
    /// fails for any reason is redone result by result, each with its retries.
    async fn run_submitter(self: Arc<Self>, mut requests: mpsc::UnboundedReceiver<SubmitRequest>) {
        while let Some(first) = requests.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_SUBMIT_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            // One statement per worker queue.
            batch.sort_by(|a, b| a.queue.as_str().cmp(b.queue.as_str()));
            while !batch.is_empty() {
                let queue = batch[0].queue.clone();
                let split = batch
                    .iter()
                    .position(|r| r.queue != queue)
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
            match self
                .submit_once(
                    &request.queue,
                    request.msg_id,
                    &request.message,
                    request.attempt,
                    &request.result,
                )
                .await
            {
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
                let outcome = runtime
                    .submit(
                        &request.queue,
                        request.msg_id,
                        &request.message,
                        request.attempt,
                        &request.result,
                    )
                    .await;
                let _ = request.reply.send(outcome);
            });
        }
    }

    /// [`submit::batch`] for results of one queue; the outer error is the batch's, the
    /// inner ones are each result's after its conflict handling.
    async fn submit_together(&self, group: &[SubmitRequest]) -> Result<Vec<Result<()>>> {
        let queue = &group[0].queue;
        let messages = group
            .iter()
            .map(|r| self.result_message(&r.message, r.result.success))
            .collect::<Result<Vec<_>>>()?;
        let items: Vec<submit::Submission<'_>> = group
            .iter()
            .zip(&messages)
            .map(|(r, message)| submit::Submission {
                step_uuid: r.message.step_uuid,
                attempt: r.attempt,
                result: &r.result,
                msg_id: r.msg_id,
                message,
            })
            .collect();
        let mut conn = self.pool.acquire().await?;
        let outcomes = submit::batch(&mut conn, queue, &self.results_queue, &items).await?;
        let mut replies = Vec::with_capacity(group.len());
        for (request, outcome) in group.iter().zip(outcomes) {
            replies.push(
                self.after_submit(
                    &mut conn,
                    queue,
                    request.msg_id,
                    &request.message,
                    request.attempt,
                    request.result.success,
                    outcome,
                )
                .await,
            );
        }
        Ok(replies)
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
                if let Err(error) = PgmqClient::set_vt(&pool, &queue, msg_id, vt).await {
                    tracing::warn!(%error, msg_id, "extending the lease failed");
                }
            }
        });
        stop
    }

    /// Gives a step whose handler was stopped by shutdown back to the queue at once,
    /// recording no result.
    async fn release(
        &self,
        queue: &QueueName,
        msg_id: i64,
        step_uuid: uuid::Uuid,
        attempt: i32,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if step::release(&mut tx, step_uuid, attempt, &self.worker_id).await? {
            // Notified, as a send is: a worker that relies on notifications alone
            // (`EventDrivenOnly`) must hear that the step is back.
            PgmqClient::give_back(&mut *tx, queue, msg_id).await?;
        }
        tx.commit().await?;
        tracing::info!(%step_uuid, attempt, "step given back: the worker is shutting down");
        Ok(())
    }

    /// Stores the result and tells the orchestration, in one statement, retrying
    /// transient database failures.
    async fn submit(
        &self,
        queue: &QueueName,
        msg_id: i64,
        step_message: &StepMessage,
        attempt: i32,
        result: &StepExecutionResult,
    ) -> Result<()> {
        let mut delay = Duration::from_millis(50);
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .submit_once(queue, msg_id, step_message, attempt, result)
                .await
            {
                Err(Error::Database(e)) if e.is_transient() && tries < 8 => {
                    tracing::warn!(error = %e, tries, "submitting the result failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                // PostgreSQL refused the result itself: running the handler again would
                // produce the same result, so record why it could not be stored instead.
                Err(Error::Database(e)) if e.is_data_rejected() && result.success => {
                    tracing::error!(error = %e, step_uuid = %step_message.step_uuid, "the handler's result cannot be stored; recording a failure");
                    let failure = executor::unstorable_result(result, &e.to_string());
                    return self
                        .submit_once(queue, msg_id, step_message, attempt, &failure)
                        .await;
                }
                other => return other,
            }
        }
    }

    async fn submit_once(
        &self,
        queue: &QueueName,
        msg_id: i64,
        step_message: &StepMessage,
        attempt: i32,
        result: &StepExecutionResult,
    ) -> Result<()> {
        // One statement, so no explicit transaction: it commits (or not) as a whole, and
        // saves the BEGIN and COMMIT round trips.
        let mut conn = self.pool.acquire().await?;
        let message = self.result_message(step_message, result.success)?;
        let handover = step::Handover {
            worker_queue: queue,
            msg_id,
            results_queue: &self.results_queue,
            message: &message,
        };
        let outcome =
            step::submit_result(&mut conn, step_message.step_uuid, attempt, result, handover)
                .await?;
        self.after_submit(
            &mut conn,
            queue,
            msg_id,
            step_message,
            attempt,
            result.success,
            outcome,
        )
        .await
    }

    /// Logs a submission, and drops the step message of one that was fenced off if it
    /// is no longer the step's live message.
    #[allow(clippy::too_many_arguments)]
    async fn after_submit(
        &self,
        conn: &mut PgConnection,
        queue: &QueueName,
        msg_id: i64,
        step_message: &StepMessage,
        attempt: i32,
        success: bool,
        outcome: TransitionOutcome<WorkflowStepState>,
    ) -> Result<()> {
        match outcome {
            TransitionOutcome::Applied { .. } => {
                // The worker message is gone and the result message sent, in the
                // statement that recorded the result.
                tracing::debug!(step_uuid = %step_message.step_uuid, attempt, success, "result submitted");
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
                    PgmqClient::delete(conn, queue, msg_id).await?;
                }
                tracing::warn!(step_uuid = %step_message.step_uuid, attempt, ?actual, "result of a stale attempt discarded");
            }
        }
        Ok(())
    }
}
