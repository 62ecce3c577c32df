//! PostgreSQL itself crashes (an immediate stop: no checkpoint, recovery from the WAL)
//! while tasks are in flight: every task still completes, and no step records a result
//! twice. The cluster is the test's own, durable as in production (the suite's shared
//! one is tuned for speed, and others use it).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tasker_shared::api::TaskRequest;
use tasker_shared::state_machine::TaskState;
use tasker_tests::{Cluster, ClusterOptions, fixture_templates, workspace_root};

/// A throwaway PostgreSQL cluster with PostgreSQL's default durability.
struct OwnPostgres {
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    workspace_root().join("scripts/pg-ephemeral.sh")
}

impl OwnPostgres {
    /// None when this machine has no PostgreSQL server binaries (tests run against a
    /// `DATABASE_URL` elsewhere); CI always has them.
    fn start() -> Option<Self> {
        let dir = workspace_root()
            .join("target")
            .join(format!("pg-crash-{}", uuid::Uuid::now_v7().simple()));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .env("TASKER_PG_DURABLE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("no PostgreSQL server binaries") {
            return None;
        }
        assert!(out.status.success(), "starting PostgreSQL failed: {stderr}");
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(Self { dir, url })
    }

    fn crash_and_restart(&self) {
        let out = Command::new(script())
            .arg("crash-restart")
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "crash-restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_mid_run_loses_no_task_and_records_each_result_once() {
    let Some(pg) = OwnPostgres::start() else {
        eprintln!(
            "SKIPPED: no PostgreSQL server binaries (initdb, pg_ctl) on this machine to crash"
        );
        return;
    };
    let mut cluster = Cluster::start_with(ClusterOptions {
        env: vec![("DATABASE_URL".into(), pg.url.clone())],
        templates: fixture_templates(),
        workers: 0,
    })
    .await;
    // A short lease bounds the wait for a claim whose worker lost track of it.
    cluster
        .add_worker(&["--visibility-timeout-seconds", "3"])
        .await;
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();

    let mut tasks = Vec::new();
    for _ in 0..24 {
        let task = cluster
            .client
            .create_task(&TaskRequest::new("e2e", "crash_diamond", json!({})))
            .await
            .unwrap();
        tasks.push(task.task_uuid);
    }
    // Crash only once steps are running, so the crash lands on claims, handlers and
    // results in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tasker.workflow_steps WHERE current_state = 'in_progress'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if running > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no step ever ran:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pool.close().await;
    pg.crash_and_restart();

    for task in &tasks {
        cluster
            .wait_for_state(*task, TaskState::Complete, Duration::from_secs(90))
            .await;
    }
    let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
    // Each step's result was recorded once, and each step completed once.
    let twice: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
        "SELECT workflow_step_uuid, to_state, count(*) FROM tasker.workflow_step_transitions
         WHERE to_state IN ('enqueued_for_orchestration', 'complete')
         GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(twice.is_empty(), "recorded more than once: {twice:?}");
    let (steps, completed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE current_state = 'complete')
         FROM tasker.workflow_steps",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((steps, completed), (24 * 4, 24 * 4));
    pool.close().await;
}
