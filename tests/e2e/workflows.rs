//! Every example DAG, in every deployment mode, with exact results.

use std::time::Duration;

use serde_json::{Value, json};
use tasker_shared::api::{TaskRequest, TaskResponse};
use tasker_shared::state_machine::{TaskState, WorkflowStepState};
use tasker_tests::{Cluster, ClusterOptions};

const TWO_TO_THE_64: f64 = 18_446_744_073_709_551_616.0;

fn result_of(task: &TaskResponse, step: &str) -> Value {
    let s = task
        .steps
        .iter()
        .find(|s| s.name == step)
        .unwrap_or_else(|| panic!("no step {step}"));
    assert_eq!(s.current_state, WorkflowStepState::Complete, "{step}");
    s.results.as_ref().unwrap()["result"].clone()
}

async fn run(cluster: &Cluster, name: &str, n: i64) -> TaskResponse {
    let created = cluster
        .client
        .create_task(&TaskRequest::new(
            "examples",
            name,
            json!({ "even_number": n }),
        ))
        .await
        .unwrap();
    cluster
        .wait_for_state(
            created.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await
}

async fn every_shape(mode: &str) {
    let cluster = Cluster::start_with(ClusterOptions {
        env: vec![("TASKER__EVENTS__DEPLOYMENT_MODE".into(), mode.into())],
        ..Default::default()
    })
    .await;

    let (linear, diamond, tree, mixed) = tokio::join!(
        run(&cluster, "linear_workflow", 2),
        run(&cluster, "diamond_workflow", 2),
        run(&cluster, "tree_workflow", 2),
        run(&cluster, "mixed_dag_workflow", 2),
    );

    assert_eq!(result_of(&linear, "linear_step_4"), json!(65536));

    assert_eq!(result_of(&diamond, "diamond_start"), json!(4));
    assert_eq!(result_of(&diamond, "diamond_branch_b"), json!(16));
    assert_eq!(result_of(&diamond, "diamond_branch_c"), json!(16));
    assert_eq!(result_of(&diamond, "diamond_end"), json!(65536));

    assert_eq!(result_of(&tree, "tree_root"), json!(4));
    for leaf in ["tree_leaf_d", "tree_leaf_e", "tree_leaf_f", "tree_leaf_g"] {
        assert_eq!(result_of(&tree, leaf), json!(256), "{leaf}");
    }
    assert_eq!(
        result_of(&tree, "tree_final_convergence").as_f64(),
        Some(TWO_TO_THE_64)
    );

    assert_eq!(result_of(&mixed, "dag_validate"), json!(65536));
    assert_eq!(result_of(&mixed, "dag_transform"), json!(256));
    assert_eq!(result_of(&mixed, "dag_analyze"), json!(256));
    assert_eq!(
        result_of(&mixed, "dag_finalize").as_f64(),
        Some(TWO_TO_THE_64)
    );

    // A fan-in step started only after all its parents completed.
    let finalize = mixed
        .steps
        .iter()
        .find(|s| s.name == "dag_finalize")
        .unwrap();
    let started = finalize.last_attempted_at.unwrap();
    for parent in ["dag_validate", "dag_transform", "dag_analyze"] {
        let p = mixed.steps.iter().find(|s| s.name == parent).unwrap();
        assert!(
            p.completed_at.unwrap() <= started,
            "{parent} completed after dag_finalize started"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_in_hybrid_mode() {
    every_shape("Hybrid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_event_driven_only() {
    every_shape("EventDrivenOnly").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_polling_only() {
    every_shape("PollingOnly").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_fulfillment_survives_transient_faults_and_rejects_bad_orders() {
    let cluster = Cluster::start().await;
    let order = json!({
        "order_id": 1001,
        "customer_email": "ada@example.com",
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price": 12.5}],
        "payment": {"method": "card", "token": "tok_visa"},
        "simulate": {"inventory_timeouts": 1, "gateway_errors": 1}
    });
    let created = cluster
        .client
        .create_task(&TaskRequest::new(
            "payments",
            "order_fulfillment",
            order.clone(),
        ))
        .await
        .unwrap();
    let done = cluster
        .wait_for_state(
            created.task_uuid,
            TaskState::Complete,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        result_of(&done, "ship_order")["tracking_number"],
        json!("TRK00001001")
    );
    assert_eq!(result_of(&done, "process_payment")["amount"], json!(25.0));
    for retried in ["reserve_inventory", "process_payment"] {
        assert_eq!(
            done.steps
                .iter()
                .find(|s| s.name == retried)
                .unwrap()
                .attempts,
            2,
            "{retried}"
        );
    }

    let mut bad = order;
    bad["order_id"] = json!(1002);
    bad["items"] = json!([]);
    let created = cluster
        .client
        .create_task(&TaskRequest::new("payments", "order_fulfillment", bad))
        .await
        .unwrap();
    let blocked = cluster
        .wait_for_state(
            created.task_uuid,
            TaskState::BlockedByFailures,
            Duration::from_secs(30),
        )
        .await;
    let validate = blocked
        .steps
        .iter()
        .find(|s| s.name == "validate_order")
        .unwrap();
    let error = &validate.results.as_ref().unwrap()["error"];
    assert_eq!(
        error["message"],
        json!("invalid order 1002: the order has no items")
    );
    assert_eq!(validate.attempts, 1);
}
