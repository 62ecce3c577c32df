//! `database::named_task`: registering and finding templates.

use super::*;
use tasker_shared::database::named_task;
use tasker_shared::template::TaskTemplate;

#[tokio::test]
async fn registration_is_idempotent_and_versioned() {
    let db = TestDb::new().await;
    let t = TaskTemplate::from_yaml(DIAMOND, "d.yaml").unwrap();
    use named_task::RegisterOutcome::*;
    assert_eq!(named_task::register(&db.pool, &t).await.unwrap(), Created);
    assert_eq!(named_task::register(&db.pool, &t).await.unwrap(), Unchanged);
    let mut changed = t.clone();
    changed.description = Some("changed".into());
    assert_eq!(
        named_task::register(&db.pool, &changed).await.unwrap(),
        Updated
    );
    let mut v2 = t.clone();
    v2.version = "2.0.0".into();
    assert_eq!(named_task::register(&db.pool, &v2).await.unwrap(), Created);
    let newest = named_task::find(&db.pool, "tests", "diamond", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.version, "2.0.0");
    let v1 = named_task::find(&db.pool, "tests", "diamond", Some("1.0.0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.template.description.as_deref(), Some("changed"));
    assert!(
        named_task::find(&db.pool, "tests", "nope", None)
            .await
            .unwrap()
            .is_none()
    );
    // Registering created the namespace's queue.
    let queues: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pgmq.meta WHERE queue_name = 'worker_tests_queue'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(queues, 1);
}
