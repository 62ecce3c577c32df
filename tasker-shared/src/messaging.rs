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
    /// The step to run (on a worker queue) or whose result was stored.
    pub step_uuid: Uuid,
    /// The task's correlation id, for tracing.
    pub correlation_id: Uuid,
    /// On a result: the worker that reported it will run the next step of the chain
    /// (see [`HandoffRequest`]). Absent on messages of older workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffRequest>,
    /// On a worker queue: the step was handed to one worker, already claimed for it
    /// (see [`Handed`]). Other workers never see such a message unless its lease ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed: Option<Handed>,
}

impl StepMessage {
    /// A plain step message: ids only, no handoff.
    pub fn new(task_uuid: Uuid, step_uuid: Uuid, correlation_id: Uuid) -> Self {
        Self {
            task_uuid,
            step_uuid,
            correlation_id,
            handoff: None,
            handed: None,
        }
    }
}

/// A worker's offer, on a successful result, to run one child the result makes ready.
///
/// The orchestration then claims that child for the worker in the transaction that
/// completes the parent (`in_progress`, attempt + 1, the message leased for
/// `lease_seconds`) and notifies the worker on [`handoff_channel`]`(token)`: the worker
/// skips the claim's own write and round trip. If the worker never takes the step (it
/// died, or the notification was lost), the lease ends and any worker of the namespace
/// reclaims the step as a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// The worker process's handoff token (unique per process).
    pub token: Uuid,
    /// The worker's id, for the step's history.
    pub worker_id: String,
    /// The lease to put on the handed message, in seconds.
    pub lease_seconds: i32,
}

/// Marks a step message handed to one worker ([`HandoffRequest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handed {
    /// The token of the worker it was handed to.
    pub token: Uuid,
    /// The attempt claimed for it.
    pub attempt: i32,
}

/// Prefix of the channel a worker process hears its handoffs on.
pub const HANDOFF_CHANNEL_PREFIX: &str = "tasker_handoff";

/// The channel a worker process with handoff token `token` listens on:
/// `tasker_handoff.<token, 32 hex digits>` (47 bytes, within PostgreSQL's 63).
pub fn handoff_channel(token: Uuid) -> String {
    format!("{HANDOFF_CHANNEL_PREFIX}.{}", token.simple())
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
