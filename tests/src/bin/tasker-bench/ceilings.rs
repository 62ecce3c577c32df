//! What this machine's PostgreSQL can do at all, measured in the same run.

use std::time::{Duration, Instant};

use pgmq_notify::{PgmqClient, QueueName};
use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::report::percentiles;

#[derive(Debug, Default)]
pub struct Ceilings {
    pub commit_ms: f64,
    pub notify_ms: f64,
    pub pgmq_batch1: f64,
    pub pgmq_batch100: f64,
}

pub async fn measure(pool: &PgPool) -> Ceilings {
    sqlx::query("CREATE TABLE IF NOT EXISTS public.bench_commit (x integer)")
        .execute(pool)
        .await
        .unwrap();
    let mut commits = Vec::new();
    for i in 0..300 {
        let t = Instant::now();
        sqlx::query("INSERT INTO public.bench_commit VALUES ($1)")
            .bind(i)
            .execute(pool)
            .await
            .unwrap();
        commits.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    let mut listener = PgListener::connect_with(pool).await.unwrap();
    listener.listen("bench_rtt").await.unwrap();
    let mut rtts = Vec::new();
    for i in 0..300 {
        let t = Instant::now();
        sqlx::query("SELECT pg_notify('bench_rtt', $1)")
            .bind(i.to_string())
            .execute(pool)
            .await
            .unwrap();
        listener.recv().await.unwrap();
        rtts.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // PGMQ's own functions, as any PGMQ user calls them: the raw queue, without Tasker's
    // static statements (which are faster, see pgmq_notify::sql) or notifications.
    let queue = QueueName::new("bench_raw").unwrap();
    PgmqClient::new(pool.clone())
        .create_queue(&queue)
        .await
        .unwrap();
    let rate = |batch: usize| {
        let queue = queue.clone();
        let pool = pool.clone();
        async move {
            let body: Vec<serde_json::Value> =
                (0..batch).map(|i| serde_json::json!({"i": i})).collect();
            let start = Instant::now();
            let mut moved = 0usize;
            while start.elapsed() < Duration::from_secs(3) {
                sqlx::query("SELECT pgmq.send_batch($1, $2::jsonb[])")
                    .bind(queue.as_str())
                    .bind(&body)
                    .execute(&pool)
                    .await
                    .unwrap();
                let ids: Vec<i64> = sqlx::query_scalar("SELECT msg_id FROM pgmq.read($1, 30, $2)")
                    .bind(queue.as_str())
                    .bind(batch as i32)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                sqlx::query("SELECT pgmq.delete($1, $2::bigint[])")
                    .bind(queue.as_str())
                    .bind(&ids)
                    .execute(&pool)
                    .await
                    .unwrap();
                moved += ids.len();
            }
            moved as f64 / start.elapsed().as_secs_f64()
        }
    };
    let pgmq_batch1 = rate(1).await;
    let pgmq_batch100 = rate(100).await;
    Ceilings {
        commit_ms: percentiles(&commits).0,
        notify_ms: percentiles(&rtts).0,
        pgmq_batch1,
        pgmq_batch100,
    }
}
