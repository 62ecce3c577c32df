//! `database::step::transition` and `task::transition`: compare-and-swap, and the schema's state domains.

use super::*;

#[tokio::test]
async fn transitions_are_compare_and_swap() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    let start = c.steps["start"];
    let mut conn = db.pool.acquire().await.unwrap();
    use WorkflowStepState::*;

    // Expecting the wrong state writes nothing and reports the actual one.
    let out = step::transition::one(&mut conn, start, &[Enqueued], InProgress, &json!({}), None)
        .await
        .unwrap();
    assert_eq!(
        out,
        TransitionOutcome::Conflict {
            actual: Some(Pending)
        }
    );

    // An illegal transition is refused before touching the database.
    let err = step::transition::one(&mut conn, start, &[Pending], InProgress, &json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "illegal step transition pending -> in_progress"
    );

    // Two claims race from `enqueued`: exactly one wins.
    step::transition::one(&mut conn, start, &[Pending], Enqueued, &json!({}), None)
        .await
        .unwrap();
    let mut a = db.pool.begin().await.unwrap();
    let mut b = db.pool.begin().await.unwrap();
    let first = step::claim::one(&mut a, start, "worker-a", false)
        .await
        .unwrap();
    assert!(matches!(first, step::claim::ClaimOutcome::Claimed(_)));
    // b blocks on a's row lock; commit a from another task so b can proceed.
    let b_claim = tokio::spawn(async move {
        let out = step::claim::one(&mut b, start, "worker-b", false)
            .await
            .unwrap();
        b.commit().await.unwrap();
        out
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    a.commit().await.unwrap();
    let second = b_claim.await.unwrap();
    assert!(
        matches!(
            second,
            step::claim::ClaimOutcome::NotClaimable {
                actual: Some(InProgress)
            }
        ),
        "{second:?}"
    );

    // The history is intact, sort keys 1..=3, and the row's current state is its
    // latest entry.
    let rows: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT to_state, sort_key, most_recent FROM tasker.workflow_step_transitions st
         JOIN LATERAL (SELECT sort_key = ws.state_sort_key AND to_state = ws.current_state AS most_recent
                       FROM tasker.workflow_steps ws
                       WHERE ws.workflow_step_uuid = st.workflow_step_uuid) cur ON true
         WHERE workflow_step_uuid = $1 ORDER BY sort_key",
    )
    .bind(start)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("pending".into(), 1, false),
            ("enqueued".into(), 2, false),
            ("in_progress".into(), 3, true)
        ]
    );
    let history = step::history::list(&db.pool, start).await.unwrap();
    let latest: Vec<bool> = history.iter().map(|t| t.most_recent).collect();
    assert_eq!(latest, vec![false, false, true]);

    // Task transitions: CAS too, and terminal states are final (schema enforces it).
    let t = c.task_uuid;
    let out = task::transition::one(
        &mut conn,
        t,
        &[TaskState::Pending],
        TaskState::StepsInProcess,
        &json!({}),
    )
    .await
    .unwrap();
    assert!(out.applied());
    let out = task::transition::one(
        &mut conn,
        t,
        &[TaskState::Pending],
        TaskState::Cancelled,
        &json!({}),
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        TransitionOutcome::Conflict {
            actual: Some(TaskState::StepsInProcess)
        }
    );
    let raw = sqlx::query(
        "INSERT INTO tasker.task_transitions (task_uuid, to_state, from_state, sort_key)
         VALUES ($1, 'pending', 'complete', 99)",
    )
    .bind(t)
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(raw.to_string().contains("task_from_state"), "{raw}");
}

/// Every way a state or backoff column can get a value outside its list is refused:
/// the rows' states, the history's states, leaving a terminal state, and the backoff.
#[tokio::test]
async fn the_schema_refuses_unknown_states_and_leaving_terminal_ones() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    let (t, start) = (c.task_uuid, c.steps["start"]);
    let refused = [
        ("UPDATE tasker.tasks SET current_state = 'bogus' WHERE task_uuid = $1", t, "task_state"),
        (
            "UPDATE tasker.workflow_steps SET current_state = 'bogus' WHERE workflow_step_uuid = $1",
            start,
            "step_state",
        ),
        (
            "UPDATE tasker.workflow_steps SET backoff = 'sometimes' WHERE workflow_step_uuid = $1",
            start,
            "backoff_kind",
        ),
        (
            "INSERT INTO tasker.task_transitions (task_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'bogus', 'pending', 99)",
            t,
            "task_state",
        ),
        (
            "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'bogus', 'pending', 99)",
            start,
            "step_state",
        ),
        (
            "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'pending', 'complete', 99)",
            start,
            "step_from_state",
        ),
        (
            "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
             VALUES ($1, 'pending', 'bogus', 99)",
            start,
            "step_from_state",
        ),
    ];
    for (statement, id, domain) in refused {
        let error = sqlx::query(statement)
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap_err();
        assert!(error.to_string().contains(domain), "{statement}: {error}");
    }
    // A step in error may be left (an operator's retry); the history takes it.
    sqlx::query(
        "INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key)
         VALUES ($1, 'pending', 'error', 99)",
    )
    .bind(start)
    .execute(&db.pool)
    .await
    .unwrap();
}
