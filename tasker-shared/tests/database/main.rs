//! DB-level tests of the SQL seam, each on a fresh migrated database: one test binary
//! with a module per module of `tasker_shared::database` it tests (`step_claim` tests
//! `database::step::claim`), and modules for the queue statements, the pools and the
//! plans. Rows are built with `tasker_shared::testing::factory`.

#![allow(clippy::unwrap_used)]

mod named_task;
mod plans;
mod pool;
mod queue;
mod retention;
mod step_claim;
mod step_complete;
mod step_enqueue;
mod step_handoff;
mod step_processing;
mod step_read;
mod step_result;
mod step_transition;
mod task_create;
mod task_finalize;
mod task_read;
mod task_transition;

use serde_json::json;
use tasker_shared::database::{step, task};
use tasker_shared::state_machine::{TaskState, TransitionOutcome, WorkflowStepState};
use tasker_shared::testing::{TestDb, factory};
use uuid::Uuid;

const DIAMOND: &str = r#"
name: diamond
namespace_name: tests
version: 1.0.0
steps:
  - name: start
    handler: { callable: builtin::square }
  - name: left
    dependencies: [start]
    handler: { callable: builtin::square }
  - name: right
    dependencies: [start]
    handler: { callable: builtin::square }
  - name: end
    dependencies: [left, right]
    handler: { callable: builtin::square, initialization: { k: 1 } }
    retry: { max_attempts: 5, backoff: linear }
"#;

async fn state_of(db: &TestDb, step_uuid: Uuid) -> WorkflowStepState {
    let mut conn = db.pool.acquire().await.unwrap();
    step::transition::current_state(&mut conn, step_uuid)
        .await
        .unwrap()
        .unwrap()
}

/// The next notification on the settled channel, as JSON.
async fn next_settled(listener: &mut sqlx::postgres::PgListener) -> serde_json::Value {
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(n.payload()).unwrap()
}

/// A fresh database with the worker queue of namespace `tests`.
async fn db_with_worker_queue() -> (TestDb, pgmq_notify::QueueName) {
    let db = TestDb::new().await;
    let queue = pgmq_notify::QueueName::worker("tests").unwrap();
    pgmq_notify::PgmqClient::new(db.pool.clone())
        .create_queue(&queue)
        .await
        .unwrap();
    (db, queue)
}

/// A pool of one connection with Tasker's session settings: every statement run on it
/// runs on the same backend, whose statistics [`rows_read`] can flush.
async fn one_connection_pool(db: &TestDb) -> sqlx::PgPool {
    use tasker_shared::database::{PoolConfig, connect};
    connect(
        &db.url,
        &PoolConfig {
            max_connections: 1,
            ..PoolConfig::default()
        },
    )
    .await
    .unwrap()
}

/// Rows read per table (`seq_tup_read + idx_tup_fetch`), after making `conn`'s own
/// counters visible.
async fn rows_read(conn: &mut sqlx::PgConnection) -> std::collections::HashMap<String, i64> {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *conn)
        .await
        .unwrap();
    // The flush happens as the backend goes idle, before it answers; a second statement
    // makes sure that moment has passed.
    sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT schemaname || '.' || relname,
                (COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0))::bigint
         FROM pg_stat_user_tables WHERE schemaname IN ('tasker', 'pgmq')",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter().collect()
}
