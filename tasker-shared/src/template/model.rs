//! The shape of a task template as written in YAML: the template, its steps, their
//! handlers and retry policies, and the template's lifecycle limits; parsing with
//! validation, and the steps in dependency order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::TemplateError;
use super::validate;

/// A workflow: a DAG of named steps, each run by a handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    /// Template name, unique within its namespace and version.
    pub name: String,
    /// The namespace: its workers listen on `worker_<namespace>_queue`.
    pub namespace_name: String,
    /// Version string, for example `1.0.0`.
    pub version: String,
    /// What the workflow does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form metadata (author, tags, links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// How duplicate task requests are recognised.
    #[serde(default)]
    pub identity_strategy: IdentityStrategy,
    /// Staleness limits that override the server's configuration for this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleConfig>,
    /// A JSON Schema for the task context (documentation only for now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// The steps, in any order; `dependencies` define the DAG.
    pub steps: Vec<StepDefinition>,
}

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDefinition {
    /// Step name, unique within the template.
    pub name: String,
    /// What the step does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which handler runs it, and with what configuration.
    pub handler: HandlerDefinition,
    /// Names of the steps that must finish before this one starts.
    #[serde(default, alias = "depends_on")]
    pub dependencies: Vec<String>,
    /// How failed attempts are retried.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// How long one attempt may run before the worker aborts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// A JSON Schema describing the step's result (documentation only for now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_schema: Option<Value>,
}

/// Which handler runs a step, and the configuration it is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerDefinition {
    /// The key a worker looks the handler up by: `builtin::square`, `Payments::Charge`…
    pub callable: String,
    /// Configuration handed to the handler on every run.
    #[serde(default = "empty_object")]
    pub initialization: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Retry settings of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Whether a failed attempt may be retried at all.
    pub retryable: bool,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// How the delay grows between attempts.
    pub backoff: BackoffKind,
    /// Delay before the first retry, in milliseconds.
    pub backoff_base_ms: u64,
    /// Longest delay between retries, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retryable: true,
            max_attempts: 3,
            backoff: BackoffKind::Exponential,
            backoff_base_ms: 1000,
            max_backoff_ms: 30_000,
        }
    }
}

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// Retry at once.
    None,
    /// base × attempt.
    Linear,
    /// base × 2^(attempt-1).
    #[default]
    Exponential,
    /// base × fib(attempt).
    Fibonacci,
}

impl BackoffKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Linear => "linear",
            Self::Exponential => "exponential",
            Self::Fibonacci => "fibonacci",
        }
    }
}

/// How duplicate task requests are recognised (see `docs/task-templates.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStrategy {
    /// Same template and same context (keys sorted) → same task.
    #[default]
    Strict,
    /// The caller must send an `idempotency_key`.
    CallerProvided,
    /// Every request creates a new task.
    AlwaysUnique,
}

impl IdentityStrategy {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::CallerProvided => "caller_provided",
            Self::AlwaysUnique => "always_unique",
        }
    }
}

/// Staleness limits of a template, in minutes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// Longest time a task may stay blocked by failures before it goes to `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_blocked_minutes: Option<u32>,
    /// Longest time in `waiting_for_dependencies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_dependencies_minutes: Option<u32>,
    /// Longest time in `waiting_for_retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_for_retry_minutes: Option<u32>,
    /// Longest time in `steps_in_process`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_in_process_minutes: Option<u32>,
}

impl TaskTemplate {
    /// Parses and validates a template. `source` names it in errors (a file path, say).
    pub fn from_yaml(yaml: &str, source: &str) -> Result<Self, TemplateError> {
        let template: TaskTemplate =
            serde_saphyr::from_str(yaml).map_err(|e| TemplateError::Parse {
                origin: source.to_string(),
                message: e.to_string(),
            })?;
        template.validate(source)?;
        Ok(template)
    }

    /// Checks names, dependencies, cycles and retry settings, reporting every problem.
    pub fn validate(&self, source: &str) -> Result<(), TemplateError> {
        validate::validate(self, source)
    }

    /// A step by name.
    pub fn step(&self, name: &str) -> Option<&StepDefinition> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// `namespace/name:version`, for messages.
    pub fn full_name(&self) -> String {
        format!("{}/{}:{}", self.namespace_name, self.name, self.version)
    }

    /// Steps in an order where every step comes after its dependencies.
    /// Only meaningful for a validated (acyclic) template.
    pub fn topological_order(&self) -> Vec<&StepDefinition> {
        let mut placed: BTreeMap<&str, bool> = BTreeMap::new();
        let mut order = Vec::with_capacity(self.steps.len());
        while order.len() < self.steps.len() {
            let before = order.len();
            for step in &self.steps {
                if placed.contains_key(step.name.as_str()) {
                    continue;
                }
                if step
                    .dependencies
                    .iter()
                    .all(|d| placed.contains_key(d.as_str()))
                {
                    placed.insert(step.name.as_str(), true);
                    order.push(step);
                }
            }
            if order.len() == before {
                break; // a cycle: validation reports it
            }
        }
        order
    }
}
