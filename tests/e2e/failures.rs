//! Retries with measurable backoff, exhaustion, permanent failures, and staleness.

use std::time::Duration;

use serde_json::json;
use tasker_shared::api::{StepAuditResponse, TaskRequest};
use tasker_shared::state_machine::{TaskState, WorkflowStepState};
use tasker_tests::{Cluster, ClusterOptions, fixture_templates};

async fn cluster(extra_env: &[(&str, &str)]) -> Cluster {
    Cluster::start_with(ClusterOptions {
        templates: fixture_templates(),
        env: extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
    .await
}

fn step<'a>(
    task: &'a tasker_shared::api::TaskResponse,
    name: &str,
) -> &'a tasker_shared::api::StepResponse {
    task.steps.iter().find(|s| s.name == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_back_off_then_succeed() {
    // Polling every minute: a retry that starts on time was woken by its own schedule.
    let cluster = cluster(&[
        ("TASKER__EVENTS__POLL_INTERVAL_MS", "60000"),
        (
            "TASKER__ORCHESTRATION__READINESS_SWEEP_INTERVAL_MS",
            "60000",
        ),
    ])
    .await;
    let created = cluster
        .client
        .create_task(&TaskRequest::new("e2e", "retry_until_success", json!({})))
        .await
        .unwrap();
    let done = cluster
        .wait_for_state(
            created.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await;
    let flaky = step(&done, "flaky");
    assert_eq!(flaky.attempts, 3);
    assert_eq!(
        flaky.results.as_ref().unwrap()["result"],
        json!({"attempts": 3})
    );
    let after = step(&done, "after_flaky");
    assert_eq!(
        after.results.as_ref().unwrap()["result"]["dependencies"]["flaky"],
        json!({"attempts": 3})
    );

    let audit = cluster
        .client
        .get_step_audit(done.task_uuid, flaky.step_uuid)
        .await
        .unwrap();
    let states: Vec<WorkflowStepState> = audit.iter().map(|a| a.to_state).collect();
    use WorkflowStepState::*;
    assert_eq!(
        states,
        [
            Pending,
            Enqueued,
            InProgress,
            EnqueuedAsErrorForOrchestration,
            WaitingForRetry,
            InProgress,
            EnqueuedAsErrorForOrchestration,
            WaitingForRetry,
            InProgress,
            EnqueuedForOrchestration,
            Complete
        ]
    );
    // Linear backoff: 300 ms, then 600 ms (±10% jitter); each retry starts when its delay
    // ends, give or take the notification round trip, not on a sweep.
    let scheduled: Vec<&StepAuditResponse> = audit
        .iter()
        .filter(|a| a.to_state == WaitingForRetry)
        .collect();
    for (i, entry) in scheduled.iter().enumerate() {
        let delay_ms = entry.metadata["delay_ms"].as_i64().unwrap();
        let planned = 300 * (i as i64 + 1);
        assert!(
            (planned * 9 / 10..=planned * 11 / 10).contains(&delay_ms),
            "retry {i}: delay {delay_ms} ms"
        );
        let next_claim = audit
            .iter()
            .find(|a| a.to_state == InProgress && a.created_at > entry.created_at)
            .unwrap();
        let waited = (next_claim.created_at - entry.created_at).num_milliseconds();
        assert!(
            waited >= delay_ms - 5,
            "retry {i} started after {waited} ms, before its {delay_ms} ms delay"
        );
        assert!(
            waited <= delay_ms + 2000,
            "retry {i} started after {waited} ms for a {delay_ms} ms delay"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_block_the_task_and_staleness_ends_it() {
    let cluster = cluster(&[]).await;
    let create = |name: &'static str| {
        let client = cluster.client.clone();
        async move {
            client
                .create_task(&TaskRequest::new("e2e", name, json!({})))
                .await
                .unwrap()
        }
    };
    let (exhausted, permanent, expiring, slow) = tokio::join!(
        create("retry_exhausted"),
        create("permanent_failure"),
        create("blocked_expires"),
        create("times_out")
    );

    // Retries exhausted: two attempts, then blocked.
    let t = cluster
        .wait_for_state(
            exhausted.task_uuid,
            TaskState::BlockedByFailures,
            Duration::from_secs(30),
        )
        .await;
    let failed = step(&t, "always_fails");
    assert_eq!(
        (failed.current_state, failed.attempts),
        (WorkflowStepState::Error, 2)
    );
    assert_eq!(
        step(&t, "never_runs").current_state,
        WorkflowStepState::Pending
    );
    assert_eq!(t.execution_status, "blocked_by_failures");

    // A permanent failure: exactly one attempt.
    let t = cluster
        .wait_for_state(
            permanent.task_uuid,
            TaskState::BlockedByFailures,
            Duration::from_secs(30),
        )
        .await;
    let failed = step(&t, "rejects_input");
    assert_eq!(
        (failed.current_state, failed.attempts),
        (WorkflowStepState::Error, 1)
    );
    let error = &failed.results.as_ref().unwrap()["error"];
    assert_eq!(error["retryable"], json!(false));
    assert_eq!(error["error_type"], json!("permanent_error"));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("failing on purpose")
    );

    // A handler past its timeout_seconds is aborted and reported as a retryable timeout.
    let t = cluster
        .wait_for_state(
            slow.task_uuid,
            TaskState::BlockedByFailures,
            Duration::from_secs(30),
        )
        .await;
    let timed_out = step(&t, "too_slow");
    let results = timed_out.results.as_ref().unwrap();
    assert_eq!(results["error"]["error_type"], json!("timeout"));
    assert_eq!(results["error"]["retryable"], json!(true));
    assert!(
        results["metadata"]["execution_time_ms"].as_u64().unwrap() < 4000,
        "{results}"
    );

    // Blocked past max_blocked_minutes (0 in its template): error, with a DLQ entry.
    cluster
        .wait_for_state(
            expiring.task_uuid,
            TaskState::Error,
            Duration::from_secs(30),
        )
        .await;
    let dlq = cluster.client.list_dlq(Some("pending")).await.unwrap();
    let entry = dlq
        .iter()
        .find(|e| e.task_uuid == expiring.task_uuid)
        .expect("a DLQ entry");
    assert_eq!(entry.dlq_reason, "staleness_timeout");
    assert_eq!(entry.original_state, "blocked_by_failures");
    assert_eq!(
        entry.task_snapshot["task"]["task_uuid"],
        json!(expiring.task_uuid)
    );
    // The other blocked tasks keep waiting for an operator (the default limit is a day).
    assert!(dlq.iter().all(|e| e.task_uuid != permanent.task_uuid));
}
