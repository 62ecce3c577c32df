//! The server binary: configuration, authentication and metrics, as an operator meets them.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tasker_client::OrchestrationClient;
use tasker_shared::api::TaskRequest;
use tasker_shared::state_machine::TaskState;
use tasker_tests::{Cluster, ClusterOptions, bin, workspace_root};

fn server(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(bin("tasker-server"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("TASKER_CONFIG_DIR", workspace_root().join("config/tasker"))
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn config_show_prints_the_layers_with_secrets_redacted() {
    let out = server(
        &["config", "show"],
        &[
            ("TASKER_ENV", "test"),
            ("DATABASE_URL", "postgres://tasker:hunter2@db/tasker"),
            ("TASKER__WEB__REQUEST_TIMEOUT_MS", "4321"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("# environment: test"), "{text}");
    assert!(text.contains("environments/test/common.toml"), "{text}");
    assert!(
        text.contains("# variable: TASKER__WEB__REQUEST_TIMEOUT_MS"),
        "{text}"
    );
    assert!(text.contains("request_timeout_ms = 4321"), "{text}");
    assert!(text.contains("poll_interval_ms = 200"), "{text}");
    assert!(
        text.contains("postgres://tasker:[redacted]@db/tasker"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}

#[test]
fn bad_configuration_stops_the_server_with_the_key_and_its_origin() {
    let out = server(
        &[],
        &[
            ("DATABASE_URL", "postgres://127.0.0.1:1/x"),
            ("TASKER__DATABASE__MAX_CONNECTIONS", "0"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("database.max_connections: must be between 1 and 1000, got 0"),
        "{err}"
    );
    assert!(
        err.contains("environment variable TASKER__DATABASE__MAX_CONNECTIONS"),
        "{err}"
    );

    let dir = tempdir();
    let file = dir.join("extra.toml");
    std::fs::write(&file, "[web]\nbody_limit = 5\n").unwrap();
    let out = server(&["--config", file.to_str().unwrap(), "config", "show"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web.body_limit: unknown field"), "{err}");
    assert!(err.contains("extra.toml"), "{err}");

    let out = server(&[], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("set DATABASE_URL"));
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tasker-e2e-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_keys_and_tokens_secure_the_api() {
    let keys = tempdir();
    let out = server(
        &["auth", "generate-key", "--out-dir", keys.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = keys.join("private.pem");
    let public = keys.join("public.pem");
    let token_for = |permissions: &str| {
        let out = server(
            &[
                "auth",
                "generate-token",
                "--permissions",
                permissions,
                "--private-key",
                private.to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let bad = server(
        &[
            "auth",
            "generate-token",
            "--permissions",
            "tasks:explode",
            "--secret",
            "x",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown permission"));

    let cluster = Cluster::start_with(ClusterOptions {
        env: vec![
            ("TASKER__WEB__AUTH__ENABLED".into(), "true".into()),
            (
                "TASKER__WEB__AUTH__JWT_PUBLIC_KEY_PATH".into(),
                public.display().to_string(),
            ),
        ],
        ..Default::default()
    })
    .await;
    let writer = OrchestrationClient::builder(&cluster.base_url)
        .bearer_token(token_for("tasks:create,tasks:read"))
        .build()
        .unwrap();
    let task = writer
        .create_task(&TaskRequest::new(
            "examples",
            "linear_workflow",
            json!({"even_number": 2}),
        ))
        .await
        .unwrap();
    let anonymous = cluster.client.get_task(task.task_uuid).await.unwrap_err();
    assert_eq!(anonymous.status().map(|s| s.as_u16()), Some(401));
    let listing = writer.list_dlq(None).await.unwrap_err();
    assert_eq!(listing.status().map(|s| s.as_u16()), Some(403));
    assert!(listing.to_string().contains("dlq:read"), "{listing}");
    // Health stays public.
    assert_eq!(
        cluster.client.health_check().await.unwrap().status,
        "healthy"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = writer.get_task(task.task_uuid).await.unwrap();
        if t.status == TaskState::Complete {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Prometheus metrics from the real server.
    let metrics = reqwest::get(format!("{}/metrics", cluster.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tasker_tasks_requests_total{namespace=\"examples\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tasker_tasks_completions_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tasker_queue_depth{queue=\"orchestration_step_results\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tasker_step_result_processing_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        workers: 0,
        ..Default::default()
    })
    .await;
    cluster.server.signal("TERM");
    let status = cluster.server.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        cluster.server.log_tail(5).contains("tasker-server stopped"),
        "{}",
        cluster.server.log_tail(20)
    );
}
