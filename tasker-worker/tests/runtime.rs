//! `WorkerCore` in process against a real database: duplicate deliveries run once.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use pgmq_notify::{PgmqClient, QueueName};
use tasker_shared::database::{named_task, task, transition};
use tasker_shared::messaging::{ORCHESTRATION_STEP_RESULTS, StepMessage};
use tasker_shared::state_machine::WorkflowStepState;
use tasker_shared::template::TaskTemplate;
use tasker_shared::testing::TestDb;
use tasker_worker::handlers::{HandlerRegistry, StepContext, StepError, StepHandler, StepResult};
use tasker_worker::{WorkerConfig, WorkerCore};

struct Counting(Arc<AtomicUsize>);

#[async_trait]
impl StepHandler for Counting {
    async fn execute(&self, _ctx: StepContext) -> Result<StepResult, StepError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(StepResult::success(json!("done")))
    }
}

#[tokio::test]
async fn duplicate_messages_run_the_step_once() {
    let db = TestDb::new().await;
    let template = TaskTemplate::from_yaml(
        "name: one\nnamespace_name: dup\nversion: '1'\nsteps:\n  - name: only\n    handler: { callable: count }\n",
        "one",
    )
    .unwrap();
    named_task::register(&db.pool, &template).await.unwrap();
    let nt = named_task::find(&db.pool, "dup", "one", None)
        .await
        .unwrap()
        .unwrap();
    let new = task::NewTask {
        task_uuid: Uuid::now_v7(),
        context: json!({}),
        identity_hash: "dup".into(),
        initiator: "t".into(),
        source_system: "t".into(),
        reason: "t".into(),
        tags: vec![],
        priority: 0,
        correlation_id: Uuid::now_v7(),
        parent_correlation_id: None,
    };
    let mut tx = db.pool.begin().await.unwrap();
    let task::CreateOutcome::Created(created) = task::create(&mut tx, &nt, &new).await.unwrap()
    else {
        panic!()
    };
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
    let message = StepMessage {
        task_uuid: new.task_uuid,
        step_uuid,
        correlation_id: new.correlation_id,
    };
    let queue = QueueName::worker("dup").unwrap();
    // The same message, delivered twice.
    PgmqClient::send_with_notify(&mut *tx, &queue, &message, 0)
        .await
        .unwrap();
    PgmqClient::send_with_notify(&mut *tx, &queue, &message, 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = HandlerRegistry::new();
    registry.register("count", Counting(runs.clone()));
    let mut config = WorkerConfig::new(db.url.clone());
    config.poll_interval = Duration::from_millis(50);
    let core = WorkerCore::with_pool(config, db.pool.clone(), registry, vec!["dup".into()])
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(core.run(shutdown.clone()));

    let client = PgmqClient::new(db.pool.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.depth(&queue).await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the worker queue never drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();

    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    assert_eq!(client.depth(&results).await.unwrap(), 1);
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(
        transition::current_step_state(&mut conn, step_uuid)
            .await
            .unwrap(),
        Some(WorkflowStepState::EnqueuedForOrchestration)
    );
}
