//! Generic plans made on small tables stay keyed as the tables grow (the step path and the template lookup).

use super::*;
use tasker_shared::database::named_task;

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
    let result = factory::succeeded(step.step_uuid, step.attempt, json!(1));
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

/// Looking a template up reads its own steps' names, not every step name registered.
#[tokio::test]
async fn finding_a_template_reads_its_own_steps_only() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
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

/// Tasker keeps one generic plan per statement and connection, made the first time the
/// statement runs. Made while the tables were small, such a plan could scan a whole
/// table, and kept doing so as the table grew. Here the plans are made on an almost
/// empty (and analyzed) database; after the tables and the queue grow, one more step
/// through the hot path must still read only the rows it needs.
#[tokio::test]
async fn plans_made_on_small_tables_stay_keyed_as_the_tables_grow() {
    use pgmq_notify::PgmqClient;
    use sqlx::Connection;
    use tasker_shared::messaging::StepMessage;

    let (db, queue) = db_with_worker_queue().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let first = factory::task(&nt).create(&db.pool).await;
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
        factory::task(&nt).create(&mut tx).await;
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
