//! `database::step::processing`: locking the task and loading the step.

use super::*;

#[tokio::test]
async fn lock_task_and_load_locks_the_task_and_loads_the_step() {
    let db = TestDb::new().await;
    let nt = factory::named_task(&db.pool, DIAMOND).await;
    let c = factory::task(&nt).create(&db.pool).await;
    // The task lock and the step row in one round trip; a step of another task (or a
    // task that does not exist) is not found.
    let other = factory::task(&nt).create(&db.pool).await;
    let mut tx = db.pool.begin().await.unwrap();
    let (state, row) = step::processing::lock_and_load_one(&mut tx, c.task_uuid, c.steps["start"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state, TaskState::Pending);
    assert_eq!(row.workflow_step_uuid, c.steps["start"]);
    assert_eq!(row.state().unwrap(), WorkflowStepState::Pending);
    assert_eq!(row.namespace, "tests");
    assert!(
        step::processing::lock_and_load_one(&mut tx, c.task_uuid, other.steps["start"])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        step::processing::lock_and_load_one(&mut tx, Uuid::now_v7(), c.steps["start"])
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();
}
