use std::time::Duration;

use serde_json::Value;

/// What a handler returns.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub(crate) outcome: Outcome,
    pub(crate) metadata: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Success(Value),
    Failure(StepFailure),
}

/// A failure described in full, for handlers that want to set the error class or
/// metadata themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    /// What went wrong.
    pub message: String,
    /// A class such as `validation_error`.
    pub error_type: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Wait at least this long before the next attempt.
    pub retry_after: Option<Duration>,
}

impl StepResult {
    /// Success with a result value.
    ///
    /// ```
    /// use serde_json::json;
    /// use tasker_worker::handlers::StepResult;
    ///
    /// let r = StepResult::success(json!({"rows": 3})).with_metadata(json!({"source": "cache"}));
    /// assert_eq!(r.value(), Some(&json!({"rows": 3})));
    /// assert_eq!(r.metadata()["source"], "cache");
    /// ```
    pub fn success(result: Value) -> Self {
        Self {
            outcome: Outcome::Success(result),
            metadata: Value::Null,
        }
    }

    /// A failure with your own error class.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasker_worker::handlers::{StepFailure, StepResult};
    ///
    /// let r = StepResult::failure(StepFailure {
    ///     message: "quota exceeded".into(),
    ///     error_type: "rate_limited".into(),
    ///     retryable: true,
    ///     retry_after: Some(Duration::from_secs(30)),
    /// });
    /// assert!(r.value().is_none());
    /// assert_eq!(r.failure_info().unwrap().error_type, "rate_limited");
    /// ```
    pub fn failure(failure: StepFailure) -> Self {
        Self {
            outcome: Outcome::Failure(failure),
            metadata: Value::Null,
        }
    }

    /// Attaches metadata (stored with the result).
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// The result value, if this is a success.
    pub fn value(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Success(v) => Some(v),
            Outcome::Failure(_) => None,
        }
    }

    /// The failure, if this is one.
    pub fn failure_info(&self) -> Option<&StepFailure> {
        match &self.outcome {
            Outcome::Failure(f) => Some(f),
            Outcome::Success(_) => None,
        }
    }

    /// The metadata.
    pub fn metadata(&self) -> &Value {
        &self.metadata
    }
}
