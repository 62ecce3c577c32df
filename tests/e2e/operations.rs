//! Cancellation in flight and the three operator actions.

use std::time::{Duration, Instant};

use serde_json::json;
use tasker_shared::api::{CompletionData, StepManualAction, TaskRequest, TaskResponse};
use tasker_shared::state_machine::{TaskState, WorkflowStepState};
use tasker_tests::{Cluster, ClusterOptions, fixture_templates};

async fn cluster() -> Cluster {
    Cluster::start_with(ClusterOptions {
        templates: fixture_templates(),
        ..Default::default()
    })
    .await
}

fn step<'a>(task: &'a TaskResponse, name: &str) -> &'a tasker_shared::api::StepResponse {
    task.steps.iter().find(|s| s.name == name).unwrap()
}

async fn wait_for_step(
    cluster: &Cluster,
    task: uuid::Uuid,
    name: &str,
    state: WorkflowStepState,
) -> TaskResponse {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = cluster.client.get_task(task).await.unwrap();
        if step(&t, name).current_state == state {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached {state}:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_in_flight_records_late_results_but_never_reopens() {
    let cluster = cluster().await;
    let created = cluster
        .client
        .create_task(&TaskRequest::new("e2e", "slow_chain", json!({})))
        .await
        .unwrap();
    wait_for_step(
        &cluster,
        created.task_uuid,
        "slow_1",
        WorkflowStepState::InProgress,
    )
    .await;

    let cancelled = cluster.client.cancel_task(created.task_uuid).await.unwrap();
    assert_eq!(cancelled.status, TaskState::Cancelled);
    assert_eq!(
        step(&cancelled, "slow_2").current_state,
        WorkflowStepState::Cancelled
    );
    assert_eq!(
        step(&cancelled, "slow_3").current_state,
        WorkflowStepState::Cancelled
    );

    // The running step finishes and its result is recorded ...
    let t = wait_for_step(
        &cluster,
        created.task_uuid,
        "slow_1",
        WorkflowStepState::Complete,
    )
    .await;
    assert_eq!(
        step(&t, "slow_1").results.as_ref().unwrap()["result"],
        json!({"slept_ms": 1500})
    );
    // ... but the task stays cancelled and nothing else runs.
    assert_eq!(t.status, TaskState::Cancelled);
    assert_eq!(
        step(&t, "slow_2").current_state,
        WorkflowStepState::Cancelled
    );

    let err = cluster
        .client
        .cancel_task(created.task_uuid)
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409));
    assert!(err.to_string().contains("already cancelled"), "{err}");
}

async fn blocked_task(cluster: &Cluster) -> TaskResponse {
    let created = cluster
        .client
        .create_task(&TaskRequest::new("e2e", "permanent_failure", json!({})))
        .await
        .unwrap();
    cluster
        .wait_for_state(
            created.task_uuid,
            TaskState::BlockedByFailures,
            Duration::from_secs(30),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_resume_blocked_tasks() {
    let cluster = cluster().await;
    let (reset, resolve, complete) = tokio::join!(
        blocked_task(&cluster),
        blocked_task(&cluster),
        blocked_task(&cluster)
    );

    // reset_for_retry: the step runs again (attempt 2 succeeds) and the task completes.
    let failed = step(&reset, "rejects_input").step_uuid;
    let s = cluster
        .client
        .step_action(
            reset.task_uuid,
            failed,
            &StepManualAction::ResetForRetry {
                reason: "upstream fixed".into(),
                reset_by: "ops@example.com".into(),
            },
        )
        .await
        .unwrap();
    assert_ne!(s.current_state, WorkflowStepState::Error);
    let t = cluster
        .wait_for_state(
            reset.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(step(&t, "rejects_input").attempts, 2);
    let audit = cluster
        .client
        .get_step_audit(t.task_uuid, failed)
        .await
        .unwrap();
    let entry = audit
        .iter()
        .find(|a| a.event.as_deref() == Some("reset_for_retry"))
        .unwrap();
    assert_eq!(entry.actor.as_deref(), Some("ops@example.com"));
    assert_eq!(entry.reason.as_deref(), Some("upstream fixed"));
    assert_eq!(
        (entry.from_state, entry.to_state),
        (Some(WorkflowStepState::Error), WorkflowStepState::Pending)
    );

    // resolve_manually: the dependents run without a result from it.
    let failed = step(&resolve, "rejects_input").step_uuid;
    cluster
        .client
        .step_action(
            resolve.task_uuid,
            failed,
            &StepManualAction::ResolveManually {
                reason: "not needed".into(),
                resolved_by: "ops".into(),
            },
        )
        .await
        .unwrap();
    let t = cluster
        .wait_for_state(
            resolve.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        step(&t, "rejects_input").current_state,
        WorkflowStepState::ResolvedManually
    );
    let audit = cluster
        .client
        .get_step_audit(t.task_uuid, failed)
        .await
        .unwrap();
    assert_eq!(audit.last().unwrap().reason.as_deref(), Some("not needed"));

    // complete_manually: the dependents see the operator's result.
    let failed = step(&complete, "rejects_input").step_uuid;
    cluster
        .client
        .step_action(
            complete.task_uuid,
            failed,
            &StepManualAction::CompleteManually {
                completion_data: CompletionData {
                    result: json!({"fixed": true}),
                    metadata: None,
                },
                reason: "entered by hand".into(),
                completed_by: "ops".into(),
            },
        )
        .await
        .unwrap();
    let t = cluster
        .wait_for_state(
            complete.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        step(&t, "downstream").results.as_ref().unwrap()["result"]["dependencies"]["rejects_input"],
        json!({"fixed": true})
    );

    // Refusals say why.
    let err = cluster
        .client
        .step_action(
            t.task_uuid,
            failed,
            &StepManualAction::ResetForRetry {
                reason: "again".into(),
                reset_by: "ops".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409));
    assert!(err.to_string().contains("is complete"), "{err}");
    let err = cluster
        .client
        .step_action(
            t.task_uuid,
            uuid::Uuid::now_v7(),
            &StepManualAction::ResolveManually {
                reason: "x".into(),
                resolved_by: "y".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    let err = cluster
        .client
        .step_action(
            t.task_uuid,
            failed,
            &StepManualAction::ResolveManually {
                reason: "".into(),
                resolved_by: "y".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(422));
}
