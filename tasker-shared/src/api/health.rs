//! Health bodies: liveness, and readiness with its checks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /health/ready` and `/health/detailed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadinessResponse {
    /// `ready` or `not_ready`.
    pub status: String,
    /// When this was measured.
    pub timestamp: DateTime<Utc>,
    /// Each check by name.
    pub checks: std::collections::BTreeMap<String, HealthCheck>,
    /// Version and settings (`/health/detailed` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthCheck {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// What was found.
    pub message: String,
    /// How long the check took.
    pub duration_ms: u64,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// When this was measured.
    pub timestamp: DateTime<Utc>,
}
