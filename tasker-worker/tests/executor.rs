//! The handler runner without a database: classification, panics, timeouts, lookups.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use tasker_worker::executor::{HandlerOutcome, run_registered};
use tasker_worker::handlers::{
    HandlerRegistry, StepContext, StepError, StepFailure, StepHandler, StepResult,
};
use tasker_worker::testing::{run_step, run_step_with_timeout};

struct Behaves(&'static str);

#[async_trait]
impl StepHandler for Behaves {
    async fn execute(&self, ctx: StepContext) -> Result<StepResult, StepError> {
        match self.0 {
            "ok" => Ok(StepResult::success(json!({"seen": ctx.task_context()}))
                .with_metadata(json!({"v": 1}))),
            "retry" => Err(StepError::retry_after("busy", Duration::from_millis(1500))),
            "permanent" => Err(StepError::permanent("bad input")),
            "custom" => Ok(StepResult::failure(StepFailure {
                message: "quota exceeded".into(),
                error_type: "rate_limited".into(),
                retryable: true,
                retry_after: None,
            })),
            "panic" => panic!("index out of range"),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(StepResult::success(json!(null)))
            }
            _ => unreachable!(),
        }
    }
}

fn ctx() -> StepContext {
    StepContext::builder("s")
        .task_context(json!({"a": 1}))
        .attempt(2, 5)
        .build()
}

#[tokio::test]
async fn success_keeps_result_and_metadata() {
    let r = run_step(Behaves("ok"), ctx()).await;
    assert!(r.success);
    assert_eq!(r.result, json!({"seen": {"a": 1}}));
    assert_eq!(r.metadata.custom, json!({"v": 1}));
    assert_eq!(r.metadata.attempt, 2);
    assert!(r.error.is_none());
}

#[tokio::test]
async fn errors_are_classified() {
    let r = run_step(Behaves("retry"), ctx()).await;
    let e = r.error.unwrap();
    assert_eq!(
        (e.error_type.as_str(), e.retryable, e.retry_after_ms),
        ("retryable_error", true, Some(1500))
    );
    let e = run_step(Behaves("permanent"), ctx()).await.error.unwrap();
    assert_eq!(
        (e.error_type.as_str(), e.retryable, e.message.as_str()),
        ("permanent_error", false, "bad input")
    );
    let e = run_step(Behaves("custom"), ctx()).await.error.unwrap();
    assert_eq!((e.error_type.as_str(), e.retryable), ("rate_limited", true));
}

#[tokio::test]
async fn a_panic_is_a_permanent_failure_naming_the_handler() {
    let registry = {
        let mut r = HandlerRegistry::new();
        r.register("app::explodes", Behaves("panic"));
        r
    };
    let never = CancellationToken::new();
    let HandlerOutcome::Finished(r) = run_registered(
        &registry,
        "app::explodes",
        ctx(),
        Duration::from_secs(5),
        "w1",
        &never,
    )
    .await
    else {
        panic!("aborted")
    };
    let e = r.error.unwrap();
    assert_eq!(e.error_type, "handler_panic");
    assert!(!e.retryable);
    assert_eq!(
        e.message,
        "handler 'app::explodes' panicked: index out of range"
    );
}

#[tokio::test]
async fn a_missing_handler_is_permanent_and_says_which() {
    let never = CancellationToken::new();
    let HandlerOutcome::Finished(r) = run_registered(
        &HandlerRegistry::new(),
        "App::Missing",
        ctx(),
        Duration::from_secs(5),
        "w1",
        &never,
    )
    .await
    else {
        panic!("aborted")
    };
    let e = r.error.unwrap();
    assert_eq!(
        (e.error_type.as_str(), e.retryable),
        ("handler_not_found", false)
    );
    assert!(
        e.message.contains("'App::Missing'") && e.message.contains("w1"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_timeout_is_retryable_and_stops_the_handler() {
    let started = std::time::Instant::now();
    let r = run_step_with_timeout(Behaves("slow"), ctx(), Duration::from_millis(100)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let e = r.error.unwrap();
    assert_eq!((e.error_type.as_str(), e.retryable), ("timeout", true));
    assert!(e.message.contains("within 0.1 s"), "{}", e.message);
}

#[tokio::test]
async fn abort_stops_a_running_handler_without_a_result() {
    let mut registry = HandlerRegistry::new();
    registry.register("slow", Behaves("slow"));
    let abort = CancellationToken::new();
    let trigger = abort.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let outcome = run_registered(
        &registry,
        "slow",
        ctx(),
        Duration::from_secs(60),
        "w",
        &abort,
    )
    .await;
    assert!(matches!(outcome, HandlerOutcome::Aborted));
}

#[test]
fn context_accessors() {
    let c = StepContext::builder("ship")
        .task_context(json!({"order": 5}))
        .initialization(json!({"carrier": "x"}))
        .parent_result("pay", json!({"receipt": {"id": "r1"}}))
        .ancestor_result("validate", json!(true))
        .template("payments", "order", "1.2.0")
        .attempt(1, 1)
        .build();
    assert_eq!(c.step_name(), "ship");
    assert_eq!(c.initialization()["carrier"], "x");
    assert_eq!(
        c.dependency_field("pay", &["receipt", "id"]),
        Some(&json!("r1"))
    );
    assert_eq!(c.dependency_field("pay", &["receipt", "missing"]), None);
    assert_eq!(c.dependency_result("validate"), Some(&json!(true)));
    assert_eq!(c.parents(), ["pay"]);
    assert_eq!(c.dependency_results().len(), 2);
    assert_eq!(
        (c.namespace(), c.task_name(), c.task_version()),
        ("payments", "order", "1.2.0")
    );
    assert!(!c.is_retry());
    assert_eq!(c.max_attempts(), 1);
}
