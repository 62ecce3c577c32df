//! The queue statements of `pgmq-notify` that Tasker relies on, against PGMQ's own functions.

use super::*;

fn tokio_util_token() -> tokio_util::sync::CancellationToken {
    tokio_util::sync::CancellationToken::new()
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
