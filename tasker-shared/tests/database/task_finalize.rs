//! `database::task::finalize`: completing a finished task in one statement.

use super::*;

/// `task::finalize::complete_if_done` with a fixed history entry.
async fn decide(conn: &mut sqlx::PgConnection, task: Uuid) -> task::finalize::AfterCompletion {
    task::finalize::complete_if_done(conn, task, &json!({"event": "finalized"}))
        .await
        .unwrap()
}

/// `task::finalize::complete_if_done`: a task whose steps are all complete or resolved
/// manually is completed (history, completion time, notification) once; a step
/// enqueued, running or reported means "on its way"; anything else is undecided.
#[tokio::test]
async fn complete_task_if_done_completes_only_a_finished_task() {
    use task::finalize::AfterCompletion;
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
    // Every row of the task's (`tasks`) or of its steps (`workflow_steps`) to `state`.
    let set = |table: &'static str, state: &'static str| {
        let pool = db.pool.clone();
        let task = c.task_uuid;
        async move {
            sqlx::query(&format!(
                "UPDATE tasker.{table} SET current_state = $2 WHERE task_uuid = $1"
            ))
            .bind(task)
            .bind(state)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    let set_task = |state: &'static str| set("tasks", state);
    let set_step = |step: Uuid, state: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query(
                "UPDATE tasker.workflow_steps SET current_state = $2 WHERE workflow_step_uuid = $1",
            )
            .bind(step)
            .bind(state)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    let set_steps = |state: &'static str| set("workflow_steps", state);
    let history = || {
        let pool = db.pool.clone();
        let task = c.task_uuid;
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = $1 AND to_state = 'complete'",
            )
            .bind(task)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    set_task("steps_in_process").await;
    for (state, expected) in [
        ("pending", AfterCompletion::Undecided),
        ("waiting_for_retry", AfterCompletion::Undecided),
        ("error", AfterCompletion::Undecided),
        ("cancelled", AfterCompletion::Undecided),
        ("enqueued", AfterCompletion::StepsOnTheirWay),
        ("in_progress", AfterCompletion::StepsOnTheirWay),
        (
            "enqueued_for_orchestration",
            AfterCompletion::StepsOnTheirWay,
        ),
        (
            "enqueued_as_error_for_orchestration",
            AfterCompletion::StepsOnTheirWay,
        ),
    ] {
        set_steps(state).await;
        assert_eq!(
            decide(&mut conn, c.task_uuid).await,
            expected,
            "every step {state}"
        );
    }
    // One step on its way, or one pending, among finished ones decides.
    for (state, expected) in [
        ("in_progress", AfterCompletion::StepsOnTheirWay),
        ("pending", AfterCompletion::Undecided),
    ] {
        set_steps("complete").await;
        set_step(c.steps["end"], state).await;
        assert_eq!(
            decide(&mut conn, c.task_uuid).await,
            expected,
            "one step {state}"
        );
    }
    assert_eq!(history().await, 0);
    // A task not in steps_in_process is left alone, finished steps or not.
    set_steps("complete").await;
    set_task("waiting_for_retry").await;
    assert_eq!(
        decide(&mut conn, c.task_uuid).await,
        AfterCompletion::Undecided
    );
    assert_eq!(history().await, 0);

    // Complete and resolved manually: the task completes, once.
    set_task("steps_in_process").await;
    set_step(c.steps["left"], "resolved_manually").await;
    assert_eq!(
        decide(&mut conn, c.task_uuid).await,
        AfterCompletion::Completed
    );
    let (state, completed_at): (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT current_state::text, completed_at FROM tasker.tasks WHERE task_uuid = $1",
    )
    .bind(c.task_uuid)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(state, "complete");
    assert!(completed_at.is_some());
    assert_eq!(
        next_settled(&mut listener).await,
        json!({"task_uuid": c.task_uuid, "status": "complete"})
    );
    assert_eq!(
        decide(&mut conn, c.task_uuid).await,
        AfterCompletion::Undecided
    );
    assert_eq!(history().await, 1);
    assert_eq!(
        decide(&mut conn, Uuid::now_v7()).await,
        AfterCompletion::Undecided
    );
}
