//! DB-level tests of the SQL seam, each on a fresh migrated database.

#![allow(clippy::unwrap_used)]

use serde_json::json;
use tasker_shared::database::{named_task, step, task};
use tasker_shared::identity::identity_hash;
use tasker_shared::state_machine::{TaskState, TransitionOutcome, WorkflowStepState};
use tasker_shared::template::TaskTemplate;
use tasker_shared::testing::TestDb;
use uuid::Uuid;

const DIAMOND: &str = r#"
name: diamond
namespace_name: tests
version: 1.0.0
steps:
  - name: start
    handler: { callable: builtin::square }
  - name: left
    dependencies: [start]
    handler: { callable: builtin::square }
  - name: right
    dependencies: [start]
    handler: { callable: builtin::square }
  - name: end
    dependencies: [left, right]
    handler: { callable: builtin::square, initialization: { k: 1 } }
    retry: { max_attempts: 5, backoff: linear }
"#;

async fn register(db: &TestDb, yaml: &str) -> named_task::NamedTask {
    let template = TaskTemplate::from_yaml(yaml, "test").unwrap();
    named_task::register(&db.pool, &template).await.unwrap();
    named_task::find(&db.pool, &template.namespace_name, &template.name, None)
        .await
        .unwrap()
        .unwrap()
}

fn new_task(nt: &named_task::NamedTask, context: serde_json::Value) -> task::create::NewTask {
    task::create::NewTask {
        task_uuid: Uuid::now_v7(),
        identity_hash: identity_hash(nt.named_task_uuid, nt.identity_strategy, &context, None)
            .unwrap(),
        context,
        initiator: "test".into(),
        source_system: "test".into(),
        reason: "test".into(),
        tags: vec![],
        priority: 0,
        correlation_id: Uuid::now_v7(),
        parent_correlation_id: None,
    }
}

async fn create(db: &TestDb, nt: &named_task::NamedTask) -> task::create::CreatedTask {
    let mut tx = db.pool.begin().await.unwrap();
    let out = task::create::pending(&mut tx, nt, &new_task(nt, json!({"n": Uuid::now_v7()})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    match out {
        task::create::CreateOutcome::Created(c) => c,
        other => panic!("{other:?}"),
    }
}

async fn state_of(db: &TestDb, step_uuid: Uuid) -> WorkflowStepState {
    let mut conn = db.pool.acquire().await.unwrap();
    step::transition::current_state(&mut conn, step_uuid)
        .await
        .unwrap()
        .unwrap()
}

/// Drives a step through the happy path to `complete`.
async fn complete_step(db: &TestDb, step_uuid: Uuid) {
    use WorkflowStepState::*;
    let mut conn = db.pool.acquire().await.unwrap();
    for (from, to) in [
        (Pending, Enqueued),
        (Enqueued, InProgress),
        (InProgress, EnqueuedForOrchestration),
        (EnqueuedForOrchestration, Complete),
    ] {
        let out = step::transition::one(&mut conn, step_uuid, &[from], to, &json!({}), None)
            .await
            .unwrap();
        assert!(out.applied(), "{from} -> {to}: {out:?}");
    }
}

#[tokio::test]
async fn registration_is_idempotent_and_versioned() {
    let db = TestDb::new().await;
    let t = TaskTemplate::from_yaml(DIAMOND, "d.yaml").unwrap();
    use named_task::RegisterOutcome::*;
    assert_eq!(named_task::register(&db.pool, &t).await.unwrap(), Created);
    assert_eq!(named_task::register(&db.pool, &t).await.unwrap(), Unchanged);
    let mut changed = t.clone();
    changed.description = Some("changed".into());
    assert_eq!(
        named_task::register(&db.pool, &changed).await.unwrap(),
        Updated
    );
    let mut v2 = t.clone();
    v2.version = "2.0.0".into();
    assert_eq!(named_task::register(&db.pool, &v2).await.unwrap(), Created);
    let newest = named_task::find(&db.pool, "tests", "diamond", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.version, "2.0.0");
    let v1 = named_task::find(&db.pool, "tests", "diamond", Some("1.0.0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.template.description.as_deref(), Some("changed"));
    assert!(
        named_task::find(&db.pool, "tests", "nope", None)
            .await
            .unwrap()
            .is_none()
    );
    // Registering created the namespace's queue.
    let queues: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pgmq.meta WHERE queue_name = 'worker_tests_queue'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(queues, 1);
}

#[tokio::test]
async fn create_inserts_steps_edges_and_pending_states() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let created = create(&db, &nt).await;
    assert_eq!(created.steps.len(), 4);
    assert_eq!(created.root_steps, vec![created.steps["start"]]);

    let rows = step::read::readiness(&db.pool, created.task_uuid, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r.current_state, "pending");
        let is_start = r.name == "start";
        assert_eq!(r.ready_for_execution, is_start, "{}", r.name);
        assert_eq!(r.dependencies_satisfied, is_start, "{}", r.name);
    }
    let end = rows.iter().find(|r| r.name == "end").unwrap();
    assert_eq!((end.total_parents, end.completed_parents), (2, 0));
    assert_eq!(end.max_attempts, 5);

    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(
        task::transition::current_state(&mut conn, created.task_uuid)
            .await
            .unwrap(),
        Some(TaskState::Pending)
    );
    // Each row starts its history with one `pending` entry, the latest.
    let history = task::history::list(&db.pool, created.task_uuid)
        .await
        .unwrap();
    let entries: Vec<_> = history
        .iter()
        .map(|t| {
            (
                t.to_state.as_str(),
                t.from_state.clone(),
                t.sort_key,
                t.most_recent,
            )
        })
        .collect();
    assert_eq!(entries, vec![("pending", None, 1, true)]);
    assert_eq!(history[0].metadata, json!({"event": "initialized"}));
    for step_uuid in created.steps.values() {
        let history = step::history::list(&db.pool, *step_uuid).await.unwrap();
        let entries: Vec<_> = history
            .iter()
            .map(|t| (t.to_state.as_str(), t.sort_key, t.most_recent))
            .collect();
        assert_eq!(entries, vec![("pending", 1, true)]);
    }
}

#[tokio::test]
async fn duplicate_identity_returns_the_existing_task() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let new = new_task(&nt, json!({"same": true}));
    let mut tx = db.pool.begin().await.unwrap();
    let first = task::create::pending(&mut tx, &nt, &new).await.unwrap();
    tx.commit().await.unwrap();
    let mut again = new.clone();
    again.task_uuid = Uuid::now_v7();
    let mut tx = db.pool.begin().await.unwrap();
    let second = task::create::pending(&mut tx, &nt, &again).await.unwrap();
    tx.commit().await.unwrap();
    let task::create::CreateOutcome::Created(first) = first else {
        panic!()
    };
    match second {
        task::create::CreateOutcome::Duplicate { existing_task_uuid } => {
            assert_eq!(existing_task_uuid, first.task_uuid)
        }
        other => panic!("{other:?}"),
    }
    // The refused duplicate wrote no history either.
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.task_transitions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(entries, 1);
}

#[tokio::test]
async fn readiness_follows_parents() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    complete_step(&db, c.steps["start"]).await;
    let ready: Vec<String> = step::read::readiness(&db.pool, c.task_uuid, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.ready_for_execution)
        .map(|r| r.name)
        .collect();
    assert_eq!(ready.len(), 2);
    assert!(ready.contains(&"left".to_string()) && ready.contains(&"right".to_string()));

    // One parent done is not enough for the fan-in step.
    complete_step(&db, c.steps["left"]).await;
    let end = c.steps["end"];
    let only_end = step::read::readiness(&db.pool, c.task_uuid, Some(&[end]))
        .await
        .unwrap();
    assert_eq!(only_end.len(), 1);
    assert!(!only_end[0].ready_for_execution);
    assert_eq!(only_end[0].completed_parents, 1);

    // resolved_manually satisfies a dependency too.
    let mut conn = db.pool.acquire().await.unwrap();
    let out = step::transition::one(
        &mut conn,
        c.steps["right"],
        &[WorkflowStepState::Pending],
        WorkflowStepState::ResolvedManually,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    assert!(out.applied());
    let only_end = step::read::readiness(&db.pool, c.task_uuid, Some(&[end]))
        .await
        .unwrap();
    assert!(only_end[0].ready_for_execution);
}

#[tokio::test]
async fn execution_context_statuses() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let status = |db: &TestDb| {
        let pool = db.pool.clone();
        let t = c.task_uuid;
        async move {
            task::read::execution_context(&pool, t)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let ctx = status(&db).await;
    assert_eq!(ctx.execution_status, "has_ready_steps");
    assert_eq!((ctx.total_steps, ctx.ready_steps), (4, 1));

    let mut conn = db.pool.acquire().await.unwrap();
    let start = c.steps["start"];
    step::transition::one(
        &mut conn,
        start,
        &[WorkflowStepState::Pending],
        WorkflowStepState::Enqueued,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status(&db).await.execution_status, "processing");

    step::transition::one(
        &mut conn,
        start,
        &[WorkflowStepState::Enqueued],
        WorkflowStepState::Error,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    let ctx = status(&db).await;
    assert_eq!(ctx.execution_status, "blocked_by_failures");
    assert_eq!(ctx.health_status, "blocked");

    for name in ["start", "left", "right", "end"] {
        let id = c.steps[name];
        step::transition::one(
            &mut conn,
            id,
            &[WorkflowStepState::Pending, WorkflowStepState::Error],
            WorkflowStepState::ResolvedManually,
            &json!({}),
            None,
        )
        .await
        .unwrap();
    }
    let ctx = status(&db).await;
    assert_eq!(ctx.execution_status, "all_complete");
    assert_eq!(ctx.completion_percentage, 100.0);
}

#[tokio::test]
async fn transitions_are_compare_and_swap() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let start = c.steps["start"];
    let mut conn = db.pool.acquire().await.unwrap();
    use WorkflowStepState::*;

    // Expecting the wrong state writes nothing and reports the actual one.
    let out = step::transition::one(&mut conn, start, &[Enqueued], InProgress, &json!({}), None)
        .await
        .unwrap();
    assert_eq!(
        out,
        TransitionOutcome::Conflict {
            actual: Some(Pending)
        }
    );

    // An illegal transition is refused before touching the database.
    let err = step::transition::one(&mut conn, start, &[Pending], InProgress, &json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "illegal step transition pending -> in_progress"
    );

    // Two claims race from `enqueued`: exactly one wins.
    step::transition::one(&mut conn, start, &[Pending], Enqueued, &json!({}), None)
        .await
        .unwrap();
    let mut a = db.pool.begin().await.unwrap();
    let mut b = db.pool.begin().await.unwrap();
    let first = step::claim::one(&mut a, start, "worker-a", false)
        .await
        .unwrap();
    assert!(matches!(first, step::claim::ClaimOutcome::Claimed(_)));
    // b blocks on a's row lock; commit a from another task so b can proceed.
    let b_claim = tokio::spawn(async move {
        let out = step::claim::one(&mut b, start, "worker-b", false)
            .await
            .unwrap();
        b.commit().await.unwrap();
        out
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    a.commit().await.unwrap();
    let second = b_claim.await.unwrap();
    assert!(
        matches!(
            second,
            step::claim::ClaimOutcome::NotClaimable {
                actual: Some(InProgress)
            }
        ),
        "{second:?}"
    );

    // The history is intact, sort keys 1..=3, and the row's current state is its
    // latest entry.
    let rows: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT to_state, sort_key, most_recent FROM tasker.workflow_step_transitions st
         JOIN LATERAL (SELECT sort_key = ws.state_sort_key AND to_state = ws.current_state AS most_recent
                       FROM tasker.workflow_steps ws
                       WHERE ws.workflow_step_uuid = st.workflow_step_uuid) cur ON true
         WHERE workflow_step_uuid = $1 ORDER BY sort_key",
    )
    .bind(start)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("pending".into(), 1, false),
            ("enqueued".into(), 2, false),
            ("in_progress".into(), 3, true)
        ]
    );
    let history = step::history::list(&db.pool, start).await.unwrap();
    let latest: Vec<bool> = history.iter().map(|t| t.most_recent).collect();
    assert_eq!(latest, vec![false, false, true]);

    // Task transitions: CAS too, and terminal states are final (schema enforces it).
    let t = c.task_uuid;
    let out = task::transition::one(
        &mut conn,
        t,
        &[TaskState::Pending],
        TaskState::StepsInProcess,
        &json!({}),
    )
    .await
    .unwrap();
    assert!(out.applied());
    let out = task::transition::one(
        &mut conn,
        t,
        &[TaskState::Pending],
        TaskState::Cancelled,
        &json!({}),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        TransitionOutcome::Conflict {
            actual: Some(TaskState::StepsInProcess)
        }
    );
    let raw = sqlx::query(
        "INSERT INTO tasker.task_transitions (task_uuid, to_state, from_state, sort_key)
         VALUES ($1, 'pending', 'complete', 99)",
    )
    .bind(t)
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(raw.to_string().contains("task_from_state"), "{raw}");
}

/// Every way a state or backoff column can get a value outside its list is refused:
/// the rows' states, the history's states, leaving a terminal state, and the backoff.
#[tokio::test]
async fn the_schema_refuses_unknown_states_and_leaving_terminal_ones() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let (t, start) = (c.task_uuid, c.steps["start"]);
    let refused = [
        ("UPDATE tasker.tasks SET current_state = 'bogus' WHERE task_uuid = $1", t, "task_state"),
        (
            "UPDATE tasker.workflow_steps SET current_state = 'bogus' WHERE workflow_step_uuid = $1",
            start,
            "step_state",
        ),
        (
            "UPDATE tasker.workflow_steps SET backoff = 'sometimes' WHERE workflow_step_uuid = $1",
            start,
            "backoff_kind",
        ),
        (
            "INSERT INTO tasker.task_transitions (task_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'bogus', 'pending', 99)",
            t,
            "task_state",
        ),
        (
            "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'bogus', 'pending', 99)",
            start,
            "step_state",
        ),
        (
            "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'pending', 'complete', 99)",
            start,
            "step_from_state",
        ),
        (
            "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'pending', 'bogus', 99)",
            start,
            "step_from_state",
        ),
    ];
    for (statement, id, domain) in refused {
        let error = sqlx::query(statement)
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap_err();
        assert!(error.to_string().contains(domain), "{statement}: {error}");
    }
    // A step in error may be left (an operator's retry); the history takes it.
    sqlx::query(
        "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
         VALUES ($1, 'pending', 'error', 99)",
    )
    .bind(start)
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn stale_attempt_cannot_record_a_result() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let start = c.steps["start"];
    let mut conn = db.pool.acquire().await.unwrap();
    step::transition::one(
        &mut conn,
        start,
        &[WorkflowStepState::Pending],
        WorkflowStepState::Enqueued,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    let step::claim::ClaimOutcome::Claimed(first) = step::claim::one(&mut conn, start, "a", false)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(first.attempt, 1);
    // Without redelivery, an in-progress step cannot be claimed again.
    assert!(matches!(
        step::claim::one(&mut conn, start, "b", false)
            .await
            .unwrap(),
        step::claim::ClaimOutcome::NotClaimable { .. }
    ));
    // After the lease expired (the message was redelivered) a second worker claims it.
    let step::claim::ClaimOutcome::Claimed(second) =
        step::claim::one(&mut conn, start, "b", true).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(second.attempt, 2);
    assert_eq!(second.task_context, first.task_context);

    let result = |attempt: i32| tasker_shared::results::StepExecutionResult {
        step_uuid: start,
        success: true,
        result: json!(attempt),
        status: tasker_shared::results::ResultStatus::Completed,
        error: None,
        metadata: tasker_shared::results::ResultMetadata {
            attempt,
            execution_time_ms: 1,
            worker_id: "w".into(),
            started_at: chrono::Utc::now(),
            completed_at: chrono::Utc::now(),
            custom: serde_json::Value::Null,
        },
    };
    // Each worker hands over through the step's message on its queue.
    let client = pgmq_notify::PgmqClient::new(db.pool.clone());
    let worker_queue = pgmq_notify::QueueName::worker("tests").unwrap();
    client.create_queue(&worker_queue).await.unwrap();
    let results_queue =
        pgmq_notify::QueueName::new(tasker_shared::messaging::ORCHESTRATION_STEP_RESULTS).unwrap();
    let msg_id = pgmq_notify::PgmqClient::send_with_notify(
        &db.pool,
        &worker_queue,
        &json!({"step_uuid": start}),
        0,
    )
    .await
    .unwrap();
    let handed = json!({"step_uuid": start, "from": "fresh"});
    let handover = step::result::Handover {
        worker_queue: &worker_queue,
        msg_id,
        results_queue: &results_queue,
        message: &handed,
    };
    let depths = || async {
        (
            client.depth(&worker_queue).await.unwrap(),
            client.depth(&results_queue).await.unwrap(),
        )
    };

    // The first worker comes back late: fenced off, and no message moves.
    let stale = step::result::submit_one(&mut conn, start, 1, &result(1), handover)
        .await
        .unwrap();
    assert_eq!(
        stale,
        TransitionOutcome::Conflict {
            actual: Some(WorkflowStepState::InProgress)
        }
    );
    assert_eq!(depths().await, (1, 0));
    let fresh = step::result::submit_one(&mut conn, start, 2, &result(2), handover)
        .await
        .unwrap();
    assert!(fresh.applied());
    // The worker message is gone and the result message waits for the orchestration.
    assert_eq!(depths().await, (0, 1));
    let sent: Vec<pgmq_notify::QueueMessage<serde_json::Value>> =
        client.read(&results_queue, 30, 10).await.unwrap();
    assert_eq!(sent[0].message, handed);
    let stored: serde_json::Value = sqlx::query_scalar(
        "SELECT results -> 'result' FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
    )
    .bind(start)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(stored, json!(2));
    assert_eq!(
        state_of(&db, start).await,
        WorkflowStepState::EnqueuedForOrchestration
    );
}

#[tokio::test]
async fn claim_hands_over_ancestor_results() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    for name in ["start", "left", "right"] {
        complete_step(&db, c.steps[name]).await;
        sqlx::query("UPDATE tasker.workflow_steps SET results = $2 WHERE workflow_step_uuid = $1")
            .bind(c.steps[name])
            .bind(json!({"result": format!("{name}-out")}))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    let end = c.steps["end"];
    let mut conn = db.pool.acquire().await.unwrap();
    step::transition::one(
        &mut conn,
        end,
        &[WorkflowStepState::Pending],
        WorkflowStepState::Enqueued,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    let step::claim::ClaimOutcome::Claimed(claimed) =
        step::claim::one(&mut conn, end, "w", false).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(claimed.parents, vec!["left", "right"]);
    assert_eq!(claimed.dependency_results.len(), 3);
    assert_eq!(claimed.dependency_results["start"], json!("start-out"));
    assert_eq!(claimed.inputs, json!({"k": 1}));
    assert_eq!(claimed.namespace, "tests");
    assert_eq!(claimed.handler_callable, "builtin::square");
}

/// A worker's read and claim in one statement: each leased message comes back claimed,
/// stale or unreadable, and each claimed step carries its own ancestors' results.
#[tokio::test]
async fn claiming_from_the_queue_sorts_out_every_message_read() {
    use WorkflowStepState::*;
    use pgmq_notify::PgmqClient;
    use tasker_shared::database::step::claim::Delivery;

    let (db, queue) = db_with_worker_queue().await;
    let client = PgmqClient::new(db.pool.clone());
    let nt = register(&db, DIAMOND).await;
    // Task a: start, left and right done with results; end ready to claim.
    let a = create(&db, &nt).await;
    for name in ["start", "left", "right"] {
        complete_step(&db, a.steps[name]).await;
        sqlx::query("UPDATE tasker.workflow_steps SET results = $2 WHERE workflow_step_uuid = $1")
            .bind(a.steps[name])
            .bind(json!({"result": format!("a-{name}")}))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    walk(&db, a.steps["end"], &[Pending, Enqueued]).await;
    // Task b: start done; left ready to claim; right running under a live lease.
    let b = create(&db, &nt).await;
    complete_step(&db, b.steps["start"]).await;
    sqlx::query("UPDATE tasker.workflow_steps SET results = $2 WHERE workflow_step_uuid = $1")
        .bind(b.steps["start"])
        .bind(json!({"result": "b-start"}))
        .execute(&db.pool)
        .await
        .unwrap();
    walk(&db, b.steps["left"], &[Pending, Enqueued]).await;
    walk(&db, b.steps["right"], &[Pending, Enqueued, InProgress]).await;

    let msg = |t: &task::create::CreatedTask, name: &str| json!({"task_uuid": t.task_uuid, "step_uuid": t.steps[name], "correlation_id": Uuid::now_v7()});
    let bodies = [
        msg(&a, "end"),
        msg(&b, "left"),
        msg(&b, "left"),                    // a duplicate: the older one claims
        msg(&b, "right"),                   // held by a live attempt: stale on first read
        msg(&a, "start"),                   // complete: stale
        json!({"step_uuid": "not-a-uuid"}), // unreadable
        json!([1, 2, 3]),                   // unreadable
    ];
    let ids = PgmqClient::send_batch_with_notify(&db.pool, &queue, &bodies, 0)
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let deliveries = step::claim::from_queue(&mut conn, &queue, "w1", 30, 10)
        .await
        .unwrap();
    assert_eq!(
        deliveries.len(),
        bodies.len(),
        "every leased message comes back"
    );
    let mut claimed = Vec::new();
    let mut stale = Vec::new();
    let mut unreadable = Vec::new();
    for d in deliveries {
        match d {
            Delivery::Claimed { msg_id, step, .. } => claimed.push((msg_id, step)),
            Delivery::NotClaimable {
                msg_id,
                step_uuid,
                actual,
            } => stale.push((msg_id, step_uuid, actual)),
            Delivery::Unreadable { msg_id, .. } => unreadable.push(msg_id),
            broken @ Delivery::Broken { .. } => panic!("{broken:?}"),
        }
    }
    assert_eq!(claimed.len(), 2);
    let (end_msg, end) = &claimed[0];
    assert_eq!((*end_msg, end.step_uuid), (ids[0], a.steps["end"]));
    assert_eq!(end.parents, vec!["left", "right"]);
    assert_eq!(end.dependency_results.len(), 3);
    assert_eq!(end.dependency_results["start"], json!("a-start"));
    assert_eq!(end.inputs, json!({"k": 1}));
    assert_eq!((end.attempt, end.namespace.as_str()), (1, "tests"));
    let (left_msg, left) = &claimed[1];
    assert_eq!((*left_msg, left.step_uuid), (ids[1], b.steps["left"]));
    assert_eq!(left.parents, vec!["start"]);
    assert_eq!(left.dependency_results.len(), 1, "only its own ancestors");
    assert_eq!(left.dependency_results["start"], json!("b-start"));
    assert_eq!(state_of(&db, b.steps["left"]).await, InProgress);
    assert_eq!(
        stale,
        vec![
            (ids[2], b.steps["left"], Some(Enqueued)),
            (ids[3], b.steps["right"], Some(InProgress)),
            (ids[4], a.steps["start"], Some(Complete)),
        ]
    );
    assert_eq!(unreadable, vec![ids[5], ids[6]]);
    let history = step::history::list(&db.pool, a.steps["end"]).await.unwrap();
    let entry = history.last().unwrap();
    assert_eq!(entry.to_state, "in_progress");
    assert_eq!(entry.metadata["worker_id"], json!("w1"));
    assert_eq!(entry.metadata["redelivered"], json!(false));
    // Every message is leased now.
    let again = step::claim::from_queue(&mut conn, &queue, "w1", 30, 10)
        .await
        .unwrap();
    assert!(again.is_empty());

    // A redelivery (the lease ran out) may take over a step still in progress.
    assert!(
        PgmqClient::set_vt(&db.pool, &queue, ids[3], 0)
            .await
            .unwrap()
    );
    let taken = step::claim::from_queue(&mut conn, &queue, "w2", 30, 10)
        .await
        .unwrap();
    let [
        Delivery::Claimed {
            msg_id,
            step,
            read_ct,
            ..
        },
    ] = &taken[..]
    else {
        panic!("{taken:?}")
    };
    assert_eq!((*msg_id, *read_ct), (ids[3], 2));
    assert_eq!((step.step_uuid, step.attempt), (b.steps["right"], 1));
    let history = step::history::list(&db.pool, b.steps["right"])
        .await
        .unwrap();
    assert_eq!(history.last().unwrap().metadata["redelivered"], json!(true));

    // Two messages for a step whose worker was lost: the redelivered one takes it over,
    // even when a fresh duplicate is older.
    let c = create(&db, &nt).await;
    walk(&db, c.steps["start"], &[Pending, Enqueued, InProgress]).await;
    let sent = PgmqClient::send_batch_with_notify(
        &db.pool,
        &queue,
        &[msg(&c, "start"), msg(&c, "start")],
        0,
    )
    .await
    .unwrap();
    let (fresh, redelivered) = (sent[0], sent[1]);
    assert!(
        PgmqClient::set_vt(&db.pool, &queue, fresh, 30)
            .await
            .unwrap()
    );
    let first = client
        .read::<serde_json::Value>(&queue, 0, 10)
        .await
        .unwrap();
    assert_eq!(first[0].msg_id, redelivered);
    assert!(
        PgmqClient::set_vt(&db.pool, &queue, fresh, 0)
            .await
            .unwrap()
    );
    let both = step::claim::from_queue(&mut conn, &queue, "w3", 30, 10)
        .await
        .unwrap();
    assert!(
        matches!(&both[..], [
            Delivery::NotClaimable { msg_id: a, actual: Some(InProgress), .. },
            Delivery::Claimed { msg_id: b, read_ct: 2, .. },
        ] if *a == fresh && *b == redelivered),
        "{both:?}"
    );
}

#[tokio::test]
async fn next_ready_tasks_lists_tasks_with_ready_steps() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let a = create(&db, &nt).await;
    let b = create(&db, &nt).await;
    let ready = task::read::next_ready(&db.pool, 10).await.unwrap();
    assert_eq!(ready.len(), 2);
    assert!(
        ready
            .iter()
            .all(|r| r.ready_steps_count == 1 && r.namespace_name == "tests")
    );
    // A task whose only ready step was enqueued drops out.
    let mut conn = db.pool.acquire().await.unwrap();
    step::transition::one(
        &mut conn,
        a.steps["start"],
        &[WorkflowStepState::Pending],
        WorkflowStepState::Enqueued,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    let ready = task::read::next_ready(&db.pool, 10).await.unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].task_uuid, b.task_uuid);
    // A cancelled task drops out too.
    task::transition::one(
        &mut conn,
        b.task_uuid,
        &[TaskState::Pending],
        TaskState::Cancelled,
        &json!({}),
    )
    .await
    .unwrap();
    assert!(
        task::read::next_ready(&db.pool, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Giving a leased message back makes it visible and announces it as a send does;
/// extending unread leases leaves alone a message someone read since it was sent.
#[tokio::test]
async fn give_back_announces_and_extend_unread_skips_read_messages() {
    use pgmq_notify::{PgmqClient, QueueEvent, QueueListener, QueueName};
    let db = TestDb::new().await;
    let queue = QueueName::worker("beta").unwrap();
    let client = PgmqClient::new(db.pool.clone());
    client.create_queue(&queue).await.unwrap();
    let (a, b) = (
        PgmqClient::send_with_notify(&db.pool, &queue, &json!({"n": 1}), 0)
            .await
            .unwrap(),
        PgmqClient::send_with_notify(&db.pool, &queue, &json!({"n": 2}), 0)
            .await
            .unwrap(),
    );
    // Both leased once (read_ct 1); `b` read again (read_ct 2) after its lease.
    assert_eq!(
        client
            .read::<serde_json::Value>(&queue, 30, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    PgmqClient::set_vt(&db.pool, &queue, b, 0).await.unwrap();
    assert_eq!(
        client
            .read::<serde_json::Value>(&queue, 1, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let extended = PgmqClient::extend_unread(&db.pool, &queue, &[a, b], 600)
        .await
        .unwrap();
    assert_eq!(extended, vec![a]);
    let far: bool = sqlx::query_scalar(&format!(
        "SELECT vt > now() + interval '500 seconds' FROM {} WHERE msg_id = $1",
        pgmq_notify::sql::queue_table(&queue)
    ))
    .bind(a)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(far);

    let shutdown = tokio_util_token();
    let (listener, _task) =
        QueueListener::start(db.pool.clone(), vec!["beta".into()], shutdown.clone())
            .await
            .unwrap();
    let mut events = listener.subscribe();
    assert!(PgmqClient::give_back(&db.pool, &queue, a).await.unwrap());
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
        .await
        .expect("notification within 5s")
        .unwrap();
    assert!(
        matches!(event, QueueEvent::MessageReady { msg_id: Some(id), delay_ms: 0, .. } if id == a),
        "{event:?}"
    );
    let visible = client
        .read::<serde_json::Value>(&queue, 30, 10)
        .await
        .unwrap();
    assert_eq!(
        visible.iter().map(|m| m.msg_id).collect::<Vec<_>>(),
        vec![a]
    );
    assert!(
        !PgmqClient::give_back(&db.pool, &queue, a + 1000)
            .await
            .unwrap()
    );
    shutdown.cancel();
}

#[tokio::test]
async fn send_with_notify_is_transactional() {
    use pgmq_notify::{PgmqClient, QueueEvent, QueueListener, QueueName};
    let db = TestDb::new().await;
    let queue = QueueName::worker("alpha").unwrap();
    let client = PgmqClient::new(db.pool.clone());
    client.create_queue(&queue).await.unwrap();
    let shutdown = tokio_util_token();
    let (listener, _task) =
        QueueListener::start(db.pool.clone(), vec!["alpha".into()], shutdown.clone())
            .await
            .unwrap();
    let mut events = listener.subscribe();

    // Rolled back: nothing sent, nothing notified.
    let mut tx = db.pool.begin().await.unwrap();
    PgmqClient::send_with_notify(&mut *tx, &queue, &json!({"n": 1}), 0)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(client.depth(&queue).await.unwrap(), 0);

    let mut tx = db.pool.begin().await.unwrap();
    let id = PgmqClient::send_with_notify(&mut *tx, &queue, &json!({"n": 2}), 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
        .await
        .expect("notification within 5s")
        .unwrap();
    assert_eq!(
        event,
        QueueEvent::MessageReady {
            namespace: "alpha".into(),
            queue: "worker_alpha_queue".into(),
            msg_id: Some(id),
            delay_ms: 0
        }
    );
    let read = client
        .read::<serde_json::Value>(&queue, 30, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].message, json!({"n": 2}));
    assert!(PgmqClient::delete(&db.pool, &queue, id).await.unwrap());
    shutdown.cancel();
}

/// pgmq-notify writes PGMQ's statements against the queue tables itself; messages must
/// pass between its statements and PGMQ's own functions both ways, with the same leases,
/// read counts, delays, archive and notifications.
#[tokio::test]
async fn queue_statements_agree_with_pgmq_functions() {
    use pgmq_notify::{PgmqClient, QueueEvent, QueueListener, QueueName};
    let db = TestDb::new().await;
    let queue = QueueName::worker("beta").unwrap();
    let client = PgmqClient::new(db.pool.clone());
    client.create_queue(&queue).await.unwrap();
    let shutdown = tokio_util_token();
    let (listener, _task) =
        QueueListener::start(db.pool.clone(), vec!["beta".into()], shutdown.clone())
            .await
            .unwrap();
    let mut events = listener.subscribe();
    let mut next_event = async || {
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .expect("notification within 5s")
            .unwrap()
    };

    // Ours → PGMQ: an immediate message is read by pgmq.read, a delayed one is not.
    let now_id = PgmqClient::send_with_notify(&db.pool, &queue, &json!({"n": 1}), 0)
        .await
        .unwrap();
    let later_id = PgmqClient::send_with_notify(&db.pool, &queue, &json!({"n": 2}), 30)
        .await
        .unwrap();
    assert_eq!(
        next_event().await,
        QueueEvent::MessageReady {
            namespace: "beta".into(),
            queue: "worker_beta_queue".into(),
            msg_id: Some(now_id),
            delay_ms: 0
        }
    );
    match next_event().await {
        QueueEvent::MessageReady {
            msg_id, delay_ms, ..
        } => {
            assert_eq!(msg_id, Some(later_id));
            assert!((29_000..=30_000).contains(&delay_ms), "{delay_ms}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let read: Vec<(i64, i32, serde_json::Value)> =
        sqlx::query_as("SELECT msg_id, read_ct, message FROM pgmq.read($1, 30, 10)")
            .bind(queue.as_str())
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(read, vec![(now_id, 1, json!({"n": 1}))]);

    // PGMQ → ours: pgmq.send's message is read once, leased, and given back by set_vt.
    let theirs: i64 = sqlx::query_scalar("SELECT * FROM pgmq.send($1, $2)")
        .bind(queue.as_str())
        .bind(json!({"n": 3}))
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let mine = client
        .read::<serde_json::Value>(&queue, 30, 10)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1, "leased and delayed messages stay hidden");
    assert_eq!((mine[0].msg_id, mine[0].read_ct), (theirs, 1));
    let lease = (mine[0].vt - chrono::Utc::now()).num_seconds();
    assert!((28..=30).contains(&lease), "lease {lease}s");
    assert!(
        client
            .read::<serde_json::Value>(&queue, 30, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        PgmqClient::set_vt(&db.pool, &queue, theirs, 0)
            .await
            .unwrap()
    );
    let again = client
        .read::<serde_json::Value>(&queue, 30, 10)
        .await
        .unwrap();
    assert_eq!((again[0].msg_id, again[0].read_ct), (theirs, 2));

    // Archive and delete, as pgmq.archive and pgmq.delete would.
    assert!(PgmqClient::archive(&db.pool, &queue, theirs).await.unwrap());
    assert!(!PgmqClient::archive(&db.pool, &queue, theirs).await.unwrap());
    let archived: (i32, serde_json::Value) =
        sqlx::query_as("SELECT read_ct, message FROM pgmq.a_worker_beta_queue WHERE msg_id = $1")
            .bind(theirs)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(archived, (2, json!({"n": 3})));
    assert!(
        PgmqClient::delete(&db.pool, &queue, later_id)
            .await
            .unwrap()
    );
    assert!(
        !PgmqClient::delete(&db.pool, &queue, later_id)
            .await
            .unwrap()
    );
    let gone: bool = sqlx::query_scalar("SELECT pgmq.delete($1, $2)")
        .bind(queue.as_str())
        .bind(now_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(gone);

    // A batch keeps the callers' order, and each message is announced.
    let ids = PgmqClient::send_batch_with_notify(
        &db.pool,
        &queue,
        &[json!({"n": 4}), json!({"n": 5}), json!({"n": 6})],
        0,
    )
    .await
    .unwrap();
    let mut announced = Vec::new();
    for _ in 0..3 {
        if let QueueEvent::MessageReady { msg_id, .. } = next_event().await {
            announced.push(msg_id.unwrap());
        }
    }
    announced.sort();
    assert_eq!(announced, ids);
    let batch = client
        .read::<serde_json::Value>(&queue, 30, 2)
        .await
        .unwrap();
    let bodies: Vec<_> = batch
        .iter()
        .map(|m| (m.msg_id, m.message.clone()))
        .collect();
    assert_eq!(
        bodies,
        vec![(ids[0], json!({"n": 4})), (ids[1], json!({"n": 5}))]
    );
    assert_eq!(client.depth(&queue).await.unwrap(), 3);

    // A take deletes what it returns, but only if its transaction commits; meanwhile
    // other readers skip those messages.
    assert!(
        PgmqClient::set_vt(&db.pool, &queue, ids[0], 0)
            .await
            .unwrap()
    );
    let mut tx = db.pool.begin().await.unwrap();
    let taken = PgmqClient::take_with::<serde_json::Value>(&mut *tx, &queue, 10)
        .await
        .unwrap();
    let taken: Vec<_> = taken.iter().map(|m| (m.msg_id, m.read_ct)).collect();
    assert_eq!(
        taken,
        vec![(ids[0], 1), (ids[2], 0)],
        "visible ones only (returned in msg_id order)"
    );
    assert!(
        client
            .read::<serde_json::Value>(&queue, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        client.depth(&queue).await.unwrap(),
        3,
        "a rollback puts them back"
    );
    let mut tx = db.pool.begin().await.unwrap();
    let taken = PgmqClient::take_with::<serde_json::Value>(&mut *tx, &queue, 1)
        .await
        .unwrap();
    // Taken in the order they became visible: ids[2] since it was sent, ids[0] only
    // since its visibility was reset just now.
    assert_eq!(taken[0].msg_id, ids[2]);
    tx.commit().await.unwrap();
    assert_eq!(client.depth(&queue).await.unwrap(), 2);
    shutdown.cancel();
}

fn tokio_util_token() -> tokio_util::sync::CancellationToken {
    tokio_util::sync::CancellationToken::new()
}

/// The next notification on the settled channel, as JSON.
async fn next_settled(listener: &mut sqlx::postgres::PgListener) -> serde_json::Value {
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(n.payload()).unwrap()
}

#[tokio::test]
async fn settled_tasks_are_announced_in_their_transaction() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener
        .listen(task::transition::SETTLED_CHANNEL)
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    // Not settled: no notification.
    task::transition::one(
        &mut conn,
        c.task_uuid,
        &[TaskState::Pending],
        TaskState::StepsInProcess,
        &json!({}),
    )
    .await
    .unwrap();
    task::transition::one(
        &mut conn,
        c.task_uuid,
        &[TaskState::StepsInProcess],
        TaskState::Cancelled,
        &json!({}),
    )
    .await
    .unwrap();
    assert_eq!(
        next_settled(&mut listener).await,
        json!({"task_uuid": c.task_uuid, "status": "cancelled"})
    );
}

/// Moves a task from `pending` to `to` and, when `hours_ago` is set, backdates the
/// transition that finished it.
async fn finish(db: &TestDb, task_uuid: Uuid, to: TaskState, hours_ago: Option<i32>) {
    let mut conn = db.pool.acquire().await.unwrap();
    for (from, next) in [
        (TaskState::Pending, TaskState::StepsInProcess),
        (TaskState::StepsInProcess, to),
    ] {
        let out = task::transition::one(&mut conn, task_uuid, &[from], next, &json!({}))
            .await
            .unwrap();
        assert!(out.applied());
    }
    if let Some(hours) = hours_ago {
        sqlx::query(
            "UPDATE tasker.tasks SET state_changed_at = now() - $2 * interval '1 hour'
             WHERE task_uuid = $1",
        )
        .bind(task_uuid)
        .bind(hours)
        .execute(&db.pool)
        .await
        .unwrap();
    }
}

async fn task_exists(db: &TestDb, task_uuid: Uuid) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasker.tasks WHERE task_uuid = $1)")
        .bind(task_uuid)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// How many rows of each table the task has: steps, edges, step history, task history.
async fn task_rows(db: &TestDb, task: uuid::Uuid) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "WITH s AS (SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = $1)
         SELECT (SELECT count(*) FROM s),
                (SELECT count(*) FROM tasker.workflow_step_edges
                 WHERE from_step_uuid IN (SELECT * FROM s)),
                (SELECT count(*) FROM tasker.workflow_step_transitions
                 WHERE workflow_step_uuid IN (SELECT * FROM s)),
                (SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = $1)",
    )
    .bind(task)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn retention_purges_old_finished_tasks_only() {
    use std::time::Duration;
    use tasker_shared::database::{dlq, retention};

    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let old_complete = create(&db, &nt).await.task_uuid;
    finish(&db, old_complete, TaskState::Complete, Some(48)).await;
    let old_cancelled = create(&db, &nt).await.task_uuid;
    finish(&db, old_cancelled, TaskState::Cancelled, Some(48)).await;
    let recent_complete = create(&db, &nt).await.task_uuid;
    finish(&db, recent_complete, TaskState::Complete, None).await;
    let old_running = create(&db, &nt).await.task_uuid;
    {
        let mut conn = db.pool.acquire().await.unwrap();
        task::transition::one(
            &mut conn,
            old_running,
            &[TaskState::Pending],
            TaskState::StepsInProcess,
            &json!({}),
        )
        .await
        .unwrap();
    }
    sqlx::query("UPDATE tasker.tasks SET state_changed_at = now() - interval '48 hours' WHERE task_uuid = $1")
        .bind(old_running)
        .execute(&db.pool)
        .await
        .unwrap();
    // An old error whose DLQ entry is pending investigation stays; one resolved goes.
    let old_error_pending = create(&db, &nt).await.task_uuid;
    let old_error_resolved = create(&db, &nt).await.task_uuid;
    for task in [old_error_pending, old_error_resolved] {
        finish(&db, task, TaskState::Error, Some(48)).await;
        let mut conn = db.pool.acquire().await.unwrap();
        dlq::create_entry(
            &mut conn,
            task,
            "steps_in_process",
            "staleness_timeout",
            &json!({}),
        )
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE tasker.tasks_dlq SET resolution_status = 'manually_resolved' WHERE task_uuid = $1",
    )
    .bind(old_error_resolved)
    .execute(&db.pool)
    .await
    .unwrap();

    let day = Duration::from_secs(24 * 3600);
    let dry = retention::count_purgeable(&db.pool, day).await.unwrap();
    assert_eq!(dry.tasks, 3);
    assert!(
        task_exists(&db, old_complete).await,
        "a dry run deletes nothing"
    );

    let purged = [old_complete, old_cancelled, old_error_resolved];
    let old_steps: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = ANY($1)",
    )
    .bind(&purged[..])
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(old_steps.len(), 12);
    let kept_rows_before = task_rows(&db, recent_complete).await;
    assert_eq!(kept_rows_before, (4, 4, 4, 3));

    // A batch of 1 exercises the batch loop.
    let report = retention::purge(&db.pool, day, 1).await.unwrap();
    assert_eq!(report.tasks, 3);
    for gone in [old_complete, old_cancelled, old_error_resolved] {
        assert!(!task_exists(&db, gone).await);
    }
    for kept in [recent_complete, old_running, old_error_pending] {
        assert!(task_exists(&db, kept).await);
    }
    // Steps, edges and both histories went with their tasks (no foreign key cascades
    // them: the purge deletes each); the kept tasks' rows are all there.
    let orphans: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM tasker.workflow_steps WHERE task_uuid = ANY($1))
              + (SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = ANY($1))
              + (SELECT count(*) FROM tasker.tasks_dlq WHERE task_uuid = ANY($1))
              + (SELECT count(*) FROM tasker.workflow_step_transitions
                 WHERE workflow_step_uuid = ANY($2))
              + (SELECT count(*) FROM tasker.workflow_step_edges
                 WHERE from_step_uuid = ANY($2) OR to_step_uuid = ANY($2))",
    )
    .bind(&purged[..])
    .bind(&old_steps)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
    assert_eq!(task_rows(&db, recent_complete).await, kept_rows_before);
    assert_eq!(
        retention::purge(&db.pool, day, 1).await.unwrap(),
        retention::PurgeReport::default()
    );
}

/// A finished task someone holds locked does not end the purge: the batch takes the
/// next candidate (the lock is taken before the limit counts), and the held one goes at
/// the next run.
#[tokio::test]
async fn retention_skips_a_locked_task_and_purges_the_rest() {
    use std::time::Duration;
    use tasker_shared::database::retention;

    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let older = create(&db, &nt).await.task_uuid;
    finish(&db, older, TaskState::Complete, Some(50)).await;
    let old = create(&db, &nt).await.task_uuid;
    finish(&db, old, TaskState::Complete, Some(48)).await;

    let mut holder = db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tasker.tasks WHERE task_uuid = $1 FOR UPDATE")
        .bind(older)
        .execute(&mut *holder)
        .await
        .unwrap();
    let day = Duration::from_secs(24 * 3600);
    let report = retention::purge(&db.pool, day, 1).await.unwrap();
    assert_eq!(report.tasks, 1);
    assert!(task_exists(&db, older).await);
    assert!(!task_exists(&db, old).await);

    holder.rollback().await.unwrap();
    assert_eq!(retention::purge(&db.pool, day, 1).await.unwrap().tasks, 1);
    assert!(!task_exists(&db, older).await);
}

/// A step of a finished task that a late writer moves while the purge runs (a worker's
/// result after a cancellation) leaves no history behind: the purge waits for the
/// step's lock and deletes what the writer committed.
#[tokio::test]
async fn retention_waits_for_a_step_being_moved_and_leaves_no_history() {
    use std::time::Duration;
    use tasker_shared::database::retention;

    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    finish(&db, c.task_uuid, TaskState::Cancelled, Some(48)).await;
    let step = c.steps["start"];

    // The late writer: the step's row locked and a history row written, not committed.
    let mut writer = db.pool.begin().await.unwrap();
    sqlx::query(
        "UPDATE tasker.workflow_steps SET updated_at = now() WHERE workflow_step_uuid = $1",
    )
    .bind(step)
    .execute(&mut *writer)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tasker.workflow_step_transitions
             (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
         VALUES ($1, $2, 'enqueued_for_orchestration', 'in_progress', '{}', 99)",
    )
    .bind(Uuid::now_v7())
    .bind(step)
    .execute(&mut *writer)
    .await
    .unwrap();

    let pool = db.pool.clone();
    let purge =
        tokio::spawn(
            async move { retention::purge(&pool, Duration::from_secs(24 * 3600), 10).await },
        );
    // Until the purge waits on the writer's lock.
    let waiting = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let blocked: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                WHERE datname = current_database() AND wait_event_type = 'Lock')",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            if blocked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waiting.is_ok(),
        "the purge never waited for the step's lock"
    );
    writer.commit().await.unwrap();

    assert_eq!(purge.await.unwrap().unwrap().tasks, 1);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = $1",
    )
    .bind(step)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "history left behind by the purge");
}

#[tokio::test]
async fn retention_purges_old_archived_messages() {
    use pgmq_notify::{PgmqClient, QueueName};
    use std::time::Duration;
    use tasker_shared::database::retention;

    let db = TestDb::new().await;
    let client = PgmqClient::new(db.pool.clone());
    let queue = QueueName::worker("retention").unwrap();
    client.create_queue(&queue).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = PgmqClient::send_with_notify(&db.pool, &queue, &json!({"n": n}), 0)
            .await
            .unwrap();
        assert!(PgmqClient::archive(&db.pool, &queue, id).await.unwrap());
        ids.push(id);
    }
    // Two are old, one is recent.
    sqlx::query("UPDATE pgmq.a_worker_retention_queue SET archived_at = now() - interval '10 days' WHERE msg_id <> $1")
        .bind(ids[2])
        .execute(&db.pool)
        .await
        .unwrap();
    let week = Duration::from_secs(7 * 24 * 3600);
    assert_eq!(
        retention::count_purgeable(&db.pool, week)
            .await
            .unwrap()
            .archived_messages,
        2
    );
    assert_eq!(
        retention::purge(&db.pool, week, 1)
            .await
            .unwrap()
            .archived_messages,
        2
    );
    let left: Vec<i64> = sqlx::query_scalar("SELECT msg_id FROM pgmq.a_worker_retention_queue")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, vec![ids[2]]);
}

#[tokio::test]
async fn the_queue_probe_finds_queues_with_visible_messages() {
    use pgmq_notify::{PgmqClient, QueueName};

    let db = TestDb::new().await;
    let client = PgmqClient::new(db.pool.clone());
    let queues: Vec<QueueName> = ["a", "b", "c"]
        .iter()
        .map(|n| QueueName::worker(n).unwrap())
        .collect();
    for q in &queues {
        client.create_queue(q).await.unwrap();
    }
    assert!(
        PgmqClient::queues_with_visible(&db.pool, &queues)
            .await
            .unwrap()
            .is_empty()
    );
    // b has a visible message; c only one delayed for a minute.
    PgmqClient::send_with_notify(&db.pool, &queues[1], &json!({}), 0)
        .await
        .unwrap();
    PgmqClient::send_with_notify(&db.pool, &queues[2], &json!({}), 60)
        .await
        .unwrap();
    assert_eq!(
        PgmqClient::queues_with_visible(&db.pool, &queues)
            .await
            .unwrap(),
        vec![queues[1].clone()]
    );
    // A read message is leased, so invisible until its lease ends.
    let read = client
        .read::<serde_json::Value>(&queues[1], 30, 1)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert!(
        PgmqClient::queues_with_visible(&db.pool, &queues)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn execution_context_from_steps_matches_the_sql_function() {
    use WorkflowStepState::*;

    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let check = |label: &'static str| {
        let pool = db.pool.clone();
        let task_uuid = c.task_uuid;
        async move {
            let sql = task::read::execution_context(&pool, task_uuid)
                .await
                .unwrap()
                .unwrap();
            let steps = step::read::readiness(&pool, task_uuid, None).await.unwrap();
            let rust = task::read::TaskExecutionContext::from_steps(
                task_uuid,
                sql.named_task_uuid,
                &sql.status,
                steps
                    .iter()
                    .map(|s| (s.current_state.as_str(), s.ready_for_execution)),
            );
            assert_eq!(rust, sql, "{label}");
        }
    };
    let mut go = async |name: &str, path: &[WorkflowStepState]| {
        let uuid = c.steps[name];
        for pair in path.windows(2) {
            let out = step::transition::one(&mut conn, uuid, &[pair[0]], pair[1], &json!({}), None)
                .await
                .unwrap();
            assert!(out.applied(), "{name}: {:?} -> {:?}", pair[0], pair[1]);
        }
    };
    check("all pending, start ready").await;
    go("start", &[Pending, Enqueued]).await;
    check("start enqueued").await;
    go(
        "start",
        &[Enqueued, InProgress, EnqueuedForOrchestration, Complete],
    )
    .await;
    check("start complete, left and right ready").await;
    go(
        "left",
        &[
            Pending,
            Enqueued,
            InProgress,
            EnqueuedAsErrorForOrchestration,
            WaitingForRetry,
        ],
    )
    .await;
    check("left waiting for retry").await;
    go(
        "right",
        &[
            Pending,
            Enqueued,
            InProgress,
            EnqueuedAsErrorForOrchestration,
            Error,
        ],
    )
    .await;
    check("right in error").await;
    go("right", &[Error, ResolvedManually]).await;
    go(
        "left",
        &[
            WaitingForRetry,
            Enqueued,
            InProgress,
            EnqueuedForOrchestration,
            Complete,
        ],
    )
    .await;
    check("end ready").await;
    go(
        "end",
        &[
            Pending,
            Enqueued,
            InProgress,
            EnqueuedForOrchestration,
            Complete,
        ],
    )
    .await;
    check("all complete").await;
}

#[tokio::test]
async fn lock_task_and_load_locks_the_task_and_loads_the_step() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    // The task lock and the step row in one round trip; a step of another task (or a
    // task that does not exist) is not found.
    let other = create(&db, &nt).await;
    let mut tx = db.pool.begin().await.unwrap();
    let (state, row) = step::processing::lock_and_load_one(&mut tx, c.task_uuid, c.steps["start"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state, TaskState::Pending);
    assert_eq!(row.workflow_step_uuid, c.steps["start"]);
    assert_eq!(row.state().unwrap(), WorkflowStepState::Pending);
    assert_eq!(row.namespace, "tests");
    assert!(
        step::processing::lock_and_load_one(&mut tx, c.task_uuid, other.steps["start"])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        step::processing::lock_and_load_one(&mut tx, Uuid::now_v7(), c.steps["start"])
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();
}

/// Moves a step along `path` (consecutive states), as workers and the orchestration do.
async fn walk(db: &TestDb, step_uuid: Uuid, path: &[WorkflowStepState]) {
    let mut conn = db.pool.acquire().await.unwrap();
    for pair in path.windows(2) {
        let moved =
            step::transition::one(&mut conn, step_uuid, &[pair[0]], pair[1], &json!({}), None)
                .await
                .unwrap();
        assert!(moved.applied(), "{step_uuid}: {} → {}", pair[0], pair[1]);
    }
}

#[tokio::test]
async fn completing_a_step_enqueues_the_children_it_makes_ready() {
    use WorkflowStepState::*;
    use pgmq_notify::PgmqClient;
    use tasker_shared::messaging::StepMessage;

    let (db, queue) = db_with_worker_queue().await;
    let client = PgmqClient::new(db.pool.clone());
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let correlation_id = Uuid::now_v7();
    let route = step::complete::ChildRoute {
        queue: &queue,
        correlation_id,
    };
    let to_orchestration = [Pending, Enqueued, InProgress, EnqueuedForOrchestration];
    let complete = async |step_uuid: Uuid, children: Option<step::complete::ChildRoute<'_>>| {
        let mut conn = db.pool.acquire().await.unwrap();
        step::complete::one(
            &mut conn,
            step_uuid,
            &json!({"event": "completed"}),
            children,
        )
        .await
        .unwrap()
    };
    let sorted = |mut ids: Vec<Uuid>| {
        ids.sort();
        ids
    };

    walk(&db, c.steps["start"], &to_orchestration).await;
    let enqueued = complete(c.steps["start"], Some(route)).await.unwrap();
    assert_eq!(enqueued, sorted(vec![c.steps["left"], c.steps["right"]]));
    assert_eq!(state_of(&db, c.steps["start"]).await, Complete);
    assert_eq!(state_of(&db, c.steps["left"]).await, Enqueued);
    // Each enqueued child has exactly one message, a StepMessage workers can read.
    let messages = client.read::<StepMessage>(&queue, 30, 10).await.unwrap();
    let mut sent: Vec<Uuid> = messages.iter().map(|m| m.message.step_uuid).collect();
    sent.sort();
    assert_eq!(sent, enqueued);
    for m in &messages {
        assert_eq!(m.message.task_uuid, c.task_uuid);
        assert_eq!(m.message.correlation_id, correlation_id);
    }
    let history = step::history::list(&db.pool, c.steps["left"])
        .await
        .unwrap();
    assert_eq!(history.last().unwrap().to_state, "enqueued");
    // Again: the step is no longer waiting for the orchestration, nothing is written.
    assert!(complete(c.steps["start"], Some(route)).await.is_none());
    assert!(
        client
            .read::<StepMessage>(&queue, 30, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The join waits for its other parent, then goes.
    walk(&db, c.steps["left"], &to_orchestration[1..]).await;
    assert!(
        complete(c.steps["left"], Some(route))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(state_of(&db, c.steps["end"]).await, Pending);
    walk(&db, c.steps["right"], &to_orchestration[1..]).await;
    assert_eq!(
        complete(c.steps["right"], Some(route)).await.unwrap(),
        vec![c.steps["end"]]
    );

    // Without a route (a blocked task), the step completes and no child moves.
    let other = create(&db, &nt).await;
    walk(&db, other.steps["start"], &to_orchestration).await;
    assert!(
        complete(other.steps["start"], None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(state_of(&db, other.steps["start"]).await, Complete);
    assert_eq!(state_of(&db, other.steps["left"]).await, Pending);
}

/// Steps of several tasks complete in one statement; a child whose parents all complete
/// in it is enqueued once, with one message, and listed under one of them.
#[tokio::test]
async fn completing_steps_together_enqueues_each_ready_child_once() {
    use WorkflowStepState::*;
    use pgmq_notify::PgmqClient;
    use tasker_shared::database::step::complete::Completion;
    use tasker_shared::messaging::StepMessage;

    let (db, queue) = db_with_worker_queue().await;
    let client = PgmqClient::new(db.pool.clone());
    let nt = register(&db, DIAMOND).await;
    let (a, b) = (create(&db, &nt).await, create(&db, &nt).await);
    let to_orchestration = [Pending, Enqueued, InProgress, EnqueuedForOrchestration];
    for c in [&a, &b] {
        complete_step(&db, c.steps["start"]).await;
    }
    // Task a: both parents of `end` finish together; task b: only `left`.
    for step in [a.steps["left"], a.steps["right"], b.steps["left"]] {
        walk(&db, step, &to_orchestration).await;
    }
    let (ca, cb) = (Uuid::now_v7(), Uuid::now_v7());
    let completions = [
        Completion {
            step_uuid: a.steps["left"],
            correlation_id: ca,
            handoff: None,
        },
        Completion {
            step_uuid: a.steps["right"],
            correlation_id: ca,
            handoff: None,
        },
        Completion {
            step_uuid: b.steps["left"],
            correlation_id: cb,
            handoff: None,
        },
        // Not waiting for the orchestration: left alone.
        Completion {
            step_uuid: b.steps["right"],
            correlation_id: cb,
            handoff: None,
        },
    ];
    let mut conn = db.pool.acquire().await.unwrap();
    let mut moved = step::complete::many(
        &mut conn,
        &completions,
        &json!({"event": "completed"}),
        Some(&queue),
    )
    .await
    .unwrap();
    moved.sort();
    let mut expected_moved = vec![a.steps["left"], a.steps["right"], b.steps["left"]];
    expected_moved.sort();
    assert_eq!(
        moved.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        expected_moved
    );
    let listed: Vec<Uuid> = moved.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(listed, vec![a.steps["end"]]);
    assert_eq!(state_of(&db, a.steps["end"]).await, Enqueued);
    assert_eq!(state_of(&db, b.steps["end"]).await, Pending);
    assert_eq!(state_of(&db, b.steps["right"]).await, Pending);
    let messages = client.read::<StepMessage>(&queue, 30, 10).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message.step_uuid, a.steps["end"]);
    assert_eq!(messages[0].message.correlation_id, ca);
    // Each completed step's history entry records its attempt.
    let history = step::history::list(&db.pool, a.steps["left"])
        .await
        .unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.to_state, "complete");
    assert_eq!(last.metadata, json!({"event": "completed", "attempt": 0}));
}

/// A completion that carries a worker's handoff offer claims one ready child for that
/// worker in the statement that completes the parent: the child is `in_progress` under
/// attempt 1 with its history, its message is leased to the worker and named on the
/// worker's channel only, the worker loads it by id without writing, and when the lease
/// ends unused any worker takes the step over as a redelivery.
#[tokio::test]
async fn a_handoff_claims_one_ready_child_for_the_offering_worker() {
    use WorkflowStepState::*;
    use pgmq_notify::PgmqClient;
    use tasker_shared::database::step::claim::Delivery;
    use tasker_shared::database::step::complete::Completion;
    use tasker_shared::messaging::{HandoffRequest, handoff_channel};

    let (db, queue) = db_with_worker_queue().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    walk(
        &db,
        c.steps["start"],
        &[Pending, Enqueued, InProgress, EnqueuedForOrchestration],
    )
    .await;
    let offer = HandoffRequest {
        token: Uuid::now_v7(),
        worker_id: "w1".into(),
        lease_seconds: 30,
    };
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener
        .listen(&handoff_channel(offer.token))
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let moved = step::complete::many(
        &mut conn,
        &[Completion {
            step_uuid: c.steps["start"],
            correlation_id: Uuid::now_v7(),
            handoff: Some(offer.clone()),
        }],
        &json!({"event": "completed"}),
        Some(&queue),
    )
    .await
    .unwrap();
    // The first ready child in uuid order is handed; the other is enqueued.
    let (handed, other) = if c.steps["left"] < c.steps["right"] {
        (c.steps["left"], c.steps["right"])
    } else {
        (c.steps["right"], c.steps["left"])
    };
    assert_eq!(moved, vec![(c.steps["start"], vec![handed, other])]);
    assert_eq!(state_of(&db, handed).await, InProgress);
    assert_eq!(state_of(&db, other).await, Enqueued);
    let history = step::history::list(&db.pool, handed).await.unwrap();
    let tail: Vec<(String, serde_json::Value)> = history[history.len() - 2..]
        .iter()
        .map(|h| (h.to_state.clone(), h.metadata.clone()))
        .collect();
    assert_eq!(
        tail,
        [
            ("enqueued".to_string(), json!({"event": "enqueued"})),
            (
                "in_progress".to_string(),
                json!({"event": "claimed", "worker_id": "w1", "redelivered": false, "handoff": true})
            ),
        ]
    );

    // The worker hears the message's id on its own channel.
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    let heard: serde_json::Value = serde_json::from_str(heard.payload()).unwrap();
    assert_eq!(heard["queue"], queue.as_str());
    let msg_id = heard["msg_id"].as_i64().unwrap();

    // Other readers find only the other child's message.
    let read = step::claim::from_queue(&mut conn, &queue, "w2", 30, 10)
        .await
        .unwrap();
    assert!(
        matches!(&read[..], [Delivery::Claimed { step, .. }] if step.step_uuid == other),
        "{read:?}"
    );

    // The worker loads its step by id: attempt 1, the lease running; another token,
    // or an id that is not handed, loads nothing.
    let mut tx = db.pool.begin().await.unwrap();
    let loaded = step::handoff::load(&mut tx, &queue, offer.token, &[msg_id, msg_id + 1000])
        .await
        .unwrap();
    let xid: Option<i64> = sqlx::query_scalar("SELECT txid_current_if_assigned()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(xid, None, "loading a handed step writes nothing");
    tx.commit().await.unwrap();
    match &loaded[..] {
        [
            Delivery::Claimed {
                msg_id: id,
                step,
                lease_left_ms: Some(left),
                ..
            },
        ] => {
            assert_eq!((*id, step.step_uuid, step.attempt), (msg_id, handed, 1));
            assert!((1..=30_000).contains(left), "{left}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        step::handoff::load(&mut conn, &queue, Uuid::now_v7(), &[msg_id])
            .await
            .unwrap()
            .is_empty()
    );

    // The lease ends unused (the worker died): a reader takes the step over as a
    // redelivery, and the handed load no longer returns it.
    PgmqClient::set_vt(&mut *conn, &queue, msg_id, 0)
        .await
        .unwrap();
    assert!(
        step::handoff::load(&mut conn, &queue, offer.token, &[msg_id])
            .await
            .unwrap()
            .is_empty(),
        "past its lease a handed step is anyone's"
    );
    let read = step::claim::from_queue(&mut conn, &queue, "w2", 30, 10)
        .await
        .unwrap();
    // The handed attempt may never have run: the takeover does not count it.
    match &read[..] {
        [
            Delivery::Claimed {
                read_ct: 2, step, ..
            },
        ] => {
            assert_eq!(
                (step.step_uuid, step.attempt, step.retry_baseline),
                (handed, 2, 1)
            );
            assert!(!step.over_budget());
        }
        other => panic!("{other:?}"),
    }
    let history = step::history::list(&db.pool, handed).await.unwrap();
    assert_eq!(
        history.last().unwrap().metadata,
        json!({"event": "claimed", "worker_id": "w2", "redelivered": true, "handoff_expired": true})
    );
    // A later takeover counts as usual.
    PgmqClient::set_vt(&mut *conn, &queue, msg_id, 0)
        .await
        .unwrap();
    let read = step::claim::from_queue(&mut conn, &queue, "w3", 30, 10)
        .await
        .unwrap();
    match &read[..] {
        [
            Delivery::Claimed {
                read_ct: 3, step, ..
            },
        ] => {
            assert_eq!((step.attempt, step.retry_baseline), (3, 1));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        step::handoff::load(&mut conn, &queue, offer.token, &[msg_id])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A connection used recently is handed out without a ping (a round trip in front of
/// every claim and submit): if it broke while idle, its next statement fails and the
/// caller's retry or redelivery takes over. (sqlx also checks each connection as it is
/// released, so one that broke while in use never reaches the pool.) One idle for `ping_if_idle_for` is pinged
/// first, and a broken one is replaced without anyone noticing.
#[tokio::test]
async fn pooled_connections_are_pinged_only_after_sitting_idle() {
    use std::time::Duration;
    use tasker_shared::database::{PoolConfig, connect};

    let db = TestDb::new().await;
    let break_connection = async |pool: &sqlx::PgPool| {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
        // sqlx checks a connection on its way back to the pool; break it only once it
        // is back and idle.
        tokio::time::timeout(Duration::from_secs(5), async {
            while pool.num_idle() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the connection returns to the pool");
        // Waits (up to 5 s) until the backend is gone.
        let gone: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert!(gone);
    };
    let one = |ping_if_idle_for| PoolConfig {
        max_connections: 1,
        ping_if_idle_for,
        ..PoolConfig::default()
    };

    let busy = connect(&db.url, &one(Duration::from_secs(3600)))
        .await
        .unwrap();
    break_connection(&busy).await;
    let failed = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
        .fetch_one(&busy)
        .await;
    let error = tasker_shared::database::Error::from(failed.expect_err("handed out unchecked"));
    assert!(error.is_transient(), "callers retry on it: {error:?}");

    let idle = connect(&db.url, &one(Duration::ZERO)).await.unwrap();
    break_connection(&idle).await;
    let replaced: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&idle)
        .await
        .unwrap();
    assert_eq!(replaced, 1);
}

#[tokio::test]
async fn pooled_connections_reuse_one_plan_per_statement() {
    use tasker_shared::database::{PoolConfig, connect};

    let db = TestDb::new().await;
    let pool = connect(&db.url, &PoolConfig::default()).await.unwrap();
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "force_generic_plan");
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jit, "off");
    let seqscan: String = sqlx::query_scalar("SHOW enable_seqscan")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seqscan, "off");
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(path, "public");
}

#[tokio::test]
async fn enqueue_moves_pending_steps_and_sends_exactly_their_messages() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let client = pgmq_notify::PgmqClient::new(db.pool.clone());
    let queue = pgmq_notify::QueueName::worker("tests").unwrap();
    client.create_queue(&queue).await.unwrap();
    let (left, right) = (c.steps["left"], c.steps["right"]);
    complete_step(&db, right).await;

    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener.listen(&queue.channel()).await.unwrap();

    let messages = [json!({"step": "left"}), json!({"step": "right"})];
    let mut conn = db.pool.acquire().await.unwrap();
    // `left` is listed twice: still one message.
    let moved = step::enqueue::many(
        &mut conn,
        &[left, right, left],
        &[
            messages[0].clone(),
            messages[1].clone(),
            messages[0].clone(),
        ],
        &queue,
    )
    .await
    .unwrap();
    // Workers hear about it.
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification for the enqueued step")
        .unwrap();
    assert!(
        heard.payload().contains(queue.as_str()),
        "{}",
        heard.payload()
    );
    // Only the pending step moved, and only its message went out.
    assert_eq!(moved, vec![left]);
    assert_eq!(state_of(&db, left).await, WorkflowStepState::Enqueued);
    assert_eq!(state_of(&db, right).await, WorkflowStepState::Complete);
    let sent: Vec<pgmq_notify::QueueMessage<serde_json::Value>> =
        client.read(&queue, 30, 10).await.unwrap();
    let bodies: Vec<_> = sent.into_iter().map(|m| m.message).collect();
    assert_eq!(bodies, vec![json!({"step": "left"})]);
    // Again: nothing is pending any more, so nothing moves and nothing is sent.
    let again = step::enqueue::many(&mut conn, &[left, right], &messages, &queue)
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(client.depth(&queue).await.unwrap(), 1);
    // Mismatched inputs are refused.
    assert!(
        step::enqueue::many(&mut conn, &[left], &messages, &queue)
            .await
            .is_err()
    );
}

/// A fresh database with the worker queue of namespace `tests`.
async fn db_with_worker_queue() -> (TestDb, pgmq_notify::QueueName) {
    let db = TestDb::new().await;
    let queue = pgmq_notify::QueueName::worker("tests").unwrap();
    pgmq_notify::PgmqClient::new(db.pool.clone())
        .create_queue(&queue)
        .await
        .unwrap();
    (db, queue)
}

/// A pool of one connection with Tasker's session settings: every statement run on it
/// runs on the same backend, whose statistics [`rows_read`] can flush.
async fn one_connection_pool(db: &TestDb) -> sqlx::PgPool {
    use tasker_shared::database::{PoolConfig, connect};
    connect(
        &db.url,
        &PoolConfig {
            max_connections: 1,
            ..PoolConfig::default()
        },
    )
    .await
    .unwrap()
}

/// Rows read per table (`seq_tup_read + idx_tup_fetch`), after making `conn`'s own
/// counters visible.
async fn rows_read(conn: &mut sqlx::PgConnection) -> std::collections::HashMap<String, i64> {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .unwrap();
    // The flush happens as the backend goes idle, before it answers; a second statement
    // makes sure that moment has passed.
    sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname,
                (COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0))::bigint
         FROM pg_stat_user_tables WHERE schemaname IN ('tasker', 'pgmq')",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// One step through the hot path on `pool`: the worker's claim and submit, the
/// orchestration's take, lock and completion (which enqueues the ready children).
async fn run_one_step(pool: &sqlx::PgPool, worker_queue: &pgmq_notify::QueueName) {
    use pgmq_notify::{PgmqClient, QueueName};
    use tasker_shared::database::step::claim::Delivery;

    let results_queue =
        QueueName::new(tasker_shared::messaging::ORCHESTRATION_STEP_RESULTS).unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let mut deliveries = step::claim::from_queue(&mut conn, worker_queue, "w", 30, 1)
        .await
        .unwrap();
    let Some(Delivery::Claimed { msg_id, step, .. }) = deliveries.pop() else {
        panic!("nothing claimed")
    };
    let result = tasker_shared::results::StepExecutionResult {
        step_uuid: step.step_uuid,
        success: true,
        result: json!(1),
        status: tasker_shared::results::ResultStatus::Completed,
        error: None,
        metadata: tasker_shared::results::ResultMetadata {
            attempt: step.attempt,
            execution_time_ms: 1,
            worker_id: "w".into(),
            started_at: chrono::Utc::now(),
            completed_at: chrono::Utc::now(),
            custom: serde_json::Value::Null,
        },
    };
    let handed = serde_json::to_value(step.message()).unwrap();
    let handover = step::result::Handover {
        worker_queue,
        msg_id,
        results_queue: &results_queue,
        message: &handed,
    };
    let out = step::result::submit_one(&mut conn, step.step_uuid, step.attempt, &result, handover)
        .await
        .unwrap();
    assert!(out.applied(), "{out:?}");
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    let taken: Vec<pgmq_notify::QueueMessage<serde_json::Value>> =
        PgmqClient::take_with(&mut *tx, &results_queue, 10)
            .await
            .unwrap();
    assert_eq!(taken.len(), 1);
    step::processing::lock_and_load_one(&mut tx, step.task_uuid, step.step_uuid)
        .await
        .unwrap()
        .unwrap();
    let route = step::complete::ChildRoute {
        queue: worker_queue,
        correlation_id: step.correlation_id,
    };
    step::complete::one(&mut tx, step.step_uuid, &json!({}), Some(route))
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
}

/// Tasker keeps one generic plan per statement and connection, made the first time the
/// statement runs. Made while the tables were small, such a plan could scan a whole
/// table, and kept doing so as the table grew. Here the plans are made on an almost
/// empty (and analyzed) database; after the tables and the queue grow, one more step
/// through the hot path must still read only the rows it needs.
/// Looking a template up reads its own steps' names, not every step name registered.
#[tokio::test]
async fn finding_a_template_reads_its_own_steps_only() {
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    sqlx::query("ANALYZE").execute(&db.pool).await.unwrap();
    let pool = one_connection_pool(&db).await;
    let mut conn = pool.acquire().await.unwrap();
    // Planned on the small table, as a server's first creation would, and kept.
    named_task::find(&mut *conn, "tests", "diamond", None)
        .await
        .unwrap()
        .unwrap();
    // Other templates register many more steps.
    sqlx::query(
        "INSERT INTO tasker.named_steps (name) SELECT 'other_' || g FROM generate_series(1, 2000) g",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let before = rows_read(&mut conn).await;
    let found = named_task::find(&mut *conn, "tests", "diamond", None)
        .await
        .unwrap()
        .unwrap();
    let after = rows_read(&mut conn).await;
    assert_eq!(found.named_steps, nt.named_steps);
    assert_eq!(found.named_steps.len(), 4);
    let read = after["tasker.named_steps"] - before["tasker.named_steps"];
    assert!(read <= 4, "{read} named_steps rows read");
}

#[tokio::test]
async fn plans_made_on_small_tables_stay_keyed_as_the_tables_grow() {
    use pgmq_notify::PgmqClient;
    use sqlx::Connection;
    use tasker_shared::messaging::StepMessage;

    let (db, queue) = db_with_worker_queue().await;
    let nt = register(&db, DIAMOND).await;
    let first = create(&db, &nt).await;
    let start_message = |c: &task::create::CreatedTask| {
        serde_json::to_value(StepMessage::new(
            c.task_uuid,
            c.steps["start"],
            Uuid::now_v7(),
        ))
        .unwrap()
    };
    {
        let mut conn = db.pool.acquire().await.unwrap();
        step::enqueue::many(
            &mut conn,
            &[first.steps["start"]],
            &[start_message(&first)],
            &queue,
        )
        .await
        .unwrap();
        sqlx::query("ANALYZE").execute(&mut *conn).await.unwrap();
    }
    db.pool.close().await;

    // Every statement of the path is planned now, on the small tables.
    let hot = one_connection_pool(&db).await;
    run_one_step(&hot, &queue).await;

    // The tables grow to about 250 tasks; 500 delayed messages wait behind the two
    // children the first step enqueued.
    let mut grow = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for _ in 0..250 {
        let mut tx = grow.begin().await.unwrap();
        task::create::pending(&mut tx, &nt, &new_task(&nt, json!({"n": Uuid::now_v7()})))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let filler = vec![json!({"filler": true}); 500];
    PgmqClient::send_batch_with_notify(&mut grow, &queue, &filler, 3600)
        .await
        .unwrap();
    let mut hot_conn = hot.acquire().await.unwrap();
    rows_read(&mut hot_conn).await;
    drop(hot_conn);
    let before = rows_read(&mut grow).await;

    run_one_step(&hot, &queue).await;
    let mut hot_conn = hot.acquire().await.unwrap();
    let after = rows_read(&mut hot_conn).await;
    for table in [
        "tasker.workflow_steps",
        "tasker.workflow_step_edges",
        "tasker.tasks",
        "pgmq.q_worker_tests_queue",
    ] {
        let read = after[table] - before[table];
        // One step touches a handful of rows; a scan reads at least 500.
        assert!(read < 50, "{table}: {read} rows read for one step");
    }
}

/// The orchestration's creation: one statement writes the task already running, its
/// roots enqueued with one message each, and a history that reads as if each had moved
/// there from `pending`; a duplicate writes nothing, not even a message.
#[tokio::test]
async fn create_and_enqueue_starts_the_task_in_one_statement() {
    use pgmq_notify::PgmqClient;
    use tasker_shared::messaging::StepMessage;

    let (db, queue) = db_with_worker_queue().await;
    let client = PgmqClient::new(db.pool.clone());
    let nt = register(&db, DIAMOND).await;
    // The template comes with its steps' registry rows, so creation needs no lookup.
    assert_eq!(nt.named_steps.len(), 4);
    let new = new_task(&nt, json!({"order": 7}));
    let mut conn = db.pool.acquire().await.unwrap();
    let task::create::CreateOutcome::Created(c) =
        task::create::and_enqueue(&mut conn, &nt, &new, &queue)
            .await
            .unwrap()
    else {
        panic!("not created")
    };
    assert_eq!(c.root_steps, vec![c.steps["start"]]);
    assert_eq!(c.named_steps, nt.named_steps);

    let record = task::read::get(&db.pool, c.task_uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, "steps_in_process");
    let history: Vec<(Option<String>, String, i32, serde_json::Value)> =
        task::history::list(&db.pool, c.task_uuid)
            .await
            .unwrap()
            .into_iter()
            .map(|h| (h.from_state, h.to_state, h.sort_key, h.metadata))
            .collect();
    assert_eq!(
        history,
        vec![
            (None, "pending".into(), 1, json!({"event": "initialized"})),
            (
                Some("pending".into()),
                "steps_in_process".into(),
                2,
                json!({"event": "steps_enqueued", "count": 1})
            ),
        ]
    );
    let steps = |name: &str| {
        let db = &db;
        let id = c.steps[name];
        async move {
            step::history::list(&db.pool, id)
                .await
                .unwrap()
                .into_iter()
                .map(|h| (h.from_state, h.to_state, h.sort_key))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        steps("start").await,
        vec![
            (None, "pending".into(), 1),
            (Some("pending".into()), "enqueued".into(), 2)
        ]
    );
    assert_eq!(
        state_of(&db, c.steps["start"]).await,
        WorkflowStepState::Enqueued
    );
    for name in ["left", "right", "end"] {
        assert_eq!(steps(name).await, vec![(None, "pending".into(), 1)]);
        assert_eq!(
            state_of(&db, c.steps[name]).await,
            WorkflowStepState::Pending
        );
    }
    // The state's sort key follows the history, so the next transition appends to it.
    for (name, key) in [("start", 2), ("left", 1), ("right", 1), ("end", 1)] {
        let stored: i32 = sqlx::query_scalar(
            "SELECT state_sort_key FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
        )
        .bind(c.steps[name])
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(stored, key, "{name}");
    }
    let edges: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasker.workflow_step_edges e
         JOIN tasker.workflow_steps s ON s.workflow_step_uuid = e.to_step_uuid
         WHERE s.task_uuid = $1",
    )
    .bind(c.task_uuid)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(edges, 4);
    // The readiness functions agree: start is enqueued, nothing else is ready.
    let ready = step::read::readiness(&db.pool, c.task_uuid, None)
        .await
        .unwrap();
    assert!(ready.iter().all(|r| !r.ready_for_execution));

    // A duplicate: nothing more is written, and no second message is sent.
    let again = task::create::NewTask {
        task_uuid: Uuid::now_v7(),
        ..new.clone()
    };
    match task::create::and_enqueue(&mut conn, &nt, &again, &queue)
        .await
        .unwrap()
    {
        task::create::CreateOutcome::Duplicate { existing_task_uuid } => {
            assert_eq!(existing_task_uuid, c.task_uuid)
        }
        other => panic!("{other:?}"),
    }
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.tasks")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(tasks, 1);
    let messages = client.read::<StepMessage>(&queue, 30, 10).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].message,
        StepMessage::new(c.task_uuid, c.steps["start"], new.correlation_id)
    );
}

/// Reads find the visible messages through PGMQ's index on `vt`: messages leased to
/// running steps or delayed for retries are not read and filtered out one by one, so a
/// read costs the same however many of them wait in the queue.
#[tokio::test]
async fn a_read_does_not_walk_past_messages_that_are_not_visible() {
    use pgmq_notify::PgmqClient;

    let (db, queue) = db_with_worker_queue().await;
    let delayed = vec![json!({"later": true}); 300];
    PgmqClient::send_batch_with_notify(&db.pool, &queue, &delayed, 3600)
        .await
        .unwrap();
    let fresh = PgmqClient::send_with_notify(&db.pool, &queue, &json!({"now": true}), 0)
        .await
        .unwrap();

    let pool = one_connection_pool(&db).await;
    let before = rows_read(&mut pool.acquire().await.unwrap()).await;
    let read = PgmqClient::new(pool.clone())
        .read::<serde_json::Value>(&queue, 30, 10)
        .await
        .unwrap();
    assert_eq!(read.iter().map(|m| m.msg_id).collect::<Vec<_>>(), [fresh]);
    let after = rows_read(&mut pool.acquire().await.unwrap()).await;
    let table = "pgmq.q_worker_tests_queue";
    let rows = after[table] - before[table];
    assert!(rows < 20, "{rows} rows read to find one visible message");
}

/// Several results in one statement: each is fenced on its own attempt, moves its step,
/// deletes its step message and sends one message to the orchestration; a stale one
/// writes nothing.
#[tokio::test]
async fn submitting_results_together_records_each_as_alone() {
    use pgmq_notify::{PgmqClient, QueueName};
    use tasker_shared::database::step::claim::Delivery;
    use tasker_shared::database::step::result::Submission;
    use tasker_shared::messaging::{ORCHESTRATION_STEP_RESULTS, StepMessage};
    use tasker_shared::results::{ResultMetadata, ResultStatus, StepExecutionResult};

    let (db, queue) = db_with_worker_queue().await;
    let results_queue = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    let client = PgmqClient::new(db.pool.clone());
    let nt = register(&db, DIAMOND).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..2 {
        let new = new_task(&nt, json!({"n": n}));
        let task::create::CreateOutcome::Created(c) =
            task::create::and_enqueue(&mut conn, &nt, &new, &queue)
                .await
                .unwrap()
        else {
            panic!("not created")
        };
        tasks.push(c);
    }
    let claimed: Vec<(i64, tasker_shared::database::step::claim::ClaimedStep)> =
        step::claim::from_queue(&mut conn, &queue, "w", 30, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| match d {
                Delivery::Claimed { msg_id, step, .. } => (msg_id, *step),
                other => panic!("{other:?}"),
            })
            .collect();
    assert_eq!(claimed.len(), 2);
    let result = |step: &tasker_shared::database::step::claim::ClaimedStep, success: bool| {
        StepExecutionResult {
            step_uuid: step.step_uuid,
            success,
            result: json!(step.step_name),
            status: if success {
                ResultStatus::Completed
            } else {
                ResultStatus::Failed
            },
            error: None,
            metadata: ResultMetadata {
                attempt: step.attempt,
                execution_time_ms: 1,
                worker_id: "w".into(),
                started_at: chrono::Utc::now(),
                completed_at: chrono::Utc::now(),
                custom: serde_json::Value::Null,
            },
        }
    };
    let (ok, failed) = (result(&claimed[0].1, true), result(&claimed[1].1, false));
    let stale = result(&claimed[0].1, true);
    let messages: Vec<serde_json::Value> = claimed
        .iter()
        .map(|(_, s)| serde_json::to_value(s.message()).unwrap())
        .collect();
    let items = [
        Submission {
            step_uuid: claimed[0].1.step_uuid,
            attempt: claimed[0].1.attempt,
            result: &ok,
            msg_id: claimed[0].0,
            message: &messages[0],
        },
        Submission {
            step_uuid: claimed[1].1.step_uuid,
            attempt: claimed[1].1.attempt,
            result: &failed,
            msg_id: claimed[1].0,
            message: &messages[1],
        },
        // An older attempt of the first step: fenced off.
        Submission {
            step_uuid: claimed[0].1.step_uuid,
            attempt: claimed[0].1.attempt - 1,
            result: &stale,
            msg_id: claimed[0].0,
            message: &messages[0],
        },
    ];
    let outcomes = step::result::submit_many(&mut conn, &queue, &results_queue, &items)
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            TransitionOutcome::Applied {
                from: WorkflowStepState::InProgress
            },
            TransitionOutcome::Applied {
                from: WorkflowStepState::InProgress
            },
            TransitionOutcome::Conflict {
                actual: Some(WorkflowStepState::EnqueuedForOrchestration)
            },
        ]
    );
    assert_eq!(
        state_of(&db, claimed[0].1.step_uuid).await,
        WorkflowStepState::EnqueuedForOrchestration
    );
    assert_eq!(
        state_of(&db, claimed[1].1.step_uuid).await,
        WorkflowStepState::EnqueuedAsErrorForOrchestration
    );
    for (_, step) in &claimed {
        let history = step::history::list(&db.pool, step.step_uuid).await.unwrap();
        assert_eq!(
            history.len(),
            4,
            "pending, enqueued, in_progress, and one result"
        );
        let stored: serde_json::Value = sqlx::query_scalar(
            "SELECT results FROM tasker.workflow_steps WHERE workflow_step_uuid = $1",
        )
        .bind(step.step_uuid)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(stored["result"], json!(step.step_name));
    }
    assert_eq!(
        client.depth(&queue).await.unwrap(),
        0,
        "step messages deleted"
    );
    let mut sent: Vec<StepMessage> = client
        .read::<StepMessage>(&results_queue, 30, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.message)
        .collect();
    sent.sort_by_key(|m| m.step_uuid);
    let mut expected: Vec<StepMessage> = claimed.iter().map(|(_, s)| s.message()).collect();
    expected.sort_by_key(|m| m.step_uuid);
    assert_eq!(sent, expected, "one message per recorded result");
}

/// `task::finalize::complete_if_done` with a fixed history entry.
async fn decide(conn: &mut sqlx::PgConnection, task: Uuid) -> task::finalize::AfterCompletion {
    task::finalize::complete_if_done(conn, task, &json!({"event": "finalized"}))
        .await
        .unwrap()
}

/// `task::finalize::complete_if_done`: a task whose steps are all complete or resolved
/// manually is completed (history, completion time, notification) once; a step
/// enqueued, running or reported means "on its way"; anything else is undecided.
#[tokio::test]
async fn complete_task_if_done_completes_only_a_finished_task() {
    use task::finalize::AfterCompletion;
    let db = TestDb::new().await;
    let nt = register(&db, DIAMOND).await;
    let c = create(&db, &nt).await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&db.pool)
        .await
        .unwrap();
    listener
        .listen(task::transition::SETTLED_CHANNEL)
        .await
        .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    // Every row of the task's (`tasks`) or of its steps (`workflow_steps`) to `state`.
    let set = |table: &'static str, state: &'static str| {
        let pool = db.pool.clone();
        let task = c.task_uuid;
        async move {
            sqlx::query(&format!(
                "UPDATE tasker.{table} SET current_state = $2 WHERE task_uuid = $1"
            ))
            .bind(task)
            .bind(state)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    let set_task = |state: &'static str| set("tasks", state);
    let set_step = |step: Uuid, state: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query(
                "UPDATE tasker.workflow_steps SET current_state = $2 WHERE workflow_step_uuid = $1",
            )
            .bind(step)
            .bind(state)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    let set_steps = |state: &'static str| set("workflow_steps", state);
    let history = || {
        let pool = db.pool.clone();
        let task = c.task_uuid;
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = $1 AND to_state = 'complete'",
            )
            .bind(task)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    set_task("steps_in_process").await;
    for (state, expected) in [
        ("pending", AfterCompletion::Undecided),
        ("waiting_for_retry", AfterCompletion::Undecided),
        ("error", AfterCompletion::Undecided),
        ("cancelled", AfterCompletion::Undecided),
        ("enqueued", AfterCompletion::StepsOnTheirWay),
        ("in_progress", AfterCompletion::StepsOnTheirWay),
        (
            "enqueued_for_orchestration",
            AfterCompletion::StepsOnTheirWay,
        ),
        (
            "enqueued_as_error_for_orchestration",
            AfterCompletion::StepsOnTheirWay,
        ),
    ] {
        set_steps(state).await;
        assert_eq!(
            decide(&mut conn, c.task_uuid).await,
            expected,
            "every step {state}"
        );
    }
    // One step on its way, or one pending, among finished ones decides.
    for (state, expected) in [
        ("in_progress", AfterCompletion::StepsOnTheirWay),
        ("pending", AfterCompletion::Undecided),
    ] {
        set_steps("complete").await;
        set_step(c.steps["end"], state).await;
        assert_eq!(
            decide(&mut conn, c.task_uuid).await,
            expected,
            "one step {state}"
        );
    }
    assert_eq!(history().await, 0);
    // A task not in steps_in_process is left alone, finished steps or not.
    set_steps("complete").await;
    set_task("waiting_for_retry").await;
    assert_eq!(
        decide(&mut conn, c.task_uuid).await,
        AfterCompletion::Undecided
    );
    assert_eq!(history().await, 0);

    // Complete and resolved manually: the task completes, once.
    set_task("steps_in_process").await;
    set_step(c.steps["left"], "resolved_manually").await;
    assert_eq!(
        decide(&mut conn, c.task_uuid).await,
        AfterCompletion::Completed
    );
    let (state, completed_at): (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT current_state::text, completed_at FROM tasker.tasks WHERE task_uuid = $1",
    )
    .bind(c.task_uuid)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(state, "complete");
    assert!(completed_at.is_some());
    assert_eq!(
        next_settled(&mut listener).await,
        json!({"task_uuid": c.task_uuid, "status": "complete"})
    );
    assert_eq!(
        decide(&mut conn, c.task_uuid).await,
        AfterCompletion::Undecided
    );
    assert_eq!(history().await, 1);
    assert_eq!(
        decide(&mut conn, Uuid::now_v7()).await,
        AfterCompletion::Undecided
    );
}

/// `database::replayable_pool`: same database and session settings as its base pool,
/// but commits that do not wait for the WAL flush; the base pool still waits.
#[tokio::test]
async fn a_replayable_pool_commits_without_waiting_for_the_flush() {
    let db = TestDb::new().await;
    // The test cluster may run without durable commits; the base pool asks for them.
    let base = sqlx::PgPool::connect_lazy_with(
        db.pool
            .connect_options()
            .as_ref()
            .clone()
            .options([("synchronous_commit", "on")]),
    );
    let replayable = tasker_shared::database::replayable_pool(
        &base,
        &tasker_shared::database::PoolConfig::default(),
    );
    let settings = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT current_database(), current_setting('synchronous_commit'),
                    current_setting('plan_cache_mode')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let (base_db, base_commit, base_plans) = settings(base).await;
    let (db_name, commit, plans) = settings(replayable).await;
    assert_eq!(base_commit, "on");
    assert_eq!(commit, "off");
    assert_eq!(db_name, base_db);
    assert_eq!(plans, base_plans);
    assert_eq!(plans, "force_generic_plan");
}
