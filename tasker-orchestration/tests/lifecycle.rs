//! The orchestration lifecycle against a real database, with the worker's side played
//! by the shared SQL seam (claim + record_result), so each rule is checked in isolation.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

use serde_json::{Value, json};
use uuid::Uuid;

use pgmq_notify::{PgmqClient, QueueName};
use tasker_orchestration::lifecycle::result_processor::{self, ResultOutcome};
use tasker_orchestration::lifecycle::step_enqueuer::StepEnqueuerService;
use tasker_orchestration::lifecycle::task_initializer::{CreateTaskError, create_task};
use tasker_shared::api::{TaskRequest, TaskResponse};
use tasker_shared::database::{named_task, step, task};
use tasker_shared::messaging::{ORCHESTRATION_STEP_RESULTS, StepMessage};
use tasker_shared::results::StepErrorInfo;
use tasker_shared::state_machine::TaskState;
use tasker_shared::template::TaskTemplate;
use tasker_shared::testing::{TestDb, factory};

const DIAMOND: &str = r#"
name: diamond
namespace_name: lc
version: 1.0.0
steps:
  - name: start
    handler: { callable: c }
  - name: left
    dependencies: [start]
    handler: { callable: c }
  - name: right
    dependencies: [start]
    handler: { callable: c }
    retry: { max_attempts: 2, backoff: none }
  - name: end
    dependencies: [left, right]
    handler: { callable: c }
"#;

/// Registers the diamond template.
async fn setup(db: &TestDb) -> named_task::NamedTask {
    factory::named_task(&db.pool, DIAMOND).await
}

fn queue() -> QueueName {
    QueueName::worker("lc").unwrap()
}

/// Reads the worker queue and plays a worker: claim, then store `outcome`.
/// Returns the names of the steps that were on the queue.
async fn work(
    db: &TestDb,
    outcome: impl Fn(&str) -> Result<Value, (bool, &'static str)>,
) -> Vec<String> {
    work_with(db, |name| {
        outcome(name).map_err(|(retryable, msg)| factory::error(msg, retryable))
    })
    .await
}

/// Like [`work`], with the handler's full error.
async fn work_with(
    db: &TestDb,
    outcome: impl Fn(&str) -> Result<Value, StepErrorInfo>,
) -> Vec<String> {
    let client = PgmqClient::new(db.pool.clone());
    let msgs = client.read::<StepMessage>(&queue(), 30, 100).await.unwrap();
    let mut names = Vec::new();
    for m in msgs {
        let mut tx = db.pool.begin().await.unwrap();
        let step::claim::ClaimOutcome::Claimed(c) =
            step::claim::one(&mut tx, m.message.step_uuid, "w", m.read_ct > 1)
                .await
                .unwrap()
        else {
            panic!("not claimable")
        };
        let r = match outcome(&c.step_name) {
            Ok(v) => factory::succeeded(c.step_uuid, c.attempt, v),
            Err(error) => factory::failed(c.step_uuid, c.attempt, Some(error)),
        };
        assert!(
            step::result::record(&mut tx, c.step_uuid, c.attempt, &r)
                .await
                .unwrap()
                .applied()
        );
        PgmqClient::delete(&mut *tx, &queue(), m.msg_id)
            .await
            .unwrap();
        let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
        PgmqClient::send_with_notify(&mut *tx, &results, &m.message, 0)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        names.push(c.step_name.clone());
    }
    names.sort();
    names
}

/// Processes every pending result message.
async fn orchestrate(db: &TestDb) -> Vec<ResultOutcome> {
    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    let client = PgmqClient::new(db.pool.clone());
    let msgs = client.read::<StepMessage>(&results, 30, 100).await.unwrap();
    let mut out = Vec::new();
    for m in msgs {
        out.push(
            result_processor::process_message(&db.pool, &results, m.msg_id, &m.message)
                .await
                .unwrap(),
        );
    }
    out
}

async fn task_state(db: &TestDb, task_uuid: Uuid) -> TaskState {
    let mut conn = db.pool.acquire().await.unwrap();
    task::transition::current_state(&mut conn, task_uuid)
        .await
        .unwrap()
        .unwrap()
}

async fn step_states(db: &TestDb, task_uuid: Uuid) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = step::read::readiness(&db.pool, task_uuid, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.current_state))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn diamond_runs_in_waves_and_completes() {
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 1})),
    )
    .await
    .unwrap();
    assert_eq!(created.enqueued_steps, 1);
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::StepsInProcess
    );

    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["start"]);
    assert_eq!(orchestrate(&db).await, [ResultOutcome::Completed]);
    // Both branches were enqueued in the transaction that completed `start`.
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["left", "right"]);
    assert_eq!(orchestrate(&db).await.len(), 2);
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["end"]);
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::StepsInProcess
    );
    orchestrate(&db).await;
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::Complete
    );
    assert!(
        task::read::get(&db.pool, created.task_uuid)
            .await
            .unwrap()
            .unwrap()
            .completed_at
            .is_some()
    );
    assert!(
        step_states(&db, created.task_uuid)
            .await
            .iter()
            .all(|(_, s)| s == "complete")
    );
}

#[tokio::test]
async fn fan_in_waits_for_every_parent() {
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 2})),
    )
    .await
    .unwrap();
    work(&db, |n| Ok(json!(n))).await;
    orchestrate(&db).await;
    // Only `left` succeeds in this round; `right` fails retryably.
    work(&db, |n| {
        if n == "left" {
            Ok(json!(1))
        } else {
            Err((true, "flaky"))
        }
    })
    .await;
    let outcomes = orchestrate(&db).await;
    assert!(outcomes.contains(&ResultOutcome::Completed));
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, ResultOutcome::RetryScheduled(_)))
    );
    let states = step_states(&db, created.task_uuid).await;
    assert!(
        states.contains(&("end".into(), "pending".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("right".into(), "waiting_for_retry".into())),
        "{states:?}"
    );
    // The retry message is already on the queue (backoff none → no delay).
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["right"]);
    orchestrate(&db).await;
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["end"]);
}

#[tokio::test]
async fn exhausted_or_permanent_failures_block_the_task_at_once() {
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 3})),
    )
    .await
    .unwrap();
    work(&db, |n| Ok(json!(n))).await;
    orchestrate(&db).await;
    // `left` fails permanently while `right` is still running.
    let seen = work(&db, |n| {
        if n == "left" {
            Err((false, "bad input"))
        } else {
            Ok(json!(1))
        }
    })
    .await;
    assert_eq!(seen, ["left", "right"]);
    let outcomes = orchestrate(&db).await;
    assert!(outcomes.contains(&ResultOutcome::Failed), "{outcomes:?}");
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::BlockedByFailures
    );
    let ctx = task::read::execution_context(&db.pool, created.task_uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ctx.execution_status, "blocked_by_failures");
    // `end` is never enqueued.
    assert!(work(&db, |_| Ok(json!(0))).await.is_empty());
}

#[tokio::test]
async fn duplicate_result_messages_change_nothing() {
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 4})),
    )
    .await
    .unwrap();
    work(&db, |n| Ok(json!(n))).await;
    // Deliver the same result message twice.
    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    let client = PgmqClient::new(db.pool.clone());
    let msgs = client.read::<StepMessage>(&results, 30, 10).await.unwrap();
    assert_eq!(msgs.len(), 1);
    PgmqClient::send_with_notify(&db.pool, &results, &msgs[0].message, 0)
        .await
        .unwrap();
    let first =
        result_processor::process_message(&db.pool, &results, msgs[0].msg_id, &msgs[0].message)
            .await
            .unwrap();
    assert_eq!(first, ResultOutcome::Completed);
    assert_eq!(orchestrate(&db).await, [ResultOutcome::Stale]);
    // Children were enqueued exactly once.
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["left", "right"]);
    assert_eq!(client.depth(&queue()).await.unwrap(), 0);
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::StepsInProcess
    );
}

#[tokio::test]
async fn creation_errors_are_specific() {
    let db = TestDb::new().await;
    setup(&db).await;
    let req = TaskRequest::new("lc", "diamond", json!({"same": 1}));
    let first = create_task(&db.pool, &req).await.unwrap();
    match create_task(&db.pool, &req).await.unwrap_err() {
        CreateTaskError::Duplicate { existing_task_uuid } => {
            assert_eq!(existing_task_uuid, first.task_uuid)
        }
        other => panic!("{other:?}"),
    }
    let mut keyed = req.clone();
    keyed.idempotency_key = Some("k1".into());
    create_task(&db.pool, &keyed).await.unwrap();

    let err = create_task(&db.pool, &TaskRequest::new("lc", "nope", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no template 'nope' is registered in namespace 'lc'"
    );
    let mut versioned = TaskRequest::new("lc", "diamond", json!({}));
    versioned.version = Some("9.9.9".into());
    let err = create_task(&db.pool, &versioned).await.unwrap_err();
    assert!(err.to_string().contains("version '9.9.9'"), "{err}");
    let err = create_task(&db.pool, &TaskRequest::new("lc", "diamond", json!("text")))
        .await
        .unwrap_err();
    assert!(matches!(err, CreateTaskError::Invalid(_)));
    assert!(
        err.to_string().contains("context must be a JSON object"),
        "{err}"
    );
}

#[tokio::test]
async fn sweep_enqueues_tasks_nobody_started() {
    let db = TestDb::new().await;
    let nt = setup(&db).await;
    // A task created without enqueueing (as a queue-submitted request would be).
    let new = factory::task(&nt).create(&db.pool).await;
    assert_eq!(
        StepEnqueuerService::new(db.pool.clone())
            .process_batch(10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        task_state(&db, new.task_uuid).await,
        TaskState::StepsInProcess
    );
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["start"]);
    // Nothing left to sweep.
    assert_eq!(
        StepEnqueuerService::new(db.pool.clone())
            .process_batch(10)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn router_answers_without_a_port() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    let db = TestDb::new().await;
    setup(&db).await;
    let app =
        tasker_orchestration::web::app(tasker_orchestration::web::AppState::new(db.pool.clone()));
    let call = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let post = |body: &str| {
        Request::post("/v1/tasks")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };

    let (status, body) = call(Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );

    let (status, body) = call(post(
        r#"{"namespace":"lc","name":"diamond","context":{"a":1}}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let task: TaskResponse = serde_json::from_value(body).unwrap();
    assert_eq!(task.steps.len(), 4);

    let (status, body) = call(
        Request::get(format!("/v1/tasks/{}", task.task_uuid))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "steps_in_process");

    let (status, body) = call(post(
        r#"{"namespace":"lc","name":"diamond","context":{"a":1}}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "CONFLICT");
    assert_eq!(body["error"]["existing_task_uuid"], json!(task.task_uuid));

    let (status, body) = call(post(r#"{"namespace":"lc","name":"diamond"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context"),
        "{body}"
    );

    let (status, body) = call(post(
        r#"{"namespace":"lc","name":"diamond","context":{},"bogus":1}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("bogus"),
        "{body}"
    );

    let (status, body) = call(post("not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "BAD_REQUEST");

    let (status, body) = call(post(r#"{"namespace":"lc","name":"diamond","context":[]}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");

    let (status, body) = call(
        Request::get("/v1/tasks/not-a-uuid")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not-a-uuid")
    );

    let (status, _) = call(
        Request::get(format!("/v1/tasks/{}", Uuid::now_v7()))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn blocked_tasks_record_results_but_start_nothing_new() {
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 5})),
    )
    .await
    .unwrap();
    work(&db, |n| Ok(json!(n))).await;
    orchestrate(&db).await;
    // Both branches are claimed; `left` fails permanently and is processed first.
    let client = PgmqClient::new(db.pool.clone());
    let claimed = work(&db, |n| {
        if n == "left" {
            Err((false, "bad"))
        } else {
            Ok(json!(1))
        }
    })
    .await;
    assert_eq!(claimed, ["left", "right"]);
    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    let msgs = client.read::<StepMessage>(&results, 30, 10).await.unwrap();
    let states = step_states(&db, created.task_uuid).await;
    let left_uuid = step::read::readiness(&db.pool, created.task_uuid, None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "left")
        .unwrap()
        .workflow_step_uuid;
    let (left_msg, right_msg): (Vec<_>, Vec<_>) = msgs
        .into_iter()
        .partition(|m| m.message.step_uuid == left_uuid);
    for m in left_msg.iter().chain(&right_msg) {
        result_processor::process_message(&db.pool, &results, m.msg_id, &m.message)
            .await
            .unwrap();
    }
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::BlockedByFailures,
        "{states:?}"
    );
    let states = step_states(&db, created.task_uuid).await;
    assert!(
        states.contains(&("right".into(), "complete".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("end".into(), "pending".into())),
        "{states:?}"
    );
    assert_eq!(client.depth(&queue()).await.unwrap(), 0);
}

#[tokio::test]
async fn cancellation_cancels_unstarted_steps_only() {
    use tasker_orchestration::lifecycle::task_cancellation::{CancelError, cancel_task};
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 6})),
    )
    .await
    .unwrap();
    work(&db, |n| Ok(json!(n))).await;
    orchestrate(&db).await;
    // `left` and `right` are enqueued; claim `left` only (it is "running").
    let client = PgmqClient::new(db.pool.clone());
    let msgs = client.read::<StepMessage>(&queue(), 30, 10).await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let running = msgs[0].message.step_uuid;
    assert!(matches!(
        step::claim::one(&mut conn, running, "w", false)
            .await
            .unwrap(),
        step::claim::ClaimOutcome::Claimed(_)
    ));
    drop(conn);

    let cancelled = cancel_task(&db.pool, created.task_uuid, "tester", "test")
        .await
        .unwrap();
    assert_eq!(cancelled, 2); // the other branch (enqueued) and `end` (pending)
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::Cancelled
    );
    let states = step_states(&db, created.task_uuid).await;
    assert_eq!(
        states.iter().filter(|(_, s)| s == "cancelled").count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|(_, s)| s == "in_progress").count(),
        1,
        "{states:?}"
    );
    assert!(matches!(
        cancel_task(&db.pool, created.task_uuid, "tester", "again").await,
        Err(CancelError::AlreadyEnded {
            state: TaskState::Cancelled,
            ..
        })
    ));
    let history = task::history::list(&db.pool, created.task_uuid)
        .await
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.metadata["actor"], "tester");
}

#[tokio::test]
async fn staleness_uses_template_limits_and_files_one_dlq_entry() {
    use tasker_orchestration::lifecycle::staleness::StalenessDetector;
    use tasker_shared::database::dlq::{self, StalenessThresholds};
    let db = TestDb::new().await;
    setup(&db).await;
    let impatient = DIAMOND.replace(
        "name: diamond\n",
        "name: impatient\nlifecycle:\n  max_steps_in_process_minutes: 0\n",
    );
    named_task::register(
        &db.pool,
        &TaskTemplate::from_yaml(&impatient, "impatient").unwrap(),
    )
    .await
    .unwrap();
    let patient = create_task(&db.pool, &TaskRequest::new("lc", "diamond", json!({})))
        .await
        .unwrap();
    let stale = create_task(&db.pool, &TaskRequest::new("lc", "impatient", json!({})))
        .await
        .unwrap();

    // Defaults are generous: only the template that set 0 minutes is stale.
    let detector = StalenessDetector::new(db.pool.clone(), StalenessThresholds::default());
    assert_eq!(detector.detect_once(10).await.unwrap(), 1);
    assert_eq!(task_state(&db, stale.task_uuid).await, TaskState::Error);
    assert_eq!(
        task_state(&db, patient.task_uuid).await,
        TaskState::StepsInProcess
    );
    let entries = dlq::list(&db.pool, Some("pending"), 10, 0).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].task_uuid, stale.task_uuid);
    assert_eq!(entries[0].original_state, "steps_in_process");
    assert_eq!(entries[0].metadata["threshold_minutes"], 0);
    assert_eq!(
        entries[0].task_snapshot["steps"].as_array().unwrap().len(),
        4
    );
    // A second pass finds nothing new.
    assert_eq!(detector.detect_once(10).await.unwrap(), 0);
    // Zero-minute defaults catch the other one too.
    let strict = StalenessThresholds {
        waiting_for_dependencies_minutes: 0,
        waiting_for_retry_minutes: 0,
        steps_in_process_minutes: 0,
        blocked_minutes: 0,
    };
    assert_eq!(
        StalenessDetector::new(db.pool.clone(), strict)
            .detect_once(10)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn reset_restarts_the_retry_budget_but_not_the_fencing_token() {
    use tasker_orchestration::lifecycle::step_actions;
    use tasker_shared::api::StepManualAction;
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 7})),
    )
    .await
    .unwrap();
    work(&db, |_| Err((false, "nope"))).await;
    orchestrate(&db).await;
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::BlockedByFailures
    );
    let start = step::read::readiness(&db.pool, created.task_uuid, None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "start")
        .unwrap();
    assert_eq!((start.attempts, start.retry_eligible), (1, true));
    let action = StepManualAction::ResetForRetry {
        reason: "retry".into(),
        reset_by: "ops".into(),
    };
    step_actions::apply(
        &db.pool,
        created.task_uuid,
        start.workflow_step_uuid,
        &action,
    )
    .await
    .unwrap();
    // Back in process, the step re-enqueued, its attempt counter still growing.
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::StepsInProcess
    );
    let client = PgmqClient::new(db.pool.clone());
    let msgs = client.read::<StepMessage>(&queue(), 30, 10).await.unwrap();
    assert_eq!(msgs.len(), 1);
    let mut conn = db.pool.acquire().await.unwrap();
    let step::claim::ClaimOutcome::Claimed(c) =
        step::claim::one(&mut conn, msgs[0].message.step_uuid, "w", false)
            .await
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(c.attempt, 2);
    // Resetting a step that is not in error is refused.
    let err = step_actions::apply(
        &db.pool,
        created.task_uuid,
        start.workflow_step_uuid,
        &action,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("only a step in error can be reset"),
        "{err}"
    );
}

#[tokio::test]
async fn a_batch_commits_once_and_isolates_a_failing_result() {
    let db = TestDb::new().await;
    setup(&db).await;
    let good = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"b": 1})),
    )
    .await
    .unwrap();
    let bad = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"b": 2})),
    )
    .await
    .unwrap();
    // Both roots succeed...
    work(&db, |n| Ok(json!(n))).await;
    // ...but one result is corrupted before the orchestration sees it.
    let bad_step = step::read::readiness(&db.pool, bad.task_uuid, None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "start")
        .unwrap();
    sqlx::query(
        "UPDATE tasker.workflow_steps SET results = '\"garbage\"' WHERE workflow_step_uuid = $1",
    )
    .bind(bad_step.workflow_step_uuid)
    .execute(&db.pool)
    .await
    .unwrap();
    // Force the corrupt one through the failure path, which reads the stored result.
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query(
        "UPDATE tasker.workflow_steps SET current_state = 'enqueued_as_error_for_orchestration'
         WHERE workflow_step_uuid = $1",
    )
    .bind(bad_step.workflow_step_uuid)
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    // And an unreadable message on top.
    PgmqClient::send_with_notify(&db.pool, &results, &json!({"nonsense": true}), 0)
        .await
        .unwrap();

    // A zero lease, so redeliveries below need no waiting.
    let read = result_processor::process_batch(&db.pool, &results, 0, 10)
        .await
        .unwrap();
    assert_eq!(read, 3);
    // The good result went through: its children are enqueued.
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["left", "right"]);
    assert_eq!(
        task_state(&db, good.task_uuid).await,
        TaskState::StepsInProcess
    );
    // The failing one was rolled back alone and waits for its lease to end; the
    // unreadable one is archived.
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pgmq.q_orchestration_step_results WHERE message->>'step_uuid' = $1::text",
    )
    .bind(bad_step.workflow_step_uuid)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, 1);
    let archived: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pgmq.a_orchestration_step_results")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(archived, 1);

    // Redelivered (lease 0) it fails every time; at the limit it is archived too.
    for _ in 2..=result_processor::MAX_RESULT_DELIVERIES {
        result_processor::process_batch(&db.pool, &results, 0, 10)
            .await
            .unwrap();
    }
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pgmq.q_orchestration_step_results WHERE message->>'step_uuid' = $1::text",
    )
    .bind(bad_step.workflow_step_uuid)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
    let archived: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pgmq.a_orchestration_step_results")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(archived, 2);
}

#[tokio::test]
async fn a_huge_retry_after_is_capped_at_one_day() {
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 9})),
    )
    .await
    .unwrap();
    work(&db, |n| Ok(json!(n))).await;
    orchestrate(&db).await;
    work_with(&db, |n| {
        if n == "right" {
            Err(StepErrorInfo {
                message: "come back much later".into(),
                error_type: "test".into(),
                retryable: true,
                retry_after_ms: Some(u64::MAX),
                backtrace: None,
                context: None,
            })
        } else {
            Ok(json!(1))
        }
    })
    .await;
    let outcomes = orchestrate(&db).await;
    let day = std::time::Duration::from_secs(24 * 60 * 60);
    assert!(
        outcomes.contains(&ResultOutcome::RetryScheduled(day)),
        "{outcomes:?}"
    );
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::WaitingForRetry
    );
}

/// Two results of one task in one batch: the second finalization starts from the state
/// the first left, not from the state the batch read. Here the task waits for retries;
/// `left` succeeds (the task goes back to steps_in_process while `right`'s result is
/// pending) and then `right` fails for good: the task must end blocked.
#[tokio::test]
async fn a_batch_finalizes_each_task_from_the_state_its_last_result_left() {
    let db = TestDb::new().await;
    setup(&db).await;
    let created = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"x": 4})),
    )
    .await
    .unwrap();
    work(&db, |n| Ok(json!(n))).await;
    orchestrate(&db).await;
    // Both branches fail once and wait for their retries, due at once.
    assert_eq!(
        work_with(&db, |_| Err(StepErrorInfo {
            message: "try again".into(),
            error_type: "test".into(),
            retryable: true,
            retry_after_ms: Some(0),
            backtrace: None,
            context: None,
        }))
        .await,
        ["left", "right"]
    );
    orchestrate(&db).await;
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::WaitingForRetry
    );
    let seen = work(&db, |n| {
        if n == "right" {
            Err((false, "bad input"))
        } else {
            Ok(json!(1))
        }
    })
    .await;
    assert_eq!(seen, ["left", "right"]);
    // `left`'s result first in the queue, then `right`'s.
    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    let client = PgmqClient::new(db.pool.clone());
    let right = step_uuid_of(&db, created.task_uuid, "right").await;
    let queued = client.read::<StepMessage>(&results, 0, 10).await.unwrap();
    assert_eq!(queued.len(), 2);
    if queued[0].message.step_uuid == right {
        let mut conn = db.pool.acquire().await.unwrap();
        PgmqClient::delete(&mut *conn, &results, queued[0].msg_id)
            .await
            .unwrap();
        PgmqClient::send_with_notify(&mut *conn, &results, &queued[0].message, 0)
            .await
            .unwrap();
    }
    let read = result_processor::process_batch(&db.pool, &results, 30, 10)
        .await
        .unwrap();
    assert_eq!(read, 2);
    assert_eq!(
        task_state(&db, created.task_uuid).await,
        TaskState::BlockedByFailures
    );
    // `end` is never enqueued.
    assert!(work(&db, |_| Ok(json!(0))).await.is_empty());
}

async fn step_uuid_of(db: &TestDb, task_uuid: Uuid, name: &str) -> Uuid {
    step::read::readiness(&db.pool, task_uuid, None)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap()
        .workflow_step_uuid
}

/// A result message whose `task_uuid` is not its step's task, in a batch next to a
/// correct one: it is stale and changes nothing, while the correct one completes. Two
/// guards stand in the way, and this fails only if both go: the batch loads a step only
/// under the task the message names (`step::processing::lock_and_load_many`), and matches results
/// to loaded steps by task and step, never by step alone.
#[tokio::test]
async fn a_result_naming_the_wrong_task_changes_nothing() {
    let db = TestDb::new().await;
    setup(&db).await;
    let good = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"w": 1})),
    )
    .await
    .unwrap();
    let other = create_task(
        &db.pool,
        &TaskRequest::new("lc", "diamond", json!({"w": 2})),
    )
    .await
    .unwrap();
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["start", "start"]);
    // `other`'s result message now names `good`'s task.
    let other_start = step_uuid_of(&db, other.task_uuid, "start").await;
    let rewritten = sqlx::query(
        "UPDATE pgmq.q_orchestration_step_results
         SET message = jsonb_set(message, '{task_uuid}', to_jsonb($1::text))
         WHERE message->>'step_uuid' = $2::text",
    )
    .bind(good.task_uuid)
    .bind(other_start)
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(rewritten.rows_affected(), 1);

    let results = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    let read = result_processor::process_batch(&db.pool, &results, 30, 10)
        .await
        .unwrap();
    assert_eq!(read, 2);
    // Only `good`'s children were enqueued; `other`'s step still waits for a result.
    assert_eq!(work(&db, |n| Ok(json!(n))).await, ["left", "right"]);
    let states = step_states(&db, other.task_uuid).await;
    assert!(
        states.contains(&("start".into(), "enqueued_for_orchestration".into())),
        "{states:?}"
    );
    assert_eq!(
        task_state(&db, good.task_uuid).await,
        TaskState::StepsInProcess
    );
}
