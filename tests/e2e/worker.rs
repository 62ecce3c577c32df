//! The worker runtime under real conditions: leases, crashes, shutdown, concurrency.

use std::time::{Duration, Instant};

use serde_json::json;
use tasker_shared::api::{TaskRequest, TaskResponse};
use tasker_shared::state_machine::{TaskState, WorkflowStepState};
use tasker_tests::{Cluster, ClusterOptions, fixture_templates, free_port};

async fn cluster_without_workers() -> Cluster {
    Cluster::start_with(ClusterOptions {
        templates: fixture_templates(),
        workers: 0,
        ..Default::default()
    })
    .await
}

async fn create(cluster: &Cluster, name: &str) -> TaskResponse {
    cluster
        .client
        .create_task(&TaskRequest::new("e2e", name, json!({})))
        .await
        .unwrap()
}

async fn wait_for_step_state(cluster: &Cluster, task: uuid::Uuid, state: WorkflowStepState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = cluster.client.get_task(task).await.unwrap();
        if t.steps.iter().any(|s| s.current_state == state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no step reached {state}:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn claims(cluster: &Cluster, task: &TaskResponse) -> Vec<(Option<String>, Option<String>)> {
    let step = &task.steps[0];
    cluster
        .client
        .get_step_audit(task.task_uuid, step.step_uuid)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| matches!(a.event.as_deref(), Some("claimed" | "released")))
        .map(|a| (a.event, a.actor))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_longer_than_its_lease_runs_once() {
    let mut cluster = cluster_without_workers().await;
    cluster
        .add_worker(&["--visibility-timeout-seconds", "1"])
        .await;
    cluster
        .add_worker(&["--visibility-timeout-seconds", "1"])
        .await;
    let task = create(&cluster, "long_step").await;
    let done = cluster
        .wait_for_state(task.task_uuid, TaskState::Complete, Duration::from_secs(30))
        .await;
    assert_eq!(done.steps[0].attempts, 1);
    assert_eq!(claims(&cluster, &done).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_step_is_redelivered_to_another() {
    let mut cluster = cluster_without_workers().await;
    cluster
        .add_worker(&["--visibility-timeout-seconds", "1"])
        .await;
    let task = create(&cluster, "long_step").await;
    wait_for_step_state(&cluster, task.task_uuid, WorkflowStepState::InProgress).await;
    cluster.workers[0].kill().await;

    cluster
        .add_worker(&["--visibility-timeout-seconds", "1"])
        .await;
    let done = cluster
        .wait_for_state(task.task_uuid, TaskState::Complete, Duration::from_secs(30))
        .await;
    let step = &done.steps[0];
    assert_eq!(step.attempts, 2);
    assert_eq!(
        step.results.as_ref().unwrap()["metadata"]["worker_id"],
        json!("e2e-worker-1")
    );
    let claimed_by: Vec<Option<String>> = claims(&cluster, &done)
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        claimed_by,
        [Some("e2e-worker-0".into()), Some("e2e-worker-1".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_gives_back_work_and_loses_nothing() {
    let mut cluster = cluster_without_workers().await;

    // Grace long enough: the running step finishes, its result is recorded, exit 0.
    cluster
        .add_worker(&["--shutdown-grace-seconds", "30"])
        .await;
    let short = create(&cluster, "short_step").await;
    wait_for_step_state(&cluster, short.task_uuid, WorkflowStepState::InProgress).await;
    cluster.workers[0].signal("TERM");
    let status = cluster.workers[0].wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}");
    let done = cluster
        .wait_for_state(
            short.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(done.steps[0].attempts, 1);

    // Grace too short: the step is given back at once and another worker runs it.
    cluster.add_worker(&["--shutdown-grace-seconds", "0"]).await;
    let long = create(&cluster, "long_step").await;
    wait_for_step_state(&cluster, long.task_uuid, WorkflowStepState::InProgress).await;
    let stopping = Instant::now();
    cluster.workers[1].signal("TERM");
    let status = cluster.workers[1].wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    let t = cluster.client.get_task(long.task_uuid).await.unwrap();
    assert_eq!(t.steps[0].current_state, WorkflowStepState::Enqueued);
    assert!(
        t.steps[0].results.is_none(),
        "no result is recorded for a given-back attempt"
    );

    cluster.add_worker(&[]).await;
    let done = cluster
        .wait_for_state(long.task_uuid, TaskState::Complete, Duration::from_secs(30))
        .await;
    // The stopping worker took the step once and gave it back once; the next one ran it.
    let event = |e: &str, w: &str| (Some(e.to_string()), Some(w.to_string()));
    assert_eq!(
        claims(&cluster, &done).await,
        [
            event("claimed", "e2e-worker-1"),
            event("released", "e2e-worker-1"),
            event("claimed", "e2e-worker-2"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_steps_bounds_parallel_handlers() {
    let mut cluster = cluster_without_workers().await;
    let health_port = free_port();
    cluster
        .add_worker(&[
            "--max-concurrent-steps",
            "2",
            "--health-port",
            &health_port.to_string(),
        ])
        .await;
    let task = create(&cluster, "fan_out_10").await;
    let done = cluster
        .wait_for_state(task.task_uuid, TaskState::Complete, Duration::from_secs(60))
        .await;

    // From the handlers' own start and end times, count how many ran at once.
    let mut edges = Vec::new();
    for s in done.steps.iter().filter(|s| s.name.starts_with("sleeper_")) {
        let meta = &s.results.as_ref().unwrap()["metadata"];
        let start: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(meta["started_at"].clone()).unwrap();
        let end: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(meta["completed_at"].clone()).unwrap();
        edges.push((start, 1));
        edges.push((end, -1));
    }
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut peak) = (0, 0);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    assert_eq!(
        peak, 2,
        "at most two handlers at once, and the limit was used"
    );

    // The health endpoint reports it.
    let base = format!("http://127.0.0.1:{health_port}");
    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["steps"]["claimed"], json!(12));
    assert_eq!(health["steps"]["in_flight"], json!(0));
    let ready = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tasker_steps_claimed_total{namespace=\"e2e\"} 12"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tasker_step_execution_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_worker_refuses_to_start_when_a_served_template_names_a_handler_it_lacks() {
    let cluster = cluster_without_workers().await;
    let templates = tasker_tests::workspace_root().join("tests/fixtures/missing_handler");
    let mut worker = tasker_tests::Proc::spawn(
        "worker-missing-handlers",
        &tasker_tests::bin("tasker-worker"),
        &["--templates".to_string(), templates.display().to_string()],
        cluster.env(),
        &cluster.log_dir,
    );
    let status = worker.wait_exit(Duration::from_secs(60)).await;
    let log = std::fs::read_to_string(&worker.log_path).unwrap();
    assert!(!status.success(), "{log}");
    for needle in [
        "refusing to start: 2 step(s)",
        "e2e_missing/missing_handler:1.0.0 step unknown: no handler for callable \"nowhere::Missing\"",
        "step also_unknown: no handler for callable \"Payments::NotLoaded\"",
    ] {
        assert!(log.contains(needle), "{needle:?} not in:\n{log}");
    }
    assert!(!log.contains("worker running"), "{log}");
}
