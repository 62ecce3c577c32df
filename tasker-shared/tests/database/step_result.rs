//! `database::step::result`: results fenced on their attempt, alone and together.

use super::*;

#[tokio::test]
async fn stale_attempt_cannot_record_a_result() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
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

    let result = |attempt: i32| factory::succeeded(start, attempt, json!(attempt));
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

/// Several results in one statement: each is fenced on its own attempt, moves its step,
/// deletes its step message and sends one message to the orchestration; a stale one
/// writes nothing.
#[tokio::test]
async fn submitting_results_together_records_each_as_alone() {
    use pgmq_notify::{PgmqClient, QueueName};
    use tasker_shared::database::step::claim::{ClaimedStep, Delivery};
    use tasker_shared::database::step::result::Submission;
    use tasker_shared::messaging::{ORCHESTRATION_STEP_RESULTS, StepMessage};

    let (db, queue) = db_with_worker_queue().await;
    let results_queue = QueueName::new(ORCHESTRATION_STEP_RESULTS).unwrap();
    let client = PgmqClient::new(db.pool.clone());
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..2 {
        let c = factory::task(&nt)
            .context(json!({"n": n}))
            .create_and_enqueue(&mut conn, &queue)
            .await;
        tasks.push(c);
    }
    let claimed: Vec<(i64, ClaimedStep)> = step::claim::from_queue(&mut conn, &queue, "w", 30, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| match d {
            Delivery::Claimed { msg_id, step, .. } => (msg_id, *step),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(claimed.len(), 2);
    let result = |step: &ClaimedStep, success: bool| {
        factory::result(step.step_uuid, step.attempt, success, json!(step.step_name))
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
