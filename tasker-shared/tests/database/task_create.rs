//! `database::task::create`: a task with its steps, edges and history in one statement.

use super::*;

#[tokio::test]
async fn create_inserts_steps_edges_and_pending_states() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let created = factory::task(&nt).create(&db.pool).await;
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
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let new = factory::task(&nt)
        .context(json!({"same": true}))
        .identity_from_context()
        .build();
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

/// The orchestration's creation: one statement writes the task already running, its
/// roots enqueued with one message each, and a history that reads as if each had moved
/// there from `pending`; a duplicate writes nothing, not even a message.
#[tokio::test]
async fn create_and_enqueue_starts_the_task_in_one_statement() {
    use pgmq_notify::PgmqClient;
    use tasker_shared::messaging::StepMessage;

    let (db, queue) = db_with_worker_queue().await;
    let client = PgmqClient::new(db.pool.clone());
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    // The template comes with its steps' registry rows, so creation needs no lookup.
    assert_eq!(nt.named_steps.len(), 4);
    let new = factory::task(&nt)
        .context(json!({"order": 7}))
        .identity_from_context()
        .build();
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
