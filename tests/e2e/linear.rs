use std::time::Duration;

use serde_json::json;
use tasker_shared::api::TaskRequest;
use tasker_shared::state_machine::{TaskState, WorkflowStepState};
use tasker_tests::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_workflow_completes_with_every_result() {
    let cluster = Cluster::start().await;
    let health = cluster.client.health_check().await.unwrap();
    assert_eq!(health.status, "healthy");

    let created = cluster
        .client
        .create_task(&TaskRequest::new(
            "examples",
            "linear_workflow",
            json!({"even_number": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(created.name, "linear_workflow");
    assert_eq!(created.namespace, "examples");
    assert_eq!(created.total_steps, 4);
    assert_eq!(created.status, TaskState::StepsInProcess);

    let done = cluster
        .wait_for_state(
            created.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await;
    assert!(done.completed_at.is_some());
    assert_eq!(done.completed_steps, 4);
    let mut steps = done.steps.clone();
    steps.sort_by(|a, b| a.name.cmp(&b.name));
    let expected = [4, 16, 256, 65536];
    for (step, want) in steps.iter().zip(expected) {
        assert_eq!(
            step.current_state,
            WorkflowStepState::Complete,
            "{}",
            step.name
        );
        let results = step.results.as_ref().unwrap();
        assert_eq!(results["result"], json!(want), "{}: {results}", step.name);
        assert_eq!(results["success"], json!(true));
        assert_eq!(step.attempts, 1, "{}", step.name);
    }
    // The worker offers a handoff with each success: the first step is claimed from
    // the queue, each next one handed to the worker that reported its parent. One
    // claim per step either way.
    let mut handed = 0;
    for step in &steps {
        let claims: Vec<_> = cluster
            .client
            .get_step_audit(created.task_uuid, step.step_uuid)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.event.as_deref() == Some("claimed"))
            .collect();
        assert_eq!(claims.len(), 1, "{}: {claims:?}", step.name);
        if claims[0].metadata["handoff"] == json!(true) {
            handed += 1;
        }
    }
    assert_eq!(handed, 3, "every step after the first is handed over");

    // The same template and context again: the strict identity says it is a duplicate.
    let err = cluster
        .client
        .create_task(&TaskRequest::new(
            "examples",
            "linear_workflow",
            json!({"even_number": 2}),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(409));
    match err {
        tasker_client::Error::Api {
            existing_task_uuid, ..
        } => assert_eq!(existing_task_uuid, Some(created.task_uuid)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_say_what_was_wrong() {
    let cluster = Cluster::start_with(tasker_tests::ClusterOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    let err = cluster
        .client
        .create_task(&TaskRequest::new("examples", "no_such_template", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    assert!(
        err.to_string().contains("no template 'no_such_template'"),
        "{err}"
    );

    let err = cluster
        .client
        .get_task(uuid::Uuid::now_v7())
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/v1/tasks", cluster.base_url))
        .header("content-type", "application/json")
        .body("{\"namespace\": \"examples\",")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_REQUEST");
}
