//! Several orchestrators and workers on one database.

use std::time::Duration;

use serde_json::json;
use tasker_shared::api::TaskRequest;
use tasker_shared::state_machine::TaskState;
use tasker_tests::{Cluster, ClusterOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orchestrators_and_two_workers_complete_every_task() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        workers: 2,
        ..Default::default()
    })
    .await;
    let second = cluster.add_server().await;
    let clients = [cluster.client.clone(), second];

    let mut created = Vec::new();
    for i in 0..12i64 {
        let client = &clients[i as usize % 2];
        let name = if i % 2 == 0 {
            "diamond_workflow"
        } else {
            "linear_workflow"
        };
        let task = client
            .create_task(&TaskRequest::new(
                "examples",
                name,
                json!({"even_number": 2, "run": i}),
            ))
            .await
            .unwrap();
        created.push(task);
    }
    for task in &created {
        let done = cluster
            .wait_for_state(task.task_uuid, TaskState::Complete, Duration::from_secs(60))
            .await;
        let last = if done.name == "diamond_workflow" {
            "diamond_end"
        } else {
            "linear_step_4"
        };
        let s = done.steps.iter().find(|s| s.name == last).unwrap();
        assert_eq!(s.results.as_ref().unwrap()["result"], json!(65536));
        // Healthy workers: every step ran exactly once.
        assert!(done.steps.iter().all(|s| s.attempts == 1), "{done:?}");
    }
}
