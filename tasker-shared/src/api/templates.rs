//! Template bodies: the list of registered templates and one template.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /v1/templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateListResponse {
    /// Namespaces with registered templates.
    pub namespaces: Vec<NamespaceSummary>,
    /// Every registered template version.
    pub templates: Vec<TemplateSummary>,
}

/// A namespace in [`TemplateListResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceSummary {
    /// Its name.
    pub name: String,
    /// Templates (versions) registered in it.
    pub template_count: u32,
}

/// A template in [`TemplateListResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateSummary {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What it does.
    pub description: Option<String>,
    /// Number of steps.
    pub step_count: u32,
    /// First registered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/templates/{namespace}/{name}/{version}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateResponse {
    /// Namespace, name, version and the rest.
    #[serde(flatten)]
    pub summary: TemplateSummary,
    /// `strict`, `caller_provided` or `always_unique`.
    pub identity_strategy: String,
    /// The whole template, as registered.
    pub template: Value,
}
