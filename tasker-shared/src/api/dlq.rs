//! Dead-letter bodies: an entry, an investigation's update to one, and the counts of
//! entries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A dead-letter entry (`GET /v1/dlq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqEntry {
    /// The entry.
    pub dlq_entry_uuid: Uuid,
    /// The task.
    pub task_uuid: Uuid,
    /// The task's state when it was given up on.
    pub original_state: String,
    /// `staleness_timeout`, `max_retries_exceeded`, `dependency_cycle_detected`,
    /// `worker_unavailable` or `manual_dlq`.
    pub dlq_reason: String,
    /// When it was added.
    pub dlq_timestamp: DateTime<Utc>,
    /// `pending`, `manually_resolved`, `permanently_failed` or `cancelled`.
    pub resolution_status: String,
    /// When it was resolved.
    pub resolution_timestamp: Option<DateTime<Utc>>,
    /// Notes of the investigation.
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The task and its steps as they were.
    pub task_snapshot: Value,
    /// Thresholds and timings that led here.
    pub metadata: Value,
}

/// `PATCH /v1/dlq/entry/{dlq_entry_uuid}`: investigation progress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DlqUpdateRequest {
    /// `pending`, `manually_resolved`, `permanently_failed` or `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_status: Option<String>,
    /// Notes of the investigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_notes: Option<String>,
    /// Who resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Extra metadata, merged into the entry's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `GET /v1/dlq/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqStatsResponse {
    /// Entries in all.
    pub total: u64,
    /// Entries per reason.
    pub by_reason: std::collections::BTreeMap<String, u64>,
    /// Entries per resolution status.
    pub by_status: std::collections::BTreeMap<String, u64>,
    /// When the oldest pending entry was added.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}
