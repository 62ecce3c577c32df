//! `database::step::complete` with a handoff offer, and `database::step::handoff`.

use super::*;

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
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    factory::walk_step(
        &db.pool,
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
