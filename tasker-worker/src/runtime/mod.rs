//! The worker runtime: from a queue message to a recorded result.
//!
//! [`WorkerCore::run`] wires the pieces, one file per concern:
//! - [`fetch`]: read a batch of messages and claim their steps in one statement, and
//!   dispose of the stale, unreadable and over-budget ones;
//! - [`handoff`]: the steps the orchestration handed to this process (loaded with a
//!   read), held until their handling ends, and given back at shutdown;
//! - [`execute`]: run a claimed step's handler under its timeout with its lease kept,
//!   or give the step back when shutdown stops it;
//! - [`submit`]: store results (batched when several finish together), fenced on the
//!   attempt, retried on transient failures.

mod execute;
mod fetch;
mod handoff;
mod submit;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use pgmq_notify::consumer::{self, ConsumerConfig};
use pgmq_notify::{PgmqClient, QueueListener, QueueName};
use tasker_shared::database;
use tasker_shared::messaging::{HandoffRequest, ORCHESTRATION_STEP_RESULTS, handoff_channel};

use crate::config::WorkerConfig;
use crate::error::{Error, Result};
use crate::handlers::HandlerRegistry;
use crate::read_gate::ReadGate;
use crate::status::WorkerStatus;

use handoff::HandedSteps;
use submit::SubmitRequest;

/// A connected worker, ready to [`run`](Self::run).
#[derive(Debug)]
pub struct WorkerCore {
    config: WorkerConfig,
    pool: PgPool,
    registry: Arc<HandlerRegistry>,
    namespaces: Vec<String>,
    status: Arc<WorkerStatus>,
}

/// What the runtime's tasks share while the worker runs.
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
    /// Handed steps held here, and those waiting for a slot.
    handed: HandedSteps,
}

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
        // Running before the shutdown sequence can mark it stopped.
        self.status.set_running(true);
        let abort = CancellationToken::new();
        let gate = self.start_shutdown_sequence(&shutdown, &abort);
        let (submissions, submitted) = mpsc::unbounded_channel();
        let runtime =
            Arc::new(self.runtime(handoff, queues.clone(), abort.clone(), submissions)?);
        let consumer_config = self.consumer_config(queues);
        tracing::info!(
            worker_id = %self.config.worker_id,
            namespaces = ?self.namespaces,
            max_concurrent_steps = self.config.max_concurrent_steps,
            mode = ?self.config.deployment_mode,
            "worker running"
        );
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

    /// On shutdown: stop claiming first (waiting for a claim in flight), and only then
    /// count the grace period down, after which `abort` stops the handlers still running:
    /// a step given back must not be claimed again by a read that was already running.
    fn start_shutdown_sequence(
        &self,
        shutdown: &CancellationToken,
        abort: &CancellationToken,
    ) -> ReadGate {
        let gate = ReadGate::default();
        let (shutdown, abort, closing, grace, status) = (
            shutdown.clone(),
            abort.clone(),
            gate.clone(),
            self.config.shutdown_grace_period,
            self.status.clone(),
        );
        tokio::spawn(async move {
            shutdown.cancelled().await;
            status.set_running(false);
            closing.close().await;
            tokio::time::sleep(grace).await;
            abort.cancel();
        });
        gate
    }

    fn runtime(
        &self,
        handoff: Option<HandoffRequest>,
        queues: Vec<QueueName>,
        abort: CancellationToken,
        submissions: mpsc::UnboundedSender<SubmitRequest>,
    ) -> Result<Runtime> {
        Ok(Runtime {
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
            abort,
            handoff,
            max_in_flight: self.config.max_concurrent_steps.max(1),
            queues,
            handed: HandedSteps::default(),
        })
    }

    fn consumer_config(&self, queues: Vec<QueueName>) -> ConsumerConfig {
        ConsumerConfig {
            queues,
            visibility_timeout_seconds: self.config.visibility_timeout_seconds,
            max_in_flight: self.config.max_concurrent_steps,
            batch_size: self.config.max_concurrent_steps,
            poll_interval: self
                .config
                .deployment_mode
                .polls()
                .then_some(self.config.poll_interval),
            probe: Some(PgmqClient::new(self.pool.clone())),
        }
    }
}
