//! `database::connect` and `database::replayable_pool`: pings, plans per connection, asynchronous commits.

use super::*;

/// A connection used recently is handed out without a ping (a round trip in front of
/// every claim and submit): if it broke while idle, its next statement fails and the
/// caller's retry or redelivery takes over. (sqlx also checks each connection as it is
/// released, so one that broke while in use never reaches the pool.) One idle for `ping_if_idle_for` is pinged
/// first, and a broken one is replaced without anyone noticing.
#[tokio::test]
async fn pooled_connections_are_pinged_only_after_sitting_idle() {
    use std::time::Duration;
    use tasker_shared::database::{PoolConfig, connect};

    let db = TestDb::new().await;
    let break_connection = async |pool: &sqlx::PgPool| {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(pool)
            .await
            .unwrap();
        // sqlx checks a connection on its way back to the pool; break it only once it
        // is back and idle.
        tokio::time::timeout(Duration::from_secs(5), async {
            while pool.num_idle() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the connection returns to the pool");
        // Waits (up to 5 s) until the backend is gone.
        let gone: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert!(gone);
    };
    let one = |ping_if_idle_for| PoolConfig {
        max_connections: 1,
        ping_if_idle_for,
        ..PoolConfig::default()
    };

    let busy = connect(&db.url, &one(Duration::from_secs(3600)))
        .await
        .unwrap();
    break_connection(&busy).await;
    let failed = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
        .fetch_one(&busy)
        .await;
    let error = tasker_shared::database::Error::from(failed.expect_err("handed out unchecked"));
    assert!(error.is_transient(), "callers retry on it: {error:?}");

    let idle = connect(&db.url, &one(Duration::ZERO)).await.unwrap();
    break_connection(&idle).await;
    let replaced: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&idle)
        .await
        .unwrap();
    assert_eq!(replaced, 1);
}

#[tokio::test]
async fn pooled_connections_reuse_one_plan_per_statement() {
    use tasker_shared::database::{PoolConfig, connect};

    let db = TestDb::new().await;
    let pool = connect(&db.url, &PoolConfig::default()).await.unwrap();
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "force_generic_plan");
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jit, "off");
    let seqscan: String = sqlx::query_scalar("SHOW enable_seqscan")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(seqscan, "off");
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(path, "public");
}

/// `database::replayable_pool`: same database and session settings as its base pool,
/// but commits that do not wait for the WAL flush; the base pool still waits.
#[tokio::test]
async fn a_replayable_pool_commits_without_waiting_for_the_flush() {
    let db = TestDb::new().await;
    // The test cluster may run without durable commits; the base pool asks for them.
    let base = sqlx::PgPool::connect_lazy_with(
        db.pool
            .connect_options()
            .as_ref()
            .clone()
            .options([("synchronous_commit", "on")]),
    );
    let replayable = tasker_shared::database::replayable_pool(
        &base,
        &tasker_shared::database::PoolConfig::default(),
    );
    let settings = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (String, String, String)>(
            "SELECT current_database(), current_setting('synchronous_commit'),
                    current_setting('plan_cache_mode')",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let (base_db, base_commit, base_plans) = settings(base).await;
    let (db_name, commit, plans) = settings(replayable).await;
    assert_eq!(base_commit, "on");
    assert_eq!(commit, "off");
    assert_eq!(db_name, base_db);
    assert_eq!(plans, base_plans);
    assert_eq!(plans, "force_generic_plan");
}
