//! `database::step::complete`: completions and the children they enqueue.

use super::*;

#[tokio::test]
async fn completing_a_step_enqueues_the_children_it_makes_ready() {
    use WorkflowStepState::*;
    use pgmq_notify::PgmqClient;
    use tasker_shared::messaging::StepMessage;

    let (db, queue) = db_with_worker_queue().await;
    let client = PgmqClient::new(db.pool.clone());
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
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

    factory::walk_step(&db.pool, c.steps["start"], &to_orchestration).await;
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
    factory::walk_step(&db.pool, c.steps["left"], &to_orchestration[1..]).await;
    assert!(
        complete(c.steps["left"], Some(route))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(state_of(&db, c.steps["end"]).await, Pending);
    factory::walk_step(&db.pool, c.steps["right"], &to_orchestration[1..]).await;
    assert_eq!(
        complete(c.steps["right"], Some(route)).await.unwrap(),
        vec![c.steps["end"]]
    );

    // Without a route (a blocked task), the step completes and no child moves.
    let other = factory::task(&nt).create(&db.pool).await;
    factory::walk_step(&db.pool, other.steps["start"], &to_orchestration).await;
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
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let (a, b) = (
        factory::task(&nt).create(&db.pool).await,
        factory::task(&nt).create(&db.pool).await,
    );
    let to_orchestration = [Pending, Enqueued, InProgress, EnqueuedForOrchestration];
    for c in [&a, &b] {
        factory::complete_step(&db.pool, c.steps["start"]).await;
    }
    // Task a: both parents of `end` finish together; task b: only `left`.
    for step in [a.steps["left"], a.steps["right"], b.steps["left"]] {
        factory::walk_step(&db.pool, step, &to_orchestration).await;
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
