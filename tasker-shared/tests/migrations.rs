//! Upgrading a database that holds work: migration 9 moves the current state from the
//! history's `most_recent` rows onto the task and step rows, and its down migration
//! moves it back.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::json;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tasker_shared::database::{MIGRATOR, step, task};
use tasker_shared::state_machine::{TaskState, TransitionOutcome, WorkflowStepState};
use tasker_shared::testing::TestDb;
use uuid::Uuid;

const BEFORE_CURRENT_STATE_ON_ROWS: i64 = 20261127000008;

/// A migrator holding the project's migrations up to `last` (copied to a temp dir).
async fn migrator_up_to(last: i64) -> (Migrator, PathBuf) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let dir = std::env::temp_dir().join(format!("tasker-migrations-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version <= last {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
    (Migrator::new(dir.as_path()).await.unwrap(), dir)
}

/// One task in `steps_in_process` with two steps: `a` waiting for its retry after a
/// failed attempt, `b` still pending; written the way the old schema stored states.
async fn seed_old_schema(pool: &PgPool) -> (Uuid, Uuid, Uuid) {
    let (task, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let statements = [
        "INSERT INTO tasker.task_namespaces (name) VALUES ('upgrade')",
        "INSERT INTO tasker.named_tasks (task_namespace_uuid, name, version, configuration, content_hash)
         SELECT task_namespace_uuid, 'upgrade', '1.0.0', '{}', 'x' FROM tasker.task_namespaces",
        "INSERT INTO tasker.named_steps (name) VALUES ('a'), ('b')",
        "INSERT INTO tasker.tasks (task_uuid, named_task_uuid, identity_hash, correlation_id)
         SELECT $1, named_task_uuid, 'upgrade-1', gen_random_uuid() FROM tasker.named_tasks",
        "INSERT INTO tasker.workflow_steps (workflow_step_uuid, task_uuid, named_step_uuid, handler_callable, attempts)
         SELECT CASE name WHEN 'a' THEN $2 ELSE $3 END, $1, named_step_uuid, 'h', CASE name WHEN 'a' THEN 1 ELSE 0 END
         FROM tasker.named_steps",
        "INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid) VALUES ($2, $3)",
        "INSERT INTO tasker.task_transitions (task_uuid, to_state, from_state, sort_key, most_recent, created_at)
         VALUES ($1, 'pending', NULL, 1, false, now() - interval '2 hours'),
                ($1, 'steps_in_process', 'pending', 2, true, now() - interval '1 hour')",
        "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key, most_recent, created_at)
         VALUES ($2, 'pending', NULL, 1, false, now() - interval '60 minutes'),
                ($2, 'enqueued', 'pending', 2, false, now() - interval '50 minutes'),
                ($2, 'in_progress', 'enqueued', 3, false, now() - interval '40 minutes'),
                ($2, 'enqueued_as_error_for_orchestration', 'in_progress', 4, false, now() - interval '30 minutes'),
                ($2, 'waiting_for_retry', 'enqueued_as_error_for_orchestration', 5, true, now() - interval '20 minutes'),
                ($3, 'pending', NULL, 1, true, now() - interval '60 minutes')",
        // Rows last touched before their latest transitions, as the old schema left them.
        "UPDATE tasker.tasks SET updated_at = now() - interval '3 hours' WHERE task_uuid = $1",
        "UPDATE tasker.workflow_steps SET updated_at = now() - interval '3 hours'
         WHERE workflow_step_uuid IN ($2, $3)",
    ];
    for sql in statements {
        sqlx::query(sql)
            .bind(task)
            .bind(a)
            .bind(b)
            .execute(pool)
            .await
            .unwrap();
    }
    (task, a, b)
}

#[tokio::test]
async fn migration_9_moves_current_states_onto_rows_and_back() {
    let db = TestDb::empty().await;
    pgmq_notify::install::install(&db.pool).await.unwrap();
    let (old, dir) = migrator_up_to(BEFORE_CURRENT_STATE_ON_ROWS).await;
    old.run(&db.pool).await.unwrap();
    let (task, a, b) = seed_old_schema(&db.pool).await;

    MIGRATOR.run(&db.pool).await.unwrap();

    let row: (String, i32, bool) = sqlx::query_as(
        "SELECT current_state, state_sort_key, state_changed_at = (
                    SELECT created_at FROM tasker.task_transitions WHERE task_uuid = $1 AND sort_key = 2)
                AND updated_at >= state_changed_at
         FROM tasker.tasks WHERE task_uuid = $1",
    )
    .bind(task)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(row, ("steps_in_process".into(), 2, true));
    // updated_at stands for the latest transition's time from now on (staleness).
    let steps: Vec<(Uuid, String, i32, bool)> = sqlx::query_as(
        "SELECT workflow_step_uuid, current_state, state_sort_key,
                last_failure_at IS NOT DISTINCT FROM (
                    SELECT created_at FROM tasker.workflow_step_transitions t
                    WHERE t.workflow_step_uuid = ws.workflow_step_uuid
                      AND t.to_state = 'enqueued_as_error_for_orchestration')
                AND updated_at >= (SELECT max(created_at) FROM tasker.workflow_step_transitions t
                                   WHERE t.workflow_step_uuid = ws.workflow_step_uuid)
         FROM tasker.workflow_steps ws ORDER BY workflow_step_uuid",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        steps,
        vec![
            (a, "waiting_for_retry".into(), 5, true),
            (b, "pending".into(), 1, true)
        ]
    );

    // The migrated rows carry on where the history left off.
    let mut conn = db.pool.acquire().await.unwrap();
    let out = step::transition::one(
        &mut conn,
        a,
        &[WorkflowStepState::WaitingForRetry],
        WorkflowStepState::InProgress,
        &json!({}),
        Some(1),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        TransitionOutcome::Applied {
            from: WorkflowStepState::WaitingForRetry
        }
    );
    let history = step::history::list(&mut *conn, a).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!((last.sort_key, last.to_state.as_str()), (6, "in_progress"));
    assert!(last.most_recent);
    assert_eq!(
        task::transition::current_state(&mut conn, task)
            .await
            .unwrap(),
        Some(TaskState::StepsInProcess)
    );
    drop(conn);

    // Down again: most_recent marks exactly the latest entries.
    MIGRATOR
        .undo(&db.pool, BEFORE_CURRENT_STATE_ON_ROWS)
        .await
        .unwrap();
    let current: Vec<(Uuid, String, i32)> = sqlx::query_as(
        "SELECT workflow_step_uuid, to_state, sort_key FROM tasker.workflow_step_transitions
         WHERE most_recent ORDER BY workflow_step_uuid",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        current,
        vec![(a, "in_progress".into(), 6), (b, "pending".into(), 1)]
    );
    let ready: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT workflow_step_uuid, current_state FROM tasker.get_step_readiness_status($1)",
    )
    .bind(task)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        ready,
        vec![(a, "in_progress".into()), (b, "pending".into())]
    );
    std::fs::remove_dir_all(dir).unwrap();
}
