//! Retention: the server's job and `tasker-server maintenance purge` delete finished
//! tasks past their age, and nothing else.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tasker_shared::api::TaskRequest;
use tasker_shared::state_machine::TaskState;
use tasker_tests::{Cluster, ClusterOptions, bin, fixture_templates, workspace_root};
use uuid::Uuid;

async fn is_gone(cluster: &Cluster, task: Uuid) -> bool {
    match cluster.client.get_task(task).await {
        Ok(_) => false,
        Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => true,
        Err(e) => panic!("GET /v1/tasks/{task}: {e}"),
    }
}

async fn run_to(cluster: &Cluster, name: &str, state: TaskState) -> Uuid {
    let created = cluster
        .client
        .create_task(&TaskRequest::new("e2e", name, json!({})))
        .await
        .unwrap();
    cluster
        .wait_for_state(created.task_uuid, state, Duration::from_secs(30))
        .await;
    created.task_uuid
}

fn purge(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    Command::new(bin("tasker-server"))
        .args(["maintenance", "purge"])
        .args(args)
        .env_clear()
        .envs(cluster.env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TASKER_CONFIG_DIR", workspace_root().join("config/tasker"))
        .output()
        .unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_job_deletes_finished_tasks_and_keeps_blocked_ones() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        templates: fixture_templates(),
        env: vec![
            (
                "TASKER__ORCHESTRATION__RETENTION__MAX_AGE".into(),
                "0s".into(),
            ),
            (
                "TASKER__ORCHESTRATION__RETENTION__INTERVAL_MS".into(),
                "100".into(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let blocked = run_to(&cluster, "permanent_failure", TaskState::BlockedByFailures).await;
    // Completion is observed just before the job may delete the task, so wait_for_state
    // cannot be used here: create, then watch for the 404.
    let created = cluster
        .client
        .create_task(&TaskRequest::new("e2e", "short_step", json!({})))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_gone(&cluster, created.task_uuid).await {
        assert!(
            Instant::now() < deadline,
            "the finished task was never purged:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The job logs what it deleted once its whole purge is done, after the 404.
    cluster
        .server
        .wait_for_line("retention: purged", Duration::from_secs(10))
        .await;
    let still = cluster.client.get_task(blocked).await.unwrap();
    assert_eq!(still.status, TaskState::BlockedByFailures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_purge_deletes_what_is_older_than_asked() {
    let cluster = Cluster::start_with(ClusterOptions {
        templates: fixture_templates(),
        ..Default::default()
    })
    .await;
    let done = run_to(&cluster, "short_step", TaskState::Complete).await;

    let out = stdout(&purge(&cluster, &["--older-than", "1h", "--dry-run"]));
    assert_eq!(
        out.trim(),
        "would purge 0 finished tasks and 0 archived messages older than 1h"
    );
    let out = stdout(&purge(&cluster, &["--older-than", "0s", "--dry-run"]));
    assert_eq!(
        out.trim(),
        "would purge 1 finished tasks and 0 archived messages older than 0s"
    );
    assert!(!is_gone(&cluster, done).await, "a dry run deletes nothing");

    let out = stdout(&purge(
        &cluster,
        &["--older-than", "0s", "--batch-size", "1"],
    ));
    assert_eq!(
        out.trim(),
        "purged 1 finished tasks and 0 archived messages older than 0s"
    );
    assert!(is_gone(&cluster, done).await);

    // Bad input says what was wrong.
    let out = purge(&cluster, &["--older-than", "a month"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--older-than") && err.contains("not a duration such as 30d"),
        "{err}"
    );
}
