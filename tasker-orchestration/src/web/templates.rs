//! `/v1/templates` routes.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};

use tasker_shared::api::{
    NamespaceSummary, TemplateListResponse, TemplateResponse, TemplateSummary,
};
use tasker_shared::database::named_task::{self, NamedTaskRow};

use super::{ApiError, AppState};

fn summary(row: &NamedTaskRow) -> TemplateSummary {
    TemplateSummary {
        namespace: row.namespace.clone(),
        name: row.name.clone(),
        version: row.version.clone(),
        description: row.description.clone(),
        step_count: row.configuration["steps"]
            .as_array()
            .map_or(0, |s| s.len() as u32),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// `GET /v1/templates`: namespaces and every registered template version.
#[utoipa::path(get, path = "/v1/templates", tag = "templates", security(("permission" = ["templates:read"])),
    responses((status = 200, body = tasker_shared::api::TemplateListResponse)))]
pub async fn list_templates(
    State(state): State<AppState>,
) -> Result<Json<TemplateListResponse>, ApiError> {
    let rows = named_task::list(&state.pool, None).await?;
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for row in &rows {
        *counts.entry(row.namespace.clone()).or_default() += 1;
    }
    Ok(Json(TemplateListResponse {
        namespaces: counts
            .into_iter()
            .map(|(name, template_count)| NamespaceSummary {
                name,
                template_count,
            })
            .collect(),
        templates: rows.iter().map(summary).collect(),
    }))
}

/// `GET /v1/templates/{namespace}/{name}/{version}`.
#[utoipa::path(get, path = "/v1/templates/{namespace}/{name}/{version}", tag = "templates", security(("permission" = ["templates:read"])),
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = tasker_shared::api::TemplateResponse), (status = 404, body = tasker_shared::api::ErrorResponse)))]
pub async fn get_template(
    State(state): State<AppState>,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> Result<Json<TemplateResponse>, ApiError> {
    let row = named_task::list(&state.pool, Some((&namespace, &name, &version)))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no template '{name}' version '{version}' is registered in namespace '{namespace}'"
            ))
        })?;
    Ok(Json(TemplateResponse {
        summary: summary(&row),
        identity_strategy: row.identity_strategy.clone(),
        template: row.configuration,
    }))
}
