//! `database::task::read`: execution context and the tasks with ready steps.

use super::*;

#[tokio::test]
async fn execution_context_statuses() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    let status = |db: &TestDb| {
        let pool = db.pool.clone();
        let t = c.task_uuid;
        async move {
            task::read::execution_context(&pool, t)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let ctx = status(&db).await;
    assert_eq!(ctx.execution_status, "has_ready_steps");
    assert_eq!((ctx.total_steps, ctx.ready_steps), (4, 1));

    let mut conn = db.pool.acquire().await.unwrap();
    let start = c.steps["start"];
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
    assert_eq!(status(&db).await.execution_status, "processing");

    step::transition::one(
        &mut conn,
        start,
        &[WorkflowStepState::Enqueued],
        WorkflowStepState::Error,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    let ctx = status(&db).await;
    assert_eq!(ctx.execution_status, "blocked_by_failures");
    assert_eq!(ctx.health_status, "blocked");

    for name in ["start", "left", "right", "end"] {
        let id = c.steps[name];
        step::transition::one(
            &mut conn,
            id,
            &[WorkflowStepState::Pending, WorkflowStepState::Error],
            WorkflowStepState::ResolvedManually,
            &json!({}),
            None,
        )
        .await
        .unwrap();
    }
    let ctx = status(&db).await;
    assert_eq!(ctx.execution_status, "all_complete");
    assert_eq!(ctx.completion_percentage, 100.0);
}

#[tokio::test]
async fn next_ready_tasks_lists_tasks_with_ready_steps() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let a = factory::task(&nt).create(&db.pool).await;
    let b = factory::task(&nt).create(&db.pool).await;
    let ready = task::read::next_ready(&db.pool, 10).await.unwrap();
    assert_eq!(ready.len(), 2);
    assert!(
        ready
            .iter()
            .all(|r| r.ready_steps_count == 1 && r.namespace_name == "tests")
    );
    // A task whose only ready step was enqueued drops out.
    let mut conn = db.pool.acquire().await.unwrap();
    step::transition::one(
        &mut conn,
        a.steps["start"],
        &[WorkflowStepState::Pending],
        WorkflowStepState::Enqueued,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    let ready = task::read::next_ready(&db.pool, 10).await.unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].task_uuid, b.task_uuid);
    // A cancelled task drops out too.
    task::transition::one(
        &mut conn,
        b.task_uuid,
        &[TaskState::Pending],
        TaskState::Cancelled,
        &json!({}),
    )
    .await
    .unwrap();
    assert!(
        task::read::next_ready(&db.pool, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn execution_context_from_steps_matches_the_sql_function() {
    use WorkflowStepState::*;

    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap();
    let check = |label: &'static str| {
        let pool = db.pool.clone();
        let task_uuid = c.task_uuid;
        async move {
            let sql = task::read::execution_context(&pool, task_uuid)
                .await
                .unwrap()
                .unwrap();
            let steps = step::read::readiness(&pool, task_uuid, None).await.unwrap();
            let rust = task::read::TaskExecutionContext::from_steps(
                task_uuid,
                sql.named_task_uuid,
                &sql.status,
                steps
                    .iter()
                    .map(|s| (s.current_state.as_str(), s.ready_for_execution)),
            );
            assert_eq!(rust, sql, "{label}");
        }
    };
    let mut go = async |name: &str, path: &[WorkflowStepState]| {
        let uuid = c.steps[name];
        for pair in path.windows(2) {
            let out = step::transition::one(&mut conn, uuid, &[pair[0]], pair[1], &json!({}), None)
                .await
                .unwrap();
            assert!(out.applied(), "{name}: {:?} -> {:?}", pair[0], pair[1]);
        }
    };
    check("all pending, start ready").await;
    go("start", &[Pending, Enqueued]).await;
    check("start enqueued").await;
    go(
        "start",
        &[Enqueued, InProgress, EnqueuedForOrchestration, Complete],
    )
    .await;
    check("start complete, left and right ready").await;
    go(
        "left",
        &[
            Pending,
            Enqueued,
            InProgress,
            EnqueuedAsErrorForOrchestration,
            WaitingForRetry,
        ],
    )
    .await;
    check("left waiting for retry").await;
    go(
        "right",
        &[
            Pending,
            Enqueued,
            InProgress,
            EnqueuedAsErrorForOrchestration,
            Error,
        ],
    )
    .await;
    check("right in error").await;
    go("right", &[Error, ResolvedManually]).await;
    go(
        "left",
        &[
            WaitingForRetry,
            Enqueued,
            InProgress,
            EnqueuedForOrchestration,
            Complete,
        ],
    )
    .await;
    check("end ready").await;
    go(
        "end",
        &[
            Pending,
            Enqueued,
            InProgress,
            EnqueuedForOrchestration,
            Complete,
        ],
    )
    .await;
    check("all complete").await;
}
