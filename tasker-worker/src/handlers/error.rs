use std::time::Duration;

/// A failed attempt, classified where it happened.
///
/// ```
/// use std::time::Duration;
/// use tasker_worker::handlers::StepError;
///
/// let busy = StepError::retry_after("service busy", Duration::from_secs(5));
/// assert!(busy.is_retryable());
/// let bad = StepError::permanent("order 7 has no items");
/// assert!(!bad.is_retryable());
/// assert_eq!(bad.to_string(), "order 7 has no items");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// Another attempt may succeed (a timeout, a 503, a lock).
    #[error("{message}")]
    Retryable {
        /// What went wrong.
        message: String,
        /// Wait at least this long before the next attempt (overrides the backoff).
        retry_after: Option<Duration>,
    },
    /// No attempt will succeed (bad input, a missing record).
    #[error("{message}")]
    Permanent {
        /// What went wrong.
        message: String,
    },
}

impl StepError {
    /// A retryable failure.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    /// A retryable failure with the delay before the next attempt.
    pub fn retry_after(message: impl Into<String>, delay: Duration) -> Self {
        Self::Retryable {
            message: message.into(),
            retry_after: Some(delay),
        }
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }
}

/// Classifies any error as a [`StepError`]: `result.retryable()?` or `result.permanent()?`.
///
/// ```
/// use tasker_worker::handlers::{ResultExt, StepError};
///
/// fn parse(raw: &str) -> Result<u32, StepError> {
///     raw.parse::<u32>().permanent() // bad input will not get better on retry
/// }
/// assert!(parse("12").is_ok());
/// assert!(!parse("x").unwrap_err().is_retryable());
/// ```
pub trait ResultExt<T> {
    /// Maps the error to [`StepError::Retryable`].
    fn retryable(self) -> Result<T, StepError>;
    /// Maps the error to [`StepError::Permanent`].
    fn permanent(self) -> Result<T, StepError>;
}

impl<T, E: std::fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, StepError> {
        self.map_err(|e| StepError::retryable(e.to_string()))
    }

    fn permanent(self) -> Result<T, StepError> {
        self.map_err(|e| StepError::permanent(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_helpers() {
        let r: Result<(), &str> = Err("boom");
        assert_eq!(r.retryable().unwrap_err(), StepError::retryable("boom"));
        let r: Result<(), std::num::ParseIntError> = "x".parse::<i32>().map(|_| ());
        let e = r.permanent().unwrap_err();
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "invalid digit found in string");
        let ok: Result<i32, &str> = Ok(3);
        assert_eq!(ok.permanent().unwrap(), 3);
    }
}
