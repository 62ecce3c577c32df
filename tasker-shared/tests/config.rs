//! Configuration layering, overrides and errors.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use tasker_shared::config::{ConfigError, TaskerConfig, load_from};
use tasker_shared::event_system::DeploymentMode;

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tasker")
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems(err: ConfigError) -> Vec<String> {
    match err {
        ConfigError::Invalid(p) => p,
        other => panic!("{other}"),
    }
}

#[test]
fn shipped_files_match_the_defaults() {
    // base/ restates every default, so reading it changes nothing.
    let (from_files, sources) = load_from(Some(&repo_config()), "none", None, &[]).unwrap();
    assert_eq!(sources.files.len(), 3);
    let defaults = TaskerConfig {
        environment: "none".into(),
        ..Default::default()
    };
    assert_eq!(from_files, defaults);
}

#[test]
fn environments_layer_over_base() {
    let (test, _) = load_from(Some(&repo_config()), "test", None, &[]).unwrap();
    assert_eq!(test.events.poll_interval_ms, 200);
    assert_eq!(test.orchestration.staleness.interval_ms, 200);
    assert_eq!(
        test.web.request_timeout_ms, 30_000,
        "untouched keys keep the base value"
    );
    // Production turns auth on; the worker does not care, the server checks credentials.
    let (prod, _) = load_from(Some(&repo_config()), "production", None, &[]).unwrap();
    assert!(prod.web.auth.enabled);
    let (prod, _) = load_from(
        Some(&repo_config()),
        "production",
        None,
        &vars(&[(
            "TASKER__WEB__AUTH__JWT_HS256_SECRET",
            "a-long-enough-secret",
        )]),
    )
    .unwrap();
    assert!(prod.web.auth.enabled);
    assert!(!prod.database.auto_migrate);
    assert_eq!(prod.logging.format, "json");
}

#[test]
fn extra_file_then_variables_win() {
    let dir = std::env::temp_dir().join(format!("tasker-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let extra = dir.join("extra.toml");
    std::fs::write(&extra, "[events]\npoll_interval_ms = 777\ndeployment_mode = \"PollingOnly\"\n[web]\nrequest_timeout_ms = 999\n").unwrap();
    let (c, sources) = load_from(
        Some(&repo_config()),
        "test",
        Some(&extra),
        &vars(&[
            ("TASKER__WEB__REQUEST_TIMEOUT_MS", "1234"),
            (
                "TASKER__WEB__CORS_ALLOWED_ORIGINS",
                "[\"https://a.example\"]",
            ),
            ("DATABASE_URL", "postgres://u@h/db"),
            ("TASKER_WEB_BIND_ADDRESS", "127.0.0.1:9999"),
            ("TASKER_TEMPLATE_PATH", "/srv/templates"),
        ]),
    )
    .unwrap();
    assert_eq!(c.events.poll_interval_ms, 777);
    assert_eq!(c.events.deployment_mode, DeploymentMode::PollingOnly);
    assert_eq!(c.web.request_timeout_ms, 1234);
    assert_eq!(c.web.cors_allowed_origins, ["https://a.example"]);
    assert_eq!(c.database.url, "postgres://u@h/db");
    assert_eq!(c.web.bind_address.to_string(), "127.0.0.1:9999");
    assert_eq!(c.worker.template_path, PathBuf::from("/srv/templates"));
    assert_eq!(sources.files.last().unwrap(), &extra);
    assert!(
        sources
            .variables
            .contains(&"TASKER__WEB__REQUEST_TIMEOUT_MS".to_string())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_name_the_key_and_its_origin() {
    let dir = std::env::temp_dir().join(format!("tasker-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("base")).unwrap();
    std::fs::write(
        dir.join("base/common.toml"),
        "[database]\nmax_conections = 5\n",
    )
    .unwrap();
    let p = problems(load_from(Some(&dir), "x", None, &[]).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("database.max_conections: unknown field"),
        "{p:?}"
    );
    assert!(p[0].contains("base/common.toml"), "{p:?}");

    std::fs::write(
        dir.join("base/common.toml"),
        "[events]\npoll_interval_ms = \"soon\"\n",
    )
    .unwrap();
    let p = problems(load_from(Some(&dir), "x", None, &[]).unwrap_err());
    assert!(
        p[0].starts_with("events.poll_interval_ms: invalid type"),
        "{p:?}"
    );

    std::fs::write(
        dir.join("base/common.toml"),
        "[database]\nmax_connections = 0\n",
    )
    .unwrap();
    let p = problems(load_from(Some(&dir), "x", None, &[]).unwrap_err());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("database.max_connections: must be between 1 and 1000, got 0 (from"),
        "{p:?}"
    );
    assert!(p[0].contains("base/common.toml"), "{p:?}");

    let p = problems(
        load_from(
            Some(&dir),
            "x",
            None,
            &vars(&[("TASKER__ORCHESTRATION__RETENTION__MAX_AGE", "a month")]),
        )
        .unwrap_err(),
    );
    assert!(
        p.iter().any(|m| m.starts_with(
            "orchestration.retention.max_age: must be a duration such as 30d, 12h or 90m, got \"a month\""
        ) && m.contains("TASKER__ORCHESTRATION__RETENTION__MAX_AGE")),
        "{p:?}"
    );

    let p = problems(
        load_from(
            None,
            "x",
            None,
            &vars(&[("TASKER__WORKER__MAX_CONCURRENT_STEPS", "0")]),
        )
        .unwrap_err(),
    );
    assert_eq!(
        p,
        [
            "worker.max_concurrent_steps: must be between 1 and 10000, got 0 (from environment variable TASKER__WORKER__MAX_CONCURRENT_STEPS)"
        ]
    );
    let missing = load_from(None, "x", Some(Path::new("/nope.toml")), &[]).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "configuration file /nope.toml does not exist"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
