//! `database::step::claim`: claiming one step, and reading and claiming from a queue.

use super::*;

#[tokio::test]
async fn claim_hands_over_ancestor_results() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    for name in ["start", "left", "right"] {
        factory::complete_step(&db.pool, c.steps[name]).await;
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
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    // Task a: start, left and right done with results; end ready to claim.
    let a = factory::task(&nt).create(&db.pool).await;
    for name in ["start", "left", "right"] {
        factory::complete_step(&db.pool, a.steps[name]).await;
        sqlx::query("UPDATE tasker.workflow_steps SET results = $2 WHERE workflow_step_uuid = $1")
            .bind(a.steps[name])
            .bind(json!({"result": format!("a-{name}")}))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    factory::walk_step(&db.pool, a.steps["end"], &[Pending, Enqueued]).await;
    // Task b: start done; left ready to claim; right running under a live lease.
    let b = factory::task(&nt).create(&db.pool).await;
    factory::complete_step(&db.pool, b.steps["start"]).await;
    sqlx::query("UPDATE tasker.workflow_steps SET results = $2 WHERE workflow_step_uuid = $1")
        .bind(b.steps["start"])
        .bind(json!({"result": "b-start"}))
        .execute(&db.pool)
        .await
        .unwrap();
    factory::walk_step(&db.pool, b.steps["left"], &[Pending, Enqueued]).await;
    factory::walk_step(&db.pool, b.steps["right"], &[Pending, Enqueued, InProgress]).await;

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
    let c = factory::task(&nt).create(&db.pool).await;
    factory::walk_step(&db.pool, c.steps["start"], &[Pending, Enqueued, InProgress]).await;
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
