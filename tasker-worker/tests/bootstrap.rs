//! The start-up path every worker language shares ([`WorkerBuilder`]): what it refuses
//! before it touches the database.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use tasker_shared::config::TaskerConfig;
use tasker_worker::handlers::{HandlerRegistry, StepContext, StepHandler, StepResult};
use tasker_worker::{Error, WorkerBuilder};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/missing_handler")
}

fn settings() -> TaskerConfig {
    let mut settings = TaskerConfig::default();
    // Never connected to: the checks below come first.
    settings.database.url = "postgres://nobody@127.0.0.1:1/none".into();
    settings.worker.template_path = fixtures();
    settings
}

struct Noop;

#[async_trait::async_trait]
impl StepHandler for Noop {
    async fn execute(&self, _context: StepContext) -> tasker_worker::handlers::Result<StepResult> {
        Ok(StepResult::success(serde_json::json!(null)))
    }
}

fn registry_with(callables: &[&str]) -> HandlerRegistry {
    let mut registry = HandlerRegistry::new();
    for callable in callables {
        registry.register(callable.to_string(), Noop);
    }
    registry
}

#[tokio::test]
async fn missing_handlers_refuse_the_start_and_are_all_listed() {
    let loaded = WorkerBuilder::new(settings()).load().await.unwrap();
    assert_eq!(loaded.namespaces(), ["e2e_missing"]);
    assert_eq!(
        loaded.callables().into_iter().collect::<Vec<_>>(),
        ["Payments::NotLoaded", "builtin::noop", "nowhere::Missing"]
    );
    let error = loaded
        .start(registry_with(&["builtin::noop"]))
        .await
        .unwrap_err();
    let Error::MissingHandlers(missing) = &error else {
        panic!("{error}");
    };
    let listed: Vec<_> = missing
        .iter()
        .map(|m| (m.step.as_str(), m.callable.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("unknown", "nowhere::Missing"),
            ("also_unknown", "Payments::NotLoaded")
        ]
    );
    let text = error.to_string();
    assert!(text.starts_with("refusing to start: 2 step(s)"), "{text}");
    assert!(
        text.contains("e2e_missing/missing_handler:1.0.0 step unknown: no handler for callable \"nowhere::Missing\""),
        "{text}"
    );
}

#[tokio::test]
async fn templates_of_namespaces_not_served_are_not_checked() {
    let loaded = WorkerBuilder::new(settings())
        .namespaces(vec!["elsewhere".into()])
        .load()
        .await
        .unwrap();
    assert!(loaded.callables().is_empty());
}

#[tokio::test]
async fn bad_options_are_refused_with_what_was_wrong() {
    let error = WorkerBuilder::new(settings())
        .namespaces(vec!["Bad-Name".into()])
        .load()
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with("namespace \"Bad-Name\": "),
        "{error}"
    );

    let mut no_db = settings();
    no_db.database.url.clear();
    let error = WorkerBuilder::new(no_db).load().await.unwrap_err();
    assert!(matches!(error, Error::NoDatabaseUrl), "{error}");

    let mut empty = settings();
    empty.worker.template_path =
        std::env::temp_dir().join(format!("tasker-no-templates-{}", std::process::id()));
    std::fs::create_dir_all(&empty.worker.template_path).unwrap();
    let error = WorkerBuilder::new(empty).load().await.unwrap_err();
    assert!(error.to_string().starts_with("nothing to serve"), "{error}");
}
