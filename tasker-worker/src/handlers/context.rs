use std::collections::BTreeMap;

use serde_json::Value;
use uuid::Uuid;

/// Everything a handler may read about the step it runs.
///
/// ```
/// use serde_json::json;
/// use tasker_worker::handlers::StepContext;
///
/// let ctx = StepContext::builder("ship")
///     .task_context(json!({"order_id": 7}))
///     .initialization(json!({"carrier": "post"}))
///     .parent_result("pay", json!({"receipt": {"id": "r1"}}))
///     .build();
/// assert_eq!(ctx.task_context()["order_id"], 7);
/// assert_eq!(ctx.initialization()["carrier"], "post");
/// assert_eq!(ctx.dependency_field("pay", &["receipt", "id"]), Some(&json!("r1")));
/// assert_eq!((ctx.attempt(), ctx.max_attempts(), ctx.is_retry()), (1, 3, false));
/// assert_eq!(ctx.step_name(), "ship");
/// ```
#[derive(Debug, Clone)]
pub struct StepContext {
    pub(crate) task_uuid: Uuid,
    pub(crate) step_uuid: Uuid,
    pub(crate) step_name: String,
    pub(crate) namespace: String,
    pub(crate) task_name: String,
    pub(crate) task_version: String,
    pub(crate) correlation_id: Uuid,
    pub(crate) attempt: i32,
    pub(crate) max_attempts: i32,
    pub(crate) task_context: Value,
    pub(crate) initialization: Value,
    pub(crate) parents: Vec<String>,
    pub(crate) dependency_results: BTreeMap<String, Value>,
}

impl StepContext {
    /// The task's input.
    pub fn task_context(&self) -> &Value {
        &self.task_context
    }

    /// The step's `handler.initialization` from the template.
    pub fn initialization(&self) -> &Value {
        &self.initialization
    }

    /// The result of an ancestor step, by name.
    pub fn dependency_result(&self, step_name: &str) -> Option<&Value> {
        self.dependency_results.get(step_name)
    }

    /// A field inside an ancestor's result, by path: `dependency_field("load", &["user", "id"])`.
    pub fn dependency_field(&self, step_name: &str, path: &[&str]) -> Option<&Value> {
        path.iter()
            .try_fold(self.dependency_result(step_name)?, |v, key| v.get(key))
    }

    /// Results of every ancestor, by step name.
    pub fn dependency_results(&self) -> &BTreeMap<String, Value> {
        &self.dependency_results
    }

    /// Names of the direct parents, sorted.
    pub fn parents(&self) -> &[String] {
        &self.parents
    }

    /// This attempt's number, starting at 1.
    pub fn attempt(&self) -> i32 {
        self.attempt
    }

    /// Attempts allowed in all.
    pub fn max_attempts(&self) -> i32 {
        self.max_attempts
    }

    /// Whether this is a retry.
    pub fn is_retry(&self) -> bool {
        self.attempt > 1
    }

    /// The task.
    pub fn task_uuid(&self) -> Uuid {
        self.task_uuid
    }

    /// The step.
    pub fn step_uuid(&self) -> Uuid {
        self.step_uuid
    }

    /// The step's name in the template.
    pub fn step_name(&self) -> &str {
        &self.step_name
    }

    /// The template's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The template's name.
    pub fn task_name(&self) -> &str {
        &self.task_name
    }

    /// The template's version.
    pub fn task_version(&self) -> &str {
        &self.task_version
    }

    /// The task's trace id.
    pub fn correlation_id(&self) -> Uuid {
        self.correlation_id
    }
}

impl From<tasker_shared::database::step::claim::ClaimedStep> for StepContext {
    fn from(c: tasker_shared::database::step::claim::ClaimedStep) -> Self {
        Self {
            task_uuid: c.task_uuid,
            step_uuid: c.step_uuid,
            step_name: c.step_name,
            namespace: c.namespace,
            task_name: c.task_name,
            task_version: c.task_version,
            correlation_id: c.correlation_id,
            attempt: c.attempt,
            max_attempts: c.max_attempts,
            task_context: c.task_context,
            initialization: c.inputs,
            parents: c.parents,
            dependency_results: c.dependency_results,
        }
    }
}

/// Builds a [`StepContext`] by hand, for tests and for language bridges.
///
/// ```
/// use serde_json::json;
/// use tasker_worker::handlers::StepContext;
///
/// let context = StepContext::builder("charge_card")
///     .task_context(json!({"order_id": 7}))
///     .initialization(json!({"currency": "EUR"}))
///     .parent_result("validate_order", json!({"total": 42}))
///     .attempt(2, 3)
///     .build();
/// assert_eq!(context.dependency_field("validate_order", &["total"]), Some(&json!(42)));
/// assert!(context.is_retry());
/// ```
#[derive(Debug, Clone)]
pub struct StepContextBuilder {
    context: StepContext,
}

impl StepContext {
    /// A builder for a context of a step named `step_name`, with fresh ids, an empty task
    /// context and initialization, no dependencies, and attempt 1 of 3.
    pub fn builder(step_name: impl Into<String>) -> StepContextBuilder {
        StepContextBuilder {
            context: StepContext {
                task_uuid: Uuid::now_v7(),
                step_uuid: Uuid::now_v7(),
                step_name: step_name.into(),
                namespace: "default".into(),
                task_name: "test_task".into(),
                task_version: "0.0.0".into(),
                correlation_id: Uuid::now_v7(),
                attempt: 1,
                max_attempts: 3,
                task_context: Value::Object(Default::default()),
                initialization: Value::Object(Default::default()),
                parents: Vec::new(),
                dependency_results: BTreeMap::new(),
            },
        }
    }
}

impl StepContextBuilder {
    /// The task's input.
    pub fn task_context(mut self, value: Value) -> Self {
        self.context.task_context = value;
        self
    }

    /// The step's `handler.initialization`.
    pub fn initialization(mut self, value: Value) -> Self {
        self.context.initialization = value;
        self
    }

    /// A direct parent and its result.
    pub fn parent_result(mut self, step_name: impl Into<String>, result: Value) -> Self {
        let name = step_name.into();
        if !self.context.parents.contains(&name) {
            self.context.parents.push(name.clone());
            self.context.parents.sort();
        }
        self.context.dependency_results.insert(name, result);
        self
    }

    /// A more distant ancestor and its result.
    pub fn ancestor_result(mut self, step_name: impl Into<String>, result: Value) -> Self {
        self.context
            .dependency_results
            .insert(step_name.into(), result);
        self
    }

    /// The attempt number and the attempts allowed.
    pub fn attempt(mut self, attempt: i32, max_attempts: i32) -> Self {
        self.context.attempt = attempt;
        self.context.max_attempts = max_attempts;
        self
    }

    /// The template's namespace, name and version.
    pub fn template(mut self, namespace: &str, name: &str, version: &str) -> Self {
        self.context.namespace = namespace.into();
        self.context.task_name = name.into();
        self.context.task_version = version.into();
        self
    }

    /// The context.
    pub fn build(self) -> StepContext {
        self.context
    }
}
