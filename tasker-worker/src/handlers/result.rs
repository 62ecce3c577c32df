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
    pub fn success(result: Value) -> Self {
        Self {
            outcome: Outcome::Success(result),
            metadata: Value::Null,
        }
    }

    /// A failure.
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
