//! `database::step::enqueue`.

use super::*;

#[tokio::test]
async fn enqueue_moves_pending_steps_and_sends_exactly_their_messages() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    let client = pgmq_notify::PgmqClient::new(db.pool.clone());
    let queue = pgmq_notify::QueueName::worker("tests").unwrap();
    client.create_queue(&queue).await.unwrap();
    let (left, right) = (c.steps["left"], c.steps["right"]);
    factory::complete_step(&db.pool, right).await;

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
