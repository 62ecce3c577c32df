//! `database::step::read`: readiness.

use super::*;

#[tokio::test]
async fn readiness_follows_parents() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    factory::complete_step(&db.pool, c.steps["start"]).await;
    let ready: Vec<String> = step::read::readiness(&db.pool, c.task_uuid, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.ready_for_execution)
        .map(|r| r.name)
        .collect();
    assert_eq!(ready.len(), 2);
    assert!(ready.contains(&"left".to_string()) && ready.contains(&"right".to_string()));

    // One parent done is not enough for the fan-in step.
    factory::complete_step(&db.pool, c.steps["left"]).await;
    let end = c.steps["end"];
    let only_end = step::read::readiness(&db.pool, c.task_uuid, Some(&[end]))
        .await
        .unwrap();
    assert_eq!(only_end.len(), 1);
    assert!(!only_end[0].ready_for_execution);
    assert_eq!(only_end[0].completed_parents, 1);

    // resolved_manually satisfies a dependency too.
    let mut conn = db.pool.acquire().await.unwrap();
    let out = step::transition::one(
        &mut conn,
        c.steps["right"],
        &[WorkflowStepState::Pending],
        WorkflowStepState::ResolvedManually,
        &json!({}),
        None,
    )
    .await
    .unwrap();
    assert!(out.applied());
    let only_end = step::read::readiness(&db.pool, c.task_uuid, Some(&[end]))
        .await
        .unwrap();
    assert!(only_end[0].ready_for_execution);
}
