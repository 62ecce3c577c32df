//! The behavioural cases shared with the Ruby gem (tests/conformance/handler_cases.json),
//! run against Rust handlers, so the two handler APIs cannot drift.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use tasker_worker::handlers::{StepContext, StepError, StepHandler, StepResult};
use tasker_worker::testing::run_step;

struct Case(String);

#[async_trait]
impl StepHandler for Case {
    async fn execute(&self, c: StepContext) -> Result<StepResult, StepError> {
        match self.0.as_str() {
            "returns_a_value" => Ok(StepResult::success(
                json!({"doubled": c.task_context()["n"].as_i64().unwrap() * 2}),
            )),
            "reads_a_dependency_field" => Ok(StepResult::success(
                json!({"user_id": c.dependency_field("load", &["user", "id"])}),
            )),
            "retryable_with_delay" => {
                Err(StepError::retry_after("busy", Duration::from_millis(1500)))
            }
            "permanent" => Err(StepError::permanent("bad input")),
            "sees_its_attempt" => Ok(StepResult::success(
                json!({"attempt": c.attempt(), "retry": c.is_retry()}),
            )),
            other => panic!("no Rust handler for conformance case {other}"),
        }
    }
}

#[tokio::test]
async fn rust_handlers_meet_the_shared_cases() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/conformance/handler_cases.json"
    );
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["case"].as_str().unwrap().to_string();
        let mut builder = StepContext::builder("step")
            .task_context(case.get("context").cloned().unwrap_or(json!({})))
            .attempt(
                case.get("attempt").and_then(Value::as_i64).unwrap_or(1) as i32,
                3,
            );
        if let Some(deps) = case.get("dependencies").and_then(Value::as_object) {
            for (k, v) in deps {
                builder = builder.parent_result(k, v.clone());
            }
        }
        let r = run_step(Case(name.clone()), builder.build()).await;
        // The same view the Ruby spec takes of the bridge's outcome.
        let mut outcome = json!({"success": r.success});
        if r.success {
            outcome["result"] = r.result.clone();
        } else {
            let e = r.error.unwrap();
            outcome["error_type"] = json!(e.error_type);
            outcome["retryable"] = json!(e.retryable);
            outcome["message"] = json!(e.message);
            if let Some(ms) = e.retry_after_ms {
                outcome["retry_after_ms"] = json!(ms);
            }
        }
        for (key, want) in case["expect"].as_object().unwrap() {
            assert_eq!(&outcome[key], want, "case {name}, field {key}: {outcome}");
        }
    }
}
