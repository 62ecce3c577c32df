//! The body of every error response, `{"error": {"code", "message"}}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
}

/// The body of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `NOT_FOUND`.
    pub code: String,
    /// What was wrong, and where.
    pub message: String,
    /// For `CONFLICT` on task creation: the task that already exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_task_uuid: Option<Uuid>,
}
