//! Queue names and the messages that travel on them.
//!
//! The database is the data plane: messages carry ids, and consumers read everything
//! else from the tables in the same transaction that acts on it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Workers → orchestration: a step's result was stored.
pub const ORCHESTRATION_STEP_RESULTS: &str = "orchestration_step_results";
/// Any producer → orchestration: a task to create.
pub const ORCHESTRATION_TASK_REQUESTS: &str = "orchestration_task_requests";
/// Any producer → orchestration: a task to re-evaluate.
pub const ORCHESTRATION_TASK_FINALIZATIONS: &str = "orchestration_task_finalizations";
/// Namespace of the orchestration's own queues and notification channel.
pub const ORCHESTRATION_NAMESPACE: &str = "orchestration";

/// The queue workers of `namespace` read steps from: `worker_<namespace>_queue`.
pub fn worker_queue_name(namespace: &str) -> String {
    format!("worker_{namespace}_queue")
}

/// The message for one step, on a worker queue (orchestration → worker) and on
/// `orchestration_step_results` (worker → orchestration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    /// The task the step belongs to.
    pub task_uuid: Uuid,
    /// The step.
    pub step_uuid: Uuid,
    /// The task's correlation id, for tracing.
    pub correlation_id: Uuid,
}

/// The name the step message had before it was trimmed to ids only.
pub type SimpleStepMessage = StepMessage;

/// A request to create a task, sent through `orchestration_task_requests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequestMessage {
    /// Unique id of this request.
    pub request_id: Uuid,
    /// The task to create.
    pub task_request: crate::api::TaskRequest,
}
