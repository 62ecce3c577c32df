//! REST request and response bodies, shared by `tasker-server` and `tasker-client` so the
//! wire format cannot drift.
//!
//! One module per resource (`tasks`, `steps`, `templates`, `dlq`, `health`) and the error
//! body (`error`); every type is re-exported here, so its path is `tasker_shared::api::X`.

mod dlq;
mod error;
mod health;
mod steps;
mod tasks;
mod templates;

pub use dlq::{DlqEntry, DlqStatsResponse, DlqUpdateRequest};
pub use error::{ErrorBody, ErrorResponse};
pub use health::{HealthCheck, HealthResponse, ReadinessResponse};
pub use steps::{CompletionData, StepAuditResponse, StepManualAction, StepResponse};
pub use tasks::{
    Pagination, StepSummary, TaskListResponse, TaskRequest, TaskResponse, TaskSummaryResponse,
};
pub use templates::{NamespaceSummary, TemplateListResponse, TemplateResponse, TemplateSummary};
