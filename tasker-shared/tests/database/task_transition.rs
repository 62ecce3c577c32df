//! `database::task::transition`: the settled notification (the compare-and-swap is in `step_transition`).

use super::*;

#[tokio::test]
async fn settled_tasks_are_announced_in_their_transaction() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
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
