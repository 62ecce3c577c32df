//! `database::retention`: purging finished tasks and archived messages.

use super::*;

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
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let old_complete = factory::task(&nt).create(&db.pool).await.task_uuid;
    finish(&db, old_complete, TaskState::Complete, Some(48)).await;
    let old_cancelled = factory::task(&nt).create(&db.pool).await.task_uuid;
    finish(&db, old_cancelled, TaskState::Cancelled, Some(48)).await;
    let recent_complete = factory::task(&nt).create(&db.pool).await.task_uuid;
    finish(&db, recent_complete, TaskState::Complete, None).await;
    let old_running = factory::task(&nt).create(&db.pool).await.task_uuid;
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
    let old_error_pending = factory::task(&nt).create(&db.pool).await.task_uuid;
    let old_error_resolved = factory::task(&nt).create(&db.pool).await.task_uuid;
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
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let older = factory::task(&nt).create(&db.pool).await.task_uuid;
    finish(&db, older, TaskState::Complete, Some(50)).await;
    let old = factory::task(&nt).create(&db.pool).await.task_uuid;
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
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
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
