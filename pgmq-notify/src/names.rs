//! Queue and notification channel names.
//!
//! A namespace is `[a-z0-9_]{1,29}`, so that `pgmq.a_worker_<namespace>_queue` stays a
//! valid, unquoted PostgreSQL identifier.

use crate::error::{Error, Result};

/// Longest namespace name allowed.
pub const MAX_NAMESPACE_LEN: usize = 29;
/// Longest queue name allowed (PostgreSQL identifiers are 63 bytes; PGMQ adds `q_`/`a_`
/// and an index suffix).
pub const MAX_QUEUE_LEN: usize = 47;
/// Prefix of every notification channel this crate sends on.
pub const CHANNEL_PREFIX: &str = "pgmq_message_ready";

/// Checks a namespace name against `[a-z0-9_]{1,29}`.
pub fn validate_namespace(name: &str) -> Result<()> {
    check(name, "namespace", MAX_NAMESPACE_LEN)
}

fn check(name: &str, kind: &'static str, max: usize) -> Result<()> {
    let invalid = |reason| Error::InvalidName {
        kind,
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > max {
        return Err(invalid(if max == MAX_NAMESPACE_LEN {
            "must be at most 29 characters"
        } else {
            "must be at most 47 characters"
        }));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid(
            "may contain only lower-case letters, digits and '_'",
        ));
    }
    Ok(())
}

/// A validated PGMQ queue name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName(String);

impl QueueName {
    /// Validates an arbitrary queue name (`[a-z0-9_]{1,47}`).
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check(&name, "queue", MAX_QUEUE_LEN)?;
        Ok(Self(name))
    }

    /// The queue that carries work for `namespace`: `worker_<namespace>_queue`.
    pub fn worker(namespace: &str) -> Result<Self> {
        validate_namespace(namespace)?;
        Ok(Self(format!("worker_{namespace}_queue")))
    }

    /// The queue name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace a queue belongs to, mirroring the SQL function
    /// `tasker.extract_queue_namespace`: `worker_<ns>_queue` → `<ns>`, anything starting
    /// with `orchestration` → `orchestration`, otherwise the queue name itself.
    pub fn namespace(&self) -> &str {
        namespace_of(&self.0)
    }

    /// The channel that announces new messages on this queue.
    pub fn channel(&self) -> String {
        channel_for_namespace(self.namespace())
    }
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The namespace part of a queue name (see [`QueueName::namespace`]).
pub fn namespace_of(queue: &str) -> &str {
    if queue.starts_with("orchestration") {
        return "orchestration";
    }
    queue
        .strip_prefix("worker_")
        .and_then(|rest| rest.strip_suffix("_queue"))
        .filter(|ns| !ns.is_empty())
        .unwrap_or(queue)
}

/// The notification channel of a namespace: `pgmq_message_ready.<namespace>`.
pub fn channel_for_namespace(namespace: &str) -> String {
    format!("{CHANNEL_PREFIX}.{namespace}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules() {
        assert!(validate_namespace("payments").is_ok());
        assert!(validate_namespace("a_1").is_ok());
        assert!(validate_namespace(&"a".repeat(29)).is_ok());
        let too_long = validate_namespace(&"a".repeat(30)).unwrap_err();
        assert!(too_long.to_string().contains("at most 29"), "{too_long}");
        assert!(validate_namespace("").is_err());
        let bad = validate_namespace("Pay-ments").unwrap_err();
        assert!(bad.to_string().contains("lower-case"), "{bad}");
        assert!(validate_namespace("a;drop").is_err());
    }

    #[test]
    fn worker_queue_and_channel() {
        let q = QueueName::worker("payments").unwrap();
        assert_eq!(q.as_str(), "worker_payments_queue");
        assert_eq!(q.namespace(), "payments");
        assert_eq!(q.channel(), "pgmq_message_ready.payments");
        let o = QueueName::new("orchestration_step_results").unwrap();
        assert_eq!(o.namespace(), "orchestration");
        assert!(QueueName::worker("BAD").is_err());
    }
}
