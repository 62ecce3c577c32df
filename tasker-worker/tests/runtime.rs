//! `WorkerCore` in process against a real database: duplicate deliveries run once, a
//! result PostgreSQL refuses becomes a failure, and a step whose workers keep vanishing
//! fails once its attempts are used up; a result refused after its claim was lost leaves
//! the step's message alone.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use pgmq_notify::{PgmqClient, QueueName};
use tasker_shared::database::{named_task, step, task, transition};
use tasker_shared::messaging::{ORCHESTRATION_STEP_RESULTS, StepMessage};
use tasker_shared::state_machine::WorkflowStepState;
use tasker_shared::template::TaskTemplate;
use tasker_shared::testing::TestDb;
use tasker_worker::handlers::{HandlerRegistry, StepContext, StepError, StepHandler, StepResult};
use tasker_worker::{WorkerConfig, WorkerCore};

/// Counts its runs and returns `output`.
struct Counting(Arc<AtomicUsize>, serde_json::Value);

#[async_trait]
impl StepHandler for Counting {
    async fn execute(&self, _ctx: StepContext) -> Result<StepResult, StepError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(StepResult::success(self.1.clone()))
    }
}

/// A one-step task in namespace `ns` whose step is enqueued, with `copies` messages
/// for it on the worker queue.
async fn enqueued_step(
    db: &TestDb,
    ns: &str,
    max_attempts: u32,
    copies: usize,
) -> (Uuid, QueueName) {
    let template = TaskTemplate::from_yaml(
        &format!(
            "name: one\nnamespace_name: {ns}\nversion: '1'\nsteps:\n  - name: only\n    handler: {{ callable: count }}\n    retry: {{ max_attempts: {max_attempts} }}\n"
        ),
        "one",
    )
    .unwrap();
    named_task::register(&db.pool, &template).await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    let (new, created) = create_task(&mut tx, db, ns, "one").await;
    let step_uuid = created.steps["only"];
    transition::transition_step(
        &mut tx,
        step_uuid,
        &[WorkflowStepState::Pending],
        WorkflowStepState::Enqueued,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    let message = StepMessage::new(new.task_uuid, step_uuid, new.correlation_id);
    let queue = QueueName::worker(ns).unwrap();
    for _ in 0..copies {
        PgmqClient::send_with_notify(&mut *tx, &queue, &message, 0)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    (step_uuid, queue)
}

/// Creates a task of the registered template `name` in `ns`, in `tx`; returns the request
/// and what was created.
async fn create_task(
    tx: &mut sqlx::PgConnection,
    db: &TestDb,
    ns: &str,
    name: &str,
) -> (task::NewTask, task::CreatedTask) {
    let nt = named_task::find(&db.pool, ns, name, None)
        .await
        .unwrap()
        .unwrap();
    let new = task::NewTask {
        task_uuid: Uuid::now_v7(),
        context: json!({}),
        identity_hash: Uuid::now_v7().to_string(),
        initiator: "t".into(),
        source_system: "t".into(),
        reason: "t".into(),
        tags: vec![],
        priority: 0,
        correlation_id: Uuid::now_v7(),
        parent_correlation_id: None,
    };
    let task::CreateOutcome::Created(created) = task::create(tx, &nt, &new).await.unwrap() else {
        panic!()
    };
    (new, created)
}

/// Runs a worker with the `count` handler until `queue` is empty; returns the runs.
async fn work_until_drained(
    db: &TestDb,
    ns: &str,
    queue: &QueueName,
    output: serde_json::Value,
) -> usize {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    registry.register("count", Counting(runs.clone(), output));
    let mut config = WorkerConfig::new(db.url.clone());
    config.poll_interval = Duration::from_millis(50);
    let core = WorkerCore::with_pool(config, db.pool.clone(), registry, vec![ns.into()])
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(core.run(shutdown.clone()));

    let client = PgmqClient::new(db.pool.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.depth(queue).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the worker queue never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();
    runs.load(Ordering::SeqCst)
}

async fn state_and_error(db: &TestDb, step_uuid: Uuid) -> (WorkflowStepState, Option<String>) {
    let mut conn = db.pool.acquire().await.unwrap();
    let state = transition::current_step_state(&mut conn, step_uuid)
        .await
        .unwrap()
        .unwrap();
    let error: Option<String> = sqlx::query_scalar(
        "SELECT results -> 'error' ->> 'error_type' FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
    )
    .bind(step_uuid)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    (state, error)
}

async fn results_depth(db: &TestDb) -> i64 {
    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    PgmqClient::new(db.pool.clone())
        .depth(&results)
        .await
        .unwrap()
}

#[tokio::test]
async fn duplicate_messages_run_the_step_once() {
    let db = TestDb::new().await;
    // The same message, delivered twice.
    let (step_uuid, queue) = enqueued_step(&db, "dup", 3, 2).await;
    let runs = work_until_drained(&db, "dup", &queue, json!("done")).await;
    assert_eq!(runs, 1);
    assert_eq!(results_depth(&db).await, 1);
    assert_eq!(
        state_and_error(&db, step_uuid).await,
        (WorkflowStepState::EnqueuedForOrchestration, None)
    );
}

#[tokio::test]
async fn a_result_postgres_refuses_is_recorded_as_a_failure() {
    let db = TestDb::new().await;
    let (step_uuid, queue) = enqueued_step(&db, "nul", 3, 1).await;
    // jsonb cannot hold a NUL character: storing this result fails every time.
    let runs = work_until_drained(&db, "nul", &queue, json!("a\u{0}b")).await;
    assert_eq!(runs, 1);
    assert_eq!(results_depth(&db).await, 1);
    assert_eq!(
        state_and_error(&db, step_uuid).await,
        (
            WorkflowStepState::EnqueuedAsErrorForOrchestration,
            Some("result_not_storable".into())
        )
    );
}

#[tokio::test]
async fn a_step_whose_workers_keep_vanishing_fails_once_its_attempts_are_used() {
    let db = TestDb::new().await;
    let (step_uuid, queue) = enqueued_step(&db, "lost", 2, 1).await;
    // Two workers claimed the step and vanished: the message was read twice and its
    // lease expired each time.
    let client = PgmqClient::new(db.pool.clone());
    for redelivered in [false, true] {
        let read = client.read::<StepMessage>(&queue, 0, 1).await.unwrap();
        assert_eq!(read.len(), 1);
        let mut tx = db.pool.begin().await.unwrap();
        let claimed = step::claim(&mut tx, step_uuid, "gone", redelivered)
            .await
            .unwrap();
        assert!(matches!(claimed, step::ClaimOutcome::Claimed(_)));
        tx.commit().await.unwrap();
    }
    let runs = work_until_drained(&db, "lost", &queue, json!("done")).await;
    assert_eq!(runs, 0, "a third run would exceed max_attempts");
    assert_eq!(results_depth(&db).await, 1);
    assert_eq!(
        state_and_error(&db, step_uuid).await,
        (
            WorkflowStepState::EnqueuedAsErrorForOrchestration,
            Some("worker_lost".into())
        )
    );
}

/// Undoes its own claim while it runs, as a PostgreSQL crash that lost the claim's
/// asynchronous commit would: the step is back in `waiting_for_retry` under its previous
/// attempt, and its message (the retry timer) is not due for an hour.
struct LosesItsClaim {
    pool: sqlx::PgPool,
    queue: QueueName,
    runs: Arc<AtomicUsize>,
}

#[async_trait]
impl StepHandler for LosesItsClaim {
    async fn execute(&self, ctx: StepContext) -> Result<StepResult, StepError> {
        sqlx::query(
            "UPDATE tasker.workflow_steps SET current_state = 'waiting_for_retry', attempts = attempts - 1
             WHERE workflow_step_uuid = $1",
        )
        .bind(ctx.step_uuid())
        .execute(&self.pool)
        .await
        .unwrap();
        sqlx::query(&format!(
            "UPDATE {} SET vt = now() + interval '1 hour'",
            pgmq_notify::sql::queue_table(&self.queue)
        ))
        .execute(&self.pool)
        .await
        .unwrap();
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(StepResult::success(json!("done")))
    }
}

/// A result refused because its claim was lost leaves the step's message alone: for a
/// step back in `waiting_for_retry` it is the step's retry timer, and deleting it would
/// strand the step.
#[tokio::test]
async fn a_result_of_a_lost_claim_leaves_the_retry_message() {
    let db = TestDb::new().await;
    let (step_uuid, queue) = enqueued_step(&db, "lostclaim", 3, 1).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    registry.register(
        "count",
        LosesItsClaim {
            pool: db.pool.clone(),
            queue: queue.clone(),
            runs: runs.clone(),
        },
    );
    let mut config = WorkerConfig::new(db.url.clone());
    config.poll_interval = Duration::from_millis(50);
    let core = WorkerCore::with_pool(config, db.pool.clone(), registry, vec!["lostclaim".into()])
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(core.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the handler never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Shutdown waits for the handler's submission to be answered.
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(
        state_and_error(&db, step_uuid).await,
        (WorkflowStepState::WaitingForRetry, None)
    );
    assert_eq!(
        results_depth(&db).await,
        0,
        "the refused result is not sent"
    );
    let client = PgmqClient::new(db.pool.clone());
    assert_eq!(
        client.depth(&queue).await.unwrap(),
        1,
        "the retry message is kept"
    );
}

/// Holds its slot until the token is cancelled (or shutdown stops it).
struct Blocking(CancellationToken);

#[async_trait]
impl StepHandler for Blocking {
    async fn execute(&self, _ctx: StepContext) -> Result<StepResult, StepError> {
        tokio::select! {
            _ = self.0.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        Ok(StepResult::success(json!(null)))
    }
}

/// Creates a task of the registered template `name` in `ns` and enqueues its step
/// `first` with one message.
async fn start_task(db: &TestDb, ns: &str, name: &str) -> task::CreatedTask {
    let mut tx = db.pool.begin().await.unwrap();
    let (new, created) = create_task(&mut tx, db, ns, name).await;
    let first = created.steps["first"];
    step::enqueue(
        &mut tx,
        &[first],
        &[
            serde_json::to_value(StepMessage::new(new.task_uuid, first, new.correlation_id))
                .unwrap(),
        ],
        &QueueName::worker(ns).unwrap(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    created
}

/// Waits for the result message of `step_uuid` on the results queue and returns it.
async fn result_message(db: &TestDb, step_uuid: Uuid) -> StepMessage {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT message FROM pgmq.q_orchestration_step_results WHERE message ->> 'step_uuid' = $1",
        )
        .bind(step_uuid.to_string())
        .fetch_optional(&db.pool)
        .await
        .unwrap();
        if let Some(message) = found {
            return serde_json::from_value(message).unwrap();
        }
        assert!(Instant::now() < deadline, "no result for {step_uuid}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_state(db: &TestDb, step_uuid: Uuid, state: WorkflowStepState) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state_and_error(db, step_uuid).await.0 != state {
        assert!(
            Instant::now() < deadline,
            "{step_uuid} never reached {state}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Completes the reported steps in one statement as the orchestration would, handing
/// each one's ready child to the worker that offered; returns the handed message ids.
async fn hand_over(db: &TestDb, ns: &str, messages: &[StepMessage]) -> Vec<i64> {
    use tasker_shared::database::complete::{self, Completion};
    let queue = QueueName::worker(ns).unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let completions: Vec<Completion> = messages
        .iter()
        .map(|m| Completion {
            step_uuid: m.step_uuid,
            correlation_id: m.correlation_id,
            handoff: m.handoff.clone(),
        })
        .collect();
    let moved = complete::steps(
        &mut conn,
        &completions,
        &json!({"event": "completed"}),
        Some(&queue),
    )
    .await
    .unwrap();
    assert_eq!(moved.len(), messages.len(), "{moved:?}");
    let mut ids: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT msg_id FROM {} WHERE message -> 'handed' IS NOT NULL ORDER BY msg_id DESC LIMIT $1",
        pgmq_notify::sql::queue_table(&queue)
    ))
    .bind(i64::try_from(messages.len()).unwrap())
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    ids.reverse();
    ids
}

/// Hands `reported`'s child to `offer`'s worker without the worker hearing of it (as
/// when the notification is lost): handed to a token nobody hears, then readdressed.
async fn hand_over_unheard(
    db: &TestDb,
    ns: &str,
    reported: &StepMessage,
    offer: &tasker_shared::messaging::HandoffRequest,
) {
    let mut unheard = reported.clone();
    unheard.handoff = Some(tasker_shared::messaging::HandoffRequest {
        token: Uuid::now_v7(),
        ..offer.clone()
    });
    let msg_id = hand_over(db, ns, std::slice::from_ref(&unheard)).await[0];
    sqlx::query(&format!(
        "UPDATE {} SET message = jsonb_set(message, '{{handed,token}}', to_jsonb($2::text))
         WHERE msg_id = $1",
        pgmq_notify::sql::queue_table(&QueueName::worker(ns).unwrap())
    ))
    .bind(msg_id)
    .bind(offer.token.to_string())
    .execute(&db.pool)
    .await
    .unwrap();
}

/// Drops the worker's LISTEN connection; its listener reconnects.
async fn drop_listen_connection(db: &TestDb) {
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%') t",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(dropped, 1, "the worker has one LISTEN connection");
}

/// A running worker of a test, with the `count` handler's runs and the token that
/// lets the `block` handler finish.
struct HandoffWorker {
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<tasker_worker::Result<()>>,
    runs: Arc<AtomicUsize>,
    release: CancellationToken,
}

/// A worker of `ns` with `slots` handler slots, the `count` and `block` handlers, and
/// the `chain` (first → second) and `hold` (first, blocking) templates registered.
async fn handoff_worker(
    db: &TestDb,
    ns: &str,
    slots: usize,
    mode: tasker_shared::event_system::DeploymentMode,
) -> HandoffWorker {
    for yaml in [
        format!(
            "name: chain\nnamespace_name: {ns}\nversion: '1'\nsteps:\n  - name: first\n    handler: {{ callable: count }}\n  - name: second\n    dependencies: [first]\n    handler: {{ callable: count }}\n"
        ),
        format!(
            "name: hold\nnamespace_name: {ns}\nversion: '1'\nsteps:\n  - name: first\n    handler: {{ callable: block }}\n"
        ),
        format!(
            "name: chain_hold\nnamespace_name: {ns}\nversion: '1'\nsteps:\n  - name: first\n    handler: {{ callable: count }}\n  - name: second\n    dependencies: [first]\n    handler: {{ callable: block }}\n"
        ),
    ] {
        let template = TaskTemplate::from_yaml(&yaml, "t").unwrap();
        named_task::register(&db.pool, &template).await.unwrap();
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    registry.register("count", Counting(runs.clone(), json!(1)));
    let release = CancellationToken::new();
    registry.register("block", Blocking(release.clone()));
    let mut config = WorkerConfig::new(db.url.clone());
    config.worker_id = "handoff-worker".into();
    config.max_concurrent_steps = slots;
    config.deployment_mode = mode;
    config.visibility_timeout_seconds = 45;
    config.shutdown_grace_period = Duration::from_millis(200);
    let core = WorkerCore::with_pool(config, db.pool.clone(), registry, vec![ns.into()])
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(core.run(shutdown.clone()));
    HandoffWorker {
        shutdown,
        running,
        runs,
        release,
    }
}

/// A worker offers a handoff with each successful result (its token, id and lease),
/// runs the step the orchestration hands it without claiming it (one `claimed` entry,
/// the handoff's), and at shutdown gives back a handed step it had no slot to start: the
/// step is `enqueued` again, its attempt not counted, its message visible at once.
#[tokio::test]
async fn a_worker_runs_handed_steps_and_gives_back_those_it_cannot_start() {
    let db = TestDb::new().await;
    let ns = "handoffs";
    let worker = handoff_worker(&db, ns, 1, Default::default()).await;

    // The worker runs the step it is handed.
    let chain = start_task(&db, ns, "chain").await;
    let reported = result_message(&db, chain.steps["first"]).await;
    let offer = reported
        .handoff
        .clone()
        .expect("a success offers a handoff");
    assert_eq!(
        (offer.worker_id.as_str(), offer.lease_seconds),
        ("handoff-worker", 45)
    );
    hand_over(&db, ns, std::slice::from_ref(&reported)).await;
    let second = chain.steps["second"];
    wait_for_state(&db, second, WorkflowStepState::EnqueuedForOrchestration).await;
    assert_eq!(worker.runs.load(Ordering::SeqCst), 2);
    let claims: Vec<serde_json::Value> = transition::step_history(&db.pool, second)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.to_state == "in_progress")
        .map(|h| h.metadata)
        .collect();
    assert_eq!(
        claims,
        [
            json!({"event": "claimed", "worker_id": "handoff-worker", "redelivered": false, "handoff": true})
        ]
    );
    // Its result offers again, with the same token.
    let again = result_message(&db, second).await;
    assert_eq!(again.handoff.map(|h| h.token), Some(offer.token));

    // A step handed while the only slot is taken waits; at shutdown it is given back.
    let chain = start_task(&db, ns, "chain").await;
    let reported = result_message(&db, chain.steps["first"]).await;
    let hold = start_task(&db, ns, "hold").await;
    wait_for_state(&db, hold.steps["first"], WorkflowStepState::InProgress).await;
    let msg_id = hand_over(&db, ns, std::slice::from_ref(&reported)).await[0];
    let second = chain.steps["second"];
    assert_eq!(
        state_and_error(&db, second).await.0,
        WorkflowStepState::InProgress
    );
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener
        .listen(&QueueName::worker(ns).unwrap().channel())
        .await
        .unwrap();
    worker.shutdown.cancel();
    worker.running.await.unwrap().unwrap();
    assert_eq!(
        worker.runs.load(Ordering::SeqCst),
        3,
        "the handed step never ran"
    );
    // Workers that rely on notifications alone hear that it is back.
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = listener.recv().await.unwrap();
            let payload: serde_json::Value = serde_json::from_str(n.payload()).unwrap();
            if payload["msg_id"] == json!(msg_id) {
                return payload;
            }
        }
    })
    .await
    .expect("the given-back step is announced");
    assert_eq!(heard["delay_ms"], json!(0));
    assert_eq!(
        state_and_error(&db, second).await.0,
        WorkflowStepState::Enqueued
    );
    let (visible, baseline): (bool, i32) = sqlx::query_as(&format!(
        "SELECT m.vt <= now(), ws.retry_baseline FROM {} m, tasker.workflow_steps ws
         WHERE m.msg_id = $1 AND ws.workflow_step_uuid = $2",
        pgmq_notify::sql::queue_table(&QueueName::worker(ns).unwrap())
    ))
    .bind(msg_id)
    .bind(second)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(visible, "the given-back message is visible at once");
    assert_eq!(baseline, 1, "the given-back attempt does not count");
}

/// A handoff whose notification was lost (sent while the worker's LISTEN connection was
/// down) is found when the listener reconnects, not a lease later.
#[tokio::test]
async fn a_handed_step_whose_notification_was_lost_runs_after_the_listener_reconnects() {
    let db = TestDb::new().await;
    let ns = "lost_handoffs";
    let worker = handoff_worker(&db, ns, 1, Default::default()).await;
    let chain = start_task(&db, ns, "chain").await;
    let reported = result_message(&db, chain.steps["first"]).await;
    let offer = reported.handoff.clone().unwrap();
    hand_over_unheard(&db, ns, &reported, &offer).await;
    // The listener's connection drops; it reconnects and the worker looks for its steps.
    drop_listen_connection(&db).await;
    wait_for_state(
        &db,
        chain.steps["second"],
        WorkflowStepState::EnqueuedForOrchestration,
    )
    .await;
    assert_eq!(worker.runs.load(Ordering::SeqCst), 2);
    worker.shutdown.cancel();
    worker.running.await.unwrap().unwrap();
}

/// Handed steps that arrive together with fewer slots free than steps wait for a slot,
/// and run as slots free up, with no poll to wake the worker (`EventDrivenOnly`).
#[tokio::test]
async fn handed_steps_beyond_the_free_slots_run_as_slots_free_up() {
    use tasker_shared::event_system::DeploymentMode;
    let db = TestDb::new().await;
    let ns = "queued_handoffs";
    let worker = handoff_worker(&db, ns, 2, DeploymentMode::EventDrivenOnly).await;
    let chains = [
        start_task(&db, ns, "chain").await,
        start_task(&db, ns, "chain").await,
    ];
    let mut reported = Vec::new();
    for chain in &chains {
        let message = result_message(&db, chain.steps["first"]).await;
        assert!(message.handoff.is_some());
        reported.push(message);
    }
    // One of the two slots is taken; both children are handed in one commit.
    let hold = start_task(&db, ns, "hold").await;
    wait_for_state(&db, hold.steps["first"], WorkflowStepState::InProgress).await;
    hand_over(&db, ns, &reported).await;
    for chain in &chains {
        wait_for_state(
            &db,
            chain.steps["second"],
            WorkflowStepState::EnqueuedForOrchestration,
        )
        .await;
    }
    assert_eq!(worker.runs.load(Ordering::SeqCst), 4);
    worker.release.cancel();
    wait_for_state(
        &db,
        hold.steps["first"],
        WorkflowStepState::EnqueuedForOrchestration,
    )
    .await;
    worker.shutdown.cancel();
    worker.running.await.unwrap().unwrap();
}

/// A result offering a handoff is still queued when the worker stops: the worker waits
/// for the orchestration to act on it and gives the step it hands over back, instead of
/// leaving it to its lease.
#[tokio::test]
async fn a_stopping_worker_gives_back_a_step_handed_for_its_last_result() {
    use tasker_shared::database::complete::{self, Completion};
    let db = TestDb::new().await;
    let ns = "late_handoffs";
    let worker = handoff_worker(&db, ns, 1, Default::default()).await;
    let chain = start_task(&db, ns, "chain").await;
    let reported = result_message(&db, chain.steps["first"]).await;
    assert!(reported.handoff.is_some());
    worker.shutdown.cancel();
    // The orchestration takes the result and hands the child over well after the worker
    // began to stop (a slow orchestration: the worker has long finished its handlers).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queue = QueueName::worker(ns).unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    complete::steps(
        &mut tx,
        &[Completion {
            step_uuid: reported.step_uuid,
            correlation_id: reported.correlation_id,
            handoff: reported.handoff.clone(),
        }],
        &json!({"event": "completed"}),
        Some(&queue),
    )
    .await
    .unwrap();
    sqlx::query("DELETE FROM pgmq.q_orchestration_step_results WHERE message ->> 'step_uuid' = $1")
        .bind(reported.step_uuid.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    worker.running.await.unwrap().unwrap();
    assert_eq!(
        state_and_error(&db, chain.steps["second"]).await.0,
        WorkflowStepState::Enqueued,
        "the handed step is given back at once"
    );
    assert_eq!(worker.runs.load(Ordering::SeqCst), 1);
}

/// The scan after lost notifications skips the handed steps this process is running:
/// with two handed steps running and one slot free, the one whose notification was
/// lost still takes that slot.
#[tokio::test]
async fn a_rescan_looks_past_the_handed_steps_already_running() {
    let db = TestDb::new().await;
    let ns = "busy_rescan";
    let worker = handoff_worker(&db, ns, 3, Default::default()).await;
    let mut offer = None;
    for _ in 0..2 {
        let held = start_task(&db, ns, "chain_hold").await;
        let reported = result_message(&db, held.steps["first"]).await;
        offer = reported.handoff.clone();
        hand_over(&db, ns, std::slice::from_ref(&reported)).await;
        wait_for_state(&db, held.steps["second"], WorkflowStepState::InProgress).await;
    }
    let offer = offer.expect("an idle worker offers");
    // One slot left. A chain's child is handed without a word, as in a lost notification.
    let chain = start_task(&db, ns, "chain").await;
    let reported = result_message(&db, chain.steps["first"]).await;
    hand_over_unheard(&db, ns, &reported, &offer).await;
    drop_listen_connection(&db).await;
    wait_for_state(
        &db,
        chain.steps["second"],
        WorkflowStepState::EnqueuedForOrchestration,
    )
    .await;
    worker.release.cancel();
    worker.shutdown.cancel();
    worker.running.await.unwrap().unwrap();
}
