//! `tasker-server dev`: one command to a running system with an embedded PostgreSQL.

use std::time::Duration;

use serde_json::json;
use tasker_client::OrchestrationClient;
use tasker_shared::api::TaskRequest;
use tasker_shared::state_machine::TaskState;
use tasker_tests::{Proc, bin, free_port, workspace_root};

/// `tasker-server dev` on a free port with a throwaway cluster of its own, logging at
/// `warn`; returns the process, its port and its cluster's directory.
fn start_dev(extra: &[&str]) -> (Proc, u16, std::path::PathBuf) {
    let port = free_port();
    let log_dir = workspace_root()
        .join("target/e2e-logs")
        .join(uuid::Uuid::now_v7().to_string());
    std::fs::create_dir_all(&log_dir).unwrap();
    let data_dir = workspace_root()
        .join("target")
        .join(format!("tasker-dev-test-{port}"));
    let env = vec![
        // Empty means unset: dev mode starts its own PostgreSQL.
        ("DATABASE_URL".to_string(), String::new()),
        ("RUST_LOG".to_string(), "warn".to_string()),
        (
            "TASKER_CONFIG_DIR".to_string(),
            workspace_root().join("config/tasker").display().to_string(),
        ),
    ];
    let args = vec![
        "--bind".to_string(),
        format!("127.0.0.1:{port}"),
        "dev".to_string(),
        "--data-dir".to_string(),
        data_dir.display().to_string(),
    ];
    let args: Vec<String> = args
        .into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
    (
        Proc::spawn("dev", &bin("tasker-server"), &args, &env, &log_dir),
        port,
        data_dir,
    )
}

/// The lines at `WARN` or `ERROR` of a `tracing` log.
fn warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_runs_a_demo_serves_the_api_and_cleans_up() {
    let (mut dev, port, data_dir) = start_dev(&[]);
    dev.wait_for_line("demo:", Duration::from_secs(90)).await;
    let log = std::fs::read_to_string(&dev.log_path).unwrap();
    assert!(
        log.contains("is complete after") && log.contains("its last step returned 65536"),
        "{log}"
    );
    assert!(
        log.contains(&format!("API           http://127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.contains("tasker-cli --url"), "{log}");

    let client = OrchestrationClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let task = client
        .create_task(&TaskRequest::new(
            "examples",
            "diamond_workflow",
            json!({"even_number": 2}),
        ))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = client.get_task(task.task_uuid).await.unwrap();
        if t.status == TaskState::Complete {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", dev.log_tail(40));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Ctrl-C stops everything, quietly (the worker gives its work back before the
    // orchestration and its pool stop), and removes the throwaway cluster.
    dev.signal("INT");
    let status = dev.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}: {}", dev.log_tail(20));
    assert!(!data_dir.exists(), "{} was not removed", data_dir.display());
    let log = std::fs::read_to_string(&dev.log_path).unwrap();
    assert!(warnings(&log).is_empty(), "{:#?}", warnings(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_stops_cleanly_when_its_terminal_closes() {
    let (mut dev, _port, data_dir) = start_dev(&["--no-demo"]);
    dev.wait_for_line("Ctrl-C stops everything", Duration::from_secs(90))
        .await;
    assert!(data_dir.exists());
    dev.signal("HUP");
    let status = dev.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}: {}", dev.log_tail(20));
    assert!(!data_dir.exists(), "{} was not removed", data_dir.display());
    let log = std::fs::read_to_string(&dev.log_path).unwrap();
    assert!(log.contains("tasker dev: stopped"), "{log}");
    assert!(warnings(&log).is_empty(), "{:#?}", warnings(&log));
}
